"""The product's synthetic day (``synthetic.generate_day``) laid onto both imported real
airports (EHAM, LFPG OpenStreetMap fixtures, ``import-layout``): it chunks with nothing
rejected, and the raw records are checked here, with this file's own geometry, against the
imported reference: vehicles drive its road edges (or are on a stand's / depot's apron),
tasks and flights use its stand ids, aircraft are on its roads, stands and runway.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from chunker.batch.run import chunk_day
from chunker.format.encoding import ChunkerConfig
from chunker.format.records import Reference, VehicleType
from functions.local.cli import main
from synthetic import GeneratedDay, GeneratorSettings, generate_day, write_day
from tests.conftest import BUCKET
from tests.test_synthetic import records

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
AIRPORTS = {
    "EHAM": ("eham.overpass.json", "eham.overlay.yaml"),
    "LFPG": ("lfpg.overpass.json.gz", "lfpg.overlay.json"),
}
ON_EDGE_M = 5.0  # GPS noise (<= 3.4 m) and 7-decimal rounding
CELL_M = 100.0
SAID: dict[str, list[str]] = {}  # the generator's progress lines per airport


class Geometry:
    """Metres on an equirectangular plane at the airport (this test's own projection)."""

    def __init__(self, reference: Reference) -> None:
        self.lat0 = reference.airport.reference_point.lat
        self.lon0 = reference.airport.reference_point.lon
        self.kx = 111_195.0 * math.cos(math.radians(self.lat0))
        self.nodes = {
            n.node_id: self.xy(n.position.lat, n.position.lon) for n in reference.road_nodes
        }
        self.cells: dict[tuple[int, int], list[tuple[tuple[float, float], tuple[float, float]]]]
        self.cells = defaultdict(list)
        for e in reference.road_edges:
            a, b = self.nodes[e.from_node], self.nodes[e.to_node]
            for cx in range(int(min(a[0], b[0]) // CELL_M), int(max(a[0], b[0]) // CELL_M) + 1):
                for cy in range(int(min(a[1], b[1]) // CELL_M), int(max(a[1], b[1]) // CELL_M) + 1):
                    self.cells[(cx, cy)].append((a, b))
        # A stand's apron: from the stand to its road node, plus the pushback and the
        # service positions around a wide-body (~70 m).
        self.aprons = [
            (self.xy(s.position.lat, s.position.lon), self._reach(s.position, s.road_node) + 80.0)
            for s in reference.stands
        ]
        self.aprons += [
            (self.xy(d.position.lat, d.position.lon), self._reach(d.position, d.road_node) + 80.0)
            for d in reference.depots
        ]
        self.runways = [
            (self.xy(r.start.lat, r.start.lon), self.xy(r.end.lat, r.end.lon), r.width_m)
            for r in reference.runways
        ]

    def _reach(self, position: Any, node: str) -> float:
        return math.dist(self.xy(position.lat, position.lon), self.nodes[node])

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * 111_195.0

    def on_edge(self, p: tuple[float, float]) -> bool:
        cx, cy = int(p[0] // CELL_M), int(p[1] // CELL_M)
        return any(
            segment_distance(p, a, b) <= ON_EDGE_M
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
            for a, b in self.cells.get((cx + dx, cy + dy), ())
        )

    def on_apron(self, p: tuple[float, float]) -> bool:
        return any(math.dist(p, centre) <= radius for centre, radius in self.aprons)

    def near_runway(self, p: tuple[float, float], margin: float) -> bool:
        return any(segment_distance(p, a, b) <= w / 2 + margin for a, b, w in self.runways)


def segment_distance(
    p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]
) -> float:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy
    f = (
        0.0
        if length2 == 0
        else max(0.0, min(1.0, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2))
    )
    return math.dist(p, (a[0] + f * dx, a[1] + f * dy))


@pytest.fixture(scope="module")
def days(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[Reference, GeneratedDay]]]:
    out = {}
    for airport, (osm, overlay) in AIRPORTS.items():
        path = tmp_path_factory.mktemp(airport) / "reference.json"
        argv = ["import-layout", str(FIXTURES / osm), "--overlay", str(FIXTURES / overlay)]
        assert main([*argv, "--out", str(path)]) == 0
        settings = GeneratorSettings(
            layout=path,
            service_date=dt.date(2026, 7, 14),
            vehicles=16,
            flights=30,
            start_hour=7,
            hours=2,
        )
        said: list[str] = []
        day = generate_day(settings, said.append)
        out[airport] = (Reference.model_validate_json(path.read_bytes()), day)
        SAID[airport] = said
    yield out


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_the_generated_day_chunks_onto_the_imported_airport_with_nothing_rejected(
    airport: str, days: dict[str, tuple[Reference, GeneratedDay]], s3: S3Client
) -> None:
    imported, day = days[airport]
    assert day.keys.airport == imported.airport.airport_id
    written = Reference.model_validate_json(day.objects[day.keys.reference])
    # The imported layout as it is; only the fleet is the generator's.
    assert written.model_dump(exclude={"vehicles"}) == imported.model_dump(exclude={"vehicles"})
    write_day(day, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
    # 10-minute chunks: the same acceptance rules, a tenth of the (mostly empty) objects.
    config = ChunkerConfig(bucket_ms=600_000, histogram_bin_ms=600_000)
    summary = chunk_day(s3, BUCKET, day.keys.airport, day.keys.service_date, config)
    for kind, counts in summary.counts.items():
        assert counts.accepted == day.counts[kind], kind
        assert counts.rejected == {} and counts.duplicates == 0, kind
    for kind in ("positions", "tasks", "flights", "aircraft"):
        assert day.counts[kind] > 0, kind


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_vehicles_drive_the_imported_roads_to_imported_stands(
    airport: str, days: dict[str, tuple[Reference, GeneratedDay]]
) -> None:
    imported, day = days[airport]
    geometry = Geometry(imported)
    stands = {s.stand_id for s in imported.stands}
    tasks = records(day, "tasks")
    assert {t["stand"] for t in tasks} <= stands
    assert {f["stand"] for f in records(day, "flights") if f.get("stand")} <= stands
    off, on_road, moving_on_road = [], 0, 0
    for fix in records(day, "positions"):
        p = geometry.xy(fix["lat"], fix["lon"])
        if geometry.on_edge(p):
            on_road += 1
            moving_on_road += fix["speed_kmh"] > 5
        elif not geometry.on_apron(p):
            off.append(fix)
    assert off == []
    # They do drive the roads, not only stand still at depots.
    assert moving_on_road > 1_000, (on_road, moving_on_road)
    assert {t["vehicle_id"] for t in tasks if t.get("vehicle_id")} <= {
        v.vehicle_id
        for v in Reference.model_validate_json(day.objects[day.keys.reference]).vehicles
    }


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_aircraft_taxi_on_the_imported_layout_and_park_on_its_stands(
    airport: str, days: dict[str, tuple[Reference, GeneratedDay]]
) -> None:
    imported, day = days[airport]
    geometry = Geometry(imported)
    nodes = list(geometry.nodes.values())
    # The runway's own taxiway stub: the farthest a runway point is from the road graph.
    stub = max(
        min(math.dist(p, n) for n in nodes)
        for a, b, _ in geometry.runways
        for p in (a, b, ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    )
    where = {"road": 0, "apron": 0, "runway": 0}
    off = []
    taxiing = 0
    for fix in records(day, "aircraft"):
        p = geometry.xy(fix["lat"], fix["lon"])
        if geometry.on_edge(p):
            where["road"] += 1
            taxiing += 5 < fix["ground_speed_kmh"] < 60
        elif geometry.on_apron(p):
            where["apron"] += 1
        elif geometry.near_runway(p, stub + ON_EDGE_M):
            where["runway"] += 1
        else:
            off.append(fix)
    assert off == []
    assert taxiing > 200 and where["apron"] > 0 and where["runway"] > 0, where
    # Parked aircraft stand on imported stands: a parked fix is within 5 m of one.
    stand_points = [geometry.xy(s.position.lat, s.position.lon) for s in imported.stands]
    parked = [
        f for f in records(day, "aircraft") if f["ground_speed_kmh"] == 0 and f["callsign"] is None
    ]
    assert parked
    for fix in parked:
        p = geometry.xy(fix["lat"], fix["lon"])
        assert min(math.dist(p, s) for s in stand_points) <= ON_EDGE_M, fix


def test_a_layout_the_generator_cannot_use_is_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    days: dict[str, tuple[Reference, GeneratedDay]],
) -> None:
    no_depots = tmp_path / "no-depots.json"
    no_depots.write_text(days["EHAM"][0].model_copy(update={"depots": []}).model_dump_json())
    not_a_reference = tmp_path / "other.json"
    not_a_reference.write_text('{"airport": {}}')
    expected = {
        tmp_path / "missing.json": "cannot read layout",
        not_a_reference: "is not a reference.json: airport.airport_id: Field required",
        no_depots: "the layout has no depots: add a `depots` list to the import overlay",
    }
    for layout, message in expected.items():
        argv = ["generate", "--layout", str(layout), "--out", str(tmp_path / "out"), "--quiet"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("dispatch-replay generate: error: ") and message in err, err
        assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_vehicle_type_without_a_depot_borrows_the_first_one_and_says_so(
    days: dict[str, tuple[Reference, GeneratedDay]],
) -> None:
    """The LFPG overlay gives depots for fuel trucks and tugs only."""
    imported, day = days["LFPG"]
    first = imported.depots[0].depot_id
    own = {d.vehicle_type.value: d.depot_id for d in imported.depots}
    written = Reference.model_validate_json(day.objects[day.keys.reference])
    types = {v.vehicle_type.value for v in written.vehicles}
    assert len(types) == 8
    for vehicle in written.vehicles:
        assert vehicle.depot_id == own.get(vehicle.vehicle_type.value, first)
    borrowed = sorted(types - set(own))
    assert [line for line in SAID["LFPG"] if line.startswith("no ")] == [
        f"no {t} depot in the layout: its vehicles use {first} (add one to the overlay's depots)"
        for t in sorted(borrowed, key=[v.value for v in VehicleType].index)
    ]
    assert not [line for line in SAID["EHAM"] if line.startswith("no ")]
