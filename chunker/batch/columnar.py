"""The columnar position path: a raw positions file decoded into arrays, validated,
deduplicated, ordered and bucketed vectorised, and every row encoded once.

Positions are ~99 % of a day's records. The row path (``Rules.parse_lines`` +
``chunker.batch.build.build_hour``) spends a Python step, a dict and an ``orjson`` call
per fix; this path keeps a file's fixes as numpy columns from decoding to encoding:

1. **decode** a block of lines at a time with the row path's msgspec struct (``_Fix``), as
   one JSON array (one C call per block; a block that does not decode line for line is
   split until it does, so every line gets exactly the per-line decode's verdict);
2. **line rules** as array expressions: the fleet, the state, the airport area, heading
   and speed ranges, and canonical timestamps parsed from their digits. A line they do not
   accept goes to the row path's model (``Rules._parse_model``), which decides it and names
   the reason, exactly as in the row path;
3. **file rules**: the file's hour, the duplicate rule (a record equal to the latest
   record of its vehicle and time) and the track screen, vectorised over per-vehicle
   orderings; the vehicles the screen flags get the exact track rules
   (``chunker.batch.tracks``) as in the row path;
4. **build**: ticks, the last fix per vehicle in each tick, keyframes and the
   moving-vehicles histogram from sorted arrays; each fix that reaches a chunk is encoded
   as JSON once, and ticks and keyframes splice those bytes (``orjson.Fragment``).

The output is the row path's, byte for byte (``tests/test_columnar.py`` compares whole
published days of messy input); the row path stays the reference and serves the other
kinds. Why numpy and not pyarrow or polars: docs/performance.md ("Columnar positions").
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import orjson

from chunker.batch.tracks import derive_motion, implausible_jumps
from chunker.batch.validate import (
    _DECODE_ERRORS,
    _FIX_DECODER,
    _NO_FIX_YET,
    _VEHICLE_STATES,
    DUPLICATE,
    IMPLAUSIBLE_JUMP,
    LINE_TOO_LONG,
    MAX_LINE_BYTES,
    OUTSIDE_FILE_HOUR,
    Amended,
    LineReject,
    Reject,
    Rules,
    _Fix,
    _jump_detail,
    _Rejects,
)
from chunker.format.day import HOUR_MS
from chunker.format.rows import Row, VehicleRow

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

_BLOCK_DECODER = msgspec.json.Decoder(list[_Fix])
_SPLIT = 8  # a block that fails to decode is retried in this many parts
_SMALLEST_BLOCK = 16  # below this, lines are decoded one by one
STATES: tuple[str, ...] = tuple(sorted(_VEHICLE_STATES))
_STATE_CODE = {state: code for code, state in enumerate(STATES)}


@dataclass(slots=True)
class Fleet:
    """The vehicle codes of one ``Rules``: code = index in the fleet sorted by id, so code
    order is id order (keyframes list vehicles by id)."""

    ids: tuple[str, ...]
    code: dict[str, int]
    top_kmh: Floats  # speed limit per code
    tolerance: Floats  # the track screen's terms per code (degrees of latitude)
    per_ms: Floats

    @classmethod
    def of(cls, rules: Rules) -> Fleet:
        ids = tuple(sorted(rules.vehicle_ids))
        terms = [rules._screen_terms(v) for v in ids]
        return cls(
            ids=ids,
            code={v: i for i, v in enumerate(ids)},
            top_kmh=np.array([rules.limit_of(v).max_speed_kmh for v in ids], dtype=np.float64),
            tolerance=np.array([a for a, _ in terms], dtype=np.float64),
            per_ms=np.array([b for _, b in terms], dtype=np.float64),
        )


@dataclass(slots=True)
class PositionColumns:
    """Accepted fixes as columns (one entry per fix), heading and speed filled in."""

    fleet: Fleet
    t: Ints
    vehicle: Ints  # Fleet code
    lat: Floats
    lon: Floats
    heading: Floats
    speed: Floats
    state: Ints  # index into STATES
    line: Ints  # line number in its file

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: Ints | Mask | slice) -> PositionColumns:
        """The fixes at ``index`` (an index array, mask or slice), in that order."""
        return PositionColumns(
            self.fleet,
            self.t[index],
            self.vehicle[index],
            self.lat[index],
            self.lon[index],
            self.heading[index],
            self.speed[index],
            self.state[index],
            self.line[index],
        )

    @classmethod
    def concat(cls, fleet: Fleet, parts: Sequence[PositionColumns]) -> PositionColumns:
        """Fixes of ``parts`` one after the other."""
        if not parts:
            empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
            return cls(
                fleet, empty_i, empty_i, empty_f, empty_f, empty_f, empty_f, empty_i, empty_i
            )
        return cls(
            fleet,
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in ("t", "vehicle", "lat", "lon", "heading", "speed", "state", "line")
            ),
        )

    def by_time(self) -> PositionColumns:
        """Sorted by time; ties keep their order (``chunker.batch.run.by_time``)."""
        return self.take(np.argsort(self.t, kind="stable"))

    def row(self, i: int) -> VehicleRow:
        """Fix ``i`` as the row path's row."""
        return {
            "id": self.fleet.ids[int(self.vehicle[i])],
            "t": int(self.t[i]),
            "lat": float(self.lat[i]),
            "lon": float(self.lon[i]),
            "heading": float(self.heading[i]),
            "speed_kmh": float(self.speed[i]),
            "state": STATES[int(self.state[i])],
        }

    def rows(self) -> list[Row]:
        """Every fix as a row (for code that handles rows of any kind)."""
        ids = self.fleet.ids
        return [
            {
                "id": ids[v],
                "t": t,
                "lat": lat,
                "lon": lon,
                "heading": h,
                "speed_kmh": s,
                "state": STATES[st],
            }
            for v, t, lat, lon, h, s, st in zip(
                self.vehicle.tolist(),
                self.t.tolist(),
                self.lat.tolist(),
                self.lon.tolist(),
                self.heading.tolist(),
                self.speed.tolist(),
                self.state.tolist(),
                strict=True,
            )
        ]

    def latest_rows(self, before: int) -> dict[str, VehicleRow]:
        """Each vehicle's last fix with ``t < before`` (last in time, ties in order)."""
        index = np.flatnonzero(self.t < before)
        if not len(index):
            return {}
        order = index[np.argsort(self.t[index], kind="stable")]
        codes = self.vehicle[order][::-1]
        _, first = np.unique(codes, return_index=True)
        return {self.fleet.ids[int(self.vehicle[i])]: self.row(int(i)) for i in order[::-1][first]}

    def encoded(self) -> list[bytes]:
        """Each fix as the JSON ``orjson.dumps(self.row(i))`` gives, all in one pass: each
        column's values formatted by one ``orjson`` call (numpy arrays are written by the
        same float formatter as Python floats: tested), the pieces of all rows joined once
        and cut at the newline each row ends with (JSON text holds no raw newline)."""
        n = len(self)
        if not n:
            return []
        ids = [orjson.dumps(v) for v in self.fleet.ids]
        states = [b',"state":' + orjson.dumps(s) + b"}\n" for s in STATES]
        pieces = np.empty((n, 13), dtype=object)
        pieces[:, 0] = b'{"id":'
        pieces[:, 1] = np.array(ids, dtype=object)[self.vehicle]
        pieces[:, 2] = b',"t":'
        pieces[:, 3] = _texts(self.t)
        pieces[:, 4] = b',"lat":'
        pieces[:, 5] = _texts(self.lat)
        pieces[:, 6] = b',"lon":'
        pieces[:, 7] = _texts(self.lon)
        pieces[:, 8] = b',"heading":'
        pieces[:, 9] = _texts(self.heading)
        pieces[:, 10] = b',"speed_kmh":'
        pieces[:, 11] = _texts(self.speed)
        pieces[:, 12] = np.array(states, dtype=object)[self.state]
        return b"".join(pieces.ravel().tolist()).split(b"\n")[:-1]


