"""History queries over published chunks (no HTTP): what the dashboard and analysts ask.

Everything is read from the same chunks the stream uses, through the reader's shared,
byte-bounded cache. Queries that scan deltas are bounded in replay time.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from chunker.format.encoding import Manifest
from chunker.format.read import ChunkReader, NotPublished
from chunker.format.rows import Row
from chunker.format.state import ReplayState
from functions.app.history import turnarounds
from functions.app.history.decision_quality import LOOKAHEAD_MS, DecisionQualityFold
from functions.app.history.errors import (
    BadCursor,
    FlightAmbiguous,
    FlightNotFound,
    HistoryError,
    TurnaroundNotFound,
    VehicleNotFound,
)
from functions.app.history.export import MAX_EXPORT_MS, ExportKind, turnaround_row
from functions.app.history.kpis import KpiFilters, KpiFold
from functions.app.history.navigation import EventFold
from functions.app.history.vehicle_day import VehicleDayFold

MAX_SCAN_MS = 6 * 3_600_000
FLIGHT_LEAD_MS = 3 * 3_600_000  # tasks start this long before a flight's times at most
FLIGHT_TAIL_MS = 2 * 3_600_000
# A turnaround's tasks end this long after its legs' latest time at most (an arrival whose
# departure is not recorded yet: its tasks run on, late when vehicles are short).
TURNAROUND_TAIL_MS = 3 * 3_600_000
MAX_TURNAROUND_SCAN_MS = 12 * 3_600_000  # a turnaround's scan, whatever its legs say
MAX_SEARCH_RESULTS = 500
MAX_KPI_MS = 12 * 3_600_000  # a KPI window (a shift)
MAX_EVENTS = 50_000  # navigable events of one answer
DEFAULT_EVENTS = 20_000
# A published version never changes (its key names a hash of its input): a day's events are
# folded once per process and kept for the few days being watched.
_EVENTS_CACHED_DAYS = 8
_events_cache: OrderedDict[tuple[str, str], list[dict[str, Any]]] = OrderedDict()
_events_lock = threading.Lock()


class RowFold(Protocol):
    """A pure fold over a window's rows (KPIs, navigable events)."""

    def begin(self, tasks_at_start: Iterable[Row]) -> None: ...
    def task(self, row: Row) -> None: ...
    def flight(self, row: Row) -> None: ...
    def notification(self, row: Row) -> None: ...


