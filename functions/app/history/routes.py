"""History endpoints: published airports and days, manifests, state at t, tracks, flights,
task events. Read-only; any authenticated caller may use them."""

from collections.abc import AsyncIterator, Iterator
from itertools import islice
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response, StreamingResponse

from chunker.format.encoding import dump_model
from chunker.format.keys import DEFAULT_VARIANT, InvalidVariant, check_variant
from chunker.format.records import (
    AIRPORT_ID_PATTERN,
    ENTITY_ID_PATTERN,
    Movement,
    NotificationLevel,
    TaskStatus,
    TaskType,
    VehicleType,
)
from functions.app import paths
from functions.app.control.schema import Instant
from functions.app.dependencies import Services, get_services
from functions.app.history.decision_quality import (
    HIGH_REGRET_MS,
    MAX_LISTED,
    quality_difference,
)
from functions.app.history.export import MEDIA_TYPES, ExportFormat, ExportKind, encode
from functions.app.history.kpis import KpiFilters
from functions.app.history.navigation import EventKind
from functions.app.history.queries import (
    CURSOR_PATTERN,
    DEFAULT_EVENTS,
    DEFAULT_TASK_LIMIT,
    MAX_EVENTS,
    MAX_SEARCH_RESULTS,
    MAX_TASK_LIMIT,
    ExportQuery,
    History,
    TaskQuery,
    day_variants,
)
from functions.app.threads import CHUNK_STORE, run_in
from functions.app.web.identity import Caller
from functions.app.web.problems import documented

router = APIRouter(prefix=paths.AIRPORTS, tags=["history"])

ERRORS = documented(
    e400="`variant` (or `compare`) is not a variant name.",
    e401="No caller identity.",
    e404="Airport, day or data not published; a vehicle, flight or turnaround the day "
    "does not know.",
    e422="Invalid parameters (window reversed or too long).",
)
NAMED_FLIGHT_ERRORS = documented(
    e400="`variant` is not a variant name.",
    e401="No caller identity.",
    e404="Airport or day not published; no flight or turnaround by that name that day.",
    e409="The flight number or callsign names several legs (`detail` lists them): add "
    "`movement` or ask by leg id.",
    e422="Invalid parameters.",
)
FlightKey = Annotated[
    str,
    Path(
        pattern=ENTITY_ID_PATTERN,
        description="Leg id, flight number or callsign (any case).",
        examples=["J44821-20260314-D", "J44821", "JDS4821"],
    ),
]
MovementQuery = Annotated[
    Movement | None, Query(description="Only legs of this movement (disambiguates).")
]
Airport = Annotated[str, Path(pattern=AIRPORT_ID_PATTERN, examples=["XLHI"])]
Date = Annotated[str, Path(pattern=r"^\d{4}-\d{2}-\d{2}$", examples=["2026-03-14"])]
EntityPath = Annotated[str, Path(pattern=ENTITY_ID_PATTERN)]
EntityQuery = Annotated[str | None, Query(pattern=ENTITY_ID_PATTERN)]


VARIANT_DESCRIPTION = (
    "Which dispatch run of the days to read (GET …/days/{date}/variants); default: the "
    "default variant."
)
VariantQuery = Annotated[
    str, Query(max_length=64, description=VARIANT_DESCRIPTION, examples=["nearest-first"])
]


def history(
    services: Annotated[Services, Depends(get_services)], variant: VariantQuery = DEFAULT_VARIANT
) -> History:
    """FastAPI dependency: history queries over the app's chunk reader, of one variant
    (``InvalidVariant``: 400 for a bad name; a variant nothing is published for reads as
    any unpublished day: 404)."""
    return History(services.chunks.of_variant(variant))


Queries = Annotated[History, Depends(history)]


def task_filters(
    task_type: Annotated[TaskType | None, Query()] = None,
    status: Annotated[TaskStatus | None, Query()] = None,
    stand: EntityQuery = None,
    flight_id: EntityQuery = None,
    vehicle_id: EntityQuery = None,
) -> TaskQuery:
    """FastAPI dependency: the task filters of a query (task events, exports)."""
    return TaskQuery(
        task_type=None if task_type is None else task_type.value,
        status=None if status is None else status.value,
        stand=stand,
        flight_id=flight_id,
        vehicle_id=vehicle_id,
    )


TaskFilters = Annotated[TaskQuery, Depends(task_filters)]


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
    "/{airport}/days/{date}/variants",
    responses=ERRORS,
    summary="A day's published variants (dispatch runs), the default first",
)
async def list_variants(
    airport: Airport,
    date: Date,
    caller: Caller,
    services: Annotated[Services, Depends(get_services)],
) -> dict[str, Any]:
    """Every published variant of the day with its version; 404 if none is published."""
    return await run_in(CHUNK_STORE, day_variants, services.chunks, airport, date)


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
    """Vehicles and aircraft (last fix), tasks, flights, recent notifications and the derived state
    (``stands``: occupied stands; ``vehicle_tasks``: each vehicle's current and last task)
    and ``decisions`` (the dispatch decision behind each active task) at ``t``
    (docs/data-format.md)."""
    _, state = await run_in(CHUNK_STORE, queries.state_at, airport, t)
    return _state_json(t, state)