def _texts(values: Ints | Floats) -> list[bytes]:
    """Each value as orjson writes it (one call for all)."""
    text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    return text[1:-1].split(b",")


# --- decoding -----------------------------------------------------------------------------


def decode_fixes(lines: Sequence[bytes]) -> list[_Fix | None]:
    """Each line decoded as the row path's fast path decodes it alone (None: it does not).

    A block of lines is decoded as one JSON array. It stands for the lines only if it
    decodes and has one element per line: a line can only add elements (``a},{b``), never
    remove one (``[,`` and ``,,`` are not JSON), so equal counts mean each element is its
    line. Otherwise the block is split, down to single lines.
    """
    if len(lines) < _SMALLEST_BLOCK:
        return [_decode_one(line) for line in lines]
    if max(map(len, lines)) <= MAX_LINE_BYTES:
        try:
            fixes = _BLOCK_DECODER.decode(b"[" + b",".join(lines) + b"]")
        except _DECODE_ERRORS:
            pass
        else:
            if len(fixes) == len(lines):
                return fixes  # type: ignore[return-value]
    step = -(-len(lines) // _SPLIT)
    out: list[_Fix | None] = []
    for start in range(0, len(lines), step):
        out.extend(decode_fixes(lines[start : start + step]))
    return out


def _decode_one(line: bytes) -> _Fix | None:
    if len(line) > MAX_LINE_BYTES:
        return None
    try:
        return _FIX_DECODER.decode(line)
    except _DECODE_ERRORS:
        return None


# --- timestamps -----------------------------------------------------------------------------

_DIGITS_29 = (0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 24, 25, 27, 28)
_MARKS_29 = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 26: ":"}
_MARK_COLUMNS = list(_MARKS_29)
_MARK_CODES = np.array([ord(mark) for mark in _MARKS_29.values()], dtype=np.uint8)
# The digits (in _DIGITS_29 order) -> year, month, day, hour, minute, second, millisecond,
# offset hours, offset minutes: one matrix product.
_FIELD_DIGITS = (4, 2, 2, 2, 2, 2, 3, 2, 2)
_FIELD_WEIGHTS = np.zeros((len(_DIGITS_29), len(_FIELD_DIGITS)), dtype=np.int64)
_row = 0
for _field, _count in enumerate(_FIELD_DIGITS):
    for _k in range(_count):
        _FIELD_WEIGHTS[_row, _field] = 10 ** (_count - 1 - _k)
        _row += 1
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_NO_TIME = np.iinfo(np.int64).min


