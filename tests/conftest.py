"""Shared fixtures: fake AWS credentials, an in-process moto S3 bucket."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws

from chunker.format.s3 import s3_client
from functions.local.moto_patch import atomic_dynamodb
from tests import artifact_prebuild

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


# What each test file of 10 s or more took, in seconds summed over its tests (a run of
# `pytest --durations=0` on 2026-12-02 with the machine loaded by other work: the order is what
# counts, not the values). `make test` gives each xdist worker a whole file
# (`--dist loadfile`) as workers free up, in collection order (`--no-loadscope-reorder`);
# the heaviest files go first (longest processing time first), so that no long file
# starts when the other worker is nearly done and then runs alone. A file missing here
# counts as DEFAULT_FILE_SECONDS; refresh the table when a file's weight changes a lot.
# The four demo-day browser files: those values less the set-up tests/day_prebuild.py took
# off them (docs/reliability.md, "The suite's own budget").
FILE_SECONDS = {
    "test_abuse_stream.py": 280,
    "test_browser.py": 200,
    "test_hostile_raw.py": 200,
    "test_page_truth.py": 155,
    "test_real_airports.py": 130,
    "test_compare_browser.py": 40,
    "test_demo.py": 122,
    "test_dashboard_defects.py": 100,
    "test_abuse_sessions.py": 93,
    "test_chunker.py": 72,
    "test_stream.py": 57,
    "test_faults.py": 57,
    "test_load_harness.py": 35,
    "test_aircraft.py": 30,
    "test_artifact.py": 25,
    "test_control_api.py": 25,
    "test_sign_in.py": 23,
    "test_chunker_safety.py": 23,
    "test_bridge.py": 22,
    "test_synthetic.py": 20,
    "test_control_handler.py": 20,
    "test_export_memory.py": 20,
    "test_history_api.py": 19,
    "test_generate_on_layout.py": 12,
    "test_schemathesis.py": 19,
    "test_container_drain.py": 15,
    "test_iam.py": 14,
    "test_jwt.py": 13,
    "test_import_layout.py": 12,
    "test_container_artifact.py": 11,
}
DEFAULT_FILE_SECONDS = 5


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Heaviest files first (see FILE_SECONDS); a stable sort keeps each file's order."""
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, DEFAULT_FILE_SECONDS))


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole run's temporary folder, the same for the xdist controller and every
    worker (a worker's own is a folder under it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


ARTIFACTS_FOLDER = "lambda-artifacts"
DAY_CACHE_FOLDER = "demo-day-cache"
# The test files that start a demo of each day tests.day_prebuild builds (tests.demo_server).
DAY_USERS = {
    "small": ("test_browser.py", "test_page_truth.py", "test_dashboard_defects.py", "test_demo.py"),
    "compare": ("test_compare_browser.py",),
}
_PREBUILD: list[subprocess.Popen[bytes]] = []


def _runs(config: pytest.Config, filename: str) -> bool:
    """Whether the run's arguments take in tests/``filename``."""
    target = Path(__file__).resolve().parent / filename
    for argument in config.args:
        path = (config.invocation_params.dir / argument.split("::")[0]).resolve()
        if path == target or (path.is_dir() and target.is_relative_to(path)):
            return True
    return False


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start building the Lambda artifacts (tests.artifact_prebuild) and the demo days
    (tests.day_prebuild) in the background, once per run: in the xdist controller, or in
    the only process without xdist; each only if the run has tests that use it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    factory: pytest.TempPathFactory = session.config._tmp_path_factory  # type: ignore[attr-defined]
    if _runs(session.config, "test_artifact.py"):
        _PREBUILD.append(artifact_prebuild.start(run_folder(factory) / ARTIFACTS_FOLDER))
    days = [day for day, users in DAY_USERS.items() if any(_runs(session.config, f) for f in users)]
    if days:
        from tests import day_prebuild  # it imports tests.demo_server, which imports this

        _PREBUILD.append(day_prebuild.start(run_folder(factory) / DAY_CACHE_FOLDER, days))


def pytest_sessionfinish() -> None:
    for builder in _PREBUILD:  # a run cut short does not leave builds behind
        if builder.poll() is None:
            builder.terminate()
        builder.wait(timeout=30)


@pytest.fixture(scope="session", autouse=True)
def demo_day_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One ``demo --cache`` folder for the whole run, shared by the xdist workers: the
    demo processes the browser tests start generate and chunk each day once per run, not
    once per test module (``tests.demo_server``). Under pytest's run folder, which pytest
    rotates; tests.day_prebuild fills it from the start of the run."""
    os.environ[DAY_CACHE_VARIABLE] = str(run_folder(tmp_path_factory) / DAY_CACHE_FOLDER)


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
