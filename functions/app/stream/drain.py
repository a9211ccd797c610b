"""Draining a process: every open stream ends with ``reconnect`` (reason ``draining``).

A server that is about to stop (a container task on scale-in or deployment: SIGTERM, or
its load balancer target draining) must not cut its streams: a cut stream shows the viewer
a dropped connection, and the browser retries only after its retry delay. Instead each
stream ends the way it ends itself before a Lambda deadline: the player's deadline moves
to now, and its own loop writes the final ``reconnect`` event from a consistent position
(the id of that event is the last delivered position, so the client resumes elsewhere with
``Last-Event-ID`` and nothing is lost or repeated). The dashboard reconnects at once, with
jitter (functions/dashboard/stream.js), through the load balancer, to a task still serving.

A stream opened after the drain started (a request already in flight) ends the same way
right after its first write. Nothing here decides *when* to drain: the serving shell does
(functions/container/serve.py).
"""

from __future__ import annotations

import dataclasses
import weakref

from fastapi import FastAPI

from functions.app.stream.player import Player
from functions.app.stream.watcher import SessionWatchers

DRAIN_REASON = "draining"


class StreamDrain:
    """The open streams of one app, and the switch that ends them all."""

    def __init__(self) -> None:
        # Weak: a stream whose response ended is forgotten without being told.
        self._players: weakref.WeakSet[Player] = weakref.WeakSet()
        self.started_at: float | None = None  # wall ms the drain started, None: serving

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def track(self, player: Player) -> None:
        """Follow ``player`` until its response ends; ended at once if already draining."""
        self._players.add(player)
        if self.started_at is not None:
            _end_at(player, self.started_at)

    def start(self, now_ms: float, watchers: SessionWatchers | None) -> int:
        """End every open stream now (idempotent); the number of streams told."""
        if self.started_at is None:
            self.started_at = now_ms
        players = list(self._players)
        for player in players:
            _end_at(player, self.started_at)
        if watchers is not None:
            watchers.wake_all()  # each waiting loop looks at its (moved) deadline now
        return len(players)


def _end_at(player: Player, wall_ms: float) -> None:
    playhead = player.playhead
    if playhead.limits.deadline > wall_ms:
        playhead.limits = dataclasses.replace(
            playhead.limits, deadline=wall_ms, deadline_reason=DRAIN_REASON
        )


def stream_drain(app: FastAPI) -> StreamDrain:
    """The app's drain switch, created on first use."""
    drain: StreamDrain | None = getattr(app.state, "stream_drain", None)
    if drain is None:
        drain = app.state.stream_drain = StreamDrain()
    return drain


def drain_streams(app: FastAPI, now_ms: float) -> int:
    """Start draining ``app``'s streams (see the module docstring); streams told."""
    runtime = getattr(app.state, "stream_runtime", None)
    return stream_drain(app).start(now_ms, None if runtime is None else runtime.watchers)
