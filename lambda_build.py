"""Build one Lambda function's artifact folder: its code, its pinned dependencies, byte-code.

    python lambda_build.py ControlFunction .aws-sam/build/ControlFunction
    python lambda_build.py ChunkerFunction out/ --arch x86_64   # the test twin
    python lambda_build.py ContainerService /app --arch aarch64  # the Dockerfile's build stage

The container image (Dockerfile) is built by the same recipe: ``ContainerService`` is the
app as the stream and control functions ship it, plus uvicorn (pyproject's ``container``
extra), less the Lambda adapters.

``sam build`` runs this through ``BuildMethod: makefile`` (the Makefile's
``build-<LogicalId>`` targets); ``make build`` runs the same targets, and the artifact
tests run it with ``--arch x86_64`` so the twin can be imported on this machine.
docs/operations.md says why this mechanism and what each folder holds.

What goes in:
- the runtime dependencies of pyproject.toml ``[project].dependencies`` (less the ones a
  function does not use, see ``FUNCTIONS``), resolved and pinned by constraints.txt, as
  manylinux wheels for CPython 3.12 on the function's architecture (never built from
  source: a wheel built here would be for this machine);
- the first-party packages the function imports, without the laptop-only modules (CLI,
  demo, local stack, the synthetic generator) and without the dashboard (served from a
  static host, README "Deploying to AWS");
- byte-code for all of it, compiled by a Python 3.12 (the runtime's version): Lambda's
  ``/var/task`` is read-only, so without it every cold start compiles everything again.

Run with the Python 3.12 that compiles the byte-code (the Makefile finds it); pip runs in
that interpreter too.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PYTHON_VERSION = "3.12"  # template.yaml Globals: Runtime python3.12
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to
# that glibc runs there. pip does not widen a manylinux_2_X tag by itself, so list them.
MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_34")
ARCHITECTURES = ("aarch64", "x86_64")

# Never in any artifact: modules and files only a laptop, the CLI or the tests use.
LAPTOP_ONLY = (
    "functions/local",  # the CLI, the demo, the local stack, the OpenAPI exporter
    "functions/dashboard",
    "chunker/batch/cli.py",
    "chunker/imports",  # importers of foreign formats (OSM layouts, tracks): laptop-only
    "synthetic",
)
# What dependency wheels carry that no function runs.
DEPENDENCY_JUNK = (
    "bin",  # console scripts pip writes with --target
    "*/__pycache__",  # compiled again below, by the runtime's Python, hash-based
    "zstandard/backend_cffi.py",  # the C backend is used; this one needs cffi
    "zstandard/_cffi.*.so",
    "annotated_types/test_cases.py",  # its own test suite's data
    "*.pyi",
    "*.c",  # C sources and headers (cffi ships some): nothing is compiled in Lambda
    "*.h",
    "*.pyx",
    "*/py.typed",
    "*.map",  # source maps of the API docs page's scripts: a browser's debugger reads them
    "numpy/tests",  # numpy's own test suites (3.4 MB of the 48)
    "numpy/*/tests",
    "numpy/conftest.py",  # its pytest configuration
    # pydantic 1's API, kept inside pydantic 2 for code not yet ported: nothing shipped
    # uses it, and FastAPI imports it (~35 ms of a cold start) only to ask whether a
    # route's types are pydantic 1 models; without it, the answer is "no" at once.
    "pydantic/v1",
)


@dataclass(frozen=True)
class Function:
    """What one function's folder holds."""

    packages: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    # Runtime dependencies (pyproject names) this function never imports.
    unused_dependencies: tuple[str, ...] = ()
    # pyproject optional-dependency groups it needs on top (installed as a second layer,
    # so the shared runtime dependencies reuse the Lambda functions' cache).
    extras: tuple[str, ...] = ()


CONTAINER_ONLY = "functions/container"  # the container's server: never in a Lambda folder
CHUNKER_JOB = "chunker/batch"  # the chunk job: the chunker function's alone

