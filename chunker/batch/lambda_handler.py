"""Lambda handler of the chunk job: scheduled (a whole day) or on demand (a day or hours).

Events (see events/chunker-*.json)::

    {"airport": "XLHI", "service_date": "2026-03-14"}                  # whole day
    {"airport": "XLHI", "service_date": "previous", "timezone": "Asia/Shanghai"}  # yesterday
    {"airport": "XLHI", "service_date": "2026-03-14", "hours": [5, 6],
     "expected_version": "0123456789abcdef"}                              # one fan-out job
    {"airport": "XLHI", "service_date": "2026-03-14", "force": true}     # rebuild
    {"airport": "XLHI", "service_date": "previous", "timezone": "Asia/Shanghai",
     "fan_out": true, "hours_per_job": 2}    # plan, then one async invocation per range
    {"airport": "XLHI", "service_date": "current", "timezone": "Asia/Shanghai",
     "fan_out": true}                         # the hourly option: today so far

Fan-out: the planner computes the day's version and hour ranges and invokes this same
function asynchronously once per range (``InvocationType=Event``), each with the planned
version; the job that completes the day publishes it. A failed job is retried by Lambda
and then goes to the dead-letter destination; the published version stays untouched.

The handler parses the event, calls ``chunker.batch.run`` and returns its summary; bad events
and bad input raise (the invocation fails and goes to the dead-letter destination).

Metrics (EMF, flushed once per invocation by ``log_metrics``), from the summary the job
returns: ``RecordsIn`` (every raw record read: accepted, duplicate or rejected),
``RecordsAccepted``, ``RecordsQuarantined`` with dimension ``reason``, ``ChunksWritten``,
``ChunkBytesWritten`` and ``ChunkJobDuration`` (seconds); a fan-out plan adds
``ChunkJobsPlanned``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chunker.batch import init_finished
from chunker.batch.run import chunk_day, chunk_hours, plan_day
from chunker.batch.settings import ChunkerSettings
from chunker.batch.validate import DUPLICATE
from chunker.format.clients import aws_client
from chunker.format.keys import DEFAULT_VARIANT, check_airport, check_date, check_variant
from chunker.format.records import build_input_models
from chunker.format.s3 import s3_client

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME
# The template sets POWERTOOLS_METRICS_NAMESPACE; EMF without a namespace is invalid.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "DispatchReplay")
SETTINGS = ChunkerSettings()  # type: ignore[call-arg]  # read from the environment
S3 = s3_client()
_lambda_client: Any = None
build_input_models()  # the job validates raw records: their validators are built now
init_finished()  # chunker/batch/__init__.py paused the collector for the init


def lambda_client() -> Any:
    """The Lambda client fan-out uses to start hour jobs (created on first use)."""
    global _lambda_client  # noqa: PLW0603  # one per warm container
    if _lambda_client is None:
        _lambda_client = aws_client("lambda")
    return _lambda_client


def fan_out(request: ChunkRequest, service_date: str, function_arn: str) -> dict[str, Any]:
    """Start one asynchronous job per hour range of the day; returns the plan."""
    version, ranges, built = plan_day(
        S3,
        SETTINGS.replay_bucket,
        request.airport,
        service_date,
        SETTINGS.chunker_config,
        request.hours_per_job,
        request.variant,
    )
    if built and not request.force:
        return {"version": version, "jobs": 0, "already_built": True}
    client = lambda_client()
    for hours in ranges:
        payload = {
            "airport": request.airport,
            "service_date": service_date,
            "hours": list(hours),
            "expected_version": version,
            "variant": request.variant,
        }
        client.invoke(
            FunctionName=function_arn,
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )
    logger.info("fanned out", extra={"version": version, "jobs": len(ranges)})
    metrics.add_metric(name="ChunkJobsPlanned", unit=MetricUnit.Count, value=len(ranges))
    return {"version": version, "jobs": len(ranges), "already_built": built}


class ChunkRequest(BaseModel):
    """A chunk job request."""

    model_config = ConfigDict(extra="forbid")
    airport: str
    service_date: str = Field(
        description="YYYY-MM-DD, 'previous' (yesterday in `timezone`) or 'current' (today so far)"
    )
    timezone: str = Field(default="UTC", description="The airport's IANA zone, for 'previous'.")
    hours: list[int] | None = Field(default=None, min_length=1, max_length=25)
    expected_version: str | None = None
    force: bool = False
    fan_out: bool = Field(default=False, description="Plan hour jobs and invoke them async.")
    hours_per_job: int = Field(default=1, ge=1, le=24)
    variant: str = Field(
        default=DEFAULT_VARIANT, description="Which dispatch run of the day (docs/data-format.md)."
    )

    @field_validator("variant")
    @classmethod
    def _variant(cls, value: str) -> str:
        return check_variant(value)

    @field_validator("airport")
    @classmethod
    def _airport(cls, value: str) -> str:
        return check_airport(value)

    @field_validator("service_date")
    @classmethod
    def _date(cls, value: str) -> str:
        return value if value in ("previous", "current") else check_date(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Asia"
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    def concrete_date(self, now: dt.datetime) -> str:
        """The service date, 'previous' / 'current' resolved in the airport's zone."""
        if self.service_date not in ("previous", "current"):
            return self.service_date
        today = now.astimezone(ZoneInfo(self.timezone)).date()
        if self.service_date == "current":
            return today.isoformat()
        return (today - dt.timedelta(days=1)).isoformat()


