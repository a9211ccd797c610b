"""The streaming bridge end to end: the exec wrapper starts it against a Runtime API
emulator that records when every chunk arrives."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from chunker.batch.run import chunk_day
from chunker.format.read import ChunkReader
from functions.app.control.actions import SessionService
from functions.app.control.schema import SessionCreate
from functions.app.dependencies import Services
from functions.app.domain.session_store import SessionStore
from functions.local.stack import (
    LOCAL_CREDENTIALS,
    MotoServer,
    ensure_table,
    moto_server,
    stop_process,
)
from tests.emf import emitted
from tests.jwt_issuer import AUDIENCE, serve_issuer
from tests.rawday import build_raw_day
from tests.runtime_emulator import Recorded, RuntimeApiEmulator
from tests.sse_client import Event, SSEParser
from tests.streaming import CONFIG, SECRET, settings

pytestmark = pytest.mark.end_to_end

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "events"
WRAPPER = ROOT / "functions" / "aws_lambda" / "bridge" / "exec-wrapper"
BUCKET, TABLE = "bridge-test", "bridge-sessions"
SESSION_ID = "s-EventSampleSession000001"
OWNER = "user-alice-0001"


def load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@dataclasses.dataclass
class Published:
    server: MotoServer
    services: Services


@pytest.fixture(scope="module")
def published() -> Iterator[Published]:
    """A moto server with XLHI published and the sample session playing at 8x."""
    with moto_server() as server:
        options: dict[str, Any] = {
            "endpoint_url": server.endpoint,
            "region_name": LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        s3 = boto3.client("s3", **options)
        dynamodb = boto3.client("dynamodb", **options)
        s3.create_bucket(Bucket=BUCKET)
        for key, body in build_raw_day(seed=5, hours=(0, 3), airport="XLHI").objects().items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        chunk_day(s3, BUCKET, "XLHI", "2026-03-14", CONFIG)
        ensure_table(dynamodb, TABLE)
        services = Services(
            settings=settings(replay_bucket=BUCKET, replay_table=TABLE),
            sessions=SessionStore(dynamodb, TABLE),
            chunks=ChunkReader(s3, BUCKET),
        )
        window = {"start": "2026-03-14T00:30:00+08:00", "end": "2026-03-14T02:30:00+08:00"}
        request = SessionCreate.model_validate(
            {"airport": "XLHI", "speed": 8, "state": "playing", **window}
        )
        session = SessionService(services).create(OWNER, request)
        services.sessions.create(dataclasses.replace(session, session_id=SESSION_ID))
        yield Published(server, services)


@pytest.fixture
def aws(published: Published) -> Iterator[MotoServer]:
    """The published moto server, with the sample session playing from its start again."""
    store = published.services.sessions
    current = store.get(SESSION_ID)
    assert current is not None
    now = time.time_ns() // 1_000_000
    clock = dataclasses.replace(
        current.clock, state="playing", anchor_position=current.clock.range_start, anchor_wall=now
    )
    store.replace(current.changed(clock=clock, presence_until=now + 120_000), current.version)
    yield published.server


@contextmanager
def bridge(
    emulator: RuntimeApiEmulator,
    log: Path,
    aws: MotoServer | None = None,
    app: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """The exec wrapper, run the way Lambda runs it: with the managed bootstrap as "$@"."""
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": emulator.address,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "BRIDGE_PYTHON": sys.executable,
        "AWS_LAMBDA_FUNCTION_NAME": "dispatch-replay-stream",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "STREAM_TOKEN_SECRET": SECRET,
        "STREAM_POLL_MS": "100",
        **(aws.environment if aws else LOCAL_CREDENTIALS),
        **({"BRIDGE_APP": app} if app else {}),
        **(extra_env or {}),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(WRAPPER), "/var/runtime/bootstrap"], env=env, stdout=sink, stderr=sink
        )
    try:
        yield process
    finally:
        stop_process(process)


def sse_events(body: bytes) -> list[Event]:
    parser = SSEParser()
    return list(parser.feed(body))


def assert_streaming_request(recorded: Recorded) -> None:
    headers = recorded.headers
    assert headers["lambda-runtime-function-response-mode"] == "streaming"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["content-type"] == "application/vnd.awslambda.http-integration-response"
    assert "Lambda-Runtime-Function-Error-Type" in headers["trailer"]


def test_events_stream_out_while_the_invocation_runs(
    aws: MotoServer, published: Published, tmp_path: Path
) -> None:
    with RuntimeApiEmulator() as emulator, bridge(emulator, tmp_path / "bridge.log", aws):
        recorded = emulator.invoke(load("stream-open.json"), timeout_s=8)
        # Causality, not timing: once the first frame has reached the Runtime API, pause the
        # session. The pause can only show up later in the same response if the response
        # was being delivered while the handler still ran.
        deadline = time.monotonic() + 20
        while not any(
            e.event == "vehicle_update"
            for e in sse_events(b"".join(c for _, c in recorded.chunks[1:]))
        ):
            assert not recorded.done.is_set(), "the response ended before its first frame"
            assert time.monotonic() < deadline, "no frame arrived"
            time.sleep(0.01)
        chunks_before_pause = len(recorded.chunks)
        store = published.services.sessions
        current = store.get(SESSION_ID)
        assert current is not None
        paused = current.clock.pause(time.time_ns() // 1_000_000)
        store.replace(current.changed(clock=paused), current.version)
        recorded.wait()
    assert_streaming_request(recorded)
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 200, body[:500]
    assert prelude["headers"]["content-type"].startswith("text/event-stream")
    assert prelude["headers"]["cache-control"] == "no-cache"
    assert prelude["headers"]["x-accel-buffering"] == "no"
    assert recorded.chunks[0][1].endswith(b"\0" * 8), "the prelude is its own first chunk"
    assert recorded.trailers == {}, "a clean end has no error trailers"

    early = sse_events(b"".join(c for _, c in recorded.chunks[1:chunks_before_pause]))
    assert early[0].event == "snapshot" and "vehicle_update" in [e.event for e in early]
    assert all(e.event != "playback" or e.json()["state"] == "playing" for e in early)
    events = sse_events(body)
    names = [e.event for e in events]
    assert any(e.event == "playback" and e.json()["state"] == "paused" for e in events)
    # It ended itself before the invocation deadline, telling the client to reconnect.
    assert names[-1] == "reconnect" and events[-1].json()["reason"] == "duration_limit"
    # The invocation's metrics reached stdout (CloudWatch's EMF input) before it ended.
    metrics = emitted((tmp_path / "bridge.log").read_text())
    ended = [dims["reason"] for name, dims, _ in metrics if name == "StreamsEnded"]
    assert ended == ["duration_limit"]
    assert sum(value for name, _, value in metrics if name == "BytesSent") == len(body)
    assert sum(value for name, _, value in metrics if name == "StreamsOpened") == 1


def test_one_warm_process_serves_many_invocations_and_reports_errors_as_http(
    aws: MotoServer, tmp_path: Path
) -> None:
    with RuntimeApiEmulator() as emulator, bridge(emulator, tmp_path / "bridge.log", aws) as proc:
        bad_token = emulator.invoke(load("stream-bad-token.json")).wait()
        unusable = emulator.invoke({"hello": "world"}).wait()
        legacy = emulator.invoke(load("stream-legacy.json")).wait()
        streamed = emulator.invoke(load("stream-resume.json"), timeout_s=5).wait()
        assert proc.poll() is None, "the same process is still serving"
    for recorded, status, slug in (
        (bad_token, 401, "invalid-stream-token"),
        (unusable, 400, "bad-event"),
        (legacy, 401, "unauthenticated"),  # a Function URL carries no JWT claims
    ):
        assert_streaming_request(recorded)
        prelude, body = recorded.split()
        assert prelude["statusCode"] == status
        assert prelude["headers"]["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["status"] == status and problem["type"].endswith(slug)
        assert recorded.trailers == {}
    prelude, body = streamed.split()
    assert prelude["statusCode"] == 200
    resumed = sse_events(body)
    assert resumed and all(e.event != "error" for e in resumed)
    assert resumed[-1].event == "reconnect"


def test_the_legacy_stream_with_a_bearer_jwt_streams_through_the_function_url(
    aws: MotoServer, published: Published, tmp_path: Path
) -> None:
    """No authorizer on a Function URL: the app verifies the JWT (issuer on 127.0.0.1)."""
    with serve_issuer() as issuer:
        legacy = load("stream-legacy.json")
        legacy["headers"]["authorization"] = f"Bearer {issuer.token(sub='user-carol-0003')}"
        jwt_env = {"JWT_ISSUER": issuer.url, "JWT_AUDIENCE": AUDIENCE, "AUTH_MODE": "jwt"}
        with (
            RuntimeApiEmulator() as emulator,
            bridge(emulator, tmp_path / "bridge.log", aws, extra_env=jwt_env),
        ):
            recorded = emulator.invoke(legacy, timeout_s=5).wait()
    assert_streaming_request(recorded)
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 200, body[:500]
    events = sse_events(body)
    assert [e.event for e in events[:2]] == ["session", "snapshot"]
    stored = published.services.sessions.get(events[0].json()["session_id"])
    assert stored is not None and stored.owner == "user-carol-0003"


def test_an_error_after_the_first_byte_goes_into_the_trailers(tmp_path: Path) -> None:
    with (
        RuntimeApiEmulator() as emulator,
        bridge(emulator, tmp_path / "bridge.log", app="tests.bridge_apps:fails_midstream"),
    ):
        recorded = emulator.invoke(load("stream-open.json")).wait()
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 200 and body == b"data: one\n\n"
    assert prelude["cookies"] == ["a=1"]
    assert recorded.trailers["lambda-runtime-function-error-type"] == "Runtime.RuntimeError"
    error = json.loads(base64.b64decode(recorded.trailers["lambda-runtime-function-error-body"]))
    assert error["errorMessage"] == "the chunk store exploded"


def test_an_error_before_the_first_byte_is_an_http_500(tmp_path: Path) -> None:
    with (
        RuntimeApiEmulator() as emulator,
        bridge(emulator, tmp_path / "bridge.log", app="tests.bridge_apps:fails_before_start"),
    ):
        recorded = emulator.invoke(load("stream-open.json")).wait()
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 500
    assert json.loads(body)["type"].endswith("internal-error")
    assert recorded.trailers == {}


def test_the_stream_ends_cleanly_before_the_deadline_and_the_app_hears_the_client_left(
    tmp_path: Path,
) -> None:
    log = tmp_path / "bridge.log"
    with RuntimeApiEmulator() as emulator, bridge(emulator, log, app="tests.bridge_apps:endless"):
        recorded = emulator.invoke(load("stream-open.json"), timeout_s=2.5).wait()
        deadline = time.monotonic() + 10
        while "saw http.disconnect" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    assert recorded.ended_at is not None
    assert recorded.ended_at < recorded.handed_out_at + 2.5
    assert recorded.trailers == {}
    _, body = recorded.split()
    assert body.count(b": tick") >= 2  # 100 ms apart; fewer than usual on a loaded machine


def test_a_response_not_started_by_the_deadline_is_a_503_to_retry(tmp_path: Path) -> None:
    """An app still preparing its answer 1 s before the deadline (S3 and DynamoDB slow)
    is told the client left, and the client gets a problem it can act on, not an empty
    body."""
    log = tmp_path / "bridge.log"
    with (
        RuntimeApiEmulator() as emulator,
        bridge(emulator, log, app="tests.bridge_apps:never_starts"),
    ):
        recorded = emulator.invoke(load("stream-open.json"), timeout_s=2.0).wait()
    assert recorded.ended_at is not None and recorded.ended_at < recorded.handed_out_at + 2.0
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 503
    assert prelude["headers"]["content-type"] == "application/problem+json"
    assert prelude["headers"]["retry-after"] == "1"
    assert json.loads(body)["type"].endswith("stream-not-started")
    assert recorded.trailers == {}
    assert "saw http.disconnect before starting" in log.read_text()


def test_an_app_that_cannot_start_is_an_init_error(tmp_path: Path) -> None:
    with (
        RuntimeApiEmulator() as emulator,
        bridge(
            emulator, tmp_path / "bridge.log", app="tests.bridge_apps:does_not_exist"
        ) as process,
    ):
        assert process.wait(timeout=30) == 1
        assert emulator.init_errors[0]["errorType"] == "Runtime.AttributeError"
