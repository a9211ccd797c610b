"""The stream's shared chunk source: single-flight, stale-while-revalidate day lists."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING

from chunker.format.encoding import decode_chunk
from chunker.format.prepared import PreparedChunk
from chunker.format.read import ChunkReader
from functions.app.stream import chunk_source as source_module
from functions.app.stream.chunk_source import ChunkSource
from tests.conftest import BUCKET
from tests.streaming import publish_tiny_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class CountingReader(ChunkReader):
    """A reader whose day listing is slow and counted."""

    def __init__(self, s3: S3Client) -> None:
        super().__init__(s3, BUCKET)
        self.listings = 0
        self.release = threading.Event()

    def published_days(self, airport: str) -> list[str]:
        self.listings += 1
        if self.listings > 1:
            self.release.wait(5)  # a slow S3 listing after the first
        return super().published_days(airport)


def test_a_stale_day_list_is_refreshed_once_in_the_background(s3: S3Client) -> None:
    publish_tiny_day(s3)
    reader = CountingReader(s3)
    source = ChunkSource(reader)

    async def scenario() -> None:
        manifest = await source.manifest_for("XTST", 1773417600000 + 60_000)
        source._airports["XTST"].fetched_at -= source_module.DAYS_TTL_S + 1  # now stale
        started = time.monotonic()
        answers = await asyncio.gather(
            *(source.manifest_for("XTST", manifest.start + i * 1000) for i in range(200))
        )
        # Served from the stale list while the (blocked) refresh runs: nobody waited.
        assert time.monotonic() - started < 1.0
        assert all(answer.version == manifest.version for answer in answers)
        deadline = time.monotonic() + 5
        while reader.listings < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the background refresh reaches the slow listing
        assert reader.listings == 2 and source.refreshes == 2  # one refresh for 200 callers
        reader.release.set()
        refreshing = source._airports["XTST"].refreshing
        assert refreshing is not None
        await refreshing
        assert source._airports["XTST"].manifests  # manifests kept across the refresh

    asyncio.run(scenario())


def test_a_prepared_chunk_counts_the_memory_it_really_holds(s3: S3Client) -> None:
    """The cache's accounting against tracemalloc (issue #15: it counted 1/17 of it)."""
    publish_tiny_day(s3)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    stored = [(entry.key, reader._get(entry.key)) for entry in manifest.chunks[::12]]
    tracemalloc.start()
    try:
        for key, blob in stored:
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            # Decoded inside the window and dropped, as a cache load does: the strings the
            # prepared chunk keeps come from its document.
            prepared = PreparedChunk.from_document(key, decode_chunk(blob))
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
            # Counted at least what is allocated (and what pymalloc rounds up on top).
            assert held * 0.98 <= prepared.size <= held * 1.25 + 1024, (key, held, prepared.size)
            del prepared
    finally:
        tracemalloc.stop()


def test_a_full_cache_holds_no_more_memory_than_its_limit(s3: S3Client) -> None:
    publish_tiny_day(s3)
    limit = 1024 * 1024
    manifest = ChunkReader(s3, BUCKET).published("XTST", "2026-03-14").manifest
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        reader = ChunkReader(s3, BUCKET, cache_bytes=limit)
        for entry in manifest.chunks[:24]:  # 24 chunks (~6 MB) through a 1 MiB cache
            reader.chunk(entry.key)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert reader.chunks.bytes <= limit
    assert len(reader.chunks) >= 2
    # What the cache holds is within its limit (plus the reader and its S3 client's share).
    assert held <= limit + 256 * 1024, held
