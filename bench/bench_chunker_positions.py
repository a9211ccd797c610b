"""The position hot loop, A/B: ``Rules.parse_lines("positions", ...)`` (one rule of a valid
position, #16) against the loop it replaced (``baseline_parse_positions``, kept here
verbatim: its own inlined copy of the fast checks), on the same lines in the same run.

Called by ``bench chunker`` on the busiest hour's position files of its synthetic day.
Whole passes per loop, alternating which goes first, each with fresh ``Rules`` (a cold
timestamp cache, as a new run has), best of ``repeat``; the two must give equal results.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec

from chunker.batch.validate import (
    _FIX_DECODER,
    _VEHICLE_STATES,
    DUPLICATE,
    MAX_LINE_BYTES,
    OUTSIDE_FILE_HOUR,
    LineReject,
    Reject,
    Rules,
    _Fix,
    _Rejects,
)
from chunker.format.rows import Row


def baseline_parse_positions(
    rules: Rules, lines: Iterable[tuple[int, bytes]], window: tuple[int, int] | None
) -> tuple[list[Row], list[LineReject]]:
    """``Rules.parse_positions`` before #16 (self -> rules)."""
    decode = _FIX_DECODER.decode
    decode_error = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
    vehicles = rules.vehicle_ids
    states = _VEHICLE_STATES
    cache = rules._second_ms
    fast_ms = rules.fast_ms
    parse = rules.parse
    day_lo, day_hi = rules.day.start_ms, rules.day.end_ms
    lo, hi = window if window is not None else (day_lo, day_hi)
    min_lat, max_lat, min_lon, max_lon = rules.min_lat, rules.max_lat, rules.min_lon, rules.max_lon
    rows: list[Row] = []
    rejects = _Rejects()
    latest: dict[tuple[str, int], Row] = {}
    row: Row | None
    t: int
    for number, line in lines:
        row = None
        if len(line) <= MAX_LINE_BYTES:
            try:
                fix: _Fix | None = decode(line)
            except decode_error:
                fix = None
            if fix is not None:
                text = fix.t
                vehicle_id = fix.vehicle_id
                lat = fix.lat
                lon = fix.lon
                heading = fix.heading
                speed = fix.speed_kmh
                state = fix.state
                if (
                    vehicle_id in vehicles
                    and state in states
                    and min_lat <= lat <= max_lat
                    and min_lon <= lon <= max_lon
                    and 0.0 <= heading < 360.0
                    and 0.0 <= speed <= 200.0
                ):
                    parsed: int | None = None
                    if len(text) == 29 and text[19] == ".":
                        base = cache.get(text[:19] + text[23:])
                        digits = text[20:23]
                        if base is not None and digits.isdigit() and digits.isascii():
                            parsed = base + int(digits)
                    if parsed is None:
                        parsed = fast_ms(text)
                    if parsed is not None and day_lo <= parsed < day_hi:
                        t = parsed
                        row = {
                            "id": vehicle_id,
                            "t": t,
                            "lat": lat,
                            "lon": lon,
                            "heading": heading,
                            "speed_kmh": speed,
                            "state": state,
                        }
        if row is None:
            result = parse("positions", line)
            if isinstance(result, Reject):
                rejects.add(number, result.reason, result.detail, line, None)
                continue
            row = result
            t = result["t"]
        if not lo <= t < hi:
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
        return [rules.parse_lines("positions", iter(lines), window) for lines, window in files]

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
