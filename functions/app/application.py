"""The one FastAPI app: control API, history queries, the SSE stream, the legacy client's routes.

Served by uvicorn locally (``dispatch-replay serve`` / ``demo``), by Mangum in the control
Lambda and by the streaming bridge in the stream Lambda. Local and cloud differ only in
configuration (``functions.app.settings``): which route groups a process serves is one
such setting (``APP_ROUTES``). Locally one process serves them all; in AWS each function
serves the groups API Gateway and its Function URL route to it, and imports only their
modules: a route module declares its routes when imported (FastAPI analyses each
endpoint's signature and builds a validator per parameter), which is most of what a
cold start spends outside the frameworks' own imports (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from functions.app.dependencies import Services
from functions.app.domain.errors import DomainError, describe, foreign_types
from functions.app.domain.sessions import VersionConflict
from functions.app.settings import RouteGroup, get_settings
from functions.app.threads import CHUNK_STORE, SESSION_STORE, run_in
from functions.app.web import problems
from functions.app.web.identity import caller, jwt_verifier
from functions.app.web.middleware import (
    BodyLimit,
    ProblemCORS,
    RequestLog,
    ResponseHeaders,
    dashboard_csp,
)
from functions.app.web.problems import Problem, problem_response

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

# The modules declaring each route group's routes, in the order the app includes them (the
# order of docs/openapi.json's paths). A group is imported only where it is served.
ROUTERS: tuple[tuple[str, RouteGroup], ...] = (
    ("functions.app.control.routes", "control"),
    ("functions.app.stream.legacy", "stream"),  # the legacy POST stream: a stream
    ("functions.app.control.legacy", "control"),  # the legacy control and set-params
    ("functions.app.history.routes", "history"),
    ("functions.app.stream.routes", "stream"),
)

DASHBOARD_DIR = Path(__file__).parent.parent / "dashboard"
# Swagger UI 5 (OpenAPI 3.1, which FastAPI writes) from the swagger-ui-bundle-v2 wheel, so
# /docs works with no internet (FastAPI's default page loads it from a CDN).
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
DOCS_ASSETS = "/docs/assets"


def _register_domain_errors(app: FastAPI) -> None:
    """The HTTP edge of the error vocabulary (``functions.app.domain.errors``): every
    described error becomes its problem+json answer, here and only here."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        entry = describe(exc)
        assert entry is not None  # registered below for described types only
        if entry.status >= 500:
            logger.warning(
                "storage unavailable", extra={"problem": entry.slug, "error": entry.internal}
            )
        problem = Problem.of(entry)
        if isinstance(exc, VersionConflict) and exc.current is not None:
            # The session now, as this caller may see it: they retry without a re-read.
            # (Only the control routes write with a version; they imported the schema.)
            from functions.app.control.schema import SessionView

            services: Services = request.app.state.services
            subject = caller(request, services)
            view = SessionView.of(exc.current, subject, services.now_ms(), None)
            problem.extra["current"] = view.model_dump(mode="json")
            problem.headers["ETag"] = f'"{exc.current.version}"'
        return problem_response(problem, request.url.path)

    described: tuple[type[Exception], ...] = (DomainError, *foreign_types())
    for exception_type in described:
        app.add_exception_handler(exception_type, handler)


READINESS_TIMEOUT_S = 3.0
# Read by /readyz: a key in the lease namespace, which both functions may read (IAM).
READINESS_PROBE_KEY = "lease#readiness-probe"


