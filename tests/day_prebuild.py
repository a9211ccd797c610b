"""The browser tests' demo days, generated, chunked and served from storage in the background
from the start of the run: one moto server for the whole run holds each day in a bucket of
its own, and each browser file starts only the app on it (``tests.demo_server.day_server``).

Before, each browser file started ``dispatch-replay demo --cache``: the first demo of a day
generated and chunked it (the small day ~50 s of CPU, the compare day's two variants ~75 s
on two cores) while its xdist worker waited, and every demo, even with the day cached,
uploaded its ~1,500 objects into a fresh moto server (20-35 s on the loaded machine). Here
the day is built once, by the same command a test's demo runs (``demo --no-serve --cache``:
the run's day cache then holds it for the demos that tests/test_demo.py starts), restored
once into the run's moto server, and that starts when the session starts
(``pytest_sessionstart`` in tests/conftest.py), overlapping the first files, which mostly
wait (the stream abuse tests).

    python -m tests.day_prebuild CACHE_DIR NAME...

builds each named day (``DAYS``) in turn, writes where it is (``CACHE_DIR/.stack-NAME.json``:
the moto endpoint, the bucket, the sessions table), then keeps the moto server until it is
terminated (``pytest_sessionfinish``). The caller holds an exclusive ``flock`` on
``CACHE_DIR/.prebuild-NAME.lock`` for each day and hands the descriptors to this process,
which closes each one as its day is ready; a test that needs a day takes a shared lock on
its file first (``stack``), so it waits for the day being built rather than building it a
second time. A day the prebuild could not build has no ``.stack`` file: the test then starts
the whole demo itself, which builds it, so a failure is reported by the test, with the demo's
own message.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from tests.demo_server import COMPARE_DAY, SMALL_DAY

ROOT = Path(__file__).resolve().parent.parent
# What the browser files serve, in the order the run needs them (the small day: most files).
DAYS = {"small": SMALL_DAY, "compare": COMPARE_DAY}
BUCKETS = {"small": "dispatch-replay-local", "compare": "dispatch-replay-compare"}
TABLE = "dispatch-replay-sessions"
FD_VARIABLE = "DISPATCH_REPLAY_PREBUILD_FDS"


@dataclass(frozen=True)
class Stack:
    """Where the run's prebuilt day is: the moto server, its bucket, the sessions table."""

    endpoint: str
    bucket: str
    table: str


def lock_path(cache: Path, name: str) -> Path:
    return cache / f".prebuild-{name}.lock"


def stack_path(cache: Path, name: str) -> Path:
    return cache / f".stack-{name}.json"


def day_name(extra: list[str]) -> str | None:
    """The ``DAYS`` name of a demo's day arguments (None: not one the prebuild builds)."""
    return next((name for name, day in DAYS.items() if day == extra), None)


def stack(cache: Path, name: str) -> Stack | None:
    """The prebuilt day ``name``, once no prebuild is building it; None if there is no
    prebuild or it failed on that day."""
    lock = lock_path(cache, name)
    if not lock.exists():
        return None
    with lock.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # waits for the builder to finish that day
    try:
        return Stack(**json.loads(stack_path(cache, name).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def build(cache: Path, names: list[str], fds: dict[str, int]) -> None:
    """Build the days into a moto server of this process, then keep it until SIGTERM."""
    from functions.app.dependencies import dynamodb_client
    from functions.local import day_cache
    from functions.local.cli import build_parser
    from functions.local.demo import day_settings, demo_cache_key
    from functions.local.stack import ensure_table, moto_server

    running: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for process in running:  # a demo stops its own moto server on SIGTERM
            process.terminate()
            process.wait(timeout=30)
        raise SystemExit(128 + signum)  # unwinds: moto_server stops ours

    signal.signal(signal.SIGTERM, stop)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with moto_server() as aws:
        os.environ.update(aws.environment)
        from chunker.format.s3 import s3_client

        s3 = s3_client()
        for name in names:
            try:
                running.append(
                    subprocess.Popen(
                        # Niced: it takes the CPU the first files leave idle, not theirs.
                        ["nice", "-n", "10", sys.executable, "-m", "functions.local.cli"]
                        + ["demo", "--no-serve"]
                        + DAYS[name]
                        + ["--cache", str(cache)],
                        cwd=ROOT,
                        env=clean,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                try:
                    running[-1].wait(timeout=900)
                except subprocess.TimeoutExpired:
                    running[-1].terminate()
                    running[-1].wait(timeout=30)
                running.clear()
                args = build_parser().parse_args(["demo", *DAYS[name]])
                entry = day_cache.load(cache, demo_cache_key(*day_settings(args)))
                if entry is not None:
                    s3.create_bucket(Bucket=BUCKETS[name])
                    day_cache.restore(entry, s3, BUCKETS[name])
                    ensure_table(dynamodb_client(), TABLE)
                    where = Stack(aws.endpoint, BUCKETS[name], TABLE)
                    stack_path(cache, name).write_text(json.dumps(where.__dict__))
            except Exception as exc:  # noqa: BLE001 — the test builds the day itself, says why
                stack_path(cache, name).with_suffix(".failed").write_text(repr(exc))
            finally:
                os.close(fds[name])  # that day's waiters go on
        while True:
            signal.pause()


def start(cache: Path, names: list[str]) -> subprocess.Popen[bytes]:
    """Start building ``names`` into ``cache``, each one's lock held until it is ready."""
    cache.mkdir(parents=True, exist_ok=True)
    fds = {}
    try:
        for name in names:
            fd = os.open(lock_path(cache, name), os.O_CREAT | os.O_RDWR, 0o644)
            fds[name] = fd
            fcntl.flock(fd, fcntl.LOCK_EX)  # taken before any worker can look for it
        return subprocess.Popen(
            [sys.executable, "-m", "tests.day_prebuild", str(cache), *names],
            cwd=ROOT,
            env={**os.environ, FD_VARIABLE: ",".join(f"{n}={fd}" for n, fd in fds.items())},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=tuple(fds.values()),  # the child's copies keep the locks
            start_new_session=True,
        )
    finally:
        for fd in fds.values():
            os.close(fd)


if __name__ == "__main__":
    handed = dict(item.split("=") for item in os.environ[FD_VARIABLE].split(","))
    build(Path(sys.argv[1]), sys.argv[2:], {name: int(fd) for name, fd in handed.items()})
