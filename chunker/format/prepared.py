"""A chunk in the form readers keep in memory: every row pre-encoded as JSON bytes.

Streams send rows as they are stored, so each row is encoded once when a chunk is loaded
and then only concatenated, never re-encoded per viewer. Next to each row's bytes sit the
few attributes server-side filters need (ids, task type and status, stand, flight), and
for a derived row (``chunker.format.derived``) whether it keeps its entity in the state.
"""

from __future__ import annotations

import sys
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

import orjson

from chunker.format.derived import PRESENT
from chunker.format.encoding import CorruptChunk
from chunker.format.rows import Row
from chunker.format.state import (
    RECENT_NOTIFICATIONS,
    ReplayState,
    StateFold,
    aircraft_row_present,
    floor_tick,
)

_CHUNK_OVERHEAD = 512  # the PreparedChunk object, its key and the cache's bookkeeping


class TaskEntry(NamedTuple):
    """A task row and what filters look at."""

    id: str
    task_type: str
    status: str
    flight_id: str
    stand: str
    t: int
    json: bytes
    vehicle_id: str | None = None


class FlightEntry(NamedTuple):
    """A flight row and what filters look at."""

    id: str
    stand: str
    json: bytes


class NotificationEntry(NamedTuple):
    """A notification row and what filters look at."""

    flight_id: str | None
    json: bytes
    vehicle_id: str | None = None


class DerivedEntry(NamedTuple):
    """A derived row (a stand's occupant, a vehicle's task) and what filters look at:
    ``id`` is the stand or vehicle, ``flight_ids`` the flight legs it names (a stand's
    occupant names the leg that put it there and both legs of its turnaround)."""

    id: str
    present: bool  # False: the row removes its entity (a vacated stand)
    flight_ids: tuple[str, ...]
    json: bytes


class DecisionEntry(NamedTuple):
    """A dispatch decision and what filters look at: its task (``id``) as the chunker
    annotated it (type and status; None when unknown), its flight, stand and vehicle."""

    id: str
    task_type: str | None
    status: str | None
    flight_id: str | None
    stand: str | None
    vehicle_id: str | None
    json: bytes


VehicleEntry = tuple[str, bytes]  # (vehicle_id, row JSON)


class AircraftEntry(NamedTuple):
    """An aircraft fix and what filters look at: the flight leg it links to, that leg's
    stand (an aircraft is filtered as its flight)."""

    flight_id: str | None
    stand: str | None
    json: bytes
    present: bool = True  # False: a removal row (the aircraft left the state)


AircraftPair = tuple[str, AircraftEntry]  # (aircraft_id, entry)


@dataclass(slots=True)
class PreparedTick:
    """One tick of deltas (or a keyframe) as pre-encoded entries."""

    t: int
    vehicles: list[VehicleEntry] = field(default_factory=list)
    tasks: list[TaskEntry] = field(default_factory=list)
    flights: list[FlightEntry] = field(default_factory=list)
    notifications: list[NotificationEntry] = field(default_factory=list)
    stands: list[DerivedEntry] = field(default_factory=list)
    vehicle_tasks: list[DerivedEntry] = field(default_factory=list)
    decisions: list[DecisionEntry] = field(default_factory=list)
    aircraft: list[AircraftPair] = field(default_factory=list)

    def kinds(
        self,
    ) -> tuple[
        list[VehicleEntry],
        list[TaskEntry],
        list[FlightEntry],
        list[NotificationEntry],
        list[DerivedEntry],
        list[DerivedEntry],
        list[DecisionEntry],
        list[AircraftPair],
    ]:
        """Its entries by kind, in ``StateFold.apply_tick``'s order."""
        return (
            self.vehicles,
            self.tasks,
            self.flights,
            self.notifications,
            self.stands,
            self.vehicle_tasks,
            self.decisions,
            self.aircraft,
        )


def _derived_flights(kind: str, row: Row) -> tuple[str | None, ...]:
    if kind == "stands":
        return (row.get("flight_id"), row.get("arrival_id"), row.get("departure_id"))
    current = row.get("current") or row.get("last")
    return () if current is None else (current.get("flight_id"),)


