"""Bookmarks and notes shared by a session (issue #19 item 5), through the HTTP API.

Stored with the session in DynamoDB (in-process moto): conditional writes, bounded count
and size, problem+json for bad input, visible to every member, deleted only by their
author or the owner. The browser side (two contexts, live) is in test_dashboard_defects.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from chunker.format.day import ServiceDay
from functions.app.application import create_app
from functions.app.domain.bookmarks import MAX_BOOKMARKS, MAX_NOTE_CHARS
from tests.streaming import build_services, publish_tiny_day

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DAY = ServiceDay.of("2026-03-14", "Asia/Shanghai")
START = DAY.start_ms + 1_800_000
END = DAY.start_ms + 2 * 3_600_000
SESSIONS = "/api/replay/sessions"
BOB = {"X-Replay-User": "bob"}
CAROL = {"X-Replay-User": "carol"}


@pytest.fixture
def api(s3: S3Client) -> Iterator[TestClient]:
    publish_tiny_day(s3)
    with TestClient(create_app(build_services(s3))) as client:
        yield client


@pytest.fixture
def shared(api: TestClient) -> str:
    """A session of the default user that bob joined."""
    created = api.post(SESSIONS, json={"airport": "XTST", "start": START, "end": END})
    sid: str = created.json()["session_id"]
    token = api.post(f"{SESSIONS}/{sid}/shares").json()["share_token"]
    assert api.post(f"{SESSIONS}/join", json={"share_token": token}, headers=BOB).status_code == 200
    return sid


def problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


def test_a_bookmark_is_seen_by_everybody_in_the_session(api: TestClient, shared: str) -> None:
    before = api.get(f"{SESSIONS}/{shared}", headers=BOB).json()
    body = {
        "at": START + 60_000,
        "text": "  refuel late at 103  ",
        "selection": {"vehicle_id": "V00"},
    }
    made = api.post(f"{SESSIONS}/{shared}/bookmarks", json=body)
    assert made.status_code == 201, made.text
    bookmark = made.json()
    assert bookmark["author"] == "local-user" and bookmark["text"] == "refuel late at 103"
    assert bookmark["at"] == START + 60_000 and bookmark["selection"]["vehicle_id"] == "V00"
    ranged = api.post(
        f"{SESSIONS}/{shared}/bookmarks",
        json={"at": START, "end": START + 600_000, "text": "the bank"},
        headers=BOB,
    )
    assert ranged.status_code == 201 and ranged.json()["author"] == "bob"
    for headers in ({}, BOB):
        listed = api.get(f"{SESSIONS}/{shared}/bookmarks", headers=headers).json()
        assert [b["text"] for b in listed["bookmarks"]] == ["refuel late at 103", "the bank"]
        assert listed["limit"] == MAX_BOOKMARKS
    after = api.get(f"{SESSIONS}/{shared}", headers=BOB).json()
    assert after["bookmarks_revision"] == before["bookmarks_revision"] + 2 == listed["revision"]
    assert after["version"] == before["version"] + 2  # conditional writes, like every change
    assert after["clock"] == {
        **before["clock"],
        "server_time": after["clock"]["server_time"],
        "position": after["clock"]["position"],
    }
    # Someone outside the session sees nothing of it.
    problem(api.get(f"{SESSIONS}/{shared}/bookmarks", headers=CAROL), 404, "session-not-found")
    problem(
        api.post(f"{SESSIONS}/{shared}/bookmarks", json=body, headers=CAROL),
        404,
        "session-not-found",
    )


def test_bad_bookmarks_are_refused_with_problem_json_and_nothing_is_stored(
    api: TestClient, shared: str
) -> None:
    url = f"{SESSIONS}/{shared}/bookmarks"
    cases = [
        ({"at": START, "text": ""}, 422, "validation-error"),
        ({"at": START, "text": "   "}, 422, "validation-error"),
        ({"at": START, "text": "x" * (MAX_NOTE_CHARS + 1)}, 422, "validation-error"),
        ({"at": START + 5, "end": START + 5, "text": "empty range"}, 422, "validation-error"),
        ({"at": START, "text": "x", "author": "mallory"}, 422, "validation-error"),
        ({"at": START, "text": "x", "selection": {"vehicle_id": "bad id!"}}, 422, None),
        ({"at": START - 1, "text": "before the range"}, 422, "bookmark-outside-range"),
        ({"at": END - 10, "end": END + 1, "text": "past the range"}, 422, "bookmark-outside-range"),
        ({"at": "soon", "text": "x"}, 422, "validation-error"),
    ]
    for body, status, slug in cases:
        problem(api.post(url, json=body), status, slug)
    assert api.get(url).json()["bookmarks"] == []
    assert api.get(url).json()["revision"] == 0


def test_a_session_keeps_a_bounded_number_of_bookmarks(api: TestClient, shared: str) -> None:
    url = f"{SESSIONS}/{shared}/bookmarks"
    for n in range(MAX_BOOKMARKS):
        assert api.post(url, json={"at": START + n, "text": f"n{n}"}).status_code == 201
    problem(api.post(url, json={"at": START, "text": "one too many"}), 409, "bookmarks-full")
    assert len(api.get(url).json()["bookmarks"]) == MAX_BOOKMARKS


def test_only_the_author_or_the_owner_deletes_a_bookmark(api: TestClient, shared: str) -> None:
    url = f"{SESSIONS}/{shared}/bookmarks"
    mine = api.post(url, json={"at": START, "text": "owner's"}).json()["bookmark_id"]
    bobs = api.post(url, json={"at": START, "text": "bob's"}, headers=BOB).json()["bookmark_id"]
    problem(api.delete(f"{url}/{mine}", headers=BOB), 403, "not-bookmark-author")
    assert api.delete(f"{url}/{bobs}", headers=BOB).status_code == 204
    problem(api.delete(f"{url}/{bobs}"), 404, "bookmark-not-found")
    problem(api.delete(f"{url}/b-nosuchbookmark0"), 404, "bookmark-not-found")
    problem(api.delete(f"{url}/not-a-bookmark-id"), 422)
    assert api.delete(f"{url}/{mine}").status_code == 204
    assert api.get(url).json()["bookmarks"] == []


def test_viewers_bookmarking_at_once_keep_every_bookmark(api: TestClient, shared: str) -> None:
    url = f"{SESSIONS}/{shared}/bookmarks"
    statuses: list[int] = []

    def add(n: int) -> None:
        headers = BOB if n % 2 else {}
        statuses.append(
            api.post(url, json={"at": START + n, "text": f"t{n}"}, headers=headers).status_code
        )

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 8
    texts = sorted(b["text"] for b in api.get(url).json()["bookmarks"])
    assert texts == sorted(f"t{n}" for n in range(8))
