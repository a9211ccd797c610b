"""OpenStreetMap extract + overlay -> the layout part of ``reference.json``.

Why here: ``chunker/imports/`` holds importers of foreign formats into the raw contract
(``chunker.format.records``), which the chunker owns; this one turns an airport's OSM
aeroway map into a ``Reference`` the chunker reads unchanged, and track importers
(CSV/GPX/ADS-B) will sit beside it. Laptop-only: it never runs in a Lambda.

What comes from where (docs/data-format.md, "Importing an OpenStreetMap layout"):

- **stands**: ``aeroway=parking_position`` nodes (the nose-wheel position) and ways (drawn
  from the taxiway to the nose wheel: the last node is the position, the last segment the
  nose heading; a line whose last node meets another way and whose first meets none was
  drawn the other way round, and its first node is the position). The id is the ``ref``
  (else a ``name`` that looks like a designator, ``STAND_DESIGNATOR``; else the ref of an
  ``aeroway=gate`` within ``contact_distance_m``, else ``osm-w<id>``) normalised to the
  contract's id pattern. ``contact`` when a terminal
  outline, jet bridge or gate is within ``contact_distance_m`` (its terminal then becomes
  ``terminal_id``), else ``remote``.
- **road graph**: ``aeroway=taxiway``/``taxilane`` ways and ``highway=service`` ways
  inside the aerodrome polygon, one road node per OSM node (``n<id>``), one edge per way
  segment, speed limits per road kind from the overlay. Each stand and depot drives to the
  nearest node of the largest connected part of the graph (at most ``max_snap_m``).
- **terminals**: ``aeroway=terminal`` closed ways and multipolygons (largest outer ring).
- **runways**: ``aeroway=runway`` centrelines grouped by ``ref`` (pieces and displaced
  thresholds joined); start/end are the group's two farthest points.
- **airport, depots, fleet**: the overlay (``chunker.imports.overlay``); name and ICAO id
  default to the ``aeroway=aerodrome`` element's tags.

Ids that repeat (OSM has two stands ``N70``) are made unique deterministically: entries
are ordered by (ref needed no normalising, node before way, OSM id); the first keeps the
id, the next get ``-2``, ``-3``...; two entries closer than ``duplicate_merge_m`` are one
stand mapped twice and the second is skipped. Every entry that cannot be used is in the
report with a reason; only a layout with no usable stand is an error.

Geometry is plain Python on a local tangent plane (the WGS84 ellipsoid's radii of
curvature at each segment's latitude). Measured against pyproj's WGS84 geodesic on both
fixture airports (bench/osm_geometry_vs_pyproj.py): every road edge's length agrees to
1e-9 relative, and the nearest-road-node search agrees with shapely's STRtree on every
stand at the same speed; the whole CDG import takes ~0.3 s. shapely/pyproj would add two
compiled dependencies for nothing measurable.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chunker.format.records import (
    AIRPORT_ID_PATTERN,
    ENTITY_ID_PATTERN,
    OSM_ATTRIBUTION,
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
)
from chunker.imports.osm_document import LatLon, Node, OsmDocument, Relation, Way
from chunker.imports.overlay import Overlay

_ENTITY_ID = re.compile(ENTITY_ID_PATTERN)
_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:-]+")
# WGS84
_A = 6_378_137.0
_E2 = 6.694_379_990_14e-3
ROUND = 7  # decimals of a coordinate in the output (~1 cm)
MAX_RUNWAY_ID = 16
# Aeroway features the raw contract has no place for (counted in the report, not imported).
# An unnamed terminal this close to a named one is labelled after it ("Building by D-pier").
UNNAMED_NEAR_M = 500.0
# A stand with no designator is "Stand near <a stand with one>" only this close to it: two
# to three stand widths (wide-body stands are 60-80 m apart), so the stand named is in
# sight of it on the apron and on the map. Farther, "near" would send a controller to the
# wrong apron (EHAM has one 543 m from the nearest ref): "Stand <n> (unnamed)" instead.
STAND_NEAR_M = 150.0
# A stand's OSM ``name`` is its designator only when it looks like one: one word with a
# digit, at most 12 characters ("A6", "E32", "W06/W07"). Longer, descriptive names
# ("Axe de repoussage E5", a pushback axis; "Entrée de poste E05", a lead-in line) name
# a part of a stand, not the stand; they stay in the report (``stand_labels``).
STAND_DESIGNATOR = re.compile(r"^(?=\S*\d)\S{1,12}$")
NOT_IN_CONTRACT = ("holding_position", "apron", "gate", "jet_bridge", "taxilane_area")


class NoUsableLayout(ValueError):
    """The extract gives no stand the chunker could use (the one fatal case)."""


# --- geometry -------------------------------------------------------------------------


def _metres_per_degree(lat: float) -> tuple[float, float]:
    """(north, east) metres per degree at a latitude: the WGS84 radii of curvature."""
    phi = math.radians(lat)
    w = 1.0 - _E2 * math.sin(phi) ** 2
    return (
        math.radians(1.0) * _A * (1.0 - _E2) / w**1.5,
        math.radians(1.0) * _A / math.sqrt(w) * math.cos(phi),
    )


class LocalFrame:
    """Metres east/north of an origin, and distances/bearings on the WGS84 ellipsoid.

    ``xy`` projects onto the tangent plane at the origin (for "which is nearest", where a
    scale error of ~1e-3 at 5 km from the origin does not matter); ``distance`` and
    ``bearing`` use the radii of curvature at the two points' mean latitude, which agrees
    with the geodesic to ~1e-6 over an airport's segments (bench/osm_geometry_vs_pyproj.py).
    """

    def __init__(self, lat: float, lon: float) -> None:
        self.lat0, self.lon0 = lat, lon
        self.m_per_deg_lat, self.m_per_deg_lon = _metres_per_degree(lat)

    def xy(self, point: LatLon) -> tuple[float, float]:
        """(x east, y north) in metres on the tangent plane at the origin."""
        return (
            (point[1] - self.lon0) * self.m_per_deg_lon,
            (point[0] - self.lat0) * self.m_per_deg_lat,
        )

    @staticmethod
    def _delta(a: LatLon, b: LatLon) -> tuple[float, float]:
        north, east = _metres_per_degree((a[0] + b[0]) / 2)
        return (b[1] - a[1]) * east, (b[0] - a[0]) * north

    def distance(self, a: LatLon, b: LatLon) -> float:
        """Metres between two points."""
        dx, dy = self._delta(a, b)
        return math.hypot(dx, dy)

    def bearing(self, a: LatLon, b: LatLon) -> float:
        """Degrees clockwise from true north, from a to b, in [0, 360), 0.1 degree steps."""
        dx, dy = self._delta(a, b)
        degrees = round(math.degrees(math.atan2(dx, dy)) % 360.0, 1)
        return 0.0 if degrees >= 360.0 else degrees


def _segment_distance(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    t = (
        0.0
        if length2 == 0
        else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    )
    return math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy))


def _inside(p: tuple[float, float], ring: list[tuple[float, float]]) -> bool:
    """Even-odd rule."""
    x, y = p
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def _ring_area(ring: list[tuple[float, float]]) -> float:
    return (
        abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:] + ring[:1], strict=True)))
        / 2
    )


@dataclass
class _Shape:
    """A polygon (outer rings with holes) or polyline in local metres, with a bounding box."""

    rings: list[list[tuple[float, float]]]  # polygon rings (even-odd) or polylines
    closed: bool
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        xs = [p[0] for r in self.rings for p in r]
        ys = [p[1] for r in self.rings for p in r]
        self.box = (min(xs), min(ys), max(xs), max(ys))

    def distance(self, p: tuple[float, float], limit: float) -> float:
        """Metres from p to the shape (0 inside a polygon); ``inf`` if beyond ``limit``."""
        x0, y0, x1, y1 = self.box
        if p[0] < x0 - limit or p[0] > x1 + limit or p[1] < y0 - limit or p[1] > y1 + limit:
            return math.inf
        if self.closed and sum(_inside(p, r) for r in self.rings) % 2 == 1:
            return 0.0
        best = math.inf
        for ring in self.rings:
            pairs = (
                zip(ring, ring[1:] + ring[:1], strict=True)
                if self.closed
                else itertools.pairwise(ring)
            )
            for a, b in pairs:
                best = min(best, _segment_distance(p, a, b))
        return best


class _Grid:
    """Nearest road node by a uniform grid (cells of ``cell`` metres)."""

    def __init__(self, points: dict[str, tuple[float, float]], cell: float = 100.0) -> None:
        self.cell = cell
        self.points = points
        self.cells: dict[tuple[int, int], list[str]] = defaultdict(list)
        for key in sorted(points):
            x, y = points[key]
            self.cells[(int(x // cell), int(y // cell))].append(key)

    def nearest(self, p: tuple[float, float], limit: float) -> tuple[str, float] | None:
        cx, cy = int(p[0] // self.cell), int(p[1] // self.cell)
        reach = int(limit // self.cell) + 1
        best: tuple[float, str] | None = None
        for ix in range(cx - reach, cx + reach + 1):
            for iy in range(cy - reach, cy + reach + 1):
                for key in self.cells.get((ix, iy), ()):
                    q = self.points[key]
                    d = math.hypot(q[0] - p[0], q[1] - p[1])
                    if d <= limit and (best is None or (d, key) < best):
                        best = (d, key)
        return None if best is None else (best[1], best[0])


# --- ids ------------------------------------------------------------------------------


def normalise_id(text: str | None) -> str | None:
    """A contract entity id from free text (``Run up Position 28`` -> ``Run_up_Position_28``).

    Accents are dropped (``É`` -> ``E``), every run of other characters becomes ``_``,
    leading/trailing separators go, and the id is cut to 64 characters. None if nothing
    is left.
    """
    if text is None:
        return None
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    candidate = _NOT_ID_CHARS.sub("_", ascii_text.strip()).strip("_.:-")
    candidate = candidate[:64].rstrip("_.:-")
    return candidate if candidate and _ENTITY_ID.match(candidate) else None


def _element(kind: str, osm_id: int) -> str:
    return f"{kind}/{osm_id}"


# --- the report -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    """An OSM entry not imported, and why."""

    element: str
    feature: str  # stand, road, terminal, runway, depot, element
    reason: str
    detail: str


@dataclass
class ImportReport:
    """What the import did: counts, every skipped entry, duplicates and id changes."""

    skipped: list[Skipped] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)  # stand id -> OSM origin
    renamed: dict[str, str] = field(default_factory=dict)  # original ref -> stand id
    not_in_contract: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    road_components: int = 0
    road_length_m: dict[str, float] = field(default_factory=dict)
    headings_estimated: int = 0
    # Stand lines drawn from the stand to the taxiway (``_Importer._stand_end``).
    stands_reversed: int = 0

    def skip(self, element: str, feature: str, reason: str, detail: str) -> None:
        """Record an entry left out."""
        self.skipped.append(Skipped(element, feature, reason, detail))

    def skipped_by_reason(self) -> dict[str, int]:
        """``feature:reason`` -> count."""
        counts = Counter(f"{s.feature}:{s.reason}" for s in self.skipped)
        return dict(sorted(counts.items()))


@dataclass
class LayoutImport:
    """The imported reference and what happened on the way."""

    reference: Reference
    report: ImportReport

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and findings (the CLI prints it)."""
        ref, report = self.reference, self.report
        return {
            "airport": ref.airport.airport_id,
            "counts": {
                "stands": len(ref.stands),
                "contact_stands": sum(s.kind == "contact" for s in ref.stands),
                "terminals": len(ref.terminals),
                "runways": len(ref.runways),
                "road_nodes": len(ref.road_nodes),
                "road_edges": len(ref.road_edges),
                "depots": len(ref.depots),
                "vehicles": len(ref.vehicles),
            },
            "road_components": report.road_components,
            "road_length_m": report.road_length_m,
            "headings_estimated": report.headings_estimated,
            "stands_reversed": report.stands_reversed,
            "duplicates": report.duplicates,
            "renamed": report.renamed,
            "skipped": report.skipped_by_reason(),
            "not_in_contract": report.not_in_contract,
            "notes": report.notes,
        }

    def full_report(self) -> dict[str, Any]:
        """The summary plus every skipped entry and every stand's OSM origin."""
        return {
            **self.summary(),
            "skipped_entries": [
                {"element": s.element, "feature": s.feature, "reason": s.reason, "detail": s.detail}
                for s in self.report.skipped
            ],
            "stand_labels": self.report.labels,
        }


