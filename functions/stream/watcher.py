"""Watching sessions for control changes: one poller per session per process.

Control changes are written to DynamoDB by the control API (another function in the
cloud), so streams learn of them by polling the item with a strongly consistent read.
All streams of the same session in a process share one poller; it stops when the last
stream leaves. The poll interval bounds how fast a control change reaches a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from functions.sessions import Session, SessionStore

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
        """Sleep until monotonic time ``deadline`` or the next change, whichever is first.

        A future woken by ``loop.call_at`` (the loop's clock is ``time.monotonic``) costs far
        less per frame than ``asyncio.wait_for``, which matters with hundreds of streams.
        """
        loop = asyncio.get_running_loop()
        if deadline <= loop.time():
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
    """Shared pollers, keyed by session id."""

    def __init__(self, store: SessionStore, poll_s: float) -> None:
        self.store = store
        self.poll_s = poll_s
        self._watches: dict[str, SessionWatch] = {}
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self.polls = 0

    @property
    def active(self) -> int:
        """Sessions being polled right now."""
        return len(self._pollers)

    @contextlib.asynccontextmanager
    async def watching(self, session: Session) -> AsyncIterator[SessionWatch]:
        """Subscribe to a session for the duration of a stream."""
        session_id = session.session_id
        watch = self._watches.get(session_id)
        if watch is None:
            watch = self._watches[session_id] = SessionWatch(session)
            self._pollers[session_id] = asyncio.create_task(self._poll(session_id, watch))
        elif watch.session is not None and session.version > watch.session.version:
            watch.publish(session)
        watch.subscribers += 1
        try:
            yield watch
        finally:
            watch.subscribers -= 1
            if watch.subscribers == 0:
                self._watches.pop(session_id, None)
                poller = self._pollers.pop(session_id, None)
                if poller is not None:
                    poller.cancel()

    async def _poll(self, session_id: str, watch: SessionWatch) -> None:
        delay = self.poll_s
        while True:
            await asyncio.sleep(delay)
            self.polls += 1
            try:
                current = await asyncio.to_thread(self.store.get, session_id, True)
            except Exception:  # noqa: BLE001 - throttling or a network fault: back off
                watch.failures += 1
                delay = min(MAX_BACKOFF_S, self.poll_s * 2**watch.failures)
                continue
            watch.failures = 0
            delay = self.poll_s
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
