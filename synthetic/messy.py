"""Make a clean raw file look like a real export: bad lines, duplicates, disorder.

Each line is affected with probability ``fraction``; what happens to it is drawn from a
per-kind mix. Corruptions replace the line (so the record is lost, and the chunker must
reject the line with the reason recorded here); duplicates add an exact copy later in the
same file; reorders move the line elsewhere in the file (not an error). Some position
faults keep the fix (the contract is tolerant): a fix without heading and speed, or with
an impossible speed, is *amended* (the value dropped and derived), not lost. The tallies
let tests check the chunker's rejection and amendment counts exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

import orjson

from chunker.batch.validate import (
    DUPLICATE,
    INVALID_JSON,
    INVALID_SPEED,
    MISSING_HEADING,
    MISSING_SPEED,
    OUTSIDE_AIRPORT_AREA,
    SCHEMA_VIOLATION,
    UNKNOWN_VEHICLE,
)

# What a messy line becomes -> relative weight, per record kind.
POSITION_MIX = {
    "truncated": 18,
    "not_utf8": 4,
    "missing_field": 12,
    "wrong_type": 8,
    "out_of_range": 6,
    "off_airport": 8,
    "unknown_vehicle": 6,
    "duplicate": 22,
    "out_of_order": 16,
    "no_motion": 6,  # heading and speed missing, as in ADS-B-derived tracks: kept
    "impossible_speed": 4,  # a speed no vehicle does: dropped, the fix kept
}
# Position faults that keep the fix -> the amendments the chunker must count.
AMENDMENTS = {
    "no_motion": (MISSING_HEADING, MISSING_SPEED),
    "impossible_speed": (INVALID_SPEED,),
}
EVENT_MIX = {
    "truncated": 20,
    "missing_field": 20,
    "wrong_type": 10,
    "duplicate": 30,
    "out_of_order": 20,
}
REASON = {
    "truncated": INVALID_JSON,
    "not_utf8": INVALID_JSON,
    "missing_field": SCHEMA_VIOLATION,
    "wrong_type": SCHEMA_VIOLATION,
    "out_of_range": SCHEMA_VIOLATION,
    "off_airport": OUTSIDE_AIRPORT_AREA,
    "unknown_vehicle": UNKNOWN_VEHICLE,
    "duplicate": DUPLICATE,
}
REQUIRED = {
    "positions": "state",
    "tasks": "status",
    "flights": "status",
    "notifications": "level",
    "decisions": "decision",
}


@dataclass
class Tally:
    """What was injected, and the rejections the chunker should therefore report."""

    injected: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)  # records replaced, per kind
    amendments: Counter[str] = field(default_factory=Counter)  # kept fixes' dropped values


def _corrupt(kind: str, line: bytes, what: str, rng: random.Random) -> bytes:
    if what == "truncated":
        return line[: rng.randrange(1, len(line) - 1)]
    if what == "not_utf8":
        return line[:10] + b"\xff\xfe" + line[12:]
    record = orjson.loads(line)
    if what == "missing_field":
        del record[REQUIRED[kind]]
    elif what == "wrong_type":
        field_name = "lat" if kind == "positions" else "t"
        record[field_name] = "north" if kind == "positions" else "yesterday"
    elif what == "no_motion":
        del record["heading"], record["speed_kmh"]
    elif what == "impossible_speed":
        record["speed_kmh"] = 999.0
    elif what == "out_of_range":
        record["lat"] = 91.0 + rng.random()
    elif what == "off_airport":
        record["lat"] = record["lat"] + 0.4
    elif what == "unknown_vehicle":
        record["vehicle_id"] = "ZZ-99"
    return orjson.dumps(record)


def mess_up(
    kind: str, lines: list[bytes], fraction: float, rng: random.Random, tally: Tally
) -> list[bytes]:
    """A messy copy of one file's lines (in file order)."""
    if fraction <= 0 or not lines:
        return lines
    mix = POSITION_MIX if kind == "positions" else EVENT_MIX
    choices, weights = list(mix), list(mix.values())
    out = list(lines)
    extra: list[tuple[int, bytes]] = []  # (insert after index, line)
    for index, line in enumerate(lines):
        if rng.random() >= fraction:
            continue
        what = rng.choices(choices, weights)[0]
        tally.injected[what] += 1
        if what == "duplicate":
            extra.append((rng.randrange(index, len(lines)), line))
            tally.rejections[DUPLICATE] += 1
        elif what == "out_of_order":
            extra.append((rng.randrange(0, len(lines)), line))
            out[index] = b""
        elif what in AMENDMENTS:
            out[index] = _corrupt(kind, line, what, rng)
            tally.amendments.update(AMENDMENTS[what])
        else:
            out[index] = _corrupt(kind, line, what, rng)
            tally.rejections[REASON[what]] += 1
            tally.lost[kind] += 1
    if not extra:
        return out
    inserts: dict[int, list[bytes]] = {}
    for after, line in extra:
        inserts.setdefault(after, []).append(line)
    result: list[bytes] = []
    for index, line in enumerate(out):
        if line:
            result.append(line)
        result.extend(inserts.get(index, ()))
    return result
