"""What request handlers need, built once per process: settings, AWS clients, stores, clock.

``create_app`` puts one ``Services`` on ``app.state``; tests build their own (moto clients,
a controllable clock). Nothing here branches on where it runs: boto3 reads
``AWS_ENDPOINT_URL`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from fastapi import Request

from chunker.aws import s3_client
from chunker.reader import ChunkReader
from functions.sessions import SessionStore
from functions.settings import AppSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def wall_ms() -> int:
    """Wall-clock time in epoch milliseconds (the playback clock's time base)."""
    return time.time_ns() // 1_000_000


def dynamodb_client() -> DynamoDBClient:
    """A DynamoDB client with standard retries and short timeouts (polled by streams)."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=64,
        connect_timeout=2,
        read_timeout=5,
    )
    return boto3.client("dynamodb", config=config)


@dataclass
class Services:
    """Per-process dependencies of the HTTP app."""

    settings: AppSettings
    sessions: SessionStore
    chunks: ChunkReader
    now_ms: Callable[[], int] = wall_ms

    @classmethod
    def from_settings(cls, settings: AppSettings) -> Services:
        """Real clients from the environment."""
        return cls(
            settings=settings,
            sessions=SessionStore(dynamodb_client(), settings.replay_table),
            chunks=ChunkReader(s3_client(64), settings.replay_bucket, settings.chunk_cache_bytes),
        )


def get_services(request: Request) -> Services:
    """FastAPI dependency: the app's services."""
    services: Services = request.app.state.services
    return services
