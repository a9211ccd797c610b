"""Turnarounds over HTTP, checked against the documented rules computed again here, plainly,
from the raw records of a realistic synthetic day (tests/ground_truth.py reads them)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def slice_bucket() -> Iterator[Any]:
    with module_bucket() as s3:
        yield s3


@pytest.fixture(scope="module")
def published(slice_bucket: Any) -> Iterator[tuple[TestClient, dict[str, list[Row]]]]:
    objects = publish_slice(slice_bucket)
    # Turnarounds are read from flights, tasks and notifications: skip the GPS fixes,
    # which are most of the slice and the slowest to validate.
    rows, _ = valid_rows({k: v for k, v in objects.items() if "/positions" not in k}, KEYS)
    with TestClient(create_app(build_services(slice_bucket))) as client:
        yield client, rows


# --- the rules of docs/api.md (Turnarounds), written out again over raw rows -----------


def truth_turnarounds(rows: dict[str, list[Row]]) -> dict[str, list[Row]]:
    """Turnaround id -> the latest row of each of its legs."""
    latest: dict[str, Row] = {}
    for row in rows["flights"]:
        latest[row["id"]] = row
    grouped: dict[str, list[Row]] = {}
    for leg in latest.values():
        grouped.setdefault(leg["turnaround_id"] or leg["id"], []).append(leg)
    return grouped


def first_entering(events: list[Row], status: str, field: str = "t") -> int | None:
    for row in events:
        if row["status"] == status:
            return row[field] if row.get(field) is not None else row["t"]
    return None


def truth_tasks(rows: dict[str, list[Row]], leg_ids: set[str]) -> dict[str, Row]:
    by_task: dict[str, list[Row]] = {}
    for row in rows["tasks"]:
        if row["flight_id"] in leg_ids:
            by_task.setdefault(row["id"], []).append(row)
    tasks = {}
    for task_id, events in by_task.items():
        last = events[-1]
        tasks[task_id] = {
            "type": last["task_type"],
            "flight": last["flight_id"],
            "status": last["status"],
            "vehicle": last["vehicle_id"],
            "plan": (last["planned_start"], last["planned_end"]),
            **{
                name: first_entering(events, status)
                for name, status in (
                    ("assigned", "assigned"),
                    ("en_route", "en_route"),
                    ("arrived", "arrived"),
                    ("started", "in_progress"),
                    ("completed", "completed"),
                )
            },
        }
    return tasks


def truth_critical_path(rows: dict[str, list[Row]], legs: list[Row]) -> Row | None:
    arrival = next((leg for leg in legs if leg["movement"] == "arrival"), None)
    departure = next((leg for leg in legs if leg["movement"] == "departure"), None)
    if departure is None:
        return None
    dep_events = [r for r in rows["flights"] if r["id"] == departure["id"]]
    off = first_entering(dep_events, "off_block", "actual")
    if off is None:
        return None
    on = None
    if arrival is not None:
        on = first_entering(
            [r for r in rows["flights"] if r["id"] == arrival["id"]], "on_block", "actual"
        )
    tasks = truth_tasks(rows, {leg["id"] for leg in legs})
    live = {
        k: v for k, v in tasks.items() if v["started"] is not None and v["status"] != "cancelled"
    }
    pushbacks = [
        k for k, v in live.items()
        if v["type"] == "pushback" and v["flight"] == departure["id"] and v["started"] <= off
    ]  # fmt: skip
    std = departure["scheduled"]
    chain: list[tuple[str, str, int, int]] = []  # (kind, id, handoff, added)
    if pushbacks:
        current: str | None = max(pushbacks, key=lambda k: (live[k]["started"], k))
        chain.append(("off_block", departure["id"], off, off - max(live[current]["started"], std)))
    else:
        ended = [k for k, v in live.items() if v["completed"] is not None and v["completed"] <= off]
        current = max(ended, key=lambda k: (live[k]["completed"], k)) if ended else None
        release = std if current is None else max(live[current]["completed"], std)
        chain.append(("off_block", departure["id"], off, off - release))
    while current is not None:
        task = live[current]
        start = task["started"]
        options = []  # (time, tie rank, what, other task)
        if task["plan"][0] <= start:
            options.append((task["plan"][0], 0, "plan", ""))
        if task["arrived"] is not None and task["arrived"] <= start:
            options.append((task["arrived"], 1, "vehicle", ""))
        if task["type"] == "pushback":
            for other, values in live.items():
                if (
                    other != current
                    and values["completed"] is not None
                    and values["completed"] <= start
                ):
                    options.append((values["completed"], 3, "task", other))
        elif on is not None and on <= start:
            options.append((on, 2, "on_block", ""))
        release = max(options) if options else None
        pushback = task["type"] == "pushback"
        handoff = start if pushback else task["completed"]
        earliest = max(task["plan"][0], start if release is None else release[0])
        planned = 0 if pushback else task["plan"][1] - task["plan"][0]
        chain.append(("task", current, handoff, handoff - earliest - planned))
        current = None
        if release is None or release[2] == "plan":
            break
        if release[2] == "task":
            current = release[3]
        elif release[2] == "vehicle":
            chain.append(
                ("vehicle_arrival", task["vehicle"], release[0], release[0] - task["plan"][0])
            )
        else:
            assert arrival is not None
            chain.append(("on_block", arrival["id"], release[0], release[0] - arrival["scheduled"]))
    chain.reverse()
    return {"delay": off - std, "chain": chain, "slack": off - std - sum(c[3] for c in chain)}


def times(legs: list[Row]) -> list[int]:
    """Every schedule time of a turnaround's legs' latest rows."""
    return [leg[k] for leg in legs for k in ("scheduled", "estimated", "actual") if leg[k]]


# --- tests ------------------------------------------------------------------------------


def test_every_turnaround_equals_the_independent_computation(
    published: tuple[TestClient, dict[str, list[Row]]],
) -> None:
    client, rows = published
    truth = truth_turnarounds(rows)
    with_path = 0
    for turnaround_id, legs in sorted(truth.items()):
        body = client.get(f"{DAY}/turnarounds/{turnaround_id}").json()
        assert body["id"] == turnaround_id
        leg_ids = {leg["id"] for leg in legs}
        assert {leg["id"] for leg in (body["arrival"], body["departure"]) if leg} == leg_ids
        tasks = truth_tasks(rows, leg_ids)
        assert {t["id"] for t in body["tasks"]} == set(tasks), turnaround_id
        for task in body["tasks"]:
            expected = tasks[task["id"]]
            assert (task["planned_start"], task["planned_end"]) == expected["plan"]
            for name in ("assigned", "en_route", "arrived", "started", "completed"):
                assert task[name] == expected[name], (task["id"], name)
            assert task["vehicle_id"] == expected["vehicle"]
            if expected["arrived"] is not None and expected["en_route"] is not None:
                assert task["travel_ms"] == expected["arrived"] - expected["en_route"]
            if expected["completed"] is not None:
                assert task["end_delay_ms"] == expected["completed"] - expected["plan"][1]
            if expected["started"] is not None:
                assert task["start_delay_ms"] == expected["started"] - expected["plan"][0]
        path = truth_critical_path(rows, legs)
        got = body["critical_path"]
        if path is None:
            assert got is None, turnaround_id
            continue
        with_path += 1
        assert got["delay_ms"] == path["delay"]
        assert [(e["kind"], e["id"], e["handoff_at"], e["added_ms"]) for e in got["chain"]] == path[
            "chain"
        ], turnaround_id
        assert got["slack_ms"] == path["slack"]
        assert sum(e["added_ms"] for e in got["chain"]) + got["slack_ms"] == got["delay_ms"]
    assert with_path >= 5, "the slice has departures that went off-block"


def test_the_latest_departure_is_explained_back_to_its_cause(
    published: tuple[TestClient, dict[str, list[Row]]],
) -> None:
    """The analyst's question: the most delayed off-block, what chain made it late."""
    client, rows = published
    truth = truth_turnarounds(rows)
    paths = {k: truth_critical_path(rows, legs) for k, legs in truth.items()}
    worst = max((k for k, p in paths.items() if p), key=lambda k: paths[k]["delay"])  # type: ignore[index]
    body = client.get(f"{DAY}/turnarounds/{worst}").json()
    chain = body["critical_path"]["chain"]
    assert chain[-1]["kind"] == "off_block" and chain[-1]["id"] == body["departure"]["id"]
    assert any(e["kind"] == "task" and e["task_type"] == "pushback" for e in chain)
    assert len(chain) >= 3


