"""The synthetic day on an imported airport (``generate --layout reference.json``).

``dispatch-replay import-layout`` writes a real airport's ``reference.json`` (stands, road
graph, terminals, runways; depots from the overlay). ``layout_from_reference`` turns it
into the generator's ``AirportLayout``:

- **frame**: metres east/north of the airport's reference point, on the importer's own
  tangent plane (``chunker.imports.osm_layout.LocalFrame``) and back: linear, so a point
  interpolated between two road nodes lies on the edge between them;
- **stands** as the reference says (contact/remote, terminal, nose heading, road node);
  one in four (by a hash of its id) takes wide-bodies;
- **roads**: every road edge at its speed limit (``RoadNetwork``, shortest paths computed
  per source on first use);
- **depots**: one per vehicle type from the reference. A type the overlay gives no depot
  borrows the reference's first depot (its vehicles park and start there), and the
  generator says so; a reference without any depot is an error naming the overlay's
  ``depots`` list;
- **fleet**: ``vehicles`` split over the types as on the fictional airport (ids ``FT-01``..),
  parked in rows beside their depot; it replaces the reference's own vehicle list in the day;
- **aircraft** (``synthetic.aircraft.imported_motions``): the longest runway; arrivals touch
  down a sixth along it and leave at the road node nearest its middle, departures enter at
  the road node nearest its start and roll towards its end.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from chunker.format.records import Reference, VehicleType
from chunker.imports.osm_layout import LocalFrame
from synthetic.layout import (
    FLEET_MIX,
    AirportLayout,
    DepotSpot,
    RoadNetwork,
    StandSpot,
    Taxiing,
    fleet_vehicles,
    park_fleet,
)


class LayoutError(ValueError):
    """The layout file cannot drive a synthetic day (one line, for the CLI)."""


def read_reference(path: Path) -> Reference:
    """A ``reference.json`` as ``import-layout`` writes it."""
    try:
        return Reference.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise LayoutError(f"cannot read layout {path}: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise LayoutError(
            f"layout {path} is not a reference.json: {where}: {first['msg']}"
        ) from exc


def layout_from_reference(reference: Reference, vehicles: int) -> AirportLayout:
    """The generator's layout on an imported airport (module doc)."""
    origin = reference.airport.reference_point
    frame = LocalFrame(origin.lat, origin.lon)

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return frame.xy((lat, lon))

    def to_lat_lon(x: float, y: float) -> tuple[float, float]:
        return frame.lat0 + y / frame.m_per_deg_lat, frame.lon0 + x / frame.m_per_deg_lon

    nodes = {n.node_id: xy(n.position.lat, n.position.lon) for n in reference.road_nodes}
    edges = [(e.from_node, e.to_node, e.speed_limit_kmh) for e in reference.road_edges]
    roads = RoadNetwork(nodes, edges)
    stands = [
        StandSpot(
            s.stand_id,
            s.kind,
            s.terminal_id,
            *xy(s.position.lat, s.position.lon),
            s.heading,
            s.road_node,
            zlib.crc32(s.stand_id.encode()) % 4 == 0,
        )
        for s in reference.stands
    ]
    if not reference.depots:
        raise LayoutError(
            "the layout has no depots: add a `depots` list to the import overlay (one per "
            "vehicle type; docs/data-format.md) and import again"
        )
    notes = []
    depots: dict[VehicleType, DepotSpot] = {}
    for vehicle_type in FLEET_MIX:
        depot = next((d for d in reference.depots if d.vehicle_type == vehicle_type), None)
        if depot is None:
            depot = reference.depots[0]
            notes.append(
                f"no {vehicle_type.value} depot in the layout: its vehicles use "
                f"{depot.depot_id} (add one to the overlay's depots)"
            )
        x, y = xy(depot.position.lat, depot.position.lon)
        depots[vehicle_type] = DepotSpot(depot.depot_id, vehicle_type, x, y, depot.road_node)

    fleet = park_fleet(vehicles, depots)
    day_reference = reference.model_copy(update={"vehicles": fleet_vehicles(fleet)})
    return AirportLayout(
        day_reference,
        stands,
        depots,
        fleet,
        roads,
        to_lat_lon=to_lat_lon,
        taxiing=_taxiing(reference, nodes, xy),
        imported=True,
        notes=tuple(notes),
    )


def _taxiing(
    reference: Reference,
    nodes: dict[str, tuple[float, float]],
    xy: Callable[[float, float], tuple[float, float]],
) -> Taxiing | None:
    if not reference.runways or not nodes:
        return None
    ends = [(xy(r.start.lat, r.start.lon), xy(r.end.lat, r.end.lon)) for r in reference.runways]
    (x0, y0), (x1, y1) = max(ends, key=lambda e: math.dist(*e))

    def at(f: float) -> tuple[float, float]:
        return x0 + (x1 - x0) * f, y0 + (y1 - y0) * f

    def nearest(p: tuple[float, float]) -> str:
        return min(nodes, key=lambda n: (math.dist(nodes[n], p), n))

    exit_node, entry_node = nearest(at(0.5)), nearest(at(0.05))
    return Taxiing(
        touchdown=at(1 / 6),
        exit_point=at(0.5),
        exit_node=exit_node,
        entry=at(0.05),
        entry_node=entry_node,
        heading=math.degrees(math.atan2(x1 - x0, y1 - y0)) % 360.0,
    )
