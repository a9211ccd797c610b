"""Ground truth computed directly from raw objects, independently of the chunker's pipeline.

Slow and obvious on purpose: every line through the pydantic models, the contract's rules
written out again, then a plain fold of every record visible at ``t``. Tests compare what
the chunks say against this.
"""

from __future__ import annotations

import gzip
from collections import deque
from typing import Any

from pydantic import ValidationError

from chunker.batch.validate import (
    AREA_MARGIN_DEG,
    MAX_LINE_BYTES,
    flight_row,
    notification_row,
    position_row,
    task_row,
)
from chunker.format.day import ServiceDay
from chunker.format.keys import DayKeys, classify_raw_key
from chunker.format.records import RECORD_MODELS, Reference
from chunker.format.state import RECENT_NOTIFICATIONS

BUILDERS: dict[str, Any] = {
    "positions": position_row,
    "tasks": task_row,
    "flights": flight_row,
    "notifications": notification_row,
}
Row = dict[str, Any]


def _area(reference: Reference) -> tuple[float, float, float, float]:
    points = [reference.airport.reference_point]
    points += [s.position for s in reference.stands] + [d.position for d in reference.depots]
    points += [n.position for n in reference.road_nodes]
    points += [p for t in reference.terminals for p in t.outline]
    points += [p for r in reference.runways for p in (r.start, r.end)]
    return (
        min(p.lat for p in points) - AREA_MARGIN_DEG,
        max(p.lat for p in points) + AREA_MARGIN_DEG,
        min(p.lon for p in points) - AREA_MARGIN_DEG,
        max(p.lon for p in points) + AREA_MARGIN_DEG,
    )


def valid_rows(objects: dict[str, bytes], keys: DayKeys) -> tuple[dict[str, list[Row]], ServiceDay]:
    """Every valid, non-duplicate record by kind, in (time, object key, line) order."""
    reference = Reference.model_validate_json(objects[keys.reference])
    day = ServiceDay.of(keys.service_date, reference.airport.timezone)
    vehicles = {v.vehicle_id for v in reference.vehicles}
    stands = {s.stand_id for s in reference.stands}
    lat0, lat1, lon0, lon1 = _area(reference)
    found: dict[str, list[tuple[int, str, int, Row]]] = {k: [] for k in RECORD_MODELS}
    for key in sorted(objects):
        raw_file = classify_raw_key(keys, key)
        if raw_file is None:
            continue
        data = gzip.decompress(objects[key]) if raw_file.gzip else objects[key]
        data = data.removeprefix(b"\xef\xbb\xbf")  # a leading UTF-8 BOM is ignored
        latest: dict[tuple[str, int], Row] = {}  # the contract's duplicate rule, per file
        for number, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip() or len(line) > MAX_LINE_BYTES:
                continue
            try:
                record = RECORD_MODELS[raw_file.kind].model_validate_json(line)
            except ValidationError:
                continue
            row = BUILDERS[raw_file.kind](record)
            t = row["t"]
            if not day.start_ms <= t < day.end_ms:
                continue
            if raw_file.hour is not None and day.hour_of(t) != raw_file.hour:
                continue
            if raw_file.kind == "positions" and (
                row["id"] not in vehicles
                or not (lat0 <= row["lat"] <= lat1 and lon0 <= row["lon"] <= lon1)
            ):
                continue
            vehicle_id = row.get("vehicle_id")
            if raw_file.kind in ("tasks", "flights") and (
                row["stand"] not in stands
                or (vehicle_id is not None and vehicle_id not in vehicles)
            ):
                continue
            if latest.get((row["id"], t)) == row:
                continue  # a duplicate: repeats the latest record of this entity and time
            latest[(row["id"], t)] = row
            found[raw_file.kind].append((t, key, number, row))
    return {
        kind: [r[3] for r in sorted(rows, key=lambda r: r[:3])] for kind, rows in found.items()
    }, day


