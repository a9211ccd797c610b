"""``dispatch-replay demo``: a whole local replay stack in one command.

Starts the embedded moto server, creates the bucket and the sessions table, generates the
sample airport day, chunks it, and prints what it did. Every process it starts is stopped
on exit (Ctrl-C included).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from chunker.aws import s3_client
from chunker.chunk_format import ChunkerConfig
from chunker.cli import run_ranges_in_processes
from chunker.job import chunk_day
from chunker.synthetic import GeneratorSettings, generate_day, write_day
from functions.local_stack import moto_server

DEMO_BUCKET = "dispatch-replay-local"
DEMO_TABLE = "dispatch-replay-sessions"


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo`` on the top-level parser."""
    demo = sub.add_parser("demo", help="generate + chunk a sample day into a local moto server")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--vehicles", type=int, default=150)
    demo.add_argument("--flights", type=int, default=300)
    demo.add_argument("--date", default="2026-03-14", help="service date YYYY-MM-DD")
    demo.add_argument("--jobs", type=int, default=2, help="chunker processes")
    demo.add_argument("--moto-port", type=int, default=0, help="moto server port (0: any free)")


def run(args: argparse.Namespace, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the demo; returns the summary printed by the CLI."""
    report = say or (lambda text: print(text, file=sys.stderr, flush=True))
    settings = GeneratorSettings(
        service_date=dt.date.fromisoformat(args.date),
        seed=args.seed,
        vehicles=args.vehicles,
        flights=args.flights,
    )
    started = time.monotonic()
    with moto_server(args.moto_port or None) as server:
        os.environ.update(server.environment)  # child processes (chunk jobs) inherit it
        report(f"local AWS (moto server) at {server.endpoint}")
        s3 = s3_client()
        s3.create_bucket(Bucket=DEMO_BUCKET)

        mark = time.monotonic()
        day = generate_day(settings, report)
        write_day(day, lambda key, body: s3.put_object(Bucket=DEMO_BUCKET, Key=key, Body=body))
        generated_s = time.monotonic() - mark
        report(
            f"generated {day.turnarounds} turnarounds, {day.tasks} tasks, "
            f"{day.counts['positions']:,} GPS fixes in {generated_s:.1f} s"
        )

        mark = time.monotonic()
        jobs = max(1, args.jobs)
        summary = chunk_day(
            s3,
            DEMO_BUCKET,
            settings.airport,
            day.keys.service_date,
            ChunkerConfig(),
            jobs=jobs,
            run_ranges=run_ranges_in_processes(quiet=True) if jobs > 1 else None,
        )
        chunked_s = time.monotonic() - mark
        report(
            f"chunked into {summary.chunk_objects} chunks ({summary.chunk_bytes / 1e6:.1f} MB) "
            f"in {chunked_s:.1f} s with {jobs} process(es)"
        )
    return {
        "airport": settings.airport,
        "service_date": day.keys.service_date,
        "raw_records": day.counts,
        "turnarounds": day.turnarounds,
        "tasks": day.tasks,
        "chunks": summary.chunk_objects,
        "chunk_bytes": summary.chunk_bytes,
        "version": summary.version,
        "generate_seconds": round(generated_s, 2),
        "chunk_seconds": round(chunked_s, 2),
        "total_seconds": round(time.monotonic() - started, 2),
    }
