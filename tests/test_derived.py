"""The derivation rules (chunker/format/derived.py) on hand-written turnarounds: each edge
case of docs/data-format.md ("Derived state") with the answer written out."""

from __future__ import annotations

from typing import Any

import pytest

from chunker.format.derived import current_task, turnaround_claim


def leg(movement: str, status: str, t: int = 0, stand: str = "101", **extra: Any) -> dict[str, Any]:
    flight_id = f"X1-{movement[0].upper()}"
    return {
        "id": extra.pop("id", flight_id),
        "t": t,
        "callsign": "XYZ1",
        "movement": movement,
        "aircraft_type": "A320",
        "registration": "B-1",
        "turnaround_id": "TA1",
        "stand": stand,
        "status": status,
        **extra,
    }


@pytest.mark.parametrize(
    ("legs", "stand", "flight"),
    [
        # Before on-block: not on a stand.
        ([leg("arrival", "landed"), leg("departure", "scheduled")], None, None),
        # On block until the departure is off block.
        ([leg("arrival", "on_block", 5), leg("departure", "scheduled")], "101", "X1-A"),
        ([leg("arrival", "on_block"), leg("departure", "boarding", 9)], "101", "X1-A"),
        ([leg("arrival", "on_block"), leg("departure", "off_block")], None, None),
        ([leg("arrival", "on_block"), leg("departure", "departed")], None, None),
        # Terminating flight: on the stand for the rest of the day.
        ([leg("arrival", "on_block")], "101", "X1-A"),
        # Departure-only (night stop): from its first row until off block, unless cancelled.
        ([leg("departure", "scheduled", stand="205")], "205", "X1-D"),
        ([leg("departure", "delayed", stand="205")], "205", "X1-D"),
        ([leg("departure", "off_block", stand="205")], None, None),
        ([leg("departure", "cancelled", stand="205")], None, None),
        # Cancelled arrival: never brings an aircraft; the departure does not either.
        ([leg("arrival", "cancelled"), leg("departure", "cancelled")], None, None),
        ([leg("arrival", "cancelled"), leg("departure", "scheduled")], None, None),
        # Cancelled departure: the aircraft that arrived stays.
        ([leg("arrival", "on_block"), leg("departure", "cancelled")], "101", "X1-A"),
        # Missing on-block row: boarding happens at the aircraft, on the departure's stand.
        ([leg("arrival", "landed"), leg("departure", "boarding", stand="102")], "102", "X1-D"),
    ],
)
def test_stand_occupancy_rule(
    legs: list[dict[str, Any]], stand: str | None, flight: str | None
) -> None:
    claim = turnaround_claim(legs)
    assert (None if claim is None else (claim["id"], claim["flight_id"])) == (
        None if stand is None else (stand, flight)
    )
    if claim is not None:
        assert claim["t"] == max(row["t"] for row in legs)


def task(task_id: str, status: str, t: int) -> dict[str, Any]:
    return {"id": task_id, "status": status, "t": t}


def test_current_task_is_the_one_under_way_not_the_next_queued() -> None:
    # Only en route / arrived / in progress count (an assigned task is queued elsewhere).
    assert current_task([]) is None
    assert current_task([task("K1", "en_route", 1)])["id"] == "K1"  # type: ignore[index]
    # The most advanced wins, whatever its age; then the newest; then the greater id.
    picked = current_task([task("K1", "in_progress", 1), task("K2", "en_route", 9)])
    assert picked is not None and picked["id"] == "K1"
    picked = current_task([task("K1", "arrived", 1), task("K2", "arrived", 9)])
    assert picked is not None and picked["id"] == "K2"
    picked = current_task([task("K1", "arrived", 9), task("K2", "arrived", 9)])
    assert picked is not None and picked["id"] == "K2"
