"""The app the stream benchmark serves: the product's app plus the seed baseline route.

``uvicorn bench.stream_app:create --factory``; configuration from the environment, as in
``dispatch-replay serve``.
"""

from __future__ import annotations

from fastapi import FastAPI

from bench.baseline_stream import router
from functions.app import create_app


def create() -> FastAPI:
    """The real app with the baseline mounted beside it (same process, same chunk cache)."""
    app = create_app()
    app.include_router(router)
    return app
