"""Where everything lives in the bucket. The only module that builds S3 keys.

Every identifier that reaches a key is validated here, so no request can address another
airport's data or an arbitrary key::

    raw/{airport}/{date}/reference.json             fleet, stands, depots, roads, buildings
    raw/{airport}/{date}/{kind}.jsonl[.gz]           a whole day of one record kind
    raw/{airport}/{date}/{kind}/{HH}.jsonl[.gz]      or one file per hour index HH
    published/{airport}/{date}.json                  pointer to the published version; listing
                                                     published/{airport}/ lists published days
    chunks/{airport}/{date}/{version}/manifest.json
    chunks/{airport}/{date}/{version}/parts/{HH}.json      hour-job summaries
    chunks/{airport}/{date}/{version}/c/{start_ms}.json.zst  one chunk per bucket
    quarantine/{airport}/{date}/{version}/{HH}.jsonl.gz    rejected records + reasons

A service day may hold several *variants*: recordings of other dispatch runs of the same
day (e.g. a candidate algorithm replayed against production's flights and tasks). The
default variant (``default``) is the layout above, unchanged. Variant ``{v}`` lives beside
it, each tree complete in itself (its own reference data, versions, pointer)::

    raw/{airport}/{date}/variants/{v}/...                   the same files as a day's raw/
    published/{airport}/{date}/variants/{v}.json            the variant's pointer
    chunks/{airport}/{date}/variants/{v}/{version}/...      its versions (same layout)
    quarantine/{airport}/{date}/variants/{v}/{version}/{HH}.jsonl.gz

None of these keys can be mistaken for the default variant's: a raw record file's name is
``{kind}[/{HH}].jsonl[.gz]`` directly under the day's prefix, a version is 16 hex digits
and a day pointer is ``{date}.json``. Listing ``published/{airport}/{date}`` lists the
day's variants with one request.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from chunker.format.records import AIRPORT_ID_PATTERN, RECORD_KINDS

_AIRPORT = re.compile(AIRPORT_ID_PATTERN)
_VERSION = re.compile(r"^[0-9a-f]{16}$")
DEFAULT_VARIANT = "default"
VARIANT_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
_VARIANT = re.compile(VARIANT_PATTERN)
VARIANTS_SEGMENT = "variants/"
_RAW_FILE = re.compile(
    rf"^(?P<kind>{'|'.join(RECORD_KINDS)})"
    r"(?:/(?P<hour>[0-9]{2}))?\.jsonl(?P<gz>\.gz)?$"
)
CHUNK_SUFFIX = ".json.zst"


class InvalidIdentifier(ValueError):
    """An airport id, date or version that must not reach an S3 key."""


class InvalidVariant(InvalidIdentifier):
    """A variant name that is not one (lower-case letters, digits, inner hyphens; 1-32)."""


def check_variant(variant: str) -> str:
    """Return ``variant`` if it is a valid variant name."""
    if not isinstance(variant, str) or not _VARIANT.match(variant):
        raise InvalidVariant(
            f"variant must be 1-32 lower-case letters, digits or inner hyphens: {variant!r}"
        )
    return variant


def check_airport(airport: str) -> str:
    """Return ``airport`` if it is a valid airport id (3-4 upper-case letters/digits)."""
    if not isinstance(airport, str) or not _AIRPORT.match(airport):
        raise InvalidIdentifier(f"airport must match {AIRPORT_ID_PATTERN}: {airport!r}")
    return airport


def check_date(service_date: str) -> str:
    """Return ``service_date`` if it is a real ``YYYY-MM-DD`` date."""
    try:
        if dt.date.fromisoformat(service_date).isoformat() == service_date:
            return service_date
    except (TypeError, ValueError):
        pass
    raise InvalidIdentifier(f"service date must be YYYY-MM-DD: {service_date!r}")


def check_version(version: str) -> str:
    """Return ``version`` if it looks like a chunk version (16 hex digits)."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise InvalidIdentifier(f"version must be 16 hex digits: {version!r}")
    return version


PUBLISHED_PREFIX = "published/"


def published_prefix(airport: str) -> str:
    """Prefix under which an airport's day pointers live."""
    return f"{PUBLISHED_PREFIX}{check_airport(airport)}/"


