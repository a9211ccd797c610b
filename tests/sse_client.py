"""A minimal, independent SSE reader for tests (WHATWG event-stream parsing rules).

Deliberately not the product's code: it parses the bytes a client would see.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    """A dispatched event."""

    event: str
    data: str
    id: str | None  # the last event id in effect after this event

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Feed bytes, get events; keeps the last event id and retry like a browser."""

    def __init__(self, last_event_id: str | None = None) -> None:
        """``last_event_id``: what a reconnecting browser keeps from its previous connection."""
        self.buffer = ""
        self.last_event_id: str | None = last_event_id
        self.retry_ms: int | None = None
        self.comments: list[str] = []
        self._event = ""
        self._data: list[str] = []
        self._id_buffer: str | None = last_event_id
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def mid_event(self) -> bool:
        """Whether bytes of an unfinished event (or line) were received and are pending."""
        pending_id = self._id_buffer != self.last_event_id
        undecoded = bool(self._decoder.getstate()[0])
        return bool(undecoded or self.buffer or self._data or self._event or pending_id)

    def feed(self, chunk: bytes) -> Iterator[Event]:
        # Decoded as a stream, like a browser: an incomplete multi-byte character at the end
        # waits for its rest; invalid bytes become U+FFFD.
        self.buffer += self._decoder.decode(chunk)
        while True:
            cut = min(
                (
                    i
                    for i in (
                        self.buffer.find("\r\n"),
                        self.buffer.find("\n"),
                        self.buffer.find("\r"),
                    )
                    if i >= 0
                ),
                default=-1,
            )
            if cut < 0 or (cut == len(self.buffer) - 1 and self.buffer[cut] == "\r"):
                return  # no complete line yet (a final CR may be the first half of CRLF)
            width = 2 if self.buffer.startswith("\r\n", cut) else 1
            line, self.buffer = self.buffer[:cut], self.buffer[cut + width :]
            if line == "":
                # Dispatch: only now does the id become the stream's last event id (a
                # truncated event, cut before its blank line, never counts).
                self.last_event_id = self._id_buffer
                if self._data:
                    yield Event(self._event or "message", "\n".join(self._data), self.last_event_id)
                self._event, self._data = "", []
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._data.append(value)
                elif name == "id" and "\0" not in value:
                    self._id_buffer = value
                elif name == "retry" and value.isdigit():
                    self.retry_ms = int(value)
