"""The playback clock: position from the anchor, when a position will be reached, and the
stream's rule for following a clock that changed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chunker.format.state import floor_tick
from functions.app.domain.playback import (
    MAX_SPEED,
    MIN_SPEED,
    PlaybackClock,
    PlaybackError,
    check_pace,
    min_loop_range_ms,
)
from functions.app.stream.pacing import MIN_WAIT_MS, Step, frame_target, next_step
from functions.app.stream.playhead import ahead_of

START = 1_773_439_200_000


@given(
    span=st.integers(1_000, 86_400_000),
    speed=st.floats(MIN_SPEED, MAX_SPEED),
    anchor_offset=st.floats(0, 1),
    target_offset=st.floats(0, 1),
    passes_later=st.floats(0, 1_000),
)
def test_a_looping_clock_reaches_any_position_in_the_pass_nearest_to_near(
    span: int, speed: float, anchor_offset: float, target_offset: float, passes_later: float
) -> None:
    anchor = START + int(anchor_offset * (span - 1))
    target = START + int(target_offset * (span - 1))
    clock = PlaybackClock("playing", speed, anchor, 1_000_000, START, START + span, loop=True)
    cycle = span / speed
    near = 1_000_000 + cycle * (1 + passes_later)  # "now": some passes after the anchor
    due = clock.wall_time_of(target, near)
    assert due is not None
    assert abs(due - near) <= cycle / 2 * (1 + 1e-9)  # the nearest pass
    # ... and in that pass the clock is at the target (within float rounding of one ms).
    reached = clock.position_at(due + 0.5 / speed)
    assert min((reached - target) % span, (target - reached) % span) <= 1


def test_without_loop_positions_behind_the_anchor_are_never_reached() -> None:
    clock = PlaybackClock("playing", 2.0, START + 10_000, 5_000, START, START + 60_000)
    assert clock.wall_time_of(START + 9_000, near=99_000) is None
    assert clock.wall_time_of(START + 12_000) == 6_000
    looping = PlaybackClock("playing", 2.0, START + 50_000, 5_000, START, START + 60_000, True)
    # Anchored 10 s of replay before the end: START + 2 s is reached 12 s of replay later.
    assert looping.wall_time_of(START + 2_000, near=11_000) == 11_000
    assert PlaybackClock("paused", 1.0, START, 0, START, START + 1_000).wall_time_of(START) is None


TICK_MS = 1_000


@given(
    ticks=st.integers(2, 86_400),
    speed=st.floats(MIN_SPEED, MAX_SPEED),
    anchor_offset=st.floats(0, 1),
    stream_offset=st.floats(0, 1),
    later=st.floats(0, 10_000_000),
)
def test_a_stream_the_clock_is_not_behind_has_its_next_frame_due_within_a_tick(
    ticks: int, speed: float, anchor_offset: float, stream_offset: float, later: float
) -> None:
    """Whatever position a stream reached on the clock it knew, once it learns the new
    clock either ``ahead_of`` sends it back (a snapshot) or its next tick is due within one
    tick of wall time: it never waits for a looping clock to come round (the 2-6 s
    silences ``bench load`` found)."""
    span = ticks * TICK_MS
    end = START + span
    anchor = START + int(anchor_offset * (span - 1))
    clock = PlaybackClock("playing", speed, anchor, 1_000_000, START, end, loop=True)
    now = 1_000_000 + later
    current = floor_tick(clock.position_at(now), START, TICK_MS)
    position = START + int(stream_offset * (ticks - 1)) * TICK_MS
    if ahead_of(clock, position, current):
        return  # a snapshot at ``current``: the stream is where the clock is
    due = clock.wall_time_of(position + TICK_MS, near=now)
    assert due is not None
    assert due <= now + TICK_MS / speed + 0.01  # float rounding of epoch-ms arithmetic


# --- bounded work whatever the session says (issue #15, finding 1) ---------------------


def test_a_looping_range_must_last_half_a_second_of_wall_time_at_its_speed() -> None:
    assert min_loop_range_ms(4096.0) == 2_048_000
    assert min_loop_range_ms(1.0) == 1_000  # one tick: a pass is at least one tick
    assert min_loop_range_ms(1.0, tick_ms=100) == 500
    check_pace(START, START + 2_048_000, 4096.0, loop=True)
    check_pace(START, START + 1, 4096.0, loop=False)  # without loop it simply ends
    with pytest.raises(PlaybackError, match="at least 2048000 ms"):
        check_pace(START, START + 1, 4096.0, loop=True)


def test_changes_that_would_make_a_looping_pass_too_short_are_refused() -> None:
    now = 2_000_000
    clock = PlaybackClock("playing", 4096.0, START, 0, START, START + 3_600_000, loop=True)
    with pytest.raises(PlaybackError):
        clock.set_range(now, START, START + 1)  # a co-watcher's 1 ms range
    slow = PlaybackClock("playing", 1.0, START, 0, START, START + 60_000, loop=True)
    with pytest.raises(PlaybackError):
        slow.set_speed(now, 4096.0)
    short = PlaybackClock("playing", 4096.0, START, 0, START, START + 60_000)
    with pytest.raises(PlaybackError):
        short.set_loop(now, True)
    assert short.set_loop(now, False).loop is False
    assert clock.set_range(now, START, START + 2_048_000).range_end == START + 2_048_000


# The player's loop on a fake clock (at most max_fps frames, always waiting, early timers,
# the 1 ms looping range at 4096x) runs the real Player in tests/test_player_core.py.


def test_a_frame_due_within_the_timer_resolution_is_sent_now_not_waited_for() -> None:
    now = 1_773_400_000_000.0
    step = next_step(now, now + 0.0002, last_write=now, heartbeat_ms=15_000, deadline=now + 1e6)
    assert step == Step("frame", now)
    later = next_step(now, now + 40.0, last_write=now, heartbeat_ms=15_000, deadline=now + 1e6)
    assert later == Step("wait", now + 40.0)
    passed = next_step(now, None, last_write=now, heartbeat_ms=15_000, deadline=now + 0.0001)
    assert passed.action == "wait" and passed.at == now + MIN_WAIT_MS
    assert frame_target(now, last_frame=now - 30, frame_interval_ms=100) == now + 70
    assert frame_target(None, last_frame=now, frame_interval_ms=100) is None
