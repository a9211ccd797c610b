"""The seed's stream sketch, faithfully: the baseline the real stream is measured against.

Per tick it looks up the full state at ``current_time``, sends vehicles, tasks and flights
as three full JSON events, then advances ``1 / speed`` seconds of replay and sleeps
``1 / speed`` seconds — so it always plays at 1x whatever the speed, and the time each
tick takes accumulates as drift. (See ../shared/seed/; never used by the product.)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from functions.app.dependencies import Services, get_services

router = APIRouter(prefix="/bench/baseline")


@router.get("/stream")
async def replay_stream(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    airport: Annotated[str, Query()],
    start: Annotated[int, Query()],
    end: Annotated[int, Query()],
    speed: Annotated[float, Query()] = 1.0,
) -> StreamingResponse:
    """GET form of the seed's ``POST /auto_dispatch/replay/stream`` (same loop)."""
    reader = services.chunks

    def get_replay_data(timestamp: int) -> dict[str, Any]:
        manifest = reader.day_at(airport, timestamp)
        state: dict[str, Any] = reader.state_at(manifest, timestamp).keyframe()
        return state

    async def generate_stream() -> AsyncIterator[str]:
        current_time = start
        while current_time <= end:
            if await request.is_disconnected():  # stop when the client leaves
                break
            data = get_replay_data(current_time)
            # The seed's events carry no id; the bench adds the replay time as one so the
            # client can measure pacing the same way for both streams.
            vehicles = json.dumps(data["vehicles"])
            yield f"id: {current_time}\nevent: vehicle_update\ndata: {vehicles}\n\n"
            yield f"event: task_update\ndata: {json.dumps(data['tasks'])}\n\n"
            yield f"event: flight_update\ndata: {json.dumps(data['flights'])}\n\n"
            current_time += int(1000 / speed)
            await asyncio.sleep(1 / speed)

    return StreamingResponse(
        generate_stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "Connection": "keep-alive"},
    )
