"""One stream's I/O shell: fetches chunk data, writes SSE, waits — around ``playhead``.

Every decision (pacing, merging, control changes, wraps, resume, limits) is made by the
pure ``Playhead``; this module reads the clock, fetches what a decision needs from the
chunk source, counts, and writes. The clock is injected (``StreamRuntime.now_ms`` and
``monotonic``), so tests drive the whole loop on a fake clock.

Pacing: the wall clock is read once at the start and mapped onto the monotonic clock, so
wall-clock steps cannot jitter the stream. Each frame's target time is computed from the
session's anchor (never by adding sleeps), so errors do not accumulate: a frame is due when
the playback position reaches the next tick, or ``1/max_fps`` after the previous frame at
high speed, in which case the frame merges every tick in between.

Every write is one or more complete SSE events. Position ``P`` only advances after a write
was handed over, so whatever ends the stream, the last event id tells a reconnecting client
exactly where to resume (see ``cursor``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from chunker.format.encoding import Manifest
from chunker.format.prepared import PreparedState, PreparedTick
from functions.app.domain.errors import DomainError
from functions.app.domain.sessions import Filters, Session
from functions.app.settings import AppSettings
from functions.app.stream import sse
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.cursor import Cursor
from functions.app.stream.playhead import (
    RETRY_MS,
    Frame,
    Move,
    Playhead,
    Snapshot,
    Staleness,
    StreamLimits,
    TickGrid,
)
from functions.app.stream.shared_frames import SharedFrames
from functions.app.stream.watcher import SessionWatch, SessionWatchers

logger = Logger()  # service name: POWERTOOLS_SERVICE_NAME


class OpeningTooLarge(DomainError):
    """The opening write (snapshot and its prelude) alone exceeds ``STREAM_MAX_BYTES``: a
    configuration error (raise the limit or filter), so no Retry-After."""

    slug = "stream-byte-limit"
    status = 503
    title = "The first write is larger than the stream's byte limit"


DEADLINE_MARGIN_MS = 3000  # stop this long before the invocation deadline
FINAL_WRITE_GRACE_MS = 1000  # a write still blocked this long after the deadline is dropped


@dataclass
class StreamStats:
    """Process-wide stream counters (for operations and benchmarks).

    ``lateness_ms``: each frame's lateness (sent minus due, ms), kept only when a benchmark
    asks for it (bench/stream_app.py sets a bounded deque); None in production.
    """

    open_streams: int = 0
    frames: int = 0
    bytes: int = 0
    snapshots: int = 0
    send_timeouts: int = 0  # streams ended because their client stopped reading
    lateness_ms: deque[float] | None = None

    def count_send_timeout(self) -> None:
        self.send_timeouts += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "open_streams": self.open_streams,
            "frames": self.frames,
            "bytes": self.bytes,
            "snapshots": self.snapshots,
            "send_timeouts": self.send_timeouts,
            "lateness_samples": 0 if self.lateness_ms is None else len(self.lateness_ms),
        }


@dataclass
class StreamRuntime:
    """What all streams of a process share. ``monotonic`` must be the clock of the event
    loop's timers (``time.monotonic``): ``SessionWatch.wait_until`` takes its readings.
    ``shared_frames``: frames rendered once for every co-watcher (None: each stream
    renders its own)."""

    settings: AppSettings
    source: ChunkSource
    watchers: SessionWatchers
    now_ms: Callable[[], int]
    stats: StreamStats = field(default_factory=StreamStats)
    monotonic: Callable[[], float] = time.monotonic
    shared_frames: SharedFrames | None = None


def _size(*parts: bytes | list[bytes]) -> int:
    return sum(len(p) if isinstance(p, bytes) else sum(map(len, p)) for p in parts)


class Player:
    """One open stream: the I/O around its ``Playhead``."""

    def __init__(
        self,
        runtime: StreamRuntime,
        session: Session,
        last_event_id: str | None,
        deadline_wall_ms: int | None = None,
        prelude: list[bytes] | None = None,
        variant: str | None = None,
    ) -> None:
        self.runtime = runtime
        # Which of the session's variants this stream plays (its own by default): a compare
        # view opens one stream per variant on one session, so one clock drives both.
        self.variant = session.variant if variant is None else variant
        settings = self.settings = runtime.settings
        self.resume_requested = bool(last_event_id)
        self.cursor_in = Cursor.parse(last_event_id)
        self.prelude = prelude or []
        # One reading of the wall clock, mapped onto the monotonic clock.
        self._mono0 = runtime.monotonic()
        self._wall0 = runtime.now_ms()
        deadline = self._wall0 + settings.stream_max_seconds * 1000
        if deadline_wall_ms is not None:
            deadline = min(deadline, deadline_wall_ms - DEADLINE_MARGIN_MS)
        limits = StreamLimits(
            max_fps=settings.stream_max_fps,
            heartbeat_ms=settings.stream_heartbeat_s * 1000,
            max_bytes=settings.stream_max_bytes,
            resume_max_gap_ms=settings.stream_resume_max_gap_ms,
            deadline=deadline,
        )
        staleness = Staleness(
            settings.mover_fade_after_s * 1000, settings.mover_hide_after_s * 1000
        )
        self.playhead = Playhead(session, limits, float(self._wall0), staleness)
        self._filters: tuple[Filters, str] | None = None  # the session's, and their key
        self._grid: TickGrid | None = None  # of the chunk the last frame fell in

    @property
    def session(self) -> Session:
        return self.playhead.session

    # --- clocks ------------------------------------------------------------------------

    def wall_now(self) -> float:
        """Wall time (ms) by the monotonic clock."""
        return self._wall0 + (self.runtime.monotonic() - self._mono0) * 1000

    def mono_of(self, wall_ms: float) -> float:
        """Monotonic time (s) of a wall time (ms)."""
        return self._mono0 + (wall_ms - self._wall0) / 1000

    def hard_deadline(self) -> float:
        """Monotonic time (s) past which no write may still block: the duration limit plus
        a grace for the final event (the response class enforces it)."""
        return self.mono_of(self.playhead.limits.deadline + FINAL_WRITE_GRACE_MS)

    # --- fetching: everything the playhead needs, and nothing else ----------------------

    async def grid_at(self, t: int) -> TickGrid:
        """The tick grid of the chunk holding ``t``."""
        _, chunk = await self.runtime.source.chunk_at(self.session.airport, t, variant=self.variant)
        self._grid = TickGrid.of(chunk)
        return self._grid

    async def frame_grid_at(self, t: int) -> TickGrid:
        """``grid_at`` for the loop's frames: the last frame's grid while ``t`` stays in its
        chunk (a chunk's grid is fixed; finding the chunk again costs more than the frame's
        share of a co-watched render)."""
        grid = self._grid
        if grid is not None and grid.start <= t < grid.end:
            return grid
        return await self.grid_at(t)

    async def state_at(self, t: int) -> tuple[PreparedState, Manifest]:
        """The state at tick-aligned ``t``, and the manifest of its day."""
        manifest, chunk = await self.runtime.source.chunk_at(
            self.session.airport, t, variant=self.variant
        )
        return chunk.state_at(t), manifest

    async def ticks(self, after: int, until: int) -> tuple[list[PreparedTick], Manifest]:
        """Every delta tick with ``after < t <= until`` (``after < until``), across chunks
        and days; and the manifest of the last day touched."""
        return await self.runtime.source.ticks(
            self.session.airport, after + 1, until + 1, self.variant
        )

    async def render(self, move: Move | None) -> bytes:
        """The events of ``move``: rendered here, or, with shared frames, the bytes a
        co-watcher's identical render left (see ``shared_frames``); P moves past it."""
        playhead = self.playhead
        if move is None:
            return b""
        if isinstance(move, Snapshot):
            self.runtime.stats.snapshots += 1
        elif move.until <= move.after:
            return playhead.frame(move, (), None)
        shared = self.runtime.shared_frames
        if shared is None or (isinstance(move, Frame) and move.skip):
            return await self._render(move)
        data = await shared.get(self._share_key(move), lambda: self._render(move))
        playhead.took(move)
        return data

    def _share_key(self, move: Move) -> tuple[object, ...]:
        """Everything the bytes of ``move`` depend on besides the published data."""
        session = self.session
        filters = session.filters
        if self._filters is None or self._filters[0] is not filters:
            self._filters = (filters, filters.model_dump_json())
        if isinstance(move, Snapshot):
            timeline = session.timeline  # what the snapshot's data and id carry
            return (session.session_id, self.variant, timeline, self._filters[1], "snapshot", *move)
        return (
            session.session_id,
            self.variant,
            self.playhead.timeline,
            self._filters[1],
            "frame",
            *move,
        )

    async def _render(self, move: Move) -> bytes:
        playhead = self.playhead
        if isinstance(move, Snapshot):
            state, manifest = await self.state_at(move.at)
            return playhead.snapshot(move, state, manifest)
        ticks, manifest = await self.ticks(move.after, move.until)
        return playhead.frame(move, ticks, manifest)

    # --- opening -----------------------------------------------------------------------

    async def opening(self) -> bytes:
        """The first write: retry, prelude, playback state, then resume or a snapshot.

        Called before the response starts, so a failure here becomes an HTTP error. Like
        every write it fits the byte limit: a resume that would not is replaced by a
        snapshot, and a snapshot that would not is an error (the limit is too small).
        """
        playhead = self.playhead
        now = self.wall_now()
        t = self.session.clock.position_at(now)
        current = playhead.align(await self.grid_at(t), t)
        head = [sse.retry(RETRY_MS), *self.prelude]
        out: bytes | None = None
        frames = playhead.resume(self.cursor_in, current)
        if frames is not None:
            body = b"".join([await self.render(frame) for frame in frames])
            out = playhead.opening(head, body, now)  # None: too much missed for one write
        if out is None:
            snapshot = Snapshot(current, "resync" if self.resume_requested else "start")
            body = await self.render(snapshot)
            out = playhead.opening(head, body, now)
        if out is None:
            size = _size(head, body, playhead.opening_tail(now))
            raise OpeningTooLarge(
                f"the opening snapshot takes {size:,} bytes; STREAM_MAX_BYTES is "
                f"{self.settings.stream_max_bytes:,}"
            )
        return out

    # --- the loop ----------------------------------------------------------------------

    async def advance(self, target: float) -> bytes:
        """The writes due at wall time ``target``: its frame (or a snapshot after a wrap)
        and the end of the range once reached."""
        playhead = self.playhead
        grid = await self.frame_grid_at(self.session.clock.position_at(target))
        move = playhead.advance(target, grid)
        out = await self.render(move)
        if isinstance(move, Frame):
            stats = self.runtime.stats
            stats.frames += 1
            if stats.lateness_ms is not None:
                stats.lateness_ms.append(self.wall_now() - target)
        prefetch = playhead.prefetch()
        if prefetch is not None:
            self.runtime.source.prefetch(self.session.airport, prefetch, self.variant)
        return out + playhead.ending(target)

    async def control_changed(self, new: Session) -> bytes:
        """Writes caused by a control change (the session's version moved)."""
        now = self.wall_now()
        grid = await self.grid_at(new.clock.position_at(now))
        out = await self.render(self.playhead.control(new, now, grid))
        return out + self.playhead.playback(now)

    def final(self, name: str, reason: str, **extra: object) -> bytes:
        return self.playhead.final(name, reason, **extra)

    def chunk_error(self, exc: Exception) -> bytes:
        """The final event when the next frame cannot be read. Its id is the position
        before that frame, so a client that reconnects loses and repeats nothing.

        ``chunk_damaged``: the published data itself is unreadable (corrupt or missing
        chunk); retrying helps only once it is re-chunked. ``chunk_unavailable``: S3 failed
        after its retries, or was slower than the wait bound; retrying soon should work.
        """
        fields = sse.error_fields(exc)
        # The exception names S3 keys and carries botocore's text: logged, never sent.
        logger.warning(
            "stream chunk error", extra={"code": fields["code"], "error": str(exc)[:300]}
        )
        return self.final("error", fields["code"], **fields)

    async def run(self, first: bytes) -> AsyncGenerator[bytes, None]:
        """The stream's writes, starting with ``first`` (from ``opening``)."""
        runtime = self.runtime
        stats = runtime.stats
        stats.open_streams += 1
        try:
            async with runtime.watchers.watching(self.session) as watch:
                async for write in self._loop(watch, first):
                    self.playhead.sent(write, self.wall_now())
                    stats.bytes += len(write)
                    yield write
        finally:
            stats.open_streams -= 1

    async def _loop(self, watch: SessionWatch, first: bytes) -> AsyncIterator[bytes]:
        playhead = self.playhead
        yield first
        while True:
            turn = playhead.step(self.wall_now(), watch.session)
            if turn.action == "end":
                yield turn.final
                return
            if turn.action == "control" and watch.session is not None:
                yield await self.control_changed(watch.session)
                continue
            if turn.action == "frame":
                mark = playhead.mark()
                try:
                    out = await self.advance(turn.at)
                except Exception as exc:  # noqa: BLE001 - reported to the client, then resumable
                    yield self.chunk_error(exc)
                    return
                if out:
                    if not playhead.fits(out):
                        playhead.rewind(mark)  # not sent: the client resumes from before it
                        yield self.final("reconnect", "byte_limit")
                        return
                    yield out
                continue
            if turn.action == "heartbeat":
                yield sse.comment("hb")
                continue
            await watch.wait_until(self.mono_of(turn.at))