FUNCTIONS = {
    # No function imports boto3: their clients are botocore's (chunker.format.clients), so
    # boto3 and its S3 transfer manager (s3transfer) stay out of every folder.
    # The HTTP functions read chunks (chunker.format) and never run the chunker itself
    # (chunker.batch), nor so need numpy, its columnar path's dependency (45 MB).
    "ControlFunction": Function(
        packages=("functions", "chunker"),
        exclude=("functions/aws_lambda/bridge", CONTAINER_ONLY, CHUNKER_JOB),
        unused_dependencies=("numpy", "boto3"),
    ),
    "StreamFunction": Function(
        packages=("functions", "chunker"),
        exclude=(CONTAINER_ONLY, CHUNKER_JOB),
        unused_dependencies=("numpy", "boto3"),
    ),
    # The chunker serves no HTTP: no web framework, no API docs assets, no JWT checks.
    "ChunkerFunction": Function(
        packages=("chunker",),
        unused_dependencies=("boto3", "fastapi", "mangum", "swagger-ui-bundle-v2", "pyjwt"),
    ),
    # Not a Lambda function: the image's app (Dockerfile), served by uvicorn, so without
    # the Lambda adapters (handlers, bridge). Its runtime wheels are the stream function's
    # (Mangum's 60 KB included, unimported) so that both share one dependency cache.
    "ContainerService": Function(
        packages=("functions", "chunker"),
        exclude=("functions/aws_lambda", CHUNKER_JOB),
        extras=("container",),
        unused_dependencies=("numpy", "boto3"),
    ),
}


