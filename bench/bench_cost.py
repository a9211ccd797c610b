"""The Lambda cost model, computed from measured results (docs/operations.md, "Cost model").

Reads what other benchmarks measured — ``bench/results/lambda_stream.json`` (the stream
function's chosen MemorySize, from its peak RSS and the targets under its CPU share) and
``bench/results/stream.json`` (the wire bytes/s of a stream at 1x and 64x over 10
replay-minutes) — and the settings that fix the request counts (``STREAM_POLL_MS``,
``STREAM_MAX_SECONDS``, ``STREAM_LEASE_S``, the dashboard's presence interval), and prices
one viewer-hour at us-east-1 list prices (arm64). Writes ``bench/results/cost.json`` and
prints the table docs/operations.md shows.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from bench.common import RESULTS, say, write_result
from functions.app.settings import AppSettings

# us-east-1 list prices (check your region's): arm64 Lambda, response streaming, DynamoDB
# on demand, S3 standard, data transfer out (the first 10 TB).
LAMBDA_GB_S = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
STREAMING_GB = 0.008  # beyond the first 6 MB of each response
DYNAMODB_READ = 0.125 / 1e6  # per read request unit: one strongly consistent read <= 4 KB
DYNAMODB_WRITE = 0.625 / 1e6  # per write request unit (<= 1 KB)
HTTP_API_REQUEST = 1.00 / 1e6
S3_GET = 0.0004 / 1000
TRANSFER_GB = 0.09
PRESENCE_INTERVAL_S = 45  # functions/dashboard/app.js PRESENCE_INTERVAL_MS
CONTROL_MEMORY_MB, CONTROL_CALL_S = 512, 0.05  # a presence renewal: one small DynamoDB update
HOUR = 3600


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memory-mb", type=int, default=None, help="default: the measured run's")


def viewer_hour(memory_mb: int, bytes_per_s: float, defaults: AppSettings) -> dict[str, Any]:
    """The items of one viewer-hour (one stream open for an hour) and their cost."""
    invocations = HOUR / defaults.stream_max_seconds
    per_response_mb = bytes_per_s * defaults.stream_max_seconds / 1e6
    presence = HOUR / PRESENCE_INTERVAL_S
    quantities = {
        "lambda_gb_s": memory_mb / 1024 * HOUR,
        "lambda_requests": invocations,
        # Every stream polls its session (BatchGetItem, strongly consistent) every poll.
        "dynamodb_reads": HOUR * 1000 / defaults.stream_poll_ms,
        # Presence renewals (through the control API) and the stream's two lease items
        # (per user and per session) renewed every third of STREAM_LEASE_S.
        "dynamodb_writes": presence + 2 * HOUR / (defaults.stream_lease_s / 3),
        "control_requests": presence,
        "gb_out": bytes_per_s * HOUR / 1e9,
        "gb_streamed_beyond_6mb": max(0.0, per_response_mb - 6) * invocations / 1000,
    }
    costs = {
        "lambda_duration": quantities["lambda_gb_s"] * LAMBDA_GB_S,
        "lambda_requests": invocations * LAMBDA_REQUEST,
        "dynamodb_reads": quantities["dynamodb_reads"] * DYNAMODB_READ,
        "dynamodb_writes": quantities["dynamodb_writes"] * DYNAMODB_WRITE,
        "control_api": presence
        * (HTTP_API_REQUEST + CONTROL_MEMORY_MB / 1024 * CONTROL_CALL_S * LAMBDA_GB_S),
        "transfer_out": quantities["gb_out"] * TRANSFER_GB,
        "response_streaming": quantities["gb_streamed_beyond_6mb"] * STREAMING_GB,
        "s3_gets": HOUR / 60 * S3_GET,  # one 60 s chunk per replay minute at 1x
    }
    return {
        "memory_mb": memory_mb,
        "bytes_per_s": round(bytes_per_s),
        "quantities": {k: round(v, 4) for k, v in quantities.items()},
        "usd": {k: round(v, 6) for k, v in costs.items()},
        "total_usd": round(sum(costs.values()), 5),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    measured = json.loads((RESULTS / "lambda_stream.json").read_text())
    stream = json.loads((RESULTS / "stream.json").read_text())
    defaults = AppSettings(replay_bucket="cost", stream_token_secret="x" * 32)  # type: ignore[arg-type]
    memory = args.memory_mb or measured["quota"]["memory_mb"]
    wire_1x = stream["pacing"]["1x"]["stream"]["bytes_per_s"]
    wire_64x = stream["pacing"]["64x"]["stream"]["bytes_per_s"]
    result = {
        "from": ["bench/results/lambda_stream.json", "bench/results/stream.json"],
        "lambda_stream_measured_at": measured["measured_at"],
        "stream_measured_at": stream["measured_at"],
        "chosen_1x": viewer_hour(memory, wire_1x, defaults),
        "chosen_64x": viewer_hour(memory, wire_64x, defaults),
        "before_1024_mb_1x": viewer_hour(1024, wire_1x, defaults),
        "target_usd_per_viewer_hour_1x": 0.015,
    }
    result["passed"] = result["chosen_1x"]["total_usd"] <= 0.015
    for name in ("chosen_1x", "chosen_64x", "before_1024_mb_1x"):
        say(f"  {name}: {result[name]['total_usd']} USD {result[name]['usd']}")
    write_result("cost", result)
    return result
