"""Both real fixture airports (EHAM, LFPG from OpenStreetMap) imported, two days laid onto
their layouts, chunked, served (moto server + ``dispatch-replay serve``) and replayed in
Chromium:

- a short hand-written day (tests/osm_day.py: every value known here): what the page draws
  is checked against its raw records (tests/ground_truth.py), the stand labels against the
  raw OSM refs, and the ODbL credit in the map corner;
- the product's own generated day (``generate --layout``: flights, tasks, dispatch, vehicles
  on the imported roads, aircraft landing, taxiing, pushed back): paused during a pushback
  and at seeded instants, every drawn aircraft and vehicle and every occupied stand as the
  raw records say.

Screenshots: test-artifacts/real-airports/ (``UPDATE_SCREENSHOT=1`` copies them to the
README's docs/img/).
"""

from __future__ import annotations

import datetime as dt
import gzip
import math
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from playwright.sync_api import Browser, Page

from chunker.batch.run import chunk_day
from chunker.format.encoding import ChunkerConfig
from chunker.format.records import Reference
from chunker.format.s3 import s3_client
from functions.app.dependencies import dynamodb_client
from functions.local.cli import main
from functions.local.demo import local_app_environment
from functions.local.stack import ensure_table, free_port, moto_server, stop_process, wait_for_http
from synthetic import GeneratedDay, GeneratorSettings, generate_day, write_day
from tests.browser_page import Dashboard, chromium, open_dashboard
from tests.ground_truth import state_at, valid_rows
from tests.osm_day import OsmDay, haversine, osm_day, stand_line, way_holders
from tests.test_dashboard_defects import open_filters
from tests.test_page_truth import control

FIXTURES = Path(__file__).parent / "fixtures" / "osm"
AIRPORTS = {
    "EHAM": ("eham.overpass.json", "eham.overlay.yaml"),
    "LFPG": ("lfpg.overpass.json.gz", "lfpg.overlay.json"),
}
DATE = "2026-07-14"
GENERATED_DATE = "2026-07-15"  # the generator's day, beside the hand-written one
BUCKET, TABLE = "real-airports", "real-airports-sessions"
ARTEFACTS = Path(__file__).parent.parent / "test-artifacts" / "real-airports"
README_IMAGES = Path(__file__).parent.parent / "docs" / "img"
AIRCRAFT_FADE_MS = 90_000  # MOVER_FADE_AFTER_S: an aircraft past it is not drawn
VEHICLE_HIDE_MS = 600_000  # MOVER_HIDE_AFTER_S
PUSH_MAX_KMH = 10.0  # a pushback is at walking pace; taxiing out is faster


def raw_refs(airport: str) -> Counter[str]:
    """Each ``aeroway=parking_position`` ref in the raw extract, with how often it occurs."""
    data = (FIXTURES / AIRPORTS[airport][0]).read_bytes()
    if AIRPORTS[airport][0].endswith(".gz"):
        data = gzip.decompress(data)
    elements = orjson.loads(data)["elements"]
    return Counter(
        e["tags"]["ref"]
        for e in elements
        if e.get("tags", {}).get("aeroway") == "parking_position" and e["tags"].get("ref")
    )


def raw_stand_points(airport: str) -> dict[str, tuple[float, float]]:
    """Where the raw extract puts each stand whose ref occurs once (a node, or a way's
    nose-wheel end: ``stand_line``)."""
    data = (FIXTURES / AIRPORTS[airport][0]).read_bytes()
    if AIRPORTS[airport][0].endswith(".gz"):
        data = gzip.decompress(data)
    elements = orjson.loads(data)["elements"]
    once = {r for r, n in raw_refs(airport).items() if n == 1}
    holders = way_holders(elements)
    points = {}
    for e in elements:
        ref = e.get("tags", {}).get("ref")
        if e.get("tags", {}).get("aeroway") != "parking_position" or ref not in once:
            continue
        if e["type"] == "node":
            points[ref] = (e["lat"], e["lon"])
        elif e.get("geometry"):
            nose = stand_line(e, holders)[-1]
            points[ref] = (nose["lat"], nose["lon"])
    return points


