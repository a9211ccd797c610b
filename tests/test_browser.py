"""The dashboard in a real browser, against the real demo (moto server, uvicorn, SSE; the
run's prebuilt demo day, tests/day_prebuild.py, served by an app for the module).

Headless Chromium at ``/usr/bin/chromium`` drives the page as a user would; assertions read
the DOM and the page's read-only test hook ``window.__replay.state()`` (vehicle positions,
the replay clock, ids of tasks and notifications, stream statistics), never pixels. Every
wait is a condition with a timeout; nothing here sleeps or measures time against a limit.
``UPDATE_SCREENSHOT=1 make test`` refreshes the README's screenshot (docs/img/dashboard.png).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Route,
    ViewportSize,
)

from tests.browser_page import CHROMIUM, Dashboard, chromium, open_dashboard
from tests.demo_server import DemoServer, day_server

pytestmark = pytest.mark.end_to_end

VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "docs" / "img" / "dashboard.png"
HOUR_MS = 3_600_000
STREAM_URL = re.compile(r"/api/replay/sessions/[^/]+/stream\?")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium for the module."""
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def server(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    """The demo (small day: 06:00-09:00 local, the run's prebuilt one), once for the module."""
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    with day_server(log) as running:
        yield running


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (English, 1280x800)."""
    ctx = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def dashboard(server: DemoServer, context: BrowserContext) -> Dashboard:
    """The dashboard as a first visitor sees it: a new paused session at a busy hour."""
    return open_dashboard(context, f"{server.url}/")


def test_chromium_is_installed() -> None:
    # Without a browser these tests fail (here and at the setup of the others), never skip.
    assert CHROMIUM.exists(), f"Chromium is required for the browser tests: {CHROMIUM} is missing"


def test_page_loads_without_console_errors(dashboard: Dashboard) -> None:
    state = dashboard.state()
    assert dashboard.errors == []
    assert state["sessionId"] and state["role"] == "owner"
    assert f"session={state['sessionId']}" in dashboard.page.url  # a reload keeps the session
    assert state["connection"] == "paused"
    assert state["playback"]["state"] == "paused"
    # It starts at a busy hour: vehicles on the map, work in the task list.
    assert state["vehicleCount"] > 0
    dashboard.wait("s.taskIds.length > 0")
    assert dashboard.page.get_by_test_id("map-canvas").is_visible()
    clock = dashboard.page.get_by_test_id("clock").inner_text()
    assert clock == state["clockText"] and len(clock) == 8 and clock.count(":") == 2
    assert dashboard.page.get_by_test_id("connection-state").get_attribute("data-state") == "paused"
    assert (
        dashboard.page.get_by_test_id("vehicle-count")
        .inner_text()
        .startswith(str(state["vehicleCount"]))
    )
    assert len(dashboard.ids("task-row", "data-task-id")) == len(state["taskIds"])
    # A reload finds the same session.
    dashboard.page.reload()
    dashboard.wait("s.ready && s.streamPosition !== null")
    assert dashboard.state()["sessionId"] == state["sessionId"]
    assert dashboard.errors == []


def test_play_moves_vehicles_and_clock_and_pause_freezes_both(dashboard: Dashboard) -> None:
    before = dashboard.state()
    dashboard.play()
    dashboard.wait(
        "s.clockPosition > arg.clock + 1000 && Object.entries(s.positions).some(([id, p]) =>"
        " arg.positions[id] && (arg.positions[id].lat !== p.lat"
        " || arg.positions[id].lon !== p.lon))",
        {"clock": before["clockPosition"], "positions": before["positions"]},
    )
    assert dashboard.state()["connection"] == "live"

    dashboard.pause()
    frozen = dashboard.state()
    assert frozen["connection"] == "paused"
    # The page keeps rendering, but nothing moves any more.
    dashboard.wait("s.frames >= arg + 30", frozen["frames"])
    after = dashboard.state()
    assert after["clockPosition"] == frozen["clockPosition"]
    assert after["positions"] == frozen["positions"]
    assert after["streamPosition"] == frozen["streamPosition"]
    assert dashboard.page.get_by_test_id("clock").inner_text() == frozen["clockText"]
    assert dashboard.errors == []


def test_seek_on_timeline_and_jump_to_flight_move_clock_and_flight_board(
    dashboard: Dashboard,
) -> None:
    state = dashboard.state()
    board_before = dashboard.ids("flight-row", "data-flight-id")

    # Click the timeline at 06:15 local (the service day starts at local midnight).
    target = state["dayStart"] + 6 * HOUR_MS + 15 * 60_000
    domain_start, domain_end = state["timelineDomain"]
    box = dashboard.page.get_by_test_id("timeline").bounding_box()
    assert box is not None
    x = (target - domain_start) / (domain_end - domain_start) * box["width"]
    dashboard.page.mouse.click(box["x"] + x, box["y"] + box["height"] / 2)
    tolerance = 2 * (domain_end - domain_start) / box["width"]  # two pixels of timeline
    dashboard.wait(
        "Math.abs(s.clockPosition - arg.target) < arg.tolerance"
        " && Math.abs(s.streamPosition - arg.target) < arg.tolerance",
        {"target": target, "tolerance": tolerance},
    )
    assert dashboard.page.get_by_test_id("clock").inner_text().startswith("06:1")
    dashboard.wait(
        "JSON.stringify([...document.querySelectorAll('[data-testid=flight-row]')]"
        ".map(e => e.dataset.flightId)) !== JSON.stringify(arg)",
        board_before,
    )
    board_early = dashboard.ids("flight-row", "data-flight-id")

    # Jump to an arrival well away from 06:15: the clock lands on it, the board lists it.
    options: list[dict[str, Any]] = dashboard.page.eval_on_selector_all(
        "[data-testid=jump-flight] option",
        "els => els.map(e => ({value: e.value, target: Number(e.dataset.target),"
        " disabled: e.disabled, text: e.textContent}))",
    )
    arrivals = [
        o
        for o in options
        if o["value"] and not o["disabled"] and "↓" in o["text"] and o["target"] > target + HOUR_MS
    ]
    assert arrivals, options
    chosen = arrivals[0]
    dashboard.page.get_by_test_id("jump-flight").select_option(chosen["value"])
    dashboard.wait(
        "Math.abs(s.clockPosition - arg.at) < 2000 && Math.abs(s.streamPosition - arg.at) < 2000",
        {"at": chosen["target"]},
    )
    dashboard.wait(
        "document.querySelector(`[data-testid=flight-row][data-flight-id='${arg}']`) !== null",
        chosen["value"],
    )
    assert dashboard.ids("flight-row", "data-flight-id") != board_early
    assert dashboard.errors == []


def test_speed_change_changes_the_replay_rate(dashboard: Dashboard) -> None:
    dashboard.set_speed("1")
    dashboard.play()
    slow = dashboard.replay_rate(advance_ms=3_000)

    dashboard.set_speed("64")
    assert dashboard.page.get_by_test_id("speed-select").input_value() == "64"
    assert "64" in dashboard.page.get_by_test_id("clock-speed").inner_text()
    fast = dashboard.replay_rate(advance_ms=64 * 3_000)
    assert dashboard.state()["playback"]["speed"] == 64
    assert fast > 10 * slow, (slow, fast)
    dashboard.pause()
    assert dashboard.errors == []


def _assert_no_duplicates(dashboard: Dashboard) -> None:
    state = dashboard.state()
    tasks = dashboard.ids("task-row", "data-task-id")
    notes = dashboard.ids("notification-item", "data-notification-id")
    flights = dashboard.ids("flight-row", "data-flight-id")
    assert len(tasks) == len(set(tasks))
    assert len(notes) == len(set(notes))
    assert len(flights) == len(set(flights))
    assert len(state["taskIds"]) == len(set(state["taskIds"]))
    assert len(state["notificationIds"]) == len(set(state["notificationIds"]))
    assert sorted(tasks) == sorted(state["taskIds"])
    # The server filled each gap exactly once: no event arrived twice.
    assert state["duplicateEvents"] == 0


def _resumes(dashboard: Dashboard, before: dict[str, Any]) -> None:
    dashboard.wait(
        "s.reconnects > arg.reconnects && s.transport === 'live'"
        " && s.streamPosition > arg.position + 20000 && s.clockPosition > arg.clock",
        {
            "reconnects": before["reconnects"],
            "position": before["streamPosition"],
            "clock": before["clockPosition"],
        },
    )
    _assert_no_duplicates(dashboard)


def test_dropped_stream_resumes_without_duplicates(
    dashboard: Dashboard, context: BrowserContext
) -> None:
    dashboard.set_speed("16")
    dashboard.play()
    dashboard.wait("s.taskIds.length > 0 && s.eventsSeen > 20")

    # 1. The connection drops.
    before = dashboard.state()
    dashboard.page.evaluate("window.__replay.dropConnection()")
    _resumes(dashboard, before)

    # 2. It drops and the next attempt is refused (503): the page makes a new EventSource.
    refused: list[str] = []

    def refuse_once(route: Route) -> None:
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, content_type="application/problem+json", body="{}")
        else:
            route.continue_()

    dashboard.page.route(STREAM_URL, refuse_once)
    before = dashboard.state()
    dashboard.page.evaluate("window.__replay.dropConnection()")
    _resumes(dashboard, before)
    assert refused and "resume_from=" in refused[0]
    dashboard.page.unroute(STREAM_URL)

    # 3. The network goes away for a while and comes back.
    before = dashboard.state()
    context.set_offline(True)
    dashboard.page.evaluate("window.__replay.dropConnection()")
    dashboard.wait("s.connection === 'reconnecting'")
    assert (
        dashboard.page.get_by_test_id("connection-state").get_attribute("data-state")
        == "reconnecting"
    )
    context.set_offline(False)
    _resumes(dashboard, before)
    dashboard.pause()


def test_share_link_lets_a_second_viewer_follow_the_session(
    dashboard: Dashboard, browser: Browser
) -> None:
    owner = dashboard
    owner.click("share-button")
    owner.page.get_by_test_id("share-popover").wait_for(state="visible")
    link = owner.page.get_by_test_id("share-link").input_value()
    assert "/?join=" in link

    bob_context = browser.new_context(viewport=VIEWPORT, locale="en-US")
    try:
        bob = open_dashboard(bob_context, f"{link}&user=bob")
        session = owner.state()["sessionId"]
        assert bob.state()["sessionId"] == session
        assert bob.state()["role"] == "member"
        assert f"session={session}" in bob.page.url and "user=bob" in bob.page.url
        assert bob.page.get_by_test_id("share-button").is_disabled()  # only owners share
        # Both paused at the same replay instant.
        assert bob.state()["clockPosition"] == owner.state()["clockPosition"]
        assert bob.page.get_by_test_id("clock").inner_text() == owner.state()["clockText"]

        # Bob presses play: the owner's page plays; the owner pauses: Bob's page pauses.
        bob.play()
        owner.wait("s.streamPlayback.state === 'playing' && s.connection === 'live'")
        owner.pause()
        version = owner.state()["streamPlayback"]["version"]
        bob.wait("s.streamPlayback.state === 'paused' && s.streamPlayback.version === arg", version)
        assert bob.state()["playback"]["position"] == owner.state()["playback"]["position"]
        assert bob.state()["clockPosition"] == owner.state()["clockPosition"]
        assert bob.state()["connection"] == "paused"
        assert bob.errors == []

        # The owner removes Bob: his open stream ends for good, and his page says why
        # (it does not reconnect as after an outage). The owner's stream goes on.
        removed = owner.page.evaluate(
            "(url) => fetch(url, {method: 'DELETE'}).then((r) => r.status)",
            f"/api/replay/sessions/{session}/members/bob",
        )
        assert removed == 204
        bob.wait("s.connection === 'error'")
        assert bob.page.locator("#overlay-text").inner_text() == (
            "The session's owner removed you from it"
        )
        owner.play()
        owner.wait("s.streamPlayback.state === 'playing' && s.connection === 'live'")
    finally:
        bob_context.close()
    assert owner.errors == []


def test_screenshot_mid_replay_with_a_vehicle_card(dashboard: Dashboard, tmp_path: Path) -> None:
    dashboard.page.get_by_test_id("trails-toggle").check()
    dashboard.set_speed("32")
    start = dashboard.state()
    dashboard.play()
    dashboard.wait(
        "s.clockPosition > arg + 120000 && document.querySelector("
        "'[data-testid=task-row][data-status=in_progress]:not([data-vehicle-id=\"\"])')",
        start["clockPosition"],
    )
    # Paused, so the task picked is still the vehicle's task when the card is read (at
    # 32x a short task can end between the pick and the read).
    dashboard.pause()
    # Picking a task selects its vehicle: the card tells id, type, task and flight.
    row = dashboard.page.locator(
        '[data-testid=task-row][data-status=in_progress]:not([data-vehicle-id=""])'
    ).first
    vehicle = row.get_attribute("data-vehicle-id")
    flight = row.locator("td").nth(1).evaluate("td => td.firstChild.textContent")  # callsign
    row.click()
    card = dashboard.page.get_by_test_id("vehicle-card")
    card.wait_for(state="visible")
    assert card.get_attribute("data-vehicle-id") == vehicle
    text = card.inner_text()
    assert vehicle and vehicle in text and flight in text and "Type" in text and "Task" in text
    # The picture shows what a controller reads once the page has it, not its placeholders:
    # the legend's counts (the last one showed "Conflict …"), the decision's outcome.
    dashboard.wait(
        "s.eventsLoaded && ![...document.querySelectorAll('[data-testid=event-kind]')]"
        ".some((b) => b.innerText.endsWith('…'))",
        timeout=60_000,
    )
    dashboard.wait(
        "[...document.querySelectorAll('[data-testid=decision-outcome]')]"
        ".every((o) => o.innerText !== '…')",
        timeout=60_000,
    )

    artefact = tmp_path / "dashboard.png"
    dashboard.page.screenshot(path=str(artefact))
    data = artefact.read_bytes()
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refreshes the README's picture
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artefact, SCREENSHOT)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    assert dashboard.errors == []


def test_stream_lifetime_limit_is_invisible_to_the_viewer(browser: Browser, tmp_path: Path) -> None:
    # Streams end themselves before Lambda's deadline (here: after 3 s) with a `reconnect`
    # event; the page comes back at once with a fresh token and misses nothing.
    # The run's prebuilt demo day (no day of its own to generate, chunk or upload), served
    # by an app of its own with the short limit.
    limited = {"STREAM_MAX_SECONDS": "3"}
    with day_server(tmp_path / "demo.log", environment=limited) as short_lived:
        ctx = browser.new_context(viewport=VIEWPORT, locale="en-US")
        try:
            viewer = open_dashboard(ctx, f"{short_lived.url}/")
            viewer.set_speed("16")
            viewer.play()
            before = viewer.state()
            viewer.wait("s.reconnects >= 2 && s.transport === 'live'", timeout=40_000)
            after = viewer.state()
            assert after["streamPosition"] > before["streamPosition"]
            assert after["connection"] == "live"
            _assert_no_duplicates(viewer)
            assert viewer.errors == []
        finally:
            ctx.close()


def test_chinese_switch_changes_ui_strings(
    dashboard: Dashboard, server: DemoServer, browser: Browser
) -> None:
    page = dashboard.page
    heading = page.locator(".panel-flights h2")
    assert heading.inner_text().lower() == "flight board"
    assert page.get_by_test_id("play-button").get_attribute("title") == "Play"

    dashboard.click("lang-toggle")
    dashboard.wait("s.language === 'zh'")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert heading.inner_text() == "航班动态"
    assert page.get_by_test_id("play-button").get_attribute("title") == "播放"
    assert page.get_by_test_id("connection-state").inner_text().strip() == "已暂停"
    assert "辆车" in page.get_by_test_id("vehicle-count").inner_text()
    statuses = page.locator("[data-testid=task-row] .badge").all_inner_texts()
    assert statuses and all(not text.isascii() for text in statuses)

    dashboard.click("lang-toggle")
    dashboard.wait("s.language === 'en'")
    assert heading.inner_text().lower() == "flight board"

    # A Chinese browser gets Chinese by default.
    zh_context = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
    try:
        zh = open_dashboard(zh_context, f"{server.url}/")
        assert zh.state()["language"] == "zh"
        assert zh.page.locator(".panel-flights h2").inner_text() == "航班动态"
        assert zh.errors == []
    finally:
        zh_context.close()
    assert dashboard.errors == []


# --- bookmarks and notes, shared by the session (issue #19 item 5) -------------------------


def test_bookmarks_sync_between_cowatchers_and_a_link_opens_the_moment(
    dashboard: Dashboard, browser: Browser
) -> None:
    alice = dashboard
    session = alice.state()["sessionId"]
    at = alice.state()["clockPosition"]
    alice.click("share-button")
    alice.page.get_by_test_id("share-popover").wait_for(state="visible")
    link = alice.page.get_by_test_id("share-link").input_value()
    alice.page.keyboard.press("Escape")
    contexts = [browser.new_context(viewport=VIEWPORT, locale="en-US") for _ in range(2)]
    try:
        bob = open_dashboard(contexts[0], f"{link}&user=bob")
        assert bob.page.get_by_test_id("bookmarks-count").is_hidden()

        alice.click("bookmarks-button")
        alice.page.get_by_test_id("bookmark-text").fill("Refuel at 103 started late")
        alice.click("bookmark-save")
        alice.page.locator("[data-testid=bookmark-item]").first.wait_for()

        # Bob did nothing: the bookmark reaches his page through the stream, on his
        # timeline and in his list, with its author.
        bob.wait("s.timelineBookmarks.length === 1 && s.timelineBookmarks[0].at === arg", at)
        assert bob.page.get_by_test_id("bookmarks-count").inner_text() == "1"
        bob.click("bookmarks-button")
        item = bob.page.locator("[data-testid=bookmark-item]")
        assert item.count() == 1
        assert "Refuel at 103 started late" in item.inner_text()
        assert "local-user" in item.inner_text()
        shots = REPO / "test-artifacts" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        bob.page.screenshot(path=str(shots / "bookmarks-cowatcher.png"))

        # Somewhere else, then the bookmark takes both viewers back to its moment.
        bob.page.keyboard.press("Escape")
        bob.page.keyboard.press("Shift+ArrowRight")  # paused: 10 steps on
        bob.wait("s.playback.position !== arg", at)
        bob.click("bookmarks-button")
        item.locator(".bookmark-go").click()
        bob.wait("s.playback.position === arg", at)
        alice.wait("s.playback.position === arg", at)

        # A link to this moment, with the session's filters, opens it for someone who is
        # not in the session: a session of their own, at that time, filtered the same.
        filtered = alice.page.evaluate(
            """(sid) => fetch(`/api/replay/sessions/${sid}/control`, {method: 'POST',
                headers: {'Content-Type': 'application/json'},
                body: JSON.stringify({action: 'set_filters',
                                      filters: {vehicle_types: ['fuel_truck']}})})
                .then((r) => r.status)""",
            session,
        )
        assert filtered == 200
        alice.page.wait_for_function(
            "() => document.querySelector('[data-testid=filters-summary]').innerText"
            ".includes('Fuel truck')"
        )
        alice.click("moment-copy")
        moment = alice.page.get_by_test_id("moment-link").input_value()
        assert f"t={at}" in moment and "filters=" in moment
        carol = open_dashboard(contexts[1], f"{moment}&user=carol")
        assert carol.state()["sessionId"] != session
        assert carol.state()["playback"]["position"] == at
        assert carol.page.get_by_test_id("filters-summary").inner_text() == (
            "Vehicle type: Fuel truck"
        )
        assert bob.errors == [] and carol.errors == []
    finally:
        for context in contexts:
            context.close()
    assert alice.errors == []


@pytest.fixture(scope="module")
def raw_events(server: DemoServer) -> tuple[dict[str, list[Any]], Any]:
    """The demo's raw flights, tasks and notifications (valid rows, tests/ground_truth.py),
    as the demo stored them: the independent side of the lateness tests."""
    from tests.ground_truth import valid_rows
    from tests.test_page_truth import KEYS, _raw_objects

    objects = _raw_objects(server)
    return valid_rows({k: v for k, v in objects.items() if "/positions" not in k}, KEYS)


def test_three_clicks_from_a_late_flight_to_the_task_and_vehicle_that_made_it_late(
    raw_events: tuple[dict[str, list[Any]], Any], dashboard: Dashboard, tmp_path: Path
) -> None:
    """Issue #19's done-when: from "this flight was late" to the task and vehicle that
    caused it. The test picks the departure with the largest off-block delay from the raw
    records the demo stored and computes its critical path itself (the documented rules,
    tests/test_turnarounds.py's independent computation). Click 1: its board row opens the
    Gantt, which lists every link of the path with the minutes it added; click 2: the bar
    of the task behind the link that added most seeks the clock to that task and selects
    its vehicle on the map."""
    from tests.test_turnarounds import truth_critical_path, truth_tasks, truth_turnarounds

    rows, _ = raw_events
    paths = {
        ta: (legs, path)
        for ta, legs in truth_turnarounds(rows).items()
        if (path := truth_critical_path(rows, legs)) is not None
    }
    legs, truth = max(paths.values(), key=lambda lp: (lp[1]["delay"], lp[0][0]["id"]))
    # The demo day is short of vehicles: its worst departure left late because of one.
    assert truth["delay"] >= 5 * 60_000, "the demo day has a genuinely late departure"
    departure = next(leg["id"] for leg in legs if leg["movement"] == "departure")
    # The link that added most; a late vehicle's link is the cause of the task after it.
    worst = max(range(len(truth["chain"])), key=lambda i: truth["chain"][i][3])
    kind, link_id, _, added = truth["chain"][worst]
    assert kind == "vehicle_arrival" and added > 0, "the delay is a vehicle's, not the plan's"
    task_id = truth["chain"][worst + 1][1]
    task = truth_tasks(rows, {leg["id"] for leg in legs})[task_id]

    dashboard.page.get_by_test_id("jump-flight").select_option(departure)
    row = f"[data-testid=flight-row][data-flight-id='{departure}']"
    dashboard.wait(f'document.querySelector("{row}") !== null')
    # Click 1. The board re-orders its rows as the clock moves (a row node may move under
    # the pointer), so the click goes to the row as found now.
    dashboard.page.evaluate("selector => document.querySelector(selector).click()", row)
    gantt = dashboard.page.get_by_test_id("turnaround")
    dashboard.page.wait_for_function(
        "() => document.getElementById('turnaround').dataset.state === 'ready'"
    )
    links = dashboard.page.eval_on_selector_all(
        "[data-testid=turnaround-link]",
        "els => els.map(e => [e.dataset.kind, e.dataset.id, Number(e.dataset.addedMs)])",
    )
    assert links == [[k, i, a] for k, i, _, a in truth["chain"]]
    critical = dashboard.page.eval_on_selector_all(
        "[data-testid=turnaround-task].critical", "els => els.map(e => e.dataset.taskId)"
    )
    assert sorted(critical) == sorted(i for k, i, _, _ in truth["chain"] if k == "task")
    minutes = round(truth["delay"] / 60_000)
    assert f"{minutes} min" in dashboard.page.get_by_test_id("turnaround-delay").inner_text()
    dashboard.page.screenshot(path=str(tmp_path / "turnaround.png"))

    # Click 2: the bar of that task.
    dashboard.page.locator(
        f"[data-testid=turnaround-task][data-task-id='{task_id}'] [data-testid=turnaround-bar]"
    ).click()
    dashboard.wait(
        "Math.abs(s.clockPosition - arg) < 2000 && Math.abs(s.streamPosition - arg) < 2000",
        task["started"],
    )
    dashboard.wait("s.selectedVehicle === arg", link_id)
    dashboard.wait(
        "Math.abs(Number(document.querySelector('[data-testid=turnaround-playhead]')"
        ".dataset.at) - arg) < 2000",
        task["started"],
    )
    assert gantt.is_visible()
    dashboard.page.screenshot(path=str(tmp_path / "turnaround-cause.png"))
    dashboard.page.get_by_test_id("turnaround-close").click()
    assert not gantt.is_visible()

    # The late vehicle's day (the map's Day button): its task chain in the order the
    # documented rules give (tests/test_vehicle_day.py's computation), the late task in it.
    from tests.test_vehicle_day import truth_day

    dashboard.page.get_by_test_id("vehicle-day-open").click()
    dashboard.page.wait_for_function(
        "() => document.getElementById('vehicle-day').dataset.state === 'ready'"
    )
    chain = truth_day(rows, link_id, 0, 0)["tasks"]
    expected = sorted(chain, key=lambda k: (min(chain[k]["first"].values()), k))
    shown = dashboard.page.eval_on_selector_all(
        "[data-testid=vehicle-day-task]", "els => els.map(e => e.dataset.taskId)"
    )
    assert shown == expected and task_id in shown
    assert "utilisation" in dashboard.page.get_by_test_id("vehicle-day-totals").inner_text()
    dashboard.page.screenshot(path=str(tmp_path / "vehicle-day.png"))
    dashboard.page.get_by_test_id("vehicle-day-close").click()
    assert not dashboard.page.get_by_test_id("vehicle-day").is_visible()
    assert dashboard.errors == []


MINUTE_MS = 60_000


def truth_lateness(task: dict[str, Any], at: int) -> dict[str, Any]:
    """docs/api.md, "Lateness", written out again: a task row's delay at replay time ``at``."""
    if task["status"] == "cancelled":
        return {"delay": None, "late": False, "overdue": False, "late_now": False}
    start, done = task["actual_start"], task["status"] == "completed"
    start_delay = (
        start - task["planned_start"] if start is not None else max(0, at - task["planned_start"])
    )
    if done:
        end_delay = None if task["actual_end"] is None else task["actual_end"] - task["planned_end"]
    else:
        end_delay = max(0, at - task["planned_end"])
    delay = start_delay if end_delay is None else max(start_delay, end_delay)
    late_now = not done and (
        (start is None and at - task["planned_start"] >= MINUTE_MS)
        or at - task["planned_end"] >= MINUTE_MS
    )
    overdue = not done and at > task["planned_end"]
    return {"delay": delay, "late": delay >= MINUTE_MS, "overdue": overdue, "late_now": late_now}


def test_lateness_on_the_task_list_board_and_map_follows_the_rule(
    raw_events: tuple[dict[str, list[Any]], Any], dashboard: Dashboard, tmp_path: Path
) -> None:
    """Issue #19 item 3 at a moment the demo's worst departure is held up: every task row's
    delay, late and overdue flags, the "late only" filter and "most late" sort, the board's
    block delays and the map's late-vehicle marks equal the documented rule computed here
    from the raw records (tests/ground_truth.py folds the state at that time)."""
    from tests.ground_truth import state_at
    from tests.test_page_truth import RETENTION_MS, TICK_MS, control

    rows, day = raw_events
    # The moment: ten minutes after the planned end of the task that ran latest.
    tasks = [r for r in rows["tasks"] if r["status"] == "completed" and r["actual_end"]]
    worst = max(tasks, key=lambda r: (r["actual_end"] - r["planned_end"], r["id"]))
    at = worst["planned_end"] + 10 * MINUTE_MS
    assert worst["actual_end"] > at, "the task is still running then: overdue"
    control(dashboard, {"action": "seek", "position": at})
    truth = state_at(rows, day, TICK_MS, at, RETENTION_MS)
    expected = {task["id"]: truth_lateness(task, at) for task in truth["tasks"]}
    dashboard.wait(
        "s.streamPlayback && s.streamPlayback.position === arg.at && s.clockPosition === arg.at"
        " && s.transport === 'live' && s.taskIds.length === arg.ids.length"
        " && arg.ids.every((id) => s.taskIds.includes(id))",
        {"at": at, "ids": sorted(expected)},
    )

    def shown() -> list[dict[str, Any]]:
        return dashboard.page.eval_on_selector_all(
            "[data-testid=task-row]",
            """els => els.map(e => ({id: e.dataset.taskId, late: e.dataset.late === "true",
                overdue: e.dataset.overdue === "true",
                delay: e.querySelector("td.delay").dataset.delayMs}))""",
        )

    dashboard.page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=task-row]').length === n", arg=len(expected)
    )
    for row in shown():
        want = expected[row["id"]]
        assert row["delay"] == ("" if want["delay"] is None else str(want["delay"])), row
        assert (row["late"], row["overdue"]) == (want["late"], want["overdue"]), row
    assert expected[worst["id"]]["overdue"]

    dashboard.page.get_by_test_id("task-late-only").check()
    late = sorted(k for k, v in expected.items() if v["late"])
    dashboard.page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=task-row]').length === n", arg=len(late)
    )
    assert sorted(r["id"] for r in shown()) == late
    dashboard.page.get_by_test_id("task-sort").select_option("late")
    dashboard.page.wait_for_function(
        """() => { const d = [...document.querySelectorAll('[data-testid=task-row] td.delay')]
            .map((c) => Number(c.dataset.delayMs));
            return d.every((v, i) => i === 0 || d[i - 1] >= v); }"""
    )
    ordered = [expected[r["id"]]["delay"] for r in shown()]
    assert ordered == sorted(ordered, reverse=True)

    # The board: block delay = actual on/off-block once reached, else the estimate, - sched.
    def block_delay(flight: dict[str, Any]) -> int | None:
        reached = {"arrival": "on_block", "departure": "off_block"}[flight["movement"]]
        at_block = flight["status"] == reached and flight["actual"] is not None
        when = flight["actual"] if at_block else flight["estimated"]
        return None if when is None else when - flight["scheduled"]

    flights = {f["id"]: f for f in truth["flights"]}
    board = dashboard.page.eval_on_selector_all(
        "[data-testid=flight-row]",
        "els => els.map(e => [e.dataset.flightId, e.querySelector('td.delay').dataset.delayMs])",
    )
    assert board
    for flight_id, delay in board:
        want = block_delay(flights[flight_id])
        assert delay == ("" if want is None else str(want)), flight_id
    assert dashboard.page.get_by_test_id("flight-legend").inner_text()
    for header in ("sched-header", "est-header", "actual-header"):
        assert dashboard.page.get_by_test_id(header).get_attribute("title")

    # The map: a vehicle whose current task (derived) is late now is ringed.
    late_vehicles = sorted(
        v["id"] for v in truth["vehicle_tasks"]
        if v["current"] is not None and truth_lateness(v["current"], at)["late_now"]
    )  # fmt: skip
    assert worst["vehicle_id"] in late_vehicles
    dashboard.page.wait_for_function(
        "at => { const m = window.__replayModel(); return m.at === at; }", arg=at
    )
    model = dashboard.page.evaluate("() => window.__replayModel().movers")
    marked = sorted(k for k, m in model.items() if m["late"] and m["drawn"])
    drawn_late = [v for v in late_vehicles if model.get(v, {}).get("drawn")]
    assert marked == drawn_late
    dashboard.page.screenshot(path=str(tmp_path / "lateness.png"))
    assert dashboard.errors == []


