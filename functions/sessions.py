"""Replay sessions: the model and its DynamoDB store (shared by control API and stream).

One item per session, key ``session_id``. Every control change is a conditional write on
``version`` (optimistic concurrency), so two controllers can never overwrite each other
silently. Presence renewals do not touch ``version``: viewers heartbeating must not make
controllers' writes conflict.

Item attributes::

    session_id S, owner S, airport S, members SS (optional), share_generation N (optional),
    state S, speed N, anchor_position N, anchor_wall N, range_start N, range_end N, loop BOOL,
    filters S (JSON), timeline N, version N, last_command_id S (optional),
    created_at N, updated_at N, presence_until N (ms), expires_at N (epoch s; the table's TTL)

The table also holds the stream leases (keys ``lease#...``, ``functions.leases``), which
never match ``SESSION_ID_PATTERN``, so no session read can meet one.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from chunker.records import EntityId, TaskStatus, TaskType, VehicleType
from functions.playback import PlaybackClock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SESSION_ID_PATTERN = r"^s-[A-Za-z0-9_-]{20,40}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
MAX_FILTER_VALUES = 500
BATCH_GET_KEYS = 100  # the most one BatchGetItem request may ask for


class VersionConflict(Exception):
    """The item changed since it was read; carries the current session (None if gone)."""

    def __init__(self, current: Session | None) -> None:
        super().__init__("session version conflict")
        self.current = current


class SessionNotFound(LookupError):
    """No such session (or not visible to the caller)."""


class SessionGone(SessionNotFound):
    """The session expired (``expires_at`` passed). It stays gone: DynamoDB's TTL sweep may
    take days to delete the item, so the store refuses it on every read and write."""

    def __init__(self, session: Session) -> None:
        super().__init__(f"{session.session_id} expired at {session.expires_at} (epoch s)")
        self.session = session


def wall_now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return "s-" + secrets.token_urlsafe(18)


def is_session_id(value: str) -> bool:
    """Whether ``value`` has the shape of a session id."""
    return isinstance(value, str) and _SESSION_ID.match(value) is not None


class Filters(BaseModel):
    """Server-side filters. A missing (null) list means "no filter on that dimension".

    Vehicles pass by ``vehicle_types`` and ``vehicle_ids``; tasks by ``task_types``,
    ``task_statuses``, ``flights`` and ``stands``; flights by ``flights`` and ``stands``;
    notifications by ``flights`` (notifications about no flight always pass).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_types: list[VehicleType] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    vehicle_ids: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    task_types: list[TaskType] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    task_statuses: list[TaskStatus] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    flights: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    stands: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)

    def is_empty(self) -> bool:
        """Whether nothing is filtered."""
        return all(value is None for value in self.model_dump().values())


