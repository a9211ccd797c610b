"""Auto-dispatch as the recorded system did it: vehicles to tasks, then each vehicle's day.

Tasks are dispatched in order of when a vehicle should be at the aircraft. For each task
the dispatcher picks, among free vehicles of the right type, the one that can be there on
time with the shortest drive (ties go to the less busy vehicle); if none can be on time,
the one that can be there first — and the task runs late. Between tasks a vehicle drives
straight on, or goes back to its depot when the gap is long enough.

Every assignment is recorded as a *decision* (``Planner.decisions``) from the candidate
loop's own values at that instant: each candidate's start, ETA, lateness, busy-ness and
its score under ``RULE`` (lower is better), so a replay can show who could have gone.

The result is a list of *legs* per vehicle (drive, wait, service, idle), from which
``synthetic.gps`` samples GPS fixes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from chunker.format.records import TaskType, VehicleState
from synthetic.layout import AirportLayout, FleetVehicle, StandSpot
from synthetic.schedule import MINUTE, Programme, Task

OFF_ROAD_MS = 10 / 3.6  # apron stand area, m/s
PUSHBACK_MS = 4 / 3.6
PUSHBACK_DISTANCE_M = 70.0
HOME_MARGIN_MS = 10 * MINUTE  # go back to the depot only if it will be there this long
REASSIGN_SHARE = 0.03
# The rule the planner dispatches by, as its decisions name it; the score it gives a
# candidate is LATE_WEIGHT per started ON_TIME_GRACE_MS of lateness, plus its drive and
# a twentieth of its busy time (ms); ties go to the first vehicle in fleet order.
RULE = "on_time_then_shortest_drive"
ON_TIME_GRACE_MS = 30_000
LATE_WEIGHT = 1_000_000_000
# A second rule, for a second dispatch run of the same day (a "variant", issue 20 item 6):
# the candidate with the shortest drive, whatever its lateness or busy-ness (no on-time
# check); ties to the first vehicle in fleet order. Its score is the drive (ms).
NEAREST_FIRST = "nearest_first"
RULES = (RULE, NEAREST_FIRST)

# Where each task's vehicle stands, in the aircraft frame (metres forward, metres right).
SERVICE_POINTS: dict[tuple[TaskType, str], tuple[float, float]] = {
    (TaskType.REFUEL, ""): (-2.0, 13.0),
    (TaskType.CATERING, ""): (11.0, 5.0),
    (TaskType.BAGGAGE_UNLOAD, ""): (8.0, 5.5),
    (TaskType.BAGGAGE_LOAD, ""): (-9.0, 5.5),
    (TaskType.CLEANING, ""): (13.0, -5.0),
    (TaskType.WATER, ""): (-15.0, -4.0),
    (TaskType.LAVATORY, ""): (-17.0, 4.0),
    (TaskType.PUSHBACK, ""): (21.0, 0.0),
    (TaskType.PASSENGER_BUS, "arr"): (10.0, -11.0),
    (TaskType.PASSENGER_BUS, "dep"): (6.0, -11.0),
}


@dataclass(frozen=True, slots=True)
class Spot:
    """A place a vehicle can be: a point and the road node it reaches the network by."""

    x: float
    y: float
    node: str


@dataclass(frozen=True, slots=True)
class Leg:
    """A stretch of a vehicle's day: still at a point, or moving along a polyline."""

    t0: int
    t1: int
    state: VehicleState
    points: tuple[tuple[float, float], ...]  # one point when still
    times: tuple[int, ...] = ()  # arrival time at each point when moving
    heading: float = 0.0  # when still: the direction the vehicle faces
    interval_ms: int = 5_000  # GPS period

    @property
    def moving(self) -> bool:
        return len(self.points) > 1


@dataclass
class VehicleDay:
    """A vehicle's dispatch state while planning, then its legs."""

    vehicle: FleetVehicle
    index: int
    home: Spot
    speed_factor: float
    free_at: int
    spot: Spot
    busy_ms: int = 0
    jobs: list[tuple[Task, Spot, Spot]] = field(default_factory=list)  # task, from, at
    legs: list[Leg] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Alert:
    """Something the dispatch system told its operators."""

    t: int
    level: str
    code: str
    text: str
    flight_id: str | None = None
    task_id: str | None = None
    vehicle_id: str | None = None


