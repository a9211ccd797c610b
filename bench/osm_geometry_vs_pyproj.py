"""How far the importer's plain-Python geometry is from pyproj/shapely, on the OSM fixtures.

Not part of ``python -m bench`` (the project does not depend on pyproj or shapely: this
check is why). Run it in a scratch virtualenv that has them beside the project's
dependencies::

    python3 -m venv /tmp/geo && /tmp/geo/bin/pip install -q -c constraints.txt -e . pyproj shapely
    /tmp/geo/bin/python bench/osm_geometry_vs_pyproj.py

It imports both fixture airports, then compares (1) every road edge's length from
``LocalFrame`` with pyproj's WGS84 geodesic (``Geod.inv``), and (2) the nearest road node
of every stand from the importer's grid with shapely's ``STRtree.nearest`` on the same
projected points, and times both. Results as JSON on stdout.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyproj
import shapely

from chunker.imports.osm_document import read_document
from chunker.imports.osm_layout import LocalFrame, _Grid, import_layout
from chunker.imports.overlay import Overlay

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures" / "osm"
AIRPORTS = {
    "EHAM": ("eham.overpass.json", "Europe/Amsterdam"),
    "LFPG": ("lfpg.overpass.json.gz", "Europe/Paris"),
}


def main() -> None:
    results = {}
    geod = pyproj.Geod(ellps="WGS84")
    for airport, (name, zone) in AIRPORTS.items():
        started = time.perf_counter()
        document = read_document(FIXTURES / name)
        read_s = time.perf_counter() - started
        overlay = Overlay.model_validate({"airport": {"airport_id": airport, "timezone": zone}})
        started = time.perf_counter()
        result = import_layout(document, overlay)
        import_s = time.perf_counter() - started
        ref = result.reference
        frame = LocalFrame(ref.airport.reference_point.lat, ref.airport.reference_point.lon)
        nodes = {n.node_id: (n.position.lat, n.position.lon) for n in ref.road_nodes}
        worst = 0.0
        ours_total = geodesic_total = 0.0
        for edge in ref.road_edges:
            a, b = nodes[edge.from_node], nodes[edge.to_node]
            ours = frame.distance(a, b)
            _, _, geodesic = geod.inv(a[1], a[0], b[1], b[0])
            ours_total += ours
            geodesic_total += geodesic
            if geodesic > 1.0:
                worst = max(worst, abs(ours - geodesic) / geodesic)
        projected = {n: frame.xy(p) for n, p in nodes.items()}
        stands = [frame.xy((s.position.lat, s.position.lon)) for s in ref.stands]
        started = time.perf_counter()
        grid = _Grid(projected)
        ours_nearest = [grid.nearest(p, 250.0) for p in stands]
        grid_s = time.perf_counter() - started
        keys = sorted(projected)
        started = time.perf_counter()
        tree = shapely.STRtree([shapely.Point(projected[k]) for k in keys])
        hits = tree.nearest([shapely.Point(p) for p in stands])
        shapely_s = time.perf_counter() - started
        disagree = 0
        for found, hit, p in zip(ours_nearest, hits, stands, strict=True):
            if found is None:
                continue
            theirs = projected[keys[int(hit)]]
            mine = projected[found[0]]
            if (
                abs(
                    ((theirs[0] - p[0]) ** 2 + (theirs[1] - p[1]) ** 2) ** 0.5
                    - ((mine[0] - p[0]) ** 2 + (mine[1] - p[1]) ** 2) ** 0.5
                )
                > 1e-6
            ):
                disagree += 1
        results[airport] = {
            "read_s": round(read_s, 3),
            "import_s": round(import_s, 3),
            "edges": len(ref.road_edges),
            "edge_length_max_relative_error": worst,
            "total_length_m": {"ours": round(ours_total, 2), "pyproj": round(geodesic_total, 2)},
            "nearest_node": {
                "stands": len(stands),
                "disagreements": disagree,
                "grid_s": round(grid_s, 4),
                "shapely_strtree_s": round(shapely_s, 4),
            },
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
