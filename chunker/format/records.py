"""The raw-data contract: what the dispatch system's exports look like.

Raw recordings are JSON Lines (optionally gzip-compressed), one stream per kind, stored
under ``raw/{airport}/{service_date}/``. These pydantic models are the contract: their
JSON Schema is published under ``docs/schemas/`` (``dispatch-replay schema``) and the
chunker validates every line against exactly these rules. The hot path for positions
(``chunker.batch.validate``) is a hand-written equivalent that falls back to these models for
anything it does not recognise, so the two can never disagree (tested).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ENTITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
AIRPORT_ID_PATTERN = r"^[A-Z0-9]{3,4}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

EntityId = Annotated[str, Field(pattern=ENTITY_ID_PATTERN)]
# Display text from the reference data: it travels in every manifest and to every viewer.
Label = Annotated[str, Field(min_length=1, max_length=200)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Heading = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False)]
SpeedKmh = Annotated[float, Field(ge=0.0, le=200.0, allow_inf_nan=False)]


class VehicleType(StrEnum):
    """Ground-support equipment kinds; each has a depot and serves one task type."""

    FUEL_TRUCK = "fuel_truck"
    CATERING_TRUCK = "catering_truck"
    BAGGAGE_TRACTOR = "baggage_tractor"
    CLEANING_VAN = "cleaning_van"
    WATER_TRUCK = "water_truck"
    LAVATORY_TRUCK = "lavatory_truck"
    PUSHBACK_TUG = "pushback_tug"
    PASSENGER_BUS = "passenger_bus"


class VehicleState(StrEnum):
    """What the telematics unit reports the vehicle is doing."""

    IDLE = "idle"  # parked at its depot, available
    EN_ROUTE = "en_route"  # driving to a task
    WAITING = "waiting"  # at the stand, task not started yet
    SERVICING = "servicing"  # performing the task
    RETURNING = "returning"  # driving back to the depot


class TaskType(StrEnum):
    """Turnaround tasks the dispatcher assigns."""

    REFUEL = "refuel"
    CATERING = "catering"
    BAGGAGE_UNLOAD = "baggage_unload"
    BAGGAGE_LOAD = "baggage_load"
    CLEANING = "cleaning"
    WATER = "water"
    LAVATORY = "lavatory"
    PUSHBACK = "pushback"
    PASSENGER_BUS = "passenger_bus"


# Which vehicle type does each task type (the fleet's division of labour: every vehicle type
# serves its own tasks, a baggage tractor both baggage tasks). Session filters link vehicles
# and tasks by it (``functions.app.domain.sessions.Filters``).
TASK_VEHICLE_TYPE: dict[TaskType, VehicleType] = {
    TaskType.REFUEL: VehicleType.FUEL_TRUCK,
    TaskType.CATERING: VehicleType.CATERING_TRUCK,
    TaskType.BAGGAGE_UNLOAD: VehicleType.BAGGAGE_TRACTOR,
    TaskType.BAGGAGE_LOAD: VehicleType.BAGGAGE_TRACTOR,
    TaskType.CLEANING: VehicleType.CLEANING_VAN,
    TaskType.WATER: VehicleType.WATER_TRUCK,
    TaskType.LAVATORY: VehicleType.LAVATORY_TRUCK,
    TaskType.PUSHBACK: VehicleType.PUSHBACK_TUG,
    TaskType.PASSENGER_BUS: VehicleType.PASSENGER_BUS,
}


class TaskStatus(StrEnum):
    """Task life cycle; ``completed`` and ``cancelled`` are terminal."""

    CREATED = "created"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ARRIVED = "arrived"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Movement(StrEnum):
    """A flight leg either arrives at or departs from the airport."""

    ARRIVAL = "arrival"
    DEPARTURE = "departure"


class FlightStatus(StrEnum):
    """Flight leg status as the airport operational database reports it."""

    SCHEDULED = "scheduled"
    DELAYED = "delayed"
    APPROACHING = "approaching"
    LANDED = "landed"
    ON_BLOCK = "on_block"
    BOARDING = "boarding"
    OFF_BLOCK = "off_block"
    DEPARTED = "departed"
    CANCELLED = "cancelled"


class NotificationLevel(StrEnum):
    """Severity of a system notification."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RawRecord(BaseModel):
    """Common shape: every raw record has an event time with an explicit UTC offset."""

    # Exports grow fields over time; unknown fields are ignored, not an error.
    model_config = ConfigDict(extra="ignore", frozen=True)

    t: AwareDatetime = Field(description="Event time, ISO 8601 with offset (e.g. 'Z').")


