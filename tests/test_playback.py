"""The playback clock: position from the anchor, and when a position will be reached."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from functions.playback import MAX_SPEED, MIN_SPEED, PlaybackClock

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
