"""``make demo`` end to end: one process fills a local stack and serves everything."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.local.day_cache import source_digest
from functions.local.demo import demo_cache_key
from functions.local.stack import free_port, port_is_free
from synthetic import GeneratorSettings
from tests.demo_server import demo_server
from tests.streaming import StreamReader

pytestmark = pytest.mark.end_to_end


def test_demo_serves_the_dashboard_the_api_and_a_stream_then_stops_everything(
    tmp_path: Path,
) -> None:
    with demo_server(tmp_path / "demo.log", cached=False) as server:
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


def test_demo_refuses_a_port_in_use_with_a_one_line_error() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = str(taken.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    try:
        second = subprocess.run(
            [sys.executable, "-m", "functions.local.cli", "demo", "--port", port, "--hours", "1"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        taken.close()
    assert second.returncode != 0
    # Refused before any work: no moto server, no generated day.
    assert (
        second.stderr
        == f"dispatch-replay demo: error: 127.0.0.1:{port} is already in use (choose --port)\n"
    )


def _demo_no_serve(*extra: str) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # One variant: the cache's rules do not depend on how many a day has (the key's
    # variant settings: test_every_generator_setting_is_part_of_the_cache_key), and a
    # second variant doubles the chunking (1,440 buckets each).
    tiny = ["--vehicles", "8", "--flights", "6", "--start-hour", "7", "--hours", "1"]
    tiny += ["--compare-variant", ""]
    done = subprocess.run(
        [sys.executable, "-m", "functions.local.cli", "demo", "--no-serve", *tiny, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary, done.stderr


def test_a_cached_day_is_reused_only_while_inputs_match(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first, first_log = _demo_no_serve("--cache", str(cache))
    assert first["cached"] is False and "chunked into" in first_log
    again, again_log = _demo_no_serve("--cache", str(cache))
    assert again["cached"] is True and "reused the day cached in" in again_log
    assert "generated" not in again_log and "chunked into" not in again_log
    for field in ("version", "chunks", "chunk_bytes", "raw_records", "tasks"):
        assert again[field] == first[field]
    assert len([entry for entry in cache.iterdir() if not entry.name.startswith(".")]) == 1


def test_every_generator_setting_is_part_of_the_cache_key(tmp_path: Path) -> None:
    """A third demo run with another seed would generate again (~20 s); what decides that
    is the key, so the key is checked for each setting the demo command can change."""
    base = GeneratorSettings(service_date=dt.date(2026, 3, 14))
    layout = tmp_path / "reference.json"
    layout.write_text('{"airport": 1}')
    key = demo_cache_key(base)
    assert demo_cache_key(GeneratorSettings(service_date=dt.date(2026, 3, 14))) == key
    changes: dict[str, Any] = {
        "service_date": dt.date(2026, 3, 15),
        "seed": base.seed + 1,
        "vehicles": base.vehicles + 1,
        "flights": base.flights + 1,
        "start_hour": (base.start_hour + 1) % 24,
        "hours": base.hours - 1,
        "airport": "XTST",
        "messy_fraction": 0.1,
        "variant": "nearest-first",
        "dispatch_rule": "nearest_first",
        "layout": layout,
    }
    assert set(changes) == set(GeneratorSettings.model_fields)  # a new setting is listed
    for field, value in changes.items():
        assert demo_cache_key(base.model_copy(update={field: value})) != key, field
    # The demo's second variant is part of the key too (with it, without it, another one).
    other = base.model_copy(update={"variant": "nearest-first", "dispatch_rule": "nearest_first"})
    assert len({key, demo_cache_key(base, [other]), demo_cache_key(base, [base])}) == 3
    # An imported layout counts by its content: the same file edited is another day.
    on_layout = base.model_copy(update={"layout": layout})
    first = demo_cache_key(on_layout)
    layout.write_text('{"airport": 2}')
    assert demo_cache_key(on_layout) not in {first, key}


def test_the_cache_key_follows_the_code(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "a.py").write_text("A = 1\n")
    before = source_digest([package])
    assert source_digest([package]) == before
    (package / "a.py").write_text("A = 2\n")
    assert source_digest([package]) != before
    (package / "a.py").write_text("A = 1\n")
    (package / "b.py").write_text("")
    assert source_digest([package]) != before


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _still_running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]


def _wait_gone(pids: list[int], timeout_s: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout_s
    running = _still_running(pids)
    while running and time.monotonic() < deadline:
        time.sleep(0.05)
        running = _still_running(pids)
    return running


def test_sigterm_stops_the_moto_child_while_serving_and_while_setting_up(
    tmp_path: Path,
) -> None:
    """SIGTERM (a service manager's stop, ``kill``) used to kill the demo at once and
    orphan its moto server; now it unwinds like Ctrl-C, in either phase."""
    with demo_server(tmp_path / "serving.log") as server:
        children = server.child_pids()
        assert children
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        assert not _wait_gone(children), "the moto server outlived the demo"

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    setting_up = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "functions.local.cli",
            "demo",
            "--port",
            str(free_port()),
            "--hours",
            "3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        children_file = Path(f"/proc/{setting_up.pid}/task/{setting_up.pid}/children")
        deadline = time.monotonic() + 60
        children = []
        while not children:  # the moto server started; the day is being generated
            assert time.monotonic() < deadline, "the demo started no moto server"
            children = [int(pid) for pid in children_file.read_text().split()]
            time.sleep(0.05)
        setting_up.send_signal(signal.SIGTERM)
        assert setting_up.wait(timeout=30) != 0
        assert not _wait_gone(children), "the moto server outlived the demo"
    finally:
        if setting_up.poll() is None:
            setting_up.kill()


def test_a_port_left_in_time_wait_is_free_to_serve_on() -> None:
    """A server that just stopped leaves its accepted connections in TIME_WAIT; a restart
    on the same port must not be refused for them (uvicorn listens with SO_REUSEADDR)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end goes to TIME_WAIT
    client.close()
    listener.close()
    assert port_is_free("127.0.0.1", port)
