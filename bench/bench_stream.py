"""The SSE stream against the seed's sketch, both served by one uvicorn process.

One run, one server (pinned to CPU 0 when there are two), clients in this process (CPU 1),
S3 and DynamoDB on a moto server, a 2-hour synthetic morning published as chunks:

- pacing: lateness of each frame against the session's playback clock, p50/p99, and the
  drift after ``--minutes`` replay-minutes at 1x, 8x and 64x, for the stream and for the
  seed baseline (``bench/baseline_stream.py``);
- wire bytes/s at 1x, stream vs baseline;
- server CPU per emitted frame, and how many concurrent 10-fps streams one core sustains
  with p99 lateness <= 50 ms (streams share 10 sessions: co-watching, so per-session
  DynamoDB polling stays a fixed cost; see docs/performance.md);
- control -> stream seek latency p50/p95 (a seek posted to the control API until the
  stream's new snapshot arrives);
- time to first event, chunk cached and cold.

The client reads raw bytes: HTTP/1.1 chunked framing and SSE lines parsed here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from bench.common import (
    client_conditions,
    percentile,
    process_cpu_s,
    say,
    start_stream_server,
    write_result,
)
from bench.stack import AIRPORT, publish_morning, server_environment
from functions.app.dependencies import dynamodb_client
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.session_store import SessionStore
from functions.app.domain.sessions import Filters, Session
from functions.app.domain.tokens import issue
from functions.app.stream.frames import FRAME_EVENTS
from functions.local.stack import free_port, moto_server, stop_process, wait_for_http
from synthetic import GeneratorSettings

BUCKET = "bench-stream"
TABLE = "bench-stream-sessions"

TICK_MS = 1_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="replay minutes for pacing")
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)
    parser.add_argument(
        "--ramp", default="50,100,200,300,400,500,600,800", help="concurrent stream counts"
    )
    parser.add_argument("--window", type=float, default=6.0, help="seconds per ramp step")
    parser.add_argument("--seeks", type=int, default=30)
    parser.add_argument(
        "--sessions", type=int, default=10, help="sessions the ramp's streams co-watch"
    )
    parser.add_argument(
        "--co-watchers",
        type=int,
        default=0,
        help="streams per session in the ramp (sessions = streams / this; overrides --sessions)",
    )
    parser.add_argument(
        "--baseline-code",
        default=None,
        help="another checkout (e.g. a detached worktree of the previous commit): a second "
        "server runs its code and every ramp step is measured on both, alternating",
    )
    parser.add_argument("--rounds", type=int, default=1, help="A/B rounds of the ramp")
    parser.add_argument(
        "--profile", default=None, help="cProfile the current server's ramp windows into this file"
    )
    parser.add_argument(
        "--parts", default="first,seek,ramp,pacing", help="which measurements to run"
    )


# --- a raw SSE client ------------------------------------------------------------------


@dataclass
class Received:
    """Events of one stream: (arrival wall ms, event name, id, bytes) per event."""

    events: list[tuple[float, str, str, int]] = field(default_factory=list)
    bytes: int = 0
    opened_ms: float = 0.0
    first_event_ms: float | None = None
    status: int = 0


def _parse_block(block: bytes) -> tuple[str, str]:
    name, event_id = "message", ""
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip().decode()
        elif line.startswith(b"id:"):
            event_id = line[3:].strip().decode()
        elif line.startswith(b"data:"):
            break  # the bench needs names and ids only; data lines follow them
    return name, event_id


async def read_stream(
    port: int,
    path: str,
    received: Received,
    stop: asyncio.Event,
    on_event: Any = None,
) -> None:
    """GET ``path`` and record every event until ``stop`` is set or the stream ends."""
    received.opened_ms = time.time() * 1000
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()
    writer.write(request)
    stop_task = asyncio.ensure_future(stop.wait())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        received.status = int(head.split(b" ", 2)[1])
        if received.status != 200:
            return
        pending = b""  # SSE text not yet split into events
        while not stop.is_set():
            size_task = asyncio.ensure_future(reader.readuntil(b"\r\n"))
            done, _ = await asyncio.wait({size_task, stop_task}, return_when="FIRST_COMPLETED")
            if size_task not in done:
                size_task.cancel()
                return
            size = int(size_task.result().split(b";")[0], 16)
            if size == 0:
                return
            data = await reader.readexactly(size + 2)
            now = time.time() * 1000
            received.bytes += size
            pending += data[:-2]
            *blocks, pending = pending.split(b"\n\n")
            for block in blocks:
                if not block or (block.startswith(b":") and b"\n" not in block):
                    continue  # heartbeat comment
                name, event_id = _parse_block(block)
                if received.first_event_ms is None:
                    received.first_event_ms = now
                received.events.append((now, name, event_id, len(block) + 2))
                if on_event is not None:
                    on_event(now, name, event_id)
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        stop_task.cancel()
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


# The id of a frame's first event: the ramp counts frames by these (see ``_frames``).
FRAME_ID = re.compile(rb"\nid: \d+\.\d+\.(\d+)\.1\n")


class FrameCounter(asyncio.Protocol):
    """A cheap stream reader for the ramp: thousands of streams in one client process.

    No chunked-framing parse and no task per read: every received block is scanned for
    the ids of frames' first events (an SSE event is one chunk, and a chunk's size line
    cannot look like an ``id:`` line), each reported as ``on_frame(arrival ms, until)``.
    """

    def __init__(self, request: bytes, on_frame: Any) -> None:
        self.request = request
        self.on_frame = on_frame
        self.pending = b""
        self.opened = False  # the first event arrived
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time() * 1000
        block = self.pending + data
        cut = block.rfind(b"\n")
        if cut < 0:
            self.pending = block
            return
        if not self.opened and b"\nid: " in block:
            self.opened = True
        for match in FRAME_ID.finditer(block, 0, cut + 1):
            self.on_frame(now, int(match.group(1)))
        self.pending = block[cut:]  # keeps the last line break: it may start an id line

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class Server:
    """One stream server under test: ``code`` names what it serves."""

    code: str
    port: int
    process: subprocess.Popen[bytes]

    def cpu_s(self) -> float:
        return process_cpu_s(self.process.pid)

    def rss_kb(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


PROFILE_TO: str | None = None  # --profile


async def bench_stats(port: int, query: str = "", route: str = "/bench/stats") -> dict[str, Any]:
    """The server's ``/bench/stats`` (bench/stream_app.py), or another bench route."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {route}{query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    return cast(dict[str, Any], json.loads(raw.split(b"\r\n\r\n", 1)[1]))


