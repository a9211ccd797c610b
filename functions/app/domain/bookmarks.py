"""Bookmarks and notes, shared by everybody in a session (issue #19 item 5).

A bookmark is a moment (or a range) of the replay, an optional selection (a vehicle, a
flight), a note and its author. Bookmarks are stored with the session, in its DynamoDB item,
so adding one is a conditional write on the session's version like every other change
(re-applied on the current item after a conflict: two viewers bookmarking at once both
keep theirs), and every open stream of the session learns of it through the session change
it already follows (its ``playback`` event carries ``bookmarks_revision``).

Bounded: at most ``MAX_BOOKMARKS`` per session, ``MAX_NOTE_CHARS`` of note each, so the
item (read by every stream's poll) stays small: about 30 KB at the worst.
"""

import secrets
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chunker.format.records import EntityId
from functions.app.domain.errors import DomainError

MAX_BOOKMARKS = 50
MAX_NOTE_CHARS = 500
BOOKMARK_ID_PATTERN = r"^b-[A-Za-z0-9_-]{8,32}$"


class Selection(BaseModel):
    """What the bookmark points at on the map and the board (both optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    vehicle_id: EntityId | None = None
    flight_id: EntityId | None = None


class Bookmark(BaseModel):
    """A bookmark as stored and shown."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bookmark_id: str = Field(pattern=BOOKMARK_ID_PATTERN)
    at: int = Field(description="The moment, epoch ms (the start of a range).")
    end: int | None = Field(default=None, description="End of a range (exclusive), epoch ms.")
    text: str = Field(max_length=MAX_NOTE_CHARS)
    selection: Selection | None = None
    author: str
    created_at: int = Field(description="Wall time it was made, epoch ms.")


class BookmarkLimit(DomainError):
    """The session has as many bookmarks as it may."""

    status = 409
    slug = "bookmarks-full"
    title = "The session has as many bookmarks as it may"


class BookmarkNotFound(DomainError, LookupError):
    """No such bookmark in the session."""

    status = 404
    slug = "bookmark-not-found"
    title = "No such bookmark"


class BookmarkOutsideRange(DomainError):
    """A bookmark must lie inside the session's range."""

    status = 422
    slug = "bookmark-outside-range"
    title = "The bookmark is outside the session's range"


class NotTheAuthor(DomainError, PermissionError):
    """Only a bookmark's author or the session's owner may delete it."""

    status = 403
    slug = "not-bookmark-author"
    title = "Only its author or the session's owner can delete a bookmark"


class BookmarkDraft(BaseModel):
    """A new bookmark as a viewer asks for it (``POST …/bookmarks``)."""

    model_config = ConfigDict(extra="forbid")
    at: int = Field(ge=0, le=32_503_680_000_000, description="The moment, epoch ms.")
    end: int | None = Field(
        default=None, ge=0, le=32_503_680_000_000, description="End of a range, epoch ms."
    )
    text: str = Field(min_length=1, max_length=MAX_NOTE_CHARS, description="The note.")
    selection: Selection | None = None

    @model_validator(mode="after")
    def _sane(self) -> "BookmarkDraft":
        if not self.text.strip():
            raise ValueError("text must not be blank")
        if self.end is not None and self.end <= self.at:
            raise ValueError("end must be after at")
        return self

    def made(self, author: str, now: int) -> Bookmark:
        """The stored bookmark, by ``author`` at wall time ``now``."""
        return Bookmark(
            bookmark_id="b-" + secrets.token_urlsafe(12),
            at=self.at,
            end=self.end,
            text=self.text.strip(),
            selection=self.selection,
            author=author,
            created_at=now,
        )


def check_inside(draft: BookmarkDraft, range_start: int, range_end: int) -> None:
    """``BookmarkOutsideRange`` unless the bookmark lies in ``[range_start, range_end)``."""
    end = draft.at + 1 if draft.end is None else draft.end
    if draft.at < range_start or end > range_end:
        raise BookmarkOutsideRange(
            f"[{draft.at}, {end}) is not inside the range [{range_start}, {range_end})"
        )


def encode(bookmarks: tuple[Bookmark, ...]) -> str:
    """The item attribute (a JSON array)."""
    return orjson.dumps([b.model_dump(exclude_none=True) for b in bookmarks]).decode()


def decode(text: str) -> tuple[Bookmark, ...]:
    """Bookmarks from the item attribute."""
    rows: list[dict[str, Any]] = orjson.loads(text)
    return tuple(Bookmark.model_validate(row) for row in rows)
