"""The fictional airport: Lanhai International — terminals, stands, service roads, depots.

Geometry is laid out in a local metric frame (x east, y north, metres from the airport
reference point) and converted to WGS84 once. The service-road graph is what vehicles
drive on; ``RoadNetwork`` answers "how long from here to there" and "which way".
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

from chunker.format.records import (
    Airport,
    Depot,
    Point,
    Reference,
    RoadEdge,
    RoadNode,
    Runway,
    Stand,
    Terminal,
    Vehicle,
    VehicleType,
)

AIRPORT_NAME = "Lanhai International (fictional)"
AIRPORT_NAME_ZH = "澜海国际机场（虚构）"
TIMEZONE = "Asia/Shanghai"
# Open water east of the Zhoushan archipelago: no real airport is here.
ORIGIN_LAT = 30.5200
ORIGIN_LON = 122.9800
_M_PER_DEG_LAT = 111_320.0
_M_PER_DEG_LON = _M_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT))

# Vehicles per 150 of fleet, by type; scaled to the requested fleet size.
FLEET_MIX: dict[VehicleType, int] = {
    VehicleType.FUEL_TRUCK: 14,
    VehicleType.CATERING_TRUCK: 14,
    VehicleType.BAGGAGE_TRACTOR: 40,
    VehicleType.CLEANING_VAN: 14,
    VehicleType.WATER_TRUCK: 10,
    VehicleType.LAVATORY_TRUCK: 10,
    VehicleType.PUSHBACK_TUG: 24,
    VehicleType.PASSENGER_BUS: 24,
}
TYPE_CODES: dict[VehicleType, tuple[str, str]] = {
    VehicleType.FUEL_TRUCK: ("FT", "Fuel truck"),
    VehicleType.CATERING_TRUCK: ("CT", "Catering truck"),
    VehicleType.BAGGAGE_TRACTOR: ("BT", "Baggage tractor"),
    VehicleType.CLEANING_VAN: ("CV", "Cleaning van"),
    VehicleType.WATER_TRUCK: ("WT", "Potable water truck"),
    VehicleType.LAVATORY_TRUCK: ("LT", "Lavatory service truck"),
    VehicleType.PUSHBACK_TUG: ("PB", "Pushback tug"),
    VehicleType.PASSENGER_BUS: ("BUS", "Apron bus"),
}
DEPOT_NAMES: dict[VehicleType, str] = {
    VehicleType.FUEL_TRUCK: "Hydrant & fuel truck base",
    VehicleType.CATERING_TRUCK: "Flight kitchen dock",
    VehicleType.BAGGAGE_TRACTOR: "Baggage hall marshalling",
    VehicleType.CLEANING_VAN: "Cabin services base",
    VehicleType.WATER_TRUCK: "Water service point",
    VehicleType.LAVATORY_TRUCK: "Lavatory dump station",
    VehicleType.PUSHBACK_TUG: "Tug park",
    VehicleType.PASSENGER_BUS: "Bus station",
}

HEAD_ROAD_Y = 345.0  # head-of-stand road between terminal face and aircraft noses
CONTACT_Y = 260.0  # aircraft centre on contact stands
REMOTE_Y = -520.0  # aircraft centre on remote stands
REMOTE_ROAD_Y = -440.0
CONNECTOR_XS = (-1250.0, 300.0, 1250.0)
DEPOT_ROAD_X = 1400.0
DEPOT_X = 1530.0
STAND_SPACING = 75.0
REMOTE_SPACING = 80.0


def to_point(x: float, y: float) -> Point:
    """Local metres -> WGS84 (7 decimals, ~1 cm)."""
    return Point(
        lat=round(ORIGIN_LAT + y / _M_PER_DEG_LAT, 7),
        lon=round(ORIGIN_LON + x / _M_PER_DEG_LON, 7),
    )


def to_lat_lon(x: float, y: float) -> tuple[float, float]:
    """Local metres -> (lat, lon) without building a model (hot path)."""
    return ORIGIN_LAT + y / _M_PER_DEG_LAT, ORIGIN_LON + x / _M_PER_DEG_LON


@dataclass(frozen=True, slots=True)
class StandSpot:
    """A stand in local coordinates, with what the generator needs beyond the reference."""

    stand_id: str
    kind: str  # contact | remote
    terminal_id: str | None
    x: float
    y: float
    heading: float
    road_node: str
    widebody: bool


@dataclass(frozen=True, slots=True)
class DepotSpot:
    """A depot in local coordinates."""

    depot_id: str
    vehicle_type: VehicleType
    x: float
    y: float
    road_node: str


@dataclass(frozen=True, slots=True)
class FleetVehicle:
    """A vehicle with its depot and parking slot (local metres)."""

    vehicle_id: str
    vehicle_type: VehicleType
    depot_id: str
    park_x: float
    park_y: float


class RoadNetwork:
    """Shortest drive times on the service-road graph.

    One Dijkstra per source node, run the first time that source is asked for and kept: the
    fictional airport's graph is small, an imported one has thousands of nodes of which a
    day only starts from its depots, stands and runway exits.
    """

    def __init__(self, nodes: dict[str, tuple[float, float]], edges: list[tuple[str, str, float]]):
        self.nodes = nodes
        self._adjacent: dict[str, list[tuple[str, float]]] = {n: [] for n in nodes}
        for a, b, limit in edges:
            seconds = _distance(nodes[a], nodes[b]) / (limit / 3.6)
            self._adjacent[a].append((b, seconds))
            self._adjacent[b].append((a, seconds))
        self._speed = {(a, b): limit for a, b, limit in edges}
        self._speed.update({(b, a): limit for a, b, limit in edges})
        self._time: dict[str, dict[str, float]] = {}
        self._previous: dict[str, dict[str, str]] = {}

    def _from(self, source: str) -> tuple[dict[str, float], dict[str, str]]:
        if source not in self._time:
            self._time[source], self._previous[source] = self._dijkstra(source)
        return self._time[source], self._previous[source]

    def _dijkstra(self, source: str) -> tuple[dict[str, float], dict[str, str]]:
        best = {source: 0.0}
        previous: dict[str, str] = {}
        queue = [(0.0, source)]
        while queue:
            seconds, node = heapq.heappop(queue)
            if seconds > best[node]:
                continue
            for neighbour, cost in self._adjacent[node]:
                candidate = seconds + cost
                if candidate < best.get(neighbour, math.inf):
                    best[neighbour] = candidate
                    previous[neighbour] = node
                    heapq.heappush(queue, (candidate, neighbour))
        return best, previous

    def seconds(self, a: str, b: str) -> float:
        """Drive time at the speed limits."""
        return self._from(a)[0][b]

    def path(self, a: str, b: str) -> list[str]:
        """Node ids from a to b inclusive."""
        previous = self._from(a)[1]
        nodes = [b]
        while nodes[-1] != a:
            nodes.append(previous[nodes[-1]])
        nodes.reverse()
        return nodes

    def limit(self, a: str, b: str) -> float:
        """Speed limit of the edge a-b in km/h."""
        return self._speed[(a, b)]


@dataclass(frozen=True)
class AirportLayout:
    """The generated airport: reference data plus local-frame geometry."""

    reference: Reference
    stands: list[StandSpot]
    depots: dict[VehicleType, DepotSpot]
    fleet: list[FleetVehicle]
    roads: RoadNetwork
    # Local metres -> (lat, lon): the fictional airport's frame unless imported.
    to_lat_lon: Callable[[float, float], tuple[float, float]] = to_lat_lon
    # Where aircraft land and take off on an imported layout (synthetic.imported); None on
    # the fictional airport (synthetic.aircraft's own runway) or an import without runways.
    taxiing: Taxiing | None = None
    imported: bool = False
    notes: tuple[str, ...] = ()  # what the generator should tell the user (fallbacks)


@dataclass(frozen=True, slots=True)
class Taxiing:
    """An imported layout's runway for the synthetic aircraft (local metres).

    Arrivals touch down at ``touchdown``, roll to ``exit_point`` and taxi the road graph
    from ``exit_node``; departures taxi the graph to ``entry_node``, line up at ``entry``
    and roll along ``heading``.
    """

    touchdown: tuple[float, float]
    exit_point: tuple[float, float]
    exit_node: str
    entry: tuple[float, float]
    entry_node: str
    heading: float


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def fleet_sizes(total: int) -> dict[VehicleType, int]:
    """Split ``total`` vehicles over the types in FLEET_MIX proportions, at least one each."""
    if total < len(FLEET_MIX):
        raise ValueError(f"a fleet needs at least {len(FLEET_MIX)} vehicles (one per type)")
    weight = sum(FLEET_MIX.values())
    exact = {t: total * n / weight for t, n in FLEET_MIX.items()}
    sizes = {t: max(1, int(v)) for t, v in exact.items()}
    by_remainder = sorted(FLEET_MIX, key=lambda t: (exact[t] - int(exact[t]), -FLEET_MIX[t]))
    while sum(sizes.values()) < total:
        sizes[by_remainder.pop()] += 1
    while sum(sizes.values()) > total:
        largest = max(sizes, key=lambda t: sizes[t])
        sizes[largest] -= 1
    return sizes


def park_fleet(vehicles: int, depots: dict[VehicleType, DepotSpot]) -> list[FleetVehicle]:
    """``vehicles`` split over the types (``fleet_sizes``), ids ``FT-01``.., each parked at
    its type's depot."""
    fleet: list[FleetVehicle] = []
    for vehicle_type, count in fleet_sizes(vehicles).items():
        code, _ = TYPE_CODES[vehicle_type]
        depot = depots[vehicle_type]
        for n in range(count):
            # Parking rows of ten, 5 m apart, 9 m between rows, east of the depot entrance.
            fleet.append(
                FleetVehicle(
                    f"{code}-{n + 1:02d}",
                    vehicle_type,
                    depot.depot_id,
                    depot.x + 15.0 + (n // 10) * 9.0,
                    depot.y - 22.0 + (n % 10) * 5.0,
                )
            )
    return fleet


def fleet_vehicles(fleet: list[FleetVehicle]) -> list[Vehicle]:
    """The fleet as the reference lists it."""
    return [
        Vehicle(
            vehicle_id=v.vehicle_id,
            vehicle_type=v.vehicle_type,
            label=f"{TYPE_CODES[v.vehicle_type][1]} {v.vehicle_id.rsplit('-', 1)[1]}",
            depot_id=v.depot_id,
        )
        for v in fleet
    ]


def build_layout(airport_id: str, vehicles: int) -> AirportLayout:
    """Lanhai International with a fleet of ``vehicles``."""
    nodes: dict[str, tuple[float, float]] = {}
    edges: list[tuple[str, str, float]] = []
    stands: list[StandSpot] = []

    def road(name: str, points: list[tuple[str, float, float]], limit: float) -> None:
        for node_id, x, y in points:
            nodes.setdefault(node_id, (x, y))
        for (a, _, _), (b, _, _) in itertools.pairwise(points):
            edges.append((a, b, limit))

    # Terminal 1 (west, 16 contact stands) and Terminal 2 (east, 9), noses to the building.
    head: list[tuple[str, float, float]] = [("H-W", CONNECTOR_XS[0], HEAD_ROAD_Y)]
    for i in range(16):
        x = -960.0 + i * STAND_SPACING
        stand_id = f"{101 + i}"
        head.append((f"H{stand_id}", x, HEAD_ROAD_Y))
        stands.append(
            StandSpot(stand_id, "contact", "T1", x, CONTACT_Y, 0.0, f"H{stand_id}", i % 4 == 0)
        )
    head.append(("H-M", CONNECTOR_XS[1], HEAD_ROAD_Y))
    for i in range(9):
        x = 440.0 + i * STAND_SPACING
        stand_id = f"{201 + i}"
        head.append((f"H{stand_id}", x, HEAD_ROAD_Y))
        stands.append(
            StandSpot(stand_id, "contact", "T2", x, CONTACT_Y, 0.0, f"H{stand_id}", i % 3 == 0)
        )
    head.append(("H-E", CONNECTOR_XS[2], HEAD_ROAD_Y))
    head.append(("D-N", DEPOT_ROAD_X, HEAD_ROAD_Y))
    road("head", head, 20.0)  # pedestrians and jet bridges: slower

    # Remote apron: 20 stands south of the main taxilane, served by bus.
    remote: list[tuple[str, float, float]] = [("R-W", CONNECTOR_XS[0], REMOTE_ROAD_Y)]
    for i in range(20):
        x = -1100.0 + i * REMOTE_SPACING
        stand_id = f"{301 + i}"
        remote.append((f"R{stand_id}", x, REMOTE_ROAD_Y))
        stands.append(
            StandSpot(stand_id, "remote", None, x, REMOTE_Y, 0.0, f"R{stand_id}", i % 5 == 4)
        )
        if i == 17:
            remote.append(("R-M", CONNECTOR_XS[1], REMOTE_ROAD_Y))
    remote.sort(key=lambda p: p[1])
    remote.append(("R-E", CONNECTOR_XS[2], REMOTE_ROAD_Y))
    remote.append(("D-S", DEPOT_ROAD_X, REMOTE_ROAD_Y))
    road("remote", remote, 25.0)

    # Connectors across the taxilane (with a crossing node) and the depot road.
    for label, x in zip("WME", CONNECTOR_XS, strict=True):
        road(
            f"connector-{label}",
            [
                (f"H-{label}", x, HEAD_ROAD_Y),
                (f"X-{label}", x, -50.0),
                (f"R-{label}", x, REMOTE_ROAD_Y),
            ],
            25.0,
        )

    depot_types = list(FLEET_MIX)
    depot_road: list[tuple[str, float, float]] = [("D-N", DEPOT_ROAD_X, HEAD_ROAD_Y)]
    depots: dict[VehicleType, DepotSpot] = {}
    for i, vehicle_type in enumerate(depot_types):
        y = 280.0 - i * 95.0
        node_id = f"D{i + 1}"
        depot_road.append((node_id, DEPOT_ROAD_X, y))
        depots[vehicle_type] = DepotSpot(
            f"DEP-{TYPE_CODES[vehicle_type][0]}", vehicle_type, DEPOT_X, y, node_id
        )
    depot_road.append(("D-S", DEPOT_ROAD_X, REMOTE_ROAD_Y))
    road("depot", depot_road, 25.0)

    network = RoadNetwork(nodes, edges)

    fleet = park_fleet(vehicles, depots)

    def box(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
        return [to_point(x0, y0), to_point(x1, y0), to_point(x1, y1), to_point(x0, y1)]

    reference = Reference(
        airport=Airport(
            airport_id=airport_id,
            name=AIRPORT_NAME,
            name_zh=AIRPORT_NAME_ZH,
            timezone=TIMEZONE,
            reference_point=to_point(0.0, 0.0),
        ),
        vehicles=fleet_vehicles(fleet),
        stands=[
            Stand(
                stand_id=s.stand_id,
                kind="contact" if s.kind == "contact" else "remote",
                terminal_id=s.terminal_id,
                position=to_point(s.x, s.y),
                heading=s.heading,
                road_node=s.road_node,
            )
            for s in stands
        ],
        depots=[
            Depot(
                depot_id=d.depot_id,
                vehicle_type=d.vehicle_type,
                name=DEPOT_NAMES[d.vehicle_type],
                position=to_point(d.x, d.y),
                road_node=d.road_node,
            )
            for d in depots.values()
        ],
        terminals=[
            Terminal(terminal_id="T1", name="Terminal 1", outline=box(-1010, 385, 190, 560)),
            Terminal(terminal_id="T2", name="Terminal 2", outline=box(400, 385, 1090, 540)),
        ],
        runways=[
            Runway(
                runway_id="06L/24R",
                start=to_point(-1900, 1500),
                end=to_point(1900, 1650),
                width_m=45,
            ),
            Runway(
                runway_id="06R/24L",
                start=to_point(-1900, -1750),
                end=to_point(1900, -1600),
                width_m=60,
            ),
        ],
        road_nodes=[
            RoadNode(node_id=node_id, position=to_point(x, y)) for node_id, (x, y) in nodes.items()
        ],
        road_edges=[
            RoadEdge(from_node=a, to_node=b, speed_limit_kmh=limit) for a, b, limit in edges
        ],
    )
    return AirportLayout(reference, stands, depots, fleet, network)