def record_metrics(summary: dict[str, Any]) -> None:
    """A chunk job's metrics, from the counts its summary carries (``DaySummary``)."""
    # Duplicates are quarantined too (reason ``duplicate``), counted apart from the rest.
    quarantined: dict[str, int] = {}
    accepted = 0
    for counts in summary["counts"].values():
        accepted += counts["accepted"]
        reasons = {**counts["rejected"], DUPLICATE: counts["duplicates"]}
        for reason, n in reasons.items():
            quarantined[reason] = quarantined.get(reason, 0) + n
    read = accepted + sum(quarantined.values())
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=read)
    metrics.add_metric(name="RecordsAccepted", unit=MetricUnit.Count, value=accepted)
    metrics.add_metric(name="ChunksWritten", unit=MetricUnit.Count, value=summary["chunk_objects"])
    metrics.add_metric(
        name="ChunkBytesWritten", unit=MetricUnit.Bytes, value=summary["chunk_bytes"]
    )
    metrics.add_metric(name="ChunkJobDuration", unit=MetricUnit.Seconds, value=summary["seconds"])
    service = metrics.service
    for reason, n in sorted(quarantined.items()):
        if not n:
            continue
        # Its own dimension, so its own EMF document (Powertools' single_metric).
        dimensions = {"reason": reason, **({"service": str(service)} if service else {})}
        with single_metric(
            name="RecordsQuarantined",
            unit=MetricUnit.Count,
            value=n,
            namespace=metrics.namespace,
            default_dimensions=dimensions,
        ):
            pass


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Chunk a whole day, or the requested hours of it."""
    request = ChunkRequest.model_validate(event)
    service_date = request.concrete_date(dt.datetime.now(dt.UTC))
    logger.append_keys(airport=request.airport, service_date=service_date)
    config = SETTINGS.chunker_config
    if request.fan_out:
        if request.hours is not None:
            raise ValueError("fan_out plans the hours itself; do not give 'hours'")
        return fan_out(request, service_date, context.invoked_function_arn)
    if request.hours is None:
        summary = chunk_day(
            S3,
            SETTINGS.replay_bucket,
            request.airport,
            service_date,
            config,
            force=request.force,
            variant=request.variant,
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
            variant=request.variant,
        )
    result = summary.as_dict()
    logger.info("chunk job done", extra={"summary": result})
    record_metrics(result)
    return result
