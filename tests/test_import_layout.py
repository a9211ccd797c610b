"""``dispatch-replay import-layout`` on real OpenStreetMap extracts (EHAM, LFPG).

Counts are checked against what the test itself reads straight from the raw Overpass JSON;
the written reference is validated as the chunker loads it and then chunked with a
synthetic-style day driven over the imported road graph.
"""

from __future__ import annotations

import copy
import gzip
import json
import math
import random
import re
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunker.batch.reference import ReferenceUnusable, read_reference
from chunker.batch.run import chunk_day
from chunker.batch.validate import Rules
from chunker.format.day import ServiceDay
from chunker.format.encoding import ChunkerConfig
from chunker.format.keys import DayKeys
from chunker.format.read import ChunkReader
from chunker.format.records import ENTITY_ID_PATTERN, Reference
from chunker.imports.osm_document import parse_document
from chunker.imports.osm_layout import import_layout
from chunker.imports.overlay import Overlay
from functions.local.cli import main
from tests.conftest import BUCKET
from tests.osm_day import haversine, iso, lines, shortest_path, stand_line, way_holders

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
AIRPORTS = {
    "EHAM": ("eham.overpass.json", "eham.overlay.yaml"),
    "LFPG": ("lfpg.overpass.json.gz", "lfpg.overlay.json"),
}
ENTITY_ID = re.compile(ENTITY_ID_PATTERN)
Imported = dict[str, tuple[Reference, dict[str, Any]]]


def raw_elements(name: str) -> list[dict[str, Any]]:
    data = (FIXTURES / name).read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elements: list[dict[str, Any]] = orjson.loads(data)["elements"]
    return elements


def aeroway(elements: list[dict[str, Any]], value: str) -> list[dict[str, Any]]:
    return [e for e in elements if e.get("tags", {}).get("aeroway") == value]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def run_import(
    capsys: pytest.CaptureFixture[str], osm: str, overlay: str, out: str
) -> tuple[int, str, str]:
    return run_cli(["import-layout", osm, "--overlay", overlay, "--out", out], capsys)


def import_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], osm: Path, overlay: Path
) -> tuple[Reference, dict[str, Any], dict[str, Any]]:
    out = tmp_path / "reference.json"
    status, stdout, stderr = run_cli(
        ["import-layout", str(osm), "--overlay", str(overlay), "--out", str(out)], capsys
    )
    assert status == 0, stderr
    summary = json.loads(stdout)
    report = json.loads((tmp_path / "reference.import-report.json").read_text())
    return Reference.model_validate_json(out.read_bytes()), summary, report


@pytest.fixture(scope="module")
def imported(
    tmp_path_factory: pytest.TempPathFactory,
) -> Imported:
    results = {}
    for airport, (osm, overlay) in AIRPORTS.items():
        tmp = tmp_path_factory.mktemp(airport)
        out = tmp / "reference.json"
        assert (
            main(
                [
                    "import-layout",
                    str(FIXTURES / osm),
                    "--overlay",
                    str(FIXTURES / overlay),
                    "--out",
                    str(out),
                    "--report",
                    str(tmp / "report.json"),
                ]
            )
            == 0
        )
        report = json.loads((tmp / "report.json").read_text())
        results[airport] = (Reference.model_validate_json(out.read_bytes()), report)
    return results


