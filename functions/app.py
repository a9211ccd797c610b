"""The one FastAPI app: control API, history queries, the SSE stream, the seed's routes.

Served by uvicorn locally (``dispatch-replay serve`` / ``demo``), by Mangum in the control
Lambda and by the streaming bridge in the stream Lambda. Local and cloud differ only in
configuration (``functions.settings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from chunker.chunk_format import CorruptChunk
from chunker.day import InvalidServiceDay
from chunker.keys import InvalidIdentifier
from chunker.reader import NotPublished, OutsideDay
from functions import problems
from functions.control import routes as control_routes
from functions.control import seed as seed_routes
from functions.control.models import SessionView
from functions.control.service import NotOwner
from functions.history import routes as history_routes
from functions.history.queries import FlightNotFound, HistoryError
from functions.identity import caller
from functions.middleware import BodyLimit, RequestLog
from functions.playback import PlaybackError
from functions.problems import Problem, problem_response
from functions.services import Services
from functions.sessions import SessionNotFound, VersionConflict
from functions.settings import get_settings
from functions.stream import routes as stream_routes
from functions.stream.source import ChunkTimeout
from functions.tokens import InvalidToken

logger = Logger(service="dispatch-replay-api")

DASHBOARD_DIR = Path(__file__).parent / "dashboard"

# Domain exception -> (status, type slug, title, Retry-After seconds or None).
DOMAIN_ERRORS: dict[type[Exception], tuple[int, str, str, int | None]] = {
    SessionNotFound: (404, "session-not-found", "Session not found", None),
    NotPublished: (404, "not-published", "Nothing published for this airport and time", None),
    OutsideDay: (404, "not-published", "Nothing published for this airport and time", None),
    FlightNotFound: (404, "flight-not-found", "Flight not found", None),
    NotOwner: (403, "not-owner", "Only the session's owner can do this", None),
    InvalidToken: (403, "invalid-share-token", "Invalid share token", None),
    PlaybackError: (422, "invalid-playback", "Invalid playback request", None),
    HistoryError: (422, "invalid-query", "Invalid query", None),
    InvalidIdentifier: (422, "invalid-identifier", "Invalid identifier", None),
    InvalidServiceDay: (422, "invalid-identifier", "Invalid service day", None),
    # Storage failures. A damaged chunk stays damaged until the day is re-chunked, so its
    # clients are asked to wait longer.
    ClientError: (503, "dependency-unavailable", "Storage temporarily unavailable", 1),
    BotoCoreError: (503, "dependency-unavailable", "Storage temporarily unavailable", 1),
    ChunkTimeout: (503, "chunks-unavailable", "Replay data temporarily unavailable", 2),
    CorruptChunk: (503, "chunk-damaged", "Replay data damaged", 30),
}
# Their messages carry AWS internals: logged, never sent.
PRIVATE_DETAIL = (ClientError, BotoCoreError)


def _register_domain_errors(app: FastAPI) -> None:
    for exception_type, (status, slug, title, retry_after_s) in DOMAIN_ERRORS.items():

        async def handler(
            request: Request,
            exc: Exception,
            status: int = status,
            slug: str = slug,
            title: str = title,
            retry_after_s: int | None = retry_after_s,
        ) -> JSONResponse:
            detail = str(exc)[:300]
            if status >= 500:
                logger.warning("storage unavailable", extra={"problem": slug, "error": detail})
            if isinstance(exc, PRIVATE_DETAIL):
                detail = "Retry shortly."
            headers = None if retry_after_s is None else {"Retry-After": str(retry_after_s)}
            problem = Problem(status, slug, title, detail, headers=headers)
            return problem_response(problem, request.url.path)

        app.add_exception_handler(exception_type, handler)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, VersionConflict)
        services: Services = request.app.state.services
        extra: dict[str, Any] = {}
        if exc.current is not None:
            subject = caller(request, services)
            view = SessionView.of(exc.current, subject, services.now_ms(), None)
            extra["current"] = view.model_dump(mode="json")
        problem = Problem(
            409,
            "version-conflict",
            "The session changed since that version",
            "Re-read the session (see `current`) and retry with its version.",
            headers={"ETag": f'"{exc.current.version}"'} if exc.current else None,
            **extra,
        )
        return problem_response(problem, request.url.path)

    app.add_exception_handler(VersionConflict, conflict)


def create_app(services: Services | None = None) -> FastAPI:
    """The app; ``services`` default to real clients built from the environment."""
    services = services or Services.from_settings(get_settings())
    settings = services.settings
    app = FastAPI(
        title="dispatch-replay",
        version="1.0.0",
        summary="Replay of airport ground-handling auto-dispatch: sessions, history, SSE.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.services = services
    problems.install(app)
    _register_domain_errors(app)

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Content-Type", "If-Match", "Last-Event-ID", "Authorization"],
            expose_headers=["ETag", "Location", "X-Request-Id"],
            max_age=600,
        )
    # Outermost: every answer is logged and carries its id, 413s and preflights included.
    app.add_middleware(RequestLog)
    app.include_router(control_routes.router)
    app.include_router(seed_routes.router)
    app.include_router(history_routes.router)
    app.include_router(stream_routes.router)

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

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    # The dashboard: static files, using only the public API above. "/" is its page;
    # anything else unknown stays a problem+json 404. The Lambda artifacts leave it out
    # (a static host serves it in AWS: README, "Deploying to AWS"), and there "/" is a 404.
    if DASHBOARD_DIR.is_dir():

        @app.get("/", include_in_schema=False)
        async def dashboard() -> FileResponse:
            return FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

        app.mount("/static", StaticFiles(directory=DASHBOARD_DIR), name="dashboard")

    return app
