"""Scale-in as a viewer lives it: the container server gets SIGTERM mid-stream.

Two container servers (``python -m functions.container``, the process the image runs) on
one moto server. Streams open on the first; it is sent SIGTERM while they play. Each
stream must end cleanly with ``reconnect`` (reason ``draining``) as one complete event, the
process must exit 0 once they ended, and each client, resuming on the second server with
the ``Last-Event-ID`` it kept (as EventSource does), must get every discrete event exactly
once (against the ground truth from the raw records) and the true state at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from chunker.batch.run import chunk_day
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from functions.app.dependencies import Services
from functions.app.domain.session_store import SessionStore
from functions.local.stack import (
    LOCAL_CREDENTIALS,
    MotoServer,
    ensure_table,
    free_port,
    moto_server,
    stop_process,
    wait_for_http,
)
from tests import ground_truth
from tests.conftest import BUCKET
from tests.rawday import build_raw_day
from tests.streaming import (
    CONFIG,
    SECRET,
    TABLE,
    ClientState,
    Server,
    StreamReader,
    by_time,
    expected_discrete,
    frame_position,
    settings,
)

pytestmark = pytest.mark.end_to_end

ROOT = Path(__file__).parent.parent
KEYS = DayKeys("XTST", "2026-03-14")
SPEED = 32.0  # discrete events every few wall seconds, frames merged (not every tick)
STREAMS = 3


def client_for(aws: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.endpoint,
        region_name=LOCAL_CREDENTIALS["AWS_DEFAULT_REGION"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[MotoServer, Services, dict[str, bytes]]]:
    """A moto server with the XTST day published and an empty sessions table."""
    with moto_server() as aws:
        s3, dynamodb = client_for(aws, "s3"), client_for(aws, "dynamodb")
        s3.create_bucket(Bucket=BUCKET)
        raw = build_raw_day(seed=3, hours=(0, 3), airport="XTST").objects()
        for key, body in raw.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", CONFIG)
        ensure_table(dynamodb, TABLE)
        store, chunks = SessionStore(dynamodb, TABLE), ChunkReader(s3, BUCKET)
        services = Services(settings=settings(), sessions=store, chunks=chunks)
        yield aws, services, raw


@contextmanager
def container_server(
    aws: MotoServer,
    log: Path,
    command: tuple[str, ...] = (sys.executable, "-m", "functions.container"),
    base_env: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m functions.container`` (or ``command``) on a free port, configured as the
    task is (``base_env``: the rest of its environment, default this process's)."""
    port = free_port()
    env = {
        **(os.environ if base_env is None else base_env),
        **aws.environment,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "AUTH_MODE": "local",
        "STREAM_TOKEN_SECRET": SECRET,
        "STREAM_POLL_MS": "50",
        "POWERTOOLS_SERVICE_NAME": "dispatch-replay-container",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", 30, process)
        yield url, process
    finally:
        stop_process(process)


def wait_exit(process: subprocess.Popen[bytes], timeout_s: float) -> int:
    """The exit status, once the process ended by itself (fails after ``timeout_s``)."""
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AssertionError("the server did not exit after draining") from None


def test_sigterm_ends_every_stream_with_reconnect_and_clients_resume_elsewhere_losing_nothing(
    stack: tuple[MotoServer, Services, dict[str, bytes]], tmp_path: Path
) -> None:
    aws, services, raw = stack
    rows, service_day = ground_truth.valid_rows(raw, KEYS)
    helper = Server("", services, None)  # type: ignore[arg-type]  # sessions and tokens only
    start = service_day.start_ms + 40 * 60_000
    sessions = [
        helper.new_session(
            start + i * 7 * 60_000,
            service_day.start_ms + 3 * 3_600_000,
            speed=SPEED,
            state="playing",
        )
        for i in range(STREAMS)
    ]
    first_leg: list[StreamReader] = []
    with (
        container_server(aws, tmp_path / "a.log") as (url_a, process_a),
        container_server(aws, tmp_path / "b.log") as (url_b, _),
        httpx.Client() as client,
    ):
        for session in sessions:
            reader = StreamReader(client, url_a + helper.stream_url(session))
            # Mid-stream: past the opening snapshot, a few frames in.
            reader.read_until(lambda e: e.event == "vehicle_update", timeout_s=30)
            first_leg.append(reader)
        process_a.send_signal(signal.SIGTERM)
        for reader in first_leg:
            reader.read_to_end(timeout_s=30)
        assert wait_exit(process_a, 30) == 0
        log_a = (tmp_path / "a.log").read_text()

        for session, reader in zip(sessions, first_leg, strict=True):
            final = reader.events[-1]
            assert final.event == "reconnect", [e.event for e in reader.events[-3:]]
            assert final.json()["reason"] == "draining"
            assert reader.closed_by_server and not reader.parser.mid_event()  # ended whole
            assert [e.event for e in reader.events].count("reconnect") == 1
            kept = reader.parser.last_event_id
            assert kept and final.id == kept  # the resume point is the final event's id

            # The browser reconnects (through the ALB) to a task still serving.
            again = StreamReader(client, url_b + helper.stream_url(session), last_event_id=kept)
            target = frame_position(reader.events) + 60_000
            again.read_until(
                lambda e, t=target: e.event == "vehicle_update" and e.json()["t"] >= t,
                timeout_s=30,
            )
            again.close()
            assert "snapshot" not in [e.event for e in again.events], "a resume, not a re-sync"
            state = ClientState()
            for event in [*reader.events, *again.events]:
                state.apply(event)
            first = state.snapshots[0]
            last = frame_position(again.events)
            assert state.snapshots == [first]
            assert by_time(state.discrete) == expected_discrete(rows, first, last)
            assert state.discrete and len(state.discrete) == len(set(state.discrete))
            assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, last)
    assert "draining streams" in log_a and '"streams":3' in log_a.replace(" ", "")