# --- counts against the raw OSM JSON ------------------------------------------------


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_every_parking_position_is_a_stand_or_skipped_with_a_reason(
    airport: str, imported: Imported
) -> None:
    reference, report = imported[airport]
    raw = {
        f"{e['type']}/{e['id']}"
        for e in aeroway(raw_elements(AIRPORTS[airport][0]), "parking_position")
    }
    imported_from = {label["osm"] for label in report["stand_labels"].values()}
    skipped = {s["element"] for s in report["skipped_entries"] if s["feature"] == "stand"}
    assert len(reference.stands) == len(imported_from) == len(report["stand_labels"])
    assert imported_from | skipped == raw
    assert not imported_from & skipped
    assert all(s["reason"] for s in report["skipped_entries"])


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_stands_keep_their_osm_ref_position_and_nose_heading(
    airport: str, imported: Imported
) -> None:
    reference, report = imported[airport]
    by_osm = {label["osm"]: sid for sid, label in report["stand_labels"].items()}
    stands = {s.stand_id: s for s in reference.stands}
    raw = raw_elements(AIRPORTS[airport][0])
    elements = aeroway(raw, "parking_position")
    refs = Counter(e["tags"].get("ref") for e in elements)
    holders = way_holders(raw)
    checked = reversed_lines = 0
    for raw_element in elements:
        element = raw_element
        if element["type"] == "way" and element.get("geometry"):
            line = stand_line(element, holders)
            if line is not element["geometry"]:
                reversed_lines += 1
                element = {**element, "geometry": line}
        ref = element["tags"].get("ref")
        key = f"{element['type']}/{element['id']}"
        if not ref or refs[ref] > 1 or not ENTITY_ID.match(ref) or key not in by_osm:
            continue
        stand = stands[ref]  # a unique, valid ref is the stand id itself
        assert by_osm[key] == ref
        if element["type"] == "node":
            lat, lon = element["lat"], element["lon"]
        else:  # drawn towards the nose wheel: the last node is the stand
            lat, lon = element["geometry"][-1]["lat"], element["geometry"][-1]["lon"]
            (lat0, lon0) = element["geometry"][-2]["lat"], element["geometry"][-2]["lon"]
            north = lat - lat0
            east = (lon - lon0) * math.cos(math.radians(lat))
            expected = math.degrees(math.atan2(east, north)) % 360
            assert min(abs(stand.heading - expected), 360 - abs(stand.heading - expected)) < 1.0
        assert abs(stand.position.lat - lat) < 1e-7 and abs(stand.position.lon - lon) < 1e-7
        checked += 1
    assert checked > 0.8 * len(elements)
    assert reversed_lines > 0 and report["stands_reversed"] == reversed_lines
    if airport == "EHAM":  # D23 and D44: two lines meeting at the taxilane, not one point
        assert stands["D23"].position != stands["D44"].position


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_duplicate_refs_are_disambiguated_deterministically(
    airport: str, imported: Imported
) -> None:
    reference, report = imported[airport]
    elements = aeroway(raw_elements(AIRPORTS[airport][0]), "parking_position")
    refs = Counter(e["tags"]["ref"] for e in elements if e.get("tags", {}).get("ref"))
    repeated = {r: n for r, n in refs.items() if n > 1 and ENTITY_ID.match(r)}
    assert repeated, "both real airports have repeated stand refs"
    ids = {s.stand_id for s in reference.stands}
    assert len(ids) == len(reference.stands)
    merged = Counter(  # one ref mapped twice ('N70' mapped twice: ...), not a twin with none
        m.group(1)
        for s in report["skipped_entries"]
        if s["reason"] == "duplicate_mapping"
        and (m := re.match(r"'(.+?)' mapped twice", s["detail"]))
    )
    reported = {d["ref"]: d["stands"] for d in report["duplicates"]}
    for ref, count in repeated.items():
        kept = count - merged[ref]
        expected = {ref} | {f"{ref}-{n}" for n in range(2, kept + 1)}
        assert expected <= ids, ref
        if kept > 1:
            assert set(reported[ref]) == expected
    # The first of a group is the lowest (node before way, then OSM id).
    for ref, stands in reported.items():
        origins = [stands[ref], *(stands[f"{ref}-{n}"] for n in range(2, len(stands) + 1))]
        order = [(o.split("/")[0] != "node", int(o.split("/")[1])) for o in origins]
        assert report["stand_labels"][ref]["label"] == ref
        assert order[1:] == sorted(order[1:])


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_road_graph_is_every_taxiway_segment(airport: str, imported: Imported) -> None:
    reference, report = imported[airport]
    elements = raw_elements(AIRPORTS[airport][0])
    edges: set[frozenset[str]] = set()
    nodes: set[str] = set()
    length = 0.0
    for way in aeroway(elements, "taxiway") + aeroway(elements, "taxilane"):
        if way["tags"].get("area") == "yes":
            continue
        ids, geometry = way["nodes"], way["geometry"]
        for i in range(len(ids) - 1):
            if ids[i] == ids[i + 1]:
                continue
            pair = frozenset((f"n{ids[i]}", f"n{ids[i + 1]}"))
            nodes |= pair
            if pair not in edges:
                a, b = geometry[i], geometry[i + 1]
                length += haversine(a["lat"], a["lon"], b["lat"], b["lon"])
            edges.add(pair)
    assert {n.node_id for n in reference.road_nodes} == nodes
    assert {frozenset((e.from_node, e.to_node)) for e in reference.road_edges} == edges
    assert len(reference.road_edges) == len(edges)
    # Lengths in metres (the report's; the contract has no field): a sphere is within 0.5 %.
    assert sum(report["road_length_m"].values()) == pytest.approx(length, rel=5e-3)
    node_ids = {n.node_id for n in reference.road_nodes}
    assert all(s.road_node in node_ids for s in reference.stands)
    assert all(d.road_node in node_ids for d in reference.depots)


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_terminals_and_runways_match_the_raw_extract(airport: str, imported: Imported) -> None:
    reference, report = imported[airport]
    elements = raw_elements(AIRPORTS[airport][0])
    outlines = [
        e
        for e in aeroway(elements, "terminal")
        if (e["type"] == "way" and e["nodes"][0] == e["nodes"][-1])
        or (e["type"] == "relation" and e["tags"].get("type") == "multipolygon")
    ]
    assert len(reference.terminals) == len(outlines)
    skipped = {s["element"] for s in report["skipped_entries"] if s["feature"] == "terminal"}
    assert len(skipped) == len(aeroway(elements, "terminal")) - len(outlines)
    refs = {e["tags"]["ref"] for e in aeroway(elements, "runway") if e["tags"].get("ref")}
    assert {r.runway_id for r in reference.runways} == refs
    for runway in reference.runways:  # a whole runway: at least its declared length
        declared = max(
            float(e["tags"]["length"])
            for e in aeroway(elements, "runway")
            if e["tags"].get("ref") == runway.runway_id and "length" in e["tags"]
        )
        span = haversine(runway.start.lat, runway.start.lon, runway.end.lat, runway.end.lon)
        assert span >= 0.95 * declared, (runway.runway_id, span, declared)


