"""AWS clients for the chunker, created once per process and passed in.

boto3 reads ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``) itself, so the same code talks
to AWS or to a local emulator such as moto's server mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def s3_client(max_pool_connections: int = 16) -> S3Client:
    """An S3 client with standard retries and room for parallel uploads."""
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        max_pool_connections=max_pool_connections,
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client("s3", config=config)
