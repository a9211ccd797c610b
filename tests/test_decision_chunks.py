"""Dispatch decisions in chunks and frames (issue 20, item 3): older chunks stay readable,
and a decision is filtered as its task. Exactly-once delivery across reconnects: the
resume tortures (tests/test_stream.py over HTTP, tests/test_player_core.py on a fake
clock); keyframes against the ground truth: tests/test_chunker.py (state_at)."""

from __future__ import annotations

from typing import Any

import orjson

from chunker.format.encoding import FORMAT_VERSION, decode_chunk, encode_chunk
from chunker.format.prepared import PreparedChunk
from functions.app.domain.sessions import Filters
from functions.app.stream.frames import FilterPlan, frame_events, snapshot_data

T0 = 1_773_417_600_000
FLEET = {"V1": "fuel_truck", "V2": "pushback_tug"}


def task(task_id: str, status: str, t: int, task_type: str = "refuel") -> dict[str, Any]:
    return {
        "id": task_id, "t": t, "flight_id": "F1", "task_type": task_type, "status": status,
        "previous_status": None, "vehicle_id": "V1", "stand": "S1",
        "planned_start": t, "planned_end": t + 600_000, "actual_start": None, "actual_end": None,
    }  # fmt: skip


def decision(task_id: str, t: int, task_type: str | None, status: str | None) -> dict[str, Any]:
    return {
        "id": task_id, "t": t, "flight_id": "F1", "decision": "assign", "vehicle_id": "V1",
        "previous_vehicle_id": None, "reason": None, "rule": "nearest_on_time", "stand": "S1",
        "required_at": t + 600_000, "candidates": [], "task_type": task_type,
        "task_status": status,
    }  # fmt: skip


def chunk(version: int, keyframe: dict[str, Any], ticks: list[dict[str, Any]]) -> PreparedChunk:
    document = {
        "format": "dispatch-replay.chunk", "format_version": version, "airport": "XTST",
        "service_date": "2026-03-14", "start": T0, "end": T0 + 60_000, "tick_ms": 1000,
        "task_retention_ms": 3_600_000, "keyframe": keyframe, "ticks": ticks,
    }  # fmt: skip
    return PreparedChunk.from_document("k", decode_chunk(encode_chunk(document)))


def test_a_format_2_chunk_is_read_with_no_decisions() -> None:
    assert FORMAT_VERSION == 3
    old = chunk(2, {"tasks": [task("K1", "assigned", T0 - 5000)]}, [{"t": T0 + 1000}])
    state = old.state_at(T0 + 2000)
    assert state.decisions == {} and state.rows().keyframe()["decisions"] == []
    snapshot = orjson.loads(snapshot_data(state, T0, FilterPlan(Filters(), FLEET), "start", 1))
    assert snapshot["decisions"] == [] and len(snapshot["tasks"]) == 1


def test_the_state_shows_the_decision_behind_each_active_task_only() -> None:
    keyframe = {
        "tasks": [task("K1", "assigned", T0 - 5000), task("K2", "en_route", T0 - 4000)],
        "decisions": [
            decision("K1", T0 - 5000, "refuel", "assigned"),
            decision("K2", T0 - 4000, "refuel", "assigned"),
        ],
    }
    ticks = [
        {"t": T0 + 1000, "tasks": [task("K2", "completed", T0 + 1000)]},
        {"t": T0 + 2000, "decisions": [decision("K9", T0 + 2000, None, None)]},  # no task
    ]
    state = chunk(3, keyframe, ticks).state_at(T0 + 3000)
    assert [d["id"] for d in state.rows().keyframe()["decisions"]] == ["K1"]
    snapshot = orjson.loads(snapshot_data(state, T0, FilterPlan(Filters(), FLEET), "start", 1))
    assert [d["id"] for d in snapshot["decisions"]] == ["K1"]


def test_a_decision_is_filtered_as_its_task() -> None:
    ticks = [
        {
            "t": T0 + 1000,
            "decisions": [
                decision("K1", T0 + 1000, "refuel", "assigned"),
                decision("K2", T0 + 1000, "pushback", "assigned"),
                decision("K3", T0 + 1000, None, None),  # its task unknown to the chunker
            ],
        }
    ]
    prepared = chunk(3, {}, ticks)

    def shown(filters: Filters) -> list[str]:
        events = dict(frame_events(prepared.ticks, T0 + 1000, FilterPlan(filters, FLEET)))
        body = events.get("dispatch_decision")
        return [] if body is None else [d["id"] for d in orjson.loads(body)["decisions"]]

    assert shown(Filters()) == ["K1", "K2", "K3"]
    assert shown(Filters(task_types=["refuel"])) == ["K1"]
    assert shown(Filters(vehicle_types=["pushback_tug"])) == ["K2"]
    assert shown(Filters(task_statuses=["en_route"])) == []
    assert shown(Filters(stands=["S1"])) == ["K1", "K2", "K3"]
    assert shown(Filters(vehicle_ids=["V2"])) == []
