"""Cold start of each Lambda function, from its built artifact.

``python -m bench coldstart [--runs N]``: builds the x86_64 twin of every function
(``make build-<LogicalId> ARCH=x86_64``: the recipe `sam build` runs, the same pins as
the arm64 folders) and starts a fresh Python 3.12 per run that sees only the artifact
and the standard library, as the Lambda runtime does. It times the init phase: what
Lambda does before the first invocation —

- ControlFunction, ChunkerFunction: importing the template's ``Handler`` module with
  ``AWS_LAMBDA_INITIALIZATION_TYPE`` set (the control app, its clients and settings are
  built then; the chunker's settings and S3 client too);
- StreamFunction: what the streaming bridge does before its first ``/invocation/next``
  (import the bridge, build the app).

Baselines in the same run: the interpreter starting and exiting (the floor no artifact
can beat); a fixed standard-library workload (importing asyncio, email, http.client,
logging, ssl, urllib.request, xml.etree, zoneinfo, json, decimal in a fresh process),
run alternately with the functions, so that the ratio init / workload says how heavy an
init is whatever else the shared machine is doing; and the same init from a copy of the
artifact without its byte-code (what every cold start paid before the build compiled
it: /var/task is read-only). One more run with ``-X importtime`` names the top
contributors. Target (DESIGN.md): init <= 500 ms per function on this machine.

Each cold start also reports its CPU time (``time.process_time`` in the process: less
sensitive than wall time to what else the shared machine runs) and, against a moto
server holding a small published day, **init + first request**: the same fresh process
then answers its function's first event, so work moved out of init onto the first
request shows up there (control: ``control-get-session.json``; stream: from the exec
wrapper's start to the first SSE event of ``stream-open.json`` out of the Runtime API
emulator; chunker: ``chunker-on-demand-hours.json``, a two-hour job).

``--baseline DIR``: folders built from another revision (``DIR/<LogicalId>``, e.g. ``git
archive main | tar -x -C /tmp/main && make -C /tmp/main build-ControlFunction ARCH=x86_64
ARTIFACTS_DIR=/tmp/base/ControlFunction``), started alternately with this tree's in the
same loop: a before/after comparison under the same load.
Every process of a function gets the template's values the artifact tests take as they
are (``APP_ROUTES``, ``PYDANTIC_DISABLE_PLUGINS``), the baseline folders the same.
Results: bench/results/coldstart.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import write_result
from lambda_build import make_variable

EVENTS = Path(__file__).parent.parent / "events"

ROOT = Path(__file__).parent.parent
TARGET_MS = 500.0
FUNCTIONS = ("ControlFunction", "StreamFunction", "ChunkerFunction")

# What each function does in its init phase (the Lambda runtime, or the bridge for the
# stream function: functions/aws_lambda/bridge/__main__.py serve() before next_invocation()).
INIT = {
    "ControlFunction": "import functions.aws_lambda.handlers",
    "StreamFunction": (
        "from functions.aws_lambda.bridge.__main__ import DEFAULT_APP, load_app\n"
        "load_app(DEFAULT_APP)"
    ),
    "ChunkerFunction": "import chunker.batch.lambda_handler",
}
PROBE = """
import time
started, cpu = time.perf_counter(), time.process_time()
import sys
sys.path.insert(0, {artifact!r})
{init}
print("INIT_MS", (time.perf_counter() - started) * 1000)
print("INIT_CPU_MS", (time.process_time() - cpu) * 1000)
{first}
"""
# After the init, in the same process: the function's first invocation (control, chunker).
FIRST_REQUEST = """
import json
class Context:
    function_name = "dispatch-replay-coldstart"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldstart"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name = "/aws/lambda/coldstart"
    log_stream_name = "2026/03/14/[$LATEST]abc"
    def get_remaining_time_in_millis(self):
        return 30000
