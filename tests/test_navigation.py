"""The day's navigable events over HTTP (``GET …/days/{date}/events``), checked against the
rules of docs/api.md (*Events*) computed again here, plainly and per entity, from the raw
records of the realistic synthetic slice (tests/ground_truth.py reads them)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.app.application import create_app
from tests.conftest import module_bucket
from tests.ground_truth import valid_rows
from tests.streaming import build_services
from tests.synthetic_slice import KEYS, publish_slice

DAY = f"/api/replay/airports/{KEYS.airport}/days/{KEYS.service_date}"
Row = dict[str, Any]
LATE_MS = 15 * 60_000  # the documented threshold (the KPIs' D15)


@pytest.fixture(scope="module")
def published() -> Iterator[tuple[TestClient, dict[str, list[Row]], int]]:
    with module_bucket() as s3:
        objects = publish_slice(s3)
        rows, day = valid_rows({k: v for k, v in objects.items() if "/positions" not in k}, KEYS)
        with TestClient(create_app(build_services(s3))) as client:
            yield client, rows, day.end_ms


def by_entity(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row["id"], []).append(row)
    return grouped


def truth_events(rows: dict[str, list[Row]], day_end: int) -> set[tuple[str, int, str]]:
    """(kind, t, id) of every navigable event, by the documented rules."""
    found: set[tuple[str, int, str]] = set()
    for leg_id, events in by_entity(rows["flights"]).items():
        block_status = "on_block" if events[0]["movement"] == "arrival" else "off_block"
        blocked = [r for r in events if r["status"] == block_status]
        if blocked:
            first = blocked[0]
            block = first["actual"] if first["actual"] is not None else first["t"]
            if block - first["scheduled"] > LATE_MS:
                found.add((f"late_{block_status}", block, leg_id))
    for note in rows["notifications"]:
        if note["code"] == "vehicle_conflict":
            found.add(("conflict", note["t"], note["id"]))
    for task_id, events in by_entity(rows["tasks"]).items():
        for before, after in pairwise(events):
            vehicle = after["vehicle_id"]
            if after["status"] == "assigned" and before["vehicle_id"] not in (None, vehicle):
                found.add(("reassignment", after["t"], task_id))
        # Overdue: the first instant x with the task unfinished and x > planned_end.
        for index, event in enumerate(events):
            following = events[index + 1]["t"] if index + 1 < len(events) else day_end
            if event["status"] in ("completed", "cancelled"):
                continue
            x = max(event["t"], event["planned_end"] + 1)
            if x < following:
                found.add(("overdue_task", x, task_id))
                break
    return found


def key_of(event: Row) -> tuple[str, int, str]:
    named = event.get("notification_id") or event.get("task_id") or event["flight_id"]
    return event["kind"], event["t"], named


def test_the_days_events_equal_the_rules_over_raw_records(
    published: tuple[TestClient, dict[str, list[Row]], int],
) -> None:
    client, rows, day_end = published
    response = client.get(f"{DAY}/events")
    assert response.status_code == 200, response.text
    body = response.json()
    events = body["events"]
    assert body["end"] == day_end and not body["truncated"]
    truth = truth_events(rows, day_end)
    assert {key_of(e) for e in events} == truth
    assert len(events) == len(truth)  # nothing twice
    kinds = {kind for kind, _, _ in truth}
    # The slice is late and short of vehicles: every kind occurs (else the test proves little).
    assert kinds == {"late_on_block", "late_off_block", "conflict", "reassignment", "overdue_task"}
    assert body["counts"] == {k: sum(1 for e in truth if e[0] == k) for k in sorted(kinds)}
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    # What a click selects: the ids each kind names, as the raw records say.
    tasks = by_entity(rows["tasks"])
    for event in events:
        if event["kind"] == "reassignment":
            history = [r for r in tasks[event["task_id"]] if r["t"] <= event["t"]]
            assert event["vehicle_id"] == history[-1]["vehicle_id"]
            assert event["from_vehicle_id"] == history[-2]["vehicle_id"]
        if event["kind"] == "overdue_task":
            assert event["flight_id"] == tasks[event["task_id"]][0]["flight_id"]


def test_kinds_filter_and_limit(published: tuple[TestClient, dict[str, list[Row]], int]) -> None:
    client, _, _ = published
    every = client.get(f"{DAY}/events").json()["events"]
    response = client.get(f"{DAY}/events", params={"kind": ["conflict", "late_off_block"]})
    assert response.status_code == 200
    asked = response.json()
    assert asked["events"] == [e for e in every if e["kind"] in ("conflict", "late_off_block")]
    assert set(asked["counts"]) == {"conflict", "late_off_block"}
    cut = client.get(f"{DAY}/events", params={"kind": "conflict", "limit": 3}).json()
    assert cut["events"] == [e for e in asked["events"] if e["kind"] == "conflict"][:3]
    assert cut["truncated"] and cut["counts"]["conflict"] > 3


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/events?kind=bogus", 422),
        ("/events?limit=0", 422),
        ("/events?limit=50001", 422),
    ],
)
def test_bad_input_is_a_problem(
    published: tuple[TestClient, dict[str, list[Row]], int], path: str, status: int
) -> None:
    client, _, _ = published
    response = client.get(f"{DAY}{path}")
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_day_not_published_is_404(
    published: tuple[TestClient, dict[str, list[Row]], int],
) -> None:
    client, _, _ = published
    response = client.get(f"/api/replay/airports/{KEYS.airport}/days/2026-01-01/events")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


# --- the incident report for a bookmark (item 7) ------------------------------------------

SESSIONS = "/api/replay/sessions"


def test_incident_report_for_a_bookmark_range(
    published: tuple[TestClient, dict[str, list[Row]], int],
) -> None:
    """One self-contained HTML file: nothing it would fetch, no script; the KPIs and events
    of the bookmark's range equal the raw records'; the bookmarked flight's turnaround is
    drawn with its tasks; the map rings the bookmarked vehicle; the session's notes in
    the range are listed, escaped."""
    client, rows, day_end = published
    first = min(r["t"] for r in rows["tasks"])
    start, end = first + 30 * 60_000, first + 90 * 60_000
    departures = {
        r["id"]: r for r in rows["flights"] if r["status"] == "off_block" and start <= r["t"] < end
    }
    flight_id = sorted(departures)[0]
    tasks_of_flight = {r["id"] for r in rows["tasks"] if r["flight_id"] == flight_id}
    vehicle = next(r["vehicle_id"] for r in rows["tasks"] if r["vehicle_id"] is not None)
    created = client.post(SESSIONS, json={"airport": KEYS.airport, "start": first, "end": day_end})
    assert created.status_code == 201, created.text
    sid = created.json()["session_id"]
    bookmarks = f"{SESSIONS}/{sid}/bookmarks"
    made = client.post(
        bookmarks,
        json={
            "at": start,
            "end": end,
            "text": "why did <b>this</b> leave late?",
            "selection": {"flight_id": flight_id, "vehicle_id": vehicle},
        },
    ).json()
    client.post(bookmarks, json={"at": start + 60_000, "text": "refuel & water overran"})
    client.post(bookmarks, json={"at": end + 3_600_000, "text": "outside the range"})

    response = client.get(f"{bookmarks}/{made['bookmark_id']}/report")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "attachment" in response.headers["content-disposition"]
    html = response.text
    assert html.startswith("<!doctype html>") and html.endswith("</html>")
    for external in ("<script", "src=", "href=", "url(", "@import"):
        assert external not in html
    assert "why did &lt;b&gt;this&lt;/b&gt; leave late?" in html
    assert "refuel &amp; water overran" in html and "outside the range" not in html

    conflicts = sum(
        1
        for n in rows["notifications"]
        if n["code"] == "vehicle_conflict" and start <= n["t"] < end
    )
    assert f"<span data-kpi='conflicts'>Conflicts: {conflicts}</span>" in html
    events = [e for e in truth_events(rows, day_end) if start <= e[1] < end]
    assert html.count("<tr data-event=") == min(len(events), 200)
    assert f"<h2>Events ({len(events)})</h2>" in html
    turnaround = departures[flight_id]["turnaround_id"] or flight_id
    assert f"data-gantt='{turnaround}'" in html
    drawn = {task for task in tasks_of_flight if f"data-task='{task}'" in html}
    started = {
        r["id"]
        for r in rows["tasks"]
        if r["id"] in tasks_of_flight and r["status"] == "in_progress"
    }
    assert drawn == started
    assert "data-map='snapshot'" in html and f"ringed: {vehicle}" in html

    missing = client.get(f"{bookmarks}/b-doesnotexist1/report")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
