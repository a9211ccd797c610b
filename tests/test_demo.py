"""``make demo`` end to end: one process fills a local stack and serves everything."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.demo_server import demo_server
from tests.streaming import StreamReader

pytestmark = pytest.mark.end_to_end


def test_demo_serves_the_dashboard_the_api_and_a_stream_then_stops_everything(
    tmp_path: Path,
) -> None:
    with demo_server(tmp_path / "demo.log") as server:
        children = server.child_pids()
        assert children, "the moto server should be a child of the demo"
        with httpx.Client(base_url=server.url, timeout=10) as client:
            page = client.get("/")
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            assert client.get("/openapi.json").json()["info"]["title"] == "dispatch-replay"
            airports = client.get("/api/replay/airports").json()
            airport = airports["airports"][0]
            assert airport["airport"] == "XLHI" and airport["days"] == ["2026-03-14"]

            start = dt.datetime(2026, 3, 14, 7, tzinfo=dt.timezone(dt.timedelta(hours=8)))
            created = client.post(
                "/api/replay/sessions",
                json={
                    "airport": "XLHI",
                    "start": start.isoformat(),
                    "end": (start + dt.timedelta(minutes=30)).isoformat(),
                    "speed": 8,
                    "state": "playing",
                },
            )
            assert created.status_code == 201, created.text
            stream = StreamReader(client, server.url + created.json()["stream"]["url"])
            try:
                events = stream.read_until(lambda event: event.event == "vehicle_update")
            finally:
                stream.close()
            assert events[0].event == "snapshot"
            assert events[0].json()["vehicles"], "the sample day has vehicles at 07:00"
        log = server.log.read_text()
        assert "ready in" in log and server.url in log

    assert server.process.returncode is not None
    # The moto server is stopped before the demo exits; multiprocessing's resource tracker
    # (left by the chunk jobs) exits by itself once its parent is gone, a moment later.
    deadline = time.monotonic() + 10
    running = children
    while running and time.monotonic() < deadline:
        running = [pid for pid in running if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
        time.sleep(0.05)
    assert not running, f"children still run: {running}"


def test_demo_refuses_a_port_in_use_with_a_one_line_error(tmp_path: Path) -> None:
    with demo_server(tmp_path / "first.log") as first:
        port = first.url.rsplit(":", 1)[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        second = subprocess.run(
            [sys.executable, "-m", "functions.cli", "demo", "--port", port, "--hours", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert second.returncode != 0
        assert f"127.0.0.1:{port} is already in use" in second.stderr
        assert second.stderr.count("\n") == 1


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True
