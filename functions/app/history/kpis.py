"""KPIs of a window ``[start, end)``: departures' on-time performance, task delays by task
type, vehicle utilisation by vehicle type, conflicts and reassignments. A pure fold over
the state at ``start`` and the rows of the window's ticks (``queries.History.kpis`` feeds
it); the definitions are in docs/api.md (*KPIs*).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chunker.format.rows import Row

ON_TIME_MS = 15 * 60_000  # a departure is on time when it left at most 15 min late (D15)
BUSY = frozenset({"en_route", "arrived", "in_progress"})
ENDS = frozenset({"completed", "cancelled"})


def percentile(values: list[int], p: int) -> int | None:
    """Nearest-rank percentile: the smallest value with at least ``p`` % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


@dataclass(frozen=True, slots=True)
class KpiFilters:
    """Which records count (docs/api.md, *KPIs*: a filter narrows the records that carry
    its attribute; None means any)."""

    stands: frozenset[str] | None = None
    task_types: frozenset[str] | None = None
    vehicle_types: frozenset[str] | None = None


@dataclass(slots=True)
class _Open:
    vehicle: str
    since: int
    servicing_since: int | None = None


@dataclass
class KpiFold:
    """Accumulates the KPIs of ``[start, end)``; ``fleet`` maps vehicle id to its type."""

    start: int
    end: int
    fleet: Mapping[str, str]
    flight_stands: Mapping[str, str]
    filters: KpiFilters = field(default_factory=KpiFilters)
    departures: list[int] = field(default_factory=list)  # off-block delays
    _left: set[str] = field(default_factory=set)
    started: dict[str, list[int]] = field(default_factory=dict)
    ended: dict[str, list[int]] = field(default_factory=dict)
    _seen_start: set[str] = field(default_factory=set)
    _seen_end: set[str] = field(default_factory=set)
    busy: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    servicing: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    _open: dict[str, _Open] = field(default_factory=dict)
    _vehicle_of: dict[str, str | None] = field(default_factory=dict)
    _tasks: dict[str, Row] = field(default_factory=dict)
    reassignments: int = 0
    notifications: Counter[str] = field(default_factory=Counter)
    _notes: list[Row] = field(default_factory=list)

    def _task_counts(self, row: Row) -> bool:
        f = self.filters
        vehicle = row.get("vehicle_id")
        return (
            (f.stands is None or row["stand"] in f.stands)
            and (f.task_types is None or row["task_type"] in f.task_types)
            and (
                f.vehicle_types is None
                or (vehicle is not None and self.fleet.get(vehicle) in f.vehicle_types)
            )
        )

    def begin(self, tasks_at_start: Iterable[Row]) -> None:
        """The tasks of the state at ``start``: vehicles already on a task are busy."""
        for row in tasks_at_start:
            self._tasks[row["id"]] = row
            self._vehicle_of[row["id"]] = row.get("vehicle_id")
            vehicle = row.get("vehicle_id")
            if row["status"] in BUSY and vehicle is not None and self._task_counts(row):
                servicing = self.start if row["status"] == "in_progress" else None
                self._open[row["id"]] = _Open(vehicle, self.start, servicing)

    def task(self, row: Row) -> None:
        """One task event of the window, in order."""
        task_id, status, t = row["id"], row["status"], row["t"]
        before = self._vehicle_of.get(task_id)
        vehicle = row.get("vehicle_id")
        self._tasks[task_id] = row
        self._vehicle_of[task_id] = vehicle
        counts = self._task_counts(row)
        if status == "assigned" and before is not None and vehicle != before and counts:
            self.reassignments += 1
        if status == "in_progress" and task_id not in self._seen_start and counts:
            self._seen_start.add(task_id)
            delay = t - row["planned_start"]
            self.started.setdefault(row["task_type"], []).append(delay)
        if status == "completed" and task_id not in self._seen_end and counts:
            self._seen_end.add(task_id)
            self.ended.setdefault(row["task_type"], []).append(t - row["planned_end"])
        opened = self._open.get(task_id)
        if opened is not None and (status not in BUSY or vehicle != opened.vehicle):
            self._close(task_id, t)
            opened = None
        if status in BUSY and vehicle is not None and counts:
            if opened is None:
                opened = self._open[task_id] = _Open(vehicle, t)
            if status == "in_progress" and opened.servicing_since is None:
                opened.servicing_since = t

    def _close(self, task_id: str, t: int) -> None:
        opened = self._open.pop(task_id)
        self.busy.setdefault(opened.vehicle, []).append((opened.since, t))
        if opened.servicing_since is not None:
            spans = self.servicing.setdefault(opened.vehicle, [])
            spans.append((opened.servicing_since, t))

    def flight(self, row: Row) -> None:
        """One flight event of the window."""
        if row["movement"] != "departure" or row["status"] != "off_block":
            return
        if row["id"] in self._left:
            return
        self._left.add(row["id"])
        if self.filters.stands is None or row["stand"] in self.filters.stands:
            off_block = row["actual"] if row.get("actual") is not None else row["t"]
            self.departures.append(off_block - row["scheduled"])

    def notification(self, row: Row) -> None:
        """One notification of the window (judged at the end: the task it names may be
        recorded only after it, as a late task is)."""
        self._notes.append(row)

    def _count_notification(self, row: Row) -> None:
        f = self.filters
        task = self._tasks.get(row["task_id"]) if row.get("task_id") else None
        vehicle = row.get("vehicle_id")
        stand = (
            task["stand"]
            if task is not None
            else self.flight_stands.get(row.get("flight_id") or "")
        )
        if f.stands is not None and stand not in f.stands:
            return
        if f.task_types is not None and (task is None or task["task_type"] not in f.task_types):
            return
        if f.vehicle_types is not None and self.fleet.get(vehicle or "") not in f.vehicle_types:
            return
        self.notifications[row["code"]] += 1

    def close(self) -> None:
        """Close the busy and servicing spans still open at ``end``."""
        for task_id in list(self._open):
            self._close(task_id, self.end)

    def result(self) -> dict[str, Any]:
        """The KPI document (closing what is still open at ``end``)."""
        self.close()
        for note in self._notes:
            self._count_notification(note)
        self._notes.clear()
        on_time = sum(1 for delay in self.departures if delay <= ON_TIME_MS)
        types = sorted(
            set(self.fleet.values())
            if self.filters.vehicle_types is None
            else self.filters.vehicle_types
        )
        span = self.end - self.start
        utilisation = {}
        for vehicle_type in types:
            vehicles = [v for v, t in self.fleet.items() if t == vehicle_type]
            busy = sum(union_ms(self.busy.get(v, [])) for v in vehicles)
            servicing = sum(union_ms(self.servicing.get(v, [])) for v in vehicles)
            capacity = len(vehicles) * span
            utilisation[vehicle_type] = {
                "vehicles": len(vehicles),
                "busy_ms": busy,
                "servicing_ms": servicing,
                "busy_share": round(busy / capacity, 4) if capacity else None,
                "servicing_share": round(servicing / capacity, 4) if capacity else None,
            }
        task_types = sorted(set(self.started) | set(self.ended))
        return {
            "start": self.start,
            "end": self.end,
            "departures": {
                "count": len(self.departures),
                "on_time": on_time,
                "on_time_share": round(on_time / len(self.departures), 4)
                if self.departures
                else None,
                "on_time_threshold_ms": ON_TIME_MS,
                "delay_p50_ms": percentile(self.departures, 50),
                "delay_p90_ms": percentile(self.departures, 90),
            },
            "tasks": {
                task_type: {
                    "started": len(self.started.get(task_type, [])),
                    "start_delay_p50_ms": percentile(self.started.get(task_type, []), 50),
                    "start_delay_p90_ms": percentile(self.started.get(task_type, []), 90),
                    "completed": len(self.ended.get(task_type, [])),
                    "end_delay_p50_ms": percentile(self.ended.get(task_type, []), 50),
                    "end_delay_p90_ms": percentile(self.ended.get(task_type, []), 90),
                }
                for task_type in task_types
            },
            "utilisation": utilisation,
            "conflicts": self.notifications.get("vehicle_conflict", 0),
            "reassignments": self.reassignments,
            "notifications": dict(sorted(self.notifications.items())),
        }


def union_ms(spans: list[tuple[int, int]]) -> int:
    """Total length of the union of ``[a, b)`` spans."""
    total, reach = 0, None
    for a, b in sorted(spans):
        if reach is None or a > reach:
            total += b - a
            reach = b
        elif b > reach:
            total += b - reach
            reach = b
    return total
