"""The sessions' DynamoDB store: one item per session, conditional writes on ``version``.

The item layout is described in ``functions.app.domain.sessions``; the table also holds the
stream leases (``functions.app.domain.leases``), whose keys never match a session id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from functions.app.domain.sessions import (
    Session,
    SessionGone,
    VersionConflict,
    is_session_id,
    wall_now_ms,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_KEYS = 100  # the most one BatchGetItem request may ask for


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
