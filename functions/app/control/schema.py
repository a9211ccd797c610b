"""HTTP bodies of the control API (requests and the session view)."""

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from chunker.format.day import to_ms
from chunker.format.keys import DEFAULT_VARIANT
from chunker.format.records import AIRPORT_ID_PATTERN
from functions.app.domain.bookmarks import Bookmark
from functions.app.domain.playback import MAX_SPEED, MIN_SPEED, check_speed
from functions.app.domain.sessions import Filters, Session

COMMAND_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_STEP_TICKS = 3_600


def _instant(value: Any) -> Any:
    """Epoch milliseconds, or an ISO 8601 timestamp with an offset."""
    if isinstance(value, str) and not value.lstrip("-").isdigit():
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"not an ISO 8601 time or epoch milliseconds: {value!r}") from exc
        if moment.tzinfo is None:
            raise ValueError("a time needs an offset (e.g. 'Z' or '+08:00')")
        return to_ms(moment)
    return value


Instant = Annotated[
    int,
    BeforeValidator(_instant),
    Field(
        ge=0,
        le=32_503_680_000_000,
        description="Epoch milliseconds (UTC), or ISO 8601 with an offset.",
        examples=[1773446400000, "2026-03-14T08:00:00+08:00"],
    ),
]
# JSON true/false only: lax parsing would take "yes", "on", 1 or "0" as a boolean.
StrictFlag = Annotated[bool, Field(strict=True)]
Speed = Annotated[
    float,
    Field(
        strict=True,  # a number: not a string, not a boolean
        description=f"Replay speed, {MIN_SPEED:g}x to {MAX_SPEED:g}x.",
        examples=[1, 16, 256],
    ),
    AfterValidator(check_speed),
]


class SessionCreate(BaseModel):
    """``POST /api/replay/sessions``."""

    model_config = ConfigDict(extra="forbid")
    airport: str = Field(pattern=AIRPORT_ID_PATTERN, examples=["XLHI"])
    start: Instant
    end: Instant
    speed: Speed = 1.0
    state: Literal["playing", "paused"] = "paused"
    position: Instant | None = Field(default=None, description="Start position (default: start).")
    loop: StrictFlag = False
    filters: Filters = Filters()
    # Checked by the API (400 invalid-variant), not by the schema (422): a name is an
    # identifier like an airport's in a path, and a bad one is the caller's mistake.
    variant: str = Field(
        default=DEFAULT_VARIANT,
        max_length=64,
        description="Which dispatch run of the days to play (GET …/days/{date}/variants).",
        examples=["default"],
    )
    compare: str | None = Field(
        default=None,
        max_length=64,
        description="A second variant to play in sync (compare mode): its stream is the "
        "session's stream with `variant=` it; null for none.",
        examples=["nearest-first"],
    )


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = Field(
        default=None, ge=1, description="Apply only if the session is at this version (else 409)."
    )
    command_id: str | None = Field(
        default=None,
        pattern=COMMAND_ID_PATTERN,
        description="Client-chosen id: a retried command with the same id is applied once.",
    )


class Play(_Command):
    """Start or resume (at the end of a non-looping range: restart from its start)."""

    action: Literal["play"]


class Pause(_Command):
    """Freeze at the current position."""

    action: Literal["pause"]


class Seek(_Command):
    """Jump to a position inside the range (outside is rejected with 422)."""

    action: Literal["seek"]
    position: Instant


class SetSpeed(_Command):
    """Change speed; the position does not jump."""

    action: Literal["set_speed"]
    speed: Speed


class SetRange(_Command):
    """Replace the range; the position is kept, clamped into the new range."""

    action: Literal["set_range"]
    start: Instant
    end: Instant


class SetFilters(_Command):
    """Replace the server-side filters (422 ``contradictory-filters`` if they can match
    nothing). Send ``expected_version`` (or If-Match) so a co-watcher's change made since
    you looked is not replaced silently: a 409 carries the session as it is now."""

    action: Literal["set_filters"]
    filters: Filters


class SetLoop(_Command):
    """Loop the range (or stop at its end)."""

    action: Literal["set_loop"]
    loop: StrictFlag


