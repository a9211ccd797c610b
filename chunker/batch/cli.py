"""``dispatch-replay generate | chunk | schema``: the chunker's command line.

Errors are one line on stderr and a non-zero exit status; progress goes to stderr; the
result summary (JSON) to stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from chunker.batch.run import DayJob, HourOutcome, chunk_day
from chunker.format.encoding import ChunkerConfig, HourPart, KindCounts
from chunker.format.keys import DEFAULT_VARIANT, check_variant

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEFAULT_AIRPORT = "XLHI"
DEFAULT_DATE = "2026-03-14"


def bucket_from(args: argparse.Namespace) -> str:
    """The bucket from ``--bucket`` or ``REPLAY_BUCKET``."""
    bucket: str | None = args.bucket or os.environ.get("REPLAY_BUCKET")
    if not bucket:
        raise ValueError("no bucket: pass --bucket or set REPLAY_BUCKET")
    return bucket


def _hour_line(outcome: HourOutcome, total: int) -> str:
    part = outcome.part
    accepted = {k: c.accepted for k, c in part.counts.items()}
    rate = accepted["positions"] / outcome.seconds if outcome.seconds else 0.0
    return (
        f"hour {part.hour:02d}/{total:02d}: {accepted['positions']:,} positions "
        f"({rate:,.0f}/s), {accepted['tasks']:,} task events, {accepted['flights']:,} flight "
        f"events, {accepted['notifications']:,} notifications, {part.quarantined:,} quarantined, "
        f"{len(part.chunks)} chunks in {outcome.seconds:.2f} s"
    )


def _range_worker(
    bucket: str,
    airport: str,
    service_date: str,
    config: dict[str, Any],
    hours: list[int],
    quiet: bool,
    variant: str,
) -> list[dict[str, Any]]:
    """Run one range of hours in a worker process with its own S3 client."""
    from chunker.format.s3 import s3_client

    job = DayJob.open(
        s3_client(), bucket, airport, service_date, ChunkerConfig(**config), variant=variant
    )
    parts: list[dict[str, Any]] = []

    def report(outcome: HourOutcome) -> None:
        parts.append(outcome.part.model_dump(mode="json"))
        if not quiet:
            print(_hour_line(outcome, job.day.hours), file=sys.stderr, flush=True)

    job.run_hours(hours, report)
    return parts


def run_ranges_in_processes(quiet: bool) -> Any:
    """A ``run_ranges`` for ``chunk_day`` that runs each range in its own process."""

    def run(job: DayJob, ranges: list[range]) -> list[HourPart]:
        context = get_context("spawn")  # no fork of a process holding boto3 clients/threads
        with ProcessPoolExecutor(len(ranges), mp_context=context) as pool:
            futures = [
                pool.submit(
                    _range_worker,
                    job.bucket,
                    job.keys.airport,
                    job.keys.service_date,
                    job.config.model_dump(),
                    list(hours),
                    quiet,
                    job.keys.variant,
                )
                for hours in ranges
            ]
            return [HourPart.model_validate(p) for f in futures for p in f.result()]

    return run


DEFAULT_WARN_LOST = 0.05


def _by_reason(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items(), key=lambda i: -i[1]))


def data_quality(
    counts: dict[str, KindCounts], reference_skipped: dict[str, int], warn_lost: float
) -> tuple[list[str], list[str], dict[str, float]]:
    """(report lines, warnings, lost fraction per kind) of a chunk run.

    A kind's *lost* fraction is its quarantined records over all its valid-or-not records
    (accepted + quarantined); duplicates lose nothing and amended records are kept. A kind
    that lost more than ``warn_lost`` is a warning.
    """
    lines: list[str] = []
    warnings: list[str] = []
    lost: dict[str, float] = {}
    for kind, kind_counts in counts.items():
        quarantined = sum(kind_counts.rejected.values())
        total = kind_counts.accepted + quarantined
        lost[kind] = round(quarantined / total, 6) if total else 0.0
        parts = [f"{kind_counts.accepted:,} accepted"]
        if kind_counts.duplicates:
            parts.append(f"{kind_counts.duplicates:,} duplicates dropped")
        if quarantined:
            parts.append(f"{quarantined:,} quarantined ({_by_reason(kind_counts.rejected)})")
        if kind_counts.amended:
            parts.append(f"values dropped and derived: {_by_reason(kind_counts.amended)}")
        lines.append(f"data quality: {kind}: {'; '.join(parts)}; lost {lost[kind]:.2%}")
        if total and lost[kind] > warn_lost:
            warnings.append(
                f"warning: {kind} lost {lost[kind]:.1%} of their records "
                f"({quarantined:,} of {total:,}; threshold {warn_lost:.1%}, --warn-lost)"
            )
    if reference_skipped:
        lines.append(f"data quality: reference.json: skipped {_by_reason(reference_skipped)}")
    return lines, warnings, lost


def cmd_chunk(args: argparse.Namespace, s3: S3Client) -> dict[str, Any]:
    """Chunk and publish a service day; print its data quality (stderr)."""
    config = ChunkerConfig(
        bucket_ms=args.bucket_ms,
        tick_ms=args.tick_ms,
        task_retention_ms=args.task_retention_min * 60_000,
        aircraft_expiry_ms=args.aircraft_expiry_s * 1_000,
    )
    total = 0

    def progress(outcome: HourOutcome) -> None:
        if not args.quiet:
            print(_hour_line(outcome, total), file=sys.stderr, flush=True)

    check_variant(args.variant)
    job_count = max(1, args.jobs)
    summary = chunk_day(
        s3,
        bucket_from(args),
        args.airport,
        args.date,
        config,
        force=args.force,
        progress=progress,
        jobs=job_count,
        run_ranges=run_ranges_in_processes(args.quiet) if job_count > 1 else None,
        variant=args.variant,
    )
    result = summary.as_dict()
    if summary.already_published:
        return result
    lines, warnings, lost = data_quality(summary.counts, summary.reference_skipped, args.warn_lost)
    for line in lines if not args.quiet else []:
        print(line, file=sys.stderr, flush=True)
    for warning in warnings:  # shown even with --quiet
        print(warning, file=sys.stderr, flush=True)
    result["quality"] = {"lost": lost, "warn_lost": args.warn_lost, "warnings": warnings}
    return result


def cmd_generate(args: argparse.Namespace, s3: S3Client | None) -> dict[str, Any]:
    """Generate a synthetic recorded day into S3 or a directory."""
    from synthetic import GeneratorSettings, generate_day, write_day

    settings = GeneratorSettings(
        airport=args.airport,
        service_date=dt.date.fromisoformat(args.date),
        seed=args.seed,
        vehicles=args.vehicles,
        flights=args.flights,
        start_hour=args.start_hour,
        hours=args.hours,
        messy_fraction=args.messy,
        variant=check_variant(args.variant),
        dispatch_rule=args.dispatch_rule,
        layout=args.layout,
    )
    progress = None if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    day = generate_day(settings, progress)
    if args.out:
        root = Path(args.out)

        def put(key: str, data: bytes) -> None:
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

        target = str(root)
    else:
        assert s3 is not None
        bucket = bucket_from(args)

        def put(key: str, data: bytes) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=data)

        target = f"s3://{bucket}"
    write_day(day, put)
    return {
        "target": target,
        "prefix": day.keys.raw_prefix,
        "objects": len(day.objects),
        "bytes": sum(len(b) for b in day.objects.values()),
        "records": day.counts,
        "injected": day.injected,
        "expected_rejections": day.expected_rejections,
    }


def cmd_schema(args: argparse.Namespace) -> dict[str, Any]:
    """Write the JSON Schema of every raw record kind and of the reference data."""
    from chunker.format.records import RECORD_MODELS, Reference

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    models: dict[str, type[BaseModel]] = {**RECORD_MODELS, "reference": Reference}
    for name, model in models.items():
        path = out / f"{name}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"https://dispatch-replay.example/schemas/{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(str(path))
    return {"written": written}


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a fraction in [0, 1]")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the chunker's subcommands on the top-level parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--airport", default=DEFAULT_AIRPORT, help="airport id (default XLHI)")
    common.add_argument("--date", default=DEFAULT_DATE, help="service date YYYY-MM-DD")
    common.add_argument("--bucket", help="S3 bucket (default: $REPLAY_BUCKET)")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument(
        "--variant",
        default=DEFAULT_VARIANT,
        help="which dispatch run of the day (default: the default variant; docs/data-format.md)",
    )

    gen = sub.add_parser("generate", parents=[common], help="generate a synthetic recorded day")
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--vehicles", type=int, default=150)
    gen.add_argument("--flights", type=int, default=300)
    gen.add_argument("--start-hour", type=int, default=0)
    gen.add_argument("--hours", type=int, default=24)
    gen.add_argument(
        "--messy",
        type=float,
        default=0.0,
        help="fraction of raw lines to corrupt/duplicate/reorder (0..0.5)",
    )
    gen.add_argument("--out", help="write to this directory instead of S3")
    gen.add_argument(
        "--layout",
        type=Path,
        metavar="REFERENCE_JSON",
        help="lay the day onto an imported airport (import-layout's reference.json; its "
        "airport id and time zone replace --airport) instead of the fictional one",
    )
    gen.add_argument(
        "--dispatch-rule",
        default="on_time_then_shortest_drive",
        help="the rule the simulated dispatcher assigns by: on_time_then_shortest_drive "
        "(default) or nearest_first (e.g. for a second variant)",
    )

    chunk = sub.add_parser("chunk", parents=[common], help="chunk and publish a service day")
    chunk.add_argument("--bucket-ms", type=int, default=60_000, help="replay time per chunk")
    chunk.add_argument("--tick-ms", type=int, default=1_000, help="base tick (>= 100)")
    chunk.add_argument(
        "--task-retention-min",
        type=int,
        default=60,
        help="minutes a finished task stays in the replay state (0: all day)",
    )
    chunk.add_argument(
        "--aircraft-expiry-s",
        type=int,
        default=300,
        help="seconds without a surface fix after which an aircraft leaves the replay "
        "state; it leaves at once when its departure leg says departed (0: all day)",
    )
    chunk.add_argument("--jobs", type=int, default=1, help="parallel processes (hour ranges)")
    chunk.add_argument("--force", action="store_true", help="rebuild even if already built")
    chunk.add_argument(
        "--warn-lost",
        type=_fraction,
        default=DEFAULT_WARN_LOST,
        help="warn when a kind loses more than this fraction of its records to quarantine "
        f"(default {DEFAULT_WARN_LOST})",
    )

    schema = sub.add_parser("schema", help="export JSON Schemas of the raw-data contract")
    schema.add_argument("--out", default="docs/schemas")
