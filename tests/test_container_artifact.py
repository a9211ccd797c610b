"""The container image's app folder, built by the recipe the Dockerfile's build stage runs.

No Docker daemon here, so the image itself is not built; its ``/app`` is:
``lambda_build.py ContainerService`` (the Dockerfile's one build step,
tests/test_container.py holds it to that) builds it into a temporary folder for this
machine's architecture, sharing the Lambda artifacts' dependency cache. Then it is checked
for what it holds and served as the image serves it: a Python 3.12 that sees only the
folder and the standard library (``-I -S``: the image's PYTHONPATH=/app, no virtualenv)
runs ``python -m functions.container`` against a moto server.
"""

from __future__ import annotations

import platform
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from functions.app.dependencies import Services
from functions.local.stack import MotoServer
from lambda_build import make_variable
from tests.streaming import Server, StreamReader
from tests.test_container_drain import container_server, stack, wait_exit

pytestmark = pytest.mark.end_to_end
__all__ = ["stack"]  # the module fixture: a moto server with the XTST day published

ROOT = Path(__file__).parent.parent
PYTHON312 = make_variable("PYTHON312")
NEVER_SHIPPED = (
    "tests",
    "bench",
    "docs",
    "events",
    "synthetic",
    "lambda_build.py",
    "functions/local",  # the CLI, the demo, the local stack
    "functions/dashboard",  # a static host serves it (README, "Deploying to AWS")
    "functions/aws_lambda",  # Lambda's handlers and streaming bridge
    "chunker/imports",
    "chunker/batch/cli.py",
)


@pytest.fixture(scope="module")
def app_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("container") / "app"
    arch = {"arm64": "aarch64"}.get(platform.machine(), platform.machine())
    make = ["make", "-s", "--no-print-directory", "build-ContainerService"]
    result = subprocess.run(
        [*make, f"ARCH={arch}", f"ARTIFACTS_DIR={folder}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return folder


def test_the_folder_holds_the_served_app_and_nothing_a_laptop_or_lambda_uses(
    app_folder: Path,
) -> None:
    shipped = [p.relative_to(app_folder).as_posix() for p in app_folder.rglob("*")]
    for path in NEVER_SHIPPED:
        assert not [s for s in shipped if s == path or s.startswith(path + "/")], path
    assert (app_folder / "functions" / "container" / "serve.py").exists()
    assert (app_folder / "uvicorn").is_dir() and (app_folder / "h11").is_dir()
    # Byte-code of the runtime's Python for every first-party module: /app is read-only.
    for source in (app_folder / "functions").rglob("*.py"):
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        assert compiled.exists(), source


def test_the_folder_serves_health_readiness_and_a_stream_then_drains_on_sigterm(
    app_folder: Path, stack: tuple[MotoServer, Services, dict[str, bytes]], tmp_path: Path
) -> None:
    aws, services, _ = stack
    command = (PYTHON312, "-I", "-S", "-c", _module("functions.container", app_folder))
    helper = Server("", services, None)  # type: ignore[arg-type]  # sessions and tokens only
    day = services.chunks.published("XTST", "2026-03-14").manifest
    session = helper.new_session(day.start, day.end, speed=8.0, state="playing")
    with (
        container_server(aws, tmp_path / "server.log", command, {"PATH": "/usr/bin:/bin"}) as (
            url,
            process,
        ),
        httpx.Client() as client,
    ):
        assert client.get(f"{url}/healthz").json() == {"status": "ok"}
        ready = client.get(f"{url}/readyz")
        assert ready.status_code == 200, ready.text
        assert client.get(f"{url}/").status_code == 404  # no dashboard in the image
        reader = StreamReader(client, url + helper.stream_url(session))
        reader.read_until(lambda e: e.event == "vehicle_update")
        # The image's HEALTHCHECK command, from the folder, against the running server.
        port = url.rsplit(":", 1)[1]
        health = subprocess.run(
            [PYTHON312, "-I", "-S", "-c", _module("functions.container.healthcheck", app_folder)],
            env={"PATH": "/usr/bin:/bin", "PORT": port},
            check=False,
            timeout=30,
        )
        assert health.returncode == 0
        process.send_signal(signal.SIGTERM)
        events = reader.read_to_end(timeout_s=30)
        assert events[-1].event == "reconnect" and events[-1].json()["reason"] == "draining"
        assert wait_exit(process, 30) == 0
    down = subprocess.run(
        [PYTHON312, "-I", "-S", "-c", _module("functions.container.healthcheck", app_folder)],
        env={"PATH": "/usr/bin:/bin", "PORT": port},
        check=False,
        timeout=30,
    )
    assert down.returncode == 1  # nothing listens any more


def _module(name: str, folder: Path) -> str:
    """``python -m name`` for a Python that sees only the standard library and ``folder``."""
    return (
        f"import sys, runpy; sys.path.insert(0, {str(folder)!r}); "
        f"runpy.run_module({name!r}, run_name='__main__')"
    )
