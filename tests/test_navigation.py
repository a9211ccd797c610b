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
    # The dispatcher's decisions: every one navigable, its reassignments (one event with a
    # task event of the same task and instant: a set) and its no-vehicle escalations.
    for decision in rows["decisions"]:
        found.add(("decision", decision["t"], decision["id"]))
        if decision["decision"] == "reassign":
            found.add(("reassignment", decision["t"], decision["id"]))
        elif decision["decision"] == "escalate_no_vehicle":
            found.add(("escalation", decision["t"], decision["id"]))
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
    assert kinds == {
        "late_on_block",
        "late_off_block",
        "conflict",
        "reassignment",
        "overdue_task",
        "escalation",
        "decision",
    }
    assert body["counts"] == {k: sum(1 for e in truth if e[0] == k) for k in sorted(kinds)}
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    # What a click selects: the ids each kind names, as the raw records say.
    tasks = by_entity(rows["tasks"])
    decided = {(d["id"], d["t"]): d for d in rows["decisions"]}
    sources = set()
    for event in events:
        decision = decided.get((event.get("task_id"), event["t"]))
        if event["kind"] == "reassignment":
            history = [r for r in tasks.get(event["task_id"], []) if r["t"] <= event["t"]]
            by_task = (
                len(history) >= 2
                and history[-1]["t"] == event["t"]
                and history[-1]["status"] == "assigned"
                and history[-2]["vehicle_id"] not in (None, history[-1]["vehicle_id"])
            )
            by_decision = decision is not None and decision["decision"] == "reassign"
            source = {(True, True): "both", (True, False): "task", (False, True): "decision"}
            assert event["source"] == source[by_task, by_decision]
            sources.add(event["source"])
            if by_task:  # what happened names the vehicles
                assert event["vehicle_id"] == history[-1]["vehicle_id"]
                assert event["from_vehicle_id"] == history[-2]["vehicle_id"]
            else:
                assert decision is not None
                assert event["vehicle_id"] == decision["vehicle_id"]
                assert event["from_vehicle_id"] == decision["previous_vehicle_id"]
            assert event["reason"] == (decision["reason"] if by_decision else None)
        if event["kind"] in ("decision", "escalation"):
            assert decision is not None
            assert event["vehicle_id"] == decision["vehicle_id"]
            assert event["stand"] == decision["stand"]
            assert event["flight_id"] == decision["flight_id"]
        if event["kind"] == "decision":
            assert event["decision"] == decision["decision"]
            assert event["previous_vehicle_id"] == decision["previous_vehicle_id"]
        if event["kind"] == "escalation":
            assert event["required_at"] == decision["required_at"]
        if event["kind"] == "overdue_task":
            assert event["flight_id"] == tasks[event["task_id"]][0]["flight_id"]
    # The generator records a decision with each reassignment it makes.
    assert "both" in sources


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
    events = [e for e in truth_events(rows, day_end) if start <= e[1] < end and e[0] != "decision"]
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


def test_a_reassignment_is_one_event_whichever_record_says_it_first() -> None:
    """The merge rule of docs/api.md (*Events*, ``reassignment``) on hand-made rows: a task
    event and a ``reassign`` decision about one task at one instant are one event
    (``source`` both, in either order within the tick); alone, each is an event of its own
    source; an escalation is an event of its own and every decision a ``decision``."""
    from functions.app.history.navigation import EventFold

    def task(task_id: str, t: int, vehicle: str) -> Row:
        return {
            "id": task_id, "t": t, "status": "assigned", "vehicle_id": vehicle,
            "task_type": "fuel", "flight_id": "F1", "stand": "S1", "planned_end": 10**13,
        }  # fmt: skip

    def decision(task_id: str, t: int, kind: str, vehicle: str, previous: str | None) -> Row:
        return {
            "id": task_id, "t": t, "decision": kind, "vehicle_id": vehicle,
            "previous_vehicle_id": previous, "reason": f"why {task_id}", "stand": "S1",
            "flight_id": "F1", "task_type": "fuel", "required_at": t + 60_000,
        }  # fmt: skip

    fold = EventFold(0, 10**13)
    fold.begin([])
    for task_id in ("A", "B", "C", "D"):
        fold.task(task(task_id, 1_000, "V1"))
    fold.task(task("A", 5_000, "V2"))  # task event first, then the decision
    fold.decision(decision("A", 5_000, "reassign", "V2", "V1"))
    fold.decision(decision("B", 6_000, "reassign", "V2", "V1"))  # decision first
    fold.task(task("B", 6_000, "V2"))
    fold.task(task("C", 7_000, "V3"))  # by hand: no decision
    fold.decision(decision("D", 8_000, "reassign", "V4", "V1"))  # no task event (yet)
    fold.decision(decision("D", 9_000, "escalate_no_vehicle", "V4", None))
    found = fold.result(["reassignment", "escalation", "decision"])
    # By time, then kind (ties: the documented order), then task.
    seen = [(e["kind"], e["task_id"], e["t"], e.get("source"), e["vehicle_id"]) for e in found]
    assert seen == [
        ("decision", "A", 5_000, None, "V2"),
        ("reassignment", "A", 5_000, "both", "V2"),
        ("decision", "B", 6_000, None, "V2"),
        ("reassignment", "B", 6_000, "both", "V2"),
        ("reassignment", "C", 7_000, "task", "V3"),
        ("decision", "D", 8_000, None, "V4"),
        ("reassignment", "D", 8_000, "decision", "V4"),
        ("decision", "D", 9_000, None, "V4"),
        ("escalation", "D", 9_000, None, "V4"),
    ]
    by_key = {(e["kind"], e["task_id"]): e for e in found}
    assert by_key["reassignment", "A"]["reason"] == "why A"
    assert by_key["reassignment", "B"]["from_vehicle_id"] == "V1"
    assert by_key["reassignment", "C"]["reason"] is None
    assert by_key["reassignment", "D"]["from_vehicle_id"] == "V1"
    assert by_key["escalation", "D"]["required_at"] == 69_000
