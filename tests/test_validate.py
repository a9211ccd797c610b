"""Raw-line validation: the fast path equals the pydantic reference path; reasons are right."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunker.batch.tracks import Limit, implausible_jumps
from chunker.batch.validate import (
    AIRBORNE,
    INVALID_JSON,
    LINE_TOO_LONG,
    MAX_LINE_BYTES,
    OUTSIDE_AIRPORT_AREA,
    OUTSIDE_SERVICE_DAY,
    SCHEMA_VIOLATION,
    UNKNOWN_STAND,
    UNKNOWN_VEHICLE,
    Reject,
    Rules,
)
from chunker.format.day import ServiceDay, to_ms
from tests.rawday import tiny_reference

REFERENCE = tiny_reference()
DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")


def rules() -> Rules:
    return Rules.for_day(REFERENCE, DAY)


def rules_without_jumps() -> Rules:
    """Rules under which no fix is a jump (random test positions are kilometres apart, some
    at the same instant: a position tolerance beyond the airport's size)."""
    checker = rules()
    return dataclasses.replace(
        checker, limits={v: Limit(1e12, 1e9, 3) for v in checker.vehicle_ids}
    )


def position(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "t": "2026-03-14T08:00:01.250+08:00",
        "vehicle_id": "V01",
        "lat": 29.8001,
        "lon": 123.2003,
        "heading": 87.5,
        "speed_kmh": 18.2,
        "state": "en_route",
    }
    record.update(changes)
    return record


def line(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


# --- equivalence of the fast path and the model path -------------------------------------

valid_offsets = st.sampled_from(["Z", "+08:00", "-05:00", "+00:00", "+05:45"])
odd_offsets = st.sampled_from(["z", "+0800", "", "+24:00", "+08:00:00"])
valid_fractions = st.sampled_from(["", ".250", ".000", ".999"])
odd_fractions = st.sampled_from([".5", ".123456", ".0001", ".12a", ".１２３", "."])


@st.composite
def timestamps(draw: st.DrawFn, valid: bool) -> Any:
    moment = draw(
        st.datetimes(min_value=dt.datetime(2026, 3, 13, 12), max_value=dt.datetime(2026, 3, 14, 20))
    )
    if valid:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + draw(valid_fractions) + draw(valid_offsets)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=30)))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    fraction = draw(st.one_of(valid_fractions, odd_fractions))
    offset = draw(st.one_of(valid_offsets, odd_offsets))
    return moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + offset


odd_numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-400, max_value=400),
    st.integers(-400, 400),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.sampled_from([0.0, -0.0, 359.95, 359.96, 360.0, 200.0, 200.04, 90.0, -90.0, 10**30]),
)
PERTURBATIONS = [
    "t",
    "vehicle_id",
    "lat",
    "lon",
    "heading",
    "speed_kmh",
    "state",
    "drop",
    "extra",
    "int_heading",
    "truncate",
    "nan",
]


@st.composite
def position_lines(draw: st.DrawFn) -> bytes:
    """Mostly valid records; each with 0-2 perturbations of one kind or another."""
    record = position(
        t=draw(timestamps(valid=True)),
        vehicle_id=draw(st.sampled_from(["V01", "V02", "V05"])),
        lat=draw(st.floats(min_value=29.79, max_value=29.82)),
        lon=draw(st.floats(min_value=123.18, max_value=123.22)),
        heading=draw(st.floats(min_value=0, max_value=359.99)),
        speed_kmh=draw(st.floats(min_value=0, max_value=200)),
        state=draw(st.sampled_from(["idle", "en_route", "waiting", "servicing", "returning"])),
    )
    truncate = nan = False
    for change in draw(st.lists(st.sampled_from(PERTURBATIONS), max_size=2)):
        if change == "t":
            record["t"] = draw(timestamps(valid=False))
        elif change == "vehicle_id":
            record["vehicle_id"] = draw(st.sampled_from(["GHOST", "", "bad id", 7, None]))
        elif change == "state":
            record["state"] = draw(st.sampled_from(["parked", "IDLE", 3, None]))
        elif change in ("lat", "lon", "heading", "speed_kmh"):
            record[change] = draw(odd_numbers)
        elif change == "int_heading":
            record["heading"] = draw(st.integers(0, 359))
        elif change == "drop":
            record.pop(draw(st.sampled_from(sorted(record))), None)
        elif change == "extra":
            record["extra_field"] = draw(st.integers())
        elif change == "truncate":
            truncate = True
        else:
            nan = True
    text = line(record)
    if truncate:
        text = text[: draw(st.integers(0, len(text) - 1))]
    if nan:
        text = text.replace(b'"speed_kmh": ', b'"speed_kmh": NaN, "x": ')
    return text


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(position_lines())
def test_fast_path_equals_the_model_path(raw: bytes) -> None:
    checker = rules()
    assert checker.parse("positions", raw) == checker.parse_with_model("positions", raw)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 1, 1)),
    st.integers(-14 * 60, 14 * 60).map(lambda m: m - m % 15),
    st.booleans(),
)
def test_fast_timestamps_are_exact(moment: dt.datetime, offset_min: int, millis: bool) -> None:
    zone = dt.timezone(dt.timedelta(minutes=offset_min))
    aware = moment.replace(tzinfo=zone)
    text = aware.isoformat(timespec="milliseconds" if millis else "seconds")
    if offset_min == 0 and millis:
        text = text.replace("+00:00", "Z")
    kept = aware.microsecond // 1000 * 1000 if millis else 0
    assert rules().fast_ms(text) == to_ms(aware.replace(microsecond=kept))


