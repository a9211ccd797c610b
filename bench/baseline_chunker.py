"""The straightforward chunker the real one is measured against.

What a first version would do: validate every line with the pydantic model, sort, and for
every tick fold the records and encode the *full* state as JSON (the seed's sketch sends
full state every tick, so this is also what it would store). No fast path, no deltas.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import dataclass
from typing import Any

import zstandard
from pydantic import ValidationError

from chunker.format.day import ServiceDay, to_ms
from chunker.format.records import RECORD_MODELS

Row = dict[str, Any]


@dataclass
class BaselineResult:
    """Output of one baseline run over a window."""

    records: dict[str, int]
    full_state_bytes: int
    ticks: int
    zstd_bytes: int = 0  # the same frames, zstd level 3 per bucket (for a fair size ratio)
    zstd_seconds: float = 0.0  # time spent compressing: not part of the baseline's cost


def baseline_rows(objects: dict[str, tuple[str, bytes]]) -> dict[str, list[Row]]:
    """kind -> rows, pydantic per record (``objects``: key -> (kind, gzip bytes))."""
    rows: dict[str, list[Row]] = {kind: [] for kind in RECORD_MODELS}
    for _key, (kind, body) in sorted(objects.items()):
        model = RECORD_MODELS[kind]
        for line in gzip.decompress(body).splitlines():
            if not line.strip():
                continue
            try:
                record = model.model_validate_json(line)
            except ValidationError:
                continue
            row = record.model_dump(mode="json")
            row["t"] = to_ms(record.t)
            rows[kind].append(row)
    for kind_rows in rows.values():
        kind_rows.sort(key=lambda r: r["t"])
    return rows


def baseline_full_state_per_tick(
    rows: dict[str, list[Row]],
    day: ServiceDay,
    start: int,
    end: int,
    tick_ms: int,
    bucket_ms: int | None = None,
) -> BaselineResult:
    """Fold tick by tick over ``[start, end)`` and encode the full state at every tick.

    With ``bucket_ms``, also measure the frames zstd-compressed per bucket (timed apart).
    """
    compressor = zstandard.ZstdCompressor(level=3)
    bucket: list[bytes] = []
    zstd_bytes = 0
    zstd_seconds = 0.0
    id_field = {"positions": "vehicle_id", "tasks": "task_id", "flights": "flight_id"}
    state: dict[str, dict[str, Row]] = {k: {} for k in id_field}
    notifications: list[Row] = []
    cursors = dict.fromkeys(rows, 0)
    total = 0
    ticks = 0
    for tick in range(start - (start - day.start_ms) % tick_ms, end, tick_ms):
        horizon = tick + tick_ms
        for kind, kind_rows in rows.items():
            if kind not in id_field and kind != "notifications":
                continue  # a kind the seed's frame does not carry (decisions)
            i = cursors[kind]
            while i < len(kind_rows) and kind_rows[i]["t"] < horizon:
                row = kind_rows[i]
                if kind == "notifications":
                    notifications.append(row)
                else:
                    state[kind][row[id_field[kind]]] = row
                i += 1
            cursors[kind] = i
        if tick < start:
            continue
        frame = {
            "t": tick,
            "vehicles": list(state["positions"].values()),
            "tasks": list(state["tasks"].values()),
            "flights": list(state["flights"].values()),
            "notifications": notifications[-20:],
        }
        encoded = json.dumps(frame).encode()
        total += len(encoded)
        ticks += 1
        if bucket_ms is not None:
            bucket.append(encoded)
            if (tick + tick_ms - day.start_ms) % bucket_ms == 0:
                started = time.perf_counter()
                zstd_bytes += len(compressor.compress(b"\n".join(bucket)))
                zstd_seconds += time.perf_counter() - started
                bucket = []
    return BaselineResult(
        {k: len(v) for k, v in rows.items()}, total, ticks, zstd_bytes, zstd_seconds
    )
