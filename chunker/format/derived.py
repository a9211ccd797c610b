"""What the replay state derives from its rows, written once: stand occupancy and each
vehicle's current task (issue #17: a rule the browser re-derived from raw events drifted).

The chunker folds these into every keyframe and emits a delta row whenever one changes
(``chunker.batch.build``); readers and the page only apply them. The rules
(docs/data-format.md, "Derived state"):

**Stand occupancy** — from the latest row of every flight leg. Legs are grouped into
turnarounds by ``turnaround_id`` (a leg without one is a turnaround of its own); a
turnaround's arrival / departure is its arrival / departure leg with the newest row. The
aircraft of a turnaround is on a stand when no leg says it left, and:

- its arrival is ``on_block`` (or ``boarding``): on the arrival's stand, until the
  departure goes ``off_block`` / ``departed``;
- else its departure is ``boarding`` (the on-block row is missing, but boarding happens
  at the aircraft): on the departure's stand;
- else it has no arrival leg at all and its departure is not yet off-block nor cancelled
  (an aircraft that night-stopped: a departure-only turnaround): on the departure's stand.

A leg says the aircraft left when its status is ``off_block`` or ``departed``. A cancelled
arrival never brings an aircraft; a cancelled departure never takes one away (an aircraft
that arrived and whose departure was cancelled stays on its stand). When several
turnarounds claim one stand (messy data), the one with the newest row holds it (ties: the
greater turnaround key). A stand row names the leg that put the aircraft there
(``flight_id``), both legs' ids as known at the time, and the aircraft.

Aircraft positions, where an export has them, can later decide "on which stand" before
these flight statuses do: ``turnaround_claim`` is the one place to take them in.

**A vehicle's current task** — among the vehicle's tasks whose latest row is ``en_route``,
``arrived`` or ``in_progress`` (it is driving to, waiting at or doing the work), the most
advanced (in progress > arrived > en route), then the newest row, then the greater id.
An ``assigned`` task is queued, not current; a vehicle with no such task has none. Its
``last`` task is the most recent finished (completed / cancelled) task event naming the
vehicle — history, kept even after that task left the state by retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chunker.format.rows import Row

DERIVED_KINDS = ("stands", "vehicle_tasks")

LEFT_STATUSES = frozenset({"off_block", "departed"})
ON_STAND_ARRIVAL = frozenset({"on_block", "boarding"})
ACTIVE_TASK_RANK = {"en_route": 1, "arrived": 2, "in_progress": 3}
FINISHED = frozenset({"completed", "cancelled"})
# The planned window and actual start travel with the task so the page can tell, at any
# replay time, whether the vehicle is late for it (docs/api.md, "Lateness").
TASK_REF_FIELDS = (
    "id", "t", "task_type", "status", "flight_id", "stand",
    "planned_start", "planned_end", "actual_start", "actual_end",
)  # fmt: skip


def turnaround_key(flight: Row) -> str:
    """The turnaround a leg belongs to (its own id when it names none)."""
    key: str | None = flight.get("turnaround_id")
    return key if key else str(flight["id"])


def _newest(legs: Iterable[Row], movement: str) -> Row | None:
    best: Row | None = None
    for leg in legs:
        if leg["movement"] == movement and (
            best is None or (leg["t"], leg["id"]) > (best["t"], best["id"])
        ):
            best = leg
    return best


def turnaround_claim(legs: Iterable[Row]) -> dict[str, Any] | None:
    """The stand row of the turnaround with these legs (latest rows) if its aircraft is on
    a stand now, else None (module doc)."""
    legs = list(legs)
    arrival, departure = _newest(legs, "arrival"), _newest(legs, "departure")
    if any(leg["status"] in LEFT_STATUSES for leg in (arrival, departure) if leg is not None):
        return None
    if arrival is not None and arrival["status"] in ON_STAND_ARRIVAL:
        on = arrival
    elif departure is not None and (
        departure["status"] == "boarding"  # on-block row missing: boarding is at the aircraft
        or (arrival is None and departure["status"] != "cancelled")  # night-stopped
    ):
        on = departure
    else:
        return None
    return {
        "id": on["stand"],
        "t": max(leg["t"] for leg in (arrival, departure) if leg is not None),
        "occupied": True,
        "turnaround_id": on.get("turnaround_id"),
        "flight_id": on["id"],
        "arrival_id": None if arrival is None else arrival["id"],
        "departure_id": None if departure is None else departure["id"],
        "callsign": on["callsign"],
        "registration": on["registration"],
        "aircraft_type": on["aircraft_type"],
    }


def stand_holder(claims: Mapping[str, Row]) -> Row | None:
    """Of the turnarounds claiming one stand (key -> stand row), the one holding it."""
    if not claims:
        return None
    key = max(claims, key=lambda k: (claims[k]["t"], k))
    return claims[key]


def task_ref(task: Row) -> dict[str, Any]:
    """What a vehicle row says about a task."""
    return {name: task.get(name) for name in TASK_REF_FIELDS}


def current_task(active: Iterable[Row]) -> Row | None:
    """Of a vehicle's active tasks (latest rows), the one it works on now (module doc)."""
    best: Row | None = None
    for task in active:
        rank = (ACTIVE_TASK_RANK[task["status"]], task["t"], task["id"])
        if best is None or rank > (ACTIVE_TASK_RANK[best["status"]], best["t"], best["id"]):
            best = task
    return best


