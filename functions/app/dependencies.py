"""What request handlers need, built once per process: settings, AWS clients, stores, clock.

``create_app`` puts one ``Services`` on ``app.state``; tests build their own (moto clients,
a controllable clock). Nothing here branches on where it runs: boto3 reads
``AWS_ENDPOINT_URL`` itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from botocore.config import Config
from fastapi import Request

from chunker.format.clients import aws_client
from chunker.format.read import ChunkReader
from functions.app.domain.leases import StreamLeases
from functions.app.domain.session_store import SessionStore
from functions.app.settings import AppSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client


def wall_ms() -> int:
    """Wall-clock time in epoch milliseconds (the playback clock's time base)."""
    return time.time_ns() // 1_000_000


def dynamodb_client(retries: int = 4) -> DynamoDBClient:
    """A DynamoDB client with up to ``retries`` standard-mode retries (botocore's
    ``max_attempts`` counts retries) and short timeouts: a session item answers in
    milliseconds, so 2 s without a byte is a stall, and a request's worst case (5 attempts
    of 1 s connect + 2 s read, plus backoff) stays under API Gateway's 30 s."""
    config = Config(
        retries={"mode": "standard", "max_attempts": retries},
        max_pool_connections=64,
        connect_timeout=1,
        read_timeout=2,
    )
    client: DynamoDBClient = aws_client("dynamodb", config)
    return client


def app_s3_client() -> S3Client:
    """The app's S3 client (chunks, manifests): bounded like DynamoDB's. The chunker's
    client (``chunker.format.s3.s3_client``, 30 s reads, 5 retries) suits batch jobs, but in a
    request it let an S3 stall hold the answer ~44 s (up to ~150 s). Here a read waits at
    most 5 s for a byte and a call makes 3 attempts, so a request fails over to 503 within
    ~3 x (2 s connect + 5 s read) plus backoff, under API Gateway's 30 s; the stream
    bounds its wait for a chunk by ``STREAM_CHUNK_WAIT_S`` besides."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 2},
        max_pool_connections=64,
        connect_timeout=2,
        read_timeout=5,
    )
    client: S3Client = aws_client("s3", config)
    return client


def session_store(table: str) -> SessionStore:
    """The sessions table through this process's clients. Control actions and stream opens
    retry (standard mode, up to 4 times); the stream poller's batch reads make one attempt:
    the poller retries by itself at its interval, backing off, so a throttled read does not
    hold every stream's view of control changes through seconds of botocore backoff."""
    return SessionStore(dynamodb_client(), table, polls=dynamodb_client(retries=0))


@dataclass
class Services:
    """Per-process dependencies of the HTTP app."""

    settings: AppSettings
    sessions: SessionStore
    chunks: ChunkReader
    now_ms: Callable[[], int] = wall_ms

    @cached_property
    def stream_leases(self) -> StreamLeases:
        """The caps on concurrent streams, counted in the sessions table."""
        settings = self.settings
        return StreamLeases(
            self.sessions.dynamodb,
            self.sessions.table,
            settings.stream_lease_s * 1000,
            per_user=settings.stream_max_per_user,
            per_session=settings.stream_max_per_session,
        )

    @classmethod
    def from_settings(cls, settings: AppSettings) -> Services:
        """Real clients from the environment."""
        return cls(
            settings=settings,
            sessions=session_store(settings.replay_table),
            chunks=ChunkReader(app_s3_client(), settings.replay_bucket, settings.chunk_cache_bytes),
        )


def get_services(request: Request) -> Services:
    """FastAPI dependency: the app's services."""
    services: Services = request.app.state.services
    return services