@dataclass(frozen=True, slots=True)
class Session:
    """A replay session as stored."""

    session_id: str
    owner: str
    airport: str
    clock: PlaybackClock
    filters: Filters
    version: int
    timeline: int  # bumped by discontinuities (seek, step, range, filters): streams re-sync
    created_at: int
    updated_at: int
    presence_until: int
    expires_at: int
    members: frozenset[str] = field(default_factory=frozenset)
    last_command_id: str | None = None
    # Share tokens carry the generation they were issued in; revoking bumps it, and every
    # token issued before stops working.
    share_generation: int = 0

    @classmethod
    def new(
        cls,
        owner: str,
        airport: str,
        clock: PlaybackClock,
        filters: Filters,
        now: int,
        presence_lease_ms: int,
        ttl_s: int,
    ) -> Session:
        """A session at version 1, created at wall time ``now`` (epoch ms)."""
        return cls(
            session_id=new_session_id(),
            owner=owner,
            airport=airport,
            clock=clock,
            filters=filters,
            version=1,
            timeline=1,
            created_at=now,
            updated_at=now,
            presence_until=now + presence_lease_ms,
            expires_at=now // 1000 + ttl_s,
        )

    def expired(self, now_ms: int) -> bool:
        """Whether the session has expired at wall time ``now_ms``: from ``expires_at`` on it
        cannot be read, controlled, joined, streamed or renewed."""
        return now_ms >= self.expires_at * 1000

    def can_access(self, subject: str) -> bool:
        """The owner and members (holders of a redeemed share token) may view and control."""
        return subject == self.owner or subject in self.members

    def changed(self, **changes: Any) -> Session:
        """A copy with changes and the next version."""
        return replace(self, version=self.version + 1, **changes)

    # --- item mapping ------------------------------------------------------------------

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (low-level attribute values)."""
        clock = self.clock
        item: dict[str, Any] = {
            "session_id": {"S": self.session_id},
            "owner": {"S": self.owner},
            "airport": {"S": self.airport},
            "state": {"S": clock.state},
            "speed": {"N": repr(clock.speed)},
            "anchor_position": {"N": str(clock.anchor_position)},
            "anchor_wall": {"N": str(clock.anchor_wall)},
            "range_start": {"N": str(clock.range_start)},
            "range_end": {"N": str(clock.range_end)},
            "loop": {"BOOL": clock.loop},
            "filters": {"S": self.filters.model_dump_json(exclude_none=True)},
            "version": {"N": str(self.version)},
            "timeline": {"N": str(self.timeline)},
            "created_at": {"N": str(self.created_at)},
            "updated_at": {"N": str(self.updated_at)},
            "presence_until": {"N": str(self.presence_until)},
            "expires_at": {"N": str(self.expires_at)},
        }
        if self.members:
            item["members"] = {"SS": sorted(self.members)}
        if self.last_command_id:
            item["last_command_id"] = {"S": self.last_command_id}
        if self.share_generation:
            item["share_generation"] = {"N": str(self.share_generation)}
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Session:
        """Parse a DynamoDB item."""
        number = lambda name: int(item[name]["N"])  # noqa: E731
        return cls(
            session_id=item["session_id"]["S"],
            owner=item["owner"]["S"],
            airport=item["airport"]["S"],
            clock=PlaybackClock(
                state=item["state"]["S"],
                speed=float(item["speed"]["N"]),
                anchor_position=number("anchor_position"),
                anchor_wall=number("anchor_wall"),
                range_start=number("range_start"),
                range_end=number("range_end"),
                loop=item["loop"]["BOOL"],
            ),
            filters=Filters.model_validate(orjson.loads(item["filters"]["S"])),
            version=number("version"),
            timeline=number("timeline"),
            created_at=number("created_at"),
            updated_at=number("updated_at"),
            presence_until=number("presence_until"),
            expires_at=number("expires_at"),
            members=frozenset(item.get("members", {}).get("SS", [])),
            last_command_id=item.get("last_command_id", {}).get("S"),
            share_generation=int(item.get("share_generation", {}).get("N", "0")),
        )


class SessionStore:
    """Sessions in DynamoDB, with conditional writes on ``version``.

    Expiry is enforced here, on every read and write, at wall time ``now_ms`` (the
    caller's clock; the system clock when not given): an expired item reads as gone
    (``SessionGone``, or None in the poller's batch reads) and every write's condition
    refuses it, so nothing revives a session whose ``expires_at`` has passed.
    """

    def __init__(
        self, dynamodb: DynamoDBClient, table: str, polls: DynamoDBClient | None = None
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        # ``get_many`` is the stream poller's read, repeated every interval with a backoff
        # of its own: it may use a client that does not retry (None: the same client).
        self.polls = dynamodb if polls is None else polls

    def get(
        self, session_id: str, consistent: bool = True, now_ms: int | None = None
    ) -> Session | None:
        """The session, or None if it does not exist (or has an invalid id); raises
        ``SessionGone`` if it expired."""
        if not is_session_id(session_id):
            return None
        response = self.dynamodb.get_item(
            TableName=self.table, Key={"session_id": {"S": session_id}}, ConsistentRead=consistent
        )
        item = response.get("Item")
        return None if item is None else _live(Session.from_item(item), now_ms)

    def get_many(
        self, session_ids: list[str], consistent: bool = True, now_ms: int | None = None
    ) -> dict[str, Session | None]:
        """Sessions by id, read with ``BatchGetItem`` (100 keys per request). An id maps to
        None if it does not exist, expired, or is invalid; ids DynamoDB left unprocessed
        (throttling) are absent from the answer, for the caller to retry later."""
        now = wall_now_ms() if now_ms is None else now_ms
        result: dict[str, Session | None] = {
            session_id: None for session_id in session_ids if not is_session_id(session_id)
        }
        valid = [
            session_id for session_id in dict.fromkeys(session_ids) if session_id not in result
        ]
        for first in range(0, len(valid), BATCH_GET_KEYS):
            batch = valid[first : first + BATCH_GET_KEYS]
            response = self.polls.batch_get_item(
                RequestItems={
                    self.table: {
                        "Keys": [{"session_id": {"S": session_id}} for session_id in batch],
                        "ConsistentRead": consistent,
                    }
                }
            )
            items = response.get("Responses", {}).get(self.table, [])
            sessions = {item["session_id"]["S"]: item for item in items}
            left = response.get("UnprocessedKeys", {}).get(self.table)
            unprocessed = {key["session_id"]["S"] for key in (left["Keys"] if left else [])}
            for session_id in batch:
                if session_id in unprocessed:
                    continue
                item = sessions.get(session_id)
                session = None if item is None else Session.from_item(item)
                result[session_id] = None if session is None or session.expired(now) else session
        return result

    def create(self, session: Session) -> None:
        """Store a new session (fails if the id exists)."""
        self.dynamodb.put_item(
            TableName=self.table,
            Item=session.to_item(),
            ConditionExpression="attribute_not_exists(session_id)",
        )

    def replace(self, session: Session, expected_version: int, now_ms: int | None = None) -> None:
        """Store ``session`` if the stored version is still ``expected_version`` and the
        stored item has not expired (``SessionGone`` if it has)."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=session.to_item(),
                ConditionExpression="version = :expected AND expires_at > :now",
                ExpressionAttributeValues={
                    ":expected": {"N": str(expected_version)},
                    ":now": {"N": str(_now_s(now_ms))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",  # the conflict's current version
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                stored = _stored(exc)
                raise VersionConflict(None if stored is None else _live(stored, now_ms)) from exc
            raise

    def delete(self, session_id: str) -> bool:
        """Delete a session; False if it did not exist."""
        if not is_session_id(session_id):
            return False
        response = self.dynamodb.delete_item(
            TableName=self.table, Key={"session_id": {"S": session_id}}, ReturnValues="ALL_OLD"
        )
        return "Attributes" in response

    def renew_presence(
        self,
        session_id: str,
        presence_until: int,
        expires_at: int,
        viewer: str,
        now_ms: int | None = None,
    ) -> Session | None:
        """Extend viewer presence and the TTL without touching ``version``, if ``viewer`` may
        see the session; the session as stored afterwards, or None if it does not exist or
        ``viewer`` may not see it (``SessionGone`` if it expired: never revived). One request
        whatever happens: presence only moves forward, so when another viewer renewed it
        further, the stored item is as good."""
        if not is_session_id(session_id):
            return None
        try:
            response = self.dynamodb.update_item(
                TableName=self.table,
                Key={"session_id": {"S": session_id}},
                UpdateExpression="SET presence_until = :p, expires_at = :e",
                ConditionExpression="attribute_exists(session_id) AND presence_until < :p"
                " AND expires_at > :now AND (#owner = :viewer OR contains(members, :viewer))",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={
                    ":p": {"N": str(presence_until)},
                    ":e": {"N": str(expires_at)},
                    ":now": {"N": str(_now_s(now_ms))},
                    ":viewer": {"S": viewer},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                stored = _stored(exc)
                if stored is None or not stored.can_access(viewer):
                    return None
                return _live(stored, now_ms)
            raise
        return Session.from_item(response["Attributes"])


def _now_s(now_ms: int | None) -> int:
    """Epoch seconds of ``now_ms`` (default: now), as ``expires_at`` counts them: a session
    is live while ``expires_at > now_s``, i.e. ``now_ms < expires_at * 1000``."""
    return (wall_now_ms() if now_ms is None else now_ms) // 1000


def _live(session: Session, now_ms: int | None) -> Session:
    """``session``, unless it expired at ``now_ms`` (default: now): then ``SessionGone``."""
    if session.expired(wall_now_ms() if now_ms is None else now_ms):
        raise SessionGone(session)
    return session


def _stored(exc: ClientError) -> Session | None:
    """The session as stored when a write's condition failed (the write asked for it with
    ``ReturnValuesOnConditionCheckFailure``); None when there is no such item."""
    item = exc.response.get("Item")
    return Session.from_item(item) if isinstance(item, dict) else None


def ensure_table(dynamodb: DynamoDBClient, table: str) -> None:
    """Create the sessions table (on-demand, TTL on ``expires_at``) if it does not exist.

    For the local stack and tests; in the cloud template.yaml creates the same table.
    """
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        return
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
