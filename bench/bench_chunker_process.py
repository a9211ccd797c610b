"""The chunker as the job runs it: its own process against moto's server mode.

Measures what the in-process benchmark cannot: the chunker process's CPU time per
position (S3 server work happens in the moto process, as it would in AWS) and its peak
RSS, for an independent hour job (the busiest hour, state folded from earlier files) and
for a whole day in one process. Targets: >= 250,000 positions per CPU-second; hour job
<= 512 MB RSS; whole day <= 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from bench.common import say, write_result
from chunker.format.s3 import s3_client
from functions.local.stack import moto_server
from synthetic import GeneratorSettings, generate_day, write_day

BUCKET = "bench-replay-process"

# Runs in the child: chunk the given hours (all when empty), report CPU, wall and peak RSS.
CHILD = """
import json, resource, sys, time
from chunker.format.s3 import s3_client
from chunker.format.encoding import ChunkerConfig
from chunker.batch.run import DayJob
bucket, airport, date, hours = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
wall, cpu = time.perf_counter(), time.process_time()
job = DayJob.open(s3_client(), bucket, airport, date, ChunkerConfig())
parts = []
job.run_hours(hours or range(job.day.hours), lambda outcome: parts.append(outcome.part))
print(json.dumps({
    "positions": sum(p.counts["positions"].accepted for p in parts),
    "records": sum(c.accepted for p in parts for c in p.counts.values()),
    "cpu_s": time.process_time() - cpu,
    "wall_s": time.perf_counter() - wall,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)
    parser.add_argument("--hour", type=int, default=8, help="the hour job to measure")


def _child(environment: dict[str, str], date: str, hours: list[int]) -> dict[str, Any]:
    env = {**os.environ, **environment}
    argv = [sys.executable, "-c", CHILD, BUCKET, "XLHI", date, json.dumps(hours)]
    done = subprocess.run(argv, env=env, capture_output=True, check=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout)
    result["positions_per_cpu_s"] = round(result["positions"] / result["cpu_s"])
    result["positions_per_wall_s"] = round(result["positions"] / result["wall_s"])
    for key in ("cpu_s", "wall_s", "peak_rss_mb"):
        result[key] = round(result[key], 2)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = GeneratorSettings(vehicles=args.vehicles, flights=args.flights)
    day = generate_day(settings)
    date = day.keys.service_date
    with moto_server() as server:
        os.environ.update(server.environment)
        s3 = s3_client()
        s3.create_bucket(Bucket=BUCKET)
        write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
        say(f"hour job {args.hour:02d} ...")
        hour_job = _child(server.environment, date, [args.hour])
        say(f"hour job: {hour_job}")
        say("whole day in one process ...")
        whole_day = _child(server.environment, date, [])
        say(f"whole day: {whole_day}")
    result = {
        "settings": {"vehicles": args.vehicles, "flights": args.flights, "hour": args.hour},
        "records": day.counts,
        "hour_job": hour_job,
        "whole_day": whole_day,
        "targets": {
            "positions_per_cpu_s": 250_000,
            "hour_job_peak_rss_mb": 512,
            "whole_day_peak_rss_mb": 2048,
        },
    }
    write_result("chunker_process", result)
    return result
