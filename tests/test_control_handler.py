"""The control Lambda: every HTTP API v2 sample event in events/ through the Mangum handler."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from functions.app import metrics
from functions.app.control.actions import SessionService
from functions.app.control.schema import SessionCreate
from functions.app.dependencies import Services
from functions.app.domain.sessions import Session
from functions.app.settings import get_settings
from functions.aws_lambda import handlers
from tests.conftest import BUCKET
from tests.streaming import SECRET, TABLE, build_services, publish_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EVENTS = Path(__file__).parent.parent / "events"
SESSION_ID = "s-EventSampleSession000001"
OWNER = "user-alice-0001"
MEMBER = "user-carol-0003"

# Each control/history event file and the status it must produce.
EXPECTED_STATUS = {
    "control-create-session.json": 201,
    "control-get-session.json": 200,
    "control-play.json": 200,
    "control-pause.json": 200,
    "control-seek.json": 200,
    "control-set-speed.json": 200,
    "control-set-range.json": 200,
    "control-set-filters.json": 200,
    "control-set-loop.json": 200,
    "control-step.json": 200,
    "control-stale-version.json": 409,
    "control-speed-out-of-bounds.json": 422,
    "control-malformed-json.json": 400,
    "control-no-identity.json": 401,
    "control-other-user.json": 404,
    "control-share.json": 201,
    "control-join.json": 200,
    "control-presence.json": 200,
    "control-stream-token.json": 200,
    "control-delete-session.json": 204,
    "control-revoke-shares.json": 204,
    "control-list-members.json": 200,
    "control-remove-member.json": 204,
    "legacy-control-jump.json": 200,
    "legacy-set-params.json": 200,
    "history-airports.json": 200,
    "history-manifest.json": 200,
    "history-state.json": 200,
    "history-unknown-airport.json": 404,
}


@dataclasses.dataclass
class LambdaContext:
    """What the Lambda runtime passes as ``context`` (the fields Powertools reads)."""

    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    function_name: str = "dispatch-replay-control"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-west-1:123456789012:function:dispatch-replay-control"
    )
    log_group_name: str = "/aws/lambda/dispatch-replay-control"
    log_stream_name: str = "2026/03/14/[$LATEST]abc"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def published(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """XLHI published on moto, the handler configured from the environment, a session."""
    publish_day(s3, airport="XLHI", seed=5)
    services = build_services(s3)
    for name, value in {
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "AUTH_MODE": "jwt",
        "STREAM_TOKEN_SECRET": SECRET,
        "POWERTOOLS_METRICS_NAMESPACE": "DispatchReplayTest",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    monkeypatch.setattr(handlers, "_adapter", None)
    services.sessions.create(event_sample_session(services))
    yield services
    get_settings.cache_clear()


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def invoke(name: str) -> dict[str, Any]:
    response: dict[str, Any] = handlers.control_handler(load(name), LambdaContext())
    return response


def test_every_http_event_file_is_covered() -> None:
    on_disk = {
        p.name
        for p in EVENTS.glob("*.json")
        if p.name.startswith(("control-", "legacy-", "history-"))
    }
    assert on_disk == set(EXPECTED_STATUS)


@pytest.mark.parametrize("name", sorted(EXPECTED_STATUS))
def test_event_file_drives_the_handler(published: Services, name: str) -> None:
    response = invoke(name)
    assert response["statusCode"] == EXPECTED_STATUS[name], response.get("body")
    headers = {k.lower(): v for k, v in response["headers"].items()}
    assert response["isBase64Encoded"] is False
    if response["statusCode"] >= 400:
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(response["body"])["status"] == response["statusCode"]
    elif response["statusCode"] != 204:
        assert headers["content-type"].startswith("application/json")
        json.loads(response["body"])
    assert headers["x-request-id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def event_sample_session(services: Services) -> Session:
    """The session the HTTP event files address (not stored): Alice's, over two hours of
    the published day, id ``SESSION_ID``; Carol joined earlier (control-remove-member.json
    removes her)."""
    window = {"start": "2026-03-14T00:30:00+08:00", "end": "2026-03-14T02:30:00+08:00"}
    sample = SessionService(services).create(
        OWNER, SessionCreate.model_validate({"airport": "XLHI", **window})
    )
    return dataclasses.replace(sample, session_id=SESSION_ID, members=frozenset({MEMBER}))


def test_control_events_change_the_stored_session(published: Services) -> None:
    assert invoke("control-set-speed.json")["statusCode"] == 200
    assert invoke("control-seek.json")["statusCode"] == 200
    stored = published.sessions.get(SESSION_ID)
    assert stored is not None and stored.clock.speed == 64 and stored.version == 3
    assert invoke("control-stale-version.json")["statusCode"] == 409
    assert invoke("control-speed-out-of-bounds.json")["statusCode"] == 422
    assert published.sessions.get(SESSION_ID) == stored  # refused requests change nothing
    assert invoke("control-delete-session.json")["statusCode"] == 204
    assert published.sessions.get(SESSION_ID) is None


def test_the_joined_user_can_then_control(published: Services) -> None:
    assert invoke("control-join.json")["statusCode"] == 200
    event = load("control-play.json")
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = "user-bob-0002"
    response = handlers.control_handler(event, LambdaContext())
    assert response["statusCode"] == 200


def test_metrics_and_correlation_ids_are_emitted(
    published: Services, capfd: pytest.CaptureFixture[str]
) -> None:
    metrics.flush()  # the fixture's own session, created outside any invocation
    capfd.readouterr()
    log_stream = io.StringIO()
    log_handler = handlers.logger.registered_handler
    assert isinstance(log_handler, logging.StreamHandler)
    previous = log_handler.setStream(log_stream)
    try:
        invoke("control-create-session.json")
        invoke("control-play.json")
        invoke("control-stale-version.json")
    finally:
        log_handler.setStream(previous)
    out = capfd.readouterr().out.splitlines() + log_stream.getvalue().splitlines()
    lines = [json.loads(line) for line in out if line.startswith("{")]
    emitted: dict[str, float] = {}
    for line in lines:
        if "_aws" in line:
            for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                emitted[metric["Name"]] = emitted.get(metric["Name"], 0) + sum(
                    line[metric["Name"]]
                    if isinstance(line[metric["Name"]], list)
                    else [line[metric["Name"]]]
                )
    assert emitted == {"SessionsCreated": 1, "ControlActions": 1, "VersionConflicts": 1}
    logs = [line for line in lines if line.get("message") == "request"]
    assert {line["correlation_id"] for line in logs} == {
        "req-control-create-session",
        "req-control-play",
        "req-control-stale-version",
    }
    assert all(line["path"] != "" for line in logs)
    played = next(line for line in logs if line["correlation_id"] == "req-control-play")
    assert played["session_id"] == SESSION_ID


def test_importing_the_handlers_needs_no_configuration() -> None:
    import subprocess
    import sys

    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import functions.aws_lambda.handlers as h; print(callable(h.control_handler))",
        ],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin"},
        check=False,
        timeout=60,
    )
    assert probe.stdout.strip() == "True", probe.stderr


def test_the_stream_token_key_comes_from_secrets_manager(
    published: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    key = "k" * 48
    arn = secrets.create_secret(Name="dispatch-replay/stream-token", SecretString=key)["ARN"]
    monkeypatch.delenv("STREAM_TOKEN_SECRET")
    monkeypatch.setenv("STREAM_TOKEN_SECRET_ARN", arn)
    get_settings.cache_clear()
    assert get_settings().stream_token_secret.get_secret_value() == key
    assert key not in repr(get_settings())  # never printed
    assert invoke("control-get-session.json")["statusCode"] == 200


def test_revoking_shares_refuses_the_sample_join_and_removal_takes_effect(
    published: Services,
) -> None:
    assert invoke("control-revoke-shares.json")["statusCode"] == 204
    refused = invoke("control-join.json")
    assert refused["statusCode"] == 403, refused["body"]
    assert json.loads(refused["body"])["detail"] == "share token revoked"
    listed = json.loads(invoke("control-list-members.json")["body"])
    assert listed["members"] == [MEMBER]
    assert invoke("control-remove-member.json")["statusCode"] == 204
    stored = published.sessions.get(SESSION_ID)
    assert stored is not None and stored.members == frozenset()
    assert invoke("control-remove-member.json")["statusCode"] == 404