def test_a_turnaround_is_found_by_any_name_of_its_legs(
    published: tuple[TestClient, dict[str, list[Row]]],
) -> None:
    client, rows = published
    truth = truth_turnarounds(rows)
    turnaround_id, legs = next((k, v) for k, v in sorted(truth.items()) if len(v) == 2)
    reference = client.get(f"{DAY}/turnarounds/{turnaround_id}").json()
    for leg in legs:
        for name in (leg["id"], leg["flight_number"], leg["callsign"].lower()):
            assert client.get(f"{DAY}/turnarounds/{name}").json() == reference
    missing = client.get(f"{DAY}/turnarounds/ZZ9999")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("/turnaround-not-found")


def test_search_by_flight_stand_and_window(
    published: tuple[TestClient, dict[str, list[Row]]],
) -> None:
    client, rows = published
    truth = truth_turnarounds(rows)

    everything = client.get(f"{DAY}/turnarounds", params={"limit": 500}).json()
    assert {t["id"] for t in everything["turnarounds"]} == set(truth)
    assert everything["truncated"] is False
    leg = sorted(rows["flights"], key=lambda r: r["id"])[3]
    for name in (leg["flight_number"], leg["callsign"]):
        found = client.get(f"{DAY}/turnarounds", params={"flight": name}).json()["turnarounds"]
        assert [t["id"] for t in found] == [leg["turnaround_id"] or leg["id"]]
    stand = leg["stand"]
    on_stand = client.get(f"{DAY}/turnarounds", params={"stand": stand}).json()["turnarounds"]
    assert {t["id"] for t in on_stand} == {
        k for k, legs in truth.items() if any(x["stand"] == stand for x in legs)
    }
    start, end = leg["scheduled"] - 1_800_000, leg["scheduled"] + 1_800_000
    window = client.get(f"{DAY}/turnarounds", params={"start": start, "end": end}).json()
    assert [t["id"] for t in window["turnarounds"]] == [
        k
        for k, legs in sorted(truth.items(), key=lambda kv: (min(times(kv[1])), kv[0]))
        if max(times(legs)) >= start and min(times(legs)) < end
    ]
    limited = client.get(f"{DAY}/turnarounds", params={"limit": 2}).json()
    assert len(limited["turnarounds"]) == 2 and limited["truncated"] is True


