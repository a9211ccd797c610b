"""The SSE response: transport concerns next to the stream, not in the player's loop.

A client that stops reading does not close its connection: once the socket buffers fill,
each write blocks, and while it blocks the player cannot check its presence lease or its
duration limit. So every write here has a send timeout (``STREAM_SEND_TIMEOUT_S``), cut
short by the stream's hard deadline (its duration limit plus a grace for the final event):
a write still blocked then ends the response, the player's generator is closed (its
``finally`` unsubscribes the session from polling), and the server drops the connection.

The transport also counts what it delivered: ``FramesSent`` (writes that carry events;
heartbeat comments are not frames) and ``BytesSent``, added when the response ends, and
how it ended (``StreamEnd``) for whoever opened the stream (``on_end``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from starlette.responses import StreamingResponse
from starlette.types import Message, Send

from functions.app import metrics

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME
BODY = "http.response.body"


class SendTimeout(Exception):
    """A write was not taken by the client within the send timeout or before the deadline."""


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How a response ended: ``completed`` (the producer ended it, after its final
    event), ``send_timeout`` (the client stopped reading) or ``client_gone`` (the client
    disconnected, or the server or the invocation ended the response first)."""

    how: Literal["completed", "send_timeout", "client_gone"]
    frames: int
    bytes: int


def is_frame(body_part: bytes) -> bool:
    """Whether a write carries events (a heartbeat is a comment line, ``:`` first)."""
    return not body_part.startswith(b":")


def send_budget(now: float, send_timeout_s: float, hard_deadline: float) -> float:
    """Seconds a write started at monotonic time ``now`` may block: the send timeout, cut
    short at the hard deadline (never negative)."""
    return max(0.0, min(send_timeout_s, hard_deadline - now))


class EventStreamResponse(StreamingResponse):
    """A ``text/event-stream`` response whose writes time out (see the module docstring)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        send_timeout_s: float,
        hard_deadline: Callable[[], float],
        headers: dict[str, str] | None = None,
        media_type: str = "text/event-stream; charset=utf-8",
        on_timeout: Callable[[], None] | None = None,
        on_end: Callable[[StreamEnd], None] | None = None,
    ) -> None:
        super().__init__(content, headers=headers, media_type=media_type)
        self.events = content
        self.send_timeout_s = send_timeout_s
        self.hard_deadline = hard_deadline  # monotonic seconds (the player's may move)
        self.timed_out = False
        self.on_timeout = on_timeout
        self.on_end = on_end

    async def _send(self, send: Send, message: Message) -> None:
        # A timer per write (``asyncio.timeout_at``), not a task per write (``wait_for``):
        # this runs for every frame of every stream.
        now = asyncio.get_running_loop().time()
        budget = send_budget(now, self.send_timeout_s, self.hard_deadline())
        try:
            async with asyncio.timeout_at(now + budget):
                await send(message)
        except TimeoutError:
            raise SendTimeout(f"a write blocked for {budget:.1f} s") from None

    async def stream_response(self, send: Send) -> None:
        frames = sent = 0
        completed = False
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await self._send(send, start | {"headers": self.raw_headers})
            async for body_part in self.events:
                await self._send(send, {"type": BODY, "body": body_part, "more_body": True})
                frames += is_frame(body_part)
                sent += len(body_part)
            await self._send(send, {"type": BODY, "body": b"", "more_body": False})
            completed = True
        except SendTimeout as exc:
            # The client stopped reading. Returning without completing the response makes
            # the server close the connection; nothing more can be told to this client.
            self.timed_out = True
            if self.on_timeout is not None:
                self.on_timeout()
            logger.info("stream ended: the client stopped reading", extra={"reason": str(exc)})
        finally:
            # Counted before anything below can be interrupted (a cancelled response).
            metrics.count("FramesSent", frames)
            metrics.measure("BytesSent", MetricUnit.Bytes, sent)
            how: Literal["completed", "send_timeout", "client_gone"] = (
                "completed" if completed else "send_timeout" if self.timed_out else "client_gone"
            )
            if self.on_end is not None:
                self.on_end(StreamEnd(how, frames, sent))
            aclose: Any = getattr(self.events, "aclose", None)
            if aclose is not None:
                await aclose()
