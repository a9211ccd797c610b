"""The turnaround as one object: an aircraft's visit to a stand (its arrival and departure
legs, every task of both, the vehicles that served them) and the critical path to
off-block. Pure functions over rows read from the chunks (``queries.History`` reads them).

Times are the *recorded transition times*: a task's ``assigned`` is the ``t`` of its first
event entering ``assigned``, its ``started`` / ``completed`` those of ``in_progress`` /
``completed``; a leg's ``block`` is the ``actual`` (else ``t``) of its first ``on_block`` /
``off_block`` row, its ``runway`` that of ``landed`` / ``departed``.

The critical path (docs/api.md, *Turnarounds*) follows the ground-handling precedence
rules, from off-block backwards:

- off-block is released by the departure's pushback starting (without a pushback, by the
  last task of the turnaround to end before off-block);
- a pushback is released by the latest of: every other task of the turnaround ending
  (the aircraft leaves only when all else is done), its tug arriving, its planned start;
- any other task is released by the latest of: the aircraft's on-block (arrival leg),
  its vehicle arriving, its planned start.

Only releases at or before the released event count (a plan later than the actual start
held nothing). The chain stops at the inbound on-block, a late vehicle, or a task that
started on its plan. Each element says how much it *added*: its hand-off time minus the
earliest it could have handed off given its release and its plan (a task: ``max(release,
planned start) + planned duration``; pushback and off-block hand off when they start, so
``max(release, planned start)``); the inbound adds its on-block delay, a late vehicle its
arrival after the task's planned start. ``slack_ms`` is what the plan's buffers absorbed:
``off-block delay - sum(added)``, so the parts always add up to the delay.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from chunker.format.rows import Row

FINISHED = ("completed", "cancelled")
# Which release wins a tie: the most upstream cause.
_PRIORITY = {"plan": 0, "vehicle_arrival": 1, "on_block": 2, "task_end": 3}


def turnaround_of(leg: Row) -> str:
    """A leg's turnaround id: the one it was recorded with, else the leg's own id (a leg
    without a partner is a turnaround of its own)."""
    return str(leg.get("turnaround_id") or leg["id"])


def legs_of(flights: Iterable[Row], turnaround_id: str) -> list[Row]:
    """The catalogue's legs of a turnaround: arrival first."""
    legs = [f for f in flights if turnaround_of(f) == turnaround_id]
    return sorted(legs, key=lambda f: (f["movement"] != "arrival", f["id"]))


def leg_times(leg: Row) -> list[int]:
    """Every schedule time a catalogue row carries (for scan windows)."""
    return [int(leg[k]) for k in ("scheduled", "estimated", "actual") if leg.get(k) is not None]


def summary(turnaround_id: str, legs: Sequence[Row]) -> dict[str, Any]:
    """A search hit: the turnaround from the catalogue alone (no chunk is read)."""
    arrival = next((leg for leg in legs if leg["movement"] == "arrival"), None)
    departure = next((leg for leg in legs if leg["movement"] == "departure"), None)
    anchor = legs[0]
    return {
        "id": turnaround_id,
        "stand": (departure or arrival or anchor)["stand"],
        "registration": anchor["registration"],
        "aircraft_type": anchor["aircraft_type"],
        "airline": anchor["airline"],
        "arrival": arrival,
        "departure": departure,
        "start": min(min(leg_times(leg)) for leg in legs),
        "end": max(max(leg_times(leg)) for leg in legs),
    }


def _leg(latest: Row, events: Sequence[Row]) -> dict[str, Any]:
    entered: dict[str, int] = {}
    for row in events:
        when = row["actual"] if row.get("actual") is not None else row["t"]
        entered.setdefault(row["status"], int(when))
    arrival = latest["movement"] == "arrival"
    block = entered.get("on_block" if arrival else "off_block")
    scheduled = int(latest["scheduled"])
    return {
        "id": latest["id"],
        "movement": latest["movement"],
        "flight_number": latest["flight_number"],
        "callsign": latest["callsign"],
        "route": latest["route"],
        "stand": latest["stand"],
        "status": latest["status"],
        "scheduled": scheduled,
        "block": block,
        "runway": entered.get("landed" if arrival else "departed"),
        "block_delay_ms": None if block is None else block - scheduled,
        "flight": latest,
    }


def task_times(events: Sequence[Row]) -> dict[str, Any]:
    entered: dict[str, int] = {}
    vehicles: list[str] = []
    for row in events:
        entered.setdefault(row["status"], int(row["t"]))
        vehicle = row.get("vehicle_id")
        if vehicle is not None and vehicle not in vehicles:
            vehicles.append(vehicle)
    last = events[-1]
    planned_start, planned_end = int(last["planned_start"]), int(last["planned_end"])
    started, completed = entered.get("in_progress"), entered.get("completed")
    en_route, arrived = entered.get("en_route"), entered.get("arrived")
    return {
        "id": last["id"],
        "task_type": last["task_type"],
        "flight_id": last["flight_id"],
        "stand": last["stand"],
        "status": last["status"],
        "vehicle_id": last.get("vehicle_id"),
        "vehicles": vehicles,
        "planned_start": planned_start,
        "planned_end": planned_end,
        "created": entered.get("created"),
        "assigned": entered.get("assigned"),
        "en_route": en_route,
        "arrived": arrived,
        "started": started,
        "completed": completed,
        "cancelled": entered.get("cancelled"),
        "travel_ms": None if en_route is None or arrived is None else arrived - en_route,
        "start_delay_ms": None if started is None else started - planned_start,
        "end_delay_ms": None if completed is None else completed - planned_end,
        "duration_ms": None if started is None or completed is None else completed - started,
        "planned_duration_ms": planned_end - planned_start,
        "events": len(events),
    }


