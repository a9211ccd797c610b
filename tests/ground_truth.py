"""Ground truth computed directly from raw objects, independently of the chunker's pipeline.

Slow and obvious on purpose: every line through the pydantic models, the contract's rules
written out again, then a plain fold of every record visible at ``t``. Tests compare what
the chunks say against this.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import deque
from typing import Any

from pydantic import ValidationError

from chunker.batch.validate import (
    AREA_MARGIN_DEG,
    MAX_LINE_BYTES,
    aircraft_row,
    decision_row,
    flight_row,
    notification_row,
    position_row,
    task_row,
)
from chunker.format.day import ServiceDay
from chunker.format.keys import DayKeys, classify_raw_key
from chunker.format.records import (
    RECORD_MODELS,
    AircraftPosition,
    DecisionCandidate,
    DispatchDecision,
    Reference,
    VehiclePosition,
)
from chunker.format.state import RECENT_NOTIFICATIONS

BUILDERS: dict[str, Any] = {
    "positions": position_row,
    "tasks": task_row,
    "flights": flight_row,
    "notifications": notification_row,
    "decisions": decision_row,
    "aircraft": aircraft_row,
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


def _position_record(
    line: bytes, model: Any = VehiclePosition, optional: tuple[str, ...] | None = None
) -> Any:
    """The contract's tolerance restated: a fix whose only faults are unusable optional
    values (heading, speed, on-ground, altitude) is the fix without them."""
    optional = OPTIONAL if optional is None else optional
    try:
        return model.model_validate_json(line)
    except ValidationError as exc:
        if not all(e["loc"] and e["loc"][0] in optional for e in exc.errors()):
            raise
        try:
            document = json.loads(line)
        except ValueError:
            raise exc from None
        if not isinstance(document, dict):
            raise exc from None
        return model.model_validate({k: v for k, v in document.items() if k not in optional})


AIRCRAFT_OPTIONAL = ("track", "ground_speed_kmh", "on_ground", "altitude_m")
AIRCRAFT_TOP_KMH = 400.0
STAND_RADIUS_M = 25.0


def _aircraft_record(line: bytes) -> Any:
    """An aircraft fix with the same tolerance as a vehicle's (optional values dropped)."""
    return _position_record(line, AircraftPosition, AIRCRAFT_OPTIONAL)


def _leg_time(leg: Row) -> int:
    return leg["actual"] or leg["estimated"] or leg["scheduled"]


def _link_aircraft(rows: list[Row], flights: list[Row], reference: Reference) -> None:
    """docs/data-format.md, "Aircraft": the leg with the fix's callsign, else its
    registration, nearest in time (latest rows, cancelled legs out; ties: smaller id);
    on the nearest stand within 25 m (of stands within 1 m of the nearest: the leg's)."""
    latest: dict[str, Row] = {}
    for leg in sorted(flights, key=lambda r: r["t"]):
        latest[leg["id"]] = leg
    legs = [latest[k] for k in sorted(latest) if latest[k]["status"] != "cancelled"]
    for row in rows:
        chosen = [leg for leg in legs if row["callsign"] and leg["callsign"] == row["callsign"]]
        if not chosen:
            chosen = [
                leg
                for leg in legs
                if row["registration"] and leg["registration"] == row["registration"]
            ]
        leg = min(chosen, key=lambda g: (abs(_leg_time(g) - row["t"]), g["id"]), default=None)
        row["flight_id"] = leg["id"] if leg else None
        row["stand"] = leg["stand"] if leg else None
        near = []
        for stand in reference.stands:
            dy = (row["lat"] - stand.position.lat) * 111_195.0
            dx = (row["lon"] - stand.position.lon) * 111_195.0 * math.cos(math.radians(row["lat"]))
            if math.hypot(dx, dy) <= STAND_RADIUS_M:
                near.append((math.hypot(dx, dy), stand.stand_id))
        # Equally near (within 1 m): the leg's own stand, if it is one of them.
        tied = [stand for d, stand in near if d <= min(near)[0] + 1.0]
        row["at_stand"] = (
            None if not near else row["stand"] if row["stand"] in tied else min(near)[1]
        )


