"""Read an OpenStreetMap extract: Overpass API JSON or OSM XML (``.osm``), optionally gzip.

Both formats carry the same data model (API 0.6): *nodes* (id, lat, lon, tags), *ways*
(id, ordered node references, tags) and *relations* (id, members with type/ref/role,
tags). Overpass JSON (``[out:json]``) lists them under ``"elements"``; with ``out geom``
a way also carries ``"geometry"`` (one ``{"lat", "lon"}`` per node reference, ``null``
for a node outside a bounding-box clip) and a relation's way members carry theirs, so the
untagged nodes of ways need not be in the file. OSM XML (``<osm>`` with ``<node>``,
``<way>``/``<nd ref>``, ``<relation>``/``<member>`` and ``<tag k v>`` children) always
references nodes by id. Both are read into one model here, coordinates resolved.

One element that cannot be read (no id, a coordinate out of range, a way whose nodes are
all missing) is reported with a reason and left out; it never stops the import. Only a
document that is not OSM at all is an error (``NotOsmDocument``).

XML is parsed with the standard library's expat-based ``ElementTree.iterparse``: OSM
XML uses no DTD or namespaces, and expat (>= 2.4.1, as bundled with CPython 3.11) refuses
entity-expansion bombs.
"""

from __future__ import annotations

import gzip
import io
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

MAX_DOCUMENT_BYTES = 512 * 1024 * 1024  # an airport extract is a few MB; a country is not

LatLon = tuple[float, float]


class NotOsmDocument(ValueError):
    """The input is not an OpenStreetMap document (or cannot be read at all)."""


@dataclass(frozen=True, slots=True)
class Node:
    """An OSM node."""

    osm_id: int
    lat: float
    lon: float
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Way:
    """An OSM way; ``points`` holds one coordinate (or None if unknown) per node ref."""

    osm_id: int
    node_ids: tuple[int, ...]
    points: tuple[LatLon | None, ...]
    tags: dict[str, str]

    @property
    def closed(self) -> bool:
        """First and last node are the same (an area or a ring)."""
        return len(self.node_ids) > 2 and self.node_ids[0] == self.node_ids[-1]


@dataclass(frozen=True, slots=True)
class Member:
    """A relation member; ``points`` for a way member (inline or resolved), else empty."""

    kind: str
    ref: int
    role: str
    points: tuple[LatLon | None, ...]


@dataclass(frozen=True, slots=True)
class Relation:
    """An OSM relation."""

    osm_id: int
    members: tuple[Member, ...]
    tags: dict[str, str]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """An element left out, and why."""

    element: str  # "node/123", "way/456", or "element #7" when it has no id
    reason: str
    detail: str


@dataclass
class OsmDocument:
    """Every readable element of one extract, plus what could not be read."""

    nodes: dict[int, Node] = field(default_factory=dict)
    ways: dict[int, Way] = field(default_factory=dict)
    relations: dict[int, Relation] = field(default_factory=dict)
    unreadable: list[Unreadable] = field(default_factory=list)
    # Coordinates of every node seen, tagged or not (ways are resolved against these).
    coordinates: dict[int, LatLon] = field(default_factory=dict)
    copyright: str | None = None