def test_fast_path_accepts_the_canonical_record() -> None:
    row = rules().parse("positions", line(position()))
    assert row == {
        "id": "V01",
        "t": to_ms(dt.datetime(2026, 3, 14, 0, 0, 1, 250000, dt.UTC)),
        "lat": 29.8001,
        "lon": 123.2003,
        "heading": 87.5,
        "speed_kmh": 18.2,
        "state": "en_route",
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"t": "2026-03-14T08:00:01Z", "vehicle_id": ', INVALID_JSON),
        (b"\xff\xfe not utf-8", INVALID_JSON),
        (b"[1, 2]", SCHEMA_VIOLATION),
        (line(position(lat=95.0)), SCHEMA_VIOLATION),
        (line(position(on_ground=False)), AIRBORNE),
        (line(position(state="parked")), SCHEMA_VIOLATION),
        (line(position(t="2026-03-14T08:00:01")), SCHEMA_VIOLATION),  # no offset
        (line({k: v for k, v in position().items() if k != "lon"}), SCHEMA_VIOLATION),
        (line(position(lat=0.0, lon=0.0)), OUTSIDE_AIRPORT_AREA),
        (line(position(vehicle_id="GHOST")), UNKNOWN_VEHICLE),
        (line(position(t="2026-03-13T15:59:59.999Z")), OUTSIDE_SERVICE_DAY),
        (line(position(t="2026-03-14T16:00:00.000Z")), OUTSIDE_SERVICE_DAY),
        (b"x" * 70_000, LINE_TOO_LONG),
    ],
)
def test_rejections_carry_a_reason(raw: bytes, reason: str) -> None:
    result = rules().parse("positions", raw)
    assert isinstance(result, Reject)
    assert result.reason == reason
    assert result.detail


def test_day_bounds_are_inclusive_exclusive() -> None:
    first = rules().parse("positions", line(position(t="2026-03-13T16:00:00.000Z")))
    assert isinstance(first, dict) and first["t"] == DAY.start_ms


TASK = {
    "t": "2026-03-14T08:00:00Z",
    "task_id": "K1",
    "flight_id": "F1",
    "task_type": "refuel",
    "status": "assigned",
    "previous_status": "created",
    "vehicle_id": "V01",
    "stand": "S1",
    "planned_start": "2026-03-14T08:10:00Z",
    "planned_end": "2026-03-14T08:30:00Z",
}


def test_task_rows_and_reference_checks() -> None:
    checker = rules()
    row = checker.parse("tasks", orjson.dumps(TASK))
    assert isinstance(row, dict)
    assert row["id"] == "K1" and row["planned_start"] - row["t"] == 600_000
    assert row["actual_start"] is None
    stand = checker.parse("tasks", orjson.dumps({**TASK, "stand": "S9"}))
    assert isinstance(stand, Reject) and stand.reason == UNKNOWN_STAND
    vehicle = checker.parse("tasks", orjson.dumps({**TASK, "vehicle_id": "V99"}))
    assert isinstance(vehicle, Reject) and vehicle.reason == UNKNOWN_VEHICLE
    unassigned = checker.parse("tasks", orjson.dumps({**TASK, "vehicle_id": None}))
    assert isinstance(unassigned, dict) and unassigned["vehicle_id"] is None


def test_notification_text_survives_exactly() -> None:
    text = 'Bus 3 delayed 延误 "quoted"\nsecond line'
    raw = orjson.dumps(
        {
            "t": "2026-03-14T08:00:00Z",
            "notification_id": "M1",
            "level": "warning",
            "code": "task_late",
            "text": text,
        }
    )
    row = rules().parse("notifications", raw)
    assert isinstance(row, dict) and row["text"] == text


