"""Hostile raw files: the chunker fails safely, with bounded memory.

A small clean day is uploaded (and published first, where a failure must keep it); then one
hostile object is added to it (or replaces one of its objects) and ``chunk_day`` runs under
``tracemalloc``. Every case is specified as one of two outcomes:

- **line-level** (``quarantined=...``): exactly the listed lines of the hostile object are
  quarantined with the listed reasons, every other line is chunked as the ground truth says
  (``tests/ground_truth.py``), and the new version is published;
- **file-level** (``error=...``): ``chunk_day`` raises ``InputError`` naming the object and
  the cause, and the version published before stays published, byte for byte.

Never another exception type, never a hang (the per-test timeout), and never memory that
grows with what a file inflates to: the hostile run's ``tracemalloc`` peak must stay under
the clean day's peak, plus what reading the object costs (a raw object is held whole by
design, at most ``MAX_COMPRESSED_BYTES``), plus ``READING_MARGIN`` (from the piece and line
caps of ``chunker.batch.raw_inputs``), plus twice the rejected lines the case quarantines (at most
``MAX_REJECTED_BYTES``, beyond which ``chunker.batch.validate`` refuses the file). Bombs inflate
to 64-128 MiB from objects of ~100 KB: at least 3.5x the ~18 MiB a case without rejects
may use, so memory proportional to the inflated size could not pass (they inflated to
0.2-1 GiB until the suite's time budget was cut: the same bound at 4-8x the seconds). The
real ``MAX_INFLATED_BYTES`` (8 GiB) is exercised once, in a child process measured by its
peak resident set size; the real ``MAX_REJECTED_BYTES`` (32 MiB) once, by
``64MiB-of-short-garbage-lines``.

Run ``pytest tests/test_hostile_raw.py -s`` to see the measured peaks per case.
"""

from __future__ import annotations

import ctypes
import gzip
import json
import os
import random
import re
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from moto import mock_aws

from chunker.batch import raw_inputs as sources
from chunker.batch import validate
from chunker.batch.raw_inputs import _PIECE, MAX_INFLATED_BYTES, InputError
from chunker.batch.run import chunk_day
from chunker.batch.validate import (
    DUPLICATE,
    INVALID_JSON,
    LINE_TOO_LONG,
    MAX_LINE_BYTES,
    QUARANTINE_RAW_BYTES,
    SCHEMA_VIOLATION,
)
from chunker.format.day import ServiceDay
from chunker.format.encoding import ChunkerConfig, Manifest
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from chunker.format.s3 import s3_client
from tests import ground_truth
from tests.conftest import BUCKET
from tests.rawday import build_raw_day, iso

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEYS = DayKeys("XTST", "2026-03-14")
DAY = ServiceDay.of(KEYS.service_date, "Asia/Shanghai")
# One chunk per hour keeps a run cheap (24 chunk objects); the hostile files are what matter.
CONFIG = ChunkerConfig(bucket_ms=3_600_000, tick_ms=60_000, histogram_bin_ms=3_600_000)
HOUR5 = DAY.start_ms + 5 * 3_600_000  # hostile records live in hour 5; the clean day in hour 0
MiB = 1024 * 1024
GiB = 1024 * MiB

# What a hostile run may use beyond the clean run and reading the object, from the caps:
# - inflating and cutting lines: a piece (<= _PIECE), its slice up to the last newline, the
#   block built from the carried tail plus that slice, and the lines split from the block:
#   at worst 2-byte lines, ~35 bytes of bytes object + 8 bytes of list slot per 3 bytes,
#   so ~15 pieces; a carried tail and a cut long line are <= MAX_LINE_BYTES + 1 each;
READING_MARGIN = 16 * _PIECE + 4 * (MAX_LINE_BYTES + 1)
# - plus the rejected lines held for the quarantine, twice (as the validator's tuples and as
#   the job's Rejected objects, or while the quarantine object is written): what the case
#   quarantines, each line counted as its quarantine record + detail + REJECT_COST, or
#   MAX_REJECTED_BYTES when the file is refused for holding more than that.
REJECT_COST = 512  # the validator accounts 256 bytes per reject; tuple + Rejected ~ 230


# --- building hostile bytes ---------------------------------------------------------------


