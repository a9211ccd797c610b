"""Frames computed once per co-watched position: the server's work per frame, shared vs not.

The stream capacity run (``python -m bench stream --co-watchers 10``) measures lateness
on a real server, which a loaded machine makes meaningless (the server gets a fraction of
its core). This one measures what sharing saves in CPU time, which load does not change:
``sessions`` x ``co_watchers`` real ``Player``s over the real ``ChunkSource`` (the
synthetic morning, 150 vehicles, full fleet, chunks published to in-process moto and all
cached before measuring), driven together on one virtual clock by the scheduler of
tests/test_shared_frames.py (every stream due at an instant is woken then; no sleeping).
Each pass plays ``seconds`` of 10-fps playback; the CPU time of the pass
(``time.process_time``) per frame, with ``SharedFrames`` and without, passes alternating.
Every stream's writes are checked equal between the two (the sharing must change no byte).

Not included: HTTP framing and socket writes (per stream either way: see the profile in
docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from moto import mock_aws

from bench.common import say, write_result
from bench.stack import AIRPORT, publish_morning
from chunker.format.read import ChunkReader
from chunker.format.s3 import s3_client
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Filters, Session
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.shared_frames import SharedFrames
from synthetic import GeneratorSettings
from tests.test_player_core import W0
from tests.test_shared_frames import Viewer, watch

BUCKET, TABLE = "bench-sharing", "bench-sharing-sessions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--co-watchers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0, help="virtual seconds per pass")
    parser.add_argument("--passes", type=int, default=3, help="passes of each, alternating")


def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = GeneratorSettings(vehicles=150, flights=300, start_hour=6, hours=2)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        day = publish_morning(settings, BUCKET, TABLE)
        source = ChunkSource(ChunkReader(s3_client(), BUCKET, 512 * 1024 * 1024))
        start = day.start_ms + 6 * 3_600_000 + 20 * 60_000
        sessions = []
        for index in range(args.sessions):
            # Sessions spread over the morning and over a frame interval of wall time.
            clock = PlaybackClock(
                "playing",
                10.0,
                start + (index * 7_919) % 3_000_000,
                W0 - index * 37 % 100,
                start - 20 * 60_000,
                start + 100 * 60_000,
            )
            sessions.append(Session.new("bench", AIRPORT, clock, Filters(), W0, 86_400_000, 86_400))
        viewers = [Viewer(s.session_id) for s in sessions for _ in range(args.co_watchers)]

        def one_pass(shared: bool) -> tuple[float, int, list[list[bytes]], SharedFrames | None]:
            frames = SharedFrames(8 * 1024 * 1024) if shared else None
            cpu = time.process_time()
            watched = watch(sessions, viewers, args.seconds, shared=frames, source=source)
            return time.process_time() - cpu, watched.frames, watched.writes, frames

        say("warming the chunk cache (one pass, not measured)")
        one_pass(False)
        cpu_us: dict[str, list[float]] = {"shared": [], "unshared": []}
        frames_seen = 0
        renders = handed = 0
        for index in range(args.passes):
            order = (False, True) if index % 2 == 0 else (True, False)
            writes: dict[bool, list[list[bytes]]] = {}
            for shared in order:
                cpu, frames, writes[shared], cache = one_pass(shared)
                cpu_us["shared" if shared else "unshared"].append(cpu * 1e6 / frames)
                frames_seen = frames
                if cache is not None:
                    renders, handed = cache.renders, cache.shared
                say(
                    f"  pass {index + 1} {'shared' if shared else 'unshared'}: "
                    f"{cpu * 1e6 / frames:.1f} us/frame ({frames} frames)"
                )
            assert writes[True] == writes[False], "sharing changed the bytes of a stream"
    shared_us = statistics.median(cpu_us["shared"])
    unshared_us = statistics.median(cpu_us["unshared"])
    result = {
        "sessions": args.sessions,
        "co_watchers": args.co_watchers,
        "streams": args.sessions * args.co_watchers,
        "virtual_seconds_per_pass": args.seconds,
        "frames_per_pass": frames_seen,
        "cpu_us_per_frame": cpu_us,
        "cpu_us_per_frame_median": {
            "shared": round(shared_us, 1),
            "unshared": round(unshared_us, 1),
        },
        "unshared_over_shared": round(unshared_us / shared_us, 2),
        "renders_per_pass": renders,
        "handed_out_per_pass": handed,
        "bytes_identical": True,
        "load_average": os.getloadavg(),
    }
    write_result("sharing", result)
    return result
