"""The chunker end to end on moto S3: raw objects in, published chunks read back."""

from __future__ import annotations

import gzip
from collections import Counter
from typing import TYPE_CHECKING

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunker.batch.raw_inputs import InputError
from chunker.batch.run import DayJob, chunk_day, chunk_hours, plan_day
from chunker.format.encoding import ChunkerConfig, Manifest, Pointer, decode_chunk
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader, NotPublished
from tests import ground_truth
from tests.conftest import BUCKET
from tests.rawday import build_raw_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FAST = ChunkerConfig(bucket_ms=600_000, tick_ms=1_000, histogram_bin_ms=600_000)
KEYS = DayKeys("XTST", "2026-03-14")


def upload(s3: S3Client, objects: dict[str, bytes], bucket: str = BUCKET) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def stored(s3: S3Client, prefix: str, bucket: str = BUCKET) -> dict[str, bytes]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return found


def pointer(s3: S3Client, keys: DayKeys = KEYS) -> Pointer:
    return Pointer.model_validate_json(
        s3.get_object(Bucket=BUCKET, Key=keys.pointer)["Body"].read()
    )


@pytest.fixture(scope="module")
def raw_objects() -> dict[str, bytes]:
    return build_raw_day(seed=3, hours=(0, 3)).objects()


def test_publishes_a_day_that_matches_ground_truth(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    summary = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    assert summary.published and not summary.already_published
    reader = ChunkReader(s3, BUCKET)
    published = reader.published("XTST", "2026-03-14")
    manifest = published.manifest
    assert published.pointer.version == summary.version == manifest.version
    assert len(manifest.chunks) == 24 * 6
    assert [c.start for c in manifest.chunks] == list(range(manifest.start, manifest.end, 600_000))
    rows, day = ground_truth.valid_rows(raw_objects, KEYS)
    assert {k: c.accepted for k, c in manifest.counts.items()} == {
        k: len(v) for k, v in rows.items()
    }
    assert all(c.duplicates > 0 for c in manifest.counts.values())
    # Every accepted event row is in exactly one chunk.
    assert sum(c.tasks for c in manifest.chunks) == manifest.counts["tasks"].accepted
    assert (
        sum(c.notifications for c in manifest.chunks) == manifest.counts["notifications"].accepted
    )
    for t in [
        day.start_ms,
        day.start_ms + 999,
        day.start_ms + 1000,
        day.start_ms + 3_600_000 - 1,
        day.start_ms + 3_600_000,
        day.start_ms + 2 * 3_600_000 + 599_999,
        day.end_ms - 1,
    ]:
        expected = ground_truth.state_at(rows, day, FAST.tick_ms, t)
        assert reader.state_at(manifest, t).keyframe() == expected, t


def test_state_at_random_times_equals_ground_truth(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    rows, day = ground_truth.valid_rows(raw_objects, KEYS)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(day.start_ms, day.start_ms + 3 * 3_600_000 + 5_000))
    def check(t: int) -> None:
        expected = ground_truth.state_at(rows, day, FAST.tick_ms, t)
        assert reader.state_at(manifest, t).keyframe() == expected

    check()


def test_quarantine_holds_every_rejected_line_with_a_reason(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    summary = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    manifest = ChunkReader(s3, BUCKET).published("XTST", "2026-03-14").manifest
    lines = [
        orjson.loads(line)
        for key in manifest.quarantine.objects
        for line in gzip.decompress(stored(s3, key)[key]).splitlines()
    ]
    assert len(lines) == manifest.quarantine.total == summary.quarantined
    reasons = Counter(line["reason"] for line in lines)
    assert dict(reasons) == manifest.quarantine.by_reason
    # What the tiny day injected on purpose (see tests/rawday.py).
    for reason in (
        "invalid_json",
        "schema_violation",
        "duplicate",
        "outside_airport_area",
        "unknown_vehicle",
        "unknown_stand",
        "outside_file_hour",
        "outside_service_day",
        "line_too_long",
    ):
        assert reasons[reason] > 0, reason
    # Accepted + quarantined accounts for every non-blank raw line.
    total_lines = sum(
        1
        for key, body in raw_objects.items()
        if key.endswith(".gz")
        for line in gzip.decompress(body).split(b"\n")
        if line.strip()
    )
    accepted = sum(c.accepted for c in manifest.counts.values())
    assert accepted + manifest.quarantine.total == total_lines
    assert all(line["object"].startswith(KEYS.raw_prefix) and line["line"] > 0 for line in lines)


def test_rerun_is_idempotent_and_force_rebuilds_identically(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    first = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    before = stored(s3, "chunks/")
    assert KEYS.pointer in stored(s3, "published/")
    again = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    assert again.already_published and again.version == first.version
    forced = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST, force=True)
    after = stored(s3, "chunks/")
    assert forced.version == first.version
    assert before == after


def test_hour_jobs_equal_a_single_run(s3: S3Client, raw_objects: dict[str, bytes]) -> None:
    s3.create_bucket(Bucket="split")
    upload(s3, raw_objects)
    upload(s3, raw_objects, "split")
    single = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    version, ranges, built = plan_day(s3, "split", "XTST", "2026-03-14", FAST)
    assert version == single.version and not built and len(ranges) == 24
    # Independent jobs in an awkward order; each folds its own starting state.
    summaries = [
        chunk_hours(s3, "split", "XTST", "2026-03-14", hours, FAST, expected_version=version)
        for hours in reversed(ranges)
    ]
    assert [s.published for s in summaries] == [False] * 23 + [True]
    single_objects = stored(s3, "chunks/XTST/2026-03-14/" + version)
    split_objects = stored(s3, "chunks/XTST/2026-03-14/" + version, "split")
    assert single_objects.keys() == split_objects.keys()
    for key in single_objects:
        assert single_objects[key] == split_objects[key], key
    assert stored(s3, "quarantine/") == stored(s3, "quarantine/", "split")


def test_parallel_ranges_equal_a_single_run(s3: S3Client, raw_objects: dict[str, bytes]) -> None:
    s3.create_bucket(Bucket="ranges")
    upload(s3, raw_objects)
    upload(s3, raw_objects, "ranges")
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    chunk_day(s3, "ranges", "XTST", "2026-03-14", FAST, jobs=5)
    ours = stored(s3, "chunks/")
    theirs = stored(s3, "chunks/", "ranges")
    assert ours == theirs


def test_inputs_changed_since_planning_are_refused(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    version, _, _ = plan_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("notifications", 0), Body=gzip.compress(b"\n"))
    with pytest.raises(InputError, match="inputs changed"):
        chunk_hours(s3, BUCKET, "XTST", "2026-03-14", [0], FAST, expected_version=version)


def test_corrupt_input_fails_clearly_and_keeps_the_published_version(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    good = chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    corrupt_key = KEYS.raw_file("positions", 2)
    s3.put_object(Bucket=BUCKET, Key=corrupt_key, Body=raw_objects[corrupt_key][:-40])
    with pytest.raises(InputError, match=corrupt_key):
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    s3.put_object(
        Bucket=BUCKET,
        Key=corrupt_key,
        Body=b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64,
    )
    with pytest.raises(InputError, match=f"{corrupt_key}: not a readable gzip stream"):
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    assert pointer(s3).version == good.version
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    assert reader.state_at(manifest, manifest.start + 3_600_000).vehicles


def test_missing_inputs_are_clear_errors(s3: S3Client) -> None:
    with pytest.raises(InputError, match=r"reference\.json is missing"):
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    objects = build_raw_day(seed=1, hours=(0, 1), messy=False).objects()
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=objects[KEYS.reference])
    with pytest.raises(InputError, match="no raw recordings"):
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    with pytest.raises(InputError, match="describes airport XTST, not XOTH"):
        s3.put_object(
            Bucket=BUCKET, Key="raw/XOTH/2026-03-14/reference.json", Body=objects[KEYS.reference]
        )
        s3.put_object(Bucket=BUCKET, Key="raw/XOTH/2026-03-14/tasks.jsonl", Body=b"\n")
        chunk_day(s3, BUCKET, "XOTH", "2026-03-14", FAST)


def test_mixed_layouts_for_one_kind_are_refused(s3: S3Client) -> None:
    objects = build_raw_day(seed=1, hours=(0, 1), messy=False).objects()
    upload(s3, objects)
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("positions"), Body=gzip.compress(b"\n"))
    with pytest.raises(InputError, match="both a day file and hourly files"):
        chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)


