"""The player's pure core: where one stream is, and what it sends next.

Nothing here reads a clock or fetches anything. Every decision takes the wall time (ms) it
is made for, and every event is rendered from chunk data the I/O shell (``player``)
fetched and passed in as plain values (a tick grid, ticks, a state, a manifest). So the
whole of a stream's logic — pacing at any speed, merging ticks into frames at high speed,
following control changes, loop wraps, resume cursors, its limits — runs on a fake clock
in tests, in milliseconds of test time (tests/test_player_core.py).

The shell's loop, once per turn: ``step(now, session)`` says what to do (a frame, a
heartbeat, a wait, a control change to follow, or the end); for a frame or a control
change the shell fetches the grid of the chunk holding the clock's position, asks
``advance`` / ``control`` for the ``Move`` (a frame or a snapshot), fetches the move's
data and renders it with ``frame`` / ``snapshot``.

Position ``P`` (``position``: every tick <= P has been delivered, tick-aligned) only moves
when an event is rendered, and a write the byte limit refuses is rewound (``mark`` /
``rewind``), so the last event id a client received always says where to resume (see
``cursor``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import orjson

from chunker.format.encoding import Manifest
from chunker.format.prepared import PreparedChunk, PreparedState, PreparedTick
from chunker.format.state import floor_tick
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Session
from functions.app.stream import sse
from functions.app.stream.cursor import Cursor
from functions.app.stream.frames import FilterPlan, frame_events, snapshot_data
from functions.app.stream.pacing import frame_due, frame_target, next_step

RETRY_MS = 3000
END_RESERVE_BYTES = 1024  # room kept for the final event under the byte limit
PREFETCH_LEAD_S = 3.0  # start loading the next chunk this long (wall time) before it is due
NEVER = -1e18  # "no frame sent yet" as a wall time


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The numbers that bound one stream (from the settings and the invocation)."""

    max_fps: float
    heartbeat_ms: float
    max_bytes: int
    resume_max_gap_ms: int
    deadline: float  # wall ms: the stream ends itself here (duration / invocation limit)
    # The ``reconnect`` reason at the deadline; a draining server moves the deadline to
    # now with reason ``draining`` (functions/app/stream/drain.py).
    deadline_reason: str = "duration_limit"

    @property
    def write_limit(self) -> int:
        """Bytes the stream may write before its final event."""
        return self.max_bytes - END_RESERVE_BYTES


@dataclass(frozen=True, slots=True)
class Staleness:
    """When the page fades, then hides, a mover whose last fix is this old in replay time
    (``MOVER_FADE_AFTER_S`` / ``MOVER_HIDE_AFTER_S``); sent in every snapshot."""

    fade_after_ms: int = 90_000
    hide_after_ms: int = 600_000

    def json(self) -> bytes:
        return orjson.dumps(
            {"fade_after_ms": self.fade_after_ms, "hide_after_ms": self.hide_after_ms}
        )


class TickGrid(NamedTuple):
    """The chunk around a replay instant: where its ticks fall and where it ends."""

    start: int
    end: int
    tick_ms: int

    @classmethod
    def of(cls, chunk: PreparedChunk) -> TickGrid:
        return cls(chunk.start, chunk.end, chunk.tick_ms)

    def floor(self, t: int) -> int:
        return floor_tick(t, self.start, self.tick_ms)


# The per-turn values below are named tuples: the loop makes several per frame of every
# stream, and a tuple is built in about half the time of a frozen dataclass.


class Frame(NamedTuple):
    """The delta ticks ``(after, until]``, merged into one frame, minus its first ``skip``
    events (a resume mid-frame)."""

    after: int
    until: int
    skip: int = 0


class Snapshot(NamedTuple):
    """The full state at tick-aligned ``at``."""

    at: int
    reason: Literal["start", "resync", "loop", "control"]


Move = Frame | Snapshot