# --- the set-up ------------------------------------------------------------------------


@dataclass
class Setup:
    port: int
    server: subprocess.Popen[bytes]
    store: SessionStore
    secret: bytes
    day_start: int  # local 06:00, the first generated hour
    pinned: bool = False  # the server on CPU 0, the client on CPU 1
    baseline: Server | None = None  # the same app from another checkout, for an A/B

    @property
    def servers(self) -> list[Server]:
        current = Server("current", self.port, self.server)
        return [current] if self.baseline is None else [current, self.baseline]

    def session(
        self, position: int, speed: float, state: str = "playing", span_ms: int = 3_600_000
    ) -> Session:
        now = time.time_ns() // 1_000_000
        start = self.day_start
        clock = PlaybackClock(state, speed, position, now, start, start + span_ms + 3_600_000)  # type: ignore[arg-type]
        session = Session.new("bench", AIRPORT, clock, Filters(), now, 3_600_000, 86_400)
        self.store.create(session)
        return session

    def stream_path(self, session: Session, last_event_id: str | None = None) -> str:
        token = issue(self.secret, "stream", session.session_id, 3_600, sub="bench")
        path = f"/api/replay/sessions/{session.session_id}/stream?token={token}"
        return path + (f"&resume_from={last_event_id}" if last_event_id else "")

    def server_cpu_s(self) -> float:
        return process_cpu_s(self.server.pid)


def _frames(received: Received) -> list[tuple[float, int]]:
    """(arrival, frame position) per frame of a real stream: the first event of each."""
    frames = []
    for arrival, name, event_id, _ in received.events:
        parts = event_id.split(".")
        is_frame = name in FRAME_EVENTS
        if is_frame and len(parts) == 4 and parts[3] == "1":
            frames.append((arrival, int(parts[2])))
    return frames


def _baseline_frames(received: Received) -> list[tuple[float, int]]:
    return [(a, int(i)) for a, n, i, _ in received.events if n == "vehicle_update" and i]


def _drift_ticks(lateness: list[float], speed: float) -> float | None:
    if len(lateness) < 20:
        return None
    tenth = len(lateness) // 10
    change = percentile(lateness[-tenth:], 50) - percentile(lateness[:tenth], 50)
    return round(max(0.0, change) * speed / TICK_MS, 2)


