"""Replay state: what the apron looks like at an instant.

The state at time ``t`` is the fold of every accepted record whose tick has begun: with
ticks of ``tick_ms`` aligned to the start of the service day, a record at ``t_rec`` is
visible from ``floor_tick(t_rec)``. So the state at ``t`` holds every record with
``t_rec < floor_tick(t) + tick_ms``, applied in (time, source order):

- ``vehicles``: the latest GPS fix per vehicle;
- ``aircraft``: the latest surface fix per aircraft (raw kind ``aircraft``), until the
  aircraft leaves: the chunker writes a removal row (``removed: true``) in the tick it
  leaves by the rule of ``chunker.batch.aircraft.aircraft_left`` (no fix for
  ``aircraft_expiry_ms``, or its flight departed), and folding that row drops it;
- ``tasks`` / ``flights``: the latest row per task / flight leg — except that a finished
  task (``completed`` / ``cancelled``) leaves the state ``task_retention_ms`` after its
  last event (default one hour; ``expire_tasks``). The live picture stays the size of
  the apron's current work instead of growing all day; older tasks stay in the chunks'
  deltas and the history queries;
- ``notifications``: the most recent ``RECENT_NOTIFICATIONS`` notifications, oldest first;
- ``decisions``: the latest dispatch decision per task. The state *shows* (keyframes,
  snapshots) only the decision behind each active task: one whose task is in the state
  and whose latest row is not finished (``StateFold.active_decisions``). Decisions are
  discrete events of their task; the chunker stores each with the task's type and status
  as of the end of the decision's tick (``annotate_decision``), so filters check a
  decision as they check its task;
- ``stands`` / ``vehicle_tasks``: derived from the rows above by ``chunker.format.derived``
  (stand occupancy, each vehicle's current and last task). The chunker derives them and
  stores them like any other kind (keyframes, per-tick deltas); readers only fold them. A
  derived delta row that leaves nothing to say (a vacated stand, a vehicle with neither a
  current nor a last task) removes its entity from the state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from chunker.format.derived import DERIVED_KINDS, PRESENT, Derivation
from chunker.format.rows import Row

RECENT_NOTIFICATIONS = 20
EVENT_KINDS = ("vehicles", "tasks", "flights", "notifications", "decisions", "aircraft")
STATE_KINDS = (*EVENT_KINDS, *DERIVED_KINDS)


FINISHED_TASK_STATUSES = frozenset({"completed", "cancelled"})


def expired_task(status: str, t_row: int, tick_start: int, retention_ms: int) -> bool:
    """Whether a task row is no longer part of the state at the tick starting ``tick_start``
    (the rule ``StateFold.expire_tasks`` applies to a whole state at once)."""
    return (
        retention_ms > 0 and status in FINISHED_TASK_STATUSES and t_row < tick_start - retention_ms
    )


def floor_tick(t: int, origin: int, tick_ms: int) -> int:
    """Start of the tick containing ``t`` (ticks aligned to ``origin``)."""
    return t - (t - origin) % tick_ms


class RowId(Protocol):
    """Gets a task or flight row's id."""

    def __call__(self, row: Any, /) -> str: ...


class DerivedPresent(Protocol):
    """Whether a derived row of ``kind`` keeps its entity in the state."""

    def __call__(self, kind: str, row: Any, /) -> bool: ...


class AircraftPresent(Protocol):
    """Whether an aircraft row keeps its aircraft in the state (False: a removal row)."""

    def __call__(self, row: Any, /) -> bool: ...


class TaskStatusT(Protocol):
    """Gets a task row's ``(status, t)``."""

    def __call__(self, row: Any, /) -> tuple[str, int]: ...


VehicleT = TypeVar("VehicleT")
TaskT = TypeVar("TaskT")
FlightT = TypeVar("FlightT")
NoteT = TypeVar("NoteT")
DerivedT = TypeVar("DerivedT")
DecisionT = TypeVar("DecisionT")
AircraftT = TypeVar("AircraftT")


