"""The day's navigable events (``GET …/days/{date}/events``) on the demo day: what the first
answer costs (a fresh reader and an empty events cache: every chunk with a task, flight or
notification delta read from S3 and prepared) against the floor of walking *every* tick of
the day through the one reader (what the fold would pay without skipping quiet chunks),
and what a repeated answer costs (the process keeps the folded list per version).

The synthetic day as ``make demo`` serves it (150 vehicles, 300 flights, the chunker's
default configuration), ``--hours`` hours from ``--start-hour``, in in-process moto.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.bench_history import best
from bench.common import demo_day_in_moto, say, write_result

BUCKET = "bench-events"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start-hour", type=int, default=7, help="first local hour recorded")
    parser.add_argument("--hours", type=int, default=4, help="hours recorded")
    parser.add_argument("--repeat", type=int, default=3, help="timing passes (best kept)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from chunker.format.read import ChunkReader
    from functions.app.history import queries

    with demo_day_in_moto(BUCKET, args.start_hour, args.hours) as (s3, airport, date):

        def cold() -> dict[str, Any]:
            queries._events_cache.clear()  # the process's cache of folded days
            return queries.History(ChunkReader(s3, BUCKET)).events(airport, date)

        answer = cold()
        manifest = queries.History(ChunkReader(s3, BUCKET)).manifest(airport, date)
        warm = queries.History(ChunkReader(s3, BUCKET))
        warm.events(airport, date)
        active = sum(1 for c in manifest.chunks if c.tasks + c.flights + c.notifications)
        results: dict[str, Any] = {
            "hours_recorded": args.hours,
            "chunks": len(manifest.chunks),
            "chunks_read": active,
            "events": answer["counts"],
            "cold_ms": best(args.repeat, cold),
            "warm_ms": best(args.repeat, lambda: warm.events(airport, date)),
            "floor_whole_day_cold_ms": best(
                args.repeat,
                lambda: sum(
                    1
                    for _ in ChunkReader(s3, BUCKET).iter_ticks(
                        airport, manifest.start, manifest.end
                    )
                ),
            ),
        }
        results["cold_over_whole_day_floor"] = round(
            results["cold_ms"] / results["floor_whole_day_cold_ms"], 3
        )
        say(f"events {results}")
    write_result("events", results)
    return results