def _pacing(
    frames: list[tuple[float, int]], clock: PlaybackClock, target: int, bytes_total: int
) -> dict[str, Any]:
    lateness = [arrival - (clock.wall_time_of(pos) or arrival) for arrival, pos in frames]
    target_wall = clock.wall_time_of(target) or 0.0
    reached = [(a, p) for a, p in frames if p >= target]
    shown = [p for a, p in frames if a <= target_wall]
    late_at_target = (reached[0][0] - target_wall) if reached else None
    window_s = (frames[-1][0] - frames[0][0]) / 1000 if len(frames) > 1 else float("nan")
    return {
        "frames": len(frames),
        "lateness_ms_p50": round(percentile(lateness, 50), 1),
        "lateness_ms_p99": round(percentile(lateness, 99), 1),
        # Cumulative drift: how much later frames are at the end than at the start
        # (a constant offset is pacing error, not drift), in ticks of replay time.
        "drift_ticks": _drift_ticks(lateness, clock.speed),
        "lateness_at_target_ms": None if late_at_target is None else round(late_at_target, 1),
        "behind_at_target_ticks": (round((target - max(shown)) / TICK_MS, 1) if shown else None),
        "bytes_per_s": round(bytes_total / window_s) if window_s > 0 else None,
    }


async def measure_pacing(setup: Setup, minutes: float) -> dict[str, Any]:
    span = int(minutes * 60_000)
    start = setup.day_start + 5 * 60_000
    target = start + span
    results: dict[str, Any] = {}
    runs = []
    tasks = []
    stop = asyncio.Event()
    for speed in (1.0, 8.0, 64.0):
        session = setup.session(start, speed)
        real = Received()
        base = Received()
        baseline_path = (
            f"/bench/baseline/stream?airport={AIRPORT}&start={start}&end={target + 60_000}"
            f"&speed={speed:g}"
        )
        opened = time.time() * 1000
        runs.append((speed, session, real, base, opened))
        tasks.append(
            asyncio.ensure_future(read_stream(setup.port, setup.stream_path(session), real, stop))
        )
        tasks.append(asyncio.ensure_future(read_stream(setup.port, baseline_path, base, stop)))
    wall_needed_s = span / 1000 + 5
    say(f"pacing: {minutes:g} replay-minutes at 1x, 8x, 64x (~{wall_needed_s / 60:.1f} min)")
    await asyncio.sleep(wall_needed_s)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for speed, session, real, base, opened in runs:
        clock = session.clock
        # The baseline starts when its request arrives: anchor its ideal clock there.
        base_clock = PlaybackClock("playing", speed, start, int(opened), start, target + 60_000)
        results[f"{speed:g}x"] = {
            "stream": _pacing(_frames(real), clock, target, real.bytes),
            "baseline": _pacing(_baseline_frames(base), base_clock, target, base.bytes),
        }
        say(f"  {speed:g}x: {results[f'{speed:g}x']}")
    return results