@dataclass(frozen=True, slots=True)
class Considered:
    """One candidate of a decision, as the candidate loop saw it."""

    vehicle_id: str
    state: VehicleState | None  # None where the planner does not know it
    origin: Spot  # where its drive to the task would start
    free_at: int
    eta: int  # depart + travel: when it would be at the aircraft
    on_time: bool  # within ON_TIME_GRACE_MS of the required time
    busy_ms: int
    score: int  # under RULE; lower is better


@dataclass(frozen=True, slots=True)
class Decision:
    """What the dispatcher decided about a task, and what it considered."""

    t: int
    task: Task
    kind: str  # chunker.format.records.DecisionKind
    vehicle_id: str
    required_at: int
    rule: str
    candidates: tuple[Considered, ...] = ()
    previous_vehicle_id: str | None = None
    reason: str | None = None


def service_spot(stand: StandSpot, task: Task, widebody: bool) -> Spot:
    """The point next to the aircraft where this task's vehicle works."""
    forward, right = SERVICE_POINTS[(task.task_type, task.template.suffix)]
    scale = 1.6 if widebody else 1.0
    heading = math.radians(stand.heading)
    fx, fy = math.sin(heading), math.cos(heading)
    x = stand.x + scale * (forward * fx + right * fy)
    y = stand.y + scale * (forward * fy - right * fx)
    return Spot(x, y, stand.road_node)