async def readiness(services: Services) -> dict[str, str]:
    """Each dependency's state: ``ok``, or the error code (never AWS's message)."""
    sessions = services.sessions
    chunks = services.chunks

    def table() -> None:
        sessions.dynamodb.get_item(
            TableName=sessions.table, Key={"session_id": {"S": READINESS_PROBE_KEY}}
        )

    def bucket() -> None:
        chunks.s3.list_objects_v2(Bucket=chunks.bucket, Prefix="published/", MaxKeys=1)

    async def check(call: Callable[[], None], pool: ThreadPoolExecutor) -> str:
        try:
            await asyncio.wait_for(run_in(pool, call), READINESS_TIMEOUT_S)
        except TimeoutError:
            return "timeout"
        except ClientError as exc:
            return str(exc.response.get("Error", {}).get("Code", "error"))
        except Exception as exc:  # noqa: BLE001 - reported by name: the probe's whole point
            return type(exc).__name__
        return "ok"

    table_state, bucket_state = await asyncio.gather(
        check(table, SESSION_STORE), check(bucket, CHUNK_STORE)
    )
    return {"sessions_table": table_state, "bucket": bucket_state}


def _add_docs_page(app: FastAPI) -> None:
    """``/docs``: Swagger UI over ``/openapi.json``, every asset served by the app itself."""
    oauth2_redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=oauth2_redirect,
        )

    @app.get(oauth2_redirect, include_in_schema=False)
    async def docs_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI_DIR), name="docs-assets")


def create_app(services: Services | None = None) -> FastAPI:
    """The app serving the route groups of ``settings.app_routes`` (and the health, docs
    and dashboard pages); ``services`` default to real clients built from the environment."""
    services = services or Services.from_settings(get_settings())
    settings = services.settings
    app = FastAPI(
        title="dispatch-replay",
        version="1.0.0",
        summary="Replay of airport ground-handling auto-dispatch: sessions, history, SSE.",
        docs_url=None,  # served below from packaged assets
        redoc_url=None,  # ReDoc would load from a CDN too; /docs is the one docs page
        openapi_url="/openapi.json",
    )
    app.state.services = services
    app.state.jwt_verifier = jwt_verifier(settings)
    problems.install(app)
    _register_domain_errors(app)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORS,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "If-Match", "Last-Event-ID", "Authorization"],
            expose_headers=["ETag", "Location", "X-Request-Id"],
            max_age=600,
        )
    # The page connects to the stream's origin and, signing in, to its identity provider.
    connect = []
    for url in (
        settings.stream_base_url,
        settings.jwt_issuer if settings.auth_mode == "jwt" else "",
    ):
        origin = urlsplit(url or "")
        if origin.netloc:
            connect.append(f"{origin.scheme}://{origin.netloc}")
    app.add_middleware(ResponseHeaders, csp=dashboard_csp(connect))
    # Outermost: every answer is logged and carries its id, 413s and preflights included.
    app.add_middleware(RequestLog)
    for module, group in ROUTERS:
        if group in settings.app_routes:
            app.include_router(importlib.import_module(module).router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                problems.PROBLEM_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    _add_docs_page(app)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        """Liveness: the process answers. It checks nothing else, so that a storage outage
        never gets healthy processes restarted; readiness is ``/readyz``."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def ready(request: Request) -> JSONResponse:
        """Readiness: the sessions table and the bucket answer (each within
        ``READINESS_TIMEOUT_S``). 503 problem+json naming what failed otherwise, e.g. after
        the local demo's in-memory store restarted empty."""
        checks = await readiness(services)
        if all(result == "ok" for result in checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        problem = Problem(
            503,
            "not-ready",
            "A dependency is unavailable",
            ", ".join(f"{name}: {result}" for name, result in checks.items() if result != "ok"),
            headers={"Retry-After": "5"},
            checks=checks,
        )
        return problem_response(problem, request.url.path)

    # The dashboard: static files, using only the public API above. "/" is its page;
    # anything else unknown stays a problem+json 404. The Lambda artifacts leave it out
    # (a static host serves it in AWS: README, "Deploying to AWS"), and there "/" is a 404.
    if DASHBOARD_DIR.is_dir():

        @app.get("/", include_in_schema=False)
        async def dashboard() -> FileResponse:
            return FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

        app.mount("/static", StaticFiles(directory=DASHBOARD_DIR), name="dashboard")

    return app
