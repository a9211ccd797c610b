"""Draining on a fake clock: the stream's own loop ends it with ``reconnect`` (``draining``)
at the instant the drain starts, from a position a resume continues exactly.

The wiring (a real server, SIGTERM, a second server) is tests/test_container_drain.py;
here the timing and the resume are exact, in milliseconds of test time.
"""

from __future__ import annotations

import asyncio
from typing import cast

from functions.app.domain.sessions import Session
from functions.app.stream.chunk_source import ChunkSource
from functions.app.stream.drain import DRAIN_REASON, StreamDrain
from functions.app.stream.player import Player, StreamRuntime
from functions.app.stream.watcher import SessionWatchers
from tests.test_player_core import (
    DAY,
    W0,
    FakeClock,
    FakeWatch,
    FakeWatchers,
    MemorySource,
    Played,
    app_settings,
    playing,
    resumes_losslessly,
    session_of,
)


def play_until_drained(
    session: Session, clock: FakeClock, drain: StreamDrain, drain_at: float | None
) -> Played:
    """One stream of ``session`` that ``drain`` follows, read until it ends (at most a
    minute of test time); ``drain_at``: the wall time the drain starts, if during it."""
    source = MemorySource()
    source.clock = clock

    def start_drain(current: Session, now: int) -> Session:
        drain.start(now, None)  # the watchers are fake: their waits end at this change
        return current

    changes = [] if drain_at is None else [(drain_at, start_drain)]
    watch = FakeWatch(clock, session, changes, 0.0, clock.wall + 60_000)
    runtime = StreamRuntime(
        settings=app_settings(),
        source=cast(ChunkSource, source),
        watchers=cast(SessionWatchers, FakeWatchers(watch)),
        now_ms=clock.now_ms,
        monotonic=clock.monotonic,
    )
    played = Played()

    async def read() -> None:
        player = Player(runtime, session, None)
        drain.track(player)
        async for write in player.run(await player.opening()):
            played.writes.append((clock.wall, write))
        played.ended = True

    asyncio.run(read())
    return played


def test_a_drain_ends_the_stream_at_once_with_reconnect_and_the_resume_loses_nothing() -> None:
    start = DAY + 1_800_000
    session = session_of(playing(8.0, start))
    clock = FakeClock()
    drain = StreamDrain()
    first = play_until_drained(session, clock, drain, drain_at=W0 + 4_250)
    assert first.ended
    sent_at, final = first.events[-1]
    assert final.event == "reconnect" and final.json()["reason"] == DRAIN_REASON
    assert sent_at == W0 + 4_250  # at the drain, not at a frame or heartbeat later
    assert [e.event for _, e in first.events].count("reconnect") == 1
    assert first.frames(), "it streamed before the drain"
    resumes_losslessly(first, session, clock, start)  # on another server: a fresh drain


def test_a_stream_opened_while_draining_ends_right_after_its_first_write() -> None:
    session = session_of(playing(1.0, DAY + 600_000))
    clock = FakeClock()
    drain = StreamDrain()
    assert drain.start(clock.now_ms(), None) == 0  # nothing open yet
    played = play_until_drained(session, clock, drain, drain_at=None)
    (opened_at, opening), (ended_at, final) = played.writes
    assert opened_at == ended_at == W0
    assert b"event: snapshot" in opening
    assert b"event: reconnect" in final and DRAIN_REASON.encode() in final
    assert drain.draining
