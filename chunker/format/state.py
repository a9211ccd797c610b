"""Replay state: what the apron looks like at an instant.

The state at time ``t`` is the fold of every accepted record whose tick has begun: with
ticks of ``tick_ms`` aligned to the start of the service day, a record at ``t_rec`` is
visible from ``floor_tick(t_rec)``. So the state at ``t`` holds every record with
``t_rec < floor_tick(t) + tick_ms``, applied in (time, source order):

- ``vehicles``: the latest GPS fix per vehicle;
- ``tasks`` / ``flights``: the latest row per task / flight leg — except that a finished
  task (``completed`` / ``cancelled``) leaves the state ``task_retention_ms`` after its
  last event (default one hour; ``expire_tasks``). The live picture stays the size of
  the apron's current work instead of growing all day; older tasks stay in the chunks'
  deltas and the history queries;
- ``notifications``: the most recent ``RECENT_NOTIFICATIONS`` notifications, oldest first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from chunker.format.rows import Row

RECENT_NOTIFICATIONS = 20
EVENT_KINDS = ("vehicles", "tasks", "flights", "notifications")


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


class TaskStatusT(Protocol):
    """Gets a task row's ``(status, t)``."""

    def __call__(self, row: Any, /) -> tuple[str, int]: ...


VehicleT = TypeVar("VehicleT")
TaskT = TypeVar("TaskT")
FlightT = TypeVar("FlightT")
NoteT = TypeVar("NoteT")


@dataclass(slots=True)
class StateFold(Generic[VehicleT, TaskT, FlightT, NoteT]):
    """The fold, written once whatever form a row takes: the chunker folds decoded rows
    (``ReplayState``), readers fold pre-encoded entries (``chunker.format.prepared``).

    Latest fix per vehicle, latest row per task and flight leg, the most recent
    notifications; finished tasks leave after the retention (module doc).
    """

    vehicles: dict[str, VehicleT] = field(default_factory=dict)
    tasks: dict[str, TaskT] = field(default_factory=dict)
    flights: dict[str, FlightT] = field(default_factory=dict)
    notifications: deque[NoteT] = field(default_factory=lambda: deque(maxlen=RECENT_NOTIFICATIONS))
    # Ids and a task's (status, t), in the form of the rows (C getters: hot loops).
    task_id: ClassVar[RowId]
    flight_id: ClassVar[RowId]
    task_status_t: ClassVar[TaskStatusT]

    def apply_tick(
        self,
        vehicles: Mapping[str, VehicleT] | Iterable[tuple[str, VehicleT]],
        tasks: Sequence[TaskT],
        flights: Sequence[FlightT],
        notifications: Sequence[NoteT],
    ) -> None:
        """Fold one tick in: the vehicles' fixes (by id), the tick's task, flight and
        notification rows, each in order."""
        if vehicles:
            self.vehicles.update(vehicles)
        if tasks:
            self.tasks.update(zip(map(self.task_id, tasks), tasks, strict=True))
        if flights:
            self.flights.update(zip(map(self.flight_id, flights), flights, strict=True))
        if notifications:
            self.notifications.extend(notifications)

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


@dataclass(slots=True)
class ReplayState(StateFold[Row, Row, Row, Row]):
    """The state as decoded rows: what the chunker builds keyframes from, and what
    history queries answer with."""

    task_id = flight_id = itemgetter("id")
    task_status_t = itemgetter("status", "t")

    def apply(self, kind: str, row: Row) -> None:
        """Fold one row of ``kind`` (a key of ``EVENT_KINDS``) into the state."""
        rows = (row,)
        if kind == "vehicles":
            self.apply_tick({row["id"]: row}, (), (), ())
        elif kind == "tasks":
            self.apply_tick((), rows, (), ())
        elif kind == "flights":
            self.apply_tick((), (), rows, ())
        else:
            self.apply_tick((), (), (), rows)

    def keyframe(self) -> dict[str, list[Row]]:
        """Full state as stored in a chunk: entity rows sorted by id."""
        return {
            "vehicles": [self.vehicles[k] for k in sorted(self.vehicles)],
            "tasks": [self.tasks[k] for k in sorted(self.tasks)],
            "flights": [self.flights[k] for k in sorted(self.flights)],
            "notifications": list(self.notifications),
        }