@dataclass(slots=True)
class StateFold(Generic[VehicleT, TaskT, FlightT, NoteT, DerivedT, DecisionT, AircraftT]):
    """The fold, written once whatever form a row takes: the chunker folds decoded rows
    (``ReplayState``), readers fold pre-encoded entries (``chunker.format.prepared``).

    Latest fix per vehicle, latest row per task and flight leg, the most recent
    notifications, the latest derived row per stand and vehicle (absent ones removed),
    the latest decision per task; finished tasks leave after the retention (module doc).
    """

    vehicles: dict[str, VehicleT] = field(default_factory=dict)
    tasks: dict[str, TaskT] = field(default_factory=dict)
    flights: dict[str, FlightT] = field(default_factory=dict)
    notifications: deque[NoteT] = field(default_factory=lambda: deque(maxlen=RECENT_NOTIFICATIONS))
    stands: dict[str, DerivedT] = field(default_factory=dict)
    vehicle_tasks: dict[str, DerivedT] = field(default_factory=dict)
    decisions: dict[str, DecisionT] = field(default_factory=dict)  # task id -> latest
    aircraft: dict[str, AircraftT] = field(default_factory=dict)
    # Ids and a task's (status, t), in the form of the rows (C getters: hot loops).
    task_id: ClassVar[RowId]
    flight_id: ClassVar[RowId]
    derived_id: ClassVar[RowId]
    derived_present: ClassVar[DerivedPresent]
    aircraft_present: ClassVar[AircraftPresent]
    task_status_t: ClassVar[TaskStatusT]

    def apply_tick(
        self,
        vehicles: Mapping[str, VehicleT] | Iterable[tuple[str, VehicleT]],
        tasks: Sequence[TaskT],
        flights: Sequence[FlightT],
        notifications: Sequence[NoteT],
        stands: Sequence[DerivedT] = (),
        vehicle_tasks: Sequence[DerivedT] = (),
        decisions: Sequence[DecisionT] = (),
        aircraft: Mapping[str, AircraftT] | Iterable[tuple[str, AircraftT]] = (),
    ) -> None:
        """Fold one tick in: the vehicles' fixes (by id), the tick's task, flight and
        notification rows, each in order, then its derived rows, its decisions and the
        aircraft's fixes (by id)."""
        if vehicles:
            self.vehicles.update(vehicles)
        if aircraft:
            present, known = self.aircraft_present, self.aircraft
            pairs = aircraft.items() if isinstance(aircraft, Mapping) else aircraft
            for aircraft_id, fix in pairs:
                if present(fix):
                    known[aircraft_id] = fix
                else:  # a removal row: the aircraft left (took off, or went quiet)
                    known.pop(aircraft_id, None)
        if tasks:
            self.tasks.update(zip(map(self.task_id, tasks), tasks, strict=True))
        if flights:
            self.flights.update(zip(map(self.flight_id, flights), flights, strict=True))
        if notifications:
            self.notifications.extend(notifications)
        if stands:
            self._fold_derived("stands", self.stands, stands)
        if vehicle_tasks:
            self._fold_derived("vehicle_tasks", self.vehicle_tasks, vehicle_tasks)
        if decisions:
            self.decisions.update(zip(map(self.task_id, decisions), decisions, strict=True))

    def active_decisions(self) -> list[tuple[TaskT, DecisionT]]:
        """The decision behind each active task, by task id: (task row, decision) for every
        task in the state whose latest row is not finished and that has a decision."""
        tasks, status_t = self.tasks, self.task_status_t
        found = []
        for task_id in sorted(self.decisions):
            task = tasks.get(task_id)
            if task is not None and status_t(task)[0] not in FINISHED_TASK_STATUSES:
                found.append((task, self.decisions[task_id]))
        return found

    def _fold_derived(
        self, kind: str, entities: dict[str, DerivedT], rows: Sequence[DerivedT]
    ) -> None:
        present, key_of = self.derived_present, self.derived_id
        for row in rows:
            if present(kind, row):
                entities[key_of(row)] = row
            else:
                entities.pop(key_of(row), None)

    def expire_tasks(self, tick_start: int, retention_ms: int) -> None:
        """Drop finished tasks older than the retention, as seen at ``tick_start``."""
        if retention_ms <= 0:
            return
        # expired_task's rule, inlined: this runs over every task of every seek.
        horizon, tasks = tick_start - retention_ms, self.tasks
        status_t = map(self.task_status_t, tasks.values())
        gone = [
            task_id
            for task_id, (status, t) in zip(tasks, status_t, strict=True)
            if t < horizon and status in FINISHED_TASK_STATUSES
        ]
        for task_id in gone:
            del self.tasks[task_id]


def _row_present(kind: str, row: Row) -> bool:
    return PRESENT[kind](row)


def aircraft_row_present(row: Row) -> bool:
    """An aircraft row that keeps its aircraft: a fix, not a removal row."""
    return row.get("removed") is not True


