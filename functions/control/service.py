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

from chunker.day import ServiceDay
from chunker.reader import NotPublished
from functions.control.models import (
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
from functions.playback import PlaybackClock, PlaybackError, check_range
from functions.services import Services
from functions.sessions import (
    Filters,
    Session,
    SessionNotFound,
    VersionConflict,
)
from functions.tokens import issue, verify

MAX_RANGE_MS = 7 * 86_400_000
CONFLICT_RETRIES = 16
CONFLICT_BACKOFF_S = 0.005  # the first wait's bound; doubles at each conflict (jittered)
CONFLICT_BACKOFF_MAX_S = 0.1
DEFAULT_TICK_MS = 1_000


class NotOwner(PermissionError):
    """Only the session's owner may do this."""


class SessionService:
    """The operations behind the control routes."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.store = services.sessions
        self._secret = self.settings.stream_token_secret.get_secret_value().encode()

    # --- reading ----------------------------------------------------------------------------

    def get(self, caller: str, session_id: str) -> Session:
        """The session if ``caller`` may see it; otherwise it does not exist for them."""
        return self._visible(caller, session_id, self.store.get(session_id))

    def stream_access(self, caller: str, session: Session) -> StreamAccess:
        """A fresh stream token and the URL to open the stream with."""
        now_s = self.services.now_ms() // 1000
        ttl = self.settings.stream_token_ttl_s
        token = issue(self._secret, "stream", session.session_id, ttl, now=now_s, sub=caller)
        url = (
            f"{self.settings.stream_base_url.rstrip('/')}/api/replay/sessions/"
            f"{session.session_id}/stream?token={token}"
        )
        return StreamAccess(url=url, token=token, expires_at=now_s + ttl)

    # --- creating and deleting ----------------------------------------------------------------

    def create(self, caller: str, request: SessionCreate) -> Session:
        """A new session owned by ``caller`` over published data."""
        start, end = self.check_range(request.airport, request.start, request.end)
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
        )
        self.store.create(session)
        return session

    def delete(self, caller: str, session_id: str) -> None:
        """Delete a session (owner only)."""
        session = self.get(caller, session_id)
        if session.owner != caller:
            raise NotOwner("only the owner can delete a session")
        self.store.delete(session_id)

    def check_range(self, airport: str, start: int, end: int) -> tuple[int, int]:
        """``(start, end)`` if it is a sane range and every service day in it is published."""
        check_range(start, end)
        if end - start > MAX_RANGE_MS:
            raise PlaybackError(f"a range may span at most {MAX_RANGE_MS // 86_400_000} days")
        chunks = self.services.chunks
        days = chunks.published_days(airport)
        first = chunks.day_covering(airport, start, days)
        timezone = first.manifest.airport.timezone
        date = first.manifest.service_date
        last = dt.date.fromisoformat(ServiceDay.local_date_of(end - 1, timezone))
        while date <= last:
            if date.isoformat() not in days:
                raise NotPublished(f"{airport} {date.isoformat()} has no published chunks")
            date += dt.timedelta(days=1)
        return start, end

    # --- control ------------------------------------------------------------------------------

    def control(self, caller: str, session_id: str, command: Command) -> Session:
        """Apply one command; see the module docstring for the concurrency rules."""
        session = self.get(caller, session_id)
        for attempt in range(CONFLICT_RETRIES):
            if command.command_id is not None and command.command_id == session.last_command_id:
                return session  # a retry of the command that produced this version
            expected = command.expected_version
            if expected is not None and expected != session.version:
                raise VersionConflict(session)
            changed = self._apply(session, command, self.services.now_ms())
            try:
                self.store.replace(changed, session.version)
            except VersionConflict as conflict:
                if expected is not None:
                    raise
                current = self._after_conflict(attempt, conflict, session_id)
                session = self._visible(caller, session_id, current)
                continue
            return changed
        raise VersionConflict(session)

    @staticmethod
    def _visible(caller: str, session_id: str, session: Session | None) -> Session:
        """``session`` if ``caller`` may see it; otherwise it does not exist for them."""
        if session is None or not session.can_access(caller):
            raise SessionNotFound(session_id)
        return session

    def _apply(self, session: Session, command: Command, now: int) -> Session:
        clock = session.clock
        timeline = session.timeline
        filters: Filters = session.filters
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
            start, end = self.check_range(session.airport, command.start, command.end)
            clock = clock.set_range(now, start, end)
            timeline += 1
        elif isinstance(command, SetFilters):
            filters = command.filters
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
            updated_at=now,
            last_command_id=command.command_id,
        )

    def _tick_ms(self, session: Session) -> int:
        position = session.clock.position_at(self.services.now_ms())
        try:
            day = self.services.chunks.day_covering(session.airport, position)
        except NotPublished:
            return DEFAULT_TICK_MS
        return day.manifest.config.tick_ms

    # --- co-watching and presence -------------------------------------------------------------

    def share(self, caller: str, session_id: str) -> tuple[str, int]:
        """A share token (owner only): whoever redeems it may view and control the session."""
        session = self.get(caller, session_id)
        if session.owner != caller:
            raise NotOwner("only the owner can share a session")
        now_s = self.services.now_ms() // 1000
        ttl = self.settings.share_token_ttl_s
        return issue(self._secret, "share", session_id, ttl, now=now_s), now_s + ttl

    def join(self, caller: str, share_token: str) -> Session:
        """Redeem a share token: ``caller`` becomes a member of the session."""
        now_s = self.services.now_ms() // 1000
        claims = verify(self._secret, share_token, "share", now=now_s)
        session_id = str(claims["sid"])
        session = self.store.get(session_id)
        for attempt in range(CONFLICT_RETRIES):
            if session is None:
                raise SessionNotFound(session_id)
            if session.can_access(caller):
                return session
            joined = session.changed(
                members=session.members | {caller}, updated_at=self.services.now_ms()
            )
            try:
                self.store.replace(joined, session.version)
            except VersionConflict as conflict:
                session = self._after_conflict(attempt, conflict, session_id)
                continue
            return joined
        raise VersionConflict(session)

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
        return self.store.get(session_id)

    def renew_presence(self, caller: str, session_id: str) -> int:
        """A viewer is still watching: extend the lease streams check, and the TTL."""
        now = self.services.now_ms()
        until = now + self.settings.presence_lease_s * 1000
        expires_at = now // 1000 + self.settings.session_ttl_s
        if self.store.renew_presence(session_id, until, expires_at, caller) is None:
            raise SessionNotFound(session_id)
        return until


def _back_off(attempt: int) -> None:
    """A random wait before retrying a conflicting write (full jitter, doubling, capped)."""
    time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_S * 2**attempt, CONFLICT_BACKOFF_MAX_S)))
