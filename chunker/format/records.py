"""The raw-data contract: what the dispatch system's exports look like.

Raw recordings are JSON Lines (optionally gzip-compressed), one stream per kind, stored
under ``raw/{airport}/{service_date}/``. These pydantic models are the contract: their
JSON Schema is published under ``docs/schemas/`` (``dispatch-replay schema``) and the
chunker validates every line against exactly these rules. The hot path for positions
(``chunker.batch.validate``) is a hand-written equivalent that falls back to these models for
anything it does not recognise, so the two can never disagree (tested).
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

ENTITY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
AIRPORT_ID_PATTERN = r"^[A-Z0-9]{3,4}$"
CODE_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

EntityId = Annotated[str, Field(pattern=ENTITY_ID_PATTERN)]
# Display text from the reference data: it travels in every manifest and to every viewer.
Label = Annotated[str, Field(min_length=1, max_length=200)]
Latitude = Annotated[float, Field(ge=-90.0, le=90.0, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0, allow_inf_nan=False)]
Heading = Annotated[float, Field(ge=0.0, lt=360.0, allow_inf_nan=False)]
SpeedKmh = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
# Flight identities. A callsign is what ATC and ADS-B say (ICAO: operator + flight id,
# ``ENT57BW``, ``AEE5ZH``; or a registration); a flight number is the commercial (IATA)
# designator (``LH412``). ADS-B-derived feeds pad callsigns with spaces: they are trimmed.
Callsign = Annotated[
    str,
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    Field(pattern=r"^[A-Z0-9]{2,8}$"),
]
FlightNumber = Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}[0-9]{1,4}[A-Z]?$")]


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

    # Exports grow fields over time: a field the contract does not name is ignored (neither
    # an error nor stored); the fields it names are validated (docs/data-format.md).
    # Validators built on first use (``defer_build``): the HTTP functions import this module
    # for its enums and reference models and never validate a raw record; the chunker
    # builds them in its init (``build_input_models``).
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    t: AwareDatetime = Field(description="Event time, ISO 8601 with offset (e.g. 'Z').")


class VehiclePosition(RawRecord):
    """One GPS fix: ~1 Hz while moving, every few seconds when stationary.

    The position (time, mover, lat/lon) is the fix; ``heading`` and ``speed_kmh`` are
    optional: a missing or unusable one is derived from the neighbouring fixes
    (``chunker.batch.tracks``), and the fix is kept.
    """

    vehicle_id: EntityId
    lat: Latitude
    lon: Longitude
    heading: Heading | None = Field(
        default=None,
        description="Degrees clockwise from true north, [0, 360) (the track over the "
        "ground). Optional: derived from the neighbouring fixes when missing or unusable.",
    )
    speed_kmh: SpeedKmh | None = Field(
        default=None,
        description="Ground speed. Optional: derived from the neighbouring fixes when missing "
        "or unusable (negative, or above the mover's limit).",
    )
    state: VehicleState
    on_ground: bool | None = Field(
        default=None,
        description="ADS-B / A-SMGCS surface flag. A ground vehicle's fix with false is "
        "quarantined (airborne); true or absent changes nothing.",
    )
    altitude_m: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Barometric or geometric altitude, if the export has it. Validated, "
        "not stored: vehicle rows have no place for it.",
    )


ICAO24_PATTERN = r"^[0-9a-f]{6}$"
Registration = Annotated[str, Field(pattern=r"^[A-Z0-9-]{2,10}$")]


class AircraftPosition(RawRecord):
    """One surface fix of an aircraft (ADS-B / A-SMGCS style; raw kind ``aircraft``).

    The aircraft is named by its ICAO 24-bit address (``icao24``, lower-case hex: ADS-B
    always has it) and/or its ``registration`` (A-SMGCS and airport systems); at least one
    is required, and the mover id is ``icao24`` where given, else the registration. The
    fix links to a flight leg by ``callsign``, else by ``registration``
    (docs/data-format.md, "Aircraft"). ``track`` and ``ground_speed_kmh`` are optional like
    a vehicle's heading and speed: derived from the neighbouring fixes when missing.
    """

    icao24: (
        Annotated[
            str,
            BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
            Field(pattern=ICAO24_PATTERN),
        ]
        | None
    ) = Field(default=None, description="ICAO 24-bit address, 6 hex digits.")
    registration: Registration | None = Field(default=None, description="e.g. B-6123.")
    callsign: Callsign | None = Field(
        default=None, description="ATC / ADS-B callsign of the flight it flies, e.g. CES5127."
    )
    lat: Latitude
    lon: Longitude
    track: Heading | None = Field(
        default=None,
        description="True track over the ground, degrees clockwise from north, [0, 360) "
        "(an aircraft being pushed back moves tail first: its nose points the other way).",
    )
    ground_speed_kmh: SpeedKmh | None = Field(
        default=None, description="Ground speed (import-tracks converts knots)."
    )
    on_ground: bool | None = Field(
        default=None,
        description="Surface flag. A fix with false is airborne and quarantined (the replay "
        "is of the surface); true or absent is a surface fix.",
    )
    altitude_m: float | None = Field(
        default=None, allow_inf_nan=False, description="Altitude, if the export has it (kept)."
    )

    @model_validator(mode="after")
    def _named(self) -> "AircraftPosition":
        if self.icao24 is None and self.registration is None:
            raise ValueError("an aircraft fix needs icao24 or registration")
        return self

    @property
    def aircraft_id(self) -> str:
        """The mover id: the ICAO address where known, else the registration."""
        name = self.icao24 or self.registration
        assert name is not None  # _named
        return name


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
    callsign: Callsign = Field(description="ATC / ADS-B callsign, e.g. ENT57BW or LHA412.")
    flight_number: FlightNumber | None = Field(
        default=None, description="Commercial flight number, e.g. LH412 (optional)."
    )
    movement: Movement
    airline: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,3}$")]
    aircraft_type: Annotated[str, Field(pattern=r"^[A-Z0-9]{2,4}$")] | None = None
    registration: Registration | None = None
    route: Annotated[str, Field(pattern=r"^[A-Z]{3,4}$")] | None = Field(
        default=None,
        description="The other airport (IATA or ICAO code): origin of an arrival, "
        "destination of a departure. Optional.",
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


class DecisionKind(StrEnum):
    """What a dispatch decision did to its task."""

    ASSIGN = "assign"  # a vehicle was given the task
    REASSIGN = "reassign"  # the task moved from one vehicle to another
    UNASSIGN = "unassign"  # the task's vehicle was taken off it, none given
    ESCALATE_NO_VEHICLE = "escalate_no_vehicle"  # no vehicle could be on time: escalated


MAX_CANDIDATES = 500  # candidates one decision may list (a hub's whole fleet of one type)
Score = Annotated[float, Field(allow_inf_nan=False)]


class DecisionCandidate(BaseModel):
    """A vehicle the dispatcher considered for a task, as it saw it at the decision.

    Only ``vehicle_id`` is required: a dispatcher records what it has. A candidate that
    breaks the contract is dropped from its decision (counted, ``invalid_candidate``); the
    decision is kept.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)  # as RawRecord
    vehicle_id: EntityId
    state: VehicleState | None = Field(default=None, description="Vehicle state, if known.")
    lat: Latitude | None = Field(default=None, description="Where the vehicle was (or starts).")
    lon: Longitude | None = None
    distance_m: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = Field(
        default=None, description="Driving distance to the stand, metres."
    )
    free_at: AwareDatetime | None = Field(
        default=None, description="When the vehicle is free of its current work."
    )
    eta: AwareDatetime | None = Field(
        default=None, description="When the vehicle would be at the stand."
    )
    on_time: bool | None = Field(
        default=None, description="Whether it would be there by the decision's required_at."
    )
    busy_ms: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Busy-ness: time it has spent on tasks today, ms."
    )
    score: Score | None = Field(
        default=None,
        description="The dispatcher's score under the decision's rule; lower is better.",
    )
    excluded: Annotated[str, Field(pattern=CODE_PATTERN)] | None = Field(
        default=None,
        description="Why the candidate could not be chosen (e.g. wrong_type, out_of_service); "
        "absent for an eligible candidate.",
    )


