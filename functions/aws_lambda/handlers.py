"""Lambda entry points of the HTTP app: the control API behind an API Gateway HTTP API.

Adapters only. Mangum turns the HTTP API (payload 2.0) event into an ASGI request for the
one FastAPI app; Powertools adds the correlation id (the API Gateway request id, plus the
session id when the path names one) to every log line. Business metrics are not guessed
here: the app adds them where they happen (``functions.app.metrics``) and they are flushed
when the invocation ends.

In Lambda the app, its AWS clients and the stream-token key are built when the runtime
imports this module (the init phase: no request waits for them, and a misconfigured
function fails its init rather than its first request); anywhere else they are built on
the first invocation, so importing this module needs no AWS access and no configuration.
Either way they are reused while the container is warm.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum
from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

from functions.app import paths
from functions.app.application import create_app
from functions.app.metrics import flushed
from functions.aws_lambda import init_finished

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

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


@flushed
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True
)
def control_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """HTTP API (payload 2.0) -> the FastAPI app -> HTTP API response."""
    session_id = paths.session_id_in(str(event.get("rawPath") or ""))
    if session_id:
        logger.append_keys(session_id=session_id)
    # Powertools and Mangum each type the same runtime context object their own way.
    response: dict[str, Any] = _mangum()(event, context)  # type: ignore[arg-type]
    return response


@flushed
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
    init_finished()  # functions/aws_lambda/__init__.py paused the collector for the init
