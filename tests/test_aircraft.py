"""Aircraft as movers (issue #18 item 3): the raw kind's line and track rules, the link to
flights, the stand an aircraft is on, the stream's filter, the synthetic day's movements
against its own flight events and tug, and import-tracks' aircraft output.

Expected values are written here from the documented rules (docs/data-format.md,
"aircraft"), not computed by the product's code.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from pydantic import AwareDatetime, TypeAdapter

from chunker.batch.aircraft import FlightLinks, StandFinder
from chunker.batch.run import chunk_day
from chunker.batch.validate import Rules
from chunker.format.day import ServiceDay, to_ms
from chunker.format.encoding import ChunkerConfig, decode_chunk, encode_chunk
from chunker.format.prepared import AircraftEntry, PreparedChunk
from chunker.format.read import ChunkReader
from chunker.format.records import AircraftPosition
from functions.app.domain.sessions import Filters
from functions.app.stream.frames import FilterPlan, frame_events
from functions.local.cli import main
from synthetic import GeneratedDay, GeneratorSettings, generate_day, write_day
from tests import ground_truth
from tests.conftest import BUCKET
from tests.rawday import ORIGIN, iso, tiny_reference
from tests.test_import_tracks import T0, opensky_state, run

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")
WHEN = TypeAdapter(AwareDatetime)
START = DAY.start_ms + 3_600_000
M_PER_DEG = 111_195.0


def at(dx_m: float, dy_m: float) -> tuple[float, float]:
    """(lat, lon) ``dx_m`` east and ``dy_m`` north of the tiny reference's origin."""
    lat = ORIGIN[0] + dy_m / M_PER_DEG
    return lat, ORIGIN[1] + dx_m / (M_PER_DEG * math.cos(math.radians(lat)))


def fix(second: int, dx: float, dy: float, **values: Any) -> bytes:
    lat, lon = at(dx, dy)
    record = {
        "t": iso(START + second * 1000, 0),
        "icao24": "780A3C",  # upper case: read as lower
        "callsign": "CES5127  ",  # padded like ADS-B: trimmed
        "lat": lat,
        "lon": lon,
        "track": 90.0,
        "ground_speed_kmh": 36.0,
        "on_ground": True,
    }
    record.update(values)
    return orjson.dumps({k: v for k, v in record.items() if v is not None})


def test_aircraft_lines_follow_the_vehicle_position_rules() -> None:
    rules = Rules.for_day(tiny_reference(), DAY)
    lines = [
        fix(0, 0, -300),
        fix(1, 10, -300, track=None),  # derived: east, 36 km/h
        fix(2, 20, -300, ground_speed_kmh=9_999.0),  # over 400 km/h: dropped, derived
        fix(3, 3_000, -300),  # 3 km in a second: a jump
        fix(4, 30, -300, on_ground=False),  # airborne
        fix(5, 40, -300, icao24=None, registration="B-6123"),  # a registration names it
        fix(6, 50, -300, icao24=None),  # no identity at all
        fix(7, 60, -300, lat=0.0, lon=0.0),  # far outside the airport
        fix(8, 60, -300, track=400.0),  # unusable track: dropped, derived
        fix(8, 60, -300, track=400.0),  # an exact duplicate
    ]
    rows, rejects, amended = rules.parse_lines("aircraft", list(enumerate(lines, 1)), None)
    assert Counter(r[1] for r in rejects) == {
        "implausible_jump": 1,
        "airborne": 1,
        "schema_violation": 1,
        "outside_airport_area": 1,
        "duplicate": 1,
    }
    assert [(r["id"], r["t"] - START) for r in rows] == [
        ("780a3c", 0),
        ("780a3c", 1000),
        ("780a3c", 2000),
        ("B-6123", 5000),
        ("780a3c", 8000),
    ]
    assert {r["callsign"] for r in rows} == {"CES5127"}
    assert rows[1]["heading"] == 90.0 and rows[1]["speed_kmh"] == 36.0
    # Reported 9,999 km/h: derived, the chord to the next kept fix (60 m east in 8 s).
    assert rows[2]["heading"] == 90.0 and rows[2]["speed_kmh"] == 27.0
    assert rows[4]["heading"] == 90.0  # 400 is no heading: derived from the motion
    assert {reason: n for (_, reason), n in amended.items()} == {
        "missing_heading": 1,
        "invalid_speed": 1,
        "invalid_heading": 1,
    }


