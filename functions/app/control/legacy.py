"""The legacy client's routes, so the client the seed note describes (``fetch-stream.ts`` +
two POSTs) works unchanged. "Legacy" throughout: "seed" in this code base means a random
seed.

- ``POST /api/auto_dispatch/replay/stream`` with ``{airportId, startTime, endTime,
  playbackSpeed}`` creates a playing session and streams it; the first event, ``session``,
  tells the client the session id (and a stream URL for EventSource-style resumes).
- ``POST /api/auto_dispatch/replay/control`` (play / pause / jump) and
  ``POST /api/auto_dispatch/replay/set-params`` (range, speed, filters) address that
  session by ``sessionId`` and map onto the same operations as the REST resource.
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chunker.format.records import AIRPORT_ID_PATTERN
from functions.app import paths
from functions.app.control.routes import ERRORS, Sessions, view
from functions.app.control.schema import (
    Command,
    Instant,
    Pause,
    Play,
    Seek,
    SessionCreate,
    SessionView,
    SetFilters,
    SetRange,
    SetSpeed,
    Speed,
)
from functions.app.dependencies import Services, get_services
from functions.app.domain.sessions import Filters
from functions.app.stream import sse
from functions.app.stream.player import StreamRuntime
from functions.app.stream.routes import open_stream, stream_runtime
from functions.app.threads import SESSION_STORE, run_in
from functions.app.web.identity import Caller
from functions.app.web.problems import documented

router = APIRouter(prefix=paths.LEGACY, tags=["legacy"])


class _LegacyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LegacyStreamRequest(_LegacyBody):
    """The legacy client's stream request."""

    airport_id: str = Field(alias="airportId", pattern=AIRPORT_ID_PATTERN)
    start_time: Instant = Field(alias="startTime")
    end_time: Instant = Field(alias="endTime")
    playback_speed: Speed = Field(default=1.0, alias="playbackSpeed")


class LegacyControlRequest(_LegacyBody):
    """Play / pause / jump, as the legacy control route takes them."""

    session_id: str = Field(alias="sessionId", max_length=64)
    action: Literal["play", "resume", "pause", "jump", "seek"]
    time: Instant | None = Field(default=None, description="Target of jump/seek.")
    expected_version: int | None = Field(default=None, alias="expectedVersion", ge=1)

    @model_validator(mode="after")
    def _target(self) -> LegacyControlRequest:
        if self.action in ("jump", "seek") and self.time is None:
            raise ValueError(f"'{self.action}' needs 'time'")
        return self


class LegacyParamsRequest(_LegacyBody):
    """Range, speed and filters, as the legacy set-params route takes them."""

    session_id: str = Field(alias="sessionId", max_length=64)
    start_time: Instant | None = Field(default=None, alias="startTime")
    end_time: Instant | None = Field(default=None, alias="endTime")
    playback_speed: Speed | None = Field(default=None, alias="playbackSpeed")
    filters: Filters | None = None


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


@router.post(
    "/control",
    response_model=SessionView,
    responses=ERRORS,
    summary="Legacy client: play, pause, jump",
)
async def legacy_control(
    body: LegacyControlRequest, caller: Caller, service: Sessions
) -> SessionView:
    """``play``/``resume``, ``pause``, ``jump``/``seek`` (with ``time``)."""
    command: Command
    version = body.expected_version
    if body.action in ("play", "resume"):
        command = Play(action="play", expected_version=version)
    elif body.action == "pause":
        command = Pause(action="pause", expected_version=version)
    else:
        assert body.time is not None  # checked by the model
        command = Seek(action="seek", position=body.time, expected_version=version)
    session = await run_in(SESSION_STORE, service.control, caller, body.session_id, command)
    return await view(service, caller, session)


@router.post(
    "/set-params",
    response_model=SessionView,
    responses=ERRORS,
    summary="Legacy client: time range, speed, filters",
)
async def legacy_set_params(
    body: LegacyParamsRequest, caller: Caller, service: Sessions
) -> SessionView:
    """The given parameters, range first, applied as one control change (one write)."""
    session = await run_in(SESSION_STORE, service.get, caller, body.session_id)
    commands: list[Command] = []
    if body.start_time is not None or body.end_time is not None:
        start = session.clock.range_start if body.start_time is None else body.start_time
        end = session.clock.range_end if body.end_time is None else body.end_time
        commands.append(SetRange(action="set_range", start=start, end=end))
    if body.playback_speed is not None:
        commands.append(SetSpeed(action="set_speed", speed=body.playback_speed))
    if body.filters is not None:
        commands.append(SetFilters(action="set_filters", filters=body.filters))
    if commands:
        session = await run_in(SESSION_STORE, service.control, caller, body.session_id, *commands)
    return await view(service, caller, session)
