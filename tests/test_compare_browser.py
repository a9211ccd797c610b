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
                status = page.evaluate(
                    """([session, position]) => fetch(`/api/replay/sessions/${session}/control`, {
                        method: "POST", headers: {"Content-Type": "application/json"},
                        body: JSON.stringify({action: "seek", position}),
                    }).then((r) => r.status)""",
                    [dashboard.state()["sessionId"], moment],
                )
                assert status == 200
                settled(dashboard, moment)
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