def _metres(lat: float, lon: float, origin: tuple[float, float]) -> tuple[float, float]:
    return (
        (lon - origin[1]) * 111_195.0 * math.cos(math.radians(origin[0])),
        (lat - origin[0]) * 111_195.0,
    )


def _outline_distance(p: tuple[float, float], ring: list[tuple[float, float]]) -> float:
    """Metres from p to a polygon (0 inside): ray casting, then the nearest edge."""
    inside = False
    best = math.inf
    for (ax, ay), (bx, by) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (ay > p[1]) != (by > p[1]) and p[0] < ax + (p[1] - ay) * (bx - ax) / (by - ay):
            inside = not inside
        dx, dy = bx - ax, by - ay
        f = max(0.0, min(1.0, ((p[0] - ax) * dx + (p[1] - ay) * dy) / (dx * dx + dy * dy or 1)))
        best = min(best, math.hypot(p[0] - ax - f * dx, p[1] - ay - f * dy))
    return 0.0 if inside else best


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_unnamed_terminals_get_a_label_from_where_they_are_never_an_osm_id(
    airport: str, imported: Imported
) -> None:
    """A building OSM names nothing is "Building by <nearest named terminal>" (within
    500 m of its outline; more by the same one "(2)", "(3)" west to east), else "Terminal
    building <n>" west to east; ``named`` false; every label unique."""
    reference, _ = imported[airport]
    elements = raw_elements(AIRPORTS[airport][0])
    unnamed_osm = {
        f"{e['type'][0]}{e['id']}"
        for e in aeroway(elements, "terminal")
        if not {"name", "name:en", "ref"} & set(e["tags"])
    }
    origin = (reference.airport.reference_point.lat, reference.airport.reference_point.lon)
    rings = {
        t.terminal_id: [_metres(p.lat, p.lon, origin) for p in t.outline]
        for t in reference.terminals
    }
    named = [t for t in reference.terminals if t.named]
    unnamed = [t for t in reference.terminals if not t.named]
    assert unnamed, "both real extracts have unnamed terminal buildings"
    assert {t.terminal_id.removeprefix("osm-") for t in unnamed} <= unnamed_osm
    alone, by = [], defaultdict(list)
    for terminal in unnamed:
        assert not re.search(r"\d{5,}|way|node|relation", terminal.name), terminal.name
        xs = [x for x, _ in rings[terminal.terminal_id]]
        ys = [y for _, y in rings[terminal.terminal_id]]
        centre = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
        distance, nearest = min(
            (_outline_distance(centre, rings[t.terminal_id]), t.name) for t in named
        )
        if distance <= 500:
            by[f"Building by {nearest}"].append((centre[0], terminal.name))
        else:
            alone.append((centre[0], terminal.name))
    for label, buildings in by.items():
        assert [name for _, name in sorted(buildings)] == [label] + [
            f"{label} ({n})" for n in range(2, len(buildings) + 1)
        ]
    assert [name for _, name in sorted(alone)] == [
        f"Terminal building {n}" for n in range(1, len(alone) + 1)
    ]
    labels = [t.name for t in reference.terminals if not t.named]
    assert len(labels) == len(set(labels))


# What a stand's own designator looks like in ``name`` (docs/data-format.md): one word with
# a digit, at most 12 characters; CDG's "Axe de repoussage E5" (a pushback axis) is not one.
DESIGNATOR = re.compile(r"^\S*\d\S*$")
NEAR_M = 150.0  # "Stand near X" only this close to X (docs/data-format.md)