async def concurrency_step(
    setup: Setup, server: Server, count: int, window_s: float, session_count: int
) -> dict[str, Any]:
    """``count`` 10-fps streams over ``session_count`` sessions (co-watchers), read by
    ``FrameCounter``s: lateness, server CPU, and server memory per stream over a window."""
    session_count = max(1, min(session_count, count))
    sessions = [setup.session(setup.day_start + 20 * 60_000, 10.0) for _ in range(session_count)]
    lateness: list[float] = []
    measuring = False
    frames = 0

    def on_frame(clock: PlaybackClock, now: float, until: int) -> None:
        nonlocal frames
        if measuring:
            frames += 1
            lateness.append(now - (clock.wall_time_of(until) or now))

    loop = asyncio.get_running_loop()
    before = await bench_stats(server.port, "?collect=true")
    rss_before_kb = server.rss_kb()
    readers: list[FrameCounter] = []
    for index in range(count):
        session = sessions[index % session_count]
        request = (
            f"GET {setup.stream_path(session)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Accept: text/event-stream\r\n\r\n"
        ).encode()
        callback = functools.partial(on_frame, session.clock)
        _, reader = await loop.create_connection(
            functools.partial(FrameCounter, request, callback), "127.0.0.1", server.port
        )
        readers.append(reader)
        if index % 25 == 24:
            await asyncio.sleep(0.02)
    deadline = time.monotonic() + 60
    while any(not r.opened for r in readers) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    opened = sum(r.opened for r in readers)
    await asyncio.sleep(1.0)
    profile = PROFILE_TO if server.code == "current" else None
    if profile:
        await bench_stats(server.port, "", "/bench/profile?action=start")
    cpu0, client0, wall0 = server.cpu_s(), time.process_time(), time.monotonic()
    measuring = True
    await asyncio.sleep(window_s)
    measuring = False
    if profile:
        await bench_stats(server.port, "", f"/bench/profile?action=stop&path={profile}")
    cpu = server.cpu_s() - cpu0
    client_cpu = time.process_time() - client0
    wall = time.monotonic() - wall0
    rss_kb = server.rss_kb()
    during = await bench_stats(server.port, "?lateness=true")
    for reader in readers:
        if reader.transport is not None:
            reader.transport.close()
    await asyncio.gather(*(r.closed for r in readers))
    shared_kb = (during.get("shared_frames_bytes", 0) - before.get("shared_frames_bytes", 0)) / 1024
    chunks_kb = (during.get("chunk_cache_bytes", 0) - before.get("chunk_cache_bytes", 0)) / 1024
    renders = during.get("shared_frames_renders", 0) - before.get("shared_frames_renders", 0)
    handed = during.get("shared_frames_shared", 0) - before.get("shared_frames_shared", 0)
    return {
        "code": server.code,
        "streams": count,
        "sessions": session_count,
        "opened": opened,
        "frames_per_s": round(frames / wall, 1),
        "expected_frames_per_s": count * 10,
        "lateness_ms_p50": round(percentile(lateness, 50), 1),
        "lateness_ms_p99": round(percentile(lateness, 99), 1),
        "server_lateness_ms_p99": during.get("server_lateness_ms_p99"),
        "server_cpu_cores": round(cpu / wall, 3),
        "server_cpu_ms_per_frame": round(cpu * 1000 / frames, 4) if frames else None,
        "client_cpu_cores": round(client_cpu / wall, 3),
        # Server memory the open streams hold beyond the chunk cache and the shared frames.
        "rss_mb": round(rss_kb / 1024, 1),
        "kb_per_stream": round((rss_kb - rss_before_kb - shared_kb - chunks_kb) / count, 1),
        "shared_frames_kb": round(during.get("shared_frames_bytes", 0) / 1024, 1),
        "shared_renders": renders,
        "shared_handed_out": handed,
        "load_average_1m": os.getloadavg()[0],
    }


def _forward(on_event: Any, clock: PlaybackClock, now: float, name: str, event_id: str) -> None:
    on_event(now, event_id, clock)


async def open_streams(
    setup: Setup, sessions: list[Session], count: int, stop: asyncio.Event, on_event: Any
) -> tuple[list[Received], list[asyncio.Future[None]]]:
    """``count`` streams over ``sessions`` (round robin), read until ``stop``, each event
    passed to ``on_event(now, event_id, clock)``; returns once all have their first event
    (or after 60 s)."""
    streams = []
    tasks = []
    for index in range(count):
        session = sessions[index % len(sessions)]
        received = Received()
        streams.append(received)
        callback = functools.partial(_forward, on_event, session.clock)
        path = setup.stream_path(session)
        tasks.append(asyncio.ensure_future(read_stream(setup.port, path, received, stop, callback)))
        if index % 25 == 24:
            await asyncio.sleep(0.05)
    deadline = time.monotonic() + 60
    while any(s.first_event_ms is None for s in streams) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return streams, tasks


@contextlib.contextmanager
def stream_stack(
    vehicles: int,
    flights: int,
    bucket: str,
    table: str,
    extra_env: dict[str, str] | None = None,
    baseline_code: str | None = None,
) -> Iterator[Setup]:
    """The 2-hour morning on a moto server, the stream server on CPU 0 (with two CPUs),
    this process as the client on CPU 1; always stopped."""
    settings = GeneratorSettings(vehicles=vehicles, flights=flights, start_hour=6, hours=2)
    secret = secrets.token_urlsafe(32)
    with moto_server() as aws:
        os.environ.update(aws.environment)
        service_day = publish_morning(settings, bucket, table)
        port = free_port()
        env = server_environment(bucket, table, secret, extra_env)
        pinned = (os.cpu_count() or 1) >= 2
        server = start_stream_server(port, env, pinned)
        baseline: Server | None = None
        if baseline_code is not None:
            base_port = free_port()
            process = start_stream_server(base_port, env, pinned, baseline_code)
            baseline = Server(f"baseline {baseline_code}", base_port, process)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, server)
            if baseline is not None:
                wait_for_http(f"http://127.0.0.1:{baseline.port}/healthz", 60, baseline.process)
            with client_conditions(pinned):  # the instrument: CPU 1, its GC kept out
                yield Setup(
                    port=port,
                    server=server,
                    store=SessionStore(dynamodb_client(), table),
                    secret=secret.encode(),
                    day_start=service_day.start_ms + 6 * 3_600_000,
                    pinned=pinned,
                    baseline=baseline,
                )
        finally:
            stop_process(server)
            if baseline is not None:
                stop_process(baseline.process)


