"""Scale-in as a viewer lives it: the container server gets SIGTERM mid-stream.

Two container servers (``python -m functions.container``, the process the image runs) on
one moto server. Streams open on the first; it is sent SIGTERM while they play. Each
stream must end cleanly with ``reconnect`` (reason ``draining``) as one complete event, the
process must exit 0 once they ended, and each client, resuming on the second server with
the ``Last-Event-ID`` it kept (as EventSource does), must get every discrete event exactly
once (against the ground truth from the raw records) and the true state at the end.
"""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
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
    port: int | None = None,
    **extra_env: str,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m functions.container`` (or ``command``) on a free port, configured as the
    task is (``base_env``: the rest of its environment, default this process's)."""
    port = port or free_port()
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
        **extra_env,
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
    # From 00:50, where the XTST day's tasks are densest (its events come in clusters: a
    # minute of replay may hold none), and three replay minutes after each reconnect.
    start = service_day.start_ms + 50 * 60_000
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
    delivered = 0  # discrete events across the streams' two legs
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
            target = frame_position(reader.events) + 180_000
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
            assert len(state.discrete) == len(set(state.discrete))
            delivered += len(state.discrete)
            assert state.state() == ground_truth.state_at(rows, service_day, CONFIG.tick_ms, last)
    assert delivered, "the streams' windows held no task, flight or notification event"
    assert "draining streams" in log_a and '"streams":3' in log_a.replace(" ", "")


@contextmanager
def metadata_endpoint(address: str) -> Iterator[str]:
    """What ECS serves a task at ``ECS_CONTAINER_METADATA_URI_V4`` (the parts read: its
    network, as in the AWS docs' example response)."""
    body = json.dumps(
        {"Name": "stream", "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": [address]}]}
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v4/container-id"
    finally:
        server.shutdown()
        server.server_close()


def test_a_task_drains_when_its_load_balancer_target_leaves_before_any_sigterm(
    stack: tuple[MotoServer, Services, dict[str, bytes]], tmp_path: Path
) -> None:
    """ECS deregisters first and sends SIGTERM only once the ALB has no connection left:
    the task sees its target leave (functions/container/target.py) and drains then, and
    keeps serving whatever else still reaches it."""
    aws, services, _ = stack
    elbv2, ec2 = client_for(aws, "elbv2"), client_for(aws, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = elbv2.create_target_group(
        Name="stream-drain", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    helper = Server("", services, None)  # type: ignore[arg-type]  # sessions and tokens only
    day = services.chunks.published("XTST", "2026-03-14").manifest
    session = helper.new_session(day.start, day.end, speed=8.0, state="playing")
    port = free_port()
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": port}])
    with (
        metadata_endpoint("127.0.0.1") as metadata,
        container_server(
            aws,
            tmp_path / "task.log",
            port=port,
            TARGET_GROUP_ARN=group,
            ECS_CONTAINER_METADATA_URI_V4=metadata,
            TARGET_HEALTH_POLL_S="0.5",
        ) as (url, process),
        httpx.Client() as client,
    ):
        reader = StreamReader(client, url + helper.stream_url(session))
        reader.read_until(lambda e: e.event == "vehicle_update", timeout_s=30)
        # Seen registered first (a task is "unused" before it is registered, too).
        log = tmp_path / "task.log"
        deadline = time.monotonic() + 30
        while '"state":"healthy"' not in log.read_text().replace(" ", ""):
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        elbv2.deregister_targets(TargetGroupArn=group, Targets=[{"Id": "127.0.0.1", "Port": port}])
        events = reader.read_to_end(timeout_s=30)
        assert events[-1].event == "reconnect" and events[-1].json()["reason"] == "draining"
        assert process.poll() is None  # no SIGTERM yet: the task still runs
        reader.close()
        # Still serving, on a new connection: the task closes every connection it holds
        # once the stream on it ended (that is how the ALB sees none left), so reusing the
        # stream's pooled connection races with its FIN (a reset, not an answer).
        assert httpx.get(f"{url}/healthz").status_code == 200
        process.send_signal(signal.SIGTERM)
        assert wait_exit(process, 30) == 0
    assert "target draining" in (tmp_path / "task.log").read_text()
