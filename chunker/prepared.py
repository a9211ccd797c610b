"""A chunk in the form readers keep in memory: every row pre-encoded as JSON bytes.

Streams send rows as they are stored, so each row is encoded once when a chunk is loaded
and then only concatenated, never re-encoded per viewer. Next to each row's bytes sit the
few attributes server-side filters need (ids, task type and status, stand, flight).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from chunker.chunk_format import CorruptChunk
from chunker.state import (
    FINISHED_TASK_STATUSES,
    RECENT_NOTIFICATIONS,
    ReplayState,
    expired_task,
)

Row = dict[str, Any]
_ENTRY_OVERHEAD = 120  # bytes of Python objects around each row's bytes (measured order)


class TaskEntry(NamedTuple):
    """A task row and what filters look at."""

    id: str
    task_type: str
    status: str
    flight_id: str
    stand: str
    t: int
    json: bytes


class FlightEntry(NamedTuple):
    """A flight row and what filters look at."""

    id: str
    stand: str
    json: bytes


class NotificationEntry(NamedTuple):
    """A notification row and what filters look at."""

    flight_id: str | None
    json: bytes


VehicleEntry = tuple[str, bytes]  # (vehicle_id, row JSON)


@dataclass(slots=True)
class PreparedTick:
    """One tick of deltas (or a keyframe) as pre-encoded entries."""

    t: int
    vehicles: list[VehicleEntry] = field(default_factory=list)
    tasks: list[TaskEntry] = field(default_factory=list)
    flights: list[FlightEntry] = field(default_factory=list)
    notifications: list[NotificationEntry] = field(default_factory=list)


def _prepare(t: int, rows: dict[str, Any]) -> tuple[PreparedTick, int]:
    dumps = orjson.dumps
    tick = PreparedTick(t)
    size = 0
    for row in rows.get("vehicles") or ():
        encoded = dumps(row)
        tick.vehicles.append((row["id"], encoded))
        size += len(encoded)
    for row in rows.get("tasks") or ():
        encoded = dumps(row)
        tick.tasks.append(
            TaskEntry(
                row["id"],
                row["task_type"],
                row["status"],
                row["flight_id"],
                row["stand"],
                row["t"],
                encoded,
            )
        )
        size += len(encoded)
    for row in rows.get("flights") or ():
        encoded = dumps(row)
        tick.flights.append(FlightEntry(row["id"], row["stand"], encoded))
        size += len(encoded)
    for row in rows.get("notifications") or ():
        encoded = dumps(row)
        tick.notifications.append(NotificationEntry(row.get("flight_id"), encoded))
        size += len(encoded)
    entries = len(tick.vehicles) + len(tick.tasks) + len(tick.flights) + len(tick.notifications)
    return tick, size + entries * _ENTRY_OVERHEAD


@dataclass(slots=True)
class PreparedState:
    """State at an instant, as entries keyed by id (what a snapshot is built from)."""

    t: int
    vehicles: dict[str, bytes]
    tasks: dict[str, TaskEntry]
    flights: dict[str, FlightEntry]
    notifications: deque[NotificationEntry]
    task_retention_ms: int = 0

    def apply(self, tick: PreparedTick) -> None:
        """Fold one tick in."""
        if tick.vehicles:
            self.vehicles.update(tick.vehicles)
        for task in tick.tasks:
            self.tasks[task.id] = task
        for flight in tick.flights:
            self.flights[flight.id] = flight
        if tick.notifications:
            self.notifications.extend(tick.notifications)

    def rows(self) -> ReplayState:
        """Decoded rows (for queries and tests; the stream never needs this)."""
        loads = orjson.loads
        return ReplayState(
            {k: loads(v) for k, v in self.vehicles.items()},
            {k: loads(v.json) for k, v in self.tasks.items()},
            {k: loads(v.json) for k, v in self.flights.items()},
            deque((loads(n.json) for n in self.notifications), maxlen=RECENT_NOTIFICATIONS),
        )


@dataclass(slots=True)
class PreparedChunk:
    """A decoded chunk: prepared keyframe and ticks, with its in-memory size."""

    key: str
    start: int
    end: int
    tick_ms: int
    task_retention_ms: int
    keyframe: PreparedTick
    ticks: list[PreparedTick]
    tick_times: list[int]
    size: int

    @classmethod
    def from_document(cls, key: str, document: dict[str, Any]) -> PreparedChunk:
        """Prepare a decoded chunk document (see chunker.chunk_format); ``CorruptChunk``
        if it does not have a chunk's structure."""
        try:
            keyframe, size = _prepare(document["start"], document["keyframe"])
            ticks = []
            for tick_rows in document["ticks"]:
                tick, tick_size = _prepare(tick_rows["t"], tick_rows)
                ticks.append(tick)
                size += tick_size
            return cls(
                key=key,
                start=int(document["start"]),
                end=int(document["end"]),
                tick_ms=int(document["tick_ms"]),
                task_retention_ms=int(document["task_retention_ms"]),
                keyframe=keyframe,
                ticks=ticks,
                tick_times=[tick.t for tick in ticks],
                size=size + 512,
            )
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise CorruptChunk(f"not a chunk's structure ({type(exc).__name__}: {exc})") from exc

    def ticks_between(self, after: int, until: int) -> Iterable[PreparedTick]:
        """Ticks with ``after < t <= until``, in order."""
        times = self.tick_times
        return self.ticks[bisect_right(times, after) : bisect_right(times, until)]

    def state_at(self, t: int) -> PreparedState:
        """State at ``t`` (keyframe + ticks with ``tick.t <= t``); ``t`` inside the chunk."""
        if not self.start <= t < self.end:
            raise ValueError(f"t={t} is outside the chunk [{self.start}, {self.end})")
        keyframe = self.keyframe
        state = PreparedState(
            t,
            dict(keyframe.vehicles),
            {task.id: task for task in keyframe.tasks},
            {flight.id: flight for flight in keyframe.flights},
            deque(keyframe.notifications, maxlen=RECENT_NOTIFICATIONS),
            self.task_retention_ms,
        )
        for tick in self.ticks[: bisect_right(self.tick_times, t)]:
            state.apply(tick)
        retention = self.task_retention_ms
        if retention > 0:
            tick_start = t - (t - self.start) % self.tick_ms
            for task in [e for e in state.tasks.values() if e.status in FINISHED_TASK_STATUSES]:
                if expired_task(task.status, task.t, tick_start, retention):
                    del state.tasks[task.id]
        return state
