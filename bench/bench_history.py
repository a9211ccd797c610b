"""The analyst's history queries on the demo day: what one turnaround, a KPI window and an
export cost, against the floor of reading the same ticks through the one reader.

The synthetic day as ``make demo`` serves it (150 vehicles, 300 flights, the demo's
chunker configuration), ``--hours`` hours from ``--start-hour``, chunked into in-process
moto. Per query, best of ``--repeat``: *cold* (a fresh reader: every chunk read from S3
and prepared), *warm* (the chunks in the reader's cache), and the *floor*: a fresh reader
walking the same window's ticks and doing nothing with them (``ChunkReader.iter_ticks``),
which every query over that window pays. The query's own work is the difference.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from bench.common import demo_day_in_moto, say, write_result

BUCKET = "bench-history"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start-hour", type=int, default=7, help="first local hour recorded")
    parser.add_argument("--hours", type=int, default=4, help="hours recorded")
    parser.add_argument("--repeat", type=int, default=3, help="timing passes (best kept)")
    parser.add_argument("--turnarounds", type=int, default=8, help="turnarounds timed")


def best(repeat: int, call: Callable[[], Any]) -> float:
    """Best wall time of ``call`` in milliseconds."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return min(times)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from chunker.format.read import ChunkReader
    from functions.app.history.kpis import KpiFilters
    from functions.app.history.queries import ExportQuery, History

    with demo_day_in_moto(BUCKET, args.start_hour, args.hours) as (s3, airport, date):

        def fresh() -> History:
            return History(ChunkReader(s3, BUCKET))

        manifest = fresh().manifest(airport, date)
        hits, _ = fresh().search_turnarounds(airport, date, limit=500)
        turns = [h for h in hits if h["departure"] and h["arrival"]][: args.turnarounds]
        warm = fresh()
        results: dict[str, Any] = {"turnarounds": []}
        for hit in turns:
            document = warm.turnaround(airport, date, hit["id"])
            start, end = document["window"]["start"], document["window"]["end"]
            row = {
                "id": hit["id"],
                "window_h": round((end - start) / 3_600_000, 2),
                "cold_ms": best(
                    args.repeat, lambda i=hit["id"]: fresh().turnaround(airport, date, i)
                ),
                "warm_ms": best(args.repeat, lambda i=hit["id"]: warm.turnaround(airport, date, i)),
                "floor_cold_ms": best(
                    args.repeat,
                    lambda s=start, e=end: sum(1 for _ in fresh().chunks.iter_ticks(airport, s, e)),
                ),
            }
            row["cold_over_floor"] = round(row["cold_ms"] / row["floor_cold_ms"], 3)
            results["turnarounds"].append(row)
            say(f"turnaround {row}")
        start = manifest.start + args.start_hour * 3_600_000
        end = start + args.hours * 3_600_000
        history = fresh()
        results["kpis"] = {
            "window_h": args.hours,
            "cold_ms": best(args.repeat, lambda: fresh().kpis(airport, start, end, KpiFilters())),
            "warm_ms": best(args.repeat, lambda: history.kpis(airport, start, end, KpiFilters())),
            "floor_cold_ms": best(
                args.repeat, lambda: sum(1 for _ in fresh().chunks.iter_ticks(airport, start, end))
            ),
        }
        results["export_tasks"] = {
            "window_h": args.hours,
            "cold_ms": best(
                args.repeat,
                lambda: sum(
                    1 for _ in fresh().export_rows("tasks", airport, start, end, ExportQuery())
                ),
            ),
        }
        results["search_ms"] = best(args.repeat, lambda: history.search_turnarounds(airport, date))
        say(f"kpis {results['kpis']} export {results['export_tasks']}")
    write_result("history", results)
    return results
