"""Dispatch decisions: the raw contract, its tolerant validation, and the generator's records.

The generator's decisions are checked against what else it recorded (task events, GPS
fixes, the reference fleet), not against the planner's code.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from functools import cache
from typing import Any

import orjson
import pytest

from chunker.batch.validate import (
    DUPLICATE,
    INVALID_CANDIDATE,
    INVALID_JSON,
    OUTSIDE_SERVICE_DAY,
    SCHEMA_VIOLATION,
    UNKNOWN_CANDIDATE,
    UNKNOWN_STAND,
    UNKNOWN_VEHICLE,
    Rules,
)
from chunker.format.day import ServiceDay, to_ms
from chunker.format.records import TASK_VEHICLE_TYPE, Reference, TaskType
from synthetic import GeneratedDay, GeneratorSettings, generate_day
from tests.rawday import tiny_reference
from tests.test_synthetic import records

DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")
RULES = Rules.for_day(tiny_reference(), DAY)


def ms(text: str) -> int:
    return to_ms(dt.datetime.fromisoformat(text))


def candidate(vehicle_id: str = "V01", **changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "state": "idle",
        "lat": 29.8001,
        "lon": 123.2003,
        "distance_m": 812.5,
        "free_at": "2026-03-14T07:30:00+08:00",
        "eta": "2026-03-14T08:12:00.500+08:00",
        "on_time": True,
        "busy_ms": 5_400_000,
        "score": 380_000,
        "excluded": None,
    }
    record.update(changes)
    return record


def decision(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "t": "2026-03-14T08:00:00+08:00",
        "task_id": "T1",
        "flight_id": "F1",
        "decision": "reassign",
        "vehicle_id": "V01",
        "previous_vehicle_id": "V02",
        "reason": "V02 broke down",
        "rule": "on_time_then_shortest_drive",
        "stand": "S1",
        "required_at": "2026-03-14T08:15:00+08:00",
        "candidates": [candidate(), candidate("V02", excluded="out_of_service", score=None)],
    }
    record.update(changes)
    return record


def parse(record: Any) -> tuple[list[Any], list[tuple[str, str]], Counter[str]]:
    """parse_lines over one line: accepted rows, (reason, detail) of rejects, amendments."""
    line = record if isinstance(record, bytes) else orjson.dumps(record)
    rows, rejects, amended = RULES.parse_lines("decisions", [(1, line)], None)
    return rows, [(r[1], r[2]) for r in rejects], Counter(reason for (_, reason) in amended)


# The row of candidate() (times in epoch ms).
CANDIDATE_ROW = {
    "vehicle_id": "V01",
    "state": "idle",
    "lat": 29.8001,
    "lon": 123.2003,
    "distance_m": 812.5,
    "free_at": ms("2026-03-14T07:30:00+08:00"),
    "eta": ms("2026-03-14T08:12:00.500+08:00"),
    "on_time": True,
    "busy_ms": 5_400_000,
    "score": 380_000,
    "excluded": None,
}


def test_a_decision_row_keeps_every_recorded_value() -> None:
    rows, rejects, amended = parse(decision())
    assert rejects == [] and amended == Counter()
    excluded = {"vehicle_id": "V02", "score": None, "excluded": "out_of_service"}
    assert rows == [
        {
            "id": "T1",
            "t": ms("2026-03-14T08:00:00+08:00"),
            "flight_id": "F1",
            "decision": "reassign",
            "vehicle_id": "V01",
            "previous_vehicle_id": "V02",
            "reason": "V02 broke down",
            "rule": "on_time_then_shortest_drive",
            "stand": "S1",
            "required_at": ms("2026-03-14T08:15:00+08:00"),
            "candidates": [CANDIDATE_ROW, {**CANDIDATE_ROW, **excluded}],
        }
    ]
    assert RULES.parse("decisions", orjson.dumps(decision())) == rows[0]


def test_only_time_task_and_kind_are_required() -> None:
    bare = {"t": "2026-03-14T08:00:00Z", "task_id": "T1", "decision": "escalate_no_vehicle"}
    rows, rejects, _ = parse({**bare, "from_a_newer_export": 1})
    assert rejects == []
    assert rows == [
        {
            "id": "T1",
            "t": ms("2026-03-14T08:00:00Z"),
            "flight_id": None,
            "decision": "escalate_no_vehicle",
            "vehicle_id": None,
            "previous_vehicle_id": None,
            "reason": None,
            "rule": None,
            "stand": None,
            "required_at": None,
            "candidates": [],
        }
    ]
    only_ids = parse({**bare, "candidates": [{"vehicle_id": "V03"}]})[0][0]["candidates"]
    assert only_ids == [dict.fromkeys(candidate(), None) | {"vehicle_id": "V03"}]


@pytest.mark.parametrize(
    "bad",
    [
        {"score": "high"},
        {"score": "1e400"},  # written as a number below: read as infinity
        {"eta": "2026-03-14T08:12:00"},  # no offset
        {"on_time": "maybe"},
        {"busy_ms": -1},
        {"lat": 95.0},
        {"distance_m": -3.0},
        {"state": "flying"},
        {"excluded": "Out Of Service"},
        {"vehicle_id": None},
    ],
)
def test_a_bad_candidate_is_dropped_and_the_decision_kept(bad: dict[str, Any]) -> None:
    record = decision(candidates=[candidate("V03"), {**candidate("V04"), **bad}, candidate("V05")])
    line = orjson.dumps(record).replace(b'"1e400"', b"1e400")
    rows, rejects, amended = parse(line)
    assert rejects == []
    assert [c["vehicle_id"] for c in rows[0]["candidates"]] == ["V03", "V05"]
    assert amended == Counter({INVALID_CANDIDATE: 1})


def test_a_candidate_outside_the_fleet_is_dropped_and_counted() -> None:
    record = decision(candidates=[candidate("ZZ-9"), candidate("V03"), candidate("ZZ-8")])
    rows, rejects, amended = parse(record)
    assert rejects == []
    assert [c["vehicle_id"] for c in rows[0]["candidates"]] == ["V03"]
    assert amended == Counter({UNKNOWN_CANDIDATE: 1})


@pytest.mark.parametrize(
    ("record", "reason", "detail"),
    [
        ({"decision": None}, SCHEMA_VIOLATION, "decision:"),
        ({"decision": "teleport"}, SCHEMA_VIOLATION, "decision:"),
        ({"task_id": "no spaces"}, SCHEMA_VIOLATION, "task_id:"),
        ({"t": "2026-03-14T08:00:00"}, SCHEMA_VIOLATION, "t:"),
        ({"candidates": {"vehicle_id": "V01"}}, SCHEMA_VIOLATION, "candidates:"),
        ({"candidates": [{"vehicle_id": "V01"}] * 501}, SCHEMA_VIOLATION, "candidates:"),
        ({"reason": ""}, SCHEMA_VIOLATION, "reason:"),
        ({"vehicle_id": "ZZ-99"}, UNKNOWN_VEHICLE, "vehicle_id 'ZZ-99'"),
        ({"previous_vehicle_id": "ZZ-98"}, UNKNOWN_VEHICLE, "previous_vehicle_id 'ZZ-98'"),
        ({"stand": "S404"}, UNKNOWN_STAND, "S404"),
        ({"t": "2026-03-15T00:00:00+08:00"}, OUTSIDE_SERVICE_DAY, "outside 2026-03-14"),
    ],
)
def test_bad_decisions_are_quarantined_with_their_reason(
    record: dict[str, Any], reason: str, detail: str
) -> None:
    rows, rejects, _ = parse(decision(**record))
    assert rows == []
    assert len(rejects) == 1 and rejects[0][0] == reason and detail in rejects[0][1], rejects


def test_a_decision_file_is_counted_exactly() -> None:
    good = orjson.dumps(decision())
    lines = [
        good,
        good,  # repeats the previous record of the task at that time
        good[:40],
        b"[1, 2]",
        orjson.dumps(decision(t="2026-03-14T08:01:00+08:00", vehicle_id="ZZ-1")),
        orjson.dumps(decision(t="2026-03-14T08:02:00+08:00", candidates=[{"vehicle_id": 7}])),
        orjson.dumps(decision(t="2026-03-14T08:03:00+08:00", candidates=[candidate("ZZ-2")])),
        orjson.dumps(decision(t="2026-03-14T08:04:00+08:00", task_id="T2")),
        orjson.dumps(decision(t="2026-03-14T09:00:00+08:00", task_id="T3")),
    ]
    rows, rejects, amended = RULES.parse_lines(
        "decisions",
        list(enumerate(lines, start=1)),
        (ms("2026-03-14T08:00:00+08:00"), ms("2026-03-14T09:00:00+08:00")),
    )
    assert [(r["id"], r["t"] % 3_600_000 // 60_000) for r in rows] == [
        ("T1", 0),
        ("T1", 2),
        ("T1", 3),
        ("T2", 4),
    ]
    assert Counter(r[1] for r in rejects) == {
        DUPLICATE: 1,
        INVALID_JSON: 1,
        SCHEMA_VIOLATION: 1,
        UNKNOWN_VEHICLE: 1,
        "outside_file_hour": 1,
    }
    assert sorted(r[0] for r in rejects) == [2, 3, 4, 5, 9]
    assert Counter(reason for (_, reason) in amended) == {
        INVALID_CANDIDATE: 1,
        UNKNOWN_CANDIDATE: 1,
    }


# --- the generator's decisions -----------------------------------------------------------

SMALL = GeneratorSettings(vehicles=30, flights=60, start_hour=6, hours=3)
# Too few vehicles for the programme: tasks where no vehicle can be on time.
SHORT_OF_VEHICLES = SMALL.model_copy(update={"vehicles": 10})
GRACE_MS = 30_000  # the generator's rule counts a vehicle within 30 s as on time


@cache
def generated(settings: GeneratorSettings) -> GeneratedDay:
    return generate_day(settings)


@pytest.fixture(scope="module", params=[SMALL, SHORT_OF_VEHICLES], ids=["small", "short"])
def day(request: pytest.FixtureRequest) -> GeneratedDay:
    settings: GeneratorSettings = request.param
    return generated(settings)


def test_every_assignment_has_its_decision(day: GeneratedDay) -> None:
    """Each `assigned` task event has exactly one decision at its time naming its vehicle
    (a second one is a reassignment from the first); no decision without an assignment."""
    assignments: dict[tuple[str, int], list[str]] = defaultdict(list)
    previous: dict[tuple[str, int], str | None] = {}
    for task_id, events in _by_task(records(day, "tasks")).items():
        vehicle: str | None = None
        for event in events:
            if event["status"] == "assigned":
                key = (task_id, ms(event["t"]))
                assignments[key].append(event["vehicle_id"])
                previous[key] = vehicle
                vehicle = event["vehicle_id"]
    decisions = records(day, "decisions")
    assert len(decisions) == day.counts["decisions"] == len(assignments) > 0
    seen = set()
    for record in decisions:
        key = (record["task_id"], ms(record["t"]))
        assert key not in seen and assignments[key] == [record["vehicle_id"]], key
        seen.add(key)
        if previous[key] is None:
            assert record["decision"] in ("assign", "escalate_no_vehicle")
            assert record["previous_vehicle_id"] is None
        else:
            assert record["decision"] == "reassign" and record["reason"]
            assert record["previous_vehicle_id"] == previous[key]


def test_the_chosen_candidate_is_the_best_under_the_recorded_rule(day: GeneratedDay) -> None:
    reference = Reference.model_validate_json(day.objects[day.keys.reference])
    fleet: dict[str, list[str]] = defaultdict(list)
    for vehicle in reference.vehicles:
        fleet[vehicle.vehicle_type.value].append(vehicle.vehicle_id)
    arrived = {
        (e["task_id"], e["vehicle_id"]): ms(e["t"])
        for e in records(day, "tasks")
        if e["status"] == "arrived"
    }
    task_type = {e["task_id"]: e["task_type"] for e in records(day, "tasks")}
    kinds: Counter[str] = Counter()
    for record in records(day, "decisions"):
        kinds[record["decision"]] += 1
        if record["rule"] == "manual":  # an operator's first assignment, later overridden
            assert record["decision"] == "assign" and record["candidates"] == []
            continue
        assert record["rule"] == "on_time_then_shortest_drive"
        candidates = record["candidates"]
        vehicle_type = TASK_VEHICLE_TYPE[TaskType(task_type[record["task_id"]])].value
        # Every vehicle of the task's type was considered, in fleet order.
        assert [c["vehicle_id"] for c in candidates] == fleet[vehicle_type]
        best = min(c["score"] for c in candidates)
        first_best = next(c for c in candidates if c["score"] == best)
        assert first_best["vehicle_id"] == record["vehicle_id"]
        required = ms(record["required_at"])
        for c in candidates:
            assert c["on_time"] == (ms(c["eta"]) < required + GRACE_MS), c
            assert ms(c["free_at"]) <= ms(c["eta"]) and c["busy_ms"] >= 0
        # On time first, then the score: no late candidate beats an on-time one.
        on_time = [c for c in candidates if c["on_time"]]
        if on_time:
            assert record["decision"] != "escalate_no_vehicle" and first_best["on_time"]
            assert max(c["score"] for c in on_time) < min(
                (c["score"] for c in candidates if not c["on_time"]), default=float("inf")
            )
        else:
            assert record["decision"] == "escalate_no_vehicle" and record["reason"]
        # The vehicle sent drove as the dispatcher predicted: it arrived at its ETA (where
        # the arrival falls inside the generated hours).
        sent = (record["task_id"], record["vehicle_id"])
        if sent in arrived:
            assert arrived[sent] == ms(first_best["eta"]), sent
            kinds["arrived"] += 1
    assert kinds["assign"] > 0 and kinds["arrived"] > 0.9 * kinds["assign"]
    if day is generated(SHORT_OF_VEHICLES):
        assert kinds["escalate_no_vehicle"] > 0


def test_candidate_states_are_what_their_vehicles_reported(day: GeneratedDay) -> None:
    """A candidate's recorded state is its vehicle's GPS state at the decision (the fix
    just before or just after it: a state can change between two fixes)."""
    fixes: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for fix in records(day, "positions"):
        fixes[fix["vehicle_id"]].append((ms(fix["t"]), fix["state"]))
    times = {v: [t for t, _ in track] for v, track in fixes.items()}
    checked = 0
    for record in records(day, "decisions"):
        t = ms(record["t"])
        for c in record["candidates"]:
            if c["state"] is None:
                continue
            track, at = fixes[c["vehicle_id"]], times[c["vehicle_id"]]
            before = track[bisect_right(at, t) - 1][1] if bisect_right(at, t) else None
            after = track[bisect_left(at, t)][1] if bisect_left(at, t) < len(track) else None
            assert c["state"] in (before, after), (record["task_id"], c["vehicle_id"])
            checked += 1
    assert checked > 0


def _by_task(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_task[event["task_id"]].append(event)
    return by_task
