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

from functions.problems import Problem, problem_response

logger = Logger(service="dispatch-replay-api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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


class RequestLog:
    """One structured log line per request, when its answer starts (for a stream: when it
    opens), and an ``X-Request-Id`` on every answer: the Lambda request id, else the
    caller's ``X-Request-Id`` (64 characters at most), else a new one. The path is logged
    without anything after ``/stream`` and never with the query, so no token is logged."""

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
                    "path": scope["path"].split("/stream")[0],
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
