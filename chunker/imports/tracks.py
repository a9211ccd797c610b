"""Track exports (CSV, GPX, OpenSky state vectors) -> the raw positions contract.

Each reader turns one foreign format into ``TrackFix`` values, the format-neutral fix
(mover, time, position, and whatever motion / surface data the format has); one writer
turns fixes into ``positions`` JSON Lines (``chunker.format.records.VehiclePosition``), so
the chunker keeps one input path and its tolerant rules (derived heading/speed, jumps,
duplicates) apply to imported tracks exactly as to the dispatch system's own exports. An
aircraft kind (later) gets a second writer, not new readers.

A reader never raises for a bad line: it counts it under a reason (``ImportTally``) and
goes on. Only what makes the whole input unreadable (no such file, not GPX, a CSV without
the mapped columns) is a ``TrackImportError``.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from chunker.format.records import ENTITY_ID_PATTERN, VehicleState
from chunker.imports.osm_layout import normalise_id

SPEED_UNITS = {"kmh": 1.0, "knots": 1.852, "ms": 3.6, "mph": 1.609344}
ALTITUDE_UNITS = {"m": 1.0, "ft": 0.3048}
TIME_FORMATS = ("auto", "s", "ms", "iso")
_ENTITY_ID = re.compile(ENTITY_ID_PATTERN)
PROGRESS_EVERY_S = 2.0
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Reasons a line yields no fix.
BAD_TIME = "bad_time"
TIME_WITHOUT_OFFSET = "time_without_offset"
BAD_POSITION = "bad_position"
NO_POSITION = "no_position"
BAD_ID = "bad_id"
MALFORMED = "malformed_line"
# Reasons an optional value was left out of a fix that is kept.
DROPPED = "dropped_"  # + field name


class TrackImportError(ValueError):
    """The input cannot be read at all; the message says why."""


@dataclass(slots=True)
class TrackFix:
    """One fix of one mover, format-neutral (SI-ish units: km/h, metres, epoch ms)."""

    mover: str
    t_ms: int
    lat: float
    lon: float
    heading: float | None = None
    speed_kmh: float | None = None
    on_ground: bool | None = None
    altitude_m: float | None = None
    state: str | None = None
    callsign: str | None = None


@dataclass
class ImportTally:
    """What an import read: fixes written, lines skipped and values dropped by reason."""

    lines: int = 0
    fixes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    movers: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first line number

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, where)

    def summary(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "fixes": self.fixes,
            "skipped": dict(sorted(self.skipped.items())),
            "first_skipped_at": dict(sorted(self.examples.items())),
            "values_dropped": dict(sorted(self.dropped.items())),
            "movers": len(self.movers),
            "fixes_per_mover": dict(sorted(self.movers.items())),
        }


class _BadLine(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- values -------------------------------------------------------------------------------


def parse_time(text: Any, time_format: str, assume_zone: dt.tzinfo | None) -> int:
    """Epoch ms of a timestamp: epoch seconds / milliseconds (``auto``: by magnitude,
    beyond 1e11 is ms) or ISO 8601 (without offset only with ``assume_zone``)."""
    if isinstance(text, bool):
        raise _BadLine(BAD_TIME)
    if isinstance(text, int | float):
        number = float(text)
    else:
        value = str(text).strip()
        if not value:
            raise _BadLine(BAD_TIME)
        try:
            number = float(value)
        except ValueError:
            number = math.nan
            if time_format in ("s", "ms"):
                raise _BadLine(BAD_TIME) from None
        if math.isnan(number):
            if time_format in ("s", "ms"):
                raise _BadLine(BAD_TIME)
            try:
                moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise _BadLine(BAD_TIME) from None
            if moment.tzinfo is None:
                if assume_zone is None:
                    raise _BadLine(TIME_WITHOUT_OFFSET)
                moment = moment.replace(tzinfo=assume_zone)
            return int(moment.timestamp() * 1000 // 1)
    if time_format == "iso" or not math.isfinite(number):
        raise _BadLine(BAD_TIME)
    unit_ms = time_format == "ms" or (time_format == "auto" and abs(number) >= 1e11)
    ms = number if unit_ms else number * 1000
    if not -1e15 < ms < 1e15:
        raise _BadLine(BAD_TIME)
    return math.floor(ms)


def _number(value: Any) -> float | None:
    """A finite number, or None for an empty / unparseable value."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in ("true", "t", "1", "yes", "y"):
        return True
    if text in ("false", "f", "0", "no", "n"):
        return False
    return None


def _position(lat: Any, lon: Any) -> tuple[float, float]:
    if (lat is None or lat == "") and (lon is None or lon == ""):
        raise _BadLine(NO_POSITION)
    la, lo = _number(lat), _number(lon)
    if la is None or lo is None or not (-90 <= la <= 90 and -180 <= lo <= 180):
        raise _BadLine(BAD_POSITION)
    return la, lo


