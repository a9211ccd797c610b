"""Lambda entry points of the HTTP app: the control API behind an API Gateway HTTP API.

Adapters only. Mangum turns the HTTP API (payload 2.0) event into an ASGI request for the
one FastAPI app; Powertools adds the correlation id (the API Gateway request id, plus the
session id when the path names one) to every log line and counts, as CloudWatch EMF
metrics, sessions created, control actions applied and version conflicts — read from the
route and the response status, so the app itself stays free of Lambda concerns.

In Lambda the app, its AWS clients and the stream-token key are built when the runtime
imports this module (the init phase: no request waits for them, and a misconfigured
function fails its init rather than its first request); anywhere else they are built on
the first invocation, so importing this module needs no AWS access and no configuration.
Either way they are reused while the container is warm.
"""

from __future__ import annotations

import os
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from functions.app.application import create_app

SERVICE = "dispatch-replay-api"
logger = Logger(service=SERVICE)
# The template sets POWERTOOLS_METRICS_NAMESPACE; without it metrics still have a home.
metrics = Metrics(
    service=SERVICE, namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "DispatchReplay")
)

_SESSION_IN_PATH = re.compile(r"^/api/replay/sessions/(s-[A-Za-z0-9_-]{20,40})(?:/|$)")
_CONTROL_PATHS = re.compile(
    r"^/api/replay/sessions/s-[A-Za-z0-9_-]{20,40}/control$"
    r"|^/api/auto_dispatch/replay/(?:control|set-params)$"
)
_CREATE_PATHS = ("/api/replay/sessions", "/api/auto_dispatch/replay/stream")

_adapter: Mangum | None = None


def _mangum() -> Mangum:
    global _adapter  # noqa: PLW0603  # one app per warm container, built on first use
    if _adapter is None:
        # problem+json is text: without this Mangum would base64 every error body.
        _adapter = Mangum(
            create_app(),
            lifespan="off",
            text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/problem+json"],
        )
    return _adapter


def count_outcome(method: str, path: str, status: int) -> None:
    """Business metrics from what a request was and how it ended."""
    if method != "POST":
        return
    if path in _CREATE_PATHS and status in (200, 201):
        metrics.add_metric(name="SessionsCreated", unit=MetricUnit.Count, value=1)
    elif _CONTROL_PATHS.match(path):
        if status == 200:
            metrics.add_metric(name="ControlActions", unit=MetricUnit.Count, value=1)
        elif status == 409:
            metrics.add_metric(name="VersionConflicts", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def control_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """HTTP API (payload 2.0) -> the FastAPI app -> HTTP API response."""
    path = str(event.get("rawPath") or "")
    method = str(event.get("requestContext", {}).get("http", {}).get("method", ""))
    session = _SESSION_IN_PATH.match(path)
    if session:
        logger.append_keys(session_id=session.group(1))
    # Powertools and Mangum each type the same runtime context object their own way.
    response: dict[str, Any] = _mangum()(event, context)  # type: ignore[arg-type]
    count_outcome(method, path, int(response.get("statusCode", 500)))
    return response


@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL)
def stream_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The stream function's ``Handler``, used only where the exec wrapper is not.

    In AWS, ``AWS_LAMBDA_EXEC_WRAPPER`` starts the streaming bridge instead of the managed
    runtime, so this is never called there. Without the wrapper (``sam local invoke``, a
    misconfigured function) the same app still answers, buffered by Mangum: a stream is
    delivered whole when it ends itself (at the invocation deadline at the latest).
    """
    logger.warning("stream served buffered: AWS_LAMBDA_EXEC_WRAPPER is not in effect")
    response: dict[str, Any] = _mangum()(event, context)  # type: ignore[arg-type]
    return response


# Lambda sets AWS_LAMBDA_INITIALIZATION_TYPE (on-demand, provisioned-concurrency,
# snap-start) while it initializes a function, which for Python is importing its handler
# module: build everything per-container now. The code path is the same one a first
# request would take; only the moment differs.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
    _mangum()
