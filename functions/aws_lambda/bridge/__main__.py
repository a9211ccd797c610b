"""``python -m functions.aws_lambda.bridge``: the streaming function's runtime loop.

Started by the exec wrapper (``functions/aws_lambda/bridge/exec-wrapper``) in place of the managed
Python runtime's bootstrap. Builds the app once (init phase), then serves invocations one
after another in the same process and event loop, so the app, its boto3 clients and the
chunk cache stay warm across invocations. Metrics are flushed once per invocation, when it
has been answered (the app flushes what a request added; this catches the rest).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from typing import Any

from aws_lambda_powertools import Logger

from functions.app.metrics import flush
from functions.aws_lambda import init_finished
from functions.aws_lambda.bridge.invoke import ASGIApp, handle
from functions.aws_lambda.bridge.runtime_api import RuntimeApi

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

DEFAULT_APP = "functions.app.application:create_app"


def load_app(spec: str) -> ASGIApp:
    """``module:attribute``: an ASGI app, or a plain function that builds one."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"BRIDGE_APP must be module:attribute, not {spec!r}")
    target: Any = getattr(importlib.import_module(module_name), attribute)
    if inspect.isfunction(target) and not inspect.iscoroutinefunction(target):
        target = target()  # a factory such as functions.app.application:create_app
    app: ASGIApp = target
    return app


async def serve(runtime: RuntimeApi, spec: str) -> None:
    """Init, then invocations forever."""
    try:
        app = load_app(spec)
    except Exception as exc:
        logger.exception("init failed")
        await runtime.init_error(f"Runtime.{type(exc).__name__}", str(exc))
        raise SystemExit(1) from exc
    init_finished()  # functions/aws_lambda/__init__.py paused the collector for the init
    environment = dict(os.environ)
    while True:
        invocation = await runtime.next_invocation()
        if invocation.trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = invocation.trace_id
        logger.append_keys(request_id=invocation.request_id)
        try:
            await handle(app, runtime, invocation, environment)
        finally:
            flush()


def main() -> int:
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        print("functions.aws_lambda.bridge: AWS_LAMBDA_RUNTIME_API is not set", file=sys.stderr)
        return 2
    asyncio.run(serve(RuntimeApi(address), os.environ.get("BRIDGE_APP", DEFAULT_APP)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