def _held(size: int) -> int:
    """Bytes an object of ``sys.getsizeof`` ``size`` really takes: pymalloc's 16-byte
    blocks up to 512 bytes, a malloc chunk (8-byte header, 16-byte aligned) beyond."""
    return (size + 15) & ~15 if size <= 512 else (size + 8 + 15) & ~15


_BYTES_HEAD = sys.getsizeof(b"")  # a bytes object is this plus its length
_PAIR = _held(sys.getsizeof(("", b"")))
_TASK = _held(sys.getsizeof(TaskEntry("", "", "", "", "", 0, b"", None)))
_FLIGHT = _held(sys.getsizeof(FlightEntry("", "", b"")))
_NOTE = _held(sys.getsizeof(NotificationEntry(None, b"", None)))
_DERIVED = _held(sys.getsizeof(DerivedEntry("", True, (), b"")))
_DECISION = _held(sys.getsizeof(DecisionEntry("", None, None, None, None, None, b"")))
_AIRCRAFT = _PAIR + _held(sys.getsizeof(AircraftEntry(None, None, b"", True)))
_TICK = _held(sys.getsizeof(PreparedTick(0)))
_INT = _held(sys.getsizeof(2**40))


class _Preparer:
    """Builds a chunk's entries and counts the memory they hold, object by object.

    Counted, not estimated from encoded sizes (issue #15: that estimate was 17x short,
    mostly because ``orjson.dumps`` returns each row in a 4 KiB buffer). Each row is copied
    into a bytes object of its exact size, and the strings filters use (vehicle and flight
    ids, task types, statuses, stands) are stored once per chunk. tests/test_chunk_source.py
    checks the count against tracemalloc.
    """

    def __init__(self) -> None:
        self.size = 0
        self._names: dict[str, str] = {}

    def name(self, value: str) -> str:
        known = self._names.get(value)
        if known is None:
            known = self._names[value] = value
            self.size += _held(sys.getsizeof(value))
        return known

    def optional_name(self, value: str | None) -> str | None:
        return None if value is None else self.name(value)

    def row(self, row: Row) -> bytes:
        encoded = memoryview(orjson.dumps(row)).tobytes()  # exact size, not orjson's buffer
        self.size += _held(_BYTES_HEAD + len(encoded))
        return encoded

    def tick(self, t: int, rows: dict[str, Any]) -> PreparedTick:
        name, row = self.name, self.row
        tick = PreparedTick(int(t))
        size = _TICK + _INT
        for vehicle in rows.get("vehicles") or ():
            tick.vehicles.append((name(vehicle["id"]), row(vehicle)))
            size += _PAIR
        for task in rows.get("tasks") or ():
            tick.tasks.append(
                TaskEntry(
                    name(task["id"]),
                    name(task["task_type"]),
                    name(task["status"]),
                    name(task["flight_id"]),
                    name(task["stand"]),
                    int(task["t"]),
                    row(task),
                    self.optional_name(task.get("vehicle_id")),
                )
            )
            size += _TASK + _INT
        for flight in rows.get("flights") or ():
            tick.flights.append(FlightEntry(name(flight["id"]), name(flight["stand"]), row(flight)))
            size += _FLIGHT
        for note in rows.get("notifications") or ():
            tick.notifications.append(
                NotificationEntry(
                    self.optional_name(note.get("flight_id")),
                    row(note),
                    self.optional_name(note.get("vehicle_id")),
                )
            )
            size += _NOTE
        for fix in rows.get("aircraft") or ():
            entry = AircraftEntry(
                self.optional_name(fix.get("flight_id")),
                self.optional_name(fix.get("stand")),
                row(fix),
                aircraft_row_present(fix),
            )
            tick.aircraft.append((name(fix["id"]), entry))
            size += _AIRCRAFT
        for kind, derived in (("stands", tick.stands), ("vehicle_tasks", tick.vehicle_tasks)):
            for item in rows.get(kind) or ():
                named = dict.fromkeys(f for f in _derived_flights(kind, item) if f is not None)
                flights = tuple(name(f) for f in named)
                present = PRESENT[kind](item)
                derived.append(DerivedEntry(name(item["id"]), present, flights, row(item)))
                size += _DERIVED + _held(sys.getsizeof(flights))
        optional = self.optional_name
        for decision in rows.get("decisions") or ():
            tick.decisions.append(
                DecisionEntry(
                    name(decision["id"]),
                    optional(decision.get("task_type")),
                    optional(decision.get("task_status")),
                    optional(decision.get("flight_id")),
                    optional(decision.get("stand")),
                    optional(decision.get("vehicle_id")),
                    row(decision),
                )
            )
            size += _DECISION
        for entries in tick.kinds():
            size += _held(sys.getsizeof(entries))
        self.size += size
        return tick