def fast_times(texts: list[str], rules: Rules) -> Ints:
    """Epoch ms of each timestamp the row path's fast path reads (``_NO_TIME`` where it
    leaves the line to the model).

    The usual form ``YYYY-MM-DDTHH:MM:SS.fff±HH:MM`` is read from its digits as arrays,
    with the calendar checked (a form ``datetime.fromisoformat`` would refuse is not read
    here); every other string goes to ``Rules.fast_ms``, the row path's own reader.
    """
    n = len(texts)
    out = np.full(n, _NO_TIME, dtype=np.int64)
    if not n:
        return out
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
    usual = np.flatnonzero(lengths == 29)
    chars: npt.NDArray[np.bytes_] | None = None
    if len(usual):
        try:
            chars = np.array([texts[i] for i in usual.tolist()], dtype="S29")
        except UnicodeEncodeError:  # not ASCII: not the usual form; Rules.fast_ms decides
            chars = None
    if chars is not None:
        code = chars.view(np.uint8).reshape(len(usual), 29)
        ok = (code[:, _MARK_COLUMNS] == _MARK_CODES).all(axis=1)
        sign = code[:, 23]
        ok &= (sign == ord("+")) | (sign == ord("-"))
        digit = code[:, _DIGITS_29] - np.uint8(ord("0"))  # wraps: a non-digit is > 9
        ok &= (digit <= 9).all(axis=1)
        fields = digit.astype(np.int64) @ _FIELD_WEIGHTS
        year, month, day, hour, minute, second, millis, off_h, off_m = fields.T
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        days_in = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
        ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= days_in)
        ok &= (hour <= 23) & (minute <= 59) & (second <= 59) & (off_h <= 23) & (off_m <= 59)
        # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
        y = year - (month <= 2)
        era = y // 400
        yoe = y - era * 400
        doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
        doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
        days = era * 146_097 + doe - 719_468
        offset = (off_h * 60 + off_m) * 60_000 * np.where(sign == ord("+"), 1, -1)
        local = days * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000 + millis
        out[usual[ok]] = (local - offset)[ok]
    rest = np.flatnonzero(out == _NO_TIME)
    fast_ms = rules.fast_ms
    for i in rest.tolist():
        t = fast_ms(texts[i])
        if t is not None:
            out[i] = t
    return out


