"""What a stream does next, as pure functions of wall time (ms) — no clock is read here.

The player asks ``next_step`` once per turn of its loop. Whatever the session says (a
range shorter than a float step at 4096x, a clock re-anchored ahead, a frame target that
lands one rounding step after "now"), each turn either writes something or waits at least
``MIN_WAIT_MS`` on a real timer, and frames are at least ``1/max_fps`` apart: a stream's
work per wall second is bounded by its settings, not by its session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from functions.app.domain.playback import PlaybackClock

# A wait shorter than this is not worth a timer: the frame is sent now instead. It also
# bounds the turns of a loop that finds nothing to do to 1,000 a second.
MIN_WAIT_MS = 1.0


@dataclass(frozen=True, slots=True)
class Step:
    """``frame``: send now (``at``, never after now) the frame due at the target, which is
    at most ``MIN_WAIT_MS`` ahead; ``heartbeat``:
    send a comment; ``wait``: sleep until ``at`` (at least ``MIN_WAIT_MS`` from now) or a
    control change, whichever is first."""

    action: Literal["frame", "heartbeat", "wait"]
    at: float


def frame_due(
    clock: PlaybackClock, position: int, tick_ms: int, ended_sent: bool, now: float
) -> float | None:
    """Wall time at which ``clock`` reaches the tick after ``position`` (a stream's P), or
    None while nothing will advance (paused, or ended and the end already sent).

    A clock paused beyond that tick is due at once: at high speed frames are merged, so a
    pause lands up to a frame's span (speed / max fps) past P, and the stream still owes
    the ticks up to the paused position — the state at the position every viewer shows."""
    next_tick = position + tick_ms
    if clock.state == "paused":
        return float(clock.anchor_wall) if next_tick <= clock.anchor_position else None
    if next_tick > clock.last_position and not clock.loop:
        if ended_sent:
            return None
        next_tick = clock.last_position  # nothing left to show but the end itself
    # Near now: once a looping clock has wrapped, its anchor (set before the wrap) is
    # ahead of P, yet P + tick is due in this pass, not never.
    due = clock.wall_time_of(next_tick, near=now)
    if due is None:  # re-anchored ahead of P (e.g. a speed change mid-tick): due now
        due = float(clock.anchor_wall)
    return due


def frame_target(due: float | None, last_frame: float, frame_interval_ms: float) -> float | None:
    """When the next frame goes out: when playback reaches it (``due``), and no sooner
    than ``frame_interval_ms`` after the previous frame; None while nothing will move."""
    return None if due is None else max(due, last_frame + frame_interval_ms)


def next_step(
    now: float,
    target: float | None,
    last_write: float,
    heartbeat_ms: float,
    deadline: float,
) -> Step:
    """The next thing to do at wall time ``now``, for a frame due at ``target``."""
    if target is not None and target < now + MIN_WAIT_MS:
        return Step("frame", min(target, now))
    if now - last_write >= heartbeat_ms:
        return Step("heartbeat", now)
    wake = min(last_write + heartbeat_ms, deadline)
    if target is not None:
        wake = min(wake, target)
    return Step("wait", max(wake, now + MIN_WAIT_MS))
