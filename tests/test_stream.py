"""The SSE stream as a client reads it: content against ground truth, control, resume."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Filters
from functions.app.stream.response import EventStreamResponse, send_budget
from tests import ground_truth
from tests.rawday import TYPES
from tests.sse_client import Event, SSEParser
from tests.streaming import (
    CONFIG,
    ClientState,
    Server,
    StreamReader,
    by_time,
    expected_discrete,
    frame_position,
    publish_tiny_day,
    read_with_cuts,
    serve,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

from chunker.format.keys import DayKeys

KEYS = DayKeys("XTST", "2026-03-14")


@pytest.fixture
def day(s3: S3Client) -> dict[str, bytes]:
    return publish_tiny_day(s3)


@pytest.fixture
def server(s3: S3Client, day: dict[str, bytes]) -> Iterator[Server]:
    yield from serve(s3)


@pytest.fixture
def truth(day: dict[str, bytes]) -> tuple[dict[str, list[dict[str, Any]]], Any]:
    return ground_truth.valid_rows(day, KEYS)


def test_paused_stream_starts_with_the_true_state(server: Server, truth: Any) -> None:
    rows, service_day = truth
    t0 = service_day.start_ms + 30 * 60_000 + 437
    session = server.new_session(
        service_day.start_ms, service_day.start_ms + 3 * 3_600_000, position=t0
    )
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        events = reader.read_until(lambda e: e.event == "playback")
        headers = reader.response.headers
        reader.close()
    assert reader.response.status_code == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert "connection" not in {k.lower() for k in headers if headers[k].lower() == "keep-alive"}
    assert "content-encoding" not in headers
    assert reader.parser.retry_ms is not None and 1500 <= reader.parser.retry_ms <= 4500
    snapshot = events[0]
    assert snapshot.event == "snapshot" and snapshot.json()["reason"] == "start"
    at = t0 - 437
    assert snapshot.json()["t"] == at
    state = ClientState()
    state.apply(snapshot)
    assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, at)
    playback = events[1].json()
    assert playback["state"] == "paused" and playback["position"] == t0
    assert all(e.id for e in events)


def test_playing_stream_delivers_every_event_once_and_the_true_state(
    server: Server, truth: Any
) -> None:
    """At 256x across an hour and two chunk boundaries: every discrete event once, the
    true state at the end, frames merged, and every chunk after the first loaded before
    the stream needed it (prefetched). Every speed's pacing and merging, on a fake clock:
    tests/test_player_core.py."""
    speed = 256.0
    rows, service_day = truth
    start = service_day.start_ms + 3_600_000 - 20_000  # crosses an hour and a chunk boundary
    # The clock leaves ``start`` 1 s from now (until then it is clamped there), so a stream
    # slow to open still opens before the boundary (20 s of replay are 20 ms at 1024x).
    session = server.new_session(
        start,
        service_day.start_ms + 3 * 3_600_000,
        speed=speed,
        state="playing",
        anchor_wall=server.services.now_ms() + 1_000,
    )
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        events = reader.read_until(
            lambda e: e.event == "vehicle_update" and e.json()["t"] >= start + 650_000
        )
        reader.close()
    source = server.app.state.stream_runtime.source
    assert source.loads_started >= 3
    assert source.waits == 1, "only the first chunk (the snapshot's) was waited for"
    assert events[0].event == "snapshot" and events[0].json()["t"] < start + 20_000
    state = ClientState()
    for event in events:
        state.apply(event)
    first = events[0].json()["t"]
    last = frame_position(events)
    assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, last)
    assert by_time(state.discrete) == expected_discrete(rows, first, last)
    # Frames merge ticks at this speed: far fewer frames than ticks.
    frames = [e for e in events if e.event == "vehicle_update"]
    assert len(frames) < (last - first) / CONFIG.tick_ms / 2


def test_resume_after_100_cuts_at_random_byte_offsets_loses_and_repeats_nothing(
    server: Server, truth: Any
) -> None:
    """Resume torture: 100 connections, each dropped at a random byte of what the server
    wrote (inside an event, between events, inside a UTF-8 sequence), each followed by the
    browser's reconnect with the last event id. About once per ten connections, the state at
    a complete frame equals the ground truth at that position; at the end every discrete
    event arrived exactly once, and no resume fell back to a snapshot. At 60x (merged
    frames) over HTTP; at 8x, 60x and 400x on a fake clock in tests/test_player_core.py."""
    speed = 60.0
    rows, service_day = truth
    start = service_day.start_ms + 3_600_000 - 30_000  # crosses an hour and a chunk boundary
    session = server.new_session(start, service_day.end_ms, speed=speed, state="playing")
    rng = random.Random(int(speed))
    state = ClientState()
    checked: list[int] = []
    connection = [0]

    def check(event: Event) -> None:
        # A frame ends with its vehicle update: the client's state is whole there.
        due = len(checked) <= connection[0] // 10  # about one check per ten connections
        if event.event == "vehicle_update" and due:
            assert state.t is not None
            expected = ground_truth.state_at(rows, service_day, CONFIG.tick_ms, state.t)
            assert state.state() == expected, f"state differs at t={state.t}"
            checked.append(state.t)

    with httpx.Client() as client:
        # The first connection keeps its snapshot and a frame, so every later one resumes.
        reader = StreamReader(client, server.stream_url(session))
        for event in reader.read_until(lambda e: e.event == "vehicle_update"):
            state.apply(event)
        last_event_id = reader.parser.last_event_id
        reader.close()
        cuts_mid_event = 0
        for connection[0] in range(1, 101):
            cut = (rng.choice([0, 0, 0, 1, 2]), rng.random())
            last_event_id, stats = read_with_cuts(
                client, lambda: server.stream_url(session), state, [cut], last_event_id, check
            )
            assert stats.errors == [] and stats.connections == 1
            cuts_mid_event += stats.cuts_mid_event
        # The last cut may fall inside a frame: resume once more to the end of a frame.
        reader = StreamReader(client, server.stream_url(session), last_event_id=last_event_id)
        for event in reader.read_until(lambda e: e.event == "vehicle_update"):
            state.apply(event)
            if event.event == "vehicle_update":
                break
        reader.close()
    assert len(state.snapshots) == 1, "a resume fell back to a snapshot"
    first = state.snapshots[0]
    assert cuts_mid_event >= 30, f"only {cuts_mid_event} cuts fell inside an event"
    assert len(checked) >= 9
    assert state.t is not None and state.t > first
    assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, state.t)
    assert by_time(state.discrete) == expected_discrete(rows, first, state.t)
    # Dispatch decisions among them, each exactly once (issue 20): every raw decision of
    # the window arrived, none twice (the client's decision behind each active task is the
    # ground truth's: state_at above).
    decisions = [d for d in by_time(state.discrete) if d[0] == "decisions"]
    expected = [d for d in expected_discrete(rows, first, state.t) if d[0] == "decisions"]
    # (The tiny day has 18 decisions; this window holds few. Many decisions under 100
    # cuts at 8x, 60x and 400x: tests/test_player_core.py.)
    assert expected and decisions == expected
    assert len(set(decisions)) == len(decisions)


def test_control_changes_reach_the_open_stream(server: Server, truth: Any) -> None:
    rows, service_day = truth
    start, end = service_day.start_ms, service_day.start_ms + 3 * 3_600_000
    session = server.new_session(start, end, position=start + 600_000)
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        reader.read_until(lambda e: e.event == "playback")
        # Seek (a discontinuity: new timeline) -> a new snapshot at the target.
        target = start + 7_200_000 + 12_345
        current = server.services.sessions.get(session.session_id)
        assert current is not None
        mark = len(reader.events)
        server.update(
            session.session_id,
            clock=current.clock.seek(server.services.now_ms(), target),
            timeline=current.timeline + 1,
        )
        events = reader.read_until(lambda e: e.event == "snapshot", since=mark)
        snapshot = next(e for e in events[mark:] if e.event == "snapshot")
        assert snapshot.json()["reason"] == "control"
        assert snapshot.json()["t"] == target - 345  # floored to its tick
        state = ClientState()
        state.apply(snapshot)
        assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, target)
        # Play at 16x: a playback event, then frames from the seek target onwards.
        now = server.services.now_ms()
        current = server.services.sessions.get(session.session_id)
        assert current is not None
        mark = len(reader.events)
        server.update(session.session_id, clock=current.clock.set_speed(now, 16.0).play(now))
        reader.read_until(
            lambda e: e.event == "vehicle_update" and e.json()["t"] > target + 5_000, since=mark
        )
        playing = [e.json() for e in reader.events[mark:] if e.event == "playback"]
        assert playing[0]["state"] == "playing" and playing[0]["speed"] == 16.0
        frames = [e.json()["t"] for e in reader.events[mark:] if e.event == "vehicle_update"]
        assert frames == sorted(frames) and frames[0] > target - 345
        # Pause: a playback event; frames stop at the paused position.
        current = server.services.sessions.get(session.session_id)
        assert current is not None
        paused_clock = current.clock.pause(server.services.now_ms())
        mark = len(reader.events)
        server.update(session.session_id, clock=paused_clock)
        reader.read_until(lambda e: e.event == "playback", since=mark)
        # Speed changes while paused re-anchor but must not move the position.
        current = server.services.sessions.get(session.session_id)
        assert current is not None
        mark2 = len(reader.events)
        server.update(
            session.session_id, clock=current.clock.set_speed(server.services.now_ms(), 256.0)
        )
        events = reader.read_until(lambda e: e.event == "playback", since=mark2)
        reader.close()
    after_pause = events[mark:]
    paused = [e.json() for e in after_pause if e.event == "playback"]
    assert [p["state"] for p in paused] == ["paused", "paused"]
    anchor = paused_clock.anchor_position
    assert paused[0]["position"] == paused[1]["position"] == anchor
    # Frames sent before the stream saw the pause (within a poll) may run past the paused
    # position: a control snapshot takes the client back there.
    last_past = max(
        (
            i
            for i, e in enumerate(after_pause)
            if e.event == "vehicle_update" and e.json()["t"] > anchor
        ),
        default=None,
    )
    if last_past is not None:
        back = [e.json() for e in after_pause[last_past:] if e.event == "snapshot"]
        assert back and back[0]["reason"] == "control" and back[0]["t"] <= anchor
    assert frame_position(events) <= anchor
    shown = ClientState()
    for event in events:
        shown.apply(event)
    assert shown.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, anchor)


def test_filters_are_applied_server_side(server: Server, truth: Any) -> None:
    rows, service_day = truth
    start = service_day.start_ms + 1_800_000
    # Fuel trucks at stands S0-S2: the map shows fuel trucks, the task list refuels there
    # (the task type fuel trucks do), the board those stands' flights (docs/api.md, "Filters").
    stands = ["S0", "S1", "S2"]
    filters = Filters(vehicle_types=["fuel_truck"], stands=stands)
    session = server.new_session(
        start, service_day.start_ms + 3 * 3_600_000, speed=512.0, state="playing", filters=filters
    )
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        events = reader.read_until(
            lambda e: e.event == "vehicle_update" and e.json()["t"] > start + 5_400_000
        )
        reader.close()
    state = ClientState()
    for event in events:
        state.apply(event)
    fuel_trucks = {f"V{i:02d}" for i in range(100) if TYPES[i % len(TYPES)] == "fuel_truck"}
    assert set(state.vehicles) <= fuel_trucks and state.vehicles
    assert all(f["stand"] in stands for f in state.flights.values())
    expected_refuels = [
        r
        for r in rows["tasks"]
        if r["task_type"] == "refuel"
        and r["stand"] in stands
        and start + 1000 <= r["t"] < frame_position(events) + 1000
    ]
    assert expected_refuels
    assert [(k, i) for k, i, _, _ in state.discrete if k == "tasks"] == [
        ("tasks", r["id"]) for r in expected_refuels
    ]
    # Decisions go with their task: those about refuels at these stands (the task's type
    # as of the decision, from the raw task rows), and no other.
    expected_decisions = [
        (d["id"], d["t"])
        for d in ground_truth.annotated(rows, service_day, CONFIG.tick_ms)
        if d["task_type"] == "refuel"
        and d["stand"] in stands
        and start + 1000 <= d["t"] < frame_position(events) + 1000
    ]
    assert expected_decisions
    assert [(i, t) for k, i, t, _ in state.discrete if k == "decisions"] == expected_decisions


def test_bad_requests_get_problem_json_before_any_stream(server: Server, truth: Any) -> None:
    _, service_day = truth
    session = server.new_session(service_day.start_ms, service_day.end_ms)
    other = server.new_session(service_day.start_ms, service_day.end_ms, owner="bob")
    base = f"{server.url}/api/replay/sessions"
    with httpx.Client() as client:
        cases = [
            (f"{base}/{session.session_id}/stream?token=nonsense", 401),
            (f"{base}/{session.session_id}/stream?token={server.token(other, 'bob')}", 401),
            (f"{base}/s-doesnotexistdoesnotexist1/stream?token={server.token(session)}", 401),
            (f"{base}/{other.session_id}/stream?token={server.token(other, 'alice')}", 404),
            (f"{base}/{session.session_id}/stream", 422),
            (f"{base}/not-a-session/stream?token=x", 404),
        ]
        for url, status in cases:
            response = client.get(url)
            assert response.status_code == status, url
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == status
        expired = server.token(session, ttl_s=-5)
        response = client.get(f"{base}/{session.session_id}/stream?token={expired}")
        assert response.status_code == 401 and "expired" in response.json()["detail"]
        server.services.sessions.delete(session.session_id)
        response = client.get(server.stream_url(session))
        assert response.status_code == 404


@pytest.mark.parametrize("last_event_id", ["garbage", "1.2.3", "9.1.2.3", "1.5.2.0", "\u00e9"])
def test_unknown_or_malformed_last_event_id_resyncs(
    server: Server, truth: Any, last_event_id: str
) -> None:
    _, service_day = truth
    session = server.new_session(
        service_day.start_ms, service_day.end_ms, position=service_day.start_ms + 1_000_000
    )
    with httpx.Client() as client:
        headers = {"Last-Event-ID": last_event_id.encode("utf-8")}  # raw bytes on the wire
        with client.stream("GET", server.stream_url(session), headers=headers) as response:
            assert response.status_code == 200
            parser = SSEParser()
            events: list[Event] = []
            for chunk in response.iter_raw():
                events += parser.feed(chunk)
                if events:
                    break
    assert events[0].event == "snapshot" and events[0].json()["reason"] == "resync"


def test_a_departed_client_leaves_nothing_running(server: Server, truth: Any) -> None:
    _, service_day = truth
    sessions = [
        server.new_session(service_day.start_ms, service_day.end_ms, speed=8.0, state="playing")
        for _ in range(3)
    ]
    runtime = None
    with httpx.Client() as client:
        readers = [StreamReader(client, server.stream_url(s)) for s in sessions]
        for reader in readers:
            reader.read_until(lambda e: e.event == "vehicle_update")
        runtime = server.app.state.stream_runtime
        assert runtime.stats.open_streams == 3 and runtime.watchers.active == 3
        for reader in readers:
            reader.close()
    deadline = time.monotonic() + 10
    while runtime.stats.open_streams or runtime.watchers.active:
        assert time.monotonic() < deadline, "per-stream work survived the client"
        time.sleep(0.02)


# 1x (a frame per tick, each sent when the clock reaches it): tests/test_player_core.py.
@pytest.mark.parametrize(("speed", "frames"), [(8.0, 10), (256.0, 10)])
def test_playback_clock_is_never_ahead_of_the_frames(
    server: Server, truth: Any, speed: float, frames: int
) -> None:
    """Frames never run ahead of the session's clock as a client receives them (they can
    only be late). Every speed on a fake clock: tests/test_player_core.py."""
    _, service_day = truth
    start = service_day.start_ms + 1_000_000
    session = server.new_session(start, service_day.end_ms, speed=speed, state="playing")
    clock: PlaybackClock = session.clock
    with httpx.Client() as client:
        reader = StreamReader(client, server.stream_url(session))
        received: list[tuple[int, int]] = []
        while len(received) < frames:
            reader.read_until(
                lambda e: (
                    e.event == "vehicle_update" and e.json()["t"] not in {t for t, _ in received}
                )
            )
            for event in reader.events:
                if event.event == "vehicle_update" and event.json()["t"] not in {
                    t for t, _ in received
                }:
                    received.append((event.json()["t"], server.services.now_ms()))
        reader.close()
    for position, arrived_wall in received:
        assert position <= clock.position_at(arrived_wall)


def test_seed_stream_creates_a_session_and_obeys_the_seed_control_route(
    server: Server, truth: Any
) -> None:
    _, service_day = truth
    body = {
        "airportId": "XTST",
        "startTime": "2026-03-14T00:10:00+08:00",
        "endTime": "2026-03-14T01:10:00+08:00",
        "playbackSpeed": 16,
    }
    with httpx.Client() as client:
        stream = StreamReader(client, f"{server.url}/api/auto_dispatch/replay/stream", body=body)
        try:
            events = stream.read_until(lambda e: e.event == "vehicle_update")
            assert [e.event for e in events[:2]] == ["session", "snapshot"]
            session = events[0].json()
            assert session["clock"]["state"] == "playing" and session["clock"]["speed"] == 16
            assert session["clock"]["range_start"] == service_day.start_ms + 600_000
            paused = client.post(
                f"{server.url}/api/auto_dispatch/replay/control",
                json={"sessionId": session["session_id"], "action": "pause"},
            )
            assert paused.status_code == 200
            seen = len(stream.events)
            stream.read_until(
                lambda e: e.event == "playback" and e.json()["state"] == "paused", since=seen
            )
        finally:
            stream.close()
        refused = client.post(
            f"{server.url}/api/auto_dispatch/replay/stream", json={**body, "playbackSpeed": 0}
        )
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"


# --- the response class: writes that block end the stream (issue #15, finding 4) --------


def test_the_send_budget_is_the_timeout_cut_short_at_the_hard_deadline() -> None:
    assert send_budget(100.0, 30.0, hard_deadline=1_000.0) == 30.0
    assert send_budget(100.0, 30.0, hard_deadline=110.0) == 10.0
    assert send_budget(100.0, 30.0, hard_deadline=90.0) == 0.0


@pytest.mark.parametrize(
    ("send_timeout_s", "deadline_in_s"),
    [(0.05, 3600.0), (3600.0, 0.05)],
    ids=["timeout", "deadline"],
)
def test_a_write_the_client_never_takes_ends_the_response_and_closes_the_stream(
    send_timeout_s: float, deadline_in_s: float
) -> None:
    """A client that stopped reading: the second write never completes. The response
    returns (the server then drops the connection) and the producer's ``finally`` runs,
    whether the send timeout or the duration limit comes first."""
    closed = asyncio.Event()

    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b": hb\n\n"
        finally:
            closed.set()

    async def scenario() -> EventStreamResponse:
        deadline = asyncio.get_running_loop().time() + deadline_in_s
        response = EventStreamResponse(
            events(), send_timeout_s=send_timeout_s, hard_deadline=lambda: deadline
        )
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) == 3:  # the start and one event went out; then the client stalls
                await asyncio.Event().wait()

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {}

        scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
        await asyncio.wait_for(response(scope, receive, send), timeout=30)
        assert closed.is_set()
        assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 2
        return response

    assert asyncio.run(scenario()).timed_out