def _decision_record(line: bytes) -> Any:
    """The decisions' tolerance restated: each candidate on its own; the decision is kept
    with the valid ones if the rest of it is valid."""
    try:
        return DispatchDecision.model_validate_json(line)
    except ValidationError as exc:
        try:
            document = json.loads(line)
        except ValueError:
            raise exc from None
        if not isinstance(document, dict) or not isinstance(document.get("candidates"), list):
            raise exc from None
        valid = []
        for candidate in document["candidates"]:
            try:
                DecisionCandidate.model_validate(candidate)
            except ValidationError:
                continue
            valid.append(candidate)
        return DispatchDecision.model_validate({**document, "candidates": valid})


OPTIONAL = ("heading", "speed_kmh", "on_ground", "altitude_m")
TOP_SPEED_KMH = {"pushback_tug": 50, "baggage_tractor": 50, "cleaning_van": 110}  # else 90
TOLERANCE_M = 20.0


def _without_jumps(rows: list[Row], top_kmh: dict[str, float]) -> list[Row]:
    """The jump rule restated in its plain form: drop a fix farther from its vehicle's
    previous kept fix (time order) than the tolerance plus top speed x elapsed time.
    (The start / re-anchor guards of chunker.batch.tracks do not fire on tests.rawday's
    random walks; tests/test_tracks.py covers them.)"""
    kept: dict[str, Row] = {}
    out = []
    for row in sorted(rows, key=lambda r: r["t"]):
        before = kept.get(row["id"])
        if before is not None:
            dy = (row["lat"] - before["lat"]) * 111_195.0
            dx = (row["lon"] - before["lon"]) * 111_195.0 * math.cos(math.radians(before["lat"]))
            reach = TOLERANCE_M + top_kmh[row["id"]] / 3.6 * (row["t"] - before["t"]) / 1000
            if math.hypot(dx, dy) > reach:
                continue
        kept[row["id"]] = row
        out.append(row)
    return out


def _derive(rows: list[Row]) -> None:
    """The derivation rule restated (docs/data-format.md): per vehicle in time order, a
    missing speed is the chord between the first and last fix within 5 s either side (at
    least one neighbour each side) over its duration; a missing heading is that chord's
    bearing when it is >= 8 m, else the vehicle's previous heading, else its first later
    one, else 0. Rounded to 0.1. Applied to the kept fixes (after the jump rule)."""
    by_vehicle: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: r["t"]):
        by_vehicle.setdefault(row["id"], []).append(row)
    for track in by_vehicle.values():
        if all(r["heading"] is not None and r["speed_kmh"] is not None for r in track):
            continue
        lat0, lon0 = track[0]["lat"], track[0]["lon"]
        kx = 111_195.0 * math.cos(math.radians(lat0))

        def xy(
            r: Row, kx: float = kx, lat0: float = lat0, lon0: float = lon0
        ) -> tuple[float, float]:
            return (r["lon"] - lon0) * kx, (r["lat"] - lat0) * 111_195.0

        bearings: list[float | None] = []
        speeds: list[float] = []
        for i, row in enumerate(track):
            near = [j for j, r in enumerate(track) if abs(r["t"] - row["t"]) <= 5000]
            a = min([*near, max(i - 1, 0)])
            b = max([*near, min(i + 1, len(track) - 1)])
            (x0, y0), (x1, y1) = xy(track[a]), xy(track[b])
            chord = math.hypot(x1 - x0, y1 - y0)
            span = track[b]["t"] - track[a]["t"]
            speeds.append(round(chord / span * 3600, 1) if span > 0 else 0.0)
            bearing = math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360
            bearings.append(round(bearing, 1) % 360 if chord >= 8.0 else None)
        headings: list[float | None] = []
        held = None
        for row, bearing in zip(track, bearings, strict=True):
            if row["heading"] is not None:
                held = row["heading"]
            elif bearing is not None:
                held = bearing
            headings.append(row["heading"] if row["heading"] is not None else held)
        first = next((h for h in headings if h is not None), 0.0)
        for row, heading, speed in zip(track, headings, speeds, strict=True):
            if row["speed_kmh"] is None:
                row["speed_kmh"] = speed
            if row["heading"] is None:
                row["heading"] = first if heading is None else heading


