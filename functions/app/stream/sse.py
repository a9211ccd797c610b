"""Server-Sent Events framing (WHATWG HTML, "server-sent events").

Each event is produced as one complete byte string and written in one piece: a client
discards a truncated final event, so an event must never be split across writes.
"""

from __future__ import annotations

import random
import re

from functions.app.domain.errors import STREAM_FAILED, STREAM_FAILED_MESSAGE, describe

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_BAD_ID = re.compile(r"[\0\r\n]")
_BAD_NAME = re.compile(r"[\0\r\n:]")


def event(name: str, data: bytes, event_id: str | None = None) -> bytes:
    """One event. ``data`` may contain any line breaks: each line becomes a ``data:`` field."""
    if not name or _BAD_NAME.search(name):
        raise ValueError(f"invalid event name {name!r}")
    parts = [b"event: ", name.encode(), b"\n"]
    if event_id is not None:
        if _BAD_ID.search(event_id):
            raise ValueError("an event id must not contain NUL, CR or LF")
        parts += [b"id: ", event_id.encode(), b"\n"]
    if b"\n" in data or b"\r" in data:
        for line in _LINE_BREAK.split(data):
            parts += [b"data: ", line, b"\n"]
    else:
        parts += [b"data: ", data, b"\n"]
    parts.append(b"\n")
    return b"".join(parts)


def error_fields(exc: BaseException) -> dict[str, str]:
    """The SSE edge of the error vocabulary: the ``code`` and ``message`` of the final
    ``error`` event of a stream that ``exc`` ended (``message`` is safe to show)."""
    entry = describe(exc)
    if entry is None:
        return {"code": STREAM_FAILED, "message": STREAM_FAILED_MESSAGE}
    return {"code": entry.event_code, "message": entry.event_message}


def comment(text: str = "") -> bytes:
    """A comment line (ignored by clients; keeps idle connections alive)."""
    return b": " + _LINE_BREAK.sub(b" ", text.encode()) + b"\n\n"


def retry(base_ms: int, jitter: float = 0.5, rng: random.Random | None = None) -> bytes:
    """A ``retry:`` field with jitter, so clients do not reconnect in lockstep."""
    spread = (rng or random).uniform(1 - jitter, 1 + jitter)
    return f"retry: {max(100, round(base_ms * spread))}\n\n".encode()