# --- KPIs: the definitions of docs/api.md, computed again over the raw rows ----------------


def nearest_rank(values: list[int], p: int) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil
    return ordered[max(rank, 1) - 1]


def truth_kpis(
    rows: dict[str, list[Row]],
    fleet: dict[str, str],
    start: int,
    end: int,
    stands: set[str] | None = None,
    task_types: set[str] | None = None,
    vehicle_types: set[str] | None = None,
) -> Row:
    def counts(row: Row) -> bool:
        return (
            (stands is None or row["stand"] in stands)
            and (task_types is None or row["task_type"] in task_types)
            and (vehicle_types is None or fleet.get(row["vehicle_id"] or "") in vehicle_types)
        )

    departures = []
    seen: set[str] = set()
    for row in rows["flights"]:
        if (
            row["movement"] == "departure"
            and row["status"] == "off_block"
            and row["id"] not in seen
        ):
            seen.add(row["id"])
            if start <= row["t"] < end and (stands is None or row["stand"] in stands):
                departures.append((row["actual"] or row["t"]) - row["scheduled"])
    firsts: dict[tuple[str, str], Row] = {}
    for row in rows["tasks"]:
        firsts.setdefault((row["id"], row["status"]), row)
    started: dict[str, list[int]] = {}
    ended: dict[str, list[int]] = {}
    for (_, status), row in firsts.items():
        if start <= row["t"] < end and counts(row):
            if status == "in_progress":
                started.setdefault(row["task_type"], []).append(row["t"] - row["planned_start"])
            if status == "completed":
                ended.setdefault(row["task_type"], []).append(row["t"] - row["planned_end"])
    # Busy: from a task's en_route to leaving en_route/arrived/in_progress (or a new vehicle).
    busy: dict[str, list[tuple[int, int]]] = {}
    servicing: dict[str, list[tuple[int, int]]] = {}
    by_task: dict[str, list[Row]] = {}
    for row in rows["tasks"]:
        by_task.setdefault(row["id"], []).append(row)
    reassigned = 0
    for events in by_task.values():
        holder: tuple[str, int, int | None] | None = None
        previous_vehicle = None
        for row in events:
            vehicle = row["vehicle_id"]
            if (
                row["status"] == "assigned"
                and previous_vehicle is not None
                and vehicle != previous_vehicle
                and start <= row["t"] < end
                and counts(row)
            ):
                reassigned += 1
            previous_vehicle = vehicle
            active = row["status"] in ("en_route", "arrived", "in_progress")
            if holder is not None and (not active or vehicle != holder[0]):
                busy.setdefault(holder[0], []).append((holder[1], row["t"]))
                if holder[2] is not None:
                    servicing.setdefault(holder[0], []).append((holder[2], row["t"]))
                holder = None
            if active and vehicle is not None and counts(row):
                if holder is None:
                    holder = (vehicle, row["t"], None)
                if row["status"] == "in_progress" and holder[2] is None:
                    holder = (holder[0], holder[1], row["t"])
        if holder is not None:
            busy.setdefault(holder[0], []).append((holder[1], end))
            if holder[2] is not None:
                servicing.setdefault(holder[0], []).append((holder[2], end))

    def covered(spans: list[tuple[int, int]]) -> int:
        merged: list[list[int]] = []
        for a, b in sorted((max(a, start), min(b, end)) for a, b in spans):
            if a >= b:
                continue
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return sum(b - a for a, b in merged)

    utilisation = {}
    for vehicle_type in sorted(vehicle_types or set(fleet.values())):
        vehicles = [v for v, t in fleet.items() if t == vehicle_type]
        capacity = len(vehicles) * (end - start)
        b = sum(covered(busy.get(v, [])) for v in vehicles)
        s = sum(covered(servicing.get(v, [])) for v in vehicles)
        utilisation[vehicle_type] = {
            "vehicles": len(vehicles),
            "busy_ms": b,
            "servicing_ms": s,
            "busy_share": round(b / capacity, 4),
            "servicing_share": round(s / capacity, 4),
        }
    tasks_by_id = {r["id"]: r for r in rows["tasks"] if r["t"] < end}
    flight_stand = {r["id"]: r["stand"] for r in rows["flights"]}
    codes: dict[str, int] = {}
    for note in rows["notifications"]:
        if not start <= note["t"] < end:
            continue
        task = tasks_by_id.get(note["task_id"] or "")
        stand = task["stand"] if task else flight_stand.get(note["flight_id"] or "")
        if stands is not None and stand not in stands:
            continue
        if task_types is not None and (task is None or task["task_type"] not in task_types):
            continue
        if vehicle_types is not None and fleet.get(note["vehicle_id"] or "") not in vehicle_types:
            continue
        codes[note["code"]] = codes.get(note["code"], 0) + 1
    on_time = sum(1 for d in departures if d <= 15 * 60_000)
    return {
        "start": start,
        "end": end,
        "departures": {
            "count": len(departures),
            "on_time": on_time,
            "on_time_share": round(on_time / len(departures), 4) if departures else None,
            "on_time_threshold_ms": 900_000,
            "delay_p50_ms": nearest_rank(departures, 50),
            "delay_p90_ms": nearest_rank(departures, 90),
        },
        "tasks": {
            task_type: {
                "started": len(started.get(task_type, [])),
                "start_delay_p50_ms": nearest_rank(started.get(task_type, []), 50),
                "start_delay_p90_ms": nearest_rank(started.get(task_type, []), 90),
                "completed": len(ended.get(task_type, [])),
                "end_delay_p50_ms": nearest_rank(ended.get(task_type, []), 50),
                "end_delay_p90_ms": nearest_rank(ended.get(task_type, []), 90),
            }
            for task_type in sorted(set(started) | set(ended))
        },
        "utilisation": utilisation,
        "conflicts": codes.get("vehicle_conflict", 0),
        "reassignments": reassigned,
        "notifications": dict(sorted(codes.items())),
    }


