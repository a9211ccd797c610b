"""Rows: the shape of every accepted record, as chunks store it and the stream sends it.

``chunker.batch.validate`` builds them from raw records (its ``*_row`` functions, typed
as these TypedDicts); ``chunker.batch.build`` puts them into chunks; readers
(``chunker.format.prepared``, history queries) read them back. Every row has its entity's
own ``id`` and ``t``, the event time; all times are epoch milliseconds (UTC). Rows are
never mutated once built (states share them), so code that handles rows of any kind takes
a ``Row``: a read-only mapping, one of the shapes below by its kind.
"""

from collections.abc import Mapping
from typing import Any, TypedDict

Row = Mapping[
    str, Any
]  # a VehicleRow, AircraftRow, TaskRow, FlightRow, NotificationRow or DecisionRow


class VehicleRow(TypedDict):
    """A GPS fix (``vehicles`` in chunks; raw kind ``positions``)."""

    id: str  # vehicle id
    t: int
    lat: float
    lon: float
    heading: float  # degrees clockwise from true north, [0, 360); derived if not recorded
    speed_kmh: float  # derived from the neighbouring fixes if not recorded
    state: str  # chunker.format.records.VehicleState


class AircraftRow(TypedDict):
    """An aircraft's surface fix (``aircraft`` in chunks; raw kind ``aircraft``)."""

    id: str  # aircraft id: its icao24 where known, else its registration
    t: int
    lat: float
    lon: float
    heading: float  # true track, [0, 360); derived if not recorded
    speed_kmh: float  # ground speed; derived if not recorded
    on_ground: bool | None
    altitude_m: float | None
    icao24: str | None
    registration: str | None
    callsign: str | None
    # The flight leg the fix links to (by callsign, else registration; the chunker fills
    # these in from the day's flights: chunker.batch.aircraft) and that leg's stand.
    flight_id: str | None
    stand: str | None
    at_stand: str | None  # the stand the aircraft is on by its position, if any


class AircraftRemovalRow(TypedDict):
    """An aircraft leaving the state in this tick (``chunker.batch.aircraft``): no fields
    of a fix, the flight link of its last fix (filters check it as they checked the fix)."""

    id: str
    t: int  # the tick it left
    removed: bool  # always True
    flight_id: str | None
    stand: str | None


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


class CandidateRow(TypedDict):
    """A vehicle a dispatch decision considered (None: not recorded)."""

    vehicle_id: str
    state: str | None  # chunker.format.records.VehicleState
    lat: float | None
    lon: float | None
    distance_m: float | None
    free_at: int | None
    eta: int | None  # when it would be at the stand
    on_time: bool | None
    busy_ms: int | None
    score: float | None  # under the decision's rule; lower is better
    excluded: str | None  # why it could not be chosen


class DecisionRow(TypedDict):
    """A dispatch decision about one task (raw kind ``decisions``)."""

    id: str  # task id: a decision is an event of its task
    t: int
    flight_id: str | None
    decision: str  # chunker.format.records.DecisionKind
    vehicle_id: str | None
    previous_vehicle_id: str | None
    reason: str | None
    rule: str | None
    stand: str | None
    required_at: int | None
    candidates: list[CandidateRow]