# --- reading features -----------------------------------------------------------------


def _tagged(document: OsmDocument, key: str, value: str) -> Iterator[Node | Way | Relation]:
    for collection in (document.nodes, document.ways, document.relations):
        for osm_id in sorted(collection):
            element = collection[osm_id]
            if element.tags.get(key) == value:
                yield element


def _kind(element: Node | Way | Relation) -> str:
    return (
        "node" if isinstance(element, Node) else "way" if isinstance(element, Way) else "relation"
    )


def _runs(points: Iterable[LatLon | None]) -> list[list[LatLon]]:
    """Split a way's points at unknown coordinates."""
    runs: list[list[LatLon]] = [[]]
    for p in points:
        if p is None:
            runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if len(r) >= 2]


def _join_rings(pieces: list[list[LatLon]]) -> list[list[LatLon]]:
    """Join multipolygon member ways end to end into closed rings; open leftovers dropped."""
    rings: list[list[LatLon]] = []
    open_pieces = []
    for piece in pieces:
        if len(piece) >= 4 and piece[0] == piece[-1]:
            rings.append(piece)
        elif len(piece) >= 2:
            open_pieces.append(list(piece))
    while open_pieces:
        current = open_pieces.pop(0)
        progress = True
        while current[0] != current[-1] and progress:
            progress = False
            for i, piece in enumerate(open_pieces):
                if piece[0] == current[-1]:
                    current += piece[1:]
                elif piece[-1] == current[-1]:
                    current += piece[-2::-1]
                elif piece[-1] == current[0]:
                    current = piece[:-1] + current
                elif piece[0] == current[0]:
                    current = piece[:0:-1] + current
                else:
                    continue
                open_pieces.pop(i)
                progress = True
                break
        if current[0] == current[-1] and len(current) >= 4:
            rings.append(current)
    return rings


