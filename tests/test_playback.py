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
from functions.app.stream.pacing import MIN_WAIT_MS, Step, frame_due, frame_target, next_step
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


def simulate(
    clock: PlaybackClock,
    seconds: float,
    tick_ms: int = TICK_MS,
    max_fps: float = 10.0,
    wake_early_ms: float = 0.0,
    lateness: list[float] | None = None,
) -> tuple[int, int, list[float]]:
    """The player's loop on a fake clock: what it does in ``seconds`` of wall time, using
    the player's own pure functions (``frame_due``, ``frame_target``, ``next_step``) and
    its position rule (the frame due at the target, floored to the tick; back to the
    clock's position after a wrap). ``wake_early_ms``: every timer fires that much before
    its time, as real timers and the monotonic/wall conversion do. Returns (turns of the
    loop, frames sent, every wait's length in ms); appends each frame's lateness (sent
    minus the time playback reached its tick, ms) to ``lateness``."""
    now = float(clock.anchor_wall)
    end = now + seconds * 1000
    position = floor_tick(clock.position_at(now), clock.range_start, tick_ms)
    last_target, last_write, frames, turns = -1e18, now, 0, 0
    waits: list[float] = []
    while now < end:
        turns += 1
        assert turns < 100_000, "the loop spins"
        due = frame_due(clock, position, tick_ms, False, now)
        target = frame_target(due, last_target, 1000 / max_fps)
        step = next_step(now, target, last_write, 15_000, end)
        if step.action == "frame":
            assert step.at <= now  # never a frame scheduled after now
            assert target is not None and target < now + MIN_WAIT_MS
            last_target = target
            current = floor_tick(clock.position_at(target), clock.range_start, tick_ms)
            if current != position:
                position, last_write, frames = current, now, frames + 1
                if lateness is not None and due is not None:
                    lateness.append(now - due)  # since playback reached the tick
        elif step.action == "heartbeat":
            last_write = now
        else:
            assert step.at >= now + MIN_WAIT_MS
            waits.append(step.at - now)
            now = max(now, step.at - wake_early_ms)
    return turns, frames, waits


def test_a_1_ms_looping_range_at_4096x_costs_at_most_max_fps_turns_a_second() -> None:
    """The attack of issue #15: every pass lasts 1/4096 ms, below the float resolution of
    an epoch-ms wall time, so the next tick is always due "now" (one rounding step either
    side). The loop still waits between frames, and sends at most ``max_fps``."""
    anchor_wall = 1_773_400_000_123
    clock = PlaybackClock("playing", 4096.0, START, anchor_wall, START, START + 1, loop=True)
    turns, frames, waits = simulate(clock, seconds=30)
    assert turns <= 30 * 10 * 3 + 10  # per 1/max_fps: a frame, a wait, one re-aim
    assert all(wait >= MIN_WAIT_MS for wait in waits)
    assert frames == 0  # a range inside one tick never moves the tick-aligned position


@given(
    span=st.integers(1, 3_600_000),
    speed=st.floats(MIN_SPEED, MAX_SPEED),
    loop=st.booleans(),
    anchor_wall=st.integers(0, 2_000_000_000_000),
)
def test_whatever_the_clock_the_loop_sends_at_most_max_fps_and_always_waits(
    span: int, speed: float, loop: bool, anchor_wall: int
) -> None:
    clock = PlaybackClock("playing", speed, START, anchor_wall, START, START + span, loop)
    turns, frames, _ = simulate(clock, seconds=5)
    assert frames <= 5 * 10 + 1
    # Per frame: the frame, the wait for the next, at most one re-aim (a looping clock's
    # nearest pass moved while waiting); and a heartbeat or two.
    assert turns <= 3 * (5 * 10 + 1) + 5


@pytest.mark.parametrize("speed", [1.0, 2.5, 8.0])  # a frame per tick (beyond 10x: merged)
def test_a_timer_that_wakes_early_does_not_cost_a_frame_interval(speed: float) -> None:
    """Timers fire a little early (and the monotonic -> wall conversion rounds): the frame
    due then, a fraction of a millisecond away, is sent at once *with its tick*. Sampling
    the clock at "now" instead missed the tick, and the next try came a whole frame
    interval later (100 ms at 10 fps: the p99 lateness `bench stream` showed)."""
    clock = PlaybackClock("playing", speed, START, 1_773_400_000_000, START, START + 3_600_000)
    lateness: list[float] = []
    _, frames, _ = simulate(clock, seconds=10, wake_early_ms=0.3, lateness=lateness)
    assert frames >= 10 * speed - 1  # every tick of the 10 s, each as its own frame
    assert max(lateness) <= MIN_WAIT_MS


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
