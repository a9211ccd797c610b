"""Raw line -> validated replay row, or a rejection with a reason.

Every accepted record becomes a *row* (``chunker.format.rows``: one TypedDict per kind,
built here): a JSON-ready dict whose own id is ``id`` and whose times are epoch
milliseconds (``t`` is the event time).

Positions are ~99% of the volume. They take a fast path (``_position_rule``: msgspec
decodes the line into a struct in C, then every check in one expression) that accepts the
canonical shape of a valid record; anything else — an unusual timestamp form, a wrong type,
a bad line, a record failing a check — is decided by the pydantic model in
``chunker.format.records`` and the same checks, which name the reason. The fast path
therefore only ever accepts what the model accepts and produces the same row
(property-tested in tests/test_validate.py).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
from pydantic import ValidationError

from chunker.format.day import ServiceDay, to_ms
from chunker.format.records import (
    FlightEvent,
    Notification,
    RawRecord,
    Reference,
    TaskEvent,
    VehiclePosition,
    VehicleState,
)
from chunker.format.rows import FlightRow, NotificationRow, Row, TaskRow, VehicleRow

MAX_LINE_BYTES = 64 * 1024
QUARANTINE_RAW_BYTES = 4096  # a quarantine record keeps this much of its raw line
MAX_REJECTED_BYTES = 32 * 1024 * 1024  # rejected lines one file may hold (see _Rejects)
_REJECT_COST = 256  # bytes a held reject costs beyond its line and detail (measured ~230)
AREA_MARGIN_DEG = 0.02  # ~2 km around everything in the reference layout

# Stable reason codes: counted in manifests, documented in docs/data-format.md.
INVALID_JSON = "invalid_json"
SCHEMA_VIOLATION = "schema_violation"
LINE_TOO_LONG = "line_too_long"
OUTSIDE_SERVICE_DAY = "outside_service_day"
OUTSIDE_FILE_HOUR = "outside_file_hour"
OUTSIDE_AIRPORT_AREA = "outside_airport_area"
UNKNOWN_VEHICLE = "unknown_vehicle"
UNKNOWN_STAND = "unknown_stand"
DUPLICATE = "duplicate"

_VEHICLE_STATES = frozenset(state.value for state in VehicleState)


class _Fix(msgspec.Struct):
    """The shape of a position line, decoded in C by the hot loop (values checked after).

    Anything msgspec refuses (bad JSON or UTF-8, a missing field, a wrong type) goes to
    the pydantic model, which decides it and names the reason.
    """

    t: str
    vehicle_id: str
    lat: float
    lon: float
    heading: float
    speed_kmh: float
    state: str


_FIX_DECODER = msgspec.json.Decoder(_Fix)
# msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8, and RecursionError
# for a deeply nested value (in a field it would skip, too).
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_TIME_CACHE_LIMIT = 200_000


# (line number, reason, detail, raw line (first QUARANTINE_RAW_BYTES), record time if the
# record itself was valid)
LineReject = tuple[int, str, str, bytes, int | None]


class TooManyRejects(ValueError):
    """A file has more rejected lines than may be held until its quarantine is written."""


class _Rejects(list[LineReject]):
    """One file's rejected lines, each cut to what its quarantine record keeps.

    Rejects wait in memory until their hour's quarantine is written, so they are bounded:
    beyond ``MAX_REJECTED_BYTES`` (~100k short lines) the file is refused rather than read
    on, or a small gzip inflating to millions of bad lines would exhaust memory and time.
    """

    held = 0

    def add(self, number: int, reason: str, detail: str, line: bytes, t: int | None) -> None:
        kept = line[:QUARANTINE_RAW_BYTES]
        self.held += len(kept) + len(detail) + _REJECT_COST
        if self.held > MAX_REJECTED_BYTES:
            reasons = Counter(reject[1] for reject in self)
            reasons[reason] += 1
            raise TooManyRejects(
                f"more than {MAX_REJECTED_BYTES // 2**20} MiB of rejected lines by line "
                f"{number} ({', '.join(f'{r}: {n}' for r, n in reasons.most_common())})"
            )
        self.append((number, reason, detail, kept, t))


class Reject(NamedTuple):
    """Why a line was not accepted."""

    reason: str
    detail: str


def _ms(value: dt.datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def position_row(rec: VehiclePosition) -> VehicleRow:
    """Row of a GPS fix (values as recorded)."""
    return {
        "id": rec.vehicle_id,
        "t": to_ms(rec.t),
        "lat": rec.lat,
        "lon": rec.lon,
        "heading": rec.heading,
        "speed_kmh": rec.speed_kmh,
        "state": rec.state.value,
    }


def task_row(rec: TaskEvent) -> TaskRow:
    """Row of a task after a status transition."""
    return {
        "id": rec.task_id,
        "t": to_ms(rec.t),
        "flight_id": rec.flight_id,
        "task_type": rec.task_type.value,
        "status": rec.status.value,
        "previous_status": None if rec.previous_status is None else rec.previous_status.value,
        "vehicle_id": rec.vehicle_id,
        "stand": rec.stand,
        "planned_start": to_ms(rec.planned_start),
        "planned_end": to_ms(rec.planned_end),
        "actual_start": _ms(rec.actual_start),
        "actual_end": _ms(rec.actual_end),
    }


def flight_row(rec: FlightEvent) -> FlightRow:
    """Row of a flight leg after a change."""
    return {
        "id": rec.flight_id,
        "t": to_ms(rec.t),
        "callsign": rec.callsign,
        "flight_number": rec.flight_number,
        "movement": rec.movement.value,
        "airline": rec.airline,
        "aircraft_type": rec.aircraft_type,
        "registration": rec.registration,
        "route": rec.route,
        "turnaround_id": rec.turnaround_id,
        "stand": rec.stand,
        "scheduled": to_ms(rec.scheduled),
        "estimated": _ms(rec.estimated),
        "actual": _ms(rec.actual),
        "status": rec.status.value,
    }


def notification_row(rec: Notification) -> NotificationRow:
    """Row of a system notification."""
    return {
        "id": rec.notification_id,
        "t": to_ms(rec.t),
        "level": rec.level.value,
        "code": rec.code,
        "text": rec.text,
        "flight_id": rec.flight_id,
        "task_id": rec.task_id,
        "vehicle_id": rec.vehicle_id,
    }


_ROW_BUILDERS: dict[str, tuple[type[RawRecord], Any]] = {
    "positions": (VehiclePosition, position_row),
    "tasks": (TaskEvent, task_row),
    "flights": (FlightEvent, flight_row),
    "notifications": (Notification, notification_row),
}


def _schema_reject(exc: ValidationError) -> Reject:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0] if errors else {"type": "unknown", "loc": (), "msg": str(exc)}
    if first["type"] == "json_invalid":
        return Reject(INVALID_JSON, str(first["msg"])[:300])
    where = ".".join(str(part) for part in first["loc"]) or "record"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return Reject(SCHEMA_VIOLATION, f"{where}: {first['msg']}{more}"[:300])


@dataclass(slots=True)
class Rules:
    """What a valid record of one (airport, service day) looks like beyond its schema."""

    day: ServiceDay
    vehicle_ids: frozenset[str]
    stand_ids: frozenset[str]
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float
    _second_ms: dict[str, int] = field(default_factory=dict, repr=False)
    _position_fast: Callable[[bytes], VehicleRow | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._position_fast = _position_rule(self)

    @classmethod
    def for_day(cls, reference: Reference, day: ServiceDay) -> Rules:
        """Rules from the reference data: known fleet and stands, the airport's area."""
        points = [reference.airport.reference_point]
        points += [s.position for s in reference.stands]
        points += [d.position for d in reference.depots]
        points += [n.position for n in reference.road_nodes]
        points += [p for t in reference.terminals for p in t.outline]
        points += [p for r in reference.runways for p in (r.start, r.end)]
        lats = [p.lat for p in points]
        lons = [p.lon for p in points]
        return cls(
            day=day,
            vehicle_ids=frozenset(v.vehicle_id for v in reference.vehicles),
            stand_ids=frozenset(s.stand_id for s in reference.stands),
            min_lat=min(lats) - AREA_MARGIN_DEG,
            max_lat=max(lats) + AREA_MARGIN_DEG,
            min_lon=min(lons) - AREA_MARGIN_DEG,
            max_lon=max(lons) + AREA_MARGIN_DEG,
        )

    # --- time ---------------------------------------------------------------------------

    def fast_ms(self, text: str) -> int | None:
        """Epoch ms of a canonical ISO 8601 timestamp, or None to let pydantic decide.

        Canonical: ``YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)``. Whole seconds are cached
        per offset, so a day of 1 Hz fixes parses each second once.
        """
        n = len(text)
        if n in (20, 25):
            fraction = 0
            offset = text[19:]
        elif n in (24, 29) and text[19] == ".":
            digits = text[20:23]
            if not (digits.isascii() and digits.isdigit()):
                return None
            fraction = int(digits)
            offset = text[23:]
        else:
            return None
        key = text[:19] + offset
        base = self._second_ms.get(key)
        if base is None:
            if text[10] != "T" or not key.isascii():
                return None
            if offset == "Z":
                offset = "+00:00"
            elif len(offset) != 6 or offset[0] not in "+-" or offset[3] != ":":
                return None
            try:
                parsed = dt.datetime.fromisoformat(text[:19] + offset)
            except ValueError:
                return None
            if len(self._second_ms) >= _TIME_CACHE_LIMIT:
                self._second_ms.clear()
            base = self._second_ms[key] = to_ms(parsed)
        return base + fraction

    # --- parsing --------------------------------------------------------------------------

    def parse(self, kind: str, line: bytes) -> Row | Reject:
        """Validate one raw line of ``kind``; the row, or why it was rejected."""
        if len(line) > MAX_LINE_BYTES:
            # Lines are cut to MAX_LINE_BYTES + 1 when read: the true length is not known.
            return Reject(LINE_TOO_LONG, f"longer than {MAX_LINE_BYTES} bytes")
        row = self._position_fast(line) if kind == "positions" else None
        return self.parse_with_model(kind, line) if row is None else row

    def parse_with_model(self, kind: str, line: bytes) -> Row | Reject:
        """The reference path: pydantic model, then the semantic checks. ``parse`` equals it."""
        model, build = _ROW_BUILDERS[kind]
        try:
            record = model.model_validate_json(line)
        except ValidationError as exc:
            return _schema_reject(exc)
        row: Row = build(record)
        if kind == "positions":
            return self._check_position(row)
        if kind in ("tasks", "flights"):
            return self._check_stand_event(row)
        return self._check_time(row)

    def parse_lines(
        self, kind: str, lines: Iterable[tuple[int, bytes]], window: tuple[int, int] | None
    ) -> tuple[list[Row], list[LineReject]]:
        """Every line of one file of ``kind``: accepted rows in file order, and rejects.

        File rules on top of ``parse``: in an hourly file (``window``) a record must fall in
        the file's hour, and a record repeating the latest record of the same entity and
        time is a duplicate (so dropping it can never change the state: ``A, B, A'`` keeps
        all three). Positions are ~99% of the volume: this is the chunker's hot loop.
        """
        rows: list[Row] = []
        rejects = _Rejects()
        latest: dict[tuple[str, int], Row] = {}
        # parse(kind, line), its fast path called directly (this loop is hot); a line the
        # fast path leaves to the model (rare) goes through parse itself.
        fast = self._position_fast if kind == "positions" else None
        parse = self.parse
        result: Row | Reject | None
        for number, line in lines:
            result = fast(line) if fast is not None and len(line) <= MAX_LINE_BYTES else None
            if result is None:
                result = parse(kind, line)
            if type(result) is Reject:
                rejects.add(number, result.reason, result.detail, line, None)
                continue
            row: Row = result  # type: ignore[assignment]
            t = row["t"]
            if window is not None and not window[0] <= t < window[1]:
                rejects.add(
                    number, OUTSIDE_FILE_HOUR, f"t={t} is outside the file's hour", line, None
                )
                continue
            identity = (row["id"], t)
            if latest.get(identity) == row:
                rejects.add(number, DUPLICATE, "repeats the previous record", line, t)
                continue
            latest[identity] = row
            rows.append(row)
        return rows, rejects

    # --- semantic checks (shared by fast and model paths) ----------------------------------

    def _check_time(self, row: Row) -> Row | Reject:
        t = row["t"]
        day = self.day
        if not day.start_ms <= t < day.end_ms:
            return Reject(OUTSIDE_SERVICE_DAY, f"t={t} is outside {day.date_text}")
        return row

    def _check_position(self, row: Row) -> Row | Reject:
        checked = self._check_time(row)
        if checked is not row:
            return checked
        if row["id"] not in self.vehicle_ids:
            return Reject(UNKNOWN_VEHICLE, f"vehicle {row['id']!r} is not in the reference fleet")
        if not (
            self.min_lat <= row["lat"] <= self.max_lat
            and self.min_lon <= row["lon"] <= self.max_lon
        ):
            return Reject(
                OUTSIDE_AIRPORT_AREA, f"({row['lat']}, {row['lon']}) is outside the airport area"
            )
        return row

    def _check_stand_event(self, row: Row) -> Row | Reject:
        checked = self._check_time(row)
        if checked is not row:
            return checked
        if row["stand"] not in self.stand_ids:
            return Reject(UNKNOWN_STAND, f"stand {row['stand']!r} is not in the reference layout")
        vehicle_id = row.get("vehicle_id")
        if vehicle_id is not None and vehicle_id not in self.vehicle_ids:
            return Reject(UNKNOWN_VEHICLE, f"vehicle {vehicle_id!r} is not in the reference fleet")
        return row


