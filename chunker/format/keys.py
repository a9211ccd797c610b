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
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from chunker.format.records import AIRPORT_ID_PATTERN, RECORD_KINDS

_AIRPORT = re.compile(AIRPORT_ID_PATTERN)
_VERSION = re.compile(r"^[0-9a-f]{16}$")
_RAW_FILE = re.compile(
    rf"^(?P<kind>{'|'.join(RECORD_KINDS)})"
    r"(?:/(?P<hour>[0-9]{2}))?\.jsonl(?P<gz>\.gz)?$"
)
CHUNK_SUFFIX = ".json.zst"


class InvalidIdentifier(ValueError):
    """An airport id, date or version that must not reach an S3 key."""


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


def date_of_pointer_key(airport: str, key: str) -> str | None:
    """The service date of a pointer key, or None if the key is not one."""
    prefix = published_prefix(airport)
    if not key.startswith(prefix) or not key.endswith(".json"):
        return None
    date = key[len(prefix) : -len(".json")]
    try:
        return check_date(date)
    except InvalidIdentifier:
        return None


@dataclass(frozen=True, slots=True)
class DayKeys:
    """Keys of one (airport, service day)."""

    airport: str
    service_date: str

    def __post_init__(self) -> None:
        check_airport(self.airport)
        check_date(self.service_date)

    @property
    def raw_prefix(self) -> str:
        return f"raw/{self.airport}/{self.service_date}/"

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
        return f"chunks/{self.airport}/{self.service_date}/"

    @property
    def pointer(self) -> str:
        return f"{published_prefix(self.airport)}{self.service_date}.json"

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
            f"quarantine/{self.airport}/{self.service_date}/{check_version(version)}/"
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
