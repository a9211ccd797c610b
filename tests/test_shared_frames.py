"""Co-watchers share frames: each stream gets byte for byte what it would have rendered alone.

Many real ``Player``s run in one event loop over the in-memory day of
tests/test_player_core.py, on one fake clock: a scheduler moves it only when every stream
waits, to the earliest wake-up (all streams due then are woken together, as co-watchers
are), or to a scripted control change of a session (which wakes that session's streams,
as the poller does). The chunk source yields to the loop on every read, so co-watchers
due at the same instant overlap inside a render.

The reference for every stream is the unshared path, computed here: the same stream,
opened at the same instant with the same Last-Event-ID and the same control changes, run
alone on its own clock with no shared frames. Since the unshared stream is itself checked
against the raw rows (tests/test_player_core.py), equal bytes mean equal truth; one
scenario also checks the client's state against the rows directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from chunker.format.encoding import Manifest
from chunker.format.prepared import PreparedChunk
from chunker.format.records import VehicleType
from functions.app.domain.sessions import Filters, Session
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.player import Player, StreamRuntime
from functions.app.stream.shared_frames import ENTRY_OVERHEAD, SharedFrames
from functions.app.stream.watcher import SessionWatchers
from tests.sse_client import SSEParser
from tests.test_player_core import (
    DAY,
    W0,
    Change,
    FakeClock,
    MemorySource,
    TimeUp,
    app_settings,
    client_state,
    playing,
    session_of,
    true_state,
)

# --- many streams on one fake clock ----------------------------------------------------

RETRY = re.compile(rb"^retry: \d+\n\n")


class YieldingSource(MemorySource):
    """The in-memory day, yielding to the event loop on every chunk read (as a real read
    may), so that renders of co-watchers overlap."""

    async def chunk_at(
        self, airport: str, t: int, prefetch: bool = False, variant: str = "default"
    ) -> tuple[Manifest, PreparedChunk]:
        await asyncio.sleep(0)
        return await super().chunk_at(airport, t, prefetch, variant)


@dataclass(frozen=True)
class Viewer:
    """One stream: of ``session_id``, opened at wall ``opens`` (test time), resuming from
    ``last_event_id`` if given."""

    session_id: str
    opens: float = W0
    last_event_id: str | None = None


class Scheduler:
    """The fake clock and every stream's waits; see the module docstring."""

    def __init__(self, sessions: dict[str, Session], changes: Iterable[tuple[float, str, Change]]):
        self.clock = FakeClock()
        self.sessions = dict(sessions)
        self.running = 0  # streams not blocked in a wait
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = itertools.count()
        self.waiting: dict[str, set[asyncio.Future[None]]] = {sid: set() for sid in sessions}
        for at, session_id, change in changes:
            self.push(at, "change", (session_id, change))

    def push(self, at: float, kind: str, payload: Any) -> None:
        heapq.heappush(self.heap, (at, next(self.seq), kind, payload))

    # The session watch the player sees: its session's latest state, and waits.
    def watch(self, session_id: str) -> Any:
        scheduler = self

        class Watch:
            @property
            def session(self) -> Session | None:
                return scheduler.sessions[session_id]

            async def wait_until(self, deadline: float) -> None:
                await scheduler.wait(session_id, deadline)

        return Watch()

    @contextlib.asynccontextmanager
    async def watching(self, session: Session) -> AsyncIterator[Any]:
        yield self.watch(session.session_id)

    async def wait(self, session_id: str, deadline: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[session_id].add(waiter)
        self.push(self.clock.wall_of(deadline), "wake", waiter)
        self.running -= 1
        try:
            await waiter
        finally:
            self.running += 1
            self.waiting[session_id].discard(waiter)

    async def drive(self, stop: float) -> None:
        """Move the clock from event to event until ``stop``, then end every stream."""
        while True:
            while self.running > 0:
                await asyncio.sleep(0)
            if not self.heap or self.heap[0][0] > stop:
                break
            at = self.heap[0][0]
            self.clock.wall = max(self.clock.wall, at)
            while self.heap and self.heap[0][0] == at:  # everything due now, together
                _, _, kind, payload = heapq.heappop(self.heap)
                if kind == "wake" and not payload.done():
                    payload.set_result(None)
                elif kind == "change":
                    session_id, change = payload
                    current = self.sessions[session_id]
                    assert current is not None
                    self.sessions[session_id] = change(current, self.clock.now_ms())
                    for waiter in self.waiting[session_id]:
                        if not waiter.done():
                            waiter.set_result(None)
                elif kind == "open":
                    payload()
            await asyncio.sleep(0)
        for waiters in self.waiting.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(TimeUp())
        while self.running > 0:
            await asyncio.sleep(0)


@dataclass
class Watched:
    writes: list[list[bytes]]
    shared: SharedFrames | None
    max_held: int = 0  # the most bytes the shared frames held after any write
    frames: int = field(default=0)


def watch(
    sessions: list[Session],
    viewers: list[Viewer],
    seconds: float,
    *,
    changes: Iterable[tuple[float, str, Change]] = (),
    shared: SharedFrames | None = None,
    broken: Iterable[int] = (),
    source: Any = None,
) -> Watched:
    """Run ``viewers`` together for ``seconds`` of test time; every stream's writes.
    ``source``: a chunk source (default: the in-memory day, yielding on every read)."""
    scheduler = Scheduler({s.session_id: s for s in sessions}, changes)
    if source is None:
        source = YieldingSource()
        source.broken.update(broken)
        source.clock = scheduler.clock
    watched = Watched([[] for _ in viewers], shared)
    tasks: list[asyncio.Task[None]] = []

    async def read(index: int, viewer: Viewer) -> None:
        runtime = StreamRuntime(
            settings=app_settings(),
            source=cast(ChunkSource, source),
            watchers=cast(SessionWatchers, scheduler),
            now_ms=scheduler.clock.now_ms,
            monotonic=scheduler.clock.monotonic,
            shared_frames=shared,
        )
        session = scheduler.sessions[viewer.session_id]
        assert session is not None
        try:
            player = Player(runtime, session, viewer.last_event_id)
            stream = player.run(await player.opening())
            try:
                async for write in stream:
                    # The opening's retry field is jittered per stream, on purpose.
                    watched.writes[index].append(RETRY.sub(b"retry: *\n\n", write, count=1))
                    if shared is not None:
                        assert len(shared) <= shared.max_entries
                        watched.max_held = max(watched.max_held, shared.bytes)
            except TimeUp:
                pass
            finally:
                await stream.aclose()
            watched.frames += runtime.stats.frames
        finally:
            scheduler.running -= 1

    async def main() -> None:
        for index, viewer in enumerate(viewers):

            def start(index: int = index, viewer: Viewer = viewer) -> None:
                scheduler.running += 1
                tasks.append(asyncio.ensure_future(read(index, viewer)))

            scheduler.push(viewer.opens, "open", start)
        await scheduler.drive(W0 + seconds * 1000)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return watched


def alone(
    sessions: list[Session],
    viewers: list[Viewer],
    seconds: float,
    changes: Iterable[tuple[float, str, Change]] = (),
    broken: Iterable[int] = (),
) -> list[list[bytes]]:
    """The unshared reference: each viewer's stream run by itself, nothing shared."""
    changes = list(changes)
    return [
        watch(sessions, [viewer], seconds, changes=changes, broken=broken).writes[0]
        for viewer in viewers
    ]


def sse_events(writes: list[bytes]) -> list[Any]:
    parser = SSEParser()
    return [event for write in writes for event in parser.feed(write)]


# --- co-watchers -----------------------------------------------------------------------


def test_ten_co_watchers_at_one_position_get_the_unshared_bytes_from_one_render() -> None:
    """Ten streams of one 10-fps session opened together: each write is the unshared
    stream's, and each frame was rendered once for all ten."""
    start = DAY + 3_600_000 - 20_000  # crosses a chunk and an hour
    session = session_of(playing(10.0, start))
    viewers = [Viewer(session.session_id) for _ in range(10)]
    shared = SharedFrames(8 * 1024 * 1024)
    together = watch([session], viewers, 30.0, shared=shared)
    reference = alone([session], viewers[:1], 30.0)[0]
    assert all(writes == reference for writes in together.writes)
    frames_each = together.frames // 10
    assert frames_each >= 290  # 10 fps for 30 s
    # One render per frame and one per opening snapshot, for all ten streams.
    assert shared.renders <= frames_each + 1
    assert shared.shared >= 9 * frames_each
    # And it is the truth: the client's state at the last frame is the rows'.
    events = sse_events(together.writes[3])
    last = events[-1].json()["t"]
    assert client_state(events) == true_state(last)


def test_co_watchers_at_different_positions_each_get_their_own_bytes() -> None:
    """Late joiners (each opening at another instant, one between two ticks), a reconnect
    resuming mid-frame from its Last-Event-ID, and another session on the same clock with
    filters: every stream's writes are its unshared stream's; the filtered session's
    streams never carry what its filters leave out."""
    start = DAY + 600_000
    plain = session_of(playing(10.0, start))
    filtered = session_of(
        playing(10.0, start), Filters(vehicle_types=[VehicleType.FUEL_TRUCK], flights=["F001"])
    )
    first = alone([plain], [Viewer(plain.session_id)], 2.0)[0]
    events = sse_events(first)
    mid_frame = next(e.id for e in events if e.id and e.id.endswith(".1"))
    viewers = [
        Viewer(plain.session_id),
        Viewer(plain.session_id, W0 + 1_000),
        Viewer(plain.session_id, W0 + 1_050),  # between two ticks of the 10-fps clock
        Viewer(plain.session_id, W0 + 7_300),
        Viewer(plain.session_id, W0 + 2_500, last_event_id=mid_frame),
        Viewer(filtered.session_id),
        Viewer(filtered.session_id, W0 + 3_000),
    ]
    shared = SharedFrames(8 * 1024 * 1024)
    together = watch([plain, filtered], viewers, 20.0, shared=shared)
    assert together.writes == alone([plain, filtered], viewers, 20.0)
    assert shared.shared > 0

    def vehicles(writes: list[bytes]) -> set[str]:
        updates = (e for e in sse_events(writes) if e.event == "vehicle_update")
        return {row["id"] for e in updates for row in e.json()["vehicles"]}

    assert vehicles(together.writes[0]) == {"V1", "V2"}
    assert vehicles(together.writes[5]) == vehicles(together.writes[6]) == {"V1"}
    resumed = sse_events(together.writes[4])
    assert resumed[0].event != "snapshot"  # the reconnect resumed, it did not re-sync


def test_sessions_seeking_independently_mid_stream() -> None:
    """Two sessions of co-watchers on the same start: one seeks back and changes speed,
    the other seeks ahead and changes filters, at different instants; every stream's
    writes are its unshared stream's."""
    start = DAY + 1_800_000
    one = session_of(playing(10.0, start))
    two = session_of(playing(10.0, start))

    def seek(to: int) -> Change:
        return lambda s, now: s.changed(clock=s.clock.seek(now, to), timeline=s.timeline + 1)

    changes: list[tuple[float, str, Change]] = [
        (W0 + 4_000, one.session_id, seek(start - 300_000)),
        (W0 + 6_000, one.session_id, lambda s, now: s.changed(clock=s.clock.set_speed(now, 4.0))),
        (W0 + 5_000, two.session_id, seek(start + 900_000)),
        (
            W0 + 9_000,
            two.session_id,
            lambda s, now: s.changed(filters=Filters(vehicle_ids=["V2"]), timeline=s.timeline + 1),
        ),
    ]
    viewers = [Viewer(s.session_id, W0 + k * 700) for s in (one, two) for k in range(4)]
    shared = SharedFrames(8 * 1024 * 1024)
    together = watch([one, two], viewers, 14.0, changes=changes, shared=shared)
    assert together.writes == alone([one, two], viewers, 14.0, changes)
    snapshots = [e for e in sse_events(together.writes[0]) if e.event == "snapshot"]
    assert [s.json()["reason"] for s in snapshots] == ["start", "control"]


@pytest.mark.parametrize(("max_bytes", "max_entries"), [(4 * 1024, 4096), (8 * 1024 * 1024, 2)])
def test_a_tiny_bound_evicts_and_changes_no_byte(max_bytes: int, max_entries: int) -> None:
    """With room for a frame or two, streams render again what was evicted: the same
    bytes, and the shared frames never hold more than their bound."""
    start = DAY + 600_000
    session = session_of(playing(10.0, start))
    others = session_of(playing(10.0, start + 30_000))
    viewers = [Viewer(s.session_id, W0 + k * 330) for s in (session, others) for k in range(3)]
    shared = SharedFrames(max_bytes, max_entries)
    together = watch([session, others], viewers, 8.0, shared=shared)
    assert together.writes == alone([session, others], viewers, 8.0)
    assert together.max_held <= max_bytes
    assert len(shared) <= max_entries


def test_a_damaged_chunk_ends_every_co_watcher_as_it_ends_one() -> None:
    start = DAY + 600_000 - 5_000
    session = session_of(playing(10.0, start))
    viewers = [Viewer(session.session_id) for _ in range(5)]
    shared = SharedFrames(8 * 1024 * 1024)
    broken = [DAY + 600_000]
    together = watch([session], viewers, 10.0, shared=shared, broken=broken)
    reference = alone([session], viewers[:1], 10.0, broken=broken)[0]
    assert all(writes == reference for writes in together.writes)
    final = sse_events(reference)[-1]
    assert final.event == "error" and final.json()["code"] == "chunk_damaged"
    assert len(shared) < shared.max_entries  # nothing kept for the failed frame
    assert shared._rendering == {}


# --- the cache itself ------------------------------------------------------------------


def test_a_renderer_whose_client_left_hands_the_render_to_its_waiters() -> None:
    """The first stream is cancelled mid-render (its client left): the stream waiting on
    it is not cancelled, renders the frame itself, and the frame is kept."""

    async def main() -> None:
        shared = SharedFrames(1024 * 1024)
        release = asyncio.Event()
        renders: list[str] = []

        async def slow() -> bytes:
            renders.append("first")
            await release.wait()
            return b"never"

        async def quick() -> bytes:
            renders.append("second")
            return b"frame"

        first = asyncio.ensure_future(shared.get("k", slow))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(shared.get("k", quick))
        await asyncio.sleep(0)
        first.cancel()
        assert await second == b"frame"
        with pytest.raises(asyncio.CancelledError):
            await first
        assert renders == ["first", "second"]
        assert await shared.get("k", slow) == b"frame"  # kept: not rendered again
        assert shared.bytes == len(b"frame") + ENTRY_OVERHEAD

    asyncio.run(main())


def test_a_failed_render_fails_its_waiters_and_is_not_kept() -> None:
    async def main() -> None:
        shared = SharedFrames(1024 * 1024)
        gate = asyncio.Event()

        async def failing() -> bytes:
            await gate.wait()
            raise OSError("S3 is down")

        async def working() -> bytes:
            return b"frame"

        first = asyncio.ensure_future(shared.get("k", failing))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(shared.get("k", working))
        await asyncio.sleep(0)
        gate.set()
        for waiter in (first, second):
            with pytest.raises(OSError, match="S3 is down"):
                await waiter
        assert len(shared) == 0 and shared.bytes == 0
        assert await shared.get("k", working) == b"frame"  # the next ask reads again

    asyncio.run(main())


def test_a_frame_larger_than_the_bound_is_handed_out_not_kept() -> None:
    async def main() -> None:
        shared = SharedFrames(1000)

        async def big() -> bytes:
            return b"x" * 1000

        assert await shared.get("k", big) == b"x" * 1000
        assert len(shared) == 0 and shared.bytes == 0

    asyncio.run(main())
