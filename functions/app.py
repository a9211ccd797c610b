"""The one FastAPI app: control API, history queries, the SSE stream, the seed's routes.

Served by uvicorn locally (``dispatch-replay serve`` / ``demo``), by Mangum in the control
Lambda and by the streaming bridge in the stream Lambda. Local and cloud differ only in
configuration (``functions.settings``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
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

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

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


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = Problem(
            413,
            "payload-too-large",
            "Request body too large",
            f"The limit is {self.max_bytes} bytes.",
        )
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await problem_response(too_large, scope.get("path"))(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body first, it is small by definition.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await problem_response(too_large, scope.get("path"))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


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

    @app.middleware("http")
    async def request_log(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        context = request.scope.get("aws.context")
        request_id = (
            getattr(context, "aws_request_id", None)
            or request.headers.get("x-request-id", "")[:64]
            or uuid.uuid4().hex
        )
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-Id"] = request_id
        logger.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "path": request.url.path.split("/stream")[0],  # never log stream tokens
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

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
    # anything else unknown stays a problem+json 404.
    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=DASHBOARD_DIR), name="dashboard")

    return app