def state_at(
    rows: dict[str, list[Row]],
    day: ServiceDay,
    tick_ms: int,
    t: int,
    task_retention_ms: int = 3_600_000,
) -> dict[str, list[Row]]:
    """Keyframe-shaped state at ``t``: every record with ``t_rec < floor_tick(t) + tick``,
    minus tasks finished more than ``task_retention_ms`` before the tick began."""
    tick_start = t - (t - day.start_ms) % tick_ms
    horizon = tick_start + tick_ms
    latest: dict[str, dict[str, Row]] = {"positions": {}, "tasks": {}, "flights": {}}
    recent: deque[Row] = deque(maxlen=RECENT_NOTIFICATIONS)
    for kind, kind_rows in rows.items():
        for row in kind_rows:
            if row["t"] >= horizon:
                break
            if kind == "notifications":
                recent.append(row)
            else:
                latest[kind][row["id"]] = row
    finished_events = [
        row
        for row in rows.get("tasks", [])
        if row["t"] < horizon and row["status"] in ("completed", "cancelled")
    ]
    return {
        "vehicles": [latest["positions"][k] for k in sorted(latest["positions"])],
        "tasks": [
            row
            for row in (latest["tasks"][k] for k in sorted(latest["tasks"]))
            if not (
                task_retention_ms
                and row["status"] in ("completed", "cancelled")
                and row["t"] < tick_start - task_retention_ms
            )
        ],
        "flights": [latest["flights"][k] for k in sorted(latest["flights"])],
        "notifications": list(recent),
        "stands": stands(latest["flights"].values()),
        "vehicle_tasks": vehicle_tasks(latest["tasks"].values(), finished_events),
    }


# --- derived state, from the rules in docs/data-format.md ("Derived state") -------------


def _leg_left(leg: Row | None) -> bool:
    return leg is not None and leg["status"] in ("off_block", "departed")


def stands(flights: Any) -> list[Row]:
    """Stands with an aircraft on them, from the latest row of every flight leg: per
    turnaround (legs sharing a turnaround_id, else a leg alone), on the arrival's stand from
    on-block (or boarding) until a leg is off-block; on the departure's stand while it is
    boarding; a departure-only turnaround from its first row until off-block, unless it is
    cancelled. A stand claimed twice goes to the claim whose newest leg row is newest."""
    turnarounds: dict[str, list[Row]] = {}
    for leg in flights:
        turnarounds.setdefault(leg.get("turnaround_id") or leg["id"], []).append(leg)
    held: dict[str, tuple[tuple[int, str], Row]] = {}
    for key, legs in turnarounds.items():
        arrivals = sorted((leg for leg in legs if leg["movement"] == "arrival"), key=_t_id)
        departures = sorted((leg for leg in legs if leg["movement"] == "departure"), key=_t_id)
        arrival = arrivals[-1] if arrivals else None
        departure = departures[-1] if departures else None
        if _leg_left(arrival) or _leg_left(departure):
            continue
        if arrival is not None and arrival["status"] in ("on_block", "boarding"):
            on = arrival
        elif departure is not None and (
            departure["status"] == "boarding"  # on-block row missing: boarding is at the aircraft
            or (arrival is None and departure["status"] != "cancelled")  # night-stopped
        ):
            on = departure
        else:
            continue
        newest = max(leg["t"] for leg in (arrival, departure) if leg is not None)
        row = {
            "id": on["stand"],
            "t": newest,
            "occupied": True,
            "turnaround_id": on.get("turnaround_id"),
            "flight_id": on["id"],
            "arrival_id": arrival["id"] if arrival else None,
            "departure_id": departure["id"] if departure else None,
            "callsign": on["callsign"],
            "registration": on["registration"],
            "aircraft_type": on["aircraft_type"],
        }
        rank = (newest, key)
        if on["stand"] not in held or rank > held[on["stand"]][0]:
            held[on["stand"]] = (rank, row)
    return [held[stand][1] for stand in sorted(held)]


def _t_id(row: Row) -> tuple[int, str]:
    return row["t"], row["id"]


TASK_REF = ("id", "t", "task_type", "status", "flight_id", "stand", "actual_end")
ACTIVE = {"en_route": 1, "arrived": 2, "in_progress": 3}


def vehicle_tasks(tasks: Any, finished_events: list[Row]) -> list[Row]:
    """Per vehicle: its current task (latest rows en route / arrived / in progress; the
    most advanced, then the newest, then the greatest id) and its last finished task event."""
    current: dict[str, Row] = {}
    for task in tasks:
        vehicle = task.get("vehicle_id")
        if vehicle is None or task["status"] not in ACTIVE:
            continue
        rank = (ACTIVE[task["status"]], task["t"], task["id"])
        known = current.get(vehicle)
        if known is None or rank > (ACTIVE[known["status"]], known["t"], known["id"]):
            current[vehicle] = task
    last: dict[str, Row] = {}
    for event in finished_events:
        if event.get("vehicle_id") is not None:
            last[event["vehicle_id"]] = event
    out = []
    for vehicle in sorted(set(current) | set(last)):
        now, before = current.get(vehicle), last.get(vehicle)
        out.append(
            {
                "id": vehicle,
                "t": max(r["t"] for r in (now, before) if r is not None),
                "current": {k: now.get(k) for k in TASK_REF} if now else None,
                "last": {k: before.get(k) for k in TASK_REF} if before else None,
            }
        )
    return out
