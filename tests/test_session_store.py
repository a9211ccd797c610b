"""The session store's batch read, which the stream's one poller per process relies on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.stub import Stubber
from moto import mock_aws

from functions.playback import PlaybackClock
from functions.services import dynamodb_client
from functions.sessions import Filters, Session, SessionStore, ensure_table, new_session_id

TABLE = "sessions-test"
START = 1_773_439_200_000


def a_session(position: int = START) -> Session:
    clock = PlaybackClock("paused", 1.0, position, 0, START, START + 3_600_000)
    return Session.new("alice", "XTST", clock, Filters(), 1_000, 120_000, 86_400)


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
