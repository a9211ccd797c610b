"""What a stream sends: filtered frames and snapshots, assembled from pre-encoded rows.

Nothing here decodes or re-encodes a row: rows arrive as JSON bytes from the prepared
chunks and are only selected and concatenated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from chunker.format.prepared import (
    AircraftEntry,
    DecisionEntry,
    DerivedEntry,
    FlightEntry,
    NotificationEntry,
    PreparedState,
    PreparedTick,
    TaskEntry,
)
from chunker.format.records import TASK_VEHICLE_TYPE, TaskType
from functions.app.domain.sessions import Filters

# The order of a frame's events: discrete events first, then the derived state (stand
# occupancy, each vehicle's task: chunker.format.derived), then where aircraft and vehicles
# are (vehicles last, so a frame's vehicle update ends it).
FRAME_EVENTS = (
    "task_update",
    "flight_update",
    "notification",
    "dispatch_decision",
    "stand_update",
    "vehicle_task_update",
    "aircraft_update",
    "vehicle_update",
)


def _allowed(values: Sequence[str] | None) -> frozenset[str] | None:
    # Enum members are str subclasses; compare by their plain values.
    return None if values is None else frozenset(str(v) for v in values)


class FilterPlan:
    """The session's filters compiled against the fleet, so each check is a set lookup.

    One rule for every kind of row (``functions.app.domain.sessions.FILTER_RULE``): a row
    is checked by every filter that describes it, and only by those.
    """

    __slots__ = ("flights", "stands", "task_statuses", "task_types", "task_vehicles", "vehicles")

    def __init__(self, filters: Filters, vehicle_types: Mapping[str, str]) -> None:
        types = _allowed(filters.vehicle_types)
        ids = _allowed(filters.vehicle_ids)
        task_types = _allowed(filters.task_types)
        # The vehicle types that do a chosen task type (None: task types not filtered).
        doing = (
            None
            if task_types is None
            else frozenset(str(TASK_VEHICLE_TYPE[TaskType(t)]) for t in task_types)
        )
        if types is None and ids is None and doing is None:
            self.vehicles: frozenset[str] | None = None
        else:
            self.vehicles = frozenset(
                vehicle_id
                for vehicle_id, vehicle_type in vehicle_types.items()
                if (types is None or vehicle_type in types)
                and (doing is None or vehicle_type in doing)
                and (ids is None or vehicle_id in ids)
            )
        # A task's own type, narrowed to the types the chosen vehicle types do.
        if types is None:
            self.task_types = task_types
        else:
            self.task_types = frozenset(
                str(task_type)
                for task_type, vehicle_type in TASK_VEHICLE_TYPE.items()
                if str(vehicle_type) in types and (task_types is None or task_type in task_types)
            )
        self.task_vehicles = ids  # a task's assigned vehicle
        self.task_statuses = _allowed(filters.task_statuses)
        self.flights = _allowed(filters.flights)
        self.stands = _allowed(filters.stands)

    def vehicle(self, vehicle_id: str) -> bool:
        return self.vehicles is None or vehicle_id in self.vehicles

    def task(self, task: TaskEntry | DecisionEntry) -> bool:
        """A task by its own fields; a decision as its task, from the task's type and status
        the chunker stored with it (a filter on a field the decision does not know hides
        it, as an unassigned task is hidden by a vehicle filter)."""
        return (
            (self.task_types is None or task.task_type in self.task_types)
            and (self.task_statuses is None or task.status in self.task_statuses)
            and (self.flights is None or task.flight_id in self.flights)
            and (self.stands is None or task.stand in self.stands)
            and (self.task_vehicles is None or task.vehicle_id in self.task_vehicles)
        )

    def flight(self, flight: FlightEntry) -> bool:
        return (self.flights is None or flight.id in self.flights) and (
            self.stands is None or flight.stand in self.stands
        )

    def notification(self, note: NotificationEntry) -> bool:
        """Checked as the vehicle and the flight it names (naming neither: it passes)."""
        return (
            self.vehicles is None or note.vehicle_id is None or note.vehicle_id in self.vehicles
        ) and (self.flights is None or note.flight_id is None or note.flight_id in self.flights)

    # Derived rows: a stand's occupant is the aircraft of a flight on its stand, checked as
    # that flight is (FILTER_RULE: its stand, and any leg of its turnaround; a vacated stand
    # always passes, so the page clears it; an aircraft holding a stand with no leg passes
    # no flight filter); a vehicle's task goes with the vehicle (its card is of a vehicle
    # on the map).
    def stand(self, stand: DerivedEntry) -> bool:
        return (self.stands is None or stand.id in self.stands) and (
            self.flights is None
            or not stand.present
            or not self.flights.isdisjoint(stand.flight_ids)
        )

    def vehicle_task(self, vehicle: DerivedEntry) -> bool:
        return self.vehicle(vehicle.id)

    def aircraft(self, fix: AircraftEntry) -> bool:
        """An aircraft is checked as the flight its fix links to (its id, its stand)."""
        return (self.flights is None or fix.flight_id in self.flights) and (
            self.stands is None or fix.stand in self.stands
        )


def _array(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def frame_events(
    ticks: Iterable[PreparedTick], until: int, plan: FilterPlan
) -> list[tuple[str, bytes]]:
    """Events of one frame: every delta tick in it merged, in ``FRAME_EVENTS`` order.

    Vehicles keep their last fix in the frame; tasks, flights and notifications keep every
    row in order. Kinds with nothing left after filtering produce no event.
    """
    vehicles: dict[str, bytes] = {}
    stands: dict[str, bytes] = {}  # derived rows: the last per entity in the frame
    vehicle_tasks: dict[str, bytes] = {}
    aircraft: dict[str, bytes] = {}  # the last fix per aircraft in the frame
    tasks: list[bytes] = []
    flights: list[bytes] = []
    notes: list[bytes] = []
    decisions: list[bytes] = []
    allowed = plan.vehicles
    for tick in ticks:
        if tick.vehicles:
            if allowed is None:
                vehicles.update(tick.vehicles)
            else:
                for vehicle_id, row in tick.vehicles:
                    if vehicle_id in allowed:
                        vehicles[vehicle_id] = row
        tasks.extend(task.json for task in tick.tasks if plan.task(task))
        flights.extend(flight.json for flight in tick.flights if plan.flight(flight))
        notes.extend(note.json for note in tick.notifications if plan.notification(note))
        decisions.extend(d.json for d in tick.decisions if plan.task(d))
        for stand in tick.stands:
            if plan.stand(stand):
                stands[stand.id] = stand.json
        for vehicle in tick.vehicle_tasks:
            if plan.vehicle_task(vehicle):
                vehicle_tasks[vehicle.id] = vehicle.json
        for aircraft_id, fix in tick.aircraft:
            if plan.aircraft(fix):
                aircraft[aircraft_id] = fix.json
    head = b'{"t":' + str(until).encode()
    events = []
    if tasks:
        events.append(("task_update", head + b',"tasks":' + _array(tasks) + b"}"))
    if flights:
        events.append(("flight_update", head + b',"flights":' + _array(flights) + b"}"))
    if notes:
        events.append(("notification", head + b',"notifications":' + _array(notes) + b"}"))
    if decisions:
        body = _array(decisions)
        events.append(("dispatch_decision", head + b',"decisions":' + body + b"}"))
    if stands:
        events.append(("stand_update", head + b',"stands":' + _array(stands.values()) + b"}"))
    if vehicle_tasks:
        body = _array(vehicle_tasks.values())
        events.append(("vehicle_task_update", head + b',"vehicle_tasks":' + body + b"}"))
    if aircraft:
        body = _array(aircraft.values())
        events.append(("aircraft_update", head + b',"aircraft":' + body + b"}"))
    if vehicles:
        events.append(("vehicle_update", head + b',"vehicles":' + _array(vehicles.values()) + b"}"))
    return events


def snapshot_data(
    state: PreparedState,
    at: int,
    plan: FilterPlan,
    reason: str,
    timeline: int,
    staleness: bytes = b"null",
) -> bytes:
    """The ``snapshot`` event's data: the full filtered state at ``at``; ``staleness``:
    the movers' fade / hide ages as JSON (``Playhead.staleness``)."""
    vehicles = (state.vehicles[k] for k in sorted(state.vehicles) if plan.vehicle(k))
    tasks = (e.json for k, e in sorted(state.tasks.items()) if plan.task(e))
    flights = (e.json for k, e in sorted(state.flights.items()) if plan.flight(e))
    notes = (n.json for n in state.notifications if plan.notification(n))
    stands = (e.json for k, e in sorted(state.stands.items()) if plan.stand(e))
    vehicle_tasks = (e.json for k, e in sorted(state.vehicle_tasks.items()) if plan.vehicle_task(e))
    # The decision behind each active task the snapshot shows (its task as it is now).
    decisions = (d.json for task, d in state.active_decisions() if plan.task(task))
    aircraft = (e.json for k, e in sorted(state.aircraft.items()) if plan.aircraft(e))
    return b"".join(
        (
            b'{"t":',
            str(at).encode(),
            b',"reason":"',
            reason.encode(),
            b'","timeline":',
            str(timeline).encode(),
            b',"task_retention_ms":',
            str(state.task_retention_ms).encode(),
            b',"vehicles":',
            _array(vehicles),
            b',"tasks":',
            _array(tasks),
            b',"flights":',
            _array(flights),
            b',"notifications":',
            _array(notes),
            b',"stands":',
            _array(stands),
            b',"vehicle_tasks":',
            _array(vehicle_tasks),
            b',"decisions":',
            _array(decisions),
            b',"aircraft":',
            _array(aircraft),
            b',"staleness":',
            staleness,
            b"}",
        )
    )
