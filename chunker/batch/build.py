"""Building one hour of chunks from ordered rows and the state at the start of the hour.

Pure: no I/O. ``build_hour`` walks the hour bucket by bucket and tick by tick, snapshots a
keyframe at each bucket start and records, per tick, what changed (see
``chunker.format.encoding``). It mutates and returns the state, so consecutive hours can be
built by carrying the state forward; an independent hour job starts from the state folded
from earlier raw files instead (``chunker.batch.run``) and produces the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from chunker.batch.aircraft import AircraftExpiry
from chunker.batch.columnar import PositionColumns
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
    histogram = _empty_histogram(hour_start, hour_end, bin_ms)
    moving: list[set[str]] = [set() for _ in histogram.moving_vehicles]
    # Per state kind: the rows and a cursor into them.
    streams = [(STATE_KIND[kind], rows.get(kind, [])) for kind in STATE_KIND]
    cursors = [0] * len(streams)
    _check_sorted(day, hour, rows.values())

    built = BuiltHour(histogram=histogram)
    expiry = AircraftExpiry(state.aircraft, state.flights, config.aircraft_expiry_ms)
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
            for s, (kind, kind_rows) in enumerate(streams):
                i, j = cursors[s], _end_of_tick(kind_rows, cursors[s], tick_end)
                if i == j:
                    continue
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
                else:
                    events = _tick_rows(kind, kind_rows[i:j])
                    tick[kind] = events
                    counts[kind] += len(events)
            tick = _with_aircraft_leaving(expiry, state, tick, tick_start, counts)
            if tick is not None:
                _fold_events(state, tick, tick_start, fixes)
                ticks.append(tick)
        built.chunks.append(
            _chunk(airport, day, config, histogram, bucket_start, keyframe, ticks, counts)
        )
    histogram.moving_vehicles = [len(vehicles) for vehicles in moving]
    return built


def _annotated(state: ReplayState, decisions: list[Row], tasks: list[Row]) -> list[Row]:
    """A tick's decisions with their task as of the end of the tick: its last row in the
    tick, else the latest one before (``annotate_decision``)."""
    in_tick = {task["id"]: task for task in tasks}
    known = state.derivation.latest_task
    return [annotate_decision(d, in_tick.get(d["id"]) or known.get(d["id"])) for d in decisions]


def _empty_histogram(hour_start: int, hour_end: int, bin_ms: int) -> Histogram:
    bins = (hour_end - hour_start) // bin_ms
    return Histogram(
        start=hour_start,
        bin_ms=bin_ms,
        task_events=[0] * bins,
        flight_events=[0] * bins,
        notifications=[0] * bins,
        moving_vehicles=[0] * bins,
    )


def _check_sorted(day: ServiceDay, hour: int, streams: Iterable[Sequence[Row]]) -> None:
    hour_start, hour_end = day.hour_window(hour)
    for kind_rows in streams:
        # Rows are sorted, so the ends bound them all.
        if kind_rows and not hour_start <= kind_rows[0]["t"] <= kind_rows[-1]["t"] < hour_end:
            raise ValueError(f"rows outside hour {hour} of {day.date_text} or not sorted")


def _chunk(
    airport: str,
    day: ServiceDay,
    config: ChunkerConfig,
    histogram: Histogram,
    bucket_start: int,
    keyframe: dict[str, Any],
    ticks: list[dict[str, Any]],
    counts: dict[str, int],
) -> BuiltChunk:
    """The chunk of the bucket starting at ``bucket_start``; its event counts go into the
    hour's histogram."""
    bin_index = (bucket_start - histogram.start) // histogram.bin_ms
    histogram.task_events[bin_index] += counts["tasks"]
    histogram.flight_events[bin_index] += counts["flights"]
    histogram.notifications[bin_index] += counts["notifications"]
    bucket_end = bucket_start + config.bucket_ms
    document = {
        "format": CHUNK_FORMAT,
        "format_version": FORMAT_VERSION,
        "airport": airport,
        "service_date": day.date_text,
        "start": bucket_start,
        "end": bucket_end,
        "tick_ms": config.tick_ms,
        "task_retention_ms": config.task_retention_ms,
        "keyframe": keyframe,
        "ticks": ticks,
    }
    return BuiltChunk(bucket_start, bucket_end, document, counts)


def _end_of_tick(rows: Sequence[Row], start: int, tick_end: int) -> int:
    """The index after the rows from ``start`` with ``t`` before ``tick_end`` (sorted rows)."""
    end = start
    while end < len(rows) and rows[end]["t"] < tick_end:
        end += 1
    return end


