"""``dispatch-replay openapi``: the app's OpenAPI schema, as published at ``/openapi.json``.

The schema depends only on the routes and models, not on configuration, so it is built
from an app with inert placeholder settings and clients that are never called. The
committed copy is ``docs/openapi.json``; a test keeps it equal to this output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

from chunker.format.read import ChunkReader
from functions.app.dependencies import Services
from functions.app.domain.session_store import SessionStore
from functions.app.settings import AppSettings

DEFAULT_PATH = Path("docs/openapi.json")


def schema() -> dict[str, Any]:
    """The OpenAPI document of ``functions.app.application.create_app``."""
    from functions.app.application import create_app

    settings = AppSettings(
        replay_bucket="schema-export",
        stream_token_secret="schema-export-placeholder-not-a-secret",  # type: ignore[arg-type]
    )
    # The clients are built but never called.
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    services = Services(
        settings=settings,
        sessions=SessionStore(dynamodb, settings.replay_table),
        chunks=ChunkReader(s3, settings.replay_bucket),
    )
    return create_app(services).openapi()


def render() -> str:
    """The schema as committed: indented JSON, non-ASCII kept, trailing newline."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``openapi`` on the top-level parser."""
    command = sub.add_parser("openapi", help="write the OpenAPI schema (docs/openapi.json)")
    command.add_argument("--out", type=Path, default=DEFAULT_PATH, help="'-' for stdout")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """``dispatch-replay openapi``."""
    text = render()
    if str(args.out) == "-":
        print(text, end="")
        return {}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return {"written": str(args.out), "paths": len(json.loads(text)["paths"])}