def _polygon_rings(
    element: Node | Way | Relation,
) -> tuple[list[list[LatLon]], list[list[LatLon]]] | str:
    """(outer rings, inner rings) of an area, or why it is not one."""
    if isinstance(element, Node):
        return "a node has no outline"
    if isinstance(element, Way):
        runs = _runs(element.points)
        if not element.closed or len(runs) != 1 or len(runs[0]) < 4:
            return "not a closed way"
        return [runs[0]], []
    if element.tags.get("type") != "multipolygon":
        return f"a type={element.tags.get('type', '?')} relation is not an outline"
    outer = _join_rings(
        [r for m in element.members if m.role in ("outer", "") for r in _runs(m.points)]
    )
    inner = _join_rings([r for m in element.members if m.role == "inner" for r in _runs(m.points)])
    if not outer:
        return "no closed outer ring"
    return outer, inner


def _open_ring(ring: list[LatLon]) -> list[LatLon]:
    return ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring


def _point(p: LatLon) -> Point:
    return Point(lat=round(p[0], ROUND), lon=round(p[1], ROUND))


def _number(text: str | None) -> float | None:
    if not text:
        return None
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(m|metres|meters)?\s*$", text)
    return float(match.group(1)) if match else None


# --- the import -----------------------------------------------------------------------


@dataclass
class _StandCandidate:
    element: str
    kind_order: int
    osm_id: int
    raw_label: str | None
    label_source: str
    base_id: str
    position: LatLon
    heading: float | None
    osm_name: str | None = None  # a descriptive ``name`` that is not a designator


@dataclass
class _Graph:
    nodes: dict[str, LatLon] = field(default_factory=dict)
    edges: dict[tuple[str, str], float] = field(default_factory=dict)
    kinds: dict[tuple[str, str], str] = field(default_factory=dict)