def _deflate_segment(unit: bytes) -> bytes:
    """Raw deflate of ``unit`` ending in a full flush: concatenating N copies of it is a
    valid deflate stream of ``unit * N`` (a full flush resets the history)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    compressor.compress(unit)
    compressor.flush(zlib.Z_FULL_FLUSH)
    segment = compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert segment == compressor.compress(unit) + compressor.flush(zlib.Z_FULL_FLUSH)
    return segment


def gzip_repeat(unit: bytes, repeats: int) -> bytes:
    """One gzip member inflating to ``unit * repeats``: ``unit`` is compressed once and its
    segment repeated, so the test never holds or compresses what the member inflates to
    (level 9 gives ~1000:1 for zeros); only the CRC is computed piece by piece."""
    crc = 0
    for _ in range(repeats):
        crc = zlib.crc32(unit, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, (len(unit) * repeats) & 0xFFFFFFFF)
    return header + _deflate_segment(unit) * repeats + b"\x03\x00" + trailer  # 03 00: last block


def lines_of(*lines: bytes) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def position(second: int, **changes: Any) -> bytes:
    """A valid position line in hour 5 (distinct per ``second``)."""
    record: dict[str, Any] = {
        "t": iso(HOUR5 + second * 1000, 0),
        "vehicle_id": "V01",
        "lat": 29.8005,
        "lon": 123.2005,
        "heading": 90.0,
        "speed_kmh": 12.5,
        "state": "en_route",
    }
    record.update(changes)
    return orjson.dumps(record)


def with_raw_field(line: bytes, name: str, raw_json: bytes) -> bytes:
    """``line`` (a JSON object) with one more field whose value is ``raw_json`` verbatim."""
    return line[:-1] + b',"' + name.encode() + b'":' + raw_json + b"}"


def notification(n: int, raw_text: bytes) -> bytes:
    """A notification line in hour 5 whose ``text`` is the raw bytes between the quotes."""
    head = orjson.dumps(
        {"t": iso(HOUR5 + n * 1000, 0), "notification_id": f"H{n}", "level": "info", "code": "x"}
    )
    return head[:-1] + b',"text":"' + raw_text + b'"}'


def positions_spelled(second: int, field_name: str, raw_json: bytes) -> bytes:
    """A position line whose ``field_name`` is spelled ``raw_json`` (e.g. ``NaN``)."""
    marker = b"123456.5"
    template = position(second, **{field_name: 123456.5})
    assert template.count(marker) == 1
    return template.replace(marker, raw_json)


def clean_raw_day() -> dict[str, bytes]:
    """The clean day: hour 0 of every kind, no bad lines (asserted by the fixture)."""
    return build_raw_day(seed=11, hours=(0, 1), vehicles=3, messy=False).objects()


# --- the cases ---------------------------------------------------------------------------

Objects = dict[str, bytes]


@dataclass(frozen=True)
class Case:
    """One hostile object and what must happen to it.

    ``body`` builds the object from the clean day's objects (lazily: bombs are only built
    when their case runs). Line-level cases list the expected ``(line, reason)`` of every
    quarantined line; ``truth`` is a small object with the same lines the ground truth can
    read (default: ``body``, or nothing when no line is accepted). File-level cases give a
    pattern of the cause the ``InputError`` must name.
    """

    id: str
    key: str  # under the day's raw prefix
    body: Callable[[Objects], bytes]
    quarantined: list[tuple[int, str]] | None = None
    accepts_lines: bool = False
    truth: Callable[[Objects], bytes] | None = None
    error: str | None = None
    inflates_to: int = 0
    lowered_cap: int | None = None  # MAX_INFLATED_BYTES for this case (the real one: child)
    lowered_rejects: int | None = None  # MAX_REJECTED_BYTES for this case
    # The day's chunks must be byte-equal to the clean day's (None: when no line is accepted).
    same_chunks: bool | None = None

    @property
    def object_key(self) -> str:
        return KEYS.raw_prefix + self.key


def mixed(id: str, key: str, lines: list[tuple[bytes, str | None]], gzipped: bool = False) -> Case:
    """A small file of hand-written lines, each with its reason or None (accepted)."""
    text = lines_of(*(line for line, _ in lines))
    data = gzip.compress(text, mtime=0) if gzipped else text
    return Case(
        id,
        key,
        lambda _: data,
        quarantined=[(n, reason) for n, (_, reason) in enumerate(lines, 1) if reason],
        accepts_lines=any(reason is None for _, reason in lines),
    )


def every_line(reason: str, body: bytes) -> list[tuple[int, str]]:
    return [(n, reason) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()]


def _huge_line_then_valid(_: Objects) -> bytes:
    # Three gzip members: the 50 MiB line starts in the second and ends in the third.
    return (
        gzip.compress(lines_of(position(1)), mtime=0)
        + gzip_repeat(b"a" * MiB, 50)
        + gzip.compress(b"\n" + lines_of(position(2), position(3)), mtime=0)
    )


def _utf16(_: Objects) -> bytes:
    return lines_of(position(1), position(2), position(3)).decode().encode("utf-16")


def _crlf(objects: Objects) -> bytes:
    clean = gzip.decompress(objects[KEYS.raw_file("positions", 0)])
    assert b"\r" not in clean
    return gzip.compress(clean.replace(b"\n", b"\r\n"), mtime=0)


def _utf8_bom(objects: Objects) -> bytes:
    clean = gzip.decompress(objects[KEYS.raw_file("positions", 0)])
    return gzip.compress(b"\xef\xbb\xbf" + clean, mtime=0)


def _reference(objects: Objects) -> dict[str, Any]:
    reference: dict[str, Any] = orjson.loads(objects[KEYS.reference])
    return reference


def _reference_with(**airport: Any) -> Callable[[Objects], bytes]:
    def build(objects: Objects) -> bytes:
        reference = _reference(objects)
        reference["airport"].update(airport)
        return orjson.dumps(reference)

    return build


EMPTY_MEMBER = gzip.compress(b"", mtime=0)
DEEP_ARRAYS = b"[" * 30_000 + b"]" * 30_000  # 60 kB: under MAX_LINE_BYTES
DEEP_OBJECTS = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
LINE_CASES = [
    # --- huge lines: cut to MAX_LINE_BYTES + 1 while reading, rejected, 4 KiB quarantined
    Case(
        "64MiB-line-without-newline",
        "positions/05.jsonl.gz",
        lambda _: gzip_repeat(b"a" * MiB, 64),
        quarantined=[(1, LINE_TOO_LONG)],
        inflates_to=64 * MiB,
    ),
    Case(
        "50MiB-line-across-gzip-members-then-valid-lines",
        "positions/05.jsonl.gz",
        _huge_line_then_valid,
        quarantined=[(2, LINE_TOO_LONG)],
        accepts_lines=True,
        truth=lambda _: gzip.compress(
            lines_of(position(1), b"a" * (MAX_LINE_BYTES + 1), position(2), position(3))
        ),
        inflates_to=50 * MiB,
    ),
    Case(
        "128-lines-of-1MiB",
        "positions/05.jsonl.gz",
        lambda _: gzip_repeat(b"b" * (MiB - 1) + b"\n", 128),
        quarantined=[(n, LINE_TOO_LONG) for n in range(1, 129)],
        inflates_to=128 * MiB,
    ),
    mixed(
        "lines-at-the-length-limit",
        "positions/05.jsonl",
        [
            (position(1).ljust(MAX_LINE_BYTES), None),  # trailing spaces are JSON whitespace
            (position(2).ljust(MAX_LINE_BYTES + 1), LINE_TOO_LONG),
        ],
    ),
    # --- deep JSON: never a RecursionError; over-long first, else invalid JSON
    mixed(
        "deep-json-positions",
        "positions/05.jsonl",
        [
            (b"[" * 100_000, LINE_TOO_LONG),
            (b'{"a":' * 100_000, LINE_TOO_LONG),
            (b"[" * 60_000, INVALID_JSON),
            (with_raw_field(position(1), "extra", DEEP_ARRAYS), INVALID_JSON),
            (with_raw_field(position(2), "extra", DEEP_OBJECTS), INVALID_JSON),
            (DEEP_OBJECTS, INVALID_JSON),
            (position(3), None),
        ],
    ),
    mixed(
        "deep-json-notifications",
        "notifications/05.jsonl.gz",
        [
            (b"[" * 100_000, LINE_TOO_LONG),
            (DEEP_ARRAYS, INVALID_JSON),
            (with_raw_field(notification(1, b"deep"), "extra", DEEP_ARRAYS), INVALID_JSON),
            (with_raw_field(notification(2, b"deep"), "extra", DEEP_OBJECTS), INVALID_JSON),
            (notification(3, b"fine"), None),
        ],
        gzipped=True,
    ),
    # --- numbers JSON does not have, or a float cannot hold
    mixed(
        "nan-infinity-1e400-and-huge-integers",
        "positions/05.jsonl",
        [
            (positions_spelled(1, "lat", b"NaN"), SCHEMA_VIOLATION),
            (positions_spelled(2, "lat", b"Infinity"), SCHEMA_VIOLATION),
            (positions_spelled(3, "lon", b"-Infinity"), SCHEMA_VIOLATION),
            (positions_spelled(4, "lat", b"1e400"), SCHEMA_VIOLATION),
            (positions_spelled(5, "lon", b"-1e400"), SCHEMA_VIOLATION),
            (positions_spelled(6, "heading", b"1e400"), None),  # dropped and derived: kept
            (positions_spelled(7, "speed_kmh", b"9" * 20_000), INVALID_JSON),
            (positions_spelled(8, "t", b"1e400"), SCHEMA_VIOLATION),
            (positions_spelled(9, "lat", b"29.8005" + b"0" * 5_000 + b"1"), None),
            (positions_spelled(10, "speed_kmh", b"1e-400"), None),  # underflows to 0.0
            (positions_spelled(11, "heading", b"-0.0"), None),
        ],
    ),
    # --- wrong encodings: not UTF-8 is invalid JSON; CRLF is whitespace; a leading BOM is ignored
    Case(
        "utf16-with-bom",
        "positions/05.jsonl",
        _utf16,
        quarantined=every_line(INVALID_JSON, _utf16({})),
    ),
    mixed(
        "latin1-and-invalid-utf8",
        "notifications/05.jsonl",
        [
            (notification(1, "café".encode("latin-1")), INVALID_JSON),
            (notification(2, b"\xc0\xaf overlong"), INVALID_JSON),
            (notification(3, b"\xed\xa0\x80 encoded surrogate"), INVALID_JSON),
            (notification(4, b"\x80 lone continuation byte"), INVALID_JSON),
            (notification(5, b"cut \xe6\xbe"), INVALID_JSON),
            (notification(6, b"\\ud800 escaped lone surrogate"), INVALID_JSON),
            (notification(7, "澜海 café ✈".encode()), None),
            (notification(8, b"\\ud83d\\ude00 escaped pair"), None),
        ],
    ),
    mixed(
        "invalid-utf8-positions",
        "positions/05.jsonl",
        [
            (position(1).replace(b"V01", b"V\xff1"), INVALID_JSON),
            (position(2).replace(b"en_route", b"en_r\xc3ute"), INVALID_JSON),
            (position(3).replace(b'"t"', b'"\xe9t"'), INVALID_JSON),
            (position(4), None),
        ],
    ),
    mixed(
        "nul-bytes",
        "notifications/05.jsonl",
        [
            (b"\x00" * 100, INVALID_JSON),
            (notification(1, b"a\x00b"), INVALID_JSON),  # a raw control character
            (notification(2, b"trailing") + b"\x00", INVALID_JSON),
            (b"\x00" + notification(3, b"leading"), INVALID_JSON),
            (notification(4, b"escaped \\u0000 is text"), None),
        ],
    ),
    Case(
        "crlf-line-endings",
        "positions/00.jsonl.gz",
        _crlf,
        quarantined=[],
        accepts_lines=True,
        same_chunks=True,
    ),
    Case(
        "utf8-bom",
        "positions/00.jsonl.gz",
        _utf8_bom,
        quarantined=[],
        accepts_lines=True,
        same_chunks=True,
    ),
    # --- zip bombs that are valid gzip: read in bounded pieces, never held whole
    Case(
        "128MiB-of-zeros",
        "positions/05.jsonl.gz",
        lambda _: gzip_repeat(bytes(MiB), 128),
        quarantined=[(1, LINE_TOO_LONG)],
        inflates_to=128 * MiB,
    ),
    Case(
        "128MiB-of-newlines",
        "positions/05.jsonl.gz",
        lambda _: gzip_repeat(b"\n" * MiB, 128),
        quarantined=[],
        inflates_to=128 * MiB,
    ),
    Case(
        "20k-concatenated-empty-gzip-members",
        "positions/05.jsonl.gz",
        lambda _: EMPTY_MEMBER * 20_000,
        quarantined=[],
    ),
    Case(
        "10k-short-garbage-lines-then-a-valid-one",
        "positions/05.jsonl.gz",
        lambda _: gzip.compress(b"xy\n" * 10_000 + lines_of(position(1)), mtime=0),
        quarantined=[(n, INVALID_JSON) for n in range(1, 10_001)],
        accepts_lines=True,
    ),
    # --- a huge but valid reference (whitespace) under the 64 MiB cap
    Case(
        "reference-padded-to-8MiB",
        "reference.json",
        lambda objects: objects[KEYS.reference] + b" " * (8 * MiB),
        quarantined=[],
        accepts_lines=True,
        same_chunks=True,
    ),
]

REPEATED = lines_of(position(7 - 5 * 3600))  # a valid record of hour 0
FILE_CASES = [
    # --- bombs the chunker must refuse, not read on
    Case(
        "over-the-inflation-cap-in-hour-5",
        "positions/05.jsonl.gz",
        lambda _: gzip_repeat(bytes(MiB), 128),
        error=r"inflates beyond 67108864 bytes",
        inflates_to=128 * MiB,
        lowered_cap=64 * MiB,
    ),
    Case(  # the real MAX_REJECTED_BYTES: its 32 MiB are reached within ~110k lines (330 KB)
        "64MiB-of-short-garbage-lines",
        "positions/00.jsonl.gz",
        lambda _: gzip_repeat(b"xy\n" * (MiB // 3), 64),
        error=rf"more than 32 MiB of rejected lines by line \d+ \({INVALID_JSON}: \d+\)",
        inflates_to=64 * MiB,
    ),
    Case(  # the same refusal for duplicates, at a lowered cap (the real one: above)
        "64MiB-of-one-repeated-record",
        "positions/00.jsonl.gz",
        lambda _: gzip_repeat(REPEATED * 8_000, 64 * MiB // (8_000 * len(REPEATED))),
        error=rf"more than 8 MiB of rejected lines by line \d+ \({DUPLICATE}: \d+\)",
        inflates_to=64 * MiB,
        lowered_rejects=8 * MiB,
    ),
    # --- unreadable gzip
    Case(
        "truncated-gzip",
        "positions/00.jsonl.gz",
        lambda objects: objects[KEYS.raw_file("positions", 0)][:-2000],
        error="truncated gzip stream",
    ),
    Case(
        "plain-text-named-gz",
        "positions/00.jsonl.gz",
        lambda _: lines_of(position(1)),
        error=r"not a readable gzip stream \(.*incorrect header check",
    ),
    Case(
        "garbage-after-a-gzip-member",
        "positions/00.jsonl.gz",
        lambda _: gzip.compress(lines_of(position(1)), mtime=0) + b"garbage" * 100,
        error=r"not a readable gzip stream",
    ),
    Case(
        "gzip-with-a-wrong-crc",
        "positions/00.jsonl.gz",
        lambda _: gzip.compress(lines_of(position(1)), mtime=0)[:-8] + b"\0" * 8,
        error=r"not a readable gzip stream \(.*incorrect data check",
    ),
    Case("empty-gz-object", "positions/00.jsonl.gz", lambda _: b"", error="truncated gzip stream"),
    # --- unreadable reference data
    Case(
        "reference-over-64MiB",
        "reference.json",
        lambda objects: objects[KEYS.reference] + b" " * (64 * MiB),
        error=r"is \d+ bytes \(> 67108864\)",
    ),
    Case(
        "reference-deeply-nested",
        "reference.json",
        lambda _: b"[" * 100_000 + b"]" * 100_000,
        error="not usable reference data: not JSON: .*recursion limit",
    ),
    Case(
        "reference-wrong-types",
        "reference.json",
        lambda objects: orjson.dumps(
            {**_reference(objects), "vehicles": "V01", "stands": {"S0": 1}, "airport": [1]}
        ),
        error="not usable reference data: airport",
    ),
    Case(
        "reference-nan-coordinates",
        "reference.json",
        lambda objects: objects[KEYS.reference].replace(b'"lat":29.8,', b'"lat":NaN,', 1),
        error="not usable reference data: airport: .*finite number",
    ),
    Case(
        "reference-in-utf16",
        "reference.json",
        lambda objects: objects[KEYS.reference].decode().encode("utf-16"),
        error="not usable reference data: not JSON",
    ),
    Case(
        "reference-timezone-is-a-directory",
        "reference.json",
        _reference_with(timezone="Asia"),
        error="unknown time zone 'Asia'",
    ),
    Case(
        "reference-timezone-too-long",
        "reference.json",
        _reference_with(timezone="Mars/" + "x" * 300),
        error="airport: timezone.*at most 64 characters",
    ),
    # (A 1 MB vehicle label is no longer fatal: the entry is skipped, see
    # tests/test_track_quality.py::test_a_reference_with_bad_and_repeated_entries_still_chunks.)
]


# --- running and reading back --------------------------------------------------------------


@dataclass
class Run:
    """One traced chunk run: its outcome and tracemalloc peak."""

    outcome: Any
    peak: int


def traced(run: Callable[[], Any]) -> Run:
    """``run()`` under tracemalloc; an ``InputError`` is an outcome, anything else fails."""
    tracemalloc.start()
    try:
        try:
            outcome = run()
        except InputError as exc:
            outcome = exc
        return Run(outcome, tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def upload(s3: S3Client, objects: Objects) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def stored(s3: S3Client, key: str) -> bytes:
    body: bytes = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return body


def chunk_bytes(s3: S3Client, manifest: Manifest) -> dict[int, bytes]:
    return {entry.start: stored(s3, entry.key) for entry in manifest.chunks}


def quarantine_records(s3: S3Client, manifest: Manifest) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for key in manifest.quarantine.objects
        for line in gzip.decompress(stored(s3, key)).split(b"\n")
        if line
    ]


SAMPLES = [0, 1_799_999, 3_599_999, 5 * 3_600_000, 5 * 3_600_000 + 1_800_000, 86_399_999]


def assert_state_is_ground_truth(s3: S3Client, objects: Objects) -> Manifest:
    """The published version's counts and states equal the ground truth of ``objects``."""
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published(KEYS.airport, KEYS.service_date).manifest
    rows, day = ground_truth.valid_rows(objects, KEYS)
    assert {k: c.accepted for k, c in manifest.counts.items()} == {
        k: len(v) for k, v in rows.items()
    }
    for offset in SAMPLES:
        t = day.start_ms + offset
        expected = ground_truth.state_at(rows, day, CONFIG.tick_ms, t)
        assert reader.state_at(manifest, t).keyframe() == expected, offset
    return manifest


