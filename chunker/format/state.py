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
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
RECENT_NOTIFICATIONS = 20
EVENT_KINDS = ("vehicles", "tasks", "flights", "notifications")


FINISHED_TASK_STATUSES = frozenset({"completed", "cancelled"})


def expired_task(status: str, t_row: int, tick_start: int, retention_ms: int) -> bool:
    """Whether a task row is no longer part of the state at the tick starting ``tick_start``."""
    return (
        retention_ms > 0 and status in FINISHED_TASK_STATUSES and t_row < tick_start - retention_ms
    )


def floor_tick(t: int, origin: int, tick_ms: int) -> int:
    """Start of the tick containing ``t`` (ticks aligned to ``origin``)."""
    return t - (t - origin) % tick_ms


@dataclass(slots=True)
class ReplayState:
    """Latest row per vehicle / task / flight, plus recent notifications."""

    vehicles: dict[str, Row] = field(default_factory=dict)
    tasks: dict[str, Row] = field(default_factory=dict)
    flights: dict[str, Row] = field(default_factory=dict)
    notifications: deque[Row] = field(default_factory=lambda: deque(maxlen=RECENT_NOTIFICATIONS))

    def apply(self, kind: str, row: Row) -> None:
        """Fold one row of ``kind`` (a key of ``EVENT_KINDS``) into the state."""
        if kind == "notifications":
            self.notifications.append(row)
        else:
            getattr(self, kind)[row["id"]] = row

    def expire_tasks(self, tick_start: int, retention_ms: int) -> None:
        """Drop finished tasks older than the retention, as seen at ``tick_start``."""
        if retention_ms <= 0:
            return
        gone = [
            task_id
            for task_id, row in self.tasks.items()
            if expired_task(row["status"], row["t"], tick_start, retention_ms)
        ]
        for task_id in gone:
            del self.tasks[task_id]

    def keyframe(self) -> dict[str, list[Row]]:
        """Full state as stored in a chunk: entity rows sorted by id."""
        return {
            "vehicles": [self.vehicles[k] for k in sorted(self.vehicles)],
            "tasks": [self.tasks[k] for k in sorted(self.tasks)],
            "flights": [self.flights[k] for k in sorted(self.flights)],
            "notifications": list(self.notifications),
        }