@pytest.mark.parametrize("compress", [True, False])
def test_day_file_layout_matches_ground_truth(s3: S3Client, compress: bool) -> None:
    objects = build_raw_day(seed=5, hours=(1, 3)).objects(layout="day", compress=compress)
    upload(s3, objects)
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST, jobs=3)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    rows, day = ground_truth.valid_rows(objects, KEYS)
    assert manifest.counts["positions"].accepted == len(rows["positions"])
    for t in range(day.start_ms + 3_000_000, day.start_ms + 3 * 3_600_000 + 60_000, 271_001):
        assert reader.state_at(manifest, t).keyframe() == ground_truth.state_at(rows, day, 1000, t)


def test_daylight_saving_day_has_23_hours(s3: S3Client) -> None:
    keys = DayKeys("XTST", "2026-03-29")
    objects = build_raw_day(
        seed=2, hours=(0, 4), timezone="Europe/Berlin", service_date="2026-03-29", messy=False
    ).objects()
    upload(s3, objects)
    summary = chunk_day(s3, BUCKET, "XTST", "2026-03-29", FAST)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-29").manifest
    assert summary.hours_built == list(range(23))
    assert manifest.end - manifest.start == 23 * 3_600_000
    rows, day = ground_truth.valid_rows(objects, keys)
    for t in range(day.start_ms, day.start_ms + 4 * 3_600_000, 599_999):
        assert reader.state_at(manifest, t).keyframe() == ground_truth.state_at(rows, day, 1000, t)


