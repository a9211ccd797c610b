"""Two dispatch runs of one service day, side by side (issue 20, item 6).

A short slice of the synthetic day is generated twice from one seed: the default variant
(dispatched on time first, then by shortest drive) and ``nearest-first`` (the shortest
drive, no on-time check). Both are chunked into the same bucket. Checked here: the key
layout (the default variant's keys are today's), that each variant publishes on its own
and idempotently, that the variants share flights, tasks and fleet but not their
dispatch, the history API per variant and the decision-quality difference against the
figures computed again from each variant's raw records, sessions bound to a variant with
one stream per variant on one clock, and the 400 / 404 answers for bad and unknown names.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from chunker.batch.run import chunk_day
from chunker.format.keys import (
    DEFAULT_VARIANT,
    DayKeys,
    InvalidVariant,
    check_variant,
    classify_raw_key,
    date_of_pointer_key,
)
from functions.app.application import create_app
from synthetic import GeneratorSettings, generate_day
from tests.conftest import BUCKET, module_bucket
from tests.ground_truth import annotated, state_at, valid_rows
from tests.streaming import CONFIG, StreamReader, build_services, serve
from tests.test_decision_quality import truth

VARIANT = "nearest-first"
SLICE = GeneratorSettings(vehicles=14, flights=40, start_hour=8, hours=1)
OTHER = SLICE.model_copy(update={"variant": VARIANT, "dispatch_rule": "nearest_first"})
KEYS = DayKeys(SLICE.airport, SLICE.service_date.isoformat())
API = f"/api/replay/airports/{KEYS.airport}"
DAY = f"{API}/days/{KEYS.service_date}"
HOUR = 3_600_000
Row = dict[str, Any]


class Published:
    """The two variants' raw objects and what chunking them answered."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3
        self.raw = {
            DEFAULT_VARIANT: generate_day(SLICE).objects,
            VARIANT: generate_day(OTHER).objects,
        }
        for key, body in self.raw[DEFAULT_VARIANT].items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.default_alone = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
        for key, body in self.raw[VARIANT].items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        self.variant = chunk_day(
            s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG, variant=VARIANT
        )

    def rows(self, variant: str) -> tuple[dict[str, list[Row]], list[Row]]:
        """The variant's valid raw rows (no positions) and its annotated decisions."""
        keys = DayKeys(KEYS.airport, KEYS.service_date, variant)
        objects = {k: v for k, v in self.raw[variant].items() if "/positions" not in k}
        rows, day = valid_rows(objects, keys)
        return rows, annotated(rows, day, CONFIG.tick_ms)

    def raw_records(self, variant: str, kind: str) -> list[Row]:
        keys = DayKeys(KEYS.airport, KEYS.service_date, variant)
        body = gzip.decompress(self.raw[variant][keys.raw_file(kind)])
        return [orjson.loads(line) for line in body.splitlines()]


@pytest.fixture(scope="module")
def published() -> Iterator[Published]:
    with module_bucket() as s3:
        yield Published(s3)


@pytest.fixture(scope="module")
def client(published: Published) -> Iterator[TestClient]:
    with TestClient(create_app(build_services(published.s3))) as test_client:
        yield test_client


def test_variant_keys_leave_the_default_layout_as_it_was() -> None:
    default = DayKeys("XLHI", "2026-03-14")
    other = DayKeys("XLHI", "2026-03-14", "nearest-first")
    assert default.raw_file("tasks") == "raw/XLHI/2026-03-14/tasks.jsonl.gz"
    assert default.pointer == "published/XLHI/2026-03-14.json"
    assert default.chunk("0" * 16, 5) == "chunks/XLHI/2026-03-14/0000000000000000/c/5.json.zst"
    assert other.raw_file("tasks") == "raw/XLHI/2026-03-14/variants/nearest-first/tasks.jsonl.gz"
    assert other.pointer == "published/XLHI/2026-03-14/variants/nearest-first.json"
    assert other.manifest("0" * 16).startswith("chunks/XLHI/2026-03-14/variants/nearest-first/")
    assert other.quarantine("0" * 16, 3).startswith("quarantine/XLHI/2026-03-14/variants/")
    # Neither layout's listing mistakes the other's objects for its own.
    assert classify_raw_key(default, other.raw_file("tasks")) is None
    assert date_of_pointer_key("XLHI", other.pointer) is None
    assert date_of_pointer_key("XLHI", other.pointer, "nearest-first") == "2026-03-14"
    assert date_of_pointer_key("XLHI", default.pointer, "nearest-first") is None
    assert default.variant_of_pointer(other.pointer) == "nearest-first"
    assert default.variant_of_pointer(default.pointer) == DEFAULT_VARIANT
    for bad in ("", "Nearest", "-a", "a-", "a/b", "a" * 33, "../x", "a_b"):
        with pytest.raises(InvalidVariant):
            check_variant(bad)
    assert check_variant("a") == "a" and check_variant("v2-candidate") == "v2-candidate"


