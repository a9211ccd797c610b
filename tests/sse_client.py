"""A minimal, independent SSE reader for tests (WHATWG event-stream parsing rules).

Deliberately not the product's code: it parses the bytes a client would see.
"""

from __future__ import annotations

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
        self._raw = b""

    def mid_event(self) -> bool:
        """Whether bytes of an unfinished event (or line) were received and are pending."""
        pending_id = self._id_buffer != self.last_event_id
        return bool(self._raw or self.buffer or self._data or self._event or pending_id)

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._raw += chunk
        try:
            text = self._raw.decode("utf-8")
        except UnicodeDecodeError:
            return  # wait for the rest of a multi-byte character
        self._raw = b""
        self.buffer += text
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
            if cut < 0:
                return
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
