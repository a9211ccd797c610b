"""Watching sessions for control changes: one poller per process for all its sessions.

Control changes are written to DynamoDB by the control API (another function in the
cloud), so streams learn of them by polling the items with strongly consistent reads.
All streams of the same session in a process share one watch, and one poller reads every
watched session with ``BatchGetItem`` (100 per request) each interval: a process serving
many sessions makes one request per 100 sessions, not one per session, so polls neither
queue on the thread pool nor crowd out control writes. The poller stops when the last
stream leaves. The poll interval bounds how fast a control change reaches a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from functions.app.domain.session_store import SessionStore
from functions.app.domain.sessions import Session
from functions.app.threads import SESSION_STORE, run_in

MAX_BACKOFF_S = 5.0


class SessionWatch:
    """The latest known state of one session, and a way to wait for it to change."""

    def __init__(self, session: Session) -> None:
        self.session: Session | None = session
        self.failures = 0  # consecutive failed polls
        self.subscribers = 0
        self._waiters: set[asyncio.Future[None]] = set()

    def publish(self, session: Session | None) -> None:
        """Record a newer state and wake every waiter."""
        self.session = session
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_until(self, deadline: float) -> None:
        """Sleep until monotonic time ``deadline`` or the next change, whichever is first;
        always yields to the event loop, even for a deadline already past.

        A future woken by ``loop.call_at`` (the loop's clock is ``time.monotonic``) costs far
        less per frame than ``asyncio.wait_for``, which matters with hundreds of streams.
        """
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
            # Still yield: a caller that loops on this must never starve the event loop.
            await asyncio.sleep(0)
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.add(waiter)
        timer = loop.call_at(deadline, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SessionWatchers:
    """Watches keyed by session id, and the one poller that refreshes them."""

    def __init__(self, store: SessionStore, poll_s: float) -> None:
        self.store = store
        self.poll_s = poll_s
        self._watches: dict[str, SessionWatch] = {}
        self._poller: asyncio.Task[None] | None = None
        self.polls = 0  # session reads made (one batch request reads up to 100)

    @property
    def active(self) -> int:
        """Sessions being polled right now (a deleted one is not, while its streams end)."""
        if self._poller is None:
            return 0
        return sum(1 for watch in self._watches.values() if watch.session is not None)

    def wake_all(self) -> None:
        """Wake every stream waiting on a watch, with the state it already has: each
        looks at its limits again (a draining server moved its deadline)."""
        for watch in list(self._watches.values()):
            watch.publish(watch.session)

    def watched(self, session_id: str) -> bool:
        """Whether any stream of this process follows (and so polls) ``session_id``."""
        return session_id in self._watches

    @contextlib.asynccontextmanager
    async def watching(self, session: Session) -> AsyncIterator[SessionWatch]:
        """Subscribe to a session for the duration of a stream."""
        session_id = session.session_id
        watch = self._watches.get(session_id)
        if watch is None:
            watch = self._watches[session_id] = SessionWatch(session)
        elif watch.session is not None and session.version > watch.session.version:
            watch.publish(session)
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        watch.subscribers += 1
        try:
            yield watch
        finally:
            watch.subscribers -= 1
            if watch.subscribers == 0:
                self._watches.pop(session_id, None)
                if not self._watches and self._poller is not None:
                    self._poller.cancel()
                    self._poller = None

    async def _poll(self) -> None:
        delay = self.poll_s
        failures = 0  # consecutive rounds with a failed or incomplete read
        while True:
            # The interval runs from the end of the last read, not its start: when the
            # store is slow, polls slow down with it instead of piling onto it.
            await asyncio.sleep(delay)
            session_ids = [
                session_id for session_id, watch in self._watches.items() if watch.session
            ]
            if not session_ids:
                continue
            self.polls += len(session_ids)
            try:
                found = await run_in(SESSION_STORE, self.store.get_many, session_ids)
            except Exception:  # noqa: BLE001 - throttling or a network fault: back off
                found = {}
            for session_id in session_ids:
                watch = self._watches.get(session_id)
                if watch is None:
                    continue  # its last stream left during the read
                if session_id not in found:  # failed, or left unprocessed (throttled)
                    watch.failures += 1
                    continue
                watch.failures = 0
                _refresh(watch, found[session_id])
            complete = len(found) == len(session_ids)
            failures = 0 if complete else failures + 1
            delay = min(MAX_BACKOFF_S, self.poll_s * 2**failures)


def _refresh(watch: SessionWatch, current: Session | None) -> None:
    """Publish ``current`` if it differs from what the watch knows in what streams use."""
    known = watch.session
    if current is None:
        if known is not None:
            watch.publish(None)
        return
    if (
        known is None
        or current.version != known.version
        or current.presence_until != known.presence_until
    ):
        watch.publish(current)
