"""Building one hour of chunks from ordered rows and the state at the start of the hour.

Pure: no I/O. ``build_hour`` walks the hour bucket by bucket and tick by tick, snapshots a
keyframe at each bucket start and records, per tick, what changed (see
``chunker.format.encoding``). It mutates and returns the state, so consecutive hours can be
built by carrying the state forward; an independent hour job starts from the state folded
from earlier raw files instead (``chunker.batch.run``) and produces the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chunker.format.day import ServiceDay
from chunker.format.encoding import CHUNK_FORMAT, FORMAT_VERSION, ChunkerConfig, Histogram
from chunker.format.rows import Row
from chunker.format.state import EVENT_KINDS, ReplayState, annotate_decision

MOVING_KMH = 3.0

# Raw record kind -> the state/tick kind its rows update.
STATE_KIND = {
    "positions": "vehicles",
    "tasks": "tasks",
    "flights": "flights",
    "notifications": "notifications",
    "decisions": "decisions",
    "aircraft": "aircraft",
}


@dataclass(slots=True)
class BuiltChunk:
    """A chunk document and the counts of delta rows it holds by kind."""

    start: int
    end: int
    document: dict[str, Any]
    counts: dict[str, int]


@dataclass(slots=True)
class BuiltHour:
    """Chunks of one hour and the timeline bins covering it."""

    chunks: list[BuiltChunk] = field(default_factory=list)
    histogram: Histogram | None = None


def build_hour(
    airport: str,
    day: ServiceDay,
    hour: int,
    config: ChunkerConfig,
    state: ReplayState,
    rows: dict[str, list[Row]],
) -> BuiltHour:
    """Chunks for hour ``hour`` of ``day``.

    ``state`` is the state just before the hour (every record with ``t`` before it);
    ``rows`` maps raw kind -> the hour's accepted rows, sorted by ``t`` (ties in source
    order). On return ``state`` is the state at the end of the hour.
    """
    hour_start, hour_end = day.hour_window(hour)
    tick_ms = config.tick_ms
    bin_ms = config.histogram_bin_ms
    bins = (hour_end - hour_start) // bin_ms
    histogram = Histogram(
        start=hour_start,
        bin_ms=bin_ms,
        task_events=[0] * bins,
        flight_events=[0] * bins,
        notifications=[0] * bins,
        moving_vehicles=[0] * bins,
    )
    moving: list[set[str]] = [set() for _ in range(bins)]
    # Per state kind: the rows and a cursor into them.
    streams = [(STATE_KIND[kind], rows.get(kind, [])) for kind in STATE_KIND]
    cursors = [0] * len(streams)
    for kind_rows in rows.values():
        # Rows are sorted, so the ends bound them all.
        if kind_rows and not hour_start <= kind_rows[0]["t"] <= kind_rows[-1]["t"] < hour_end:
            raise ValueError(f"rows outside hour {hour} of {day.date_text} or not sorted")

    built = BuiltHour(histogram=histogram)
    for bucket_start in range(hour_start, hour_end, config.bucket_ms):
        bucket_end = bucket_start + config.bucket_ms
        state.expire_tasks(bucket_start, config.task_retention_ms)
        keyframe = state.keyframe()
        ticks: list[dict[str, Any]] = []
        counts = dict.fromkeys(EVENT_KINDS, 0)
        bin_index = (bucket_start - hour_start) // bin_ms
        for tick_start in range(bucket_start, bucket_end, tick_ms):
            tick_end = tick_start + tick_ms
            tick: dict[str, Any] | None = None
            fixes: dict[str, Row] = {}  # the last fix per vehicle in the tick
            aircraft: dict[str, Row] = {}  # the last fix per aircraft in the tick
            for s, (kind, kind_rows) in enumerate(streams):
                i = cursors[s]
                if i >= len(kind_rows) or kind_rows[i]["t"] >= tick_end:
                    continue
                j = i
                while j < len(kind_rows) and kind_rows[j]["t"] < tick_end:
                    j += 1
                cursors[s] = j
                if tick is None:
                    tick = {"t": tick_start}
                if kind == "vehicles":
                    # Only the last fix per vehicle in the tick matters.
                    for row in kind_rows[i:j]:
                        fixes[row["id"]] = row
                        if row["speed_kmh"] > MOVING_KMH:
                            moving[bin_index].add(row["id"])
                    tick[kind] = list(fixes.values())
                    counts[kind] += len(fixes)
                elif kind == "aircraft":
                    for row in kind_rows[i:j]:
                        aircraft[row["id"]] = row
                    tick[kind] = list(aircraft.values())
                    counts[kind] += len(aircraft)
                else:
                    events = kind_rows[i:j]
                    tick[kind] = events
                    counts[kind] += len(events)
            if tick is not None:
                if "decisions" in tick:
                    tick["decisions"] = _annotated(state, tick["decisions"], tick.get("tasks", ()))
                # The fold readers apply to this tick (chunker.format.state.StateFold), and
                # the derived rows it changed (chunker.format.derived), stored with it.
                derived = state.fold_tick(
                    tick_start,
                    fixes,
                    tick.get("tasks", ()),
                    tick.get("flights", ()),
                    tick.get("notifications", ()),
                    tick.get("decisions", ()),
                    aircraft,
                )
                for kind, changed in derived.items():
                    if changed:
                        tick[kind] = changed
                ticks.append(tick)
        histogram.task_events[bin_index] += counts["tasks"]
        histogram.flight_events[bin_index] += counts["flights"]
        histogram.notifications[bin_index] += counts["notifications"]
        document = {
            "format": CHUNK_FORMAT,
            "format_version": FORMAT_VERSION,
            "airport": airport,
            "service_date": day.date_text,
            "start": bucket_start,
            "end": bucket_end,
            "tick_ms": tick_ms,
            "task_retention_ms": config.task_retention_ms,
            "keyframe": keyframe,
            "ticks": ticks,
        }
        built.chunks.append(BuiltChunk(bucket_start, bucket_end, document, counts))
    histogram.moving_vehicles = [len(vehicles) for vehicles in moving]
    return built


def _annotated(state: ReplayState, decisions: list[Row], tasks: list[Row]) -> list[Row]:
    """A tick's decisions with their task as of the end of the tick: its last row in the
    tick, else the latest one before (``annotate_decision``)."""
    in_tick = {task["id"]: task for task in tasks}
    known = state.derivation.latest_task
    return [annotate_decision(d, in_tick.get(d["id"]) or known.get(d["id"])) for d in decisions]
