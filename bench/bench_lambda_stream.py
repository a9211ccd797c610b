"""The stream function as Lambda runs it: memory and CPU of one stream, and the targets
under a Lambda-sized CPU share.

The x86_64 twin of the built StreamFunction folder (``make build-StreamFunction
ARCH=x86_64``: the recipe ``sam build`` runs) is started the way Lambda starts it — its
exec wrapper, a Python 3.12 seeing only the standard library (``-S``) and the folder — and
serves invocations from the Runtime API emulator (tests/runtime_emulator.py), which
records every streamed chunk with its arrival time. S3 and DynamoDB: a moto server with
the synthetic morning published (150 vehicles, full fleet, no filters). One process = one
execution environment = one stream at a time, as in Lambda.

Measured, per environment:

- **sizing**: peak RSS (``VmHWM``) and CPU-seconds per wall-second of one stream at 1x,
  64x and 1024x, for each ``CHUNK_CACHE_BYTES`` asked (a 1024x stream walks a new 60 s
  chunk every 60 ms of wall time: the cache fills to its bound);
- **under a CPU share**: the same process in a cgroup (v1 ``cpu``) whose CFS quota is
  Lambda's share at the chosen memory size (1 vCPU at 1,769 MB, proportionally less below:
  quota = period x MemorySize / 1769), then: frame lateness p50/p99 and drift at 1x, 8x
  and 64x; time to first event with the chunk cached and cold; control -> stream seek
  latency (the control write is the control API's: a conditional put of the session with
  the next version and timeline; the stream sees it at its next poll).

The cost model (docs/operations.md) is computed from these numbers by ``python -m bench
cost`` (bench/bench_cost.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import percentile, say, write_result
from bench.stack import AIRPORT, publish_morning
from functions.app.dependencies import dynamodb_client
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.session_store import SessionStore
from functions.app.domain.sessions import Filters, Session
from functions.app.domain.tokens import issue
from functions.local.stack import moto_server
from lambda_build import make_variable
from synthetic import GeneratorSettings
from tests.runtime_emulator import Recorded, RuntimeApiEmulator

ROOT = Path(__file__).parent.parent
BUCKET = "bench-lambda-stream"
TABLE = "bench-lambda-stream-sessions"
LAMBDA_FULL_VCPU_MB = 1769  # AWS: "at 1,769 MB, a function has the equivalent of one vCPU"
CFS_PERIOD_US = 100_000
CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
FRAME_ID = re.compile(rb"\nid: \d+\.\d+\.(\d+)\.1\n")
SNAPSHOT_ID = re.compile(rb"event: snapshot\nid: (\d+)\.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speeds", default="1,64,1024", help="speeds sized (RSS, CPU)")
    parser.add_argument("--cache-mb", default="16,32,64", help="CHUNK_CACHE_BYTES sized, MiB")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds per stream")
    parser.add_argument("--memory-mb", type=int, default=256, help="MemorySize for the quota run")
    parser.add_argument("--quota-cache-mb", type=int, default=32, help="its CHUNK_CACHE_BYTES")
    parser.add_argument("--samples", type=int, default=10, help="first-event and seek samples")
    parser.add_argument("--artifact", default=None, help="a built x86_64 StreamFunction folder")


# --- the environment --------------------------------------------------------------------


def build_artifact(into: Path) -> Path:
    """The x86_64 twin of the StreamFunction folder (the recipe sam build runs)."""
    folder = into / "StreamFunction"
    command = [
        "make", "-s", "--no-print-directory", "build-StreamFunction", "ARCH=x86_64",
        f"ARTIFACTS_DIR={folder}",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True, timeout=900)
    return folder


def python312() -> str:
    """The Python 3.12 the build uses (the Makefile's PYTHON312)."""
    return make_variable("PYTHON312")


class Environment:
    """One execution environment: the artifact's bridge under the emulator, optionally in
    a CPU cgroup with a CFS quota."""

    def __init__(
        self,
        artifact: Path,
        emulator: RuntimeApiEmulator,
        env: dict[str, str],
        scratch: Path,
        cpu_share: float | None,
    ) -> None:
        self.cgroup: Path | None = None
        self.emulator = emulator
        self.scratch = scratch
        runtime_python = scratch / "python3.12"  # /var/lang/bin/python3.12: no site-packages
        runtime_python.write_text(f'#!/bin/sh\nexec "{python312()}" -S "$@"\n')
        runtime_python.chmod(0o755)
        wrapper = artifact / "functions/aws_lambda/bridge/exec-wrapper"
        start = f'exec "{wrapper}" "{runtime_python}" /var/runtime/bootstrap.py'
        if cpu_share is not None:
            self.cgroup = CGROUP_CPU / f"dispatch-replay-bench-{os.getpid()}"
            self.cgroup.mkdir(exist_ok=True)
            (self.cgroup / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self.cgroup / "cpu.cfs_quota_us").write_text(str(int(CFS_PERIOD_US * cpu_share)))
            # Into the cgroup before the init phase runs: the shell moves itself, then execs.
            start = f"echo $$ > {self.cgroup / 'cgroup.procs'}; {start}"
        self.log = (scratch / "bridge.log").open("wb")
        self.process = subprocess.Popen(
            ["taskset", "-c", "0", "sh", "-c", start],
            cwd=scratch,
            env={
                **env,
                "AWS_LAMBDA_RUNTIME_API": emulator.address,
                "LAMBDA_TASK_ROOT": str(artifact),
            },
            stdout=self.log,
            stderr=self.log,
        )

    def ready(self) -> float:
        """Wait out the init phase (until the bridge takes its first invocation, a request
        it answers at once); seconds since the process started."""
        started = time.monotonic()
        warm_up = {"rawPath": "/", "requestContext": {"http": {"method": "GET"}}, "headers": {}}
        self.emulator.invoke(warm_up, timeout_s=120).wait(120)
        self.init_s = time.monotonic() - started
        self.init_cpu_s = self.cpu_s()
        return self.init_s

    def status_kb(self, field: str) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def throttled(self) -> dict[str, int]:
        if self.cgroup is None:
            return {}
        stat = dict(line.split() for line in (self.cgroup / "cpu.stat").read_text().splitlines())
        return {"nr_periods": int(stat["nr_periods"]), "nr_throttled": int(stat["nr_throttled"])}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        self.emulator.__exit__()
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.cgroup is not None:
            for _ in range(50):  # empty once the kernel has finished the process
                try:
                    self.cgroup.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


class Stack:
    """The moto server with the morning published, sessions, and stream events."""

    def __init__(self, secret: str, day_start: int) -> None:
        self.secret = secret
        self.day_start = day_start
        self.store = SessionStore(dynamodb_client(), TABLE)
        self.template = json.loads((ROOT / "events/stream-open.json").read_text())

    def session(self, position: int, speed: float, state: str = "playing") -> Session:
        now = time.time_ns() // 1_000_000
        start = self.day_start
        end = start + 2 * 3_600_000
        clock = PlaybackClock(state, speed, position, now, start, end, loop=True)  # type: ignore[arg-type]
        session = Session.new("bench", AIRPORT, clock, Filters(), now, 3_600_000, 86_400)
        self.store.create(session)
        return session

    def event(self, session: Session) -> dict[str, Any]:
        token = issue(self.secret.encode(), "stream", session.session_id, 3_600, sub="bench")
        event = copy.deepcopy(self.template)
        path = f"/api/replay/sessions/{session.session_id}/stream"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["rawQueryString"] = f"token={token}"
        event["queryStringParameters"] = {"token": token}
        event["requestContext"]["timeEpoch"] = time.time_ns() // 1_000_000
        return event

    def seek(self, session: Session, position: int) -> Session:
        now = time.time_ns() // 1_000_000
        changed = session.changed(
            clock=session.clock.seek(now, position), timeline=session.timeline + 1
        )
        self.store.replace(changed, session.version, now)
        return changed


def wall_of(monotonic_s: float) -> float:
    """Wall ms of a ``time.monotonic()`` reading (the emulator's arrival times)."""
    return (time.time() - time.monotonic() + monotonic_s) * 1000


def frames(recorded: Recorded) -> list[tuple[float, int]]:
    """(arrival wall ms, position) of every frame's first event."""
    found = []
    for arrival, chunk in recorded.chunks:
        for match in FRAME_ID.finditer(chunk):
            found.append((wall_of(arrival), int(match.group(1))))
    return found


def first_event_ms(recorded: Recorded) -> float | None:
    for arrival, chunk in recorded.chunks:
        if b"event: " in chunk:
            return (arrival - recorded.handed_out_at) * 1000
    return None


def until_done(recorded: Recorded, seconds: float) -> None:
    recorded.wait(seconds + 30)


# --- the measurements -------------------------------------------------------------------


def one_stream(
    environment: Environment, stack: Stack, speed: float, seconds: float
) -> dict[str, Any]:
    """One stream of ``seconds`` wall time at ``speed``: CPU per wall second (after its
    first event), peak RSS, lateness, bytes."""
    start = stack.day_start + 10 * 60_000
    session = stack.session(start, speed)
    emulator = environment.emulator
    # The stream ends itself DEADLINE_MARGIN (3 s) before the invocation's deadline.
    recorded = emulator.invoke(stack.event(session), timeout_s=seconds + 3.2)
    deadline = time.monotonic() + 60
    while first_event_ms(recorded) is None and time.monotonic() < deadline:
        time.sleep(0.005)
    cpu0, wall0 = environment.cpu_s(), time.monotonic()
    until_done(recorded, seconds)
    cpu, wall = environment.cpu_s() - cpu0, time.monotonic() - wall0
    shown = frames(recorded)
    lateness = [arrival - (session.clock.wall_time_of(p) or arrival) for arrival, p in shown]
    tenth = max(1, len(lateness) // 10)
    drift = percentile(lateness[-tenth:], 50) - percentile(lateness[:tenth], 50)
    body = sum(len(chunk) for _, chunk in recorded.chunks)
    opening = next((len(c) for _, c in recorded.chunks if b"event: " in c), 0)
    return {
        "speed": speed,
        "wall_s": round(wall, 2),
        "cpu_s_per_s": round(cpu / wall, 4),
        "peak_rss_mb": round(environment.status_kb("VmHWM") / 1024, 1),
        "rss_mb": round(environment.status_kb("VmRSS") / 1024, 1),
        "frames": len(shown),
        "lateness_ms_p50": round(percentile(lateness, 50), 1),
        "lateness_ms_p99": round(percentile(lateness, 99), 1),
        "drift_ticks": round(max(0.0, drift) * speed / 1000, 2),
        "bytes_per_s": round(body / wall),
        "bytes_per_s_after_opening": round((body - opening) / wall),
        "first_event_ms": round(first_event_ms(recorded) or -1, 1),
    }


def first_events(environment: Environment, stack: Stack, samples: int) -> dict[str, Any]:
    """Time to first event in a warm environment: a chunk not cached yet (each sample at
    another hour's chunk), then the same chunk again (cached)."""
    emulator = environment.emulator

    def once(position: int) -> float:
        session = stack.session(position, 1.0, state="paused")
        recorded = emulator.invoke(stack.event(session), timeout_s=5.0)
        recorded.wait(30)
        found = first_event_ms(recorded)
        assert found is not None, recorded.body[:300]
        return found

    cold = [once(stack.day_start + 5 * 60_000 + i * 7 * 60_000) for i in range(samples)]
    warm = stack.day_start + 3 * 60_000
    once(warm)
    cached = [once(warm) for _ in range(samples)]
    return {
        "cached_p50_ms": round(percentile(cached, 50), 1),
        "cached_p95_ms": round(percentile(cached, 95), 1),
        "cold_p50_ms": round(percentile(cold, 50), 1),
        "cold_p95_ms": round(percentile(cold, 95), 1),
    }


def seeks(environment: Environment, stack: Stack, samples: int) -> dict[str, Any]:
    """Seeks written as the control API writes them, during one 1x stream: time from the
    write to the stream's snapshot of the new timeline."""
    emulator = environment.emulator
    session = stack.session(stack.day_start + 60 * 60_000, 1.0)
    recorded = emulator.invoke(stack.event(session), timeout_s=samples * 1.0 + 8)
    while first_event_ms(recorded) is None:
        time.sleep(0.005)
    latencies = []
    seen = 0
    for index in range(samples):
        position = stack.day_start + 60 * 60_000 + (index + 1) * 37_000 * 3
        written = time.monotonic()
        session = stack.seek(session, position)
        timeline = str(session.timeline).encode()
        deadline = time.monotonic() + 5
        found = None
        while found is None and time.monotonic() < deadline:
            for arrival, chunk in recorded.chunks[seen:]:
                match = SNAPSHOT_ID.search(chunk)
                if match and match.group(1) == timeline:
                    found = arrival
            time.sleep(0.002)
        if found is not None:
            latencies.append((found - written) * 1000)
        seen = len(recorded.chunks)
        time.sleep(0.4)
    recorded.wait(60)
    return {
        "seeks": samples,
        "observed": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def function_env(
    stack_env: dict[str, str], secret: str, cache_mb: int, memory_mb: int
) -> dict[str, str]:
    """What template.yaml and the Lambda runtime put into the stream function's environment
    (a plain secret instead of the Secrets Manager ARN)."""
    return {
        "PATH": "/usr/bin:/bin",
        **{k: v for k, v in stack_env.items() if k.startswith("AWS_")},
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_FUNCTION_NAME": "dispatch-replay-bench-stream",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_SERVICE_NAME": "dispatch-replay-stream",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "AUTH_MODE": "jwt",
        "STREAM_TOKEN_SECRET": secret,
        "STREAM_MAX_SECONDS": "840",
        "CHUNK_CACHE_BYTES": str(cache_mb * 1024 * 1024),
        "STREAM_SHARED_FRAMES_BYTES": "0",
    }


def open_environment(artifact: Path, env: dict[str, str], cpu_share: float | None) -> Environment:
    """A new environment with its own Runtime API (a stopped environment's emulator thread
    would still be waiting to hand it the next invocation), past its init phase."""
    scratch = Path(tempfile.mkdtemp(prefix="lambda-env-"))
    emulator = RuntimeApiEmulator().__enter__()
    environment = Environment(artifact, emulator, env, scratch, cpu_share)
    environment.ready()
    return environment


# --- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    speeds = [float(s) for s in args.speeds.split(",")]
    caches = [int(c) for c in args.cache_mb.split(",")]
    secret = secrets.token_urlsafe(32)
    result: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="lambda-stream-") as scratch:
        artifact = Path(args.artifact) if args.artifact else build_artifact(Path(scratch))
        settings = GeneratorSettings(vehicles=150, flights=300, start_hour=6, hours=2)
        with moto_server() as aws:
            os.environ.update(aws.environment)
            day = publish_morning(settings, BUCKET, TABLE)
            stack = Stack(secret, day.start_ms + 6 * 3_600_000)
            sizing = []
            for cache_mb in caches:
                for speed in speeds:
                    env = function_env(aws.environment, secret, cache_mb, 1024)
                    environment = open_environment(artifact, env, None)
                    try:
                        step = one_stream(environment, stack, speed, args.seconds)
                    finally:
                        environment.close()
                    step["chunk_cache_mb"] = cache_mb
                    say(f"  sizing: {step}")
                    sizing.append(step)
            share = min(1.0, args.memory_mb / LAMBDA_FULL_VCPU_MB)
            env = function_env(aws.environment, secret, args.quota_cache_mb, args.memory_mb)
            # The Lambda-sized share and, as the control measured alongside it on the same
            # loaded machine, the same environment unthrottled: what the share itself costs.
            environments = {"unthrottled": open_environment(artifact, env, None)}
            if os.access(CGROUP_CPU, os.W_OK):
                environments = {"quota": open_environment(artifact, env, share), **environments}
            else:  # the proxy needs the cgroup v1 cpu controller, writable (root here)
                say(f"  no CPU quota: {CGROUP_CPU} is not writable; unthrottled only")
            runs: dict[str, dict[str, Any]] = {name: {"streams": []} for name in environments}
            runs.setdefault("quota", {"skipped": f"{CGROUP_CPU} not writable"})
            try:
                for index, speed in enumerate((1.0, 8.0, 64.0)):
                    order = list(environments) if index % 2 == 0 else list(environments)[::-1]
                    for name in order:
                        step = one_stream(environments[name], stack, speed, args.seconds)
                        say(f"  {name}: {step}")
                        runs[name]["streams"].append(step)
                for name, environment in environments.items():
                    runs[name]["first_event"] = first_events(environment, stack, args.samples)
                    say(f"  {name} first event: {runs[name]['first_event']}")
                for name, environment in environments.items():
                    runs[name]["seek"] = seeks(environment, stack, args.samples)
                    say(f"  {name} seek: {runs[name]['seek']}")
                for name, environment in environments.items():
                    runs[name]["cgroup_throttling"] = environment.throttled()
                    runs[name]["init"] = {
                        "wall_s": round(environment.init_s, 2),
                        "cpu_s": round(environment.init_cpu_s, 2),
                    }
                    runs[name]["peak_rss_mb"] = round(environment.status_kb("VmHWM") / 1024, 1)
            finally:
                for environment in environments.values():
                    environment.close()
    result.update(
        {
            "artifact": "x86_64 twin of StreamFunction (make build-StreamFunction ARCH=x86_64)",
            "sizing": sizing,
            "quota": {
                "memory_mb": args.memory_mb,
                "chunk_cache_mb": args.quota_cache_mb,
                "cpu_share_of_one_core": round(share, 4),
                "how": f"cgroup v1 cpu: cfs_period_us={CFS_PERIOD_US}, cfs_quota_us="
                f"{int(CFS_PERIOD_US * share)}, pinned to CPU 0 (taskset)",
                **runs["quota"],
            },
            "unthrottled": runs["unthrottled"],
            "targets": {
                "usd_per_viewer_hour_1x": 0.015,
                "p99_lateness_ms": 20,
                "first_event_cached_ms": 100,
                "seek_p95_ms": 250,
            },
            "load_average_at_end": os.getloadavg(),
        }
    )
    write_result("lambda_stream", result)
    return result