# --- one file -------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedPositions:
    """One positions file: accepted fixes (file order), rejected lines, amendments."""

    columns: PositionColumns
    rejects: list[LineReject]
    amended: Amended


# Lines validated at a time (whichever comes first): a file's lines are never all held.
_BLOCK_LINES = 16_384
_BLOCK_BYTES = 2 * 1024 * 1024


def parse_positions(
    rules: Rules,
    blocks: Iterable[tuple[Sequence[int], Sequence[bytes]]],
    window: tuple[int, int] | None,
    fleet: Fleet | None = None,
) -> ParsedPositions:
    """``Rules.parse_lines("positions", lines, window)`` as columns, over the file's
    (line numbers, lines) blocks (``raw_inputs.line_blocks``): the same accepted fixes with
    the same values, the same rejects in the same order (so a file refused for too many
    rejects is refused at the same line) and the same amendments.

    Lines are validated ``_BLOCK_LINES`` or so at a time; what the file rules need across
    blocks (each vehicle's previous fast-path fix for the track screen, the latest record of
    every (vehicle, t) for the duplicate rule) is carried as arrays.
    """
    scan = _FileScan(rules, fleet or Fleet.of(rules), window)
    numbers: list[int] = []
    texts: list[bytes] = []
    held = 0
    for block_numbers, block_lines in blocks:
        # A text block can hold ~350k tiny lines: taken a slice at a time.
        for start in range(0, len(block_lines), _BLOCK_LINES):
            some = block_lines[start : start + _BLOCK_LINES]
            if max(map(len, some)) > MAX_LINE_BYTES:
                # Rejected as too long whatever follows: keep what the reject needs.
                some = [line[: MAX_LINE_BYTES + 1] for line in some]
            numbers.extend(block_numbers[start : start + _BLOCK_LINES])
            texts.extend(some)
            held += sum(map(len, some))
            if len(texts) >= _BLOCK_LINES or held >= _BLOCK_BYTES:
                scan.block(numbers, texts)
                numbers, texts, held = [], [], 0
    if texts:
        scan.block(numbers, texts)
    return scan.finish()