class DispatchDecision(RawRecord):
    """A decision of the dispatcher about one task: who could have gone, who was sent, why."""

    task_id: EntityId
    flight_id: EntityId | None = None
    decision: DecisionKind
    vehicle_id: EntityId | None = Field(
        default=None,
        description="The vehicle chosen (for escalate_no_vehicle: the one sent late anyway).",
    )
    previous_vehicle_id: EntityId | None = Field(
        default=None, description="For reassign and unassign: the vehicle the task had."
    )
    reason: Annotated[str, Field(min_length=1, max_length=500)] | None = Field(
        default=None, description="Why (a reassignment's or unassignment's reason)."
    )
    rule: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Free-form id of the rule that chose, e.g. on_time_nearest."
    )
    stand: EntityId | None = None
    required_at: AwareDatetime | None = Field(
        default=None, description="When a vehicle had to be at the stand to be on time."
    )
    candidates: list[DecisionCandidate] = Field(
        default_factory=list, max_length=MAX_CANDIDATES, description="Vehicles considered."
    )


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
    label: Label | None = Field(
        default=None,
        description="What a person sees for this stand where it differs from the id or "
        "the id was made up: the source's own ref (`W06/W07`, which the id pattern "
        "does not allow), a repeated ref told apart (`F70 (2)`), or for a stand the "
        "source names nothing a label from where it is (`Stand near F70`, within 150 m "
        "of it; farther `Stand 3 (unnamed)`). Absent: "
        "the id is the label.",
    )
    named: bool = Field(
        default=True,
        description="False when the source gave the stand no ref or name: `label` is then "
        "made up from where it is (the map labels such stands last).",
    )


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
    named: bool = Field(
        default=True,
        description="False when the source gave the building no name: `name` is then a "
        "label made up from where it is (the map labels such terminals last).",
    )
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