@router.get(
    "/{airport}/vehicles/{vehicle_id}/track",
    responses=ERRORS,
    summary="One vehicle's fixes between two times (at most 6 h); 404 for a vehicle not in "
    "the fleet",
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
    "/{airport}/days/{date}/flights/{flight}",
    responses=NAMED_FLIGHT_ERRORS,
    summary="A flight leg (by leg id, flight number or callsign) with its tasks' timelines",
)
async def get_flight(
    airport: Airport,
    date: Date,
    flight: FlightKey,
    caller: Caller,
    queries: Queries,
    movement: MovementQuery = None,
) -> dict[str, Any]:
    """The leg's latest row and, per task, every status event in order."""
    value = None if movement is None else movement.value
    return await run_in(CHUNK_STORE, queries.flight, airport, date, flight, value)


@router.get(
    "/{airport}/days/{date}/turnarounds",
    responses=ERRORS,
    summary="Search a day's turnarounds by flight, stand and time window",
)
async def search_turnarounds(
    airport: Airport,
    date: Date,
    caller: Caller,
    queries: Queries,
    flight: Annotated[
        str | None,
        Query(pattern=ENTITY_ID_PATTERN, description="Leg id, flight number or callsign."),
    ] = None,
    stand: EntityQuery = None,
    start: Annotated[Instant | None, Query()] = None,
    end: Annotated[Instant | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = 100,
) -> dict[str, Any]:
    """Turnarounds whose legs match every given filter (times overlapping
    ``[start, end)``), by first time; from the day's catalogue alone."""
    found, truncated = await run_in(
        CHUNK_STORE, queries.search_turnarounds, airport, date, flight, stand, start, end, limit
    )
    return {"turnarounds": found, "truncated": truncated}


@router.get(
    "/{airport}/days/{date}/turnarounds/{turnaround}",
    responses=NAMED_FLIGHT_ERRORS,
    summary="A turnaround: both legs, every task's times and vehicle, the critical path",
)
async def get_turnaround(
    airport: Airport,
    date: Date,
    turnaround: Annotated[
        str,
        Path(
            pattern=ENTITY_ID_PATTERN,
            description="Turnaround id, or a leg id, flight number or callsign of one of its legs.",
            examples=["TA20260314-0042", "J44821"],
        ),
    ],
    caller: Caller,
    queries: Queries,
    movement: MovementQuery = None,
) -> dict[str, Any]:
    """See docs/api.md *Turnarounds* for every field and the critical-path rule."""
    value = None if movement is None else movement.value
    return await run_in(CHUNK_STORE, queries.turnaround, airport, date, turnaround, value)


@router.get(
    "/{airport}/days/{date}/vehicles/{vehicle_id}/day",
    responses=ERRORS,
    summary="A vehicle's day: its task chain and its idle, driving and servicing time",
)
async def get_vehicle_day(
    airport: Airport, date: Date, vehicle_id: EntityPath, caller: Caller, queries: Queries
) -> dict[str, Any]:
    """The vehicle's tasks in order with their times and delays, and totals over the day;
    see docs/api.md *A vehicle's day* for each figure's definition."""
    return await run_in(CHUNK_STORE, queries.vehicle_day, airport, date, vehicle_id)


@router.get(
    "/{airport}/tasks",
    responses=ERRORS,
    summary="Task events in a window (≤ 6 h), paged",
)
async def get_task_events(
    airport: Airport,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
    query: TaskFilters,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_TASK_LIMIT,
            description=f"Events per page (default {DEFAULT_TASK_LIMIT}, at most "
            f"{MAX_TASK_LIMIT}).",
        ),
    ] = DEFAULT_TASK_LIMIT,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="The `next` of the previous page (same window and filters).",
        ),
    ] = None,
) -> dict[str, Any]:
    """Task status events with ``start <= t < end`` matching every given filter, oldest
    first, ``limit`` per page: ``truncated`` says more follow, ``next`` is the cursor of
    the next page."""
    events, following = await run_in(
        CHUNK_STORE, queries.task_events, airport, start, end, query, limit, cursor
    )
    return {
        "start": start,
        "end": end,
        "events": events,
        "truncated": following is not None,
        "next": following,
    }


# The KPI-style filters (KPIs, decision quality), each repeatable.
StandsQuery = Annotated[list[Annotated[str, Query(pattern=ENTITY_ID_PATTERN)]] | None, Query()]
TaskTypesQuery = Annotated[list[TaskType] | None, Query()]
VehicleTypesQuery = Annotated[list[VehicleType] | None, Query()]


def kpi_filters(
    stand: StandsQuery = None,
    task_type: TaskTypesQuery = None,
    vehicle_type: VehicleTypesQuery = None,
) -> KpiFilters:
    """FastAPI dependency: the KPI-style filters of a query (None: not filtered; each may
    be repeated), shared by the KPIs and the decision quality."""
    return KpiFilters(
        stands=None if stand is None else frozenset(stand),
        task_types=None if task_type is None else frozenset(t.value for t in task_type),
        vehicle_types=None if vehicle_type is None else frozenset(v.value for v in vehicle_type),
    )


