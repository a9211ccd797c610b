"""Fixtures for stream tests: a published tiny day on in-process moto, and uvicorn serving
the app in a thread on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn
from fastapi import FastAPI

from chunker.batch.run import chunk_day
from chunker.format.encoding import ChunkerConfig
from chunker.format.read import ChunkReader
from chunker.format.state import RECENT_NOTIFICATIONS, expired_task
from functions.app.application import create_app
from functions.app.dependencies import Services, session_store
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Filters, Session
from functions.app.domain.tokens import issue
from functions.app.settings import AppSettings
from functions.local.stack import ensure_table
from tests.conftest import BUCKET
from tests.rawday import build_raw_day
from tests.sse_client import Event, SSEParser

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

TABLE = "sessions-test"
SECRET = "s" * 40
CONFIG = ChunkerConfig(bucket_ms=600_000, tick_ms=1_000, histogram_bin_ms=600_000)


# A published day's cache key -> the raw objects, and put_object arguments for every
# object the bucket held after chunking them.
_PUBLISHED: dict[tuple[Any, ...], tuple[dict[str, bytes], list[Any]]] = {}


def publish_day(
    s3: S3Client,
    airport: str = "XTST",
    seed: int = 3,
    hours: tuple[int, int] = (0, 3),
    config: ChunkerConfig = CONFIG,
) -> dict[str, bytes]:
    """A tiny raw day's objects (tests/rawday.py), uploaded to the empty ``BUCKET`` and
    published (``publish_objects``)."""
    return publish_objects(
        s3,
        ("tiny", airport, seed, hours),
        lambda: build_raw_day(seed=seed, hours=hours, airport=airport).objects(),
        airport,
        config,
    )


def publish_objects(
    s3: S3Client,
    name: tuple[Any, ...],
    make_raw: Callable[[], dict[str, bytes]],
    airport: str,
    config: ChunkerConfig = CONFIG,
    service_date: str = "2026-03-14",
) -> dict[str, bytes]:
    """The raw objects ``make_raw`` builds (``name`` names them), uploaded to the empty
    ``BUCKET`` and published.

    The first call per process chunks them; later ones write the objects that run stored
    again (chunking equal inputs gives equal bytes: tests/test_chunker.py), so the ~130
    tests that need a published day do not each spend a second and a half chunking it.
    """
    cache_key = (*name, config.model_dump_json())
    cached = _PUBLISHED.get(cache_key)
    if cached is not None:
        raw, stored = cached
        restore_objects(s3, stored)
        return dict(raw)
    empty = not _keys(s3)
    raw = make_raw()
    for key, body in raw.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    chunk_day(s3, BUCKET, airport, service_date, config)
    if empty:
        stored = []
        for key in _keys(s3):
            response = s3.get_object(Bucket=BUCKET, Key=key)
            headers = {
                "ContentType": response.get("ContentType"),
                "ContentEncoding": response.get("ContentEncoding"),
                "CacheControl": response.get("CacheControl"),
            }
            body = response["Body"].read()
            stored.append(
                {"Bucket": BUCKET, "Key": key, "Body": body}
                | {name: value for name, value in headers.items() if value}
            )
        _PUBLISHED[cache_key] = (raw, stored)
    return dict(raw)


# put_object's headers -> the names moto keeps them under in a key's metadata.
_HEADERS = {
    "ContentType": "Content-Type",
    "ContentEncoding": "Content-Encoding",
    "CacheControl": "Cache-Control",
}


def restore_objects(s3: S3Client, stored: list[dict[str, Any]]) -> None:
    """Write ``stored`` (put_object arguments) into the bucket again.

    On in-process moto straight into its S3 backend: a put through botocore and moto's
    request parsing costs ~3 ms, and the ~190 objects of the tiny day were most of the
    set-up of every test that needs one (tests/test_seeding.py checks that what the
    product then reads is what a put would have stored). Through ``put_object`` against
    anything else (a moto server, another endpoint).
    """
    backend = _in_process_s3_backend(s3)
    for arguments in stored:
        if backend is None:
            s3.put_object(**arguments)
            continue
        key = backend.put_object(arguments["Bucket"], arguments["Key"], arguments["Body"])
        key.set_metadata(
            {header: arguments[name] for name, header in _HEADERS.items() if name in arguments}
        )


def _in_process_s3_backend(s3: S3Client) -> Any | None:
    """moto's S3 backend when ``s3`` talks to in-process moto (``mock_aws``), else None."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.models import botocore_stubber
    from moto.s3.models import s3_backends

    endpoint = s3.meta.endpoint_url
    if not botocore_stubber.enabled or not endpoint.startswith("https://s3."):
        return None
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    return backend if BUCKET in backend.buckets else None


