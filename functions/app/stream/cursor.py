"""Event ids: where a client is, so a reconnect resumes without loss or duplicates.

An id ``{timeline}.{after}.{until}.{delivered}`` says: the client is in frame
``(after, until]`` of replay time (epoch ms) on session timeline ``timeline`` and has
received its first ``delivered`` events. A frame's content is a pure function of its
bounds, the chunks and the filters, so the server can rebuild it and send exactly the
rest. A snapshot at ``P`` is the empty frame ``(P, P]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CURSOR = re.compile(r"^(\d{1,9})\.(\d{1,15})\.(\d{1,15})\.(\d{1,4})$")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A resume point."""

    timeline: int
    after: int
    until: int
    delivered: int

    def __str__(self) -> str:
        return f"{self.timeline}.{self.after}.{self.until}.{self.delivered}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        """The cursor in ``text``, or None if absent or malformed (never an error)."""
        if not text:
            return None
        match = _CURSOR.match(text.strip())
        if match is None:
            return None
        timeline, after, until, delivered = (int(g) for g in match.groups())
        if after > until:
            return None
        return cls(timeline, after, until, delivered)
