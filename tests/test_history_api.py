"""History queries over HTTP, checked against the ground truth computed from raw records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from chunker.format.keys import DayKeys
from functions.app.application import create_app
from tests.ground_truth import state_at, valid_rows
from tests.streaming import CONFIG, build_services, publish_tiny_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BASE = "/api/replay/airports"
KEYS = DayKeys("XTST", "2026-03-14")


@pytest.fixture
def published(s3: S3Client) -> Iterator[tuple[TestClient, dict[str, Any], Any]]:
    objects = publish_tiny_day(s3)
    rows, day = valid_rows(objects, KEYS)
    with TestClient(create_app(build_services(s3))) as client:
        yield client, rows, day


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def test_airports_days_and_manifest(published: tuple[TestClient, Any, Any]) -> None:
    client, _, _ = published
    assert client.get(BASE).json() == {"airports": [{"airport": "XTST", "days": ["2026-03-14"]}]}
    assert client.get(f"{BASE}/XTST/days").json()["days"] == ["2026-03-14"]
    manifest = client.get(f"{BASE}/XTST/days/2026-03-14/manifest").json()
    assert manifest["airport"]["airport_id"] == "XTST"
    assert manifest["histogram"] and manifest["chunks"]
    problem(client.get(f"{BASE}/XNOP/days/2026-03-14/manifest"), 404)
    problem(client.get(f"{BASE}/XTST/days/2026-03-15/manifest"), 404)
    problem(client.get(f"{BASE}/xx!/days"), 422)


@pytest.mark.parametrize("offset_ms", [0, 1, 999, 1_000, 1_800_500, 5_400_000, 10_799_999])
def test_state_at_t_equals_the_ground_truth(
    published: tuple[TestClient, Any, Any], offset_ms: int
) -> None:
    client, rows, day = published
    t = day.start_ms + offset_ms
    body = client.get(f"{BASE}/XTST/state", params={"t": t}).json()
    truth = state_at(rows, day, CONFIG.tick_ms, t)
    assert body["t"] == t
    for kind in ("vehicles", "tasks", "flights", "notifications"):
        assert body[kind] == truth[kind], kind


def test_state_outside_published_days_is_404(published: tuple[TestClient, Any, Any]) -> None:
    client, _, day = published
    problem(client.get(f"{BASE}/XTST/state", params={"t": day.end_ms + 1}), 404)
    problem(client.get(f"{BASE}/XTST/state", params={"t": "yesterday"}), 422)


def test_vehicle_track_is_the_vehicles_fixes(published: tuple[TestClient, Any, Any]) -> None:
    client, rows, day = published
    vehicle = rows["positions"][0]["id"]
    start, end = day.start_ms + 600_000, day.start_ms + 1_200_000
    body = client.get(
        f"{BASE}/XTST/vehicles/{vehicle}/track", params={"start": start, "end": end}
    ).json()
    tick = CONFIG.tick_ms
    first_tick = start - (start - day.start_ms) % tick
    own = [r for r in rows["positions"] if r["id"] == vehicle]
    known = [r for r in own if r["t"] < first_tick + tick][-1:]
    last_per_tick: dict[int, dict[str, Any]] = {}
    for row in own:
        tick_start = row["t"] - (row["t"] - day.start_ms) % tick
        if first_tick < tick_start < end:
            last_per_tick[tick_start] = row
    assert body["fixes"] == known + [last_per_tick[k] for k in sorted(last_per_tick)]
    assert len(body["fixes"]) > 10, "the tiny day moves its vehicles in the first hours"
    problem(
        client.get(
            f"{BASE}/XTST/vehicles/{vehicle}/track",
            params={"start": end, "end": start},
        ),
        422,
    )
    problem(
        client.get(
            f"{BASE}/XTST/vehicles/{vehicle}/track",
            params={"start": start, "end": start + 7 * 3_600_000},
        ),
        422,
    )


def test_flight_with_its_tasks(published: tuple[TestClient, Any, Any]) -> None:
    client, rows, _ = published
    flight_id = rows["flights"][0]["id"]
    body = client.get(f"{BASE}/XTST/days/2026-03-14/flights/{flight_id}").json()
    assert body["flight"]["id"] == flight_id
    window = body["window"]
    expected: dict[str, list[dict[str, Any]]] = {}
    for row in rows["tasks"]:
        if row["flight_id"] == flight_id and window["start"] <= row["t"] < window["end"]:
            expected.setdefault(row["id"], []).append(row)
    assert expected, "the first flight has tasks"
    assert {task["task"]["id"]: task["events"] for task in body["tasks"]} == expected
    assert all(task["task"] == task["events"][-1] for task in body["tasks"])
    problem(client.get(f"{BASE}/XTST/days/2026-03-14/flights/NOPE123"), 404)


def test_task_events_in_a_window_with_filters(published: tuple[TestClient, Any, Any]) -> None:
    client, rows, day = published
    start, end = day.start_ms, day.start_ms + 3 * 3_600_000
    everything = client.get(f"{BASE}/XTST/tasks", params={"start": start, "end": end}).json()
    assert everything["events"] == [r for r in rows["tasks"] if start <= r["t"] < end]
    assert everything["truncated"] is False
    completed = client.get(
        f"{BASE}/XTST/tasks", params={"start": start, "end": end, "status": "completed"}
    ).json()["events"]
    assert completed and all(r["status"] == "completed" for r in completed)
    assert completed == [r for r in everything["events"] if r["status"] == "completed"]
    limited = client.get(
        f"{BASE}/XTST/tasks", params={"start": start, "end": end, "limit": 3}
    ).json()
    assert len(limited["events"]) == 3 and limited["truncated"] is True
    problem(client.get(f"{BASE}/XTST/tasks", params={"start": start, "end": start}), 422)
    problem(
        client.get(f"{BASE}/XTST/tasks", params={"start": start, "end": end, "status": "x"}), 422
    )
