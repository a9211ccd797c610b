"""Compare mode in the browser (issue 20, item 6): the demo's two dispatch runs of one day
played in sync, side by side, with their decision quality and its difference.

The demo (an hour of a small day, 07:00-08:00 local, recorded as ``make demo`` does) stores
the default variant and ``nearest-first`` (the same flights, tasks and fleet, dispatched
nearest-first without the on-time check).
Opened with ``?compare=nearest-first`` at an instant, the page shows two maps from one
session: checked against ground truth computed here from each variant's raw records
(``tests.ground_truth``): each map's vehicles stand where that variant's raw fixes put them
at the same replay time, and they differ between the maps; after a seek (one control,
one clock) both maps move to the new instant; the comparison panel's figures and their
difference equal the decision quality computed again from the raw decision and task
records (``tests.test_decision_quality.truth``).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from chunker.format.keys import DEFAULT_VARIANT, DayKeys
from tests import ground_truth
from tests.browser_page import Dashboard, chromium, open_dashboard
from tests.demo_server import DemoServer, day_server, server_objects
from tests.test_dashboard_defects import assert_no_text_cut
from tests.test_decision_quality import truth

pytestmark = pytest.mark.end_to_end

VARIANT = "nearest-first"
KEYS = DayKeys("XLHI", "2026-03-14")
BUCKET = "dispatch-replay-local"
TICK_MS = 1000
SMALL = {"width": 1024, "height": 768}
DESKTOP = {"width": 1280, "height": 800}
WIDE = {"width": 1600, "height": 900}
HOUR = 3_600_000
SCREENSHOT = Path(__file__).parent.parent / "docs" / "img" / "compare.png"
Row = dict[str, Any]


class Variant:
    """One variant's raw rows, as ground truth reads them."""

    def __init__(self, name: str, objects: dict[str, bytes]) -> None:
        keys = DayKeys(KEYS.airport, KEYS.service_date, name)
        own = {k: v for k, v in objects.items() if k.startswith(keys.raw_prefix)}
        if name == DEFAULT_VARIANT:
            own = {k: v for k, v in own.items() if "/variants/" not in k}
        self.rows, self.day = ground_truth.valid_rows(own, keys)
        self.decisions = ground_truth.annotated(self.rows, self.day, TICK_MS)

    def positions(self, t: int) -> dict[str, tuple[float, float]]:
        state = ground_truth.state_at(self.rows, self.day, TICK_MS, t)
        return {v["id"]: (v["lat"], v["lon"]) for v in state["vehicles"]}


def _raw_objects(server: DemoServer) -> dict[str, bytes]:
    return server_objects(server, KEYS.raw_prefix, BUCKET)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, DemoServer]]:
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with chromium() as browser, day_server(log, "compare") as server:
        yield browser, server


def compare_model(dashboard: Dashboard) -> dict[str, Any]:
    shown: dict[str, Any] = dashboard.page.evaluate("window.__replayCompare()")
    return shown


def settled(dashboard: Dashboard, at: int) -> None:
    """Both maps drawn at ``at``: the session paused there, both streams live with their
    snapshot of it, a few frames drawn since."""
    dashboard.wait(
        "s.streamPlayback && s.streamPlayback.state === 'paused'"
        " && s.streamPlayback.position === arg && s.transport === 'live'"
        " && window.__replayCompare().transport === 'live'"
        " && window.__replayCompare().position !== null"
        " && window.__replayModel().at === arg && window.__replayCompare().at === arg",
        at,
    )


def seek(dashboard: Dashboard, position: int) -> None:
    """Seek the session (the one clock of both maps) through the control API; wait until
    both maps show ``position``."""
    status = dashboard.page.evaluate(
        """([session, position]) => fetch(`/api/replay/sessions/${session}/control`, {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({action: "seek", position}),
        }).then((r) => r.status)""",
        [dashboard.state()["sessionId"], position],
    )
    assert status == 200
    settled(dashboard, position)


