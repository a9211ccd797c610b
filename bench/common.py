"""Shared benchmark plumbing: results files, percentiles, machine description, the server."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``bench/results/{name}.json`` with the machine and the command."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "benchmark": name,
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "machine": machine(),
        **data,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # the name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def say(text: str) -> None:
    """Progress on stderr."""
    print(text, file=sys.stderr, flush=True)


def start_stream_server(
    port: int, env: dict[str, str], pin: bool, code: str | None = None
) -> subprocess.Popen[bytes]:
    """``bench/stream_app.py`` under uvicorn (h11, no access log) on ``port``; with ``pin``
    the server runs on CPU 0 so that the clients (on CPU 1) do not steal its time. ``code``:
    another checkout to serve from (its folder first on the path: an A/B baseline)."""
    command = [
        sys.executable, "-m", "uvicorn", "bench.stream_app:create", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--http", "h11",
    ]  # fmt: skip
    if pin:
        command = ["taskset", "-c", "0", *command]
    if code is not None:
        env = {**env, "PYTHONPATH": code}
    return subprocess.Popen(command, env=env, cwd=code)


@contextlib.contextmanager
def client_conditions(pin: bool) -> Iterator[None]:
    """The measuring client: this process on CPU 1 (with ``pin``) and its GC kept out of
    the measurements (frozen, rare collections); then as before."""
    affinity = os.sched_getaffinity(0)
    threshold = gc.get_threshold()
    if pin:
        os.sched_setaffinity(0, {1})
    gc.freeze()
    gc.set_threshold(100_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        os.sched_setaffinity(0, affinity)


@contextlib.contextmanager
def demo_day_in_moto(bucket: str, start_hour: int, hours: int) -> Iterator[tuple[Any, str, str]]:
    """The demo day's programme, ``hours`` hours from ``start_hour``, generated and chunked
    into in-process moto (the chunker's default configuration): ``(s3, airport, date)``."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from chunker.batch.run import chunk_day
    from chunker.format.encoding import ChunkerConfig
    from chunker.format.s3 import s3_client
    from synthetic import GeneratorSettings, generate_day, write_day

    with mock_aws():
        s3 = s3_client()
        s3.create_bucket(Bucket=bucket)
        say(f"generating {hours} h of the demo day")
        day = generate_day(GeneratorSettings(start_hour=start_hour, hours=hours))
        write_day(day, lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body))
        say("chunking")
        chunk_day(s3, bucket, day.keys.airport, day.keys.service_date, ChunkerConfig())
        yield s3, day.keys.airport, day.keys.service_date
