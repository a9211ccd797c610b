"""Session operations, without HTTP: create, read, control, share, join, presence.

Every change is a conditional write on the session's version. With ``expected_version``
the caller asks "only if nobody changed it since I looked" and gets ``VersionConflict``
otherwise; without it the service re-applies the command on the current item (which the
failed write returned) after a short random wait, so concurrent controllers are
serialised and no update is lost silently. A command carrying the
``command_id`` of the last applied command is not applied again.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from chunker.format.day import ServiceDay
from chunker.format.keys import DEFAULT_VARIANT, InvalidVariant, check_variant
from chunker.format.read import NotPublished
from functions.app import metrics, paths
from functions.app.control.schema import (
    Command,
    Pause,
    Play,
    Seek,
    SessionCreate,
    SetFilters,
    SetLoop,
    SetRange,
    SetSpeed,
    StreamAccess,
)
from functions.app.dependencies import Services
from functions.app.domain.bookmarks import (
    MAX_BOOKMARKS,
    Bookmark,
    BookmarkDraft,
    BookmarkLimit,
    BookmarkNotFound,
    NotTheAuthor,
    check_inside,
)
from functions.app.domain.errors import DomainError
from functions.app.domain.playback import PlaybackClock, PlaybackError, check_range
from functions.app.domain.sessions import (
    ContradictoryFilters,
    Filters,
    Session,
    SessionGone,
    SessionNotFound,
    VersionConflict,
)
from functions.app.domain.tokens import InvalidShareToken, issue, verify

MAX_RANGE_MS = 7 * 86_400_000
# Without expected_version a conflicting write is re-applied on the current session for up
# to this long (then 503 session-busy, nothing changed): never a 409 the caller did not ask for.
CONFLICT_BUDGET_S = 5.0
CONFLICT_BACKOFF_S = 0.005  # the first wait's bound; doubles at each conflict (jittered)
CONFLICT_BACKOFF_MAX_S = 0.5
DEFAULT_TICK_MS = 1_000


class NotOwner(DomainError, PermissionError):
    """Only the session's owner may do this."""

    status = 403
    slug = "not-owner"
    title = "Only the session's owner can do this"


class SessionBusy(DomainError):
    """Writers kept winning over this one for ``CONFLICT_BUDGET_S``; nothing was changed."""

    status = 503
    slug = "session-busy"
    title = "The session is changing too fast; retry"
    retry_after_s = 1


class SessionFull(DomainError):
    """The session has as many members as it may have."""

    status = 409
    slug = "session-full"
    title = "The session has as many members as it may"


class NotAMember(DomainError, LookupError):
    """No such member of the session."""

    status = 404
    slug = "member-not-found"
    title = "No such member"