def designator_name(tags: dict[str, str]) -> str | None:
    name = tags.get("name", "").strip()
    return tags["name"] if name and len(name) <= 12 and DESIGNATOR.match(name) else None


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_stand_labels_are_the_osm_ref_as_written_never_an_osm_id(
    airport: str, imported: Imported
) -> None:
    """The label a person sees: the ref (else a designator name, else a gate's ref) as OSM
    writes it (``W06/W07``, not the id's ``W06_W07``); the second of a repeated ref
    ``F70 (2)``; a stand with none "Stand near <nearest stand with one>" when that is
    within 150 m (more near the same one "(2)", "(3)" west to east), else "Stand <n>
    (unnamed)" west to east, ``named`` false. Computed here from the raw JSON."""
    reference, report = imported[airport]
    elements = {
        f"{e['type']}/{e['id']}": e
        for e in aeroway(raw_elements(AIRPORTS[airport][0]), "parking_position")
    }
    gates = [
        (g["lat"], g["lon"], g["tags"]["ref"])
        for g in aeroway(raw_elements(AIRPORTS[airport][0]), "gate")
        if g["type"] == "node" and g["tags"].get("ref")
    ]
    origin = (reference.airport.reference_point.lat, reference.airport.reference_point.lon)
    stands = sorted(reference.stands, key=lambda s: s.stand_id)
    seen: Counter[str] = Counter()
    expected: dict[str, str] = {}
    refd: list[tuple[tuple[float, float], str]] = []
    unnamed: list[tuple[tuple[float, float], str]] = []
    for stand in stands:
        tags = elements[report["stand_labels"][stand.stand_id]["osm"]].get("tags", {})
        xy = _metres(stand.position.lat, stand.position.lon, origin)
        raw = tags.get("ref") or designator_name(tags)
        if not raw:
            near = [(math.dist(xy, _metres(lat, lon, origin)), ref) for lat, lon, ref in gates]
            near = [n for n in near if n[0] <= 60.0]  # contact_distance_m (default)
            raw = min(near)[1] if near else None
        if raw is None:
            unnamed.append((xy, stand.stand_id))
            assert not stand.named
            continue
        assert stand.named
        seen[raw] += 1
        expected[stand.stand_id] = raw if seen[raw] == 1 else f"{raw} ({seen[raw]})"
        refd.append((xy, stand.stand_id))
    assert unnamed, "both real extracts have stands with no ref or name"
    by: dict[str, list[tuple[float, str]]] = defaultdict(list)
    far: list[tuple[float, str]] = []
    chosen = {s.stand_id: s.label for s in stands}
    for xy, sid in unnamed:
        ranked = sorted((math.dist(xy, q), expected[rid]) for q, rid in refd)
        if ranked[0][0] > NEAR_M + 1.0:
            far.append((xy[0], sid))
            continue
        assert ranked[0][0] <= NEAR_M - 1.0, (sid, ranked[0])  # no case this test can't tell
        # Within 1 m of the nearest is a tie this flat projection cannot break; any of
        # those is right.
        ties = [f"Stand near {label}" for d, label in ranked if d - ranked[0][0] < 1.0]
        base = next((t for t in ties if (chosen[sid] or "").startswith(t)), ties[0])
        by[base].append((xy[0], sid))
    for label, group in by.items():
        for n, (_, sid) in enumerate(sorted(group), start=1):
            expected[sid] = label if n == 1 else f"{label} ({n})"
    for n, (_, sid) in enumerate(sorted(far), start=1):
        expected[sid] = f"Stand {n} (unnamed)"
    assert {s.stand_id: s.label for s in stands} == expected
    assert all(not re.search(r"osm-|\d{7,}", s.label or "") for s in stands)
    assert len({s.label for s in stands}) == len(stands)
    by_id = {s.stand_id: s for s in stands}
    if airport == "EHAM":  # the screenshot's defect: "Stand near J04" from 543 m
        assert far, "EHAM has stands farther than 150 m from any ref"
    if airport == "LFPG":  # the screenshot's defects: a slash ref, an unnamed stand
        assert by_id["W06_W07"].label == "W06/W07"
        assert by_id["N70-2"].label == "N70 (2)"
        assert by_id["osm-w152634698"].label.startswith("Stand near ")


def test_descriptive_osm_names_are_not_stand_names(imported: Imported) -> None:
    """CDG's parking positions named "Axe de repoussage E5" (a pushback axis) and "Entrée de
    poste E05" (E05's lead-in line) are parts of stand E05, not stands called that: the
    designator names (A2, A6, E01, E05, E32) are ids and labels, the descriptive ones
    never; the lead-in ends on E05 and is the same stand mapped twice (skipped), the axis
    is an unnamed stand near E05 that keeps its name in the report."""
    reference, report = imported["LFPG"]
    elements = aeroway(raw_elements(AIRPORTS["LFPG"][0]), "parking_position")
    named = {
        f"{e['type']}/{e['id']}": e["tags"]["name"]
        for e in elements
        if e["tags"].get("name") and not e["tags"].get("ref")
    }
    designators = {k: v for k, v in named.items() if designator_name({"name": v})}
    descriptive = {k: v for k, v in named.items() if k not in designators}
    assert sorted(designators.values()) == ["A2", "A6", "E01", "E05", "E32"]
    assert sorted(descriptive.values()) == ["Axe de repoussage E5", "Entrée de poste E05"]
    labels = {v["osm"]: (sid, v) for sid, v in report["stand_labels"].items()}
    stands = {s.stand_id: s for s in reference.stands}
    for element, name in designators.items():
        sid, _ = labels[element]
        assert sid == name and stands[sid].label == name and stands[sid].named
    words = {"axe", "repoussage", "entrée", "entree", "poste"}
    for stand in reference.stands:
        assert not words & set(re.split(r"[\s_()]+", (stand.label or stand.stand_id).lower()))
    skipped = {s["element"]: s for s in report["skipped_entries"]}
    for element, name in descriptive.items():
        if element in labels:  # kept: an unnamed stand, its OSM name beside the label
            sid, entry = labels[element]
            assert not stands[sid].named and entry["osm_name"] == name
            assert stands[sid].label and stands[sid].label.startswith("Stand near E05")
        else:  # skipped: its line joins a designated stand's line, or it ends within
            # duplicate_merge_m (5 m) of a stand with its own designator
            assert skipped[element]["reason"] == "duplicate_mapping", skipped.get(element)
            assert name in skipped[element]["detail"]
            raw = next(e for e in elements if f"{e['type']}/{e['id']}" == element)
            designated_nodes = {
                n
                for e in elements
                if e["tags"].get("ref") or designator_name(e["tags"])
                for n in e.get("nodes", ())
            }
            end = raw["geometry"][-1]
            origin = (reference.airport.reference_point.lat, reference.airport.reference_point.lon)
            here = _metres(end["lat"], end["lon"], origin)
            assert set(raw.get("nodes", ())) & designated_nodes or (
                min(
                    math.dist(here, _metres(s.position.lat, s.position.lon, origin))
                    for s in reference.stands
                    if s.named
                )
                <= 5.0
            )
    assert len(descriptive.keys() & labels.keys()) == 1  # the axis kept, the lead-in not