def fleet_of(client: TestClient) -> dict[str, str]:
    manifest = client.get(f"{DAY}/manifest").json()
    return {v["vehicle_id"]: v["vehicle_type"] for v in manifest["catalogue"]["vehicles"]}


HOUR = 3_600_000


@pytest.mark.parametrize(
    ("hours", "filters"),
    [
        ((8, 11), {}),
        ((9, 10), {}),
        (
            (8, 11),
            {"task_type": ["water", "pushback"], "vehicle_type": ["water_truck", "pushback_tug"]},
        ),
    ],
)
def test_kpis_equal_the_independent_computation(
    published: tuple[TestClient, dict[str, list[Row]]],
    hours: tuple[int, int],
    filters: dict[str, list[str]],
) -> None:
    client, rows = published
    day_start = min(r["t"] for r in rows["flights"]) // HOUR * HOUR  # a UTC hour: 08:00 local
    start = day_start + (hours[0] - 8) * HOUR
    end = day_start + (hours[1] - 8) * HOUR
    body = client.get(
        "/api/replay/airports/XLHI/kpis", params={"start": start, "end": end, **filters}
    ).json()
    truth = truth_kpis(
        rows,
        fleet_of(client),
        start,
        end,
        None,
        set(filters["task_type"]) if "task_type" in filters else None,
        set(filters["vehicle_type"]) if "vehicle_type" in filters else None,
    )
    assert body == truth
    assert body["departures"]["count"] >= 1 and body["tasks"], "the window has traffic"


