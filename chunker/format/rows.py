"""Rows: the shape of every accepted record, as chunks store it and the stream sends it.

``chunker.batch.validate`` builds them from raw records (its ``*_row`` functions, typed
as these TypedDicts); ``chunker.batch.build`` puts them into chunks; readers
(``chunker.format.prepared``, history queries) read them back. Every row has its entity's
own ``id`` and ``t``, the event time; all times are epoch milliseconds (UTC). Rows are
never mutated once built (states share them), so code that handles rows of any kind takes
a ``Row``: a read-only mapping, one of the four shapes below by its kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

Row = Mapping[str, Any]  # a VehicleRow, TaskRow, FlightRow or NotificationRow


class VehicleRow(TypedDict):
    """A GPS fix (``vehicles`` in chunks; raw kind ``positions``)."""

    id: str  # vehicle id
    t: int
    lat: float
    lon: float
    heading: float  # degrees clockwise from true north, [0, 360); derived if not recorded
    speed_kmh: float  # derived from the neighbouring fixes if not recorded
    state: str  # chunker.format.records.VehicleState


class TaskRow(TypedDict):
    """A task after a status transition."""

    id: str  # task id
    t: int
    flight_id: str
    task_type: str  # chunker.format.records.TaskType
    status: str  # chunker.format.records.TaskStatus
    previous_status: str | None
    vehicle_id: str | None
    stand: str
    planned_start: int
    planned_end: int
    actual_start: int | None
    actual_end: int | None


class FlightRow(TypedDict):
    """A flight leg after a change (also the catalogue's entry of a leg: its latest row)."""

    id: str  # flight (leg) id
    t: int
    callsign: str  # ATC / ADS-B callsign (ICAO, e.g. ENT57BW)
    flight_number: str | None  # commercial flight number (IATA, e.g. LH412), if known
    movement: str  # arrival / departure
    airline: str
    aircraft_type: str | None
    registration: str | None
    route: str | None
    turnaround_id: str | None
    stand: str
    scheduled: int
    estimated: int | None
    actual: int | None
    status: str


class NotificationRow(TypedDict):
    """A system notification."""

    id: str  # notification id
    t: int
    level: str  # info / warning / critical
    code: str
    text: str
    flight_id: str | None
    task_id: str | None
    vehicle_id: str | None
