"""Chunk encoding candidates on real chunks: bytes, encode and decode cost.

The chunk format's encoding (JSON + zstd 3) was chosen from this table: see
docs/performance.md. Decode cost matters most (the stream decodes on every cache miss),
then bytes (S3 transfer and storage), then encode (once per chunk, in batch).
"""

from __future__ import annotations

import argparse
import gzip
import time
from collections.abc import Callable
from typing import Any

import msgpack
import orjson
import zstandard

from bench.common import say, write_result
from chunker.batch.build import build_hour
from chunker.batch.run import by_time, parse_file
from chunker.batch.validate import Rules
from chunker.format.day import ServiceDay
from chunker.format.encoding import ChunkerConfig
from chunker.format.keys import classify_raw_key
from chunker.format.records import RECORD_KINDS
from chunker.format.state import ReplayState
from synthetic import GeneratorSettings, generate_day

Codec = tuple[Callable[[dict[str, Any]], bytes], Callable[[bytes], Any]]


def _zstd(level: int) -> Codec:
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
    decompressor = zstandard.ZstdDecompressor()
    return (
        lambda d: compressor.compress(orjson.dumps(d)),
        lambda b: orjson.loads(decompressor.decompress(b)),
    )


def _msgpack_zstd(level: int) -> Codec:
    compressor = zstandard.ZstdCompressor(level=level, write_content_size=True)
    decompressor = zstandard.ZstdDecompressor()
    return (
        lambda d: compressor.compress(msgpack.packb(d)),
        lambda b: msgpack.unpackb(decompressor.decompress(b)),
    )


CANDIDATES: dict[str, Codec] = {
    "json": (orjson.dumps, orjson.loads),
    "json+gzip6": (
        lambda d: gzip.compress(orjson.dumps(d), 6, mtime=0),
        lambda b: orjson.loads(gzip.decompress(b)),
    ),
    "json+zstd1": _zstd(1),
    "json+zstd3": _zstd(3),
    "json+zstd9": _zstd(9),
    "json+zstd19": _zstd(19),
    "msgpack+zstd3": _msgpack_zstd(3),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hours", type=int, default=2, help="busy hours to encode")


def busy_chunk_documents(hours: int) -> list[dict[str, Any]]:
    """Chunk documents of ``hours`` busy hours of the synthetic day (from 07:00; 06:00
    warms the state up), built in memory as the chunker builds them."""
    settings = GeneratorSettings(start_hour=6, hours=hours + 1)
    day = generate_day(settings)
    service_day = ServiceDay.of(day.keys.service_date, day.reference.airport.timezone)
    rules = Rules.for_day(day.reference, service_day)
    rows: dict[str, list[Any]] = {kind: [] for kind in RECORD_KINDS}
    for key, body in sorted(day.objects.items()):
        raw_file = classify_raw_key(day.keys, key)
        if raw_file is not None:
            rows[raw_file.kind].extend(parse_file(body, raw_file, rules).rows)
    config = ChunkerConfig()
    state = ReplayState()
    documents = []
    for hour in range(settings.start_hour, settings.start_hour + hours + 1):
        start, end = service_day.hour_window(hour)
        hour_rows = {k: by_time(r for r in v if start <= r["t"] < end) for k, v in rows.items()}
        built = build_hour(day.keys.airport, service_day, hour, config, state, hour_rows)
        if hour > settings.start_hour:  # the first hour warms the state up
            documents.extend(chunk.document for chunk in built.chunks)
    return documents


def run(args: argparse.Namespace) -> dict[str, Any]:
    documents = busy_chunk_documents(args.hours)
    say(f"{len(documents)} chunks from busy hours")
    table = {}
    for name, (encode, decode) in CANDIDATES.items():
        started = time.perf_counter()
        blobs = [encode(d) for d in documents]
        encode_ms = (time.perf_counter() - started) * 1000 / len(documents)
        started = time.perf_counter()
        for blob in blobs:
            decode(blob)
        decode_ms = (time.perf_counter() - started) * 1000 / len(documents)
        table[name] = {
            "bytes_per_chunk": round(sum(len(b) for b in blobs) / len(blobs)),
            "encode_ms": round(encode_ms, 3),
            "decode_ms": round(decode_ms, 3),
        }
        say(f"{name:14s} {table[name]}")
    result = {"chunks": len(documents), "candidates": table, "chosen": "json+zstd3"}
    write_result("encoding", result)
    return result