def date_of_pointer_key(airport: str, key: str, variant: str = DEFAULT_VARIANT) -> str | None:
    """The service date of a pointer key of ``variant``, or None if the key is not one."""
    prefix = published_prefix(airport)
    suffix = ".json" if variant == DEFAULT_VARIANT else f"/{VARIANTS_SEGMENT}{variant}.json"
    if not key.startswith(prefix) or not key.endswith(suffix):
        return None
    date = key[len(prefix) : -len(suffix)]
    try:
        return check_date(date)
    except InvalidIdentifier:
        return None


@dataclass(frozen=True, slots=True)
class DayKeys:
    """Keys of one (airport, service day)."""

    airport: str
    service_date: str
    variant: str = DEFAULT_VARIANT

    def __post_init__(self) -> None:
        check_airport(self.airport)
        check_date(self.service_date)
        check_variant(self.variant)

    @property
    def _variant_segment(self) -> str:
        """``""`` for the default variant, else ``variants/{v}/``."""
        return "" if self.variant == DEFAULT_VARIANT else f"{VARIANTS_SEGMENT}{self.variant}/"

    @property
    def raw_prefix(self) -> str:
        return f"raw/{self.airport}/{self.service_date}/{self._variant_segment}"

    @property
    def reference(self) -> str:
        return f"{self.raw_prefix}reference.json"

    def raw_file(self, kind: str, hour: int | None = None, gzip: bool = True) -> str:
        """Key of a raw file: a day file, or the file of one hour index."""
        if kind not in RECORD_KINDS:
            raise InvalidIdentifier(f"unknown record kind {kind!r}")
        name = kind if hour is None else f"{kind}/{hour:02d}"
        return f"{self.raw_prefix}{name}.jsonl{'.gz' if gzip else ''}"

    @property
    def chunks_prefix(self) -> str:
        return f"chunks/{self.airport}/{self.service_date}/{self._variant_segment}"

    @property
    def pointer(self) -> str:
        if self.variant == DEFAULT_VARIANT:
            return f"{published_prefix(self.airport)}{self.service_date}.json"
        return f"{self.variants_prefix}{self.variant}.json"

    @property
    def day_pointers_prefix(self) -> str:
        """Prefix of every pointer of the day, whatever its variant."""
        return f"{published_prefix(self.airport)}{self.service_date}"

    @property
    def variants_prefix(self) -> str:
        """Prefix of the day's non-default variants' pointers."""
        return f"{self.day_pointers_prefix}/{VARIANTS_SEGMENT}"

    def variant_of_pointer(self, key: str) -> str | None:
        """The variant a pointer key of this day names, or None if it names none."""
        if key == DayKeys(self.airport, self.service_date).pointer:
            return DEFAULT_VARIANT
        prefix = self.variants_prefix
        if not key.startswith(prefix) or not key.endswith(".json"):
            return None
        name = key[len(prefix) : -len(".json")]
        return name if _VARIANT.match(name) else None

    def version_prefix(self, version: str) -> str:
        return f"{self.chunks_prefix}{check_version(version)}/"

    def manifest(self, version: str) -> str:
        return f"{self.version_prefix(version)}manifest.json"

    def part(self, version: str, hour: int) -> str:
        return f"{self.version_prefix(version)}parts/{hour:02d}.json"

    def parts_prefix(self, version: str) -> str:
        return f"{self.version_prefix(version)}parts/"

    def chunk(self, version: str, start_ms: int) -> str:
        return f"{self.version_prefix(version)}c/{start_ms}{CHUNK_SUFFIX}"

    def quarantine(self, version: str, hour: int) -> str:
        return (
            f"quarantine/{self.airport}/{self.service_date}/{self._variant_segment}"
            f"{check_version(version)}/"
            f"{hour:02d}.jsonl.gz"
        )


@dataclass(frozen=True, slots=True)
class RawFile:
    """A raw recording object, classified by its key."""

    key: str
    kind: str
    hour: int | None  # None: the file holds the whole day
    gzip: bool


def classify_raw_key(day: DayKeys, key: str) -> RawFile | None:
    """Classify a key under the day's raw prefix; None for anything that is not a record file."""
    if not key.startswith(day.raw_prefix):
        return None
    match = _RAW_FILE.match(key[len(day.raw_prefix) :])
    if match is None:
        return None
    hour = match.group("hour")
    return RawFile(key, match.group("kind"), None if hour is None else int(hour), bool(match["gz"]))