def drawn(movers: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {vid: (m["lat"], m["lon"]) for vid, m in movers.items()}


def test_compare_mode_plays_two_variants_in_sync(
    stack: tuple[Browser, DemoServer], tmp_path: Path
) -> None:
    browser, server = stack
    objects = _raw_objects(server)
    variants = {name: Variant(name, objects) for name in (DEFAULT_VARIANT, VARIANT)}
    day_start = variants[DEFAULT_VARIANT].day.start_ms
    at = day_start + 7 * HOUR + 25 * 60_000  # 07:25 local: the morning bank under way
    context = browser.new_context(viewport={"width": 1600, "height": 900}, locale="en-US")
    try:
        dashboard = open_dashboard(context, f"{server.url}/?t={at}&compare={VARIANT}")
        page = dashboard.page
        page.get_by_test_id("compare-map").wait_for(state="visible")
        settled(dashboard, at)
        follows_the_left_map(dashboard, "Flight board, tasks and decisions: left map")
        for moment in (at, at + 20 * 60_000):
            if moment != at:  # one seek, on the one clock: both maps follow it
                seek(dashboard, moment)
            left = drawn(page.evaluate("window.__replayModel()")["movers"])
            right = drawn(compare_model(dashboard)["movers"])
            assert left == variants[DEFAULT_VARIANT].positions(moment)
            assert right == variants[VARIANT].positions(moment)
            moved = [v for v in left if v in right and left[v] != right[v]]
            assert len(moved) >= 3, "the two dispatch runs put vehicles in different places"

        # The comparison: both variants' figures and the difference, as computed here.
        page.get_by_test_id("compare-table").wait_for(state="visible", timeout=90_000)
        quality = compare_model(dashboard)["quality"]
        assert (quality["variant"], quality["compare"]["variant"]) == (DEFAULT_VARIANT, VARIANT)
        start, end = quality["start"], quality["end"]
        fleet = _fleet(page)
        expected = {
            name: truth(v.rows, v.decisions, fleet, start, end) for name, v in variants.items()
        }
        rows = page.eval_on_selector_all(
            "[data-testid=compare-table] tr[data-figure]",
            "rows => rows.map(r => [r.dataset.figure, r.dataset.left, r.dataset.right,"
            " r.dataset.difference])",
        )
        assert len(rows) == 6
        for figure, shown_left, shown_right, shown_difference in rows:
            mine, theirs = expected[DEFAULT_VARIANT][figure], expected[VARIANT][figure]
            assert _number(shown_left) == mine, figure
            assert _number(shown_right) == theirs, figure
            difference = None if mine is None or theirs is None else theirs - mine
            assert _number(shown_difference) == pytest.approx(difference, abs=1e-4), figure
        assert expected[VARIANT]["regret_mean_ms"] != expected[DEFAULT_VARIANT]["regret_mean_ms"]
        assert_no_text_cut(dashboard)
        artefact = tmp_path / "compare.png"
        page.screenshot(path=str(artefact))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refreshes the README's picture
            shutil.copyfile(artefact, SCREENSHOT)
        dashboard.click("lang-toggle")
        dashboard.wait("s.language === 'zh'")
        follows_the_left_map(dashboard, "航班、任务与调度决策：左侧地图")
        assert_no_text_cut(dashboard)
        page.screenshot(path=str(tmp_path / "compare-zh.png"))
        assert dashboard.errors == []
    finally:
        context.close()


def follows_the_left_map(dashboard: Dashboard, words: str) -> None:
    """The flight board, tasks and decisions are the session's own variant's (the left
    map's): a line above them says so, in the window, and the panels are marked with the
    left map's label's colour."""
    shown = dashboard.page.evaluate(
        """() => {
            const follow = document.querySelector('[data-testid=compare-follow]');
            const r = follow.getBoundingClientRect();
            const board = document.querySelector('.panel-flights').getBoundingClientRect();
            const side = document.querySelector('.side').getBoundingClientRect();
            const accent = (el) => getComputedStyle(el).borderColor;
            return {text: follow.innerText, top: r.top, bottom: r.bottom, left: r.left,
                    right: r.right, boardTop: board.top, sideLeft: side.left,
                    sideRight: side.right, window: window.innerHeight,
                    leftLabel: accent(document.querySelector('[data-testid=compare-label-left]')),
                    followAccent: getComputedStyle(follow).borderLeftColor,
                    panelMark: getComputedStyle(document.querySelector('.panel-tasks')).boxShadow};
        }"""
    )
    assert shown["text"] == f"{words} · {DEFAULT_VARIANT}", shown
    assert shown["bottom"] <= shown["boardTop"] + 1 and shown["top"] >= 0, shown  # above them
    assert shown["left"] >= shown["sideLeft"] - 1 and shown["right"] <= shown["sideRight"] + 1
    assert shown["followAccent"] == shown["leftLabel"], shown
    assert shown["followAccent"] in shown["panelMark"], shown


def _number(text: str) -> float | None:
    return None if text == "" else float(text)


def _fleet(page: Any) -> dict[str, str]:
    """Vehicle -> type, from the day's catalogue (the fleet is the reference data's)."""
    manifest = page.evaluate(
        "() => fetch('/api/replay/airports/XLHI/days/2026-03-14/manifest').then((r) => r.json())"
    )
    return {v["vehicle_id"]: v["vehicle_type"] for v in manifest["catalogue"]["vehicles"]}


# What floats over the maps for good (the cards that follow the pointer are not counted).
OVERLAYS = ".map-tools, .map-status, .legend, .compare-label, .compare-kpis, .map-attribution"
# Both maps' static layers as last drawn (ApronMap.viewModel), each with its canvas's place
# on the page, and every overlay's box: all in page CSS px, read from the page.
LAYOUT = f"""() => {{
    const rect = (el) => {{ const r = el.getBoundingClientRect();
        return {{x: r.left, y: r.top, w: r.width, h: r.height}}; }};
    const maps = [["left", "map-canvas", window.__replayModel().view],
                  ["right", "compare-map", window.__replayCompare().view]];
    return {{
        maps: maps.map(([side, id, view]) => ({{side, canvas: rect(
            document.querySelector(`[data-testid=${{id}}]`)), ...view}})),
        overlays: [...document.querySelectorAll('.map-pane :is({OVERLAYS})')]
            .map((el) => ({{name: el.className, ...rect(el)}}))
            .filter((box) => box.w > 0 && box.h > 0),
    }};
}}"""
# The contrast (WCAG 2) of each decision link button's text on what is behind it: its own
# background, composited over its ancestors' down to the page's.
CONTRAST = """() => {
    const rgba = (css) => { const [r, g, b, a = 1] = css.match(/[\\d.]+/g).map(Number);
        return [r, g, b, a]; };
    const over = ([r, g, b, a], [R, G, B]) => [r * a + R * (1 - a), g * a + G * (1 - a),
        b * a + B * (1 - a)];
    const behind = (el) => {
        const layers = [];
        for (let e = el; e; e = e.parentElement) {
            layers.push(rgba(getComputedStyle(e).backgroundColor));
        }
        return layers.reverse().reduce((under, layer) => over(layer, under), [255, 255, 255]);
    };
    const luminance = (rgb) => rgb.map((v) => v / 255)
        .map((c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4))
        .reduce((sum, c, i) => sum + c * [0.2126, 0.7152, 0.0722][i], 0);
    return [...document.querySelectorAll('.decisions button.link')].map((button) => {
        const back = behind(button);
        const text = over(rgba(getComputedStyle(button).color), back);
        const [hi, lo] = [luminance(text), luminance(back)].sort((a, b) => b - a);
        return {text: button.innerText, ratio: (hi + 0.05) / (lo + 0.05)};
    });
}"""
# Select the task rows in turn until one shows its decision (a task's decision is in the
# stream's state only while the task is active), each checked after the page drew a frame.
PICK_DECISION = """async () => {
    const frame = () => new Promise((done) => {
        requestAnimationFrame(() => requestAnimationFrame(done));
    });
    for (const row of document.querySelectorAll('[data-testid=task-row]')) {
        row.click();
        await frame();
        if (document.querySelector('[data-testid=decision-go]')) return row.dataset.taskId;
    }
    return null;
}"""


def test_compare_mode_keeps_its_overlays_clear(
    stack: tuple[Browser, DemoServer], tmp_path: Path
) -> None:
    """In compare mode at 1024 x 768, 1280 x 800 and 1600 x 900, in English and in Chinese:
    the comparison panel, the legend, the tools, the chips and the maps' labels cover each
    other nowhere, and no map label, no scale bar and no part of the fitted layout (boxes
    the map code says it drew against the overlays' boxes in the page), no text is cut (the
    selected vehicle's card by the pane's edge, say); and the decision card's link button
    reads at 4.5:1 or better."""
    browser, server = stack
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    try:
        dashboard = open_dashboard(context, f"{server.url}/?compare={VARIANT}")
        page = dashboard.page
        page.get_by_test_id("compare-map").wait_for(state="visible")
        at = dashboard.state()["dayStart"] + 7 * HOUR + 25 * 60_000  # 07:25 local
        seek(dashboard, at)
        page.get_by_test_id("compare-table").wait_for(state="visible", timeout=90_000)
        assert page.evaluate(PICK_DECISION) is not None, "no active task shows its decision"
        for language, size in itertools.product(("en", "zh"), (SMALL, DESKTOP, WIDE)):
            if language != dashboard.state()["language"]:
                dashboard.click("lang-toggle")
                dashboard.wait("s.language === arg", language)
            page.set_viewport_size(size)
            # The overlays' new sizes are measured before the next frame is drawn.
            dashboard.wait("s.frames > arg + 2", dashboard.state()["frames"])
            name = f"{language}-{size['width']}x{size['height']}"
            page.screenshot(path=str(tmp_path / f"compare-layout-{name}.png"))
            shown = page.evaluate(LAYOUT)
            kpis = [o for o in shown["overlays"] if o["name"] == "compare-kpis"]
            assert len(kpis) == 1 and len(shown["overlays"]) >= 5, shown["overlays"]
            # Nor does one overlay cover another (the legend, open, once covered the folded
            # comparison at 1024 px: a half map's legend starts folded, as a small map's).
            for a, b in itertools.combinations(shown["overlays"], 2):
                assert not overlap(a, b), (name, a, b)
            for view in shown["maps"]:
                canvas = view["canvas"]
                over = [o for o in shown["overlays"] if overlap(o, canvas)]
                bar = on_page(view["scaleBar"], canvas)
                assert inside(bar, canvas), (name, view["side"], bar, canvas)
                drawn = [("scale bar", bar), ("layout", on_page(view["layout"], canvas))]
                drawn += [(f"{b['kind']} {b['text']}", on_page(b, canvas)) for b in view["labels"]]
                assert len(drawn) >= 5, drawn  # a runway, terminals, callsigns, stands
                for what, box in drawn:
                    for overlay in over:
                        assert not overlap(box, overlay), (name, view["side"], what, box, overlay)
            assert_no_text_cut(dashboard)
            links = page.evaluate(CONTRAST)
            assert links, "the decision card shows its link"
            for link in links:
                assert link["ratio"] >= 4.5, (name, link)
        assert dashboard.errors == []
    finally:
        context.close()


def on_page(box: Row, canvas: Row) -> Row:
    """A box in a map canvas's CSS px, in the page's."""
    return {**box, "x": box["x"] + canvas["x"], "y": box["y"] + canvas["y"]}


def overlap(a: Row, b: Row) -> bool:
    return bool(
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def inside(a: Row, b: Row) -> bool:
    return bool(
        a["x"] >= b["x"]
        and a["y"] >= b["y"]
        and a["x"] + a["w"] <= b["x"] + b["w"]
        and a["y"] + a["h"] <= b["y"] + b["h"]
    )