@dataclass
class CleanDay:
    """The clean day, chunked once: its objects, chunks and tracemalloc peak."""

    objects: Objects
    version: str
    accepted: dict[str, int]
    chunks: dict[int, bytes]
    peak: int


@pytest.fixture(scope="module")
def clean() -> Iterator[CleanDay]:
    """The baseline: the same day without a hostile object, chunked under tracemalloc
    exactly like the hostile runs (a warm-up run first, so imports are not counted)."""
    objects = clean_raw_day()
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.setenv(name, "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.delenv("AWS_ENDPOINT_URL", raising=False)
        with mock_aws():
            s3 = s3_client()
            s3.create_bucket(Bucket=BUCKET)
            upload(s3, objects)
            chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
            run = traced(
                lambda: chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG, force=True)
            )
            manifest = assert_state_is_ground_truth(s3, objects)
            assert manifest.quarantine.total == 0, "the clean day has no bad line"
            accepted = {kind: counts.accepted for kind, counts in manifest.counts.items()}
            day = CleanDay(objects, manifest.version, accepted, chunk_bytes(s3, manifest), run.peak)
    print(f"\nclean day: tracemalloc peak {run.peak / MiB:.1f} MiB")
    yield day


def publish_clean(s3: S3Client, clean: CleanDay) -> str:
    upload(s3, clean.objects)
    return chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG).version


