"""The control API: replay sessions as a REST resource.

Blocking boto3 calls run in a thread so the event loop (shared with open streams) never
waits on DynamoDB or S3.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Path, Response, status
from fastapi.responses import StreamingResponse

from functions.app import paths
from functions.app.control.resource import ERRORS, Sessions, view
from functions.app.control.schema import (
    BookmarksView,
    Command,
    JoinRequest,
    MembersView,
    PresenceView,
    SessionCreate,
    SessionView,
    ShareView,
)
from functions.app.dependencies import Services, get_services
from functions.app.domain.bookmarks import (
    BOOKMARK_ID_PATTERN,
    MAX_BOOKMARKS,
    Bookmark,
    BookmarkDraft,
    BookmarkNotFound,
)
from functions.app.history import report
from functions.app.history.queries import History
from functions.app.threads import CHUNK_STORE, SESSION_STORE, run_in
from functions.app.web.identity import Caller
from functions.app.web.problems import Problem, documented

router = APIRouter(prefix=paths.SESSIONS, tags=["sessions"])


def _if_match(value: str | None) -> int | None:
    """The version in an ``If-Match`` header (``"3"``, ``W/"3"`` or ``3``)."""
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise Problem(400, "bad-if-match", "Bad If-Match header", "If-Match must be a version.")
    return int(text)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionView,
    responses=ERRORS,
    summary="Create a replay session",
)
async def create_session(
    body: SessionCreate, caller: Caller, service: Sessions, response: Response
) -> SessionView:
    """A new session over published data, owned by the caller."""
    session = await run_in(SESSION_STORE, service.create, caller, body)
    response.headers["Location"] = paths.session_path(session.session_id)
    response.headers["ETag"] = f'"{session.version}"'
    return await view(service, caller, session)


@router.post(
    "/join",
    response_model=SessionView,
    responses={
        **ERRORS,
        **documented(
            e403="Invalid, expired or revoked share token.",
            e409="The session has as many members as it may (`session-full`).",
        ),
    },
    summary="Join with a share token",
)
async def join_session(body: JoinRequest, caller: Caller, service: Sessions) -> SessionView:
    """Redeem a share token: the caller may then view and control the session."""
    session = await run_in(SESSION_STORE, service.join, caller, body.share_token)
    return await view(service, caller, session)


@router.get("/{session_id}", response_model=SessionView, responses=ERRORS, summary="Read a session")
async def get_session(
    session_id: str, caller: Caller, service: Sessions, response: Response
) -> SessionView:
    """The session, its clock as of now, and a fresh stream token."""
    session = await run_in(SESSION_STORE, service.get, caller, session_id)
    response.headers["ETag"] = f'"{session.version}"'
    return await view(service, caller, session)


@router.delete(
    "/{session_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **documented(e403="Only the owner can delete.")},
    summary="Delete a session",
)
async def delete_session(session_id: str, caller: Caller, service: Sessions) -> Response:
    """Delete (owner only); open streams end with an error event ``session_gone``."""
    await run_in(SESSION_STORE, service.delete, caller, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id}/control",
    response_model=SessionView,
    responses={**ERRORS, **documented(e409="Version conflict; `current` is the session now.")},
    summary="Play, pause, seek, change speed, range, filters, loop, or step",
)
async def control_session(
    session_id: str,
    command: Annotated[Command, Body()],
    caller: Caller,
    service: Sessions,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=64)] = None,
) -> SessionView:
    """Apply one control action as a conditional write on the session's version."""
    header_version = _if_match(if_match)
    if header_version is not None:
        if command.expected_version not in (None, header_version):
            raise Problem(
                400,
                "version-mismatch",
                "If-Match and expected_version disagree",
                f"If-Match says {header_version}, the body {command.expected_version}.",
            )
        command = command.model_copy(update={"expected_version": header_version})
    session = await run_in(SESSION_STORE, service.control, caller, session_id, command)
    response.headers["ETag"] = f'"{session.version}"'
    return await view(service, caller, session)


@router.post(
    "/{session_id}/shares",
    status_code=status.HTTP_201_CREATED,
    response_model=ShareView,
    responses={**ERRORS, **documented(e403="Only the owner can share.")},
    summary="Create a share token for co-watching",
)
async def share_session(session_id: str, caller: Caller, service: Sessions) -> ShareView:
    """A token another user redeems with ``POST /api/replay/sessions/join``."""
    token, expires_at = await run_in(SESSION_STORE, service.share, caller, session_id)
    return ShareView(share_token=token, expires_at=expires_at)


@router.delete(
    "/{session_id}/shares",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ERRORS, **documented(e403="Only the owner can revoke.")},
    summary="Revoke every share token issued so far",
)
async def revoke_shares(session_id: str, caller: Caller, service: Sessions) -> Response:
    """Tokens issued before this call no longer let anyone join (403); members who
    already joined stay (remove them with ``DELETE …/members/{member}``)."""
    await run_in(SESSION_STORE, service.revoke_shares, caller, session_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{session_id}/members",
    response_model=MembersView,
    responses={**ERRORS, **documented(e403="Only the owner can list the members.")},
    summary="List the co-watchers who joined",
)
async def list_members(session_id: str, caller: Caller, service: Sessions) -> MembersView:
    """The subjects who joined with a share token (owner only)."""
    session = await run_in(SESSION_STORE, service.members, caller, session_id)
    return MembersView(
        session_id=session_id,
        members=sorted(session.members),
        limit=service.settings.session_max_members,
    )