def leg(leg_id: str, callsign: str, registration: str | None, when: int, **values: Any) -> Any:
    return {
        "id": leg_id,
        "t": 0,
        "callsign": callsign,
        "registration": registration,
        "stand": "S" + leg_id[-1],
        "scheduled": when,
        "estimated": None,
        "actual": None,
        "status": "scheduled",
    } | values


def test_a_fix_links_to_its_callsign_s_leg_else_its_registration_s_nearest_in_time() -> None:
    links = FlightLinks.of(
        [
            leg("A1", "CES5127", "B-6123", 10_000),
            leg("D2", "CES5128", "B-6123", 50_000, estimated=40_000),
            leg("D3", "CES5128", "B-6123", 90_000),  # the same callsign the next day
            leg("X4", "CES9999", "B-6123", 30_000),
            {**leg("X4", "CES9999", "B-6123", 30_000), "t": 5, "status": "cancelled"},
        ]
    )
    assert links.leg_of(0, "CES5127", "B-7777")["id"] == "A1"  # callsign first
    assert links.leg_of(64_000, "CES5128", None)["id"] == "D2"  # 24 s from 40 s (estimate)
    assert links.leg_of(66_000, "CES5128", None)["id"] == "D3"
    assert links.leg_of(20_000, None, "B-6123")["id"] == "A1"  # X4 is cancelled
    assert links.leg_of(20_000, "NOSUCH", "B-6123")["id"] == "A1"  # no callsign match
    assert links.leg_of(25_000, None, "B-6123")["id"] == "A1"  # a tie (15 s each): smaller id
    assert links.leg_of(26_000, None, "B-6123")["id"] == "D2"
    assert links.leg_of(0, None, None) is None and links.leg_of(0, "NOSUCH", None) is None


def test_an_aircraft_is_on_the_nearest_stand_within_25_m() -> None:
    reference = tiny_reference()
    finder = StandFinder(reference.stands)
    s1 = next(s for s in reference.stands if s.stand_id == "S1").position
    north = M_PER_DEG  # metres per degree of latitude
    assert finder.at(s1.lat, s1.lon) == "S1"
    assert finder.at(s1.lat + 24 / north, s1.lon) == "S1"
    assert finder.at(s1.lat + 26 / north, s1.lon) is None


def test_of_stands_on_one_point_the_aircraft_is_on_the_one_its_leg_names() -> None:
    """OSM maps some stands on one point (lines meeting at one stop bar): the aircraft is
    on its leg's stand if that is within 1 m of the nearest, else on the nearest."""
    reference = tiny_reference()
    s1 = next(s for s in reference.stands if s.stand_id == "S1")
    north = M_PER_DEG
    twin = s1.model_copy(update={"stand_id": "S0", "label": "S0"})
    near = s1.model_copy(
        update={
            "stand_id": "S9",
            "position": s1.position.model_copy(update={"lat": s1.position.lat + 3 / north}),
        }
    )
    finder = StandFinder([*reference.stands, twin, near])
    at = (s1.position.lat + 0.5 / north, s1.position.lon)
    assert finder.at(*at) == "S0"  # equally near, no leg: the smaller id
    assert finder.at(*at, "S1") == "S1"  # the leg's stand, 1 m from the nearest at most
    assert finder.at(*at, "S9") == "S0"  # 2 m farther: not a tie
    assert finder.at(*at, "S7") == "S0"  # the leg's stand is not near at all


