"""The Lambda artifacts of tests/test_artifact.py, built in the background from the start
of the run.

Most of a first build is waiting on the package index (pip resolving and downloading the
aarch64 and x86_64 wheels: ~35 s of wall time per dependency set for ~10 s of CPU). Built
by the test file's fixture, that wait held one of the two xdist workers idle for over a
minute; started when the session starts (``pytest_sessionstart`` in tests/conftest.py), it
overlaps the CPU-bound tests instead. The fixture then takes what was built here (the same
``make build-<LogicalId>`` commands it would run), or builds itself if this failed, so a
failure is reported by the test with the build's own message.

    python -m tests.artifact_prebuild DIR

builds ``DIR/<arch>/<LogicalId>`` for each architecture, aarch64 first (the first tests
need it), and marks each architecture's folder with ``.complete`` or ``.failed``. The
caller holds an exclusive ``flock`` on ``DIR/.lock`` and hands it to this process, so the
lock is released exactly when the builds are over, however this process ends.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURES = ("aarch64", "x86_64")
# template.yaml's functions; tests/test_artifact.py checks it builds exactly these.
FUNCTIONS = ("ControlFunction", "StreamFunction", "ChunkerFunction")
LOCK = ".lock"


def build_command(function: str, arch: str, target: Path) -> list[str]:
    """What the test file's fixture runs for one folder."""
    return [
        "make",
        "-s",
        "--no-print-directory",
        f"build-{function}",
        f"ARCH={arch}",
        f"ARTIFACTS_DIR={target}",
    ]


def build_all(root: Path) -> None:
    for arch in ARCHITECTURES:
        folder = root / arch
        folder.mkdir(parents=True, exist_ok=True)
        for function in FUNCTIONS:
            result = subprocess.run(
                build_command(function, arch, folder / function),
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if result.returncode != 0:
                (folder / ".failed").write_text(result.stderr[-3000:])
                break
        else:
            (folder / ".complete").touch()


def start(root: Path) -> subprocess.Popen[bytes]:
    """Start the background build into ``root``, holding ``root/.lock`` until it ends."""
    root.mkdir(parents=True, exist_ok=True)
    lock = os.open(root / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # taken before any worker can look for it
        return subprocess.Popen(
            [sys.executable, "-m", "tests.artifact_prebuild", str(root)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(lock,),  # the child's copy keeps the lock
            start_new_session=True,
        )
    finally:
        os.close(lock)


def prebuilt(root: Path, arch: str) -> Path | None:
    """``root/arch`` once the background build is over, if it built that architecture
    completely; None when there is no background build or it failed there."""
    lock_path = root / LOCK
    if not lock_path.exists():
        return None
    with lock_path.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # waits for the builder to finish
    folder = root / arch
    return folder if (folder / ".complete").exists() else None


if __name__ == "__main__":
    build_all(Path(sys.argv[1]))
