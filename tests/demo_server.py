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

from functions.local.demo import local_app_environment
from functions.local.stack import LOCAL_CREDENTIALS, free_port, stop_process, wait_for_http
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
    # Where the day is stored (``day_server``); None: the demo's own moto server, named in
    # its log.
    endpoint: str | None = None
    bucket: str | None = None

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
    the first demo of a day in a run generates and chunks it (most often the background
    prebuild, tests.day_prebuild, which this waits for); ``False`` for the tests of what a
    first ``make demo`` does.
    """
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(environment or {})
    cache = os.environ.get(DAY_CACHE_VARIABLE) if cached else None
    days = extra if extra is not None else SMALL_DAY
    if cache:
        from tests import day_prebuild  # it imports this module

        name = day_prebuild.day_name(days)
        if name:
            day_prebuild.stack(Path(cache), name)  # waits while the run's prebuild builds it
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.local.cli", "demo", "--port", str(port)]
            + days
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


@contextmanager
def day_server(
    log: Path, day: str = "small", environment: dict[str, str] | None = None
) -> Iterator[DemoServer]:
    """The demo's app (``dispatch-replay serve``, as ``demo`` serves it) over the run's
    prebuilt ``day`` (tests.day_prebuild: ``small`` is SMALL_DAY, ``compare`` COMPARE_DAY),
    with ``environment`` on top; always stopped. The whole demo (``demo_server``) if the run
    has no prebuilt day (it then builds the day itself, and says so if it cannot)."""
    from tests import day_prebuild  # it imports this module

    cache = os.environ.get(DAY_CACHE_VARIABLE)
    where = day_prebuild.stack(Path(cache), day) if cache else None
    if where is None:
        with demo_server(log, day_prebuild.DAYS[day], environment) as whole:
            yield whole
        return
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= LOCAL_CREDENTIALS | {"AWS_ENDPOINT_URL": where.endpoint}
    env |= local_app_environment(where.bucket, where.table) | (environment or {})
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "functions.local.cli", "serve", "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = DemoServer(f"http://127.0.0.1:{port}", process, log, where.endpoint, where.bucket)
    try:
        wait_for_http(f"{server.url}/healthz", 120, process)
        yield server
    finally:
        stop_process(process, signal.SIGINT, timeout_s=20)


def server_objects(server: DemoServer, prefix: str, bucket: str) -> dict[str, bytes]:
    """Every object under ``prefix`` where ``server``'s day is stored (its own bucket, else
    ``bucket`` in the moto server the demo's log names): what the demo stored, the
    independent side of the tests that compare the page with the raw day."""
    if server.endpoint is not None and server.bucket is not None:
        return _objects(server.endpoint, server.bucket, prefix)
    return stored_objects(server.log.read_text(), bucket, prefix)


def stored_objects(log_text: str, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix`` in the moto server a demo's log names."""
    endpoint = re.search(r"local AWS \(moto server\) at (\S+)", log_text)
    assert endpoint, "the demo log names its moto server"
    return _objects(endpoint.group(1), bucket, prefix)


def _objects(endpoint: str, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            objects[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return objects
