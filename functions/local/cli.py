"""The ``dispatch-replay`` command: chunker commands plus the local stack (serve, demo).

The CLI edge of the error vocabulary (``functions.app.domain.errors``): a failure the
vocabulary names, or bad input, is one line on stderr and a non-zero exit status: 2 for
what the caller asked (a 4xx in the API's words), 1 for what failed underneath (a 5xx, the
input data, the local stack).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from chunker.batch import cli as chunker_cli
from chunker.batch.raw_inputs import InputError
from chunker.imports import cli as imports_cli
from chunker.imports import tracks_cli
from functions.app.domain.errors import describe
from functions.local import demo, openapi, publish, serve
from functions.local.stack import LocalStackError

EXIT_USAGE = 2
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="dispatch-replay",
        description="Replay of airport ground-handling auto-dispatch.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chunker_cli.add_commands(sub)
    demo.add_command(sub)
    serve.add_command(sub)
    openapi.add_command(sub)
    publish.add_command(sub)
    imports_cli.add_command(sub)
    tracks_cli.add_command(sub)
    return parser


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return " ".join(str(exc).split()) or type(exc).__name__


def failure(exc: BaseException) -> tuple[str, int] | None:
    """``exc`` as the CLI says it: (one-line message, exit status); None for a bug (it
    propagates with its traceback)."""
    if isinstance(exc, ClientError | BotoCoreError):
        # The operator's own account: AWS's text is what they need (the API never shows it).
        return f"AWS error: {_one_line(exc)}", EXIT_FAILED
    entry = describe(exc)
    if entry is not None:
        return f"error: {_one_line(exc)}", EXIT_USAGE if entry.status < 500 else EXIT_FAILED
    if isinstance(exc, InputError | LocalStackError | publish.PublishError):
        return f"error: {_one_line(exc)}", EXIT_FAILED
    if isinstance(exc, ValueError | ValidationError):
        return f"error: {_one_line(exc)}", EXIT_USAGE
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run a subcommand; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "schema":
            result = chunker_cli.cmd_schema(args)
        elif args.command == "demo":
            result = demo.run(args)
        elif args.command == "serve":
            result = serve.run(args)
        elif args.command == "publish-dashboard":
            result = publish.run(args)
        elif args.command == "import-layout":
            result = imports_cli.run(args)
        elif args.command == "import-tracks":
            result = tracks_cli.run(args)
        elif args.command == "openapi":
            result = openapi.run(args)
            if not result:
                return 0
        else:
            from chunker.format.s3 import s3_client

            s3 = s3_client()
            if args.command == "generate":
                result = chunker_cli.cmd_generate(args, None if args.out else s3)
            else:
                result = chunker_cli.cmd_chunk(args, s3)
    except Exception as exc:
        said = failure(exc)
        if said is None:
            raise
        message, status = said
        print(f"dispatch-replay {args.command}: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print(f"dispatch-replay {args.command}: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
