"""Chunker runs that die or race, as separate processes against a moto server.

A run killed mid-way leaves the last good version published and readable; two runs for
the same day at once end with one consistent published version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from chunker.format.encoding import Pointer
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from functions.local.stack import LOCAL_CREDENTIALS, MotoServer, moto_server, stop_process
from tests import ground_truth
from tests.rawday import build_raw_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.end_to_end

BUCKET = "safety"
KEYS = DayKeys("XTST", "2026-03-14")


@pytest.fixture
def aws() -> Iterator[tuple[MotoServer, S3Client]]:
    with moto_server() as server:
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield server, s3


def chunk_process(server: MotoServer, log: Path) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ["PATH"],
        **LOCAL_CREDENTIALS,
        **server.environment,
        "REPLAY_BUCKET": BUCKET,
    }
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "functions.local.cli", "chunk", "--airport", "XTST",
             "--date", "2026-03-14", "--bucket-ms", "300000"],
            env=env, stdout=sink, stderr=sink,
        )  # fmt: skip


def upload(s3: S3Client, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def pointer(s3: S3Client) -> Pointer:
    body = s3.get_object(Bucket=BUCKET, Key=KEYS.pointer)["Body"].read()
    return Pointer.model_validate_json(body)


def chunk_keys(s3: S3Client, version: str) -> set[str]:
    keys: set[str] = set()
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=KEYS.version_prefix(version)
    )
    for page in pages:
        keys |= {obj["Key"] for obj in page.get("Contents", [])}
    return keys


def assert_readable_and_true(s3: S3Client, objects: dict[str, bytes]) -> str:
    """The published version is complete and its state equals the ground truth."""
    published = pointer(s3)
    reader = ChunkReader(s3, BUCKET)
    day = reader.published("XTST", "2026-03-14")
    assert day.manifest.version == published.version
    present = chunk_keys(s3, published.version)
    listed = {KEYS.chunk(published.version, c.start) for c in day.manifest.chunks}
    assert listed <= present, "every chunk the manifest lists exists"
    rows, service_day = ground_truth.valid_rows(objects, KEYS)
    for offset in (0, 1_800_000, 7_199_000):
        t = service_day.start_ms + offset
        state: Any = reader.state_at(day.manifest, t)
        truth = ground_truth.state_at(rows, service_day, day.manifest.config.tick_ms, t)
        assert state.keyframe()["vehicles"] == truth["vehicles"]
    return published.version


def test_a_run_killed_mid_way_leaves_the_last_good_version(
    aws: tuple[MotoServer, S3Client], tmp_path: Path
) -> None:
    server, s3 = aws
    first = build_raw_day(seed=3, hours=(0, 3)).objects()
    upload(s3, first)
    done = chunk_process(server, tmp_path / "first.log")
    assert done.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
    good = assert_readable_and_true(s3, first)

    second = build_raw_day(seed=4, hours=(0, 3)).objects()  # new inputs: a new version
    upload(s3, second)
    doomed = chunk_process(server, tmp_path / "second.log")
    deadline = time.monotonic() + 120
    while True:  # wait until the new version has some chunks but is not published
        versions = {
            key.split("/")[3]
            for key in (
                obj["Key"]
                for page in s3.get_paginator("list_objects_v2").paginate(
                    Bucket=BUCKET, Prefix=KEYS.chunks_prefix
                )
                for obj in page.get("Contents", [])
            )
        }
        if versions - {good} and any(chunk_keys(s3, v) for v in versions - {good}):
            break
        assert doomed.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stop_process(doomed, signal.SIGKILL)
    assert pointer(s3).version == good, "the killed run published nothing"
    assert assert_readable_and_true(s3, first) == good

    rerun = chunk_process(server, tmp_path / "rerun.log")
    assert rerun.wait(timeout=120) == 0, (tmp_path / "rerun.log").read_text()
    assert assert_readable_and_true(s3, second) != good


def test_two_concurrent_runs_end_with_one_consistent_version(
    aws: tuple[MotoServer, S3Client], tmp_path: Path
) -> None:
    server, s3 = aws
    objects = build_raw_day(seed=5, hours=(0, 3)).objects()
    upload(s3, objects)
    runs = [chunk_process(server, tmp_path / f"run{i}.log") for i in range(2)]
    for i, run in enumerate(runs):
        assert run.wait(timeout=180) == 0, (tmp_path / f"run{i}.log").read_text()
    version = assert_readable_and_true(s3, objects)
    assert len({key.split("/")[3] for key in chunk_keys(s3, version)}) == 1