class Step(_Command):
    """Move whole ticks forward (positive) or back while paused."""

    action: Literal["step"]
    ticks: int = Field(default=1, ge=-MAX_STEP_TICKS, le=MAX_STEP_TICKS)


Command = Annotated[
    Play | Pause | Seek | SetSpeed | SetRange | SetFilters | SetLoop | Step,
    Field(discriminator="action"),
]


class JoinRequest(BaseModel):
    """``POST /api/replay/sessions/join``."""

    model_config = ConfigDict(extra="forbid")
    share_token: str = Field(min_length=10, max_length=2048)


class ClockView(BaseModel):
    """The playback clock, and where it is now by the server's clock."""

    state: Literal["playing", "paused"]
    status: Literal["playing", "paused", "ended"]
    speed: float
    position: int = Field(description="Replay position at server_time (epoch ms).")
    server_time: int = Field(description="Server wall clock when this view was made (epoch ms).")
    anchor_position: int
    anchor_wall: int
    range_start: int
    range_end: int
    loop: bool


class StreamAccess(BaseModel):
    """How to open the session's event stream."""

    url: str
    token: str
    expires_at: int = Field(description="Token expiry, epoch seconds.")


class SessionView(BaseModel):
    """A session as the API shows it."""

    session_id: str
    airport: str
    owner: str
    role: Literal["owner", "member"]
    version: int
    timeline: int
    clock: ClockView
    filters: Filters
    filters_by: str | None = Field(
        default=None, description="Who set the filters last (null: nobody since creation)."
    )
    members: int = Field(description="How many co-watchers joined with a share token.")
    viewer: str = Field(description="The caller's subject (who this view is for).")
    bookmarks_revision: int = Field(
        description="Moves with every change to the session's bookmarks (GET …/bookmarks)."
    )
    created_at: int
    updated_at: int
    expires_at: int
    variant: str = Field(default=DEFAULT_VARIANT, description="The variant it plays.")
    compare: str | None = Field(default=None, description="The variant it is compared with.")
    stream: StreamAccess | None = None

    @classmethod
    def of(
        cls, session: Session, caller: str, now: int, stream: StreamAccess | None
    ) -> "SessionView":
        """The view of ``session`` for ``caller`` at wall time ``now``."""
        clock = session.clock
        return cls(
            session_id=session.session_id,
            airport=session.airport,
            owner=session.owner,
            role="owner" if caller == session.owner else "member",
            version=session.version,
            timeline=session.timeline,
            clock=ClockView(
                state=clock.state,
                status=clock.status_at(now),
                speed=clock.speed,
                position=clock.position_at(now),
                server_time=now,
                anchor_position=clock.anchor_position,
                anchor_wall=clock.anchor_wall,
                range_start=clock.range_start,
                range_end=clock.range_end,
                loop=clock.loop,
            ),
            filters=session.filters,
            filters_by=session.filters_by,
            members=len(session.members),
            viewer=caller,
            bookmarks_revision=session.bookmarks_revision,
            created_at=session.created_at,
            updated_at=session.updated_at,
            expires_at=session.expires_at,
            variant=session.variant,
            compare=session.compare,
            stream=stream,
        )


class ShareView(BaseModel):
    """A share token for co-watching."""

    share_token: str
    expires_at: int = Field(description="Epoch seconds.")


class MembersView(BaseModel):
    """Who joined a session with a share token (the owner's view)."""

    session_id: str
    members: list[str] = Field(description="Subjects, sorted.")
    limit: int = Field(description="How many may join (SESSION_MAX_MEMBERS).")


class BookmarksView(BaseModel):
    """A session's bookmarks and notes."""

    session_id: str
    revision: int = Field(description="The session's bookmarks_revision.")
    limit: int = Field(description="How many bookmarks a session keeps at most.")
    bookmarks: list[Bookmark] = Field(description="In the order they were made.")


class PresenceView(BaseModel):
    """A renewed viewer presence lease."""

    session_id: str
    presence_until: int = Field(description="Epoch ms until which streams keep running.")


class LegacyBody(BaseModel):
    """What every legacy-client body shares: its camelCase names (or ours), nothing else."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
