"""``dispatch-replay serve``: the app (API, stream, dashboard) under uvicorn.

The same app object the Lambda handlers run; configuration comes from the environment
(``functions.app.settings``). ``demo`` calls ``serve_app`` after it has filled a local stack.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from functions.local.stack import LocalStackError, port_is_free

# Open SSE streams never end by themselves: give them this long to say goodbye on Ctrl-C.
GRACEFUL_SHUTDOWN_S = 3


def add_arguments(parser: argparse.ArgumentParser, default_port: int = 8000) -> None:
    """``--host`` / ``--port`` for a command that serves the app."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=default_port, help="TCP port")


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve`` on the top-level parser."""
    serve = sub.add_parser(
        "serve",
        help="serve the API, the stream and the dashboard (configuration from the environment)",
    )
    add_arguments(serve)


def serve_app(host: str, port: int, announce: str | None = None) -> None:
    """Run uvicorn with the app until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn

    from functions.app.application import create_app
    from functions.app.settings import get_settings

    if not 0 < port < 65_536:
        raise ValueError(f"--port must be 1..65535, not {port}")
    if not port_is_free(host, port):
        raise LocalStackError(f"{host}:{port} is already in use (choose another with --port)")
    get_settings.cache_clear()  # the caller may just have set the environment
    app = create_app()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,  # the app logs each request itself, without stream tokens
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        http="h11",
    )
    server = uvicorn.Server(config)
    if announce:
        original_startup = server.startup

        async def startup(sockets: Any = None) -> None:
            await original_startup(sockets)
            print(announce, file=sys.stderr, flush=True)

        server.startup = startup  # type: ignore[method-assign]
    server.run()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``dispatch-replay serve``."""
    url = f"http://{args.host}:{args.port}"
    serve_app(args.host, args.port, announce=f"dispatch-replay serving on {url}")
    return {"served": url}