def test_an_aircraft_is_filtered_as_the_flight_it_links_to() -> None:
    on_a1 = AircraftEntry("A1", "S1", b"{}")
    unlinked = AircraftEntry(None, None, b"{}")
    assert FilterPlan(Filters(), {}).aircraft(unlinked)
    flights = FilterPlan(Filters(flights=["A1"]), {})
    assert flights.aircraft(on_a1) and not flights.aircraft(unlinked)
    stands = FilterPlan(Filters(stands=["S2"]), {})
    assert not stands.aircraft(on_a1) and not stands.aircraft(unlinked)
    # Vehicle filters do not describe aircraft: they never hide one.
    assert FilterPlan(Filters(vehicle_types=["fuel_truck"]), {"FT-01": "fuel_truck"}).aircraft(
        on_a1
    )


# --- the synthetic day ---------------------------------------------------------------------

SMALL = GeneratorSettings(vehicles=30, flights=60, start_hour=6, hours=3)


@cache
def small_day() -> GeneratedDay:
    return generate_day(SMALL)


def raw(day: GeneratedDay, kind: str) -> list[dict[str, Any]]:
    key = day.keys.raw_file(kind)
    return [orjson.loads(line) for line in gzip.decompress(day.objects[key]).splitlines()]


def t(text: str) -> int:
    return to_ms(WHEN.validate_python(text))


def test_synthetic_aircraft_taxi_in_park_push_back_and_taxi_out_on_their_flights_times() -> None:
    """From the raw records alone: each aircraft reaches its stand at its arrival's on-block,
    leaves it only after its departure's off-block (the pushback task's start, with the
    tug), and its last fix is the take-off."""
    day = small_day()
    window = DAY.start_ms + SMALL.start_hour * 3_600_000 + 20 * 60_000  # fully recorded
    reference = day.reference
    stands = {s.stand_id: s.position for s in reference.stands}
    fixes: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for record in raw(day, "aircraft"):
        AircraftPosition.model_validate(record)
        fixes.setdefault(record["registration"], []).append((t(record["t"]), record))
    latest: dict[str, dict[str, Any]] = {}
    for record in raw(day, "flights"):
        latest[record["flight_id"]] = record
    pushbacks = {
        r["flight_id"]: t(r["actual_start"])
        for r in raw(day, "tasks")
        if r["task_type"] == "pushback" and r["status"] == "in_progress"
    }

    def on(stand: str, record: dict[str, Any]) -> bool:
        p = stands[stand]
        dy = (record["lat"] - p.lat) * M_PER_DEG
        dx = (record["lon"] - p.lon) * M_PER_DEG * math.cos(math.radians(p.lat))
        return math.hypot(dx, dy) <= 25.0

    checked = Counter[str]()
    for flight in latest.values():
        track = sorted(fixes.get(flight["registration"], []), key=lambda f: f[0])
        stand = flight["stand"]
        if flight["status"] == "on_block" and t(flight["actual"]) >= window:
            on_block = t(flight["actual"])
            first = next(ft for ft, r in track if on(stand, r))
            assert on_block - 15_000 <= first <= on_block + 1_000, flight["flight_id"]
            before = [r for ft, r in track if ft < first]
            assert before and all(r["callsign"] == flight["callsign"] for r in before[-60:])
            checked["arrival"] += 1
        if flight["status"] == "departed" and pushbacks[flight["flight_id"]] >= window:
            push = pushbacks[flight["flight_id"]]  # = the off-block
            parked = [ft for ft, r in track if on(stand, r)]
            leaving = [ft for ft, r in track if ft >= push and not on(stand, r)]
            assert parked and leaving and max(parked) <= leaving[0] <= push + 30_000
            assert all(r["callsign"] == flight["callsign"] for ft, r in track if ft >= push)
            take_off = t(flight["actual"])
            assert take_off - 2_000 <= track[-1][0] < take_off, flight["flight_id"]
            checked["departure"] += 1
    assert checked["arrival"] >= 3 and checked["departure"] >= 3