WindowFilters = Annotated[KpiFilters, Depends(kpi_filters)]


@router.get(
    "/{airport}/kpis",
    responses=ERRORS,
    summary="KPIs of a window (≤ 12 h): on-time departures, task delays, utilisation",
)
async def get_kpis(
    airport: Airport,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
    filters: WindowFilters,
) -> dict[str, Any]:
    """See docs/api.md *KPIs* for each figure's definition and what each filter narrows;
    every filter may be repeated."""
    return await run_in(CHUNK_STORE, queries.kpis, airport, start, end, filters)


@router.get(
    "/{airport}/days/{date}/events",
    responses=ERRORS,
    summary="A day's navigable events: late blocks, conflicts, reassignments, overdue tasks, "
    "escalations, decisions",
)
async def get_events(
    airport: Airport,
    date: Date,
    caller: Caller,
    queries: Queries,
    kind: Annotated[
        list[EventKind] | None, Query(description="Only these kinds (repeatable); all if absent.")
    ] = None,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=MAX_EVENTS,
            description=f"Events at most (default {DEFAULT_EVENTS}); `truncated` says more "
            "followed.",
        ),
    ] = DEFAULT_EVENTS,
) -> dict[str, Any]:
    """Every event of the day the dashboard's timeline marks and its next / previous keys
    jump between, by time, with the ids of what it names; see docs/api.md *Events* for
    each kind's rule."""
    kinds = None if kind is None else frozenset(kind)
    return await run_in(CHUNK_STORE, queries.events, airport, date, kinds, limit)


@router.get(
    "/{airport}/decision-quality",
    responses=ERRORS,
    summary="Dispatch decision quality of a window (≤ 12 h): on-time share, regret, "
    "reassignments, no-vehicle escalations, high-regret decisions",
)
async def get_decision_quality(
    airport: Airport,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
    filters: WindowFilters,
    high_regret_ms: Annotated[
        int,
        Query(ge=0, le=86_400_000, description="Regret from which a decision is listed."),
    ] = HIGH_REGRET_MS,
    limit: Annotated[
        int, Query(ge=0, le=MAX_LISTED, description="High-regret decisions listed at most.")
    ] = 20,
    variant: VariantQuery = DEFAULT_VARIANT,
    compare: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Another variant of the same days: its figures under `compare` and "
            "`difference` (compare minus variant, per figure).",
            examples=["nearest-first"],
        ),
    ] = None,
) -> dict[str, Any]:
    """See docs/api.md *Decision quality* for each figure's definition; filters narrow the
    decisions as on the KPIs (the decision's stand, its task's type, the chosen vehicle's
    type) and may be repeated."""
    measured = await run_in(
        CHUNK_STORE,
        queries.decision_quality,
        airport,
        start,
        end,
        filters,
        high_regret_ms,
        limit,
    )
    measured = {"variant": variant, **measured}
    if compare is None:
        return measured
    if check_variant(compare) == variant:
        raise InvalidVariant(f"compare names the queried variant {variant!r}")
    other = History(queries.chunks.of_variant(compare))
    compared = await run_in(
        CHUNK_STORE,
        other.decision_quality,
        airport,
        start,
        end,
        filters,
        high_regret_ms,
        limit,
    )
    return measured | {
        "compare": {"variant": compare, **compared},
        "difference": quality_difference(measured, compared),
    }


EXPORT_BATCH = 256  # pieces pulled per worker-thread hop


async def _pieces(document: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The export's pieces, read in the chunk-store pool (the reads may block on S3)."""
    while True:
        batch = await run_in(CHUNK_STORE, list, islice(document, EXPORT_BATCH))
        if not batch:
            return
        yield b"".join(batch)


@router.get(
    "/{airport}/export/{kind}",
    responses=ERRORS,
    response_class=StreamingResponse,
    summary="Export turnarounds, task events or notifications of a window (≤ 7 days), "
    "CSV or JSON, streamed",
)
async def get_export(
    airport: Airport,
    kind: ExportKind,
    start: Annotated[Instant, Query()],
    end: Annotated[Instant, Query()],
    caller: Caller,
    queries: Queries,
    tasks: TaskFilters,
    format: Annotated[ExportFormat, Query()] = "csv",
    level: Annotated[NotificationLevel | None, Query()] = None,
    flight: Annotated[
        str | None,
        Query(pattern=ENTITY_ID_PATTERN, description="Turnarounds: leg id, number or callsign."),
    ] = None,
) -> StreamingResponse:
    """See docs/api.md *Export* for the columns and which filter applies to which kind."""
    query = ExportQuery(
        tasks,
        level=None if level is None else level.value,
        flight=flight,
    )
    rows = await run_in(CHUNK_STORE, queries.export_rows, kind, airport, start, end, query)
    name = f"{airport}-{kind}-{start}-{end}.{format}"
    return StreamingResponse(
        _pieces(encode(kind, rows, format)),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