def vehicle_task_row(vehicle_id: str, current: Row | None, last: Row | None) -> dict[str, Any]:
    """A vehicle's row: its current task and its last finished one (either may be None)."""
    times = [row["t"] for row in (current, last) if row is not None]
    return {
        "id": vehicle_id,
        "t": max(times) if times else 0,
        "current": None if current is None else task_ref(current),
        "last": None if last is None else task_ref(last),
    }


def stand_present(row: Row) -> bool:
    """Whether a stand delta row leaves the stand in the state (False: vacated)."""
    return bool(row.get("occupied"))


def vehicle_task_present(row: Row) -> bool:
    """Whether a vehicle delta row leaves the vehicle in the state (False: nothing to say)."""
    return row.get("current") is not None or row.get("last") is not None


PRESENT = {"stands": stand_present, "vehicle_tasks": vehicle_task_present}


@dataclass(slots=True)
class Derivation:
    """The chunker's incremental bookkeeping behind the derived rows: it sees every task
    and flight row in fold order and says which derived rows changed.

    Kept beside the state (``ReplayState.derivation``): readers never need it, they fold
    the derived rows the chunks carry.
    """

    legs: dict[str, dict[str, Row]] = field(default_factory=dict)  # turnaround -> leg -> row
    leg_turnaround: dict[str, str] = field(default_factory=dict)  # leg id -> turnaround
    claims: dict[str, dict[str, Row]] = field(default_factory=dict)  # stand -> turnaround -> row
    claim_stand: dict[str, str] = field(default_factory=dict)  # turnaround -> claimed stand
    active: dict[str, dict[str, Row]] = field(default_factory=dict)  # vehicle -> task -> row
    task_vehicle: dict[str, str] = field(default_factory=dict)  # active task -> vehicle
    last: dict[str, Row] = field(default_factory=dict)  # vehicle -> last finished task row
    # task -> its latest row, finished or not (what a decision about it is annotated with)
    latest_task: dict[str, Row] = field(default_factory=dict)

    def flight(self, row: Row, stands: set[str]) -> None:
        """Fold a flight row in; adds the stands whose holder may have changed."""
        leg_id = row["id"]
        key = turnaround_key(row)
        old = self.leg_turnaround.get(leg_id)
        if old is not None and old != key:
            del self.legs[old][leg_id]
            self._claim(old, stands)
        self.leg_turnaround[leg_id] = key
        self.legs.setdefault(key, {})[leg_id] = row
        self._claim(key, stands)

    def _claim(self, key: str, stands: set[str]) -> None:
        old = self.claim_stand.pop(key, None)
        if old is not None:
            del self.claims[old][key]
            stands.add(old)
        legs = self.legs.get(key)
        claim = turnaround_claim(legs.values()) if legs else None
        if claim is not None:
            self.claim_stand[key] = claim["id"]
            self.claims.setdefault(claim["id"], {})[key] = claim
            stands.add(claim["id"])

    def task(self, row: Row, vehicles: set[str]) -> None:
        """Fold a task row in; adds the vehicles whose row may have changed."""
        task_id = row["id"]
        self.latest_task[task_id] = row
        old = self.task_vehicle.pop(task_id, None)
        if old is not None:
            del self.active[old][task_id]
            vehicles.add(old)
        vehicle_id = row.get("vehicle_id")
        if vehicle_id is None:
            return
        if row["status"] in ACTIVE_TASK_RANK:
            self.active.setdefault(vehicle_id, {})[task_id] = row
            self.task_vehicle[task_id] = vehicle_id
            vehicles.add(vehicle_id)
        elif row["status"] in FINISHED:
            self.last[vehicle_id] = row
            vehicles.add(vehicle_id)

    def stand_row(self, stand: str, t: int) -> dict[str, Any]:
        """The stand's row now (a vacated row at ``t`` when nobody holds it)."""
        holder = stand_holder(self.claims.get(stand, {}))
        return dict(holder) if holder is not None else {"id": stand, "t": t, "occupied": False}

    def vehicle_row(self, vehicle_id: str, t: int) -> dict[str, Any]:
        """The vehicle's row now (``t``: of an empty row, which leaves the state)."""
        current = current_task(self.active.get(vehicle_id, {}).values())
        row = vehicle_task_row(vehicle_id, current, self.last.get(vehicle_id))
        if not vehicle_task_present(row):
            row["t"] = t
        return row
