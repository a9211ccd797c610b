"""The layout overlay: what OpenStreetMap does not know, written by the user (YAML or JSON).

OSM maps stands, taxiways, terminals and runways, but not the airport's time zone, where
each vehicle type parks, or the fleet. The overlay gives those, plus the few import
settings worth changing. Format (docs/data-format.md, "Importing an OpenStreetMap
layout")::

    airport:
      airport_id: EHAM              # optional if the aerodrome has an icao=* tag
      name: Amsterdam Schiphol      # optional: else the aerodrome's name=*
      timezone: Europe/Amsterdam    # required (IANA)
      reference_point: {lat: 52.3086, lon: 4.7639}   # optional: else the layout's centre
    depots:                         # one per vehicle type the fleet uses
      - {depot_id: DEP-FT, vehicle_type: fuel_truck, name: Fuel farm,
         position: {lat: 52.2950, lon: 4.7790}}      # road_node: optional, else nearest
    fleet:                          # vehicles FT-01..FT-12, each parked at its type's depot
      - {vehicle_type: fuel_truck, count: 12, id_prefix: FT}
    speed_limits_kmh: {taxiway: 30, taxilane: 20, service: 25}
    default_runway_width_m: 45      # when a runway has no width=* tag
    contact_distance_m: 60          # a stand this close to a terminal/jet bridge is contact
    max_snap_m: 250                 # farthest a stand or depot may be from its road node
    duplicate_merge_m: 5            # two stands with one ref closer than this are one stand
"""

from __future__ import annotations

import json
import zoneinfo
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chunker.format.records import (
    AIRPORT_ID_PATTERN,
    EntityId,
    Label,
    MoverLimits,
    Point,
    VehicleType,
)

SpeedLimit = Annotated[float, Field(gt=0, le=60)]


class OverlayError(ValueError):
    """The overlay file cannot be read or is not a valid overlay."""


class OverlayAirport(BaseModel):
    """The airport's facts OSM lacks (time zone) or that the user wants to override."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    airport_id: Annotated[str, Field(pattern=AIRPORT_ID_PATTERN)] | None = None
    name: Label | None = None
    name_zh: Label | None = None
    timezone: str = Field(max_length=64)
    reference_point: Point | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class OverlayDepot(BaseModel):
    """Where vehicles of one type park when idle."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    depot_id: EntityId
    vehicle_type: VehicleType
    name: Label
    position: Point
    road_node: EntityId | None = None


class OverlayFleet(BaseModel):
    """``count`` vehicles of one type, ids ``{id_prefix}-01``.., parked at a depot."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_type: VehicleType
    count: int = Field(ge=1, le=2000)
    # The entity id pattern, 8 characters shorter: room for "-" and the number.
    id_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,55}$")] | None = None
    depot_id: EntityId | None = None
    label: Label | None = None


DEFAULT_SPEED_LIMITS: dict[str, float] = {"taxiway": 30.0, "taxilane": 20.0, "service": 25.0}


class Overlay(BaseModel):
    """The whole overlay file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    airport: OverlayAirport
    depots: list[OverlayDepot] = []
    fleet: list[OverlayFleet] = []
    speed_limits_kmh: dict[str, SpeedLimit] = Field(default_factory=dict)
    default_runway_width_m: float = Field(default=45.0, gt=0, le=200)
    contact_distance_m: float = Field(default=60.0, ge=0, le=500)
    max_snap_m: float = Field(default=250.0, gt=0, le=5000)
    duplicate_merge_m: float = Field(default=5.0, ge=0, le=100)
    # Copied into reference.json as is (the position rules' limits, docs/data-format.md).
    mover_limits: MoverLimits = Field(default_factory=MoverLimits)

    @field_validator("speed_limits_kmh")
    @classmethod
    def _known_road_kinds(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(DEFAULT_SPEED_LIMITS))
        if unknown:
            raise ValueError(f"unknown road kind(s) {unknown}; known: {list(DEFAULT_SPEED_LIMITS)}")
        return {**DEFAULT_SPEED_LIMITS, **value}

    def speed_limit(self, road_kind: str) -> float:
        """Speed limit of a road kind (taxiway, taxilane, service), km/h."""
        return self.speed_limits_kmh.get(road_kind, DEFAULT_SPEED_LIMITS[road_kind])

    def depot_for(self, vehicle_type: VehicleType) -> OverlayDepot | None:
        """The first depot of a vehicle type."""
        return next((d for d in self.depots if d.vehicle_type == vehicle_type), None)


def read_overlay(path: Path) -> Overlay:
    """Read and validate an overlay file (``.yaml``/``.yml`` or ``.json``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OverlayError(f"cannot read overlay {path}: {exc}") from exc
    data: Any
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError as exc:  # the [osm] extra is not installed
            raise OverlayError(
                "a YAML overlay needs PyYAML: pip install 'dispatch-replay[osm]', "
                "or write the overlay as JSON"
            ) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise OverlayError(f"overlay {path} is not valid YAML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OverlayError(f"overlay {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise OverlayError(f"overlay {path} must be a mapping with at least 'airport'")
    try:
        overlay = Overlay.model_validate(data)
    except ValueError as exc:
        raise OverlayError(f"overlay {path}: {_first_error(exc)}") from exc
    _check_references(overlay, path)
    return overlay


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)


def _check_references(overlay: Overlay, path: Path) -> None:
    depot_ids = [d.depot_id for d in overlay.depots]
    duplicated = sorted({d for d in depot_ids if depot_ids.count(d) > 1})
    if duplicated:
        raise OverlayError(f"overlay {path}: depot id(s) {duplicated} given twice")
    by_id = {d.depot_id: d for d in overlay.depots}
    prefixes: set[str] = set()
    for fleet in overlay.fleet:
        prefix = fleet.id_prefix or fleet.vehicle_type.value
        if prefix in prefixes:
            raise OverlayError(f"overlay {path}: fleet id_prefix {prefix!r} used twice")
        prefixes.add(prefix)
        if fleet.depot_id is not None:
            depot = by_id.get(fleet.depot_id)
            if depot is None:
                raise OverlayError(f"overlay {path}: fleet depot {fleet.depot_id!r} is not a depot")
            if depot.vehicle_type != fleet.vehicle_type:
                raise OverlayError(
                    f"overlay {path}: depot {depot.depot_id!r} is for {depot.vehicle_type.value}, "
                    f"not {fleet.vehicle_type.value}"
                )
        elif overlay.depot_for(fleet.vehicle_type) is None:
            raise OverlayError(
                f"overlay {path}: no depot for vehicle type {fleet.vehicle_type.value!r}"
            )
