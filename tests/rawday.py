"""A tiny, fully controlled raw day for tests: every edge case on purpose.

Unlike the realistic generator (synthetic), this builder makes the awkward cases
dense: same-millisecond ties, exact duplicates, out-of-order lines, bad lines, vehicles
silent for hours, timestamps in several offsets and precisions (so both the fast path and
the pydantic path are exercised), and more notifications than the keyframe keeps.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from chunker.format.day import ServiceDay, from_ms
from chunker.format.keys import DayKeys
from chunker.format.records import (
    Airport,
    Depot,
    Point,
    Reference,
    RoadEdge,
    RoadNode,
    Runway,
    Stand,
    Terminal,
    Vehicle,
)

ORIGIN = (29.8, 123.2)
TYPES = ["fuel_truck", "pushback_tug", "baggage_tractor", "catering_truck", "passenger_bus"]
TASK_FLOW = ["created", "assigned", "en_route", "arrived", "in_progress", "completed"]


def _p(dx_m: float, dy_m: float) -> Point:
    return Point(lat=round(ORIGIN[0] + dy_m / 111_320, 6), lon=round(ORIGIN[1] + dx_m / 96_500, 6))


def tiny_reference(
    airport: str = "XTST", timezone: str = "Asia/Shanghai", vehicles: int = 6
) -> Reference:
    """A small but complete reference: 4 stands, 2 depots, a road loop, a terminal."""
    nodes = [RoadNode(node_id=f"N{i}", position=_p(i * 150.0, 0.0)) for i in range(6)]
    edges = [RoadEdge(from_node=f"N{i}", to_node=f"N{i + 1}", speed_limit_kmh=25) for i in range(5)]
    stands = [
        Stand(
            stand_id=f"S{i}",
            kind="contact" if i < 2 else "remote",
            terminal_id="T1",
            position=_p(i * 150.0, 80.0),
            heading=180.0,
            road_node=f"N{i}",
        )
        for i in range(4)
    ]
    depots = [
        Depot(
            depot_id="D1",
            vehicle_type="fuel_truck",
            name="Fuel farm",
            position=_p(0.0, -60.0),
            road_node="N0",
        ),
        Depot(
            depot_id="D2",
            vehicle_type="baggage_tractor",
            name="GSE",
            position=_p(750, -60),
            road_node="N5",
        ),
    ]
    return Reference(
        airport=Airport(
            airport_id=airport,
            name="Test Field (fictional)",
            timezone=timezone,
            reference_point=_p(0, 0),
        ),
        vehicles=[
            Vehicle(
                vehicle_id=f"V{i:02d}",
                vehicle_type=TYPES[i % len(TYPES)],
                label=f"Vehicle {i}",
                depot_id="D1" if i % 2 else "D2",
            )
            for i in range(vehicles)
        ],
        stands=stands,
        depots=depots,
        terminals=[
            Terminal(
                terminal_id="T1",
                name="T1",
                outline=[_p(-50, 150), _p(700, 150), _p(700, 300), _p(-50, 300)],
            )
        ],
        runways=[Runway(runway_id="09/27", start=_p(-500, 900), end=_p(1500, 900), width_m=45)],
        road_nodes=nodes,
        road_edges=edges,
    )


def iso(ms: int, style: int) -> str:
    """Timestamp text in one of several valid styles."""
    moment = from_ms(ms)
    if style == 0:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if style == 1:
        local = moment.astimezone(dt.timezone(dt.timedelta(hours=8)))
        return local.isoformat(timespec="milliseconds")
    if style == 2:
        return moment.isoformat(timespec="microseconds")  # +00:00, 6 digits: model path
    return moment.astimezone(dt.timezone(dt.timedelta(hours=-5))).isoformat(timespec="seconds")


@dataclass
class RawDayBuilder:
    """Accumulates raw lines per (kind, hour) and writes them in one of two layouts."""

    reference: Reference
    day: ServiceDay
    rng: random.Random
    lines: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)

    def add(self, kind: str, ms: int, record: dict[str, Any], raw: bytes | None = None) -> None:
        hour = self.day.hour_of(ms) if self.day.contains(ms) else 0
        line = raw if raw is not None else orjson.dumps(record)
        self.lines.setdefault((kind, hour), []).append(line)

    def objects(self, layout: str = "hourly", compress: bool = True) -> dict[str, bytes]:
        """S3 key -> bytes for reference + records in ``layout`` ('hourly' or 'day')."""
        keys = DayKeys(self.reference.airport.airport_id, self.day.date_text)
        out = {keys.reference: self.reference.model_dump_json().encode()}
        grouped: dict[str, list[bytes]] = {}
        for (kind, hour), lines in sorted(self.lines.items()):
            key = keys.raw_file(kind, hour if layout == "hourly" else None, gzip=compress)
            grouped.setdefault(key, []).extend(lines)
        for key, lines in grouped.items():
            body = b"\n".join(lines) + b"\n"
            out[key] = gzip.compress(body, mtime=0) if compress else body
        return out


def build_raw_day(
    seed: int = 1,
    hours: tuple[int, int] = (0, 3),
    vehicles: int = 6,
    timezone: str = "Asia/Shanghai",
    service_date: str = "2026-03-14",
    messy: bool = True,
    airport: str = "XTST",
) -> RawDayBuilder:
    """A raw day with activity in ``[hours[0], hours[1])`` and every awkward case."""
    rng = random.Random(seed)
    reference = tiny_reference(airport, timezone, vehicles)
    day = ServiceDay.of(service_date, timezone)
    builder = RawDayBuilder(reference, day, rng)
    start = day.start_ms + hours[0] * 3_600_000
    end = day.start_ms + hours[1] * 3_600_000
    vehicle_ids = [v.vehicle_id for v in reference.vehicles]
    # Vehicle V00 is silent after the first 20 minutes: later hours must find its fix.
    for index, vehicle_id in enumerate(vehicle_ids):
        t = start + rng.randrange(0, 1000)
        x, y = rng.uniform(0, 700), rng.uniform(-50, 100)
        stop = start + 20 * 60_000 if index == 0 else end
        while t < stop:
            x = min(max(x + rng.uniform(-4, 4), -40), 740)
            y = min(max(y + rng.uniform(-4, 4), -40), 140)
            p = _p(x, y)
            record = {
                "t": iso(t, rng.randrange(4) if rng.random() < 0.2 else 0),
                "vehicle_id": vehicle_id,
                "lat": p.lat,
                "lon": p.lon,
                "heading": round(rng.uniform(0, 359.9), 1),
                "speed_kmh": round(rng.uniform(0, 25), 1),
                "state": rng.choice(["idle", "en_route", "waiting", "servicing"]),
            }
            if rng.random() < 0.05:
                record["heading"] = rng.randrange(0, 360)  # an int: the model path
            builder.add("positions", t, record)
            if rng.random() < 0.01:  # same-millisecond second fix, different place
                q = _p(x + 1, y + 1)
                builder.add("positions", t, {**record, "lat": q.lat, "lon": q.lon})
            t += rng.choice([1000, 1000, 1000, 2000, 5000, 30_000])
    flight_ids = []
    for n in range(max(2, (end - start) // 1_800_000)):
        flight_id = f"F{n:03d}"
        flight_ids.append(flight_id)
        sched = start + rng.randrange(0, end - start)
        base = {
            "flight_id": flight_id,
            "callsign": f"TST{100 + n}",
            "flight_number": f"TS{100 + n}",
            "movement": "arrival" if n % 2 else "departure",
            "airline": "TS",
            "aircraft_type": "A320",
            "registration": f"B-{3000 + n}",
            "route": "PEK",
            "stand": f"S{n % 4}",
            "scheduled": iso(sched, 0),
        }
        for step, status in enumerate(["scheduled", "delayed", "on_block"]):
            t = start + rng.randrange(0, end - start) if step else start + n * 7
            builder.add(
                "flights",
                t,
                {
                    **base,
                    "t": iso(t, 0),
                    "status": status,
                    "estimated": iso(sched + step * 600_000, 1),
                },
            )
    assignments: list[tuple[int, dict[str, Any], str]] = []
    for n in range(max(3, (end - start) // 600_000)):
        t0 = start + rng.randrange(0, end - start - 60_000)
        task = {
            "task_id": f"K{n:03d}",
            "flight_id": rng.choice(flight_ids),
            "task_type": rng.choice(["refuel", "catering", "pushback"]),
            "stand": f"S{n % 4}",
            "planned_start": iso(t0, 0),
            "planned_end": iso(t0 + 60_000, 0),
        }
        previous = None
        t = t0
        for status in TASK_FLOW:
            record = {
                **task,
                "t": iso(t, 0),
                "status": status,
                "previous_status": previous,
                "vehicle_id": None if status == "created" else rng.choice(vehicle_ids),
            }
            if status == "completed":
                record["actual_end"] = iso(t, 0)
            builder.add("tasks", t, record)
            if status == "assigned":
                assignments.append((t, task, record["vehicle_id"]))
            previous = status
            t += rng.choice([0, 0, 400, 1000, 9000])  # zero: two transitions in one ms
            if t >= end:
                break
    for n in range(max(25, (end - start) // 300_000)):
        t = start + rng.randrange(0, end - start)
        builder.add(
            "notifications",
            t,
            {
                "t": iso(t, 0),
                "notification_id": f"M{n:04d}",
                "level": rng.choice(["info", "warning", "critical"]),
                "code": "task_late",
                "text": f"Task late 迟到 {n}\n!",
            },
        )
    _add_decisions(builder, assignments, vehicle_ids, random.Random(seed * 7919 + 1))
    _add_aircraft(builder, start, end, len(flight_ids), random.Random(seed * 104_729 + 3), messy)
    if messy:
        _make_messy(builder, start, end)
    return builder


def _add_decisions(
    builder: RawDayBuilder,
    assignments: list[tuple[int, dict[str, Any], str]],
    vehicle_ids: list[str],
    rng: random.Random,
) -> None:
    """A decision behind every assignment (its own generator: the other kinds' lines are
    what they were before decisions existed), with candidates a real export might have:
    some only partly described, some outside the fleet (dropped), some broken (dropped)."""
    for n, (t, task, vehicle_id) in enumerate(assignments):
        candidates: list[dict[str, Any]] = []
        for other in rng.sample(vehicle_ids, rng.randrange(1, len(vehicle_ids) + 1)):
            eta = t + rng.randrange(60_000, 900_000)
            candidates.append(
                {
                    "vehicle_id": other,
                    "state": rng.choice(["idle", "en_route", "servicing", None]),
                    "eta": iso(eta, 0),
                    "on_time": rng.random() < 0.7,
                    "busy_ms": rng.randrange(0, 3_600_000),
                    "score": round(rng.uniform(0, 1e6), 3),
                }
            )
        if rng.random() < 0.2:
            candidates.append({"vehicle_id": "GHOST-7", "score": 1.0})  # outside the fleet
        if rng.random() < 0.2:
            candidates.insert(0, {"vehicle_id": vehicle_ids[0], "busy_ms": -5})  # broken
        record: dict[str, Any] = {
            "t": iso(t, 0),
            "task_id": task["task_id"],
            "flight_id": task["flight_id"],
            "decision": "reassign" if n % 5 == 4 else "assign",
            "vehicle_id": vehicle_id,
            "rule": "nearest_on_time",
            "stand": task["stand"],
            "candidates": candidates,
        }
        if n % 5 == 4:
            record["previous_vehicle_id"] = rng.choice(vehicle_ids)
            record["reason"] = "vehicle broke down"
        builder.add("decisions", t, record)


def _add_aircraft(
    builder: RawDayBuilder, start: int, end: int, flights: int, rng: random.Random, messy: bool
) -> None:
    """Surface fixes of aircraft (their own generator: the other kinds' lines are what they
    were before aircraft existed). The aircraft of every other flight taxis ~400 m north
    onto its flight's stand at ~1 Hz, then stays parked (a fix every 5 s) for five
    minutes: named by callsign while moving, by registration only while parked. On a
    ``messy`` day a few fixes lack their track or have a speed over the aircraft limit
    (both derived), one is airborne, one a jump. One more aircraft matches no flight and
    parks on a stand of its own."""
    movers = [
        (n, f"TST{100 + n}", f"B-{3000 + n}", f"{0xA00000 + n:06x}") for n in range(0, flights, 2)
    ]
    movers.append((3, "ZZZ999", None, "bbbbbb"))
    for n, callsign, registration, icao24 in movers:
        x = (n % 4) * 150.0
        t = start + rng.randrange(0, max(1, end - start - 700_000))
        for step in range(300):
            p = _p(x + rng.uniform(-1, 1), 80.0 - 400.0 + step * 400.0 / 299)
            record: dict[str, Any] = {
                "t": iso(t, 0),
                "icao24": icao24,
                "callsign": callsign,
                "lat": p.lat,
                "lon": p.lon,
                "track": 0.0,
                "ground_speed_kmh": 4.8,
                "on_ground": True,
            }
            if registration:
                record["registration"] = registration
            if rng.random() < 0.05 and messy:
                del record["track"]
            if rng.random() < 0.05 and messy:
                record["ground_speed_kmh"] = 9_999.0  # above the aircraft limit: dropped
            builder.add("aircraft", t, record)
            if step == 150 and n == 0 and messy:
                far = _p(x + 3_000.0, 80.0)  # a jump: 3 km in a second
                builder.add("aircraft", t + 500, {**record, "lat": far.lat, "lon": far.lon})
                builder.add("aircraft", t + 600, {**record, "on_ground": False})  # airborne
            t += 1000
        parked = _p(x, 80.0)
        for _step in range(60):
            record = {
                "t": iso(t, 0),
                "icao24": icao24,
                "lat": parked.lat,
                "lon": parked.lon,
                "track": 0.0,
                "ground_speed_kmh": 0.0,
            }
            if registration:
                record["registration"] = registration
            else:
                record["callsign"] = callsign
            builder.add("aircraft", t, record)
            t += 5000


def _mess_up(kind_lines: list[bytes], rng: random.Random) -> None:
    count = len(kind_lines)
    for _ in range(max(1, count // 50)):
        i = rng.randrange(count)
        kind_lines.append(kind_lines[i])  # exact duplicate
    for _ in range(max(1, count // 100)):
        i, j = rng.randrange(count), rng.randrange(count)
        kind_lines[i], kind_lines[j] = kind_lines[j], kind_lines[i]  # out of order
    kind_lines.append(b'{"t": "2026-03-14T01:00:00Z", "vehicle_id": ')  # truncated JSON
    kind_lines.append(b"[1, 2, 3]")
    kind_lines.append(b"\xff\xfe not utf-8")
    kind_lines.append(b'{"t": "yesterday"}')


def _make_messy(builder: RawDayBuilder, start: int, end: int) -> None:
    rng = builder.rng
    lines = builder.lines
    for (kind, hour), kind_lines in sorted(lines.items()):
        # Decisions with their own generator: the other kinds' lines are as they were.
        own = random.Random(f"{kind}:{hour}") if kind in ("decisions", "aircraft") else None
        _mess_up(kind_lines, own or rng)
    t = start + 1234
    bad = {
        "t": iso(t, 0),
        "vehicle_id": "V01",
        "lat": 95.0,
        "lon": 123.2,
        "heading": 1.0,
        "speed_kmh": 3.0,
        "state": "idle",
    }
    builder.add("positions", t, bad)
    builder.add("positions", t, {**bad, "lat": 0.0, "lon": 0.0})  # valid, far away
    builder.add("positions", t, {**bad, "lat": 29.8, "vehicle_id": "GHOST"})  # unknown
    builder.add("positions", t, {**bad, "lat": 29.8, "heading": 360.0})
    builder.add("positions", t, {**bad, "lat": 29.8, "t": iso(end + 7_200_000, 0)})  # next file
    builder.add(
        "flights",
        t,
        {
            "t": iso(t, 0),
            "flight_id": "FX",
            "callsign": "TST9",
            "flight_number": "TS9",
            "movement": "arrival",
            "airline": "TS",
            "aircraft_type": "A320",
            "registration": "B-1",
            "route": "PEK",
            "stand": "NOPE",
            "scheduled": iso(t, 0),
            "status": "scheduled",
        },
    )
    builder.add(
        "notifications",
        t,
        {
            "t": iso(builder.day.end_ms + 5, 0),
            "notification_id": "LATE",
            "level": "info",
            "code": "x",
            "text": "after the day",
        },
    )
    builder.add("positions", t, {}, raw=b"x" * 70_000)  # a line too long
    decision = {"t": iso(t, 0), "task_id": "K000", "decision": "assign", "stand": "NOPE"}
    builder.add("decisions", t, decision)  # unknown stand
    builder.add("decisions", t, {**decision, "stand": "S0", "vehicle_id": "GHOST"})
