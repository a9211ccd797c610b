"""History queries over published chunks (no HTTP): what the dashboard and analysts ask.

Everything is read from the same chunks the stream uses, through the reader's shared,
byte-bounded cache. Queries that scan deltas are bounded in replay time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from chunker.format.encoding import Manifest
from chunker.format.read import ChunkReader
from chunker.format.rows import Row
from chunker.format.state import ReplayState

MAX_SCAN_MS = 6 * 3_600_000
FLIGHT_LEAD_MS = 3 * 3_600_000  # tasks start this long before a flight's times at most
FLIGHT_TAIL_MS = 2 * 3_600_000


class HistoryError(ValueError):
    """A query that cannot be answered as asked (window reversed or too long)."""


class FlightNotFound(LookupError):
    """No such flight leg in the day's catalogue."""


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
        _, state = self.state_at(airport, start)
        track: list[Row] = []
        known = state.vehicles.get(vehicle_id)
        if known is not None:
            track.append(known)
        for tick in self.chunks.iter_ticks(airport, start + 1, end):
            for candidate, encoded in tick.vehicles:
                if candidate == vehicle_id:
                    track.append(orjson.loads(encoded))
        return track

    def flight(self, airport: str, service_date: str, flight_id: str) -> dict[str, Any]:
        """A flight leg (latest row of the day) with every event of its tasks, by task."""
        manifest = self.manifest(airport, service_date)
        flight = next((f for f in manifest.catalogue.flights if f["id"] == flight_id), None)
        if flight is None:
            raise FlightNotFound(f"no flight {flight_id} on {airport} {service_date}")
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

    def task_events(
        self, airport: str, start: int, end: int, query: TaskQuery, limit: int
    ) -> tuple[list[Row], bool]:
        """Task events in ``[start, end)`` passing ``query``, oldest first; and whether
        ``limit`` cut the list."""
        check_window(start, end)
        found: list[Row] = []
        for tick in self.chunks.iter_ticks(airport, start, end):
            for task in tick.tasks:
                if query.flight_id is not None and task.flight_id != query.flight_id:
                    continue
                row = orjson.loads(task.json)
                if query.matches(row):
                    if len(found) == limit:
                        return found, True
                    found.append(row)
        return found, False