Served = tuple[str, dict[str, OsmDay], dict[str, GeneratedDay]]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Both airports imported with the CLI, their days (hand-written and generated)
    chunked on a moto server, the app served by ``dispatch-replay serve``; the URL and
    each airport's days."""
    tmp = tmp_path_factory.mktemp("real-airports")
    days, generated = {}, {}
    for airport, (osm, overlay) in AIRPORTS.items():
        out = tmp / f"{airport}.reference.json"
        argv = ["import-layout", str(FIXTURES / osm), "--overlay", str(FIXTURES / overlay)]
        assert main([*argv, "--out", str(out), "--report", str(tmp / f"{airport}.report")]) == 0
        days[airport] = osm_day(Reference.model_validate_json(out.read_bytes()), DATE)
        settings = GeneratorSettings(
            layout=out,
            service_date=dt.date.fromisoformat(GENERATED_DATE),
            vehicles=24,
            flights=30,
            start_hour=7,
            hours=2,
        )
        generated[airport] = generate_day(settings, lambda _line: None)
    saved = dict(os.environ)
    with moto_server() as aws:
        os.environ.update(aws.environment)
        server = None
        try:
            s3 = s3_client()
            s3.create_bucket(Bucket=BUCKET)
            for airport, day in days.items():
                for key, body in day.objects.items():
                    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                chunk_day(s3, BUCKET, airport, DATE, ChunkerConfig())
            # The generated day in 10-minute chunks (the same rules, a tenth of the mostly
            # empty objects of a whole service day).
            for airport, made in generated.items():
                write_day(made, lambda key, body: s3.put_object(Bucket=BUCKET, Key=key, Body=body))
                config = ChunkerConfig(bucket_ms=600_000, histogram_bin_ms=600_000)
                chunk_day(s3, BUCKET, airport, GENERATED_DATE, config)
            ensure_table(dynamodb_client(), TABLE)
            env = {**os.environ, **local_app_environment(BUCKET, TABLE)}
            port = free_port()
            with (tmp / "serve.log").open("wb") as log:
                server = subprocess.Popen(
                    [sys.executable, "-m", "functions.local.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, server)
            yield f"http://127.0.0.1:{port}", days, generated
        finally:
            if server is not None:
                stop_process(server)
            os.environ.clear()
            os.environ.update(saved)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_a_real_airport_replays_its_day_as_the_raw_records_say(
    airport: str, served: Served, browser: Browser
) -> None:
    url, days, _ = served
    osm = days[airport]
    rows, day = valid_rows(osm.objects, osm.keys)
    assert {k: len(v) for k, v in rows.items() if v} == {
        k: len(v) for k, v in osm.records.items()
    }, "every record written for the day is valid"
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        dashboard = open_dashboard(context, f"{url}/?airport={airport}&day={DATE}")
        page = dashboard.page
        # Play a little of the morning, then stop on the pushback.
        control(dashboard, {"action": "seek", "position": osm.start})
        dashboard.wait("s.streamPlayback && s.streamPlayback.position === arg", osm.start)
        dashboard.set_speed("16")
        dashboard.play()
        dashboard.wait("s.streamPosition >= arg", osm.start + 30_000)
        dashboard.pause()
        truth = check_drawn(dashboard, rows, day, osm.pushing, "pushback")
        # What a person sees: the departure pushed back, the arrival taxiing in.
        aircraft = {
            r["id"]: r for r in truth["aircraft"] if osm.pushing - r["t"] <= AIRCRAFT_FADE_MS
        }
        moving = sorted(r["callsign"] for r in aircraft.values() if r["speed_kmh"] > 0)
        assert moving == ["KLM1234", "KLM1701"], moving
        # Zoom in (wheel) on the aircraft being pushed back, for the labels and the shot.
        pushed = next(a for a, fix in aircraft.items() if fix["callsign"] == "KLM1701")
        box = zoom_on(page, pushed)
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)  # no hover card
        model = page.evaluate("window.__replayModel()")
        # Stand labels are the OSM refs as written (W06/W07, not the id W06_W07; a repeated
        # ref disambiguated as "ref (2)", ...), a stand with no ref "Stand near <a ref>"
        # (or, far from any, "Stand <n> (unnamed)"),
        # never an OSM id; each sits where the raw extract puts that stand. Screen =
        # affine(lat, lon), fitted on the movers drawn.
        refs = raw_refs(airport)
        labels = model["standLabels"]
        assert len(labels) >= 5, labels
        unexplained = [
            label["text"]
            for label in labels
            if label["text"] not in refs
            and not any(re.fullmatch(re.escape(r) + r" \(\d+\)", label["text"]) for r in refs)
            and not (
                not label["named"]
                and (
                    label["text"].startswith("Stand near ")
                    or re.fullmatch(r"Stand \d+ \(unnamed\)", label["text"])
                )
            )
        ]
        assert len(unexplained) <= len(labels) // 10, unexplained
        assert not [x for x in labels if re.search(r"osm-|\d{7,}", x["text"])], labels
        drawn = [m for m in (*model["movers"].values(), *model["aircraft"].values()) if m["drawn"]]
        design = np.array([[m["lat"], m["lon"], 1.0] for m in drawn])
        fit, *_ = np.linalg.lstsq(design, np.array([[m["x"], m["y"]] for m in drawn]), rcond=None)
        where = raw_stand_points(airport)
        placed = [label for label in labels if label["text"] in where]
        assert placed
        for label in placed:
            x, _ = np.array([*where[label["text"]], 1.0]) @ fit
            assert abs(x - label["x"]) < 3, (label, x)
        # The ODbL credit in the map's corner.
        credit = page.get_by_test_id("map-attribution")
        assert credit.is_visible() and "© OpenStreetMap contributors" in credit.inner_text()
        assert (
            credit.locator("a").get_attribute("href") == "https://www.openstreetmap.org/copyright"
        )
        credit_box = credit.bounding_box()
        assert credit_box is not None
        assert credit_box["x"] > box["x"] + box["width"] / 2
        assert credit_box["y"] > box["y"] + box["height"] / 2
        assert not [n for n in model["terminalLabels"] if re.search(r"(way|node|relation)/", n)]
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTEFACTS / f"{airport.lower()}-pushback.png"))
        # The stand filter offers and names stands by what a person reads: every ref that
        # needed normalising (W06/W07 -> id W06_W07) is offered and found as written.
        odd = sorted(r for r in refs if refs[r] == 1 and not re.fullmatch(r"[A-Za-z0-9_.:-]+", r))
        if odd:
            open_filters(dashboard)
            offered = dict(
                page.eval_on_selector_all(
                    "#filter-stand-options option", "els => els.map((e) => [e.value, e.label])"
                )
            )
            shown = {label.split(" · ")[0] for label in offered.values()}
            assert set(odd) <= shown, set(odd) - shown
            page.get_by_test_id("filter-stand-input").fill(odd[0])
            page.get_by_test_id("filter-stand-input").press("Enter")
            chip = page.get_by_test_id("filter-stand-chips").locator(".chip-value").first
            assert chip.inner_text().startswith(odd[0])
            assert chip.get_attribute("data-value") != odd[0]  # the id, normalised
        assert dashboard.errors == []
    finally:
        context.close()


