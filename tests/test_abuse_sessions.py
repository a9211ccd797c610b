"""Abuse of sessions and tokens (#15 findings 4-7), as a table: attack, count, expected.

Each attack is what an outside attacker scripted against the running app, repeated
``count`` times; every attempt must end in the expected outcome (a status and problem
type, or a named behaviour) and nothing stored may change where the attack was refused.
docs/reliability.md ("Abuse: sessions and tokens") lists the same table with its figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from functions.app import create_app
from functions.services import Services
from tests.streaming import build_services, publish_tiny_day
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


@dataclass(frozen=True)
class Attack:
    """One row of the table."""

    finding: str
    name: str
    run: Callable[[Target], Counter[str]]
    expected: dict[str, int]


ATTACKS = [
    Attack(
        "5",
        "use an expired session (16 s past expires_at): owner and member, 13 routes",
        expired_session_requests,
        {"404 session-gone": 13, "stranger: 404 session-not-found": 1},
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(target: Target, attack: Attack) -> None:
    assert dict(attack.run(target)) == attack.expected