def test_each_variant_publishes_on_its_own_and_idempotently(published: Published) -> None:
    s3 = published.s3
    assert published.variant.variant == VARIANT and published.variant.published
    assert published.variant.version != published.default_alone.version
    # The variant's files under the day's raw prefix do not change the default's version.
    again = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG)
    assert again.already_published and again.version == published.default_alone.version
    rerun = chunk_day(s3, BUCKET, KEYS.airport, KEYS.service_date, CONFIG, variant=VARIANT)
    assert rerun.already_published and rerun.version == published.variant.version
    pointers = {
        o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="published/")["Contents"]
    }
    assert pointers == {KEYS.pointer, DayKeys(KEYS.airport, KEYS.service_date, VARIANT).pointer}


def test_the_variants_share_flights_tasks_and_fleet_not_dispatch(published: Published) -> None:
    def flights(variant: str) -> set[str]:
        return {r["flight_id"] for r in published.raw_records(variant, "flights")}

    def tasks(variant: str) -> dict[str, tuple[str, str]]:
        return {
            r["task_id"]: (r["flight_id"], r["task_type"])
            for r in published.raw_records(variant, "tasks")
        }

    assert flights(DEFAULT_VARIANT) == flights(VARIANT)
    # The same tasks of the same flights; the hour recorded holds the events that fell in
    # it, and when a task's events fall depends on who was sent.
    ours, theirs = tasks(DEFAULT_VARIANT), tasks(VARIANT)
    common = ours.keys() & theirs.keys()
    assert all(ours[t] == theirs[t] for t in common)
    assert len(common) >= 0.9 * max(len(ours), len(theirs))
    reference = f"{KEYS.raw_prefix}reference.json"
    other_reference = (
        f"{DayKeys(KEYS.airport, KEYS.service_date, VARIANT).raw_prefix}reference.json"
    )
    assert published.raw[DEFAULT_VARIANT][reference] == published.raw[VARIANT][other_reference]
    chosen = {
        variant: {
            r["task_id"]: r["vehicle_id"]
            for r in published.raw_records(variant, "decisions")
            if r["decision"] != "unassign"
        }
        for variant in (DEFAULT_VARIANT, VARIANT)
    }
    assert chosen[DEFAULT_VARIANT].keys() == chosen[VARIANT].keys()
    differ = [t for t in chosen[VARIANT] if chosen[VARIANT][t] != chosen[DEFAULT_VARIANT][t]]
    assert len(differ) >= 5, "another rule sends other vehicles"
    rules = {
        variant: {r["rule"] for r in published.raw_records(variant, "decisions")} - {"manual"}
        for variant in (DEFAULT_VARIANT, VARIANT)
    }
    assert rules == {DEFAULT_VARIANT: {"on_time_then_shortest_drive"}, VARIANT: {"nearest_first"}}


def test_history_lists_and_reads_each_variant(client: TestClient, published: Published) -> None:
    listed = client.get(f"{DAY}/variants").json()
    assert [v["variant"] for v in listed["variants"]] == [DEFAULT_VARIANT, VARIANT]
    assert [v["version"] for v in listed["variants"]] == [
        published.default_alone.version,
        published.variant.version,
    ]
    manifests = {
        name: client.get(f"{DAY}/manifest", params={"variant": name}).json()
        for name in (DEFAULT_VARIANT, VARIANT)
    }
    assert manifests[DEFAULT_VARIANT]["variant"] == DEFAULT_VARIANT
    assert manifests[VARIANT]["variant"] == VARIANT
    assert manifests[VARIANT]["version"] == published.variant.version
    assert client.get(f"{DAY}/manifest").json() == manifests[DEFAULT_VARIANT]
    # The state at one instant: each variant's vehicles where its own raw fixes put them.
    t = manifests[VARIANT]["start"] + 8 * HOUR + 40 * 60_000
    for name in (DEFAULT_VARIANT, VARIANT):
        state = client.get(f"{API}/state", params={"t": t, "variant": name}).json()
        keys = DayKeys(KEYS.airport, KEYS.service_date, name)
        rows, day = valid_rows(published.raw[name], keys)
        expected = state_at(rows, day, CONFIG.tick_ms, t)
        got = {v["id"]: (v["lat"], v["lon"]) for v in state["vehicles"]}
        assert got == {v["id"]: (v["lat"], v["lon"]) for v in expected["vehicles"]}, name


