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

Positions are tolerant (issue #18): the fix is its time, mover and position. A missing or
unusable ``heading`` / ``speed_kmh`` is dropped with a counted reason (*amended*, not
rejected) and derived from the neighbouring fixes; a fix that implies an impossible speed
from the previous accepted fix of its mover is quarantined as ``implausible_jump``. Both
are track rules (``chunker.batch.tracks``), applied per file after the line rules: the hot
loop only screens each mover's consecutive fixes and hands the movers that need it (a
suspect jump, lines out of time order, a missing value) to them.
"""

from __future__ import annotations

import datetime as dt
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import msgspec
import orjson
from pydantic import ValidationError
from pydantic_core import from_json

from chunker.batch.tracks import (
    DEFAULT_MAX_SPEED_KMH,
    EARTH_M_PER_DEG,
    Flat,
    Limit,
    derive_motion,
    implausible_jumps,
)
from chunker.batch.tracks import aircraft_limit as _aircraft_limit
from chunker.batch.tracks import limits_for as _limits_for
from chunker.format.day import HOUR_MS, ServiceDay, to_ms
from chunker.format.records import (
    AircraftPosition,
    DispatchDecision,
    FlightEvent,
    MoverLimits,
    Notification,
    RawRecord,
    Reference,
    TaskEvent,
    VehiclePosition,
    VehicleState,
)
from chunker.format.rows import (
    AircraftRow,
    CandidateRow,
    DecisionRow,
    FlightRow,
    NotificationRow,
    Row,
    TaskRow,
    VehicleRow,
)

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
IMPLAUSIBLE_JUMP = "implausible_jump"
AIRBORNE = "airborne"

# Amendments: a value dropped from a fix that is kept (counted per reason, not quarantined).
MISSING_HEADING = "missing_heading"
INVALID_HEADING = "invalid_heading"
MISSING_SPEED = "missing_speed"
INVALID_SPEED = "invalid_speed"
INVALID_ON_GROUND = "invalid_on_ground"
INVALID_ALTITUDE = "invalid_altitude"
# A decision's candidate that breaks the contract, or names a vehicle not in the fleet, is
# dropped from the decision, which is kept.
INVALID_CANDIDATE = "invalid_candidate"
UNKNOWN_CANDIDATE = "unknown_candidate"
# A position field that is optional: an unusable value is dropped (amended), not fatal.
_OPTIONAL_POSITION_FIELDS = {
    "heading": INVALID_HEADING,
    "speed_kmh": INVALID_SPEED,
    "on_ground": INVALID_ON_GROUND,
    "altitude_m": INVALID_ALTITUDE,
}

# The same for an aircraft fix (its names for heading and speed are ADS-B's).
_OPTIONAL_AIRCRAFT_FIELDS = {
    "track": INVALID_HEADING,
    "ground_speed_kmh": INVALID_SPEED,
    "on_ground": INVALID_ON_GROUND,
    "altitude_m": INVALID_ALTITUDE,
}
# Kinds whose rows are fixes of movers: the track rules apply to them.
TRACK_KINDS = frozenset({"positions", "aircraft"})

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
    # False (not a surface fix) fails to decode: the model path rejects it as airborne.
    on_ground: Literal[True] | None = None


_FIX_DECODER = msgspec.json.Decoder(_Fix)
# msgspec raises UnicodeDecodeError (not DecodeError) for invalid UTF-8, and RecursionError
# for a deeply nested value (in a field it would skip, too).
_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_TIME_CACHE_LIMIT = 200_000
_MILLIS = {f"{ms:03d}": ms for ms in range(1000)}  # a timestamp's fraction -> ms


# (line number, reason, detail, raw line (first QUARANTINE_RAW_BYTES), record time if the
# record itself was valid)
LineReject = tuple[int, str, str, bytes, int | None]
# Amendments of one file: (hour index of the record, reason) -> count.
Amended = Counter[tuple[int, str]]


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
    """Row of a GPS fix (values as recorded; a missing heading or speed is None until the
    track rules derive it in ``Rules.parse_lines``)."""
    return {
        "id": rec.vehicle_id,
        "t": to_ms(rec.t),
        "lat": rec.lat,
        "lon": rec.lon,
        "heading": rec.heading,  # type: ignore[typeddict-item]
        "speed_kmh": rec.speed_kmh,  # type: ignore[typeddict-item]
        "state": rec.state.value,
    }


def aircraft_row(rec: AircraftPosition) -> AircraftRow:
    """Row of an aircraft fix (heading / speed None until the track rules derive them; the
    flight link is filled in later from the day's flights: ``chunker.batch.aircraft``)."""
    return {
        "id": rec.aircraft_id,
        "t": to_ms(rec.t),
        "lat": rec.lat,
        "lon": rec.lon,
        "heading": rec.track,  # type: ignore[typeddict-item]
        "speed_kmh": rec.ground_speed_kmh,  # type: ignore[typeddict-item]
        "on_ground": rec.on_ground,
        "altitude_m": rec.altitude_m,
        "icao24": rec.icao24,
        "registration": rec.registration,
        "callsign": rec.callsign,
        "flight_id": None,
        "stand": None,
        "at_stand": None,
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


def decision_row(rec: DispatchDecision) -> DecisionRow:
    """Row of a dispatch decision; its id is the task's (a decision is a task's event)."""
    candidates: list[CandidateRow] = [
        {
            "vehicle_id": c.vehicle_id,
            "state": None if c.state is None else c.state.value,
            "lat": c.lat,
            "lon": c.lon,
            "distance_m": c.distance_m,
            "free_at": _ms(c.free_at),
            "eta": _ms(c.eta),
            "on_time": c.on_time,
            "busy_ms": c.busy_ms,
            "score": c.score,
            "excluded": c.excluded,
        }
        for c in rec.candidates
    ]
    return {
        "id": rec.task_id,
        "t": to_ms(rec.t),
        "flight_id": rec.flight_id,
        "decision": rec.decision.value,
        "vehicle_id": rec.vehicle_id,
        "previous_vehicle_id": rec.previous_vehicle_id,
        "reason": rec.reason,
        "rule": rec.rule,
        "stand": rec.stand,
        "required_at": _ms(rec.required_at),
        "candidates": candidates,
    }


_ROW_BUILDERS: dict[str, tuple[type[RawRecord], Any]] = {
    "positions": (VehiclePosition, position_row),
    "tasks": (TaskEvent, task_row),
    "flights": (FlightEvent, flight_row),
    "notifications": (Notification, notification_row),
    "decisions": (DispatchDecision, decision_row),
    "aircraft": (AircraftPosition, aircraft_row),
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
    # Each vehicle's physical limits (chunker.batch.tracks); a vehicle not in it has the
    # most lenient of them (tests build Rules by hand).
    limits: dict[str, Limit] = field(default_factory=dict)
    aircraft_limit: Limit = field(default_factory=lambda: _aircraft_limit(MoverLimits()))
    _second_ms: dict[str, int] = field(default_factory=dict, repr=False)
    _position_fast: Callable[[bytes], VehicleRow | None] = field(init=False, repr=False)
    # The track screen the fast path keeps while parse_lines reads one file (see there).
    _screen: _Screen = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._screen = _Screen({}, set())
        self._screen.reset(self)
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
            limits={
                v.vehicle_id: _limits_for(v.vehicle_type, reference.mover_limits)
                for v in reference.vehicles
            },
            aircraft_limit=_aircraft_limit(reference.mover_limits),
        )

    def limit_of(self, vehicle_id: str) -> Limit:
        """A vehicle's physical limits."""
        found = self.limits.get(vehicle_id)
        return found if found is not None else _FALLBACK_LIMIT

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
        return self._parse_model(kind, line)[0]

    def _parse_model(self, kind: str, line: bytes) -> tuple[Row | Reject, list[str]]:
        """``parse_with_model`` and the amendments it made (positions and decisions)."""
        model, build = _ROW_BUILDERS[kind]
        amended: list[str] = []
        try:
            record = model.model_validate_json(line)
        except ValidationError as exc:
            retried: RawRecord | None
            if kind == "positions":
                retried = _without_unusable_values(
                    line, exc, amended, VehiclePosition, _OPTIONAL_POSITION_FIELDS
                )
            elif kind == "aircraft":
                retried = _without_unusable_values(
                    line, exc, amended, AircraftPosition, _OPTIONAL_AIRCRAFT_FIELDS
                )
            elif kind == "decisions":
                retried = _without_bad_candidates(line, exc, amended)
            else:
                retried = None
            if retried is None:
                return _schema_reject(exc), []
            record = retried
        row: Row = build(record)
        if kind == "positions":
            if isinstance(record, VehiclePosition) and record.on_ground is False:
                return Reject(AIRBORNE, "on_ground is false: not a surface fix"), []
            return self._check_position(row, amended), amended
        if kind == "aircraft":
            if isinstance(record, AircraftPosition) and record.on_ground is False:
                return Reject(AIRBORNE, "on_ground is false: not a surface fix"), []
            return self._check_fix(row, amended, self.aircraft_limit), amended
        if kind in ("tasks", "flights"):
            return self._check_stand_event(row), []
        if kind == "decisions":
            return self._check_decision(row, amended), amended
        return self._check_time(row), []

    def parse_lines(
        self, kind: str, lines: Iterable[tuple[int, bytes]], window: tuple[int, int] | None
    ) -> tuple[list[Row], list[LineReject], Amended]:
        """Every line of one file of ``kind``: accepted rows in file order, rejects, and
        the amendments made to accepted rows.

        File rules on top of ``parse``: in an hourly file (``window``) a record must fall in
        the file's hour, and a record repeating the latest record of the same entity and
        time is a duplicate (so dropping it can never change the state: ``A, B, A'`` keeps
        all three). Positions then get the track rules (``_apply_track_rules``). Positions
        are ~99% of the volume: the chunk job reads them through the columnar path
        (``chunker.batch.columnar.parse_positions``: the same result, as arrays), for which
        this loop is the reference (tests/test_columnar.py).
        """
        rows: list[Row] = []
        rejects = _Rejects()
        amended: Amended = Counter()
        latest: dict[tuple[str, int], Row] = {}
        # parse(kind, line), its fast path called directly (this loop is hot); a line the
        # fast path leaves to the model (rare) goes through the model itself.
        positions = kind in TRACK_KINDS
        fast = self._position_fast if kind == "positions" else None
        model = self._parse_model
        day_start = self.day.start_ms
        # The track screen: the fast path compares each fix with the previous one it
        # returned for the vehicle and flags the vehicle if they are not in strictly
        # increasing time or too far apart. A flagged vehicle gets the exact track rules
        # after the loop; so does one with a model-path fix (the screen did not see it).
        # Unflagged, a vehicle's fixes were all accepted in time order (a duplicate or an
        # out-of-hour fix repeats or leaves the time order) and the rules would change
        # nothing: the screen never passes what they reject (tested).
        screen = self._screen
        screen.reset(self)
        flagged = screen.flagged
        notes_of: dict[int, list[str]] = {}  # row index -> its amendments
        numbers = array("q")  # line number of each row, for the jumps' quarantine records
        result: Row | Reject | None
        for number, line in lines:
            result = fast(line) if fast is not None and len(line) <= MAX_LINE_BYTES else None
            notes: list[str] | None = None
            if result is None:
                if len(line) > MAX_LINE_BYTES:
                    # Lines are cut to MAX_LINE_BYTES + 1 when read: the true length is unknown.
                    result = Reject(LINE_TOO_LONG, f"longer than {MAX_LINE_BYTES} bytes")
                else:
                    result, notes = model(kind, line)
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
            if positions:
                numbers.append(number)
                if notes is not None:
                    flagged.add(identity[0])
            if notes:
                notes_of[len(rows) - 1] = notes
        dropped = (
            self._apply_track_rules(
                rows,
                numbers,
                set(flagged),
                rejects,
                self.limit_of if kind == "positions" else lambda _id: self.aircraft_limit,
            )
            if flagged
            else set()
        )
        for index, notes in notes_of.items():
            if index not in dropped:  # a rejected fix is not amended
                hour = (rows[index]["t"] - day_start) // HOUR_MS
                for note in notes:
                    amended[(hour, note)] += 1
        if dropped:
            rows = [r for i, r in enumerate(rows) if i not in dropped]
        return rows, rejects, amended

    @property
    def _kx_over_ky(self) -> float:
        return math.cos(math.radians((self.min_lat + self.max_lat) / 2))

    def _screen_terms(self, vehicle_id: str) -> tuple[float, float]:
        """A vehicle's jump screen in degrees of latitude: (tolerance, reach per ms).

        Slightly stricter than the exact rule (``_SCREEN_SLACK``: the screen projects every
        fix at the airport's mid latitude, the rule at its track's first fix), so the screen
        never passes what the rule would call a jump; a false alarm only costs the exact
        rules for that vehicle.
        """
        limit = self.limit_of(vehicle_id)
        return (
            limit.tolerance_m * _SCREEN_SLACK / EARTH_M_PER_DEG,
            limit.metres_per_ms * _SCREEN_SLACK / EARTH_M_PER_DEG,
        )

    def _apply_track_rules(
        self,
        rows: list[Row],
        numbers: array[int],
        flagged: set[str],
        rejects: _Rejects,
        limit_of: Callable[[str], Limit],
    ) -> set[int]:
        """The track rules for each flagged vehicle's fixes: jumps to quarantine (their row
        indices are returned), missing values derived in place (rows are not shared yet)."""
        by_vehicle: dict[str, list[int]] = {}
        for index, row in enumerate(rows):
            if row["id"] in flagged:
                by_vehicle.setdefault(row["id"], []).append(index)
        dropped: set[int] = set()
        for vehicle_id, indices in by_vehicle.items():
            indices.sort(key=lambda i: rows[i]["t"])  # stable: ties keep file order
            track = [rows[i] for i in indices]
            limit = limit_of(vehicle_id)
            jumps = set(
                implausible_jumps(
                    [r["t"] for r in track],
                    [r["lat"] for r in track],
                    [r["lon"] for r in track],
                    limit,
                )
            )
            previous_kept = -1
            for position, index in enumerate(indices):
                if position not in jumps:
                    previous_kept = position
                    continue
                row = rows[index]
                dropped.add(index)
                detail = _jump_detail(track, previous_kept, position, limit)
                # The line itself is not kept after reading: the quarantine holds the fix.
                record = orjson.dumps(dict(row))
                rejects.add(numbers[index], IMPLAUSIBLE_JUMP, detail, record, row["t"])
            kept = [r for p, r in enumerate(track) if p not in jumps]
            if not kept:
                continue
            headings, speeds = derive_motion(
                [r["t"] for r in kept],
                [r["lat"] for r in kept],
                [r["lon"] for r in kept],
                [r["heading"] for r in kept],
                [r["speed_kmh"] for r in kept],
            )
            for row, heading, speed in zip(kept, headings, speeds, strict=True):
                if row["heading"] is None or row["speed_kmh"] is None:
                    mutable: dict[str, Any] = row  # type: ignore[assignment]
                    mutable["heading"] = heading
                    mutable["speed_kmh"] = speed
        return dropped

    # --- semantic checks (shared by fast and model paths) ----------------------------------

    def _check_time(self, row: Row) -> Row | Reject:
        t = row["t"]
        day = self.day
        if not day.start_ms <= t < day.end_ms:
            return Reject(OUTSIDE_SERVICE_DAY, f"t={t} is outside {day.date_text}")
        return row

    def _check_position(self, row: Row, amended: list[str]) -> Row | Reject:
        """Line rules of a fix; a speed above its vehicle's limit is dropped (``amended``)."""
        checked = self._check_time(row)
        if checked is not row:
            return checked
        if row["id"] not in self.vehicle_ids:
            return Reject(UNKNOWN_VEHICLE, f"vehicle {row['id']!r} is not in the reference fleet")
        return self._check_fix(row, amended, self.limit_of(row["id"]))

    def _check_fix(self, row: Row, amended: list[str], limit: Limit) -> Row | Reject:
        """Line rules of any mover's fix: in the service day, inside the airport area; a
        speed above the mover's limit is dropped (``amended``)."""
        checked = self._check_time(row)
        if checked is not row:
            return checked
        if not (
            self.min_lat <= row["lat"] <= self.max_lat
            and self.min_lon <= row["lon"] <= self.max_lon
        ):
            return Reject(
                OUTSIDE_AIRPORT_AREA, f"({row['lat']}, {row['lon']}) is outside the airport area"
            )
        mutable: dict[str, Any] = row  # type: ignore[assignment]
        speed = row["speed_kmh"]
        if speed is not None and speed > limit.max_speed_kmh:
            mutable["speed_kmh"] = None
            amended.append(INVALID_SPEED)
        if row["heading"] is None and INVALID_HEADING not in amended:
            amended.append(MISSING_HEADING)
        if row["speed_kmh"] is None and INVALID_SPEED not in amended:
            amended.append(MISSING_SPEED)
        return row

    def _check_decision(self, row: Row, amended: list[str]) -> Row | Reject:
        """A decision's task fields are checked like a task event's (time, stand, vehicles);
        a candidate naming a vehicle outside the fleet is dropped (``amended``)."""
        checked = self._check_time(row)
        if checked is not row:
            return checked
        stand = row["stand"]
        if stand is not None and stand not in self.stand_ids:
            return Reject(UNKNOWN_STAND, f"stand {stand!r} is not in the reference layout")
        for name in ("vehicle_id", "previous_vehicle_id"):
            vehicle_id = row[name]
            if vehicle_id is not None and vehicle_id not in self.vehicle_ids:
                return Reject(
                    UNKNOWN_VEHICLE, f"{name} {vehicle_id!r} is not in the reference fleet"
                )
        known = [c for c in row["candidates"] if c["vehicle_id"] in self.vehicle_ids]
        if len(known) < len(row["candidates"]):
            amended.append(UNKNOWN_CANDIDATE)
            mutable: dict[str, Any] = row  # type: ignore[assignment]
            mutable["candidates"] = known
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
    airport area, heading in [0, 360), a canonical timestamp inside the
    service day, speed in [0, the vehicle's top speed], no other contract field. A closure,
    so the hot loop reads its rules as locals."""
    decode = _FIX_DECODER.decode
    states = _VEHICLE_STATES
    min_lat, max_lat, min_lon, max_lon = rules.min_lat, rules.max_lat, rules.min_lon, rules.max_lon
    day_lo, day_hi = rules.day.start_ms, rules.day.end_ms
    seconds, fast_ms = rules._second_ms, rules.fast_ms
    # vehicle id -> [previous t, lat, lon, tolerance, reach per ms, top speed km/h]: one
    # lookup is the fleet check, the speed rule's limit and the track screen's state.
    previous, flagged = rules._screen.previous, rules._screen.flagged
    kx2 = rules._kx_over_ky**2

    def position_fast(line: bytes) -> VehicleRow | None:
        try:
            fix = decode(line)
        except _DECODE_ERRORS:
            return None
        vehicle_id, lat, lon, heading, speed = (
            fix.vehicle_id,
            fix.lat,
            fix.lon,
            fix.heading,
            fix.speed_kmh,
        )
        before = previous.get(vehicle_id)
        # Comparisons are False for NaN: non-finite values fall through.
        if not (
            before is not None
            and fix.state in states
            and min_lat <= lat <= max_lat
            and min_lon <= lon <= max_lon
            and 0.0 <= heading < 360.0
            and 0.0 <= speed <= before[5]
        ):
            return None
        text = fix.t
        t: int | None = None
        if len(text) == 29 and text[19] == ".":  # the usual form: its second is cached
            base = seconds.get(text[:19] + text[23:])
            millis = _MILLIS.get(text[20:23])  # exactly three ASCII digits
            if base is not None and millis is not None:
                t = base + millis
        if t is None:
            t = fast_ms(text)
        if t is None or not day_lo <= t < day_hi:
            return None
        elapsed = t - before[0]
        dy = lat - before[1]
        dx = lon - before[2]
        reach = before[3] + before[4] * elapsed
        if elapsed <= 0 or dy * dy + dx * dx * kx2 > reach * reach:
            flagged.add(vehicle_id)
        before[0] = t
        before[1] = lat
        before[2] = lon
        return {
            "id": vehicle_id,
            "t": t,
            "lat": lat,
            "lon": lon,
            "heading": heading,
            "speed_kmh": speed,
            "state": fix.state,
        }

    return position_fast


@dataclass(slots=True)
class _Screen:
    """The fast path's track screen for one file: per fleet vehicle, its previous fix and
    limits ``[t, lat, lon, tolerance, reach per ms (degrees of latitude), top km/h]``, and
    the vehicles flagged."""

    previous: dict[str, list[Any]]
    flagged: set[str]

    def reset(self, rules: Rules) -> None:
        """Start a file: no previous fix (a first fix never flags), nothing flagged."""
        self.flagged.clear()
        self.previous.clear()
        for vehicle_id in rules.vehicle_ids:
            tolerance, per_ms = rules._screen_terms(vehicle_id)
            top = rules.limit_of(vehicle_id).max_speed_kmh
            self.previous[vehicle_id] = [_NO_FIX_YET, 0.0, 0.0, tolerance, per_ms, top]


_NO_FIX_YET = -(2**62)  # as a previous time: any reach, so a first fix is never flagged


# The screen's margin over the exact rule (the exact rule projects at each track's own
# latitude; the screen uses the airport's mid latitude for every fix).
_SCREEN_SLACK = 0.98
_FALLBACK_LIMIT = Limit(max(DEFAULT_MAX_SPEED_KMH.values()), 20.0, 3)


def _without_unusable_values(
    line: bytes,
    exc: ValidationError,
    amended: list[str],
    model: type[VehiclePosition] | type[AircraftPosition],
    optional: dict[str, str],
) -> VehiclePosition | AircraftPosition | None:
    """The record without its unusable optional values (``optional``: field -> the
    amendment its loss counts as), if only they failed; else None."""
    errors = exc.errors(include_url=False, include_input=False)
    if not errors or not all(e["loc"] and e["loc"][0] in optional for e in errors):
        return None
    fields = {str(e["loc"][0]) for e in errors}
    try:
        # The models' own JSON parser (orjson refuses 1e400, which pydantic reads as inf).
        document = from_json(line, allow_inf_nan=True)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for name in sorted(fields):
        document.pop(name, None)
        amended.append(optional[name])
    try:
        return model.model_validate(document)
    except ValidationError:
        return None


def _without_bad_candidates(
    line: bytes, exc: ValidationError, amended: list[str]
) -> DispatchDecision | None:
    """The decision without the candidates that broke the contract, if only they did
    (``amended`` gets INVALID_CANDIDATE); None if anything else is wrong."""
    bad: set[int] = set()
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        if len(loc) < 2 or loc[0] != "candidates" or not isinstance(loc[1], int):
            return None
        bad.add(loc[1])
    try:
        document = from_json(line, allow_inf_nan=True)  # as the model reads it (see above)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("candidates"), list):
        return None
    document["candidates"] = [c for i, c in enumerate(document["candidates"]) if i not in bad]
    try:
        record = DispatchDecision.model_validate(document)
    except ValidationError:
        return None
    amended.append(INVALID_CANDIDATE)
    return record


def _jump_detail(track: list[Row], previous: int, position: int, limit: Limit) -> str:
    row = track[position]
    if previous < 0:
        return (
            f"off its track: not followed by {limit.confirm_fixes} plausible fixes "
            f"(top speed {limit.max_speed_kmh:g} km/h)"
        )
    before = track[previous]
    flat = Flat(before["lat"], before["lon"])
    x, y = flat.xy(row["lat"], row["lon"])
    metres = math.hypot(x, y)
    seconds = (row["t"] - before["t"]) / 1000
    implied = metres / seconds * 3.6 if seconds > 0 else math.inf
    return (
        f"{metres:.0f} m from the previous accepted fix in {seconds:g} s "
        f"({implied:.0f} km/h > {limit.max_speed_kmh:g} km/h)"
    )
