"""Aircraft on the surface, as an A-SMGCS / ADS-B export records them (raw kind ``aircraft``).

Each turnaround's aircraft, consistent with its flight events and its tug:

- **taxi in**: touches down on runway 06R/24L at the arrival's landing time, rolls out to
  the exit taxiway, and taxis (taxiway north, the stand's taxilane, nose-in) to arrive on
  its stand at the on-block time;
- **parked** on the stand until off-block (a fix every 30 s, no callsign: A-SMGCS names a
  parked aircraft by its registration). An aircraft parked overnight is there from the
  start of the day; one that does not leave stays to its end;
- **pushback**: from the pushback task's start (= the departure's off-block) the aircraft
  moves back with its tug, nose to the terminal, the tug's ``PUSHBACK_DISTANCE_M`` at the
  tug's speed, and waits there until the tug lets go;
- **taxi out** to the western runway entry and a take-off roll ending at the departure's
  take-off time (the last fix: then it is airborne).

Moving: a fix per second; positions with ~1 m noise. Deterministic for a seed: one random
stream per turnaround, seeded by (seed, turnaround id).
"""

from __future__ import annotations

import itertools
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from chunker.format.records import TaskType
from synthetic.dispatch import PUSHBACK_DISTANCE_M, PUSHBACK_MS
from synthetic.gps import LocalClock
from synthetic.layout import StandSpot, to_lat_lon
from synthetic.schedule import Programme, Task, Turnaround

Record = tuple[int, dict[str, object]]

# Runway 06R/24L (synthetic.layout): the centreline from (-1900, -1750) to (1900, -1600).
RUNWAY_START = (-1900.0, -1750.0)
RUNWAY_END = (1900.0, -1600.0)
TOUCHDOWN_X = -1000.0
EXIT_X = 600.0  # the exit taxiway runs north at this x
ENTRY_X = -1450.0  # departures enter the runway here (west of the remote apron)
CONTACT_LANE_Y = 150.0  # taxilane behind the contact stands
REMOTE_LANE_Y = -620.0  # taxilane behind the remote stands
TOUCHDOWN_KMH = 250.0
EXIT_KMH = 30.0
LIFT_OFF_KMH = 280.0
TAKE_OFF_ROLL_MS = 35_000
ENGINE_START_MS = 60_000  # after the tug lets go, before the aircraft taxis
PARKED_INTERVAL_MS = 30_000
NOISE_M = 1.0


def runway_y(x: float) -> float:
    """The runway centreline's y at ``x``."""
    (x0, y0), (x1, y1) = RUNWAY_START, RUNWAY_END
    return y0 + (x - x0) * (y1 - y0) / (x1 - x0)


RUNWAY_HEADING = math.degrees(
    math.atan2(RUNWAY_END[0] - RUNWAY_START[0], RUNWAY_END[1] - RUNWAY_START[1])
)


def icao24_of(registration: str) -> str:
    """A stable 24-bit address for a registration (6 lower-case hex digits)."""
    return f"{zlib.crc32(registration.encode()) & 0xFFFFFF:06x}"


@dataclass(frozen=True, slots=True)
class Motion:
    """A stretch of the aircraft's day: along ``points`` from ``t0`` to ``t1``.

    ``speeds``: ``None`` for constant speed, else the speed (km/h) at the start and end
    (constant acceleration, as a landing or take-off roll). ``nose``: the heading where it
    differs from the direction of motion (a pushback), else None. One point: parked.
    """

    t0: int
    t1: int
    points: tuple[tuple[float, float], ...]
    callsign: str | None
    nose: float | None = None
    speeds: tuple[float, float] | None = None


def _length(points: Sequence[tuple[float, float]]) -> float:
    return sum(math.dist(a, b) for a, b in itertools.pairwise(points))


def _along(points: Sequence[tuple[float, float]], s: float) -> tuple[float, float, float]:
    """(x, y, heading) at distance ``s`` along the polyline."""
    for a, b in itertools.pairwise(points):
        d = math.dist(a, b)
        if d <= 0:
            continue
        heading = math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0
        if s <= d:
            f = s / d
            return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, heading
        s -= d
    a, b = points[-2], points[-1]
    return b[0], b[1], math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0


def _lane_y(stand: StandSpot) -> float:
    return CONTACT_LANE_Y if stand.kind == "contact" else REMOTE_LANE_Y