def _tick_rows(kind: str, rows: Sequence[Row]) -> Sequence[Row]:
    """What a tick keeps of a kind's rows in it (both paths): the last fix per aircraft
    (in the order the aircraft first appear); every row of a discrete kind."""
    if kind == "aircraft":
        return list({row["id"]: row for row in rows}.values())
    return rows


def _with_aircraft_leaving(
    expiry: AircraftExpiry,
    state: ReplayState,
    tick: dict[str, Any] | None,
    tick_start: int,
    counts: dict[str, int],
) -> dict[str, Any] | None:
    """The tick with the removal rows of the aircraft that leave the state in it
    (``chunker.batch.aircraft``) after its fixes (both paths)."""
    rows = tick or {}
    gone = expiry.leaving(
        tick_start, state.aircraft, rows.get("aircraft", ()), rows.get("flights", ())
    )
    if not gone:
        return tick
    if tick is None:
        tick = {"t": tick_start}
    tick["aircraft"] = [*tick.get("aircraft", ()), *gone]
    counts["aircraft"] += len(gone)
    return tick


def _fold_events(
    state: ReplayState, tick: dict[str, Any], tick_start: int, fixes: Mapping[str, Row]
) -> None:
    """Fold a tick's rows into the state and add the derived rows it changed to the tick:
    the fold readers apply to this tick (chunker.format.state.StateFold), and the derived
    rows (chunker.format.derived), stored with it. Its decisions are stored annotated with
    their task (``_annotated``); its aircraft are the last fix per aircraft."""
    if "decisions" in tick:
        tick["decisions"] = _annotated(state, tick["decisions"], tick.get("tasks", ()))
    derived = state.fold_tick(
        tick_start,
        fixes,
        tick.get("tasks", ()),
        tick.get("flights", ()),
        tick.get("notifications", ()),
        tick.get("decisions", ()),
        {row["id"]: row for row in tick.get("aircraft", ())},
    )
    for kind, changed in derived.items():
        if changed:
            tick[kind] = changed


