"""The chunk format: one object per time bucket, plus hour parts, a manifest and a pointer.

A chunk covers ``[start, end)`` of replay time and is self-sufficient for seeking::

    {"format": "dispatch-replay.chunk", "format_version": 3,
     "airport": "XLHI", "service_date": "2026-03-14", "start": ..., "end": ..., "tick_ms": 1000,
     "keyframe": {"vehicles": [...], "tasks": [...], "flights": [...], "notifications": [...],
                  "stands": [...], "vehicle_tasks": [...], "decisions": [...],
                  "aircraft": [...]},
     "ticks": [{"t": ..., "vehicles": [...], "tasks": [...], ...}, ...]}

``keyframe`` is the full state just before ``start`` (every record with ``t < start``);
``ticks`` lists, in time order, only the ticks where something happened, each with only
the kinds that changed: vehicles and aircraft as the last fix per mover in the tick,
tasks / flights / notifications / decisions as every row in order (they are discrete
events the stream delivers one by one; a keyframe holds only the decision behind each
active task); stands / vehicle_tasks (derived: ``chunker.format.derived``) as the rows
that changed. Encoding: JSON (orjson) compressed with zstd — chosen by
``bench/bench_encoding.py``, see docs/performance.md.
"""

import datetime as dt
from typing import Any, Literal

import orjson
import zstandard
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chunker.format.day import HOUR_MS
from chunker.format.keys import DEFAULT_VARIANT
from chunker.format.records import (
    Airport,
    Attribution,
    Depot,
    RoadEdge,
    RoadNode,
    Runway,
    Stand,
    Terminal,
    Vehicle,
)

CHUNK_FORMAT = "dispatch-replay.chunk"
# 2: keyframes and ticks carry the derived kinds (stands, vehicle_tasks); 3: and decisions
# and aircraft
FORMAT_VERSION = 3
# 1: read with no derived rows; 1 and 2: with no decisions and no aircraft (a reader finds
# none)
READABLE_FORMAT_VERSIONS = frozenset({1, 2, FORMAT_VERSION})
ZSTD_LEVEL = 3
MAX_CHUNK_BYTES = 256 * 1024 * 1024  # decompressed; a chunk beyond this is corrupt or hostile

# A chunker.format.rows.FlightRow as stored in parts and manifests (kept as given: the
# catalogue is read by key, and the manifest must stay readable if rows gain fields).
StoredFlightRow = dict[str, Any]


class CorruptChunk(ValueError):
    """A chunk object that cannot be decoded or is not a chunk."""


def encode_chunk(document: dict[str, Any]) -> bytes:
    """Chunk document -> stored bytes (deterministic for equal documents)."""
    raw = orjson.dumps(document)
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True).compress(raw)


def decode_chunk_json(data: bytes) -> bytes:
    """Stored bytes -> the chunk's JSON text, refusing anything that would inflate too far."""
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise CorruptChunk(f"not a zstd frame: {exc}") from exc
    if size < 0 or size > MAX_CHUNK_BYTES:
        raise CorruptChunk(f"declared size {size} is missing or over {MAX_CHUNK_BYTES}")
    try:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise CorruptChunk(f"zstd: {exc}") from exc


def decode_chunk(data: bytes) -> dict[str, Any]:
    """Stored bytes -> chunk document, checked to be a chunk of this format version."""
    try:
        document = orjson.loads(decode_chunk_json(data))
    except orjson.JSONDecodeError as exc:
        raise CorruptChunk(f"json: {exc}") from exc
    if (
        not isinstance(document, dict)
        or document.get("format") != CHUNK_FORMAT
        or document.get("format_version") not in READABLE_FORMAT_VERSIONS
        or not isinstance(document.get("keyframe"), dict)
        or not isinstance(document.get("ticks"), list)
    ):
        raise CorruptChunk("not a dispatch-replay chunk of a readable format version")
    return document


# --- configuration --------------------------------------------------------------------


