"""``dispatch-replay demo``: a whole local replay stack in one command.

Starts the embedded moto server, creates the bucket and the sessions table, generates the
sample airport day, chunks it, then serves the API, the stream and the dashboard on
http://127.0.0.1:8000 until Ctrl-C. Every process it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from chunker.batch.cli import run_ranges_in_processes
from chunker.batch.run import chunk_day
from chunker.format.encoding import ChunkerConfig
from chunker.format.keys import DEFAULT_VARIANT, check_variant
from chunker.format.s3 import s3_client
from functions.app.dependencies import dynamodb_client
from functions.local import day_cache, serve
from functions.local.stack import LocalStackError, ensure_table, moto_server, port_is_free
from synthetic import GeneratorSettings, generate_day, write_day
from synthetic.dispatch import NEAREST_FIRST
from synthetic.imported import LayoutError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEMO_BUCKET = "dispatch-replay-local"
DEMO_TABLE = "dispatch-replay-sessions"
# The demo day's second dispatch run (issue 20 item 6): same flights, tasks and fleet,
# dispatched nearest-first without the on-time check.
COMPARE_VARIANT = "nearest-first"


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo`` on the top-level parser."""
    demo = sub.add_parser("demo", help="generate + chunk a sample day into a local moto server")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--vehicles", type=int, default=150)
    demo.add_argument("--flights", type=int, default=300)
    demo.add_argument("--date", default="2026-03-14", help="service date YYYY-MM-DD")
    demo.add_argument("--jobs", type=int, default=2, help="chunker processes")
    demo.add_argument("--start-hour", type=int, default=0, help="first local hour generated")
    demo.add_argument("--hours", type=int, default=24, help="hours generated")
    demo.add_argument(
        "--layout",
        type=Path,
        metavar="REFERENCE_JSON",
        help="lay the day onto an imported airport (import-layout's reference.json) instead "
        "of the fictional one",
    )
    demo.add_argument("--moto-port", type=int, default=0, help="moto server port (0: any free)")
    demo.add_argument(
        "--compare-variant",
        default=COMPARE_VARIANT,
        help=f"a second dispatch run of the day, by the {NEAREST_FIRST} rule, under this "
        f"variant name (default {COMPARE_VARIANT}; '' for none): the dashboard's Compare",
    )
    demo.add_argument(
        "--no-serve", action="store_true", help="stop after chunking (print the summary)"
    )
    demo.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="keep the generated and chunked day in DIR and reuse it while the inputs "
        "and the code are unchanged (repeated runs, the browser tests)",
    )
    serve.add_arguments(demo)