def _entry_present(kind: str, entry: DerivedEntry) -> bool:
    return entry.present


@dataclass(slots=True)
class PreparedState(
    StateFold[
        bytes,
        TaskEntry,
        FlightEntry,
        NotificationEntry,
        DerivedEntry,
        DecisionEntry,
        AircraftEntry,
    ]
):
    """State at an instant ``t``, as entries keyed by id (what a snapshot is built from)."""

    t: int = 0
    task_retention_ms: int = 0
    task_id = flight_id = derived_id = attrgetter("id")
    derived_present = staticmethod(_entry_present)
    aircraft_present = attrgetter("present")
    task_status_t = attrgetter("status", "t")

    def apply(self, tick: PreparedTick) -> None:
        """Fold one tick (or a keyframe) in."""
        self.apply_tick(*tick.kinds())

    def rows(self) -> ReplayState:
        """Decoded rows (for queries and tests; the stream never needs this)."""
        loads = orjson.loads
        return ReplayState(
            {k: loads(v) for k, v in self.vehicles.items()},
            {k: loads(v.json) for k, v in self.tasks.items()},
            {k: loads(v.json) for k, v in self.flights.items()},
            deque((loads(n.json) for n in self.notifications), maxlen=RECENT_NOTIFICATIONS),
            {k: loads(v.json) for k, v in self.stands.items()},
            {k: loads(v.json) for k, v in self.vehicle_tasks.items()},
            {k: loads(v.json) for k, v in self.decisions.items()},
            {k: loads(v.json) for k, v in self.aircraft.items()},
        )


@dataclass(slots=True)
class PreparedChunk:
    """A decoded chunk: prepared keyframe and ticks, with its in-memory size."""

    key: str
    start: int
    end: int
    tick_ms: int
    task_retention_ms: int
    keyframe: PreparedTick
    ticks: list[PreparedTick]
    tick_times: list[int]
    size: int

    @classmethod
    def from_document(cls, key: str, document: dict[str, Any]) -> PreparedChunk:
        """Prepare a decoded chunk document (see chunker.format.encoding); ``CorruptChunk``
        if it does not have a chunk's structure."""
        try:
            preparer = _Preparer()
            keyframe = preparer.tick(document["start"], document["keyframe"])
            ticks = [preparer.tick(rows["t"], rows) for rows in document["ticks"]]
            tick_times = [tick.t for tick in ticks]
            size = preparer.size + _held(sys.getsizeof(ticks)) + _held(sys.getsizeof(tick_times))
            return cls(
                key=key,
                start=int(document["start"]),
                end=int(document["end"]),
                tick_ms=int(document["tick_ms"]),
                task_retention_ms=int(document["task_retention_ms"]),
                keyframe=keyframe,
                ticks=ticks,
                tick_times=tick_times,
                size=size + _CHUNK_OVERHEAD,
            )
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            raise CorruptChunk(f"not a chunk's structure ({type(exc).__name__}: {exc})") from exc

    def ticks_between(self, after: int, until: int) -> Sequence[PreparedTick]:
        """Ticks with ``after < t <= until``, in order."""
        times = self.tick_times
        return self.ticks[bisect_right(times, after) : bisect_right(times, until)]

    def state_at(self, t: int) -> PreparedState:
        """State at ``t`` (keyframe + ticks with ``tick.t <= t``); ``t`` inside the chunk."""
        if not self.start <= t < self.end:
            raise ValueError(f"t={t} is outside the chunk [{self.start}, {self.end})")
        state = PreparedState(t=t, task_retention_ms=self.task_retention_ms)
        state.apply(self.keyframe)
        for tick in self.ticks[: bisect_right(self.tick_times, t)]:
            state.apply(tick)
        state.expire_tasks(floor_tick(t, self.start, self.tick_ms), self.task_retention_ms)
        return state