def test_navigate_by_events_notifications_and_follow(
    raw_events: tuple[dict[str, list[Any]], Any], dashboard: Dashboard, tmp_path: Path
) -> None:
    """Issue #19 item 4. The "next overdue task" key (O) jumps to the first overdue moment
    after the clock that the documented rule gives over the raw records
    (tests/test_navigation.py's independent computation) and selects the task's vehicle;
    a click on a notification seeks to its time and selects the vehicle and flight it
    names; "follow" keeps the selected vehicle near the map's centre while it drives."""
    from tests.test_navigation import by_entity, truth_events

    rows, day = raw_events
    truth = sorted(e for e in truth_events(rows, day.end_ms) if e[0] == "overdue_task")
    dashboard.wait("s.eventsLoaded")
    legend = dashboard.page.get_by_test_id("timeline-legend").inner_text()
    assert f"Overdue task {len(truth)}" in legend and "Vehicles moving" in legend
    start = dashboard.state()["clockPosition"]
    expected = [t for _, t, _ in truth if t > start][:2]
    dashboard.page.keyboard.press("o")
    dashboard.wait("s.clockPosition === arg && s.streamPosition !== null", expected[0])
    dashboard.page.keyboard.press("o")  # the next one, not the same again
    dashboard.wait("s.clockPosition === arg", expected[1])
    _, at, task_id = next(e for e in truth if e[1] == expected[1])
    vehicle = [r for r in by_entity(rows["tasks"])[task_id] if r["t"] <= at][-1]["vehicle_id"]
    if vehicle is not None:
        dashboard.wait("s.selectedVehicle === arg", vehicle)
    dashboard.page.screenshot(path=str(tmp_path / "next-overdue.png"))

    # A notification naming a vehicle: click it.
    notes = {n["id"]: n for n in rows["notifications"]}
    dashboard.wait("document.querySelector('[data-testid=notification-item]') !== null")
    shown = dashboard.ids("notification-item", "data-notification-id")
    note = next(notes[i] for i in shown if notes[i]["vehicle_id"] and notes[i]["t"] != at)
    dashboard.page.locator(
        f"[data-testid=notification-item][data-notification-id='{note['id']}']"
    ).click()
    dashboard.wait("s.clockPosition === arg.t && s.selectedVehicle === arg.vehicle_id", note)
    if note["flight_id"]:
        dashboard.wait("s.highlightedFlight === arg", note["flight_id"])

    # Follow a vehicle that is driving (its fix says en route) at 16x for a replay minute.
    dashboard.wait("Object.values(s.positions).some(p => p.state === 'en_route')")
    driving = next(k for k, p in dashboard.state()["positions"].items() if p["state"] == "en_route")
    dashboard.page.evaluate("id => window.__replay.selectVehicle(id)", driving)
    dashboard.click("zoom-in")
    dashboard.click("zoom-in")
    dashboard.page.keyboard.press("f")
    dashboard.wait("s.followedVehicle === arg", driving)
    before = dashboard.state()["positions"][driving]
    dashboard.set_speed("16")
    dashboard.play()
    dashboard.wait("s.streamPosition >= arg + 60000", dashboard.state()["streamPosition"])
    dashboard.pause()
    after = dashboard.state()
    assert after["followedVehicle"] == driving
    moved = (after["positions"][driving]["lat"], after["positions"][driving]["lon"])
    assert moved != (before["lat"], before["lon"]), "the followed vehicle drove"
    # Near the centre once the map has drawn the paused frame (6 % slack + a frame's glide).
    size = after["mapSize"]
    dashboard.page.wait_for_function(
        "([id, w, h]) => { const p = window.__replay.screenOf(id);"
        " return Math.hypot(p.x - w / 2, p.y - h / 2) <= 0.06 * Math.min(w, h) + 12; }",
        arg=[driving, size["width"], size["height"]],
    )
    assert dashboard.state()["followRecentres"] >= 1
    dashboard.page.screenshot(path=str(tmp_path / "follow.png"))

    # The KPI panel (item 6): its counts equal the raw records' in the window it shows.
    dashboard.click("kpi-button")
    dashboard.page.wait_for_function(
        "() => document.getElementById('kpi-popover').dataset.state === 'ready'"
    )
    window = dashboard.state()["kpiWindow"]
    a, b = window["start"], window["end"]
    conflicts = sum(
        1 for n in rows["notifications"] if n["code"] == "vehicle_conflict" and a <= n["t"] < b
    )
    departures = 0
    for events in by_entity(rows["flights"]).values():
        off = [r for r in events if r["status"] == "off_block" and r["movement"] == "departure"]
        departures += bool(off) and a <= off[0]["t"] < b
    counts = dashboard.page.get_by_test_id("kpi-counts")
    assert counts.get_attribute("data-conflicts") == str(conflicts)
    assert dashboard.page.get_by_test_id("kpi-departures").get_attribute("data-count") == str(
        departures
    )
    for chart in ("kpi-otp", "kpi-task-delays", "kpi-utilisation"):
        assert dashboard.page.get_by_test_id(chart).is_visible()
    dashboard.page.screenshot(path=str(tmp_path / "kpis.png"))
    assert dashboard.errors == []


