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

On an imported airport (``synthetic.imported``) the same phases taxi its road graph between
its longest runway and the stand (``aircraft_motions``).

Moving: a fix per second; positions with ~1 m noise. Deterministic for a seed: one random
stream per turnaround, seeded by (seed, turnaround id).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from chunker.format.records import TaskType
from synthetic.dispatch import PUSHBACK_DISTANCE_M, PUSHBACK_MS
from synthetic.gps import LocalClock
from synthetic.layout import AirportLayout, RoadNetwork, StandSpot, to_lat_lon
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


Point = tuple[float, float]


def _graph_taxi(roads: RoadNetwork, start: Point, a: str, b: str, end: Point) -> tuple[Point, ...]:
    """From ``start`` onto node ``a``, the road graph's shortest path to ``b``, off to ``end``."""
    return (start, *(roads.nodes[n] for n in roads.path(a, b)), end)


def _taxi_in(
    stand: StandSpot, layout: AirportLayout | None
) -> tuple[tuple[Point, Point], tuple[Point, ...]] | None:
    """The landing roll (touchdown, runway exit) and the taxi from the exit to the stand."""
    home = (stand.x, stand.y)
    if layout is None or not layout.imported:
        exit_point = (EXIT_X, runway_y(EXIT_X))
        lane = _lane_y(stand)
        taxi: tuple[Point, ...] = (exit_point, (EXIT_X, lane), (stand.x, lane), home)
        return ((TOUCHDOWN_X, runway_y(TOUCHDOWN_X)), exit_point), taxi
    way = layout.taxiing
    if way is None:
        return None
    taxi = _graph_taxi(layout.roads, way.exit_point, way.exit_node, stand.road_node, home)
    return (way.touchdown, way.exit_point), taxi


def _taxi_out(
    stand: StandSpot, pushed: Point, layout: AirportLayout | None
) -> tuple[tuple[Point, ...], Point, float] | None:
    """The taxi from the pushed-back spot to the runway entry, the entry and the runway's
    heading there."""
    if layout is None or not layout.imported:
        lane = _lane_y(stand)
        entry = (ENTRY_X, runway_y(ENTRY_X))
        return (pushed, (stand.x, lane), (ENTRY_X, lane), entry), entry, RUNWAY_HEADING
    way = layout.taxiing
    if way is None:
        return None
    taxi = _graph_taxi(layout.roads, pushed, stand.road_node, way.entry_node, way.entry)
    return taxi, way.entry, way.heading


def aircraft_motions(
    ta: Turnaround, pushback: Task | None, day: tuple[int, int], layout: AirportLayout | None = None
) -> list[Motion]:
    """The aircraft's stretches of its day (module doc), in time order.

    On an imported ``layout`` (``synthetic.imported``) the same phases use its runway and
    road graph: taxiways, taxilanes and service roads (the import keeps no separate
    aircraft graph) between the runway's exit/entry node and the stand's road node.
    Without a runway in the import the aircraft only parks and is pushed back.
    """
    stand = ta.stand
    if stand is None or ta.cancelled:
        return []
    day_start, day_end = day
    home = (stand.x, stand.y)
    motions: list[Motion] = []
    arrival, departure = ta.arrival, ta.departure
    parked_from = day_start
    if arrival is not None and arrival.block_ms is not None and arrival.runway_ms is not None:
        way_in = _taxi_in(stand, layout)
        if way_in is not None:
            roll_points, taxi = way_in
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
    way_out = _taxi_out(stand, pushed, layout)
    if way_out is None:
        return motions
    taxi, entry, runway_heading = way_out
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
        entry[0] + roll_length * math.sin(math.radians(runway_heading)),
        entry[1] + roll_length * math.cos(math.radians(runway_heading)),
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


class _Polyline:
    """A long polyline (a taxi route over an imported road graph, hundreds of nodes) with
    its cumulative lengths, so a point at a distance is a bisection, not a walk."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        self.points = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        self.cumulative = [0.0]
        for a, b in itertools.pairwise(self.points):
            self.cumulative.append(self.cumulative[-1] + math.dist(a, b))
        self.length = self.cumulative[-1]

    def at(self, s: float) -> tuple[float, float, float]:
        """(x, y, heading) at distance ``s`` along it."""
        points = self.points
        if len(points) == 1:
            return points[0][0], points[0][1], 0.0
        i = min(max(bisect.bisect_right(self.cumulative, s) - 1, 0), len(points) - 2)
        a, b = points[i], points[i + 1]
        d = self.cumulative[i + 1] - self.cumulative[i]
        f = min(1.0, max(0.0, (s - self.cumulative[i]) / d))
        heading = math.degrees(math.atan2(b[0] - a[0], b[1] - a[1])) % 360.0
        return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, heading


def _state(
    motion: Motion, t: int, polyline: _Polyline | None = None
) -> tuple[float, float, float, float]:
    """(x, y, heading, speed km/h) at ``t`` within the motion (along ``polyline``, the
    motion's points measured once, where given)."""
    points = motion.points
    if len(points) == 1:
        return points[0][0], points[0][1], motion.nose or 0.0, 0.0
    span = max(1, motion.t1 - motion.t0)
    f = (t - motion.t0) / span
    length = _length(points) if polyline is None else polyline.length
    if motion.speeds is None:
        s = length * f
        speed = length / (span / 1000) * 3.6
    else:
        v0, v1 = (v / 3.6 for v in motion.speeds)
        seconds = (t - motion.t0) / 1000
        accel = (v1 - v0) / (span / 1000)
        s = min(length, v0 * seconds + accel * seconds * seconds / 2)
        speed = (v0 + accel * seconds) * 3.6
    x, y, heading = _along(points, s) if polyline is None else polyline.at(s)
    return x, y, motion.nose if motion.nose is not None else heading, speed


def aircraft_records(
    programme: Programme,
    day: tuple[int, int],
    seed: int,
    clock: LocalClock,
    layout: AirportLayout | None = None,
) -> list[Record]:
    """Every aircraft fix of the day, as raw records (t, record), in time order (on
    ``layout``'s frame and runway; the fictional airport's without one)."""
    project = to_lat_lon if layout is None else layout.to_lat_lon
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
        for motion in aircraft_motions(ta, pushbacks.get(ta.turnaround_id), day, layout):
            step = PARKED_INTERVAL_MS if len(motion.points) == 1 else 1_000
            polyline = None
            if layout is not None and layout.imported and len(motion.points) > 1:
                polyline = _Polyline(motion.points)
            t = motion.t0 + (phase if step == 1_000 else rng.randrange(step))
            while t < motion.t1:
                x, y, heading, speed = _state(motion, t, polyline)
                x += (rng.random() - 0.5) * 2 * NOISE_M
                y += (rng.random() - 0.5) * 2 * NOISE_M
                lat, lon = project(x, y)
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
