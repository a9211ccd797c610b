"""Small ASGI apps that misbehave on purpose, for the streaming bridge's error paths.

Selected with ``BRIDGE_APP=tests.bridge_apps:<name>`` (configuration, as in production).
Each writes what it observed to stderr so the test can read it from the bridge's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def _note(text: str) -> None:
    print(f"bridge-app: {text}", file=sys.stderr, flush=True)


async def _start(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"set-cookie", b"a=1")],
        }
    )


async def fails_midstream(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Starts a response, sends one event, then raises."""
    await _start(send)
    await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
    raise RuntimeError("the chunk store exploded")


async def fails_before_start(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Raises before any byte."""
    raise RuntimeError("could not even start")


async def endless(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Streams a tick every 100 ms until told the client left."""
    await receive()  # the request body
    disconnected = asyncio.ensure_future(receive())
    await _start(send)
    n = 0
    while not disconnected.done():
        n += 1
        try:
            await send(
                {"type": "http.response.body", "body": b": tick %d\n\n" % n, "more_body": True}
            )
        except ConnectionError:
            _note("send failed after disconnect")
            break
        await asyncio.wait({disconnected}, timeout=0.1)
    # A send that failed may come just before the disconnect reaches receive(): the bridge
    # must still deliver it (what the test checks), so wait for it a little.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(disconnected), timeout=5)
    if disconnected.done():
        _note(f"saw {disconnected.result()['type']} after {n} ticks")


async def never_starts(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """Waits for the client to leave without ever starting a response."""
    await receive()  # the request body
    message = await receive()
    _note(f"saw {message['type']} before starting")