def test_a_selected_task_shows_its_decision_with_the_candidates_on_the_map(
    raw_events: tuple[dict[str, list[Any]], Any], dashboard: Dashboard, tmp_path: Path
) -> None:
    """Issue 20's done-when: select a task and see its dispatch decision — the candidates
    drawn on the map where the decision saw them, with their ETAs at the stand, the chosen
    one highlighted, excluded ones with their reason, the rule. The task and its decision
    are picked from the raw records the demo stored (the decision behind an active task,
    tests/ground_truth.py), and everything shown is checked against that raw record."""
    from tests.ground_truth import state_at
    from tests.test_dashboard_defects import assert_laid_out
    from tests.test_page_truth import RETENTION_MS, TICK_MS, control

    rows, day = raw_events
    # The decision with the most candidates, a tick after it was made (its task active).
    ranked = sorted(rows["decisions"], key=lambda d: (-len(d["candidates"]), d["t"]))
    for raw in ranked:
        at = raw["t"] - (raw["t"] - day.start_ms) % TICK_MS + TICK_MS
        active = state_at(rows, day, TICK_MS, at, RETENTION_MS)["decisions"]
        if any(d["id"] == raw["id"] and d["t"] == raw["t"] for d in active):
            break
    else:
        raise AssertionError("no decision is behind an active task a tick after it")
    assert len(raw["candidates"]) >= 2
    dashboard.wait("s.eventsLoaded && s.frames > 5")
    assert_laid_out(dashboard)  # 1280 x 800, English (the other sizes: test_dashboard_defects)
    control(dashboard, {"action": "seek", "position": at})
    dashboard.wait(
        "s.streamPlayback && s.streamPlayback.position === arg.at && s.transport === 'live'"
        " && s.taskIds.includes(arg.id)",
        {"at": at, "id": raw["id"]},
    )
    dashboard.page.locator(f"[data-testid=task-row][data-task-id='{raw['id']}']").click()
    dashboard.wait("s.decision && s.decision.task_id === arg", raw["id"])
    shown = dashboard.state()["decision"]
    by_eta = sorted(
        raw["candidates"],
        key=lambda c: (c["eta"] if c["eta"] is not None else float("inf"), c["vehicle_id"]),
    )
    assert shown["t"] == raw["t"] and shown["decision"] == raw["decision"]
    assert shown["rule"] == raw["rule"] and shown["vehicle_id"] == raw["vehicle_id"]
    assert shown["candidates"] == [
        {"vehicle_id": c["vehicle_id"], "eta": c["eta"], "excluded": c["excluded"]} for c in by_eta
    ]
    # The card's rows: the chosen one marked, ETAs as the airport's clock shows them.
    cells = dashboard.page.eval_on_selector_all(
        "[data-testid=decision-candidates] tr",
        "els => els.map(e => ({id: e.dataset.vehicleId, eta: e.dataset.eta,"
        " chosen: e.classList.contains('chosen'), text: e.innerText}))",
    )
    assert [c["id"] for c in cells] == [c["vehicle_id"] for c in by_eta]
    assert [c["id"] for c in cells if c["chosen"]] == [raw["vehicle_id"]]
    assert [c["eta"] for c in cells] == [str(c["eta"]) if c["eta"] else "" for c in by_eta]
    # What if: the earliest eligible alternative against the chosen vehicle's ETA.
    eligible = [c for c in by_eta if c["excluded"] is None and c["eta"] is not None]
    picked = next(c for c in raw["candidates"] if c["vehicle_id"] == raw["vehicle_id"])
    what_if = dashboard.page.get_by_test_id("decision-whatif").inner_text()
    if picked["eta"] > eligible[0]["eta"]:
        assert eligible[0]["vehicle_id"] in what_if, what_if
    else:
        assert "earliest ETA" in what_if, what_if
    # ... and what happened: the chosen vehicle's actual arrival, from the raw task events
    # (the first arrived, else in_progress, by that vehicle after the decision, unless
    # another decision about the task came first), against the best alternative's ETA.
    later = [d["t"] for d in rows["decisions"] if d["id"] == raw["id"] and d["t"] > raw["t"]]
    arrivals = [
        e["t"]
        for e in rows["tasks"]
        if e["id"] == raw["id"]
        and e["status"] in ("arrived", "in_progress")
        and e["vehicle_id"] == raw["vehicle_id"]
        and e["t"] >= raw["t"]
    ]
    arrival = min(arrivals) if arrivals and not any(t <= min(arrivals) for t in later) else None
    outcome = dashboard.page.get_by_test_id("decision-outcome")
    dashboard.page.wait_for_function(
        "() => document.querySelector('[data-testid=decision-outcome]')"
        ".dataset.arrival !== undefined"
    )
    assert outcome.get_attribute("data-arrival") == ("" if arrival is None else str(arrival))
    if arrival is not None:
        assert outcome.get_attribute("data-regret") == str(arrival - eligible[0]["eta"])
        assert raw["vehicle_id"] in outcome.inner_text()
    # The card's key lines (what was decided, what if, what happened) are in view at
    # 1280 x 800 without scrolling the page or the pane: the "Actual" line was below the
    # fold, under the quality line's list of high-regret decisions.
    view = dashboard.page.evaluate(
        """() => {
            const box = (el) => { const r = el.getBoundingClientRect();
                return {top: r.top, bottom: r.bottom, height: r.height}; };
            const pane = document.getElementById('decisions');
            return {
                scrolled: window.scrollY + pane.scrollTop, window: window.innerHeight,
                pane: box(pane),
                lines: ['.decision-head', '[data-testid=decision-whatif]',
                        '[data-testid=decision-outcome]']
                    .map((q) => ({q, ...box(pane.querySelector(q))})),
            };
        }"""
    )
    assert view["scrolled"] == 0, view
    for line in view["lines"]:
        assert line["height"] > 0, line
        assert line["top"] >= view["pane"]["top"] - 1, (line, view["pane"])
        assert line["bottom"] <= min(view["pane"]["bottom"], view["window"]) + 1, (line, view)
    # The map: every candidate with a recorded position, a line to the task's stand.
    dashboard.page.wait_for_function(
        "id => { const m = window.__replayModel();"
        " return m.decision && m.decision.task_id === id; }",
        arg=raw["id"],
    )
    drawn = dashboard.page.evaluate("window.__replayModel().decision")
    assert drawn["stand"] == raw["stand"]
    placed = [c for c in raw["candidates"] if c["lat"] is not None and c["lon"] is not None]
    assert placed, "the generator records where each candidate's drive starts"

    def seen(candidates: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return sorted((c["vehicle_id"], c["eta"], c["excluded"]) for c in candidates)

    assert seen(drawn["candidates"]) == seen(placed)
    size = dashboard.page.evaluate(
        "(() => { const c = document.querySelector('[data-testid=map-canvas]');"
        " return {w: c.clientWidth, h: c.clientHeight}; })()"
    )
    for candidate in drawn["candidates"]:  # a label is whole on the map, or left to the card
        box = candidate["label"]
        if box is not None:
            assert box["x"] >= 0 and box["x"] + box["w"] <= size["w"], (candidate, size)
            assert box["y"] >= 0 and box["y"] + box["h"] <= size["h"], (candidate, size)
    assert [c["vehicle_id"] for c in drawn["candidates"] if c["chosen"]] == [raw["vehicle_id"]]
    # The decision-quality line: the API's measurement of the 3 h before the shown time
    # (its figures: tests/test_decision_quality.py), as the page states it.
    dashboard.wait("s.decisionQuality && s.decisionQuality.end === arg", at)
    quality = dashboard.state()["decisionQuality"]
    line = dashboard.page.get_by_test_id("decision-quality").inner_text()
    assert f"{quality['escalations_no_vehicle']} no-vehicle" in line, line
    assert dashboard.state()["notesPane"] == "decisions"  # a task row brings its tab forward
    dashboard.page.screenshot(path=str(tmp_path / "decision.png"))

    # Next / previous decision (item 4): "." seeks to the first decision after the clock by
    # the raw records, opens its card and draws its candidates there; "," steps back.
    def card_shows(d: dict[str, Any]) -> None:
        dashboard.wait(
            "s.clockPosition === arg.t && s.decision && s.decision.task_id === arg.id"
            " && s.decision.t === arg.t && s.notesPane === 'decisions'",
            {"t": d["t"], "id": d["id"]},
        )
        by_eta = sorted(
            d["candidates"],
            key=lambda c: (c["eta"] if c["eta"] is not None else float("inf"), c["vehicle_id"]),
        )
        shown = dashboard.state()["decision"]
        assert shown["decision"] == d["decision"] and shown["vehicle_id"] == d["vehicle_id"]
        assert shown["candidates"] == [
            {"vehicle_id": c["vehicle_id"], "eta": c["eta"], "excluded": c["excluded"]}
            for c in by_eta
        ]
        placed = [c for c in d["candidates"] if c["lat"] is not None]
        dashboard.page.wait_for_function(
            "([id, n]) => { const d = window.__replayModel().decision;"
            " return d && d.task_id === id && d.candidates.length === n; }",
            arg=[d["id"], len(placed)],
        )
        assert seen(dashboard.page.evaluate("window.__replayModel().decision")["candidates"]) == (
            seen(placed)
        )

    decisions = sorted(rows["decisions"], key=lambda d: (d["t"], d["id"]))
    following = next(i for i, d in enumerate(decisions) if d["t"] > at)
    dashboard.page.keyboard.press(".")
    card_shows(decisions[following])
    dashboard.page.keyboard.press(",")
    card_shows(decisions[following - 1])
    # Only the no-vehicle escalations: the decisions tab's filter, then its "next" button.
    back = decisions[following - 1]
    escalations = [d for d in decisions if d["decision"] == "escalate_no_vehicle"]
    after = (
        (lambda d: (d["t"], d["id"]) > (back["t"], back["id"]))
        if back["decision"] == "escalate_no_vehicle"
        else (lambda d: d["t"] > back["t"])
    )
    dashboard.page.get_by_test_id("decision-filter").select_option("escalation")
    dashboard.click("decision-next")
    card_shows(next(d for d in escalations if after(d)))
    dashboard.page.screenshot(path=str(tmp_path / "next-escalation.png"))

    # The escalations' marker lane: its legend counts the raw records; a click on a
    # marker seeks to that escalation and opens its card.
    legend = dashboard.page.get_by_test_id("timeline-legend").inner_text()
    assert f"No-vehicle escalation {len(escalations)}" in legend, legend
    target = escalations[len(escalations) // 2]
    box = dashboard.page.get_by_test_id("timeline").bounding_box()
    assert box is not None
    span = day.end_ms - day.start_ms
    x = (target["t"] - day.start_ms) / span * box["width"]
    lane = 5  # navigate.js EVENT_KINDS: the sixth lane, 8 px down, 5 px each
    dashboard.page.mouse.click(box["x"] + x, box["y"] + 8 + lane * 5 + 2)
    dashboard.wait("s.lastEvent && s.lastEvent.kind === 'escalation'")
    landed = dashboard.state()["lastEvent"]["t"]
    hit = [d for d in escalations if d["t"] == landed]
    assert hit and abs((landed - day.start_ms) / span * box["width"] - x) <= 4
    dashboard.wait("s.decision && s.decision.t === arg", landed)
    opened = dashboard.state()["decision"]["task_id"]
    card_shows(next(d for d in hit if d["id"] == opened))
    assert dashboard.errors == []


def card_values(card: Any) -> dict[str, str]:
    """The aircraft card's callsign and each value by its test id."""
    values: dict[str, str] = card.evaluate(
        """el => Object.fromEntries([...el.querySelectorAll('[data-testid]')]
            .map((e) => [e.dataset.testid, e.textContent]))"""
    )
    return values


def expected_aircraft_card(fix: dict[str, Any], truth: dict[str, Any], zone: str) -> dict[str, str]:
    """The card for aircraft fix ``fix`` from ground truth at that moment: its identities,
    its linked leg's latest row, the stand the derived occupancy gives it (tests/
    ground_truth.py), speed and heading rounded half up, times airport-local HH:MM."""
    from zoneinfo import ZoneInfo

    def hm(ms: int | None) -> str:
        if ms is None:
            return "—"
        return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).strftime("%H:%M")

    def hms(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, ZoneInfo(zone)).strftime("%H:%M:%S")

    leg = next(f for f in truth["flights"] if f["id"] == fix["flight_id"])
    stands = [
        s["id"]
        for s in truth["stands"]
        if s.get("aircraft_id") == fix["id"]
        or fix["flight_id"] in (s.get("flight_id"), s.get("arrival_id"), s.get("departure_id"))
    ]
    name = (
        f"{leg['callsign']} ({leg['flight_number']})" if leg["flight_number"] else leg["callsign"]
    )
    if leg["actual"] is not None:
        actual = hm(leg["actual"])
    else:
        actual = f"{hm(leg['estimated'])} (estimated)" if leg["estimated"] else "—"
    return {
        "aircraft-callsign": fix["callsign"] or leg["callsign"],
        "aircraft-registration": fix["registration"] or leg["registration"] or "—",
        "aircraft-icao24": fix["icao24"] or "—",
        "aircraft-type": leg["aircraft_type"] or "—",
        "aircraft-flight": f"{name} · {leg['movement']}",
        "aircraft-flight-stand": leg["stand"],
        "aircraft-scheduled": hm(leg["scheduled"]),
        "aircraft-actual": actual,
        "aircraft-status": leg["status"].replace("_", " ").capitalize(),
        "aircraft-on-stand": stands[0] if stands else "None (moving)",
        "aircraft-speed": f"{math.floor(fix['speed_kmh'] + 0.5)} km/h",
        "aircraft-heading": f"{math.floor(fix['heading'] + 0.5) % 360}°",
        "aircraft-fix": hms(fix["t"]),
    }


def test_demo_day_shows_aircraft_pushed_back_with_their_tug_and_taxiing(
    raw_events: tuple[dict[str, list[Any]], Any], dashboard: Dashboard, tmp_path: Path
) -> None:
    """Issue #18 item 3 in the page: at a moment of a pushback in the demo day, the map
    draws every aircraft the raw surface fixes say is there (independent fold,
    tests/ground_truth.py) at that fix, at its heading, with its callsign; the aircraft
    being pushed is off its stand and next to its tug, and another aircraft is taxiing."""
    from tests.ground_truth import state_at
    from tests.test_page_truth import RETENTION_MS, TICK_MS, control

    rows, day = raw_events
    pushes = [
        r
        for r in rows["tasks"]
        if r["task_type"] == "pushback" and r["status"] == "in_progress" and r["actual_start"]
    ]
    # The first pushback during which another aircraft taxis (40 s into the ~63 s push).
    for push in sorted(pushes, key=lambda r: (r["actual_start"], r["id"])):
        at = push["actual_start"] + 40_000
        truth = state_at(rows, day, TICK_MS, at, RETENTION_MS)
        fresh = {r["id"]: r for r in truth["aircraft"] if at - r["t"] <= 90_000}
        pushed = [r for r in fresh.values() if r["flight_id"] == push["flight_id"]]
        assert len(pushed) == 1 and pushed[0]["at_stand"] is None and pushed[0]["speed_kmh"] > 0
        taxiing = [r for r in fresh.values() if r["speed_kmh"] > 10 and r["id"] != pushed[0]["id"]]
        if taxiing:
            break
    control(dashboard, {"action": "seek", "position": at})
    dashboard.wait(
        "s.streamPlayback && s.streamPlayback.position === arg && s.clockPosition === arg", at
    )
    dashboard.page.wait_for_function(
        """ids => { const m = window.__replayModel().aircraft;
            return ids.every((id) => m[id] && m[id].drawn); }""",
        arg=sorted(fresh),
    )
    drawn = dashboard.page.evaluate("window.__replayModel().aircraft")
    for aircraft_id, row in fresh.items():
        shown = drawn[aircraft_id]
        assert (shown["lat"], shown["lon"], shown["heading"]) == (
            row["lat"],
            row["lon"],
            row["heading"],
        )
        assert shown["flight_id"] == row["flight_id"]
    assert sorted(k for k, v in drawn.items() if v["drawn"]) == sorted(fresh)
    # The tug pushing it: within 40 m of the aircraft (it pushes at the nose).
    tug = dashboard.page.evaluate("window.__replayModel().movers")[push["vehicle_id"]]
    a = pushed[0]
    dy = (tug["lat"] - a["lat"]) * 111_195.0
    dx = (tug["lon"] - a["lon"]) * 111_195.0 * math.cos(math.radians(a["lat"]))
    assert math.hypot(dx, dy) < 40.0
    dashboard.page.screenshot(path=str(tmp_path / "aircraft-apron.png"))
    assert taxiing, "the demo day has a pushback while another aircraft taxis"
    # Zoomed in on the pushback: drawn to scale (~38 m), larger than the floor of 16 px.
    box = dashboard.page.get_by_test_id("map-canvas").bounding_box()
    assert box is not None
    mark = drawn[a["id"]]
    dashboard.page.mouse.move(box["x"] + mark["x"], box["y"] + mark["y"])
    for _ in range(4):
        dashboard.page.mouse.wheel(0, -300)
    dashboard.page.wait_for_function(
        "([id, px]) => window.__replayModel().aircraft[id].length > px", arg=[a["id"], 40]
    )
    near = dashboard.page.evaluate("window.__replayModel().aircraft")[a["id"]]
    assert near["drawn"] and near["labelled"] and near["callsign"] == a["callsign"]
    dashboard.page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)  # no hover card
    dashboard.page.screenshot(path=str(tmp_path / "aircraft-pushback.png"))
    # Clicked (on its tail side, away from the tug at its nose): the aircraft card says
    # what the raw records say of it and of the flight its fix links to.
    tug_at = dashboard.page.evaluate("window.__replayModel().movers")[push["vehicle_id"]]
    away = (near["x"] - tug_at["x"], near["y"] - tug_at["y"])
    reach = 0.3 * near["length"] / max(1e-6, math.hypot(*away))
    click = (near["x"] + away[0] * reach, near["y"] + away[1] * reach)
    dashboard.page.mouse.click(box["x"] + click[0], box["y"] + click[1])
    card = dashboard.page.get_by_test_id("aircraft-card")
    card.wait_for(state="visible")
    assert dashboard.page.get_by_test_id("vehicle-card").is_hidden()
    assert card_values(card) == expected_aircraft_card(a, truth, day.timezone)
    dashboard.page.screenshot(path=str(tmp_path / "aircraft-card.png"))
