"""Each function's app serves exactly the routes AWS sends it, and the local app all of them.

One app factory (``functions.app.application.create_app``) composes the route groups a
process's ``APP_ROUTES`` names; template.yaml sets it per function. The routing side is
read from the template, not restated: the distribution sends its stream path pattern to
the stream function and the rest of ``/api/*`` to the HTTP API (the control function); the
legacy client POSTs its stream to the stream function's URL. Every operation the local
app serves must land in exactly one function, and each function's app must serve nothing
routed elsewhere (a 404 problem+json, not a half-working answer from the wrong role).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from functions.app import paths
from functions.app.application import create_app
from functions.app.dependencies import Services
from functions.app.settings import AppSettings
from tests.streaming import build_services, settings
from tests.test_template import FUNCTIONS, RESOURCES

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _app(**overrides: Any) -> FastAPI:
    """The app as configured, without AWS: only its routes are looked at or called."""
    return create_app(Services(settings=settings(**overrides), sessions=None, chunks=None))  # type: ignore[arg-type]


def _api_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every operation the app serves under /api (its OpenAPI
    document: every API route is in it)."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }


def _configured_routes(function: str) -> list[str]:
    value = FUNCTIONS[function]["Environment"]["Variables"]["APP_ROUTES"]
    assert isinstance(value, str), "a literal: the app must not depend on a deploy-time value"
    return [group.strip() for group in value.split(",")]


def _distribution_stream_patterns() -> list[str]:
    config = RESOURCES["Distribution"]["Properties"]["DistributionConfig"]
    return [b["PathPattern"] for b in config["CacheBehaviors"] if b["TargetOriginId"] == "stream"]


def _routed_to_stream_function(method: str, path: str) -> bool:
    """What reaches the stream function: the distribution's stream behaviour (CloudFront's
    ``*`` matches any characters), and the legacy client's POST to the Function URL."""
    concrete = re.sub(r"\{[^}]+\}", "x1", path)
    allowed = FUNCTIONS["StreamFunction"]["FunctionUrlConfig"]["Cors"]["AllowMethods"]
    by_distribution = any(fnmatch.fnmatchcase(concrete, p) for p in _distribution_stream_patterns())
    by_url = method == "POST" and path == paths.LEGACY_STREAM and "POST" in allowed
    return by_distribution or by_url


def test_each_function_serves_exactly_the_routes_routed_to_it() -> None:
    everything = _api_operations(_app())
    assert len(everything) >= 30
    to_stream = {op for op in everything if _routed_to_stream_function(*op)}
    assert to_stream == {("GET", paths.STREAM), ("POST", paths.LEGACY_STREAM)}
    http_functions = ("ControlFunction", "StreamFunction")
    served = {f: _api_operations(_app(app_routes=_configured_routes(f))) for f in http_functions}
    assert served["StreamFunction"] == to_stream
    assert served["ControlFunction"] == everything - to_stream


def test_the_chunker_sets_no_route_groups() -> None:
    assert "APP_ROUTES" not in FUNCTIONS["ChunkerFunction"].get("Environment", {}).get(
        "Variables", {}
    )


@pytest.fixture
def clients(s3: S3Client) -> Iterator[dict[str, TestClient]]:
    """The three compositions over in-process moto (an empty bucket, a sessions table)."""
    apps = {
        "local": create_app(build_services(s3)),
        "stream": create_app(build_services(s3, app_routes=_configured_routes("StreamFunction"))),
        "control": create_app(build_services(s3, app_routes=_configured_routes("ControlFunction"))),
    }
    with (
        TestClient(apps["local"]) as local,
        TestClient(apps["stream"]) as stream,
        TestClient(apps["control"]) as control,
    ):
        yield {"local": local, "stream": stream, "control": control}


LEGACY_CONTROL = paths.LEGACY + "/control"


@pytest.mark.parametrize(
    ("method", "path", "body", "not_served_by"),
    [
        # Bodies that fail validation: a route that exists answers 422 before any storage.
        ("POST", paths.SESSIONS, {"airport": 7}, "stream"),
        ("POST", LEGACY_CONTROL, {"sessionId": "s", "action": "fly"}, "stream"),
        ("GET", paths.AIRPORTS, None, "stream"),  # nothing published: an empty list
        ("POST", paths.LEGACY_STREAM, {"airportId": "lower"}, "control"),
        ("GET", paths.stream_path("not a session id"), None, "control"),
    ],
)
def test_a_route_of_another_function_is_a_404_problem_there_and_served_locally(
    clients: dict[str, TestClient],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    not_served_by: str,
) -> None:
    headers = {"X-Replay-User": "user-route-check"}
    served_by = "control" if not_served_by == "stream" else "stream"
    for name in ("local", served_by):
        answer = clients[name].request(method, path, json=body, headers=headers)
        assert answer.status_code in (200, 400, 401, 422), (name, answer.text)
    missing = clients[not_served_by].request(method, path, json=body, headers=headers)
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"] == "application/problem+json"


def test_health_answers_in_every_composition(clients: dict[str, TestClient]) -> None:
    for client in clients.values():
        assert client.get("/healthz").json() == {"status": "ok"}


def test_an_unknown_route_group_is_a_clear_configuration_error() -> None:
    with pytest.raises(ValidationError, match="app_routes"):
        AppSettings(replay_bucket="b" * 3, stream_token_secret="s" * 32, app_routes="sessions")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="app_routes"):
        AppSettings(replay_bucket="b" * 3, stream_token_secret="s" * 32, app_routes="")  # type: ignore[arg-type]
