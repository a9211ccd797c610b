"""The one read API over published chunks: which day holds ``t``, which ticks lie in
``[start, end)`` across chunks and service days, and the state at ``t``.

Everything in the process that reads chunks (history queries, streams, control) goes
through one ``ChunkReader``, so the cache policy is decided here, once:

- prepared chunks (``chunker.format.prepared``) live in one LRU bounded by bytes, counted
  object by object (``PreparedChunk.size``), never by encoded size;
- an airport's published days, its time zone and the manifest of each day are kept in a
  day index, re-read at most every ``DAYS_TTL_S`` (a republished day is seen within that)
  and at once when asked for an instant the index does not cover — unless it was re-read
  less than ``MISS_REFRESH_S`` ago, so asking for unpublished times cannot make every
  call list the bucket;
- ``published(airport, date)`` re-reads the day's pointer every time (manifests are
  cached by key: a pointer names an immutable version).

A reader reads one *variant* of every day (``chunker.format.keys``; the default one unless
made by ``of_variant``). ``of_variant(name)`` is the reader of another variant: it shares
this reader's chunk and manifest caches (their keys name the variant already) and keeps
its own day index, so nothing about one variant's days is ever served for another's.

Like foxglove/mcap's ``iter_messages(topics, start_time, end_time)``, the lookup (day ->
manifest -> chunk) and the time filtering are written once. They are written as *steps*
(``tick_walk``, ``day_walk``): a generator yields a ``Load`` when it needs something that
is not in memory, and whoever drives it performs the load and sends the result back. The
blocking methods here (``day_at``, ``iter_ticks``) perform
loads inline — for history queries, which run in a worker thread. The stream's async
adapter (``functions/app/stream/chunk_source.py``) drives the same steps, performing
loads in worker threads with single flight and a wait bound, so no boto3 call ever runs
on its event loop and a frame whose chunks are cached costs no thread hop at all.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from botocore.exceptions import ClientError

from chunker.format.day import ServiceDay
from chunker.format.encoding import CorruptChunk, Manifest, Pointer, decode_chunk
from chunker.format.keys import (
    DEFAULT_VARIANT,
    PUBLISHED_PREFIX,
    DayKeys,
    check_variant,
    date_of_pointer_key,
    published_prefix,
)
from chunker.format.prepared import PreparedChunk, PreparedTick
from chunker.format.s3 import object_exists
from chunker.format.state import ReplayState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

V = TypeVar("V")
DAYS_TTL_S = 30.0  # how long a day index serves before it is re-read
MISS_REFRESH_S = 1.0  # a miss re-reads the day index only if it is older than this
MAX_VARIANT_READERS = 32  # variant readers kept (each holds only its small day index)


class NotPublished(LookupError):
    """No published version for the requested (airport, service day)."""


class OutsideDay(LookupError):
    """The requested time is outside the published day."""


class ByteBoundedCache(Generic[V]):
    """Thread-safe LRU holding at most ``max_bytes`` of values (sizes given by the caller)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: str, value: V, size: int) -> None:
        if size > self.max_bytes:
            return  # larger than the whole cache: serve it uncached
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted


@dataclass(frozen=True, slots=True)
class PublishedDay:
    """A published version of a day: its pointer and manifest."""

    pointer: Pointer
    manifest: Manifest


@dataclass(slots=True)
class DayIndex:
    """An airport's published days as last read: dates, time zone, manifests read so far."""

    days: list[str]
    fetched_at: float
    manifests: dict[str, Manifest] = field(default_factory=dict)
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Load(Generic[V]):
    """A step of a walk: something that is not in memory. ``read()`` blocks on S3; its
    result is sent back into the walk. ``background``: the walk goes on without waiting
    (it sends nothing back; a stale value serves meanwhile)."""

    key: str  # names the object; loads of one key can share one flight
    kind: Literal["days", "manifest", "chunk"]
    read: Callable[[], V]
    background: bool = False


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """A step of a walk: the ticks of ``chunk`` with ``start <= t < end``."""

    manifest: Manifest
    chunk: PreparedChunk
    start: int
    end: int

    def ticks(self) -> Sequence[PreparedTick]:
        return self.chunk.ticks_between(self.start - 1, self.end - 1)


Steps = Generator["Load[Any] | ChunkSpan", Any, V]


def run_blocking(steps: Steps[V]) -> Generator[ChunkSpan, None, V]:
    """Drive a walk, performing every load inline (background ones too): its spans, then
    its return value."""
    value: Any = None
    while True:
        try:
            step = steps.send(value)
        except StopIteration as stop:
            return stop.value
        value = None
        if isinstance(step, Load):
            value = step.read()
        else:
            yield step