def test_decision_quality_per_variant_and_the_difference(
    client: TestClient, published: Published
) -> None:
    manifest = client.get(f"{DAY}/manifest").json()
    start = manifest["start"] + 8 * HOUR  # the slice: 08:00-09:00 local
    end = start + HOUR
    fleet = {v["vehicle_id"]: v["vehicle_type"] for v in manifest["catalogue"]["vehicles"]}
    expected = {}
    for name in (DEFAULT_VARIANT, VARIANT):
        rows, decisions = published.rows(name)
        expected[name] = truth(rows, decisions, fleet, start, end)
    params = {"start": start, "end": end, "variant": VARIANT, "compare": DEFAULT_VARIANT}
    response = client.get(f"{API}/decision-quality", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    mine, theirs = expected[VARIANT], expected[DEFAULT_VARIANT]
    assert {k: v for k, v in body.items() if k not in ("compare", "difference")} == {
        "variant": VARIANT,
        **mine,
    }
    assert body["compare"] == {"variant": DEFAULT_VARIANT, **theirs}
    for name, value in body["difference"].items():
        if mine[name] is None or theirs[name] is None:
            assert value is None, name
        else:
            assert value == pytest.approx(theirs[name] - mine[name], abs=1e-4), name
    # Nearest-first ignores lateness: it arrives later than the best candidate promised.
    assert mine["regret_mean_ms"] > 0 and mine["regret_mean_ms"] != theirs["regret_mean_ms"]
    assert body["difference"]["regret_mean_ms"] != 0


@pytest.mark.parametrize(
    "path, params",
    [
        ("/days/2026-03-14/manifest", {}),
        ("/state", {"t": 1_773_446_400_000}),
        ("/decision-quality", {"start": 1_773_446_400_000, "end": 1_773_450_000_000}),
    ],
)
def test_bad_variant_names_are_400_and_unknown_ones_404(
    client: TestClient, path: str, params: dict[str, Any]
) -> None:
    for bad in ("Nearest", "a/b", "x" * 40):
        answer = client.get(f"{API}{path}", params={**params, "variant": bad})
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("invalid-variant")
    unknown = client.get(f"{API}{path}", params={**params, "variant": "nobody"})
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    if path == "/decision-quality":
        same = client.get(f"{API}{path}", params={**params, "compare": "default"})
        assert same.status_code == 400
        other = client.get(f"{API}{path}", params={**params, "compare": "nobody"})
        assert other.status_code == 404


def test_a_session_plays_two_variants_on_one_clock(published: Published) -> None:
    """One session bound to the default variant, compared with ``nearest-first``: two
    streams of it, one per variant, snapshot the same instant with each variant's own
    vehicle positions; a stream may not ask for a variant the session does not play."""
    with (
        contextmanager(serve)(published.s3) as server,
        httpx.Client(base_url=server.url, headers={"X-Replay-User": "alice"}) as http,
    ):
        day = http.get(f"{DAY}/manifest").json()
        at = day["start"] + 8 * HOUR + 30 * 60_000
        body = {"airport": KEYS.airport, "start": at - HOUR // 2, "end": at + HOUR // 2}
        for bad, status in (
            ({"variant": "Bad"}, 400),
            ({"compare": "default"}, 400),
            ({"compare": "nobody"}, 404),
        ):
            answer = http.post("/api/replay/sessions", json=body | bad)
            assert answer.status_code == status, (bad, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        view = http.post(
            "/api/replay/sessions", json=body | {"position": at, "compare": VARIANT}
        ).json()
        assert (view["variant"], view["compare"]) == (DEFAULT_VARIANT, VARIANT)
        url = view["stream"]["url"]
        snapshots = {}
        for name in (DEFAULT_VARIANT, VARIANT):
            reader = StreamReader(http, f"{url}&variant={name}")
            try:
                events = reader.read_until(lambda e: e.event == "snapshot")
            finally:
                reader.close()
            snapshots[name] = orjson.loads(next(e for e in events if e.event == "snapshot").data)
        assert snapshots[DEFAULT_VARIANT]["t"] == snapshots[VARIANT]["t"]
        t = snapshots[VARIANT]["t"]
        for name, snapshot in snapshots.items():
            keys = DayKeys(KEYS.airport, KEYS.service_date, name)
            rows, day_of = valid_rows(published.raw[name], keys)
            expected = state_at(rows, day_of, CONFIG.tick_ms, t)["vehicles"]
            got = {v["id"]: (v["lat"], v["lon"]) for v in snapshot["vehicles"]}
            assert got == {v["id"]: (v["lat"], v["lon"]) for v in expected}, name
        assert snapshots[DEFAULT_VARIANT]["vehicles"] != snapshots[VARIANT]["vehicles"]
        for name, status in (("Bad", 400), ("nobody", 404)):
            answer = http.get(f"{url}&variant={name}")
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