class ChunkerConfig(BaseModel):
    """Time resolution of the output; part of the version hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket_ms: int = Field(default=60_000, description="Replay time per chunk object.")
    tick_ms: int = Field(default=1_000, ge=100, description="Base tick (delta resolution).")
    histogram_bin_ms: int = Field(default=300_000, description="Timeline histogram bin.")
    task_retention_ms: int = Field(
        default=3_600_000,
        ge=0,
        description="A finished task (completed or cancelled) leaves the replay state this "
        "long after its last event; 0 keeps finished tasks for the rest of the day.",
    )
    aircraft_expiry_ms: int = Field(
        default=300_000,
        ge=0,
        description="An aircraft leaves the replay state when it has had no surface fix "
        "for this long, or as soon as its departure leg says departed "
        "(chunker.batch.aircraft); 0 keeps every aircraft for the rest of the day.",
    )

    @model_validator(mode="after")
    def _aligned(self) -> "ChunkerConfig":
        if self.bucket_ms % self.tick_ms:
            raise ValueError("bucket_ms must be a multiple of tick_ms")
        if HOUR_MS % self.bucket_ms:
            raise ValueError("bucket_ms must divide one hour (hour jobs are independent)")
        if self.histogram_bin_ms % self.bucket_ms or HOUR_MS % self.histogram_bin_ms:
            raise ValueError("histogram_bin_ms must be a multiple of bucket_ms dividing one hour")
        return self


# --- hour parts and the manifest -------------------------------------------------------


class ChunkEntry(BaseModel):
    """One chunk object and what it holds (counts are of delta rows by kind)."""

    model_config = ConfigDict(extra="forbid")
    start: int
    end: int
    key: str
    bytes: int
    vehicles: int
    tasks: int
    flights: int
    notifications: int
    decisions: int = 0  # 0 in manifests written before chunks carried decisions
    aircraft: int = 0  # format 3 on; manifests of older versions have none


def _summed(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    total = dict(a)
    for reason, n in b.items():
        total[reason] = total.get(reason, 0) + n
    return dict(sorted(total.items()))


class KindCounts(BaseModel):
    """Records of one kind: accepted, duplicates removed, rejected by reason, and accepted
    records a value was dropped from (``amended``, by reason; e.g. a missing heading)."""

    model_config = ConfigDict(extra="forbid")
    accepted: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = Field(default_factory=dict)
    amended: dict[str, int] = Field(default_factory=dict)

    def add(self, other: "KindCounts") -> "KindCounts":
        """Sum of two counts."""
        return KindCounts(
            accepted=self.accepted + other.accepted,
            duplicates=self.duplicates + other.duplicates,
            rejected=_summed(self.rejected, other.rejected),
            amended=_summed(self.amended, other.amended),
        )


MAX_LISTED_REFERENCE_ISSUES = 200  # listed one by one in the manifest; all are counted


class ReferenceIssue(BaseModel):
    """One skipped entry (or section) of reference.json, and why."""

    model_config = ConfigDict(extra="forbid")
    section: str
    index: int | None = None
    entry_id: str | None = None
    reason: str
    detail: str


class ReferenceReport(BaseModel):
    """What reading reference.json skipped (``chunker.batch.reference``): counts by
    ``section:reason``, and the first ``MAX_LISTED_REFERENCE_ISSUES`` issues."""

    model_config = ConfigDict(extra="forbid")
    skipped: dict[str, int] = Field(default_factory=dict)
    issues: list[ReferenceIssue] = Field(default_factory=list)


class Histogram(BaseModel):
    """Activity per bin, for the dashboard's timeline."""

    model_config = ConfigDict(extra="forbid")
    start: int
    bin_ms: int
    task_events: list[int]
    flight_events: list[int]
    notifications: list[int]
    moving_vehicles: list[int] = Field(description="Vehicles seen moving (> 3 km/h) in the bin.")


class HourPart(BaseModel):
    """What one hour job produced; the manifest is assembled from all of a day's parts."""

    model_config = ConfigDict(extra="forbid")
    hour: int
    start: int
    end: int
    chunks: list[ChunkEntry]
    counts: dict[str, KindCounts]
    histogram: Histogram
    flights: list[StoredFlightRow] = Field(
        description="Latest row of each flight seen in the hour."
    )
    quarantine_key: str | None
    quarantined: int


class InputObject(BaseModel):
    """A raw object the version was computed from."""

    model_config = ConfigDict(extra="forbid")
    key: str
    etag: str
    size: int


class Quarantine(BaseModel):
    """Rejected records of the day: total, by reason, and where they are."""

    model_config = ConfigDict(extra="forbid")
    total: int
    by_reason: dict[str, int]
    objects: list[str]


class Catalogue(BaseModel):
    """What can be replayed: the fleet and every flight leg of the day."""

    model_config = ConfigDict(extra="forbid")
    vehicles: list[Vehicle]
    flights: list[StoredFlightRow]


class Layout(BaseModel):
    """The apron map."""

    model_config = ConfigDict(extra="forbid")
    stands: list[Stand]
    depots: list[Depot]
    terminals: list[Terminal]
    runways: list[Runway]
    road_nodes: list[RoadNode]
    road_edges: list[RoadEdge]
    attribution: Attribution | None = None  # the layout's source credit (OSM: ODbL)


class Manifest(BaseModel):
    """Everything a reader needs to find and interpret a published day."""

    model_config = ConfigDict(extra="forbid")
    format: Literal["dispatch-replay.manifest"] = "dispatch-replay.manifest"
    format_version: Literal[1] = 1
    encoding: Literal["json+zstd"] = "json+zstd"
    airport: Airport
    service_date: dt.date
    # Which dispatch run of the day this is (chunker.format.keys); manifests written before
    # variants existed have none and are the default variant.
    variant: str = DEFAULT_VARIANT
    version: str
    start: int
    end: int
    config: ChunkerConfig
    chunks: list[ChunkEntry]
    counts: dict[str, KindCounts]
    quarantine: Quarantine
    reference_report: ReferenceReport = Field(default_factory=ReferenceReport)
    histogram: Histogram
    catalogue: Catalogue
    layout: Layout
    inputs: list[InputObject]

    def chunk_at(self, t: int) -> ChunkEntry:
        """The chunk whose ``[start, end)`` contains ``t``."""
        if not self.start <= t < self.end:
            raise KeyError(f"t={t} is outside [{self.start}, {self.end})")
        return self.chunks[(t - self.start) // self.config.bucket_ms]


class Pointer(BaseModel):
    """``published/{airport}/{date}.json``: which version of a day is published."""

    model_config = ConfigDict(extra="forbid")
    version: str
    manifest_key: str
    published_at: str


def dump_model(model: BaseModel) -> bytes:
    """Deterministic JSON bytes of a model (same input -> same bytes)."""
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
