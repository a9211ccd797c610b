"""One stream: paces frames against a session's playback clock and follows its control.

Pacing: the wall clock is read once at the start and mapped onto ``time.monotonic()``, so
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
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import orjson
from aws_lambda_powertools import Logger

from chunker.format.encoding import CorruptChunk, Manifest
from chunker.format.prepared import PreparedTick
from chunker.format.state import floor_tick
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Session
from functions.app.settings import AppSettings
from functions.app.stream import sse
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.cursor import Cursor
from functions.app.stream.frames import FilterPlan, frame_events, snapshot_data
from functions.app.stream.pacing import frame_due, frame_target, next_step
from functions.app.stream.watcher import SessionWatch, SessionWatchers
from functions.app.web.problems import Problem

RETRY_MS = 3000
CHUNK_ERROR_MESSAGES = {
    "chunk_damaged": "replay data for this position is damaged; retry later",
    "chunk_unavailable": "replay data is temporarily unavailable; reconnect",
}
logger = Logger(service="dispatch-replay-api")
END_RESERVE_BYTES = 1024  # room kept for the final event under the byte limit
DEADLINE_MARGIN_MS = 3000  # stop this long before the invocation deadline
FINAL_WRITE_GRACE_MS = 1000  # a write still blocked this long after the deadline is dropped
PREFETCH_LEAD_S = 3.0  # start loading the next chunk this long (wall time) before it is due


@dataclass
class StreamStats:
    """Process-wide stream counters (for operations and benchmarks)."""

    open_streams: int = 0
    frames: int = 0
    bytes: int = 0
    snapshots: int = 0
    send_timeouts: int = 0  # streams ended because their client stopped reading
    lateness_ms: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))

    def count_send_timeout(self) -> None:
        self.send_timeouts += 1

    def as_dict(self) -> dict[str, object]:
        return {
            "open_streams": self.open_streams,
            "frames": self.frames,
            "bytes": self.bytes,
            "snapshots": self.snapshots,
            "send_timeouts": self.send_timeouts,
            "lateness_samples": len(self.lateness_ms),
        }


@dataclass
class StreamRuntime:
    """What all streams of a process share."""

    settings: AppSettings
    source: ChunkSource
    watchers: SessionWatchers
    now_ms: Callable[[], int]
    stats: StreamStats = field(default_factory=StreamStats)


def _size(*parts: bytes | list[bytes]) -> int:
    return sum(len(p) if isinstance(p, bytes) else sum(map(len, p)) for p in parts)


class StreamClosed(Exception):
    """Raised inside the player to end the stream after a final event was queued."""


def ahead_of(clock: PlaybackClock, position: int, current: int) -> bool:
    """Whether a stream at ``position`` has shown what ``clock``, now at ``current``, has
    not reached: it is past ``current``, or, looping, it wrapped while the clock has not (a
    change made before that wrap reached the stream after it) and the clock would need most
    of a pass to come round. Frames only move forward, so such a stream goes back with a
    snapshot: waiting for the clock to come round would be seconds of silence."""
    if current < position:
        return True
    return clock.loop and current - position > (clock.range_end - clock.range_start) / 2


class Player:
    """The state of one open stream."""

    def __init__(
        self,
        runtime: StreamRuntime,
        session: Session,
        last_event_id: str | None,
        deadline_wall_ms: int | None = None,
        prelude: list[bytes] | None = None,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.session = session
        self.resume_requested = bool(last_event_id)
        self.cursor_in = Cursor.parse(last_event_id)
        self.prelude = prelude or []
        # One reading of the wall clock, mapped onto the monotonic clock.
        self._mono0 = time.monotonic()
        self._wall0 = runtime.now_ms()
        limit = self._wall0 + self.settings.stream_max_seconds * 1000
        if deadline_wall_ms is not None:
            limit = min(limit, deadline_wall_ms - DEADLINE_MARGIN_MS)
        self.deadline_wall = limit
        self.position = 0  # P: every tick <= P has been delivered (tick-aligned)
        self.timeline = session.timeline
        self.tick_ms = 1000
        self.chunk_end = 0  # end of the chunk holding P
        self.prefetched = 0  # start of the last chunk this stream asked to prefetch
        self.last_target = -1e18
        self.ended_sent = False
        self.bytes_sent = 0
        self.last_write_wall = float(self._wall0)
        self._plans: dict[str, FilterPlan] = {}

    # --- clocks ------------------------------------------------------------------------

    def wall_now(self) -> float:
        """Wall time (ms) by the monotonic clock."""
        return self._wall0 + (time.monotonic() - self._mono0) * 1000

    def mono_of(self, wall_ms: float) -> float:
        """Monotonic time (s) of a wall time (ms)."""
        return self._mono0 + (wall_ms - self._wall0) / 1000

    def hard_deadline(self) -> float:
        """Monotonic time (s) past which no write may still block: the duration limit plus
        a grace for the final event (the response class enforces it)."""
        return self.mono_of(self.deadline_wall + FINAL_WRITE_GRACE_MS)

    # --- building blocks ---------------------------------------------------------------

    @property
    def airport(self) -> str:
        return self.session.airport

    def plan(self, manifest: Manifest) -> FilterPlan:
        plan = self._plans.get(manifest.version)
        if plan is None:
            types = {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles}
            plan = self._plans[manifest.version] = FilterPlan(self.session.filters, types)
        return plan

    def cursor(self) -> Cursor:
        """Where the client is after everything written so far."""
        return Cursor(self.timeline, self.position, self.position, 0)

    def event(self, name: str, payload: object) -> bytes:
        return sse.event(name, orjson.dumps(payload), str(self.cursor()))

    async def aligned(self, t: int) -> tuple[int, Manifest]:
        """``t`` floored to its tick, and the manifest of its day."""
        manifest, chunk = await self.runtime.source.chunk_at(self.airport, t)
        self.tick_ms = chunk.tick_ms
        self.chunk_end = chunk.end
        return floor_tick(t, chunk.start, chunk.tick_ms), manifest

    def prefetch_next_chunk(self) -> None:
        """Load the next chunk in the background once playback is within
        ``PREFETCH_LEAD_S`` wall seconds of it, so no frame waits for S3."""
        clock = self.session.clock
        if clock.state != "playing" or self.prefetched >= self.chunk_end:
            return
        if self.chunk_end - self.position <= clock.speed * PREFETCH_LEAD_S * 1000:
            self.prefetched = self.chunk_end
            target = self.chunk_end if self.chunk_end < clock.range_end else clock.range_start
            self.runtime.source.prefetch(self.airport, target)

    async def ticks(self, after: int, until: int) -> tuple[list[PreparedTick], Manifest]:
        """Every delta tick with ``after < t <= until`` (``after < until``), across chunks
        and days; and the manifest of the last day touched."""
        return await self.runtime.source.ticks(self.airport, after + 1, until + 1)

    def playback_payload(self, now: float) -> dict[str, object]:
        clock = self.session.clock
        return {
            "state": clock.status_at(now),
            "speed": clock.speed,
            "position": clock.position_at(now),
            "range": {"start": clock.range_start, "end": clock.range_end},
            "loop": clock.loop,
            "version": self.session.version,
            "timeline": self.session.timeline,
            "server_time": int(now),
        }

    async def snapshot(self, at: int, reason: str) -> bytes:
        """A snapshot event at tick-aligned ``at``; moves ``P`` there."""
        manifest, chunk = await self.runtime.source.chunk_at(self.airport, at)
        state = chunk.state_at(at)
        data = snapshot_data(state, at, self.plan(manifest), reason, self.session.timeline)
        self.timeline = self.session.timeline
        self.position = at
        self.runtime.stats.snapshots += 1
        return sse.event("snapshot", data, str(self.cursor()))

    async def frame(self, after: int, until: int, skip: int = 0) -> bytes:
        """Events of frame ``(after, until]`` (minus the first ``skip``), ids included."""
        if until <= after:
            self.position = until
            return b""
        ticks, manifest = await self.ticks(after, until)
        events = frame_events(ticks, until, self.plan(manifest))
        parts = []
        for index, (name, data) in enumerate(events, start=1):
            if index > skip:
                cursor = Cursor(self.timeline, after, until, index)
                parts.append(sse.event(name, data, str(cursor)))
        self.position = until
        return b"".join(parts)

    # --- opening -----------------------------------------------------------------------

    def resumable(self, cursor: Cursor | None, current: int) -> bool:
        """Whether the stream can resume at ``cursor`` by rebuilding the frames from it to
        ``current``: same timeline, inside the session's range, and no further back than
        the resume gap plus one frame. Anything else (a cursor from another range or day, or
        a forged one) re-syncs with a snapshot, so the work before the first byte is bounded
        by the session, not by the client's header."""
        if cursor is None or cursor.timeline != self.session.timeline:
            return False
        clock = self.session.clock
        frame_span = clock.speed * 1000 / self.settings.stream_max_fps + self.tick_ms
        return (
            clock.range_start - self.tick_ms < cursor.after
            and cursor.until <= clock.range_end
            and not ahead_of(clock, cursor.until, current)
            and current - cursor.after <= self.settings.stream_resume_max_gap_ms + frame_span
        )

    async def opening(self) -> bytes:
        """The first write: retry, prelude, playback state, then resume or a snapshot.

        Called before the response starts, so a failure here becomes an HTTP error. Like
        every write it fits the byte limit: a resume that would not is replaced by a
        snapshot, and a snapshot that would not is an error (the limit is too small).
        """
        now = self.wall_now()
        clock = self.session.clock
        current, _ = await self.aligned(clock.position_at(now))
        parts = [sse.retry(RETRY_MS), *self.prelude]
        cursor = self.cursor_in
        limit = self.settings.stream_max_bytes - END_RESERVE_BYTES

        # A function, not a list: built after the body, whose frames move P, and the
        # tail's event ids (and the end event's position) carry that P.
        def tail() -> list[bytes]:
            ended = [self.end_event()] if clock.status_at(now) == "ended" else []
            return [self.event("playback", self.playback_payload(now)), *ended]

        body: bytes | None = None
        if cursor is not None and self.resumable(cursor, current):
            self.position = cursor.after
            body = await self.frame(cursor.after, cursor.until, skip=cursor.delivered)
            self.position = cursor.until
            if current > cursor.until:
                body += await self.frame(cursor.until, current)
            if _size(parts, body, tail()) > limit:
                body = None  # too much missed for one write: a snapshot instead
        if body is None:
            reason = "resync" if self.resume_requested else "start"
            body = await self.snapshot(current, reason)
        out = b"".join([*parts, body, *tail()])
        if len(out) > limit:
            raise Problem(
                503,
                "stream-byte-limit",
                "The first write is larger than the stream's byte limit",
                f"the opening snapshot takes {len(out):,} bytes; STREAM_MAX_BYTES is "
                f"{self.settings.stream_max_bytes:,}",
            )
        return out

    def end_event(self) -> bytes:
        self.ended_sent = True
        return self.event("end", {"reason": "end_of_range", "position": self.position})

    # --- the loop ----------------------------------------------------------------------

    def next_frame_wall(self) -> float | None:
        """Wall time of the next frame, or None while nothing will advance."""
        due = frame_due(
            self.session.clock, self.position, self.tick_ms, self.ended_sent, self.wall_now()
        )
        return frame_target(due, self.last_target, 1000 / self.settings.stream_max_fps)

    async def advance(self, target: float) -> bytes:
        """The frame due at wall time ``target`` (empty if the position did not move)."""
        clock = self.session.clock
        self.last_target = target
        current, _ = await self.aligned(clock.position_at(target))
        if current < self.position:  # looped back to the start of the range
            return await self.snapshot(current, "loop")
        out = b""
        if current > self.position:
            out = await self.frame(self.position, current)
            self.runtime.stats.frames += 1
            self.runtime.stats.lateness_ms.append(self.wall_now() - target)
        self.prefetch_next_chunk()
        if not self.ended_sent and clock.status_at(target) == "ended":
            out += self.end_event()
        return out

    async def control_changed(self, new: Session) -> bytes:
        """Writes caused by a control change (the session's version moved)."""
        old = self.session
        self.session = new
        if new.filters != old.filters:
            self._plans.clear()
        now = self.wall_now()
        current, _ = await self.aligned(new.clock.position_at(now))
        out = b""
        if new.timeline != self.timeline or ahead_of(new.clock, self.position, current):
            out += await self.snapshot(current, "control")
            self.ended_sent = False
            self.last_target = -1e18
        elif new.clock != old.clock:
            self.last_target = -1e18
            if new.clock.status_at(now) != "ended":
                self.ended_sent = False
        out += self.event("playback", self.playback_payload(now))
        return out

    def final(self, name: str, reason: str, **extra: object) -> bytes:
        return self.event(name, {"reason": reason, "retry_ms": RETRY_MS, **extra})

    def chunk_error(self, exc: Exception) -> bytes:
        """The final event when the next frame cannot be read. Its id is the position
        before that frame, so a client that reconnects loses and repeats nothing.

        ``chunk_damaged``: the published data itself is unreadable (corrupt or missing
        chunk); retrying helps only once it is re-chunked. ``chunk_unavailable``: S3 failed
        after its retries, or was slower than the wait bound; retrying soon should work.
        """
        code = "chunk_damaged" if isinstance(exc, CorruptChunk) else "chunk_unavailable"
        # The exception names S3 keys and carries botocore's text: logged, never sent.
        logger.warning("stream chunk error", extra={"code": code, "error": str(exc)[:300]})
        return self.final("error", code, code=code, message=CHUNK_ERROR_MESSAGES[code])

    async def run(self, first: bytes) -> AsyncIterator[bytes]:
        """The stream's writes, starting with ``first`` (from ``opening``)."""
        runtime = self.runtime
        stats = runtime.stats
        stats.open_streams += 1
        try:
            async with runtime.watchers.watching(self.session) as watch:
                async for chunk in self._loop(watch, first):
                    self.bytes_sent += len(chunk)
                    stats.bytes += len(chunk)
                    self.last_write_wall = self.wall_now()
                    yield chunk
        finally:
            stats.open_streams -= 1

    async def _loop(self, watch: SessionWatch, first: bytes) -> AsyncIterator[bytes]:
        settings = self.settings
        heartbeat_ms = settings.stream_heartbeat_s * 1000
        yield first
        while True:
            current = watch.session
            if current is None:
                yield self.final(
                    "error",
                    "session_gone",
                    code="session_gone",
                    message="the session was deleted or expired",
                )
                return
            if current.version != self.session.version:
                out = await self.control_changed(current)
                if out:
                    yield out
                continue
            now = self.wall_now()
            if current.presence_until < now:
                self.session = current
                yield self.final("reconnect", "idle")
                return
            if now >= self.deadline_wall:
                yield self.final("reconnect", "duration_limit")
                return
            target = self.next_frame_wall()
            step = next_step(now, target, self.last_write_wall, heartbeat_ms, self.deadline_wall)
            if step.action == "frame" and target is not None:
                saved = (self.position, self.timeline, self.ended_sent, self.last_target)
                try:
                    # The frame due at ``target``, sent now (at most MIN_WAIT_MS early: a
                    # timer wakes a little before its time, and the frame sampled at "now"
                    # would miss its tick and wait a whole frame interval for the next).
                    out = await self.advance(target)
                except Exception as exc:  # noqa: BLE001 - reported to the client, then resumable
                    yield self.chunk_error(exc)
                    return
                if out:
                    if self.bytes_sent + len(out) > settings.stream_max_bytes - END_RESERVE_BYTES:
                        # Not sent: the client resumes from before this frame.
                        self.position, self.timeline, self.ended_sent, self.last_target = saved
                        yield self.final("reconnect", "byte_limit")
                        return
                    yield out
                continue
            if step.action == "heartbeat":
                yield sse.comment("hb")
                continue
            await watch.wait_until(self.mono_of(step.at))
