"""A short synthetic day laid onto an imported OpenStreetMap layout (EHAM, LFPG fixtures).

The product's generator (``synthetic``) lays its day onto its own fictional airport; on a
real layout the tests write the raw records themselves, onto the imported stands and road
graph (taxiways and service roads), so every record's value is known here:

- **vehicles** drive shortest paths over the imported roads from their depots to stands
  at 20 km/h, a fix per road node;
- **aircraft**: an arrival taxis in at 30 km/h along the roads from the road node nearest a
  runway end to its stand and parks there (a fix every 30 s); a departure, parked on
  another stand, is pushed back 60 m (nose kept to the stand's heading, 5 km/h) by a tug
  at its nose, then taxis out towards the runway; each with its flight legs.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson

from chunker.format.day import ServiceDay
from chunker.format.keys import DayKeys
from chunker.format.records import Reference

M_PER_DEG = 111_195.0
VEHICLE_KMH = 20.0
TAXI_KMH = 30.0
PUSH_KMH = 5.0
PUSH_M = 60.0
PARKED_EVERY_MS = 30_000


def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle metres between two points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def way_holders(elements: list[dict[str, Any]]) -> Counter[int]:
    """How many ways of a raw Overpass extract hold each node."""
    return Counter(n for e in elements if e["type"] == "way" for n in set(e.get("nodes", ())))


def stand_line(element: dict[str, Any], holders: Counter[int]) -> list[dict[str, float]]:
    """A raw stand way's geometry from the taxiway to the nose wheel (the test's reading of
    the OSM wiki: drawn that way, unless its last node meets another way and its first
    meets none — then it was drawn from the stand, and is read backwards)."""
    nodes = element.get("nodes", [])
    geometry: list[dict[str, float]] = element["geometry"]
    if nodes and nodes[0] != nodes[-1] and holders[nodes[-1]] >= 2 and holders[nodes[0]] == 1:
        return geometry[::-1]
    return geometry


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds")


def lines(records: list[dict[str, Any]]) -> bytes:
    return gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records), mtime=0)


def shortest_path(reference: Reference, source: str, target: str) -> list[str]:
    """Road node ids from ``source`` to ``target`` by length (Dijkstra over the edges)."""
    adjacent: dict[str, list[tuple[str, float]]] = defaultdict(list)
    where = {n.node_id: (n.position.lat, n.position.lon) for n in reference.road_nodes}
    for e in reference.road_edges:
        d = haversine(*where[e.from_node], *where[e.to_node])
        adjacent[e.from_node].append((e.to_node, d))
        adjacent[e.to_node].append((e.from_node, d))
    best, previous, queue = {source: 0.0}, {}, [(0.0, source)]
    while queue:
        cost, node = heapq.heappop(queue)
        if node == target:
            break
        if cost > best[node]:
            continue
        for other, d in adjacent[node]:
            if cost + d < best.get(other, math.inf):
                best[other], previous[other] = cost + d, node
                heapq.heappush(queue, (cost + d, other))
    path = [target]
    while path[-1] != source:
        path.append(previous[path[-1]])
    return path[::-1]


def _offset(lat: float, lon: float, bearing: float, metres: float) -> tuple[float, float]:
    north = metres * math.cos(math.radians(bearing))
    east = metres * math.sin(math.radians(bearing))
    return lat + north / M_PER_DEG, lon + east / (M_PER_DEG * math.cos(math.radians(lat)))


def _bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    north = b[0] - a[0]
    east = (b[1] - a[1]) * math.cos(math.radians(a[0]))
    return math.degrees(math.atan2(east, north)) % 360


def _along(
    points: list[tuple[float, float]], kmh: float, t0: int
) -> list[tuple[int, float, float, float]]:
    """(t, lat, lon, bearing) once a second along ``points`` at ``kmh`` from ``t0``; the
    last is the end point."""
    legs = [(a, b, haversine(*a, *b)) for a, b in itertools.pairwise(points)]
    legs = [leg for leg in legs if leg[2] > 0.01]
    total = sum(d for _, _, d in legs)
    speed = kmh / 3.6
    out = []
    for second in range(int(total / speed) + 1):
        s, i = second * speed, 0
        while i < len(legs) - 1 and s > legs[i][2]:
            s -= legs[i][2]
            i += 1
        a, b, d = legs[i]
        f = min(1.0, s / d)
        out.append(
            (t0 + second * 1000, a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, _bearing(a, b))
        )
    end = legs[-1][1]
    out.append((t0 + round(total / speed * 1000), end[0], end[1], _bearing(legs[-1][0], end)))
    return out


@dataclass
class OsmDay:
    """The raw records of the day, and the moments worth looking at."""

    keys: DayKeys
    day: ServiceDay
    objects: dict[str, bytes]
    start: int  # first record
    end: int  # after the last one
    pushing: int  # a moment the departure is pushed back while the arrival taxis in
    taxiing_out: int  # a moment the departure taxis out
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def osm_day(reference: Reference, date: str, hour: int = 8) -> OsmDay:
    """Fifteen minutes from ``hour`` local: vehicles, an arrival and a departure (module doc)."""
    airport = reference.airport.airport_id
    day = ServiceDay.of(date, reference.airport.timezone)
    t0 = day.hour_window(hour)[0]
    where = {n.node_id: (n.position.lat, n.position.lon) for n in reference.road_nodes}
    depots = {d.depot_id: d for d in reference.depots}
    stands = sorted((s for s in reference.stands if s.road_node), key=lambda s: s.stand_id)
    positions: list[dict[str, Any]] = []
    tugs = [v for v in reference.vehicles if v.vehicle_type.value == "pushback_tug"]
    others = [v for v in reference.vehicles if v.vehicle_type.value != "pushback_tug"]
    for i, vehicle in enumerate(others[:6]):
        stand = stands[(i * 37 + 11) % len(stands)]
        route = [
            where[n]
            for n in shortest_path(reference, depots[vehicle.depot_id].road_node, stand.road_node)
        ]
        if len(route) < 2:
            continue
        driven = 0.0
        for index, (lat, lon) in enumerate(route):
            if index:
                driven += haversine(*route[index - 1], lat, lon) / (VEHICLE_KMH / 3.6) * 1000
            heading = _bearing(route[max(0, index - 1)], route[max(1, index)])
            positions.append(
                {
                    "t": iso(t0 + 20_000 * i + round(driven)),
                    "vehicle_id": vehicle.vehicle_id,
                    "lat": lat,
                    "lon": lon,
                    "heading": round(heading, 1),
                    "speed_kmh": VEHICLE_KMH,
                    "state": "en_route",
                }
            )
    # The runway end nearest the apron: where the arrival leaves the runway.
    centre = reference.airport.reference_point
    runway_end = min(
        (p for r in reference.runways for p in (r.start, r.end)),
        key=lambda p: haversine(p.lat, p.lon, centre.lat, centre.lon),
    )
    exit_node = min(where, key=lambda n: haversine(*where[n], runway_end.lat, runway_end.lon))
    arrival_stand = stands[len(stands) // 3]
    departure_stand = next(
        s
        for s in stands[len(stands) // 2 :]
        if haversine(
            s.position.lat, s.position.lon, arrival_stand.position.lat, arrival_stand.position.lon
        )
        > 200
    )
    aircraft: list[dict[str, Any]] = []

    def fix(
        t: int, who: tuple[str, str, str | None], lat: float, lon: float, track: float, kmh: float
    ) -> None:
        icao24, registration, callsign = who
        aircraft.append(
            {
                "t": iso(t),
                "icao24": icao24,
                "registration": registration,
                "callsign": callsign,
                "lat": round(lat, 7),
                "lon": round(lon, 7),
                "track": round(track % 360, 1) % 360,
                "ground_speed_kmh": round(kmh, 1),
                "on_ground": True,
            }
        )

    # The arrival: taxi in from the runway exit, then parked.
    inbound = ("4840d6", "PH-BXA", "KLM1234")
    path = [where[n] for n in shortest_path(reference, exit_node, arrival_stand.road_node)]
    path.append((arrival_stand.position.lat, arrival_stand.position.lon))
    taxi_in = _along(path, TAXI_KMH, t0 + 60_000)
    for t, lat, lon, bearing in taxi_in[:-1]:
        fix(t, inbound, lat, lon, bearing, TAXI_KMH)
    on_block = taxi_in[-1][0]
    for t in range(on_block, t0 + 15 * 60_000, PARKED_EVERY_MS):
        fix(
            t,
            (*inbound[:2], None),
            arrival_stand.position.lat,
            arrival_stand.position.lon,
            arrival_stand.heading,
            0.0,
        )
    # The departure: parked, pushed back with its tug, then taxis out to the runway exit.
    outbound = ("484c5b", "PH-EXB", "KLM1701")
    stand_at = (departure_stand.position.lat, departure_stand.position.lon)
    push_start = t0 + 120_000
    for t in range(t0, push_start, PARKED_EVERY_MS):
        fix(t, (*outbound[:2], None), *stand_at, departure_stand.heading, 0.0)
    nose = departure_stand.heading
    pushed = _offset(*stand_at, nose + 180, PUSH_M)
    push = _along([stand_at, pushed], PUSH_KMH, push_start)
    tug = tugs[0] if tugs else others[-1]
    for t, lat, lon, _ in push:
        fix(t, outbound, lat, lon, nose, PUSH_KMH)
        tug_lat, tug_lon = _offset(lat, lon, nose, 22.0)
        positions.append(
            {
                "t": iso(t),
                "vehicle_id": tug.vehicle_id,
                "lat": round(tug_lat, 7),
                "lon": round(tug_lon, 7),
                "heading": round((nose + 180) % 360, 1),
                "speed_kmh": PUSH_KMH,
                "state": "servicing",
            }
        )
    push_end = push[-1][0]
    near_pushed = min(where, key=lambda n: haversine(*where[n], *pushed))
    out_path = [pushed] + [where[n] for n in shortest_path(reference, near_pushed, exit_node)]
    taxi_out = _along(out_path, TAXI_KMH, push_end + 30_000)
    for t, lat, lon, bearing in taxi_out:
        if t >= t0 + 15 * 60_000:
            break
        fix(t, outbound, lat, lon, bearing, TAXI_KMH)
    arrival = {
        "flight_id": "KL1234-A", "callsign": "KLM1234", "flight_number": "KL1234",
        "movement": "arrival", "airline": "KL", "aircraft_type": "B738",
        "registration": "PH-BXA", "route": "LHR", "turnaround_id": "TA-1",
        "stand": arrival_stand.stand_id, "scheduled": iso(t0 + 5 * 60_000),
    }  # fmt: skip
    departure = {
        "flight_id": "KL1701-D", "callsign": "KLM1701", "flight_number": "KL1701",
        "movement": "departure", "airline": "KL", "aircraft_type": "B77W",
        "registration": "PH-EXB", "route": "JFK", "turnaround_id": "TA-2",
        "stand": departure_stand.stand_id, "scheduled": iso(push_start),
    }  # fmt: skip
    flights = [
        {"t": iso(t0), **arrival, "estimated": iso(on_block), "status": "approaching"},
        {"t": iso(on_block), **arrival, "actual": iso(on_block), "status": "on_block"},
        {"t": iso(t0), **departure, "status": "boarding"},
        {"t": iso(push_start), **departure, "actual": iso(push_start), "status": "off_block"},
    ]
    keys = DayKeys(airport, date)
    positions.sort(key=lambda r: r["t"])
    aircraft.sort(key=lambda r: (r["t"], r["icao24"]))
    objects = {
        keys.reference: reference.model_dump_json().encode(),
        keys.raw_file("positions"): lines(positions),
        keys.raw_file("aircraft"): lines(aircraft),
        keys.raw_file("flights"): lines(flights),
    }
    pushing = push_start + (push_end - push_start) * 2 // 3
    pushing = max(pushing, taxi_in[0][0] + 5_000)
    return OsmDay(
        keys=keys,
        day=day,
        objects=objects,
        start=t0,
        end=t0 + 15 * 60_000,
        pushing=pushing,
        taxiing_out=min(taxi_out[len(taxi_out) // 3][0], t0 + 14 * 60_000),
        records={"positions": positions, "aircraft": aircraft, "flights": flights},
    )
