"""Lambda handler of the chunk job: scheduled (a whole day) or on demand (a day or hours).

Events (see events/chunker-*.json)::

    {"airport": "XLHI", "service_date": "2026-03-14"}                  # whole day
    {"airport": "XLHI", "service_date": "previous", "timezone": "Asia/Shanghai"}  # yesterday
    {"airport": "XLHI", "service_date": "2026-03-14", "hours": [5, 6],
     "expected_version": "0123456789abcdef"}                              # one fan-out job
    {"airport": "XLHI", "service_date": "2026-03-14", "force": true}     # rebuild

The handler parses the event, calls ``chunker.job`` and returns its summary; bad events
and bad input raise (the invocation fails and goes to the dead-letter destination).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chunker.aws import s3_client
from chunker.job import chunk_day, chunk_hours
from chunker.keys import check_airport, check_date
from chunker.settings import ChunkerSettings

logger = Logger(service="dispatch-replay-chunker")
SETTINGS = ChunkerSettings()  # type: ignore[call-arg]  # read from the environment
S3 = s3_client()


class ChunkRequest(BaseModel):
    """A chunk job request."""

    model_config = ConfigDict(extra="forbid")
    airport: str
    service_date: str = Field(description="YYYY-MM-DD, or 'previous': yesterday in `timezone`")
    timezone: str = Field(default="UTC", description="The airport's IANA zone, for 'previous'.")
    hours: list[int] | None = Field(default=None, min_length=1, max_length=25)
    expected_version: str | None = None
    force: bool = False

    @field_validator("airport")
    @classmethod
    def _airport(cls, value: str) -> str:
        return check_airport(value)

    @field_validator("service_date")
    @classmethod
    def _date(cls, value: str) -> str:
        return value if value == "previous" else check_date(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def concrete_date(self, now: dt.datetime) -> str:
        """The service date, with 'previous' resolved to yesterday in the airport's zone."""
        if self.service_date != "previous":
            return self.service_date
        return (now.astimezone(ZoneInfo(self.timezone)).date() - dt.timedelta(days=1)).isoformat()


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Chunk a whole day, or the requested hours of it."""
    request = ChunkRequest.model_validate(event)
    service_date = request.concrete_date(dt.datetime.now(dt.UTC))
    logger.append_keys(airport=request.airport, service_date=service_date)
    config = SETTINGS.chunker_config
    if request.hours is None:
        summary = chunk_day(
            S3, SETTINGS.replay_bucket, request.airport, service_date, config, force=request.force
        )
    else:
        summary = chunk_hours(
            S3,
            SETTINGS.replay_bucket,
            request.airport,
            service_date,
            request.hours,
            config,
            expected_version=request.expected_version,
        )
    result = summary.as_dict()
    logger.info("chunk job done", extra={"summary": result})
    return result
