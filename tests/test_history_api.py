"""History queries over HTTP, checked against the ground truth computed from raw records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from chunker.format.keys import DayKeys
from functions.app.application import create_app
from functions.app.history.errors import FlightAmbiguous, FlightNotFound
from functions.app.history.queries import DEFAULT_TASK_LIMIT, resolve_leg
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


def test_unknown_entities_are_404_and_known_ones_with_no_data_are_empty(
    published: tuple[TestClient, Any, Any],
) -> None:
    """One rule (issue #17 item 9): an entity named in a path that the day does not know
    is 404 problem+json; a known one with nothing in the window is 200 and empty."""
    client, rows, day = published
    start, end = day.start_ms + 600_000, day.start_ms + 1_200_000
    window = {"start": start, "end": end}
    body = problem(client.get(f"{BASE}/XTST/vehicles/NOPE99/track", params=window), 404)
    assert body["type"].endswith("/vehicle-not-found")
    body = problem(client.get(f"{BASE}/XTST/days/2026-03-14/flights/NOPE123"), 404)
    assert body["type"].endswith("/flight-not-found")
    # V00 is in the fleet but silent after its first 20 minutes (tests/rawday.py).
    late = {"start": day.start_ms + 2 * 3_600_000, "end": day.start_ms + 2 * 3_600_000 + 60_000}
    silent = client.get(f"{BASE}/XTST/vehicles/V00/track", params=late)
    assert silent.status_code == 200
    own = [r for r in rows["positions"] if r["id"] == "V00" and r["t"] < late["end"]]
    assert silent.json()["fixes"] == own[-1:], "only its last known fix"
    # A filter naming an unknown id narrows a list to nothing: it is not a lookup.
    filtered = client.get(f"{BASE}/XTST/tasks", params={**window, "vehicle_id": "NOPE99"})
    assert filtered.status_code == 200 and filtered.json()["events"] == []


def test_a_flight_is_found_by_the_number_or_callsign_a_user_knows(
    published: tuple[TestClient, Any, Any],
) -> None:
    client, rows, _ = published
    leg = rows["flights"][0]
    by_id = client.get(f"{BASE}/XTST/days/2026-03-14/flights/{leg['id']}").json()
    for name in (leg["flight_number"], leg["callsign"], leg["callsign"].lower()):
        assert client.get(f"{BASE}/XTST/days/2026-03-14/flights/{name}").json() == by_id
    wrong_way = "arrival" if leg["movement"] == "departure" else "departure"
    problem(
        client.get(
            f"{BASE}/XTST/days/2026-03-14/flights/{leg['flight_number']}",
            params={"movement": wrong_way},
        ),
        404,
    )


def test_a_name_shared_by_several_legs_is_ambiguous_unless_narrowed() -> None:
    legs = [
        {"id": "J44821-20260314-A", "flight_number": "J44821", "callsign": "JDS4821",
         "movement": "arrival"},
        {"id": "J44821-20260314-D", "flight_number": "J44821", "callsign": "JDS4821",
         "movement": "departure"},
    ]  # fmt: skip
    with pytest.raises(FlightAmbiguous, match=r"J44821-20260314-A.*J44821-20260314-D"):
        resolve_leg(legs, "jds4821")
    assert resolve_leg(legs, "J44821", "departure") is legs[1]
    assert resolve_leg(legs, "J44821-20260314-A", "departure") is legs[0], "an id is exact"
    with pytest.raises(FlightNotFound):
        resolve_leg(legs, "J44822")


def test_task_pages_follow_the_cursor_to_the_whole_list(
    published: tuple[TestClient, Any, Any],
) -> None:
    client, rows, day = published
    start, end = day.start_ms, day.start_ms + 3 * 3_600_000
    expected = [r for r in rows["tasks"] if start <= r["t"] < end]
    default = client.get(f"{BASE}/XTST/tasks", params={"start": start, "end": end}).json()
    assert default["truncated"] is False and default["next"] is None
    assert len(expected) < 2_000 == DEFAULT_TASK_LIMIT, "the documented default"
    pages: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"start": start, "end": end, "limit": 7}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get(f"{BASE}/XTST/tasks", params=params).json()
        pages += page["events"]
        assert page["truncated"] is (page["next"] is not None)
        cursor = page["next"]
        if cursor is None:
            break
        assert len(page["events"]) == 7
    assert pages == expected, "every event once, in order, across same-tick page breaks"
    outside = {"start": start, "end": end, "cursor": f"{end}.0"}
    problem(client.get(f"{BASE}/XTST/tasks", params=outside), 422)
    problem(client.get(f"{BASE}/XTST/tasks", params={**outside, "cursor": "x.1"}), 422)
    problem(client.get(f"{BASE}/XTST/tasks", params={**outside, "limit": 10_001}), 422)