class Turn(NamedTuple):
    """What the loop does at ``now``. ``frame``: send the frame due at wall time ``at``
    (at most ``MIN_WAIT_MS`` ahead of now); ``heartbeat``: a comment; ``wait``: until
    ``at`` or a control change; ``control``: follow the session's new version; ``end``:
    write ``final`` and stop."""

    action: Literal["frame", "heartbeat", "wait", "control", "end"]
    at: float = 0.0
    final: bytes = b""


class Mark(NamedTuple):
    """What ``rewind`` restores: the position before a write that was not sent."""

    position: int
    timeline: int
    ended_sent: bool
    last_target: float


def ahead_of(clock: PlaybackClock, position: int, current: int) -> bool:
    """Whether a stream at ``position`` has shown what ``clock``, now at ``current``, has
    not reached: it is past ``current``, or, looping, it wrapped while the clock has not (a
    change made before that wrap reached the stream after it) and the clock would need most
    of a pass to come round. Frames only move forward, so such a stream goes back with a
    snapshot: waiting for the clock to come round would be seconds of silence."""
    if current < position:
        return True
    return clock.loop and current - position > (clock.range_end - clock.range_start) / 2


class Playhead:
    """The state of one open stream and every decision about it (pure; see the module)."""

    def __init__(
        self,
        session: Session,
        limits: StreamLimits,
        opened_at: float,
        staleness: Staleness | None = None,
    ) -> None:
        self.session = session
        self.limits = limits
        self.staleness = (staleness or Staleness()).json()
        self.timeline = session.timeline
        self.position = 0  # P: every tick <= P has been delivered (tick-aligned)
        self.end_reason: str | None = None  # why the last event ended the stream, if one did
        self.tick_ms = 1000
        self.chunk_end = 0  # end of the chunk holding the clock's position
        self.prefetched = 0  # start of the last chunk this stream asked to prefetch
        self.last_target = NEVER  # wall time of the last frame's target
        self.ended_sent = False
        self.bytes_sent = 0
        self.last_write = opened_at  # wall ms of the last write
        self._plans: dict[str, FilterPlan] = {}

    # --- events --------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        """Where the client is after everything rendered so far."""
        return Cursor(self.timeline, self.position, self.position, 0)

    def event(self, name: str, payload: object) -> bytes:
        return sse.event(name, orjson.dumps(payload), str(self.cursor()))

    def plan(self, manifest: Manifest) -> FilterPlan:
        """The session's filters compiled against ``manifest``'s fleet (once per version)."""
        plan = self._plans.get(manifest.version)
        if plan is None:
            types = {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles}
            plan = self._plans[manifest.version] = FilterPlan(self.session.filters, types)
        return plan

    def playback(self, now: float) -> bytes:
        """The ``playback`` event: the session's clock as of ``now``."""
        clock = self.session.clock
        payload = {
            "state": clock.status_at(now),
            "speed": clock.speed,
            "position": clock.position_at(now),
            "range": {"start": clock.range_start, "end": clock.range_end},
            "loop": clock.loop,
            "version": self.session.version,
            "timeline": self.session.timeline,
            "server_time": int(now),
            # Session state every viewer shows (and is told about when another changes it).
            "filters": self.session.filters.active(),
            "filters_by": self.session.filters_by,
            "bookmarks_revision": self.session.bookmarks_revision,
        }
        return self.event("playback", payload)

    def end_event(self) -> bytes:
        self.ended_sent = True
        return self.event("end", {"reason": "end_of_range", "position": self.position})

    def final(self, name: str, reason: str, **extra: object) -> bytes:
        """A last event (``reconnect`` or ``error``): the client resumes from its id.
        Its reason is kept as ``end_reason`` (the stream's ``StreamsEnded`` metric)."""
        self.end_reason = reason
        return self.event(name, {"reason": reason, "retry_ms": RETRY_MS, **extra})

    def snapshot(self, move: Snapshot, state: PreparedState, manifest: Manifest) -> bytes:
        """The snapshot ``move`` from the state at ``move.at``; moves P there."""
        data = snapshot_data(
            state,
            move.at,
            self.plan(manifest),
            move.reason,
            self.session.timeline,
            self.staleness,
        )
        self.took(move)
        return sse.event("snapshot", data, str(self.cursor()))

    def frame(self, move: Frame, ticks: Iterable[PreparedTick], manifest: Manifest | None) -> bytes:
        """The events of frame ``move`` from its ``ticks`` (``manifest``: of the last day
        they touch; None for an empty frame), ids included; moves P to its end."""
        self.took(move)
        if move.until <= move.after or manifest is None:
            return b""
        parts = []
        events = frame_events(ticks, move.until, self.plan(manifest))
        for index, (name, data) in enumerate(events, start=1):
            if index > move.skip:
                cursor = Cursor(self.timeline, move.after, move.until, index)
                parts.append(sse.event(name, data, str(cursor)))
        return b"".join(parts)

    def took(self, move: Move) -> None:
        """Move P past ``move``, whose events are rendered: by this playhead, or by a
        co-watcher's from the same values (``shared_frames``)."""
        if isinstance(move, Snapshot):
            self.timeline = self.session.timeline
            self.position = move.at
        else:
            self.position = move.until

    # --- opening -------------------------------------------------------------------------

    def align(self, grid: TickGrid, t: int) -> int:
        """``t`` floored to its tick on ``grid`` (the chunk holding ``t``)."""
        self.tick_ms = grid.tick_ms
        self.chunk_end = grid.end
        return grid.floor(t)

    def resumable(self, cursor: Cursor | None, current: int) -> bool:
        """Whether the stream can resume at ``cursor`` by rebuilding the frames from it to
        ``current``: same timeline, inside the session's range, and no further back than
        the resume gap plus one frame. Anything else (a cursor from another range or day, or
        a forged one) re-syncs with a snapshot, so the work before the first byte is bounded
        by the session, not by the client's header."""
        if cursor is None or cursor.timeline != self.session.timeline:
            return False
        clock = self.session.clock
        frame_span = clock.speed * 1000 / self.limits.max_fps + self.tick_ms
        return (
            clock.range_start - self.tick_ms < cursor.after
            and cursor.until <= clock.range_end
            and not ahead_of(clock, cursor.until, current)
            and current - cursor.after <= self.limits.resume_max_gap_ms + frame_span
        )

    def resume(self, cursor: Cursor | None, current: int) -> list[Frame] | None:
        """The frames that take a client at ``cursor`` to ``current`` — the rest of its
        frame, then everything since — or None when it must re-sync with a snapshot."""
        if cursor is None or not self.resumable(cursor, current):
            return None
        self.position = cursor.after
        frames = [Frame(cursor.after, cursor.until, cursor.delivered)]
        if current > cursor.until:
            frames.append(Frame(cursor.until, current))
        return frames

    def opening_tail(self, now: float) -> list[bytes]:
        """What follows the opening's body: playback state, and the end if already there.
        Built after the body, whose frames move P: the ids carry that P."""
        ended = [self.end_event()] if self.session.clock.status_at(now) == "ended" else []
        return [self.playback(now), *ended]

    def opening(self, head: list[bytes], body: bytes, now: float) -> bytes | None:
        """The first write — ``head`` (retry, prelude), ``body`` (resume or snapshot), the
        tail — or None if it does not fit the byte limit."""
        out = b"".join([*head, body, *self.opening_tail(now)])
        return out if len(out) <= self.limits.write_limit else None

    # --- the loop ------------------------------------------------------------------------

    def next_frame_wall(self, now: float) -> float | None:
        """Wall time of the next frame, or None while nothing will advance."""
        due = frame_due(self.session.clock, self.position, self.tick_ms, self.ended_sent, now)
        return frame_target(due, self.last_target, 1000 / self.limits.max_fps)

    def step(self, now: float, current: Session | None) -> Turn:
        """What to do at wall time ``now``, the session being ``current`` (None: gone)."""
        if current is None:
            message = "the session was deleted or expired"
            final = self.final("error", "session_gone", code="session_gone", message=message)
            return Turn("end", now, final)
        if current.version != self.session.version:
            return Turn("control", now)
        if current.presence_until < now:
            self.session = current
            return Turn("end", now, self.final("reconnect", "idle"))
        if now >= self.limits.deadline:
            return Turn("end", now, self.final("reconnect", self.limits.deadline_reason))
        target = self.next_frame_wall(now)
        step = next_step(
            now, target, self.last_write, self.limits.heartbeat_ms, self.limits.deadline
        )
        if step.action == "frame" and target is not None:
            # The frame due at ``target``, sent now (at most MIN_WAIT_MS early: a timer
            # wakes a little before its time, and the frame sampled at "now" would miss
            # its tick and wait a whole frame interval for the next).
            return Turn("frame", target)
        return Turn(step.action, step.at)

    def advance(self, target: float, grid: TickGrid) -> Move | None:
        """The move of the frame due at wall time ``target`` (``grid``: of the chunk
        holding the clock's position then): a frame forward, a snapshot back after a wrap,
        or nothing if the tick-aligned position did not move."""
        self.last_target = target
        current = self.align(grid, self.session.clock.position_at(target))
        if current < self.position:  # looped back to the start of the range
            return Snapshot(current, "loop")
        if current > self.position:
            return Frame(self.position, current)
        return None

    def ending(self, target: float) -> bytes:
        """The end event, once, when the clock reached the end of its range by ``target``."""
        if not self.ended_sent and self.session.clock.status_at(target) == "ended":
            return self.end_event()
        return b""

    def prefetch(self) -> int | None:
        """The instant whose chunk to load now, or None: once playback is within
        ``PREFETCH_LEAD_S`` wall seconds of the end of its chunk, the next one (the range
        start's, when that end is the range's), so no frame waits for S3."""
        clock = self.session.clock
        if clock.state != "playing" or self.prefetched >= self.chunk_end:
            return None
        if self.chunk_end - self.position > clock.speed * PREFETCH_LEAD_S * 1000:
            return None
        self.prefetched = self.chunk_end
        return self.chunk_end if self.chunk_end < clock.range_end else clock.range_start

    def control(self, new: Session, now: float, grid: TickGrid) -> Snapshot | None:
        """Follow a control change seen at ``now`` (``grid``: of the chunk holding the new
        clock's position): a snapshot when the stream must go back or its timeline moved."""
        old = self.session
        self.session = new
        if new.filters != old.filters:
            self._plans.clear()
        current = self.align(grid, new.clock.position_at(now))
        if new.timeline != self.timeline or ahead_of(new.clock, self.position, current):
            self.ended_sent = False
            self.last_target = NEVER
            return Snapshot(current, "control")
        if new.clock != old.clock:
            self.last_target = NEVER
            if new.clock.status_at(now) != "ended":
                self.ended_sent = False
        return None

    # --- limits --------------------------------------------------------------------------

    def fits(self, write: bytes) -> bool:
        """Whether ``write`` still fits the byte limit (with room for the final event)."""
        return self.bytes_sent + len(write) <= self.limits.write_limit

    def sent(self, write: bytes, now: float) -> None:
        """Count a write handed to the client at ``now``."""
        self.bytes_sent += len(write)
        self.last_write = now

    def mark(self) -> Mark:
        return Mark(self.position, self.timeline, self.ended_sent, self.last_target)

    def rewind(self, mark: Mark) -> None:
        """Back to ``mark``: the write rendered since was not sent."""
        self.position, self.timeline = mark.position, mark.timeline
        self.ended_sent, self.last_target = mark.ended_sent, mark.last_target
