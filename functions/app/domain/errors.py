"""The error vocabulary: every failure a caller can be told about, named once.

A domain exception subclasses ``DomainError`` and says what it is in the API's words: a
problem type ``slug``, an HTTP ``status``, a ``title``, optionally ``retry_after_s``, and,
if it can end an open stream, the ``event_code`` and ``event_message`` of that stream's
final ``error`` event (snake_case codes the dashboard acts on, docs/streaming.md).
Its message is the *safe detail*: shown to the caller as it is, so it never carries
secrets or AWS internals. Code raises these inside; each edge translates them once:

- HTTP: problem+json (``functions.app.application``, through ``describe``);
- SSE: the final ``error`` event of a stream (``functions.app.stream.sse.error_event``);
- CLI: one line on stderr and an exit status (``functions.local.cli``).

Exceptions defined where this package does not reach (the chunk format's, botocore's, the
history queries' in ``functions.app.history.errors`` and the chunk source's) get their entry
in ``FOREIGN``, so the edges still have one place to ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from chunker.format.day import InvalidServiceDay
from chunker.format.encoding import CorruptChunk
from chunker.format.keys import InvalidIdentifier, InvalidVariant
from chunker.format.read import NotPublished, OutsideDay
from functions.app.history.errors import (
    BadCursor,
    FlightAmbiguous,
    FlightNotFound,
    HistoryError,
    TurnaroundNotFound,
    VehicleNotFound,
)
from functions.app.stream.chunk_source import ChunkTimeout

MAX_DETAIL_CHARS = 300
# The final ``error`` event of a stream that failed in a way no entry names.
STREAM_FAILED = "stream_failed"
STREAM_FAILED_MESSAGE = "the stream failed unexpectedly; reconnect"


class DomainError(Exception):
    """A failure in the API's vocabulary (see the module docstring)."""

    slug: ClassVar[str]
    status: ClassVar[int]
    title: ClassVar[str]
    retry_after_s: int | None = None  # seconds, for Retry-After; instances may set their own
    event_code: ClassVar[str | None] = None
    event_message: ClassVar[str] = ""

    @property
    def detail(self) -> str:
        """The human-readable detail the caller is shown."""
        return str(self)[:MAX_DETAIL_CHARS]

    def extra(self) -> dict[str, Any]:
        """Extension members of the problem document (none by default)."""
        return {}


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    """What an edge needs to say about one error."""

    status: int
    slug: str
    title: str
    detail: str
    retry_after_s: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The exception's own text, for logs; ``detail`` is what the caller may see.
    internal: str = ""
    event_code: str = STREAM_FAILED
    event_message: str = STREAM_FAILED_MESSAGE

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers the answer carries (``Retry-After``)."""
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}


@dataclass(frozen=True, slots=True)
class ForeignKind:
    """The vocabulary entry of an exception type defined outside this package."""

    status: int
    slug: str
    title: str
    retry_after_s: int | None = None
    private: bool = False  # its message carries internals: logged, never sent
    event_code: str | None = None
    event_message: str = ""


# Mid-stream, every failure to read replay data is one of two codes: damaged (retrying
# helps only once the day is re-chunked) or unavailable (retrying soon should work).
_UNAVAILABLE = ("chunk_unavailable", "replay data is temporarily unavailable; reconnect")
_DAMAGED = ("chunk_damaged", "replay data for this position is damaged; retry later")
_TEMPORARY = "Replay data temporarily unavailable"
_STORAGE = ForeignKind(
    503, "dependency-unavailable", "Storage temporarily unavailable", 1, True, *_UNAVAILABLE
)
_NOT_PUBLISHED = ForeignKind(
    404, "not-published", "Nothing published for this airport and time", None, False, *_UNAVAILABLE
)

# Most specific first: the first ``isinstance`` match wins.
FOREIGN: tuple[tuple[type[Exception], ForeignKind], ...] = (
    (NotPublished, _NOT_PUBLISHED),
    (OutsideDay, _NOT_PUBLISHED),
    (FlightNotFound, ForeignKind(404, "flight-not-found", "Flight not found")),
    (FlightAmbiguous, ForeignKind(409, "flight-ambiguous", "Several flights match")),
    (VehicleNotFound, ForeignKind(404, "vehicle-not-found", "Vehicle not found")),
    (TurnaroundNotFound, ForeignKind(404, "turnaround-not-found", "Turnaround not found")),
    (BadCursor, ForeignKind(422, "invalid-query", "Invalid query")),
    (HistoryError, ForeignKind(422, "invalid-query", "Invalid query")),
    (InvalidVariant, ForeignKind(400, "invalid-variant", "Invalid variant")),
    (InvalidIdentifier, ForeignKind(422, "invalid-identifier", "Invalid identifier")),
    (InvalidServiceDay, ForeignKind(422, "invalid-identifier", "Invalid service day")),
    # A damaged chunk stays damaged until the day is re-chunked: clients wait longer.
    (CorruptChunk, ForeignKind(503, "chunk-damaged", "Replay data damaged", 30, False, *_DAMAGED)),
    (ChunkTimeout, ForeignKind(503, "chunks-unavailable", _TEMPORARY, 2, False, *_UNAVAILABLE)),
    (ClientError, _STORAGE),
    (BotoCoreError, _STORAGE),
)
PRIVATE_DETAIL = "Retry shortly."


def foreign_types() -> tuple[type[Exception], ...]:
    """Every type with a ``FOREIGN`` entry (for frameworks that dispatch by type)."""
    return tuple(known for known, _ in FOREIGN)


def describe(exc: BaseException) -> ErrorEntry | None:
    """The vocabulary entry of ``exc``, or None if it is not a failure callers are told
    about (a bug: the edges answer it as an internal error)."""
    internal = " ".join(str(exc).split())[:MAX_DETAIL_CHARS]
    if isinstance(exc, DomainError):
        return ErrorEntry(
            exc.status,
            exc.slug,
            exc.title,
            exc.detail,
            exc.retry_after_s,
            exc.extra(),
            internal,
            exc.event_code or STREAM_FAILED,
            exc.event_message or STREAM_FAILED_MESSAGE,
        )
    for known, kind in FOREIGN:
        if isinstance(exc, known):
            detail = PRIVATE_DETAIL if kind.private else str(exc)[:MAX_DETAIL_CHARS]
            return ErrorEntry(
                kind.status,
                kind.slug,
                kind.title,
                detail,
                kind.retry_after_s,
                {},
                internal,
                kind.event_code or STREAM_FAILED,
                kind.event_message or STREAM_FAILED_MESSAGE,
            )
    return None
