"""The legacy client's control routes, so the client the seed note describes
(``fetch-stream.ts`` + two POSTs) works unchanged. "Legacy" throughout: "seed" in this code
base means a random seed.

- ``POST /api/auto_dispatch/replay/control`` (play / pause / jump) and
  ``POST /api/auto_dispatch/replay/set-params`` (range, speed, filters) address the session
  by ``sessionId`` and map onto the same operations as the REST resource.
- ``POST /api/auto_dispatch/replay/stream``, which creates that session and streams it, is
  the stream's (``functions.app.stream.legacy``).
"""

from typing import Literal

from fastapi import APIRouter
from pydantic import Field, model_validator

from functions.app import paths
from functions.app.control.resource import ERRORS, Sessions, view
from functions.app.control.schema import (
    Command,
    Instant,
    LegacyBody,
    Pause,
    Play,
    Seek,
    SessionView,
    SetFilters,
    SetRange,
    SetSpeed,
    Speed,
)
from functions.app.domain.sessions import Filters
from functions.app.threads import SESSION_STORE, run_in
from functions.app.web.identity import Caller

router = APIRouter(prefix=paths.LEGACY, tags=["legacy"])


class LegacyControlRequest(LegacyBody):
    """Play / pause / jump, as the legacy control route takes them."""

    session_id: str = Field(alias="sessionId", max_length=64)
    action: Literal["play", "resume", "pause", "jump", "seek"]
    time: Instant | None = Field(default=None, description="Target of jump/seek.")
    expected_version: int | None = Field(default=None, alias="expectedVersion", ge=1)

    @model_validator(mode="after")
    def _target(self) -> "LegacyControlRequest":
        if self.action in ("jump", "seek") and self.time is None:
            raise ValueError(f"'{self.action}' needs 'time'")
        return self


class LegacyParamsRequest(LegacyBody):
    """Range, speed and filters, as the legacy set-params route takes them."""

    session_id: str = Field(alias="sessionId", max_length=64)
    start_time: Instant | None = Field(default=None, alias="startTime")
    end_time: Instant | None = Field(default=None, alias="endTime")
    playback_speed: Speed | None = Field(default=None, alias="playbackSpeed")
    filters: Filters | None = None


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