answer = getattr(sys.modules[{module!r}], {attribute!r})(json.loads({event!r}), Context())
assert {check}, str(answer)[:500]
print("FIRST_MS", (time.perf_counter() - started) * 1000)
"""
HANDLERS = {
    "ControlFunction": ("functions.aws_lambda.handlers", "control_handler"),
    "ChunkerFunction": ("chunker.batch.lambda_handler", "handler"),
}
FIRST_EVENT = {
    "ControlFunction": ("control-get-session.json", 'answer["statusCode"] == 200'),
    "ChunkerFunction": ("chunker-on-demand-hours.json", 'answer["hours_built"] == [6, 7]'),
    "StreamFunction": ("stream-open.json", ""),
}
STDLIB_WORKLOAD = (
    "import asyncio, decimal, email.message, http.client, json, logging, ssl, "
    "urllib.request, xml.etree.ElementTree, zoneinfo"
)
ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    "AWS_LAMBDA_FUNCTION_NAME": "dispatch-replay-coldstart",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # init must not need the network
    "REPLAY_BUCKET": "coldstart-bench",
    "REPLAY_TABLE": "coldstart-bench",
    "STREAM_TOKEN_SECRET": "b" * 40,
    "POWERTOOLS_SERVICE_NAME": "dispatch-replay",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=9, help="cold starts per function")
    parser.add_argument("--top", type=int, default=12, help="importtime contributors listed")
    parser.add_argument(
        "--first-runs", type=int, default=5, help="cold starts + first request per function"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="folders of another build (DIR/<LogicalId>), measured alternately with these",
    )


def template_environment(function: str) -> dict[str, str]:
    """The template's values the artifact tests also take as they are (the route groups a
    function's app serves, pydantic's plugin scan off): an init is timed as that function
    runs it."""
    from tests.test_artifact import FROM_TEMPLATE, function_environment

    variables = function_environment(function, None)
    return {name: variables[name] for name in FROM_TEMPLATE if name in variables}


def build_twin(function: str, folder: Path) -> None:
    subprocess.run(
        ["make", "-s", f"build-{function}", "ARCH=x86_64", f"ARTIFACTS_DIR={folder}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


class Cold:
    """What one cold process measured."""

    def __init__(self, stdout: str, wall_ms: float, stderr: str) -> None:
        self.init_ms = _value(stdout, "INIT_MS")
        self.init_cpu_ms = _value(stdout, "INIT_CPU_MS")
        self.first_ms = _value(stdout, "FIRST_MS") if "FIRST_MS" in stdout else None
        self.wall_ms = wall_ms
        self.stderr = stderr


def _value(stdout: str, name: str) -> float:
    return float(re.findall(rf"^{name} (\S+)$", stdout, re.M)[-1])


def start(
    python: str,
    artifact: Path,
    init: str,
    *flags: str,
    first: str = "",
    env: dict[str, str] | None = None,
) -> Cold:
    """One cold process: the init (and ``first``, the first request, if given)."""
    began = time.perf_counter()
    code = PROBE.format(artifact=str(artifact), init=init, first=first)
    result = subprocess.run(
        [python, "-I", "-S", *flags, "-c", code],
        cwd=artifact,
        env={**ENVIRONMENT, **(env or {}), "LAMBDA_TASK_ROOT": str(artifact)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall_ms = (time.perf_counter() - began) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"init failed in {artifact}: {result.stderr[-2000:]}")
    return Cold(result.stdout, wall_ms, result.stderr)


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "min": round(ordered[0], 1),
        "max": round(ordered[-1], 1),
    }


def importtime_top(stderr: str, artifact: Path, top: int) -> dict[str, Any]:
    """Self time per top-level package, and the modules with the most cumulative time."""
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), match.group(4)))
    by_package: dict[str, int] = defaultdict(int)
    for self_us, _, module in rows:
        by_package[module.split(".")[0]] += self_us
    first_party = {p.name for p in artifact.iterdir() if p.is_dir()} & {"functions", "chunker"}
    packages = sorted(by_package.items(), key=lambda kv: -kv[1])[:top]
    return {
        "self_ms_by_package": {
            name + (" (ours)" if name in first_party else ""): round(us / 1000, 1)
            for name, us in packages
        },
        "cumulative_ms_top_modules": {
            module: round(cumulative / 1000, 1)
            for _, cumulative, module in sorted(rows, key=lambda r: -r[1])[:top]
        },
        "note": "-X importtime inflates times; compare entries with each other",
    }


class FirstRequests:
    """A moto server with a small day published (by the chunker artifact itself) and the
    session the event files address: what each function's first invocation reads."""

    def __init__(self, python: str, chunker: Path) -> None:
        # Test helpers on purpose: the artifact tests' stack and events, not a second copy.
        from functions.local.stack import ensure_table, moto_server
        from tests.rawday import build_raw_day
        from tests.test_artifact import BUCKET, TABLE, function_environment, moto_client

        self.python = python
        self._server_context = moto_server()
        self.server = self._server_context.__enter__()
        self.env = {f: function_environment(f, self.server) for f in FUNCTIONS}
        s3, dynamodb = moto_client(self.server, "s3"), moto_client(self.server, "dynamodb")
        s3.create_bucket(Bucket=BUCKET)
        ensure_table(dynamodb, TABLE)
        for key, body in build_raw_day(seed=5, hours=(0, 3), airport="XLHI").objects().items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.s3, self.dynamodb, self.bucket, self.table = s3, dynamodb, BUCKET, TABLE
        day = self.invoke(chunker, "ChunkerFunction", "chunker-on-demand-day.json", "True")
        assert day.first_ms is not None
        self.reset_session()

    def reset_session(self) -> None:
        """The sample session, playing at 8x with a viewer present (a stream opens on it)."""
        import dataclasses

        from chunker.format.read import ChunkReader
        from functions.app.dependencies import Services
        from functions.app.domain.session_store import SessionStore
        from tests.streaming import settings
        from tests.test_control_handler import SESSION_ID, event_sample_session

        # The streams this bench opened and killed hold their leases until they expire: the
        # caps on concurrent streams would refuse the next opening.
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                if item["session_id"]["S"].startswith("lease#"):
                    self.dynamodb.delete_item(
                        TableName=self.table, Key={"session_id": item["session_id"]}
                    )
        store = SessionStore(self.dynamodb, self.table)
        services = Services(
            settings=settings(replay_bucket=self.bucket, replay_table=self.table),
            sessions=store,
            chunks=ChunkReader(self.s3, self.bucket),
        )
        sample = event_sample_session(services)
        now = time.time_ns() // 1_000_000
        clock = dataclasses.replace(sample.clock, state="playing", speed=8, anchor_wall=now)
        store.delete(SESSION_ID)
        store.create(dataclasses.replace(sample, clock=clock, presence_until=now + 600_000))

    def invoke(self, artifact: Path, function: str, event: str, check: str) -> Cold:
        """A cold process: init, then ``event`` handled."""
        module, attribute = HANDLERS[function]
        first = FIRST_REQUEST.format(
            module=module,
            attribute=attribute,
            event=(EVENTS / event).read_text(),
            check=check,
        )
        return start(self.python, artifact, INIT[function], first=first, env=self.env[function])

    def first(self, artifact: Path, function: str) -> tuple[float, float]:
        """(init ms, init + first request ms) of one cold start of ``function``."""
        if function == "StreamFunction":
            return self.stream(artifact)
        event, check = FIRST_EVENT[function]
        cold = self.invoke(artifact, function, event, check)
        assert cold.first_ms is not None
        return cold.init_ms, cold.first_ms

    def stream(self, artifact: Path) -> tuple[float, float]:
        """The exec wrapper started as Lambda starts it, the stream-open event waiting:
        (ms until it asks for its first invocation, ms until the first SSE event is out)."""
        from functions.local.stack import stop_process
        from tests.runtime_emulator import RuntimeApiEmulator

        self.reset_session()
        with tempfile.TemporaryDirectory(prefix="coldstart-stream-") as scratch:
            runtime_python = Path(scratch) / "python3.12"  # the runtime's: no site-packages
            runtime_python.write_text(f'#!/bin/sh\nexec "{self.python}" -S "$@"\n')
            runtime_python.chmod(0o755)
            wrapper = artifact / "functions/aws_lambda/bridge/exec-wrapper"
            with RuntimeApiEmulator() as emulator:
                event = json.loads((EVENTS / FIRST_EVENT["StreamFunction"][0]).read_text())
                recorded = emulator.invoke(event, timeout_s=30)
                began = time.monotonic()
                process = subprocess.Popen(
                    [str(wrapper), str(runtime_python), "/var/runtime/bootstrap.py"],
                    cwd=scratch,
                    env={
                        **ENVIRONMENT,
                        **self.env["StreamFunction"],
                        "LAMBDA_TASK_ROOT": str(artifact),
                        "AWS_LAMBDA_RUNTIME_API": emulator.address,
                    },
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                try:
                    deadline = began + 60
                    while True:
                        arrived = [t for t, chunk in list(recorded.chunks) if b"event: " in chunk]
                        if arrived:
                            break
                        if recorded.done.is_set() or process.poll() is not None:
                            body = b"".join(c for _, c in recorded.chunks)[-500:]
                            raise RuntimeError(f"no event from {artifact}: {body!r}")
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"no first event from {artifact} in 60 s")
                        time.sleep(0.002)
                finally:
                    stop_process(process)  # type: ignore[arg-type]
        return (recorded.handed_out_at - began) * 1000, (arrived[0] - began) * 1000

    def close(self) -> None:
        self._server_context.__exit__(None, None, None)