class _Importer:
    def __init__(self, document: OsmDocument, overlay: Overlay) -> None:
        self.doc = document
        self.overlay = overlay
        self.report = ImportReport()
        for bad in document.unreadable:
            self.report.skip(bad.element, "element", bad.reason, bad.detail)
        self.aerodrome = self._aerodrome()
        self._aerodrome_rings: list[list[tuple[float, float]]] | None = None
        self.frame = LocalFrame(*self._origin())

    # -- airport --------------------------------------------------------------------

    def _aerodrome(
        self,
    ) -> tuple[Node | Way | Relation, list[list[LatLon]], list[list[LatLon]]] | None:
        wanted = self.overlay.airport.airport_id
        candidates = []
        for element in _tagged(self.doc, "aeroway", "aerodrome"):
            rings = _polygon_rings(element)
            if isinstance(rings, str):
                continue
            outer, inner = rings
            frame = LocalFrame(*outer[0][0])
            area = sum(_ring_area([frame.xy(p) for p in r]) for r in outer)
            matches = wanted is not None and wanted in (
                element.tags.get("icao"),
                element.tags.get("ref"),
            )
            candidates.append(
                (not matches, -area, _kind(element), element.osm_id, element, outer, inner)
            )
        if not candidates:
            return None
        best = min(candidates, key=lambda c: c[:4])
        return best[4], best[5], best[6]

    def _origin(self) -> LatLon:
        if self.overlay.airport.reference_point is not None:
            p = self.overlay.airport.reference_point
            return p.lat, p.lon
        if self.aerodrome is not None:
            points = [p for r in self.aerodrome[1] for p in r]
        else:
            points = [
                p
                for value in ("parking_position", "taxiway", "runway", "terminal")
                for e in _tagged(self.doc, "aeroway", value)
                for p in self._points_of(e)
            ]
        if not points:
            raise NoUsableLayout("the extract has no aerodrome, stands, taxiways or runways")
        lats = [p[0] for p in points]
        lons = [p[1] for p in points]
        return (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2

    @staticmethod
    def _points_of(element: Node | Way | Relation) -> list[LatLon]:
        if isinstance(element, Node):
            return [(element.lat, element.lon)]
        if isinstance(element, Way):
            return [p for p in element.points if p is not None]
        return [p for m in element.members for p in m.points if p is not None]

    def airport(self) -> Airport:
        tags = self.aerodrome[0].tags if self.aerodrome is not None else {}
        given = self.overlay.airport
        airport_id = given.airport_id or tags.get("icao")
        if airport_id is None:
            raise NoUsableLayout(
                "no airport id: the extract has no aerodrome with an icao=* tag; "
                "give airport.airport_id in the overlay"
            )
        if not re.match(AIRPORT_ID_PATTERN, airport_id):
            raise NoUsableLayout(
                f"the aerodrome's icao={airport_id!r} is not an airport id "
                f"({AIRPORT_ID_PATTERN}); give airport.airport_id in the overlay"
            )
        name = given.name or tags.get("name:en") or tags.get("name") or airport_id
        name_zh = given.name_zh or tags.get("name:zh")
        return Airport(
            airport_id=airport_id,
            name=name[:200],
            name_zh=name_zh[:200] if name_zh else None,
            timezone=given.timezone,
            reference_point=_point((self.frame.lat0, self.frame.lon0)),
        )

    # -- roads ----------------------------------------------------------------------

    def _road_kind(self, way: Way) -> str | None:
        aeroway = way.tags.get("aeroway")
        if aeroway in ("taxiway", "taxilane"):
            return aeroway
        if way.tags.get("highway") == "service":
            return "service"
        return None

    def _inside_aerodrome(self, p: LatLon) -> bool:
        if self.aerodrome is None:
            return True
        if self._aerodrome_rings is None:
            self._aerodrome_rings = [
                [self.frame.xy(q) for q in r] for r in (*self.aerodrome[1], *self.aerodrome[2])
            ]
        xy = self.frame.xy(p)
        return sum(_inside(xy, r) for r in self._aerodrome_rings) % 2 == 1

    def roads(self) -> _Graph:
        graph = _Graph()
        for osm_id in sorted(self.doc.ways):
            way = self.doc.ways[osm_id]
            kind = self._road_kind(way)
            if kind is None:
                continue
            element = _element("way", osm_id)
            if way.tags.get("area") == "yes":
                self.report.skip(element, "road", "area", f"{kind} mapped as an area, not a line")
                continue
            limit = self.overlay.speed_limit(kind)
            added = 0
            for a_id, a, b_id, b in self._segments(way):
                if kind == "service" and not (
                    self._inside_aerodrome(a) and self._inside_aerodrome(b)
                ):
                    continue
                if a_id == b_id or a == b:
                    continue
                graph.nodes[a_id] = a
                graph.nodes[b_id] = b
                key = (a_id, b_id) if a_id < b_id else (b_id, a_id)
                if key not in graph.edges or limit < graph.edges[key]:
                    graph.edges[key] = limit
                    graph.kinds[key] = kind
                added += 1
            if added == 0:
                reason = "outside_aerodrome" if kind == "service" else "no_segments"
                self.report.skip(element, "road", reason, f"{kind}: no usable segment")
        return graph

    @staticmethod
    def _segments(way: Way) -> Iterator[tuple[str, LatLon, str, LatLon]]:
        ids = [f"n{n}" if n >= 0 else f"g{-n}" for n in way.node_ids] or [
            f"w{way.osm_id}-{i}" for i in range(len(way.points))
        ]
        for i in range(len(way.points) - 1):
            a, b = way.points[i], way.points[i + 1]
            if a is not None and b is not None:
                yield ids[i], a, ids[i + 1], b

    def largest_component(self, graph: _Graph) -> set[str]:
        parent = {n: n for n in graph.nodes}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for a, b in graph.edges:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        members: dict[str, set[str]] = defaultdict(set)
        for n in graph.nodes:
            members[find(n)].add(n)
        self.report.road_components = len(members)
        if not members:
            return set()
        return max(members.values(), key=lambda m: (len(m), min(m)))

    # -- terminals ------------------------------------------------------------------

    def terminals(self) -> tuple[list[Terminal], dict[str, _Shape]]:
        found: list[tuple[str, Node | Way | Relation, list[LatLon]]] = []
        for element in _tagged(self.doc, "aeroway", "terminal"):
            name = _element(_kind(element), element.osm_id)
            rings = _polygon_rings(element)
            if isinstance(rings, str):
                self.report.skip(name, "terminal", "no_outline", rings)
                continue
            outer, _ = rings
            frame = self.frame
            largest = max(outer, key=lambda r: _ring_area([frame.xy(p) for p in r]))
            if len(outer) > 1:
                self.report.notes.append(
                    f"terminal {name}: kept the largest of {len(outer)} outer rings"
                )
            base = normalise_id(element.tags.get("ref")) or normalise_id(element.tags.get("name"))
            found.append((base or f"osm-{_kind(element)[0]}{element.osm_id}", element, largest))
        shapes: dict[str, _Shape] = {}
        used: set[str] = set()
        names: dict[str, str | None] = {}
        outlines: dict[str, list[LatLon]] = {}
        for base, element, ring in found:
            terminal_id = _unique(base, used)
            used.add(terminal_id)
            outlines[terminal_id] = _open_ring(ring)
            tags = element.tags
            ref = tags.get("ref")
            names[terminal_id] = (
                tags.get("name:en") or tags.get("name") or (f"Terminal {ref}" if ref else None)
            )
            shapes[terminal_id] = _Shape(
                [[self.frame.xy(p) for p in outlines[terminal_id]]], closed=True
            )
        unnamed = self._unnamed_terminal_names(names, shapes)
        terminals = [
            Terminal(
                terminal_id=terminal_id,
                name=(names[terminal_id] or unnamed[terminal_id])[:200],
                named=names[terminal_id] is not None,
                outline=[_point(p) for p in outline],
            )
            for terminal_id, outline in outlines.items()
        ]
        return terminals, shapes

    def _unnamed_terminal_names(
        self, names: dict[str, str | None], shapes: dict[str, _Shape]
    ) -> dict[str, str]:
        """A label a person can place for each terminal OSM gives no name or ref: "Building
        by <the nearest named terminal>" when one is within ``UNNAMED_NEAR_M`` (the second
        by the same one, west to east, "... (2)"), else "Terminal building <n>" numbered
        west to east; never the OSM element id."""
        named = {tid: shapes[tid] for tid, name in names.items() if name}
        labels: dict[str, str] = {}
        alone: list[tuple[float, str]] = []
        by: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for tid, name in names.items():
            if name:
                continue
            x0, y0, x1, y1 = shapes[tid].box
            centre = ((x0 + x1) / 2, (y0 + y1) / 2)
            near = min(
                ((shape.distance(centre, UNNAMED_NEAR_M), other) for other, shape in named.items()),
                default=(math.inf, ""),
            )
            if near[0] <= UNNAMED_NEAR_M:
                by[f"Building by {names[near[1]]}"].append((centre[0], tid))
            else:
                alone.append((centre[0], tid))
        for label, buildings in by.items():  # several by one terminal: (2), (3) west to east
            for n, (_, tid) in enumerate(sorted(buildings), start=1):
                labels[tid] = label if n == 1 else f"{label} ({n})"
        for n, (_, tid) in enumerate(sorted(alone), start=1):
            labels[tid] = f"Terminal building {n}"
        return labels

    # -- runways --------------------------------------------------------------------

    def runways(self) -> list[Runway]:
        groups: dict[str, list[Way]] = defaultdict(list)
        named_ref: dict[str, str] = {}
        pieces: list[Way] = []
        for element in _tagged(self.doc, "aeroway", "runway"):
            name = _element(_kind(element), element.osm_id)
            if not isinstance(element, Way):
                self.report.skip(
                    name, "runway", "not_a_line", "a runway must be a way (centreline)"
                )
                continue
            if element.tags.get("area") == "yes" or element.closed:
                self.report.skip(
                    name, "runway", "area", "runway mapped as an area, not a centreline"
                )
                continue
            ref = element.tags.get("ref")
            if ref:
                groups[ref.strip()].append(element)
                if element.tags.get("name"):
                    named_ref.setdefault(element.tags["name"], ref.strip())
            else:
                pieces.append(element)
        node_ref = {n: ref for ref, ways in groups.items() for w in ways for n in w.node_ids}
        for piece in pieces:
            ref = named_ref.get(piece.tags.get("name", "")) or next(
                (node_ref[n] for n in piece.node_ids if n in node_ref), None
            )
            if ref is None:
                self.report.skip(
                    _element("way", piece.osm_id),
                    "runway",
                    "no_ref",
                    "no ref=* and joins no runway",
                )
                continue
            groups[ref].append(piece)
        runways = []
        for ref in sorted(groups):
            ways = groups[ref]
            points = sorted({p for w in ways for p in w.points if p is not None})
            if len(points) < 2:
                for way in ways:
                    self.report.skip(
                        _element("way", way.osm_id),
                        "runway",
                        "no_geometry",
                        f"runway {ref!r} has fewer than two distinct points",
                    )
                continue
            start, end = max(
                ((a, b) for i, a in enumerate(points) for b in points[i + 1 :]),
                key=lambda ab: self.frame.distance(*ab),
            )
            widths = [_number(w.tags.get("width")) for w in ways]
            width = max((w for w in widths if w), default=None)
            if width is None:
                width = self.overlay.default_runway_width_m
                self.report.notes.append(f"runway {ref}: no width=*, {width:g} m assumed")
            runway_id = ref[:MAX_RUNWAY_ID]
            if runway_id != ref:
                self.report.notes.append(f"runway {ref!r}: id cut to {runway_id!r} (16 characters)")
            runways.append(
                Runway(runway_id=runway_id, start=_point(start), end=_point(end), width_m=width)
            )
        return runways

    # -- stands ---------------------------------------------------------------------

    def _gate_refs(self) -> list[tuple[tuple[float, float], str]]:
        gates = []
        for element in _tagged(self.doc, "aeroway", "gate"):
            if isinstance(element, Node) and element.tags.get("ref"):
                gates.append((self.frame.xy((element.lat, element.lon)), element.tags["ref"]))
        return gates

    def _shared_nodes(self) -> set[int]:
        """Node ids that two or more ways hold: where a stand's line meets the network."""
        seen: Counter[int] = Counter()
        for way in self.doc.ways.values():
            seen.update(set(way.node_ids))
        return {node for node, count in seen.items() if count >= 2}

    def _stand_end(self, way: Way, shared: set[int]) -> tuple[LatLon, LatLon] | None:
        """The (previous, nose-wheel) points of an open stand line drawn the wrong way round
        — from the stand to the taxiway: its last node meets another way and its first
        meets none — else None (the wiki's convention: the last node is the nose wheel)."""
        ids, points = way.node_ids, way.points
        if len(ids) < 2 or len(ids) != len(points) or points[0] is None or points[1] is None:
            return None
        if ids[-1] in shared and ids[0] not in shared:
            return points[1], points[0]
        return None

    def stand_candidates(self) -> list[_StandCandidate]:
        gates = self._gate_refs()
        shared = self._shared_nodes()
        candidates = []
        for element in _tagged(self.doc, "aeroway", "parking_position"):
            name = _element(_kind(element), element.osm_id)
            heading: float | None = None
            if isinstance(element, Node):
                position: LatLon = (element.lat, element.lon)
            elif isinstance(element, Way):
                runs = _runs(element.points)
                if not runs:
                    self.report.skip(name, "stand", "no_geometry", "no two consecutive known nodes")
                    continue
                if element.closed:  # an area: its centre, heading unknown
                    ring = _open_ring(runs[0])
                    position = (
                        sum(p[0] for p in ring) / len(ring),
                        sum(p[1] for p in ring) / len(ring),
                    )
                elif (reversed_end := self._stand_end(element, shared)) is not None:
                    position = reversed_end[1]
                    heading = self.frame.bearing(*reversed_end)
                    self.report.stands_reversed += 1
                else:
                    last = runs[-1]
                    position = last[-1]
                    heading = self.frame.bearing(last[-2], last[-1])
            else:
                self.report.skip(name, "stand", "unsupported_geometry", "a relation stand")
                continue
            raw, source = element.tags.get("ref"), "ref"
            osm_name = element.tags.get("name")
            if not raw and osm_name and STAND_DESIGNATOR.match(osm_name.strip()):
                raw, source, osm_name = osm_name, "name", None
            if not raw:
                xy = self.frame.xy(position)
                near = [
                    (math.hypot(g[0] - xy[0], g[1] - xy[1]), ref)
                    for g, ref in gates
                    if math.hypot(g[0] - xy[0], g[1] - xy[1]) <= self.overlay.contact_distance_m
                ]
                if near:
                    raw, source = min(near)[1], "gate"
            base = normalise_id(raw) if raw else None
            if raw and base is None:
                self.report.notes.append(f"stand {name}: ref {raw!r} has no usable characters")
            candidates.append(
                _StandCandidate(
                    element=name,
                    kind_order=0 if isinstance(element, Node) else 1,
                    osm_id=element.osm_id,
                    raw_label=raw,
                    label_source=source if raw else "osm id",
                    base_id=base or f"osm-{name[0]}{element.osm_id}",
                    position=position,
                    heading=heading,
                    osm_name=osm_name,
                )
            )
        return candidates

    def stands(
        self,
        graph: _Graph,
        component: set[str],
        terminal_shapes: dict[str, _Shape],
    ) -> list[Stand]:
        frame, overlay, report = self.frame, self.overlay, self.report
        grid = _Grid({n: frame.xy(graph.nodes[n]) for n in component})
        gates = self._gate_refs()
        bridges = [
            _Shape([[frame.xy(p) for p in r] for r in _runs(e.points)], closed=False)
            for e in _tagged(self.doc, "aeroway", "jet_bridge")
            if isinstance(e, Way) and _runs(e.points)
        ]
        by_id: dict[str, list[_StandCandidate]] = defaultdict(list)
        for candidate in self.stand_candidates():
            by_id[candidate.base_id].append(candidate)
        placed: list[tuple[_StandCandidate, str]] = []
        used: set[str] = set(by_id)
        for base_id in sorted(by_id):
            group = sorted(
                by_id[base_id],
                key=lambda c: (c.raw_label != base_id, c.kind_order, c.osm_id),
            )
            kept: list[tuple[_StandCandidate, str]] = []
            for candidate in group:
                twin = next(
                    (
                        k
                        for k, _ in kept
                        if frame.distance(k.position, candidate.position)
                        <= overlay.duplicate_merge_m
                    ),
                    None,
                )
                if twin is not None:
                    report.skip(
                        candidate.element,
                        "stand",
                        "duplicate_mapping",
                        f"{base_id!r} mapped twice: {twin.element} kept "
                        f"({frame.distance(twin.position, candidate.position):.1f} m apart)",
                    )
                    continue
                if not kept:
                    stand_id = base_id
                else:
                    stand_id = _unique(base_id, used)
                    used.add(stand_id)
                kept.append((candidate, stand_id))
            if len(kept) > 1:
                report.duplicates.append(
                    {
                        "ref": group[0].raw_label or base_id,
                        "stands": {sid: c.element for c, sid in kept},
                    }
                )
            placed += kept
        placed = self._drop_undesignated_twins(placed)
        found: list[tuple[_StandCandidate, str, dict[str, Any]]] = []
        for candidate, stand_id in sorted(placed, key=lambda cs: cs[1]):
            xy = frame.xy(candidate.position)
            snapped = grid.nearest(xy, overlay.max_snap_m)
            if snapped is None:
                report.skip(
                    candidate.element,
                    "stand",
                    "no_road_nearby",
                    f"stand {stand_id!r}: no road node within {overlay.max_snap_m:g} m",
                )
                continue
            road_node, _ = snapped
            heading = candidate.heading
            if heading is None:  # nose away from the lane it taxied in from
                heading = frame.bearing(graph.nodes[road_node], candidate.position)
                report.headings_estimated += 1
            limit = overlay.contact_distance_m
            near_terminal = min(
                ((shape.distance(xy, limit), tid) for tid, shape in terminal_shapes.items()),
                default=(math.inf, ""),
            )
            near_bridge = min((b.distance(xy, limit) for b in bridges), default=math.inf)
            near_gate = min(
                (math.hypot(g[0] - xy[0], g[1] - xy[1]) for g, _ in gates), default=math.inf
            )
            contact = min(near_terminal[0], near_bridge, near_gate) <= limit
            found.append(
                (
                    candidate,
                    stand_id,
                    {
                        "kind": "contact" if contact else "remote",
                        "terminal_id": near_terminal[1]
                        if contact and near_terminal[0] <= limit
                        else None,
                        "position": _point(candidate.position),
                        "heading": heading,
                        "road_node": road_node,
                    },
                )
            )
        # Labels once the stands on the map are known ("Stand near" one that is there).
        labels = self._stand_labels([(c, sid) for c, sid, _ in found])
        stands = []
        for candidate, stand_id, fields in found:
            stands.append(
                Stand(
                    stand_id=stand_id,
                    label=labels[stand_id][:200],
                    named=candidate.raw_label is not None,
                    **fields,
                )
            )
            report.labels[stand_id] = {
                "osm": candidate.element,
                "label": labels[stand_id],
                "from": candidate.label_source,
            }
            if candidate.osm_name:  # a descriptive name: kept beside the label
                report.labels[stand_id]["osm_name"] = candidate.osm_name
            if candidate.raw_label and candidate.raw_label != stand_id:
                report.renamed[f"{candidate.raw_label} ({candidate.element})"] = stand_id
        return stands

    def _drop_undesignated_twins(
        self, placed: list[tuple[_StandCandidate, str]]
    ) -> list[tuple[_StandCandidate, str]]:
        """A stand with no designator of its own (no ref or designator name; a gate's ref
        is borrowed) within ``duplicate_merge_m`` of one with its own is that stand mapped
        twice (CDG's "Entrée de poste E05", E05's lead-in line ending on E05): skipped as
        ``duplicate_mapping``, not drawn as a second stand on top. So is an undesignated
        line that shares a node with a designated stand's line (a lead-in drawn on to the
        stand's own line), however far apart their positions end up."""
        frame, limit = self.frame, self.overlay.duplicate_merge_m
        own = ("ref", "name")
        designated = [(c, sid) for c, sid in placed if c.label_source in own]
        on_line = {
            node: sid for c, sid in designated for node in self._way_nodes(c)
        }  # node id -> the designated stand whose line holds it
        kept = []
        for candidate, stand_id in placed:
            twin = None
            if candidate.label_source not in own:
                twin = min(
                    (
                        (frame.distance(c.position, candidate.position), sid)
                        for c, sid in designated
                    ),
                    default=None,
                )
            joined = next((on_line[n] for n in self._way_nodes(candidate) if n in on_line), None)
            if candidate.label_source not in own and joined is not None:
                where = f"its line joins stand {joined!r}'s"
            elif twin is not None and twin[0] <= limit:
                where = f"{twin[0]:.1f} m from stand {twin[1]!r}"
            else:
                kept.append((candidate, stand_id))
                continue
            self.report.skip(
                candidate.element,
                "stand",
                "duplicate_mapping",
                "no designator"
                + (f" (name {candidate.osm_name!r})" if candidate.osm_name else "")
                + f" and {where}: the same stand mapped twice",
            )
        return kept

    def _way_nodes(self, candidate: _StandCandidate) -> tuple[int, ...]:
        """The node ids of a stand candidate's way (none for a node stand)."""
        way = self.doc.ways.get(candidate.osm_id) if candidate.kind_order == 1 else None
        return way.node_ids if way is not None else ()

    def _stand_labels(self, placed: list[tuple[_StandCandidate, str]]) -> dict[str, str]:
        """What a person sees for each stand: its OSM ref as written (``W06/W07``, not the
        id's ``W06_W07``); the second, third... of a repeated ref ``F70 (2)``, ``F70 (3)``
        in id order; a stand OSM gives no designator "Stand near <the nearest stand with
        one>" when that is within ``STAND_NEAR_M`` (more near the same one "(2)", "(3)"
        west to east), else "Stand <n> (unnamed)" west to east; never the OSM element id."""
        labels: dict[str, str] = {}
        repeats: dict[str, int] = defaultdict(int)
        refd: dict[str, tuple[float, float]] = {}
        for candidate, stand_id in sorted(placed, key=lambda cs: cs[1]):
            raw = candidate.raw_label
            if raw is None:
                continue
            repeats[raw] += 1
            n = repeats[raw]
            labels[stand_id] = raw if n == 1 else f"{raw} ({n})"
            refd[stand_id] = self.frame.xy(candidate.position)
        alone: list[tuple[float, str]] = []
        near: dict[str, list[tuple[float, str]]] = defaultdict(list)
        for candidate, stand_id in placed:
            if candidate.raw_label is not None:
                continue
            xy = self.frame.xy(candidate.position)
            nearest = min(
                ((math.hypot(q[0] - xy[0], q[1] - xy[1]), sid) for sid, q in refd.items()),
                default=None,
            )
            if nearest is None or nearest[0] > STAND_NEAR_M:
                alone.append((xy[0], stand_id))
            else:
                near[f"Stand near {labels[nearest[1]]}"].append((xy[0], stand_id))
        for label, group in near.items():
            for n, (_, sid) in enumerate(sorted(group), start=1):
                labels[sid] = label if n == 1 else f"{label} ({n})"
        for n, (_, sid) in enumerate(sorted(alone), start=1):
            labels[sid] = f"Stand {n} (unnamed)"
        return labels

    # -- depots and fleet -----------------------------------------------------------

    def depots(self, graph: _Graph, component: set[str]) -> list[Depot]:
        grid = _Grid({n: self.frame.xy(graph.nodes[n]) for n in component})
        depots = []
        for depot in self.overlay.depots:
            road_node = depot.road_node
            if road_node is not None and road_node not in graph.nodes:
                raise NoUsableLayout(
                    f"overlay depot {depot.depot_id}: road node {road_node!r} is not in the graph"
                )
            if road_node is None:
                snapped = grid.nearest(
                    self.frame.xy((depot.position.lat, depot.position.lon)), self.overlay.max_snap_m
                )
                if snapped is None:
                    raise NoUsableLayout(
                        f"overlay depot {depot.depot_id}: no road node within "
                        f"{self.overlay.max_snap_m:g} m of its position"
                    )
                road_node = snapped[0]
            depots.append(
                Depot(
                    depot_id=depot.depot_id,
                    vehicle_type=depot.vehicle_type,
                    name=depot.name,
                    position=depot.position,
                    road_node=road_node,
                )
            )
        return depots

    def vehicles(self) -> list[Vehicle]:
        vehicles = []
        for fleet in self.overlay.fleet:
            depot = fleet.depot_id or self.overlay.depot_for(fleet.vehicle_type).depot_id  # type: ignore[union-attr]
            prefix = fleet.id_prefix or fleet.vehicle_type.value
            label = fleet.label or fleet.vehicle_type.value.replace("_", " ").capitalize()
            width = max(2, len(str(fleet.count)))
            for n in range(1, fleet.count + 1):
                vehicles.append(
                    Vehicle(
                        vehicle_id=f"{prefix}-{n:0{width}d}",
                        vehicle_type=fleet.vehicle_type,
                        label=f"{label} {n:0{width}d}"[:200],
                        depot_id=depot,
                    )
                )
        return vehicles

    # -- everything -----------------------------------------------------------------

    def run(self) -> LayoutImport:
        airport = self.airport()
        graph = self.roads()
        component = self.largest_component(graph)
        lengths: dict[str, float] = defaultdict(float)
        for a, b in graph.edges:
            lengths[graph.kinds[(a, b)]] += self.frame.distance(graph.nodes[a], graph.nodes[b])
        self.report.road_length_m = {k: round(v, 1) for k, v in sorted(lengths.items())}
        terminals, shapes = self.terminals()
        runways = self.runways()
        stands = self.stands(graph, component, shapes)
        if not stands:
            reasons = Counter(s.reason for s in self.report.skipped if s.feature == "stand")
            why = ", ".join(f"{r}: {n}" for r, n in reasons.most_common()) or "none in the extract"
            raise NoUsableLayout(f"no usable stands (aeroway=parking_position; {why})")
        depots = self.depots(graph, component)
        for value in NOT_IN_CONTRACT:
            count = sum(1 for _ in _tagged(self.doc, "aeroway", value))
            if count:
                self.report.not_in_contract[value] = count
        if self.aerodrome is None:
            self.report.notes.append("no aeroway=aerodrome outline: every service road was kept")
        if not self.overlay.depots:
            self.report.notes.append("no depots in the overlay: the fleet is empty")
        reference = Reference(
            airport=airport,
            vehicles=self.vehicles(),
            stands=stands,
            depots=depots,
            terminals=terminals,
            runways=runways,
            road_nodes=[
                RoadNode(node_id=n, position=_point(graph.nodes[n]))
                for n in sorted(graph.nodes, key=_node_order)
            ],
            road_edges=[
                RoadEdge(from_node=a, to_node=b, speed_limit_kmh=limit)
                for (a, b), limit in sorted(
                    graph.edges.items(), key=lambda e: (_node_order(e[0][0]), _node_order(e[0][1]))
                )
            ],
            mover_limits=self.overlay.mover_limits,
            attribution=OSM_ATTRIBUTION,  # ODbL: the credit travels with the data
        )
        return LayoutImport(reference, self.report)


def _node_order(node_id: str) -> tuple[str, int, str]:
    digits = node_id[1:]
    return (node_id[0], int(digits), "") if digits.isdigit() else (node_id[0], 0, node_id)


def _unique(base: str, used: set[str]) -> str:
    """``base`` if free, else ``base-2``, ``base-3``... (cut to stay within 64 characters)."""
    if base not in used:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: 64 - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        n += 1


def import_layout(document: OsmDocument, overlay: Overlay) -> LayoutImport:
    """Build the reference data from an OSM extract and the user's overlay."""
    return _Importer(document, overlay).run()