def mover_id(raw: Any, mapping: dict[str, str]) -> str:
    """The fleet id of a source id: the mapping's, else the id normalised to the
    contract's entity-id pattern (``a0d724`` stays, ``Tug 3`` -> ``Tug_3``)."""
    text = "" if raw is None else str(raw).strip()
    if text in mapping:
        return mapping[text]
    normal = normalise_id(text)
    if normal is None or not _ENTITY_ID.match(normal):
        raise _BadLine(BAD_ID)
    return normal


def _optional(tally: ImportTally, name: str, value: Any, parse: Callable[[Any], Any]) -> Any:
    """An optional value parsed, or None; a value present but unusable is counted."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parsed = parse(value)
    if parsed is None:
        tally.dropped[DROPPED + name] += 1
    return parsed


# --- readers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """Which CSV column holds what (by header name); only id, time, lat, lon are required."""

    mover: str
    t: str
    lat: str
    lon: str
    heading: str | None = None
    speed: str | None = None
    on_ground: str | None = None
    altitude: str | None = None
    state: str | None = None
    callsign: str | None = None

    FIELDS = ("id", "t", "lat", "lon", "heading", "speed", "on_ground", "altitude", "state")

    @classmethod
    def parse(cls, text: str) -> Columns:
        """``id=tracker,t=time,lat=latitude,lon=longitude[,heading=..,speed=..,...]``."""
        given: dict[str, str] = {}
        for part in text.split(","):
            key, sep, column = part.partition("=")
            key, column = key.strip(), column.strip()
            if not sep or not column:
                raise TrackImportError(f"--columns: {part.strip()!r} is not field=column")
            if key not in (*cls.FIELDS, "callsign"):
                raise TrackImportError(
                    f"--columns: unknown field {key!r} (fields: {', '.join(cls.FIELDS)}, callsign)"
                )
            given[key] = column
        missing = [k for k in ("id", "t", "lat", "lon") if k not in given]
        if missing:
            raise TrackImportError(f"--columns: missing {', '.join(missing)}")
        return cls(
            mover=given["id"],
            t=given["t"],
            lat=given["lat"],
            lon=given["lon"],
            heading=given.get("heading"),
            speed=given.get("speed"),
            on_ground=given.get("on_ground"),
            altitude=given.get("altitude"),
            state=given.get("state"),
            callsign=given.get("callsign"),
        )


# The OpenSky historical state-vector CSV (``states_*.csv``, the Impala table's columns):
# velocity m/s, heading = true track, times epoch seconds; ``lastposupdate`` is when the
# position itself was received (a vector repeats it until the next position message).
OPENSKY_CSV_COLUMNS = Columns(
    mover="icao24",
    t="lastposupdate",
    lat="lat",
    lon="lon",
    heading="heading",
    speed="velocity",
    on_ground="onground",
    altitude="geoaltitude",
    callsign="callsign",
)


@dataclass(frozen=True)
class Options:
    """How to read values: units, time format, id mapping, the state to write."""

    speed_unit: str = "kmh"
    altitude_unit: str = "m"
    time_format: str = "auto"
    assume_zone: dt.tzinfo | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    state: str = VehicleState.EN_ROUTE.value


def _fix(
    tally: ImportTally,
    options: Options,
    mover: Any,
    t: Any,
    lat: Any,
    lon: Any,
    heading: Any = None,
    speed: Any = None,
    on_ground: Any = None,
    altitude: Any = None,
    state: Any = None,
    callsign: Any = None,
) -> TrackFix:
    """A fix from raw values of any reader (raises ``_BadLine`` for what has no fix)."""
    t_ms = parse_time(t, options.time_format, options.assume_zone)
    la, lo = _position(lat, lon)
    identity = mover_id(mover, options.mapping)
    track = _optional(tally, "heading", heading, _number)
    if track is not None and not 0 <= track < 360:
        track = track % 360.0 if -360 <= track <= 720 else None
        if track is None:
            tally.dropped[DROPPED + "heading"] += 1
    speed_value = _optional(tally, "speed", speed, _number)
    speed_kmh = None if speed_value is None else speed_value * SPEED_UNITS[options.speed_unit]
    altitude_value = _optional(tally, "altitude", altitude, _number)
    states = {s.value for s in VehicleState}
    given_state = _optional(
        tally, "state", state, lambda v: str(v).strip() if str(v).strip() in states else None
    )
    return TrackFix(
        mover=identity,
        t_ms=t_ms,
        lat=la,
        lon=lo,
        heading=track,
        speed_kmh=None if speed_kmh is None else round(speed_kmh, 2),
        on_ground=_optional(tally, "on_ground", on_ground, _flag),
        altitude_m=None
        if altitude_value is None
        else round(altitude_value * ALTITUDE_UNITS[options.altitude_unit], 1),
        state=given_state or options.state,
        callsign=None if callsign is None else (str(callsign).strip() or None),
    )


def read_csv(
    lines: Iterable[tuple[int, str]], columns: Columns, options: Options, tally: ImportTally
) -> Iterator[TrackFix]:
    """Fixes of a CSV with a header row; ``columns`` names the columns to read."""
    header: dict[str, int] | None = None
    for number, text in lines:
        if not text.strip():
            continue
        try:
            cells = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            tally.lines += header is not None
            tally.skip(MALFORMED, f"line {number}")
            continue
        if header is None:
            header = {name.strip().lstrip("\ufeff"): i for i, name in enumerate(cells)}
            wanted = [c for c in vars(columns).values() if c is not None]
            absent = [c for c in wanted if c not in header]
            if absent:
                raise TrackImportError(
                    f"the CSV header has no column {', '.join(map(repr, absent))} "
                    f"(it has {', '.join(list(header)[:20])})"
                )
            continue
        tally.lines += 1
        if len(cells) < len(header):
            cells += [""] * (len(header) - len(cells))
        mapped = {
            name: (cells[header[column]] if column is not None else None)
            for name, column in vars(columns).items()
        }
        try:
            yield _fix(
                tally,
                options,
                mapped["mover"],
                mapped["t"],
                mapped["lat"],
                mapped["lon"],
                mapped["heading"],
                mapped["speed"],
                mapped["on_ground"],
                mapped["altitude"],
                mapped["state"],
                mapped["callsign"],
            )
        except _BadLine as bad:
            tally.skip(bad.reason, f"line {number}")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_gpx(
    stream: IO[bytes], options: Options, tally: ImportTally, mover: str | None
) -> Iterator[TrackFix]:
    """Fixes of a GPX 1.0 / 1.1 file: every ``trkpt`` (and ``rtept``/``wpt`` with a time).

    Mover: ``mover`` if given, else the track's ``<name>``. Time from ``<time>``, altitude
    from ``<ele>``; GPX 1.0's ``<speed>`` (m/s) and ``<course>``, and the same names inside
    ``<extensions>`` (Garmin TrackPointExtension), give speed and heading.
    """
    track_name: str | None = None
    point = 0
    try:
        for event, element in ElementTree.iterparse(stream, events=("end",)):
            del event
            name = _local(element.tag)
            if name == "name" and track_name is None:
                track_name = (element.text or "").strip() or None
            if name not in ("trkpt", "rtept", "wpt"):
                continue
            point += 1
            tally.lines += 1
            values: dict[str, str] = {}
            for child in element.iter():
                key = _local(child.tag)
                if key in ("time", "ele", "speed", "course") and child.text:
                    values.setdefault(key, child.text.strip())
            try:
                if "time" not in values:
                    raise _BadLine(BAD_TIME)
                fix_options = Options(
                    speed_unit="ms",
                    altitude_unit="m",
                    time_format="iso",
                    assume_zone=options.assume_zone or dt.UTC,  # GPX times are UTC
                    mapping=options.mapping,
                    state=options.state,
                )
                yield _fix(
                    tally,
                    fix_options,
                    mover or track_name,
                    values["time"],
                    element.get("lat"),
                    element.get("lon"),
                    heading=values.get("course"),
                    speed=values.get("speed"),
                    altitude=values.get("ele"),
                )
            except _BadLine as bad:
                tally.skip(bad.reason, f"point {point}")
            element.clear()
    except ElementTree.ParseError as exc:
        if point == 0:
            raise TrackImportError(f"not a readable GPX file: {exc}") from exc
        tally.skip(MALFORMED, f"after point {point}: {exc}")


def read_opensky_json(
    documents: Iterable[tuple[int, Any]], options: Options, tally: ImportTally
) -> Iterator[TrackFix]:
    """Fixes of OpenSky REST responses (``/states/all``, ``/states/own``): objects
    ``{"time": ..., "states": [[icao24, callsign, origin_country, time_position,
    last_contact, longitude, latitude, baro_altitude, on_ground, velocity, true_track,
    vertical_rate, sensors, geo_altitude, squawk, spi, position_source, (category)]]}``.
    Velocity is m/s; the fix time is ``time_position`` (a vector without one has no fix).
    """
    sky = Options(
        speed_unit="ms",
        altitude_unit="m",
        time_format="s",
        mapping=options.mapping,
        state=options.state,
    )
    for number, document in documents:
        states = document.get("states") if isinstance(document, dict) else None
        if not isinstance(states, list):
            tally.lines += 1
            tally.skip(MALFORMED, f"document {number}")
            continue
        for index, state in enumerate(states):
            tally.lines += 1
            where = f"document {number}, state {index}"
            if not isinstance(state, list) or len(state) < 17:
                tally.skip(MALFORMED, where)
                continue
            try:
                if state[3] is None:
                    raise _BadLine(NO_POSITION)
                altitude = state[13] if state[13] is not None else state[7]
                yield _fix(
                    tally,
                    sky,
                    state[0],
                    state[3],
                    state[6],
                    state[5],
                    heading=state[10],
                    speed=state[9],
                    on_ground=state[8],
                    altitude=altitude,
                    callsign=state[1],
                )
            except _BadLine as bad:
                tally.skip(bad.reason, where)


# --- writer ------------------------------------------------------------------------------------


def _utc_text(t_ms: int) -> str:
    return (
        dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


_ICAO24 = re.compile(r"^[0-9a-f]{6}$")


def aircraft_line(fix: TrackFix) -> bytes:
    """An ``aircraft`` JSON line of the raw contract: the mover id is the ``icao24`` when it
    is 6 hex digits (ADS-B, OpenSky), else the ``registration``; callsign, track, ground
    speed, on-ground and altitude only when known."""
    record: dict[str, Any] = {"t": _utc_text(fix.t_ms)}
    identity = fix.mover.strip()
    if _ICAO24.match(identity.lower()):
        record["icao24"] = identity.lower()
    else:
        record["registration"] = identity.upper()
    if fix.callsign is not None:
        record["callsign"] = fix.callsign.upper()
    record["lat"], record["lon"] = fix.lat, fix.lon
    if fix.heading is not None:
        record["track"] = fix.heading
    if fix.speed_kmh is not None:
        record["ground_speed_kmh"] = fix.speed_kmh
    if fix.on_ground is not None:
        record["on_ground"] = fix.on_ground
    if fix.altitude_m is not None:
        record["altitude_m"] = fix.altitude_m
    return orjson.dumps(record)


def position_line(fix: TrackFix) -> bytes:
    """A ``positions`` JSON line of the raw contract (optional values only when known)."""
    record: dict[str, Any] = {
        "t": _utc_text(fix.t_ms),
        "vehicle_id": fix.mover,
        "lat": fix.lat,
        "lon": fix.lon,
    }
    if fix.heading is not None:
        record["heading"] = fix.heading
    if fix.speed_kmh is not None:
        record["speed_kmh"] = fix.speed_kmh
    record["state"] = fix.state or VehicleState.EN_ROUTE.value
    if fix.on_ground is not None:
        record["on_ground"] = fix.on_ground
    if fix.altitude_m is not None:
        record["altitude_m"] = fix.altitude_m
    return orjson.dumps(record)


# --- files -------------------------------------------------------------------------------------


class Progress:
    """Reports how far through its file an import is, at most every ``PROGRESS_EVERY_S``."""

    def __init__(
        self, size: int, say: Callable[[str], None] | None, clock: Callable[[], float]
    ) -> None:
        self.size, self.say, self.clock = size, say, clock
        self.last = clock()

    def update(self, done: int, tally: ImportTally, final: bool = False) -> None:
        if self.say is None:
            return
        now = self.clock()
        if not final and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        share = f" ({done / self.size:.0%} of {self.size / 2**20:,.1f} MiB)" if self.size else ""
        skipped = sum(tally.skipped.values())
        self.say(f"{tally.lines:,} lines read{share}: {tally.fixes:,} fixes, {skipped:,} skipped")


def open_binary(path: Path) -> tuple[IO[bytes], IO[bytes]]:
    """(the file's decompressed stream, the raw file for progress); gzip by magic bytes."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise TrackImportError(f"cannot read {path}: {exc.strerror}") from exc
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.open(raw), raw  # type: ignore[return-value]
    return raw, raw


def text_lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """(1-based number, text) of each line, undecodable bytes replaced (never an error)."""
    reader = io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline="")
    for number, text in enumerate(reader, start=1):
        yield number, text.rstrip("\r\n")


def json_documents(stream: IO[bytes], tally: ImportTally) -> Iterator[tuple[int, Any]]:
    """JSON documents of a file: one document, an array of them, or JSON Lines."""
    head = stream.read(1 << 16)
    rest = stream.read()
    data = head + rest
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        whole = None
    if whole is not None:
        yield from enumerate(whole if isinstance(whole, list) else [whole], start=1)
        return
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, orjson.loads(line)
        except orjson.JSONDecodeError:
            tally.lines += 1
            tally.skip(MALFORMED, f"line {number}")


def zone(name: str | None) -> dt.tzinfo | None:
    """An IANA time zone by name (``UTC`` too), or None."""
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TrackImportError(f"unknown time zone {name!r}") from None