def test_the_airport_and_fleet_come_from_the_aerodrome_tags_and_the_overlay(
    imported: Imported,
) -> None:
    eham, _ = imported["EHAM"]
    lfpg, _ = imported["LFPG"]
    assert (eham.airport.airport_id, eham.airport.timezone) == ("EHAM", "Europe/Amsterdam")
    assert eham.airport.name == "Amsterdam Airport Schiphol"
    assert (lfpg.airport.airport_id, lfpg.airport.timezone) == ("LFPG", "Europe/Paris")
    assert lfpg.airport.name == "Charles de Gaulle International Airport"  # name:en
    assert len(eham.vehicles) == 37 and len(eham.depots) == 8
    assert {v.vehicle_id for v in lfpg.vehicles} == {f"FT-0{n}" for n in range(1, 6)} | {
        f"PB-0{n}" for n in range(1, 5)
    }
    kinds = Counter(s.kind for s in lfpg.stands)
    assert kinds["contact"] > 100 and kinds["remote"] > 100
    terminals = {t.terminal_id for t in lfpg.terminals}
    assert all(s.terminal_id in terminals for s in lfpg.stands if s.terminal_id)


# --- what the chunker does with it ----------------------------------------------------


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_the_chunker_accepts_the_reference(airport: str, imported: Imported) -> None:
    reference, _ = imported[airport]
    again = Reference.model_validate_json(reference.model_dump_json())
    day = ServiceDay.of("2026-07-14", again.airport.timezone)
    rules = Rules.for_day(again, day)
    assert len(rules.stand_ids) == len(again.stands)
    for kind, ids in {
        "stands": [s.stand_id for s in again.stands],
        "terminals": [t.terminal_id for t in again.terminals],
        "runways": [r.runway_id for r in again.runways],
        "vehicles": [v.vehicle_id for v in again.vehicles],
        "depots": [d.depot_id for d in again.depots],
        "road_nodes": [n.node_id for n in again.road_nodes],
    }.items():
        assert len(ids) == len(set(ids)), kind


def test_a_synthetic_style_day_chunks_onto_the_imported_layout(
    s3: S3Client, imported: Imported
) -> None:
    """Vehicles drive the imported roads from their depots to stands; nothing is rejected."""
    reference, _ = imported["EHAM"]
    date, start = "2026-07-14", "2026-07-14T08:00:00+02:00"
    t0 = ServiceDay.of(date, reference.airport.timezone).hour_window(8)[0]
    where = {n.node_id: (n.position.lat, n.position.lon) for n in reference.road_nodes}
    depots = {d.depot_id: d for d in reference.depots}
    stands = sorted(reference.stands, key=lambda s: s.stand_id)
    positions, tasks, flights = [], [], []
    for i, vehicle in enumerate(reference.vehicles[:8]):
        stand = stands[(i * 37) % len(stands)]
        route = shortest_path(reference, depots[vehicle.depot_id].road_node, stand.road_node)
        driven_ms = 0.0  # at 20 km/h along the route: a fix per node (faster is a jump)
        for index, node in enumerate(route):
            lat, lon = where[node]
            if index:
                before = where[route[index - 1]]
                metres = math.hypot(
                    (lat - before[0]) * 111_195.0,
                    (lon - before[1]) * 111_195.0 * math.cos(math.radians(lat)),
                )
                driven_ms += metres / (20 / 3.6) * 1000
            positions.append(
                {
                    "t": iso(t0 + round(driven_ms)),
                    "vehicle_id": vehicle.vehicle_id,
                    "lat": lat,
                    "lon": lon,
                    "heading": 90.0,
                    "speed_kmh": 20.0,
                    "state": "en_route",
                }
            )
        flight_id = f"KL{100 + i}-A"
        flights.append(
            {
                "t": start,
                "flight_id": flight_id,
                "callsign": f"KLM{100 + i}",
                "flight_number": f"KL{100 + i}",
                "movement": "arrival",
                "airline": "KL",
                "aircraft_type": "B738",
                "registration": "PH-BXA",
                "route": "LHR",
                "stand": stand.stand_id,
                "scheduled": start,
                "status": "scheduled",
            }
        )
        tasks.append(
            {
                "t": start,
                "task_id": f"T{i}",
                "flight_id": flight_id,
                "task_type": "refuel",
                "status": "assigned",
                "previous_status": "created",
                "vehicle_id": vehicle.vehicle_id,
                "stand": stand.stand_id,
                "planned_start": start,
                "planned_end": start,
            }
        )
    keys = DayKeys("EHAM", date)
    objects = {
        keys.reference: reference.model_dump_json().encode(),
        keys.raw_file("positions"): lines(positions),
        keys.raw_file("tasks"): lines(tasks),
        keys.raw_file("flights"): lines(flights),
    }
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    config = ChunkerConfig(bucket_ms=600_000, tick_ms=1_000, histogram_bin_ms=600_000)
    chunk_day(s3, BUCKET, "EHAM", date, config)
    manifest = ChunkReader(s3, BUCKET).published("EHAM", date).manifest
    assert {k: (c.accepted, c.rejected) for k, c in manifest.counts.items()} == {
        "positions": (len(positions), {}),
        "tasks": (len(tasks), {}),
        "flights": (len(flights), {}),
        "notifications": (0, {}),
        "decisions": (0, {}),
        "aircraft": (0, {}),
    }
    assert len(manifest.layout.stands) == len(reference.stands)
    assert len(manifest.layout.road_edges) == len(reference.road_edges)
    # OSM data is ODbL: the credit travels from the import to the manifest the page reads.
    assert manifest.layout.attribution is not None
    assert manifest.layout.attribution.model_dump() == {
        "source": "OpenStreetMap",
        "text": "\u00a9 OpenStreetMap contributors",
        "license": "ODbL 1.0",
        "url": "https://www.openstreetmap.org/copyright",
    }


