"""Abuse of sessions and tokens (#15 findings 4-7), as a table: attack, count, expected.

Each attack is what an outside attacker scripted against the running app, repeated
``count`` times; every attempt must end in the expected outcome (a status and problem
type, or a named behaviour) and nothing stored may change where the attack was refused.
docs/reliability.md ("Abuse: sessions and tokens") lists the same table with its figures.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient

from functions.app.application import create_app
from functions.app.dependencies import Services
from functions.app.domain.leases import (
    StreamCapReached,
    live_leases,
    retry_after_s,
    session_key,
    user_key,
)
from tests.streaming import Server, build_services, publish_tiny_day, serve
from tests.test_control_api import END, SESSIONS, START, Clock

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BOB = {"X-Replay-User": "bob"}
TTL_S = 900


@dataclass
class Target:
    """What an attack runs against: the app, its services, a clock the test moves."""

    api: TestClient
    services: Services
    clock: Clock

    def create(self, **overrides: Any) -> dict[str, Any]:
        body = {"airport": "XTST", "start": START, "end": END, **overrides}
        response = self.api.post(SESSIONS, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def stored(self, session_id: str) -> dict[str, Any]:
        """The raw item, read past the store (expired items included)."""
        store = self.services.sessions
        item: dict[str, Any] = store.dynamodb.get_item(
            TableName=store.table, Key={"session_id": {"S": session_id}}, ConsistentRead=True
        )["Item"]
        return item


def outcome(response: Any) -> str:
    """``"<status> <problem type>"``, or the status alone for a success."""
    if response.status_code < 400:
        return str(response.status_code)
    kind = response.json().get("type", "").rsplit("/", 1)[-1]
    return f"{response.status_code} {kind}"


@pytest.fixture
def target(s3: S3Client) -> Iterator[Target]:
    publish_tiny_day(s3)
    clock = Clock()
    services = build_services(s3, session_ttl_s=TTL_S)
    services.now_ms = clock
    with TestClient(create_app(services)) as api:
        yield Target(api, services, clock)


# --- 5: expired sessions stay gone ----------------------------------------------------------


def expired_session_requests(target: Target) -> Counter[str]:
    """16 s after ``expires_at``: read, control, presence, stream token, share, delete, join
    and stream open, by the owner and by a member; the item must not move."""
    owner_view = target.create()
    sid = owner_view["session_id"]
    path = f"{SESSIONS}/{sid}"
    share = target.api.post(f"{path}/shares").json()["share_token"]
    assert target.api.post(f"{SESSIONS}/join", json={"share_token": share}, headers=BOB).is_success
    carol_share = target.api.post(f"{path}/shares").json()["share_token"]
    before = target.stored(sid)
    target.clock.now = (int(before["expires_at"]["N"]) + 16) * 1000
    results: Counter[str] = Counter()
    for who in ({}, BOB):
        for response in (
            target.api.get(path, headers=who),
            target.api.post(f"{path}/control", json={"action": "play"}, headers=who),
            target.api.post(f"{path}/presence", headers=who),
            target.api.post(f"{path}/stream-token", headers=who),
            target.api.get(owner_view["stream"]["url"], headers=who),
        ):
            results[outcome(response)] += 1
    results[outcome(target.api.post(f"{path}/shares"))] += 1
    results[outcome(target.api.delete(path))] += 1
    joined = target.api.post(
        f"{SESSIONS}/join", json={"share_token": carol_share}, headers={"X-Replay-User": "carol"}
    )
    results[outcome(joined)] += 1
    # Someone who never could see it learns nothing new.
    results["stranger: " + outcome(target.api.get(path, headers={"X-Replay-User": "eve"}))] += 1
    assert target.stored(sid) == before, "a refused request changed the expired item"
    return results


# --- 4: concurrent streams are capped per user and per session ------------------------------


@pytest.fixture
def server(s3: S3Client) -> Iterator[Server]:
    """The app on uvicorn (streams stay open), with the default caps and a short lease."""
    publish_tiny_day(s3)
    yield from serve(s3, stream_lease_s=3)


def open_streams(server: Server, urls: list[str], hold: ExitStack) -> Counter[str]:
    """GET each stream URL in turn; the 200s stay open (in ``hold``), the rest must be
    problem+json with Retry-After."""
    client = hold.enter_context(httpx.Client(timeout=30))
    results: Counter[str] = Counter()
    for url in urls:
        response = hold.enter_context(client.stream("GET", url))
        if response.status_code != 200:
            response.read()
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
        results[outcome(response)] += 1
    return results


def streams_of_one_user(server: Server) -> Counter[str]:
    """One user opens 200 streams on 20 sessions (10 tokens each), holding every stream
    that opened; then closes one, and the next open succeeds once its lease is freed."""
    limit = server.services.settings.stream_max_per_user
    sessions = [server.new_session(START, END) for _ in range(20)]
    urls = [server.stream_url(session) for session in sessions for _ in range(10)]
    with ExitStack() as hold:
        results = open_streams(server, urls, hold)
        leases = server.services.stream_leases
        assert len(leases.held(user_key("alice"), server.services.now_ms())) == limit
    # Every stream closed: their leases are released (not left to lapse).
    wait_for(lambda: not leases.held(user_key("alice"), server.services.now_ms()))
    with ExitStack() as hold:
        results += open_streams(server, [server.stream_url(sessions[0])], hold)
    return results


@pytest.fixture
def small_server(s3: S3Client) -> Iterator[Server]:
    """As ``server``, with a cap of 6 streams per session (the default 64 costs 64 open
    streams to reach, in a suite that shares two cores)."""
    publish_tiny_day(s3)
    yield from serve(s3, stream_lease_s=3, stream_max_per_session=6)


def streams_of_one_session(server: Server) -> Counter[str]:
    """10 co-watchers of one session each open a stream (the cap per session is 6)."""
    watchers = [f"viewer-{index}" for index in range(10)]
    session = server.new_session(START, END)
    server.update(session.session_id, members=frozenset(watchers))
    with ExitStack() as hold:
        results = open_streams(
            server, [server.stream_url(session, subject) for subject in watchers], hold
        )
    leases = server.services.stream_leases
    wait_for(lambda: not leases.held(session_key(session.session_id), server.services.now_ms()))
    return results


def wait_for(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_leases_count_only_live_ones_and_retry_after_names_the_first_to_lapse() -> None:
    leases = {"a": 10_000, "b": 12_500, "c": 9_999}
    assert live_leases(leases, 9_999) == {"a": 10_000, "b": 12_500}
    assert live_leases(leases, 12_500) == {}
    assert retry_after_s(live_leases(leases, 9_999), 9_999) == 1
    assert retry_after_s({"b": 12_500}, 10_000) == 3
    assert retry_after_s({}, 10_000) == 1


def test_racing_opens_never_exceed_the_cap_and_lapsed_leases_free_places(
    target: Target,
) -> None:
    """20 opens at once for one user (cap 8), from 20 threads as from 20 Lambda
    environments: exactly 8 win. A process that died never releases: its leases stop
    counting once they lapse."""
    leases = replace_caps(target.services, per_user=8)
    now = target.clock.now
    barrier = threading.Barrier(20, timeout=30)
    won: list[object] = []
    refused: list[int] = []

    def opener(index: int) -> None:
        barrier.wait()
        try:
            won.append(leases.take("alice", f"s-{'x' * 20}{index:02d}", now))
        except StreamCapReached as exc:
            refused.append(exc.retry_after_s)

    threads = [threading.Thread(target=opener, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 8 and len(refused) == 12
    assert all(1 <= wait <= leases.lease_ms // 1000 for wait in refused)
    assert len(leases.held(user_key("alice"), now)) == 8
    lapsed = now + leases.lease_ms
    assert leases.held(user_key("alice"), lapsed) == {}
    assert leases.take("alice", "s-" + "y" * 20, lapsed) is not None


def test_the_first_co_watchers_of_a_new_session_all_win_their_places(target: Target) -> None:
    """Co-watchers open a session nobody streamed yet, at once (the load harness's 429): its
    lease item does not exist, so each open takes the read-and-create path, and only one
    create wins per round. Here another co-watcher's write always lands between an open's
    read and its write: once the item exists the open must get its place by the atomic
    add, not keep racing for a whole write until its attempts run out."""
    leases = replace_caps(target.services, per_user=0, per_session=64)
    now = target.clock.now
    session = "s-" + "n" * 22
    key = {"session_id": {"S": session_key(session)}}
    other = boto3.client("dynamodb")

    def a_co_watcher_writes_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("session_id") != key["session_id"]:
            return
        if "Item" not in other.get_item(TableName=leases.table, Key=key):
            item = {**key, "leases": {"M": {}}, "version": {"N": "1"}}
            other.put_item(TableName=leases.table, Item=item)
        else:
            other.update_item(
                TableName=leases.table,
                Key=key,
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    leases.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.PutItem", a_co_watcher_writes_first
    )
    taken = [leases.take(f"viewer-{i}", session, now) for i in range(20)]
    assert len({lease.stream_id for lease in taken}) == 20
    assert len(leases.held(session_key(session), now)) == 20


def test_opens_below_the_cap_win_however_busy_the_item_is(target: Target) -> None:
    """Co-watchers reconnect together (their streams reached the duration limit at the
    same moment): the session's lease item is written by every open and every release at
    once. An open below the cap must not lose to them. Here every other request lands
    between an open's read and its write (as 20 releases racing would): still no 429."""
    leases = replace_caps(target.services, per_user=0, per_session=8)
    now = target.clock.now
    session = "s-" + "c" * 22
    leases.release(leases.take("viewer-0", session, now))  # the item exists, empty
    other = boto3.client("dynamodb")

    def someone_else_writes_first(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("session_id", {}).get("S") == session_key(session):
            other.update_item(
                TableName=leases.table,
                Key={"session_id": {"S": session_key(session)}},
                UpdateExpression="ADD version :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    leases.dynamodb.meta.events.register(
        "provide-client-params.dynamodb.PutItem", someone_else_writes_first
    )
    taken = [leases.take(f"viewer-{i}", session, now) for i in range(1, 9)]
    assert len(leases.held(session_key(session), now)) == 8
    with pytest.raises(StreamCapReached):  # the cap still holds
        leases.take("viewer-9", session, now)
    for lease in taken:
        leases.release(lease)
    assert leases.held(session_key(session), now) == {}


def test_a_renewal_in_flight_when_its_stream_ends_does_not_bring_the_lease_back(
    target: Target,
) -> None:
    leases = target.services.stream_leases
    now = target.clock.now
    lease = leases.take("alice", "s-" + "r" * 22, now)
    leases.release(lease)  # the stream ended ...
    leases.renew(lease, now + 1_000)  # ... while its renewal was on its way
    assert leases.held(user_key("alice"), now + 1_000) == {}
    assert leases.held(session_key("s-" + "r" * 22), now + 1_000) == {}


def replace_caps(services: Services, **caps: int) -> Any:
    leases = services.stream_leases
    for name, value in caps.items():
        object.__setattr__(leases, name, value)
    return leases


# --- 6: membership is bounded, share tokens revocable, members removable -------------------


def one_token_many_joiners(target: Target) -> Counter[str]:
    """200 identities redeem one share token (the cap is 50): the item stays small. (The
    attack used 2,023; past the cap every further join is refused the same way.)"""
    sid = target.create()["session_id"]
    token = target.api.post(f"{SESSIONS}/{sid}/shares").json()["share_token"]
    results: Counter[str] = Counter()
    for index in range(200):
        joined = target.api.post(
            f"{SESSIONS}/join",
            json={"share_token": token},
            headers={"X-Replay-User": f"joiner-{index:04d}-" + "x" * 180},  # long subjects
        )
        results[outcome(joined)] += 1
    item_bytes = len(str(target.stored(sid)))
    assert item_bytes < 16_000, f"the session item grew to {item_bytes} bytes"
    return results


def revoked_and_removed(target: Target) -> Counter[str]:
    """The owner revokes share tokens and removes a member; then 20 identities try the
    revoked token, the removed member tries 4 routes, a member tries the owner's 3 routes."""
    view = target.create()
    path = f"{SESSIONS}/{view['session_id']}"
    old = target.api.post(f"{path}/shares").json()["share_token"]
    for who in ("bob", "carol"):
        joined = target.api.post(
            f"{SESSIONS}/join", json={"share_token": old}, headers={"X-Replay-User": who}
        )
        assert joined.status_code == 200
    assert target.api.get(f"{path}/members").json()["members"] == ["bob", "carol"]
    assert target.api.delete(f"{path}/shares").status_code == 204
    assert target.api.delete(f"{path}/members/bob").status_code == 204
    results: Counter[str] = Counter()
    for index in range(20):
        attempt = target.api.post(
            f"{SESSIONS}/join",
            json={"share_token": old},
            headers={"X-Replay-User": f"late-{index}"},
        )
        results["revoked token: " + outcome(attempt)] += 1
    for response in (
        target.api.get(path, headers=BOB),
        target.api.post(f"{path}/control", json={"action": "play"}, headers=BOB),
        target.api.post(f"{path}/presence", headers=BOB),
        target.api.get(view["stream"]["url"].replace("token=", "token=x"), headers=BOB),
    ):
        results["removed member: " + outcome(response)] += 1
    carol = {"X-Replay-User": "carol"}
    for response in (
        target.api.get(f"{path}/members", headers=carol),
        target.api.delete(f"{path}/shares", headers=carol),
        target.api.delete(f"{path}/members/bob", headers=carol),
    ):
        results["member as owner: " + outcome(response)] += 1
    # A token issued after the revocation works; carol may leave by herself.
    fresh = target.api.post(f"{path}/shares").json()["share_token"]
    rejoined = target.api.post(f"{SESSIONS}/join", json={"share_token": fresh}, headers=BOB)
    assert rejoined.status_code == 200
    assert target.api.delete(f"{path}/members/carol", headers=carol).status_code == 204
    assert target.api.get(f"{path}/members").json()["members"] == ["bob"]
    return results


# --- 7: the LOW findings ---------------------------------------------------------------------


def altered_tokens(target: Target) -> Counter[str]:
    """Four alterations of a valid stream token and of a valid share token: ``==`` or
    ``!!`` appended, padding restored, the ``+/`` alphabet."""
    view = target.create()
    share = target.api.post(f"{SESSIONS}/{view['session_id']}/shares").json()["share_token"]
    stream = view["stream"]["token"]
    # Both tokens must hold a '-' or '_' for the alphabet swap to alter them; re-issue
    # until they do (a token without one has nothing to swap).
    while not any(c in stream for c in "-_"):
        stream = target.api.post(f"{SESSIONS}/{view['session_id']}/stream-token").json()
        stream = stream["stream"]["token"]
        target.clock.now += 1_000
    while not any(c in share for c in "-_"):
        target.clock.now += 1_000
        share = target.api.post(f"{SESSIONS}/{view['session_id']}/shares").json()["share_token"]

    def alterations(token: str) -> list[str]:
        payload, signature = token.split(".")
        padded = signature + "=" * (-len(signature) % 4)
        return [
            token + "==",
            token + "!!",
            f"{payload}.{padded}" if padded != signature else f"{payload}=.{signature}",
            token.replace("-", "+").replace("_", "/"),
        ]

    results: Counter[str] = Counter()
    base = f"{SESSIONS}/{view['session_id']}/stream"
    for altered in alterations(stream):
        assert altered != stream
        results[outcome(target.api.get(base, params={"token": altered}))] += 1
    for altered in alterations(share):
        joined = target.api.post(f"{SESSIONS}/join", json={"share_token": altered}, headers=BOB)
        results[outcome(joined)] += 1
    return results


def lax_booleans(target: Target) -> Counter[str]:
    """``loop`` as "yes", "true", 1, 0 and "on", at create and in ``set_loop``."""
    view = target.create()
    results: Counter[str] = Counter()
    for value in ("yes", "true", 1, 0, "on"):
        body = {"airport": "XTST", "start": START, "end": END, "loop": value}
        results[outcome(target.api.post(SESSIONS, json=body))] += 1
        command = {"action": "set_loop", "loop": value}
        path = f"{SESSIONS}/{view['session_id']}/control"
        results[outcome(target.api.post(path, json=command))] += 1
    assert target.stored(view["session_id"])["version"] == {"N": "1"}
    return results


def non_utf8_bodies(target: Target) -> Counter[str]:
    """A valid create body in UTF-16 (LE, BE, with BOM) and UTF-32, and one that says
    ``charset=utf-16``: none is read as JSON."""
    text = f'{{"airport": "XTST", "start": {START}, "end": {END}}}'
    results: Counter[str] = Counter()
    for encoding in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        response = target.api.post(
            SESSIONS, content=text.encode(encoding), headers={"Content-Type": "application/json"}
        )
        results[outcome(response)] += 1
    labelled = target.api.post(
        SESSIONS,
        content=text.encode("utf-16"),
        headers={"Content-Type": "application/json; charset=utf-16"},
    )
    results[outcome(labelled)] += 1
    plain = target.api.post(
        SESSIONS, content=text.encode(), headers={"Content-Type": "application/json"}
    )
    results["utf-8: " + outcome(plain)] += 1
    return results


def racing_controllers_without_if_match(target: Target) -> Counter[str]:
    """20 controllers, 5 steps each, at once, none sending a version: none gets a 409 (it
    sent no version to conflict with); each step is applied exactly when it answered 200,
    and one that kept losing races for CONFLICT_BUDGET_S answers 503 session-busy with
    nothing changed. On this loaded 2-core machine about 1 in 5 does; see reliability.md."""
    view = target.create()
    path = f"{SESSIONS}/{view['session_id']}/control"
    barrier = threading.Barrier(20, timeout=30)
    results: Counter[str] = Counter()
    lock = threading.Lock()

    def controller() -> None:
        barrier.wait()
        for _ in range(5):
            response = target.api.post(path, json={"action": "step", "ticks": 1})
            with lock:
                results[outcome(response)] += 1

    threads = [threading.Thread(target=controller) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = target.api.get(f"{SESSIONS}/{view['session_id']}").json()
    applied = results["200"]
    assert final["version"] == 1 + applied and final["clock"]["position"] == START + applied * 1000
    assert set(results) <= {"200", "503 session-busy"}, results
    print(f"racing controllers: {dict(results)}")  # the figure in docs/reliability.md
    return Counter({"200 or 503 session-busy; applied iff 200": sum(results.values())})


def legacy_set_params_writes(target: Target) -> Counter[str]:
    """The legacy client's set-params with range, speed and filters: one write, one new version."""
    view = target.create()
    store = target.services.sessions
    sent: list[str] = []
    store.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )
    response = target.api.post(
        "/api/auto_dispatch/replay/set-params",
        json={
            "sessionId": view["session_id"],
            "startTime": START + 60_000,
            "endTime": END - 60_000,
            "playbackSpeed": 16,
            "filters": {"stands": ["S1"]},
        },
    )
    changed = response.json()
    assert changed["version"] == 2 and changed["clock"]["speed"] == 16
    assert changed["clock"]["range_start"] == START + 60_000
    assert changed["filters"]["stands"] == ["S1"]
    return Counter(name for name in sent if name in ("PutItem", "UpdateItem"))


def headers_and_methods(target: Target) -> Counter[str]:
    """What a browser and a cache see: the dashboard's security headers, no-store on
    every answer carrying a token, HEAD, and a CORS preflight from another origin."""
    api = target.api
    view = target.create()
    results: Counter[str] = Counter()
    for path in ("/", "/static/app.js", "/static/style.css"):
        headers = api.get(path).headers
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        results["dashboard: security headers"] += 1
    sid = view["session_id"]
    for response in (
        api.post(SESSIONS, json={"airport": "XTST", "start": START, "end": END}),
        api.get(f"{SESSIONS}/{sid}"),
        api.post(f"{SESSIONS}/{sid}/stream-token"),
        api.post(f"{SESSIONS}/{sid}/shares"),
        api.post(f"{SESSIONS}/{sid}/control", json={"action": "play"}),
        api.post("/api/auto_dispatch/replay/control", json={"sessionId": sid, "action": "pause"}),
    ):
        assert response.is_success and "token" in response.text
        assert response.headers["cache-control"] == "no-store"
        results["token answer: no-store"] += 1
    for path in ("/", "/healthz", "/static/app.js", f"{SESSIONS}/{sid}", "/api/replay/airports"):
        head = api.head(path)
        get = api.get(path)
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"]
        results[f"HEAD: {head.status_code}"] += 1
    stream_head = api.head(view["stream"]["url"])  # HEAD answers carry no body
    results[f"HEAD stream: {stream_head.status_code} {stream_head.headers.get('allow')}"] += 1
    return results


@dataclass(frozen=True)
class Attack:
    """One row of the table."""

    finding: str
    name: str
    run: Callable[[Any], Counter[str]]
    expected: dict[str, int]
    against: str = "target"  # the fixture it runs against


ATTACKS = [
    Attack(
        "5",
        "use an expired session (16 s past expires_at): owner and member, 13 routes",
        expired_session_requests,
        {"404 session-gone": 13, "stranger: 404 session-not-found": 1},
    ),
    Attack(
        "4",
        "one user opens 200 streams on 20 tokens, holding them; then one more after closing",
        streams_of_one_user,
        {"200": 9, "429 too-many-streams": 192},
        against="server",
    ),
    Attack(
        "4",
        "10 co-watchers of one session open a stream each (cap 6)",
        streams_of_one_session,
        {"200": 6, "429 too-many-streams": 4},
        against="small_server",
    ),
    Attack(
        "6",
        "200 identities redeem one share token",
        one_token_many_joiners,
        {"200": 50, "409 session-full": 150},
    ),
    Attack(
        "6",
        "revoked share token, removed member, member acting as owner",
        revoked_and_removed,
        {
            "revoked token: 403 invalid-share-token": 20,
            "removed member: 404 session-not-found": 3,
            "removed member: 401 invalid-stream-token": 1,
            "member as owner: 403 not-owner": 3,
        },
    ),
    Attack(
        "7",
        "altered stream and share tokens (==, !!, padding, +/ alphabet)",
        altered_tokens,
        {"401 invalid-stream-token": 4, "403 invalid-share-token": 4},
    ),
    Attack(
        "7",
        "loop as 'yes', 'true', 1, 0, 'on' (create and set_loop)",
        lax_booleans,
        {"422 validation-error": 10},
    ),
    Attack(
        "7",
        "JSON bodies in UTF-16/UTF-32, and labelled charset=utf-16",
        non_utf8_bodies,
        {"400 malformed-json": 4, "415 unsupported-media-type": 1, "utf-8: 201": 1},
    ),
    Attack(
        "7",
        "20 controllers x 5 steps at once without If-Match",
        racing_controllers_without_if_match,
        {"200 or 503 session-busy; applied iff 200": 100},
    ),
    Attack(
        "7",
        "seed set-params with range, speed and filters",
        legacy_set_params_writes,
        {"PutItem": 1},
    ),
    Attack(
        "7",
        "dashboard headers, no-store on token answers, HEAD",
        headers_and_methods,
        {
            "dashboard: security headers": 3,
            "token answer: no-store": 6,
            "HEAD: 200": 5,
            "HEAD stream: 405 GET": 1,
        },
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(request: pytest.FixtureRequest, attack: Attack) -> None:
    assert dict(attack.run(request.getfixturevalue(attack.against))) == attack.expected


def test_the_stream_function_may_do_to_lease_items_exactly_what_leases_do(
    target: Target,
) -> None:
    """IAM is not emulated here: the template's StreamLeases statement must allow exactly
    the requests a stream's leases make, on keys its LeadingKeys condition admits."""
    from tests.test_template import FUNCTIONS, _statements

    leases = target.services.stream_leases
    sent: list[tuple[str, str]] = []
    leases.dynamodb.meta.events.register(
        "provide-client-params.dynamodb",
        lambda params, model, **_: sent.append(
            (model.name, (params.get("Key") or params.get("Item"))["session_id"]["S"])
        ),
    )
    now = target.clock.now
    lease = leases.take("alice", "s-" + "z" * 22, now)
    leases.renew(lease, now + 1_000)
    leases.release(lease)
    (statement,) = [
        s for s in _statements(FUNCTIONS["StreamFunction"]) if s["Sid"] == "StreamLeases"
    ]
    assert {f"dynamodb:{name}" for name, _ in sent} == set(statement["Action"])
    (pattern,) = statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert all(key.startswith(pattern.removesuffix("*")) for _, key in sent)


def test_readiness_reports_the_store_liveness_does_not(target: Target) -> None:
    """After the local store restarts empty (the table is gone) every request fails: the
    readiness probe says so and names it, while liveness stays up (a restart would not
    bring the table back)."""
    assert target.api.get("/readyz").json() == {
        "status": "ready",
        "checks": {"sessions_table": "ok", "bucket": "ok"},
    }
    store = target.services.sessions
    store.dynamodb.delete_table(TableName=store.table)
    response = target.api.get("/readyz")
    assert outcome(response) == "503 not-ready"
    assert response.json()["checks"] == {
        "sessions_table": "ResourceNotFoundException",
        "bucket": "ok",
    }
    assert response.headers["retry-after"] == "5"
    assert target.api.get("/healthz").json() == {"status": "ok"}


def test_a_rejected_cors_preflight_is_problem_json(s3: S3Client) -> None:
    publish_tiny_day(s3)
    app = create_app(build_services(s3, cors_origins=["https://replay.example.com"]))
    with TestClient(app) as client:
        refused = client.options(
            SESSIONS,
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert outcome(refused) == "400 cors-rejected"
        assert refused.headers["content-type"] == "application/problem+json"
        assert "access-control-allow-origin" not in refused.headers
        assert "origin" in refused.json()["detail"]


def test_an_action_that_loses_every_race_is_503_session_busy_and_changes_nothing(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    from functions.app.control import actions as service
    from functions.app.domain.sessions import VersionConflict

    view = target.create()
    store = target.services.sessions
    current = store.get(view["session_id"], now_ms=target.clock.now)

    def always_beaten(*_: object, **__: object) -> None:
        raise VersionConflict(current)

    monkeypatch.setattr(service, "CONFLICT_BUDGET_S", 0.0)
    monkeypatch.setattr(store, "replace", always_beaten)
    response = target.api.post(f"{SESSIONS}/{view['session_id']}/control", json={"action": "play"})
    assert outcome(response) == "503 session-busy" and response.headers["retry-after"] == "1"
    monkeypatch.undo()
    assert target.stored(view["session_id"])["version"] == {"N": "1"}


def test_the_apps_storage_clients_give_up_well_inside_api_gateways_30_s() -> None:
    """Worst case of one call, every attempt stalled: attempts x (connect + read)
    timeouts. The app's S3 client used to allow 5 x 30 s; DynamoDB's 5 x 5 s."""
    from functions.app.dependencies import app_s3_client, dynamodb_client

    for client in (app_s3_client(), dynamodb_client()):
        config = client.meta.config
        attempts = config.retries["total_max_attempts"]
        assert attempts * (config.connect_timeout + config.read_timeout) <= 21, client


def test_a_removed_members_open_stream_ends_the_owners_goes_on(server: Server) -> None:
    from tests.streaming import StreamReader

    session = server.new_session(START, END, state="playing")
    server.update(session.session_id, members=frozenset({"bob"}))
    with httpx.Client(timeout=30) as client:
        owner = StreamReader(client, server.stream_url(session))
        member = StreamReader(client, server.stream_url(session, "bob"))
        try:
            for reader in (owner, member):
                reader.read_until(lambda event: event.event == "playback")
            removed = client.delete(
                f"{server.url}{SESSIONS}/{session.session_id}/members/bob",
                headers={"X-Replay-User": "alice"},
            )
            assert removed.status_code == 204
            events = member.read_to_end()
            assert events[-1].event == "error"
            assert events[-1].json()["code"] == "access_revoked"
            seen = len(owner.events)
            owner.read_until(lambda event: event.event == "playback", since=seen)
        finally:
            owner.close()
            member.close()


def test_a_cap_of_zero_takes_no_lease(target: Target) -> None:
    leases = replace_caps(target.services, per_user=0, per_session=2)
    now = target.clock.now
    lease = leases.take("alice", "s-" + "q" * 22, now)
    assert lease.keys == (session_key("s-" + "q" * 22),)
    assert leases.held(user_key("alice"), now) == {}
