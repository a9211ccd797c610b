"""``dispatch-replay import-tracks``: CSV, GPX and OpenSky exports -> raw positions.

Each format is written here from its documented shape; the output is checked line by line
against the values written, and against the raw contract's own model.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunker.format.records import VehiclePosition
from chunker.imports.tracks import ImportTally, Progress
from functions.local.cli import main

T0 = 1_773_450_000  # 2026-03-14T01:00:00Z


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    status = main(["import-tracks", *argv])
    captured = capsys.readouterr()
    return status, json.loads(captured.out) if status == 0 else None, captured.err


def records(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    out = [orjson.loads(line) for line in data.splitlines() if line]
    for record in out:
        VehiclePosition.model_validate(record)  # every line is the raw contract
    return out


def test_csv_with_a_mapping_units_and_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "gps.csv"
    source.write_text(
        "unit,when,y,x,v,course,alt\n"
        "Tug 3,2026-03-14T09:00:00+08:00,29.8001,123.2001,36,450,12.5\n"  # 450 -> 90
        "Tug 3,2026-03-14 01:00:01,29.8002,123.2001,,-90,\n"  # naive time: UTC assumed
        "Tug 3,not a time,29.8,123.2,1,1,1\n"
        "Tug 3,2026-03-14T01:00:03Z,91,123.2,1,1,1\n"
        "Tug 3,2026-03-14T01:00:04Z,,,1,1,1\n"
        "Tug 3,2026-03-14T01:00:05Z,29.8,123.2,fast,1,1\n"
        '"unclosed,2026-03-14T01:00:06Z,29.8,123.2,1,1,1\n'
    )
    out = tmp_path / "positions.jsonl.gz"
    status, summary, _ = run(
        capsys,
        str(source),
        "--out",
        str(out),
        "--columns",
        "id=unit,t=when,lat=y,lon=x,speed=v,heading=course,altitude=alt",
        "--speed-unit",
        "ms",
        "--assume-tz",
        "UTC",
        "--state",
        "servicing",
    )
    assert status == 0
    assert summary["lines"] == 7 and summary["fixes"] == 3
    # The unclosed quote swallows its row into one cell: no time in the time column.
    assert summary["skipped"] == {"bad_position": 1, "bad_time": 2, "no_position": 1}
    assert summary["values_dropped"] == {"dropped_speed": 1}
    written = records(out)
    assert written[0] == {
        "t": "2026-03-14T01:00:00.000Z",
        "vehicle_id": "Tug_3",
        "lat": 29.8001,
        "lon": 123.2001,
        "heading": 90.0,
        "speed_kmh": 129.6,
        "state": "servicing",
        "altitude_m": 12.5,
    }
    assert written[1]["t"] == "2026-03-14T01:00:01.000Z" and written[1]["heading"] == 270.0
    assert "speed_kmh" not in written[1] and "speed_kmh" not in written[2]


def test_gpx_points_with_speed_and_course(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bus.gpx"
    source.write_text(
        '<?xml version="1.0"?>\n'
        '<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v2">'
        "<trk><name>BUS 7</name><trkseg>"
        '<trkpt lat="29.8001" lon="123.2001"><ele>4.0</ele><time>2026-03-14T01:00:00Z</time>'
        "<extensions><gpxtpx:TrackPointExtension><gpxtpx:speed>5.0</gpxtpx:speed>"
        "<gpxtpx:course>45.0</gpxtpx:course></gpxtpx:TrackPointExtension></extensions></trkpt>"
        '<trkpt lat="29.8002" lon="123.2002"><time>2026-03-14T01:00:01.500Z</time></trkpt>'
        '<trkpt lat="29.8003" lon="123.2003"></trkpt>'
        "</trkseg></trk></gpx>"
    )
    out = tmp_path / "positions.jsonl"
    mapping = tmp_path / "map.json"
    mapping.write_text('{"BUS 7": "BUS-07"}')
    status, summary, _ = run(capsys, str(source), "--out", str(out), "--vehicle-map", str(mapping))
    assert status == 0 and summary["format"] == "gpx"
    assert summary["fixes"] == 2 and summary["skipped"] == {"bad_time": 1}
    first, second = records(out)
    assert first["vehicle_id"] == "BUS-07" and first["speed_kmh"] == 18.0
    assert first["heading"] == 45.0 and first["altitude_m"] == 4.0
    assert second["t"] == "2026-03-14T01:00:01.500Z" and "heading" not in second


def opensky_state(**values: Any) -> list[Any]:
    state: list[Any] = [
        "3c6444",
        "DLH400  ",
        "Germany",
        T0,
        T0 + 1,
        123.2001,
        29.8001,
        30.5,
        True,
        7.5,
        182.0,
        0.0,
        None,
        35.0,
        "1000",
        False,
        0,
    ]
    names = [
        "icao24",
        "callsign",
        "origin_country",
        "time_position",
        "last_contact",
        "longitude",
        "latitude",
        "baro_altitude",
        "on_ground",
        "velocity",
        "true_track",
    ]
    for name, value in values.items():
        state[names.index(name)] = value
    return state


def test_opensky_rest_responses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "states.jsonl"
    responses = [
        {
            "time": T0,
            "states": [opensky_state(), opensky_state(icao24="4b1805", time_position=None)],
        },
        {
            "time": T0 + 10,
            "states": [opensky_state(time_position=T0 + 9, on_ground=False, velocity=None)],
        },
        {"time": T0 + 20, "states": None},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in responses) + "{broken\n")
    out = tmp_path / "positions.jsonl"
    status, summary, _ = run(capsys, str(source), "--out", str(out))
    assert status == 0 and summary["format"] == "opensky-json"
    assert summary["fixes"] == 2
    assert summary["skipped"] == {"malformed_line": 2, "no_position": 1}
    first, second = records(out)
    assert first == {
        "t": "2026-03-14T01:00:00.000Z",
        "vehicle_id": "3c6444",
        "lat": 29.8001,
        "lon": 123.2001,
        "heading": 182.0,
        "speed_kmh": 27.0,
        "state": "en_route",
        "on_ground": True,
        "altitude_m": 35.0,
    }
    assert second["on_ground"] is False and "speed_kmh" not in second


def test_opensky_historical_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "states_2026-03-14-01.csv"
    source.write_text(
        "time,icao24,lat,lon,velocity,heading,vertrate,callsign,onground,alert,spi,squawk,"
        "baroaltitude,geoaltitude,lastposupdate,lastcontact\n"
        f"{T0},3c6444,29.8001,123.2001,7.5,182.0,0.0,DLH400  ,true,false,false,1000,30.5,35.0,"
        f"{T0 - 0.4},{T0}\n"
        f"{T0 + 1},3c6444,29.8001,123.2001,7.5,182.0,0.0,DLH400  ,true,false,false,1000,30.5,"
        f"35.0,{T0 - 0.4},{T0 + 1}\n"
    )
    out = tmp_path / "positions.jsonl"
    status, summary, _ = run(capsys, str(source), "--out", str(out), "--format", "opensky-csv")
    assert status == 0 and summary["fixes"] == 2
    first, second = records(out)
    # The position's own time: a repeated vector becomes an exact duplicate (chunker drops it).
    assert first == second and first["t"] == "2026-03-14T00:59:59.600Z"
    assert first["speed_kmh"] == 27.0 and first["on_ground"] is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "kml"], "--format 'kml': choose from csv, gpx, opensky-json, opensky-csv"),
        (["--speed-unit", "furlongs"], "--speed-unit 'furlongs': choose from"),
        ([], "a CSV needs --columns"),
        (["--columns", "id=a,t=b"], "--columns: missing lat, lon"),
        (["--columns", "id=a,t=b,lat=c,lon=d,colour=e"], "unknown field 'colour'"),
        (["--columns", "id=a,t=b,lat=c,lon=nope"], "the CSV header has no column 'nope'"),
        (["--assume-tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    source = tmp_path / "x.csv"
    source.write_text("a,b,c,d\nV1,1,29.8,123.2\n")
    out = tmp_path / "out.jsonl"
    status, _, err = run(capsys, str(source), "--out", str(out), *argv)
    assert status == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_a_missing_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, str(tmp_path / "none.gpx"), "--out", str(tmp_path / "o.jsonl"))
    assert status == 2 and "cannot read" in err and err.count("\n") == 1


def test_progress_reports_at_most_every_two_seconds() -> None:
    said: list[str] = []
    now = [0.0]
    progress = Progress(4 * 2**20, said.append, lambda: now[0])
    tally = ImportTally(lines=10, fixes=9)
    for step in range(10):
        now[0] = step * 0.5
        progress.update(step * 2**19, tally)
    progress.update(4 * 2**20, tally, final=True)
    assert said == [
        "10 lines read (50% of 4.0 MiB): 9 fixes, 0 skipped",
        "10 lines read (100% of 4.0 MiB): 9 fixes, 0 skipped",
        "10 lines read (100% of 4.0 MiB): 9 fixes, 0 skipped",
    ]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=60), max_size=30))
def test_junk_lines_never_crash_a_csv_import(tmp_path: Path, junk: list[str]) -> None:
    source = tmp_path / "junk.csv"
    body = "id,t,lat,lon\n" + "\n".join(line.replace("\r", " ") for line in junk) + "\n"
    source.write_text(body, encoding="utf-8", errors="surrogatepass")
    out = tmp_path / "junk.jsonl"
    assert (
        main(
            [
                "import-tracks",
                str(source),
                "--out",
                str(out),
                "--columns",
                "id=id,t=t,lat=lat,lon=lon",
            ]
        )
        == 0
    )
    records(out)