def read_document(path: Path) -> OsmDocument:
    """Read an Overpass JSON or OSM XML file (gzip is recognised by its magic bytes)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise NotOsmDocument(f"cannot read {path}: {exc.strerror or exc}") from exc
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as handle:
                data = handle.read(MAX_DOCUMENT_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise NotOsmDocument(f"{path} is not a readable gzip file: {exc}") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise NotOsmDocument(
            f"{path} is over {MAX_DOCUMENT_BYTES // 2**20} MiB: extract the airport first"
        )
    return parse_document(data, str(path))


def parse_document(data: bytes, name: str = "input") -> OsmDocument:
    """Parse the bytes of an Overpass JSON or OSM XML document."""
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"{":
        return _from_json(data, name)
    if start == b"<":
        return _from_xml(data, name)
    raise NotOsmDocument(f"{name} is neither Overpass JSON nor OSM XML")


# --- Overpass JSON --------------------------------------------------------------------


def _from_json(data: bytes, name: str) -> OsmDocument:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise NotOsmDocument(f"{name} is not valid JSON: {exc}") from exc
    elements = document.get("elements") if isinstance(document, dict) else None
    if not isinstance(elements, list):
        raise NotOsmDocument(f"{name} is JSON but not Overpass output (no 'elements' list)")
    result = OsmDocument()
    osm3s = document.get("osm3s")
    if isinstance(osm3s, dict) and isinstance(osm3s.get("copyright"), str):
        result.copyright = osm3s["copyright"]
    builder = _Builder(result)
    for number, element in enumerate(elements):
        builder.add_json(number, element)
    builder.resolve()
    return result


# --- OSM XML --------------------------------------------------------------------------


def _from_xml(data: bytes, name: str) -> OsmDocument:
    result = OsmDocument()
    builder = _Builder(result)
    root_seen = False
    number = 0
    try:
        for event, element in ET.iterparse(io.BytesIO(data), events=("start", "end")):
            if event == "start":
                if not root_seen:
                    if element.tag != "osm":
                        raise NotOsmDocument(f"{name} is XML but not OSM (root <{element.tag}>)")
                    root_seen = True
                continue
            if element.tag in ("node", "way", "relation"):
                builder.add_xml(number, element)
                number += 1
                element.clear()
    except ET.ParseError as exc:
        raise NotOsmDocument(f"{name} is not well-formed XML: {exc}") from exc
    if not root_seen:
        raise NotOsmDocument(f"{name} is not OSM XML")
    builder.resolve()
    return result


# --- shared ---------------------------------------------------------------------------


def _coordinate(lat: Any, lon: Any) -> LatLon | None:
    try:
        la, lo = float(lat), float(lon)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(la) and math.isfinite(lo) and -90 <= la <= 90 and -180 <= lo <= 180):
        return None
    return la, lo


def _osm_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        osm_id = int(value)
    except (TypeError, ValueError):
        return None
    return osm_id if str(osm_id) == str(value).strip() else None


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float)}


def _points(raw: Any) -> tuple[LatLon | None, ...] | None:
    if not isinstance(raw, list):
        return None
    return tuple(
        _coordinate(p.get("lat"), p.get("lon")) if isinstance(p, dict) else None for p in raw
    )


@dataclass
class _PendingWay:
    osm_id: int
    node_ids: tuple[int, ...]
    inline: tuple[LatLon | None, ...] | None
    tags: dict[str, str]


@dataclass
class _PendingMember:
    kind: str
    ref: int
    role: str
    inline: tuple[LatLon | None, ...] | None


class _Builder:
    """Collects elements of either format, then resolves way coordinates once."""

    def __init__(self, document: OsmDocument) -> None:
        self.document = document
        self.ways: list[_PendingWay] = []
        self.relations: list[tuple[int, list[_PendingMember], dict[str, str]]] = []

    def skip(self, element: str, reason: str, detail: str) -> None:
        self.document.unreadable.append(Unreadable(element, reason, detail))

    def add_node(self, number: int, raw_id: Any, lat: Any, lon: Any, tags: dict[str, str]) -> None:
        osm_id = _osm_id(raw_id)
        if osm_id is None:
            self.skip(f"element #{number}", "malformed_element", f"node id {raw_id!r}")
            return
        point = _coordinate(lat, lon)
        if point is None:
            self.skip(f"node/{osm_id}", "invalid_coordinate", f"lat={lat!r} lon={lon!r}")
            return
        self.document.coordinates[osm_id] = point
        if tags:
            self.document.nodes[osm_id] = Node(osm_id, point[0], point[1], tags)

    def add_json(self, number: int, element: Any) -> None:
        if not isinstance(element, dict):
            self.skip(f"element #{number}", "malformed_element", "not a JSON object")
            return
        kind = element.get("type")
        tags = _tags(element.get("tags"))
        if kind == "node":
            self.add_node(number, element.get("id"), element.get("lat"), element.get("lon"), tags)
        elif kind == "way":
            osm_id = _osm_id(element.get("id"))
            raw_nodes = element.get("nodes")
            node_ids = (
                tuple(n for n in (_osm_id(v) for v in raw_nodes) if n is not None)
                if isinstance(raw_nodes, list)
                else ()
            )
            inline = _points(element.get("geometry"))
            if osm_id is None:
                self.skip(f"element #{number}", "malformed_element", "way without an id")
                return
            if inline is not None and node_ids and len(inline) != len(node_ids):
                inline = None  # cannot pair them: resolve by node id instead
            self.ways.append(_PendingWay(osm_id, node_ids, inline, tags))
        elif kind == "relation":
            osm_id = _osm_id(element.get("id"))
            if osm_id is None:
                self.skip(f"element #{number}", "malformed_element", "relation without an id")
                return
            members: list[_PendingMember] = []
            raw_members = element.get("members")
            for raw in raw_members if isinstance(raw_members, list) else []:
                if not isinstance(raw, dict):
                    continue
                ref = _osm_id(raw.get("ref"))
                if ref is None or raw.get("type") not in ("node", "way", "relation"):
                    continue
                members.append(
                    _PendingMember(
                        str(raw["type"]),
                        ref,
                        str(raw.get("role") or ""),
                        _points(raw.get("geometry")),
                    )
                )
            self.relations.append((osm_id, members, tags))
        else:
            self.skip(f"element #{number}", "malformed_element", f"type {kind!r}")

    def add_xml(self, number: int, element: ET.Element) -> None:
        tags = {tag.get("k", ""): tag.get("v", "") for tag in element.iter("tag") if tag.get("k")}
        kind = element.tag
        raw_id = element.get("id")
        if kind == "node":
            self.add_node(number, raw_id, element.get("lat"), element.get("lon"), tags)
            return
        osm_id = _osm_id(raw_id)
        if osm_id is None:
            self.skip(f"element #{number}", "malformed_element", f"{kind} id {raw_id!r}")
            return
        if kind == "way":
            node_ids = tuple(
                n for n in (_osm_id(nd.get("ref")) for nd in element.iter("nd")) if n is not None
            )
            self.ways.append(_PendingWay(osm_id, node_ids, None, tags))
            return
        members = [
            _PendingMember(str(m.get("type")), ref, m.get("role") or "", None)
            for m in element.iter("member")
            if (ref := _osm_id(m.get("ref"))) is not None
            and m.get("type") in ("node", "way", "relation")
        ]
        self.relations.append((osm_id, members, tags))

    def resolve(self) -> None:
        coordinates = self.document.coordinates
        for pending in self.ways:
            if pending.inline is not None:
                points = pending.inline
                node_ids = pending.node_ids or tuple(
                    -(pending.osm_id * 10_000 + i) for i in range(len(points))
                )
                for node_id, point in zip(node_ids, points, strict=True):
                    if point is not None:
                        coordinates.setdefault(node_id, point)
            else:
                node_ids = pending.node_ids
                points = tuple(coordinates.get(n) for n in node_ids)
            if sum(p is not None for p in points) < 2:
                self.skip(
                    f"way/{pending.osm_id}",
                    "missing_nodes",
                    f"{sum(p is not None for p in points)} of {len(node_ids)} node "
                    "coordinates in the file",
                )
                continue
            self.document.ways[pending.osm_id] = Way(pending.osm_id, node_ids, points, pending.tags)
        ways = self.document.ways
        for osm_id, members, tags in self.relations:
            resolved = []
            for m in members:
                member_points: tuple[LatLon | None, ...] = ()
                if m.kind == "way":
                    if m.inline is not None:
                        member_points = m.inline
                    elif m.ref in ways:
                        member_points = ways[m.ref].points
                resolved.append(Member(m.kind, m.ref, m.role, member_points))
            self.document.relations[osm_id] = Relation(osm_id, tuple(resolved), tags)
