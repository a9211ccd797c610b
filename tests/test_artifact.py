"""The Lambda artifacts as they would be deployed, built by the recipe `sam build` runs.

Built once per session by ``make build-<LogicalId>`` (lambda_build.py): the
aarch64 folders that go to Lambda, checked for what they hold (wheel tags, ARM shared
objects, pins, no test or laptop files, byte-code), and their x86_64 twins (same pins,
same recipe) run here by a Python 3.12 that sees only the artifact and the standard
library (``-I -S``: no site-packages, no PYTHONPATH, no development virtualenv), as the
Lambda runtime would: every handler in template.yaml imports from its folder, the
chunker and control handlers answer the events/ files against a moto server, and the
stream function's exec wrapper streams from the artifact against the Runtime API
emulator.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from chunker.format.read import ChunkReader
from chunker.format.records import RECORD_KINDS
from functions.app.dependencies import Services
from functions.app.domain.session_store import SessionStore
from functions.app.domain.sessions import Session
from functions.local.stack import MotoServer, ensure_table, moto_server, stop_process
from lambda_build import CREDENTIAL_SERVICES, make_variable
from tests import artifact_prebuild
from tests.conftest import ARTIFACTS_FOLDER, run_folder
from tests.rawday import build_raw_day
from tests.runtime_emulator import RuntimeApiEmulator
from tests.sse_client import SSEParser
from tests.streaming import SECRET, settings
from tests.test_bridge import load
from tests.test_control_handler import EXPECTED_STATUS, SESSION_ID, event_sample_session
from tests.test_iam import granted_to_code
from tests.test_template import FUNCTIONS, TEMPLATE, _CfnLoader

pytestmark = pytest.mark.end_to_end

ROOT = Path(__file__).parent.parent
BUCKET, TABLE = "artifact-test", "artifact-sessions"
EM_AARCH64, EM_X86_64 = 183, 62
# Lambda's python3.12 runs on Amazon Linux 2023: glibc 2.34.
LAMBDA_GLIBC = (2, 34)
NEVER_SHIPPED = ("tests", "bench", "docs", "events", ".ci", "lambda_build.py", "synthetic")
LAPTOP_MODULES = (
    "functions/local",
    "functions/dashboard",
    "chunker/batch/cli.py",
    "chunker/imports",
    "functions/container",  # the container image's server (tests/test_container_artifact.py)
)


PYTHON312 = make_variable("PYTHON312")


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """One folder per function of template.yaml, for one architecture."""

    arch: str
    root: Path

    def __getitem__(self, function: str) -> Path:
        return self.root / function


def build(arch: str, tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The run's background build of ``arch`` (tests.artifact_prebuild, started with the
    session) once it is over; built here, by the same commands, if it failed."""
    assert sorted(artifact_prebuild.FUNCTIONS) == sorted(FUNCTIONS)
    prebuilt = artifact_prebuild.prebuilt(run_folder(tmp_path_factory) / ARTIFACTS_FOLDER, arch)
    if prebuilt is not None:
        return Artifacts(arch, prebuilt)
    root = tmp_path_factory.mktemp(arch)
    for function in FUNCTIONS:
        result = subprocess.run(
            artifact_prebuild.build_command(function, arch, root / function),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return Artifacts(arch, root)


@pytest.fixture(scope="session")
def aarch64(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """What `sam build` puts under .aws-sam/build (built elsewhere, same recipe)."""
    return build("aarch64", tmp_path_factory)


@pytest.fixture(scope="session")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """The x86_64 twin: same requirements and pins, runnable on this machine."""
    return build("x86_64", tmp_path_factory)


def lambda_python(
    artifact: Path,
    code: str,
    env: dict[str, str],
    stdin: str | None = None,
    timeout_s: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Python 3.12 with only the standard library and ``artifact`` on its path."""
    bootstrap = f"import sys; sys.path.insert(0, {str(artifact)!r})\n"
    return subprocess.run(
        [PYTHON312, "-I", "-S", "-c", bootstrap + code],
        cwd=artifact,
        env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(artifact), **env},
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )


# --- what each folder holds ------------------------------------------------------------


def shipped(artifact: Path) -> list[str]:
    return sorted(p.relative_to(artifact).as_posix() for p in artifact.rglob("*"))


def distributions(artifact: Path) -> dict[str, str]:
    """{normalized name: version} of every dist-info in the folder."""
    found = {}
    for dist_info in artifact.glob("*.dist-info"):
        metadata = (dist_info / "METADATA").read_text(errors="replace")
        name = re.search(r"^Name: (.+)$", metadata, re.M)
        version = re.search(r"^Version: (.+)$", metadata, re.M)
        assert name and version, dist_info
        found[re.sub(r"[-_.]+", "-", name.group(1).strip()).lower()] = version.group(1).strip()
    return found


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def elf(path: Path) -> tuple[int, list[str]]:
    """(e_machine, section names) of a 64-bit little-endian ELF file."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path}: not ELF64 LE"
    (machine,) = struct.unpack_from("<H", data, 18)
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x3A)
    headers = [
        struct.unpack_from("<IIQQQQ", data, section_offset + i * entry_size) for i in range(count)
    ]
    names_at = headers[names_index][4]
    names = []
    for header in headers:
        start = names_at + header[0]
        names.append(data[start : data.index(b"\0", start)].decode())
    return machine, names


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_the_aarch64_build_holds_arm_wheels_for_python_3_12_pinned_by_constraints(
    aarch64: Artifacts, twin: Artifacts, function: str
) -> None:
    artifact = aarch64[function]
    pins = constraints()
    installed = distributions(artifact)
    assert installed, "no dependencies at all"
    for name, version in installed.items():
        assert pins.get(name) == version, f"{name} {version} is not the pinned {pins.get(name)}"
    assert installed == distributions(twin[function]), "the twin must have the same pins"
    for wheel in artifact.glob("*.dist-info/WHEEL"):
        for tag in re.findall(r"^Tag: (.+)$", wheel.read_text(), re.M):
            python, abi, platform = tag.split("-")
            if platform == "any":
                assert abi == "none" and python.startswith(("py3", "py2.py3", "py2")), tag
                continue
            # cp312-cp312, or the stable ABI of an older CPython (cryptography: cp311-abi3).
            stable = abi == "abi3" and re.fullmatch(r"cp3(\d+)", python)
            assert (python, abi) == ("cp312", "cp312") or (stable and int(stable.group(1)) <= 12), (
                f"{wheel.parent.name}: {tag} is not for CPython 3.12"
            )
            glibc = re.fullmatch(r"manylinux(?:2014|_(\d+)_(\d+))_aarch64", platform)
            assert glibc, f"{wheel.parent.name}: {tag} is not manylinux aarch64"
            if glibc.group(1):
                assert (int(glibc.group(1)), int(glibc.group(2))) <= LAMBDA_GLIBC, tag
    shared_objects = list(artifact.rglob("*.so*"))
    assert shared_objects, "the C extensions (pydantic-core, orjson, msgspec, zstandard)"
    for shared_object in shared_objects:
        machine, sections = elf(shared_object)
        assert machine == EM_AARCH64, f"{shared_object.name} is not AArch64 (e_machine {machine})"
        assert not [s for s in sections if s.startswith(".debug")], f"{shared_object}: debug info"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_folder_holds_only_what_its_function_runs(aarch64: Artifacts, function: str) -> None:
    artifact = aarch64[function]
    files = shipped(artifact)
    for path in files:
        top = path.split("/")[0]
        assert top not in NEVER_SHIPPED and not path.startswith(NEVER_SHIPPED), path
        assert not path.startswith(LAPTOP_MODULES), f"{path} is laptop-only"
        name = path.rsplit("/", 1)[-1]
        assert not re.fullmatch(r"(test_.*|.*_test|conftest)\.py", name), f"{path}: a test"
        assert "/tests/" not in f"/{path}/" and "/test/" not in f"/{path}/", path
        assert not name.endswith((".pyi", ".c", ".h", ".pyx")), path
    assert "zstandard/backend_cffi.py" not in files, "the C backend is the one used"
    assert not [f for f in files if f.startswith("zstandard/_cffi")]
    installed = distributions(artifact)
    if function == "ChunkerFunction":
        assert not {"fastapi", "starlette", "mangum"} & set(installed)
        assert not [f for f in files if f.startswith("functions/")]
    if function == "ControlFunction":
        assert not [f for f in files if f.startswith("functions/aws_lambda/bridge/")]
    if function == "StreamFunction":
        wrapper = artifact / "functions" / "aws_lambda" / "bridge" / "exec-wrapper"
        assert os.access(wrapper, os.X_OK), "the exec wrapper must stay executable"
    # Lambda runs the code as another user than the one who built it.
    for entry in artifact.rglob("*"):
        mode = entry.stat().st_mode
        assert mode & 0o004, f"{entry} is not world-readable"
        if entry.is_dir():
            assert mode & 0o001, f"{entry} is not world-searchable"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_each_folder_ships_botocore_models_for_the_services_its_role_grants(
    aarch64: Artifacts, twin: Artifacts, function: str
) -> None:
    """The build keeps the models of the services the code names (lambda_build.py); the
    role, derived from the code by tests/test_iam.py, says which services it calls. A
    missing model would only show in AWS, as UnknownServiceError."""
    granted = {action.split(":")[0] for action in granted_to_code(function)}
    for artifacts in (aarch64, twin):
        data = artifacts[function] / "botocore" / "data"
        shipped_models = {p.name for p in data.iterdir() if p.is_dir()}
        assert granted <= shipped_models, f"no model for {granted - shipped_models}"
        assert shipped_models - granted <= set(CREDENTIAL_SERVICES), shipped_models - granted
        for top in ("endpoints.json", "partitions.json", "_retry.json"):
            assert (data / top).is_file(), top


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_no_shipped_distribution_is_a_pydantic_plugin(aarch64: Artifacts, function: str) -> None:
    """The template sets PYDANTIC_DISABLE_PLUGINS for every function (pydantic would scan
    every distribution's entry points at each cold start): that must disable nothing."""
    entry_points = sorted(aarch64[function].glob("*.dist-info/entry_points.txt"))
    assert entry_points, "the scan found no entry points file at all"
    for path in entry_points:
        groups = re.findall(r"^\[([^\]]+)\]", path.read_text(), re.M)
        assert "pydantic" not in groups, path.parent.name
    variables = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_module_has_unchecked_byte_code_for_python_3_12(
    aarch64: Artifacts, function: str
) -> None:
    """/var/task is read-only: without .pyc files every cold start compiles everything.
    Hash-based and unchecked, because a zip round trip changes file times."""
    artifact = aarch64[function]
    sources = list(artifact.rglob("*.py"))
    assert len(sources) > 100
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert compiled.exists(), f"no byte-code for {source.relative_to(artifact)}"
        (flags,) = struct.unpack_from("<I", compiled.read_bytes(), 4)
        assert flags == 0b01, f"{compiled.relative_to(artifact)}: not unchecked-hash ({flags})"


def test_a_missing_python_3_12_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "build-ChunkerFunction",
            f"PYTHON312={tmp_path / 'python3.12'}",
            f"ARTIFACTS_DIR={tmp_path / 'out'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    message = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(message) == 1 and "Python 3.12" in message[0], result.stderr


# --- the twin, run as Lambda would run it ----------------------------------------------


def handler_spec(function: str) -> tuple[str, str]:
    module, _, attribute = FUNCTIONS[function]["Handler"].rpartition(".")
    return module, attribute


# The template's own values for these, as they are: which route groups the function's
# app serves (functions.app.application), so each twin is tested serving what it serves.
# And pydantic's plugin scan, which the template turns off for every function.
FROM_TEMPLATE = ("APP_ROUTES", "PYDANTIC_DISABLE_PLUGINS")


def function_environment(function: str, server: MotoServer | None) -> dict[str, str]:
    """What the template and the Lambda runtime put into a function's environment."""
    variables = {
        **TEMPLATE["Globals"]["Function"]["Environment"]["Variables"],
        **FUNCTIONS[function].get("Environment", {}).get("Variables", {}),
    }
    env = {
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_FUNCTION_NAME": "dispatch-replay-artifact-test",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_SERVICE_NAME": "dispatch-replay",
        "POWERTOOLS_METRICS_NAMESPACE": "DispatchReplayTest",
        "REPLAY_BUCKET": BUCKET,
        "REPLAY_TABLE": TABLE,
        "AUTH_MODE": "jwt",
        "STREAM_TOKEN_SECRET": SECRET,
        "CHUNK_BUCKET_MS": "600000",
        "CHUNK_HISTOGRAM_BIN_MS": "600000",
    }
    env.update({name: variables[name] for name in FROM_TEMPLATE if name in variables})
    if server is not None:
        env["AWS_ENDPOINT_URL"] = server.endpoint
    return env


IMPORT_PROBE = """
import collections as counters, gc, importlib, json, os, pathlib, sys, sysconfig
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
searches = counters.Counter()

class Searches:  # first on the meta path: sees every module the import system looks for
    @staticmethod
    def find_spec(name, path=None, target=None):
        searches[name] += 1
        return None

sys.meta_path.insert(0, Searches)
module = importlib.import_module({module!r})
sys.meta_path.remove(Searches)
# A missing module that code asks for again and again (FastAPI asked for pydantic.v1, which
# the folders do not ship, 183 times) is marked missing instead. Twice is urllib3's two
# modules each trying the optional brotli.
again = {{name: n for name, n in searches.items() if n > 2}}
assert not again, f"looked for again and again during the init: {{again}}"
records = sys.modules.get("chunker.format.records")
built = sorted(
    name for name, model in {{**records.RECORD_MODELS, "reference": records.Reference}}.items()
    if model.__pydantic_complete__
) if records else []
handler = getattr(module, {attribute!r})
assert callable(handler)
# The init ran with the collector paused (chunker.init_phase) and resumed it after.
assert not collections, f"{{len(collections)}} collections during the init"
assert gc.isenabled() and gc.get_freeze_count() > 0, (gc.isenabled(), gc.get_freeze_count())
task_root = pathlib.Path(os.environ["LAMBDA_TASK_ROOT"])
first_party = sorted(
    ".".join(p.relative_to(task_root).with_suffix("").parts).removesuffix(".__init__")
    for p in task_root.rglob("*.py")
    if p.relative_to(task_root).parts[0] in ("functions", "chunker")
)
for name in first_party:  # nothing shipped that cannot import
    importlib.import_module(name)
paths = sysconfig.get_paths()
outside = sorted(
    name for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None)
    and not m.__file__.startswith(str(task_root))
    and (not m.__file__.startswith(paths["stdlib"]) or m.__file__.startswith(paths["purelib"]))
)
print(json.dumps({{"outside": outside, "modules": first_party, "built": built}}))
"""


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_handler_imports_from_its_own_folder_alone(twin: Artifacts, function: str) -> None:
    """Init included: the control app is built at import, as in Lambda."""
    module, attribute = handler_spec(function)
    assert FUNCTIONS[function]["CodeUri"] == ".", "the Makefile at CodeUri builds the folder"
    result = lambda_python(
        twin[function],
        IMPORT_PROBE.format(module=module, attribute=attribute),
        function_environment(function, None),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["outside"] == [], "imported from outside the artifact and the stdlib"
    assert module in probe["modules"]
    # The raw-record and reference validators (deferred) are built by the chunker's init,
    # which validates them, and by no HTTP function's, which never does.
    inputs = ["reference", *RECORD_KINDS] if function == "ChunkerFunction" else []
    assert probe["built"] == sorted(inputs)


DRIVER = """
import importlib, json, sys
module, _, attribute = {handler!r}.rpartition(".")
handler = getattr(importlib.import_module(module), attribute)

class Context:
    function_name = "dispatch-replay-artifact-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:artifact-test"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name = "/aws/lambda/artifact-test"
    log_stream_name = "2026/03/14/[$LATEST]abc"
    def get_remaining_time_in_millis(self):
        return 30000

print("READY", flush=True)
for line in sys.stdin:
    try:
        answer = {{"result": handler(json.loads(line), Context())}}
    except Exception as exc:
        answer = {{"error": f"{{type(exc).__name__}}: {{exc}}"}}
    print("RESULT " + json.dumps(answer), flush=True)
"""


class Driver:
    """A handler in its own Lambda-like process, fed one event at a time."""

    def __init__(self, artifact: Path, handler: str, env: dict[str, str]) -> None:
        bootstrap = f"import sys; sys.path.insert(0, {str(artifact)!r})\n"
        self.process = subprocess.Popen(
            [PYTHON312, "-I", "-S", "-c", bootstrap + DRIVER.format(handler=handler)],
            cwd=artifact,
            env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(artifact), **env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._read_until("READY")

    def _read_until(self, marker: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # log lines (Powertools writes to stdout) skipped
            if line.startswith(marker):
                return line[len(marker) :].strip()
        assert self.process.stderr is not None
        raise AssertionError(f"the handler process ended: {self.process.stderr.read()[-3000:]}")

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._read_until("RESULT "))
        assert "error" not in answer, answer["error"]
        result: dict[str, Any] = answer["result"]
        return result

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        stop_process(self.process)  # type: ignore[arg-type]


@dataclasses.dataclass
class Stack:
    server: MotoServer
    store: SessionStore
    chunker_results: dict[str, dict[str, Any]]
    sample: Session


def moto_client(server: MotoServer, service: Any) -> Any:
    """A dev-side boto3 client on the test's moto server (setup and read-back only)."""
    environment = server.environment
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=environment["AWS_DEFAULT_REGION"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture(scope="module")
def stack(twin: Artifacts) -> Iterator[Stack]:
    """A moto server holding a raw XLHI day, chunked by the chunker artifact's handler."""
    with moto_server() as server:
        s3, dynamodb = moto_client(server, "s3"), moto_client(server, "dynamodb")
        s3.create_bucket(Bucket=BUCKET)
        ensure_table(dynamodb, TABLE)
        raw = build_raw_day(seed=5, hours=(0, 3), airport="XLHI").objects()
        for key, body in raw.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        chunker = Driver(
            twin["ChunkerFunction"],
            FUNCTIONS["ChunkerFunction"]["Handler"],
            function_environment("ChunkerFunction", server),
        )
        try:
            results = {
                name: chunker.invoke(load(name))
                for name in (
                    "chunker-on-demand-day.json",
                    "chunker-on-demand-hours.json",
                    "chunker-force-rebuild.json",
                )
            }
        finally:
            chunker.close()
        store = SessionStore(dynamodb, TABLE)
        services = Services(
            settings=settings(replay_bucket=BUCKET, replay_table=TABLE),
            sessions=store,
            chunks=ChunkReader(s3, BUCKET),
        )
        yield Stack(server, store, results, event_sample_session(services))


def reset_session(stack: Stack, **changes: Any) -> None:
    stack.store.delete(SESSION_ID)
    stack.store.create(dataclasses.replace(stack.sample, **changes))


def test_the_chunker_artifact_chunks_the_event_files_day(stack: Stack) -> None:
    day = stack.chunker_results["chunker-on-demand-day.json"]
    assert day["published"] and day["hours_built"] == list(range(24))
    assert day["counts"]["positions"]["accepted"] > 0
    hours = stack.chunker_results["chunker-on-demand-hours.json"]
    assert hours["hours_built"] == [6, 7] and hours["version"] == day["version"]
    forced = stack.chunker_results["chunker-force-rebuild.json"]
    assert forced["version"] == day["version"] and not forced["already_published"]
    s3 = moto_client(stack.server, "s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="chunks/")["Contents"]]
    assert len(keys) > 10  # the 10-minute chunks of the day and its manifest


def test_the_control_artifact_answers_every_http_event_file(twin: Artifacts, stack: Stack) -> None:
    control = Driver(
        twin["ControlFunction"],
        FUNCTIONS["ControlFunction"]["Handler"],
        function_environment("ControlFunction", stack.server),
    )
    try:
        for name in sorted(EXPECTED_STATUS):
            reset_session(stack)  # each event against the sample session as created
            response = control.invoke(load(name))
            assert response["statusCode"] == EXPECTED_STATUS[name], (name, response.get("body"))
            headers = {k.lower(): v for k, v in response["headers"].items()}
            if response["statusCode"] >= 400:
                assert headers["content-type"] == "application/problem+json", name
            assert headers["x-request-id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
        # Its app serves no stream (APP_ROUTES): the stream function's routes are not there.
        for name in ("stream-open.json", "stream-legacy.json"):
            response = control.invoke(load(name))
            assert response["statusCode"] == 404, (name, response.get("body"))
            assert json.loads(response["body"])["type"].endswith("not-found"), name
    finally:
        control.close()


def test_the_stream_artifact_streams_through_its_exec_wrapper(
    twin: Artifacts, stack: Stack, tmp_path: Path
) -> None:
    """The wrapper as Lambda starts it ("$@" = the runtime's interpreter and bootstrap),
    that interpreter seeing only the standard library (-S) and the artifact."""
    artifact = twin["StreamFunction"]
    now = time.time_ns() // 1_000_000
    clock = dataclasses.replace(stack.sample.clock, state="playing", speed=8, anchor_wall=now)
    reset_session(stack, clock=clock, presence_until=now + 120_000)
    runtime_python = tmp_path / "python3.12"  # /var/lang/bin/python3.12: no site-packages
    runtime_python.write_text(f'#!/bin/sh\nexec "{PYTHON312}" -S "$@"\n')
    runtime_python.chmod(0o755)
    env = {
        **function_environment("StreamFunction", stack.server),
        "PATH": "/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(artifact),
        "STREAM_POLL_MS": "100",
    }
    wrapper = FUNCTIONS["StreamFunction"]["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    wrapper_path = artifact / wrapper.removeprefix("/var/task/")
    log = tmp_path / "bridge.log"
    with RuntimeApiEmulator() as emulator:
        env["AWS_LAMBDA_RUNTIME_API"] = emulator.address
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [str(wrapper_path), str(runtime_python), "/var/runtime/bootstrap.py"],
                cwd=tmp_path,
                env=env,
                stdout=sink,
                stderr=sink,
            )
        try:
            recorded = emulator.invoke(load("stream-open.json"), timeout_s=8)
            deadline = time.monotonic() + 60
            while not any(
                e.event == "vehicle_update"
                for e in SSEParser().feed(b"".join(c for _, c in recorded.chunks[1:]))
            ):
                assert not recorded.done.is_set(), "ended before its first frame: buffered?"
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.01)
            recorded.wait(30)
            # Its app serves only the streams (APP_ROUTES): a control route is not there.
            control_route = emulator.invoke(load("control-get-session.json")).wait()
        finally:
            stop_process(process)
    prelude, body = control_route.split()
    assert prelude["statusCode"] == 404, body[:500]
    assert json.loads(body)["type"].endswith("not-found")
    assert recorded.headers["lambda-runtime-function-response-mode"] == "streaming"
    prelude, body = recorded.split()
    assert prelude["statusCode"] == 200, body[:500]
    assert prelude["headers"]["content-type"].startswith("text/event-stream")
    events = list(SSEParser().feed(body))
    assert events[0].event == "snapshot"
    assert events[-1].event == "reconnect", "it ends itself before the deadline"
    assert recorded.trailers == {}


# --- sam local ---------------------------------------------------------------------------


def test_env_json_fills_every_variable_sam_local_would_fill_with_a_logical_id() -> None:
    """`sam local --env-vars events/env.json`: SAM resolves !Ref / !GetAtt in Environment to
    logical ids ("ReplayBucket"), so each such variable needs a real local value here."""
    overrides = json.loads((ROOT / "events" / "env.json").read_text())
    shared = overrides.pop("Parameters")
    assert set(overrides) <= set(FUNCTIONS), "sections are function logical ids"
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)
    global_variables = template["Globals"]["Function"]["Environment"]["Variables"]
    for function, properties in FUNCTIONS.items():
        variables = {**global_variables, **properties.get("Environment", {}).get("Variables", {})}
        local = {**shared, **overrides.get(function, {})}
        intrinsic = {name for name, value in variables.items() if isinstance(value, dict)}
        assert intrinsic <= set(local), f"{function}: {sorted(intrinsic - set(local))}"
        assert local["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_events_readme_lists_every_event_file() -> None:
    readme = (ROOT / "events" / "README.md").read_text()
    for event in sorted((ROOT / "events").glob("*.json")):
        prefix = event.name.split("-")[0]
        assert event.name in readme or f"`{prefix}-*.json`" in readme, event.name


def test_dependency_caches_unused_for_a_day_are_pruned(tmp_path: Path) -> None:
    from lambda_build import CACHE_UNUSED_S, prune_cache

    now = 1_800_000_000.0
    entries = {}
    for name, age in {
        "current": 10 * CACHE_UNUSED_S,
        "recent": 60,
        "old": CACHE_UNUSED_S + 1,
    }.items():
        entry = tmp_path / name
        (entry / "pkg").mkdir(parents=True)
        (entry / ".complete").touch()
        os.utime(entry / ".complete", (now - age, now - age))
        entries[name] = entry
    abandoned = tmp_path / ".x86_64-key-partial"  # a build killed mid-install
    abandoned.mkdir()
    os.utime(abandoned, (now - 2 * CACHE_UNUSED_S, now - 2 * CACHE_UNUSED_S))

    removed = prune_cache(tmp_path, keep=entries["current"], now=now)

    assert sorted(p.name for p in removed) == [".x86_64-key-partial", "old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "recent"]


# Modules whose annotations FastAPI (route signatures) and pydantic (models) evaluate while
# the HTTP functions initialize. With ``from __future__ import annotations`` each one is
# a string that typing compiles and evaluates again (1,300 ForwardRefs, 640 evals: ~4 % of the
# control init's instructions, docs/performance.md), so these modules do without it.
EVALUATED_AT_INIT = (
    "chunker/format/encoding.py",
    "chunker/format/records.py",
    "chunker/format/rows.py",
    "functions/app/control/legacy.py",
    "functions/app/control/resource.py",
    "functions/app/control/routes.py",
    "functions/app/control/schema.py",
    "functions/app/domain/bookmarks.py",
    "functions/app/history/queries.py",
    "functions/app/history/routes.py",
    "functions/app/settings.py",
    "functions/app/stream/legacy.py",
    "functions/app/stream/routes.py",
)


def test_annotations_evaluated_at_init_are_not_strings() -> None:
    stringified = [
        name
        for name in EVALUATED_AT_INIT
        if "from __future__ import annotations" in (ROOT / name).read_text()
    ]
    assert stringified == []