def valid_rows(objects: dict[str, bytes], keys: DayKeys) -> tuple[dict[str, list[Row]], ServiceDay]:
    """Every valid, non-duplicate record by kind, in (time, object key, line) order."""
    reference = Reference.model_validate_json(objects[keys.reference])
    day = ServiceDay.of(keys.service_date, reference.airport.timezone)
    vehicles = {v.vehicle_id for v in reference.vehicles}
    top_kmh = {
        v.vehicle_id: TOP_SPEED_KMH.get(v.vehicle_type.value, 90) for v in reference.vehicles
    }
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
                if raw_file.kind == "positions":
                    record = _position_record(line)
                elif raw_file.kind == "aircraft":
                    record = _aircraft_record(line)
                elif raw_file.kind == "decisions":
                    record = _decision_record(line)
                else:
                    record = RECORD_MODELS[raw_file.kind].model_validate_json(line)
            except ValidationError:
                continue
            if raw_file.kind in ("positions", "aircraft") and record.on_ground is False:
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
            if raw_file.kind == "aircraft" and not (
                lat0 <= row["lat"] <= lat1 and lon0 <= row["lon"] <= lon1
            ):
                continue
            speed = row.get("speed_kmh") if raw_file.kind in ("positions", "aircraft") else None
            top = AIRCRAFT_TOP_KMH if raw_file.kind == "aircraft" else top_kmh.get(row["id"], 0)
            if speed is not None and speed > top:
                row["speed_kmh"] = None
            vehicle_id = row.get("vehicle_id")
            if raw_file.kind in ("tasks", "flights") and (
                row["stand"] not in stands
                or (vehicle_id is not None and vehicle_id not in vehicles)
            ):
                continue
            if raw_file.kind == "decisions":
                if (row["stand"] is not None and row["stand"] not in stands) or not {
                    row["vehicle_id"],
                    row["previous_vehicle_id"],
                } <= vehicles | {None}:
                    continue
                row["candidates"] = [c for c in row["candidates"] if c["vehicle_id"] in vehicles]
            if latest.get((row["id"], t)) == row:
                continue  # a duplicate: repeats the latest record of this entity and time
            latest[(row["id"], t)] = row
            found[raw_file.kind].append((t, key, number, row))
        if raw_file.kind in ("positions", "aircraft"):
            kind = raw_file.kind
            this_file = [f[3] for f in found[kind] if f[1] == key]
            limits = (
                top_kmh
                if kind == "positions"
                else dict.fromkeys((r["id"] for r in this_file), AIRCRAFT_TOP_KMH)
            )
            kept = {id(r) for r in _without_jumps(this_file, limits)}
            found[kind] = [f for f in found[kind] if f[1] != key or id(f[3]) in kept]
            _derive([r for r in this_file if id(r) in kept])
    flights_found = [f[3] for f in found["flights"]]
    _link_aircraft([f[3] for f in found["aircraft"]], flights_found, reference)
    return {
        kind: [r[3] for r in sorted(rows, key=lambda r: r[:3])] for kind, rows in found.items()
    }, day


