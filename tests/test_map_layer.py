"""The apron map on a real imported layout (LFPG from OpenStreetMap) in Chromium.

The static layout is drawn once into a cached layer: the hook's render counter stays put
while 150 movers replay and grows on zoom, pan and a language switch. Labels (runways,
terminals, depots, stands) never overlap, at any zoom: their boxes come from the map's hook.
An OSM layout shows its ODbL credit in the map's corner; a layout without a source, none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser_page import chromium
from tests.map_page import empty_layout, imported_layout, open_map, overlapping

ARTEFACTS = Path(__file__).parent.parent / "test-artifacts" / "map-layer"
MOVERS = 150


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def lfpg() -> dict[str, Any]:
    return imported_layout("LFPG")


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport={"width": 1280, "height": 800})
    yield made
    made.close()


def renders(page: Page) -> int:
    count: int = page.evaluate("() => window.__map.staticLayer.renders")
    return count


def frames_pass(page: Page, frames: int) -> None:
    """Wait until the page has drawn ``frames`` more animation frames."""
    start = page.evaluate("() => window.__stats.frames")
    page.wait_for_function("(n) => window.__stats.frames >= n", arg=start + frames)


def label_boxes(page: Page) -> dict[str, Any]:
    boxes: dict[str, Any] = page.evaluate(
        """() => ({
            stands: window.__map.lastStandLabels.map((l) => ({id: l.id, ...l.box})),
            terminals: window.__map.lastTerminalBoxes,
        })"""
    )
    return boxes


def test_the_static_layer_is_drawn_once_and_again_only_on_zoom(
    context: BrowserContext, lfpg: dict[str, Any]
) -> None:
    page = open_map(context, lfpg, MOVERS, 16)
    before = renders(page)
    moved = page.evaluate("() => JSON.stringify(window.__map.lastModel.movers)")
    page.wait_for_function("(m) => JSON.stringify(window.__map.lastModel.movers) !== m", arg=moved)
    frames_pass(page, 20)
    assert renders(page) == before == 1, "the layout was redrawn while only movers moved"
    assert len(page.evaluate("() => Object.keys(window.__map.lastModel.movers)")) == MOVERS
    page.evaluate("() => window.__map.zoomBy(2)")
    frames_pass(page, 5)
    assert renders(page) == before + 1
    page.mouse.move(600, 400)
    page.mouse.down()
    page.mouse.move(700, 450, steps=4)
    page.mouse.up()
    frames_pass(page, 5)
    panned = renders(page)
    assert panned > before + 1
    frames_pass(page, 20)
    assert renders(page) == panned
    # A language switch redraws the names (Terminal 1 -> T1 航站楼) once.
    page.evaluate("() => window.__setLanguage('zh')")
    frames_pass(page, 5)
    assert renders(page) == panned + 1
    names = page.evaluate("() => window.__map.lastTerminalLabels")
    assert any("航站楼" in name for name in names), names


def test_labels_never_overlap_and_thin_out_when_zoomed_out(
    context: BrowserContext, lfpg: dict[str, Any]
) -> None:
    page = open_map(context, lfpg, MOVERS, 1)
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    shown = []
    for zoom in (1, 4):
        page.evaluate("(z) => { window.__map.resetView(); window.__map.zoomBy(z); }", zoom)
        frames_pass(page, 3)
        page.screenshot(path=str(ARTEFACTS / f"lfpg-zoom-{zoom}.png"))
        boxes = label_boxes(page)
        every = boxes["stands"] + boxes["terminals"]
        assert overlapping(every) == [], f"zoom {zoom}: overlapping labels"
        names = [b["name"] for b in boxes["terminals"]]
        assert len(names) == len(set(names)) or zoom > 1, names
        # An unnamed building ("Building by Terminal 2D") is labelled after every named
        # terminal, depot and stand; no label is an OSM element id.
        order = [b["named"] for b in boxes["terminals"]]
        assert order == sorted(order, reverse=True), order
        assert not [n for n in names if re.search(r"(way|node|relation)/|\d{6,}", n)], names
        shown.append((len(boxes["stands"]), len(boxes["terminals"])))
    (fit_stands, fit_terminals), (near_stands, _) = shown
    assert fit_terminals >= 1
    # Zoomed out the map labels fewer than it has (31 terminal names were one blob).
    assert fit_terminals < len(lfpg["layout"]["terminals"])
    assert near_stands > fit_stands


def test_an_osm_layout_shows_its_odbl_credit_in_the_map_corner(
    context: BrowserContext, lfpg: dict[str, Any]
) -> None:
    page = open_map(context, lfpg, MOVERS, 1)
    credit = page.get_by_test_id("map-attribution")
    assert credit.is_visible()
    assert "© OpenStreetMap contributors" in credit.inner_text()
    link = credit.locator("a")
    assert link.get_attribute("href") == "https://www.openstreetmap.org/copyright"
    assert link.inner_text() == "ODbL 1.0"
    box = credit.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 1280 and box["y"] + box["height"] <= 800
    assert box["x"] > 640 and box["y"] > 700, box  # the bottom-right corner
    page.screenshot(path=str(ARTEFACTS / "lfpg-attribution.png"))
    plain = {**empty_layout(lfpg)}
    plain["layout"] = {**plain["layout"], "attribution": None}
    other = open_map(context, plain, 0, 1)
    assert other.get_by_test_id("map-attribution").count() == 0


def test_stands_show_their_label_not_the_id_and_unnamed_ones_last(
    context: BrowserContext, lfpg: dict[str, Any]
) -> None:
    """The map writes a stand's label (``W06/W07``, not the id ``W06_W07``); a stand OSM
    names nothing ("Stand near J04") is labelled after every named one, in Chinese
    "J04 附近机位"; no label is an OSM element id."""
    page = open_map(context, lfpg, 0, 1)
    stands = {s["stand_id"]: s for s in lfpg["layout"]["stands"]}

    def focus(stand_id: str, zoom: float = 10) -> list[dict[str, Any]]:
        page.evaluate(
            """([id, zoom]) => {
                const map = window.__map;
                map.resetView();
                const s = map.screen(map.layout.stands.find((st) => st.stand_id === id).at);
                map.zoomBy(zoom, s.x, s.y);
            }""",
            [stand_id, zoom],
        )
        frames_pass(page, 3)
        shown: list[dict[str, Any]] = page.evaluate(
            "() => window.__map.lastStandLabels.map(({id, text, named}) => ({id, text, named}))"
        )
        return shown

    slash = focus("W06_W07")
    assert {"id": "W06_W07", "text": "W06/W07", "named": True} in slash
    unnamed_id = "osm-w152634698"
    near = focus(unnamed_id, 20)  # labelled last, where named ones leave room
    page.screenshot(path=str(ARTEFACTS / "lfpg-unnamed-stand.png"))
    by_id = {label["id"]: label for label in near}
    assert by_id[unnamed_id]["text"] == stands[unnamed_id]["label"]
    assert by_id[unnamed_id]["text"].startswith("Stand near ")
    for shown in (slash, near):
        order = [label["named"] for label in shown]
        assert order == sorted(order, reverse=True), order
        for label in shown:
            assert label["text"] == (stands[label["id"]].get("label") or label["id"])
            assert label["named"] == stands[label["id"]]["named"]
            assert not re.search(r"osm-|\d{7,}", label["text"]), label
    page.evaluate("() => window.__setLanguage('zh')")
    frames_pass(page, 3)
    zh = {
        label["id"]: label["text"] for label in page.evaluate("() => window.__map.lastStandLabels")
    }
    place = stands[unnamed_id]["label"].removeprefix("Stand near ")
    assert zh[unnamed_id] == f"{place} 附近机位"
    # A stand 150 m or more from any designated one is not "near" it (docs/data-format.md).
    far_id = "osm-w237392452"
    assert stands[far_id]["label"] == "Stand 1 (unnamed)" and not stands[far_id]["named"]
    zh = {label["id"]: label["text"] for label in focus(far_id, 20)}
    assert zh[far_id] == "未命名机位 1"
