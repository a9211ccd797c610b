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

**Aircraft positions, where they exist, decide instead.** A turnaround is *tracked* once
an aircraft fix linked to one of its legs has been seen (``chunker.batch.aircraft`` links
fixes to legs and says which stand, if any, a fix is on: ``at_stand``). A tracked
turnaround's aircraft is on the stand its latest linked fix is on, from the first fix on
that stand (its ``t``), and on no stand when that fix is on none — whatever the flight
statuses say. Such a stand row also names the aircraft (``aircraft_id``) and says
``"source": "aircraft"``. An aircraft whose fix links to no leg — or to a leg with no row
recorded yet (an aircraft parked at dawn for a departure first recorded later) — is a
turnaround of its own (key ``aircraft:{id}``) with no flight ids, until its leg's first
row.

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


AIRCRAFT_KEY = "aircraft:"  # the turnaround key of an aircraft linked to no leg


def aircraft_claim(fix: Row, legs: Mapping[str, Row]) -> dict[str, Any]:
    """The stand row of an aircraft on a stand by its fix (``legs``: its turnaround's
    latest rows, empty for an aircraft linked to no leg)."""
    leg = legs.get(fix["flight_id"]) if fix["flight_id"] else None
    arrival, departure = _newest(legs.values(), "arrival"), _newest(legs.values(), "departure")
    return {
        "id": fix["at_stand"],
        "t": fix["t"],
        "occupied": True,
        "turnaround_id": None if leg is None else leg.get("turnaround_id"),
        "flight_id": None if leg is None else leg["id"],
        "arrival_id": None if arrival is None else arrival["id"],
        "departure_id": None if departure is None else departure["id"],
        "callsign": fix["callsign"] if leg is None else leg["callsign"],
        "registration": fix["registration"] if leg is None else leg["registration"],
        "aircraft_type": None if leg is None else leg["aircraft_type"],
        "aircraft_id": fix["id"],
        "source": "aircraft",
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
    # Aircraft: the latest fix of each aircraft, unless it only repeats where (leg and
    # stand) the one kept already said: the kept fix's t is when it got there.
    aircraft: dict[str, Row] = field(default_factory=dict)
    leg_aircraft: dict[str, set[str]] = field(default_factory=dict)  # leg -> aircraft on it
    tracked_legs: set[str] = field(default_factory=set)  # legs an aircraft fix linked to
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
        if old is None:  # its aircraft held their stands by themselves until now
            for aircraft_id in sorted(self.leg_aircraft.get(leg_id, ())):
                self._claim(AIRCRAFT_KEY + aircraft_id, stands)

    def _claim(self, key: str, stands: set[str]) -> None:
        old = self.claim_stand.pop(key, None)
        if old is not None:
            del self.claims[old][key]
            stands.add(old)
        legs = self.legs.get(key)
        if key.startswith(AIRCRAFT_KEY):
            fix = self.aircraft.get(key.removeprefix(AIRCRAFT_KEY))
            # Linked to no leg, or to one not recorded yet: it holds its stand by itself.
            on_stand = (
                fix is not None
                and (not fix["flight_id"] or fix["flight_id"] not in self.leg_turnaround)
                and fix["at_stand"]
            )
            claim = aircraft_claim(fix, {}) if on_stand and fix is not None else None
        elif legs and not self.tracked_legs.isdisjoint(legs):
            claim = self._tracked_claim(legs)
        else:
            claim = turnaround_claim(legs.values()) if legs else None
        if claim is not None:
            self.claim_stand[key] = claim["id"]
            self.claims.setdefault(claim["id"], {})[key] = claim
            stands.add(claim["id"])

    def _tracked_claim(self, legs: dict[str, Row]) -> dict[str, Any] | None:
        """A tracked turnaround's claim: where its aircraft's latest linked fix is."""
        fixes = [
            self.aircraft[a] for leg_id in sorted(legs) for a in self.leg_aircraft.get(leg_id, ())
        ]
        parked = [fix for fix in fixes if fix["at_stand"]]
        if not parked:
            return None
        return aircraft_claim(max(parked, key=lambda f: (f["t"], f["id"])), legs)

    def aircraft_fix(self, row: Row, stands: set[str]) -> None:
        """Fold an aircraft fix in; adds the stands whose holder may have changed."""
        aircraft_id, leg_id = row["id"], row["flight_id"]
        old = self.aircraft.get(aircraft_id)
        newly_tracked = leg_id is not None and leg_id not in self.tracked_legs
        if (
            old is not None
            and (old["flight_id"], old["at_stand"]) == (leg_id, row["at_stand"])
            and not newly_tracked
        ):
            return  # still where it was: the stand row stays as it is
        self.aircraft[aircraft_id] = row
        keys: set[str] = set()
        if old is not None:
            old_leg = old["flight_id"]
            if old_leg is not None:
                self.leg_aircraft[old_leg].discard(aircraft_id)
                keys.add(self.leg_turnaround.get(old_leg, ""))
            keys.add(AIRCRAFT_KEY + aircraft_id)
        if leg_id is not None:
            self.tracked_legs.add(leg_id)
            self.leg_aircraft.setdefault(leg_id, set()).add(aircraft_id)
            keys.add(self.leg_turnaround.get(leg_id, ""))
        if leg_id is None or leg_id not in self.leg_turnaround:
            keys.add(AIRCRAFT_KEY + aircraft_id)
        for key in sorted(keys - {""}):
            self._claim(key, stands)

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