def assemble(
    turnaround_id: str,
    legs: Sequence[Row],
    flight_events: Sequence[Row],
    task_events: Sequence[Row],
    notifications: Sequence[Row],
    window: tuple[int, int],
) -> dict[str, Any]:
    """The turnaround document from its legs' latest rows and the events read in
    ``window`` (each list in time order)."""
    leg_docs = [_leg(leg, [r for r in flight_events if r["id"] == leg["id"]]) for leg in legs]
    by_task: dict[str, list[Row]] = {}
    for row in task_events:
        by_task.setdefault(row["id"], []).append(row)
    tasks = sorted(
        (task_times(rows) for rows in by_task.values()), key=lambda t: (t["planned_start"], t["id"])
    )
    arrival = next((leg for leg in leg_docs if leg["movement"] == "arrival"), None)
    departure = next((leg for leg in leg_docs if leg["movement"] == "departure"), None)
    vehicles = sorted({v for task in tasks for v in task["vehicles"]})
    return {
        **summary(turnaround_id, legs),
        "arrival": arrival,
        "departure": departure,
        "tasks": tasks,
        "vehicles": vehicles,
        "notifications": list(notifications),
        "critical_path": critical_path(arrival, departure, tasks),
        "window": {"start": window[0], "end": window[1]},
    }


def _release(
    task: dict[str, Any], tasks: Sequence[dict[str, Any]], on_block: int | None
) -> tuple[int, str, dict[str, Any] | None] | None:
    """What released ``task`` (the latest release at or before its start), or None."""
    started = task["started"]
    candidates: list[tuple[int, str, dict[str, Any] | None]] = []
    if task["planned_start"] <= started:
        candidates.append((task["planned_start"], "plan", None))
    if task["arrived"] is not None and task["arrived"] <= started:
        candidates.append((task["arrived"], "vehicle_arrival", None))
    if task["task_type"] == "pushback":
        for other in tasks:
            end = other["completed"]
            if other is not task and end is not None and end <= started:
                candidates.append((end, "task_end", other))
    elif on_block is not None and on_block <= started:
        candidates.append((on_block, "on_block", None))
    if not candidates:
        return None
    return max(
        candidates, key=lambda c: (c[0], _PRIORITY[c[1]], "" if c[2] is None else c[2]["id"])
    )


def _element(kind: str, handoff: int, added: int, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, "handoff_at": handoff, "added_ms": added, **fields}


def critical_path(
    arrival: dict[str, Any] | None,
    departure: dict[str, Any] | None,
    tasks: Sequence[dict[str, Any]],
) -> dict[str, Any] | None:
    """The chain of events that determined the departure's off-block (module doc), first
    cause first; None without a recorded off-block."""
    if departure is None or departure["block"] is None:
        return None
    off_block, scheduled = departure["block"], departure["scheduled"]
    on_block = None if arrival is None else arrival["block"]
    done = [t for t in tasks if t["started"] is not None and t["status"] != "cancelled"]
    pushbacks = [
        t
        for t in done
        if t["task_type"] == "pushback"
        and t["flight_id"] == departure["id"]
        and t["started"] <= off_block
    ]
    chain: list[dict[str, Any]] = []
    current: dict[str, Any] | None
    if pushbacks:
        current = max(pushbacks, key=lambda t: (t["started"], t["id"]))
        release_of_off_block = current["started"]
    else:
        ended = [t for t in done if t["completed"] is not None and t["completed"] <= off_block]
        current = max(ended, key=lambda t: (t["completed"], t["id"])) if ended else None
        release_of_off_block = None if current is None else current["completed"]
    chain.append(
        _element(
            "off_block",
            off_block,
            off_block - max(release_of_off_block or scheduled, scheduled),
            id=departure["id"],
            released_at=release_of_off_block,
            planned=scheduled,
            gate="task_start" if pushbacks else ("task_end" if current else "plan"),
        )
    )
    seen: set[str] = set()
    while current is not None and current["id"] not in seen:
        task = current
        seen.add(task["id"])
        released = _release(task, tasks, on_block)
        handoff = task["started"] if task["task_type"] == "pushback" else task["completed"]
        earliest_start = max(
            task["planned_start"], task["started"] if released is None else released[0]
        )
        duration = 0 if task["task_type"] == "pushback" else task["planned_duration_ms"]
        if handoff is None:  # a task that never completed cannot hand anything off
            break
        chain.append(
            _element(
                "task",
                handoff,
                handoff - earliest_start - duration,
                id=task["id"],
                task_type=task["task_type"],
                vehicle_id=task["vehicle_id"],
                released_at=None if released is None else released[0],
                gate=None if released is None else released[1],
                started=task["started"],
                completed=task["completed"],
                planned_start=task["planned_start"],
                planned_end=task["planned_end"],
            )
        )
        current = None
        if released is None or released[1] == "plan":
            break
        if released[1] == "task_end":
            current = released[2]
        elif released[1] == "vehicle_arrival":
            chain.append(
                _element(
                    "vehicle_arrival",
                    released[0],
                    released[0] - task["planned_start"],
                    id=task["vehicle_id"],
                    task_id=task["id"],
                    travel_ms=task["travel_ms"],
                    en_route=task["en_route"],
                )
            )
        elif arrival is not None:  # on_block
            chain.append(
                _element(
                    "on_block",
                    released[0],
                    released[0] - arrival["scheduled"],
                    id=arrival["id"],
                    planned=arrival["scheduled"],
                )
            )
    chain.reverse()
    delay = off_block - scheduled
    return {
        "off_block": off_block,
        "scheduled": scheduled,
        "delay_ms": delay,
        "chain": chain,
        "slack_ms": delay - sum(element["added_ms"] for element in chain),
    }