def run_hostile(s3: S3Client, case: Case, hostile: bytes) -> tuple[Run, int]:
    """Add the hostile object to the day and chunk again, traced. Reading the object is
    measured alone, too: the chunker holds a raw object whole by design, so that cost is
    allowed on top of the margin."""
    s3.put_object(Bucket=BUCKET, Key=case.object_key, Body=hostile)
    read = traced(lambda: len(stored(s3, case.object_key)))
    return traced(lambda: chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)), read.peak


def assert_bounded(
    case: Case, clean: CleanDay, run: Run, read_peak: int, held: int, size: int
) -> None:
    """The hostile run's peak is within the clean run's, reading the object, READING_MARGIN
    and twice the rejected lines ``held`` for the quarantine."""
    allowed = clean.peak + read_peak + READING_MARGIN + 2 * held
    print(
        f"\n{case.id}: object {size / MiB:.2f} MiB"
        + (f", inflates to {case.inflates_to / MiB:.0f} MiB" if case.inflates_to else "")
        + f"; peak {run.peak / MiB:.1f} MiB (clean {clean.peak / MiB:.1f}, reading the "
        f"object {read_peak / MiB:.1f}, rejects held {held / MiB:.1f}, allowed "
        f"{allowed / MiB:.1f})"
    )
    assert run.peak <= allowed, f"peak {run.peak} > {allowed}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", LINE_CASES, ids=[c.id for c in LINE_CASES])
