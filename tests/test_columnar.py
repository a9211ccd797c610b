"""The columnar position path (chunker.batch.columnar) against the row path it replaces.

The row path (``Rules.parse_lines`` + ``build_hour``) is the reference: on a day of messy
input — out-of-order lines, exact duplicates, bad lines, timestamps in every style, fixes
without heading or speed, impossible speeds, implausible jumps — both publish the same
objects byte for byte, so the tolerant rules, quarantine counts and reasons are unchanged.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunker.batch.columnar import _NO_TIME, Fleet, decode_fixes, fast_times, parse_positions
from chunker.batch.raw_inputs import iter_lines, line_blocks
from chunker.batch.run import chunk_day
from chunker.batch.validate import IMPLAUSIBLE_JUMP, Rules
from chunker.format.encoding import ChunkerConfig
from chunker.format.s3 import s3_client
from synthetic import GeneratorSettings, generate_day
from tests.conftest import module_bucket
from tests.rawday import RawDayBuilder, _p, build_raw_day, iso

# Few, large chunks (the rules under test are per fix, not per chunk): fewer S3 writes.
CONFIG = ChunkerConfig(bucket_ms=900_000, tick_ms=1_000, histogram_bin_ms=900_000)


def _tracks_with_glitches(builder: RawDayBuilder) -> None:
    """Fixes the track rules act on: jumps, missing and unusable heading/speed, a glitch
    as first fix, a recording that resumes elsewhere, equal fixes with -0.0."""
    start = builder.day.start_ms + 3_600_000 + 17
    for n, vehicle_id in enumerate(("V01", "V02", "V03")):
        x, y = 100.0 * n, 20.0
        for i in range(240):
            t = start + i * 1000 + n
            x += 3.0
            p = _p(x, y)
            record: dict[str, Any] = {
                "t": iso(t, i % 2),
                "vehicle_id": vehicle_id,
                "lat": p.lat,
                "lon": p.lon,
                "heading": 90.0,
                "speed_kmh": 10.8,
                "state": "en_route",
            }
            if i % 7 == 3:
                del record["heading"], record["speed_kmh"]  # derived from neighbours
            if i % 11 == 5:
                record["speed_kmh"] = 400.0  # above the type's top speed: dropped
            if i % 13 == 6:
                record["heading"] = "north"  # unusable: dropped
            if i == 0 and n == 1:
                q = _p(x + 5_000, y)  # a glitch as the track's first fix
                record = {**record, "lat": q.lat, "lon": q.lon}
            if i in (50, 51) and n == 0:
                q = _p(x + 3_000, y + 2_000)  # two glitches in a row
                record = {**record, "lat": q.lat, "lon": q.lon}
            if i >= 200 and n == 2:
                q = _p(x - 400, y + 100)  # resumes elsewhere for good
                record = {**record, "lat": q.lat, "lon": q.lon}
            if i % 19 == 0 and "heading" in record:
                record["heading"] = 0.0
                builder.add("positions", t, record)
                record = {**record, "heading": -0.0}  # equal to the fix before: a duplicate
            builder.add("positions", t, record)
            if i % 17 == 0:
                builder.add("positions", t, record)  # an exact duplicate
    lines = builder.lines[("positions", 1)]
    lines[len(lines) // 2 :] = lines[len(lines) // 2 :][::-1]  # half the hour out of order


def _messy_day() -> dict[str, dict[str, bytes]]:
    builder = build_raw_day(seed=11, hours=(0, 3), vehicles=6)
    _tracks_with_glitches(builder)
    return {"hourly": builder.objects("hourly"), "day": builder.objects("day")}


def _published(s3: Any, bucket: str) -> dict[str, bytes]:
    """Every object chunking wrote (the pointer carries its write time: left out)."""
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if not key.startswith(("raw/", "published/")):
                found[key] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return found


@pytest.fixture(scope="module")
def both_paths() -> dict[str, dict[str, dict[str, bytes]]]:
    """layout -> path -> the objects a chunk run of the messy day published."""
    days = _messy_day()
    out: dict[str, dict[str, dict[str, bytes]]] = {}
    with module_bucket():
        s3 = s3_client()
        for layout, objects in days.items():
            for path in ("rows", "columnar"):
                bucket = f"columnar-{layout}-{path}"
                s3.create_bucket(Bucket=bucket)
                for key, body in objects.items():
                    s3.put_object(Bucket=bucket, Key=key, Body=body)
                # Two jobs: the second starts from state folded from the raw files.
                chunk_day(s3, bucket, "XTST", "2026-03-14", CONFIG, jobs=2, position_path=path)
                out.setdefault(layout, {})[path] = _published(s3, bucket)
    return out


@pytest.mark.parametrize("layout", ["hourly", "day"])
def test_columnar_path_publishes_the_row_paths_bytes(
    both_paths: dict[str, dict[str, dict[str, bytes]]], layout: str
) -> None:
    rows, columnar = both_paths[layout]["rows"], both_paths[layout]["columnar"]
    assert sorted(columnar) == sorted(rows)
    assert any("/c/" in key for key in rows) and any("quarantine" in key for key in rows)
    different = [key for key in rows if rows[key] != columnar[key]]
    assert different == []
    manifest = orjson.loads(next(v for k, v in rows.items() if k.endswith("manifest.json")))
    positions = manifest["counts"]["positions"]
    # The day is as messy as intended: every rule had work to do.
    assert positions["duplicates"] > 0
    assert positions["rejected"][IMPLAUSIBLE_JUMP] >= 4
    assert {"missing_heading", "missing_speed", "invalid_speed", "invalid_heading"} <= set(
        positions["amended"]
    )
    assert {"invalid_json", "schema_violation", "unknown_vehicle", "line_too_long"} <= set(
        positions["rejected"]
    )


def test_a_generated_messy_day_gives_the_same_file_results() -> None:
    """The synthetic generator's messy export (every fault it knows), file by file:
    the same fixes with the same values, the same rejects in order, the same amendments."""
    day = generate_day(
        GeneratorSettings(vehicles=8, flights=4, hours=2, start_hour=7, messy_fraction=0.2)
    )
    from chunker.format.day import ServiceDay
    from chunker.format.keys import classify_raw_key

    service_day = ServiceDay.of(day.keys.service_date, day.reference.airport.timezone)
    rules = Rules.for_day(day.reference, service_day)
    fleet = Fleet.of(rules)
    files = 0
    for key, body in sorted(day.objects.items()):
        raw_file = classify_raw_key(day.keys, key)
        if raw_file is None or raw_file.kind != "positions":
            continue
        window = None if raw_file.hour is None else service_day.hour_window(raw_file.hour)
        rows, rejects, amended = rules.parse_lines(
            "positions", iter_lines(body, key, raw_file.gzip), window
        )
        parsed = parse_positions(rules, line_blocks(body, key, raw_file.gzip), window, fleet)
        assert parsed.columns.rows() == [dict(r) for r in rows]
        assert list(parsed.rejects) == list(rejects)
        assert parsed.amended == amended
        files += bool(rows)
    assert files >= 2


def test_block_decoding_gives_each_lines_own_verdict() -> None:
    good = orjson.dumps(
        {"t": "2026-03-14T08:00:00.000+08:00", "vehicle_id": "V01", "lat": 1.0, "lon": 2.0,
         "heading": 3.0, "speed_kmh": 4.0, "state": "idle"}
    )  # fmt: skip
    tricky = [
        good + b"," + good,  # two records on one line: not one record
        b"[" + good,
        good + b"]",
        b"",
        good.replace(b"1.0", b'"1.0"'),
        good[:-1] + b',"on_ground":false}',
        b"\xff" + good,
    ]
    lines = [good] * 40 + tricky + [good] * 40
    fixes = decode_fixes(lines)
    assert len(fixes) == len(lines)
    assert [f is not None for f in fixes] == [True] * 40 + [False] * len(tricky) + [True] * 40


@functools.cache
def _rules() -> Rules:
    builder = build_raw_day(seed=1, hours=(0, 1), vehicles=2, messy=False)
    return Rules.for_day(builder.reference, builder.day)


@settings(max_examples=150, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
    st.integers(min_value=0, max_value=999),
    st.lists(st.tuples(st.integers(0, 28), st.sampled_from("0129:-T.+Z x٣")), max_size=2),
)
def test_timestamps_read_as_arrays_equal_the_row_paths_reader(
    moment: dt.datetime, offset_min: int, millis: int, edits: list[tuple[int, str]]
) -> None:
    """Digits read as arrays equal ``Rules.fast_ms`` on the usual form, on its calendar
    edge cases (day 31 of a 30-day month, Feb 29, hour 24, offset 24) and on any edit."""
    sign = "+" if offset_min >= 0 else "-"
    text = (
        f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}"
        f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    )
    for position, char in edits:
        text = text[:position] + char + text[position + 1 :]
    rules = _rules()
    variants = [
        text,
        text.replace("-03-", "-02-")[:8] + "29" + text[10:],
        text[:11] + "24" + text[13:],
    ]
    variants.append(text[:24] + "24" + text[26:])
    got = fast_times(variants, rules).tolist()
    expected = [rules.fast_ms(v) for v in variants]
    assert got == [_NO_TIME if e is None else e for e in expected]


def test_numpy_columns_are_written_as_orjson_writes_python_numbers() -> None:
    """``PositionColumns.encoded`` formats whole numpy columns with orjson: the text must
    be the one orjson gives the same Python floats and ints inside a row dict."""
    edge = [0.0, -0.0, 0.1, 1e-7, 1e-5, 5e-324, 1e15, 1e16, 1.7976931348623157e308, 29.80001]
    values = np.array(edge + [random.Random(3).uniform(-180, 180) for _ in range(2000)])
    assert orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(values.tolist())
    times = np.array([0, -1, 1773446400123, 2**53], dtype=np.int64)
    assert orjson.dumps(times, option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(times.tolist())
