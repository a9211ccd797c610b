"""AWS clients for the chunker, created once per process and passed in, and the one S3
question whose answer depends on the caller's permissions.

boto3 reads ``AWS_ENDPOINT_URL`` (and ``AWS_ENDPOINT_URL_S3``) itself, so the same code talks
to AWS or to a local emulator such as moto's server mode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.config import Config

from chunker.format.clients import aws_client

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
    client: S3Client = aws_client("s3", config)
    return client


def object_exists(s3: S3Client, bucket: str, key: str) -> bool:
    """Whether ``key`` exists, asked by listing it.

    S3 answers a GET or HEAD of a missing key with 404 only to a caller allowed
    ``s3:ListBucket`` on the bucket unconditionally; to everyone else, and so to our roles
    (their ListBucket is limited to ``s3:prefix`` values, a key object reads do not
    carry), it answers 403 AccessDenied. A listing under the key's own prefix is what those
    roles may do. The key itself, if present, sorts first among the keys it prefixes.
    """
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("Contents", [])
    return bool(listed) and listed[0]["Key"] == key
