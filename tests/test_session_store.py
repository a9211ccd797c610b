"""The session store: batch reads (the stream poller), presence renewal, conditional writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from functions.app.dependencies import dynamodb_client, session_store
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.session_store import SessionStore
from functions.app.domain.sessions import (
    Filters,
    Session,
    SessionGone,
    VersionConflict,
    new_session_id,
    wall_now_ms,
)
from functions.local.stack import ensure_table
from tests.faults import Fault, FaultInjector

TABLE = "sessions-test"
START = 1_773_439_200_000
NOW = wall_now_ms()  # sessions are created now: the store refuses expired ones
NOW_S = NOW // 1000


def a_session(position: int = START, now: int = NOW, ttl_s: int = 86_400) -> Session:
    clock = PlaybackClock("paused", 1.0, position, 0, START, START + 3_600_000)
    return Session.new("alice", "XTST", clock, Filters(), now, 120_000, ttl_s)


@pytest.fixture
def store() -> Iterator[SessionStore]:
    with mock_aws():
        dynamodb = dynamodb_client()
        ensure_table(dynamodb, TABLE)
        yield SessionStore(dynamodb, TABLE)


def test_get_many_reads_more_than_one_request_holds_and_maps_absent_ids_to_none(
    store: SessionStore,
) -> None:
    stored = [a_session(START + i) for i in range(150)]  # two BatchGetItem requests
    for session in stored:
        store.create(session)
    missing = new_session_id()
    asked = [s.session_id for s in stored] + [missing, "not-an-id", stored[0].session_id]
    found = store.get_many(asked)
    assert set(found) == set(asked)
    assert found[missing] is None and found["not-an-id"] is None
    assert all(found[s.session_id] == store.get(s.session_id) == s for s in stored)


def test_get_many_leaves_out_what_dynamodb_left_unprocessed() -> None:
    dynamodb = dynamodb_client()
    store = SessionStore(dynamodb, TABLE)
    read, throttled, gone = a_session(), a_session(), a_session()
    key = {"session_id": {"S": throttled.session_id}}
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "batch_get_item",
            {
                "Responses": {TABLE: [read.to_item()]},
                "UnprocessedKeys": {TABLE: {"Keys": [key], "ConsistentRead": True}},
            },
        )
        found = store.get_many([read.session_id, throttled.session_id, gone.session_id])
    assert found == {read.session_id: read, gone.session_id: None}


def count_requests(store: SessionStore) -> list[str]:
    """The names of the DynamoDB operations ``store`` sends from now on."""
    sent: list[str] = []
    store.dynamodb.meta.events.register(
        "before-call.dynamodb", lambda model, **_: sent.append(model.name)
    )
    return sent


def test_renewing_presence_answers_the_stored_session_in_one_request(
    store: SessionStore,
) -> None:
    session = replace(a_session(), members=frozenset({"bob"}))
    store.create(session)
    sent = count_requests(store)
    until, expires = NOW + 500_000, NOW_S + 9_000
    renewed = store.renew_presence(session.session_id, until, expires, "alice")
    assert renewed == replace(session, presence_until=until, expires_at=expires)
    # Another viewer renewed further: presence never moves back; the stored item comes back.
    assert store.renew_presence(session.session_id, until - 100, expires - 1, "bob") == renewed
    # Someone who may not see it renews nothing and learns nothing.
    assert store.renew_presence(session.session_id, until + 100, expires + 1, "mallory") is None
    assert store.get(session.session_id) == renewed
    assert store.renew_presence(new_session_id(), until, expires, "alice") is None
    assert store.renew_presence("not-an-id", until, expires, "alice") is None
    assert sent == ["UpdateItem", "UpdateItem", "UpdateItem", "GetItem", "UpdateItem"]


def test_a_version_conflict_carries_the_stored_session_without_a_second_read(
    store: SessionStore,
) -> None:
    session = a_session()
    store.create(session)
    newer = session.changed(clock=session.clock.seek(5_000, START + 60_000), timeline=2)
    store.replace(newer, session.version)
    sent = count_requests(store)
    with pytest.raises(VersionConflict) as conflict:
        store.replace(session.changed(timeline=3), session.version)
    assert conflict.value.current == newer
    assert sent == ["PutItem"]
    store.delete(session.session_id)
    with pytest.raises(VersionConflict) as gone:
        store.replace(newer.changed(timeline=3), newer.version)
    assert gone.value.current is None


def test_the_pollers_reads_are_not_retried() -> None:
    """The production wiring: a throttled poll fails after one attempt, the poller retrying
    at its own interval (control-path requests are retried by botocore: the 5 attempts
    tests/test_faults.py counts)."""
    with mock_aws():
        store = session_store(TABLE)
        ensure_table(store.dynamodb, TABLE)
        faults = FaultInjector([store.dynamodb, store.polls])
        polls = faults.add(Fault("dynamodb.BatchGetItem", 400, "ThrottlingException"))
        with pytest.raises(ClientError):
            store.get_many([new_session_id()])
    assert polls.hits == 1


def test_of_racing_conditional_writes_exactly_one_wins(store: SessionStore) -> None:
    """Optimistic concurrency needs DynamoDB's atomic condition-and-write. moto alone checks
    and writes in two steps, so racers could both win (a lost update, seen in
    test_racing_controllers_never_lose_an_update); functions.local.moto_patch closes that gap for
    the local stack and the tests. Each round: two threads write over the same version."""
    session = a_session()
    store.create(session)
    rounds = 300
    barrier = threading.Barrier(2, timeout=30)
    wins = [0, 0]

    def racer(index: int) -> None:
        for round_ in range(rounds):
            barrier.wait()
            changed = replace(session, version=round_ + 2, updated_at=index)
            try:
                store.replace(changed, round_ + 1)
            except VersionConflict:
                pass
            else:
                wins[index] += 1
            barrier.wait()

    threads = [threading.Thread(target=racer, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(wins) == rounds, f"{sum(wins) - rounds} rounds had two winners"
    stored = store.get(session.session_id)
    assert stored is not None and stored.version == rounds + 1


def test_an_expired_session_is_refused_by_every_read_and_write(store: SessionStore) -> None:
    """DynamoDB's TTL sweep may leave an expired item for days: the store itself refuses
    it from ``expires_at`` on, one request each, and nothing moves ``expires_at`` again."""
    session = replace(a_session(now=NOW, ttl_s=300), members=frozenset({"bob"}))
    store.create(session)
    expires_ms = session.expires_at * 1000
    assert store.get(session.session_id, now_ms=expires_ms - 1) == session
    sent = count_requests(store)
    for reader in ("alice", "bob"):
        with pytest.raises(SessionGone):
            store.renew_presence(
                session.session_id, expires_ms + 120_000, NOW_S + 86_400, reader, expires_ms
            )
    assert store.renew_presence(session.session_id, expires_ms, NOW_S, "eve", expires_ms) is None
    with pytest.raises(SessionGone):
        store.get(session.session_id, now_ms=expires_ms)
    with pytest.raises(SessionGone):
        store.replace(session.changed(timeline=2), session.version, now_ms=expires_ms + 16_000)
    assert store.get_many([session.session_id], now_ms=expires_ms) == {session.session_id: None}
    assert sent == ["UpdateItem", "UpdateItem", "UpdateItem", "GetItem", "PutItem", "BatchGetItem"]
    assert store.get(session.session_id, now_ms=expires_ms - 1) == session  # untouched
