"""The one-command demo as a real process: what end-to-end and browser tests run against."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3

from functions.local.stack import free_port, stop_process, wait_for_http
from tests.conftest import DAY_CACHE_VARIABLE

# A small but busy morning: three hours of the 06:00 bank with a few dozen vehicles; the
# default variant only (compare mode's browser test starts a demo with both: COMPARE_DAY).
SMALL_DAY = ["--vehicles", "20", "--flights", "80", "--start-hour", "6", "--hours", "3"]
SMALL_DAY += ["--compare-variant", ""]
# An hour of it with both dispatch runs, as `make demo` records them.
COMPARE_DAY = ["--vehicles", "16", "--flights", "60", "--start-hour", "7", "--hours", "1"]


@dataclass(frozen=True)
class DemoServer:
    """A running ``dispatch-replay demo``."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def child_pids(self) -> list[int]:
        """Processes the demo started (the moto server, chunk jobs)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []


@contextmanager
def demo_server(
    log: Path,
    extra: list[str] | None = None,
    environment: dict[str, str] | None = None,
    cached: bool = True,
) -> Iterator[DemoServer]:
    """Start ``dispatch-replay demo`` on a free port (``environment``: settings of the app
    on top of this process's); always stop it (SIGINT, like Ctrl-C).

    ``cached``: with the run's ``--cache`` folder (tests.conftest.demo_day_cache), so only
    the first demo of a day in a run generates and chunks it; ``False`` for the tests of
    what a first ``make demo`` does.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(environment or {})
    cache = os.environ.get(DAY_CACHE_VARIABLE) if cached else None
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.local.cli", "demo", "--port", str(port)]
            + (extra if extra is not None else SMALL_DAY)
            + (["--cache", cache] if cache else []),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = DemoServer(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_for_http(f"{server.url}/healthz", 120, process)
        yield server
    finally:
        stop_process(process, signal.SIGINT, timeout_s=20)


def stored_objects(log_text: str, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` in the moto server a demo's log names (what the demo
    stored: the independent side of the tests that compare the page with the raw day)."""
    endpoint = re.search(r"local AWS \(moto server\) at (\S+)", log_text)
    assert endpoint, "the demo log names its moto server"
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint.group(1),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return objects
