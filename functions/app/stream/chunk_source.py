"""Prepared chunks for streams: resolved across service days, loaded off the event loop.

One ``ChunkSource`` per process. Loads are single-flight (many streams asking for the same
chunk cause one GET), run in a worker thread, and land in the reader's byte-bounded cache.
No stream waits longer than ``wait_s`` for S3: past that it gets ``ChunkTimeout`` while the
load goes on, so whoever asks next (often the same client, reconnecting) finds it loaded.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import dataclass, field
from typing import Any, TypeVar

from chunker.format.day import ServiceDay
from chunker.format.encoding import Manifest
from chunker.format.prepared import PreparedChunk
from chunker.format.read import ChunkReader, NotPublished
from functions.app.threads import CHUNK_STORE, run_in

DAYS_TTL_S = 30.0
MAX_PREFETCHES = 32
T = TypeVar("T")


@dataclass
class _AirportDays:
    """An airport's published days and their manifests, refreshed at most every DAYS_TTL_S."""

    days: list[str] = field(default_factory=list)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    timezone: str | None = None
    fetched_at: float = -1e9
    refreshing: asyncio.Task[None] | None = None


class ChunkTimeout(Exception):
    """S3 did not deliver a chunk or manifest within the wait bound (it may still)."""


class ChunkSource:
    """Chunks and manifests of any airport for any instant, shared by all streams."""

    def __init__(self, reader: ChunkReader, wait_s: float = 10.0) -> None:
        self.reader = reader
        self.wait_s = wait_s
        self._airports: dict[str, _AirportDays] = {}
        self._loads: dict[str, asyncio.Task[PreparedChunk]] = {}
        self._prefetches: set[asyncio.Task[object]] = set()
        self.loads_started = 0
        self.waits = 0  # times a stream had to wait for a chunk that was not loaded yet
        self.refreshes = 0

    # --- days --------------------------------------------------------------------------
    #
    # Every frame of every stream asks for its day's manifest, so this must never make
    # streams queue on S3: one refresh per airport at a time (single flight), and a stale
    # list keeps serving while it is refreshed in the background (stale-while-revalidate).
    # Streams wait only when there is nothing to serve yet, or for an instant the known
    # days do not cover.

    async def _refresh(self, airport: str, days: _AirportDays) -> None:
        self.refreshes += 1
        published = await run_in(CHUNK_STORE, self.reader.published_days, airport)
        manifests: dict[str, Manifest] = {}
        for date in [d for d in days.manifests if d in published]:
            # Re-read the pointer: a republished day moves to its new version.
            manifests[date] = await run_in(CHUNK_STORE, self._manifest_now, airport, date)
        days.days, days.manifests = published, manifests
        days.fetched_at = time.monotonic()

    def _manifest_now(self, airport: str, date: str) -> Manifest:
        return self.reader.published(airport, date).manifest

    async def _refreshed(self, airport: str, days: _AirportDays, wait: bool) -> None:
        if days.refreshing is None:
            task = asyncio.create_task(self._refresh(airport, days))
            days.refreshing = task

            def done(_: object) -> None:
                days.refreshing = None
                _retrieve(task)  # a background failure shows up at the next wait

            task.add_done_callback(done)
        if wait:
            await self._bounded(days.refreshing, f"the published days of {airport}")

    async def manifest_for(self, airport: str, t: int) -> Manifest:
        """The published manifest whose day contains ``t``."""
        days = self._airports.setdefault(airport, _AirportDays())
        if not days.days:
            await self._refreshed(airport, days, wait=True)
        elif time.monotonic() - days.fetched_at > DAYS_TTL_S:
            await self._refreshed(airport, days, wait=False)
        for attempt in range(2):
            if attempt:
                if time.monotonic() - days.fetched_at < 1:
                    break  # just refreshed: it is genuinely not published
                await self._refreshed(airport, days, wait=True)
            if not days.days:
                raise NotPublished(f"{airport} has no published days")
            if days.timezone is None:
                newest = await self._manifest(airport, days, days.days[-1])
                days.timezone = newest.airport.timezone
            date = ServiceDay.local_date_of(t, days.timezone)
            if date in days.days:
                manifest = await self._manifest(airport, days, date)
                if manifest.start <= t < manifest.end:
                    return manifest
        raise NotPublished(f"{airport}: nothing published at t={t}")

    async def _manifest(self, airport: str, days: _AirportDays, date: str) -> Manifest:
        manifest = days.manifests.get(date)
        if manifest is None:
            load = asyncio.ensure_future(run_in(CHUNK_STORE, self._manifest_now, airport, date))
            load.add_done_callback(_retrieve)
            manifest = await self._bounded(load, f"the manifest of {airport} {date}")
            days.manifests[date] = manifest
        return manifest

    async def _bounded(self, task: asyncio.Future[T], what: str) -> T:
        """``task``'s result, or ``ChunkTimeout`` after ``wait_s`` (the task goes on:
        shielded, so neither this waiter's timeout nor its cancellation stops it)."""
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait_s)
        except TimeoutError:
            raise ChunkTimeout(f"{what} not read from S3 within {self.wait_s:g} s") from None

    # --- chunks ------------------------------------------------------------------------

    async def chunk(self, key: str, prefetch: bool = False) -> PreparedChunk:
        """The prepared chunk ``key`` (one load however many streams ask at once)."""
        cached = self.reader.chunks.get(key)
        if cached is not None:
            return cached
        if not prefetch:
            self.waits += 1
        task = self._loads.get(key)
        if task is None:
            self.loads_started += 1
            task = asyncio.create_task(run_in(CHUNK_STORE, self.reader.chunk, key))
            self._loads[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: a viewer that leaves mid-load must not cancel the others' load.
        return await self._bounded(task, f"chunk {key}")

    def _finished(self, key: str, task: asyncio.Task[PreparedChunk]) -> None:
        self._loads.pop(key, None)
        _retrieve(task)
        # A prepared chunk is ~3,000 long-lived, acyclic objects. Left to the cyclic GC, a
        # growing cache makes full collections scan all of them: 40-70 ms pauses that
        # stall every stream of the process (seen in bench/bench_stream.py). Freezing
        # moves them out of the collector's scans; refcounting still frees them on
        # eviction. Young garbage is collected first so no fresh cycle is frozen.
        gc.collect(1)
        gc.freeze()

    async def chunk_at(
        self, airport: str, t: int, prefetch: bool = False
    ) -> tuple[Manifest, PreparedChunk]:
        """The manifest and prepared chunk containing ``t``."""
        manifest = await self.manifest_for(airport, t)
        return manifest, await self.chunk(manifest.chunk_at(t).key, prefetch)

    def prefetch(self, airport: str, t: int) -> None:
        """Load the chunk containing ``t`` in the background (bounded; errors ignored)."""
        if len(self._prefetches) >= MAX_PREFETCHES:
            return

        async def load() -> object:
            try:
                return await self.chunk_at(airport, t, prefetch=True)
            except Exception:  # noqa: BLE001 - a prefetch failure shows up when it is needed
                return None

        task = asyncio.create_task(load())
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a possibly abandoned task's failure as seen (it is reported to its waiters)."""
    if not task.cancelled():
        task.exception()