def test_the_synthetic_day_is_the_same_for_a_seed() -> None:
    again = generate_day(SMALL)
    key = small_day().keys.raw_file("aircraft")
    assert again.objects[key] == small_day().objects[key]
    assert small_day().counts["aircraft"] == len(raw(small_day(), "aircraft")) > 1_000


# --- import-tracks --kind aircraft ----------------------------------------------------------


def test_import_tracks_writes_aircraft_fixes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "states.jsonl"
    states = [opensky_state(), opensky_state(icao24="4B1805", callsign="swr12  ")]
    source.write_text(json.dumps({"time": T0, "states": states}) + "\n")
    out = tmp_path / "aircraft.jsonl"
    status, summary, _ = run(capsys, str(source), "--out", str(out), "--kind", "aircraft")
    assert status == 0 and summary["kind"] == "aircraft" and summary["fixes"] == 2
    first, second = (orjson.loads(line) for line in out.read_bytes().splitlines())
    assert first == {
        "t": "2026-03-14T01:00:00.000Z",
        "icao24": "3c6444",
        "callsign": "DLH400",
        "lat": 29.8001,
        "lon": 123.2001,
        "track": 182.0,
        "ground_speed_kmh": 27.0,
        "on_ground": True,
        "altitude_m": 35.0,
    }
    assert second["icao24"] == "4b1805" and second["callsign"] == "SWR12"
    for record in (first, second):
        AircraftPosition.model_validate(record)  # the raw contract
    assert main(["import-tracks", str(source), "--out", str(out), "--kind", "ships"]) == 2


# --- the chunk format ------------------------------------------------------------------------


def test_format_2_chunks_are_still_read_with_no_aircraft() -> None:
    vehicle = {"id": "V1", "t": 0, "lat": 29.8, "lon": 123.2, "heading": 0.0, "speed_kmh": 0.0}
    aircraft = {"id": "780a3c", "t": 500, "lat": 29.8, "lon": 123.2, "flight_id": None}
    aircraft |= {"stand": None, "heading": 90.0}

    def document(version: int, ticks: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "format": "dispatch-replay.chunk",
            "format_version": version,
            "start": 0,
            "end": 60_000,
            "tick_ms": 1000,
            "task_retention_ms": 0,
            "keyframe": {"vehicles": [vehicle], "tasks": [], "flights": [], "notifications": []},
            "ticks": ticks,
        }

    old = decode_chunk(encode_chunk(document(2, [{"t": 1000, "vehicles": [vehicle]}])))
    state = PreparedChunk.from_document("k", old).state_at(30_000).rows()
    assert list(state.vehicles) == ["V1"] and state.aircraft == {}
    new = document(3, [{"t": 0, "aircraft": [aircraft]}])
    state = PreparedChunk.from_document("k", decode_chunk(encode_chunk(new))).state_at(0).rows()
    assert state.aircraft == {"780a3c": aircraft}


# --- aircraft leave the state --------------------------------------------------------------

EXPIRY_MS = ChunkerConfig().aircraft_expiry_ms


def expected_departures(
    rows: dict[str, list[dict[str, Any]]], day: ServiceDay, tick_ms: int
) -> set[tuple[int, str]]:
    """(tick, aircraft) of every removal the documented rule asks for, walked per aircraft
    over its accepted fixes: after its last fix in a tick, the aircraft leaves at the
    first later tick past ``fix.t + expiry``, or from the tick its linked departure's row
    says ``departed`` (not before the tick after the fix), unless a new fix comes first."""

    def tick_of(ms: int) -> int:
        return ms - (ms - day.start_ms) % tick_ms

    took_off: dict[str, int] = {}
    for leg in rows["flights"]:  # in time order: the first departed row of a leg
        if (leg["movement"], leg["status"]) == ("departure", "departed"):
            took_off.setdefault(leg["id"], tick_of(leg["t"]))
        else:
            assert leg["id"] not in took_off, "no leg is un-departed in this day"
    last_in_tick: dict[str, dict[int, dict[str, Any]]] = {}
    for fix in rows["aircraft"]:
        last_in_tick.setdefault(fix["id"], {})[tick_of(fix["t"])] = fix
    gone = set()
    for aircraft_id, by_tick in last_in_tick.items():
        ticks = sorted(by_tick)
        for tick, after in zip(ticks, [*ticks[1:], day.end_ms], strict=True):
            fix = by_tick[tick]
            when = tick_of(fix["t"] + EXPIRY_MS) + tick_ms
            if fix["flight_id"] in took_off:
                when = min(when, max(took_off[fix["flight_id"]], tick + tick_ms))
            if when < after:
                gone.add((when, aircraft_id))
    return gone


