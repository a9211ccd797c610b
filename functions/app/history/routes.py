"""History endpoints: published airports and days, manifests, state at t, tracks, flights,
task events. Read-only; any authenticated caller may use them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response

from chunker.format.encoding import dump_model
from chunker.format.records import AIRPORT_ID_PATTERN, ENTITY_ID_PATTERN, TaskStatus, TaskType
from functions.app import paths
from functions.app.control.schema import Instant
from functions.app.dependencies import Services, get_services
from functions.app.history.queries import History, TaskQuery
from functions.app.threads import CHUNK_STORE, run_in
from functions.app.web.identity import Caller
from functions.app.web.problems import documented

router = APIRouter(prefix=paths.AIRPORTS, tags=["history"])

ERRORS = documented(
    e401="No caller identity.",
    e404="Airport, day, flight or data not published.",
    e422="Invalid parameters (window reversed or too long).",
)
Airport = Annotated[str, Path(pattern=AIRPORT_ID_PATTERN, examples=["XLHI"])]
Date = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-03-14"])]
EntityPath = Annotated[str, Path(pattern=ENTITY_ID_PATTERN)]
EntityQuery = Annotated[str | None, Query(pattern=ENTITY_ID_PATTERN)]


def history(services: Annotated[Services, Depends(get_services)]) -> History:
    """FastAPI dependency: history queries over the app's chunk reader."""
    return History(services.chunks)


Queries = Annotated[History, Depends(history)]


def _state_json(t: int, state: Any) -> dict[str, Any]:
    keyframe: dict[str, Any] = state.keyframe()
    return {"t": t, **keyframe}


@router.get("", responses=ERRORS, summary="Airports and their published days")
async def list_airports(caller: Caller, queries: Queries) -> dict[str, Any]:
    """Every airport with at least one published service day."""
    return {"airports": await run_in(CHUNK_STORE, queries.airports)}


@router.get("/{airport}/days", responses=ERRORS, summary="Published service days")
async def list_days(airport: Airport, caller: Caller, queries: Queries) -> dict[str, Any]:
    """Service dates of an airport with a published version, oldest first."""
    days = await run_in(CHUNK_STORE, queries.chunks.published_days, airport)
    return {"airport": airport, "days": days}


@router.get(
    "/{airport}/days/{date}/manifest",
    responses=ERRORS,
    summary="A day's manifest: catalogue, layout, timeline histogram, chunk list",
)
async def get_manifest(airport: Airport, date: Date, caller: Caller, queries: Queries) -> Response:
    """The published manifest as stored (see docs/data-format.md)."""
    manifest = await run_in(CHUNK_STORE, queries.manifest, airport, date)
    return Response(dump_model(manifest), media_type="application/json")


@router.get("/{airport}/state", responses=ERRORS, summary="Full replay state at a time")
async def get_state(
    airport: Airport, t: Annotated[Instant, Query()], caller: Caller, queries: Queries
) -> dict[str, Any]:
    """Vehicles (last fix), tasks, flights, recent notifications and the derived state
    (``stands``: occupied stands; ``vehicle_tasks``: each vehicle's current and last task)
    at ``t`` (docs/data-format.md)."""
    _, state = await run_in(CHUNK_STORE, queries.state_at, airport, t)
    return _state_json(t, state)


@router.get(
    "/{airport}/vehicles/{vehicle_id}/track",
    responses=ERRORS,
    summary="One vehicle's fixes between two times (at most 6 h)",
)
async def get_track(
    airport: Airport,
    vehicle_id: EntityPath,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
) -> dict[str, Any]:
    """At most one fix per tick; the first is the last known fix at ``start``."""
    track = await run_in(CHUNK_STORE, queries.vehicle_track, airport, vehicle_id, start, end)
    return {"vehicle_id": vehicle_id, "start": start, "end": end, "fixes": track}


@router.get(
    "/{airport}/days/{date}/flights/{flight_id}",
    responses=ERRORS,
    summary="A flight leg with its tasks and their timelines",
)
async def get_flight(
    airport: Airport, date: Date, flight_id: EntityPath, caller: Caller, queries: Queries
) -> dict[str, Any]:
    """The leg's latest row and, per task, every status event in order."""
    return await run_in(CHUNK_STORE, queries.flight, airport, date, flight_id)


@router.get("/{airport}/tasks", responses=ERRORS, summary="Task events in a window (≤ 6 h)")
async def get_task_events(
    airport: Airport,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
    task_type: Annotated[TaskType | None, Query()] = None,
    status: Annotated[TaskStatus | None, Query()] = None,
    stand: EntityQuery = None,
    flight_id: EntityQuery = None,
    vehicle_id: EntityQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 2_000,
) -> dict[str, Any]:
    """Task status events with ``start <= t < end`` matching every given filter."""
    query = TaskQuery(
        task_type=None if task_type is None else task_type.value,
        status=None if status is None else status.value,
        stand=stand,
        flight_id=flight_id,
        vehicle_id=vehicle_id,
    )
    events, truncated = await run_in(
        CHUNK_STORE, queries.task_events, airport, start, end, query, limit
    )
    return {"start": start, "end": end, "events": events, "truncated": truncated}
