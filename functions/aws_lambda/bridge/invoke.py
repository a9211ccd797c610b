"""One invocation: a Function URL event through the ASGI app, streamed to the Runtime API.

Mangum's ``HTTPGateway`` handler turns the (payload 2.0) event into the ASGI scope and
body, exactly as the buffered control functions see them; from there each ASGI message is
forwarded as it is produced: ``http.response.start`` becomes the prelude, every
``http.response.body`` a body part (one chunk of the chunked encoding). Rules:

- an error before the first byte becomes an HTTP 500 problem+json response;
- an error after it ends the body with the Runtime API's error trailers;
- shortly before the invocation deadline, or when the response can no longer be written,
  the app is told the client left (``http.disconnect``) and the body is ended cleanly;
  if the app had not started its response by the deadline, the answer is a 503
  problem+json with ``Retry-After`` (never an empty body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from mangum.handlers.api_gateway import HTTPGateway
from mangum.types import LambdaConfig

from functions.app.web.problems import PROBLEM_JSON, Problem
from functions.aws_lambda.bridge.runtime_api import (
    ClientGone,
    Invocation,
    RuntimeApi,
    StreamingResponse,
    http_prelude,
)

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]

# End the response this long before the deadline (the app's own margin is larger, so it
# normally says goodbye itself with a ``reconnect`` event first).
DEADLINE_MARGIN_MS = 1_000
# After telling the app the client left, wait this long for it to finish.
DISCONNECT_GRACE_S = 0.5

INTERNAL_ERROR = Problem(500, "internal-error", "Internal error", "The response failed to start.")
NOT_STARTED = Problem(
    503,
    "stream-not-started",
    "Stream did not start in time",
    "The response did not start before the invocation deadline. Retry.",
    headers={"Retry-After": "1"},
)

MANGUM_CONFIG: LambdaConfig = {
    "api_gateway_base_path": "/",
    "text_mime_types": [],  # unused: the body is never base64'd on the streaming path
    "exclude_headers": [],
}


@dataclass
class InvocationContext:
    """The Lambda context the app sees in ``scope["aws.context"]``."""

    aws_request_id: str
    invoked_function_arn: str
    deadline_ms: int
    function_name: str = ""
    function_version: str = ""
    memory_limit_in_mb: int = 0
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.deadline_ms - time.time_ns() // 1_000_000)


@dataclass
class _Exchange:
    """The state of one request/response between the app and the Runtime API."""

    response: StreamingResponse
    started: bool = False
    complete: bool = False
    gone: asyncio.Event = field(default_factory=asyncio.Event)


async def handle(
    app: ASGIApp, runtime: RuntimeApi, invocation: Invocation, environment: dict[str, str]
) -> None:
    """Serve one invocation end to end; never raises for app or client failures."""
    context = InvocationContext(
        aws_request_id=invocation.request_id,
        invoked_function_arn=invocation.function_arn,
        deadline_ms=invocation.deadline_ms,
        function_name=environment.get("AWS_LAMBDA_FUNCTION_NAME", ""),
        function_version=environment.get("AWS_LAMBDA_FUNCTION_VERSION", ""),
        memory_limit_in_mb=int(environment.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0") or 0),
        log_group_name=environment.get("AWS_LAMBDA_LOG_GROUP_NAME", ""),
        log_stream_name=environment.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
    )
    response = await runtime.streaming_response(invocation.request_id)
    exchange = _Exchange(response)
    try:
        event = json.loads(invocation.event)
        if not isinstance(event, dict) or not HTTPGateway.infer(event, context, MANGUM_CONFIG):
            raise ValueError("not a Function URL (payload 2.0) event")
        gateway = HTTPGateway(event, context, MANGUM_CONFIG)
        scope, body = gateway.scope, gateway.body
    except (ValueError, KeyError, TypeError) as exc:
        logger.error("unusable event", extra={"error": str(exc)})
        await _send_error(
            exchange, Problem(400, "bad-event", "Bad request", f"Unusable event: {exc}")
        )
        await response.finish()
        return
    await _run_app(app, scope, body, exchange, invocation.deadline_ms)


async def _send_error(exchange: _Exchange, problem: Problem) -> None:
    headers = [(b"content-type", PROBLEM_JSON.encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in problem.headers.items()]
    with contextlib.suppress(ClientGone):
        await exchange.response.write(http_prelude(problem.status, headers))
        await exchange.response.write(json.dumps(problem.body()).encode())
    exchange.started = exchange.complete = True


async def _run_app(
    app: ASGIApp,
    scope: MutableMapping[str, Any],
    body: bytes,
    exchange: _Exchange,
    deadline_ms: int,
) -> None:
    response = exchange.response
    request_sent = False
    deadline_reached = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await exchange.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if exchange.gone.is_set():
            raise ClientGone("the client is gone")
        try:
            if message["type"] == "http.response.start":
                exchange.started = True
                prelude = http_prelude(message["status"], list(message.get("headers", [])))
                await response.write(prelude)
            elif message["type"] == "http.response.body":
                await response.write(message.get("body", b""))
                if not message.get("more_body", False):
                    exchange.complete = True
        except ClientGone:
            exchange.gone.set()
            raise

    async def deadline_watch() -> None:
        nonlocal deadline_reached
        remaining_s = (deadline_ms - DEADLINE_MARGIN_MS - time.time_ns() / 1e6) / 1000
        await asyncio.sleep(max(0.0, remaining_s))
        logger.info("invocation deadline near: ending the stream")
        deadline_reached = True
        exchange.gone.set()

    app_task = asyncio.ensure_future(app(scope, receive, send))
    watch = asyncio.ensure_future(deadline_watch())
    error: BaseException | None = None
    try:
        gone = asyncio.ensure_future(exchange.gone.wait())
        await asyncio.wait({app_task, gone}, return_when=asyncio.FIRST_COMPLETED)
        if not app_task.done():  # deadline or client gone: let the app see the disconnect
            done, _ = await asyncio.wait({app_task}, timeout=DISCONNECT_GRACE_S)
            if not done:
                app_task.cancel()
        gone.cancel()
        try:
            await app_task
        except (ClientGone, asyncio.CancelledError):
            pass
        except Exception as exc:  # noqa: BLE001 - reported to the client below
            error = exc
    finally:
        watch.cancel()
    if error is not None:
        logger.exception("the app failed", exc_info=error)
        if not exchange.started:
            await _send_error(exchange, INTERNAL_ERROR)
            await response.finish()
        elif not exchange.complete and not exchange.gone.is_set():
            await response.finish(error)
        else:
            await response.finish()
        return
    if not exchange.started and deadline_reached:
        # Still an answer, not an empty body: the client can tell to retry.
        logger.warning("the response did not start before the deadline")
        await _send_error(exchange, NOT_STARTED)
    elif not exchange.started and not exchange.gone.is_set():
        await _send_error(exchange, INTERNAL_ERROR)
    await response.finish()