class Planner:
    """Dispatches a programme's tasks to a fleet and lays out every vehicle's day."""

    def __init__(
        self,
        layout: AirportLayout,
        day_start: int,
        day_end: int,
        rng: random.Random,
        rule: str = RULE,
    ):
        if rule not in RULES:
            raise ValueError(f"unknown dispatch rule {rule!r} (one of {', '.join(RULES)})")
        self.rule = rule
        self.layout = layout
        self.roads = layout.roads
        self.day_start = day_start
        self.day_end = day_end
        self.rng = rng
        self.alerts: list[Alert] = []
        self.decisions: list[Decision] = []
        self.vehicles: list[VehicleDay] = []
        for index, vehicle in enumerate(layout.fleet):
            depot = layout.depots[vehicle.vehicle_type]
            home = Spot(vehicle.park_x, vehicle.park_y, depot.road_node)
            self.vehicles.append(
                VehicleDay(vehicle, index, home, rng.uniform(0.82, 1.0), day_start, home)
            )
        self.by_type: dict[str, list[VehicleDay]] = {}
        for vd in self.vehicles:
            self.by_type.setdefault(vd.vehicle.vehicle_type.value, []).append(vd)

    # --- geometry ----------------------------------------------------------------------------

    def drive_ms(self, a: Spot, b: Spot, factor: float) -> int:
        """Door-to-door drive time: off-road to the network, the roads, off-road again."""
        ax, ay = self.roads.nodes[a.node]
        bx, by = self.roads.nodes[b.node]
        off_road = (math.hypot(ax - a.x, ay - a.y) + math.hypot(bx - b.x, by - b.y)) / OFF_ROAD_MS
        return round((off_road + self.roads.seconds(a.node, b.node) / factor) * 1000)

    def route(self, a: Spot, b: Spot, factor: float, t0: int, t1: int) -> Leg:
        """The drive a -> b from t0 to t1 (t1 - t0 == drive_ms), as a timed polyline."""
        nodes = self.roads.path(a.node, b.node)
        points = [(a.x, a.y)] + [self.roads.nodes[n] for n in nodes] + [(b.x, b.y)]
        seconds = [math.hypot(points[1][0] - a.x, points[1][1] - a.y) / OFF_ROAD_MS]
        for n0, n1, p0, p1 in zip(nodes, nodes[1:], points[1:], points[2:], strict=False):
            speed = self.roads.limit(n0, n1) / 3.6 * factor
            seconds.append(math.hypot(p1[0] - p0[0], p1[1] - p0[1]) / speed)
        seconds.append(math.hypot(b.x - points[-2][0], b.y - points[-2][1]) / OFF_ROAD_MS)
        total = sum(seconds) or 1.0
        times = [t0]
        elapsed = 0.0
        for s in seconds:
            elapsed += s
            times.append(t0 + round((t1 - t0) * elapsed / total))
        return Leg(t0, t1, VehicleState.EN_ROUTE, tuple(points), tuple(times), interval_ms=1_000)

    # --- dispatch ----------------------------------------------------------------------------

    def dispatch(self, programme: Programme) -> None:
        """Assign every task that is not cancelled; fill in its actual times."""
        done_by_turnaround: dict[str, list[Task]] = {}
        for task in programme.tasks:
            if task.cancelled_at is not None:
                continue
            ta = task.turnaround
            assert ta.stand is not None
            siblings = done_by_turnaround.setdefault(ta.turnaround_id, [])
            ready = task.ready
            if task.task_type is TaskType.PUSHBACK:
                # The aircraft leaves only when everything else is done.
                ready = max([ready] + [s.end + MINUTE for s in siblings])
            desired = ready - round(task.template.lead_min * MINUTE)
            target = service_spot(ta.stand, task, ta.widebody)
            best: tuple[tuple[int, int, int], VehicleDay, Spot, int, int] | None = None
            # The loop's own inputs, for the decision record: (vehicle, origin, ETA, key).
            seen: list[tuple[VehicleDay, Spot, int, tuple[int, int, int]]] = []
            for vd in self.by_type[task.vehicle_type.value]:
                origin, depart, travel = self._departure(vd, target, desired)
                arrive = depart + travel
                lateness = max(0, arrive - desired)
                if self.rule == NEAREST_FIRST:
                    key = (0, travel, vd.index)
                else:
                    key = (lateness // ON_TIME_GRACE_MS, travel + vd.busy_ms // 20, vd.index)
                seen.append((vd, origin, arrive, key))
                if best is None or key < best[0]:
                    best = (key, vd, origin, depart, travel)
            assert best is not None
            _, vd, origin, depart, travel = best
            task.vehicle_id = vd.vehicle.vehicle_id
            task.depart = depart
            task.arrive = depart + travel
            setup = self.rng.randrange(45_000, 150_000)
            task.start = max(task.arrive + setup, ready)
            task.end = task.start + task.duration
            if task.task_type is TaskType.PUSHBACK:
                task.end = task.start + max(task.duration, 3 * MINUTE)
            self._assignment_times(task, vd)
            self._record_decisions(task, vd, desired, seen)
            vd.free_at = task.end
            vd.busy_ms += task.end - task.depart
            at = self._pushed_to(task, target) if task.task_type is TaskType.PUSHBACK else target
            vd.jobs.append((task, origin, target))
            vd.spot = at
            siblings.append(task)
            if task.arrive - desired > 5 * MINUTE:
                self.alerts.append(
                    Alert(
                        task.assigned,
                        "warning",
                        "vehicle_conflict",
                        f"No {task.vehicle_type.value.replace('_', ' ')} free in time for "
                        f"{task.task_type.value.replace('_', ' ')} at stand {ta.stand.stand_id}: "
                        f"{vd.vehicle.vehicle_id} assigned, "
                        f"{round((task.arrive - desired) / MINUTE)} min late",
                        task.flight_id,
                        task.task_id,
                        vd.vehicle.vehicle_id,
                    )
                )
        for ta in programme.turnarounds:
            if ta.departure is None or ta.departure.cancelled_at is not None:
                continue
            pushback = [
                t
                for t in done_by_turnaround.get(ta.turnaround_id, [])
                if t.task_type is TaskType.PUSHBACK
            ]
            off_block = pushback[0].start if pushback else ta.target_off_block
            ta.departure.block_ms = off_block
            ta.departure.runway_ms = off_block + self.rng.randrange(8 * MINUTE, 17 * MINUTE)

    def _departure(self, vd: VehicleDay, target: Spot, desired: int) -> tuple[Spot, int, int]:
        """Where the vehicle starts its drive to ``target``, when, and for how long."""
        factor = vd.speed_factor
        from_home = self.drive_ms(vd.home, target, factor)
        if vd.spot == vd.home:
            return vd.home, max(vd.free_at, desired - from_home), from_home
        back_home = self.drive_ms(vd.spot, vd.home, factor)
        if vd.free_at + back_home + HOME_MARGIN_MS + from_home <= desired:
            return vd.home, desired - from_home, from_home
        direct = self.drive_ms(vd.spot, target, factor)
        return vd.spot, max(vd.free_at + MINUTE, desired - direct), direct

    def _assignment_times(self, task: Task, vd: VehicleDay) -> None:
        """When the dispatcher assigned the task (and, rarely, first to someone else)."""
        latest = task.depart - 30_000
        assigned = min(latest, task.planned_start - 20 * MINUTE, task.depart - self._minutes(2, 9))
        task.created = min(task.created, latest - 60_000)
        task.assigned = max(task.created + 30_000, assigned)
        others = [v for v in self.by_type[task.vehicle_type.value] if v is not vd]
        if others and latest - task.assigned > 3 * MINUTE and self.rng.random() < REASSIGN_SHARE:
            first = self.rng.choice(others)
            task.first_vehicle_id = first.vehicle.vehicle_id
            task.reassigned = task.assigned + (latest - task.assigned) // 2
            self.alerts.append(
                Alert(
                    task.reassigned,
                    "info",
                    "task_reassigned",
                    f"{task.task_type.value.replace('_', ' ').capitalize()} task "
                    f"reassigned from {first.vehicle.vehicle_id} to {vd.vehicle.vehicle_id}",
                    task.flight_id,
                    task.task_id,
                    vd.vehicle.vehicle_id,
                )
            )

    def _record_decisions(
        self,
        task: Task,
        chosen: VehicleDay,
        desired: int,
        seen: list[tuple[VehicleDay, Spot, int, tuple[int, int, int]]],
    ) -> None:
        """The task's decisions, from the candidate loop's values (before ``chosen`` takes
        the task): a by-hand first assignment then the rule's reassignment, or the rule's
        assignment — an escalation when no candidate could be on time."""
        decided = task.assigned if task.reassigned is None else task.reassigned
        candidates = tuple(
            Considered(
                vd.vehicle.vehicle_id,
                _state_at(vd, decided),
                origin,
                vd.free_at,
                eta,
                eta - desired < ON_TIME_GRACE_MS,
                vd.busy_ms,
                key[0] * LATE_WEIGHT + key[1],
            )
            for vd, origin, eta, key in seen
        )
        vehicle_id = chosen.vehicle.vehicle_id
        if task.first_vehicle_id is not None and task.reassigned is not None:
            self.decisions.append(
                Decision(
                    task.assigned,
                    task,
                    "assign",
                    task.first_vehicle_id,
                    desired,
                    "manual",
                    reason="assigned by an operator",
                )
            )
            self.decisions.append(
                Decision(
                    decided,
                    task,
                    "reassign",
                    vehicle_id,
                    desired,
                    self.rule,
                    candidates,
                    task.first_vehicle_id,
                    f"auto-dispatch: {vehicle_id} scores better than {task.first_vehicle_id}",
                )
            )
            return
        on_time = any(c.on_time for c in candidates)
        kind = "assign" if on_time else "escalate_no_vehicle"
        sent = (
            "the nearest is sent" if self.rule == NEAREST_FIRST else "the first to arrive is sent"
        )
        reason = None if on_time else f"no vehicle can be on time: {sent}"
        self.decisions.append(
            Decision(decided, task, kind, vehicle_id, desired, self.rule, candidates, reason=reason)
        )

    def _minutes(self, low: float, high: float) -> int:
        return round(self.rng.uniform(low, high) * 60) * 1000

    # --- each vehicle's day ------------------------------------------------------------------

    def lay_out_days(self) -> None:
        """Turn each vehicle's jobs into legs covering the whole service day."""
        for vd in self.vehicles:
            vd.jobs.sort(key=lambda job: job[0].depart)
            legs: list[Leg] = []
            here = vd.home
            t = self.day_start
            heading = 90.0
            for task, origin, target in vd.jobs:
                if origin != here:  # back to the depot in between
                    back = self.drive_ms(here, vd.home, vd.speed_factor)
                    drive = self.route(here, vd.home, vd.speed_factor, t, t + back)
                    legs.append(_with_state(drive, VehicleState.RETURNING))
                    heading = _final_heading(drive, heading)
                    t += back
                    here = vd.home
                legs.append(self._still(here, t, task.depart, heading, here == vd.home))
                drive = self.route(here, target, vd.speed_factor, task.depart, task.arrive)
                legs.append(drive)
                heading = _final_heading(drive, heading)
                legs.append(
                    Leg(
                        task.arrive,
                        task.start,
                        VehicleState.WAITING,
                        ((target.x, target.y),),
                        heading=heading,
                    )
                )
                if task.task_type is TaskType.PUSHBACK:
                    legs.extend(self._pushback(task, target, heading))
                    here = self._pushed_to(task, target)
                else:
                    legs.append(
                        Leg(
                            task.start,
                            task.end,
                            VehicleState.SERVICING,
                            ((target.x, target.y),),
                            heading=heading,
                        )
                    )
                    here = target
                t = task.end
            if here != vd.home:
                back = self.drive_ms(here, vd.home, vd.speed_factor)
                drive = self.route(here, vd.home, vd.speed_factor, t, t + back)
                legs.append(_with_state(drive, VehicleState.RETURNING))
                heading = _final_heading(drive, heading)
                t += back
            legs.append(self._still(vd.home, t, max(t, self.day_end), heading, True))
            vd.legs = [leg for leg in legs if leg.t1 > leg.t0]

    def _still(self, spot: Spot, t0: int, t1: int, heading: float, at_home: bool) -> Leg:
        if at_home:
            return Leg(
                t0, t1, VehicleState.IDLE, ((spot.x, spot.y),), heading=heading, interval_ms=30_000
            )
        return Leg(t0, t1, VehicleState.WAITING, ((spot.x, spot.y),), heading=heading)

    def _pushed_to(self, task: Task, target: Spot) -> Spot:
        stand = task.turnaround.stand
        assert stand is not None
        heading = math.radians(stand.heading)
        return Spot(
            target.x - PUSHBACK_DISTANCE_M * math.sin(heading),
            target.y - PUSHBACK_DISTANCE_M * math.cos(heading),
            target.node,
        )

    def _pushback(self, task: Task, target: Spot, heading: float) -> list[Leg]:
        """The tug pushes the aircraft back off the stand, then releases it."""
        end = self._pushed_to(task, target)
        push_ms = round(PUSHBACK_DISTANCE_M / PUSHBACK_MS * 1000)
        push_end = min(task.end, task.start + push_ms)
        moving = Leg(
            task.start,
            push_end,
            VehicleState.SERVICING,
            ((target.x, target.y), (end.x, end.y)),
            (task.start, push_end),
            interval_ms=1_000,
        )
        release = Leg(
            push_end, task.end, VehicleState.SERVICING, ((end.x, end.y),), heading=heading
        )
        return [moving, release]


def _state_at(vd: VehicleDay, t: int) -> VehicleState | None:
    """What the vehicle is doing at ``t`` by the jobs planned so far (later jobs start
    after them); None between jobs away from the depot (returning or waiting)."""
    for task, _, _ in reversed(vd.jobs):
        if task.depart <= t:
            if t < task.arrive:
                return VehicleState.EN_ROUTE
            if t < task.start:
                return VehicleState.WAITING
            if t < task.end:
                return VehicleState.SERVICING
            return None
    return VehicleState.IDLE


def _with_state(leg: Leg, state: VehicleState) -> Leg:
    return Leg(leg.t0, leg.t1, state, leg.points, leg.times, leg.heading, leg.interval_ms)


def _final_heading(leg: Leg, default: float) -> float:
    """The direction of the last non-zero stretch of a drive."""
    for (x0, y0), (x1, y1) in zip(
        reversed(leg.points[:-1]), reversed(leg.points[1:]), strict=False
    ):
        if abs(x1 - x0) + abs(y1 - y0) > 0.5:
            return math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0
    return default