PhysicalKmh = Annotated[float, Field(gt=0.0, le=1200.0, allow_inf_nan=False)]


class MoverLimits(BaseModel):
    """What a mover can physically do, for the position rules (``chunker.batch.tracks``).

    Per mover kind: each vehicle type, and aircraft (``aircraft_kmh``: the take-off and
    landing roll, the fastest an aircraft moves on the ground). Unset types use the
    defaults in ``chunker.batch.tracks.DEFAULT_MAX_SPEED_KMH``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_types: dict[VehicleType, PhysicalKmh] = Field(
        default_factory=dict,
        description="Top speed per vehicle type (km/h): a reported speed above it is "
        "dropped, a fix implying more since the previous accepted one is a jump.",
    )
    aircraft_kmh: PhysicalKmh = Field(
        default=400.0,
        description="Top ground speed of an aircraft (km/h): a take-off roll reaches "
        "~300; taxiing is under 60. Above it a reported speed is dropped and a jump is a "
        "glitch, as for vehicles.",
    )
    position_tolerance_m: float = Field(
        default=20.0,
        ge=0.0,
        le=500.0,
        description="Position error allowed between two fixes before their implied speed "
        "counts (GPS / ADS-B noise, so a stationary mover's jitter is never a jump).",
    )
    confirm_fixes: int = Field(
        default=3,
        ge=2,
        le=20,
        description="A track (re)starts only at this many consecutive mutually plausible "
        "fixes: a lone first fix off the track, or a mover truly somewhere else.",
    )


class Attribution(BaseModel):
    """Where a layout came from and the credit its licence asks for (shown in the map's
    corner). Optional: hand-written layouts and days chunked before it have none."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    source: str = Field(min_length=1, max_length=100, description="e.g. OpenStreetMap")
    text: str = Field(
        min_length=1, max_length=200, description="e.g. \u00a9 OpenStreetMap contributors"
    )
    license: str = Field(min_length=1, max_length=100, description="e.g. ODbL 1.0")
    url: str = Field(
        pattern=r"^https://\S+$", max_length=300, description="where the licence and credit are"
    )


OSM_ATTRIBUTION = Attribution(
    source="OpenStreetMap",
    text="\u00a9 OpenStreetMap contributors",
    license="ODbL 1.0",
    url="https://www.openstreetmap.org/copyright",
)


class Reference(BaseModel):
    """Everything static about the airport: fleet, stands, depots, buildings, roads.

    This model is the contract as written (what importers produce). The chunker reads it
    tolerantly (``chunker.batch.reference``): a bad or repeated entry is reported and
    skipped; only an unusable airport entry or no usable stand refuses the day.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # as RawRecord
    airport: Airport
    vehicles: list[Vehicle]
    stands: list[Stand]
    depots: list[Depot]
    terminals: list[Terminal]
    runways: list[Runway]
    road_nodes: list[RoadNode]
    road_edges: list[RoadEdge]
    mover_limits: MoverLimits = Field(default_factory=MoverLimits)
    attribution: Attribution | None = None


RECORD_MODELS: dict[str, type[RawRecord]] = {
    "positions": VehiclePosition,
    "tasks": TaskEvent,
    "flights": FlightEvent,
    "notifications": Notification,
    "decisions": DispatchDecision,
    "aircraft": AircraftPosition,
}
RECORD_KINDS: tuple[str, ...] = (
    "positions", "tasks", "flights", "notifications", "decisions", "aircraft",
)  # fmt: skip


def build_input_models() -> None:
    """Build the validators of the chunker's input models now (they are deferred: see
    ``RawRecord``), so that a chunk job's first record does not pay for them."""
    models: list[type[BaseModel]] = [*RECORD_MODELS.values(), DecisionCandidate, Reference]
    for model in models:
        model.model_rebuild()