def test_kpis_by_stand_and_bad_windows(published: tuple[TestClient, dict[str, list[Row]]]) -> None:
    client, rows = published
    start = min(r["t"] for r in rows["flights"]) // HOUR * HOUR
    stands = sorted({r["stand"] for r in rows["tasks"]})[:3]
    body = client.get(
        "/api/replay/airports/XLHI/kpis",
        params={"start": start, "end": start + 3 * HOUR, "stand": stands},
    ).json()
    assert body == truth_kpis(rows, fleet_of(client), start, start + 3 * HOUR, set(stands))
    for params in ({"start": start, "end": start}, {"start": start, "end": start + 13 * HOUR}):
        answer = client.get("/api/replay/airports/XLHI/kpis", params=params)
        assert answer.status_code == 422
        assert answer.headers["content-type"] == "application/problem+json"


# --- exports ------------------------------------------------------------------------------


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def as_cells(row: Row, columns: list[str]) -> dict[str, str]:
    return {name: "" if row.get(name) is None else str(row[name]) for name in columns}


def test_exports_equal_the_raw_records(published: tuple[TestClient, dict[str, list[Row]]]) -> None:
    client, rows = published
    start = min(r["t"] for r in rows["flights"]) // HOUR * HOUR
    end = start + 3 * HOUR
    window = {"start": start, "end": end}
    url = "/api/replay/airports/XLHI/export"
    tasks = [r for r in rows["tasks"] if start <= r["t"] < end]
    as_json = client.get(f"{url}/tasks", params={**window, "format": "json"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.json() == tasks
    as_csv = client.get(f"{url}/tasks", params=window)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    table = csv_rows(as_csv.text)
    assert table == [as_cells(r, list(table[0])) for r in tasks]
    refuels = client.get(f"{url}/tasks", params={**window, "task_type": "refuel"}).text
    assert csv_rows(refuels) == [
        as_cells(r, list(table[0])) for r in tasks if r["task_type"] == "refuel"
    ]
    notes = client.get(
        f"{url}/notifications", params={**window, "level": "warning", "format": "json"}
    )
    assert notes.json() == [
        r for r in rows["notifications"] if start <= r["t"] < end and r["level"] == "warning"
    ]
    turns = csv_rows(client.get(f"{url}/turnarounds", params=window).text)
    truth = {
        k: legs
        for k, legs in truth_turnarounds(rows).items()
        if max(times(legs)) >= start and min(times(legs)) < end
    }
    assert [r["id"] for r in turns] == sorted(truth, key=lambda k: (min(times(truth[k])), k))
    for row in turns:
        for leg in truth[row["id"]]:
            prefix = leg["movement"]
            assert row[f"{prefix}_flight_number"] == leg["flight_number"]
            assert row[f"{prefix}_scheduled"] == str(leg["scheduled"])
    bad = client.get(f"{url}/tasks", params={"start": start, "end": start + 8 * 24 * HOUR})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    assert client.get(f"{url}/flights", params=window).status_code == 422