def test_attribution_is_optional_and_checked(imported: Imported) -> None:
    """A hand-written layout has none (old days still load); a malformed one says why."""
    reference, _ = imported["EHAM"]
    document = json.loads(reference.model_dump_json())
    del document["attribution"]
    read, report = read_reference(json.dumps(document).encode())
    assert read.attribution is None and report.skipped == {}
    document["attribution"] = {"source": "OSM", "text": "x", "license": "ODbL", "url": "ftp://x"}
    with pytest.raises(ReferenceUnusable, match=r"^attribution: "):
        read_reference(json.dumps(document).encode())


# --- formats and bad input ------------------------------------------------------------


def to_osm_xml(elements: list[dict[str, Any]]) -> bytes:
    """The extract as OSM XML, written here from the JSON (nodes of ways included)."""
    root = ET.Element("osm", version="0.6", generator="test")
    nodes: dict[int, tuple[float, float]] = {}
    for e in elements:
        if e["type"] == "node":
            nodes[e["id"]] = (e["lat"], e["lon"])
        elif e["type"] == "way":
            for ref, point in zip(e["nodes"], e["geometry"], strict=True):
                nodes.setdefault(ref, (point["lat"], point["lon"]))
    tagged = {e["id"]: e.get("tags", {}) for e in elements if e["type"] == "node"}
    for node_id, (lat, lon) in sorted(nodes.items()):
        node = ET.SubElement(root, "node", id=str(node_id), lat=repr(lat), lon=repr(lon))
        for k, v in tagged.get(node_id, {}).items():
            ET.SubElement(node, "tag", k=k, v=v)
    ways = {e["id"]: e for e in elements if e["type"] == "way"}
    for e in elements:
        if e["type"] == "way":
            way = ET.SubElement(root, "way", id=str(e["id"]))
            for ref in e["nodes"]:
                ET.SubElement(way, "nd", ref=str(ref))
        elif e["type"] == "relation":
            way = ET.SubElement(root, "relation", id=str(e["id"]))
            for m in e["members"]:
                ET.SubElement(way, "member", type=m["type"], ref=str(m["ref"]), role=m["role"])
                if m["type"] == "way" and m["ref"] not in ways and "geometry" in m:
                    # Overpass inlined a member way that is not itself in the extract.
                    member = ET.SubElement(root, "way", id=str(m["ref"]))
                    for i, point in enumerate(m["geometry"]):
                        ref = -(m["ref"] * 1000 + i)
                        ET.SubElement(
                            root,
                            "node",
                            id=str(ref),
                            lat=repr(point["lat"]),
                            lon=repr(point["lon"]),
                        )
                        ET.SubElement(member, "nd", ref=str(ref))
                    ways[m["ref"]] = m
        else:
            continue
        for k, v in e.get("tags", {}).items():
            ET.SubElement(way, "tag", k=k, v=v)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def test_osm_xml_imports_like_overpass_json(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    imported: Imported,
) -> None:
    xml = tmp_path / "eham.osm"
    xml.write_bytes(to_osm_xml(raw_elements(AIRPORTS["EHAM"][0])))
    reference, _, _ = import_fixture(tmp_path, capsys, xml, FIXTURES / AIRPORTS["EHAM"][1])
    expected = imported["EHAM"][0]
    assert reference.stands == expected.stands
    assert reference.road_edges == expected.road_edges
    assert reference.road_nodes == expected.road_nodes
    assert reference.runways == expected.runways
    assert len(reference.terminals) == len(expected.terminals)


