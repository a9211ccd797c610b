"""HTTP endpoints of the stream.

``GET /api/replay/sessions/{session_id}/stream?token=...`` is EventSource-compatible: the
short-lived stream token (from the control API) authenticates it, since EventSource cannot
send headers. Everything that can fail is checked before the 200 is sent — a browser's
EventSource gives up for good on any other status — and the first write (snapshot or
resume) is built before the response starts, so it goes out at once.

Metrics: ``StreamsOpened`` once the first write is built, ``StreamsEnded`` with the
``reason`` the stream ended for when its response ends: the player's final event's reason
(``idle``, ``duration_limit``, ``draining``, ``byte_limit``, ``session_gone``,
``access_revoked``, ``chunk_unavailable``, ``chunk_damaged``), or the transport's
(``send_timeout``, ``client_gone``).
"""

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from chunker.format.keys import check_variant
from functions.app import metrics, paths
from functions.app.dependencies import Services, get_services
from functions.app.domain.leases import holding, release_soon
from functions.app.domain.sessions import (
    AccessRevoked,
    SessionNotFound,
    VariantNotInSession,
    is_session_id,
)
from functions.app.domain.tokens import verify
from functions.app.stream import sse
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.drain import stream_drain
from functions.app.stream.player import Player, StreamRuntime
from functions.app.stream.response import EventStreamResponse, StreamEnd
from functions.app.stream.shared_frames import SharedFrames
from functions.app.stream.watcher import SessionWatchers
from functions.app.threads import SESSION_STORE, run_in

router = APIRouter(tags=["stream"])

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # no proxy buffering
    # Deliberately no "Connection: keep-alive": forbidden in HTTP/2 (Safari drops the stream).
}


def end_reason(player: Player, end: StreamEnd) -> str:
    """Why a stream ended, for ``StreamsEnded``: the transport's reason if it cut the
    stream short, else the player's."""
    if end.how != "completed":
        return end.how
    return player.playhead.end_reason or "completed"


def stream_runtime(request: Request) -> StreamRuntime:
    """The process's shared stream machinery, created on first use."""
    state = request.app.state
    runtime: StreamRuntime | None = getattr(state, "stream_runtime", None)
    if runtime is None:
        services: Services = state.services
        settings = services.settings
        runtime = StreamRuntime(
            settings=settings,
            source=ChunkSource(services.chunks, settings.stream_chunk_wait_s),
            watchers=SessionWatchers(services.sessions, settings.stream_poll_ms / 1000),
            now_ms=services.now_ms,
            shared_frames=(
                SharedFrames(settings.stream_shared_frames_bytes)
                if settings.stream_shared_frames_bytes
                else None
            ),
        )
        state.stream_runtime = runtime
    return runtime


def invocation_deadline_ms(request: Request, now_ms: int) -> int | None:
    """The Lambda invocation's deadline when served by Lambda (Mangum puts the context in
    the ASGI scope), else None."""
    context: Any = request.scope.get("aws.context")
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return None if remaining is None else now_ms + int(remaining())


async def open_stream(
    request: Request,
    services: Services,
    runtime: StreamRuntime,
    session_id: str,
    viewer: str,
    last_event_id: str | None,
    prelude: list[bytes] | None = None,
    variant: str | None = None,
) -> StreamingResponse:
    """Renew presence (which reads the session and checks ``viewer`` may see it, in one
    request), build the first write, and start the response."""
    now = services.now_ms()
    settings = services.settings
    session = await run_in(
        SESSION_STORE,
        services.sessions.renew_presence,
        session_id,
        now + settings.presence_lease_s * 1000,
        now // 1000 + settings.session_ttl_s,
        viewer,
        now,
    )
    if session is None:
        raise SessionNotFound()
    if variant is not None and variant not in session.variants:
        raise VariantNotInSession(
            f"session plays {' and '.join(session.variants)}, not {variant!r}"
        )
    # The caps on concurrent streams (429 StreamCapReached), before any 200.
    leases = services.stream_leases
    lease = await run_in(SESSION_STORE, leases.take, viewer, session_id, now)
    try:
        player = Player(
            runtime,
            session,
            last_event_id,
            invocation_deadline_ms(request, now),
            prelude,
            variant,
        )
        stream_drain(request.app).track(player)  # a stopping server ends it with reconnect
        # Failures here (nothing published, S3 down or too slow, a damaged chunk) become
        # problem+json answers through the app's handlers, before any 200 is sent.
        first = await player.opening()
    except BaseException:
        release_soon(leases, lease)
        raise
    metrics.count("StreamsOpened")

    def ended(end: StreamEnd) -> None:
        metrics.count_by("StreamsEnded", "reason", end_reason(player, end))

    return EventStreamResponse(
        holding(while_allowed(player, viewer, player.run(first)), leases, lease, services.now_ms),
        send_timeout_s=settings.stream_send_timeout_s,
        hard_deadline=player.hard_deadline,
        headers=SSE_HEADERS,
        on_timeout=runtime.stats.count_send_timeout,
        on_end=ended,
    )


async def while_allowed(
    player: Player, viewer: str, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """``body``'s writes while ``viewer`` may still see the session. A member the owner
    removed is told (``error`` ``access_revoked``) at the change that removed them, which
    reaches the player as a new version: the write it caused is not sent."""
    try:
        async for body_part in body:
            if not player.session.can_access(viewer):
                fields = sse.error_fields(AccessRevoked())
                yield player.final("error", fields["code"], **fields)
                return
            yield body_part
    finally:
        close = getattr(body, "aclose", None)  # an async generator: its own finally runs now
        if close is not None:
            await close()


@router.get(
    paths.STREAM,
    summary="Stream a session as Server-Sent Events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": 'The event stream (docs/api.md, "The stream"): events snapshot, '
            "task_update, flight_update, notification, dispatch_decision, stand_update, "
            "vehicle_task_update, vehicle_update, playback, end, reconnect, error.",
        },
        401: {"description": "Missing, invalid or expired stream token (problem+json)."},
        400: {"description": "`variant` is not a variant name (problem+json)."},
        404: {
            "description": "No such session, a variant it does not play, or nothing "
            "published (problem+json)."
        },
        429: {
            "description": "Too many concurrent streams for this user or session "
            "(problem+json, Retry-After)."
        },
        503: {
            "description": "Storage failed or was too slow, or a chunk is damaged "
            "(problem+json, Retry-After)."
        },
    },
)
async def stream_session(
    request: Request,
    session_id: str,
    token: Annotated[str, Query(max_length=2048, description="Stream token from the control API.")],
    services: Annotated[Services, Depends(get_services)],
    runtime: Annotated[StreamRuntime, Depends(stream_runtime)],
    last_event_id: Annotated[str | None, Header(max_length=256)] = None,
    resume_from: Annotated[
        str | None,
        Query(
            max_length=256, description="Resume point for clients that cannot set Last-Event-ID."
        ),
    ] = None,
    variant: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Which of the session's variants to play (default: its own; its "
            "`compare` variant for the second map of a compare view).",
        ),
    ] = None,
) -> StreamingResponse:
    """Open (or resume) the event stream of a session."""
    if not is_session_id(session_id):
        raise SessionNotFound()
    secret = services.settings.stream_token_secret.get_secret_value().encode()
    claims = verify(secret, token, "stream", session_id)  # InvalidStreamToken: 401
    viewer = str(claims.get("sub", ""))
    if variant is not None:
        check_variant(variant)  # InvalidVariant: 400
    return await open_stream(
        request,
        services,
        runtime,
        session_id,
        viewer,
        last_event_id or resume_from,
        variant=variant,
    )
