"""The stack the stream benchmarks run against: a synthetic morning published as chunks
on the moto server, and the environment of the server that streams it."""

from __future__ import annotations

import os

from chunker.batch.run import chunk_day
from chunker.format.day import ServiceDay
from chunker.format.encoding import ChunkerConfig
from chunker.format.s3 import s3_client
from functions.app.dependencies import dynamodb_client
from functions.local.stack import ensure_table
from synthetic import GeneratorSettings, generate_day, write_day

AIRPORT = "XLHI"


def publish_morning(settings: GeneratorSettings, bucket: str, table: str) -> ServiceDay:
    """Generate the day, write its raw files to ``bucket``, chunk it and create the session
    ``table``, all through the endpoint in ``os.environ``; the service day it was for."""
    s3 = s3_client()
    s3.create_bucket(Bucket=bucket)
    day = generate_day(settings)
    write_day(day, lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body))
    chunk_day(s3, bucket, AIRPORT, day.keys.service_date, ChunkerConfig())
    ensure_table(dynamodb_client(), table)
    return ServiceDay.of(day.keys.service_date, day.reference.airport.timezone)


def server_environment(
    bucket: str, table: str, secret: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The server's environment: this one's (the moto endpoint), the stores, local auth."""
    return {
        **os.environ,
        "REPLAY_BUCKET": bucket,
        "REPLAY_TABLE": table,
        "AUTH_MODE": "local",
        "STREAM_TOKEN_SECRET": secret,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **(extra or {}),
    }
