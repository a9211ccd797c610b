"""Load: many concurrent SSE streams plus a steady rate of control actions, with a verdict.

``python -m bench load`` runs ``--streams`` (500) concurrent streams and ``--control-rate``
(20) control actions per second for ``--minutes`` (5) against the local server, checks the
pass criteria below, writes ``bench/results/load.json`` and exits 1 if one fails.

Set-up, as ``python -m bench stream``: S3 and DynamoDB on a moto server (its own process,
not pinned), the synthetic morning 06:00-08:00 (150 vehicles, 300 flights; every 1 s tick
has changes) published with the chunker, the real app (``bench/stream_app.py``, which adds
``GET /bench/stats``) in a uvicorn subprocess pinned to CPU 0, the clients in this process
on CPU 1 reading raw bytes (HTTP chunked framing and SSE parsed here). Before the load every
chunk of the range is loaded once through a stream (``--cold-cache`` skips it), so memory
flatness is about streams and sessions, not the chunk cache filling up.

Workload, as dashboards produce it through the documented API (``AUTH_MODE=local``: the
caller is the ``X-Replay-User`` header):

- ``--sessions`` (100) sessions created with ``POST /api/replay/sessions``, looping over
  06:00-08:00 at 1x, 4x, 16x or 60x from random positions, each shared with co-watchers
  who join with its share token (``--streams`` viewers in all: 100 x 5);
- each viewer holds one stream open with its stream token. On a ``reconnect`` event
  (idle, duration_limit, byte_limit) it waits 150-500 ms, gets a fresh token
  (``POST .../stream-token``) and reconnects with ``Last-Event-ID``, as the dashboard does;
  reconnects are counted, not errors;
- each viewer renews presence (``POST .../presence``) every 45 s, as the dashboard does
  (the lease is 120 s; opening a stream renews it too);
- ``--control-rate`` actions per second, open loop, on random sessions by random viewers
  (co-watchers may control): pause, play, seek, set_speed, each with a ``command_id``;
  half send ``If-Match`` with the version the client last saw. docs/api.md documents
  ``409 version-conflict`` as the answer to a stale If-Match: the client takes the version
  in ``current`` and retries, at most 5 tries; those 409s (and giving up after 5) are
  counted apart, not as errors. Without If-Match the service must apply the action
  (docs/api.md: last writer wins), so a 409 there is an error. A transport error is
  retried once, as browsers do on a reused keep-alive connection (counted apart).

Pass criteria:

1. **no errors**: every stream (re)open answered 200; no ``error`` event; no response ended
   or dropped without a final event; every API request ended 2xx (409s as above).
2. **no stall**, for every viewer, across its reconnects: (a) no gap between received bytes
   (events or heartbeat comments) longer than the heartbeat interval + 5 s; (b) while its
   latest ``playback`` event says ``playing``, no gap between events longer than 2 s of wall
   time (a playing stream sends a frame at least every tick: 1 s at 1x); every stream
   received frames.
3. **memory flat**: the server's RSS (``VmRSS``) sampled every 5 s (faster in runs shorter
   than a minute); after a warm-up (the first 60 s, or the first 20 % of shorter runs) the
   least-squares trend of the samples grows by less than 5 % of their median over the
   measured window. The series and the slope (MB/min) are reported.
4. **nothing left behind**: once every client closed its stream, within 30 s
   ``GET /bench/stats`` reports no open stream, no session poller, no chunk load or
   prefetch, and no more asyncio tasks than before the load. If anything is still there
   after 2 s, the tasks' await chains and the sessions they watch are reported.
5. **measurement valid**: the clients' own event loop woke within 100 ms (p99); on a busy
   machine the gaps would be the instrument's, so the run does not pass.

Reported beside them: the max gap per stream; frame lateness p50/p99 (a frame's arrival
minus the wall time the stream's playback clock, loop-aware, reaches the frame's position,
as in ``bench stream``), "steady" and within 1 s after a control change apart, per speed,
and the server's own; frames of a connection's first write (the catch-up after a resume)
are left out; above 10x frames are paced at 10/s and sample the position, so up to one
tick/speed of lateness is by design; the five latest frames with what their client knew
(to explain a max). Control: latency, control -> stream (a successful control request sent
until each viewer's ``playback`` event carries its version), and beside them a probe of
the store alone (a session read against the same moto every 0.5 s). CPU of server, moto
and clients.

``run_load(LoadConfig(...))`` is the importable core (tests/test_load_harness.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import os
import random
import re
import secrets
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.common import (
    client_conditions,
    percentile,
    process_cpu_s,
    say,
    start_stream_server,
    write_result,
)
from bench.stack import AIRPORT, publish_morning, server_environment
from chunker.format.encoding import ChunkerConfig
from functions.app.dependencies import dynamodb_client
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.session_store import SessionStore
from functions.app.settings import AppSettings
from functions.app.stream.frames import FRAME_EVENTS as FRAME_EVENT_NAMES
from functions.local.stack import free_port, moto_server, stop_process, wait_for_http
from synthetic import GeneratorSettings

BUCKET = "bench-load"
TABLE = "bench-load-sessions"

SPEEDS = (1.0, 4.0, 16.0, 60.0)
RANGE_MS = 2 * 3_600_000  # sessions loop over the generated 06:00-08:00
FRAME_EVENTS = frozenset(FRAME_EVENT_NAMES)
PLAYING_GAP_BOUND_MS = 2_000.0
BYTE_GAP_MARGIN_MS = 5_000.0
MEMORY_GROWTH_BOUND = 0.05
CLIENT_LAG_BOUND_MS = 100.0  # beyond this the clients' own clock is too late to judge stalls
CONTROL_TRIES = 5
WORST_KEPT = 5
STORE_PROBE_INTERVAL_S = 0.5
_REASON = re.compile(rb'"reason":"([a-z_]+)"')
SERIES_STATS = ("open_streams", "session_pollers", "asyncio_tasks", "chunk_cache_items")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=500, help="concurrent SSE streams")
    parser.add_argument("--minutes", type=float, default=5.0, help="wall minutes of load")
    parser.add_argument("--control-rate", type=float, default=20.0, help="control actions/s")
    parser.add_argument("--sessions", type=int, default=100, help="sessions the streams share")
    parser.add_argument("--vehicles", type=int, default=150)
    parser.add_argument("--flights", type=int, default=300)
    parser.add_argument(
        "--stream-max-seconds",
        type=float,
        default=None,
        help="server's STREAM_MAX_SECONDS (default: the app's, 840 s); lower it to force "
        "duration_limit reconnects",
    )
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="start the load with an empty chunk cache (default: every chunk of the range is "
        "loaded first, so memory flatness is not the cache filling)",
    )


@dataclass(frozen=True)
class LoadConfig:
    """One load run."""

    streams: int = 500
    sessions: int = 100
    minutes: float = 5.0
    control_rate: float = 20.0
    vehicles: int = 150
    flights: int = 300
    presence_interval_s: float = 45.0  # the dashboard's PRESENCE_INTERVAL_MS
    drain_timeout_s: float = 30.0
    pin: bool = True  # server on CPU 0, this process on CPU 1 (when there are two)
    warm_cache: bool = True  # load every chunk of the range before the load starts
    server_env: Mapping[str, str] = field(default_factory=dict)
    seed: int = 7

    @property
    def duration_s(self) -> float:
        return self.minutes * 60

    @property
    def warmup_s(self) -> float:
        return min(60.0, 0.2 * self.duration_s)

    @property
    def rss_interval_s(self) -> float:
        # ~5 s; shorter runs sample faster so the post-warm-up window has ~10 samples.
        return min(5.0, self.duration_s / 12)


# --- what a viewer sees ------------------------------------------------------------------


@dataclass
class LoadSession:
    """A session as the clients know it."""

    session_id: str
    speed: float
    range_start: int
    range_end: int
    users: list[str]
    version: int = 1
    state: str = "playing"
    # Version a control action produced -> wall ms its (successful) request was sent.
    sent_at: dict[int, float] = field(default_factory=dict)


class Outcome:
    """Why one connection of a viewer ended."""

    STOPPED = "stopped"
    RECONNECT = "reconnect"
    ERROR = "error"
    GONE = "gone"


@dataclass
class Viewer:
    """One dashboard: a user watching one session through successive connections."""

    index: int
    session: LoadSession
    user: str
    path: str  # stream URL path with a stream token
    last_event_id: str = ""
    opens: Counter[int] = field(default_factory=Counter)
    reconnects: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    snapshots: Counter[str] = field(default_factory=Counter)
    events: int = 0
    frames: int = 0
    ends: int = 0
    bytes: int = 0
    # Stalls, in wall ms across connections: bytes of any kind, and events while playing.
    last_byte: float = 0.0
    max_byte_gap: float = 0.0
    last_event: float = 0.0
    playing: bool = False
    max_playing_gap: float = 0.0
    clock: PlaybackClock | None = None  # as the latest ``playback`` event states it
    last_change: float = 0.0  # arrival of the latest playback or snapshot event
    seen_version: int = 0  # the session version of the latest playback event
    failures: int = 0  # consecutive failed connections (backoff)
    longest_gap: dict[str, Any] = field(default_factory=dict)

    def start(self, now: float) -> None:
        self.last_byte = self.last_event = now

    def saw_bytes(self, now: float, size: int) -> None:
        self.bytes += size
        self.max_byte_gap = max(self.max_byte_gap, now - self.last_byte)
        self.last_byte = now

    def saw_event(self, now: float, name: str, event_id: str) -> None:
        self.events += 1
        if self.playing and now - self.last_event > self.max_playing_gap:
            self.max_playing_gap = now - self.last_event
            # What surrounded the longest silence: enough to find its cause.
            self.longest_gap = {
                "gap_ms": round(now - self.last_event),
                "ended_at_wall_ms": round(now),
                "previous_event_id": self.last_event_id,
                "next_event": f"{name} {event_id}".strip(),
                "speed": self.clock.speed if self.clock else None,
                "ms_since_playback_or_snapshot": round(self.last_event - self.last_change),
            }
        self.last_event = now

    def finish(self, now: float) -> None:
        """The run is over: a silence up to now counts too."""
        self.max_byte_gap = max(self.max_byte_gap, now - self.last_byte)
        if self.playing:
            self.max_playing_gap = max(self.max_playing_gap, now - self.last_event)


def _block_fields(block: bytes) -> tuple[str, str, bytes] | None:
    """(event, id, data) of one SSE block; None for comments and ``retry:``-only blocks."""
    name, event_id, data = "message", "", None
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            data = line[6:] if line[5:6] == b" " else line[5:]
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode()
        elif line.startswith(b"id:"):
            event_id = line[3:].strip().decode()
    return None if data is None else (name, event_id, data)


# --- the load ----------------------------------------------------------------------------


class Load:
    """Everything the clients of one run share: the API client and the tallies."""

    def __init__(self, config: LoadConfig, port: int, client: httpx.AsyncClient) -> None:
        self.config = config
        self.port = port
        self.client = client
        self.rng = random.Random(config.seed)
        self.api_statuses: dict[str, Counter[str]] = {}
        self.api_latency_ms: dict[str, list[float]] = {}
        self.lateness: dict[str, list[float]] = {}
        self.propagation_ms: list[float] = []
        # The latest frames, with what the client knew: explains a max, or finds a bug.
        self.worst_lateness: list[tuple[float, int, dict[str, Any]]] = []
        self.transport_retries = Counter[str]()
        self.control = Counter[str]()
        self.control_actions = Counter[str]()
        self.control_tasks: set[asyncio.Task[None]] = set()
        self.command_ids = 0
        self.tiebreak = itertools.count()
        self.store_read_ms: list[float] = []

    # --- HTTP API ------------------------------------------------------------------------

    async def api(
        self,
        kind: str,
        method: str,
        path: str,
        user: str,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response | None:
        """One API request, its status (or exception) counted under ``kind``.

        A transport error is retried once, as browsers do when a reused keep-alive
        connection was closed under a request (uvicorn closes idle ones after 5 s); control
        commands carry a ``command_id``, so a retry is never applied twice.
        """
        statuses = self.api_statuses.setdefault(kind, Counter())
        headers = {"X-Replay-User": user, **(headers or {})}
        sent = time.perf_counter()
        for attempt in range(2):
            try:
                response = await self.client.request(method, path, json=body, headers=headers)
                break
            except httpx.TransportError as exc:
                if attempt:
                    statuses[type(exc).__name__] += 1
                    return None
                self.transport_retries[f"{kind}:{type(exc).__name__}"] += 1
        statuses[str(response.status_code)] += 1
        self.api_latency_ms.setdefault(kind, []).append((time.perf_counter() - sent) * 1000)
        return response

    async def create_session(self, index: int, users: list[str], day_start: int) -> LoadSession:
        start, end = day_start, day_start + RANGE_MS
        speed = SPEEDS[index % len(SPEEDS)]
        body = {
            "airport": AIRPORT,
            "start": start,
            "end": end,
            "speed": speed,
            "state": "playing",
            "loop": True,
            "position": self.rng.randrange(start, end, 1000),
        }
        created = await self.api("create", "POST", "/api/replay/sessions", users[0], body)
        if created is None or created.status_code != 201:
            raise RuntimeError(f"session not created: {created and created.text}")
        view = created.json()
        return LoadSession(view["session_id"], speed, start, end, users, view["version"])

    async def join_viewers(self, session: LoadSession, first_index: int) -> list[Viewer]:
        """The owner's viewer and one per co-watcher, each with a stream URL of their own."""
        sid = session.session_id
        owner = session.users[0]
        shared = await self.api("share", "POST", f"/api/replay/sessions/{sid}/shares", owner, {})
        if shared is None or shared.status_code != 201:
            raise RuntimeError(f"session not shared: {shared and shared.text}")
        token = shared.json()["share_token"]
        viewers = []
        for offset, user in enumerate(session.users):
            if offset == 0:
                response = await self.api(
                    "stream_token", "POST", f"/api/replay/sessions/{sid}/stream-token", user, {}
                )
            else:
                body = {"share_token": token}
                response = await self.api("join", "POST", "/api/replay/sessions/join", user, body)
            if response is None or response.status_code != 200:
                raise RuntimeError(f"viewer not admitted: {response and response.text}")
            path = response.json()["stream"]["url"]
            viewers.append(Viewer(first_index + offset, session, user, path))
        return viewers

    async def warm_cache(self, day_start: int) -> int:
        """Load every chunk of the range the way streams load them: a paused session at
        each chunk, its stream read up to its first ``playback`` event, then deleted. The
        load then starts with the chunk cache a long-running server has."""
        end = day_start + RANGE_MS
        positions = range(day_start, end, ChunkerConfig().bucket_ms)
        admission = asyncio.Semaphore(8)

        async def one(index: int, position: int) -> None:
            user = f"load-warmup-{index:04d}"
            body = {
                "airport": AIRPORT,
                "start": day_start,
                "end": end,
                "position": position,
                "state": "paused",
            }
            async with admission:
                created = await self.api("warmup", "POST", "/api/replay/sessions", user, body)
                if created is None or created.status_code != 201:
                    raise RuntimeError(f"warm-up session not created: {created and created.text}")
                view = created.json()
                await self.first_write(view["stream"]["url"])
                path = f"/api/replay/sessions/{view['session_id']}"
                await self.api("warmup", "DELETE", path, user)

        await asyncio.gather(*(one(i, p) for i, p in enumerate(positions)))
        return len(positions)

    async def first_write(self, path: str) -> None:
        """Open a stream and close it once its opening write (up to ``playback``) arrived."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            received = b""
            while b"event: playback" not in received:
                data = await reader.read(65_536)
                if not data:
                    raise RuntimeError(f"warm-up stream ended early: {received[:200]!r}")
                received += data
            if not received.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"warm-up stream not opened: {received[:200]!r}")
        finally:
            writer.close()

    async def fresh_token(self, viewer: Viewer) -> None:
        """A new stream token before reconnecting, as the dashboard's renewAndConnect."""
        sid = viewer.session.session_id
        path = f"/api/replay/sessions/{sid}/stream-token"
        response = await self.api("stream_token", "POST", path, viewer.user, {})
        if response is not None and response.status_code == 200:
            viewer.path = response.json()["stream"]["url"]

    async def presence(self, viewer: Viewer) -> None:
        """Renew presence every ``presence_interval_s`` from a random phase."""
        interval = self.config.presence_interval_s
        sid = viewer.session.session_id
        await asyncio.sleep(self.rng.uniform(0, interval))
        while True:
            await self.api("presence", "POST", f"/api/replay/sessions/{sid}/presence", viewer.user)
            await asyncio.sleep(interval)

    # --- control -------------------------------------------------------------------------

    def choose_action(self, session: LoadSession) -> dict[str, object]:
        """Mostly playing: while playing pause 20 %, else seek or set_speed; while paused
        play 80 %, else seek. Positions inside the range, speeds among ``SPEEDS``."""
        roll = self.rng.random()
        seek = {
            "action": "seek",
            "position": self.rng.randrange(session.range_start, session.range_end, 1000),
        }
        if session.state == "paused":
            return {"action": "play"} if roll < 0.8 else seek
        if roll < 0.2:
            return {"action": "pause"}
        if roll < 0.6:
            return seek
        speed = self.rng.choice([s for s in SPEEDS if s != session.speed])
        return {"action": "set_speed", "speed": speed}

    async def control_action(self, session: LoadSession) -> None:
        """One action by a random co-watcher; a stale If-Match gets 409: re-read, retry."""
        user = self.rng.choice(session.users)
        self.command_ids += 1
        command = {**self.choose_action(session), "command_id": f"load-{self.command_ids}"}
        action = str(command["action"])
        self.control_actions[action] += 1
        if_match = self.rng.random() < 0.5
        self.control["if_match" if if_match else "last_writer_wins"] += 1
        path = f"/api/replay/sessions/{session.session_id}/control"
        for attempt in range(CONTROL_TRIES):
            if attempt:
                self.control["retries"] += 1
            headers = {"If-Match": f'"{session.version}"'} if if_match else None
            sent = time.time() * 1000
            response = await self.api("control", "POST", path, user, command, headers)
            if response is None:
                self.control["failed:no_answer"] += 1
                return
            if response.status_code == 409 and not if_match:
                # Without If-Match the service re-applies on conflicts itself; docs/api.md
                # promises both racers get their action applied, so a 409 here is an error.
                self.control["failed:409_without_if_match"] += 1
                return
            if response.status_code == 409:
                self.control["conflicts_409"] += 1
                current = response.json().get("current") or {}
                session.version = max(session.version, int(current.get("version", 0)))
                continue
            if 200 <= response.status_code < 300:
                view = response.json()
                session.sent_at[view["version"]] = sent
                session.version = max(session.version, view["version"])
                session.state = view["clock"]["state"]
                session.speed = view["clock"]["speed"]
                self.control["ok"] += 1
                return
            self.control[f"failed:{response.status_code}"] += 1
            return
        # Still stale after every try: the session changed under this client each time. Every
        # answer was a documented 409, so this is contention, not an error: counted apart.
        self.control["if_match_gave_up"] += 1

    async def drive_control(self, sessions: list[LoadSession]) -> None:
        """``control_rate`` actions per second, open loop: a slow answer delays nothing."""
        rate = self.config.control_rate
        if rate <= 0:
            return
        loop = asyncio.get_running_loop()
        began = loop.time()
        count = 0
        while True:
            count += 1
            await asyncio.sleep(max(0.0, began + count / rate - loop.time()))
            task = asyncio.create_task(self.control_action(self.rng.choice(sessions)))
            self.control_tasks.add(task)
            task.add_done_callback(self.control_tasks.discard)

    # --- streams -------------------------------------------------------------------------

    async def watch(self, viewer: Viewer) -> None:
        """A viewer's stream, reopened whenever it ends, until cancelled."""
        viewer.start(time.time() * 1000)
        while True:
            outcome, delay_s = await self.connection(viewer)
            if outcome == Outcome.GONE:
                return
            await asyncio.sleep(delay_s)
            await self.fresh_token(viewer)

    def backoff(self, viewer: Viewer) -> float:
        viewer.failures += 1
        return min(15.0, 0.5 * 2 ** (viewer.failures - 1)) * self.rng.uniform(0.75, 1.25)

    async def connection(self, viewer: Viewer) -> tuple[str, float]:
        """One connection: read until the server says to come back, fails or drops.

        Returns why it ended and how long to wait before reconnecting.
        """
        request = f"GET {viewer.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        if viewer.last_event_id:
            request += f"Last-Event-ID: {viewer.last_event_id}\r\n"
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            viewer.errors["connect_failed"] += 1
            return Outcome.ERROR, self.backoff(viewer)
        try:
            writer.write((request + "\r\n").encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            viewer.opens[status] += 1
            if status != 200:
                return Outcome.ERROR, self.backoff(viewer)
            viewer.failures = 0
            opening = True  # until the first playback event: the catch-up write
            pending = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    viewer.errors["ended_without_final_event"] += 1
                    return Outcome.ERROR, self.backoff(viewer)
                data = await reader.readexactly(size + 2)
                now = time.time() * 1000
                viewer.saw_bytes(now, size)
                pending += data[:-2]
                if b"\n\n" not in pending:
                    continue
                *blocks, pending = pending.split(b"\n\n")
                for block in blocks:
                    fields = _block_fields(block)
                    if fields is None:
                        continue  # heartbeat comment or retry field
                    name, event_id, payload = fields
                    viewer.saw_event(now, name, event_id)
                    if event_id:
                        viewer.last_event_id = event_id
                    ended = self.on_event(viewer, now, name, event_id, payload, opening)
                    if name == "playback":
                        opening = False
                    if ended is not None:
                        return ended
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            viewer.errors["dropped"] += 1
            return Outcome.ERROR, self.backoff(viewer)
        except ValueError:  # a status line or chunk size that is not a number
            viewer.errors["protocol_error"] += 1
            return Outcome.ERROR, self.backoff(viewer)
        finally:
            writer.close()

    def note_lateness(self, viewer: Viewer, now: float, late: float, event_id: str) -> None:
        """Keep the ``WORST_KEPT`` latest frames with their context."""
        worst = self.worst_lateness
        if len(worst) == WORST_KEPT and late <= worst[0][0]:
            return
        context = {
            "viewer": viewer.index,
            "session": viewer.session.session_id,
            "event_id": event_id,
            "late_ms": round(late, 1),
            "ms_since_playback_or_snapshot": round(now - viewer.last_change, 1),
            "clock": dataclasses.asdict(viewer.clock) if viewer.clock else None,
        }
        entry = (late, next(self.tiebreak), context)
        if len(worst) < WORST_KEPT:
            heapq.heappush(worst, entry)
        else:
            heapq.heapreplace(worst, entry)

    def on_event(
        self, viewer: Viewer, now: float, name: str, event_id: str, data: bytes, opening: bool
    ) -> tuple[str, float] | None:
        """Tally one event; the connection's outcome if it is a final one."""
        if name in FRAME_EVENTS:
            if event_id.endswith(".1"):  # the first event of a frame
                viewer.frames += 1
                clock = viewer.clock
                if not opening and clock is not None:
                    until = int(event_id.split(".")[2])
                    due = clock.wall_time_of(until, near=now)
                    if due is not None:
                        # Within 1 s of a control change, frames carry the change's
                        # propagation (poll interval) too: kept apart as well.
                        after_change = now - viewer.last_change < 1000
                        bucket = f"{clock.speed:g}x" + (" after_change" if after_change else "")
                        self.lateness.setdefault(bucket, []).append(now - due)
                        self.note_lateness(viewer, now, now - due, event_id)
            return None
        if name == "playback":
            payload = orjson.loads(data)
            # The clock re-anchored where the event says it is: the server's own arithmetic
            # (wall_time_of, loop-aware) then says when each frame is due.
            viewer.clock = PlaybackClock(
                state="playing" if payload["state"] == "playing" else "paused",
                speed=payload["speed"],
                anchor_position=payload["position"],
                anchor_wall=payload["server_time"],
                range_start=payload["range"]["start"],
                range_end=payload["range"]["end"],
                loop=payload["loop"],
            )
            viewer.playing = payload["state"] == "playing"
            viewer.last_change = now
            version = payload["version"]
            if not opening:
                # Control -> stream: each action's version reaching this viewer.
                sent_at = viewer.session.sent_at
                for produced in range(viewer.seen_version + 1, version + 1):
                    if produced in sent_at:
                        self.propagation_ms.append(now - sent_at[produced])
            viewer.seen_version = max(viewer.seen_version, version)
            return None
        if name == "snapshot":
            match = _REASON.search(data, 0, 400)
            viewer.snapshots[match.group(1).decode() if match else "?"] += 1
            viewer.last_change = now
            return None
        if name == "end":
            viewer.ends += 1
            viewer.playing = False
            return None
        payload = orjson.loads(data) if data.startswith(b"{") else {}
        if name == "reconnect":
            viewer.reconnects[str(payload.get("reason"))] += 1
            return Outcome.RECONNECT, self.rng.uniform(0.15, 0.5)  # the dashboard's delay
        if name == "error":
            code = str(payload.get("code"))
            viewer.errors[f"error_event:{code}"] += 1
            if code == "session_gone":
                return Outcome.GONE, 0.0
            return Outcome.ERROR, float(payload.get("retry_ms", 3000)) / 1000
        viewer.errors[f"unexpected_event:{name}"] += 1
        return None


# --- the server side ---------------------------------------------------------------------


def read_rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MiB, None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def sample_server(
    pid: int,
    client: httpx.AsyncClient,
    interval_s: float,
    began: float,
    samples: list[dict[str, Any]],
) -> None:
    """Every ``interval_s``: seconds since ``began`` (loop clock), the server's RSS (MiB)
    and the counters that would explain a growth (streams, pollers, tasks, cache)."""
    loop = asyncio.get_running_loop()
    count = 0
    while True:
        at = round(loop.time() - began, 1)
        rss = read_rss_mb(pid)
        if rss is None:
            return
        sample: dict[str, Any] = {"t_s": at, "rss_mb": round(rss, 1)}
        try:
            stats = await server_stats(client)
            sample.update({key: stats[key] for key in SERIES_STATS})
        except httpx.HTTPError as exc:  # recorded, not fatal: the RSS series goes on
            sample["stats_error"] = repr(exc)
        samples.append(sample)
        count += 1
        await asyncio.sleep(max(0.0, began + count * interval_s - loop.time()))


async def probe_store(store: SessionStore, session_ids: list[str], read_ms: list[float]) -> None:
    """Time a consistent session read against the moto server, as the service makes it,
    every ``STORE_PROBE_INTERVAL_S``: how much of a control action's latency is the store's."""
    rng = random.Random(7)
    while True:
        started = time.perf_counter()
        await asyncio.to_thread(store.get, rng.choice(session_ids), True)
        read_ms.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(STORE_PROBE_INTERVAL_S)


async def measure_loop_lag(lags: list[float]) -> None:
    """How late this process's own event loop wakes up: the instrument's health."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + 0.1
        await asyncio.sleep(0.1)
        lags.append((loop.time() - due) * 1000)


async def server_stats(
    client: httpx.AsyncClient, lateness: bool = False, tasks: bool = False, collect: bool = False
) -> dict[str, Any]:
    """``GET /bench/stats`` of bench/stream_app.py."""
    params = {
        "lateness": str(lateness).lower(),
        "tasks": str(tasks).lower(),
        "collect": str(collect).lower(),
    }
    try:
        response = await client.get("/bench/stats", params=params)
    except httpx.RemoteProtocolError:
        # The server closed the idle keep-alive connection as this request reused it
        # (uvicorn's keep-alive timeout is 5 s, as is the sampling interval): once more.
        response = await client.get("/bench/stats", params=params)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def _leftovers(stats: Mapping[str, Any], tasks_before: int) -> dict[str, Any]:
    """What per-stream work is still there (empty: all gone)."""
    left = {
        key: stats[key]
        for key in ("open_streams", "session_pollers", "watched_sessions", "chunk_loads")
        if stats[key]
    }
    if stats["prefetches"]:
        left["prefetches"] = stats["prefetches"]
    if stats["asyncio_tasks"] > tasks_before:
        left["asyncio_tasks"] = f"{stats['asyncio_tasks']} > {tasks_before} before"
    return left


async def wait_drained(
    client: httpx.AsyncClient, tasks_before: int, timeout_s: float
) -> tuple[dict[str, Any], float, dict[str, Any], dict[str, Any] | None]:
    """Poll ``/bench/stats`` until nothing per-stream is left or ``timeout_s`` passed.

    Also returns, if something was still there after 2 s, what it was then (tasks and
    watched sessions): the evidence of a slow or failed clean-up.
    """
    began = time.monotonic()
    lingering: dict[str, Any] | None = None
    while True:
        elapsed = time.monotonic() - began
        stats = await server_stats(client, tasks=lingering is None and elapsed > 2)
        left = _leftovers(stats, tasks_before)
        if left and "tasks" in stats:
            lingering = {"after_s": round(elapsed, 1), **left, "tasks": stats["tasks"]}
            lingering["watched"] = stats["watched"]
        if not left or elapsed > timeout_s:
            return stats, round(elapsed, 2), left, lingering
        await asyncio.sleep(0.2)


# --- one run -----------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    day_start: int
    heartbeat_s: float
    moto_pid: int


async def drive(config: LoadConfig, server: Server) -> dict[str, Any]:
    """Set up the sessions, run the load, let the clients leave; the raw tallies."""
    # Dashboards each have their own connections: the pool must not be what queues requests.
    # But few stay idle: httpcore scans (and polls the socket of) every pooled connection
    # for each request, so 500 idle ones after the set-up burst cost this process most of
    # a core and made it the bottleneck. Idle ones close before uvicorn's 5 s keep-alive.
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=32, keepalive_expiry=4.0)
    base_url = f"http://127.0.0.1:{server.port}"
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as api_client,
        # The instrument's own connection: never queued behind the load's requests.
        httpx.AsyncClient(base_url=base_url, timeout=60) as client,
    ):
        load = Load(config, server.port, api_client)
        sessions_count = max(1, min(config.sessions, config.streams))
        per_session = [config.streams // sessions_count] * sessions_count
        for index in range(config.streams % sessions_count):
            per_session[index] += 1
        say(f"load: {sessions_count} sessions, {config.streams} viewers: creating and joining")
        admission = asyncio.Semaphore(16)

        async def admit(index: int, viewers: int, first: int) -> list[Viewer]:
            users = [f"load-{index:04d}-{j}" for j in range(viewers)]
            async with admission:
                session = await load.create_session(index, users, server.day_start)
                return await load.join_viewers(session, first)

        firsts = [sum(per_session[:i]) for i in range(sessions_count)]
        groups = await asyncio.gather(*(admit(i, n, firsts[i]) for i, n in enumerate(per_session)))
        viewers = [viewer for group in groups for viewer in group]
        sessions = [group[0].session for group in groups]
        if config.warm_cache:
            say("load: loading every chunk of the range first (--cold-cache skips this)")
            await load.warm_cache(server.day_start)
        before = await server_stats(client)
        loop = asyncio.get_running_loop()
        series: list[dict[str, Any]] = []
        lags: list[float] = []
        began = loop.time()
        cpu0, client_cpu0 = process_cpu_s(server.process.pid), time.process_time()
        moto_cpu0 = process_cpu_s(server.moto_pid)
        pid = server.process.pid
        background = [
            asyncio.create_task(sample_server(pid, client, config.rss_interval_s, began, series)),
            asyncio.create_task(measure_loop_lag(lags)),
            asyncio.create_task(
                probe_store(
                    SessionStore(dynamodb_client(), TABLE),
                    [session.session_id for session in sessions],
                    load.store_read_ms,
                )
            ),
        ]
        load_average = [round(x, 2) for x in os.getloadavg()]  # other work on the machine?
        say(f"load: opening {len(viewers)} streams; {config.minutes:g} min of load")
        streams = []
        for viewer in viewers:
            streams.append(asyncio.create_task(load.watch(viewer)))
            if len(streams) % 25 == 0:
                await asyncio.sleep(0.05)  # a ramp of ~1 s per 500, as browsers would trickle in
        workers = [asyncio.create_task(load.presence(viewer)) for viewer in viewers]
        workers.append(asyncio.create_task(load.drive_control(sessions)))
        await asyncio.sleep(max(0.0, began + config.duration_s - loop.time()))
        # The clients leave: control and presence stop, streams close, in-flight actions end.
        stopped = time.time() * 1000
        wall = loop.time() - began
        server_cpu = process_cpu_s(server.process.pid) - cpu0
        client_cpu = time.process_time() - client_cpu0
        moto_cpu = process_cpu_s(server.moto_pid) - moto_cpu0
        for task in workers:
            task.cancel()
        at_stop = await server_stats(client, lateness=True)
        for task in streams:
            task.cancel()
        outcomes = await asyncio.gather(*workers, *streams, return_exceptions=True)
        crashed = [
            repr(outcome)
            for outcome in outcomes
            if isinstance(outcome, BaseException)
            and not isinstance(outcome, asyncio.CancelledError)
        ]
        for viewer in viewers:
            viewer.finish(stopped)
        if load.control_tasks:
            await asyncio.wait(set(load.control_tasks), timeout=60)
        say("load: clients gone; waiting for the server to drop every per-stream task")
        after, drain_s, left, lingering = await wait_drained(
            client, before["asyncio_tasks"], config.drain_timeout_s
        )
        if left:  # the verdict is taken; would a full garbage collection release it?
            collected = await server_stats(client, collect=True)
            left["after_gc_collect_in_server"] = _leftovers(collected, before["asyncio_tasks"])
        if lingering is not None:  # and what the clients of those sessions saw
            lingering["their_viewers"] = [
                _viewer_state(viewer, stopped)
                for viewer in viewers
                if viewer.session.session_id in lingering["watched"]
            ]
        rss_after = read_rss_mb(server.process.pid)
        for task in background:
            task.cancel()
        for outcome in await asyncio.gather(*background, return_exceptions=True):
            if not isinstance(outcome, asyncio.CancelledError | type(None)):
                crashed.append(f"instrument: {outcome!r}")  # a dead sampler or probe
    return {
        "load": load,
        "viewers": viewers,
        "sessions": sessions,
        "series": series,
        "stopped": stopped,
        "rss_after_drain_mb": None if rss_after is None else round(rss_after, 1),
        "loop_lag_ms": lags,
        "wall_s": wall,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "moto_cpu_s": moto_cpu,
        "load_average_at_start": load_average,
        "stats": {"before": before, "at_stop": at_stop, "after": after},
        "drain_s": drain_s,
        "left": left,
        "lingering": lingering,
        "crashed": crashed,
    }


def _viewer_state(viewer: Viewer, stopped: float) -> dict[str, Any]:
    clock = viewer.clock
    return {
        "viewer": viewer.index,
        "session": viewer.session.session_id,
        "state": clock.state if clock else None,
        "speed": clock.speed if clock else None,
        "opens": dict(viewer.opens),
        "frames": viewer.frames,
        "bytes": viewer.bytes,
        "last_event_id": viewer.last_event_id,
        "last_byte_before_stop_ms": round(stopped - viewer.last_byte),
    }


def _counter_sum(counters: list[Counter[Any]]) -> dict[str, int]:
    total: Counter[Any] = Counter()
    for counter in counters:
        total.update(counter)
    return {str(key): value for key, value in sorted(total.items(), key=lambda kv: str(kv[0]))}


def _distribution(values: list[float]) -> dict[str, float | int | None]:
    return {
        "count": len(values),
        "p50_ms": round(percentile(values, 50), 1) if values else None,
        "p99_ms": round(percentile(values, 99), 1) if values else None,
        "max_ms": round(max(values), 1) if values else None,
    }


def _least_squares_slope(points: list[tuple[float, float]]) -> float:
    """Slope of the least-squares line through ``points`` (y per x)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def memory_verdict(series: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """Criterion 3 over the RSS series."""
    measured = [(s["t_s"], s["rss_mb"]) for s in series if s["t_s"] >= warmup_s]
    result: dict[str, Any] = {
        "bound": f"least-squares growth over the post-warm-up window < "
        f"{MEMORY_GROWTH_BOUND:.0%} of its median",
        "warmup_s": round(warmup_s, 1),
        "rss_mb_series": [[s["t_s"], s["rss_mb"]] for s in series],
    }
    if len(measured) < 3:
        return {**result, "passed": False, "why": f"only {len(measured)} samples after warm-up"}
    median = percentile([mb for _, mb in measured], 50)
    slope_per_s = _least_squares_slope(measured)
    window_s = measured[-1][0] - measured[0][0]
    growth = slope_per_s * window_s
    return {
        **result,
        "passed": growth < MEMORY_GROWTH_BOUND * median,
        "post_warmup_median_mb": round(median, 1),
        "slope_mb_per_min": round(slope_per_s * 60, 2),
        "fitted_growth_mb": round(growth, 2),
        "growth_bound_mb": round(MEMORY_GROWTH_BOUND * median, 1),
        "min_mb": min(mb for _, mb in measured),
        "max_mb": max(mb for _, mb in measured),
    }


def verdict(config: LoadConfig, server: Server, raw: dict[str, Any]) -> dict[str, Any]:
    """The figures and the four criteria from a run's raw tallies."""
    load: Load = raw["load"]
    viewers: list[Viewer] = raw["viewers"]
    opens = _counter_sum([v.opens for v in viewers])
    errors = _counter_sum([v.errors for v in viewers])
    reconnects = _counter_sum([v.reconnects for v in viewers])
    api = {kind: dict(sorted(c.items())) for kind, c in sorted(load.api_statuses.items())}
    bad_api = {
        kind: {status: n for status, n in statuses.items() if not status.startswith("2")}
        for kind, statuses in api.items()
    }
    # A 409 answers a stale If-Match (documented); it is retried and counted apart. A 409
    # without If-Match is an error: it is in control_failed below.
    bad_api["control"] = {s: n for s, n in bad_api.get("control", {}).items() if s != "409"}
    control_failed = {k: n for k, n in load.control.items() if k.startswith("failed:")}
    bad_api = {kind: statuses for kind, statuses in bad_api.items() if statuses}
    non_200 = {status: n for status, n in opens.items() if status != "200"}
    no_errors = {
        "passed": not non_200
        and not errors
        and not bad_api
        and not control_failed
        and not raw["crashed"],
        "bound": "every stream (re)open 200; no error event, drop or unfinished response; "
        "every API request 2xx (409 version conflicts retried, counted apart)",
        "stream_opens_not_200": non_200,
        "stream_errors": errors,
        "api_not_2xx": bad_api,
        "control_actions_failed": control_failed,
        "client_crashes": raw["crashed"],
    }
    byte_bound = server.heartbeat_s * 1000 + BYTE_GAP_MARGIN_MS
    byte_gaps = [float(round(v.max_byte_gap)) for v in viewers]
    playing_gaps = [float(round(v.max_playing_gap)) for v in viewers]
    stalled = [
        v.index
        for v in viewers
        if v.max_byte_gap > byte_bound or v.max_playing_gap > PLAYING_GAP_BOUND_MS
    ]
    no_stalls = {
        "passed": not stalled and all(v.frames for v in viewers),
        "bound": f"per stream: no byte for > {byte_bound / 1000:g} s (heartbeat "
        f"{server.heartbeat_s:g} s + 5 s); no event for > {PLAYING_GAP_BOUND_MS / 1000:g} s "
        "while playing; every stream received frames",
        "stalled_streams": stalled[:50],
        "stalled_detail": [
            {**_viewer_state(v, raw["stopped"]), "longest_playing_gap": v.longest_gap}
            for v in viewers
            if v.index in stalled[:10]
        ],
        "stalled_count": len(stalled),
        "streams_without_frames": sum(1 for v in viewers if not v.frames),
        "max_byte_gap_ms": max(byte_gaps, default=0),
        "max_playing_gap_ms": max(playing_gaps, default=0),
        "playing_gap_per_stream_p50_p99_ms": [
            round(percentile(playing_gaps, 50)),
            round(percentile(playing_gaps, 99)),
        ],
    }
    memory = memory_verdict(raw["series"], config.warmup_s)
    stats = raw["stats"]
    cleanup = {
        "passed": not raw["left"],
        "bound": f"within {config.drain_timeout_s:g} s of the clients leaving: no open "
        "stream, session poller, chunk load or prefetch; asyncio tasks back to the "
        "pre-load count",
        "drained_in_s": raw["drain_s"],
        "left_over": raw["left"],
        "lingering_after_2s": raw["lingering"],
        "before": stats["before"],
        "at_stop": stats["at_stop"],
        "after": stats["after"],
    }
    steady = [x for key, values in load.lateness.items() if " " not in key for x in values]
    after_change = [x for key, values in load.lateness.items() if " " in key for x in values]
    wall = raw["wall_s"]
    lags = raw["loop_lag_ms"]
    lag_p99 = percentile(lags, 99) if lags else float("inf")
    instrument = {
        "passed": lag_p99 <= CLIENT_LAG_BOUND_MS,
        "bound": f"the clients' event loop woke within {CLIENT_LAG_BOUND_MS:g} ms (p99): "
        "otherwise gaps and lateness are the instrument's, not the server's; rerun on a "
        "quiet machine",
        "client_loop_lag_ms_p99": round(lag_p99, 1),
        "load_average_at_start": raw["load_average_at_start"],
    }
    criteria = {
        "no_errors": no_errors,
        "no_stalls": no_stalls,
        "memory_flat": memory,
        "cleanup": cleanup,
        "measurement_valid": instrument,
    }
    return {
        "passed": all(c["passed"] for c in criteria.values()),
        "settings": {
            "streams": config.streams,
            "sessions": len(raw["sessions"]),
            "minutes": config.minutes,
            "control_rate_per_s": config.control_rate,
            "speeds": list(SPEEDS),
            "vehicles": config.vehicles,
            "flights": config.flights,
            "presence_interval_s": config.presence_interval_s,
            "server_env": dict(config.server_env),
            "server_pinned_to_cpu0": config.pin and (os.cpu_count() or 1) >= 2,
            "load_average_at_start": raw["load_average_at_start"],
            "aws": "moto server (separate process)",
        },
        "criteria": criteria,
        "streams": {
            "viewers": len(viewers),
            "opens": opens,
            "reconnects": reconnects,
            "snapshots": _counter_sum([v.snapshots for v in viewers]),
            "end_events": sum(v.ends for v in viewers),
            "frames": sum(v.frames for v in viewers),
            "events": sum(v.events for v in viewers),
            "bytes": sum(v.bytes for v in viewers),
            "frames_per_s": round(sum(v.frames for v in viewers) / wall, 1),
            "max_byte_gap_ms_per_stream": byte_gaps,
            "max_playing_gap_ms_per_stream": playing_gaps,
        },
        "lateness": {
            "all": _distribution(steady + after_change),
            "steady": _distribution(steady),
            "after_change": _distribution(after_change),
            "server_side_p50_p99_ms": [
                stats["at_stop"].get("server_lateness_ms_p50"),
                stats["at_stop"].get("server_lateness_ms_p99"),
            ],
            **{key: _distribution(values) for key, values in sorted(load.lateness.items())},
            "worst": [context for _, _, context in sorted(load.worst_lateness, reverse=True)],
        },
        "control": {
            "actions": sum(load.control_actions.values()),
            "per_s": round(sum(load.control_actions.values()) / wall, 2),
            "by_action": dict(load.control_actions),
            **{key: load.control[key] for key in sorted(load.control)},
            "latency": _distribution(load.api_latency_ms.get("control", [])),
            # The same moto, the same moments: one session read (a control action makes
            # a read and a conditional write) — the store's share of the latency.
            "store_read_probe": _distribution(load.store_read_ms),
            "to_stream": _distribution(load.propagation_ms),
        },
        "api_statuses": api,
        "api_transport_errors_retried": dict(load.transport_retries),
        "memory": memory,
        "server_series": raw["series"],
        "server": {
            "cpu_cores": round(raw["server_cpu_s"] / wall, 3),
            "rss_after_drain_mb": raw["rss_after_drain_mb"],
            "moto_cpu_cores": round(raw["moto_cpu_s"] / wall, 3),
        },
        "client": {
            "cpu_cores": round(raw["client_cpu_s"] / wall, 3),
            "loop_lag_ms_p99": round(percentile(lags, 99), 1) if lags else None,
            "loop_lag_ms_max": round(max(lags), 1) if lags else None,
        },
    }


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` (boto3 reads the endpoint from it), then restored."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_load(config: LoadConfig) -> dict[str, Any]:
    """Publish a day, start moto and the app, run the load; the figures and the verdict."""
    settings = GeneratorSettings(
        vehicles=config.vehicles, flights=config.flights, start_hour=6, hours=2
    )
    pin = config.pin and (os.cpu_count() or 1) >= 2
    with moto_server() as aws, _environment(aws.environment):
        service_day = publish_morning(settings, BUCKET, TABLE)
        port = free_port()
        env = server_environment(BUCKET, TABLE, secrets.token_urlsafe(32), config.server_env)
        heartbeat_s = float(
            config.server_env.get(
                "STREAM_HEARTBEAT_S", AppSettings.model_fields["stream_heartbeat_s"].default
            )
        )
        process = start_stream_server(port, env, pin)
        try:
            wait_for_http(f"http://127.0.0.1:{port}/healthz", 60, process)
            day_start = service_day.start_ms + 6 * 3_600_000
            server = Server(port, process, day_start, heartbeat_s, aws.process.pid)
            with client_conditions(pin):
                raw = asyncio.run(drive(config, server))
            if process.poll() is not None:
                raw["crashed"].append(f"server exited with status {process.returncode}")
        finally:
            stop_process(process)
    return verdict(config, server, raw)


def config_from(args: argparse.Namespace) -> LoadConfig:
    server_env = {}
    if args.stream_max_seconds is not None:
        server_env["STREAM_MAX_SECONDS"] = str(args.stream_max_seconds)
    return LoadConfig(
        streams=args.streams,
        sessions=args.sessions,
        minutes=args.minutes,
        control_rate=args.control_rate,
        vehicles=args.vehicles,
        flights=args.flights,
        server_env=server_env,
        warm_cache=not args.cold_cache,
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    result = run_load(config_from(args))
    for name, criterion in result["criteria"].items():
        say(f"  {name}: {'pass' if criterion['passed'] else 'FAIL'} ({criterion['bound']})")
    write_result("load", result)
    return result
