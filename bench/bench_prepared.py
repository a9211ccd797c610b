"""Prepared chunks (what the stream's cache holds): memory counted vs really held, and the
cost of preparing, against the floor of decoding the same stored chunk.

Busy hours of the synthetic day (150 vehicles), each chunk encoded as stored (JSON +
zstd 3). Per chunk: ``decode`` (zstd + ``orjson.loads``, the floor every reader pays) and
``prepare`` (``PreparedChunk.from_document``), best of ``--repeat``; the memory a
prepared chunk holds, measured with tracemalloc, against the size the cache counts for it
(``PreparedChunk.size``). Pass: counted / held within [0.98, 1.25] for every chunk (the
cache's bound is real memory, issue #15), and prepare <= 3x decode.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

from bench.bench_encoding import busy_chunk_documents
from bench.common import percentile, say, write_result
from chunker.format.encoding import decode_chunk, encode_chunk
from chunker.format.prepared import PreparedChunk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hours", type=int, default=2, help="busy hours of chunks")
    parser.add_argument("--repeat", type=int, default=5, help="timing passes (best kept)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    stored = [encode_chunk(document) for document in busy_chunk_documents(args.hours)]
    say(f"{len(stored)} chunks")
    decode_s = prepare_s = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        documents = [decode_chunk(blob) for blob in stored]
        decode_s = min(decode_s, time.perf_counter() - started)
        started = time.perf_counter()
        for index, document in enumerate(documents):
            PreparedChunk.from_document(str(index), document)
        prepare_s = min(prepare_s, time.perf_counter() - started)
    del documents
    ratios, held_mb, counted_mb = [], [], []
    tracemalloc.start()
    try:
        for index, blob in enumerate(stored):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            # Decoded inside the window and dropped: the strings a prepared chunk keeps
            # come from its document, so what remains is what the cache would hold.
            prepared = PreparedChunk.from_document(str(index), decode_chunk(blob))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            ratios.append(prepared.size / held)
            held_mb.append(held / 1e6)
            counted_mb.append(prepared.size / 1e6)
            del prepared
    finally:
        tracemalloc.stop()
    count = len(stored)
    decode_ms, prepare_ms = decode_s * 1000 / count, prepare_s * 1000 / count
    result = {
        "chunks": count,
        "decode_ms_per_chunk": round(decode_ms, 3),
        "prepare_ms_per_chunk": round(prepare_ms, 3),
        "prepare_over_decode": round(prepare_ms / decode_ms, 2),
        "held_mb_per_chunk_p50": round(percentile(held_mb, 50), 3),
        "held_mb_per_chunk_max": round(max(held_mb), 3),
        "counted_over_held_min": round(min(ratios), 3),
        "counted_over_held_max": round(max(ratios), 3),
        "criteria": "counted/held in [0.98, 1.25] for every chunk; prepare <= 3x decode",
        "passed": min(ratios) >= 0.98 and max(ratios) <= 1.25 and prepare_ms <= 3 * decode_ms,
    }
    write_result("prepared", result)
    return result
