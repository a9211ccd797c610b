"""A vehicle's day: its task chain in order, and how its time split between idle, driving
and servicing. A pure fold over the state at the window's start and the rows of its ticks
(``queries.History.vehicle_day`` feeds it); the definitions are in docs/api.md (*A
vehicle's day*).

Busy and servicing time are the KPIs' (``kpis.KpiFold``, run for this one vehicle): busy
from a task's ``en_route`` until it leaves en-route/arrived/in-progress or goes to another
vehicle, servicing the part from ``in_progress`` on. Driving is busy minus servicing, idle
the window minus busy. Each task's times are the turnaround's (``turnarounds.task_times``)
over the task's events that name this vehicle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from chunker.format.rows import Row
from functions.app.history.kpis import KpiFold, union_ms
from functions.app.history.turnarounds import task_times


class VehicleDayFold:
    """Accumulates one vehicle's day over ``[start, end)``; ``fleet`` maps vehicle id to
    its type (the vehicle must be in it)."""

    def __init__(self, start: int, end: int, fleet: Mapping[str, str], vehicle_id: str) -> None:
        self.start, self.end, self.vehicle_id = start, end, vehicle_id
        self.vehicle_type = fleet[vehicle_id]
        self._kpis = KpiFold(start, end, {vehicle_id: self.vehicle_type}, {})
        self._events: dict[str, list[Row]] = {}
        self._last_vehicle: dict[str, str | None] = {}

    def _keep(self, row: Row) -> None:
        self._last_vehicle[row["id"]] = row.get("vehicle_id")
        if row.get("vehicle_id") == self.vehicle_id:
            self._events.setdefault(row["id"], []).append(row)

    def begin(self, tasks_at_start: Iterable[Row]) -> None:
        """The tasks of the state at ``start`` (a task the vehicle was already on)."""
        rows = list(tasks_at_start)
        self._kpis.begin(rows)
        for row in rows:
            if row["status"] not in ("completed", "cancelled"):
                self._keep(row)

    def task(self, row: Row) -> None:
        """One task event of the window, in order."""
        self._kpis.task(row)
        self._keep(row)

    def flight(self, row: Row) -> None:
        """Flights do not enter a vehicle's day."""

    def notification(self, row: Row) -> None:
        """Notifications do not enter a vehicle's day."""

    def result(self) -> dict[str, Any]:
        """The vehicle's day (closing what is still open at ``end``)."""
        self._kpis.close()
        tasks = []
        for task_id, events in self._events.items():
            task = task_times(events)
            del task["vehicles"], task["vehicle_id"]
            task["status"] = events[-1]["status"]
            task["handed_over"] = self._last_vehicle.get(task_id) != self.vehicle_id
            tasks.append(task)
        tasks.sort(key=lambda t: (_first(t), t["id"]))
        span = self.end - self.start
        busy = union_ms(self._kpis.busy.get(self.vehicle_id, []))
        servicing = union_ms(self._kpis.servicing.get(self.vehicle_id, []))
        return {
            "vehicle_id": self.vehicle_id,
            "vehicle_type": self.vehicle_type,
            "start": self.start,
            "end": self.end,
            "tasks": tasks,
            "totals": {
                "tasks": len(tasks),
                "completed": sum(1 for t in tasks if t["completed"] is not None),
                "window_ms": span,
                "busy_ms": busy,
                "servicing_ms": servicing,
                "driving_ms": busy - servicing,
                "idle_ms": span - busy,
                "utilisation": round(busy / span, 4) if span else None,
                "servicing_share": round(servicing / span, 4) if span else None,
            },
        }


def _first(task: Row) -> int:
    """When the vehicle's part of a task began: its assignment, else its first time."""
    for name in ("assigned", "en_route", "arrived", "started", "completed", "cancelled"):
        if task[name] is not None:
            return int(task[name])
    return int(task["planned_start"])
