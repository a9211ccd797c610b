"""Session filters: one rule for every panel (issue #17 item 5), contradictions refused, and
co-watchers' changes never replaced silently (item 3).

The rule is checked against ``shown``, written here from the rule's table in docs/api.md
("Filters"), with the fleet's division of labour spelled out again (``DOES``); the product's
``FilterPlan`` is only ever the thing under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from chunker.format.day import ServiceDay
from chunker.format.prepared import PreparedChunk
from functions.app.application import create_app
from functions.app.dependencies import Services
from functions.app.domain.sessions import Filters
from functions.app.stream.frames import FilterPlan, frame_events, snapshot_data
from tests.streaming import build_services, publish_tiny_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Who does which task, as a controller knows it.
DOES = {
    "fuel_truck": {"refuel"},
    "catering_truck": {"catering"},
    "baggage_tractor": {"baggage_unload", "baggage_load"},
    "cleaning_van": {"cleaning"},
    "water_truck": {"water"},
    "lavatory_truck": {"lavatory"},
    "pushback_tug": {"pushback"},
    "passenger_bus": {"passenger_bus"},
}
TASK_TYPES = sorted(set().union(*DOES.values()))
STATUSES = ["created", "assigned", "en_route", "arrived", "in_progress", "completed", "cancelled"]
FLEET = {
    "FT1": "fuel_truck",
    "FT2": "fuel_truck",
    "BT1": "baggage_tractor",
    "PB1": "pushback_tug",
    "CT1": "catering_truck",
}
FLIGHTS = ["F1", "F2", "F3"]
STANDS = ["101", "102", "103"]
T0 = 1_773_446_400_000
Row = dict[str, Any]


def shown_vehicle(vehicle_id: str | None, f: Filters) -> bool:
    """A vehicle: its type, its id, and the task types its type does."""
    kind = FLEET.get(vehicle_id or "")
    return (
        (f.vehicle_types is None or kind in f.vehicle_types)
        and (f.vehicle_ids is None or vehicle_id in f.vehicle_ids)
        and (f.task_types is None or bool(DOES.get(kind or "", set()) & set(f.task_types)))
    )


def shown(kind: str, row: Row, f: Filters) -> bool:
    """Whether ``row`` (of ``kind``) is shown under ``f``, by the rule's table."""
    if kind == "vehicles":
        return shown_vehicle(row["id"], f)
    if kind == "tasks":
        doer = next(v for v, tasks in DOES.items() if row["task_type"] in tasks)
        return (
            (f.task_types is None or row["task_type"] in f.task_types)
            and (f.vehicle_types is None or doer in f.vehicle_types)
            and (f.vehicle_ids is None or row["vehicle_id"] in f.vehicle_ids)
            and (f.task_statuses is None or row["status"] in f.task_statuses)
            and (f.flights is None or row["flight_id"] in f.flights)
            and (f.stands is None or row["stand"] in f.stands)
        )
    if kind == "flights":
        return (f.flights is None or row["id"] in f.flights) and (
            f.stands is None or row["stand"] in f.stands
        )
    return (row["vehicle_id"] is None or shown_vehicle(row["vehicle_id"], f)) and (
        row["flight_id"] is None or f.flights is None or row["flight_id"] in f.flights
    )


def maybe(values: list[str]) -> st.SearchStrategy[list[str] | None]:
    return st.none() | st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


filters_strategy = st.builds(
    Filters,
    vehicle_types=maybe(sorted(DOES)),
    vehicle_ids=maybe(sorted(FLEET)),
    task_types=maybe(TASK_TYPES),
    task_statuses=maybe(STATUSES),
    flights=maybe(FLIGHTS),
    stands=maybe(STANDS),
)


