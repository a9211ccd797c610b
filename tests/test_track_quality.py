"""Issue #18: real tracks keep every good fix; glitches are quarantined; quality is told.

Expected counts come from the fixture's own labels (tests/track_fixture.py) or from the
records written here, never from the chunker.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from chunker.batch.cli import data_quality
from chunker.batch.run import chunk_day
from chunker.batch.tracks import Limit, derive_motion, implausible_jumps
from chunker.format.encoding import ChunkerConfig, KindCounts, decode_chunk
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from functions.local.cli import main
from tests.conftest import BUCKET
from tests.rawday import tiny_reference
from tests.track_fixture import COLUMNS, VEHICLE_MAP, adsb_track, csv_text

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FIXTURE = Path(__file__).parent / "fixtures" / "tracks" / "adsb_surface.csv"
KEYS = DayKeys("XTST", "2026-03-14")
CONFIG = ChunkerConfig(bucket_ms=600_000, tick_ms=1_000, histogram_bin_ms=600_000)
TUG = Limit(50.0, 20.0, 3)


def test_the_committed_track_fixture_is_current() -> None:
    assert FIXTURE.read_text() == csv_text(adsb_track()), "regenerate: see tests/track_fixture.py"


def import_fixture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps(VEHICLE_MAP))
    out = tmp_path / "positions.jsonl.gz"
    status = main(
        [
            "import-tracks",
            str(FIXTURE),
            "--out",
            str(out),
            "--columns",
            COLUMNS,
            "--speed-unit",
            "knots",
            "--altitude-unit",
            "ft",
            "--vehicle-map",
            str(mapping),
        ]
    )
    assert status == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    return summary


def test_an_adsb_track_keeps_every_plausible_fix(
    s3: S3Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = adsb_track()
    kinds = Counter(line.kind for line in lines)
    good = [line for line in lines if line.kind == "good"]
    assert kinds["jump"] == 4 and kinds["duplicate"] >= 5 and kinds["unusable"] == 2

    summary = import_fixture(tmp_path, capsys)
    assert summary["lines"] == len(lines)
    assert summary["fixes"] == len(lines) - kinds["unusable"]
    assert summary["skipped"] == {"bad_time": 1, "no_position": 1}

    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=tiny_reference().model_dump_json())
    s3.put_object(
        Bucket=BUCKET,
        Key=KEYS.raw_file("positions", gzip=True),
        Body=(tmp_path / "positions.jsonl.gz").read_bytes(),
    )
    day = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
    counts = day.counts["positions"]
    assert counts.accepted == len(good)
    assert counts.duplicates == kinds["duplicate"]
    assert counts.rejected == {"implausible_jump": kinds["jump"]}
    assert counts.amended == {
        reason: n
        for reason, n in {
            "missing_heading": sum(1 for line in good if not line.heading_given),
            "missing_speed": sum(1 for line in good if line.speed == "missing"),
            "invalid_speed": sum(1 for line in good if line.speed == "stale"),
        }.items()
        if n
    }

    # Every plausible fix is in the chunks, and nothing else: one fix per mover and tick.
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published(KEYS.airport, KEYS.service_date).manifest
    stored: dict[tuple[str, int], dict[str, Any]] = {}
    for chunk in manifest.chunks:
        document = decode_chunk(s3.get_object(Bucket=BUCKET, Key=chunk.key)["Body"].read())
        for tick in document["ticks"]:
            for row in tick.get("vehicles", ()):
                stored[(row["id"], row["t"])] = row
    expected = {(VEHICLE_MAP[line.mover], line.t_ms): line for line in good}
    assert set(stored) == set(expected)

    # Derived values: along the track, and held (not spinning) while standing still. (Within
    # 5 s of starting or stopping, the derivation's chord averages both: not checked.)
    for key, line in expected.items():
        row = stored[key]
        assert 0.0 <= row["heading"] < 360.0 and row["speed_kmh"] >= 0.0
        second = (line.t_ms - lines[0].t_ms) / 1000
        steady = 5 <= second <= 105 or 177 <= second <= 200
        if line.mover == "a1c001" and steady and not line.heading_given:
            along = 90.0 if line.y < 41.5 else 0.0
            assert min(abs(row["heading"] - along), 360 - abs(row["heading"] - along)) < 12
        if line.mover == "a1c001" and steady and line.speed != "ok":
            assert abs(row["speed_kmh"] - 5.4 * 3.6) < 3.0, (line, row)
    still = [
        stored[k]
        for k, line in expected.items()
        if line.mover == "a1c001" and 117 <= (line.t_ms - lines[0].t_ms) / 1000 <= 166
    ]
    assert len({row["heading"] for row in still}) == 1 and abs(still[0]["heading"] - 90.0) < 10
    assert all(row["speed_kmh"] < 3.0 for row in still)
    parked = [stored[k] for k, line in expected.items() if line.mover == "a1c003"]
    assert len({row["heading"] for row in parked}) == 1
    assert all(row["speed_kmh"] < 3.0 for row in parked)

    # The quarantine holds each jump with its reason and the fix as read.
    (key,) = manifest.quarantine.objects
    quarantined = [
        orjson.loads(line)
        for line in gzip.decompress(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()).split(
            b"\n"
        )
        if line
    ]
    jumps = sorted(
        json.loads(q["record"])["t"] for q in quarantined if q["reason"] == "implausible_jump"
    )
    assert jumps == sorted(line.t_ms for line in lines if line.kind == "jump")


# --- the track rules, one by one -------------------------------------------------------------


def east(
    metres: list[float], seconds: list[int] | None = None
) -> tuple[list[int], list[float], list[float]]:
    """A track along the equator-ish test latitude, ``metres`` east of 123.2 E."""
    kx = 111_195.0 * math.cos(math.radians(29.8))
    t = [s * 1000 for s in (seconds or list(range(len(metres))))]
    return t, [29.8] * len(metres), [123.2 + m / kx for m in metres]


def test_an_isolated_glitch_is_a_jump_and_the_track_goes_on() -> None:
    t, lat, lon = east([0, 5, 10, 1210, 20, 25])
    assert implausible_jumps(t, lat, lon, TUG) == [3]


def test_a_glitch_as_first_fix_does_not_condemn_the_track() -> None:
    t, lat, lon = east([-1500, 0, 5, 10, 15])
    assert implausible_jumps(t, lat, lon, TUG) == [0]
    t, lat, lon = east([0, 1500, 5, 10, 15])  # a glitch second: the good first fix stays
    assert implausible_jumps(t, lat, lon, TUG) == [1]


def test_a_mover_that_really_moved_is_followed_after_confirmation() -> None:
    # A hole in coverage too short for the distance, then a consistent new track.
    t, lat, lon = east([0, 5, 10, 2000, 2005, 2010, 2015])
    assert implausible_jumps(t, lat, lon, TUG) == []
    t, lat, lon = east([0, 5, 10, 2000, 2005, 15, 20])  # two lone glitches, not confirmed
    assert implausible_jumps(t, lat, lon, TUG) == [3, 4]


def test_jitter_within_the_tolerance_is_never_a_jump() -> None:
    t, lat, lon = east([0, 12, -6, 15, 0, 0], seconds=[0, 0, 0, 1, 1, 2])
    assert implausible_jumps(t, lat, lon, TUG) == []


def test_heading_is_held_while_stationary_and_speed_follows_the_chord() -> None:
    moving = [i * 5.0 for i in range(10)]
    still = [45.0 + (1.2 if i % 2 else -1.2) for i in range(20)]
    t, lat, lon = east(moving + still)
    headings, speeds = derive_motion(t, lat, lon, [None] * len(t), [None] * len(t))
    assert all(abs(h - 90.0) < 0.5 for h in headings[:9])
    assert len(set(headings[10:])) == 1 and abs(headings[10] - 90.0) < 0.5  # no spinning
    assert all(abs(s - 18.0) < 0.5 for s in speeds[1:4])
    assert all(s < 2.0 for s in speeds[16:])


def test_given_values_are_kept_and_a_lone_fix_has_speed_zero() -> None:
    t, lat, lon = east([0, 5, 10])
    headings, speeds = derive_motion(t, lat, lon, [10.0, None, None], [None, 99.0, None])
    assert headings[0] == 10.0 and abs(headings[1] - 90.0) < 0.5 and speeds[1] == 99.0
    assert derive_motion([5], [29.8], [123.2], [None], [None]) == ([0.0], [0.0])


# --- reference data: bad entries skipped, ids unique per kind ---------------------------------


def test_a_reference_with_bad_and_repeated_entries_still_chunks(s3: S3Client) -> None:
    document = orjson.loads(tiny_reference().model_dump_json())
    stands = document["stands"]
    stands.append({**stands[0], "stand_id": "Run up Position 28"})  # OSM ref with spaces
    stands.append({**stands[1]})  # the same id twice
    document["runways"] = [
        {
            "runway_id": "18/36",
            "start": stands[0]["position"],
            "end": stands[2]["position"],
            "width_m": 45,
        },
        {
            "runway_id": "18/36",
            "start": stands[1]["position"],
            "end": stands[3]["position"],
            "width_m": 45,
        },
        {
            "runway_id": "18/36",
            "start": stands[1]["position"],
            "end": stands[2]["position"],
            "width_m": 45,
        },
    ]
    document["vehicles"].append({**document["vehicles"][0], "label": "again"})
    document["vehicles"].append(
        {**document["vehicles"][1], "vehicle_id": "VX", "label": "x" * 10**6}
    )
    document["depots"].append(
        {**document["depots"][0], "depot_id": "FAR", "position": {"lat": 0.0, "lon": 0.0}}
    )
    document["weather"] = {"wind": "calm"}
    del document["terminals"]
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=orjson.dumps(document))
    task = {
        "t": "2026-03-14T01:00:00Z",
        "task_id": "K1",
        "flight_id": "F1",
        "task_type": "refuel",
        "status": "created",
        "stand": "S1",
        "planned_start": "2026-03-14T01:10:00Z",
        "planned_end": "2026-03-14T01:30:00Z",
    }
    s3.put_object(
        Bucket=BUCKET, Key=KEYS.raw_file("tasks", gzip=False), Body=orjson.dumps(task) + b"\n"
    )
    day = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
    assert day.published and day.counts["tasks"].accepted == 1
    assert day.reference_skipped == {
        "depots:far_from_airport": 1,
        "runways:duplicate_id": 2,
        "stands:duplicate_id": 1,
        "stands:invalid_entry": 1,
        "terminals:missing_section": 1,
        "vehicles:duplicate_id": 1,
        "vehicles:invalid_entry": 1,  # a 1 MB label would go to every viewer
        "weather:unknown_section": 1,
    }
    manifest = ChunkReader(s3, BUCKET).published(KEYS.airport, KEYS.service_date).manifest
    assert [s.stand_id for s in manifest.layout.stands] == ["S0", "S1", "S2", "S3"]
    assert len(manifest.layout.runways) == 1 and len(manifest.catalogue.vehicles) == 6
    invalid = [
        i
        for i in manifest.reference_report.issues
        if i.reason == "invalid_entry" and i.section == "stands"
    ]
    assert invalid[0].entry_id == "Run up Position 28" and "stand_id" in invalid[0].detail


def test_no_usable_stand_is_the_fatal_case(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    document = orjson.loads(tiny_reference().model_dump_json())
    document["stands"] = [{**s, "stand_id": f"Stand {i}"} for i, s in enumerate(document["stands"])]
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=orjson.dumps(document))
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("tasks", gzip=False), Body=b"\n")
    status = main(["chunk", "--bucket", BUCKET, "--airport", "XTST", "--date", "2026-03-14"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "no usable stand (stands:invalid_entry: 4)" in err[0]


# --- flights: callsign and flight number apart, ICAO callsigns, optional fields ----------------


def test_flights_from_adsb_need_only_a_callsign(s3: S3Client) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=tiny_reference().model_dump_json())
    base = {
        "t": "2026-03-14T01:00:00Z",
        "movement": "arrival",
        "airline": "EN",
        "stand": "S1",
        "scheduled": "2026-03-14T01:20:00Z",
        "status": "approaching",
    }
    records = [
        {**base, "flight_id": "F-ENT57BW", "callsign": "ENT57BW "},  # ADS-B pads to 8
        {
            **base,
            "flight_id": "F-AEE5ZH",
            "callsign": "AEE5ZH",
            "flight_number": "A3972",
            "registration": "SX-DGY",
            "aircraft_type": "A320",
            "route": "LGAV",
        },
        {**base, "flight_id": "F-BAD", "callsign": "ENT57BW", "flight_number": "ENT57BW"},
    ]
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("flights", gzip=False), Body=body)
    day = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
    assert day.counts["flights"].accepted == 2
    assert day.counts["flights"].rejected == {
        "schema_violation": 1
    }  # a callsign is no flight number
    manifest = ChunkReader(s3, BUCKET).published(KEYS.airport, KEYS.service_date).manifest
    flights = {f["id"]: f for f in manifest.catalogue.flights}
    assert flights["F-ENT57BW"]["callsign"] == "ENT57BW"
    assert flights["F-ENT57BW"]["flight_number"] is None and flights["F-ENT57BW"]["route"] is None
    assert flights["F-AEE5ZH"]["route"] == "LGAV"


# --- data quality on the command line ------------------------------------------------------------


def test_data_quality_lines_and_the_lost_threshold() -> None:
    counts = {
        "positions": KindCounts(
            accepted=900,
            duplicates=40,
            rejected={"implausible_jump": 60, "invalid_json": 40},
            amended={"missing_heading": 300},
        ),
        "tasks": KindCounts(accepted=10),
        "flights": KindCounts(),
    }
    lines, warnings, lost = data_quality(counts, {"stands:invalid_entry": 1}, 0.05)
    assert lost == {"positions": 0.1, "tasks": 0.0, "flights": 0.0}
    assert lines[0] == (
        "data quality: positions: 900 accepted; 40 duplicates dropped; 100 quarantined "
        "(implausible_jump 60, invalid_json 40); values dropped and derived: missing_heading 300; "
        "lost 10.00%"
    )
    assert lines[-1] == "data quality: reference.json: skipped stands:invalid_entry 1"
    assert warnings == [
        "warning: positions lost 10.0% of their records (100 of 1,000; threshold 5.0%, --warn-lost)"
    ]
    assert data_quality(counts, {}, 0.2)[1] == []


def test_chunk_prints_quarantine_counts_and_warns(
    s3: S3Client, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put_object(Bucket=BUCKET, Key=KEYS.reference, Body=tiny_reference().model_dump_json())
    fix = {
        "t": "2026-03-14T01:00:00Z",
        "vehicle_id": "V01",
        "lat": 29.8,
        "lon": 123.2,
        "state": "idle",
    }
    body = orjson.dumps(fix) + b"\n" + b"not json\n" * 3
    s3.put_object(Bucket=BUCKET, Key=KEYS.raw_file("positions", gzip=False), Body=body)
    argv = ["chunk", "--bucket", BUCKET, "--airport", "XTST", "--date", "2026-03-14"]
    assert main([*argv, "--warn-lost", "0.5"]) == 0
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert (
        "data quality: positions: 1 accepted; 3 quarantined (invalid_json 3); values dropped "
        "and derived: missing_heading 1, missing_speed 1; lost 75.00%"
    ) in err
    assert any(line.startswith("warning: positions lost 75.0%") for line in err)
    assert json.loads(captured.out)["quality"]["lost"]["positions"] == 0.75
    with pytest.raises(SystemExit) as refused:
        main([*argv, "--warn-lost", "2"])
    assert refused.value.code == 2
    assert "argument --warn-lost: 2 is not a fraction in [0, 1]" in capsys.readouterr().err


def test_the_layout_overlay_carries_mover_limits_into_the_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    osm = Path(__file__).parent / "fixtures" / "osm"
    overlay = json.loads((osm / "lfpg.overlay.json").read_text())
    overlay["mover_limits"] = {"vehicle_types": {"pushback_tug": 35}, "confirm_fixes": 4}
    (tmp_path / "overlay.json").write_text(json.dumps(overlay))
    out = tmp_path / "reference.json"
    argv = ["import-layout", str(osm / "lfpg.overpass.json.gz"), "--overlay"]
    assert main([*argv, str(tmp_path / "overlay.json"), "--out", str(out)]) == 0
    capsys.readouterr()
    limits = orjson.loads(out.read_bytes())["mover_limits"]
    assert limits["vehicle_types"] == {"pushback_tug": 35.0} and limits["confirm_fixes"] == 4
