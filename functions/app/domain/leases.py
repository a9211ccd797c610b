"""Stream leases: caps on the streams one user, and one session, may hold open at once.

One open stream holds one Lambda execution environment (of the account's regional
concurrency, 1,000 by default) for up to ``STREAM_MAX_SECONDS``, and the stream function
runs as many separate processes, so the count cannot live in memory: it lives in the
sessions table, beside the sessions, in one item per user (``lease#user#{subject}``) and
one per session (``lease#session#{session_id}``). Each holds a map of stream id -> lease
expiry (epoch ms) and a ``version``:

- **take** (stream open, before any 200): first one atomic update that adds the lease if
  the item holds fewer than the cap (``size(leases) < cap``): no read, so opens racing
  with each other and with releases never lose to one another (co-watchers of a session
  all reconnect at the same moment). Only when that refuses — the item looks full, or does
  not exist — a consistent read counts the live leases (expired ones are not: a process
  that died never released its leases, they lapse) and writes the live ones plus the new
  one back, conditional on ``version``, so two opens racing for the last place cannot both
  win. The loser starts again from the atomic add: the write it lost to most often created
  the item, and then the add lets every co-watcher in at once;
- **renew** (every third of ``STREAM_LEASE_S`` while the stream lives): one update of a
  lease still in the item — never one a release removed (a renewal already in flight when
  its stream ended must not bring the lease back for another ``STREAM_LEASE_S``);
- **release** (the stream ended, however): one update.

Every write bumps ``version``, so a take's write-back never restores a lease a release
removed, or an expiry a renewal extended. The items carry ``expires_at``, the
table's TTL attribute, so DynamoDB sweeps them once every lease in them lapsed.

The counting is pure (``live_leases``, ``retry_after_s``), tested with a fake clock.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from functions.app.domain.errors import DomainError
from functions.app.threads import SESSION_STORE, run_in

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME

LEASE_PREFIX = "lease#"
TAKE_ATTEMPTS = 8  # racing opens: each conflict means another open (or end) went first


class StreamCapReached(DomainError):
    """Too many streams open for this user or session; try again in ``retry_after_s``."""

    status = 429
    slug = "too-many-streams"
    title = "Too many concurrent streams"

    def __init__(self, scope: str, cap: int, retry_after_s: int) -> None:
        super().__init__(
            f"at most {cap} concurrent streams per {scope}; "
            f"close one, or retry in {retry_after_s} s"
        )
        self.scope = scope
        self.cap = cap
        self.retry_after_s = retry_after_s

    def extra(self) -> dict[str, Any]:
        return {"scope": self.scope, "limit": self.cap}


def live_leases(leases: Mapping[str, int], now_ms: int) -> dict[str, int]:
    """The leases that have not expired at ``now_ms`` (a lease ending now has expired)."""
    return {stream: until for stream, until in leases.items() if until > now_ms}


def retry_after_s(live: Mapping[str, int], now_ms: int) -> int:
    """Whole seconds until the first of ``live`` lapses, at least 1 (for ``Retry-After``)."""
    first = min(live.values(), default=now_ms)
    return max(1, math.ceil((first - now_ms) / 1000))


@dataclass(frozen=True, slots=True)
class Lease:
    """The places one stream holds: its id and the items (user's, session's) it is in."""

    stream_id: str
    keys: tuple[str, ...]


def user_key(subject: str) -> str:
    return f"{LEASE_PREFIX}user#{subject}"


def session_key(session_id: str) -> str:
    return f"{LEASE_PREFIX}session#{session_id}"


class StreamLeases:
    """Lease items in the sessions table (see the module docstring)."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        lease_ms: int,
        per_user: int,
        per_session: int,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.lease_ms = lease_ms
        self.per_user = per_user
        self.per_session = per_session

    def take(self, subject: str, session_id: str, now_ms: int) -> Lease:
        """A lease for a new stream of ``subject`` on ``session_id``, or
        ``StreamCapReached`` (and nothing held)."""
        stream_id = secrets.token_hex(8)
        taken: list[str] = []
        scopes = (
            ("user", user_key(subject), self.per_user),
            ("session", session_key(session_id), self.per_session),
        )
        try:
            for scope, key, cap in scopes:
                if cap > 0:  # 0: not capped
                    self._take(key, stream_id, cap, scope, now_ms)
                    taken.append(key)
        except BaseException:
            for key in taken:
                self._release(key, stream_id)
            raise
        return Lease(stream_id, tuple(taken))

    def renew(self, lease: Lease, now_ms: int) -> None:
        """Extend ``lease`` by ``lease_ms`` from ``now_ms``, if it is still in the item: a
        released lease stays released. (One that lapsed and a take then dropped is not put
        back either: that needs renewals failing for a whole ``STREAM_LEASE_S``, and the
        stream then runs uncounted until it ends.)"""
        until = now_ms + self.lease_ms
        for key in lease.keys:
            self._update(
                key,
                "SET leases.#stream = :until, expires_at = :ttl ADD version :one",
                {":until": {"N": str(until)}, ":ttl": {"N": str(_ttl_s(until))}},
                lease.stream_id,
                condition="attribute_exists(leases.#stream)",
            )

    def release(self, lease: Lease) -> None:
        """Give the places back (the stream ended)."""
        for key in lease.keys:
            self._release(key, lease.stream_id)

    def held(self, key: str, now_ms: int) -> dict[str, int]:
        """The live leases in item ``key`` (for operations and tests)."""
        leases, _ = self._read(key)
        return live_leases(leases, now_ms)

    # --- requests ---------------------------------------------------------------------

    def _read(self, key: str) -> tuple[dict[str, int], int | None]:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"session_id": {"S": key}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return {}, None
        leases = {stream: int(value["N"]) for stream, value in item["leases"]["M"].items()}
        return leases, int(item["version"]["N"])

    def _take(self, key: str, stream_id: str, cap: int, scope: str, now_ms: int) -> None:
        until = now_ms + self.lease_ms
        for _ in range(TAKE_ATTEMPTS):
            # The atomic add first, every round: a lost race for the write-back is most
            # often another open creating the item, after which every open gets in here.
            if self._add_below_cap(key, stream_id, cap, until):
                return
            leases, version = self._read(key)
            live = live_leases(leases, now_ms)
            if len(live) >= cap:
                raise StreamCapReached(scope, cap, retry_after_s(live, now_ms))
            live[stream_id] = until
            condition: dict[str, Any] = (
                {"ConditionExpression": "attribute_not_exists(session_id)"}
                if version is None
                else {
                    "ConditionExpression": "version = :version",
                    "ExpressionAttributeValues": {":version": {"N": str(version)}},
                }
            )
            try:
                self.dynamodb.put_item(
                    TableName=self.table,
                    Item={
                        "session_id": {"S": key},
                        "leases": {"M": {s: {"N": str(u)} for s, u in live.items()}},
                        "version": {"N": str((version or 0) + 1)},
                        "expires_at": {"N": str(_ttl_s(max(live.values())))},
                    },
                    **condition,
                )
            except ClientError as exc:
                if _condition_failed(exc):
                    continue  # another open or end went first: count again
                raise
            return
        # Every attempt lost a race: the item is as busy as a full one.
        raise StreamCapReached(scope, cap, 1)

    def _add_below_cap(self, key: str, stream_id: str, cap: int, until: int) -> bool:
        """Add the lease in one atomic update if the item holds fewer than ``cap`` leases,
        live or lapsed; False if it does not (or there is no item yet)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"session_id": {"S": key}},
                UpdateExpression="SET leases.#stream = :until, expires_at = :ttl ADD version :one",
                ConditionExpression="attribute_exists(leases) AND size(leases) < :cap",
                ExpressionAttributeNames={"#stream": stream_id},
                ExpressionAttributeValues={
                    ":until": {"N": str(until)},
                    ":ttl": {"N": str(_ttl_s(until))},
                    ":cap": {"N": str(cap)},
                    ":one": {"N": "1"},
                },
            )
        except ClientError as exc:
            if _condition_failed(exc):
                return False
            raise
        return True

    def _release(self, key: str, stream_id: str) -> None:
        self._update(key, "REMOVE leases.#stream ADD version :one", {}, stream_id)

    def _update(
        self,
        key: str,
        expression: str,
        values: dict[str, Any],
        stream_id: str,
        condition: str = "attribute_exists(leases)",
    ) -> None:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"session_id": {"S": key}},
                UpdateExpression=expression,
                # Never create an item (without expires_at, the TTL would never sweep it).
                ConditionExpression=condition,
                ExpressionAttributeNames={"#stream": stream_id},
                ExpressionAttributeValues={":one": {"N": "1"}, **values},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise


def _ttl_s(until_ms: int) -> int:
    """``expires_at`` of a lease item: a minute after its last lease lapses."""
    return until_ms // 1000 + 60


def _condition_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


async def holding(
    body: AsyncIterator[bytes],
    leases: StreamLeases,
    lease: Lease,
    now_ms: Callable[[], int],
) -> AsyncIterator[bytes]:
    """``body``'s writes while ``lease`` is held: renewed every third of the lease in the
    background, released when the stream ends, however it ends (its client left, it
    ended itself, or it failed)."""
    renewal = asyncio.create_task(_renew_every(leases, lease, now_ms))
    try:
        async for chunk in body:
            yield chunk
    finally:
        renewal.cancel()
        release_soon(leases, lease)


def release_soon(leases: StreamLeases, lease: Lease) -> None:
    """Release ``lease`` in a store thread, not awaited: it runs even when the stream's
    task is being cancelled."""
    future = SESSION_STORE.submit(leases.release, lease)
    future.add_done_callback(_log_failure)


async def _renew_every(leases: StreamLeases, lease: Lease, now_ms: Callable[[], int]) -> None:
    interval_s = leases.lease_ms / 3000
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in(SESSION_STORE, leases.renew, lease, now_ms())
        except Exception:  # noqa: BLE001 - the next renewal tries again; the lease has 2/3 left
            logger.warning("stream lease renewal failed", extra={"stream": lease.stream_id})


def _log_failure(future: Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        # The lease lapses by itself within STREAM_LEASE_S.
        logger.warning("stream lease release failed", extra={"error": str(future.exception())})
