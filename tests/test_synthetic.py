"""The synthetic recorded day: valid, deterministic, realistic, and exactly as messy as asked."""

from __future__ import annotations

import gzip
import itertools
import math
import statistics
from collections import defaultdict
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from pydantic import ValidationError

from chunker.batch.run import chunk_day
from chunker.format.records import RECORD_MODELS, Reference
from functions.local.cli import main
from synthetic import GeneratedDay, GeneratorSettings, generate_day, write_day
from synthetic.layout import build_layout
from tests.conftest import BUCKET

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SMALL = GeneratorSettings(vehicles=30, flights=60, start_hour=6, hours=3)
TASK_FLOW = ["created", "assigned", "en_route", "arrived", "in_progress", "completed"]


@cache
def small_day(messy: float = 0.0) -> GeneratedDay:
    return generate_day(SMALL.model_copy(update={"messy_fraction": messy}))


def records(day: GeneratedDay, kind: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, body in sorted(day.objects.items()):
        if key.startswith(f"{day.keys.raw_prefix}{kind}"):
            out += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def test_same_seed_same_bytes_and_other_seed_differs() -> None:
    again = generate_day(SMALL)
    assert again.objects == small_day().objects
    other = generate_day(SMALL.model_copy(update={"seed": 8}))
    assert other.objects != small_day().objects


def test_an_hour_is_the_same_whichever_window_contains_it() -> None:
    alone = generate_day(SMALL.model_copy(update={"start_hour": 7, "hours": 1}))
    key = alone.keys.raw_file("positions", 7)
    assert alone.objects[key] == small_day().objects[key]


def test_every_record_follows_the_contract() -> None:
    day = small_day()
    Reference.model_validate_json(day.objects[day.keys.reference])
    for kind, model in RECORD_MODELS.items():
        rows = records(day, kind)
        assert len(rows) == day.counts[kind] > 0
        for row in rows[:: max(1, len(rows) // 2000)]:
            model.model_validate(row)


def test_the_airport_is_believable() -> None:
    layout = build_layout("XLHI", 150)
    reference = layout.reference
    assert "fictional" in reference.airport.name
    kinds = [s.kind for s in reference.stands]
    assert len(kinds) >= 40 and kinds.count("remote") >= 10
    assert len(reference.terminals) >= 1
    assert {d.vehicle_type for d in reference.depots} == {
        v.vehicle_type for v in reference.vehicles
    }
    assert all(edge.speed_limit_kmh <= 25 for edge in reference.road_edges)
    nodes = {n.node_id for n in reference.road_nodes}
    assert {s.road_node for s in reference.stands} <= nodes
    assert {d.road_node for d in reference.depots} <= nodes
    assert len(reference.vehicles) == 150
    # Every stand is reachable from every depot on the road graph.
    for depot, stand in itertools.product(layout.depots.values(), layout.stands):
        assert math.isfinite(layout.roads.seconds(depot.road_node, stand.road_node))


def test_vehicles_drive_at_apron_speeds_with_1hz_fixes_while_moving() -> None:
    fixes = records(small_day(), "positions")
    moving = [f for f in fixes if f["state"] in ("en_route", "returning")]
    assert moving
    assert max(f["speed_kmh"] for f in moving) <= 27  # 25 km/h limit + GPS noise
    by_vehicle: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fix in fixes:
        by_vehicle[fix["vehicle_id"]].append(fix)
    gaps = []
    for track in by_vehicle.values():
        for a, b in itertools.pairwise(track):
            if a["state"] == b["state"] == "en_route":
                gaps.append(b["t"][17:23] != a["t"][17:23])
    assert statistics.mean(gaps) > 0.99  # ~1 Hz: consecutive fixes are in different seconds
    assert {f["state"] for f in fixes} == {"idle", "en_route", "waiting", "servicing", "returning"}


def test_tasks_follow_the_ground_handling_order() -> None:
    day = small_day()
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in records(day, "tasks"):
        by_task[event["task_id"]].append(event)
    completed: dict[str, dict[str, str]] = defaultdict(dict)  # flight -> type -> end time
    for task_id, events in by_task.items():
        statuses = [e["status"] for e in events]
        if statuses[-1] == "cancelled":
            continue
        flow = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
        assert flow == [s for s in TASK_FLOW if s in flow], task_id
        assert all(e["previous_status"] == p for e, p in zip(events[1:], statuses, strict=False))
        if "completed" in statuses:
            completed[events[0]["flight_id"]][events[0]["task_type"]] = events[-1]["actual_end"]
    pushed = 0
    flights = records(day, "flights")
    for ends in completed.values():
        if "pushback" in ends and "baggage_load" in ends:
            assert ends["baggage_load"] <= ends["pushback"]
            pushed += 1
    assert pushed > 0
    remote = {f["flight_id"] for f in flights if int(f["stand"]) >= 301}
    bus_flights = {
        e[0]["flight_id"] for e in by_task.values() if e[0]["task_type"] == "passenger_bus"
    }
    assert bus_flights and bus_flights <= remote


def test_a_clean_day_chunks_with_no_rejections(s3: S3Client) -> None:
    day = small_day()
    write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
    summary = chunk_day(s3, BUCKET, day.keys.airport, day.keys.service_date)
    for kind, counts in summary.counts.items():
        assert counts.accepted == day.counts[kind]
        assert counts.rejected == {} and counts.duplicates == 0


def test_messy_day_rejections_are_exactly_the_injected_ones(s3: S3Client) -> None:
    day = small_day(0.03)
    assert {"truncated", "duplicate", "out_of_order", "missing_field"} <= set(day.injected)
    assert {"no_motion", "impossible_speed"} <= set(day.injected)
    write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
    summary = chunk_day(s3, BUCKET, day.keys.airport, day.keys.service_date)
    rejected: dict[str, int] = defaultdict(int)
    amended: dict[str, int] = defaultdict(int)
    for kind, counts in summary.counts.items():
        assert counts.accepted == day.counts[kind], kind
        rejected["duplicate"] += counts.duplicates
        for reason, n in counts.rejected.items():
            rejected[reason] += n
        for reason, n in counts.amended.items():
            amended[reason] += n
    assert dict(rejected) == day.expected_rejections
    assert dict(amended) == day.expected_amendments


@pytest.mark.parametrize(
    "update",
    [{"vehicles": 3}, {"hours": 0}, {"messy_fraction": 0.9}, {"airport": "lower"}],
)
def test_bad_settings_are_refused(update: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        GeneratorSettings.model_validate({**SMALL.model_dump(), **update})


def test_a_window_past_the_end_of_the_day_is_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        generate_day(SMALL.model_copy(update={"start_hour": 20, "hours": 6}))


def test_cli_generates_to_a_directory_and_refuses_bad_flags(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate", "--out", str(tmp_path), "--vehicles", "12", "--flights", "10"]
    assert main([*args, "--start-hour", "8", "--hours", "1", "--quiet"]) == 0
    result = orjson.loads(capsys.readouterr().out)
    assert result["records"]["positions"] > 0
    assert (tmp_path / "raw/XLHI/2026-03-14/positions/08.jsonl.gz").exists()
    assert main([*args, "--hours", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dispatch-replay generate: error:") and "\n" not in err