class _FileScan:
    """The file rules of ``parse_positions``, one block at a time."""

    def __init__(self, rules: Rules, fleet: Fleet, window: tuple[int, int] | None) -> None:
        self.rules, self.fleet, self.window = rules, fleet, window
        self.rejects = _Rejects()
        self.blocks: list[PositionColumns] = []  # accepted fixes of each block
        self.notes: dict[int, list[str]] = {}  # line number -> amendments (model path)
        nv = len(fleet.ids)
        # Track screen: each vehicle's previous fast-path fix (t, lat, lon).
        self.prev_t = np.full(nv, _NO_FIX_YET, dtype=np.int64)
        self.prev_lat = np.zeros(nv)
        self.prev_lon = np.zeros(nv)
        self.flagged = np.zeros(nv, dtype=bool)
        # Duplicate rule: the latest record of every (vehicle, t) key so far, sorted by key.
        self.seen_key = np.zeros(0, dtype=np.int64)
        self.seen = np.zeros((0, 5))  # lat, lon, heading, speed, state

    def block(self, numbers: list[int], lines: list[bytes]) -> None:
        rules, fleet = self.rules, self.fleet
        n = len(lines)
        fixes = decode_fixes(lines)
        decoded = np.fromiter((f is not None for f in fixes), dtype=bool, count=n)
        ok = [f for f in fixes if f is not None]
        del fixes
        t = np.zeros(n, dtype=np.int64)
        vehicle = np.full(n, -1, dtype=np.int64)
        lat, lon = np.zeros(n), np.zeros(n)
        heading, speed = np.full(n, np.nan), np.full(n, np.nan)
        state = np.full(n, -1, dtype=np.int64)
        fast = np.zeros(n, dtype=bool)
        if ok:
            code = fleet.code
            vc = np.array([code.get(f.vehicle_id, -1) for f in ok], dtype=np.int64)
            sc = np.array([_STATE_CODE.get(f.state, -1) for f in ok], dtype=np.int64)
            la = np.array([f.lat for f in ok], dtype=np.float64)
            lo = np.array([f.lon for f in ok], dtype=np.float64)
            he = np.array([f.heading for f in ok], dtype=np.float64)
            sp = np.array([f.speed_kmh for f in ok], dtype=np.float64)
            tt = fast_times([f.t for f in ok], rules)
            known = vc >= 0
            # The fast path's checks (validate._position_rule); NaN compares False.
            accepted = (
                known
                & (sc >= 0)
                & (rules.min_lat <= la)
                & (la <= rules.max_lat)
                & (rules.min_lon <= lo)
                & (lo <= rules.max_lon)
                & (he >= 0.0)
                & (he < 360.0)
                & (sp >= 0.0)
                & (sp <= np.where(known, fleet.top_kmh[np.maximum(vc, 0)], -1.0))
                & (tt != _NO_TIME)
                & (rules.day.start_ms <= tt)
                & (tt < rules.day.end_ms)
            )
            where = np.flatnonzero(decoded)[accepted]
            t[where], vehicle[where], state[where] = tt[accepted], vc[accepted], sc[accepted]
            lat[where], lon[where] = la[accepted], lo[accepted]
            heading[where], speed[where] = he[accepted], sp[accepted]
            fast[where] = True
        del ok
        # Every other line: the row path's model decides it and names the reason.
        rejected: list[tuple[int, str, str, int | None]] = []  # (index, reason, detail, t)
        model = np.zeros(n, dtype=bool)
        for i in np.flatnonzero(~fast).tolist():
            line = lines[i]
            if len(line) > MAX_LINE_BYTES:
                rejected.append((i, LINE_TOO_LONG, f"longer than {MAX_LINE_BYTES} bytes", None))
                continue
            result, notes = rules._parse_model("positions", line)
            if type(result) is Reject:
                rejected.append((i, result.reason, result.detail, None))
                continue
            row: Any = result
            t[i], vehicle[i] = row["t"], fleet.code[row["id"]]
            state[i] = _STATE_CODE[row["state"]]
            lat[i], lon[i] = row["lat"], row["lon"]
            heading[i] = math.nan if row["heading"] is None else row["heading"]
            speed[i] = math.nan if row["speed_kmh"] is None else row["speed_kmh"]
            model[i] = True
            self.notes[numbers[i]] = notes
        self._screen(fast, t, vehicle, lat, lon)
        accepted_rows = fast | model
        keep = accepted_rows.copy()
        window = self.window
        if window is not None:
            keep &= (window[0] <= t) & (t < window[1])
            for i in np.flatnonzero(accepted_rows & ~keep).tolist():
                rejected.append(
                    (i, OUTSIDE_FILE_HOUR, f"t={t[i]} is outside the file's hour", None)
                )
        duplicate = self._duplicates(keep, t, vehicle, lat, lon, heading, speed, state)
        for i in np.flatnonzero(duplicate).tolist():
            rejected.append((i, DUPLICATE, "repeats the previous record", int(t[i])))
        keep &= ~duplicate
        for i in np.flatnonzero(~keep & model).tolist():
            del self.notes[numbers[i]]  # not an accepted row: its notes do not count
        self.flagged[vehicle[keep & model]] = True
        rejected.sort(key=lambda r: r[0])  # in line order, as the row path meets them
        add = self.rejects.add
        for i, reason, detail, t_valid in rejected:
            add(numbers[i], reason, detail, lines[i], t_valid)
        index = np.flatnonzero(keep)
        self.blocks.append(
            PositionColumns(
                fleet,
                t[index],
                vehicle[index],
                lat[index],
                lon[index],
                heading[index],
                speed[index],
                state[index],
                np.array(numbers, dtype=np.int64)[index],
            )
        )

    def _screen(self, fast: Mask, t: Ints, vehicle: Ints, lat: Floats, lon: Floats) -> None:
        """The row path's track screen: flag a vehicle whose fast-path fix is not strictly
        after, or is too far from, its previous fast-path fix in file order."""
        index = np.flatnonzero(fast)
        if not len(index):
            return
        fleet = self.fleet
        order = index[np.argsort(vehicle[index], kind="stable")]
        v = vehicle[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = v[1:] != v[:-1]
        previous = np.roll(order, 1)
        tt = t[order]
        elapsed = tt - np.where(first, self.prev_t[v], t[previous])
        dy = lat[order] - np.where(first, self.prev_lat[v], lat[previous])
        dx = lon[order] - np.where(first, self.prev_lon[v], lon[previous])
        kx2 = self.rules._kx_over_ky**2
        reach = fleet.tolerance[v] + fleet.per_ms[v] * elapsed.astype(np.float64)
        bad = (elapsed <= 0) | (dy * dy + dx * dx * kx2 > reach * reach)
        self.flagged[v[bad]] = True
        last = np.ones(len(order), dtype=bool)
        last[:-1] = v[1:] != v[:-1]
        self.prev_t[v[last]] = tt[last]
        self.prev_lat[v[last]] = lat[order][last]
        self.prev_lon[v[last]] = lon[order][last]

    def _duplicates(
        self,
        rows: Mask,
        t: Ints,
        vehicle: Ints,
        lat: Floats,
        lon: Floats,
        heading: Floats,
        speed: Floats,
        state: Ints,
    ) -> Mask:
        """The duplicate rule over the ``rows`` mask: a record equal to the latest record of
        its (vehicle, t). Equality is transitive here (no NaN; ``-0.0 == 0.0`` as for the row
        dicts), so that is: equal to the previous record of its key in file order, or, for
        the first of its key in the block, to the latest one of earlier blocks."""
        out = np.zeros(len(t), dtype=bool)
        index = np.flatnonzero(rows)
        if not len(index):
            return out
        key = vehicle[index] * (1 << 44) + (t[index] - self.rules.day.start_ms + (1 << 42))
        order = np.argsort(key, kind="stable")
        rows_sorted = index[order]
        keys = key[order]
        values = np.stack(
            [lat[rows_sorted], lon[rows_sorted], heading[rows_sorted], speed[rows_sorted],
             state[rows_sorted].astype(np.float64)],
            axis=1,
        )  # fmt: skip
        first = np.ones(len(keys), dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        before = np.empty_like(values)
        before[1:] = values[:-1]
        known = np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(self.seen_key, keys)
        inside = at < len(self.seen_key)
        known[inside] = self.seen_key[at[inside]] == keys[inside]
        from_seen = first & known
        before[from_seen] = self.seen[at[from_seen]]
        compare = ~first | from_seen
        equal = ((before == values) | (np.isnan(before) & np.isnan(values))).all(axis=1)
        out[rows_sorted[compare & equal]] = True
        # The latest record of each key of the block (a duplicate equals it anyway).
        last = np.ones(len(keys), dtype=bool)
        last[:-1] = keys[1:] != keys[:-1]
        last_keys, last_values = keys[last], values[last]
        at = np.searchsorted(self.seen_key, last_keys)
        inside = at < len(self.seen_key)
        update = np.zeros(len(last_keys), dtype=bool)
        update[inside] = self.seen_key[at[inside]] == last_keys[inside]
        self.seen[at[update]] = last_values[update]
        new = ~update
        self.seen_key = np.insert(self.seen_key, at[new], last_keys[new])
        self.seen = np.insert(self.seen, at[new], last_values[new], axis=0)
        return out

    def finish(self) -> ParsedPositions:
        fleet, rules = self.fleet, self.rules
        columns = PositionColumns.concat(fleet, self.blocks)
        self.blocks = []
        dropped = _track_rules(rules, columns, self.flagged, self.rejects)
        amended: Amended = Counter()
        if self.notes:
            day_start = rules.day.start_ms
            position = {n: p for p, n in enumerate(columns.line.tolist())}
            for number, notes in self.notes.items():
                p = position[number]
                if not dropped[p]:  # a rejected fix is not amended
                    hour = (int(columns.t[p]) - day_start) // HOUR_MS
                    for note in notes:
                        amended[(hour, note)] += 1
        if dropped.any():
            columns = columns.take(~dropped)
        return ParsedPositions(columns, self.rejects, amended)


def _track_rules(rules: Rules, columns: PositionColumns, flagged: Mask, rejects: _Rejects) -> Mask:
    """``Rules._apply_track_rules`` on columns: jumps quarantined (returned as a mask of
    dropped fixes), missing heading and speed derived in place."""
    dropped = np.zeros(len(columns), dtype=bool)
    candidates = np.flatnonzero(flagged[columns.vehicle])
    if not len(candidates):
        return dropped
    codes = columns.vehicle[candidates]
    # Vehicles in the order of their first fix, as the row path meets them.
    _, first = np.unique(codes, return_index=True)
    ids = columns.fleet.ids
    for code in codes[np.sort(first)].tolist():
        indices = candidates[codes == code]
        indices = indices[np.argsort(columns.t[indices], kind="stable")]
        vehicle_id = ids[code]
        limit = rules.limit_of(vehicle_id)
        t = columns.t[indices].tolist()
        lat = columns.lat[indices].tolist()
        lon = columns.lon[indices].tolist()
        jumps = set(implausible_jumps(t, lat, lon, limit))
        if jumps:
            track: list[Row] = [_raw_row(columns, int(i)) for i in indices.tolist()]
            previous_kept = -1
            for position, index in enumerate(indices.tolist()):
                if position not in jumps:
                    previous_kept = position
                    continue
                dropped[index] = True
                detail = _jump_detail(track, previous_kept, position, limit)
                record = orjson.dumps(track[position])
                rejects.add(int(columns.line[index]), IMPLAUSIBLE_JUMP, detail, record, t[position])
            indices = indices[~dropped[indices]]
        if not len(indices):
            continue
        heading, speed = columns.heading[indices], columns.speed[indices]
        missing = np.isnan(heading) | np.isnan(speed)
        if not missing.any():
            continue
        headings, speeds = derive_motion(
            columns.t[indices].tolist(),
            columns.lat[indices].tolist(),
            columns.lon[indices].tolist(),
            [None if math.isnan(h) else h for h in heading.tolist()],
            [None if math.isnan(s) else s for s in speed.tolist()],
        )
        fill = indices[missing]
        columns.heading[fill] = np.array(headings)[missing]
        columns.speed[fill] = np.array(speeds)[missing]
    return dropped


def _raw_row(columns: PositionColumns, i: int) -> dict[str, Any]:
    """Fix ``i`` as the row path holds it before the track rules (None: missing)."""
    row: dict[str, Any] = dict(columns.row(i))
    for name, values in (("heading", columns.heading), ("speed_kmh", columns.speed)):
        if math.isnan(values[i]):
            row[name] = None
    return row