def test_bad_lines_are_quarantined_and_the_rest_is_chunked(
    s3: S3Client, clean: CleanDay, case: Case
) -> None:
    assert case.quarantined is not None
    hostile = case.body(clean.objects)
    upload(s3, clean.objects)
    run, read_peak = run_hostile(s3, case, hostile)
    assert not isinstance(run.outcome, Exception), run.outcome
    assert run.outcome.published and run.outcome.version != clean.version

    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published(KEYS.airport, KEYS.service_date).manifest
    assert manifest.version == run.outcome.version
    if case.accepts_lines:
        # The ground truth reads the hostile object too (or a small equivalent of it).
        truth = hostile if case.truth is None else case.truth(clean.objects)
        assert_state_is_ground_truth(s3, {**clean.objects, case.object_key: truth})
    else:
        assert {k: c.accepted for k, c in manifest.counts.items()} == clean.accepted
    if case.same_chunks if case.same_chunks is not None else not case.accepts_lines:
        assert chunk_bytes(s3, manifest) == clean.chunks, "the day's chunks are the clean day's"

    records = quarantine_records(s3, manifest)
    held = sum(len(r["record"].encode()) + len(r["detail"]) + REJECT_COST for r in records)
    assert_bounded(case, clean, run, read_peak, held, len(hostile))
    assert all(r["object"] == case.object_key for r in records)
    assert [(r["line"], r["reason"]) for r in records] == case.quarantined
    assert all(len(r["record"]) <= QUARANTINE_RAW_BYTES for r in records)
    assert all(r["detail"] for r in records)
    assert manifest.quarantine.total == len(case.quarantined)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", FILE_CASES, ids=[c.id for c in FILE_CASES])
