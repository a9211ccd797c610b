"""The player on a fake clock: pacing, merging, control changes, wraps, resume, limits.

The real ``Player`` (the I/O shell) and its pure ``Playhead`` run against an in-memory
replay day and a fake clock in milliseconds of test time: waiting moves the clock to the
wake-up (or to the next scripted control change), nothing sleeps, no server runs. Every
expectation is computed here from the generated rows and the clock's definition
(position = anchor + elapsed x speed), not by the product's own functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunker.format.encoding import Catalogue, CorruptChunk, Manifest
from chunker.format.prepared import PreparedChunk, PreparedTick
from chunker.format.read import NotPublished
from chunker.format.records import Vehicle, VehicleType
from functions.app.domain.playback import MAX_SPEED, MIN_SPEED, PlaybackClock
from functions.app.domain.sessions import Filters, Session
from functions.app.settings import AppSettings
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.cursor import Cursor
from functions.app.stream.pacing import MIN_WAIT_MS
from functions.app.stream.player import Player, StreamRuntime
from functions.app.stream.playhead import (
    Frame,
    Playhead,
    Snapshot,
    StreamLimits,
    TickGrid,
    Turn,
)
from functions.app.stream.watcher import SessionWatchers
from tests.sse_client import Event, SSEParser

# --- an in-memory replay day, and what any instant of it holds -------------------------

TICK = 1_000
BUCKET = 60_000
DAY = 1_773_417_600_000  # 2026-03-14 00:00 (+08:00) in epoch ms
HOURS = 4
DAY_END = DAY + HOURS * 3_600_000
RECENT = 20  # notifications a state keeps (chunker.format.state.RECENT_NOTIFICATIONS)
DISCRETE = {
    "task_update": "tasks",
    "flight_update": "flights",
    "notification": "notifications",
    "dispatch_decision": "decisions",
}
FLEET = {"V1": VehicleType.FUEL_TRUCK, "V2": VehicleType.PUSHBACK_TUG}
STATUSES = ("assigned", "en_route", "completed")
Row = dict[str, Any]


def generate_rows() -> dict[str, list[Row]]:
    """The day's rows, all on tick starts: V1 moves every tick, V2 every third; a task
    event every 7 s, a flight event every 13 s, a notification every 11 s, a dispatch
    decision every 9 s (as the chunker stores it: with its task's type and status)."""
    rows: dict[str, list[Row]] = {
        "vehicles": [], "tasks": [], "flights": [], "notifications": [], "decisions": []
    }  # fmt: skip
    for k, t in enumerate(range(DAY, DAY_END, TICK)):
        rows["vehicles"].append({"id": "V1", "t": t, "x": k})
        if k % 3 == 0:
            rows["vehicles"].append({"id": "V2", "t": t, "x": -k})
        if k % 7 == 0:
            rows["tasks"].append(
                {
                    "id": f"T{k % 5}",
                    "task_type": "refuel" if k % 2 else "pushback",
                    "status": STATUSES[k % 3],
                    "flight_id": f"F{k % 2}",
                    "stand": "S1",
                    "t": t,
                }
            )
        if k % 13 == 0:
            rows["flights"].append({"id": f"F{k % 2}", "stand": "S1", "t": t, "n": k})
        if k % 11 == 0:
            flight = f"F{k % 2}" if k % 3 else None
            rows["notifications"].append({"id": f"N{k}", "t": t, "flight_id": flight})
        if k % 9 == 0:
            rows["decisions"].append(
                {
                    "id": f"T{k % 5}",
                    "t": t,
                    "decision": "assign",
                    "vehicle_id": "V1",
                    "flight_id": f"F{k % 2}",
                    "stand": "S1",
                    "task_type": "refuel" if k % 2 else "pushback",
                    "task_status": "assigned",
                    "candidates": [{"vehicle_id": "V1", "eta": t + 60_000}],
                }
            )
    return rows


ROWS = generate_rows()


TIMES = {kind: [row["t"] for row in kind_rows] for kind, kind_rows in ROWS.items()}


def state_at(t: int) -> dict[str, list[Row]]:
    """The full state at ``t``, folded from the rows (latest per id; last notifications)."""
    latest: dict[str, dict[str, Row]] = {"vehicles": {}, "tasks": {}, "flights": {}}
    for kind, by_id in latest.items():
        for row in ROWS[kind][: bisect_right(TIMES[kind], t)]:
            by_id[row["id"]] = row
    notes = ROWS["notifications"][: bisect_right(TIMES["notifications"], t)][-RECENT:]
    return {kind: [by_id[k] for k in sorted(by_id)] for kind, by_id in latest.items()} | {
        "notifications": notes
    }


def build_chunks() -> list[PreparedChunk]:
    """The day as chunks: a keyframe (the state before the bucket) plus one tick per
    tick start that holds rows, the way the chunker lays them out."""
    by_tick: dict[int, dict[str, list[Row]]] = {}
    for kind, kind_rows in ROWS.items():
        for row in kind_rows:
            by_tick.setdefault(row["t"], {}).setdefault(kind, []).append(row)
    chunks = []
    state: dict[str, dict[str, Row]] = {"vehicles": {}, "tasks": {}, "flights": {}}
    state["decisions"] = {}
    notes: list[Row] = []
    for start in range(DAY, DAY_END, BUCKET):
        keyframe = {kind: list(by_id.values()) for kind, by_id in state.items()}
        keyframe["notifications"] = notes[-RECENT:]
        ticks = []
        for t in range(start, start + BUCKET, TICK):
            tick = by_tick.get(t)
            if tick is None:
                continue
            ticks.append({"t": t, **tick})
            for kind, kind_rows in tick.items():
                for row in kind_rows:
                    if kind == "notifications":
                        notes.append(row)
                    else:
                        state[kind][row["id"]] = row
        document = {
            "start": start,
            "end": start + BUCKET,
            "tick_ms": TICK,
            "task_retention_ms": 86_400_000,
            "keyframe": keyframe,
            "ticks": ticks,
        }
        chunks.append(PreparedChunk.from_document(f"chunk-{start}", document))
    return chunks


CHUNKS = build_chunks()
STARTS = [chunk.start for chunk in CHUNKS]
MANIFEST = Manifest.model_construct(
    version="v1",
    catalogue=Catalogue.model_construct(
        vehicles=[
            Vehicle.model_construct(vehicle_id=vehicle_id, vehicle_type=vehicle_type)
            for vehicle_id, vehicle_type in FLEET.items()
        ],
        flights=[],
    ),
)


def discrete_between(after: int, until: int) -> list[tuple[str, str, int]]:
    """Every discrete row with ``after < t <= until``, in time order."""
    found = [
        (kind, row["id"], row["t"])
        for kind in DISCRETE.values()
        for row in ROWS[kind]
        if after < row["t"] <= until
    ]
    return sorted(found, key=lambda item: (item[2], item[0], item[1]))


def in_order(items: Iterable[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    return sorted(items, key=lambda item: (item[2], item[0], item[1]))


def position(clock: PlaybackClock, wall: float) -> float:
    """Where ``clock`` is at wall time ``wall``, from its definition (not from its code)."""
    if clock.state == "paused":
        at = float(clock.anchor_position)
    else:
        at = clock.anchor_position + (wall - clock.anchor_wall) * clock.speed
    if clock.loop and at >= clock.range_end:
        return clock.range_start + (at - clock.range_start) % (clock.range_end - clock.range_start)
    return min(max(at, clock.range_start), clock.range_end - 1)


def tick_of(t: float) -> int:
    return DAY + int(t - DAY) // TICK * TICK


# --- the fakes: a clock, a chunk source, a session watch -------------------------------

W0 = 1_773_420_000_000  # wall ms (test time) when the first stream opens
MONO0 = 1_000.0


class FakeClock:
    """Wall and monotonic time that move only when the stream waits."""

    def __init__(self, wall: float = W0) -> None:
        self.wall = float(wall)

    def now_ms(self) -> int:
        return int(self.wall)

    def monotonic(self) -> float:
        return MONO0 + (self.wall - W0) / 1000

    def wall_of(self, monotonic: float) -> float:
        return W0 + (monotonic - MONO0) * 1000


class MemorySource:
    """``ChunkSource``'s calls over the in-memory day (one variant: the variant asked for
    is only recorded); chunk starts in ``broken`` fail as damaged."""

    def __init__(self) -> None:
        self.broken: set[int] = set()
        self.reads: list[tuple[int, float]] = []  # (chunk start, wall) of every read
        self.prefetched: list[tuple[int, float]] = []  # (instant, wall) of every prefetch
        self.clock: FakeClock | None = None
        self.variants: set[str] = set()  # variants asked for

    async def chunk_at(
        self, airport: str, t: int, prefetch: bool = False, variant: str = "default"
    ) -> tuple[Manifest, PreparedChunk]:
        self.variants.add(variant)
        index = bisect_right(STARTS, t) - 1
        if index < 0 or t >= DAY_END:
            raise NotPublished(f"{airport}: nothing published at t={t}")
        chunk = CHUNKS[index]
        if chunk.start in self.broken:
            raise CorruptChunk(f"chunk {chunk.key} is damaged")
        self.reads.append((chunk.start, self.clock.wall if self.clock else 0.0))
        return MANIFEST, chunk

    async def ticks(
        self, airport: str, start: int, end: int, variant: str = "default"
    ) -> tuple[list[PreparedTick], Manifest]:
        """Ticks with ``start <= t < end``, chunk by chunk (each read recorded)."""
        ticks: list[PreparedTick] = []
        t = start
        while True:
            manifest, chunk = await self.chunk_at(airport, t, variant=variant)
            ticks.extend(chunk.ticks_between(start - 1, end - 1))
            if chunk.end >= end:
                return ticks, manifest
            t = chunk.end

    def prefetch(self, airport: str, t: int, variant: str = "default") -> None:
        self.prefetched.append((t, self.clock.wall if self.clock else 0.0))


Change = Callable[[Session, int], Session | None]


class TimeUp(Exception):
    """The test's time is over (raised by a wait that would end after it)."""


class FakeWatch:
    """A session watch whose waits move the fake clock: to the wake-up (``early_ms``
    before it, as real timers fire), or to the next scripted control change."""

    def __init__(
        self,
        clock: FakeClock,
        session: Session,
        changes: list[tuple[float, Change]],
        early: float,
        stop: float,
    ) -> None:
        self.clock = clock
        self.stop = stop
        self.session: Session | None = session
        self.changes = sorted(changes, key=lambda change: change[0])
        self.early = early
        self.waits: list[float] = []  # each wait's length (ms)

    async def wait_until(self, deadline: float) -> None:
        wake = self.clock.wall_of(deadline)
        self.waits.append(wake - self.clock.wall)
        if min(wake, self.changes[0][0] if self.changes else wake) > self.stop:
            self.clock.wall = max(self.clock.wall, self.stop)
            raise TimeUp
        if self.changes and self.changes[0][0] <= wake:
            at, change = self.changes.pop(0)
            self.clock.wall = max(self.clock.wall, at)
            assert self.session is not None
            self.session = change(self.session, self.clock.now_ms())
        else:
            self.clock.wall = max(self.clock.wall, wake - self.early)


class FakeWatchers:
    def __init__(self, watch: FakeWatch) -> None:
        self.watch = watch
        self.active = 0

    @contextlib.asynccontextmanager
    async def watching(self, session: Session) -> AsyncIterator[FakeWatch]:
        self.active += 1
        try:
            yield self.watch
        finally:
            self.active -= 1


_SETTINGS: dict[tuple[tuple[str, Any], ...], AppSettings] = {}


def app_settings(**overrides: Any) -> AppSettings:
    """Settings with ``overrides`` (built once per set: reading them costs milliseconds)."""
    key = tuple(sorted(overrides.items()))
    if key not in _SETTINGS:
        values: dict[str, Any] = {
            "replay_bucket": "replay-test",
            "auth_mode": "local",
            "stream_token_secret": "s" * 40,
            **overrides,
        }
        _SETTINGS[key] = AppSettings(**values)
    return _SETTINGS[key]


@dataclass
class Played:
    """What one connection received: every write with the wall time it was sent."""

    writes: list[tuple[float, bytes]] = field(default_factory=list)
    reader: SSEParser = field(default_factory=SSEParser)
    _events: list[tuple[float, Event]] | None = None
    ended: bool = False  # the stream ended itself
    waits: list[float] = field(default_factory=list)
    turns: int = 0  # loop turns: writes plus waits
    frames_counted: int = 0  # the runtime's frame counter

    @property
    def events(self) -> list[tuple[float, Event]]:
        """(sent wall, event) of every complete event, parsed as a client would."""
        if self._events is None:
            self._events = [(w, e) for w, write in self.writes for e in self.reader.feed(write)]
        return self._events

    @property
    def parser(self) -> SSEParser:
        """The client's parser after every write (its last event id, comments, retry)."""
        _ = self.events
        return self.reader

    def named(self, *names: str) -> list[Event]:
        return [event for _, event in self.events if event.event in names]

    def frames(self) -> list[tuple[int, int, float]]:
        """(after, until, sent wall) of every frame: its first event's id."""
        found = []
        for wall, event in self.events:
            if event.event in (*DISCRETE, "vehicle_update") and event.id:
                _, after, until, index = event.id.split(".")
                if index == "1":
                    found.append((int(after), int(until), wall))
        return found

    def discrete(self) -> list[tuple[str, str, int]]:
        return [
            (DISCRETE[e.event], row["id"], row["t"])
            for e in self.named(*DISCRETE)
            for row in e.json()[DISCRETE[e.event]]
        ]


def session_of(clock: PlaybackClock, filters: Filters | None = None) -> Session:
    return Session.new("alice", "XTST", clock, filters or Filters(), W0, 86_400_000, 86_400)


def play(
    session: Session,
    seconds: float,
    *,
    clock: FakeClock | None = None,
    source: MemorySource | None = None,
    last_event_id: str | None = None,
    changes: Iterable[tuple[float, Change]] = (),
    early_ms: float = 0.0,
    writes: int | None = None,
    deadline_wall_ms: int | None = None,
    **overrides: Any,
) -> Played:
    """Open a stream of ``session`` at the clock's time and read it for ``seconds`` of
    test time, for ``writes`` writes, or until it ends."""
    clock = clock or FakeClock()
    source = source or MemorySource()
    source.clock = clock
    stop = clock.wall + seconds * 1000
    watch = FakeWatch(clock, session, list(changes), early_ms, stop)
    runtime = StreamRuntime(
        settings=app_settings(**overrides),
        source=cast(ChunkSource, source),
        watchers=cast(SessionWatchers, FakeWatchers(watch)),
        now_ms=clock.now_ms,
        monotonic=clock.monotonic,
    )
    played = Played(reader=SSEParser(last_event_id))

    async def read() -> None:
        player = Player(runtime, session, last_event_id, deadline_wall_ms)
        step = player.playhead.step

        def counted(now: float, current: Session | None) -> Turn:
            played.turns += 1  # one turn of the player's loop
            assert played.turns < 100_000, "the loop spins"
            return step(now, current)

        player.playhead.step = counted  # type: ignore[method-assign]
        stream = player.run(await player.opening())
        try:
            async for write in stream:
                played.writes.append((clock.wall, write))
                if writes is not None and len(played.writes) >= writes:
                    return
                if clock.wall >= stop:
                    return
            played.ended = True
        except TimeUp:
            pass
        finally:
            await stream.aclose()
            played.waits = watch.waits
            played.frames_counted = runtime.stats.frames

    asyncio.run(read())
    return played


def playing(
    speed: float, at: int, *, loop: bool = False, start: int = DAY, end: int = DAY_END
) -> PlaybackClock:
    return PlaybackClock("playing", speed, at, W0, start, end, loop)


# --- pacing at every speed -------------------------------------------------------------

SPEEDS = [1 / 16, 0.25, 1.0, 2.5, 8.0, 10.0, 16.0, 64.0, 256.0, 1024.0, 4096.0]


@pytest.mark.parametrize("speed", SPEEDS)
def test_frames_follow_the_clock_at_every_speed(speed: float) -> None:
    """At any speed, each frame shows exactly the ticks the clock reached since the last
    one: never ahead of the clock, at most one frame interval behind it, no tick missed or
    sent twice; up to 10x every tick is its own frame, sent when the clock reaches it;
    beyond, frames merge ticks and go out at 10 a second."""
    start = DAY + 3_600_000 - 20_000  # crosses a chunk boundary at once
    clock = playing(speed, start)
    seconds = min(64.0, max(3.0, 40 / speed))  # tens of ticks, or 3 s of merged frames
    played = play(session_of(clock), seconds)
    snapshot = played.named("snapshot")[0].json()
    assert snapshot["t"] == start and snapshot["reason"] == "start"
    frames = played.frames()
    assert frames, "no frame"
    reached = snapshot["t"]
    for after, until, sent in frames:
        assert after == reached, "frames are contiguous: no gap, no overlap"
        # Never ahead of the clock: a frame due within a timer's resolution (MIN_WAIT_MS)
        # goes out at once, with its tick.
        assert until <= position(clock, sent + MIN_WAIT_MS), "a frame ahead of the clock"
        # Behind by less than a tick, plus one frame interval of replay time when merging.
        assert position(clock, sent) - until < TICK + max(0.0, speed * 100 - TICK) + 1e-6
        reached = until
    ticks_passed = (tick_of(position(clock, frames[-1][2])) - start) // TICK
    if speed <= 10:
        assert [until for _, until, _ in frames] == [
            start + k * TICK for k in range(1, len(frames) + 1)
        ]
        assert len(frames) == ticks_passed
        for _, until, sent in frames:  # sent when the clock reached it (within a timer tick)
            assert abs(sent - (W0 + (until - start) / speed)) <= MIN_WAIT_MS
    else:
        span_s = (frames[-1][2] - frames[0][2]) / 1000
        assert len(frames) <= span_s * 10 + 1
        assert len(frames) >= span_s * 10 - 1
        assert len(frames) < ticks_passed / (2 if speed >= 64 else 1)  # merged
    # Every discrete event in the frames' span exactly once, the true state at the end, and
    # V1's last fix in each frame.
    assert in_order(played.discrete()) == discrete_between(start, reached)
    assert client_state(e for _, e in played.events) == true_state(reached)
    for event in played.named("vehicle_update"):
        data = event.json()
        assert {row["id"]: row["t"] for row in data["vehicles"]}["V1"] == data["t"]
    # Writes are never further apart than the heartbeat interval.
    times = [wall for wall, _ in played.writes]
    assert all(b - a <= 15_000 + MIN_WAIT_MS for a, b in itertools.pairwise(times))
    if TICK / speed > 15_000:
        assert played.parser.comments, "ticks 16 s apart: heartbeats in between"


def test_merged_frames_bound_the_emit_rate_and_the_bytes() -> None:
    """At 4096x a frame spans ~410 ticks: at most 10 frames a second, each vehicle at
    most once per frame, and far fewer bytes than the ticks sent one by one."""
    start = DAY + 600_000
    played = play(session_of(playing(4096.0, start)), 2.0)
    frames = played.frames()
    assert 19 <= len(frames) <= 21
    for after, until, _ in frames[1:]:
        assert until - after >= 409 * TICK
    for event in played.named("vehicle_update"):
        ids = [row["id"] for row in event.json()["vehicles"]]
        assert len(ids) == len(set(ids)) <= len(FLEET)
    reached = frames[-1][1]
    vehicle_rows = [r for r in ROWS["vehicles"] if start < r["t"] <= reached]
    one_by_one = sum(len(str(row)) for row in vehicle_rows)
    sent = sum(len(e.data) for e in played.named("vehicle_update"))
    assert sent * 50 < one_by_one


@pytest.mark.parametrize("speed", [1.0, 2.5, 8.0, 64.0])
def test_a_timer_that_wakes_early_does_not_cost_a_frame_interval(speed: float) -> None:
    """Timers fire a little early (and the monotonic -> wall conversion rounds): the frame
    due then, a fraction of a millisecond away, is sent at once *with its tick*. Sampling
    the clock at "now" instead missed the tick, and the next try came a whole frame
    interval later (100 ms at 10 fps: the p99 lateness `bench stream` showed)."""
    start = DAY + 600_000
    clock = playing(speed, start)
    played = play(session_of(clock), 10.0, early_ms=0.3)
    frames = played.frames()
    if speed <= 10:
        assert len(frames) >= 10 * speed - 1  # every tick of the 10 s, each as its own frame
    else:
        assert len(frames) >= 10 * 10 - 1  # 10 merged frames a second
    # Lateness: sent minus when the clock reached the frame's last tick.
    lateness = [sent - (W0 + (until - start) / speed) for _, until, sent in frames]
    if speed <= 10:
        assert max(lateness) <= MIN_WAIT_MS
    else:
        assert max(lateness) <= 100 + MIN_WAIT_MS


def test_a_1_ms_looping_range_at_4096x_costs_at_most_max_fps_turns_a_second() -> None:
    """The attack of issue #15: every pass lasts 1/4096 ms, below the float resolution of
    an epoch-ms wall time, so the next tick is always due "now" (one rounding step either
    side). The loop still waits between frames, and sends at most ``max_fps``."""
    start = DAY + 600_000
    clock = PlaybackClock("playing", 4096.0, start, W0 + 123, start, start + 1, loop=True)
    played = play(session_of(clock), 30.0)
    assert played.turns <= 30 * 10 * 3 + 10  # per 1/max_fps: a frame, a wait, one re-aim
    assert all(wait >= MIN_WAIT_MS - 1e-6 for wait in played.waits)
    assert played.frames() == []  # a range inside one tick never moves the tick-aligned P
    assert played.frames_counted == 0


@settings(deadline=None)
@given(
    span=st.integers(1, 3_600_000),
    speed=st.floats(MIN_SPEED, MAX_SPEED),
    loop=st.booleans(),
    anchor_wall=st.integers(0, 2_000_000_000_000),
)
def test_whatever_the_clock_the_loop_sends_at_most_max_fps_and_always_waits(
    span: int, speed: float, loop: bool, anchor_wall: int
) -> None:
    start = DAY + 600_000
    clock = PlaybackClock("playing", speed, start, anchor_wall, start, start + span, loop)
    played = play(session_of(clock), 5.0)
    assert played.frames_counted <= 5 * 10 + 1
    # Per frame: the frame, the wait for the next, at most one re-aim (a looping clock's
    # nearest pass moved while waiting); and a heartbeat or two.
    assert played.turns <= 3 * (5 * 10 + 1) + 5
    assert all(wait >= MIN_WAIT_MS - 1e-6 for wait in played.waits)


# --- control changes mid-stream --------------------------------------------------------


def test_pause_speed_seek_and_range_changes_mid_stream() -> None:
    """A 1x stream paused at 5 s, sped up to 64x while paused and played at 8 s, seeked at
    12 s, its range cut short at 14 s: each change answers with a playback event; frames
    stop while paused and resume contiguously; the seek and the range change re-sync
    with a snapshot where the clock is; the stream ends at the new range's end."""
    start = DAY + 1_200_000
    target = DAY + 7_200_000 + 12_345
    changes: list[tuple[float, Change]] = [
        (W0 + 5_000, lambda s, now: s.changed(clock=s.clock.pause(now))),
        (W0 + 6_000, lambda s, now: s.changed(clock=s.clock.set_speed(now, 64.0))),
        (W0 + 8_000, lambda s, now: s.changed(clock=s.clock.play(now))),
        (
            W0 + 12_000,
            lambda s, now: s.changed(clock=s.clock.seek(now, target), timeline=s.timeline + 1),
        ),
        (
            W0 + 14_000,
            lambda s, now: s.changed(
                clock=s.clock.set_range(now, target, target + 200_000), timeline=s.timeline + 1
            ),
        ),
    ]
    played = play(session_of(playing(1.0, start)), 30.0, changes=changes)
    events = played.events
    playbacks = [(wall, e.json()) for wall, e in events if e.event == "playback"]
    assert [round(wall) - W0 for wall, _ in playbacks] == [0, 5_000, 6_000, 8_000, 12_000, 14_000]
    assert [p["state"] for _, p in playbacks] == [
        "playing",
        "paused",
        "paused",
        "playing",
        "playing",
        "playing",
    ]
    assert playbacks[1][1]["position"] == playbacks[2][1]["position"] == start + 5_000
    assert playbacks[2][1]["speed"] == 64.0
    frames = played.frames()
    # 1x for 5 s: five frames, one per tick; none while paused.
    assert [until for _, until, wall in frames if wall <= W0 + 8_000] == [
        start + k * TICK for k in range(1, 6)
    ]
    # 64x from 8 s: contiguous from the paused position, merged, until the seek.
    fast = [(a, u) for a, u, wall in frames if W0 + 8_000 < wall < W0 + 12_000]
    assert fast[0][0] == start + 5_000 and len(fast) >= 39
    assert all(b[0] == a[1] for a, b in itertools.pairwise(fast))
    snapshots = [(wall, e.json()) for wall, e in events if e.event == "snapshot"]
    assert [(round(w) - W0, s["reason"], s["t"]) for w, s in snapshots] == [
        (0, "start", start),
        (12_000, "control", target - 345),
        (14_000, "control", tick_of(target + 2_000 * 64)),
    ]
    assert snapshots[1][1]["vehicles"] == state_at(target - 345)["vehicles"]
    ends = played.named("end")
    last_tick = tick_of(target + 200_000 - 1)  # the range is half-open
    assert len(ends) == 1 and ends[0].json()["position"] == last_tick
    assert max(until for _, until, _ in frames) <= last_tick


@pytest.mark.parametrize("pause_after_ms", [1_337, 2_050, 3_199])
def test_a_pause_mid_frame_delivers_the_ticks_up_to_the_paused_position(
    pause_after_ms: int,
) -> None:
    """At 32x frames are merged (3.2 replay seconds each at 10 frames/s), so a pause lands
    between them: the stream still sends the ticks from its last frame up to the paused
    position, once, and every discrete event in them — then nothing until play."""
    start = DAY + 1_200_000
    pause_wall = W0 + 2_000 + pause_after_ms / 32  # wall time of the pause
    changes: list[tuple[float, Change]] = [
        (pause_wall, lambda s, now: s.changed(clock=s.clock.pause(int(now)))),
    ]
    played = play(session_of(playing(32.0, start)), 6.0, changes=changes)
    paused_at = next(
        e.json()["position"]
        for _, e in played.events
        if e.event == "playback" and e.json()["state"] == "paused"
    )
    frames = played.frames()
    assert all(b[0] == a[1] for a, b in itertools.pairwise(frames))  # contiguous
    assert max(until for _, until, _ in frames) == tick_of(paused_at)
    assert not [f for f in frames if f[2] > pause_wall + 200]  # nothing later while paused
    assert in_order(played.discrete()) == discrete_between(start, tick_of(paused_at))
    assert client_state(e for _, e in played.events) == true_state(tick_of(paused_at))


def test_filters_change_mid_stream_applies_to_every_later_frame() -> None:
    start = DAY + 600_000
    # V2 is the pushback tug: it and the pushback tasks (the tasks its type does) pass.
    only_v2 = Filters(vehicle_types=[VehicleType.PUSHBACK_TUG])
    changes: list[tuple[float, Change]] = [
        (W0 + 3_000, lambda s, now: s.changed(filters=only_v2, timeline=s.timeline + 1))
    ]
    played = play(session_of(playing(8.0, start)), 6.0, changes=changes)
    later = [(w, e.json()) for w, e in played.events if w >= W0 + 3_000]
    snapshot = next(data for _, data in later if "reason" in data and "vehicles" in data)
    assert {row["id"] for row in snapshot["vehicles"]} == {"V2"}
    vehicles = {row["id"] for _, data in later if "vehicles" in data for row in data["vehicles"]}
    tasks = [row for _, data in later if "tasks" in data for row in data["tasks"]]
    assert vehicles == {"V2"} and tasks and all(r["task_type"] == "pushback" for r in tasks)


# --- loops -----------------------------------------------------------------------------


def test_loop_wraps_with_a_snapshot_and_never_ends() -> None:
    start, end = DAY + 600_000, DAY + 660_000
    clock = PlaybackClock("playing", 16.0, end - 5_000, W0, start, end, loop=True)
    played = play(session_of(clock), 9.0)
    wraps = [(w, e.json()) for w, e in played.events if e.event == "snapshot"][1:]
    # 5 s of replay to the end (312.5 ms at 16x), then a pass every 3.75 s.
    assert len(wraps) == len([k for k in range(5) if 312.5 + 3_750 * k <= 9_000]) == 3
    for wall, wrap in wraps:
        assert wrap["reason"] == "loop" and start <= wrap["t"] < start + 2 * 16 * 100
        assert wrap["t"] == tick_of(position(clock, wall))
        truth = state_at(wrap["t"])
        assert {kind: wrap[kind] for kind in truth} == truth
    assert not played.named("end")
    assert all(start <= until < end for _, until, _ in played.frames())


@pytest.mark.parametrize("control", [None, "set_filters"])
def test_a_looping_clock_anchored_before_the_wrap_streams_the_current_pass(
    control: str | None,
) -> None:
    """The clock was anchored near the end of its range and has wrapped since: frames follow
    the pass the clock is in now, at the stream's start and after a control change (found by
    ``bench load``: the stream jumped back to the anchor with one frame spanning the range)."""
    start, end = DAY + 600_000, DAY + 660_000
    span = end - start
    # Anchored 1 s before the end, 3 s ago: 47 s into the next pass.
    clock = PlaybackClock("playing", 16.0, end - 1_000, W0 - 3_000, start, end, loop=True)
    session = session_of(clock)
    changes: list[tuple[float, Change]] = []
    if control is not None:  # what set_filters does: a new timeline, same clock
        changes.append(
            (W0 + 500, lambda s, now: s.changed(filters=Filters(), timeline=s.timeline + 1))
        )
    played = play(session, 2.0, changes=changes)
    frames = [f for f in played.frames() if f[2] > W0 + 500]
    assert len(frames) >= 6
    for after, until, arrived in frames:
        # Never ahead of the clock's current pass (cyclically), and no frame spans a pass.
        # (A frame due within a timer's resolution goes out that much early.)
        assert (position(clock, arrived + MIN_WAIT_MS) - until) % span < span // 2, (after, until)
        assert 0 < until - after <= 16 * 2_000, (after, until)


def test_a_control_change_behind_a_wrap_the_stream_already_made_goes_back_at_once() -> None:
    """The stream wrapped on the clock it knew, but the change it learns next (made before
    that wrap, e.g. a slower speed) puts the clock just before the end: the stream snaps
    back to the clock's position and keeps playing, instead of going silent until the
    clock comes round (found by ``bench load``: 2-6 s without a frame)."""
    start, end = DAY + 600_000, DAY + 1_200_000
    # Anchored 1 s before the end 1 s ago at 16x: 15 s into the next pass.
    clock = PlaybackClock("playing", 16.0, end - 1_000, W0 - 1_000, start, end, loop=True)
    behind = end - 6_000
    slow = PlaybackClock("playing", 1.0, behind, W0 + 400, start, end, loop=True)
    changes: list[tuple[float, Change]] = [(W0 + 600, lambda s, now: s.changed(clock=slow))]
    played = play(session_of(clock), 3.0, changes=changes)
    after_change = [(w, e) for w, e in played.events if w >= W0 + 600]
    snapshot = next(e.json() for _, e in after_change if e.event == "snapshot")
    assert snapshot["reason"] == "control"
    assert behind - TICK <= snapshot["t"] <= position(slow, W0 + 600)
    truth = state_at(snapshot["t"])
    assert {kind: snapshot[kind] for kind in truth} == truth
    frame = next(e.json() for _, e in after_change if e.event == "vehicle_update")
    assert snapshot["t"] < frame["t"] < end  # on from there, before the wrap
    # Never silent: the next frame within a tick of the clock reaching it.
    first = next(w for w, e in after_change if e.event == "vehicle_update")
    assert first <= W0 + 600 + TICK + MIN_WAIT_MS


# --- resume ----------------------------------------------------------------------------


def client_state(events: Iterable[Event]) -> dict[str, dict[str, Row]]:
    """What a dashboard holds after applying ``events`` (vehicles, tasks, flights)."""
    state: dict[str, dict[str, Row]] = {"vehicles": {}, "tasks": {}, "flights": {}}
    for event in events:
        data = event.json()
        if event.event == "snapshot":
            for kind in state:
                state[kind] = {row["id"]: row for row in data[kind]}
        elif event.event == "vehicle_update":
            state["vehicles"].update({row["id"]: row for row in data["vehicles"]})
        elif event.event in ("task_update", "flight_update"):
            kind = DISCRETE[event.event]
            state[kind].update({row["id"]: row for row in data[kind]})
    return state


def true_state(t: int) -> dict[str, dict[str, Row]]:
    truth = state_at(t)
    return {
        kind: {row["id"]: row for row in truth[kind]} for kind in ("vehicles", "tasks", "flights")
    }


@pytest.mark.parametrize("speed", [8.0, 60.0, 400.0])
def test_resume_after_100_cuts_at_random_byte_offsets_loses_and_repeats_nothing(
    speed: float,
) -> None:
    """100 connections, each dropped at a random byte of what the server wrote (inside an
    event, between events of one write), each followed after a random retry delay by a
    reconnect with the last event id: every discrete event arrives exactly once, no resume
    falls back to a snapshot, and the state at every complete frame is the true state."""
    rng = random.Random(int(speed))
    start = DAY + 3_600_000 - 30_000  # crosses an hour and a chunk boundary
    session = session_of(playing(speed, start))
    clock = FakeClock()
    received: list[Event] = []
    last_event_id: str | None = None
    cuts_mid_event = 0
    checked: list[int] = []
    for connection in range(101):
        # The first connection keeps its snapshot and a frame, so every later one resumes.
        keep = 2 if connection == 0 else rng.choice([1, 1, 1, 2, 3])
        fraction = 1.0 if connection == 0 else rng.random()
        played = play(session, 600.0, clock=clock, last_event_id=last_event_id, writes=keep + 1)
        assert not played.ended
        parser = SSEParser(last_event_id)
        for index, (_, write) in enumerate(played.writes[: keep + 1]):
            kept = write[: max(1, int(len(write) * fraction))] if index == keep else write
            for event in parser.feed(kept):
                assert event.event not in ("error", "reconnect")
                received.append(event)
                # A frame ends with its vehicle update: the client's state is whole there.
                if event.event == "vehicle_update" and len(checked) <= connection // 10:
                    shown = client_state(received)
                    assert shown == true_state(event.json()["t"]), event.json()["t"]
                    checked.append(event.json()["t"])
        cuts_mid_event += parser.mid_event()
        last_event_id = parser.last_event_id
        # The browser's retry delay (a gap the resume limit allows at this speed).
        clock.wall += rng.uniform(0, min(3_000, 100_000 / speed))
    # The last cut may fall inside a frame: resume once more to the end of a frame.
    last = play(session, 600.0, clock=clock, last_event_id=last_event_id, writes=2)
    for _, event in last.events:
        received.append(event)
        if event.event == "vehicle_update":
            break
    snapshots = [e.json()["t"] for e in received if e.event == "snapshot"]
    assert snapshots == [start], "a resume fell back to a snapshot"
    assert cuts_mid_event >= 30, f"only {cuts_mid_event} cuts fell inside an event"
    assert len(checked) >= 9
    reached = received[-1].json()["t"]
    assert received[-1].event == "vehicle_update" and reached > start
    assert client_state(received) == true_state(reached)
    found = [
        (DISCRETE[e.event], row["id"], row["t"])
        for e in received
        if e.event in DISCRETE
        for row in e.json()[DISCRETE[e.event]]
    ]
    assert in_order(found) == discrete_between(start, reached)
    # Dispatch decisions among them (issue 20): each exactly once, across every cut.
    assert sum(kind == "decisions" for kind, _, _ in found) >= 10


def resumes_losslessly(first: Played, session: Session, clock: FakeClock, start: int) -> None:
    """A reconnect with ``first``'s last event id resumes (no snapshot), and the two
    connections together delivered every discrete event since ``start`` exactly once and
    leave the client in the true state."""
    second = play(session, 2.0, clock=clock, last_event_id=first.parser.last_event_id)
    assert second.events[0][1].event != "snapshot", "re-synced instead of resuming"
    reached = second.frames()[-1][1]
    assert in_order(first.discrete() + second.discrete()) == discrete_between(start, reached)
    assert client_state(e for _, e in first.events + second.events) == true_state(reached)


def test_a_resume_delivers_what_the_gap_missed_exactly_once() -> None:
    start = DAY + 600_000
    session = session_of(playing(4.0, start))
    clock = FakeClock()
    first = play(session, 5.0, clock=clock)
    clock.wall += 60_000  # a minute without a connection: 240 s of replay missed
    resumes_losslessly(first, session, clock, start)


def test_a_gap_beyond_the_resume_limit_resyncs_with_a_snapshot() -> None:
    start = DAY + 600_000
    session = session_of(playing(4.0, start))
    clock = FakeClock()
    first = play(session, 2.0, clock=clock, stream_resume_max_gap_ms=60_000)
    clock.wall += 20_000  # 80 s of replay: more than the 60 s allowed plus a frame
    second = play(
        session,
        1.0,
        clock=clock,
        last_event_id=first.parser.last_event_id,
        stream_resume_max_gap_ms=60_000,
    )
    snapshot = second.events[0][1]
    assert snapshot.event == "snapshot" and snapshot.json()["reason"] == "resync"
    assert snapshot.json()["t"] == tick_of(position(session.clock, clock.wall - 1_000))


@pytest.mark.parametrize(
    "last_event_id", ["garbage", "1.2.3", "9.1.2.3", "1.5.2.0", f"1.{DAY - 5_000}.{DAY}.0"]
)
def test_a_cursor_the_stream_cannot_rebuild_resyncs(last_event_id: str) -> None:
    session = session_of(playing(1.0, DAY + 600_000))
    played = play(session, 0.0, last_event_id=last_event_id)
    first = played.events[0][1]
    assert first.event == "snapshot" and first.json()["reason"] == "resync"


# --- limits and the end ----------------------------------------------------------------


def test_the_duration_limit_ends_cleanly_and_resume_continues() -> None:
    start = DAY + 3_600_000
    session = session_of(playing(32.0, start))
    clock = FakeClock()
    first = play(session, 60.0, clock=clock, stream_max_seconds=1.0)
    assert first.ended
    last = first.events[-1]
    assert last[1].event == "reconnect" and last[1].json()["reason"] == "duration_limit"
    assert last[0] == W0 + 1_000
    resumes_losslessly(first, session, clock, start)


def test_the_invocation_deadline_ends_the_stream_before_it() -> None:
    session = session_of(playing(1.0, DAY + 600_000))
    played = play(session, 60.0, deadline_wall_ms=W0 + 10_000)
    assert played.ended and played.events[-1][1].json()["reason"] == "duration_limit"
    assert played.events[-1][0] == W0 + 7_000  # DEADLINE_MARGIN_MS before the deadline


def test_the_byte_limit_ends_cleanly_and_resume_continues() -> None:
    start = DAY + 600_000
    session = session_of(playing(256.0, start))
    clock = FakeClock()
    first = play(session, 600.0, clock=clock, stream_max_bytes=64 * 1024)
    assert first.ended
    assert first.events[-1][1].event == "reconnect"
    assert first.events[-1][1].json()["reason"] == "byte_limit"
    assert sum(len(write) for _, write in first.writes) <= 64 * 1024
    resumes_losslessly(first, session, clock, start)


def test_ending_the_range_sends_end_once_then_heartbeats() -> None:
    end = DAY + 600_000
    clock = PlaybackClock("playing", 32.0, end - 30_000, W0, DAY, end)
    played = play(session_of(clock), 40.0, stream_heartbeat_s=0.2)
    ends = played.named("end")
    assert len(ends) == 1 and ends[0].json()["position"] == end - TICK
    assert played.frames()[-1][1] == end - TICK
    end_wall = next(w for w, e in played.events if e.event == "end")
    reached = W0 + (30_000 - 1) / 32  # the clock at the range's last instant
    assert reached <= end_wall <= reached + 100  # within a (merged) frame interval
    after = [write for wall, write in played.writes if wall > end_wall]
    assert len(after) >= 100 and set(after) == {b": hb\n\n"}  # heartbeats only
    assert played.parser.comments[:2] == ["hb", "hb"]


def test_lapsed_presence_ends_the_stream_and_a_deleted_session_is_an_error() -> None:
    session = session_of(PlaybackClock("paused", 1.0, DAY, W0, DAY, DAY_END))
    # Nobody renews presence: it lapses (what the poller then publishes).
    lapse: list[tuple[float, Change]] = [
        (W0 + 2_000, lambda s, now: replace(s, presence_until=now - 1))
    ]
    idle = play(session, 60.0, changes=lapse)
    assert idle.ended and idle.events[-1][1].event == "reconnect"
    assert idle.events[-1][1].json()["reason"] == "idle"
    gone = play(session, 60.0, changes=[(W0 + 2_000, lambda s, now: None)])
    final = gone.events[-1][1]
    assert gone.ended and final.event == "error" and final.json()["code"] == "session_gone"


def test_a_damaged_chunk_ends_the_stream_with_an_error_whose_id_resumes_losslessly() -> None:
    start = DAY + 600_000 - 10_000
    session = session_of(playing(4.0, start))
    clock = FakeClock()
    source = MemorySource()
    source.broken.add(DAY + 600_000)
    first = play(session, 60.0, clock=clock, source=source)
    final = first.events[-1][1]
    assert first.ended and final.event == "error" and final.json()["code"] == "chunk_damaged"
    cursor = Cursor.parse(first.parser.last_event_id)
    assert cursor is not None and cursor.after == cursor.until == DAY + 600_000 - TICK
    resumes_losslessly(first, session, clock, start)


def test_the_next_chunk_is_asked_for_before_it_is_needed() -> None:
    start = DAY + 60_000
    source = MemorySource()
    played = play(session_of(playing(256.0, start)), 6.0, source=source)
    assert played.frames()[-1][1] > start + 2 * BUCKET * 10
    first_read: dict[int, float] = {}
    for chunk_start, wall in source.reads:
        first_read.setdefault(chunk_start, wall)
    asked: dict[int, float] = {}
    for t, wall in source.prefetched:
        asked.setdefault(t, wall)
    later = [chunk_start for chunk_start in first_read if chunk_start > start]
    assert len(later) >= 20
    for chunk_start in later:  # every chunk after the first was asked for before it was read
        assert asked[chunk_start] < first_read[chunk_start], chunk_start


# --- the pure core on its own ----------------------------------------------------------


def test_the_playhead_is_a_function_of_session_position_and_clock_reading() -> None:
    """No I/O, no clock: the same (session, position, reading) gives the same decision."""
    start = DAY + 600_000
    limits = StreamLimits(10.0, 60_000.0, 1 << 20, 300_000, W0 + 840_000)
    grid = TickGrid(DAY + 600_000, DAY + 660_000, TICK)
    for speed in (1 / 16, 1.0, 4.0, 64.0, 4096.0):
        head = Playhead(session_of(playing(speed, start)), limits, W0)
        head.position = start
        due = W0 + TICK / speed  # when the clock reaches the next tick
        early = head.step(due - 2.0, head.session)
        assert early.action == "wait" and early.at == due
        turn = head.step(due - 0.5, head.session)  # within a timer's resolution: now
        assert turn.action == "frame" and turn.at == due
        assert head.advance(turn.at, grid) == Frame(start, start + TICK)
        # The next frame: a tick later, or a frame interval later when that is sooner.
        head.position = start + TICK
        assert head.next_frame_wall(due) == max(W0 + 2 * TICK / speed, due + 100)
    head = Playhead(session_of(playing(1.0, start)), limits, W0)
    head.position = start + 5 * TICK
    assert head.step(W0 + 1_000, head.session).action == "wait"
    assert head.advance(W0 + 1_000, grid) == Snapshot(start + TICK, "loop")
    assert head.step(W0 + 840_000, head.session).action == "end"