def _keys(s3: S3Client) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def publish_tiny_day(s3: S3Client, hours: tuple[int, int] = (0, 3)) -> dict[str, bytes]:
    """The XTST test day (seed 3), published."""
    return publish_day(s3, hours=hours)


def settings(**overrides: Any) -> AppSettings:
    values: dict[str, Any] = {
        "replay_bucket": BUCKET,
        "replay_table": TABLE,
        "auth_mode": "local",
        "stream_token_secret": SECRET,
        "stream_poll_ms": 50,
        **overrides,
    }
    return AppSettings(**values)


def build_services(s3: S3Client, **overrides: Any) -> Services:
    """Services on in-process moto: the published bucket, a fresh sessions table."""
    sessions = session_store(TABLE)  # the production wiring: the poller's reads do not retry
    ensure_table(sessions.dynamodb, TABLE)
    resolved = settings(**overrides)
    return Services(
        settings=resolved,
        sessions=sessions,
        chunks=ChunkReader(s3, BUCKET, resolved.chunk_cache_bytes),
    )


@dataclass
class Server:
    url: str
    services: Services
    app: FastAPI

    def new_session(
        self,
        start: int,
        end: int,
        *,
        position: int | None = None,
        speed: float = 1.0,
        state: str = "paused",
        owner: str = "alice",
        filters: Filters | None = None,
        loop: bool = False,
        anchor_wall: int | None = None,
    ) -> Session:
        """A session whose clock was at ``position`` at ``anchor_wall`` (default: now)."""
        now = self.services.now_ms()
        clock = PlaybackClock(
            state,  # type: ignore[arg-type]
            speed,
            start if position is None else position,
            now if anchor_wall is None else anchor_wall,
            start,
            end,
            loop,
        )
        session = Session.new(owner, "XTST", clock, filters or Filters(), now, 120_000, 86_400)
        self.services.sessions.create(session)
        return session

    def update(self, session_id: str, **clock_or_session: Any) -> Session:
        """What the control API does: re-read, change, conditional write."""
        store = self.services.sessions
        current = store.get(session_id)
        assert current is not None
        clock = clock_or_session.pop("clock", current.clock)
        changed = current.changed(
            clock=clock, updated_at=self.services.now_ms(), **clock_or_session
        )
        store.replace(changed, current.version)
        return changed

    def token(self, session: Session, subject: str = "alice", ttl_s: int = 600) -> str:
        return issue(SECRET.encode(), "stream", session.session_id, ttl_s, sub=subject)

    def stream_url(self, session: Session, subject: str = "alice") -> str:
        token = self.token(session, subject)
        return f"{self.url}/api/replay/sessions/{session.session_id}/stream?token={token}"