@st.composite
def states(draw: st.DrawFn) -> dict[str, list[Row]]:
    """Rows of every kind over the fleet, flights and stands above."""
    vehicles = [
        {
            "id": v,
            "t": T0,
            "lat": 0.0,
            "lon": 0.0,
            "heading": 0.0,
            "speed_kmh": 0.0,
            "state": "idle",
        }
        for v in FLEET
    ]
    tasks = [
        {
            "id": f"K{n}",
            "t": T0,
            "flight_id": draw(st.sampled_from(FLIGHTS)),
            "task_type": task_type,
            "status": draw(st.sampled_from(STATUSES)),
            "previous_status": None,
            # Assigned to a vehicle of the right type, or to none (created / cancelled).
            "vehicle_id": draw(
                st.none()
                | st.sampled_from(
                    [v for v, kind in FLEET.items() if task_type in DOES[kind]] or [None]
                )
            ),
            "stand": draw(st.sampled_from(STANDS)),
            "planned_start": T0,
            "planned_end": T0 + 60_000,
            "actual_start": None,
            "actual_end": None,
        }
        for n, task_type in enumerate(draw(st.lists(st.sampled_from(TASK_TYPES), max_size=12)))
    ]
    flights = [
        {"id": flight, "t": T0, "stand": draw(st.sampled_from(STANDS)), "status": "on_block"}
        for flight in FLIGHTS
    ]
    notifications = [
        {
            "id": f"N{n}",
            "t": T0,
            "level": "info",
            "code": "task_late",
            "text": "late",
            "flight_id": draw(st.none() | st.sampled_from(FLIGHTS)),
            "task_id": None,
            "vehicle_id": draw(st.none() | st.sampled_from(sorted(FLEET))),
        }
        for n in range(draw(st.integers(0, 8)))
    ]
    return {
        "vehicles": vehicles,
        "tasks": tasks,
        "flights": flights,
        "notifications": notifications,
    }


def ids(rows: list[Row]) -> list[str]:
    return [row["id"] for row in rows]


@settings(max_examples=150, deadline=None)
@given(state=states(), filters=filters_strategy)
def test_one_rule_for_the_map_the_lists_and_the_notifications(
    state: dict[str, list[Row]], filters: Filters
) -> None:
    def chunk(keyframe: dict[str, list[Row]], ticks: list[dict[str, Any]]) -> PreparedChunk:
        document = {"start": T0, "end": T0 + 60_000, "tick_ms": 1_000, "task_retention_ms": 0}
        return PreparedChunk.from_document("k", {**document, "keyframe": keyframe, "ticks": ticks})

    plan = FilterPlan(filters, FLEET)
    at_t0 = chunk(state, []).state_at(T0)
    snapshot = orjson.loads(snapshot_data(at_t0, T0, plan, "seek", 1))
    ticks = chunk({}, [{"t": T0, **state}]).ticks
    frame = {name: orjson.loads(data) for name, data in frame_events(ticks, T0 + 1_000, plan)}
    events = {
        "vehicles": "vehicle_update",
        "tasks": "task_update",
        "flights": "flight_update",
        "notifications": "notification",
    }
    for kind, rows in state.items():
        expected = [row["id"] for row in rows if shown(kind, row, filters)]
        assert sorted(ids(snapshot[kind])) == sorted(expected), kind
        framed = frame.get(events[kind], {}).get(kind, [])
        assert sorted(ids(framed)) == sorted(expected), kind


def test_a_vehicle_type_narrows_the_tasks_and_notifications_too() -> None:
    """The issue's case: fuel trucks chosen, the task list must not list baggage tasks."""
    plan = FilterPlan(Filters(vehicle_types=["fuel_truck"]), FLEET)
    assert plan.vehicles == {"FT1", "FT2"}
    assert plan.task_types == {"refuel"}
    assert plan.flights is None and plan.stands is None  # the board is not about vehicles


# --- contradictions and co-watchers through the control API ----------------------------

DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")
START = DAY.start_ms + 1_800_000
END = DAY.start_ms + 2 * 3_600_000
SESSIONS = "/api/replay/sessions"
BOB = {"X-Replay-User": "bob"}


