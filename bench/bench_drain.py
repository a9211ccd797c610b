"""Drain: how fast a container server ends its open streams on SIGTERM, and whether all
end cleanly (``python -m bench drain``).

For each ``--streams`` count: the container server (``python -m functions.container``, the
image's process; pinned to CPU 0 with two CPUs) on a moto server with the synthetic
morning published (as ``bench stream``); that many streams (10 co-watchers per session,
1x, from scattered positions) read by this process on CPU 1 until each has its first
event; then SIGTERM. Reported: how many ended with the ``reconnect`` event (the rest are
failures: cut, or ended otherwise), the time from the signal to each stream's final event
(p50/p99/max) and to the process's exit, and its exit status. These numbers size
``DRAIN_TIMEOUT_S`` and the task's ``stopTimeout`` (container.yaml).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from bench.bench_stream import Received, Setup, open_streams
from bench.common import client_conditions, percentile, say, write_result
from bench.stack import publish_morning, server_environment
from functions.app.dependencies import dynamodb_client
from functions.app.domain.session_store import SessionStore
from functions.local.stack import free_port, moto_server, stop_process, wait_for_http
from synthetic import GeneratorSettings

BUCKET, TABLE = "bench-drain", "bench-drain-sessions"
CO_WATCHERS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", default="100,500", help="open streams per run")
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)


def start_container_server(port: int, env: dict[str, str], pin: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "functions.container"]
    if pin:
        command = ["taskset", "-c", "0", *command]
    env = {**env, "PORT": str(port), "HOST": "127.0.0.1"}
    # Its stdout is its metrics (EMF lines, one per ended stream): not the bench's output.
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


async def drain_run(setup: Setup, count: int) -> dict[str, Any]:
    sessions = [
        setup.session(setup.day_start + (i * 397_000) % 3_000_000, 1.0)
        for i in range(max(1, count // CO_WATCHERS))
    ]
    stop = asyncio.Event()
    streams, tasks = await open_streams(setup, sessions, count, stop, lambda *_: None)
    opened = sum(1 for s in streams if s.first_event_ms is not None)
    signalled = time.time() * 1000
    setup.server.send_signal(signal.SIGTERM)
    await asyncio.wait(tasks, timeout=60)
    exit_status = await asyncio.to_thread(setup.server.wait, 60)
    exited = time.time() * 1000
    stop.set()
    finals = [_final(s) for s in streams]
    ended = [at - signalled for name, at in finals if name == "reconnect"]
    return {
        "streams": count,
        "opened": opened,
        "ended_with_reconnect": len(ended),
        "ended_otherwise": count - len(ended),
        "final_event_ms_p50": round(percentile(ended, 50), 1) if ended else None,
        "final_event_ms_p99": round(percentile(ended, 99), 1) if ended else None,
        "final_event_ms_max": round(max(ended), 1) if ended else None,
        "exit_ms": round(exited - signalled, 1),
        "exit_status": exit_status,
    }


def _final(received: Received) -> tuple[str, float]:
    if not received.events:
        return "", 0.0
    at, name, _, _ = received.events[-1]
    return name, at


def run(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(c) for c in args.streams.split(",")]
    settings = GeneratorSettings(
        vehicles=args.vehicles, flights=args.flights, start_hour=6, hours=2
    )
    secret = secrets.token_urlsafe(32)
    runs = []
    with moto_server() as aws:
        os.environ.update(aws.environment)
        service_day = publish_morning(settings, BUCKET, TABLE)
        pinned = (os.cpu_count() or 1) >= 2
        # One bench user opens every stream: no per-user or per-session cap.
        caps = {"STREAM_MAX_PER_USER": "0", "STREAM_MAX_PER_SESSION": "0"}
        env = server_environment(BUCKET, TABLE, secret, caps)
        for count in counts:
            port = free_port()
            server = start_container_server(port, env, pinned)
            try:
                wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, server)
                setup = Setup(
                    port=port,
                    server=server,
                    store=SessionStore(dynamodb_client(), TABLE),
                    secret=secret.encode(),
                    day_start=service_day.start_ms + 6 * 3_600_000,
                    pinned=pinned,
                )
                with client_conditions(pinned):
                    result = asyncio.run(drain_run(setup, count))
            finally:
                stop_process(server)
            say(f"  {result}")
            runs.append(result)
    passed = all(r["ended_otherwise"] == 0 and r["exit_status"] == 0 for r in runs)
    data = {"settings": {"co_watchers": CO_WATCHERS, "speed": 1.0}, "runs": runs, "passed": passed}
    write_result("drain", data)
    return data