def test_fine_ticks(s3: S3Client) -> None:
    config = ChunkerConfig(bucket_ms=300_000, tick_ms=100, histogram_bin_ms=900_000)
    objects = build_raw_day(seed=9, hours=(0, 1)).objects()
    upload(s3, objects)
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", config)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    rows, day = ground_truth.valid_rows(objects, KEYS)
    for t in range(day.start_ms, day.start_ms + 3_600_000, 123_457):
        assert reader.state_at(manifest, t).keyframe() == ground_truth.state_at(rows, day, 100, t)
    document = decode_chunk(stored(s3, manifest.chunks[3].key)[manifest.chunks[3].key])
    assert all(tick["t"] % 100 == day.start_ms % 100 for tick in document["ticks"])


def test_manifest_catalogue_layout_and_histogram(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    upload(s3, raw_objects)
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    key = pointer(s3).manifest_key
    manifest = Manifest.model_validate_json(stored(s3, key)[key])
    rows, _ = ground_truth.valid_rows(raw_objects, KEYS)
    assert {f["id"] for f in manifest.catalogue.flights} == {r["id"] for r in rows["flights"]}
    assert len(manifest.catalogue.vehicles) == 6
    assert len(manifest.layout.stands) == 4 and manifest.layout.road_edges
    histogram = manifest.histogram
    assert len(histogram.task_events) == 24 * 3_600_000 // histogram.bin_ms
    assert sum(histogram.task_events) == manifest.counts["tasks"].accepted
    assert sum(histogram.notifications) == manifest.counts["notifications"].accepted
    assert max(histogram.moving_vehicles) <= 6 and sum(histogram.moving_vehicles[:18]) > 0
    assert sum(histogram.moving_vehicles[18:]) == 0  # no activity after hour 3


def test_reference_validation_error_names_the_object(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=b'{"airport": {}}')
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("tasks"), Body=b"\n")
    with pytest.raises(InputError, match=r"reference\.json is not usable reference data: airport"):
        DayJob.open(s3, BUCKET, "XTST", "2026-03-14", FAST)


def test_published_days_and_airports_are_listed(s3: S3Client) -> None:
    for date in ("2026-03-14", "2026-03-15"):
        objects = build_raw_day(seed=1, hours=(0, 1), messy=False, service_date=date).objects()
        upload(s3, objects)
        chunk_day(s3, BUCKET, "XTST", date, FAST)
    reader = ChunkReader(s3, BUCKET)
    assert reader.airports() == ["XTST"]
    assert reader.published_days("XTST") == ["2026-03-14", "2026-03-15"]
    first = reader.published("XTST", "2026-03-14").manifest
    # Local midnight of the 15th (Asia/Shanghai) is the first instant of the second day.
    assert reader.day_at("XTST", first.end).service_date.isoformat() == "2026-03-15"
    assert reader.day_at("XTST", first.end - 1).version == first.version
    with pytest.raises(NotPublished):
        reader.day_at("XTST", first.start - 1)
    # Ticks across midnight come from both days' chunks, as the chunks themselves hold them.
    second = reader.published("XTST", "2026-03-15").manifest
    start, end = first.end - 300_000, second.start + 300_000
    stored = [first.chunks[-1].key, second.chunks[0].key]
    expected = [
        tick["t"]
        for key in stored
        for tick in decode_chunk(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["ticks"]
        if start <= tick["t"] < end
    ]
    assert any(t >= second.start for t in expected)
    assert [tick.t for tick in reader.iter_ticks("XTST", start, end)] == expected
    with pytest.raises(NotPublished):
        reader.published("XTST", "2026-03-16")


def test_derived_state_at_every_change_equals_ground_truth(
    s3: S3Client, raw_objects: dict[str, bytes]
) -> None:
    """Stand occupancy and each vehicle's task (chunker/format/derived.py) at every tick
    where a task or flight row lands and the tick before, from keyframes plus deltas, as
    tests/ground_truth.py computes them from the raw records."""
    upload(s3, raw_objects)
    chunk_day(s3, BUCKET, "XTST", "2026-03-14", FAST)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published("XTST", "2026-03-14").manifest
    rows, day = ground_truth.valid_rows(raw_objects, KEYS)
    events = {kind: kind_rows for kind, kind_rows in rows.items() if kind != "positions"}
    seen = Counter[str]()
    for t in sorted({row["t"] for kind in ("tasks", "flights") for row in rows[kind]}):
        for at in (t - 1000, t):
            if not day.start_ms <= at < day.end_ms:
                continue
            expected = ground_truth.state_at(events, day, FAST.tick_ms, at)
            state = reader.state_at(manifest, at).keyframe()
            assert state["stands"] == expected["stands"], at
            assert state["vehicle_tasks"] == expected["vehicle_tasks"], at
            seen["stands"] += len(expected["stands"])
            seen["current"] += sum(1 for v in expected["vehicle_tasks"] if v["current"])
            seen["last"] += sum(1 for v in expected["vehicle_tasks"] if v["last"])
    assert seen["stands"] and seen["current"] and seen["last"], seen
