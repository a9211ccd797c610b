"""Fault injection at the AWS client edge: what the stream and the control API do when S3
or DynamoDB fail, throttle or slow down (see docs/reliability.md for the rules).

Faults are answered by botocore's ``before-send`` hook (``tests/faults.py``), so the
production clients' retry policy, parsing and error mapping run unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import zstandard
from fastapi.testclient import TestClient

from chunker.format.encoding import ChunkEntry
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from functions.app.application import create_app
from tests import ground_truth
from tests.conftest import BUCKET
from tests.faults import Fault, FaultInjector, url_names
from tests.streaming import (
    CONFIG,
    ClientState,
    Server,
    StreamReader,
    build_services,
    by_time,
    expected_discrete,
    publish_tiny_day,
    read_with_cuts,
    serve,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEYS = DayKeys("XTST", "2026-03-14")
# Attempts per call, first one included: botocore's ``max_attempts`` counts retries
# (chunker.format.s3.s3_client: 5, functions.app.dependencies.dynamodb_client: 4).
S3_ATTEMPTS = 6
DYNAMODB_ATTEMPTS = 5


@pytest.fixture
def day(s3: S3Client) -> dict[str, bytes]:
    return publish_tiny_day(s3)


@pytest.fixture
def truth(day: dict[str, bytes]) -> Any:
    return ground_truth.valid_rows(day, KEYS)


@pytest.fixture
def chunks(s3: S3Client, day: Any) -> list[ChunkEntry]:
    return ChunkReader(s3, BUCKET).published(KEYS.airport, KEYS.service_date).manifest.chunks


@pytest.fixture
def server(s3: S3Client, day: Any) -> Iterator[Server]:
    # Long enough for the production retry policy to run its course in these tests.
    yield from serve(s3, stream_chunk_wait_s=40)


def faults_on(server: Server) -> FaultInjector:
    sessions = server.services.sessions
    return FaultInjector([server.services.chunks.s3, sessions.dynamodb, sessions.polls])


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{slug}") and body["status"] == status
    return body


# --- S3 at stream start ------------------------------------------------------------------


def test_s3_throttling_at_stream_start_is_retried_unseen(
    server: Server, truth: Any, chunks: list[ChunkEntry]
) -> None:
    """SlowDown and 500s fewer than the retry budget: backoff and retry; the client sees
    a normal stream with the true state."""
    rows, service_day = truth
    at = chunks[3].start + 5_000
    session = server.new_session(service_day.start_ms, service_day.end_ms, position=at)
    faults = faults_on(server)
    faults.add(Fault("s3.GetObject", 503, "SlowDown", times=2, when=url_names(chunks[3].key)))
    faults.add(Fault("s3.GetObject", 500, "InternalError", times=2, when=url_names(".json")))
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        events = reader.read_until(lambda e: e.event == "playback")
        reader.close()
    assert faults.injected["s3.GetObject"] == 4
    state = ClientState()
    state.apply(events[0])
    assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, at)


def test_s3_outage_at_stream_start_is_503_with_retry_after_and_recovers(
    server: Server, truth: Any, chunks: list[ChunkEntry]
) -> None:
    """Every attempt fails: 503 problem+json with Retry-After before any 200 (EventSource
    would otherwise give up silently); nothing bad is cached: once S3 is back, it works."""
    _, service_day = truth
    session = server.new_session(
        service_day.start_ms, service_day.end_ms, position=chunks[2].start + 1_000
    )
    faults = faults_on(server)
    faults.add(Fault("s3.GetObject", 500, "InternalError", when=url_names(chunks[2].key)))
    with httpx.Client() as client:
        response = client.get(server.stream_url(session))
        body = problem(response, 503, "dependency-unavailable")
        assert response.headers["retry-after"] == "1"
        assert "InternalError" not in body["detail"]  # no internals on the wire
        assert faults.injected["s3.GetObject"] == S3_ATTEMPTS  # retried with backoff first
        faults.clear()
        reader = StreamReader(client, server.stream_url(session))
        assert reader.read_until(lambda e: e.event == "snapshot")[0].event == "snapshot"
        reader.close()


def test_s3_slower_than_the_wait_bound_is_503_then_the_load_lands(
    s3: S3Client, day: Any, truth: Any, chunks: list[ChunkEntry]
) -> None:
    """A GET slower than STREAM_CHUNK_WAIT_S: the stream does not hang; it answers 503
    (chunks-unavailable); the load goes on, so a retry finds the chunk without a GET."""
    _, service_day = truth
    for server in serve(s3, stream_chunk_wait_s=0.3):
        session = server.new_session(
            service_day.start_ms, service_day.end_ms, position=chunks[1].start
        )
        faults = faults_on(server)
        faults.add(Fault("s3.GetObject", delay_s=1.5, times=1, when=url_names(chunks[1].key)))
        with httpx.Client() as client:
            response = client.get(server.stream_url(session))
            problem(response, 503, "chunks-unavailable")
            assert response.headers["retry-after"] == "2"
            source = server.app.state.stream_runtime.source
            gets_before = faults.requests["s3.GetObject"]
            reader = wait_for_stream(client, server.stream_url(session))
            reader.read_until(lambda e: e.event == "snapshot")
            reader.close()
        assert source.loads_started == 1, "the slow load was shared, not repeated"
        assert faults.requests["s3.GetObject"] == gets_before


def wait_for_stream(client: httpx.Client, url: str, attempts: int = 50) -> StreamReader:
    """Open ``url`` until a 200, as the dashboard does; each 503 took the wait bound."""
    for _ in range(attempts):
        try:
            return StreamReader(client, url)
        except AssertionError as refused:
            assert "503" in str(refused), refused
    raise AssertionError("the stream never came back")


# --- S3 mid-stream -------------------------------------------------------------------------


def test_s3_outage_mid_stream_sends_error_then_resumes_exactly(
    server: Server, truth: Any, chunks: list[ChunkEntry]
) -> None:
    """The next chunk cannot be read (prefetch and load fail after retries): one `error`
    event `chunk_unavailable`, whose id is the last delivered position, and the stream
    ends. The client reconnects with that id once S3 is back: nothing lost or repeated."""
    rows, service_day = truth
    start = chunks[1].end - 20_000
    # Slow enough that the outage (the retries' backoff) stays within the resume gap. The
    # clock leaves ``start`` 2 s from now (clamped there until then), so a stream slow to
    # open on a loaded machine still opens before chunk 2 and meets the outage mid-stream.
    session = server.new_session(
        start,
        service_day.end_ms,
        speed=8.0,
        state="playing",
        anchor_wall=server.services.now_ms() + 2_000,
    )
    faults = faults_on(server)
    faults.add(Fault("s3.GetObject", 503, "SlowDown", when=url_names(chunks[2].key)))
    state = ClientState()
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        events = reader.read_to_end(timeout_s=60)
        for event in events:
            state.apply(event)
        error = events[-1]
        assert error.event == "error", [e.event for e in events]
        data = error.json()
        assert data["code"] == "chunk_unavailable" and data["retry_ms"] > 0
        assert "SlowDown" not in data["message"] and "chunks/" not in data["message"]  # #15
        assert state.t is not None and state.t < chunks[2].start
        assert faults.injected["s3.GetObject"] >= S3_ATTEMPTS
        faults.clear()
        _, stats = read_with_cuts(
            client, lambda: server.stream_url(session), state, [(6, 1.0)], error.id
        )
    assert stats.errors == []
    assert len(state.snapshots) == 1  # resumed, no resync
    assert state.t is not None and state.t > chunks[2].start
    assert by_time(state.discrete) == expected_discrete(rows, state.snapshots[0], state.t)


@pytest.mark.parametrize("damage", ["missing", "not-zstd", "not-a-chunk"])
def test_a_damaged_chunk_stops_the_stream_with_chunk_damaged(
    server: Server, s3: S3Client, truth: Any, chunks: list[ChunkEntry], damage: str
) -> None:
    """Stop rule: a chunk of the published version that is missing or corrupt is never
    papered over. Mid-stream: `error` `chunk_damaged` (the client keeps what it had); at
    stream start and on history queries: 503 `chunk-damaged`, Retry-After 30 (it stays
    damaged until the day is re-chunked). Nothing damaged is cached."""
    _, service_day = truth
    key = chunks[2].key
    if damage == "missing":
        s3.delete_object(Bucket=BUCKET, Key=key)
    elif damage == "not-zstd":
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"\x00garbage" * 100)
    else:  # valid zstd JSON of the right format, wrong structure
        body = b'{"format":"dispatch-replay.chunk","format_version":1,"keyframe":{},"ticks":[1]}'
        s3.put_object(Bucket=BUCKET, Key=key, Body=zstandard.compress(body))
    # 15 s before the damaged chunk is 0.23 s at 64x: the clock leaves its start 2 s from
    # now, so a stream slow to open still opens before the chunk (mid-stream, not at start).
    playing = server.new_session(
        chunks[2].start - 15_000,
        service_day.end_ms,
        speed=64.0,
        state="playing",
        anchor_wall=server.services.now_ms() + 2_000,
    )
    paused = server.new_session(
        service_day.start_ms, service_day.end_ms, position=chunks[2].start + 60_000
    )
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(playing))
        events = reader.read_to_end(timeout_s=60)
        assert events[0].event == "snapshot" and events[-1].event == "error"
        data = events[-1].json()
        assert data["code"] == "chunk_damaged" and key not in data["message"]  # logged only
        response = client.get(server.stream_url(paused))
        body = problem(response, 503, "chunk-damaged")
        assert response.headers["retry-after"] == "30" and key in body["detail"]
        state = client.get(
            f"{server.url}/api/replay/airports/XTST/state",
            params={"t": chunks[2].start + 1},
            headers={"X-Replay-User": "alice"},
        )
        problem(state, 503, "chunk-damaged")
    assert server.services.chunks.chunks.get(key) is None


# --- DynamoDB ------------------------------------------------------------------------------


def test_dynamodb_throttling_while_polling_keeps_frames_flowing(server: Server, truth: Any) -> None:
    """Session polls throttled: the stream keeps playing on the last known session, the
    poller backs off (capped; each poll is one attempt, the poller being its own retry
    loop), and a control change made while throttled reaches the stream once polls succeed
    again."""
    _, service_day = truth
    session = server.new_session(
        service_day.start_ms, service_day.end_ms, speed=16.0, state="playing"
    )
    faults = faults_on(server)
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        reader.read_until(lambda e: e.event == "vehicle_update")
        throttled = faults.add(
            Fault("dynamodb.BatchGetItem", 400, "ProvisionedThroughputExceededException")
        )
        watchers = server.app.state.stream_runtime.watchers
        mark = len(reader.events)
        frames_while_throttled = reader.read_until(
            lambda e: (
                e.event == "vehicle_update"
                and throttled.hits >= 2
                and watchers._watches[session.session_id].failures >= 2
            ),
            since=mark,
            timeout_s=60,
        )[mark:]
        assert sum(e.event == "vehicle_update" for e in frames_while_throttled) >= 2
        # A pause written while polls still fail for a while.
        now = server.services.now_ms()
        faults.clear()
        stored = server.services.sessions.get(session.session_id)
        assert stored is not None
        faults.add(Fault("dynamodb.BatchGetItem", 400, "ThrottlingException", times=2))
        server.services.sessions.replace(
            stored.changed(clock=stored.clock.pause(now), updated_at=now), stored.version
        )
        mark = len(reader.events)
        events = reader.read_until(lambda e: e.event == "playback", since=mark, timeout_s=30)
        reader.close()
    assert events[-1].json()["state"] == "paused"
    assert not any(e.event == "error" for e in events)


@pytest.fixture
def api(s3: S3Client, day: Any) -> Iterator[tuple[TestClient, FaultInjector]]:
    services = build_services(s3)
    faults = FaultInjector([services.chunks.s3, services.sessions.dynamodb])
    with TestClient(create_app(services), headers={"X-Replay-User": "alice"}) as client:
        yield client, faults


def test_dynamodb_throttling_on_control_writes(
    api: tuple[TestClient, FaultInjector], truth: Any
) -> None:
    """Throttled writes: retried unseen while the retry budget lasts; beyond it, 503
    problem+json with Retry-After, and the stored session is exactly as before (the
    conditional write either happened whole or not at all); the retry then succeeds."""
    client, faults = api
    _, service_day = truth
    created = client.post(
        "/api/replay/sessions",
        json={"airport": "XTST", "start": service_day.start_ms, "end": service_day.end_ms},
    )
    assert created.status_code == 201, created.text
    session = created.json()
    control = f"/api/replay/sessions/{session['session_id']}/control"
    faults.add(Fault("dynamodb.PutItem", 400, "ThrottlingException", times=2))
    faults.add(Fault("dynamodb.UpdateItem", 400, "ThrottlingException", times=2))
    played = client.post(control, json={"action": "play"})
    assert played.status_code == 200 and played.json()["version"] == 2
    faults.clear()
    faults.add(Fault("dynamodb.PutItem", 400, "ProvisionedThroughputExceededException"))
    faults.add(Fault("dynamodb.UpdateItem", 400, "ProvisionedThroughputExceededException"))
    refused = client.post(control, json={"action": "pause", "command_id": "tab-1"})
    problem(refused, 503, "dependency-unavailable")
    assert refused.headers["retry-after"] == "1"
    faults.clear()
    stored = client.get(f"/api/replay/sessions/{session['session_id']}").json()
    assert stored["version"] == 2 and stored["clock"]["state"] == "playing"
    retried = client.post(control, json={"action": "pause", "command_id": "tab-1"})
    assert retried.status_code == 200 and retried.json()["version"] == 3
    assert retried.json()["clock"]["state"] == "paused"


def test_dynamodb_outage_at_stream_open_is_503(server: Server, truth: Any) -> None:
    _, service_day = truth
    session = server.new_session(service_day.start_ms, service_day.end_ms)
    faults = faults_on(server)
    faults.add(Fault("dynamodb.UpdateItem", 500, "InternalServerError"))
    with httpx.Client() as client:
        response = client.get(server.stream_url(session))
    problem(response, 503, "dependency-unavailable")
    assert faults.injected["dynamodb.UpdateItem"] == DYNAMODB_ATTEMPTS
