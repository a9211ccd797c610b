"""The control API through HTTP: sessions, control actions, errors, ownership, sharing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from chunker.format.day import ServiceDay
from functions.app.application import create_app
from functions.app.dependencies import Services
from functions.local import openapi
from tests.streaming import build_services, publish_tiny_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")
START = DAY.start_ms + 1_800_000  # 00:30 local
END = DAY.start_ms + 2 * 3_600_000  # 02:00 local
SESSIONS = "/api/replay/sessions"
BOB = {"X-Replay-User": "bob"}
CAROL = {"X-Replay-User": "carol"}


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(s3: S3Client, clock: Clock) -> Services:
    publish_tiny_day(s3)
    built = build_services(s3, max_body_bytes=4096)
    built.now_ms = clock
    return built


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


def create(api: TestClient, **overrides: Any) -> dict[str, Any]:
    body = {"airport": "XTST", "start": START, "end": END, **overrides}
    response = api.post(SESSIONS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def control(api: TestClient, session: dict[str, Any], **body: Any) -> Any:
    return api.post(f"{SESSIONS}/{session['session_id']}/control", json=body)


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"]
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def test_create_read_and_delete(api: TestClient) -> None:
    response = api.post(
        SESSIONS,
        json={
            "airport": "XTST",
            "start": "2026-03-14T00:30:00+08:00",
            "end": "2026-03-14T02:00:00+08:00",
            "speed": 8,
            "filters": {"vehicle_types": ["fuel_truck"]},
        },
    )
    assert response.status_code == 201
    session = response.json()
    assert response.headers["Location"] == f"{SESSIONS}/{session['session_id']}"
    assert response.headers["ETag"] == '"1"'
    assert session["clock"]["range_start"] == START and session["clock"]["range_end"] == END
    assert session["clock"]["position"] == START and session["clock"]["state"] == "paused"
    assert session["clock"]["speed"] == 8.0 and session["version"] == 1
    assert session["filters"]["vehicle_types"] == ["fuel_truck"]
    assert session["role"] == "owner" and session["owner"] == "local-user"
    assert f"/api/replay/sessions/{session['session_id']}/stream?token=" in session["stream"]["url"]

    read = api.get(f"{SESSIONS}/{session['session_id']}")
    assert read.status_code == 200 and read.json()["version"] == 1
    assert api.delete(f"{SESSIONS}/{session['session_id']}").status_code == 204
    assert_problem(api.get(f"{SESSIONS}/{session['session_id']}"), 404, "session-not-found")
    assert_problem(api.delete(f"{SESSIONS}/{session['session_id']}"), 404)


def test_playback_clock_follows_control_actions(api: TestClient, clock: Clock) -> None:
    session = create(api, speed=4)
    playing = control(api, session, action="play").json()
    assert playing["clock"]["state"] == "playing" and playing["version"] == 2
    clock.now += 10_000
    now = api.get(f"{SESSIONS}/{session['session_id']}").json()["clock"]
    assert now["position"] == START + 40_000  # 10 s of wall time at 4x
    # A speed change does not make the position jump.
    faster = control(api, session, action="set_speed", speed=64).json()["clock"]
    assert faster["position"] == START + 40_000 and faster["speed"] == 64.0
    clock.now += 1_000
    assert api.get(f"{SESSIONS}/{session['session_id']}").json()["clock"]["position"] == (
        START + 40_000 + 64_000
    )
    paused = control(api, session, action="pause").json()
    clock.now += 60_000
    assert (
        api.get(f"{SESSIONS}/{session['session_id']}").json()["clock"]["position"]
        == (paused["clock"]["position"])
    )
    stepped = control(api, session, action="step", ticks=3).json()
    assert stepped["clock"]["position"] == paused["clock"]["position"] + 3_000
    assert stepped["timeline"] == paused["timeline"] + 1
    back = control(api, session, action="step", ticks=-1).json()
    assert back["clock"]["position"] == paused["clock"]["position"] + 2_000
    seeked = control(api, session, action="seek", position="2026-03-14T01:00:00+08:00").json()
    assert seeked["clock"]["position"] == DAY.start_ms + 3_600_000
    ranged = control(api, session, action="set_range", start=START, end=START + 600_000).json()
    assert ranged["clock"]["position"] == START + 599_999  # clamped into the new range
    filtered = control(api, session, action="set_filters", filters={"stands": ["S1"]}).json()
    assert filtered["filters"]["stands"] == ["S1"] and filtered["timeline"] > ranged["timeline"]
    looped = control(api, session, action="set_loop", loop=True).json()
    assert looped["clock"]["loop"] is True


def test_playing_to_the_end_reports_ended_and_play_restarts(api: TestClient, clock: Clock) -> None:
    session = create(api, speed=1024, state="playing")
    clock.now += 3_600_000
    assert api.get(f"{SESSIONS}/{session['session_id']}").json()["clock"]["status"] == "ended"
    restarted = control(api, session, action="play").json()["clock"]
    assert restarted["position"] == START and restarted["status"] == "playing"


@pytest.mark.parametrize("speed", [1 / 16, 1, 1024, 4096])
def test_speeds_in_bounds_are_accepted(api: TestClient, speed: float) -> None:
    session = create(api)
    assert control(api, session, action="set_speed", speed=speed).json()["clock"]["speed"] == speed


@pytest.mark.parametrize("speed", [0, 0.05, 5000, -1, "fast", True, None])
def test_speeds_out_of_bounds_or_of_the_wrong_type_are_refused(api: TestClient, speed: Any) -> None:
    session = create(api)
    assert_problem(control(api, session, action="set_speed", speed=speed), 422)
    assert_problem(
        api.post(SESSIONS, json={"airport": "XTST", "start": START, "end": END, "speed": speed}),
        422,
    )
    assert api.get(f"{SESSIONS}/{session['session_id']}").json()["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"action": "seek", "position": END},  # outside the range: rejected, not clamped
        {"action": "seek", "position": START - 1},
        {"action": "seek", "position": "yesterday"},
        {"action": "seek", "position": "2026-03-14T01:00:00"},  # no offset
        {"action": "set_range", "start": END, "end": START},
        {"action": "set_range", "start": START, "end": START},
        {"action": "step", "ticks": 1},  # only while paused (this session plays)
        {"action": "step", "ticks": 100_000},
        {"action": "rewind"},
        {"action": "play", "surprise": 1},
        {},
    ],
)
def test_bad_commands_are_refused_and_change_nothing(api: TestClient, body: dict[str, Any]) -> None:
    session = create(api, state="playing")
    assert_problem(control(api, session, **body), 422)
    after = api.get(f"{SESSIONS}/{session['session_id']}").json()
    assert after["version"] == 1 and after["timeline"] == 1


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"airport": "XTST", "start": END, "end": START}, 422, "invalid-playback"),
        ({"airport": "XTST", "start": START, "end": START}, 422, "invalid-playback"),
        ({"airport": "XTST", "start": START, "end": START + 8 * 86_400_000}, 422, None),
        ({"airport": "XTST", "start": "soon", "end": END}, 422, "validation-error"),
        ({"airport": "xtst", "start": START, "end": END}, 422, "validation-error"),
        ({"airport": "XNOP", "start": START, "end": END}, 404, "not-published"),
        ({"airport": "XTST", "start": START, "end": DAY.end_ms + 3_600_000}, 404, "not-published"),
        ({"airport": "XTST", "start": START}, 422, "validation-error"),
        ({"airport": "XTST", "start": START, "end": END, "colour": "red"}, 422, None),
    ],
)
def test_bad_session_requests_are_refused(
    api: TestClient, body: dict[str, Any], status: int, slug: str | None
) -> None:
    assert_problem(api.post(SESSIONS, json=body), status, slug)


def test_malformed_json_and_oversized_bodies(api: TestClient) -> None:
    headers = {"Content-Type": "application/json"}
    assert_problem(
        api.post(SESSIONS, content=b'{"airport": ', headers=headers), 400, "malformed-json"
    )
    big = b'{"airport": "XTST", "pad": "' + b"x" * 5000 + b'"}'
    assert_problem(api.post(SESSIONS, content=big, headers=headers), 413, "payload-too-large")

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while reading
        yield big

    assert_problem(api.post(SESSIONS, content=chunked(), headers=headers), 413)


def test_every_answer_is_logged_once_with_its_request_id(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    big = b'{"airport": "XTST", "pad": "' + b"x" * 5000 + b'"}'
    answers = [
        api.post(SESSIONS, json={"airport": "XTST"}, headers={"X-Request-Id": "mine-1"}),
        api.post(SESSIONS, content=big, headers={"Content-Type": "application/json"}),  # 413
        api.get(f"{SESSIONS}/nope"),  # 404
    ]
    logged = [record.__dict__ for record in caplog.records if record.getMessage() == "request"]
    assert [(entry["status"], entry["method"]) for entry in logged] == [
        (answers[0].status_code, "POST"),
        (413, "POST"),
        (404, "GET"),
    ]
    assert answers[0].headers["X-Request-Id"] == "mine-1" == logged[0]["request_id"]
    for answer, entry in zip(answers[1:], logged[1:], strict=True):
        assert len(answer.headers["X-Request-Id"]) == 32 == len(entry["request_id"])
        assert answer.headers["X-Request-Id"] == entry["request_id"]


def test_unknown_or_malformed_session_ids_are_404(api: TestClient) -> None:
    for session_id in ("s-" + "A" * 24, "nope", "s-../../etc"):
        assert_problem(api.get(f"{SESSIONS}/{session_id}"), 404)
        response = api.post(f"{SESSIONS}/{session_id}/control", json={"action": "play"})
        assert_problem(response, 404)


def test_stale_version_gets_409_with_the_current_session(api: TestClient) -> None:
    session = create(api)
    assert control(api, session, action="play", expected_version=1).status_code == 200
    conflict = assert_problem(
        control(api, session, action="seek", position=START + 5_000, expected_version=1),
        409,
        "version-conflict",
    )
    assert (
        conflict["current"]["version"] == 2 and conflict["current"]["clock"]["state"] == "playing"
    )
    by_header = api.post(
        f"{SESSIONS}/{session['session_id']}/control",
        json={"action": "pause"},
        headers={"If-Match": '"1"'},
    )
    assert_problem(by_header, 409)
    ok = api.post(
        f"{SESSIONS}/{session['session_id']}/control",
        json={"action": "pause"},
        headers={"If-Match": 'W/"2"'},
    )
    assert ok.status_code == 200 and ok.headers["ETag"] == '"3"'
    bad = api.post(
        f"{SESSIONS}/{session['session_id']}/control",
        json={"action": "pause"},
        headers={"If-Match": "*"},
    )
    assert_problem(bad, 400)


def test_a_retried_command_is_applied_once(api: TestClient) -> None:
    session = create(api)
    first = control(api, session, action="step", ticks=5, command_id="c-1").json()
    again = control(api, session, action="step", ticks=5, command_id="c-1").json()
    assert again["version"] == first["version"] == 2
    assert again["clock"]["position"] == START + 5_000
    # Idempotent by value even without a command id.
    control(api, session, action="pause")
    assert control(api, session, action="pause").json()["clock"]["position"] == START + 5_000


def test_racing_controllers_never_lose_an_update(api: TestClient, services: Services) -> None:
    session = create(api)
    errors: list[str] = []

    def controller(ticks: int) -> None:
        for _ in range(15):
            response = control(api, session, action="step", ticks=ticks)
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=controller, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    final = api.get(f"{SESSIONS}/{session['session_id']}").json()
    assert final["version"] == 1 + 30
    assert final["clock"]["position"] == START + 15 * 1_000 + 15 * 2_000  # every step applied


def test_with_expected_versions_exactly_one_racer_wins(api: TestClient) -> None:
    session = create(api)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def racer(position: int) -> None:
        barrier.wait()
        response = control(api, session, action="seek", position=position, expected_version=1)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=racer, args=(START + n * 1000,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]
    assert api.get(f"{SESSIONS}/{session['session_id']}").json()["version"] == 2


def test_sessions_are_private_until_shared(api: TestClient) -> None:
    session = create(api)
    path = f"{SESSIONS}/{session['session_id']}"
    assert_problem(api.get(path, headers=BOB), 404)
    assert_problem(api.post(f"{path}/control", json={"action": "play"}, headers=BOB), 404)
    assert_problem(api.post(f"{path}/shares", headers=BOB), 404)

    share = api.post(f"{path}/shares")
    assert share.status_code == 201
    token = share.json()["share_token"]
    joined = api.post(f"{SESSIONS}/join", json={"share_token": token}, headers=BOB)
    assert joined.status_code == 200 and joined.json()["role"] == "member"
    assert api.post(f"{path}/control", json={"action": "play"}, headers=BOB).status_code == 200
    assert api.get(path).json()["clock"]["state"] == "playing"  # the owner sees bob's play
    assert api.get(path).json()["members"] == 1
    assert_problem(api.post(f"{path}/shares", headers=BOB), 403, "not-owner")
    assert_problem(api.delete(path, headers=BOB), 403, "not-owner")
    assert_problem(api.get(path, headers=CAROL), 404)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_problem(api.post(f"{SESSIONS}/join", json={"share_token": forged}, headers=CAROL), 403)


def test_presence_renewal(api: TestClient, clock: Clock) -> None:
    session = create(api)
    clock.now += 60_000
    response = api.post(f"{SESSIONS}/{session['session_id']}/presence")
    assert response.status_code == 200
    assert response.json()["presence_until"] == clock.now + 120_000
    assert api.get(f"{SESSIONS}/{session['session_id']}").json()["version"] == 1
    assert_problem(api.post(f"{SESSIONS}/{session['session_id']}/presence", headers=BOB), 404)


def test_stream_token_route_gives_a_fresh_token(api: TestClient, clock: Clock) -> None:
    session = create(api)
    clock.now += 5_000
    fresh = api.post(f"{SESSIONS}/{session['session_id']}/stream-token").json()["stream"]
    assert fresh["expires_at"] == clock.now // 1000 + 900
    assert fresh["token"] != session["stream"]["token"]


def test_jwt_mode_needs_the_authorizer_claims(s3: S3Client) -> None:
    publish_tiny_day(s3)
    with TestClient(create_app(build_services(s3, auth_mode="jwt"))) as client:
        response = client.post(SESSIONS, json={"airport": "XTST", "start": START, "end": END})
        assert_problem(response, 401, "unauthenticated")


def test_legacy_control_and_set_params_map_onto_the_same_session(api: TestClient) -> None:
    session = create(api)
    sid = session["session_id"]
    base = "/api/auto_dispatch/replay"
    played = api.post(f"{base}/control", json={"sessionId": sid, "action": "play"})
    assert played.status_code == 200 and played.json()["clock"]["state"] == "playing"
    jumped = api.post(
        f"{base}/control",
        json={"sessionId": sid, "action": "jump", "time": "2026-03-14T01:00:00+08:00"},
    ).json()
    assert jumped["clock"]["position"] == DAY.start_ms + 3_600_000
    assert_problem(api.post(f"{base}/control", json={"sessionId": sid, "action": "jump"}), 422)
    params = api.post(
        f"{base}/set-params",
        json={
            "sessionId": sid,
            "startTime": "2026-03-14T00:45:00+08:00",
            "endTime": "2026-03-14T01:30:00+08:00",
            "playbackSpeed": 32,
            "filters": {"task_types": ["refuel"]},
        },
    ).json()
    assert params["clock"]["range_start"] == DAY.start_ms + 2_700_000
    assert params["clock"]["speed"] == 32.0 and params["filters"]["task_types"] == ["refuel"]
    assert_problem(api.post(f"{base}/set-params", json={"sessionId": sid, "playbackSpeed": 0}), 422)
    assert_problem(api.post(f"{base}/control", json={"sessionId": "s-nope", "action": "play"}), 404)


def test_openapi_is_published(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert "/api/replay/sessions/{session_id}/control" in schema["paths"]
    assert "/api/auto_dispatch/replay/stream" in schema["paths"]
    assert "Problem" in schema["components"]["schemas"]
    assert api.get("/docs").status_code == 200


def test_committed_openapi_schema_is_current(api: TestClient) -> None:
    committed = (Path(__file__).parent.parent / "docs" / "openapi.json").read_text()
    assert committed == openapi.render(), "run `dispatch-replay openapi` and commit the result"
    assert api.get("/openapi.json").json() == json.loads(committed)


def test_cors_answers_only_the_allowed_origin(s3: S3Client) -> None:
    publish_tiny_day(s3)
    allowed = "https://replay.example.com"
    app = create_app(build_services(s3, cors_origins=[allowed]))
    with TestClient(app) as client:
        preflight = {"Access-Control-Request-Method": "POST"}
        ok = client.options(SESSIONS, headers={"Origin": allowed, **preflight})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        evil = client.options(SESSIONS, headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in evil.headers
        read = client.get("/api/replay/airports", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in read.headers


def test_logs_carry_no_tokens(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    session = create(api)
    share = api.post(f"{SESSIONS}/{session['session_id']}/shares").json()["share_token"]
    api.post(f"{SESSIONS}/join", json={"share_token": share}, headers=BOB)
    stream_url = session["stream"]["url"]
    api.get(stream_url.replace("token=", "token=x"))  # a refused stream request is logged too
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert "request" in logged
    assert session["stream"]["token"] not in logged
    assert share not in logged
    assert "token=" not in logged


def _vocabulary() -> list[type[Exception]]:
    """Every DomainError subclass the app defines (imported with it)."""
    from functions.app.domain.errors import DomainError

    found: list[type[Exception]] = []
    pending: list[type[Exception]] = [DomainError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def test_every_error_of_the_vocabulary_is_documented() -> None:
    """Each slug (HTTP) and each stream error code (SSE) an error can carry is in the
    table a client reads, docs/api.md; and every domain error names itself completely."""
    from functions.app.domain.errors import FOREIGN, STREAM_FAILED

    api_md = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    subclasses = _vocabulary()
    assert {cls.__name__ for cls in subclasses} >= {
        "SessionNotFound",
        "SessionGone",
        "VersionConflict",
        "StreamCapReached",
        "InvalidStreamToken",
        "InvalidShareToken",
        "NotOwner",
        "SessionBusy",
    }
    for cls in subclasses:
        assert isinstance(cls.status, int) and 400 <= cls.status < 600, cls  # type: ignore[attr-defined]
        assert cls.title, cls  # type: ignore[attr-defined]
    slugs = {cls.slug for cls in subclasses} - {"invalid-token"}  # type: ignore[attr-defined]
    slugs |= {kind.slug for _, kind in FOREIGN}
    for slug in slugs:
        assert f"`{slug}`" in api_md, slug
    codes = {cls.event_code for cls in subclasses if cls.event_code}  # type: ignore[attr-defined]
    codes |= {kind.event_code for _, kind in FOREIGN if kind.event_code} | {STREAM_FAILED}
    for code in codes:
        assert f"| `{code}` |" in api_md, code
