"""Which flight an aircraft fix belongs to: the link from ADS-B identities to flight legs.

A surface fix names an aircraft (icao24 / registration) and, while it flies a flight, that
flight's callsign; the flight events name legs by id with a callsign and (optionally) a
registration. The rule (docs/data-format.md, "Aircraft"), from the day's flight legs as
their latest rows say (so every hour job links alike, whatever hour it builds):

1. the legs whose ``callsign`` equals the fix's callsign; if there are none,
2. the legs whose ``registration`` equals the fix's registration;

cancelled legs excluded. Of these, the leg whose time (actual, else estimated, else
scheduled) is nearest the fix's time wins (ties: the smaller leg id). The fix's row then
carries that leg's id and stand (``flight_id``, ``stand``); a fix matching no leg has
neither and is still a mover on the map.

Where the aircraft physically is: a fix within ``STAND_RADIUS_M`` of a stand's position is
on that stand (the nearest one; ``at_stand``), else on none. Stand occupancy takes it from
there (``chunker.format.derived``).

When an aircraft leaves the state (``aircraft_left``; docs/data-format.md, "Aircraft leave
the state"): at the first tick ``T`` in which it has no fix and either its latest fix is
older than the expiry (``fix.t < T - aircraft_expiry_ms``: it went quiet, e.g. took off
without a departure record, or its transponder went off), or the leg its latest fix links
to is a departure whose latest row (rows up to the end of ``T``) says ``departed``. The
chunker then writes a removal row into tick ``T``'s aircraft (``removal_row``), so keyframes
and snapshots no longer hold it and a stream tells its viewers. ``aircraft_expiry_ms`` 0
keeps every aircraft for the rest of the day (both rules off).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chunker.batch.tracks import Flat
from chunker.format.records import Stand
from chunker.format.rows import AircraftRemovalRow, Row

# An aircraft fix this close to a stand's position is on the stand: the stand point is
# where the aircraft parks; the radius allows for where the antenna sits and GPS error,
# and stays under half the spacing of neighbouring stands (~40 m and more).
STAND_RADIUS_M = 25.0
# Stands this much farther than the nearest count as equally near: OSM maps some stands
# (MARS positions, lines meeting at one stop point) on one point, and then the stand the
# aircraft's own leg names is the one it is on.
STAND_TIE_M = 1.0


def leg_time(leg: Row) -> int:
    """The time a leg happens: actual, else estimated, else scheduled (epoch ms)."""
    for name in ("actual", "estimated"):
        value = leg.get(name)
        if value is not None:
            return int(value)
    return int(leg["scheduled"])


@dataclass(slots=True)
class FlightLinks:
    """The day's legs indexed by callsign and registration (latest row per leg)."""

    by_callsign: dict[str, list[Row]] = field(default_factory=dict)
    by_registration: dict[str, list[Row]] = field(default_factory=dict)

    @classmethod
    def of(cls, flights: Iterable[Row]) -> FlightLinks:
        """From flight rows in any order: each leg's latest row (by ``t``, then order)."""
        latest: dict[str, Row] = {}
        for row in flights:
            known = latest.get(row["id"])
            if known is None or row["t"] >= known["t"]:
                latest[row["id"]] = row
        links = cls()
        for leg_id in sorted(latest):
            leg = latest[leg_id]
            if leg["status"] == "cancelled":
                continue
            links.by_callsign.setdefault(leg["callsign"], []).append(leg)
            if leg.get("registration"):
                links.by_registration.setdefault(leg["registration"], []).append(leg)
        return links

    def leg_of(self, t: int, callsign: str | None, registration: str | None) -> Row | None:
        """The leg a fix at ``t`` with these identities belongs to (module doc), or None."""
        legs = self.by_callsign.get(callsign, []) if callsign else []
        if not legs and registration:
            legs = self.by_registration.get(registration, [])
        best: Row | None = None
        for leg in legs:  # sorted by id: the first of equal distance is the smaller id
            if best is None or abs(leg_time(leg) - t) < abs(leg_time(best) - t):
                best = leg
        return best

    def link(self, rows: Iterable[Row], stands: StandFinder) -> None:
        """Fill in each aircraft row's ``flight_id``, ``stand`` and ``at_stand`` (rows are
        fresh from validation, not shared yet)."""
        for row in rows:
            leg = self.leg_of(row["t"], row.get("callsign"), row.get("registration"))
            mutable: dict[str, Any] = row  # type: ignore[assignment]
            mutable["flight_id"] = None if leg is None else leg["id"]
            mutable["stand"] = None if leg is None else leg["stand"]
            mutable["at_stand"] = stands.at(row["lat"], row["lon"], mutable["stand"])