def make_variable(name: str) -> str:
    """A Makefile variable as make resolves it (``make print-NAME``), e.g. ``PYTHON312``:
    one place decides which interpreter builds and runs the artifacts."""
    out = subprocess.run(
        ["make", "-s", "--no-print-directory", f"print-{name}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class BuildError(Exception):
    """A build that cannot go on; the message is one line for the person running it."""


def _name(requirement: str) -> str:
    """The normalized distribution name of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise BuildError(f"cannot read requirement {requirement!r} in pyproject.toml")
    return normalize(match.group(1))


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(function: str) -> list[str]:
    """pyproject's runtime dependencies this function uses, as written there."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    unused = {normalize(n) for n in FUNCTIONS[function].unused_dependencies}
    return [r for r in project["dependencies"] if _name(r) not in unused]


def extra_requirements(function: str) -> list[str]:
    """The requirements of the function's pyproject extras, as written there."""
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    return [r for extra in FUNCTIONS[function].extras for r in optional[extra]]


def constraints() -> dict[str, str]:
    """constraints.txt as {normalized name: exact version}."""
    pins: dict[str, str] = {}
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise BuildError(f"constraints.txt pins with ==, not {line!r}")
        pins[normalize(name)] = version.strip()
    return pins


def platforms(arch: str) -> list[str]:
    """pip ``--platform`` values for Lambda's glibc on ``arch``."""
    return [f"{tag}_{arch}" for tag in MANYLINUX]


def install_dependencies(function: str, arch: str, target: Path) -> None:
    """pip-install the function's dependencies as binary wheels for Lambda into ``target``.

    Installed into a cache folder per (architecture, requirements, pins, this recipe) first
    and copied from there, so the second function with the same dependencies, and every
    rebuild whose pins did not change, costs a copy instead of a resolve. Entries unused for
    a day are pruned (``prune_cache``); ``make clean`` empties the cache. A function's
    extras are a second cached layer over the first.
    """
    layers = [runtime_requirements(function)]
    if FUNCTIONS[function].extras:
        layers.append(extra_requirements(function))
    for requirements in layers:
        cache = cached_wheels(function, arch, requirements)
        shutil.copytree(
            cache, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete")
        )
        prune_cache(cache.parent, keep=cache)


def cached_wheels(function: str, arch: str, requirements: list[str]) -> Path:
    """The cache folder holding ``requirements`` installed for ``arch``, built if missing."""
    # The recipe itself is part of the key: a changed junk list must not reuse a cache.
    inputs = (ROOT / "constraints.txt").read_bytes() + Path(__file__).read_bytes()
    key = hashlib.sha256(
        "\n".join([arch, PYTHON_VERSION, *MANYLINUX, *requirements]).encode() + inputs
    ).hexdigest()[:16]
    cache = ROOT / ".aws-sam" / "deps" / f"{arch}-{key}"
    if not (cache / ".complete").exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{arch}-{key}-", dir=cache.parent))
        partial.chmod(0o755)  # mkdtemp's 0700 would be copied onto the artifact's root
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-warn-script-location",
            "--target",
            str(partial),
            "--implementation",
            "cp",
            "--python-version",
            PYTHON_VERSION,
            "--only-binary=:all:",
            "--no-compile",
            "--constraint",
            str(ROOT / "constraints.txt"),
        ]
        for platform in platforms(arch):
            command += ["--platform", platform]
        result = subprocess.run([*command, *requirements], check=False)
        if result.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            raise BuildError(f"pip could not install the {arch} wheels for {function}")
        _remove(partial, DEPENDENCY_JUNK)
        strip_debug_info(partial, arch)
        check_pins(partial)
        compile_bytecode(partial)
        (partial / ".complete").touch()
        try:
            partial.rename(cache)
        except OSError:  # a concurrent build finished the same cache first
            shutil.rmtree(partial, ignore_errors=True)
    (cache / ".complete").touch()  # its last use: what pruning goes by
    return cache


CACHE_UNUSED_S = 86_400


def prune_cache(root: Path, keep: Path, now: float | None = None) -> list[Path]:
    """Remove dependency caches (and abandoned partial ones) not used for a day: each pin
    or recipe change leaves a 60-90 MB folder behind otherwise. A day, not "all but the
    newest": another build may be copying from an older entry right now."""
    now = time.time() if now is None else now
    removed = []
    for entry in root.iterdir():
        if entry == keep or not entry.is_dir():
            continue
        marker = entry / ".complete"
        last_use = (marker if marker.exists() else entry).stat().st_mtime
        if now - last_use > CACHE_UNUSED_S:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


# binutils that can rewrite each architecture's ELF files (Debian: binutils and
# binutils-aarch64-linux-gnu; .ci/run installs them).
STRIP = {"aarch64": "aarch64-linux-gnu-strip", "x86_64": "strip"}


def strip_debug_info(site: Path, arch: str) -> None:
    """Drop DWARF debug sections from the wheels' shared objects (zstandard ships 9.7 MB
    of them); symbols and code stay as they are."""
    tool = shutil.which(STRIP[arch])
    if tool is None:
        raise BuildError(
            f"{STRIP[arch]} not found: install binutils for {arch} "
            "(Debian: apt-get install binutils binutils-aarch64-linux-gnu)"
        )
    # Only those that carry DWARF: strip rewrites every file it is given, and rewriting
    # numpy's OpenBLAS (no debug info; an unusual segment layout) leaves it unloadable
    # ("ELF load command address/offset not page-aligned").
    shared_objects = sorted(str(p) for p in site.rglob("*.so") if b".debug_" in p.read_bytes())
    if shared_objects:
        subprocess.run([tool, "--strip-debug", *shared_objects], check=True)


def check_pins(site: Path) -> None:
    """Every installed distribution is pinned by constraints.txt, at that version."""
    pins = constraints()
    for dist_info in site.glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").rpartition("-")
        pinned = pins.get(normalize(name))
        if pinned is None:
            raise BuildError(f"runtime dependency {name} {version} is not in constraints.txt")
        if pinned != version:
            raise BuildError(f"{name} installed at {version}, constraints.txt pins {pinned}")


def _remove(root: Path, patterns: tuple[str, ...]) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        relative = path.relative_to(root).as_posix()
        if path.exists() and any(fnmatch.fnmatch(relative, p) for p in patterns):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def copy_code(function: str, target: Path) -> None:
    """The function's first-party packages, source files only, less what it never runs."""
    spec = FUNCTIONS[function]
    excluded = (*LAPTOP_ONLY, *spec.exclude)
    for package in spec.packages:
        for source in sorted((ROOT / package).rglob("*")):
            relative = source.relative_to(ROOT).as_posix()
            if any(relative == e or relative.startswith(e + "/") for e in excluded):
                continue
            if "__pycache__" in source.parts or source.is_dir():
                continue
            if source.suffix != ".py" and relative != "functions/aws_lambda/bridge/exec-wrapper":
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)  # keeps the exec wrapper executable