def test_non_finite_numbers_are_rejected_or_dropped() -> None:
    """A non-finite position is no fix; a non-finite heading is dropped, the fix kept."""
    raw = line(position()).replace(b"87.5", b"Infinity")
    row = rules().parse("positions", raw)
    assert isinstance(row, dict) and row["heading"] is None  # derived by parse_lines
    raw = line(position()).replace(b"29.8001", b"Infinity")
    result = rules().parse("positions", raw)
    assert isinstance(result, Reject) and result.reason == SCHEMA_VIOLATION


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(position_lines(), min_size=1, max_size=40),
    st.lists(st.integers(0, 39), max_size=10),
    st.booleans(),
)
def test_fast_file_loop_equals_the_reference_loop(
    lines: list[bytes], repeats: list[int], hourly: bool
) -> None:
    """parse_lines (the hot loop, fast path) == the model path per line plus the file rules
    restated here (hour window, duplicates), duplicates included."""
    for index in repeats:  # exact repeats, in and out of place
        if index < len(lines):
            lines.insert(min(len(lines), index + 1), lines[index])
    numbered = list(enumerate(lines, start=1))
    window = DAY.hour_window(8) if hourly else None
    checker = rules_without_jumps()
    rows: list[dict[str, Any]] = []
    rejects: list[tuple[int, str, str, bytes, int | None]] = []
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for number, raw in numbered:
        result = (
            Reject(LINE_TOO_LONG, f"longer than {MAX_LINE_BYTES} bytes")
            if len(raw) > MAX_LINE_BYTES
            else checker.parse_with_model("positions", raw)
        )
        if isinstance(result, Reject):
            rejects.append((number, result.reason, result.detail, raw[:4096], None))
        elif window is not None and not window[0] <= result["t"] < window[1]:
            detail = f"t={result['t']} is outside the file's hour"
            rejects.append((number, "outside_file_hour", detail, raw[:4096], None))
        elif latest.get((result["id"], result["t"])) == result:
            detail = "repeats the previous record"
            rejects.append((number, "duplicate", detail, raw[:4096], result["t"]))
        else:
            latest[(result["id"], result["t"])] = dict(result)
            rows.append(dict(result))
    got_rows, got_rejects, amended = checker.parse_lines("positions", iter(numbered), window)
    assert got_rejects == rejects
    assert len(got_rows) == len(rows)
    derived = 0
    for got, expected in zip(got_rows, rows, strict=True):
        # A missing or dropped heading / speed is derived: a value in range, the rest equal.
        for name, top in (("heading", 360.0), ("speed_kmh", 1e12)):
            if expected[name] is None:
                derived += 1
                assert 0.0 <= got[name] < top
                expected[name] = got[name]
        assert got == expected
    notes = sum(n for (_, reason), n in amended.items() if reason.endswith(("heading", "speed")))
    assert notes == derived


# --- the track screen: the hot loop's shortcut never changes what the track rules decide ---


@st.composite
def tracks(draw: st.DrawFn) -> list[bytes]:
    """1 Hz tracks of three vehicles with glitches, same-instant fixes, missing values."""
    lines: list[bytes] = []
    for vehicle in ("V01", "V02", "V05"):
        x = y = 0.0
        for second in range(draw(st.integers(1, 25))):
            x += draw(st.floats(-6, 6))
            y += draw(st.floats(-6, 6))
            fault = draw(st.sampled_from(["none"] * 6 + ["glitch", "twin", "bare"]))
            dx, dy = (
                (draw(st.floats(-1500, 1500)), draw(st.floats(-1500, 1500)))
                if fault == "glitch"
                else (0.0, 0.0)
            )
            record = position(
                t=f"2026-03-14T08:00:{second:02d}.000+08:00",
                vehicle_id=vehicle,
                lat=29.8005 + (y + dy) / 111_195,
                lon=123.2005 + (x + dx) / 96_480,
            )
            if fault == "bare":
                del record["heading"], record["speed_kmh"]
            lines.append(line(record))
            if fault == "twin":
                lines.append(line({**record, "lat": record["lat"] + 3e-5}))
    for _ in range(draw(st.integers(0, 4))):  # out of order and exact repeats
        i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
        lines.insert(j, lines[i])
    return lines


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tracks())
def test_the_track_screen_never_changes_the_track_rules(lines: list[bytes]) -> None:
    """parse_lines (fast path + screen) == the line rules, then the track rules applied to
    every vehicle (the exact path the screen skips for unflagged vehicles)."""
    checker = rules()
    numbered = list(enumerate(lines, start=1))
    rows, rejects, _ = checker.parse_lines("positions", iter(numbered), None)
    accepted: list[tuple[int, dict[str, Any]]] = []
    latest: dict[tuple[str, int], Any] = {}
    for number, raw in numbered:
        result = checker.parse_with_model("positions", raw)
        assert not isinstance(result, Reject)
        if latest.get((result["id"], result["t"])) == result:
            continue
        latest[(result["id"], result["t"])] = result
        accepted.append((number, dict(result)))
    expected_jumps: set[int] = set()
    for vehicle in {r["id"] for _, r in accepted}:
        track = sorted(((n, r) for n, r in accepted if r["id"] == vehicle), key=lambda p: p[1]["t"])
        jumps = implausible_jumps(
            [r["t"] for _, r in track],
            [r["lat"] for _, r in track],
            [r["lon"] for _, r in track],
            checker.limit_of(vehicle),
        )
        expected_jumps |= {track[i][0] for i in jumps}
    assert {n for n, reason, *_ in rejects if reason == "implausible_jump"} == expected_jumps
    kept = [(r["id"], r["t"], r["lat"]) for n, r in accepted if n not in expected_jumps]
    assert [(r["id"], r["t"], r["lat"]) for r in rows] == kept
    assert all(r["heading"] is not None and r["speed_kmh"] is not None for r in rows)