class VehiclePosition(RawRecord):
    """One GPS fix: ~1 Hz while moving, every few seconds when stationary."""

    vehicle_id: EntityId
    lat: Latitude
    lon: Longitude
    heading: Heading = Field(description="Degrees clockwise from true north, [0, 360).")
    speed_kmh: SpeedKmh
    state: VehicleState


class TaskEvent(RawRecord):
    """A task status transition, carrying the task's full state after the transition."""

    task_id: EntityId
    flight_id: EntityId
    task_type: TaskType
    status: TaskStatus
    previous_status: TaskStatus | None = None
    vehicle_id: EntityId | None = Field(default=None, description="Assigned vehicle, if any.")
    stand: EntityId
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None


class FlightEvent(RawRecord):
    """A change to a flight leg (schedule, estimate, actual time, stand or status)."""

    flight_id: EntityId
    callsign: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,8}$")]
    flight_number: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$")]
    movement: Movement
    airline: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")]
    aircraft_type: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,4}$")]
    registration: Annotated[str, Field(pattern=r"^[A-Z0-9-]{2,10}$")]
    route: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = Field(
        description="The other airport: origin of an arrival, destination of a departure."
    )
    turnaround_id: EntityId | None = None
    stand: EntityId
    scheduled: AwareDatetime
    estimated: AwareDatetime | None = None
    actual: AwareDatetime | None = None
    status: FlightStatus


class Notification(RawRecord):
    """A message the dispatch system raised (delay, reassignment, conflict, ...)."""

    notification_id: EntityId
    level: NotificationLevel
    code: Annotated[str, Field(pattern=CODE_PATTERN)] = Field(
        description="Machine-readable kind, e.g. flight_delayed, task_reassigned, "
        "vehicle_conflict, task_late, gps_lost, stand_changed, flight_cancelled."
    )
    text: Annotated[str, Field(min_length=1, max_length=2000)]
    flight_id: EntityId | None = None
    task_id: EntityId | None = None
    vehicle_id: EntityId | None = None


# --- reference data: one JSON document per airport (and optionally per service day) ---


class Point(BaseModel):
    """A WGS84 coordinate."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: Latitude
    lon: Longitude


class Airport(BaseModel):
    """The airport the recordings belong to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    airport_id: Annotated[str, Field(pattern=AIRPORT_ID_PATTERN)]
    name: Label
    name_zh: Label | None = None
    timezone: str = Field(
        max_length=64, description="IANA zone; the service day is a local calendar day."
    )
    reference_point: Point


class Vehicle(BaseModel):
    """A ground vehicle in the fleet."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_id: EntityId
    vehicle_type: VehicleType
    label: Label
    depot_id: EntityId


class Stand(BaseModel):
    """An aircraft parking position; contact stands have a jet bridge, remote ones don't."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stand_id: EntityId
    kind: Literal["contact", "remote"]
    terminal_id: EntityId | None = None
    position: Point
    heading: Heading = Field(description="Direction the aircraft nose points when parked.")
    road_node: EntityId = Field(description="Service-road node vehicles drive to.")


class Depot(BaseModel):
    """Where vehicles of one type park when idle."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    depot_id: EntityId
    vehicle_type: VehicleType
    name: Label
    position: Point
    road_node: EntityId


class Terminal(BaseModel):
    """A terminal building outline."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    terminal_id: EntityId
    name: Label
    outline: list[Point] = Field(min_length=3)


class Runway(BaseModel):
    """A runway centreline."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    runway_id: Annotated[str, Field(min_length=1, max_length=16)]
    start: Point
    end: Point
    width_m: float = Field(gt=0)


class RoadNode(BaseModel):
    """A node of the service-road graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    node_id: EntityId
    position: Point


class RoadEdge(BaseModel):
    """An undirected service-road segment with its speed limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    from_node: EntityId
    to_node: EntityId
    speed_limit_kmh: float = Field(gt=0, le=60)


class Reference(BaseModel):
    """Everything static about the airport: fleet, stands, depots, buildings, roads."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    airport: Airport
    vehicles: list[Vehicle]
    stands: list[Stand]
    depots: list[Depot]
    terminals: list[Terminal]
    runways: list[Runway]
    road_nodes: list[RoadNode]
    road_edges: list[RoadEdge]


RECORD_MODELS: dict[str, type[RawRecord]] = {
    "positions": VehiclePosition,
    "tasks": TaskEvent,
    "flights": FlightEvent,
    "notifications": Notification,
}
RECORD_KINDS: tuple[str, ...] = ("positions", "tasks", "flights", "notifications")