# Every boto3 client of ours is made by chunker.format.clients.aws_client with the service
# named as a literal: what the shipped code names is what its folder needs models for.
CLIENT_CALL = re.compile(r"\baws_client\(\s*[\"']([a-z0-9-]+)[\"']")
# botocore itself may make clients of these for credentials (assume-role, web identity,
# SSO profiles): kept in every folder, though a Lambda's credentials come from its
# environment.
CREDENTIAL_SERVICES = ("sts", "sso", "sso-oidc")


def aws_services(target: Path) -> set[str]:
    """The AWS services the first-party code in ``target`` creates clients for."""
    services: set[str] = set()
    for source in (
        p for package in ("functions", "chunker") for p in (target / package).rglob("*.py")
    ):
        text = source.read_text()
        if re.search(r"\bboto3\.(client|resource)\(", text):
            raise BuildError(
                f"{source.relative_to(target)} creates a boto3 client itself: use "
                "chunker.format.clients.aws_client, so the build sees which models it needs"
            )
        services.update(CLIENT_CALL.findall(text))
    return services


def prune_service_models(target: Path) -> list[str]:
    """Drop botocore's models of the services no code in ``target`` calls (400 of them,
    26 MB): fewer bytes, and botocore's loader lists every service folder, twice, when
    the first client is made. Returns the services kept."""
    data = target / "botocore" / "data"
    if not data.is_dir():
        return []
    keep = aws_services(target) | set(CREDENTIAL_SERVICES)
    missing = keep - {p.name for p in data.iterdir()}
    if missing:
        raise BuildError(f"botocore has no model for {', '.join(sorted(missing))}")
    for entry in data.iterdir():
        if entry.is_dir() and entry.name not in keep:
            shutil.rmtree(entry)
    return sorted(keep)


def compile_bytecode(*folders: Path) -> None:
    """Byte-code for every module, valid without looking at the source (hash based,
    unchecked): the folder is immutable once deployed, and a zip round trip changes
    file times (2 s resolution), which would make timestamp-based .pyc files stale."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            *map(str, folders),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BuildError(f"compileall failed: {(result.stdout + result.stderr).strip()[:500]}")


def build(function: str, target: Path, arch: str) -> None:
    """The whole recipe into an empty (or emptied) ``target``."""
    if function not in FUNCTIONS:
        raise BuildError(f"unknown function {function!r}; known: {', '.join(FUNCTIONS)}")
    if sys.version_info[:2] != tuple(int(p) for p in PYTHON_VERSION.split(".")):
        raise BuildError(
            f"run the build with Python {PYTHON_VERSION} (the Lambda runtime), "
            f"not {sys.version.split()[0]}"
        )
    if target.exists():
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    target.mkdir(parents=True, exist_ok=True)
    install_dependencies(function, arch, target)  # compiled in their cache
    copy_code(function, target)
    prune_service_models(target)
    compile_bytecode(*(target / package for package in FUNCTIONS[function].packages))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("function", help="logical id in template.yaml, e.g. ControlFunction")
    parser.add_argument("target", type=Path, help="the artifact folder (ARTIFACTS_DIR)")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="aarch64")
    args = parser.parse_args(argv)
    try:
        build(args.function, args.target.resolve(), args.arch)
    except BuildError as exc:
        print(f"lambda_build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    os.umask(0o022)  # artifact files readable by the Lambda runtime's user
    sys.exit(main())