def build_hour_columns(
    airport: str,
    day: ServiceDay,
    hour: int,
    config: ChunkerConfig,
    state: ReplayState,
    rows: dict[str, list[Row]],
    positions: PositionColumns,
) -> BuiltHour:
    """``build_hour`` with the hour's positions as columns (``chunker.batch.columnar``),
    sorted by ``t`` (ties in source order); ``rows`` holds the other kinds. The same
    chunks, byte for byte once encoded.

    The fixes are bucketed with array operations: each tick's last fix per vehicle (in
    the order the vehicles first appear in the tick), the keyframes' latest fix per
    vehicle, the moving vehicles per histogram bin. Every fix a chunk holds is encoded
    once (``PositionColumns.encoded``) and ticks and keyframes splice those bytes.
    """
    hour_start, hour_end = day.hour_window(hour)
    tick_ms, bucket_ms = config.tick_ms, config.bucket_ms
    _check_sorted(day, hour, (kind_rows for kind, kind_rows in rows.items() if kind != "positions"))
    t = positions.t
    if len(t) and not (hour_start <= t[0] <= t[-1] < hour_end and bool(np.all(t[1:] >= t[:-1]))):
        raise ValueError(f"positions outside hour {hour} of {day.date_text} or not sorted")
    histogram = _empty_histogram(hour_start, hour_end, config.histogram_bin_ms)
    fleet = positions.fleet
    nv = max(1, len(fleet.ids))
    # The last fix per (tick, vehicle), in order of the vehicle's first fix in the tick.
    key = (t - hour_start) // tick_ms * nv + positions.vehicle
    if len(key):
        unique, first = np.unique(key, return_index=True)
        _, last_reversed = np.unique(key[::-1], return_index=True)
        order = np.argsort(first, kind="stable")
        selected = (len(key) - 1 - last_reversed)[order]
        selected_tick = unique[order] // nv
    else:
        selected = selected_tick = np.zeros(0, dtype=np.int64)
    fixes = positions.take(selected)
    encoded = fixes.encoded()
    ticks_per_hour = (hour_end - hour_start) // tick_ms
    bounds = np.searchsorted(selected_tick, np.arange(ticks_per_hour + 1)).tolist()
    # Vehicles seen moving per bin (any fix in the bin, not only the ticks' last ones).
    moving = positions.speed > MOVING_KMH
    bins = (t[moving] - hour_start) // config.histogram_bin_ms
    moving_pairs = np.unique(bins * nv + positions.vehicle[moving]) // nv
    histogram.moving_vehicles = np.bincount(
        moving_pairs, minlength=len(histogram.moving_vehicles)
    ).tolist()

    prior = {vehicle_id: orjson.dumps(row) for vehicle_id, row in state.vehicles.items()}
    # Each keyframe row's JSON, encoded once for all the hour's keyframes: rows are never
    # mutated (chunker.format.rows), so a row object is its JSON (kept alive with it).
    row_json: dict[int, tuple[Row, bytes]] = {}
    latest = np.full(len(fleet.ids), -1, dtype=np.int64)  # vehicle code -> index in fixes
    streams = [(STATE_KIND[kind], rows.get(kind, [])) for kind in STATE_KIND if kind != "positions"]
    cursors = [0] * len(streams)
    built = BuiltHour(histogram=histogram)
    expiry = AircraftExpiry(state.aircraft, state.flights, config.aircraft_expiry_ms)
    tick_index = 0
    for bucket_start in range(hour_start, hour_end, bucket_ms):
        state.expire_tasks(bucket_start, config.task_retention_ms)
        keyframe: dict[str, Any] = {
            kind: orjson.Fragment(_encoded_list(kind_rows, row_json))
            for kind, kind_rows in state.keyframe().items()
        }
        keyframe["vehicles"] = orjson.Fragment(
            _keyframe_vehicles(fleet.ids, latest, encoded, prior)
        )
        ticks: list[dict[str, Any]] = []
        counts = dict.fromkeys(EVENT_KINDS, 0)
        bucket_first = bounds[tick_index]
        for tick_start in range(bucket_start, bucket_start + bucket_ms, tick_ms):
            tick: dict[str, Any] | None = None
            a, b = bounds[tick_index], bounds[tick_index + 1]
            tick_index += 1
            if b > a:
                tick = {
                    "t": tick_start,
                    "vehicles": orjson.Fragment(b"[" + b",".join(encoded[a:b]) + b"]"),
                }
                counts["vehicles"] += b - a
            tick_end = tick_start + tick_ms
            for s, (kind, kind_rows) in enumerate(streams):
                i, j = cursors[s], _end_of_tick(kind_rows, cursors[s], tick_end)
                if i == j:
                    continue
                cursors[s] = j
                if tick is None:
                    tick = {"t": tick_start}
                events = _tick_rows(kind, kind_rows[i:j])
                tick[kind] = events
                counts[kind] += len(events)
            tick = _with_aircraft_leaving(expiry, state, tick, tick_start, counts)
            if tick is not None:
                if len(tick) > 2 or "vehicles" not in tick:  # events: fold (fixes: see end)
                    _fold_events(state, tick, tick_start, {})
                ticks.append(tick)
        in_bucket = np.arange(bucket_first, bounds[tick_index])
        if len(in_bucket):
            codes = fixes.vehicle[in_bucket][::-1]
            seen, last = np.unique(codes, return_index=True)
            latest[seen] = in_bucket[::-1][last]
        built.chunks.append(
            _chunk(airport, day, config, histogram, bucket_start, keyframe, ticks, counts)
        )
    for code in np.flatnonzero(latest >= 0).tolist():
        state.vehicles[fleet.ids[code]] = fixes.row(int(latest[code]))
    return built


def _keyframe_vehicles(
    ids: Sequence[str], latest: npt.NDArray[np.int64], encoded: list[bytes], prior: dict[str, bytes]
) -> bytes:
    """The keyframe's vehicles as JSON: the latest fix of every vehicle, by id."""
    rows = dict(prior)
    for code in np.flatnonzero(latest >= 0).tolist():
        rows[ids[code]] = encoded[latest[code]]
    return b"[" + b",".join(rows[k] for k in sorted(rows)) + b"]"


def _encoded_list(rows: Iterable[Row], cache: dict[int, tuple[Row, bytes]]) -> bytes:
    """``orjson.dumps(list(rows))``, each row encoded at most once across calls."""
    rows = list(rows)
    parts = [known[1] if known else b"" for known in map(cache.get, map(id, rows))]
    for i, part in enumerate(parts):
        if not part:
            encoded = orjson.dumps(rows[i])
            cache[id(rows[i])] = (rows[i], encoded)
            parts[i] = encoded
    return b"[" + b",".join(parts) + b"]"
