"""The app the stream benchmarks serve: the product's app plus bench-only routes.

``uvicorn bench.stream_app:create --factory``; configuration from the environment, as in
``dispatch-replay serve``. Mounted beside the real app (same process, same chunk cache):
the seed baseline stream (``bench/baseline_stream.py``) and ``GET /bench/stats``, the
per-stream machinery's counters, which ``python -m bench load`` polls to prove that
everything a stream started is gone once its client left. Neither is production code.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import threading
from collections import deque
from typing import Any

from fastapi import APIRouter, FastAPI, Request

from bench.baseline_stream import router
from functions.app.application import create_app
from functions.app.stream.routes import stream_runtime

stats_router = APIRouter(include_in_schema=False)
LATENESS_SAMPLES = 100_000  # the last frames' lateness kept for ``/bench/stats?lateness=true``


@stats_router.get("/bench/stats")
async def bench_stats(
    request: Request, lateness: bool = False, tasks: bool = False, collect: bool = False
) -> dict[str, object]:
    """Open streams, session pollers, chunk loads, prefetches and asyncio tasks right now;
    with ``lateness=true`` also the server's own frame lateness (its last 100,000 frames);
    with ``tasks=true`` where every asyncio task is suspended and who watches which session
    (to tell what was left behind); ``collect=true`` runs a full garbage collection first
    (to tell whether what was left behind is only waiting for the cyclic GC).

    Reads private attributes of the stream runtime on purpose: these counters exist for
    the benchmark, not as an operations API. ``asyncio_tasks`` includes this request's own.
    """
    extra: dict[str, object] = {}
    if collect:
        extra["collected"] = gc.collect()
        await asyncio.sleep(0.1)  # let async generators finalized by the GC close
    runtime = stream_runtime(request)
    if lateness:
        samples = sorted(runtime.stats.lateness_ms or ())
        for p in (50, 99):
            rank = min(len(samples) - 1, len(samples) * p // 100)
            extra[f"server_lateness_ms_p{p}"] = round(samples[rank], 1) if samples else None
    if tasks:
        extra["tasks"] = sorted(_where(task) for task in asyncio.all_tasks())
        extra["watched"] = {
            session_id: watch.subscribers
            for session_id, watch in getattr(runtime.watchers, "_watches", {}).items()
        }
    source = runtime.source
    watchers = runtime.watchers
    airports = getattr(source, "_airports", {})
    cache = source.reader.chunks
    return {
        **runtime.stats.as_dict(),
        "session_pollers": watchers.active,
        "watched_sessions": len(getattr(watchers, "_watches", {})),
        "polls": watchers.polls,
        "chunk_loads": len(getattr(source, "_loads", {})),
        "prefetches": len(getattr(source, "_prefetches", ())),
        "day_refreshes": sum(1 for days in airports.values() if days.refreshing is not None),
        "chunk_loads_started": source.loads_started,
        "chunk_waits": source.waits,
        "chunk_cache_items": len(cache),
        "chunk_cache_bytes": cache.bytes,
        **_shared_frames(runtime),
        "asyncio_tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        **extra,
    }


_PROFILE: dict[str, Any] = {}


@stats_router.get("/bench/profile")
async def bench_profile(action: str, path: str = "") -> dict[str, object]:
    """``action=start``: profile the event loop's thread (cProfile); ``action=stop``: stop
    and write the stats to ``path`` (for ``python -m bench stream --profile``)."""
    if action == "start" and "profiler" not in _PROFILE:
        _PROFILE["profiler"] = cProfile.Profile()
        _PROFILE["profiler"].enable()
    elif action == "stop" and "profiler" in _PROFILE:
        profiler = _PROFILE.pop("profiler")
        profiler.disable()
        profiler.dump_stats(path)
    return {"profiling": "profiler" in _PROFILE}


def _shared_frames(runtime: Any) -> dict[str, int]:
    """What the co-watchers' shared frames hold and did (none: an older checkout, or off)."""
    shared = getattr(runtime, "shared_frames", None)
    if shared is None:
        return {}
    return {
        "shared_frames_bytes": shared.bytes,
        "shared_frames_items": len(shared),
        "shared_frames_renders": shared.renders,
        "shared_frames_shared": shared.shared,
    }


def _where(task: asyncio.Task[Any]) -> str:
    """A task as ``name: file:line function > ...`` along its chain of awaits."""
    frames: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 24:
        frame = _first(awaited, ("cr_frame", "ag_frame", "gi_frame"))
        if frame is not None:
            name = frame.f_code.co_filename.rsplit("/", 2)[-1]
            frames.append(f"{name}:{frame.f_lineno} {frame.f_code.co_name}")
        awaited = _first(awaited, ("cr_await", "ag_await", "gi_yieldfrom"))
    return f"{task.get_name()}: " + " > ".join(frames)


def _first(obj: Any, names: tuple[str, ...]) -> Any:
    return next((value for name in names if (value := getattr(obj, name, None))), None)


def create() -> FastAPI:
    """The real app with the bench routes mounted beside it, its streams recording their
    frames' lateness (production streams do not: a benchmark's samples are its own)."""
    app = create_app()
    app.include_router(router)
    app.include_router(stats_router)
    runtime = stream_runtime(Request({"type": "http", "app": app}))
    runtime.stats.lateness_ms = deque(maxlen=LATENESS_SAMPLES)
    return app
