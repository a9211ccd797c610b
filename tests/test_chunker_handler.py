"""The chunk job's Lambda handler driven by the sample events in events/."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from unittest.mock import ANY

import boto3
import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from chunker.format.keys import DayKeys
from tests.conftest import BUCKET
from tests.rawday import build_raw_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EVENTS = Path(__file__).parent.parent / "events"


class Context:
    """The parts of a Lambda context Powertools reads."""

    function_name = "dispatch-replay-chunker"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:chunker"
    aws_request_id = "req-1"


@pytest.fixture
def handler_module(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("REPLAY_BUCKET", BUCKET)
    monkeypatch.setenv("CHUNK_BUCKET_MS", "600000")
    monkeypatch.setenv("CHUNK_HISTOGRAM_BIN_MS", "600000")
    import chunker.batch.lambda_handler

    yield importlib.reload(
        chunker.batch.lambda_handler
    )  # module-level settings and client under the mock


def load_raw_day(s3: S3Client, airport: str = "XLHI") -> None:
    for key, body in build_raw_day(seed=4, hours=(6, 8), airport=airport).objects().items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def event(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((EVENTS / name).read_text())
    return loaded


def test_on_demand_day_then_hours_then_force(handler_module: ModuleType, s3: S3Client) -> None:
    load_raw_day(s3)
    day = handler_module.handler(event("chunker-on-demand-day.json"), Context())
    assert day["published"] and day["hours_built"] == list(range(24))
    assert day["counts"]["positions"]["accepted"] > 0
    hours = handler_module.handler(event("chunker-on-demand-hours.json"), Context())
    assert hours["hours_built"] == [6, 7] and hours["version"] == day["version"]
    forced = handler_module.handler(event("chunker-force-rebuild.json"), Context())
    assert forced["version"] == day["version"] and not forced["already_published"]


def test_a_variant_of_the_day_publishes_beside_it(handler_module: ModuleType, s3: S3Client) -> None:
    """``variant`` in the event chunks that dispatch run of the day (its raw files under
    ``variants/{name}/``) and publishes its own pointer; the default day is untouched."""
    request = event("chunker-on-demand-variant.json")
    keys = DayKeys("XLHI", "2026-03-14")
    prefix = DayKeys("XLHI", "2026-03-14", str(request["variant"])).raw_prefix
    for key, body in build_raw_day(seed=4, hours=(6, 8), airport="XLHI").objects().items():
        s3.put_object(Bucket=BUCKET, Key=prefix + key[len(keys.raw_prefix) :], Body=body)
    summary = handler_module.handler(request, Context())
    assert summary["published"] and summary["variant"] == request["variant"]
    pointers = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="published/")["Contents"]
    ]
    assert pointers == [f"published/XLHI/2026-03-14/variants/{request['variant']}.json"]


def test_scheduled_previous_day_resolves_in_airport_time(handler_module: ModuleType) -> None:
    request = handler_module.ChunkRequest.model_validate(
        event("chunker-scheduled-previous-day.json")
    )
    # 2026-03-15 01:30 in Shanghai is still 2026-03-14 in UTC.
    now = dt.datetime(2026, 3, 14, 17, 30, tzinfo=dt.UTC)
    assert request.concrete_date(now) == "2026-03-14"
    hourly = handler_module.ChunkRequest.model_validate(event("chunker-hourly-current-day.json"))
    assert hourly.concrete_date(now) == "2026-03-15" and hourly.fan_out


@pytest.mark.parametrize(
    "bad",
    [
        {"airport": "xlhi", "service_date": "2026-03-14"},
        {"airport": "XLHI", "service_date": "2026-02-30"},
        {"airport": "../X", "service_date": "2026-03-14"},
        {"airport": "XLHI", "service_date": "previous", "timezone": "Mars/Olympus"},
        {"airport": "XLHI", "service_date": "previous", "timezone": "Asia"},  # a directory
        {"airport": "XLHI", "service_date": "previous", "timezone": "A" * 300},
        {"airport": "XLHI", "service_date": "2026-03-14", "hours": []},
        {"airport": "XLHI", "service_date": "2026-03-14", "surprise": 1},
        {"airport": "XLHI", "service_date": "2026-03-14", "variant": "Nearest"},
        {"airport": "XLHI", "service_date": "2026-03-14", "variant": "../x"},
    ],
)
def test_bad_events_are_rejected(handler_module: ModuleType, bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        handler_module.handler(bad, Context())


def test_fan_out_plans_hour_jobs_that_together_publish_the_day(
    handler_module: ModuleType, s3: S3Client
) -> None:
    load_raw_day(s3)
    client = boto3.client("lambda", region_name="us-east-1")
    handler_module._lambda_client = client
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(dict(params))
    )
    request = {**event("chunker-fan-out-previous-day.json"), "service_date": "2026-03-14"}
    expected_jobs = 12  # 24 hours, 2 per job
    with Stubber(client) as stub:
        for _ in range(expected_jobs):
            stub.add_response(
                "invoke",
                {"StatusCode": 202},
                {
                    "FunctionName": Context.invoked_function_arn,
                    "InvocationType": "Event",
                    "Payload": ANY,
                },
            )
        plan = handler_module.handler(request, Context())
        stub.assert_no_pending_responses()
    assert plan["jobs"] == expected_jobs and plan["already_built"] is False
    jobs = [json.loads(params["Payload"]) for params in sent]
    assert [job["hours"] for job in jobs] == [[h, h + 1] for h in range(0, 24, 2)]
    assert all(job["expected_version"] == plan["version"] for job in jobs)
    # What Lambda does next: run every job (here in turn); the one completing the day publishes.
    results = [handler_module.handler(job, Context()) for job in jobs]
    assert [r["published"] for r in results] == [False] * 11 + [True]
    assert all(r["version"] == plan["version"] for r in results)
    with Stubber(client):  # already built: nothing is invoked (no responses queued)
        again = handler_module.handler(request, Context())
    assert again == {"version": plan["version"], "jobs": 0, "already_built": True}