class ChunkReader:
    """Reads published days from S3, with the process's one cache policy (module doc)."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        cache_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
        *,
        variant: str = DEFAULT_VARIANT,
        shares: ChunkReader | None = None,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.clock = clock
        self.variant = check_variant(variant)
        self.chunks: ByteBoundedCache[PreparedChunk]
        self._manifests: ByteBoundedCache[Manifest]
        if shares is None:
            self.chunks = ByteBoundedCache(cache_bytes)
            self._manifests = ByteBoundedCache(64 * 1024 * 1024)
        else:
            self.chunks, self._manifests = shares.chunks, shares._manifests
        self._root = self if shares is None else shares
        self._variant_readers: OrderedDict[str, ChunkReader] = OrderedDict()
        self._variant_lock = threading.Lock()
        self.day_indexes: dict[str, DayIndex] = {}
        self.refreshes = 0  # day index reads (for operations and tests)

    def of_variant(self, variant: str) -> ChunkReader:
        """The reader of the days' ``variant`` (``InvalidVariant`` for a bad name): the
        same caches, its own day index (module doc)."""
        if variant == self.variant:
            return self
        root = self._root
        if check_variant(variant) == root.variant:
            return root
        with root._variant_lock:
            reader = root._variant_readers.get(variant)
            if reader is None:
                reader = ChunkReader(
                    root.s3, root.bucket, clock=root.clock, variant=variant, shares=root
                )
                root._variant_readers[variant] = reader
                while len(root._variant_readers) > MAX_VARIANT_READERS:
                    root._variant_readers.popitem(last=False)
            else:
                root._variant_readers.move_to_end(variant)
            return reader

    def variants(self, airport: str, service_date: str) -> list[str]:
        """The published variants of a day (one listing), the default first if published."""
        keys = DayKeys(airport, service_date)
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=keys.day_pointers_prefix):
            for obj in page.get("Contents", []):
                variant = keys.variant_of_pointer(obj["Key"])
                if variant is not None:
                    found.append(variant)
        return sorted(found, key=lambda v: (v != DEFAULT_VARIANT, v))

    def _named(self, airport: str) -> str:
        """``airport``, and the variant when it is not the default (messages, load keys)."""
        return airport if self.variant == DEFAULT_VARIANT else f"{airport} ({self.variant})"

    # --- S3 ----------------------------------------------------------------------------

    def _get(self, key: str) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            # A role without an unconditional s3:ListBucket gets 403 for a missing key, not
            # 404 (chunker.format.s3.object_exists): only a listing tells the two apart.
            if code in ("NoSuchKey", "404") or (
                code == "AccessDenied" and not object_exists(self.s3, self.bucket, key)
            ):
                raise NotPublished(f"s3://{self.bucket}/{key} does not exist") from exc
            raise
        return body

    def published(self, airport: str, service_date: str) -> PublishedDay:
        """The currently published version of a day (the pointer is always re-read)."""
        keys = DayKeys(airport, service_date, self.variant)
        try:
            pointer = Pointer.model_validate_json(self._get(keys.pointer))
        except NotPublished as exc:
            raise NotPublished(
                f"{self._named(airport)} {service_date} has no published chunks"
            ) from exc
        manifest = self._manifests.get(pointer.manifest_key)
        if manifest is None:
            data = self._get(pointer.manifest_key)
            manifest = Manifest.model_validate_json(data)
            self._manifests.put(pointer.manifest_key, manifest, len(data) * 4)
        return PublishedDay(pointer, manifest)

    def airports(self) -> list[str]:
        """Airports with at least one published day."""
        found = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=PUBLISHED_PREFIX, Delimiter="/"):
            for prefix in page.get("CommonPrefixes", []):
                found.append(prefix["Prefix"][len(PUBLISHED_PREFIX) : -1])
        return sorted(found)

    def published_days(self, airport: str) -> list[str]:
        """Service dates of an airport that have a published version, oldest first."""
        days = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=published_prefix(airport)):
            for obj in page.get("Contents", []):
                date = date_of_pointer_key(airport, obj["Key"], self.variant)
                if date is not None:
                    days.append(date)
        return sorted(days)

    def refresh_days(self, airport: str) -> DayIndex:
        """Re-read an airport's day index (blocking): its published days, and the manifest
        of every day read before, through its pointer (a republished day moves to its new
        version)."""
        self.refreshes += 1
        old = self.day_indexes.get(airport)
        days = self.published_days(airport)
        index = DayIndex(days, self.clock(), timezone=None if old is None else old.timezone)
        for date in [] if old is None else [d for d in old.manifests if d in days]:
            index.manifests[date] = self.published(airport, date).manifest
        index.fetched_at = self.clock()
        self.day_indexes[airport] = index  # one assignment: readers see the old or the new
        return index

    def _load_chunk(self, key: str) -> PreparedChunk:
        try:
            data = self._get(key)
        except NotPublished as exc:
            # Published chunks are never deleted: a manifest naming a missing one means
            # the published data is damaged, not that it is not published yet.
            raise CorruptChunk(f"{key} is in the published manifest but missing") from exc
        try:
            prepared = PreparedChunk.from_document(key, decode_chunk(data))
        except CorruptChunk as exc:
            raise CorruptChunk(f"{key}: {exc}") from exc
        self.chunks.put(key, prepared, prepared.size)
        return prepared

    def chunk(self, key: str) -> PreparedChunk:
        """A prepared chunk (cached; blocking on a miss: call from a thread in async code)."""
        prepared = self.chunks.get(key)
        return self._load_chunk(key) if prepared is None else prepared

    # --- the walks (written once; driven blocking here, async by the stream) --------------

    def _days_load(self, airport: str, background: bool = False) -> Load[DayIndex]:
        return Load(
            f"the published days of {self._named(airport)}",
            "days",
            partial(self.refresh_days, airport),
            background,
        )

    def _read_manifest(self, airport: str, date: str) -> Manifest:
        return self.published(airport, date).manifest

    def _manifest_walk(self, airport: str, index: DayIndex, date: str) -> Steps[Manifest]:
        manifest = index.manifests.get(date)
        if manifest is None:
            read = partial(self._read_manifest, airport, date)
            manifest = yield Load(
                f"the manifest of {self._named(airport)} {date}", "manifest", read
            )
            index.manifests[date] = manifest
        return manifest

    def day_walk(self, airport: str, t: int, listing: Sequence[str] = ()) -> Steps[Manifest]:
        """Steps to the published manifest whose day contains ``t`` (``NotPublished`` if
        none). ``listing``: published dates the caller has just listed; one the index does
        not know yet re-reads the index first."""
        index = self.day_indexes.get(airport)
        if index is None or any(date not in index.days for date in listing):
            yield self._days_load(airport)
        elif self.clock() - index.fetched_at > DAYS_TTL_S:
            yield self._days_load(airport, background=True)  # stale serves meanwhile
        for attempt in range(2):
            index = self.day_indexes[airport]
            if attempt:
                if self.clock() - index.fetched_at < MISS_REFRESH_S:
                    break  # just re-read: it is genuinely not published
                yield self._days_load(airport)
                index = self.day_indexes[airport]
            if not index.days:
                raise NotPublished(f"{self._named(airport)} has no published days")
            if index.timezone is None:
                newest = yield from self._manifest_walk(airport, index, index.days[-1])
                index.timezone = newest.airport.timezone
            date = ServiceDay.local_date_of(t, index.timezone)
            if date in index.days:
                manifest = yield from self._manifest_walk(airport, index, date)
                if manifest.start <= t < manifest.end:
                    return manifest
        raise NotPublished(f"{self._named(airport)}: nothing published at t={t}")

    def tick_walk(self, airport: str, start: int, end: int) -> Steps[None]:
        """Steps to every chunk span covering ``[start, end)``, in order, across chunks and
        service days (a ``ChunkSpan`` per chunk touched; ``start < end``)."""
        t = start
        while t < end:
            manifest = yield from self.day_walk(airport, t)
            entry = manifest.chunk_at(t)  # t is inside the manifest: day_walk checked
            chunk = self.chunks.get(entry.key)
            if chunk is None:
                chunk = yield Load(
                    f"chunk {entry.key}", "chunk", partial(self._load_chunk, entry.key)
                )
            yield ChunkSpan(manifest, chunk, t, min(end, chunk.end))
            t = chunk.end

    # --- blocking API (history, control, tests; from a worker thread in async code) --------

    def day_at(self, airport: str, t: int, listing: Sequence[str] = ()) -> Manifest:
        """The published manifest whose day contains ``t`` (``NotPublished`` if none)."""
        driver = run_blocking(self.day_walk(airport, t, listing))
        while True:
            try:
                next(driver)  # pragma: no cover - a day walk yields no spans
            except StopIteration as stop:
                return stop.value

    def iter_ticks(self, airport: str, start: int, end: int) -> Iterator[PreparedTick]:
        """Every delta tick with ``start <= t < end``, across chunks and service days,
        oldest first; chunks are read as the iteration reaches them."""
        if start < end:
            for span in run_blocking(self.tick_walk(airport, start, end)):
                yield from span.ticks()

    def state_at(self, manifest: Manifest, t: int) -> ReplayState:
        """State at ``t`` in a given published version (``day_at`` finds the current one):
        one chunk + its deltas up to ``t``."""
        try:
            entry = manifest.chunk_at(t)
        except KeyError as exc:
            raise OutsideDay(str(exc)) from exc
        return self.chunk(entry.key).state_at(t).rows()
