"""The container's server: the app under uvicorn, drained before it stops.

The same app object as everywhere (``functions.app.application.create_app``), configured
by the same environment (``functions.app.settings``); what differs from ``dispatch-replay
serve`` on a laptop is only how the process starts and stops:

- it listens on ``0.0.0.0:$PORT`` behind the ALB, keeps idle connections open longer than
  the ALB's idle timeout (else the ALB may reuse a connection the server just closed: 502);
- on SIGTERM it stops accepting connections, ends every open stream with ``reconnect``
  (``functions.app.stream.drain``), waits up to ``DRAIN_TIMEOUT_S`` for the responses to
  finish, then exits; ECS's stop timeout (template) is longer than that;
- with ``TARGET_GROUP_ARN`` set it also drains as soon as the ALB starts draining this
  task, which on ECS comes long before SIGTERM (``functions.container.target``).
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from typing import Any

import uvicorn
from aws_lambda_powertools import Logger
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from functions.app.stream.drain import drain_streams
from functions.container import target

logger = Logger()  # service: POWERTOOLS_SERVICE_NAME


class ContainerSettings(BaseSettings):
    """How the container serves (the app's own settings are ``AppSettings``)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    host: str = "0.0.0.0"  # in a task: the ALB reaches it on the task ENI
    port: int = Field(default=8000, gt=0, lt=65_536)
    # After the streams were told to reconnect: how long their responses may take to end
    # (a stream waiting on S3 sees its deadline when the chunk comes, STREAM_CHUNK_WAIT_S).
    drain_timeout_s: float = Field(default=15.0, gt=0, le=110)
    # Above the ALB's idle timeout (60 s in the template).
    keep_alive_s: int = Field(default=75, ge=1)
    target_group_arn: str = ""
    target_health_poll_s: float = Field(default=5.0, ge=0.5, le=60)
    ecs_container_metadata_uri_v4: str = ""


def wall_ms() -> float:
    return time.time() * 1000


class DrainingServer(uvicorn.Server):
    """uvicorn that drains ``app``'s streams when it stops, and when its target drains."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, settings: ContainerSettings):
        super().__init__(config)
        self.app = app
        self.settings = settings
        self._target_watch: asyncio.Task[None] | None = None

    def drain(self, why: str) -> int:
        told = drain_streams(self.app, wall_ms())
        logger.info("draining streams", extra={"why": why, "streams": told})
        return told

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.settings.target_group_arn and self.settings.ecs_container_metadata_uri_v4:
            self._target_watch = asyncio.create_task(self._watch_target())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop accepting first, so no stream opens behind the drain; uvicorn's own
        # shutdown then closes idle connections and waits for the streams' final events.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        if self._target_watch is not None:
            self._target_watch.cancel()
        self.drain("stopping")
        await super().shutdown(sockets)

    async def _watch_target(self) -> None:
        from chunker.format.clients import aws_client

        settings = self.settings
        elbv2 = aws_client("elbv2")
        state = target.TargetState()
        address: str | None = None
        last: str | None = None
        while True:
            await asyncio.sleep(settings.target_health_poll_s)
            try:
                if address is None:
                    address = await asyncio.to_thread(
                        target.task_address, settings.ecs_container_metadata_uri_v4
                    )
                answer = await asyncio.to_thread(
                    target.describe_self,
                    elbv2,
                    settings.target_group_arn,
                    address,
                    settings.port,
                )
            except Exception as exc:  # noqa: BLE001 - throttled or a network fault: ask again
                logger.warning("target health unavailable", extra={"error": str(exc)[:300]})
                continue
            current = target.state_of(answer, address, settings.port)
            if current != last:
                logger.info("target health", extra={"state": current, "address": address})
                last = current
            if state.leaving(current):
                self.drain("target draining")
                # Connections the ALB keeps open close once idle: it then sees none left.
                for connection in list(self.server_state.connections):
                    connection.shutdown()
                return


def build_server(settings: ContainerSettings | None = None, app: FastAPI | None = None) -> Any:
    """The server for ``app`` (default: the app built from the environment)."""
    from functions.app.application import create_app

    settings = settings or ContainerSettings()
    app = app or create_app()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http="h11",
        lifespan="off",  # the app has no lifespan hooks; draining is the server's
        log_level="warning",
        access_log=False,  # the app logs each request itself, without stream tokens
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        proxy_headers=True,
        forwarded_allow_ips="*",  # only the ALB's security group reaches the task
    )
    return DrainingServer(config, app, settings)


def main() -> int:
    """Serve until SIGTERM (or Ctrl-C); 0 after a clean drain."""
    try:
        server = build_server()
    except Exception as exc:  # noqa: BLE001 - one line for the task's log, then exit 1
        print(f"dispatch-replay container: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    # uvicorn restores the handlers it found and raises the signal it stopped for again,
    # so that a default handler kills the process (status 143). The stop was asked for
    # and the drain is done: this handler makes it the clean exit (0) it is (and a SIGTERM
    # before uvicorn installed its own still stops the server, right after it started).
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
    server.run()
    return 0