class StandFinder:
    """The stand a point is on (within ``STAND_RADIUS_M``, nearest first), by a grid of
    cells a radius wide so a lookup checks a few stands whatever the layout's size."""

    def __init__(self, stands: Iterable[Stand]) -> None:
        stands = list(stands)
        first = stands[0].position if stands else None
        self._flat = Flat(first.lat, first.lon) if first else Flat(0.0, 0.0)
        self._cells: dict[tuple[int, int], list[tuple[float, float, str]]] = {}
        for stand in stands:
            x, y = self._flat.xy(stand.position.lat, stand.position.lon)
            self._cells.setdefault(self._cell(x, y), []).append((x, y, stand.stand_id))

    @staticmethod
    def _cell(x: float, y: float) -> tuple[int, int]:
        return int(x // STAND_RADIUS_M), int(y // STAND_RADIUS_M)

    def at(self, lat: float, lon: float, leg_stand: str | None = None) -> str | None:
        """The stand at (lat, lon), or None: the nearest within the radius; of stands
        equally near (``STAND_TIE_M``), ``leg_stand`` if it is one, else the smaller id."""
        x, y = self._flat.xy(lat, lon)
        cx, cy = self._cell(x, y)
        near: list[tuple[float, str]] = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for sx, sy, stand_id in self._cells.get((cx + dx, cy + dy), ()):
                    d2 = (sx - x) ** 2 + (sy - y) ** 2
                    if d2 <= STAND_RADIUS_M**2:
                        near.append((d2**0.5, stand_id))
        if not near:
            return None
        nearest = min(near)
        if leg_stand is not None:
            for distance, stand_id in near:
                if stand_id == leg_stand and distance <= nearest[0] + STAND_TIE_M:
                    return stand_id
        return nearest[1]


def departed(leg: Row) -> bool:
    """Whether a flight row says its aircraft is airborne: a departure that departed."""
    return leg["movement"] == "departure" and leg["status"] == "departed"


def aircraft_left(
    fix: Row, tick_start: int, fix_tick: int, legs: Mapping[str, Row], expiry_ms: int
) -> bool:
    """Whether the aircraft whose latest fix is ``fix`` (in the tick starting ``fix_tick``)
    has left the state by the tick starting ``tick_start`` (module doc); ``legs``: the
    flight legs' latest rows up to the end of that tick."""
    if expiry_ms <= 0 or fix_tick >= tick_start:
        return False
    leg = legs.get(fix["flight_id"]) if fix["flight_id"] else None
    return fix["t"] < tick_start - expiry_ms or (leg is not None and departed(leg))


def removal_row(fix: Row, tick_start: int) -> AircraftRemovalRow:
    """The row that takes an aircraft off the state at ``tick_start``: its id, the time it
    left, and the flight link of its last fix (filters check it as they checked the fix)."""
    return {
        "id": fix["id"],
        "t": tick_start,
        "removed": True,
        "flight_id": fix["flight_id"],
        "stand": fix["stand"],
    }


class AircraftExpiry:
    """``aircraft_left`` tick by tick without looking at every aircraft every tick: a heap
    of the latest fixes' times (the expiry) and the set of aircraft whose leg departed.

    Built from the state at the start of an hour, so an independent hour job that starts
    from the folded state decides exactly as the job that carried it.
    """

    def __init__(self, aircraft: Mapping[str, Row], legs: Mapping[str, Row], expiry_ms: int):
        self.expiry_ms = expiry_ms
        self._departed = {leg_id for leg_id, leg in legs.items() if departed(leg)}
        self._heap = [(fix["t"], aircraft_id) for aircraft_id, fix in aircraft.items()]
        heapq.heapify(self._heap)
        self._leaving = self._linked_to_departed(aircraft)

    def _linked_to_departed(self, aircraft: Mapping[str, Row]) -> set[str]:
        return {a for a, fix in aircraft.items() if fix["flight_id"] in self._departed}

    def leaving(
        self,
        tick_start: int,
        aircraft: Mapping[str, Row],
        fixes: Sequence[Row],
        flights: Sequence[Row],
    ) -> list[AircraftRemovalRow]:
        """Removal rows (by id) for the tick starting ``tick_start``: ``aircraft`` is the
        state's before the tick, ``fixes`` and ``flights`` the tick's rows."""
        if self.expiry_ms <= 0:
            return []
        if flights:
            before = set(self._departed)
            for leg in flights:
                if departed(leg):
                    self._departed.add(leg["id"])
                else:
                    self._departed.discard(leg["id"])
            if self._departed != before:  # rare: a departure's take-off (or a correction)
                self._leaving = self._linked_to_departed(aircraft)
        in_tick = {fix["id"] for fix in fixes}
        gone: set[str] = set()
        horizon, heap = tick_start - self.expiry_ms, self._heap
        while heap and heap[0][0] < horizon:
            t, aircraft_id = heapq.heappop(heap)
            fix = aircraft.get(aircraft_id)
            if fix is not None and fix["t"] == t and aircraft_id not in in_tick:
                gone.add(aircraft_id)
        gone.update(a for a in self._leaving if a not in in_tick and a in aircraft)
        for fix in fixes:
            heapq.heappush(heap, (fix["t"], fix["id"]))
            if fix["flight_id"] in self._departed:
                self._leaving.add(fix["id"])
            else:
                self._leaving.discard(fix["id"])
        self._leaving -= gone
        return [removal_row(aircraft[a], tick_start) for a in sorted(gone)]