def state_at(
    rows: dict[str, list[Row]],
    day: ServiceDay,
    tick_ms: int,
    t: int,
    task_retention_ms: int = 3_600_000,
    aircraft_expiry_ms: int = 300_000,
) -> dict[str, list[Row]]:
    """Keyframe-shaped state at ``t``: every record with ``t_rec < floor_tick(t) + tick``,
    minus tasks finished more than ``task_retention_ms`` before the tick began, minus
    aircraft that left (``_aircraft_gone``)."""
    tick_start = t - (t - day.start_ms) % tick_ms
    horizon = tick_start + tick_ms
    latest: dict[str, dict[str, Row]] = {
        "positions": {}, "tasks": {}, "flights": {}, "aircraft": {},
    }  # fmt: skip
    recent: deque[Row] = deque(maxlen=RECENT_NOTIFICATIONS)
    for kind, kind_rows in rows.items():
        if kind == "decisions":
            continue  # below: they need the tasks' rows
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
        "stands": stands(
            latest["flights"].values(),
            [r for r in rows.get("aircraft", []) if r["t"] < horizon],
            tick_ms,
            day.start_ms,
        ),
        "vehicle_tasks": vehicle_tasks(latest["tasks"].values(), finished_events),
        "decisions": active_decisions(rows, day, tick_ms, horizon, latest["tasks"]),
        "aircraft": [
            fix
            for fix in (latest["aircraft"][k] for k in sorted(latest["aircraft"]))
            if not _aircraft_gone(
                fix, tick_start, tick_ms, day.start_ms, latest["flights"], aircraft_expiry_ms
            )
        ],
    }


def _aircraft_gone(
    fix: Row, tick_start: int, tick_ms: int, origin: int, legs: dict[str, Row], expiry_ms: int
) -> bool:
    """docs/data-format.md, "Aircraft leave the state": with its latest fix in an earlier
    tick, an aircraft is gone when that fix is older than the expiry or the leg it links
    to is a departure whose latest row says departed (0: never)."""
    fix_tick = fix["t"] - (fix["t"] - origin) % tick_ms
    if not expiry_ms or fix_tick == tick_start:
        return False
    leg = legs.get(fix["flight_id"] or "")
    took_off = leg is not None and (leg["movement"], leg["status"]) == ("departure", "departed")
    return fix["t"] + expiry_ms < tick_start or took_off


def annotated(rows: dict[str, list[Row]], day: ServiceDay, tick_ms: int) -> list[Row]:
    """Every decision as chunks store it: with its task's type and status from the task's
    latest row at or before the end of the decision's tick (None, None without one)."""
    of_task: dict[str, list[Row]] = {}
    for task in rows.get("tasks", []):
        of_task.setdefault(task["id"], []).append(task)
    out = []
    for decision in rows.get("decisions", []):
        tick_end = decision["t"] - (decision["t"] - day.start_ms) % tick_ms + tick_ms
        before = [r for r in of_task.get(decision["id"], []) if r["t"] < tick_end]
        task = before[-1] if before else None
        out.append(
            {
                **decision,
                "task_type": task["task_type"] if task else None,
                "task_status": task["status"] if task else None,
            }
        )
    return out


def active_decisions(
    rows: dict[str, list[Row]], day: ServiceDay, tick_ms: int, horizon: int, tasks: dict[str, Row]
) -> list[Row]:
    """The decision behind each active task: for every task whose latest visible row is
    not completed or cancelled, its latest visible decision."""
    latest: dict[str, Row] = {}
    for decision in annotated(rows, day, tick_ms):
        if decision["t"] < horizon:
            latest[decision["id"]] = decision
    return [
        latest[k]
        for k in sorted(latest)
        if k in tasks and tasks[k]["status"] not in ("completed", "cancelled")
    ]


# --- derived state, from the rules in docs/data-format.md ("Derived state") -------------


def _leg_left(leg: Row | None) -> bool:
    return leg is not None and leg["status"] in ("off_block", "departed")


