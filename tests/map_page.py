"""The apron map alone in Chromium, on an imported real layout, with movers replaying.

Shared by the map's browser test (tests/test_map_layer.py) and the frame-rate benchmark
(bench/bench_page.py). The page is the shipped ``functions/dashboard`` modules (map.js,
state.js, canvas.js, i18n.js) served through Playwright's router, no server process: a
``ReplayState`` is fed vehicle rows as the stream would (one fix per mover per replay second,
merged at high speed), and ``ApronMap.draw`` runs on every animation frame as app.js does.
"""

from __future__ import annotations

import gzip
import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import BrowserContext, Page, Route

from chunker.format.encoding import Layout
from chunker.imports.osm_document import parse_document
from chunker.imports.osm_layout import import_layout
from chunker.imports.overlay import read_overlay

DASHBOARD = Path(__file__).parent.parent / "functions" / "dashboard"
OSM = Path(__file__).parent / "fixtures" / "osm"
ORIGIN = "http://map.test"
AIRPORTS = {
    "EHAM": ("eham.overpass.json", "eham.overlay.yaml"),
    "LFPG": ("lfpg.overpass.json.gz", "lfpg.overlay.json"),
}

HARNESS = Path(__file__).with_name("map_harness.html")  # the page: ApronMap + movers


def imported_layout(airport: str) -> dict[str, Any]:
    """The manifest fields the map reads, for a fixture airport imported as the CLI does."""
    osm, overlay = AIRPORTS[airport]
    data = (OSM / osm).read_bytes()
    document = parse_document(gzip.decompress(data) if osm.endswith(".gz") else data, osm)
    reference = import_layout(document, read_overlay(OSM / overlay)).reference
    layout = Layout(**{name: getattr(reference, name) for name in Layout.model_fields})
    return {
        "airport": reference.airport.model_dump(mode="json"),
        "layout": layout.model_dump(mode="json"),
    }


def empty_layout(manifest: dict[str, Any]) -> dict[str, Any]:
    """The same airport with one stand and nothing else: the empty-map baseline."""
    layout = manifest["layout"]
    only = {**layout, "stands": layout["stands"][:1], "depots": [], "terminals": [], "runways": []}
    return {**manifest, "layout": {**only, "road_nodes": [], "road_edges": []}}


def open_map(
    context: BrowserContext,
    manifest: dict[str, Any],
    movers: int,
    speed: float,
    map_source: Callable[[], bytes] | None = None,
) -> Page:
    """Open the harness; ``map_source`` serves another map.js (the benchmark's "before")."""
    setup = json.dumps({"manifest": manifest, "movers": movers, "speed": speed}).encode()

    def handle(route: Route) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/":
            route.fulfill(body=HARNESS.read_bytes(), content_type="text/html")
        elif path == "/setup.json":
            route.fulfill(body=setup, content_type="application/json")
        elif path.startswith("/static/") and ".." not in path:
            name = path.removeprefix("/static/")
            body = (
                map_source() if name == "map.js" and map_source else (DASHBOARD / name).read_bytes()
            )
            kind = "text/javascript" if name.endswith(".js") else mimetypes.guess_type(name)[0]
            route.fulfill(body=body, content_type=kind or "application/octet-stream")
        else:
            route.fulfill(status=404, body="not found")

    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.route(f"{ORIGIN}/**", handle)
    page.goto(f"{ORIGIN}/")
    page.wait_for_function("() => window.__ready === true && window.__stats.frames > 2")
    assert not errors, errors
    return page


def overlapping(boxes: list[dict[str, float]]) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Pairs of boxes {x, y, w, h} that overlap (by more than rounding)."""
    eps = 0.01
    pairs = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if (
                a["x"] + eps < b["x"] + b["w"]
                and b["x"] + eps < a["x"] + a["w"]
                and a["y"] + eps < b["y"] + b["h"]
                and b["y"] + eps < a["y"] + a["h"]
            ):
                pairs.append((a, b))
    return pairs
