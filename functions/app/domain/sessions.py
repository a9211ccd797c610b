"""Replay sessions: the domain model (shared by the control API and the stream).

The DynamoDB store is ``functions.app.domain.session_store``.

One item per session, key ``session_id``. Every control change is a conditional write on
``version`` (optimistic concurrency), so two controllers can never overwrite each other
silently. Presence renewals do not touch ``version``: viewers heartbeating must not make
controllers' writes conflict.

Item attributes::

    session_id S, owner S, airport S, members SS (optional), share_generation N (optional),
    filters_by S (optional), bookmarks S (JSON, optional), bookmarks_revision N (optional),
    state S, speed N, anchor_position N, anchor_wall N, range_start N, range_end N, loop BOOL,
    filters S (JSON), timeline N, version N, last_command_id S (optional),
    variant S (optional: the default variant), compare S (optional),
    created_at N, updated_at N, presence_until N (ms), expires_at N (epoch s; the table's TTL)

The table also holds the stream leases (keys ``lease#...``, ``functions.app.domain.leases``), which
never match ``SESSION_ID_PATTERN``, so no session read can meet one.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from chunker.format.keys import DEFAULT_VARIANT
from chunker.format.records import TASK_VEHICLE_TYPE, EntityId, TaskStatus, TaskType, VehicleType
from functions.app.domain import bookmarks
from functions.app.domain.bookmarks import Bookmark
from functions.app.domain.errors import DomainError
from functions.app.domain.playback import PlaybackClock

if TYPE_CHECKING:
    pass

SESSION_ID_PREFIX = "s-"
SESSION_ID = SESSION_ID_PREFIX + r"[A-Za-z0-9_-]{20,40}"  # unanchored, for paths (``paths``)
SESSION_ID_PATTERN = f"^{SESSION_ID}$"
_SESSION_ID = re.compile(SESSION_ID_PATTERN)
MAX_FILTER_VALUES = 500


class VersionConflict(DomainError):
    """The item changed since it was read; carries the current session (None if gone)."""

    status = 409
    slug = "version-conflict"
    title = "The session changed since that version"

    def __init__(self, current: Session | None) -> None:
        super().__init__("session version conflict")
        self.current = current

    @property
    def detail(self) -> str:
        return "Re-read the session (see `current`) and retry with its version."


class SessionNotFound(DomainError, LookupError):
    """No such session (or not visible to the caller)."""

    status = 404
    slug = "session-not-found"
    title = "Session not found"
    event_code = "session_gone"
    event_message = "the session was deleted or expired"


class VariantNotInSession(DomainError, LookupError):
    """A stream asked for a variant the session neither plays nor compares with."""

    status = 404
    slug = "variant-not-found"
    title = "Variant not in this session"


class SessionGone(SessionNotFound):
    """The session expired (``expires_at`` passed). It stays gone: DynamoDB's TTL sweep may
    take days to delete the item, so the store refuses it on every read and write."""

    slug = "session-gone"
    title = "Session expired"

    def __init__(self, session: Session) -> None:
        super().__init__(f"{session.session_id} expired at {session.expires_at} (epoch s)")
        self.session = session


class AccessRevoked(SessionNotFound):
    """The caller was removed from the session: it no longer exists for them (404 on
    HTTP); an open stream of theirs ends with ``error`` ``access_revoked``."""

    event_code = "access_revoked"
    event_message = "you were removed from this session"


def wall_now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return SESSION_ID_PREFIX + secrets.token_urlsafe(18)


def is_session_id(value: str) -> bool:
    """Whether ``value`` has the shape of a session id."""
    return isinstance(value, str) and _SESSION_ID.match(value) is not None


# The filter rule in one sentence; the dashboard's filter popover and docs/api.md say the same.
FILTER_RULE = (
    "Within a filter any chosen value matches, and every filter set must match. Each thing is"
    " checked only by the filters that describe it: a vehicle by its type and id (and the task"
    " types its type does); a task by its type, status, flight, stand and vehicle (its vehicle"
    " type is the one that does its task type); a flight, the aircraft drawn on its stand and"
    " an aircraft moving as that flight, by its id and stand; a notification by the vehicle"
    " and the flight it names. A filter that does not describe a thing never hides it."
)


class FilterConflict(BaseModel):
    """Filters that together can match nothing (``Filters.conflicts``)."""

    code: str = Field(description="empty, vehicle-type-vs-task-type, vehicle-id-vs-type, ...")
    filters: list[str] = Field(description="The filters that contradict each other.")
    detail: str


class Filters(BaseModel):
    """Server-side filters. A missing (null) list means "no filter on that dimension"; an
    empty list matches nothing (refused as a conflict).

    The rule (``FILTER_RULE``), per thing the stream sends:

    ============  ==========================================================================
    vehicle       ``vehicle_types`` (its type), ``vehicle_ids`` (its id), ``task_types`` (a
                  chosen task type is one its type does, ``TASK_VEHICLE_TYPE``)
    task          ``task_types``, ``task_statuses``, ``flights``, ``stands`` (its own fields),
                  ``vehicle_ids`` (its assigned vehicle: unassigned tasks do not match),
                  ``vehicle_types`` (the type that does its task type)
    flight        ``flights`` (its id), ``stands`` (its stand); the map draws aircraft from
                  the flights shown, so stands follow the same filters
    aircraft      as the flight its fix links to: ``flights`` (that leg's id), ``stands``
                  (that leg's stand); an aircraft linked to no flight matches neither
    notification  the vehicle it names, checked as a vehicle; ``flights`` (the flight it
                  names); a notification naming neither passes
    ============  ==========================================================================
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_types: list[VehicleType] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    vehicle_ids: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    task_types: list[TaskType] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    task_statuses: list[TaskStatus] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    flights: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)
    stands: list[EntityId] | None = Field(default=None, max_length=MAX_FILTER_VALUES)

    def active(self) -> dict[str, list[str]]:
        """The filters that are set, by name, as plain strings."""
        return {
            name: [str(value) for value in values]
            for name, values in self.model_dump().items()
            if values is not None
        }

    def conflicts(
        self, fleet: Mapping[str, str], flights: Collection[str] | None = None
    ) -> list[FilterConflict]:
        """Combinations that can match nothing, given the ``fleet`` (vehicle id -> type) and
        the known flight ids of the session's days (None: not checked)."""
        found: list[FilterConflict] = []
        for name, values in self.active().items():
            if not values:
                found.append(
                    FilterConflict(
                        code="empty",
                        filters=[name],
                        detail=f"{name} is an empty list, which matches nothing"
                        " (null or leaving it out means no filter)",
                    )
                )
        if found:
            return found
        types = None if self.vehicle_types is None else {str(v) for v in self.vehicle_types}
        done = None if self.task_types is None else {TASK_VEHICLE_TYPE[t] for t in self.task_types}
        if types is not None and done is not None and not types & done:
            found.append(
                FilterConflict(
                    code="vehicle-type-vs-task-type",
                    filters=["vehicle_types", "task_types"],
                    detail="no chosen vehicle type does any chosen task type: no vehicle,"
                    " task or notification about a vehicle can match",
                )
            )
        elif self.vehicle_ids is not None:
            known = [fleet[v] for v in self.vehicle_ids if v in fleet]
            if not known:
                found.append(
                    FilterConflict(
                        code="unknown-vehicles",
                        filters=["vehicle_ids"],
                        detail="none of the chosen vehicles is in the fleet of these days",
                    )
                )
            elif not any(
                (types is None or kind in types) and (done is None or kind in done)
                for kind in known
            ):
                found.append(
                    FilterConflict(
                        code="vehicle-id-vs-type",
                        filters=[
                            "vehicle_ids",
                            *(["vehicle_types"] if types is not None else []),
                            *(["task_types"] if done is not None else []),
                        ],
                        detail="none of the chosen vehicles is of a chosen type"
                        " or does a chosen task type",
                    )
                )
        if (
            flights is not None
            and self.flights is not None
            and not set(self.flights) & set(flights)
        ):
            found.append(
                FilterConflict(
                    code="unknown-flights",
                    filters=["flights"],
                    detail="none of the chosen flights is in the schedule of these days",
                )
            )
        return found


class ContradictoryFilters(DomainError):
    """Filters that can match nothing: refused, with what contradicts what."""

    status = 422
    slug = "contradictory-filters"
    title = "These filters can match nothing"

    def __init__(self, conflicts: list[FilterConflict]) -> None:
        super().__init__("; ".join(c.detail for c in conflicts))
        self.conflicts = conflicts

    def extra(self) -> dict[str, Any]:
        return {"conflicts": [c.model_dump() for c in self.conflicts]}


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
    # Who set the filters last (None: nobody since the session was created), so co-watchers
    # are told whose change they see.
    filters_by: str | None = None
    # Bookmarks and notes everybody in the session shares (``functions.app.domain.bookmarks``);
    # the revision moves with every change to them, so viewers know when to read them again.
    bookmarks: tuple[Bookmark, ...] = ()
    bookmarks_revision: int = 0
    # Which dispatch run of the days it plays (``chunker.format.keys``), and the one it is
    # compared with (a second stream of the same session plays it: one clock for both).
    variant: str = DEFAULT_VARIANT
    compare: str | None = None

    @property
    def variants(self) -> tuple[str, ...]:
        """The variants its streams may play: its own, then the compared one."""
        return (self.variant,) if self.compare is None else (self.variant, self.compare)

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
        variant: str = DEFAULT_VARIANT,
        compare: str | None = None,
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
            variant=variant,
            compare=compare,
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
        if self.filters_by:
            item["filters_by"] = {"S": self.filters_by}
        if self.bookmarks:
            item["bookmarks"] = {"S": bookmarks.encode(self.bookmarks)}
        if self.bookmarks_revision:
            item["bookmarks_revision"] = {"N": str(self.bookmarks_revision)}
        if self.variant != DEFAULT_VARIANT:
            item["variant"] = {"S": self.variant}
        if self.compare is not None:
            item["compare"] = {"S": self.compare}
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
            filters_by=item.get("filters_by", {}).get("S"),
            bookmarks=bookmarks.decode(item["bookmarks"]["S"]) if "bookmarks" in item else (),
            bookmarks_revision=int(item.get("bookmarks_revision", {}).get("N", "0")),
            variant=item.get("variant", {}).get("S", DEFAULT_VARIANT),
            compare=item.get("compare", {}).get("S"),
        )