@dataclass(slots=True)
class ReplayState(StateFold[Row, Row, Row, Row, Row, Row, Row]):
    """The state as decoded rows: what the chunker builds keyframes from, and what
    history queries answer with.

    ``derivation``: the chunker's bookkeeping behind the derived rows (``fold_tick``); a
    state read back from chunks has its derived rows and an empty one.
    """

    derivation: Derivation = field(default_factory=Derivation)
    task_id = flight_id = derived_id = itemgetter("id")
    derived_present = staticmethod(_row_present)
    aircraft_present = staticmethod(aircraft_row_present)
    task_status_t = itemgetter("status", "t")

    def fold_tick(
        self,
        t: int,
        vehicles: Mapping[str, Row],
        tasks: Sequence[Row],
        flights: Sequence[Row],
        notifications: Sequence[Row],
        decisions: Sequence[Row] = (),
        aircraft: Mapping[str, Row] | None = None,
    ) -> dict[str, list[Row]]:
        """Fold one tick (starting at ``t``) of rows in, derive, and return the derived
        rows that changed by kind (a tick's derived deltas; ``chunker.format.derived``).
        ``decisions``: annotated (``annotate_decision``); ``aircraft``: the last fix per
        aircraft in the tick."""
        self.apply_tick(
            vehicles, tasks, flights, notifications, decisions=decisions, aircraft=aircraft or ()
        )
        if not tasks and not flights and not aircraft:
            return {}  # most ticks: only fixes and decisions, nothing derived can change
        derivation = self.derivation
        stands: set[str] = set()
        vehicle_ids: set[str] = set()
        for row in flights:
            derivation.flight(row, stands)
        for row in tasks:
            derivation.task(row, vehicle_ids)
        for aircraft_id in sorted(aircraft or ()):
            fix = (aircraft or {})[aircraft_id]
            if aircraft_row_present(fix):  # leaving the map is no news about the stand
                derivation.aircraft_fix(fix, stands)
        changed: dict[str, list[Row]] = {}
        rows = [derivation.stand_row(s, t) for s in sorted(stands)]
        changed["stands"] = _changes("stands", self.stands, rows)
        rows = [derivation.vehicle_row(v, t) for v in sorted(vehicle_ids)]
        changed["vehicle_tasks"] = _changes("vehicle_tasks", self.vehicle_tasks, rows)
        self.apply_tick((), (), (), (), changed["stands"], changed["vehicle_tasks"])
        return changed

    def apply(self, kind: str, row: Row) -> None:
        """Fold one row of ``kind`` (a key of ``EVENT_KINDS``) into the state."""
        rows = (row,)
        if kind == "vehicles":
            self.apply_tick({row["id"]: row}, (), (), ())
        elif kind == "aircraft":
            self.fold_tick(row["t"], {}, (), (), (), aircraft={row["id"]: row})
        elif kind == "tasks":
            self.fold_tick(row["t"], {}, rows, (), ())
        elif kind == "flights":
            self.fold_tick(row["t"], {}, (), rows, ())
        elif kind == "decisions":
            self.apply_tick((), (), (), (), decisions=rows)
        else:
            self.apply_tick((), (), (), rows)

    def keyframe(self) -> dict[str, list[Row]]:
        """Full state as stored in a chunk: entity rows sorted by id."""
        return {
            "vehicles": [self.vehicles[k] for k in sorted(self.vehicles)],
            "tasks": [self.tasks[k] for k in sorted(self.tasks)],
            "flights": [self.flights[k] for k in sorted(self.flights)],
            "notifications": list(self.notifications),
            "stands": [self.stands[k] for k in sorted(self.stands)],
            "vehicle_tasks": [self.vehicle_tasks[k] for k in sorted(self.vehicle_tasks)],
            "decisions": [decision for _, decision in self.active_decisions()],
            "aircraft": [self.aircraft[k] for k in sorted(self.aircraft)],
        }


def annotate_decision(decision: Row, task: Row | None) -> dict[str, Any]:
    """A decision as chunks store it: the raw row plus its task's ``task_type`` and
    ``task_status`` from ``task``, the task's latest row as of the end of the decision's
    tick (None for both when no row of the task came before)."""
    return {
        **decision,
        "task_type": None if task is None else task["task_type"],
        "task_status": None if task is None else task["status"],
    }


def _changes(kind: str, entities: Mapping[str, Row], rows: Iterable[Row]) -> list[Row]:
    """The derived rows that differ from the state's (a removal only if it was there)."""
    present = PRESENT[kind]
    return [
        row
        for row in rows
        if (entities.get(row["id"]) != row if present(row) else row["id"] in entities)
    ]
