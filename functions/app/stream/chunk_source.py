"""The stream's async adapter over the one read API (``chunker.format.read``).

The reader decides what is read and cached (days, manifests, chunks) and walks chunks and
days (``ChunkReader.day_walk`` / ``tick_walk``); this module only drives those walks on
the event loop. Whatever a walk finds in memory costs no thread hop. What it must load
runs in a worker thread (``functions.app.threads.CHUNK_STORE``: boto3 blocks) and is
single-flight: many streams asking for the same chunk, manifest or day list cause one
read. No stream waits longer than ``wait_s`` for S3: past that it gets ``ChunkTimeout``
while the load goes on, so whoever asks next (often the same client, reconnecting) finds
it loaded. A stale day list keeps serving while one background re-read runs.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any, TypeVar

from chunker.format.encoding import Manifest
from chunker.format.keys import DEFAULT_VARIANT
from chunker.format.prepared import PreparedChunk, PreparedTick
from chunker.format.read import ChunkReader, ChunkSpan, Load, Steps
from functions.app.threads import CHUNK_STORE, run_in

MAX_PREFETCHES = 32
T = TypeVar("T")


class ChunkTimeout(Exception):
    """S3 did not deliver a chunk or manifest within the wait bound (it may still)."""


class ChunkSource:
    """Chunks and manifests of any airport for any instant, shared by all streams."""

    def __init__(self, reader: ChunkReader, wait_s: float = 10.0) -> None:
        self.reader = reader
        self.wait_s = wait_s
        self.loads: dict[str, asyncio.Task[Any]] = {}  # in flight, by Load.key
        self._prefetches: set[asyncio.Task[object]] = set()
        self.loads_started = 0  # chunk loads
        self.waits = 0  # times a stream had to wait for a chunk that was not loaded yet

    async def _drive(self, steps: Steps[T], prefetch: bool = False) -> tuple[list[ChunkSpan], T]:
        """Run a walk of the reader: its spans and its return value."""
        spans: list[ChunkSpan] = []
        value: Any = None
        while True:
            try:
                step = steps.send(value)
            except StopIteration as stop:
                return spans, stop.value
            value = None
            if isinstance(step, ChunkSpan):
                spans.append(step)
            elif step.background:
                self._start(step)
            else:
                if step.kind == "chunk" and not prefetch:
                    self.waits += 1
                value = await self._bounded(self._start(step), step.key)

    def _start(self, load: Load[Any]) -> asyncio.Task[Any]:
        """The load of ``load.key`` in flight, started now if none is."""
        task = self.loads.get(load.key)
        if task is None:
            if load.kind == "chunk":
                self.loads_started += 1
            task = asyncio.create_task(run_in(CHUNK_STORE, load.read))
            self.loads[load.key] = task
            task.add_done_callback(lambda done: self._finished(load, done))
        return task

    def _finished(self, load: Load[Any], task: asyncio.Task[Any]) -> None:
        self.loads.pop(load.key, None)
        _retrieve(task)  # a failure is reported to its waiters (or at the next wait)
        if load.kind == "chunk":
            # A prepared chunk is ~3,000 long-lived, acyclic objects. Left to the cyclic
            # GC, a growing cache makes full collections scan all of them: 40-70 ms pauses
            # that stall every stream of the process (seen in bench/bench_stream.py).
            # Freezing moves them out of the collector's scans; refcounting still frees
            # them on eviction. Young garbage is collected first so no fresh cycle is frozen.
            gc.collect(1)
            gc.freeze()

    async def _bounded(self, task: asyncio.Future[T], what: str) -> T:
        """``task``'s result, or ``ChunkTimeout`` after ``wait_s`` (the task goes on:
        shielded, so neither this waiter's timeout nor its cancellation stops it)."""
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.wait_s)
        except TimeoutError:
            raise ChunkTimeout(f"{what} not read from S3 within {self.wait_s:g} s") from None

    # --- the read API, awaitable -------------------------------------------------------

    # ``variant``: which dispatch run of the days (``ChunkReader.of_variant``).

    async def day_at(self, airport: str, t: int, variant: str = DEFAULT_VARIANT) -> Manifest:
        """The published manifest whose day contains ``t``."""
        _, manifest = await self._drive(self.reader.of_variant(variant).day_walk(airport, t))
        return manifest

    async def chunk_at(
        self, airport: str, t: int, prefetch: bool = False, variant: str = DEFAULT_VARIANT
    ) -> tuple[Manifest, PreparedChunk]:
        """The manifest and prepared chunk containing ``t``."""
        walk = self.reader.of_variant(variant).tick_walk(airport, t, t + 1)
        spans, _ = await self._drive(walk, prefetch)
        return spans[0].manifest, spans[0].chunk

    async def ticks(
        self, airport: str, start: int, end: int, variant: str = DEFAULT_VARIANT
    ) -> tuple[list[PreparedTick], Manifest]:
        """Every delta tick with ``start <= t < end`` (``start < end``), across chunks and
        days; and the manifest of the last day touched."""
        spans, _ = await self._drive(self.reader.of_variant(variant).tick_walk(airport, start, end))
        return [tick for span in spans for tick in span.ticks()], spans[-1].manifest

    def prefetch(self, airport: str, t: int, variant: str = DEFAULT_VARIANT) -> None:
        """Load the chunk containing ``t`` in the background (bounded; errors ignored)."""
        if len(self._prefetches) >= MAX_PREFETCHES:
            return

        async def load() -> object:
            try:
                return await self.chunk_at(airport, t, prefetch=True, variant=variant)
            except Exception:  # noqa: BLE001 - a prefetch failure shows up when it is needed
                return None

        task = asyncio.create_task(load())
        self._prefetches.add(task)
        task.add_done_callback(self._prefetches.discard)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a possibly abandoned task's failure as seen (it is reported to its waiters)."""
    if not task.cancelled():
        task.exception()
