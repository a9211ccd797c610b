"""Chunker benchmark: throughput, output size and seek cost against the naive baseline.

One run: generate a synthetic day, chunk it with the real chunker (one process = one core)
and, for the busiest hour, with the baseline (pydantic per record, full state per tick).
S3 is in-process moto, so S3 time is CPU spent in this process, not network. Then the
same day against the gunzip + decode floor and DuckDB as a peer, with moto in its own
process so the chunker's CPU is its own (``bench_chunker_floor``).
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from moto import mock_aws

from bench.baseline_chunker import baseline_full_state_per_tick, baseline_rows
from bench.bench_chunker_floor import floor_and_peer
from bench.bench_chunker_positions import position_loop_ab
from bench.common import percentile, say, write_result
from chunker.batch.raw_inputs import iter_lines
from chunker.batch.run import HourOutcome, chunk_day
from chunker.batch.validate import Rules
from chunker.format.day import ServiceDay
from chunker.format.encoding import ChunkerConfig
from chunker.format.keys import classify_raw_key
from chunker.format.read import ChunkReader
from chunker.format.s3 import s3_client
from synthetic import GeneratorSettings, generate_day

BUCKET = "bench-replay"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--seeks", type=int, default=200)


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = GeneratorSettings(vehicles=args.vehicles, flights=args.flights, hours=args.hours)
    started = time.perf_counter()
    day = generate_day(settings)
    generation_s = time.perf_counter() - started
    say(f"generated {day.counts} in {generation_s:.1f} s")
    airport, date = day.keys.airport, day.keys.service_date
    config = ChunkerConfig()
    with mock_aws():
        s3 = s3_client()
        s3.create_bucket(Bucket=BUCKET)
        for key, body in day.objects.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        outcomes: list[HourOutcome] = []
        started = time.perf_counter()
        summary = chunk_day(s3, BUCKET, airport, date, config, progress=outcomes.append)
        chunk_s = time.perf_counter() - started
        positions = summary.counts["positions"].accepted
        records = sum(c.accepted for c in summary.counts.values())
        say(
            f"chunked {records:,} records in {chunk_s:.1f} s "
            f"({positions / chunk_s:,.0f} positions/s)"
        )

        busiest = max(outcomes, key=lambda o: o.part.counts["positions"].accepted)
        hour = busiest.part.hour
        service_day = ServiceDay.of(date, day.reference.airport.timezone)
        hour_start, hour_end = service_day.hour_window(hour)
        hour_objects = {}
        for key, body in day.objects.items():
            raw_file = classify_raw_key(day.keys, key)
            if raw_file is not None and raw_file.hour in (None, hour):
                hour_objects[key] = (raw_file.kind, body)
        position_files = []
        for key, (kind, body) in sorted(hour_objects.items()):
            raw_file = classify_raw_key(day.keys, key)
            if kind == "positions" and raw_file is not None:
                window = None if raw_file.hour is None else service_day.hour_window(hour)
                position_files.append((list(iter_lines(body, key, raw_file.gzip)), window))
        loop = position_loop_ab(
            lambda: Rules.for_day(day.reference, service_day), position_files, repeat=15
        )
        say(f"position loop, busiest hour: {loop}")
        started = time.perf_counter()
        rows = baseline_rows(hour_objects)
        parse_s = time.perf_counter() - started
        started = time.perf_counter()
        baseline = baseline_full_state_per_tick(
            rows, service_day, hour_start, hour_end, config.tick_ms, config.bucket_ms
        )
        encode_s = time.perf_counter() - started - baseline.zstd_seconds
        hour_positions = busiest.part.counts["positions"].accepted
        baseline_s = parse_s + encode_s
        ours_hour_bytes = sum(c.bytes for c in busiest.part.chunks)
        say(f"baseline hour {hour:02d}: {baseline_s:.1f} s, {baseline.full_state_bytes:,} bytes")

        reader = ChunkReader(s3, BUCKET)
        manifest = reader.published(airport, date).manifest
        rng = random.Random(11)
        times = [rng.randrange(manifest.start, manifest.end) for _ in range(args.seeks)]
        cold: list[float] = []
        warm: list[float] = []
        for t in times:
            fresh = ChunkReader(s3, BUCKET)
            started = time.perf_counter()
            fresh.state_at(manifest, t)
            cold.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            fresh.state_at(manifest, t)
            warm.append((time.perf_counter() - started) * 1000)

    say("floor, peer and both position paths against moto's server ...")
    floor = floor_and_peer(day)
    say(f"floor and peer: {floor}")
    ours_rate_hour = hour_positions / busiest.seconds
    baseline_rate_hour = hour_positions / baseline_s
    result = {
        "settings": {
            "vehicles": args.vehicles,
            "flights": args.flights,
            "hours": args.hours,
            "bucket_ms": config.bucket_ms,
            "tick_ms": config.tick_ms,
        },
        "records": day.counts,
        "generation_s": round(generation_s, 2),
        "whole_day": {
            "seconds": round(chunk_s, 2),
            "positions_per_s": round(positions / chunk_s),
            "records_per_s": round(records / chunk_s),
            "chunk_objects": summary.chunk_objects,
            "chunk_bytes": summary.chunk_bytes,
            "raw_gzip_bytes": sum(len(b) for b in day.objects.values()),
        },
        "busiest_hour": {
            "hour": hour,
            "positions": hour_positions,
            "ours_s": round(busiest.seconds, 3),
            "baseline_s": round(baseline_s, 3),
            "baseline_parse_s": round(parse_s, 3),
            "baseline_encode_s": round(encode_s, 3),
            "ours_positions_per_s": round(ours_rate_hour),
            "baseline_positions_per_s": round(baseline_rate_hour),
            "speedup": round(ours_rate_hour / baseline_rate_hour, 2),
            "ours_bytes": ours_hour_bytes,
            "full_state_per_tick_json_bytes": baseline.full_state_bytes,
            "size_ratio_vs_json": round(ours_hour_bytes / baseline.full_state_bytes, 5),
            "full_state_per_tick_zstd_bytes": baseline.zstd_bytes,
            "size_ratio_vs_zstd": round(ours_hour_bytes / baseline.zstd_bytes, 4),
        },
        "position_loop_busiest_hour": loop,
        "floor_and_peer": floor,
        "state_at_random_t_ms": {
            "samples": len(times),
            "cold_p50": round(percentile(cold, 50), 2),
            "cold_p95": round(percentile(cold, 95), 2),
            "cold_p99": round(percentile(cold, 99), 2),
            "warm_p50": round(percentile(warm, 50), 2),
            "warm_p99": round(percentile(warm, 99), 2),
        },
        "targets": {
            "positions_per_s_per_core": 250_000,
            "over_parse_floor": round(1 / 3, 3),
            "size_ratio_vs_full_state_per_tick": 0.2,
            "state_at_t_ms": 50,
        },
    }
    write_result("chunker", result)
    return result