def pushback_moment(rows: dict[str, list[dict[str, Any]]]) -> tuple[int, str, str]:
    """From the raw records: the first pushback during which its flight's aircraft moves
    at walking pace (pushed, not yet taxiing out): the tick after that fix, the aircraft,
    the tug."""
    started: dict[str, dict[str, Any]] = {}
    for row in sorted(rows["tasks"], key=lambda r: r["t"]):
        if row["task_type"] != "pushback":
            continue
        if row["status"] == "in_progress":
            started[row["id"]] = row
        elif row["status"] == "completed" and row["id"] in started:
            begin, end = started[row["id"]]["t"], row["t"]
            moving = [
                fix
                for fix in rows["aircraft"]
                if fix["flight_id"] == row["flight_id"]
                and begin <= fix["t"] < end
                and 0 < (fix["speed_kmh"] or 0) <= PUSH_MAX_KMH
            ]
            if len(moving) >= 3:
                at = moving[len(moving) // 2]["t"] // 1000 * 1000 + 1000
                return at, moving[0]["id"], row["vehicle_id"]
    raise AssertionError("the generated day has no pushback with a moving aircraft")


def check_drawn(
    dashboard: Dashboard, rows: dict[str, list[dict[str, Any]]], day: Any, at: int, where: str
) -> dict[str, Any]:
    """Seek to ``at`` and compare every drawn aircraft, vehicle and occupied stand with the
    raw records' state there; the truth."""
    control(dashboard, {"action": "seek", "position": at})
    dashboard.wait(
        "s.streamPlayback && s.streamPlayback.position === arg && s.clockPosition === arg", at
    )
    truth = state_at(rows, day, 1000, at)
    aircraft = {r["id"]: r for r in truth["aircraft"] if at - r["t"] <= AIRCRAFT_FADE_MS}
    vehicles = {r["id"]: r for r in truth["vehicles"] if at - r["t"] <= VEHICLE_HIDE_MS}
    dashboard.page.wait_for_function(
        """([planes, cars, at]) => { const m = window.__replayModel();
            return m.at === at
                && planes.every((id) => m.aircraft[id] && m.aircraft[id].drawn)
                && cars.every((id) => m.movers[id] && m.movers[id].drawn
                    && !m.movers[id].moving); }""",
        arg=[sorted(aircraft), sorted(vehicles), at],
    )
    model = dashboard.page.evaluate("window.__replayModel()")
    flights = {row["id"]: row for row in truth["flights"]}
    assert sorted(k for k, v in model["aircraft"].items() if v["drawn"]) == sorted(aircraft), where
    for aircraft_id, fix in aircraft.items():
        shown = model["aircraft"][aircraft_id]
        assert (shown["lat"], shown["lon"], shown["heading"]) == (
            fix["lat"],
            fix["lon"],
            fix["heading"],
        ), (where, aircraft_id)
        # Its label: the fix's callsign, else its leg's (once that leg is recorded), else
        # its registration, else its id.
        leg = flights.get(fix["flight_id"]) if fix["flight_id"] else None
        label = fix["callsign"] or (leg or {}).get("callsign") or fix["registration"]
        assert shown["callsign"] == (label or aircraft_id), (where, aircraft_id)
    assert sorted(k for k, v in model["movers"].items() if v["drawn"]) == sorted(vehicles), where
    for vehicle_id, fix in vehicles.items():
        shown = model["movers"][vehicle_id]
        assert (shown["lat"], shown["lon"]) == (fix["lat"], fix["lon"]), (where, vehicle_id)
    stands = {row["id"]: row["flight_id"] for row in truth["stands"]}
    assert model["stands"] == stands, where
    return truth


def check_unrecorded_leg_card(
    dashboard: Dashboard, rows: dict[str, list[dict[str, Any]]], day: Any
) -> None:
    """An aircraft parked on a stand before its leg's first flight row: it holds the stand
    (map, card), and its card names the leg (who it is) but shows none of the leg's times
    or status — the day's catalogue has them from later in the day, the future here."""
    first_row = {}
    for row in sorted(rows["flights"], key=lambda r: r["t"]):
        first_row.setdefault(row["id"], row["t"])
    fix = next(
        f
        for f in sorted(rows["aircraft"], key=lambda r: r["t"])
        if f["flight_id"] and f["at_stand"] and first_row.get(f["flight_id"], 0) > f["t"] + 120_000
    )
    at = fix["t"] // 1000 * 1000 + 1000
    truth = check_drawn(dashboard, rows, day, at, "unrecorded leg")
    assert fix["flight_id"] not in {row["id"] for row in truth["flights"]}
    # Parked on a stand, it holds that stand by itself until its leg is recorded.
    held = {row["id"]: row.get("aircraft_id") for row in truth["stands"]}
    assert held.get(fix["at_stand"]) == fix["id"], (fix, truth["stands"])
    page = dashboard.page
    box = zoom_on(page, fix["id"])
    model = page.evaluate("window.__replayModel()")
    mark = model["aircraft"][fix["id"]]
    # Clicked where no vehicle is (a vehicle there would win the click): of points on the
    # aircraft, the one farthest from every drawn vehicle.
    cars = [(m["x"], m["y"]) for m in model["movers"].values() if m["drawn"]]
    reach = 0.3 * mark["length"]
    spots = [(mark["x"], mark["y"])] + [
        (mark["x"] + reach * dx, mark["y"] + reach * dy)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (0.7, 0.7), (-0.7, 0.7), (0.7, -0.7))
    ]
    x, y = max(spots, key=lambda p: min((math.dist(p, c) for c in cars), default=1e9))
    page.mouse.click(box["x"] + x, box["y"] + y)
    card = page.get_by_test_id("aircraft-card")
    card.wait_for(state="visible")
    assert card.get_attribute("data-aircraft-id") == fix["id"]
    values = dict(
        card.evaluate(
            """el => [...el.querySelectorAll('[data-testid]')]
                .map((e) => [e.dataset.testid, e.textContent])"""
        )
    )
    assert values["aircraft-status"] == "Not recorded yet", values
    assert values["aircraft-on-stand"] == fix["at_stand"], values
    assert "aircraft-scheduled" not in values and "aircraft-actual" not in values, values
    leg = next(r for r in rows["flights"] if r["id"] == fix["flight_id"])
    assert values["aircraft-flight"].startswith(leg["callsign"]), values
    page.keyboard.press("Escape")


