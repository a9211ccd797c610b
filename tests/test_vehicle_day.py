"""A vehicle's day over HTTP (``GET …/days/{date}/vehicles/{id}/day``), checked against the
rules of docs/api.md (*A vehicle's day*) computed again here, plainly, from the raw task
records of the realistic synthetic slice (tests/ground_truth.py reads them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from functions.app.application import create_app
from tests.conftest import module_bucket
from tests.ground_truth import valid_rows
from tests.streaming import build_services
from tests.synthetic_slice import KEYS, publish_slice

DAY = f"/api/replay/airports/{KEYS.airport}/days/{KEYS.service_date}"
Row = dict[str, Any]
ACTIVE = ("en_route", "arrived", "in_progress")


@pytest.fixture(scope="module")
def published() -> Iterator[tuple[TestClient, dict[str, list[Row]], dict[str, str], int, int]]:
    with module_bucket() as s3:
        objects = publish_slice(s3)
        reference = orjson.loads(objects[KEYS.reference])
        fleet = {v["vehicle_id"]: v["vehicle_type"] for v in reference["vehicles"]}
        rows, day = valid_rows({k: v for k, v in objects.items() if "/positions" not in k}, KEYS)
        with TestClient(create_app(build_services(s3))) as client:
            yield client, rows, fleet, day.start_ms, day.end_ms


def truth_day(rows: dict[str, list[Row]], vehicle: str, start: int, end: int) -> Row:
    """The vehicle's tasks (its events only) and its busy / servicing time, by the rules."""
    by_task: dict[str, list[Row]] = {}
    for row in rows["tasks"]:
        by_task.setdefault(row["id"], []).append(row)
    tasks: dict[str, Row] = {}
    busy: list[tuple[int, int]] = []
    servicing: list[tuple[int, int]] = []
    for task_id, events in by_task.items():
        mine = [r for r in events if r["vehicle_id"] == vehicle]
        if mine:
            first: dict[str, int] = {}
            for r in mine:
                first.setdefault(r["status"], r["t"])
            plan = (mine[-1]["planned_start"], mine[-1]["planned_end"])
            tasks[task_id] = {
                "first": first,
                "plan": plan,
                "type": mine[-1]["task_type"],
                "flight": mine[-1]["flight_id"],
                "stand": mine[-1]["stand"],
                "handed_over": events[-1]["vehicle_id"] != vehicle,
            }
        since: int | None = None
        serving: int | None = None
        for r in events:
            on_it = r["status"] in ACTIVE and r["vehicle_id"] == vehicle
            if since is not None and not on_it:
                busy.append((since, r["t"]))
                if serving is not None:
                    servicing.append((serving, r["t"]))
                since = serving = None
            if on_it:
                since = r["t"] if since is None else since
                if r["status"] == "in_progress" and serving is None:
                    serving = r["t"]
        if since is not None:
            busy.append((since, end))
            if serving is not None:
                servicing.append((serving, end))
    return {"tasks": tasks, "busy": covered(busy), "servicing": covered(servicing)}


def covered(spans: list[tuple[int, int]]) -> int:
    """Length of the union of the spans."""
    total, reach = 0, -1
    for a, b in sorted(spans):
        total += max(0, b - max(a, reach))
        reach = max(reach, b)
    return total


def test_every_vehicles_day_equals_the_independent_computation(
    published: tuple[TestClient, dict[str, list[Row]], dict[str, str], int, int],
) -> None:
    client, rows, fleet, start, end = published
    with_tasks = 0
    for vehicle, vehicle_type in sorted(fleet.items()):
        body = client.get(f"{DAY}/vehicles/{vehicle}/day").json()
        truth = truth_day(rows, vehicle, start, end)
        assert (body["vehicle_id"], body["vehicle_type"]) == (vehicle, vehicle_type)
        assert (body["start"], body["end"]) == (start, end)
        assert [t["id"] for t in body["tasks"]] == sorted(
            truth["tasks"], key=lambda k: (min(truth["tasks"][k]["first"].values()), k)
        ), vehicle
        for task in body["tasks"]:
            expected = truth["tasks"][task["id"]]
            first = expected["first"]
            assert (task["task_type"], task["flight_id"], task["stand"]) == (
                expected["type"],
                expected["flight"],
                expected["stand"],
            )
            assert (task["planned_start"], task["planned_end"]) == expected["plan"]
            for name, status in (
                ("assigned", "assigned"),
                ("arrived", "arrived"),
                ("started", "in_progress"),
                ("completed", "completed"),
            ):
                assert task[name] == first.get(status), (task["id"], name)
            if "in_progress" in first:
                assert task["start_delay_ms"] == first["in_progress"] - expected["plan"][0]
            if "completed" in first:
                assert task["end_delay_ms"] == first["completed"] - expected["plan"][1]
            assert task["handed_over"] == expected["handed_over"]
        totals = body["totals"]
        window = end - start
        assert totals["tasks"] == len(truth["tasks"])
        assert totals["busy_ms"] == truth["busy"], vehicle
        assert totals["servicing_ms"] == truth["servicing"], vehicle
        assert totals["driving_ms"] == truth["busy"] - truth["servicing"]
        assert totals["idle_ms"] == window - truth["busy"]
        assert totals["utilisation"] == round(truth["busy"] / window, 4)
        with_tasks += bool(truth["tasks"])
    assert with_tasks >= len(fleet) // 2  # the slice keeps most of its fleet working


def test_unknown_vehicle_is_404_and_a_bad_id_422(
    published: tuple[TestClient, dict[str, list[Row]], dict[str, str], int, int],
) -> None:
    client = published[0]
    missing = client.get(f"{DAY}/vehicles/NO-SUCH-1/day")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["type"].endswith("vehicle-not-found")
    bad = client.get(f"{DAY}/vehicles/{'x' * 300}/day")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
