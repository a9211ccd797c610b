"""Chunk bytes of the demo day with aircraft kept all day vs leaving the state (#18).

Before: ``aircraft_expiry_ms`` 0 (every aircraft that ever reported stays in every later
keyframe, as chunks were before the rule). After: the default rule (no fix for 5 minutes,
or the departure leg departed: docs/data-format.md, "Aircraft leave the state"). The same
generated day, chunked twice in one run; chunk bytes (zstd, as stored) are deterministic.
"""

from __future__ import annotations

import argparse
from typing import Any

from moto import mock_aws

from bench.common import say, write_result
from chunker.batch.run import chunk_day
from chunker.format.encoding import ChunkerConfig, decode_chunk
from chunker.format.read import ChunkReader
from chunker.format.s3 import s3_client
from synthetic import GeneratorSettings, generate_day, write_day


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)


def _measure(day: Any, config: ChunkerConfig, bucket: str) -> dict[str, int]:
    s3 = s3_client()
    s3.create_bucket(Bucket=bucket)
    write_day(day, lambda key, body: s3.put_object(Bucket=bucket, Key=key, Body=body))
    airport, date = day.keys.airport, day.keys.service_date
    summary = chunk_day(s3, bucket, airport, date, config, jobs=1)
    manifest = ChunkReader(s3, bucket).published(airport, date).manifest
    keyframe_aircraft = removals = most = 0
    for entry in manifest.chunks:
        document = decode_chunk(s3.get_object(Bucket=bucket, Key=entry.key)["Body"].read())
        keyframe_aircraft += len(document["keyframe"]["aircraft"])
        most = max(most, len(document["keyframe"]["aircraft"]))
        removals += sum(
            1
            for tick in document["ticks"]
            for row in tick.get("aircraft", ())
            if row.get("removed")
        )
    return {
        "chunk_bytes": summary.chunk_bytes,
        "chunks": len(manifest.chunks),
        "keyframe_aircraft_rows": keyframe_aircraft,
        "removal_rows": removals,
        "most_aircraft_in_a_keyframe": most,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = GeneratorSettings(vehicles=args.vehicles, flights=args.flights)
    day = generate_day(settings)
    say(f"generated {day.counts}")
    with mock_aws():
        before = _measure(day, ChunkerConfig(aircraft_expiry_ms=0), "before")
        say(f"aircraft kept all day: {before}")
        after = _measure(day, ChunkerConfig(), "after")
        say(f"aircraft leave the state: {after}")
    result = {
        "day": settings.model_dump(mode="json"),
        "kept_all_day": before,
        "leave_the_state": after,
        "chunk_bytes_ratio": round(after["chunk_bytes"] / before["chunk_bytes"], 4),
    }
    write_result("aircraft_expiry", result)
    return result