class SessionService:
    """The operations behind the control routes."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.sessions
        self._secret = self.settings.stream_token_secret.get_secret_value().encode()

    # --- reading ----------------------------------------------------------------------------

    def get(self, caller: str, session_id: str) -> Session:
        """The session if ``caller`` may see it; otherwise it does not exist for them.
        Expired: ``SessionGone`` (for whoever could see it)."""
        return self._visible(caller, session_id, self._read(caller, session_id))

    def _read(self, caller: str, session_id: str) -> Session | None:
        """The stored session at the service's clock; expired ones are gone, and say so
        only to someone who could see them."""
        try:
            return self.store.get(session_id, now_ms=self.services.now_ms())
        except SessionGone as gone:
            if gone.session.can_access(caller):
                raise
            raise SessionNotFound(session_id) from None

    def stream_access(self, caller: str, session: Session) -> StreamAccess:
        """A fresh stream token and the URL to open the stream with."""
        now_s = self.services.now_ms() // 1000
        ttl = self.settings.stream_token_ttl_s
        token = issue(self._secret, "stream", session.session_id, ttl, now=now_s, sub=caller)
        base = self.settings.stream_base_url.rstrip("/")
        url = f"{base}{paths.stream_path(session.session_id)}?token={token}"
        return StreamAccess(url=url, token=token, expires_at=now_s + ttl)

    # --- creating and deleting ----------------------------------------------------------------

    def create(self, caller: str, request: SessionCreate) -> Session:
        """A new session owned by ``caller`` over published data."""
        variants = _variants(request.variant, request.compare)
        start, end = self.check_range(request.airport, request.start, request.end, variants)
        self.check_filters(request.airport, start, end, request.filters, variants[0])
        position = start if request.position is None else request.position
        now = self.services.now_ms()
        clock = PlaybackClock(
            state="paused",
            speed=request.speed,
            anchor_position=start,
            anchor_wall=now,
            range_start=start,
            range_end=end,
            loop=request.loop,
        ).checked_pace()  # bounded stream work (issue #15): the rule lives with the clock
        clock = clock.seek(now, position)
        if request.state == "playing":
            clock = clock.play(now)
        session = Session.new(
            caller,
            request.airport,
            clock,
            request.filters,
            now,
            self.settings.presence_lease_s * 1000,
            self.settings.session_ttl_s,
            variant=variants[0],
            compare=variants[1] if len(variants) > 1 else None,
        )
        self.store.create(session)
        metrics.count("SessionsCreated")
        return session

    def delete(self, caller: str, session_id: str) -> None:
        """Delete a session (owner only)."""
        session = self.get(caller, session_id)
        if session.owner != caller:
            raise NotOwner("only the owner can delete a session")
        self.store.delete(session_id)

    def check_range(
        self, airport: str, start: int, end: int, variants: tuple[str, ...] = (DEFAULT_VARIANT,)
    ) -> tuple[int, int]:
        """``(start, end)`` if it is a sane range and every service day in it is published
        in each of ``variants``."""
        check_range(start, end)
        if end - start > MAX_RANGE_MS:
            raise PlaybackError(f"a range may span at most {MAX_RANGE_MS // 86_400_000} days")
        for variant in variants:
            chunks = self.services.chunks.of_variant(variant)
            days = chunks.published_days(airport)
            first = chunks.day_at(airport, start, days)
            timezone = first.airport.timezone
            date = first.service_date
            last = dt.date.fromisoformat(ServiceDay.local_date_of(end - 1, timezone))
            while date <= last:
                if date.isoformat() not in days:
                    named = "" if variant == DEFAULT_VARIANT else f" (variant {variant})"
                    raise NotPublished(
                        f"{airport} {date.isoformat()}{named} has no published chunks"
                    )
                date += dt.timedelta(days=1)
        return start, end

    def check_filters(
        self,
        airport: str,
        start: int,
        end: int,
        filters: Filters,
        variant: str = DEFAULT_VARIANT,
    ) -> None:
        """``ContradictoryFilters`` if ``filters`` can match nothing on the days of
        ``[start, end)`` (by their fleets and schedules)."""
        if not filters.active():
            return
        chunks = self.services.chunks.of_variant(variant)
        days = chunks.published_days(airport)
        first = chunks.day_at(airport, start, days)
        last = dt.date.fromisoformat(ServiceDay.local_date_of(end - 1, first.airport.timezone))
        fleet: dict[str, str] = {}
        flights: set[str] = set()
        date = first.service_date
        while date <= last:
            catalogue = chunks.published(airport, date.isoformat()).manifest.catalogue
            fleet.update((v.vehicle_id, v.vehicle_type.value) for v in catalogue.vehicles)
            flights.update(f["id"] for f in catalogue.flights)
            date += dt.timedelta(days=1)
        conflicts = filters.conflicts(fleet, flights)
        if conflicts:
            raise ContradictoryFilters(conflicts)

    # --- control ------------------------------------------------------------------------------

    def control(self, caller: str, session_id: str, command: Command, *more: Command) -> Session:
        """Apply a command (and ``more`` after it, in the same write: one new version);
        see the module docstring for the concurrency rules. ``command`` carries the
        ``expected_version`` and ``command_id`` of them all."""
        session = self.get(caller, session_id)
        for attempt in _attempts():
            if command.command_id is not None and command.command_id == session.last_command_id:
                return session  # a retry of the command that produced this version
            expected = command.expected_version
            if expected is not None and expected != session.version:
                metrics.count("VersionConflicts")
                raise VersionConflict(session)
            now = self.services.now_ms()
            changed = session
            for each in (command, *more):
                changed = self._apply(changed, each, now, caller)
            changed = replace(
                changed, version=session.version + 1, last_command_id=command.command_id
            )
            try:
                self.store.replace(changed, session.version, now_ms=now)
            except VersionConflict as conflict:
                if expected is not None:
                    metrics.count("VersionConflicts")
                    raise
                current = self._after_conflict(attempt, conflict, session_id)
                session = self._visible(caller, session_id, current)
                continue
            metrics.count("ControlActions")
            return changed
        raise SessionBusy(session_id)

    @staticmethod
    def _visible(caller: str, session_id: str, session: Session | None) -> Session:
        """``session`` if ``caller`` may see it; otherwise it does not exist for them."""
        if session is None or not session.can_access(caller):
            raise SessionNotFound(session_id)
        return session

    def _apply(self, session: Session, command: Command, now: int, caller: str) -> Session:
        clock = session.clock
        timeline = session.timeline
        filters: Filters = session.filters
        filters_by = session.filters_by
        if isinstance(command, Play):
            clock = clock.play(now)
        elif isinstance(command, Pause):
            clock = clock.pause(now)
        elif isinstance(command, Seek):
            clock = clock.seek(now, command.position)
            timeline += 1
        elif isinstance(command, SetSpeed):
            clock = clock.set_speed(now, command.speed)
        elif isinstance(command, SetRange):
            start, end = self.check_range(
                session.airport, command.start, command.end, session.variants
            )
            clock = clock.set_range(now, start, end)
            timeline += 1
        elif isinstance(command, SetFilters):
            self.check_filters(
                session.airport,
                clock.range_start,
                clock.range_end,
                command.filters,
                session.variant,
            )
            filters = command.filters
            filters_by = caller
            timeline += 1
        elif isinstance(command, SetLoop):
            clock = clock.set_loop(now, command.loop)
        else:
            clock = clock.step(now, command.ticks, self._tick_ms(session))
            timeline += 1
        return session.changed(
            clock=clock,
            timeline=timeline,
            filters=filters,
            filters_by=filters_by,
            updated_at=now,
            last_command_id=command.command_id,
        )

    def _tick_ms(self, session: Session) -> int:
        position = session.clock.position_at(self.services.now_ms())
        try:
            reader = self.services.chunks.of_variant(session.variant)
            manifest = reader.day_at(session.airport, position)
        except NotPublished:
            return DEFAULT_TICK_MS
        return manifest.config.tick_ms

    # --- co-watching and presence -------------------------------------------------------------

    def share(self, caller: str, session_id: str) -> tuple[str, int]:
        """A share token (owner only): whoever redeems it may view and control the session."""
        session = self.get(caller, session_id)
        if session.owner != caller:
            raise NotOwner("only the owner can share a session")
        now_s = self.services.now_ms() // 1000
        ttl = self.settings.share_token_ttl_s
        token = issue(
            self._secret, "share", session_id, ttl, now=now_s, gen=session.share_generation
        )
        return token, now_s + ttl

    def revoke_shares(self, caller: str, session_id: str) -> Session:
        """Invalidate every share token issued so far (owner only); members stay."""
        return self._change(
            caller,
            session_id,
            lambda session: caller == session.owner,
            lambda session, now: session.changed(
                share_generation=session.share_generation + 1, updated_at=now
            ),
        )

    def members(self, caller: str, session_id: str) -> Session:
        """The session, for its owner to list the members."""
        session = self.get(caller, session_id)
        if session.owner != caller:
            raise NotOwner("only the owner can list the members")
        return session

    def remove_member(self, caller: str, session_id: str, member: str) -> Session:
        """Remove ``member``: the owner removes anyone, a member may remove themself."""
        session = self.get(caller, session_id)
        if caller not in (session.owner, member):
            raise NotOwner("only the owner can remove other members")
        if member not in session.members:
            raise NotAMember(f"{member!r} is not a member of this session")
        return self._change(
            caller,
            session_id,
            lambda session: caller in (session.owner, member),
            lambda session, now: session.changed(
                members=session.members - {member}, updated_at=now
            ),
            session,
        )

    def _change(
        self,
        caller: str,
        session_id: str,
        allowed: Callable[[Session], bool],
        change: Callable[[Session, int], Session],
        session: Session | None = None,
    ) -> Session:
        """Apply ``change`` if ``allowed`` (else ``NotOwner``), as a conditional write,
        re-applied on the current session after a conflict."""
        current = self.get(caller, session_id) if session is None else session
        for attempt in _attempts():
            if not allowed(current):
                raise NotOwner("only the owner can do this")
            now = self.services.now_ms()
            changed = change(current, now)
            try:
                self.store.replace(changed, current.version, now_ms=now)
            except VersionConflict as conflict:
                found = self._after_conflict(attempt, conflict, session_id)
                if found is None:
                    raise SessionNotFound(session_id) from None
                current = found
                continue
            return changed
        raise SessionBusy(session_id)

    # --- bookmarks and notes ------------------------------------------------------------------

    def add_bookmark(self, caller: str, session_id: str, draft: BookmarkDraft) -> Bookmark:
        """A bookmark by ``caller`` (owner or member), stored with the session."""
        bookmark = draft.made(caller, self.services.now_ms())  # one id, whatever the retries

        def add(session: Session, now: int) -> Session:
            if len(session.bookmarks) >= MAX_BOOKMARKS:
                raise BookmarkLimit(f"a session keeps at most {MAX_BOOKMARKS} bookmarks")
            clock = session.clock
            check_inside(draft, clock.range_start, clock.range_end)
            return session.changed(
                bookmarks=(*session.bookmarks, bookmark),
                bookmarks_revision=session.bookmarks_revision + 1,
                updated_at=now,
            )

        self._change(caller, session_id, lambda session: session.can_access(caller), add)
        metrics.count("BookmarksAdded")
        return bookmark

    def delete_bookmark(self, caller: str, session_id: str, bookmark_id: str) -> None:
        """Delete a bookmark: its author or the session's owner."""

        def remove(session: Session, now: int) -> Session:
            found = [b for b in session.bookmarks if b.bookmark_id == bookmark_id]
            if not found:
                raise BookmarkNotFound(f"no bookmark {bookmark_id!r} in this session")
            if caller not in (found[0].author, session.owner):
                raise NotTheAuthor("only its author or the session's owner can delete it")
            return session.changed(
                bookmarks=tuple(b for b in session.bookmarks if b.bookmark_id != bookmark_id),
                bookmarks_revision=session.bookmarks_revision + 1,
                updated_at=now,
            )

        self._change(caller, session_id, lambda session: session.can_access(caller), remove)

    def join(self, caller: str, share_token: str) -> Session:
        """Redeem a share token: ``caller`` becomes a member of the session."""
        now_s = self.services.now_ms() // 1000
        claims = verify(self._secret, share_token, "share", now=now_s)
        session_id = str(claims["sid"])
        session = self.store.get(session_id, now_ms=self.services.now_ms())
        for attempt in _attempts():
            if session is None:
                raise SessionNotFound(session_id)
            if claims.get("gen", 0) != session.share_generation:
                raise InvalidShareToken("share token revoked")
            if session.can_access(caller):
                return session
            limit = self.settings.session_max_members
            if len(session.members) >= limit:
                raise SessionFull(f"this session has its {limit} members; the owner may remove one")
            now = self.services.now_ms()
            joined = session.changed(members=session.members | {caller}, updated_at=now)
            try:
                self.store.replace(joined, session.version, now_ms=now)
            except VersionConflict as conflict:
                session = self._after_conflict(attempt, conflict, session_id)
                continue
            return joined
        raise SessionBusy(session_id)

    def _after_conflict(
        self, attempt: int, conflict: VersionConflict, session_id: str
    ) -> Session | None:
        """The session to retry a conflicting write on. The first time, the item the failed
        write brought back, at once: it is current. After that, the other writer is busy:
        wait a random time (full jitter, doubling, capped), then read the item again, so the
        retry never works on a version older than its wait (retrying on the item from
        before the wait lost to a writer that never waits, every time)."""
        if attempt == 0:
            return conflict.current
        _back_off(attempt)
        return self.store.get(session_id, now_ms=self.services.now_ms())

    def renew_presence(self, caller: str, session_id: str) -> int:
        """A viewer is still watching: extend the lease streams check, and the TTL."""
        now = self.services.now_ms()
        until = now + self.settings.presence_lease_s * 1000
        expires_at = now // 1000 + self.settings.session_ttl_s
        if self.store.renew_presence(session_id, until, expires_at, caller, now_ms=now) is None:
            raise SessionNotFound(session_id)
        return until


def _attempts() -> Iterator[int]:
    """Attempt numbers 0, 1, 2, ... until ``CONFLICT_BUDGET_S`` has passed (the first
    attempt always runs)."""
    deadline = time.monotonic() + CONFLICT_BUDGET_S
    attempt = 0
    while attempt == 0 or time.monotonic() < deadline:
        yield attempt
        attempt += 1


def _back_off(attempt: int) -> None:
    """A random wait before retrying a conflicting write (full jitter, doubling, capped)."""
    time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_S * 2**attempt, CONFLICT_BACKOFF_MAX_S)))


def _variants(variant: str, compare: str | None) -> tuple[str, ...]:
    """The variants a new session plays (its own, then the compared one), checked:
    ``InvalidVariant`` (400) for a bad name or a variant compared with itself."""
    if compare is None:
        return (check_variant(variant),)
    if check_variant(compare) == check_variant(variant):
        raise InvalidVariant(f"compare names the session's own variant {variant!r}")
    return (variant, compare)
