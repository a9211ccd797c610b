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

import httpx
import pytest
from fastapi.testclient import TestClient

from functions.app import create_app
from functions.leases import (
    StreamCapReached,
    live_leases,
    retry_after_s,
    session_key,
    user_key,
)
from functions.services import Services
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


def streams_of_one_session(server: Server) -> Counter[str]:
    """70 co-watchers of one session each open a stream (the cap per session is 64)."""
    watchers = [f"viewer-{index}" for index in range(70)]
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
        "70 co-watchers of one session open a stream each",
        streams_of_one_session,
        {"200": 64, "429 too-many-streams": 6},
        against="server",
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