def aircraft_motions(ta: Turnaround, pushback: Task | None, day: tuple[int, int]) -> list[Motion]:
    """The aircraft's stretches of its day (module doc), in time order."""
    stand = ta.stand
    if stand is None or ta.cancelled:
        return []
    day_start, day_end = day
    home = (stand.x, stand.y)
    motions: list[Motion] = []
    arrival, departure = ta.arrival, ta.departure
    parked_from = day_start
    if arrival is not None and arrival.block_ms is not None and arrival.runway_ms is not None:
        exit_point = (EXIT_X, runway_y(EXIT_X))
        roll_points = ((TOUCHDOWN_X, runway_y(TOUCHDOWN_X)), exit_point)
        v0, v1 = TOUCHDOWN_KMH / 3.6, EXIT_KMH / 3.6
        roll_ms = round(2 * _length(roll_points) / (v0 + v1) * 1000)
        landed = arrival.runway_ms
        motions.append(
            Motion(
                landed,
                landed + roll_ms,
                roll_points,
                arrival.callsign,
                speeds=(TOUCHDOWN_KMH, EXIT_KMH),
            )
        )
        lane = _lane_y(stand)
        taxi = (exit_point, (EXIT_X, lane), (stand.x, lane), home)
        motions.append(Motion(landed + roll_ms, arrival.block_ms, taxi, arrival.callsign))
        parked_from = arrival.block_ms
    leaves = departure is not None and departure.cancelled_at is None and pushback is not None
    parked_until = pushback.start if leaves and pushback is not None else day_end
    motions.append(Motion(parked_from, parked_until, (home,), None))
    if not leaves or pushback is None or departure is None or departure.runway_ms is None:
        return motions
    heading = math.radians(stand.heading)
    pushed = (
        stand.x - PUSHBACK_DISTANCE_M * math.sin(heading),
        stand.y - PUSHBACK_DISTANCE_M * math.cos(heading),
    )
    push_end = min(pushback.end, pushback.start + round(PUSHBACK_DISTANCE_M / PUSHBACK_MS * 1000))
    motions.append(
        Motion(pushback.start, push_end, (home, pushed), departure.callsign, nose=stand.heading)
    )
    lane = _lane_y(stand)
    entry = (ENTRY_X, runway_y(ENTRY_X))
    taxi = (pushed, (stand.x, lane), (ENTRY_X, lane), entry)
    roll_start = departure.runway_ms - TAKE_OFF_ROLL_MS
    # After the tug lets go and the engines are started; sooner if the take-off is near.
    fastest = round(_length(taxi) / (50 / 3.6) * 1000)
    taxi_start = max(push_end + 20_000, min(pushback.end + ENGINE_START_MS, roll_start - fastest))
    taxi_start = min(taxi_start, roll_start - 60_000)
    if taxi_start > push_end:
        hold = Motion(push_end, taxi_start, (pushed,), departure.callsign, nose=stand.heading)
        motions.append(hold)
    motions.append(Motion(taxi_start, roll_start, taxi, departure.callsign))
    roll_length = 0.5 * (LIFT_OFF_KMH / 3.6) * TAKE_OFF_ROLL_MS / 1000
    lift_off = (
        entry[0] + roll_length * math.sin(math.radians(RUNWAY_HEADING)),
        entry[1] + roll_length * math.cos(math.radians(RUNWAY_HEADING)),
    )
    motions.append(
        Motion(
            roll_start,
            departure.runway_ms,
            (entry, lift_off),
            departure.callsign,
            speeds=(0.0, LIFT_OFF_KMH),
        )
    )
    return motions


def _state(motion: Motion, t: int) -> tuple[float, float, float, float]:
    """(x, y, heading, speed km/h) at ``t`` within the motion."""
    points = motion.points
    if len(points) == 1:
        return points[0][0], points[0][1], motion.nose or 0.0, 0.0
    span = max(1, motion.t1 - motion.t0)
    f = (t - motion.t0) / span
    length = _length(points)
    if motion.speeds is None:
        s = length * f
        speed = length / (span / 1000) * 3.6
    else:
        v0, v1 = (v / 3.6 for v in motion.speeds)
        seconds = (t - motion.t0) / 1000
        accel = (v1 - v0) / (span / 1000)
        s = min(length, v0 * seconds + accel * seconds * seconds / 2)
        speed = (v0 + accel * seconds) * 3.6
    x, y, heading = _along(points, s)
    return x, y, motion.nose if motion.nose is not None else heading, speed


def aircraft_records(
    programme: Programme, day: tuple[int, int], seed: int, clock: LocalClock
) -> list[Record]:
    """Every aircraft fix of the day, as raw records (t, record), in time order."""
    pushbacks = {
        task.turnaround.turnaround_id: task
        for task in programme.tasks
        if task.task_type is TaskType.PUSHBACK and task.cancelled_at is None
    }
    records: list[Record] = []
    for ta in programme.turnarounds:
        rng = random.Random(f"{seed}:aircraft:{ta.turnaround_id}")
        icao24 = icao24_of(ta.registration)
        phase = rng.randrange(1_000)
        for motion in aircraft_motions(ta, pushbacks.get(ta.turnaround_id), day):
            step = PARKED_INTERVAL_MS if len(motion.points) == 1 else 1_000
            t = motion.t0 + (phase if step == 1_000 else rng.randrange(step))
            while t < motion.t1:
                x, y, heading, speed = _state(motion, t)
                x += (rng.random() - 0.5) * 2 * NOISE_M
                y += (rng.random() - 0.5) * 2 * NOISE_M
                lat, lon = to_lat_lon(x, y)
                record: dict[str, object] = {
                    "t": clock.text(t),
                    "icao24": icao24,
                    "registration": ta.registration,
                    "callsign": motion.callsign,
                    "lat": round(lat, 7),
                    "lon": round(lon, 7),
                    "track": round(heading % 360.0, 1) % 360.0,
                    "ground_speed_kmh": round(max(0.0, speed), 1),
                    "on_ground": True,
                }
                records.append((t, record))
                t += step
    records.sort(key=lambda r: (r[0], str(r[1]["icao24"])))
    return records