def test_unreadable_files_stop_the_run_and_keep_the_published_version(
    s3: S3Client, clean: CleanDay, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert case.error is not None
    if case.lowered_cap is not None:
        monkeypatch.setattr(sources, "MAX_INFLATED_BYTES", case.lowered_cap)
    if case.lowered_rejects is not None:
        monkeypatch.setattr(validate, "MAX_REJECTED_BYTES", case.lowered_rejects)
    hostile = case.body(clean.objects)
    publish_clean(s3, clean)
    before = ChunkReader(s3, BUCKET).published(KEYS.airport, KEYS.service_date)
    pointer_bytes = stored(s3, KEYS.pointer)

    run, read_peak = run_hostile(s3, case, hostile)
    refused = "rejected lines" in case.error  # the file was refused for its rejected lines
    held = validate.MAX_REJECTED_BYTES if refused else 0
    assert_bounded(case, clean, run, read_peak, held, len(hostile))
    assert isinstance(run.outcome, InputError), run.outcome
    message = str(run.outcome)
    assert case.object_key in message
    assert re.search(case.error, message, re.DOTALL), message

    # The clean version stays published: same pointer bytes, same manifest, same chunks
    # (which the fixture checked against the ground truth).
    assert stored(s3, KEYS.pointer) == pointer_bytes
    after = ChunkReader(s3, BUCKET).published(KEYS.airport, KEYS.service_date)
    assert after == before
    assert after.manifest.version == clean.version
    assert chunk_bytes(s3, after.manifest) == clean.chunks


@pytest.mark.timeout(60)
def test_a_million_gzip_members_are_read_without_quadratic_copying() -> None:
    """Every member boundary used to copy the rest of the object, so a 1M-member object
    (20 MB) took hours to read; read through bounded slices it is a linear pass. The
    chunk_day case above has 20k members; this one is big enough to hang if it regresses."""
    body = EMPTY_MEMBER * 1_000_000 + gzip.compress(b"\n\n{}\n", mtime=0)
    assert list(sources.iter_lines(body, "many-members.jsonl.gz", True)) == [(3, b"{}")]


def test_the_bomb_builder_makes_valid_gzip() -> None:
    for unit in (bytes(1000), b"\n" * 999, b"xy\n" * 300):
        assert gzip.decompress(gzip_repeat(unit, 5)) == unit * 5
    assert len(gzip_repeat(bytes(MiB), 1024)) < 1.1 * MiB  # 1 GiB of zeros in ~1 MB


# --- the real cap, in a child process ------------------------------------------------------


def members_past_the_cap() -> bytes:
    """Concatenated gzip members of 1 GiB of zeros each, one more than MAX_INFLATED_BYTES
    allows (9 of them, ~9 MB): every member is valid, only their sum is too much."""
    member = gzip_repeat(bytes(MiB), 1024)
    return member * (MAX_INFLATED_BYTES // GiB + 1)


def _rss(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert match, status
    return int(match.group(1)) * 1024


def rss_growth(run: Callable[[], Any]) -> tuple[Any, int]:
    """``run()``'s outcome and how far it raised this process's resident set size above
    where it started: the peak (VmHWM) is reset to the current size first (Linux >= 4.0).
    Not ``ru_maxrss``: it cannot be reset, and on Linux a child even inherits its parent's.
    Freed heap is returned to the system first, so the run cannot hide in it."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    before = _rss("VmRSS")
    try:
        outcome = run()
    except InputError as exc:
        outcome = exc
    return outcome, _rss("VmHWM") - before


def _child() -> None:
    """In a fresh process on in-process moto: publish the clean day, then add the bomb and
    chunk again; print what each run added to the resident set size, and the outcome."""
    with mock_aws():
        s3 = s3_client()
        s3.create_bucket(Bucket=BUCKET)
        upload(s3, clean_raw_day())
        _, clean_growth = rss_growth(
            lambda: chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
        )
        pointer = stored(s3, KEYS.pointer)
        body = members_past_the_cap()
        size = len(body)
        s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("positions", 5), Body=body)
        del body
        outcome, bomb_growth = rss_growth(
            lambda: chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
        )
        result = {
            "clean_growth": clean_growth,
            "bomb_growth": bomb_growth,
            "error": str(outcome) if isinstance(outcome, InputError) else None,
            "object_bytes": size,
            "pointer_unchanged": stored(s3, KEYS.pointer) == pointer,
        }
    print(json.dumps(result))


def _can_reset_peak_rss() -> bool:
    clear_refs = "/proc/self/clear_refs"
    return sys.platform == "linux" and os.access(clear_refs, os.W_OK) and _has_glibc()


def _has_glibc() -> bool:
    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim")
    except OSError:
        return False


CHILD_TEST = "test_a_bomb_past_the_real_inflation_cap_stops_with_small_rss"


@pytest.fixture(scope="module", autouse=True)
def rss_child(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes] | None]:
    """The child process of CHILD_TEST, started with the module so that its seconds of
    inflating run beside the in-process cases (its peak RSS is its own either way)."""
    if not any(item.name == CHILD_TEST for item in request.session.items):
        yield None
        return
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.test_hostile_raw"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    yield child
    child.kill()  # a no-op once it has exited
    child.communicate()


@pytest.mark.timeout(120)
def test_a_bomb_past_the_real_inflation_cap_stops_with_small_rss(
    rss_child: subprocess.Popen[bytes] | None,
) -> None:
    # The product runs on Linux (Lambda, CI): measuring the child's peak RSS needs it.
    assert _can_reset_peak_rss(), "needs Linux with glibc and a writable /proc/self/clear_refs"
    assert rss_child is not None
    out, err = rss_child.communicate(timeout=110)
    assert rss_child.returncode == 0, err.decode()[-3000:]
    child: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    assert child["error"] is not None
    assert KEYS.raw_file("positions", 5) in child["error"]
    assert f"inflates beyond {MAX_INFLATED_BYTES} bytes" in child["error"]
    assert child["pointer_unchanged"]
    # The bomb run reads the ~9 MB object whole (by design) and inflates 8 GiB from it:
    # only the former may show, beside what chunking the clean day itself takes.
    allowed = child["clean_growth"] + 2 * child["object_bytes"] + READING_MARGIN
    print(
        f"\nchild: chunking the clean day raised the peak RSS by "
        f"{child['clean_growth'] / MiB:.1f} MiB; with the {child['object_bytes'] / MiB:.1f} "
        f"MiB bomb inflating past {MAX_INFLATED_BYTES / GiB:.0f} GiB by "
        f"{child['bomb_growth'] / MiB:.1f} MiB (allowed {allowed / MiB:.1f})"
    )
    assert child["bomb_growth"] <= allowed


if __name__ == "__main__":
    _child()


def test_only_a_leading_utf8_bom_is_ignored_wherever_the_gzip_members_cut_it() -> None:
    bom = b"\xef\xbb\xbf"
    text = bom + b'{"a":1}\n' + bom + b'{"b":2}\n'
    expected = [(1, b'{"a":1}'), (2, bom + b'{"b":2}')]  # a BOM inside is not skipped
    assert list(sources.iter_lines(text, "plain.jsonl", False)) == expected
    for cut in range(1, 5):  # one gzip member per piece of the text: the BOM split 1|2, 2|1
        body = gzip.compress(text[:cut], mtime=0) + gzip.compress(text[cut:], mtime=0)
        assert list(sources.iter_lines(body, "cut.jsonl.gz", True)) == expected
    assert list(sources.iter_lines(bom, "only-a-bom.jsonl", False)) == []


def test_an_object_is_read_in_the_pieces_s3_sends_never_whole() -> None:
    """The chunker streams raw objects (``sources.stream_object``): 256 MiB arriving in
    1 MiB pieces are read in a few pieces' worth of memory; it used to hold the whole object."""
    tail = position(1) + b"\n"

    def arriving() -> Iterator[bytes]:
        for _ in range(256):
            yield b" \n" * (MiB // 2)
        yield tail

    tracemalloc.start()
    try:
        lines = list(sources.iter_lines(arriving(), "big.jsonl", False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == [(256 * MiB // 2 + 1, tail.strip())]
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"  # a few pieces, not 256 MiB


@pytest.mark.parametrize("seed", range(5))
def test_any_cut_of_the_arriving_bytes_reads_the_same_lines(seed: int) -> None:
    rng = random.Random(seed)
    text = b"".join(position(s) + b"\n" * rng.randint(1, 3) for s in range(2_000))
    cuts = sorted(rng.sample(range(1, len(text)), 3))
    members = [
        gzip.compress(text[a:b], mtime=0)
        for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)
    ]
    for body, is_gzip in ((text, False), (b"".join(members), True)):
        whole = list(sources.iter_lines(body, "whole", is_gzip))
        edges = sorted(rng.sample(range(1, len(body)), 40))
        pieces = [body[a:b] for a, b in zip([0, *edges], [*edges, len(body)], strict=True)]
        assert list(sources.iter_lines(iter(pieces), "pieces", is_gzip)) == whole
        assert len(whole) == 2_000
