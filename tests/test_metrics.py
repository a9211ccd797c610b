"""Business metrics as CloudWatch reads them: the EMF documents each function prints.

Each test drives a public interface (the HTTP app, the stream as a client reads it, the
chunk job's Lambda handler) and reads the EMF JSON from stdout; the expected values come
from what the client saw or from the stored output, not from the code that counts."""

from __future__ import annotations

import gzip
import importlib
import json
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from functions.app import metrics as app_metrics
from functions.app import paths
from functions.app.application import create_app
from tests.conftest import BUCKET
from tests.emf import emitted, totals
from tests.rawday import build_raw_day
from tests.streaming import build_services, publish_tiny_day
from tests.test_chunker_handler import Context, event
from tests.test_control_api import END, START

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

USER = {"X-Replay-User": "alice"}


@pytest.fixture
def api(
    s3: S3Client, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Iterator[TestClient]:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    # The metric set is the process's: what an earlier test's server (a stream still
    # writing its last heartbeat as it shut down) added is flushed and dropped here.
    app_metrics.flush()
    capfd.readouterr()
    publish_tiny_day(s3)
    with TestClient(create_app(build_services(s3, stream_max_seconds=0.001))) as client:
        yield client


def test_control_actions_are_counted_and_flushed_with_their_request(
    api: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    created = api.post(
        paths.SESSIONS, json={"airport": "XTST", "start": START, "end": END}, headers=USER
    )
    assert created.status_code == 201
    assert totals(capfd.readouterr().out) == {"SessionsCreated": 1}  # flushed by its request
    session = created.json()
    control = f"{paths.session_path(session['session_id'])}/control"
    assert api.post(control, json={"action": "play"}, headers=USER).status_code == 200
    stale = api.post(control, json={"action": "pause", "expected_version": 1}, headers=USER)
    assert stale.status_code == 409
    reads = api.get(paths.session_path(session["session_id"]), headers=USER)
    assert reads.status_code == 200
    out = capfd.readouterr().out
    assert totals(out) == {"ControlActions": 1, "VersionConflicts": 1}
    for _, dimensions, _ in emitted(out):
        assert set(dimensions) <= {"service"}


def test_a_stream_reports_its_end_reason_frames_and_bytes(
    api: TestClient, capfd: pytest.CaptureFixture[str]
) -> None:
    created = api.post(
        paths.SESSIONS, json={"airport": "XTST", "start": START, "end": END}, headers=USER
    )
    token = created.json()["stream"]["token"]
    capfd.readouterr()
    url = f"{paths.stream_path(created.json()['session_id'])}?token={token}"
    with api.stream("GET", url) as response:
        assert response.status_code == 200
        body = response.read()
    # STREAM_MAX_SECONDS is 1 ms: the opening write, then the goodbye.
    assert b"event: reconnect" in body and b'"reason":"duration_limit"' in body
    out = capfd.readouterr().out
    ended = [(dims, value) for name, dims, value in emitted(out) if name == "StreamsEnded"]
    assert ended == [({"reason": "duration_limit"} | _service(ended), 1)]
    sums = totals(out)
    assert sums["StreamsOpened"] == 1
    assert sums["BytesSent"] == len(body)
    events = body.split(b"\n\n")
    assert sums["FramesSent"] >= 2 and sums["FramesSent"] <= len(events)


def _service(ended: list[tuple[dict[str, str], float]]) -> dict[str, str]:
    return {"service": ended[0][0]["service"]} if ended and "service" in ended[0][0] else {}


@pytest.fixture
def chunker(s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("REPLAY_BUCKET", BUCKET)
    monkeypatch.setenv("CHUNK_BUCKET_MS", "600000")
    monkeypatch.setenv("CHUNK_HISTOGRAM_BIN_MS", "600000")
    import chunker.batch.lambda_handler

    return importlib.reload(chunker.batch.lambda_handler)  # its client under the mock


def test_a_chunk_job_counts_records_in_and_quarantined_by_reason(
    chunker: ModuleType, s3: S3Client, capfd: pytest.CaptureFixture[str]
) -> None:
    raw = build_raw_day(seed=4, hours=(6, 8), airport="XLHI").objects()
    for key, body in raw.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    capfd.readouterr()
    summary = chunker.handler(event("chunker-on-demand-day.json"), Context())
    out = capfd.readouterr().out
    # Independently: the raw lines uploaded, and the quarantine objects written.
    raw_lines = sum(
        1
        for key, body in raw.items()
        if key.endswith(".gz")
        for line in gzip.decompress(body).split(b"\n")
        if line.strip()
    )
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="quarantine/").get("Contents", [])
    reasons: Counter[str] = Counter()
    for item in listed:
        stored = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        reasons.update(json.loads(line)["reason"] for line in gzip.decompress(stored).splitlines())
    assert reasons, "the tiny day quarantines lines on purpose"
    by_reason = {
        dims["reason"]: value for name, dims, value in emitted(out) if name == "RecordsQuarantined"
    }
    assert by_reason == dict(reasons)
    sums = totals(out)
    assert sums["RecordsIn"] == raw_lines
    assert sums["RecordsAccepted"] == raw_lines - sum(reasons.values())
    assert sums["ChunksWritten"] == summary["chunk_objects"] > 0
    assert sums["ChunkJobDuration"] >= 0 and "ChunkJobDuration" in sums
