"""The chunker against the parse floor and a peer, in the same run (#21 item 4).

Called by ``bench chunker`` on its synthetic day. Three rates over the day's position files:

- **floor**: gunzip (zlib, whole file) + msgspec decode of every position line into the
  fast path's struct (``chunker.batch.validate._Fix``), one line at a time — what reading
  the lines costs before any rule, row or chunk;
- **peer**: DuckDB, one thread, ``read_json`` of the same gzip files into a table with the
  fields typed (if duckdb is installed: a dev dependency);
- **ours**: the whole day chunked end to end (read from S3, validate, order, build, encode,
  write) by this process against moto's *server* (its own process), so the CPU time of
  this process is the chunker's alone; for the columnar path and for the row path it
  replaced. Target (issue #21): ours ≥ 1/3 of the floor per core.

Each pass best of ``repeat`` (floor, peer), alternating; ours once per path.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from bench.common import say
from chunker.batch.run import chunk_day
from chunker.batch.validate import _FIX_DECODER
from chunker.format.encoding import ChunkerConfig
from chunker.format.s3 import s3_client
from functions.local.stack import moto_server
from synthetic import GeneratedDay, write_day


def _floor(bodies: list[bytes]) -> int:
    decode = _FIX_DECODER.decode
    lines = 0
    for body in bodies:
        for line in zlib.decompress(body, 31).split(b"\n"):
            if line:
                decode(line)  # the synthetic day's lines are all valid
                lines += 1
    return lines


def _duckdb(folder: Path) -> int | None:
    try:
        import duckdb
    except ImportError:
        return None
    connection = duckdb.connect()
    connection.execute("SET threads = 1")
    columns = (
        "{'t': 'VARCHAR', 'vehicle_id': 'VARCHAR', 'lat': 'DOUBLE', 'lon': 'DOUBLE', "
        "'heading': 'DOUBLE', 'speed_kmh': 'DOUBLE', 'state': 'VARCHAR'}"
    )
    pattern = str(folder / "*.jsonl.gz")
    connection.execute(
        f"CREATE OR REPLACE TABLE fixes AS SELECT * FROM read_json('{pattern}', "
        f"format = 'newline_delimited', compression = 'gzip', columns = {columns}, "
        "ignore_errors = true)"
    )
    row = connection.execute("SELECT count(*) FROM fixes").fetchone()
    connection.close()
    return int(row[0]) if row else 0


def _ours(day: GeneratedDay, bucket: str, path: str) -> dict[str, Any]:
    s3 = s3_client()
    s3.create_bucket(Bucket=bucket)
    write_day(day, lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body))
    cpu, wall = time.process_time(), time.perf_counter()
    summary = chunk_day(
        s3,
        bucket,
        day.keys.airport,
        day.keys.service_date,
        ChunkerConfig(),
        position_path=path,  # type: ignore[arg-type]
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    positions = summary.counts["positions"].accepted
    return {
        "positions": positions,
        "chunk_bytes": summary.chunk_bytes,
        "cpu_s": round(cpu, 2),
        "wall_s": round(wall, 2),
        "positions_per_cpu_s": round(positions / cpu),
        "positions_per_wall_s": round(positions / wall),
    }


def floor_and_peer(day: GeneratedDay, repeat: int = 3) -> dict[str, Any]:
    """Rates of the floor, DuckDB and both chunker paths on ``day``, as ratios."""
    load_before = os.getloadavg()[0]
    position_keys = sorted(k for k in day.objects if "/positions" in k)
    bodies = [day.objects[k] for k in position_keys]
    best = {"floor": float("inf"), "duckdb": float("inf")}
    lines = rows = 0
    with tempfile.TemporaryDirectory() as folder:
        for i, key in enumerate(position_keys):
            (Path(folder) / f"{i:03d}.jsonl.gz").write_bytes(day.objects[key])
        for attempt in range(repeat):
            order = ["floor", "duckdb"] if attempt % 2 == 0 else ["duckdb", "floor"]
            for name in order:
                started = time.process_time()
                if name == "floor":
                    lines = _floor(bodies)
                else:
                    got = _duckdb(Path(folder))
                    if got is None:
                        best.pop("duckdb", None)
                        continue
                    rows = got
                best[name] = min(best[name], time.process_time() - started)
    say(f"floor {lines / best['floor']:,.0f} lines/s")
    environment = dict(os.environ)
    with moto_server() as server:
        os.environ.update(server.environment)
        try:
            columnar = _ours(day, "bench-floor-columnar", "columnar")
            say(f"columnar path: {columnar}")
            rows_path = _ours(day, "bench-floor-rows", "rows")
            say(f"row path: {rows_path}")
        finally:
            os.environ.clear()
            os.environ.update(environment)
    if columnar["chunk_bytes"] != rows_path["chunk_bytes"]:
        raise AssertionError("the columnar and row paths wrote different chunks")
    floor_rate = lines / best["floor"]
    result: dict[str, Any] = {
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "floor": {
            "what": "gunzip + msgspec decode (fast-path struct) of every position line, CPU",
            "lines": lines,
            "cpu_s": round(best["floor"], 3),
            "lines_per_s": round(floor_rate),
        },
        "columnar_path": columnar,
        "row_path": rows_path,
        "columnar_over_floor": round(columnar["positions_per_cpu_s"] / floor_rate, 3),
        "row_path_over_floor": round(rows_path["positions_per_cpu_s"] / floor_rate, 3),
        "columnar_over_row_path": round(
            columnar["positions_per_cpu_s"] / rows_path["positions_per_cpu_s"], 2
        ),
        "target_over_floor": round(1 / 3, 3),
    }
    if "duckdb" in best:
        duck_rate = rows / best["duckdb"]
        result["duckdb_one_thread"] = {
            "what": "read_json of the same gzip files into a typed table, threads=1, CPU",
            "rows": rows,
            "cpu_s": round(best["duckdb"], 3),
            "rows_per_s": round(duck_rate),
        }
        result["columnar_over_duckdb"] = round(columnar["positions_per_cpu_s"] / duck_rate, 3)
    return result