def _where_aircraft_are(fixes: list[Row], tick_ms: int, origin: int) -> dict[str, Row]:
    """Per aircraft, its latest fix, but with the time it got there: the first fix of its
    last run of fixes with the same (flight, stand), a tick counting by its last fix."""
    per_tick: dict[tuple[str, int], Row] = {}
    for row in sorted(fixes, key=lambda r: r["t"]):
        per_tick[(row["id"], row["t"] - (row["t"] - origin) % tick_ms)] = row
    where: dict[str, Row] = {}
    for (aircraft_id, _), row in sorted(per_tick.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        known = where.get(aircraft_id)
        if known is None or (known["flight_id"], known["at_stand"]) != (
            row["flight_id"],
            row["at_stand"],
        ):
            where[aircraft_id] = row
    return where


def stands(
    flights: Any, aircraft: list[Row] | None = None, tick_ms: int = 1000, origin: int = 0
) -> list[Row]:
    """Stands with an aircraft on them, from the latest row of every flight leg: per
    turnaround (legs sharing a turnaround_id, else a leg alone), on the arrival's stand from
    on-block (or boarding) until a leg is off-block; on the departure's stand while it is
    boarding; a departure-only turnaround from its first row until off-block, unless it is
    cancelled. A stand claimed twice goes to the claim whose newest leg row is newest.

    Aircraft (``aircraft``: the fixes visible): a turnaround one of whose legs a fix links
    to is tracked: its aircraft is on the stand its latest linked fix is on (the claim's
    time: when it got there), else on none; an aircraft linked to no leg, or to a leg with
    no row yet, holds the stand it is on by itself."""
    turnarounds: dict[str, list[Row]] = {}
    for leg in flights:
        turnarounds.setdefault(leg.get("turnaround_id") or leg["id"], []).append(leg)
    fixes = aircraft or []
    tracked = {row["flight_id"] for row in fixes if row["flight_id"]}
    recorded = {leg["id"] for leg in flights}
    where = _where_aircraft_are(fixes, tick_ms, origin)
    held: dict[str, tuple[tuple[int, str], Row]] = {}
    for aircraft_id, fix in where.items():
        # Linked to no leg, or to one with no row yet: it holds its stand by itself.
        if fix["flight_id"] not in recorded and fix["at_stand"]:
            claim = {
                "id": fix["at_stand"], "t": fix["t"], "occupied": True, "turnaround_id": None,
                "flight_id": None, "arrival_id": None, "departure_id": None,
                "callsign": fix["callsign"], "registration": fix["registration"],
                "aircraft_type": None, "aircraft_id": aircraft_id, "source": "aircraft",
            }  # fmt: skip
            rank = (fix["t"], "aircraft:" + aircraft_id)
            if claim["id"] not in held or rank > held[claim["id"]][0]:
                held[claim["id"]] = (rank, claim)
    for key, legs in turnarounds.items():
        if any(leg["id"] in tracked for leg in legs):
            ids = {leg["id"] for leg in legs}
            parked = [f for f in where.values() if f["flight_id"] in ids and f["at_stand"]]
            if not parked:
                continue
            fix = max(parked, key=lambda f: (f["t"], f["id"]))
            by_id = {leg["id"]: leg for leg in legs}
            leg = by_id[fix["flight_id"]]
            arrivals = sorted((g for g in legs if g["movement"] == "arrival"), key=_t_id)
            departures = sorted((g for g in legs if g["movement"] == "departure"), key=_t_id)
            claim = {
                "id": fix["at_stand"], "t": fix["t"], "occupied": True,
                "turnaround_id": leg.get("turnaround_id"), "flight_id": leg["id"],
                "arrival_id": arrivals[-1]["id"] if arrivals else None,
                "departure_id": departures[-1]["id"] if departures else None,
                "callsign": leg["callsign"], "registration": leg["registration"],
                "aircraft_type": leg["aircraft_type"], "aircraft_id": fix["id"],
                "source": "aircraft",
            }  # fmt: skip
            rank = (fix["t"], key)
            if claim["id"] not in held or rank > held[claim["id"]][0]:
                held[claim["id"]] = (rank, claim)
            continue
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


TASK_REF = (
    "id", "t", "task_type", "status", "flight_id", "stand",
    "planned_start", "planned_end", "actual_start", "actual_end",
)  # fmt: skip
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
