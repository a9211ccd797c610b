"""The app's ASGI middleware: request size limit, request log and id.

Pure ASGI on purpose: Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``)
relays every streamed body message through an extra task and memory stream, which costs
the SSE stream CPU per frame and delays its notice of a client that left.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aws_lambda_powertools import Logger
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from functions.app import metrics, paths
from functions.app.web.problems import Problem, problem_response

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, declared or streamed, and bodies
    that are not UTF-8 (every body here is JSON, which RFC 8259 says is UTF-8): a charset
    other than UTF-8 is 415, UTF-16/32 or invalid bytes 400. Python's ``json`` would
    otherwise guess UTF-16 and UTF-32 from the bytes and accept them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        too_large = Problem(
            413,
            "payload-too-large",
            "Request body too large",
            f"The limit is {self.max_bytes} bytes.",
        )
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await problem_response(too_large, scope.get("path"))(scope, receive, send)
            return
        charset = _charset(headers.get("content-type", ""))
        if charset not in (None, "utf-8", "utf8"):
            unsupported = Problem(
                415, "unsupported-media-type", "Unsupported media type", "Bodies are UTF-8 JSON."
            )
            await problem_response(unsupported, scope.get("path"))(scope, receive, send)
            return
        # Read the body first: it is small by definition (declared or counted).
        messages: list[Message] = []
        body = bytearray()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await problem_response(too_large, scope.get("path"))(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        if not _is_utf8_text(bytes(body)):
            not_utf8 = Problem(
                400, "malformed-json", "Malformed JSON body", "JSON bodies must be UTF-8."
            )
            await problem_response(not_utf8, scope.get("path"))(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type, lower-cased (None if absent)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


def _is_utf8_text(body: bytes) -> bool:
    """Valid UTF-8 without NUL bytes (UTF-16/32 JSON has them; JSON text never does)."""
    if b"\x00" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class RequestLog:
    """One structured log line per request, when its answer starts (for a stream: when it
    opens), and an ``X-Request-Id`` on every answer: the Lambda request id, else the
    caller's ``X-Request-Id`` (64 characters at most), else a new one. The path is logged
    without anything after ``/stream`` and never with the query, so no token is logged.
    When the request is over, the metrics it added are flushed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        context = scope.get("aws.context")
        request_id = (
            getattr(context, "aws_request_id", None)
            or Headers(scope=scope).get("x-request-id", "")[:64]
            or uuid.uuid4().hex
        )
        started = time.perf_counter()
        answered = False

        def log(status: int) -> None:
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": paths.loggable(scope["path"]),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

        async def send_with_id(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = True
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
                log(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if not answered:  # the server's error handler answers 500
                log(500)
            raise
        finally:
            # Once per request (for a stream: when it ended), whatever serves the app:
            # under Lambda that is once per invocation, under uvicorn it keeps the
            # process-wide metric set from growing (``functions.app.metrics``).
            metrics.flush()


def dashboard_csp(connect_origins: list[str]) -> str:
    """The dashboard's Content-Security-Policy: its own scripts and styles only (style
    attributes in its markup allowed), no framing, connections to this origin and the
    stream's (``STREAM_BASE_URL``, another origin in the cloud)."""
    connect = " ".join(["'self'", *connect_origins])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "style-src-attr 'unsafe-inline'; img-src 'self' data:; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    )


class ResponseHeaders:
    """Headers every answer needs, and HEAD.

    - Every answer: ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: no-referrer``
      (stream URLs carry a token in their query).
    - The dashboard (``/``, ``/static/*``): a Content-Security-Policy with
      ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY`` (older browsers).
    - The session API (``/api/replay/sessions*`` and the legacy client's routes), whose answers
      carry stream and share tokens: ``Cache-Control: no-store`` unless the route set one
      (the stream sets ``no-cache``).
    - HEAD is answered as GET without the body, except on streams: a HEAD there would open
      a stream (and hold one of the caller's places) for nothing, so it stays 405.
    """

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        head = scope["method"] == "HEAD" and not path.endswith(paths.STREAM_SUFFIX)
        if head:
            scope = {**scope, "method": "GET"}
        dashboard = path == "/" or path.startswith("/static/")
        tokens = path.startswith(paths.TOKEN_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
                if dashboard:
                    headers.setdefault("Content-Security-Policy", self.csp)
                    headers.setdefault("X-Frame-Options", "DENY")
                if tokens:
                    headers.setdefault("Cache-Control", "no-store")
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # dropped; the last body message ends the answer
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ProblemCORS(CORSMiddleware):
    """Starlette's CORS, with a rejected preflight answered as problem+json (it answers
    text/plain) like every other 4xx; its CORS headers (``Vary``) are kept."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        problem = Problem(
            response.status_code,
            "cors-rejected",
            "CORS preflight rejected",
            bytes(response.body).decode("utf-8", "replace"),
        )
        answer = problem_response(problem)
        for name in ("vary",):
            if name in response.headers:
                answer.headers[name] = response.headers[name]
        return answer
