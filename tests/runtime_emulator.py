"""A Lambda Runtime API emulator for the streaming bridge's tests.

Hands out queued invocations on ``GET /invocation/next`` and records every response:
headers, each chunk of a streamed body with the moment it arrived, trailers, and when the
response ended. Parses HTTP by hand (chunked framing included) so that what is recorded
is exactly what went over the wire.
"""

from __future__ import annotations

import json
import queue
import socket
import socketserver
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

API = "/2018-06-01/runtime"


@dataclass
class Recorded:
    """One invocation as the emulator saw it."""

    request_id: str
    event: dict[str, Any]
    deadline_ms: int
    handed_out_at: float = 0.0  # time.monotonic()
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    ended_at: float | None = None
    error_posted: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def body(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)

    def split(self) -> tuple[dict[str, Any], bytes]:
        """The http-integration-response prelude (JSON) and the HTTP body after 8 NULs."""
        body = self.body
        cut = body.index(b"\0" * 8)
        return json.loads(body[:cut]), body[cut + 8 :]

    def wait(self, timeout_s: float = 30.0) -> Recorded:
        assert self.done.wait(timeout_s), f"invocation {self.request_id} did not finish"
        return self


class RuntimeApiEmulator:
    """Start with ``with RuntimeApiEmulator() as api:``; ``api.address`` is host:port."""

    def __init__(self) -> None:
        self.pending: queue.Queue[Recorded] = queue.Queue()
        self.invocations: dict[str, Recorded] = {}
        self.init_errors: list[dict[str, Any]] = []
        self._closing = threading.Event()
        emulator = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                emulator._serve(self.rfile, self.connection)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RuntimeApiEmulator:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def invoke(self, event: dict[str, Any], timeout_s: float = 30.0) -> Recorded:
        """Queue an invocation with a deadline ``timeout_s`` from now."""
        recorded = Recorded(
            request_id=str(uuid.uuid4()),
            event=event,
            deadline_ms=time.time_ns() // 1_000_000 + int(timeout_s * 1000),
        )
        self.invocations[recorded.request_id] = recorded
        self.pending.put(recorded)
        return recorded

    # --- the wire ---------------------------------------------------------------------

    def _serve(self, rfile: Any, connection: socket.socket) -> None:
        request_line = rfile.readline().decode("latin-1").strip()
        if not request_line:
            return
        method, path, _ = request_line.split(" ", 2)
        headers = _read_headers(rfile)
        if method == "GET" and path == f"{API}/invocation/next":
            while not self._closing.is_set():
                try:
                    recorded = self.pending.get(timeout=0.2)
                except queue.Empty:
                    continue
                recorded.handed_out_at = time.monotonic()
                body = json.dumps(recorded.event).encode()
                _reply(
                    connection,
                    200,
                    body,
                    {
                        "Lambda-Runtime-Aws-Request-Id": recorded.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(recorded.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": (
                            "arn:aws:lambda:eu-west-1:123456789012:function:stream"
                        ),
                        "Lambda-Runtime-Trace-Id": "Root=1-5f84c7a1-7f2a9c3e8b1d4e5f6a7b8c9d",
                    },
                )
                return
            return
        if method == "POST" and path == f"{API}/init/error":
            body = rfile.read(int(headers.get("content-length", "0")))
            self.init_errors.append(json.loads(body or b"{}"))
            _reply(connection, 202, b"{}")
            return
        parts = path.split("/")
        if method == "POST" and len(parts) == 6 and parts[3] == "invocation":
            recorded = self.invocations[parts[4]]
            recorded.headers = headers
            if parts[5] == "error":
                recorded.error_posted = json.loads(rfile.read(int(headers["content-length"])))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int(rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        recorded.trailers = _read_headers(rfile)
                        break
                    data = rfile.read(size)
                    recorded.chunks.append((time.monotonic(), data))
                    rfile.read(2)
            else:
                data = rfile.read(int(headers.get("content-length", "0")))
                recorded.chunks.append((time.monotonic(), data))
            recorded.ended_at = time.monotonic()
            _reply(connection, 202, b'{"status":"OK"}')
            recorded.done.set()
            return
        _reply(connection, 404, b"{}")


def _read_headers(rfile: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    while True:
        line = rfile.readline().decode("latin-1")
        if line in ("\r\n", "\n", ""):
            return headers
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()


def _reply(
    connection: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    connection.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