def local_app_environment(bucket: str, table: str) -> dict[str, str]:
    """Settings of the app on a laptop: local identity, a fresh stream-token secret."""
    return {
        "REPLAY_BUCKET": bucket,
        "REPLAY_TABLE": table,
        "AUTH_MODE": "local",
        "STREAM_TOKEN_SECRET": os.environ.get("STREAM_TOKEN_SECRET") or secrets.token_urlsafe(32),
    }


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """SIGTERM (a service manager's or ``kill``'s stop) ends the demo like Ctrl-C: by an
    exception, so every ``finally`` runs and the moto child is stopped. By default SIGTERM
    kills at once (uvicorn, too, re-raises it after its graceful shutdown), orphaning it."""

    def unwind(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def demo_cache_key(
    settings: GeneratorSettings, variants: list[GeneratorSettings] | None = None
) -> str:
    """The day cache's entry for a demo day: every generator setting (of each variant too),
    the chunker's configuration and the code of both (``day_cache.cache_key``)."""
    return day_cache.cache_key(
        {
            "generator": _settings_key(settings),
            "variants": [_settings_key(v) for v in variants or []],
            "chunker": ChunkerConfig().model_dump(mode="json"),
        }
    )


def _settings_key(settings: GeneratorSettings) -> dict[str, Any]:
    """The settings as cache-key input; an imported layout by its content, not its path
    (the fictional airport's key stays what it was before layouts existed)."""
    key = settings.model_dump(mode="json", exclude={"layout"})
    if settings.layout is not None:
        try:
            key["layout_sha256"] = hashlib.sha256(settings.layout.read_bytes()).hexdigest()
        except OSError as exc:
            raise LayoutError(
                f"cannot read layout {settings.layout}: {exc.strerror or exc}"
            ) from exc
    return key


def run(args: argparse.Namespace, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the demo; returns the summary printed by the CLI."""
    with sigterm_unwinds():
        return _run(args, say)


def day_settings(args: argparse.Namespace) -> tuple[GeneratorSettings, list[GeneratorSettings]]:
    """The demo day's generator settings, and those of its second dispatch run if any."""
    settings = GeneratorSettings(
        service_date=dt.date.fromisoformat(args.date),
        seed=args.seed,
        vehicles=args.vehicles,
        flights=args.flights,
        start_hour=args.start_hour,
        hours=args.hours,
        layout=args.layout,
    )
    variants = []
    if args.compare_variant:
        variants.append(
            settings.model_copy(
                update={
                    "variant": check_variant(args.compare_variant),
                    "dispatch_rule": NEAREST_FIRST,
                }
            )
        )
    return settings, variants


def _run(args: argparse.Namespace, say: Callable[[str], None] | None) -> dict[str, Any]:
    report = say or (lambda text: print(text, file=sys.stderr, flush=True))
    settings, variants = day_settings(args)
    if not args.no_serve and not port_is_free(args.host, args.port):
        raise LocalStackError(f"{args.host}:{args.port} is already in use (choose --port)")
    started = time.monotonic()
    with moto_server(args.moto_port or None) as server:
        os.environ.update(server.environment)  # child processes (chunk jobs) inherit it
        report(f"local AWS (moto server) at {server.endpoint}")
        s3 = s3_client()
        s3.create_bucket(Bucket=DEMO_BUCKET)

        key = demo_cache_key(settings, variants)
        cached = day_cache.load(args.cache, key) if args.cache else None
        if cached is not None:
            mark = time.monotonic()
            restored = day_cache.restore(cached, s3, DEMO_BUCKET)
            day_summary = cached.summary
            report(
                f"reused the day cached in {cached.folder} ({restored} objects) in "
                f"{time.monotonic() - mark:.1f} s"
            )
        else:
            day_summary = _generate_and_chunk(settings, s3, max(1, args.jobs), report)
            day_summary["variants"] = {
                variant.variant: _generate_and_chunk(variant, s3, max(1, args.jobs), report)
                for variant in variants
            }
            if args.cache:
                day_cache.store(args.cache, key, s3, DEMO_BUCKET, day_summary)
        ensure_table(dynamodb_client(), DEMO_TABLE)
        os.environ.update(local_app_environment(DEMO_BUCKET, DEMO_TABLE))
        ready_s = time.monotonic() - started
        if not args.no_serve:
            url = f"http://{args.host}:{args.port}"
            serve.serve_app(
                args.host,
                args.port,
                announce=f"ready in {ready_s:.0f} s: open {url}  (Ctrl-C stops everything)",
            )
    return day_summary | {"ready_seconds": round(ready_s, 2), "cached": cached is not None}


def _generate_and_chunk(
    settings: GeneratorSettings, s3: S3Client, jobs: int, report: Callable[[str], None]
) -> dict[str, Any]:
    """Generate the day into the bucket and chunk it; the summary the demo prints."""
    mark = time.monotonic()
    day = generate_day(settings, report)
    write_day(day, lambda key, body: s3.put_object(Bucket=DEMO_BUCKET, Key=key, Body=body))
    generated_s = time.monotonic() - mark
    named = "" if settings.variant == DEFAULT_VARIANT else f" (variant {settings.variant})"
    report(
        f"generated{named} {day.turnarounds} turnarounds, {day.tasks} tasks, "
        f"{day.counts['positions']:,} GPS fixes in {generated_s:.1f} s"
    )
    mark = time.monotonic()
    summary = chunk_day(
        s3,
        DEMO_BUCKET,
        day.keys.airport,
        day.keys.service_date,
        ChunkerConfig(),
        jobs=jobs,
        run_ranges=run_ranges_in_processes(quiet=True) if jobs > 1 else None,
        variant=settings.variant,
    )
    chunked_s = time.monotonic() - mark
    report(
        f"chunked{named} into {summary.chunk_objects} chunks ({summary.chunk_bytes / 1e6:.1f} MB) "
        f"in {chunked_s:.1f} s with {jobs} process(es)"
    )
    return {
        "airport": day.keys.airport,
        "service_date": day.keys.service_date,
        "raw_records": day.counts,
        "turnarounds": day.turnarounds,
        "tasks": day.tasks,
        "chunks": summary.chunk_objects,
        "chunk_bytes": summary.chunk_bytes,
        "version": summary.version,
        "generate_seconds": round(generated_s, 2),
        "chunk_seconds": round(chunked_s, 2),
    }
