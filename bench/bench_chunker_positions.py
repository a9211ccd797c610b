"""The position hot loop, A/B: ``Rules.parse_lines("positions", ...)`` (tolerant position
rules and the track screen, #18) against the loop it replaced (``baseline_parse_positions``:
the #16 loop and its fast path, kept here verbatim), on the same lines in the same run.

Called by ``bench chunker`` on the busiest hour's position files of its synthetic day.
Whole passes per loop, alternating which goes first, each with fresh ``Rules`` (a cold
timestamp cache, as a new run has), best of ``repeat``; the two must give equal results
(the synthetic day is clean: no jump, no missing value, so the rules agree on it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from chunker.batch.validate import (
    _DECODE_ERRORS,
    _VEHICLE_STATES,
    DUPLICATE,
    MAX_LINE_BYTES,
    OUTSIDE_FILE_HOUR,
    LineReject,
    Reject,
    Rules,
    _Rejects,
)
from chunker.format.rows import Row, VehicleRow


class _BaselineFix(msgspec.Struct):
    """The #16 fast path's struct: heading and speed required."""

    t: str
    vehicle_id: str
    lat: float
    lon: float
    heading: float
    speed_kmh: float
    state: str


_BASELINE_DECODER = msgspec.json.Decoder(_BaselineFix)


def _baseline_position_rule(rules: Rules) -> Callable[[bytes], VehicleRow | None]:
    """``chunker.batch.validate._position_rule`` before #18."""
    decode = _BASELINE_DECODER.decode
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


def baseline_parse_positions(
    rules: Rules, lines: Iterable[tuple[int, bytes]], window: tuple[int, int] | None
) -> tuple[list[Row], list[LineReject]]:
    """``Rules.parse_lines("positions", ...)`` before #18 (self -> rules)."""
    rows: list[Row] = []
    rejects = _Rejects()
    latest: dict[tuple[str, int], Row] = {}
    fast = _baseline_position_rule(rules)
    parse = rules.parse
    result: Row | Reject | None
    for number, line in lines:
        result = fast(line) if len(line) <= MAX_LINE_BYTES else None
        if result is None:
            result = parse("positions", line)
        if type(result) is Reject:
            rejects.add(number, result.reason, result.detail, line, None)
            continue
        row: Row = result  # type: ignore[assignment]
        t = row["t"]
        if window is not None and not window[0] <= t < window[1]:
            rejects.add(number, OUTSIDE_FILE_HOUR, f"t={t} is outside the file's hour", line, None)
            continue
        identity = (row["id"], t)
        if latest.get(identity) == row:
            rejects.add(number, DUPLICATE, "repeats the previous record", line, t)
            continue
        latest[identity] = row
        rows.append(row)
    return rows, rejects


def position_loop_ab(
    make_rules: Any,
    files: list[tuple[list[tuple[int, bytes]], tuple[int, int] | None]],
    repeat: int = 5,
) -> dict[str, float | int]:
    """Positions/s of both loops over ``files`` ((numbered lines, window) each)."""
    count = sum(len(lines) for lines, _ in files)

    def now(rules: Rules) -> list[Any]:
        return [rules.parse_lines("positions", iter(lines), window)[:2] for lines, window in files]

    def before(rules: Rules) -> list[Any]:
        return [baseline_parse_positions(rules, iter(lines), window) for lines, window in files]

    if now(make_rules()) != before(make_rules()):
        raise AssertionError("the position loops disagree")
    best = {"now": float("inf"), "before": float("inf")}
    loops = [("now", now), ("before", before)]
    for attempt in range(repeat):
        for name, loop in loops if attempt % 2 == 0 else loops[::-1]:
            rules = make_rules()
            started = time.perf_counter()
            loop(rules)
            best[name] = min(best[name], time.perf_counter() - started)
    return {
        "lines": count,
        "positions_per_s": round(count / best["now"]),
        "baseline_positions_per_s": round(count / best["before"]),
        "over_baseline": round(best["before"] / best["now"], 3),
    }