# An entity named in a path (a vehicle, a flight, a turnaround) that the day's catalogue
# does not know is 404 <kind>-not-found; a known one with nothing in the window is 200
# with an empty list. Ids given as query *filters* only narrow a list: no match, no rows.
CURSOR_PATTERN = r"^[0-9]{1,16}\.[0-9]{1,9}$"
DEFAULT_TASK_LIMIT = 2_000
MAX_TASK_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters of a task query; None means "any"."""

    task_type: str | None = None
    status: str | None = None
    stand: str | None = None
    flight_id: str | None = None
    vehicle_id: str | None = None

    def matches(self, row: Row) -> bool:
        """Whether a task row passes every given filter."""
        return (
            (self.task_type is None or row["task_type"] == self.task_type)
            and (self.status is None or row["status"] == self.status)
            and (self.stand is None or row["stand"] == self.stand)
            and (self.flight_id is None or row["flight_id"] == self.flight_id)
            and (self.vehicle_id is None or row.get("vehicle_id") == self.vehicle_id)
        )


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """What an export keeps: task filters for task events; ``flight_id`` / ``vehicle_id``
    / ``level`` for notifications (a notification naming no such id does not match);
    ``flight`` (any name of a leg) and ``stand`` for turnarounds."""

    tasks: TaskQuery = TaskQuery()
    level: str | None = None
    flight: str | None = None

    def note_matches(self, row: Row) -> bool:
        """Whether a notification passes every given filter."""
        return (
            (self.tasks.flight_id is None or row.get("flight_id") == self.tasks.flight_id)
            and (self.tasks.vehicle_id is None or row.get("vehicle_id") == self.tasks.vehicle_id)
            and (self.level is None or row["level"] == self.level)
        )


def day_variants(chunks: ChunkReader, airport: str, service_date: str) -> dict[str, Any]:
    """The published variants of a day with their versions (``NotPublished`` if none)."""
    names = chunks.variants(airport, service_date)
    if not names:
        raise NotPublished(f"{airport} {service_date} has no published chunks")
    variants = []
    for name in names:
        pointer = chunks.of_variant(name).published(airport, service_date).pointer
        variants.append(
            {"variant": name, "version": pointer.version, "published_at": pointer.published_at}
        )
    return {"airport": airport, "service_date": service_date, "variants": variants}


def check_window(start: int, end: int, limit_ms: int = MAX_SCAN_MS) -> None:
    """A non-empty window no longer than ``limit_ms``."""
    if end <= start:
        raise HistoryError(f"end ({end}) must be after start ({start})")
    if end - start > limit_ms:
        raise HistoryError(f"a window may span at most {limit_ms // 3_600_000} h")


class History:
    """Read-only queries over an airport's published days."""

    def __init__(self, chunks: ChunkReader) -> None:
        self.chunks = chunks

    def airports(self) -> list[dict[str, Any]]:
        """Airports with published days, and those days."""
        return [
            {"airport": airport, "days": self.chunks.published_days(airport)}
            for airport in self.chunks.airports()
        ]

    def manifest(self, airport: str, service_date: str) -> Manifest:
        """The published manifest of a day."""
        return self.chunks.published(airport, service_date).manifest

    def state_at(self, airport: str, t: int) -> tuple[Manifest, ReplayState]:
        """The full replay state at ``t`` (and the manifest of its day)."""
        manifest = self.chunks.day_at(airport, t)
        return manifest, self.chunks.state_at(manifest, t)

    def vehicle_track(self, airport: str, vehicle_id: str, start: int, end: int) -> list[Row]:
        """The vehicle's fixes in ``[start, end)`` (at most one per tick), oldest first;
        the first element is its last known fix at ``start`` if it had one."""
        check_window(start, end)
        manifest, state = self.state_at(airport, start)
        days = (
            [manifest] if end <= manifest.end else [manifest, self.chunks.day_at(airport, end - 1)]
        )
        if not any(v.vehicle_id == vehicle_id for day in days for v in day.catalogue.vehicles):
            raise VehicleNotFound(f"no vehicle {vehicle_id} at {airport} in that window's days")
        track: list[Row] = []
        known = state.vehicles.get(vehicle_id)
        if known is not None:
            track.append(known)
        for tick in self.chunks.iter_ticks(airport, start + 1, end):
            for candidate, encoded in tick.vehicles:
                if candidate == vehicle_id:
                    track.append(orjson.loads(encoded))
        return track

    def leg(
        self, airport: str, service_date: str, key: str, movement: str | None = None
    ) -> tuple[Manifest, Row]:
        """The manifest and the catalogue row of the leg ``key`` names (module rule)."""
        manifest = self.manifest(airport, service_date)
        return manifest, resolve_leg(manifest.catalogue.flights, key, movement)

    def flight(
        self, airport: str, service_date: str, key: str, movement: str | None = None
    ) -> dict[str, Any]:
        """A flight leg (latest row of the day) with every event of its tasks, by task;
        ``key`` is its leg id, flight number or callsign (``resolve_leg``)."""
        manifest, flight = self.leg(airport, service_date, key, movement)
        flight_id = flight["id"]
        times = [flight[k] for k in ("scheduled", "estimated", "actual", "t") if flight.get(k)]
        start = max(manifest.start, min(times) - FLIGHT_LEAD_MS)
        end = min(manifest.end, max(times) + FLIGHT_TAIL_MS)
        events: dict[str, list[Row]] = {}
        for tick in self.chunks.iter_ticks(airport, start, end):
            for task in tick.tasks:
                if task.flight_id == flight_id:
                    events.setdefault(task.id, []).append(orjson.loads(task.json))
        tasks = [
            {"task": rows[-1], "events": rows}
            for rows in sorted(events.values(), key=lambda r: (r[0]["planned_start"], r[0]["id"]))
        ]
        return {"flight": flight, "tasks": tasks, "window": {"start": start, "end": end}}

    def search_turnarounds(
        self,
        airport: str,
        service_date: str,
        flight: str | None = None,
        stand: str | None = None,
        start: int | None = None,
        end: int | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Turnarounds of the day (from its catalogue, no chunk read) with a leg whose id,
        flight number or callsign is ``flight``, on ``stand``, whose times overlap
        ``[start, end)``; by first time. And whether ``limit`` cut the list."""
        if start is not None and end is not None:
            check_window(start, end, 7 * 24 * 3_600_000)
        flights = self.manifest(airport, service_date).catalogue.flights
        grouped: dict[str, list[Row]] = {}
        for leg in flights:
            grouped.setdefault(turnarounds.turnaround_of(leg), []).append(leg)
        wanted = None if flight is None else flight.upper()
        hits = []
        for turnaround_id, legs in grouped.items():
            if wanted is not None and not any(_names(leg, wanted) for leg in legs):
                continue
            if stand is not None and not any(leg["stand"] == stand for leg in legs):
                continue
            found = turnarounds.summary(turnaround_id, turnarounds.legs_of(legs, turnaround_id))
            if (start is not None and found["end"] < start) or (
                end is not None and found["start"] >= end
            ):
                continue
            hits.append(found)
        hits.sort(key=lambda hit: (hit["start"], hit["id"]))
        return hits[:limit], len(hits) > limit

    def turnaround(
        self, airport: str, service_date: str, key: str, movement: str | None = None
    ) -> dict[str, Any]:
        """One turnaround with its legs, tasks, vehicles, notifications and critical path
        (``turnarounds``); ``key`` is a turnaround id, or anything naming one of its legs.
        Reads the ticks of at most ``MAX_TURNAROUND_SCAN_MS`` of its day."""
        manifest = self.manifest(airport, service_date)
        flights = manifest.catalogue.flights
        turnaround_id = key
        legs = turnarounds.legs_of(flights, key)
        if not legs:
            try:
                turnaround_id = turnarounds.turnaround_of(resolve_leg(flights, key, movement))
            except FlightNotFound as exc:
                raise TurnaroundNotFound(
                    f"no turnaround or flight {key} on {airport} {service_date}"
                ) from exc
            legs = turnarounds.legs_of(flights, turnaround_id)
        times = [t for leg in legs for t in turnarounds.leg_times(leg)]
        end = min(manifest.end, max(times) + TURNAROUND_TAIL_MS)
        start = max(manifest.start, min(times) - FLIGHT_LEAD_MS, end - MAX_TURNAROUND_SCAN_MS)
        ids = {leg["id"] for leg in legs}
        flight_events: list[Row] = []
        task_events: list[Row] = []
        notes: list[Row] = []
        for tick in self.chunks.iter_ticks(airport, start, end):
            for task in tick.tasks:
                if task.flight_id in ids:
                    task_events.append(orjson.loads(task.json))
            for flight in tick.flights:
                if flight.id in ids:
                    flight_events.append(orjson.loads(flight.json))
            for note in tick.notifications:
                if note.flight_id in ids:
                    notes.append(orjson.loads(note.json))
        return turnarounds.assemble(
            turnaround_id, legs, flight_events, task_events, notes, (start, end)
        )

    def state_before(self, airport: str, t: int) -> ReplayState:
        """The state just before the tick of ``t`` begins (empty before the first published
        day): what a fold over the ticks from ``t`` on starts from."""
        try:
            return self.state_at(airport, t - 1)[1]
        except NotPublished:
            return ReplayState()

    def kpis(self, airport: str, start: int, end: int, filters: KpiFilters) -> dict[str, Any]:
        """The KPIs of ``[start, end)`` (``kpis``; at most ``MAX_KPI_MS``), over the fleet
        and flights of the day of ``start``."""
        check_window(start, end, MAX_KPI_MS)
        manifest = self.chunks.day_at(airport, start)
        fold = KpiFold(
            start,
            end,
            {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles},
            {f["id"]: f["stand"] for f in manifest.catalogue.flights},
            filters,
        )
        self.feed(fold, airport, start, end)
        return fold.result()

    def vehicle_day(self, airport: str, service_date: str, vehicle_id: str) -> dict[str, Any]:
        """One vehicle's day (``vehicle_day``): its tasks in order and its busy, servicing,
        driving and idle time over the whole published day; ``VehicleNotFound`` for a
        vehicle not in the day's fleet."""
        manifest = self.manifest(airport, service_date)
        fleet = {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles}
        if vehicle_id not in fleet:
            raise VehicleNotFound(f"no vehicle {vehicle_id} at {airport} on {service_date}")
        fold = VehicleDayFold(manifest.start, manifest.end, fleet, vehicle_id)
        self.feed(fold, airport, manifest.start, manifest.end)
        return fold.result()

    def feed(
        self,
        fold: RowFold,
        airport: str,
        start: int,
        end: int,
        on_decision: Callable[[Row], None] | None = None,
    ) -> None:
        """Feed ``fold`` the tasks of the state just before ``start``, then every task,
        flight and notification row of ``[start, end)`` in order; ``on_decision``, if
        given, each tick's dispatch decisions, after the tick's other rows."""
        fold.begin(self.state_before(airport, start).tasks.values())
        loads = orjson.loads
        for a, b in self._active_spans(airport, start, end, on_decision is not None):
            self._feed_span(fold, on_decision, loads, airport, a, b)

    def _active_spans(
        self, airport: str, start: int, end: int, decisions: bool = False
    ) -> Iterator[tuple[int, int]]:
        """The parts of ``[start, end)`` whose chunks hold a task, flight or notification
        delta (and a decision, when asked; the manifests count them), merged: all a row
        fold needs to read, so a quiet night costs no chunk read."""
        t = start
        while t < end:
            manifest = self.chunks.day_at(airport, t)
            run: list[int] | None = None
            for entry in manifest.chunks:
                if entry.end <= t or entry.start >= end:
                    continue
                rows = entry.tasks + entry.flights + entry.notifications
                if rows + (entry.decisions if decisions else 0) == 0:
                    continue
                a, b = max(entry.start, t), min(entry.end, end)
                if run is not None and run[1] == a:
                    run[1] = b
                    continue
                if run is not None:
                    yield run[0], run[1]
                run = [a, b]
            if run is not None:
                yield run[0], run[1]
            t = manifest.end

    def _feed_span(
        self,
        fold: RowFold,
        on_decision: Callable[[Row], None] | None,
        loads: Any,
        airport: str,
        start: int,
        end: int,
    ) -> None:
        for tick in self.chunks.iter_ticks(airport, start, end):
            for task in tick.tasks:
                fold.task(loads(task.json))
            for flight in tick.flights:
                fold.flight(loads(flight.json))
            for note in tick.notifications:
                fold.notification(loads(note.json))
            if on_decision is not None:
                for decision in tick.decisions:
                    on_decision(loads(decision.json))

    def events(
        self,
        airport: str,
        service_date: str,
        kinds: frozenset[str] | None = None,
        limit: int = DEFAULT_EVENTS,
    ) -> dict[str, Any]:
        """The day's navigable events (``navigation``) of ``kinds`` (all if None), by time;
        folded over the whole day once per published version, then served from memory."""
        day = self.chunks.published(airport, service_date)
        key = (self.chunks.bucket, day.pointer.manifest_key)
        with _events_lock:
            every = _events_cache.get(key)
            if every is not None:
                _events_cache.move_to_end(key)
        if every is None:
            every = self._fold_events(airport, day.manifest)
            with _events_lock:
                _events_cache[key] = every
                while len(_events_cache) > _EVENTS_CACHED_DAYS:
                    _events_cache.popitem(last=False)
        found = [e for e in every if kinds is None or e["kind"] in kinds]
        counts: dict[str, int] = {}
        for event in found:
            counts[event["kind"]] = counts.get(event["kind"], 0) + 1
        return {
            "airport": airport,
            "service_date": service_date,
            "start": day.manifest.start,
            "end": day.manifest.end,
            "counts": dict(sorted(counts.items())),
            "events": found[:limit],
            "truncated": len(found) > limit,
        }

    def _fold_events(self, airport: str, manifest: Manifest) -> list[dict[str, Any]]:
        fold = EventFold(manifest.start, manifest.end)
        self.feed(fold, airport, manifest.start, manifest.end, fold.decision)
        return fold.result()

    def decision_quality(
        self,
        airport: str,
        start: int,
        end: int,
        filters: KpiFilters,
        high_regret_ms: int,
        limit: int,
    ) -> dict[str, Any]:
        """The dispatcher's decision quality over ``[start, end)`` (``decision_quality``;
        at most ``MAX_KPI_MS``): the window's decisions, and task events up to
        ``LOOKAHEAD_MS`` after it for their arrivals (within the published days)."""
        check_window(start, end, MAX_KPI_MS)
        manifest = self.chunks.day_at(airport, start)
        fleet = {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles}
        fold = DecisionQualityFold(start, end, fleet, filters, high_regret_ms, limit)
        loads = orjson.loads
        try:
            for tick in self.chunks.iter_ticks(airport, start, end + LOOKAHEAD_MS):
                for decision in tick.decisions:
                    fold.decision(loads(decision.json))
                for task in tick.tasks:
                    fold.task(task.id, task.status, task.t, task.vehicle_id)
        except NotPublished:
            pass  # the look-ahead ran past the last published day: arrivals end there
        return fold.result()

    def export_rows(
        self, kind: ExportKind, airport: str, start: int, end: int, query: ExportQuery
    ) -> Iterator[Row]:
        """The rows of an export of ``[start, end)`` (at most ``MAX_EXPORT_MS``), read
        lazily as the iterator is consumed. The window and its first day are checked now,
        so a bad request fails before any row is produced."""
        check_window(start, end, MAX_EXPORT_MS)
        first = self.chunks.day_at(airport, start)
        if kind == "turnarounds":
            return self._export_turnarounds(airport, first, end, query)
        return self._export_events(kind, airport, start, end, query)

    def _export_turnarounds(
        self, airport: str, first: Manifest, end: int, query: ExportQuery
    ) -> Iterator[Row]:
        start, manifest = first.start, first
        while True:
            found, _ = self.search_turnarounds(
                airport,
                manifest.service_date.isoformat(),
                query.flight,
                query.tasks.stand,
                start,
                end,
                limit=len(manifest.catalogue.flights) + 1,
            )
            for hit in found:
                yield turnaround_row(hit)
            if manifest.end >= end:
                return
            manifest = self.chunks.day_at(airport, manifest.end)

    def _export_events(
        self, kind: ExportKind, airport: str, start: int, end: int, query: ExportQuery
    ) -> Iterator[Row]:
        loads = orjson.loads
        for tick in self.chunks.iter_ticks(airport, start, end):
            if kind == "tasks":
                for task in tick.tasks:
                    if query.tasks.flight_id is None or task.flight_id == query.tasks.flight_id:
                        row = loads(task.json)
                        if query.tasks.matches(row):
                            yield row
            else:
                for note in tick.notifications:
                    row = loads(note.json)
                    if query.note_matches(row):
                        yield row

    def task_events(
        self,
        airport: str,
        start: int,
        end: int,
        query: TaskQuery,
        limit: int = DEFAULT_TASK_LIMIT,
        cursor: str | None = None,
    ) -> tuple[list[Row], str | None]:
        """Task events in ``[start, end)`` passing ``query``, oldest first, at most
        ``limit``; and the cursor of the next one if ``limit`` cut the list (pass it back
        as ``cursor`` with the same window and filters for the next page)."""
        check_window(start, end)
        scan_from, skip = (start, 0) if cursor is None else parse_cursor(cursor, start, end)
        found: list[Row] = []
        for tick in self.chunks.iter_ticks(airport, scan_from, end):
            for index, task in enumerate(tick.tasks):
                if index < skip and tick.t == scan_from:
                    continue
                if query.flight_id is not None and task.flight_id != query.flight_id:
                    continue
                row = orjson.loads(task.json)
                if query.matches(row):
                    if len(found) == limit:
                        return found, f"{tick.t}.{index}"
                    found.append(row)
        return found, None


def _names(leg: Row, wanted: str) -> bool:
    """Whether an upper-cased key is the leg's id, flight number or callsign."""
    return wanted in (leg["id"].upper(), leg["flight_number"].upper(), leg["callsign"].upper())


def resolve_leg(flights: Sequence[Row], key: str, movement: str | None = None) -> Row:
    """The leg ``key`` names: its leg id exactly; else the one leg whose flight number or
    callsign is ``key`` (any case), of ``movement`` if given. No leg: ``FlightNotFound``;
    several (a number flown twice a day, or shared by both legs): ``FlightAmbiguous``,
    naming them, so the caller adds ``movement`` or uses a leg id."""
    exact = [leg for leg in flights if leg["id"] == key]
    if exact:
        return exact[0]
    wanted = key.upper()
    found = [
        leg
        for leg in flights
        if _names(leg, wanted) and (movement is None or leg["movement"] == movement)
    ]
    if not found:
        raise FlightNotFound(f"no flight {key} that day")
    if len(found) > 1:
        legs = ", ".join(f"{leg['id']} ({leg['movement']})" for leg in found[:10])
        raise FlightAmbiguous(
            f"{key} names {len(found)} legs: {legs}; add movement= or ask by leg id"
        )
    return found[0]


def parse_cursor(cursor: str, start: int, end: int) -> tuple[int, int]:
    """A paging cursor ``{tick}.{index}``: the tick to resume at and how many of its task
    events the pages before took."""
    tick, _, index = cursor.partition(".")
    if not (tick.isdigit() and index.isdigit() and start <= int(tick) < end):
        raise BadCursor(f"cursor {cursor!r} is not a position in [{start}, {end})")
    return int(tick), int(index)