def compared(current: list[float], baseline: list[float]) -> dict[str, Any]:
    return {
        "baseline": summary(baseline),
        "current_over_baseline": round(statistics.median(current) / statistics.median(baseline), 2),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    python = make_variable("PYTHON312")
    results: dict[str, Any] = {}
    baseline_dir: Path | None = args.baseline.resolve() if args.baseline else None
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="coldstart-") as scratch:
        base = Path(scratch)
        floor = [start(python, base, "pass").wall_ms for _ in range(args.runs)]
        for function in FUNCTIONS:
            artifact = base / function
            build_twin(function, artifact)
            baseline = baseline_dir / function if baseline_dir else None
            # The same folder without byte-code: every import compiles (and cannot save).
            uncompiled = base / f"{function}-no-pyc"
            shutil.copytree(artifact, uncompiled, ignore=shutil.ignore_patterns("__pycache__"))
            init = INIT[function]
            env = template_environment(function)
            start(python, artifact, init, env=env)  # warm the page cache, as a deployed image is
            if baseline:
                start(python, baseline, init, env=env)
            cold: list[Cold] = []
            before: list[Cold] = []
            workload: list[float] = []
            for _ in range(args.runs):  # alternate, so all see the same machine
                cold.append(start(python, artifact, init, env=env))
                if baseline:
                    before.append(start(python, baseline, init, env=env))
                workload.append(start(python, base, STDLIB_WORKLOAD).init_ms)
            without_pyc = [
                start(python, uncompiled, init, "-B", env=env)
                for _ in range(max(3, args.runs // 3))
            ]
            profile = start(python, artifact, init, "-X", "importtime", env=env).stderr
            init_ms = [c.init_ms for c in cold]
            result: dict[str, Any] = {
                "init_ms": summary(init_ms),
                "init_cpu_ms": summary([c.init_cpu_ms for c in cold]),
                "process_wall_ms": summary([c.wall_ms for c in cold]),
                "stdlib_workload_ms": summary(workload),
                "init_over_stdlib_workload": round(
                    statistics.median(init_ms) / statistics.median(workload), 2
                ),
                "init_ms_without_pyc": summary([c.init_ms for c in without_pyc]),
                "pyc_speedup": round(
                    statistics.median(c.init_ms for c in without_pyc) / statistics.median(init_ms),
                    2,
                ),
                "passed": statistics.median(init_ms) <= TARGET_MS,
                "importtime": importtime_top(profile, artifact, args.top),
            }
            if before:
                result["baseline_init_ms"] = compared(init_ms, [c.init_ms for c in before])
                result["baseline_init_cpu_ms"] = compared(
                    [c.init_cpu_ms for c in cold], [c.init_cpu_ms for c in before]
                )
            results[function] = result
            shutil.rmtree(uncompiled, ignore_errors=True)
        if args.first_runs:
            stack = FirstRequests(python, base / "ChunkerFunction")
            try:
                for function in FUNCTIONS:
                    current: list[tuple[float, float]] = []
                    previous: list[tuple[float, float]] = []
                    for _ in range(args.first_runs):
                        current.append(stack.first(base / function, function))
                        if baseline_dir:
                            previous.append(stack.first(baseline_dir / function, function))
                    first: dict[str, Any] = {
                        "event": FIRST_EVENT[function][0],
                        "init_ms": summary([c[0] for c in current]),
                        "init_plus_first_request_ms": summary([c[1] for c in current]),
                        "first_request_ms": summary([c[1] - c[0] for c in current]),
                    }
                    if previous:
                        first["baseline_init_plus_first_request_ms"] = compared(
                            [c[1] for c in current], [c[1] for c in previous]
                        )
                        first["baseline_first_request_ms"] = compared(
                            [c[1] - c[0] for c in current], [c[1] - c[0] for c in previous]
                        )
                    results[function]["with_first_request"] = first
            finally:
                stack.close()
    document = {
        "target_init_ms": TARGET_MS,
        "interpreter_start_exit_ms": summary(floor),
        "runs": args.runs,
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "baseline": str(baseline_dir) if baseline_dir else None,
        "functions": results,
        "passed": all(r["passed"] for r in results.values()),
        "note": (
            "with_first_request: a moto server on 127.0.0.1; the stream's init there is "
            "counted from the exec wrapper's start (interpreter start included)"
        ),
    }
    write_result("coldstart", document)
    return document