def _position_rule(rules: Rules) -> Callable[[bytes], VehicleRow | None]:
    """``rules``' fast form of "a valid position": line -> the accepted row, or None to let
    the model path decide (and name the reason). Known vehicle, known state, inside the
    airport area, heading in [0, 360), speed in [0, 200], a canonical timestamp inside the
    service day. A closure, so the hot loop reads its rules as locals."""
    decode = _FIX_DECODER.decode
    vehicles, states = rules.vehicle_ids, _VEHICLE_STATES
    min_lat, max_lat, min_lon, max_lon = rules.min_lat, rules.max_lat, rules.min_lon, rules.max_lon
    day_lo, day_hi = rules.day.start_ms, rules.day.end_ms
    seconds, fast_ms = rules._second_ms, rules.fast_ms

    def position_fast(line: bytes) -> VehicleRow | None:
        try:
            fix = decode(line)
        except _DECODE_ERRORS:
            return None
        lat, lon, heading, speed = fix.lat, fix.lon, fix.heading, fix.speed_kmh
        # Comparisons are False for NaN: non-finite values fall through.
        if not (
            fix.vehicle_id in vehicles
            and fix.state in states
            and min_lat <= lat <= max_lat
            and min_lon <= lon <= max_lon
            and 0.0 <= heading < 360.0
            and 0.0 <= speed <= 200.0
        ):
            return None
        text = fix.t
        t: int | None = None
        if len(text) == 29 and text[19] == ".":  # the usual form: its second is cached
            base = seconds.get(text[:19] + text[23:])
            digits = text[20:23]
            if base is not None and digits.isdigit() and digits.isascii():
                t = base + int(digits)
        if t is None:
            t = fast_ms(text)
        if t is None or not day_lo <= t < day_hi:
            return None
        return {
            "id": fix.vehicle_id,
            "t": t,
            "lat": lat,
            "lon": lon,
            "heading": heading,
            "speed_kmh": speed,
            "state": fix.state,
        }

    return position_fast
