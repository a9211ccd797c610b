"""The playback clock: where a replay is, computed from a few stored numbers and "now".

A session stores an *anchor*: replay position ``anchor_position`` at wall time
``anchor_wall`` (both epoch ms), a ``speed`` and a ``state``. While playing, the position
at wall time ``w`` is ``anchor_position + (w - anchor_wall) * speed``, clamped to the range
(or wrapped, when looping). Every control action re-anchors at "now", so any reader with a
synchronised clock computes the same position from the item alone, and a speed change
never makes the position jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from functions.app.domain.errors import DomainError

MIN_SPEED = 1 / 16
MAX_SPEED = 4096.0
# A looping pass lasts at least this long in wall time. Shorter passes show nothing a
# person can follow and make every frame a re-sync snapshot; see ``min_loop_range_ms``.
MIN_LOOP_PASS_MS = 500
DEFAULT_TICK_MS = 1000
PlaybackState = Literal["playing", "paused"]
PlaybackStatus = Literal["playing", "paused", "ended"]


class PlaybackError(DomainError, ValueError):
    """A control action that cannot apply (bad speed, empty range, ...)."""

    status = 422
    slug = "invalid-playback"
    title = "Invalid playback request"


def check_speed(speed: float) -> float:
    """``speed`` if it is a finite number in ``[MIN_SPEED, MAX_SPEED]``."""
    if not isinstance(speed, int | float) or isinstance(speed, bool) or not math.isfinite(speed):
        raise PlaybackError(f"speed must be a number, not {speed!r}")
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise PlaybackError(f"speed must be between {MIN_SPEED} and {MAX_SPEED:g}, not {speed:g}")
    return float(speed)


def check_range(start: int, end: int) -> tuple[int, int]:
    """``(start, end)`` if it is a non-empty range."""
    if end <= start:
        raise PlaybackError(f"range end ({end}) must be after its start ({start})")
    return start, end


def min_loop_range_ms(speed: float, tick_ms: int = DEFAULT_TICK_MS) -> int:
    """The shortest range a clock may loop over at ``speed``: one tick of the data, and one
    pass of ``MIN_LOOP_PASS_MS`` wall time (at 4096x: 2,048 s of replay time)."""
    return max(tick_ms, math.ceil(speed * MIN_LOOP_PASS_MS))


def check_pace(
    start: int, end: int, speed: float, loop: bool, tick_ms: int = DEFAULT_TICK_MS
) -> None:
    """``PlaybackError`` unless a clock over ``[start, end)`` at ``speed`` is one a stream
    can follow with bounded work: a looping range at least ``min_loop_range_ms`` long. (A
    non-looping range of any length just ends.) Control calls this on create and on every
    change of range, speed or loop; the stream bounds its work on its own as well."""
    if loop and end - start < (shortest := min_loop_range_ms(speed, tick_ms)):
        raise PlaybackError(
            f"a looping range at {speed:g}x must span at least {shortest} ms "
            f"(one pass of {MIN_LOOP_PASS_MS} ms); this one spans {end - start} ms: "
            "widen the range, lower the speed or turn loop off"
        )


@dataclass(frozen=True, slots=True)
class PlaybackClock:
    """An anchored playback clock over ``[range_start, range_end)``."""

    state: PlaybackState
    speed: float
    anchor_position: int
    anchor_wall: int
    range_start: int
    range_end: int
    loop: bool = False

    def __post_init__(self) -> None:
        check_speed(self.speed)
        check_range(self.range_start, self.range_end)

    @property
    def last_position(self) -> int:
        """The last replayable instant: the range is half-open."""
        return self.range_end - 1

    def position_at(self, wall_ms: float) -> int:
        """Replay position (epoch ms) at wall time ``wall_ms``."""
        if self.state == "paused":
            position = float(self.anchor_position)
        else:
            position = self.anchor_position + (wall_ms - self.anchor_wall) * self.speed
        if position < self.range_start:
            return self.range_start
        if position > self.last_position:
            if not self.loop:
                return self.last_position
            span = self.range_end - self.range_start
            return self.range_start + int(position - self.range_start) % span
        return int(position)

    def status_at(self, wall_ms: float) -> PlaybackStatus:
        """``ended`` once a non-looping playback has reached the end of its range."""
        if self.state == "paused":
            return "paused"
        if not self.loop and self.position_at(wall_ms) >= self.last_position:
            return "ended"
        return "playing"

    def wall_time_of(self, position: float, near: float | None = None) -> float | None:
        """Wall time (ms) at which a playing clock reaches ``position``; None if it never will.

        A looping clock reaches every position once per pass over its range: with ``near``
        (a wall time), the pass nearest to it. Without, or without loop, only positions from
        the anchor on are reached.
        """
        if self.state == "paused":
            return None
        wall = self.anchor_wall + (position - self.anchor_position) / self.speed
        if self.loop and near is not None:
            cycle = (self.range_end - self.range_start) / self.speed
            return wall + round((near - wall) / cycle) * cycle
        if position < self.anchor_position:
            return None
        return wall

    # --- transitions: each re-anchors at ``now`` ----------------------------------------

    def _anchored(self, now: int, **changes: object) -> PlaybackClock:
        return replace(self, anchor_position=self.position_at(now), anchor_wall=now, **changes)  # type: ignore[arg-type]

    def checked_pace(self, tick_ms: int = DEFAULT_TICK_MS) -> PlaybackClock:
        """This clock, if ``check_pace`` accepts it."""
        check_pace(self.range_start, self.range_end, self.speed, self.loop, tick_ms)
        return self

    def play(self, now: int) -> PlaybackClock:
        """Start or resume; playing again after the end restarts from the range start."""
        if self.status_at(now) == "ended":
            return replace(self, anchor_position=self.range_start, anchor_wall=now)
        if self.state == "playing":
            return self
        return self._anchored(now, state="playing")

    def pause(self, now: int) -> PlaybackClock:
        """Freeze at the current position."""
        if self.state == "paused":
            return self
        return self._anchored(now, state="paused")

    def seek(self, now: int, position: int) -> PlaybackClock:
        """Jump to ``position``; outside the range is an error (documented in docs/api.md)."""
        if not self.range_start <= position < self.range_end:
            raise PlaybackError(
                f"seek target {position} is outside the range "
                f"[{self.range_start}, {self.range_end})"
            )
        return replace(self, anchor_position=position, anchor_wall=now)

    def set_speed(self, now: int, speed: float) -> PlaybackClock:
        """Change speed without moving the position."""
        return self._anchored(now, speed=check_speed(speed)).checked_pace()

    def set_range(self, now: int, start: int, end: int) -> PlaybackClock:
        """Replace the range; the position is kept, clamped into the new range."""
        check_range(start, end)
        position = min(max(self.position_at(now), start), end - 1)
        return replace(
            self, range_start=start, range_end=end, anchor_position=position, anchor_wall=now
        ).checked_pace()

    def set_loop(self, now: int, loop: bool) -> PlaybackClock:
        """Turn looping on or off."""
        return self._anchored(now, loop=loop).checked_pace()

    def step(self, now: int, ticks: int, tick_ms: int) -> PlaybackClock:
        """Move ``ticks`` ticks forward (or back) while paused."""
        if self.state != "paused":
            raise PlaybackError("step is only possible while paused")
        position = self.position_at(now) + ticks * tick_ms
        position = min(max(position, self.range_start), self.last_position)
        return replace(self, anchor_position=position, anchor_wall=now)