async def measure_concurrency(
    setup: Setup,
    counts: list[int],
    window_s: float,
    sessions: int,
    rounds: int,
    co_watchers: int = 0,
) -> list[Any]:
    """Each count on every server, alternating which goes first from round to round (an
    A/B on a shared machine); a server stops climbing once it is far behind."""
    steps = []
    stopped: set[str] = set()
    for round_index in range(rounds):
        stopped.clear()
        for count in counts:
            servers = setup.servers if round_index % 2 == 0 else setup.servers[::-1]
            for server in servers:
                if server.code in stopped:
                    continue
                per = count // co_watchers if co_watchers else sessions
                step = await concurrency_step(setup, server, count, window_s, per)
                step["round"] = round_index + 1
                say(f"  {step}")
                steps.append(step)
                await asyncio.sleep(1.0)
                if step["lateness_ms_p99"] > 500 or step["opened"] < count:
                    stopped.add(server.code)
    return steps


async def measure_seek(setup: Setup, seeks: int) -> dict[str, Any]:
    session = setup.session(setup.day_start + 60 * 60_000, 1.0)
    seen: dict[int, float] = {}

    def on_event(now: float, name: str, event_id: str) -> None:
        if name == "snapshot":
            seen.setdefault(int(event_id.split(".", maxsplit=1)[0]), now)

    stop = asyncio.Event()
    received = Received()
    task = asyncio.ensure_future(
        read_stream(setup.port, setup.stream_path(session), received, stop, on_event)
    )
    while received.first_event_ms is None:
        await asyncio.sleep(0.05)
    latencies = []
    for index in range(seeks):
        position = setup.day_start + 60 * 60_000 + (index + 1) * 37_000
        body = f'{{"action":"seek","position":{position}}}'.encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", setup.port)
        sent = time.time() * 1000
        writer.write(
            (
                f"POST /api/replay/sessions/{session.session_id}/control HTTP/1.1\r\n"
                "Host: 127.0.0.1\r\nContent-Type: application/json\r\nX-Replay-User: bench\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        await reader.read()
        writer.close()
        timeline = index + 2
        deadline = time.monotonic() + 5
        while timeline not in seen and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        if timeline in seen:
            latencies.append(seen[timeline] - sent)
        await asyncio.sleep(0.3)
    stop.set()
    await task
    return {
        "seeks": seeks,
        "observed": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


async def measure_first_event(setup: Setup, samples: int = 20) -> dict[str, Any]:
    async def once(position: int) -> float:
        session = setup.session(position, 1.0, state="paused")
        received = Received()
        stop = asyncio.Event()
        task = asyncio.ensure_future(
            read_stream(setup.port, setup.stream_path(session), received, stop)
        )
        while received.first_event_ms is None and not task.done():
            await asyncio.sleep(0.001)
        stop.set()
        await task
        assert received.first_event_ms is not None, received.status
        return received.first_event_ms - received.opened_ms

    cold = [await once(setup.day_start + 90 * 60_000 + i * 97_000) for i in range(samples)]
    warm_position = setup.day_start + 30 * 60_000
    await once(warm_position)
    cached = [await once(warm_position) for _ in range(samples)]
    return {
        "cached_p50_ms": round(percentile(cached, 50), 1),
        "cached_p95_ms": round(percentile(cached, 95), 1),
        "cold_p50_ms": round(percentile(cold, 50), 1),
        "cold_p95_ms": round(percentile(cold, 95), 1),
    }


def capacity(ramp: list[dict[str, Any]]) -> dict[str, Any]:
    """Per server: the most streams sustained at p99 <= 50 ms (in every round), and CPU
    and memory per stream at each count; with a baseline, the ratios."""
    by_code: dict[str, dict[str, Any]] = {}
    for code in dict.fromkeys(step["code"] for step in ramp):
        steps = [step for step in ramp if step["code"] == code]
        counts = sorted({step["streams"] for step in steps})
        per_count = {}
        for count in counts:
            runs = [step for step in steps if step["streams"] == count]
            per_count[str(count)] = {
                "p99_ms": [step["lateness_ms_p99"] for step in runs],
                "cpu_ms_per_frame": [step["server_cpu_ms_per_frame"] for step in runs],
                "kb_per_stream": [step["kb_per_stream"] for step in runs],
                "sustained": all(
                    step["lateness_ms_p99"] <= 50 and step["opened"] == count for step in runs
                ),
            }
        sustained = [int(c) for c, v in per_count.items() if v["sustained"]]
        by_code[code] = {
            "max_streams_p99_le_50ms": max(sustained, default=0),
            "by_count": per_count,
        }
    codes = list(by_code)
    if len(codes) == 2:
        current, baseline = (by_code[c]["max_streams_p99_le_50ms"] for c in codes)
        by_code["ratio_max_streams_current_over_baseline"] = (
            round(current / baseline, 2) if baseline else None
        )
    return by_code


def run(args: argparse.Namespace) -> dict[str, Any]:
    # Every stream here is one synthetic user's ("bench"), hundreds per session: the caps on
    # concurrent streams (and their leases) are off; bench load, a user per viewer and five
    # per session, runs with them.
    caps_off = {"STREAM_MAX_PER_USER": "0", "STREAM_MAX_PER_SESSION": "0"}
    parts = set(args.parts.split(","))
    global PROFILE_TO  # noqa: PLW0603 - a bench run's one option, read deep in the ramp
    PROFILE_TO = args.profile and os.path.abspath(args.profile)
    result: dict[str, Any] = {}
    with stream_stack(
        args.vehicles, args.flights, BUCKET, TABLE, caps_off, args.baseline_code
    ) as setup:
        result["settings"] = {
            "vehicles": args.vehicles,
            "flights": args.flights,
            "minutes": args.minutes,
            "ramp_sessions": args.sessions,
            "ramp_co_watchers": args.co_watchers,
            "baseline_code": args.baseline_code,
            "server_pinned_to_one_core": setup.pinned,
            "aws": "moto server (separate process)",
            "load_average_at_start": os.getloadavg(),
        }
        if "first" in parts:
            result["first_event"] = asyncio.run(measure_first_event(setup))
            say(f"first event: {result['first_event']}")
        if "seek" in parts:
            result["seek"] = asyncio.run(measure_seek(setup, args.seeks))
            say(f"seek: {result['seek']}")
        if "ramp" in parts:
            counts = [int(c) for c in args.ramp.split(",")]
            say(f"concurrency ramp (10-fps streams over {args.sessions} sessions):")
            ramp = asyncio.run(
                measure_concurrency(
                    setup, counts, args.window, args.sessions, args.rounds, args.co_watchers
                )
            )
            result["concurrency"] = ramp
            result["capacity"] = capacity(ramp)
            current = [s for s in ramp if s["code"] == "current"]
            sustained = [
                s for s in current if s["lateness_ms_p99"] <= 50 and s["opened"] == s["streams"]
            ]
            at_100 = next((s for s in current if s["streams"] == 100), None)
            result["max_streams_p99_le_50ms"] = max((s["streams"] for s in sustained), default=0)
            result["p99_lateness_ms_at_100_streams"] = at_100["lateness_ms_p99"] if at_100 else None
        if "pacing" in parts:
            pacing = asyncio.run(measure_pacing(setup, args.minutes))
            real_1x = pacing["1x"]["stream"]["bytes_per_s"]
            base_1x = pacing["1x"]["baseline"]["bytes_per_s"]
            result["pacing"] = pacing
            result["bytes_per_s_1x"] = {
                "stream": real_1x,
                "baseline": base_1x,
                "baseline_over_stream": round(base_1x / real_1x, 1) if real_1x else None,
            }
        result["settings"]["load_average_at_end"] = os.getloadavg()
    result["targets"] = {
        "p99_lateness_ms_at_100_streams": 20,
        "drift_ticks_after_10_min": 1,
        "streams_per_core": 2000,
        "streams_per_core_sessions": 200,
        "kb_per_stream_beyond_caches": 200,
        "seek_p95_ms": 250,
        "first_event_cached_ms": 100,
        "bytes_ratio_vs_baseline_1x": 5,
    }
    full = parts >= {"first", "seek", "ramp", "pacing"}
    write_result("stream" if full else "stream_" + "_".join(sorted(parts)), result)
    return result