def write_json(path: Path, document: dict[str, Any]) -> Path:
    path.write_bytes(orjson.dumps(document))
    return path


def test_bad_elements_are_reported_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], imported: Imported
) -> None:
    clean, clean_report = imported["LFPG"]
    document = orjson.loads(gzip.decompress((FIXTURES / AIRPORTS["LFPG"][0]).read_bytes()))
    good = len(aeroway(document["elements"], "parking_position"))
    a_stand = copy.deepcopy(
        next(e for e in document["elements"] if e.get("tags", {}).get("ref") == "F72")
    )
    document["elements"] += [
        {
            "type": "node",
            "id": 1,
            "lat": 95.0,
            "lon": 2.5,
            "tags": {"aeroway": "parking_position", "ref": "X1"},
        },
        {
            "type": "way",
            "id": 2,
            "nodes": [7, 8],
            "tags": {"aeroway": "parking_position", "ref": "X2"},
        },
        {
            "type": "relation",
            "id": 3,
            "members": [],
            "tags": {"aeroway": "parking_position", "ref": "X3"},
        },
        {"type": "node", "lat": 49.0, "lon": 2.5, "tags": {"aeroway": "parking_position"}},
        {
            "type": "node",
            "id": 5,
            "lat": 60.0,
            "lon": 10.0,
            "tags": {"aeroway": "parking_position", "ref": "X5"},
        },
        {
            "type": "way",
            "id": 6,
            "nodes": [9, 10, 11, 9],
            "tags": {"aeroway": "taxiway", "area": "yes"},
            "geometry": [
                {"lat": 49.0, "lon": 2.5},
                {"lat": 49.001, "lon": 2.5},
                {"lat": 49.0, "lon": 2.501},
                {"lat": 49.0, "lon": 2.5},
            ],
        },
        {
            "type": "way",
            "id": 13,
            "nodes": [14, 15],
            "tags": {"aeroway": "runway", "ref": "99/99"},
            "geometry": [{"lat": 49.0, "lon": 2.5}, {"lat": 49.0, "lon": 2.5}],
        },
        "not an element",
        {**a_stand, "id": 4, "tags": {"aeroway": "parking_position", "ref": "Run up Position 28"}},
    ]
    osm = write_json(tmp_path / "lfpg.json", document)
    reference, summary, report = import_fixture(
        tmp_path, capsys, osm, FIXTURES / AIRPORTS["LFPG"][1]
    )
    reasons = {s["element"]: s["reason"] for s in report["skipped_entries"]}
    assert reasons["node/1"] == "invalid_coordinate"
    assert reasons["way/2"] == "missing_nodes"
    assert reasons["relation/3"] == "unsupported_geometry"
    assert reasons[f"element #{len(document['elements']) - 6}"] == "malformed_element"
    assert reasons[f"element #{len(document['elements']) - 2}"] == "malformed_element"
    assert reasons["node/5"] == "no_road_nearby"
    assert reasons["way/6"] == "area"
    assert reasons["way/13"] == "no_geometry"
    assert "99/99" not in {r.runway_id for r in reference.runways}
    stands = {s.stand_id for s in reference.stands}
    assert "Run_up_Position_28" in stands
    assert report["stand_labels"]["Run_up_Position_28"]["label"] == "Run up Position 28"
    assert summary["renamed"]["Run up Position 28 (way/4)"] == "Run_up_Position_28"
    # Every stand of the clean import is still there, plus the one with the odd ref.
    assert summary["counts"]["stands"] == len(reference.stands) == len(clean.stands) + 1
    assert good == len(clean.stands) + sum(
        1 for s in clean_report["skipped_entries"] if s["feature"] == "stand"
    )
    assert summary["skipped"]["element:invalid_coordinate"] == 1


def test_service_roads_count_only_inside_the_aerodrome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = orjson.loads(gzip.decompress((FIXTURES / AIRPORTS["LFPG"][0]).read_bytes()))
    stand = next(e for e in document["elements"] if e.get("tags", {}).get("ref") == "F72")
    inside = stand["geometry"][-1]
    document["elements"] += [
        {
            "type": "way",
            "id": 11,
            "nodes": [101, 102],
            "tags": {"highway": "service", "service": "apron"},
            "geometry": [inside, {"lat": inside["lat"] + 0.0005, "lon": inside["lon"]}],
        },
        {
            "type": "way",
            "id": 12,
            "nodes": [103, 104],
            "tags": {"highway": "service"},
            "geometry": [{"lat": 48.90, "lon": 2.40}, {"lat": 48.901, "lon": 2.40}],
        },
    ]
    osm = write_json(tmp_path / "lfpg.json", document)
    reference, summary, report = import_fixture(
        tmp_path, capsys, osm, FIXTURES / AIRPORTS["LFPG"][1]
    )
    edges = {frozenset((e.from_node, e.to_node)): e for e in reference.road_edges}
    assert edges[frozenset(("n101", "n102"))].speed_limit_kmh == 25.0
    assert frozenset(("n103", "n104")) not in edges
    assert {s["element"]: s["reason"] for s in report["skipped_entries"]}[
        "way/12"
    ] == "outside_aerodrome"
    assert summary["road_length_m"]["service"] == pytest.approx(55.6, abs=0.5)


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (None, "cannot read"),
        (b"<html><body>no</body></html>", "XML but not OSM"),
        (b'{"hello": "world"}', "not Overpass output"),
        (b"\x00\x01binary", "neither Overpass JSON nor OSM XML"),
        (
            b'{"elements": [{"type": "node", "id": 1, "lat": 1.0, "lon": 1.0, '
            b'"tags": {"aeroway": "runway"}}]}',
            "no usable stands",
        ),
        (b'{"elements": [', "not valid JSON"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write: bytes | None, message: str
) -> None:
    osm = tmp_path / "input.osm"
    if write is not None:
        osm.write_bytes(write)
    out = tmp_path / "reference.json"
    status, stdout, stderr = run_import(
        capsys, str(osm), str(FIXTURES / AIRPORTS["EHAM"][1]), str(out)
    )
    assert status != 0 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("dispatch-replay import-layout: error: ")
    assert message in stderr
    assert not out.exists()


