"""Frames computed once per co-watched position: one render, the same bytes for every stream.

The co-watchers of a session in one process are due at the same instant for the same
frame. Unshared, each of them fetches the frame's ticks, merges and filters them and
encodes the same SSE events. Here the first stream that needs a frame renders it and every
other stream of the process that needs the same frame is handed its bytes.

What a frame's bytes depend on is its key: the session (hence the airport and the data it
streams), the stream's timeline, the frame's bounds ``(after, until]`` and the session's
filters (a filter change also bumps the timeline; the key carries both, so no two filter
sets ever share). The event ids are part of the bytes and are a function of the same
values (``cursor``), so a shared frame is byte for byte what the stream would have
rendered itself. A snapshot's key adds its reason and uses the session's timeline, which
the snapshot's data and ids carry. Viewers at other positions (a late joiner, a stream
that merged two ticks after a stall, another session) have other keys and render their own
frames; nothing about a stream's position, limits or resume point is shared — each stream
still moves its own playhead and counts its own bytes against its own limits.

Frames a resume rebuilds part of (``skip``) are rendered per stream: they are rare and
their bytes are the client's own. Frames that fail (a damaged or unavailable chunk) are
not kept: whoever asks again reads again.

Bounded: at most ``max_entries`` frames and ``max_bytes`` of frame bytes (each entry is
also charged ``ENTRY_OVERHEAD`` for its key and slot); the oldest go first. A co-watched
frame is needed only for the instant its watchers are due, so the bound only has to cover
the frames of one frame interval of every active session, with margin for stragglers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable

ENTRY_OVERHEAD = 200  # bytes charged per entry for its key tuple and dict slot


class SharedFrames:
    """A process's frames by key (see the module): bounded, single-flight."""

    def __init__(self, max_bytes: int, max_entries: int = 4096) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0  # frame bytes held, plus ENTRY_OVERHEAD per entry
        self.renders = 0  # frames rendered here (each once per key while it is held)
        self.shared = 0  # frames handed out without rendering
        self._frames: dict[Hashable, bytes] = {}  # insertion order = age
        self._rendering: dict[Hashable, asyncio.Future[bytes | None]] = {}

    def __len__(self) -> int:
        return len(self._frames)

    async def get(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> bytes:
        """The bytes of the frame ``key``: held, being rendered by another stream (then
        awaited), or rendered now by ``render``.

        The renderer's own failure is its own: it propagates to it, and the streams waiting
        on it get the same exception (the frame's data could not be read for any of them).
        A renderer cancelled mid-render (its client left) hands the job on: its waiters
        render the frame themselves.
        """
        while True:
            data = self._frames.get(key)
            if data is not None:
                self.shared += 1
                return data
            pending = self._rendering.get(key)
            if pending is None:
                return await self._render(key, render)
            # The renderer's cancellation must not cancel this stream, nor this stream's
            # cancellation the renderer: wait on a shield.
            data = await asyncio.shield(pending)
            if data is not None:
                self.shared += 1
                return data
            # None: the renderer was cancelled; one of the waiters renders it instead.

    async def _render(self, key: Hashable, render: Callable[[], Awaitable[bytes]]) -> bytes:
        pending: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._rendering[key] = pending
        try:
            data = await render()
        except asyncio.CancelledError:
            pending.set_result(None)
            raise
        except BaseException as exc:
            pending.set_exception(exc)
            pending.exception()  # seen: a frame nobody else waited for fails quietly
            raise
        else:
            pending.set_result(data)
            self.renders += 1
            self._keep(key, data)
            return data
        finally:
            del self._rendering[key]

    def _keep(self, key: Hashable, data: bytes) -> None:
        cost = len(data) + ENTRY_OVERHEAD
        if cost > self.max_bytes or self.max_entries <= 0:
            return  # larger than the whole bound: handed to its waiters, not kept
        frames = self._frames
        while frames and (self.bytes + cost > self.max_bytes or len(frames) >= self.max_entries):
            oldest = next(iter(frames))
            self.bytes -= len(frames.pop(oldest)) + ENTRY_OVERHEAD
        frames[key] = data
        self.bytes += cost