def test_aircraft_leave_the_state_when_they_took_off_or_went_quiet_and_the_stream_says_so(
    s3: S3Client,
) -> None:
    """Removal rows in the chunks where the raw records say (``expected_departures``);
    independent hour jobs write the same bytes; keyframes and a client folding the
    stream's ``aircraft_update`` events hold exactly the aircraft the ground truth has."""
    day = small_day()
    write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
    config = ChunkerConfig(bucket_ms=300_000, histogram_bin_ms=300_000)  # fewer objects
    airport, date = day.keys.airport, day.keys.service_date
    chunk_day(s3, BUCKET, airport, date, config, jobs=3)
    reader = ChunkReader(s3, BUCKET)
    manifest = reader.published(airport, date).manifest
    rows, service_day = ground_truth.valid_rows(day.objects, day.keys)
    documents = [
        decode_chunk(s3.get_object(Bucket=BUCKET, Key=c.key)["Body"].read())
        for c in manifest.chunks
    ]
    removals = [
        (tick["t"], row)
        for document in documents
        for tick in document["ticks"]
        for row in tick.get("aircraft", ())
        if row.get("removed")
    ]
    expected = expected_departures(rows, service_day, config.tick_ms)
    assert {(t, row["id"]) for t, row in removals} == expected
    assert len(removals) == len(expected) >= 10
    assert all(set(row) == {"id", "t", "removed", "flight_id", "stand"} for _, row in removals)
    assert all(row["t"] == t for t, row in removals)
    took_off = {r["flight_id"] for r in raw(day, "flights") if r["status"] == "departed"}
    assert sum(row["flight_id"] in took_off for _, row in removals) >= 5

    # The same day chunked in one job: the same chunks, byte for byte.
    s3.create_bucket(Bucket="carried")
    write_day(day, lambda key, body: s3.put_object(Bucket="carried", Key=key, Body=body))
    chunk_day(s3, "carried", airport, date, config, jobs=1)
    carried = ChunkReader(s3, "carried").published(airport, date).manifest
    assert [(c.key.split("/")[-1], c.bytes) for c in carried.chunks] == [
        (c.key.split("/")[-1], c.bytes) for c in manifest.chunks
    ]

    # A viewer folding every tick's aircraft_update (removed rows delete) matches the
    # ground truth's aircraft at the end of every quarter hour, as do the keyframes.
    plan = FilterPlan(Filters(), {})
    shown: dict[str, dict[str, Any]] = {}
    checked = 0
    for entry, document in zip(manifest.chunks, documents, strict=True):
        if (entry.start - service_day.start_ms) % 900_000 == 0:
            truth = ground_truth.state_at(rows, service_day, config.tick_ms, entry.start - 1)
            assert shown == {fix["id"]: fix for fix in truth["aircraft"]}, entry.start
            assert document["keyframe"]["aircraft"] == truth["aircraft"]
            checked += bool(truth["aircraft"])
        prepared = PreparedChunk.from_document(entry.key, document)
        for tick in prepared.ticks:
            for name, data in frame_events([tick], tick.t, plan):
                if name == "aircraft_update":
                    for row in orjson.loads(data)["aircraft"]:
                        if row.get("removed"):
                            del shown[row["id"]]
                        else:
                            shown[row["id"]] = row
    assert checked >= 8
