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
Results: bench/results/coldstart.json.
"""

from __future__ import annotations

import argparse
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
started = time.perf_counter()
import sys
sys.path.insert(0, {artifact!r})
{init}
print("INIT_MS", (time.perf_counter() - started) * 1000)
"""
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


def build_twin(function: str, folder: Path) -> None:
    subprocess.run(
        ["make", "-s", f"build-{function}", "ARCH=x86_64", f"ARTIFACTS_DIR={folder}"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def start(python: str, artifact: Path, init: str, *flags: str) -> tuple[float, float, str]:
    """One cold process: (init ms inside it, process wall ms, stderr)."""
    began = time.perf_counter()
    result = subprocess.run(
        [python, "-I", "-S", *flags, "-c", PROBE.format(artifact=str(artifact), init=init)],
        cwd=artifact,
        env={**ENVIRONMENT, "LAMBDA_TASK_ROOT": str(artifact)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall_ms = (time.perf_counter() - began) * 1000
    if result.returncode != 0:
        raise RuntimeError(f"init failed in {artifact.name}: {result.stderr[-2000:]}")
    init_ms = float(re.findall(r"^INIT_MS (\S+)$", result.stdout, re.M)[-1])
    return init_ms, wall_ms, result.stderr


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


def run(args: argparse.Namespace) -> dict[str, Any]:
    python = make_variable("PYTHON312")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="coldstart-") as scratch:
        base = Path(scratch)
        floor = [start(python, base, "pass")[1] for _ in range(args.runs)]
        for function in FUNCTIONS:
            artifact = base / function
            build_twin(function, artifact)
            # The same folder without byte-code: every import compiles (and cannot save).
            uncompiled = base / f"{function}-no-pyc"
            shutil.copytree(artifact, uncompiled, ignore=shutil.ignore_patterns("__pycache__"))
            init = INIT[function]
            start(python, artifact, init)  # warm the page cache, as a deployed image is
            cold, workload = [], []
            for _ in range(args.runs):  # alternate, so both see the same machine
                cold.append(start(python, artifact, init))
                workload.append(start(python, base, STDLIB_WORKLOAD)[0])
            without_pyc = [
                start(python, uncompiled, init, "-B") for _ in range(max(3, args.runs // 3))
            ]
            _, _, profile = start(python, artifact, init, "-X", "importtime")
            init_ms = [c[0] for c in cold]
            results[function] = {
                "init_ms": summary(init_ms),
                "process_wall_ms": summary([c[1] for c in cold]),
                "stdlib_workload_ms": summary(workload),
                "init_over_stdlib_workload": round(
                    statistics.median(init_ms) / statistics.median(workload), 2
                ),
                "init_ms_without_pyc": summary([c[0] for c in without_pyc]),
                "pyc_speedup": round(
                    statistics.median(c[0] for c in without_pyc) / statistics.median(init_ms), 2
                ),
                "passed": statistics.median(init_ms) <= TARGET_MS,
                "importtime": importtime_top(profile, artifact, args.top),
            }
            shutil.rmtree(uncompiled, ignore_errors=True)
    document = {
        "target_init_ms": TARGET_MS,
        "interpreter_start_exit_ms": summary(floor),
        "runs": args.runs,
        "functions": results,
        "passed": all(r["passed"] for r in results.values()),
    }
    write_result("coldstart", document)
    return document