def test_no_stands_left_is_an_error_that_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elements = [
        e
        for e in raw_elements(AIRPORTS["EHAM"][0])
        if e.get("tags", {}).get("aeroway") not in ("taxiway", "taxilane")
    ]
    osm = write_json(tmp_path / "eham.json", {"elements": elements})
    status, _, stderr = run_import(
        capsys, str(osm), str(FIXTURES / AIRPORTS["EHAM"][1]), str(tmp_path / "r.json")
    )
    assert status != 0
    assert "no usable stands" in stderr and "no_road_nearby: 296" in stderr


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"airport": {"timezone": "Mars/Olympus"}}, "unknown IANA time zone"),
        (
            {
                "airport": {"timezone": "Europe/Paris"},
                "fleet": [{"vehicle_type": "fuel_truck", "count": 2}],
            },
            "no depot for vehicle type",
        ),
        ({"airport": {"timezone": "Europe/Paris"}, "surprise": 1}, "surprise"),
        ({"depots": []}, "airport"),
    ],
)
def test_a_bad_overlay_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overlay: dict[str, Any], message: str
) -> None:
    path = write_json(tmp_path / "overlay.json", overlay)
    status, _, stderr = run_import(
        capsys, str(FIXTURES / AIRPORTS["LFPG"][0]), str(path), str(tmp_path / "r.json")
    )
    assert status != 0 and stderr.count("\n") == 1 and message in stderr


def test_eham_without_an_airport_id_says_where_to_give_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_json(tmp_path / "overlay.json", {"airport": {"timezone": "Europe/Amsterdam"}})
    status, _, stderr = run_import(
        capsys, str(FIXTURES / AIRPORTS["EHAM"][0]), str(path), str(tmp_path / "r.json")
    )
    assert status != 0 and "airport.airport_id" in stderr


def test_the_import_is_deterministic(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    imported: Imported,
) -> None:
    reference, _, _ = import_fixture(
        tmp_path, capsys, FIXTURES / AIRPORTS["LFPG"][0], FIXTURES / AIRPORTS["LFPG"][1]
    )
    assert reference.model_dump_json() == imported["LFPG"][0].model_dump_json()


JUNK: list[Any] = [None, "x", -1, 1e308, [], {}, True, "95", {"lat": None}, [None], [{"lat": 1}]]
TAG_JUNK = ["", "Run up 1", "  ", "ÉÉ", "a" * 300, "yes", "EHAM!"]
EHAM_DOCUMENT = {"elements": raw_elements(AIRPORTS["EHAM"][0])}
EHAM_OVERLAY = Overlay.model_validate(
    {"airport": {"airport_id": "EHAM", "timezone": "Europe/Amsterdam"}}
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), corruptions=st.integers(1, 400))
def test_corrupted_extracts_never_crash_the_import(seed: int, corruptions: int) -> None:
    """Any field of any element replaced by junk: an import, or a clear ValueError."""
    document = copy.deepcopy(EHAM_DOCUMENT)
    rng = random.Random(seed)
    for _ in range(corruptions):
        element = rng.choice(document["elements"])
        key = rng.choice([*element, "tags"])
        values = element.get(key)
        if key == "tags" and isinstance(values, dict) and values:
            values[rng.choice(sorted(values))] = rng.choice(TAG_JUNK)
        elif isinstance(values, list) and values:
            values[rng.randrange(len(values))] = copy.deepcopy(rng.choice(JUNK))
        else:
            # A copy: junk shared by reference could later be put inside itself (a cycle
            # no JSON document can hold).
            element[key] = copy.deepcopy(rng.choice(JUNK))
    try:
        result = import_layout(parse_document(orjson.dumps(document)), EHAM_OVERLAY)
    except ValueError as exc:  # what the CLI turns into one line and exit status 2
        assert str(exc)
        return
    Reference.model_validate_json(result.reference.model_dump_json())
    assert result.reference.stands
