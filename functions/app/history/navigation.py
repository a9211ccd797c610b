"""The day's navigable events: what the dashboard's timeline marks and its "next / previous
event" keys jump between, said once by the server instead of derived by each page.

A pure fold over the state at the day's start and the rows of its ticks, in order
(``queries.History.events`` feeds it). The rules (docs/api.md, *Events*):

- ``late_on_block`` / ``late_off_block``: an arrival's first ``on_block`` row / a
  departure's first ``off_block`` row whose block time (``actual``, else ``t``) is more
  than ``LATE_BLOCK_MS`` (15 min, the KPIs' on-time threshold) after ``scheduled``; at
  the block time;
- ``conflict``: a ``vehicle_conflict`` notification, at its time;
- ``reassignment``: a task moving to another vehicle, as the task events say (one entering
  ``assigned`` with a vehicle other than the one the task had: the KPIs' reassignment
  rule) or as the dispatcher's decisions say (a ``reassign`` decision: decision quality's
  count), at its time; a task event and a decision about the same task at the same instant
  are one event (``source`` ``both``; the task event's vehicles), else ``source`` says
  which record it comes from;
- ``escalation``: an ``escalate_no_vehicle`` decision (no candidate could be on time), at
  its time;
- ``decision``: every dispatch decision, at its time (the dashboard's next / previous
  decision; not a timeline lane);
- ``overdue_task``: the first instant a task is not completed or cancelled and the clock
  is past its ``planned_end`` (the dashboard's *overdue*, docs/api.md *Lateness*): the
  later of ``planned_end + 1 ms`` and the event that left it unfinished, if that comes
  before its next event (and the day's end). Once per task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from chunker.format.rows import Row
from functions.app.history.kpis import ON_TIME_MS

EventKind = Literal[
    "late_on_block",
    "late_off_block",
    "conflict",
    "reassignment",
    "overdue_task",
    "escalation",
    "decision",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
LATE_BLOCK_MS = ON_TIME_MS
FINISHED = frozenset({"completed", "cancelled"})
BLOCK_STATUS = {"arrival": "on_block", "departure": "off_block"}


@dataclass(slots=True)
class _TaskState:
    """A task as last seen: what its current interval (from ``since``) says."""

    status: str
    planned_end: int
    since: int
    vehicle_id: str | None
    row: Row
    overdue_seen: bool = False


@dataclass
class EventFold:
    """Accumulates the navigable events of ``[start, end)`` (a service day)."""

    start: int
    end: int
    events: list[dict[str, Any]] = field(default_factory=list)
    _tasks: dict[str, _TaskState] = field(default_factory=dict)
    _blocked: set[str] = field(default_factory=set)
    # Reassignments by (task, instant): a task event's and a decision's become one event.
    _reassigned: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)

    def begin(self, tasks_at_start: Iterable[Row]) -> None:
        """The tasks of the state at ``start`` (carried over from the day before)."""
        for row in tasks_at_start:
            self._tasks[row["id"]] = _TaskState(
                row["status"], int(row["planned_end"]), self.start, row.get("vehicle_id"), row
            )

    def _overdue_before(self, state: _TaskState, until: int) -> None:
        """Emit the task's overdue moment if it falls in ``[state.since, until)``."""
        if state.overdue_seen or state.status in FINISHED:
            return
        moment = max(state.since, state.planned_end + 1)
        if moment < until:
            state.overdue_seen = True
            row = state.row
            self.events.append(
                {
                    "kind": "overdue_task",
                    "t": moment,
                    "task_id": row["id"],
                    "task_type": row["task_type"],
                    "flight_id": row["flight_id"],
                    "vehicle_id": state.vehicle_id,
                    "stand": row["stand"],
                    "status": state.status,
                    "planned_end": state.planned_end,
                }
            )

    def task(self, row: Row) -> None:
        """One task event, in order."""
        task_id, t, vehicle = row["id"], int(row["t"]), row.get("vehicle_id")
        state = self._tasks.get(task_id)
        before = None
        if state is not None:
            self._overdue_before(state, t)
            before = state.vehicle_id
        if row["status"] == "assigned" and before is not None and vehicle != before:
            decided = self._reassigned.get((task_id, t))
            event = {
                "kind": "reassignment",
                "t": t,
                "task_id": task_id,
                "task_type": row["task_type"],
                "flight_id": row["flight_id"],
                "vehicle_id": vehicle,
                "from_vehicle_id": before,
                "stand": row["stand"],
                "source": "task",
                "reason": None,
            }
            if decided is None:
                self._reassigned[(task_id, t)] = event
                self.events.append(event)
            elif decided["source"] == "decision":  # the decision came first in its tick
                decided.update(event, source="both", reason=decided["reason"])
        seen = state is not None and state.overdue_seen
        self._tasks[task_id] = _TaskState(
            row["status"], int(row["planned_end"]), t, vehicle, row, seen
        )

    def flight(self, row: Row) -> None:
        """One flight event, in order."""
        status = BLOCK_STATUS.get(row["movement"])
        if row["status"] != status or row["id"] in self._blocked:
            return
        self._blocked.add(row["id"])
        block = int(row["actual"] if row.get("actual") is not None else row["t"])
        delay = block - int(row["scheduled"])
        if delay > LATE_BLOCK_MS:
            self.events.append(
                {
                    "kind": f"late_{status}",
                    "t": block,
                    "flight_id": row["id"],
                    "callsign": row["callsign"],
                    "stand": row["stand"],
                    "scheduled": int(row["scheduled"]),
                    "delay_ms": delay,
                }
            )

    def notification(self, row: Row) -> None:
        """One notification, in order."""
        if row.get("code") != "vehicle_conflict":
            return
        self.events.append(
            {
                "kind": "conflict",
                "t": int(row["t"]),
                "notification_id": row["id"],
                "flight_id": row.get("flight_id"),
                "task_id": row.get("task_id"),
                "vehicle_id": row.get("vehicle_id"),
                "level": row["level"],
                "text": row["text"],
            }
        )

    def decision(self, row: Row) -> None:
        """One dispatch decision (as chunks store it: ``id`` is its task), in order."""
        task_id, t, kind = row["id"], int(row["t"]), row["decision"]
        named = {
            "t": t,
            "task_id": task_id,
            "task_type": row.get("task_type"),
            "flight_id": row.get("flight_id"),
            "vehicle_id": row.get("vehicle_id"),
            "stand": row.get("stand"),
        }
        self.events.append(
            {
                "kind": "decision",
                **named,
                "decision": kind,
                "previous_vehicle_id": row.get("previous_vehicle_id"),
            }
        )
        if kind == "escalate_no_vehicle":
            self.events.append(
                {
                    "kind": "escalation",
                    **named,
                    "required_at": row.get("required_at"),
                    "reason": row.get("reason"),
                }
            )
        elif kind == "reassign":
            seen = self._reassigned.get((task_id, t))
            if seen is not None:
                if seen["source"] == "task":
                    seen.update(source="both", reason=row.get("reason"))
                return
            event = {
                "kind": "reassignment",
                **named,
                "from_vehicle_id": row.get("previous_vehicle_id"),
                "source": "decision",
                "reason": row.get("reason"),
            }
            self._reassigned[(task_id, t)] = event
            self.events.append(event)

    def result(self, kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """The events of the kinds asked (all if None), by time, then kind, then id."""
        for state in self._tasks.values():
            self._overdue_before(state, self.end)
        wanted = set(EVENT_KINDS if kinds is None else kinds)
        found = [e for e in self.events if e["kind"] in wanted]
        found.sort(key=lambda e: (e["t"], e["kind"], _event_id(e)))
        return found


def _event_id(event: dict[str, Any]) -> str:
    """What an event is about, for a stable order of events at one instant."""
    return str(event.get("notification_id") or event.get("task_id") or event["flight_id"])
