"""Which library decodes position lines into columns: numpy after msgspec, pyarrow or polars.

    POLARS_MAX_THREADS=1 python -m bench.columnar_decoders

A one-off measurement behind the columnar path's choice (docs/performance.md, "Columnar
positions"), on the busiest hour's position file of the default synthetic day: CPU per
line, one thread each, best of 5, from the inflated text to typed columns. pyarrow and
polars are not dependencies: install them in the virtualenv to run their rows
(``pip install pyarrow polars``); a missing one is reported as such.
"""

from __future__ import annotations

import io
import json
import os
import time
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from chunker.batch.validate import _Fix
from synthetic import GeneratorSettings, generate_day

os.environ.setdefault("POLARS_MAX_THREADS", "1")


def _best(work: Callable[[], Any], repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    day = generate_day(GeneratorSettings())
    key = max((k for k in day.objects if "/positions/" in k), key=lambda k: len(day.objects[k]))
    text = zlib.decompress(day.objects[key], 31)
    lines = [line for line in text.split(b"\n") if line]
    n = len(lines)
    per_line = msgspec.json.Decoder(_Fix).decode
    block = msgspec.json.Decoder(list[_Fix]).decode

    def msgspec_columns() -> None:
        fixes = block(b"[" + b",".join(lines) + b"]")
        for name in ("lat", "lon", "heading", "speed_kmh"):
            np.array([getattr(f, name) for f in fixes])
        [f.t for f in fixes]
        [f.vehicle_id for f in fixes]
        [f.state for f in fixes]

    rows: dict[str, Any] = {
        "lines": n,
        "file": key,
        "msgspec_per_line_struct_ns": _best(lambda: [per_line(x) for x in lines]) / n * 1e9,
        "msgspec_block_then_numpy_columns_ns": _best(msgspec_columns) / n * 1e9,
    }
    try:
        import pyarrow as pa
        import pyarrow.json as pa_json

        schema = pa.schema(
            [("t", pa.string()), ("vehicle_id", pa.string()), ("lat", pa.float64()),
             ("lon", pa.float64()), ("heading", pa.float64()), ("speed_kmh", pa.float64()),
             ("state", pa.string())]
        )  # fmt: skip
        options = pa_json.ParseOptions(explicit_schema=schema)
        read = pa_json.ReadOptions(use_threads=False, block_size=1 << 24)
        rows["pyarrow_read_json_ns"] = (
            _best(lambda: pa_json.read_json(io.BytesIO(text), read, options)) / n * 1e9
        )
        rows["pyarrow_version"] = pa.__version__
    except ImportError:
        rows["pyarrow_read_json_ns"] = "not installed"
    try:
        import polars as pl

        schema_pl = {
            "t": pl.String, "vehicle_id": pl.String, "lat": pl.Float64, "lon": pl.Float64,
            "heading": pl.Float64, "speed_kmh": pl.Float64, "state": pl.String,
        }  # fmt: skip
        rows["polars_read_ndjson_ns"] = (
            _best(lambda: pl.read_ndjson(io.BytesIO(text), schema=schema_pl)) / n * 1e9
        )
        rows["polars_version"] = pl.__version__
        rows["polars_threads"] = pl.thread_pool_size()
    except ImportError:
        rows["polars_read_ndjson_ns"] = "not installed"
    rows["load_average_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps({k: round(v) if isinstance(v, float) else v for k, v in rows.items()}))


if __name__ == "__main__":
    main()