@pytest.fixture
def api(s3: S3Client) -> Iterator[TestClient]:
    publish_tiny_day(s3)
    services: Services = build_services(s3)
    with TestClient(create_app(services)) as client:
        yield client


def create(api: TestClient, **body: Any) -> dict[str, Any]:
    response = api.post(SESSIONS, json={"airport": "XTST", "start": START, "end": END, **body})
    assert response.status_code == 201, response.text
    session: dict[str, Any] = response.json()
    return session


def control(
    api: TestClient, session_id: str, headers: dict[str, str] | None = None, **body: Any
) -> Any:
    return api.post(f"{SESSIONS}/{session_id}/control", json=body, headers=headers or {})


CONTRADICTIONS: list[tuple[dict[str, Any], str, list[str]]] = [
    (
        {"vehicle_types": ["fuel_truck"], "task_types": ["baggage_load"]},
        "vehicle-type-vs-task-type",
        ["vehicle_types", "task_types"],
    ),
    # V01 is the tiny day's pushback tug (tests/rawday.py): it does no refuel.
    (
        {"vehicle_ids": ["V01"], "task_types": ["refuel"]},
        "vehicle-id-vs-type",
        ["vehicle_ids", "task_types"],
    ),
    ({"vehicle_ids": ["NOPE"]}, "unknown-vehicles", ["vehicle_ids"]),
    ({"flights": ["NOPE"]}, "unknown-flights", ["flights"]),
    ({"stands": []}, "empty", ["stands"]),
]


def test_filters_that_can_match_nothing_are_refused_and_say_why(api: TestClient) -> None:
    session = create(api)
    for filters, code, named in CONTRADICTIONS:
        response = control(api, session["session_id"], action="set_filters", filters=filters)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["type"].endswith("/contradictory-filters")
        assert [(c["code"], c["filters"]) for c in problem["conflicts"]] == [(code, named)]
        after = api.get(f"{SESSIONS}/{session['session_id']}").json()
        assert after["version"] == session["version"] and after["filters"] == session["filters"]
        created = api.post(
            SESSIONS, json={"airport": "XTST", "start": START, "end": END, "filters": filters}
        )
        assert created.status_code == 422 and created.json()["conflicts"][0]["code"] == code


def test_a_stale_filter_change_is_refused_with_the_filters_now_and_who_set_them(
    api: TestClient,
) -> None:
    session = create(api)
    sid = session["session_id"]
    share = api.post(f"{SESSIONS}/{sid}/shares").json()["share_token"]
    assert api.post(f"{SESSIONS}/join", json={"share_token": share}, headers=BOB).status_code == 200
    seen = api.get(f"{SESSIONS}/{sid}", headers=BOB).json()["version"]  # what both show
    # Alice filters to fuel trucks; Bob, who still shows the version before, applies his.
    mine = control(
        api,
        sid,
        action="set_filters",
        filters={"vehicle_types": ["fuel_truck"]},
        expected_version=seen,
    )
    assert mine.status_code == 200 and mine.json()["filters_by"] == "local-user"
    stale = control(
        api,
        sid,
        headers={**BOB, "If-Match": f'"{seen}"'},
        action="set_filters",
        filters={"task_statuses": ["in_progress"]},
    )
    assert stale.status_code == 409
    current = stale.json()["current"]
    assert current["filters"]["vehicle_types"] == ["fuel_truck"]
    assert current["filters_by"] == "local-user"
    # On top of it: both filters hold, and Bob is the one who set them.
    merged = {**current["filters"], "task_statuses": ["in_progress"]}
    again = control(
        api,
        sid,
        headers={**BOB, "If-Match": f'"{current["version"]}"'},
        action="set_filters",
        filters=merged,
    )
    assert again.status_code == 200, again.text
    assert again.json()["filters"]["vehicle_types"] == ["fuel_truck"]
    assert again.json()["filters"]["task_statuses"] == ["in_progress"]
    assert again.json()["filters_by"] == "bob"
