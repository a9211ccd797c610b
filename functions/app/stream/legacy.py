"""The legacy client's stream: ``POST /api/auto_dispatch/replay/stream`` with
``{airportId, startTime, endTime, playbackSpeed}`` creates a playing session and streams it;
the first event, ``session``, tells the client the session id (and a stream URL for
EventSource-style resumes). Its two other routes (control, set-params) are the control
API's (``functions.app.control.legacy``): in AWS this one is served by the stream function
(its Function URL), those by the control function.
"""

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import Field

from chunker.format.records import AIRPORT_ID_PATTERN
from functions.app import paths
from functions.app.control.resource import ERRORS, Sessions, view
from functions.app.control.schema import Instant, LegacyBody, SessionCreate, Speed
from functions.app.dependencies import Services, get_services
from functions.app.stream import sse
from functions.app.stream.player import StreamRuntime
from functions.app.stream.routes import open_stream, stream_runtime
from functions.app.threads import SESSION_STORE, run_in
from functions.app.web.identity import Caller
from functions.app.web.problems import documented

router = APIRouter(prefix=paths.LEGACY, tags=["legacy"])


class LegacyStreamRequest(LegacyBody):
    """The legacy client's stream request."""

    airport_id: str = Field(alias="airportId", pattern=AIRPORT_ID_PATTERN)
    start_time: Instant = Field(alias="startTime")
    end_time: Instant = Field(alias="endTime")
    playback_speed: Speed = Field(default=1.0, alias="playbackSpeed")


@router.post(
    paths.STREAM_SUFFIX,
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Events"},
        **ERRORS,
        **documented(e429="Too many concurrent streams for this user (Retry-After)."),
    },
    summary="Legacy client: create a playing session and stream it",
)
async def legacy_stream(
    request: Request,
    body: LegacyStreamRequest,
    caller: Caller,
    service: Sessions,
    services: Annotated[Services, Depends(get_services)],
    runtime: Annotated[StreamRuntime, Depends(stream_runtime)],
    last_event_id: Annotated[str | None, Header(max_length=256)] = None,
) -> StreamingResponse:
    """The legacy client's fetch-based stream: POST with a JSON body, SSE back."""
    create = SessionCreate(
        airport=body.airport_id,
        start=body.start_time,
        end=body.end_time,
        speed=body.playback_speed,
        state="playing",
    )
    session = await run_in(SESSION_STORE, service.create, caller, create)
    session_view = await view(service, caller, session)
    prelude = sse.event("session", orjson.dumps(session_view.model_dump(mode="json")))
    return await open_stream(
        request, services, runtime, session.session_id, caller, last_event_id, [prelude]
    )
