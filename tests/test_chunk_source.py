"""The stream's shared chunk source: single-flight, stale-while-revalidate day lists."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING

import pytest

from chunker.format import read as read_module
from chunker.format.encoding import decode_chunk
from chunker.format.prepared import PreparedChunk
from chunker.format.read import ChunkReader, NotPublished
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
        manifest = await source.day_at("XTST", 1773417600000 + 60_000)
        reader.day_indexes["XTST"].fetched_at -= read_module.DAYS_TTL_S + 1  # now stale
        started = time.monotonic()
        answers = await asyncio.gather(
            *(source.day_at("XTST", manifest.start + i * 1000) for i in range(200))
        )
        # Served from the stale list while the (blocked) refresh runs: nobody waited.
        assert time.monotonic() - started < 1.0
        assert all(answer.version == manifest.version for answer in answers)
        deadline = time.monotonic() + 5
        while reader.listings < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # the background refresh reaches the slow listing
        assert reader.listings == 2 and reader.refreshes == 2  # one refresh for 200 callers
        reader.release.set()
        refreshing = source.loads.get("the published days of XTST")
        assert refreshing is not None
        await refreshing
        assert reader.day_indexes["XTST"].manifests  # manifests kept across the refresh

    asyncio.run(scenario())


def test_ticks_across_chunks_and_days_are_the_same_for_history_and_stream(s3: S3Client) -> None:
    """The one walk, driven blocking (history) and async (stream), against the chunks'
    own ticks read one by one."""
    publish_tiny_day(s3)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    start = manifest.chunks[1].start - 1_500  # from inside one chunk to inside another
    end = manifest.chunks[3].start + 2_500
    expected = [
        tick.t
        for entry in manifest.chunks[1:4]
        for tick in PreparedChunk.from_document(
            entry.key, decode_chunk(reader._get(entry.key))
        ).ticks
        if start <= tick.t < end
    ]
    assert expected and [tick.t for tick in reader.iter_ticks("XTST", start, end)] == expected
    source = ChunkSource(ChunkReader(s3, BUCKET))
    ticks, last = asyncio.run(source.ticks("XTST", start, end))
    assert [tick.t for tick in ticks] == expected and last.version == manifest.version
    assert source.loads_started == 4 and not source.loads  # one load per chunk, all done
    with pytest.raises(NotPublished):
        list(reader.iter_ticks("XTST", manifest.end, manifest.end + 1_000))


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
