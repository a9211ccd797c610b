"""Attacks on the stream (issue #15), as a table: attack, how many, what must happen.

Each row failed before the fix it names. A hostile stream runs beside a normal viewer and
a /healthz probe, so "one user cannot hurt the rest" is checked as the rest sees it: the
viewer keeps receiving frames and every probe answers (conditions with timeouts, no
timing assertions). docs/reliability.md ("Abuse: streams (#15)") has the same table with
the figures measured by ``python -m bench fairness``.

The memory attack (one viewer playing six busy demo hours at 4096x) needs a separate
server process and a demo-sized day: ``test_one_fast_viewer_of_six_busy_hours_stays_in_memory``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from chunker.format.keys import DayKeys
from functions.app.domain.playback import PlaybackClock
from functions.app.domain.sessions import Session
from functions.app.stream.player import StreamRuntime
from tests import ground_truth
from tests.sse_client import Event, SSEParser
from tests.streaming import Server, StreamReader, publish_tiny_day, serve


@contextlib.contextmanager
def served(s3: S3Client, **overrides: Any) -> Iterator[Server]:
    """A stream server for these attacks. One test user opens every stream here (the
    attackers' and the bystanders'), so the per-user and per-session stream caps are off:
    they are attacked, with their own figures, in tests/test_abuse_sessions.py."""
    caps_off = {"stream_max_per_user": 0, "stream_max_per_session": 0}
    yield from serve(s3, **(caps_off | overrides))


if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KEYS = DayKeys("XTST", "2026-03-14")
HOUR = 3_600_000
ALICE = {"X-Replay-User": "alice"}
SLOW_LINK = 8192  # the server's socket send buffer where clients stop reading


@pytest.fixture
def day(s3: S3Client) -> dict[str, bytes]:
    return publish_tiny_day(s3)


@pytest.fixture
def day_start(day: dict[str, bytes]) -> int:
    _, service_day = ground_truth.valid_rows(day, KEYS)
    start: int = service_day.start_ms
    return start


# --- what the rest of the process sees -------------------------------------------------


class Bystanders:
    """A normal viewer (8x, playing) and a /healthz probe, in threads, while an attack
    runs: every probe must answer within ``probe_timeout_s`` and the viewer must keep
    receiving frames."""

    def __init__(self, server: Server, day_start: int, probe_timeout_s: float = 2.0) -> None:
        self.server = server
        self.session = server.new_session(
            day_start, day_start + 3 * HOUR, speed=8.0, state="playing"
        )
        self.probe_timeout_s = probe_timeout_s
        self.probes = 0
        self.failed_probes: list[str] = []
        self.frames = 0
        self.viewer_error: str | None = None
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._probe, daemon=True),
            threading.Thread(target=self._view, daemon=True),
        ]

    def __enter__(self) -> Bystanders:
        for thread in self._threads:
            thread.start()
        self.wait_for(lambda: self.frames >= 3 and self.probes >= 3, "bystanders started")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _probe(self) -> None:
        with httpx.Client(timeout=self.probe_timeout_s) as client:
            while not self._stop.is_set():
                try:
                    status = client.get(f"{self.server.url}/healthz").status_code
                    if status != 200:
                        self.failed_probes.append(f"status {status}")
                except httpx.HTTPError as exc:
                    self.failed_probes.append(type(exc).__name__)
                self.probes += 1
                self._stop.wait(0.1)

    def _view(self) -> None:
        """Read like EventSource: reconnect with the last event id when the stream ends."""
        last_event_id = None
        try:
            with httpx.Client() as client:
                while not self._stop.is_set():
                    url = self.server.stream_url(self.session)
                    reader = StreamReader(client, url, last_event_id)
                    for chunk in reader.response.iter_raw():
                        for event in reader.parser.feed(chunk):
                            if event.event == "vehicle_update":
                                self.frames += 1
                        if self._stop.is_set():
                            break
                    last_event_id = reader.parser.last_event_id
                    reader.close()
        except Exception as exc:  # noqa: BLE001 - reported by the assertions
            self.viewer_error = repr(exc)

    def wait_for(self, condition: Callable[[], bool], what: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert self.viewer_error is None, self.viewer_error
            assert time.monotonic() < deadline, f"{what}: not within {timeout_s} s"
            time.sleep(0.02)

    def unaffected(self, frames: int = 20) -> None:
        """The viewer gets ``frames`` more frames and the probe answers meanwhile."""
        seen, probes = self.frames, self.probes
        self.wait_for(
            lambda: self.frames >= seen + frames and self.probes >= probes + 10,
            f"{frames} more frames for the normal viewer and 10 /healthz answers",
        )
        assert not self.failed_probes, f"/healthz failed: {self.failed_probes[:5]}"


def one_ms_loop(clock: PlaybackClock, now: int) -> PlaybackClock:
    """``clock`` narrowed to a 1 ms looping range at its position, at 4096x."""
    position = clock.position_at(now)
    return PlaybackClock("playing", 4096.0, position, now, position, position + 1, True)


def reconfigure(server: Server, changes: dict[str, Any]) -> None:
    """Change settings of a running server, below their floors if need be (``model_copy``
    does not validate): what a small stream needs to meet a limit on the tiny test day."""
    settings = server.services.settings.model_copy(update=changes)
    server.services.settings = settings
    runtime = getattr(server.app.state, "stream_runtime", None)
    if runtime is not None:
        runtime.settings = settings


def runtime_of(server: Server) -> StreamRuntime:
    runtime: StreamRuntime = server.app.state.stream_runtime
    return runtime


def store_clock(server: Server, session: Session, clock: PlaybackClock) -> Session:
    """A clock written straight to the store, as control did before #15 (and as an old
    item may still hold): the stream must bound its work without the control rule."""
    return server.update(session.session_id, clock=clock, timeline=session.timeline + 1)


class SilentClient:
    """A client that sends its request and never reads: a 4 KiB receive buffer, so the
    server's writes block soon."""

    def __init__(self, url: str) -> None:
        host_port, path = url.removeprefix("http://").split("/", 1)
        host, port = host_port.split(":")
        self.socket = socket.socket()
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.socket.connect((host, int(port)))
        self.socket.sendall(f"GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())

    def close(self) -> None:
        self.socket.close()


def first_write(server: Server, session: Session, last_event_id: str) -> tuple[int, Event]:
    """The size of the stream's first write (the opening, in one piece) and its first
    event, for a client resuming at ``last_event_id``."""
    with (
        httpx.Client() as client,
        client.stream(
            "GET", server.stream_url(session), headers={"Last-Event-ID": last_event_id}
        ) as response,
    ):
        assert response.status_code == 200, response.read()[:300]
        chunk = next(response.iter_raw())
    events = list(SSEParser().feed(chunk))
    return len(chunk), events[0]


# --- the attacks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    count: int
    expected: str
    run: Callable[[S3Client, int, Attack], None]
    settings: dict[str, Any] = field(default_factory=dict)


def tiny_looping_range(s3: S3Client, day_start: int, attack: Attack) -> None:
    """A 1 ms range, loop, 4096x, with open streams: the pacing loop spun (finding 1)."""
    with (
        served(s3, **attack.settings) as server,
        Bystanders(server, day_start) as rest,
        httpx.Client() as client,
    ):
        position = day_start + HOUR
        clock = PlaybackClock("playing", 4096.0, position, 0, position, position + 1, True)
        hostile = [server.new_session(position, position + HOUR) for _ in range(attack.count)]
        readers = []
        for session in hostile:
            stored = store_clock(server, session, clock)
            readers.append(StreamReader(client, server.stream_url(stored)))
            readers[-1].read_until(lambda e: e.event == "playback")
        rest.unaffected()
        # ... and the control API refuses to make such a session in the first place.
        refused = client.post(
            f"{server.url}/api/replay/sessions",
            json={
                "airport": "XTST",
                "start": position,
                "end": position + 1,
                "speed": 4096,
                "loop": True,
            },
            headers=ALICE,
        )
        assert refused.status_code == 422, refused.text
        for reader in readers:
            reader.close()


def cowatcher_shrinks_the_range(s3: S3Client, day_start: int, attack: Attack) -> None:
    """A co-watcher sets a 1 ms range on open looping 4096x streams (finding 1)."""
    with (
        served(s3, **attack.settings) as server,
        Bystanders(server, day_start) as rest,
        httpx.Client() as client,
    ):
        start = day_start
        sessions = [
            server.new_session(start, start + 3 * HOUR, speed=4096.0, state="playing", loop=True)
            for _ in range(attack.count)
        ]
        readers = [StreamReader(client, server.stream_url(s)) for s in sessions]
        for reader in readers:
            reader.read_until(lambda e: e.event == "snapshot")
        for session in sessions:
            store_clock(server, session, one_ms_loop(session.clock, server.services.now_ms()))
        for reader in readers:
            reader.read_until(
                lambda e: e.event == "snapshot" and e.json()["reason"] == "control", since=1
            )
        rest.unaffected()
        # Through the control API the same change is refused.
        refused = client.post(
            f"{server.url}/api/replay/sessions/{sessions[0].session_id}/control",
            json={"action": "set_range", "start": start, "end": start + 1},
            headers=ALICE,
        )
        assert refused.status_code == 422, refused.text
        for reader in readers:
            reader.close()


def forged_last_event_id(s3: S3Client, day_start: int, attack: Attack) -> None:
    """``{timeline}.{day_start}.{pos}.0`` on a one-minute session rebuilt the day from
    midnight before the first byte (finding 3)."""
    with served(s3, **attack.settings) as server:
        position = day_start + 2 * HOUR + 59 * 60_000
        session = server.new_session(position, position + 60_000, state="playing")
        limit = server.services.settings.stream_max_bytes
        forged = [
            f"{session.timeline}.{day_start}.{position}.0",
            f"{session.timeline}.0.{position}.0",
            f"{session.timeline}.{day_start}.{day_start + 3 * HOUR}.0",  # past the range end
            f"{session.timeline}.{position - 400_000}.{position - 400_000}.0",  # beyond the gap
        ]
        for index in range(attack.count):
            size, event = first_write(server, session, forged[index % len(forged)])
            assert event.event == "snapshot" and event.json()["reason"] == "resync", event
            assert size <= limit
        # A genuine resume still resumes (no snapshot): the cursor of the session's start.
        _, event = first_write(server, session, f"{session.timeline}.{position}.{position}.0")
        assert event.event != "snapshot", event


def oversized_opening(s3: S3Client, day_start: int, attack: Attack) -> None:
    """The opening write skipped the byte limit (finding 3): a resume larger than the
    limit becomes a snapshot; a snapshot larger than the limit is a 503 before any 200."""
    with served(s3) as server:
        # A resume gap as long as the day, so that resuming from its start is allowed.
        reconfigure(server, {"stream_resume_max_gap_ms": 4 * HOUR})
        session = server.new_session(
            day_start, day_start + 3 * HOUR, position=day_start + 3 * HOUR - 60_000
        )
        # An unknown cursor: the opening is the snapshot (what a too-large resume becomes).
        snapshot_size, event = first_write(server, session, f"{session.timeline + 1}.0.0.0")
        assert event.event == "snapshot"
        # A limit with room for the snapshot and its opening's tail, not for the resume.
        limit = snapshot_size + 4_000  # below the settings' floor on purpose: a tiny day
        cursor = f"{session.timeline}.{day_start}.{day_start}.0"
        size, event = first_write(server, session, cursor)
        assert event.event != "snapshot" and size > limit  # resumed: every event since 00:00
        reconfigure(server, {"stream_max_bytes": limit})
        for _ in range(attack.count):
            size, event = first_write(server, session, cursor)
            assert event.event == "snapshot" and event.json()["reason"] == "resync", event
            assert size <= limit
        reconfigure(server, {"stream_max_bytes": 2_000})
        response = httpx.get(server.stream_url(session))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/stream-byte-limit")


def silent_clients(s3: S3Client, day_start: int, attack: Attack) -> None:
    """Clients that stop reading lived for ever, and were polled for (finding 4). A
    co-watcher's seeks make their streams write (a snapshot each) until writes block."""
    with served(s3, **attack.settings) as server, Bystanders(server, day_start) as rest:
        sessions = [
            server.new_session(day_start, day_start + 3 * HOUR, position=day_start + HOUR)
            for _ in range(attack.count)
        ]
        clients = [SilentClient(server.stream_url(s)) for s in sessions]
        watchers = runtime_of(server).watchers
        rest.wait_for(lambda: all(watchers.watched(s.session_id) for s in sessions), "opened")
        deadline = time.monotonic() + 60
        while any(watchers.watched(s.session_id) for s in sessions):
            assert time.monotonic() < deadline, "streams of clients that stopped reading live on"
            for session in sessions:
                current = server.services.sessions.get(session.session_id)
                assert current is not None
                server.update(session.session_id, timeline=current.timeline + 1)
            time.sleep(0.05)  # a co-watcher's pace: one seek per session per poll
        # Their streams ended, so the poller no longer reads them.
        timeouts = runtime_of(server).stats.send_timeouts
        if "stream_max_seconds" in attack.settings:
            # Ended within the 60 s above, half the 120 s send timeout: the duration limit
            # ended them, each either with a write blocked (counted as a send timeout) or,
            # on a loaded machine whose writes had not filled the buffers yet, cleanly.
            assert timeouts <= attack.count
        else:  # each cut by the send timeout of a blocked write
            assert timeouts == attack.count
        rest.unaffected(frames=5)
        for silent in clients:
            silent.close()


ATTACKS = [
    Attack(
        "1 ms range, loop, 4096x",
        3,
        "/healthz answers, the normal viewer keeps its frames; control refuses it (422)",
        tiny_looping_range,
    ),
    Attack(
        "co-watcher set_range to 1 ms on open 4096x loops",
        3,
        "/healthz answers, the normal viewer keeps its frames; control refuses it (422)",
        cowatcher_shrinks_the_range,
    ),
    Attack(
        "forged Last-Event-ID {timeline}.{day_start}.{pos}.0 (and kin)",
        20,
        "a resync snapshot first, the first write within STREAM_MAX_BYTES",
        forged_last_event_id,
    ),
    Attack(
        "resume or snapshot larger than STREAM_MAX_BYTES",
        5,
        "a snapshot instead of the resume; 503 problem+json if even that does not fit",
        oversized_opening,
    ),
    Attack(
        "clients that stop reading",
        10,
        "ended within STREAM_SEND_TIMEOUT_S of a blocked write; no more polling for them",
        silent_clients,
        {"stream_send_timeout_s": 1.0, "send_buffer": SLOW_LINK},
    ),
    Attack(
        "a reader blocked past the duration limit",
        5,
        "ended at the duration limit although the send timeout is long",
        silent_clients,
        {"stream_send_timeout_s": 120.0, "stream_max_seconds": 5.0, "send_buffer": SLOW_LINK},
    ),
]


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack(s3: S3Client, day_start: int, attack: Attack) -> None:
    attack.run(s3, day_start, attack)


# --- every hostile kind at once -------------------------------------------------------------


def test_fairness_with_every_hostile_kind_running(s3: S3Client, day_start: int) -> None:
    """Tiny looping ranges, a co-watcher's 1 ms set_range, forged Last-Event-IDs and
    clients that stopped reading, all at once beside a normal viewer: it keeps receiving
    frames and /healthz answers throughout."""
    with (
        served(s3, stream_send_timeout_s=1.0) as server,
        Bystanders(server, day_start) as rest,
        httpx.Client() as client,
    ):
        position = day_start + HOUR
        tiny = PlaybackClock("playing", 4096.0, position, 0, position, position + 1, True)
        looping = server.new_session(
            day_start, day_start + 3 * HOUR, speed=4096.0, state="playing", loop=True
        )
        loop_reader = StreamReader(client, server.stream_url(looping))
        hostile = store_clock(server, server.new_session(position, position + HOUR), tiny)
        tiny_reader = StreamReader(client, server.stream_url(hostile))
        loop_reader.read_until(lambda e: e.event == "snapshot")
        store_clock(server, looping, one_ms_loop(looping.clock, server.services.now_ms()))
        silent = [SilentClient(server.stream_url(hostile)) for _ in range(3)]
        one_minute = server.new_session(position, position + 60_000, state="playing")
        stop = threading.Event()

        def forge() -> None:
            while not stop.is_set():
                first_write(server, one_minute, f"{one_minute.timeline}.{day_start}.{position}.0")

        forger = threading.Thread(target=forge, daemon=True)
        forger.start()
        try:
            rest.unaffected(frames=30)
        finally:
            stop.set()
            forger.join(timeout=10)
            for reader in (loop_reader, tiny_reader):
                reader.close()
            for client_socket in silent:
                client_socket.close()


# --- memory: one fast viewer of the whole demo day --------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of process ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def iter_sse(response: httpx.Response) -> Iterator[Event]:
    parser = SSEParser()
    for chunk in response.iter_raw():
        yield from parser.feed(chunk)


# The Lambda's setting (template.yaml). Six busy hours' chunks are enough to show a cache
# that counts less than it holds: with the size counted 1/17 (as before #15) this test
# measured a peak of 243 MiB against a limit of 196 (baseline 100), where the real count
# peaks at 146 MiB.
CACHE_BYTES = 32 * 1024 * 1024
# What the process may hold beyond the cache: transient chunk decodes in the loader
# threads (a decoded demo-day chunk is ~5 MB of Python objects before it is prepared),
# allocator slack, the stream's buffers. Stated in docs/reliability.md.
RSS_MARGIN_BYTES = 64 * 1024 * 1024


@pytest.fixture(scope="module")
def demo_day_on_moto() -> Iterator[tuple[dict[str, str], int, int]]:
    """Six busy hours of a demo-sized day, generated and chunked as ``dispatch-replay
    demo`` does, on a moto server; its environment and the six hours' window.

    The demo's fleet (150 vehicles) and flight density (300 flights a day, so 75 in six
    hours), 06:00-12:00: each chunk's keyframe is as large as the demo day's. The whole
    24 h day cost ~100 s of the suite (building it, then 21 s of playing at 4096x); six
    hours prove the same bound (CACHE_BYTES) at a quarter of that."""
    import datetime as dt
    import os

    from chunker.batch.cli import run_ranges_in_processes
    from chunker.batch.run import chunk_day
    from chunker.format.day import ServiceDay
    from chunker.format.encoding import ChunkerConfig
    from chunker.format.s3 import s3_client
    from functions.app.dependencies import dynamodb_client
    from functions.local.demo import DEMO_BUCKET, DEMO_TABLE, local_app_environment
    from functions.local.stack import ensure_table, moto_server
    from synthetic import GeneratorSettings, generate_day, write_day

    saved = dict(os.environ)
    with moto_server() as aws:
        os.environ.update(aws.environment)
        try:
            s3 = s3_client()
            s3.create_bucket(Bucket=DEMO_BUCKET)
            settings = GeneratorSettings(
                service_date=dt.date(2026, 3, 14), flights=75, start_hour=6, hours=6
            )
            day = generate_day(settings)
            write_day(day, lambda key, body: s3.put_object(Bucket=DEMO_BUCKET, Key=key, Body=body))
            chunk_day(
                s3,
                DEMO_BUCKET,
                settings.airport,
                day.keys.service_date,
                ChunkerConfig(),
                jobs=2,
                run_ranges=run_ranges_in_processes(quiet=True),
            )
            ensure_table(dynamodb_client(), DEMO_TABLE)
            service_day = ServiceDay.of(day.keys.service_date, day.reference.airport.timezone)
            env = {**os.environ, **local_app_environment(DEMO_BUCKET, DEMO_TABLE)}
            start = service_day.start_ms + settings.start_hour * 3_600_000
            yield env, start, start + settings.hours * 3_600_000
        finally:
            os.environ.clear()
            os.environ.update(saved)


def test_one_fast_viewer_of_six_busy_hours_stays_in_memory(
    demo_day_on_moto: tuple[dict[str, str], int, int], tmp_path: Path
) -> None:
    """One viewer plays six busy hours of a demo-sized day at 4096x (each of their 360
    chunks passes through the cache): the server process's RSS, read from /proc, stays
    within its baseline + CHUNK_CACHE_BYTES + RSS_MARGIN_BYTES. Before #15 the cache
    counted 1/17 of what it held: 64 MiB counted were ~1 GB resident."""
    import subprocess
    import sys

    from functions.local.stack import free_port, stop_process, wait_for_http

    env, start, end = demo_day_on_moto
    env = {**env, "CHUNK_CACHE_BYTES": str(CACHE_BYTES), "POWERTOOLS_LOG_LEVEL": "WARNING"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "functions.local.cli", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_bytes(server.pid))
            stop.wait(0.1)

    try:
        wait_for_http(f"{url}/healthz", 60, server)
        with httpx.Client(timeout=30) as client:
            created = client.post(
                f"{url}/api/replay/sessions",
                json={"airport": "XLHI", "start": start, "end": end, "speed": 4096},
            )
            assert created.status_code == 201, created.text
            session = created.json()
            stream_url = url + session["stream"]["url"]
            # Warm up every code path with one paused stream's first write: the baseline.
            with client.stream("GET", stream_url) as response:
                assert next(iter_sse(response)).event == "snapshot"
            baseline = rss_bytes(server.pid)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            played = client.post(
                f"{url}/api/replay/sessions/{session['session_id']}/control",
                json={"action": "play"},
            )
            assert played.status_code == 200, played.text
            last_event_id, ended, reached = None, False, start
            deadline = time.monotonic() + 240
            while not ended:  # reconnect like EventSource (byte and duration limits)
                assert time.monotonic() < deadline, f"stream reached only {reached - start} ms"
                headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
                with client.stream("GET", stream_url, headers=headers) as response:
                    assert response.status_code == 200
                    for event in iter_sse(response):
                        last_event_id = event.id
                        if event.event == "end":
                            ended = True
                            break
                        if event.event in ("vehicle_update", "snapshot"):
                            reached = max(reached, event.json()["t"])
                        assert event.event != "error", event.data
            stop.set()
            sampler.join(timeout=5)
            health = client.get(f"{url}/healthz")
            assert health.status_code == 200
    finally:
        stop.set()
        stop_process(server)
    peak = max(samples)
    limit = baseline + CACHE_BYTES + RSS_MARGIN_BYTES
    mib = 1024 * 1024
    print(
        f"RSS baseline {baseline / mib:.0f} MiB, peak {peak / mib:.0f} MiB, limit {limit / mib:.0f}"
    )
    assert reached >= end - 120_000  # the whole window went through the stream
    assert peak <= limit, f"peak RSS {peak / mib:.0f} MiB > {limit / mib:.0f} MiB"
