"""Reading published chunks: pointer -> manifest -> chunk -> state at time ``t``.

Seeking costs one GET (the chunk containing ``t``) plus applying that chunk's deltas up to
``t``. ``ChunkReader`` keeps prepared chunks (``chunker.format.prepared``) in one cache bounded by
bytes, shared by everything in the process that reads chunks (history queries, streams).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from botocore.exceptions import ClientError

from chunker.format.day import ServiceDay
from chunker.format.encoding import CorruptChunk, Manifest, Pointer, decode_chunk
from chunker.format.keys import PUBLISHED_PREFIX, DayKeys, date_of_pointer_key, published_prefix
from chunker.format.prepared import PreparedChunk
from chunker.format.s3 import object_exists
from chunker.format.state import ReplayState

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

V = TypeVar("V")


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


class ChunkReader:
    """Reads published days from S3 with one byte-bounded cache of prepared chunks."""

    def __init__(self, s3: S3Client, bucket: str, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.chunks: ByteBoundedCache[PreparedChunk] = ByteBoundedCache(cache_bytes)
        self._manifests: ByteBoundedCache[Manifest] = ByteBoundedCache(64 * 1024 * 1024)

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
        keys = DayKeys(airport, service_date)
        try:
            pointer = Pointer.model_validate_json(self._get(keys.pointer))
        except NotPublished as exc:
            raise NotPublished(f"{airport} {service_date} has no published chunks") from exc
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
                date = date_of_pointer_key(airport, obj["Key"])
                if date is not None:
                    days.append(date)
        return sorted(days)

    def day_covering(self, airport: str, t: int, days: list[str] | None = None) -> PublishedDay:
        """The published day whose window contains ``t`` (service days are local days)."""
        candidates = self.published_days(airport) if days is None else days
        if not candidates:
            raise NotPublished(f"{airport} has no published days")
        timezone = self.published(airport, candidates[-1]).manifest.airport.timezone
        local_date = ServiceDay.local_date_of(t, timezone)
        if local_date not in candidates:
            raise NotPublished(f"{airport} {local_date} has no published chunks")
        return self.published(airport, local_date)

    def chunk(self, key: str) -> PreparedChunk:
        """A prepared chunk (cached; blocking on a miss: call from a thread in async code)."""
        prepared = self.chunks.get(key)
        if prepared is None:
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

    def state_at(self, manifest: Manifest, t: int) -> ReplayState:
        """State at ``t`` in a published day: one chunk + its deltas up to ``t``."""
        try:
            entry = manifest.chunk_at(t)
        except KeyError as exc:
            raise OutsideDay(str(exc)) from exc
        return self.chunk(entry.key).state_at(t).rows()
