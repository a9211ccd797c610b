"""Shared fixtures: fake AWS credentials, an in-process moto S3 bucket."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from chunker.format.s3 import s3_client
from functions.local.moto_patch import atomic_dynamodb

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BUCKET = "replay-test"
DAY_CACHE_VARIABLE = "DISPATCH_REPLAY_TEST_DAY_CACHE"

# In-process moto, too, applies each DynamoDB request atomically, as DynamoDB does.
atomic_dynamodb()

# moto gives every test a fresh boto3 default session, and each session read botocore's
# service models from disk again (~0.4 s per test). One loader serves them all: its
# caches hold the parsed JSON, which botocore never mutates.
botocore.session.create_loader = functools.cache(botocore.loaders.create_loader)  # type: ignore[attr-defined]


# What each of the heaviest test files took, in seconds summed over its tests (a run of
# `make test` on 2026-12-01 with the machine loaded by other work: the order is what
# counts, not the values). `make test` gives each xdist worker a whole file
# (`--dist loadfile`) as workers free up, in collection order (`--no-loadscope-reorder`);
# the heaviest files go first (longest processing time first), so that no long file
# starts when the other worker is nearly done and then runs alone. A file missing here
# counts as DEFAULT_FILE_SECONDS; refresh the table when a file's weight changes a lot.
FILE_SECONDS = {
    "test_abuse_stream.py": 471,
    "test_browser.py": 397,
    "test_demo.py": 300,
    "test_hostile_raw.py": 239,
    "test_control_handler.py": 196,
    "test_control_api.py": 150,
    "test_abuse_sessions.py": 146,
    "test_page_truth.py": 145,
    "test_dashboard_defects.py": 133,
    "test_chunker.py": 130,
    "test_stream.py": 130,
    "test_history_api.py": 127,
    "test_faults.py": 104,
    "test_chunker_safety.py": 92,
    "test_artifact.py": 82,
    "test_bridge.py": 78,
    "test_iam.py": 78,
    "test_export_memory.py": 72,
    "test_synthetic.py": 67,
    "test_import_layout.py": 65,
    "test_container_drain.py": 58,
    "test_jwt.py": 53,
    "test_load_harness.py": 53,
    "test_container.py": 48,
}
DEFAULT_FILE_SECONDS = 30


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first (see FILE_SECONDS); a stable sort keeps each file's order."""
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, DEFAULT_FILE_SECONDS))


@pytest.fixture(scope="session", autouse=True)
def demo_day_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One ``demo --cache`` folder for the whole run, shared by the xdist workers: the
    demo processes the browser tests start generate and chunk each day once per run, not
    once per test module (``tests.demo_server``). Under pytest's run folder, which pytest
    rotates."""
    base = tmp_path_factory.getbasetemp()
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ[DAY_CACHE_VARIABLE] = str(run / "demo-day-cache")


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never reach a real AWS account or a stray endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def s3() -> Iterator[S3Client]:
    """An S3 client on in-process moto with an empty bucket ``BUCKET``."""
    with mock_aws():
        client = s3_client()
        client.create_bucket(Bucket=BUCKET)
        yield client


@contextmanager
def module_bucket() -> Iterator[S3Client]:
    """``s3`` for module-scoped fixtures (which cannot use the function-scoped ones): the
    same fake credentials, in-process moto, an empty bucket ``BUCKET``."""
    with pytest.MonkeyPatch.context() as env, mock_aws():
        for name, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            env.setenv(name, value)
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        client = s3_client()
        client.create_bucket(Bucket=BUCKET)
        yield client