def serve(
    s3: S3Client,
    send_buffer: int | None = None,
    front: Callable[[FastAPI], Any] | None = None,
    **overrides: Any,
) -> Iterator[Server]:
    """The app under uvicorn in a thread. ``send_buffer``: the kernel send buffer of its
    connections (SO_SNDBUF, inherited from the listening socket), as on a slow link: a
    client that stops reading blocks the server's writes after a few KB, not megabytes.
    ``front``: what stands in front of the app in the cloud (an ASGI wrapper of it)."""
    services = build_services(s3, **overrides)
    app = create_app(services)
    served = app if front is None else front(app)
    listener = socket.socket()
    if send_buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(served, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, args=([listener],), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Server(f"http://127.0.0.1:{port}", services, app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


class StreamReader:
    """Reads a stream like a browser would, until a condition holds."""

    def __init__(
        self,
        client: httpx.Client,
        url: str,
        last_event_id: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """GET ``url`` like EventSource, or POST ``body`` like the seed's fetch client."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        method = "GET" if body is None else "POST"
        self._context = client.stream(method, url, headers=headers, json=body, timeout=30)
        self.response = self._context.__enter__()
        if self.response.status_code != 200:
            body = self.response.read()
            self._context.__exit__(None, None, None)
            raise AssertionError(f"stream answered {self.response.status_code}: {body[:500]!r}")
        self.parser = SSEParser()
        self.events: list[Event] = []
        self._chunks = self.response.iter_raw()
        self.closed_by_server = False

    def read_until(self, predicate: Any, timeout_s: float = 20.0, since: int = 0) -> list[Event]:
        """Read until an event at index >= ``since`` satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while not any(predicate(e) for e in self.events[since:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met; got {[e.event for e in self.events]}")
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.closed_by_server = True
                raise AssertionError("stream ended before the condition was met") from None
            self.events.extend(self.parser.feed(chunk))
        return self.events

    def read_to_end(self, timeout_s: float = 20.0) -> list[Event]:
        deadline = time.monotonic() + timeout_s
        for chunk in self._chunks:
            self.events.extend(self.parser.feed(chunk))
            assert time.monotonic() < deadline, "stream did not end in time"
        self.closed_by_server = True
        return self.events

    def close(self) -> None:
        self._context.__exit__(None, None, None)


# --- what a client reconstructs, compared with the ground truth -------------------------

DISCRETE = {
    "task_update": "tasks",
    "flight_update": "flights",
    "notification": "notifications",
    "dispatch_decision": "decisions",
}
Discrete = tuple[str, str, int, str | None]  # (kind, id, t, status)
DERIVED = {"stand_update": "stands", "vehicle_task_update": "vehicle_tasks"}


class ClientState:
    """What a dashboard would hold after applying the events it received."""

    def __init__(self) -> None:
        self.t: int | None = None
        self.vehicles: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.flights: dict[str, dict[str, Any]] = {}
        self.notifications: deque[dict[str, Any]] = deque(maxlen=RECENT_NOTIFICATIONS)
        self.stands: dict[str, dict[str, Any]] = {}
        self.vehicle_tasks: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}  # task id -> its latest decision
        self.aircraft: dict[str, dict[str, Any]] = {}
        self.task_retention_ms = 0
        self.discrete: list[Discrete] = []  # every event row received, in order
        self.snapshots: list[int] = []  # the t of every snapshot received

    def apply(self, event: Event) -> None:
        if event.event == "snapshot":
            data = event.json()
            self.t = data["t"]
            self.snapshots.append(data["t"])
            self.task_retention_ms = data["task_retention_ms"]
            self.vehicles = {r["id"]: r for r in data["vehicles"]}
            self.tasks = {r["id"]: r for r in data["tasks"]}
            self.flights = {r["id"]: r for r in data["flights"]}
            self.notifications = deque(data["notifications"], maxlen=RECENT_NOTIFICATIONS)
            self.stands = {r["id"]: r for r in data["stands"]}
            self.vehicle_tasks = {r["id"]: r for r in data["vehicle_tasks"]}
            self.decisions = {r["id"]: r for r in data["decisions"]}
            self.aircraft = {r["id"]: r for r in data["aircraft"]}
        elif event.event == "aircraft_update":
            data = event.json()
            self.t = data["t"]
            for row in data["aircraft"]:  # a removal row: the aircraft left (docs/api.md)
                if row.get("removed"):
                    self.aircraft.pop(row["id"], None)
                else:
                    self.aircraft[row["id"]] = row
        elif event.event in DERIVED:
            # Derived rows replace their entity's; a vacated stand, or a vehicle with
            # neither a current nor a last task, leaves (docs/api.md).
            data = event.json()
            self.t = data["t"]
            kind = DERIVED[event.event]
            entities = getattr(self, kind)
            for row in data[kind]:
                if row.get("occupied") or row.get("current") or row.get("last"):
                    entities[row["id"]] = row
                else:
                    entities.pop(row["id"], None)
        elif event.event == "vehicle_update":
            data = event.json()
            self.t = data["t"]
            self.vehicles.update({r["id"]: r for r in data["vehicles"]})
        elif event.event in DISCRETE:
            data = event.json()
            self.t = data["t"]
            kind = DISCRETE[event.event]
            for row in data[kind]:
                self.discrete.append((kind, row["id"], row["t"], row.get("status")))
                if kind == "notifications":
                    self.notifications.append(row)
                else:
                    getattr(self, kind)[row["id"]] = row

    def state(self) -> dict[str, list[dict[str, Any]]]:
        # Finished tasks leave the state after the retention the snapshot announced.
        assert self.t is not None
        tick_start = self.t - self.t % 1000
        tasks = [self.tasks[k] for k in sorted(self.tasks)]
        shown = {
            r["id"] for r in tasks
            if not expired_task(r["status"], r["t"], tick_start, self.task_retention_ms)
        }  # fmt: skip
        return {
            "vehicles": [self.vehicles[k] for k in sorted(self.vehicles)],
            "tasks": [
                r
                for r in tasks
                if not expired_task(r["status"], r["t"], tick_start, self.task_retention_ms)
            ],
            "flights": [self.flights[k] for k in sorted(self.flights)],
            "notifications": list(self.notifications),
            "stands": [self.stands[k] for k in sorted(self.stands)],
            "vehicle_tasks": [self.vehicle_tasks[k] for k in sorted(self.vehicle_tasks)],
            # The decision behind each active task (docs/api.md, "Decisions in the state").
            "decisions": [
                self.decisions[k]
                for k in sorted(self.decisions)
                if k in shown and self.tasks[k]["status"] not in ("completed", "cancelled")
            ],
            "aircraft": [self.aircraft[k] for k in sorted(self.aircraft)],
        }


def frame_position(events: list[Event]) -> int:
    """The replay position the client has reached: the last frame/snapshot's ``t``."""
    for event in reversed(events):
        if event.event in ("snapshot", "vehicle_update", "aircraft_update", *DISCRETE, *DERIVED):
            position: int = event.json()["t"]
            return position
    raise AssertionError("no frame yet")


def expected_discrete(
    rows: dict[str, list[dict[str, Any]]], after: int, until: int
) -> list[Discrete]:
    """Discrete rows visible after tick ``after`` up to and including tick ``until``."""
    tick = CONFIG.tick_ms
    found = []
    for kind in ("tasks", "flights", "notifications", "decisions"):
        found += [
            (kind, r["id"], r["t"], r.get("status"))
            for r in rows[kind]
            if after + tick <= r["t"] < until + tick
        ]
    return sorted(found, key=lambda item: item[2])


def by_time(items: list[Discrete]) -> list[Discrete]:
    return sorted(items, key=lambda item: item[2])


@dataclass
class CutStats:
    """What a client that kept losing its connection saw."""

    connections: int = 0
    cuts_mid_event: int = 0  # cuts that fell inside an event (a partial event was dropped)
    events: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


Cut = tuple[int, float]  # (whole reads kept, fraction of the next read kept)


def read_with_cuts(
    client: httpx.Client,
    url: Callable[[], str],
    state: ClientState,
    cuts: Iterable[Cut],
    last_event_id: str | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> tuple[str | None, CutStats]:
    """For each cut ``(n, f)``: connect (with the last event id, as a browser reconnects),
    keep ``n`` whole reads and the first fraction ``f`` (at least one byte) of the next,
    then drop the connection. Complete events are applied to ``state``.

    Cutting within what the server actually wrote puts cuts inside events, between events
    of one write, and inside UTF-8 sequences, at any speed, without waiting for bytes that
    a slow replay has not produced yet. A connection the server ends first (e.g. after an
    ``error`` event) is followed by the next one, as EventSource does after its retry
    delay. Returns the last event id and what happened.
    """
    stats = CutStats()
    for whole, fraction in cuts:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        parser = SSEParser(last_event_id)
        with client.stream("GET", url(), headers=headers, timeout=30) as response:
            assert response.status_code == 200, response.read()[:500]
            stats.connections += 1
            for index, read in enumerate(response.iter_raw()):
                cut = index == whole
                kept = read[: max(1, int(len(read) * fraction))] if cut else read
                for event in parser.feed(kept):
                    stats.events += 1
                    if event.event == "error":
                        stats.errors.append(event.json())
                    state.apply(event)
                    if on_event is not None:
                        on_event(event)
                if cut:
                    stats.cuts_mid_event += parser.mid_event()
                    break
        last_event_id = parser.last_event_id
    return last_event_id, stats