@router.delete(
    "/{session_id}/members/{member}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **ERRORS,
        **documented(e403="Only the owner can remove others (a member may remove themself)."),
    },
    summary="Remove a co-watcher",
)
async def remove_member(
    session_id: str,
    member: Annotated[str, Path(max_length=200, description="The member's subject.")],
    caller: Caller,
    service: Sessions,
) -> Response:
    """The member can no longer read, control or open a stream of the session (a share
    token they still hold lets them back in unless the owner revoked tokens)."""
    await run_in(SESSION_STORE, service.remove_member, caller, session_id, member)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{session_id}/presence",
    response_model=PresenceView,
    responses=ERRORS,
    summary="Viewer heartbeat: keep the session's streams running",
)
async def renew_presence(session_id: str, caller: Caller, service: Sessions) -> PresenceView:
    """Streams stop when no viewer renewed presence within the lease (default 120 s)."""
    until = await run_in(SESSION_STORE, service.renew_presence, caller, session_id)
    return PresenceView(session_id=session_id, presence_until=until)


@router.post(
    "/{session_id}/stream-token",
    response_model=SessionView,
    responses=ERRORS,
    summary="A fresh stream token (and the session)",
)
async def stream_token(session_id: str, caller: Caller, service: Sessions) -> SessionView:
    """Stream tokens are short-lived; get a new one before reconnecting after expiry."""
    session = await run_in(SESSION_STORE, service.get, caller, session_id)
    return await view(service, caller, session)


# --- bookmarks and notes -------------------------------------------------------------------


@router.get(
    "/{session_id}/bookmarks",
    response_model=BookmarksView,
    responses=ERRORS,
    summary="The session's bookmarks and notes",
)
async def list_bookmarks(session_id: str, caller: Caller, service: Sessions) -> BookmarksView:
    """Everybody in the session sees every bookmark. A stream's ``playback`` event carries
    ``bookmarks_revision``: read this again when it moves."""
    session = await run_in(SESSION_STORE, service.get, caller, session_id)
    return BookmarksView(
        session_id=session_id,
        revision=session.bookmarks_revision,
        limit=MAX_BOOKMARKS,
        bookmarks=list(session.bookmarks),
    )


@router.post(
    "/{session_id}/bookmarks",
    status_code=status.HTTP_201_CREATED,
    response_model=Bookmark,
    responses={
        **ERRORS,
        **documented(
            e409="The session has as many bookmarks as it may (`bookmarks-full`).",
            e422="Invalid values, or outside the session's range (`bookmark-outside-range`).",
        ),
    },
    summary="Bookmark a moment (or a range) with a note",
)
async def add_bookmark(
    session_id: str, body: BookmarkDraft, caller: Caller, service: Sessions
) -> Bookmark:
    """A bookmark by the caller (owner or member): a time or range inside the session's
    range, an optional selection (vehicle, flight) and a note. Co-watchers' open streams
    learn of it at once (``bookmarks_revision`` in their next ``playback`` event)."""
    return await run_in(SESSION_STORE, service.add_bookmark, caller, session_id, body)


@router.delete(
    "/{session_id}/bookmarks/{bookmark_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **ERRORS,
        **documented(
            e403="Only its author or the session's owner can delete a bookmark.",
        ),
    },
    summary="Delete a bookmark",
)
async def delete_bookmark(
    session_id: str,
    bookmark_id: Annotated[str, Path(pattern=BOOKMARK_ID_PATTERN)],
    caller: Caller,
    service: Sessions,
) -> Response:
    """The bookmark's author or the session's owner deletes it (404 if there is none)."""
    await run_in(SESSION_STORE, service.delete_bookmark, caller, session_id, bookmark_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{session_id}/bookmarks/{bookmark_id}/report",
    response_class=StreamingResponse,
    responses={
        **ERRORS,
        200: {"content": {"text/html": {}}, "description": "The report, one HTML file."},
    },
    summary="An incident report for a bookmark: notes, KPIs, events, Gantt, map (HTML)",
)
async def get_report(
    session_id: str,
    bookmark_id: Annotated[str, Path(pattern=BOOKMARK_ID_PATTERN)],
    caller: Caller,
    service: Sessions,
    services: Annotated[Services, Depends(get_services)],
) -> StreamingResponse:
    """A self-contained HTML file (no script, nothing fetched) for the bookmark's range (a
    moment: the half hour around it; a range: at most its first 12 h): the session's notes
    in it, its KPIs and navigable events, the Gantt of the turnarounds it concerns (the
    bookmarked flight's, else the latest off-blocks'), a map at the bookmark's time. See
    docs/api.md *Incident report*."""
    session = await run_in(SESSION_STORE, service.get, caller, session_id)
    bookmark = next((b for b in session.bookmarks if b.bookmark_id == bookmark_id), None)
    if bookmark is None:
        raise BookmarkNotFound(f"no bookmark {bookmark_id!r} in this session")
    history = History(services.chunks)
    await run_in(CHUNK_STORE, history.chunks.day_at, session.airport, bookmark.at)
    pieces = report.report(history, session.airport, bookmark, session.bookmarks, session_id)

    async def stream() -> AsyncIterator[bytes]:
        while True:
            piece = await run_in(CHUNK_STORE, next, pieces, None)
            if piece is None:
                return
            yield piece.encode()

    name = f"incident-{session.airport}-{bookmark_id}.html"
    return StreamingResponse(
        stream(),
        media_type="text/html; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