def zoom_on(page: Page, aircraft_id: str) -> dict[str, float]:
    """Wheel-zoom the map in on an aircraft until it is drawn over 30 px long; the map's
    box."""
    box = page.get_by_test_id("map-canvas").bounding_box()
    assert box is not None
    for _ in range(8):
        mark = page.evaluate("window.__replayModel().aircraft")[aircraft_id]
        if mark["length"] > 30:
            break
        frames = page.evaluate("window.__replayModel().frames")
        page.mouse.move(box["x"] + mark["x"], box["y"] + mark["y"])
        page.mouse.wheel(0, -300)
        page.wait_for_function("n => window.__replayModel().frames > n + 2", arg=frames)
    return dict(box)


@pytest.mark.parametrize("airport", sorted(AIRPORTS))
def test_a_real_airport_replays_the_generated_day_as_its_raw_records_say(
    airport: str, served: Served, browser: Browser
) -> None:
    """The product's generated day on the imported layout: paused mid-pushback and at four
    seeded instants, the page draws what the raw records say (aircraft, vehicles, stands)."""
    url, _, generated = served
    made = generated[airport]
    rows, day = valid_rows(made.objects, made.keys)
    at, pushed, tug = pushback_moment(rows)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        dashboard = open_dashboard(context, f"{url}/?airport={airport}&day={GENERATED_DATE}")
        page = dashboard.page
        rng = random.Random(airport)
        first, last = rows["positions"][0]["t"], rows["positions"][-1]["t"]
        occupied = 0
        for instant in sorted(rng.randrange(first, last) // 1000 * 1000 for _ in range(4)):
            truth = check_drawn(dashboard, rows, day, instant, f"@{instant}")
            occupied += len(truth["stands"])
        assert occupied > 0  # the instants had aircraft on stands to compare
        check_unrecorded_leg_card(dashboard, rows, day)
        truth = check_drawn(dashboard, rows, day, at, "pushback")
        plane = next(r for r in truth["aircraft"] if r["id"] == pushed)
        car = next(r for r in truth["vehicles"] if r["id"] == tug)
        assert (
            plane["speed_kmh"] > 0
            and haversine(plane["lat"], plane["lon"], car["lat"], car["lon"]) < 80
        ), (plane, car)
        # Zoom in (wheel) on the aircraft being pushed back, for the shot.
        box = zoom_on(page, pushed)
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] - 5)  # no hover card
        page.wait_for_function(
            "n => window.__replayModel().frames > n + 2",
            arg=page.evaluate("window.__replayModel().frames"),
        )
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTEFACTS / f"{airport.lower()}-generated-day.png"
        page.screenshot(path=str(shot))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refreshes the README's picture
            shutil.copyfile(shot, README_IMAGES / shot.name)
        assert dashboard.errors == []
    finally:
        context.close()
