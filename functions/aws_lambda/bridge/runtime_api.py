"""A client of the Lambda Runtime API that can stream a response.

The managed Python runtime only posts whole responses, so the bridge talks to the Runtime
API itself: it asks for the next invocation and answers with
``Lambda-Runtime-Function-Response-Mode: streaming`` over chunked transfer encoding,
writing each body part as soon as the app produces it. An error after the first byte is
reported in the ``Lambda-Runtime-Function-Error-Type`` / ``-Body`` trailers, as AWS's
runtime interface clients do.

Plain HTTP/1.1 over asyncio streams: the Runtime API is a local endpoint
(``AWS_LAMBDA_RUNTIME_API``, host:port), and writing the chunked framing by hand keeps
every byte under our control (flushed per piece, never buffered).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass
from typing import Any

API = "/2018-06-01/runtime"
STREAM_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
ERROR_TYPE_TRAILER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_TRAILER = "Lambda-Runtime-Function-Error-Body"
MAX_HEAD_BYTES = 64 * 1024


class RuntimeApiError(RuntimeError):
    """The Runtime API answered something unexpected."""


class ClientGone(ConnectionError):
    """The response can no longer be written (the invocation's connection closed)."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """One event to handle, with what the Runtime API said about it."""

    request_id: str
    deadline_ms: int  # epoch ms
    function_arn: str
    trace_id: str | None
    event: bytes


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


async def _read_reply(reader: asyncio.StreamReader) -> HttpReply:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise RuntimeApiError("Runtime API reply head too large")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError) as exc:
        raise RuntimeApiError(f"bad status line from the Runtime API: {lines[0]!r}") from exc
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        return HttpReply(status, headers, bytes(body))
    length = int(headers.get("content-length", "0"))
    return HttpReply(status, headers, await reader.readexactly(length) if length else b"")


class RuntimeApi:
    """``AWS_LAMBDA_RUNTIME_API`` (host:port) as a few coroutines."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise RuntimeApiError(f"AWS_LAMBDA_RUNTIME_API must be host:port, not {address!r}")
        self.host, self.port, self.address = host, int(port), address

    async def _request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> HttpReply:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            head = [f"{method} {path} HTTP/1.1", f"Host: {self.address}", "Connection: close"]
            head += [f"{k}: {v}" for k, v in (headers or {}).items()]
            head.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
            await writer.drain()
            return await _read_reply(reader)
        finally:
            writer.close()

    async def next_invocation(self) -> Invocation:
        """Block until Lambda hands over the next event."""
        reply = await self._request("GET", f"{API}/invocation/next")
        if reply.status != 200:
            raise RuntimeApiError(f"next invocation: HTTP {reply.status}")
        h = reply.headers
        return Invocation(
            request_id=h["lambda-runtime-aws-request-id"],
            deadline_ms=int(h.get("lambda-runtime-deadline-ms", "0")),
            function_arn=h.get("lambda-runtime-invoked-function-arn", ""),
            trace_id=h.get("lambda-runtime-trace-id"),
            event=reply.body,
        )

    async def init_error(self, error_type: str, message: str) -> None:
        """Report that the function could not start."""
        await self._request(
            "POST",
            f"{API}/init/error",
            json.dumps({"errorType": error_type, "errorMessage": message}).encode(),
            {ERROR_TYPE_TRAILER: error_type, "Content-Type": "application/json"},
        )

    async def streaming_response(self, request_id: str) -> StreamingResponse:
        """Open the invocation's response; write the prelude and body pieces to it."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        head = [
            f"POST {API}/invocation/{request_id}/response HTTP/1.1",
            f"Host: {self.address}",
            "Lambda-Runtime-Function-Response-Mode: streaming",
            "Transfer-Encoding: chunked",
            f"Content-Type: {STREAM_CONTENT_TYPE}",
            f"Trailer: {ERROR_TYPE_TRAILER}, {ERROR_BODY_TRAILER}",
        ]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        response = StreamingResponse(reader, writer)
        await response.flush()
        return response


class StreamingResponse:
    """A chunked request body to the Runtime API, written body part by body part (each
    one chunk of the transfer encoding; "chunk" alone means an S3 replay chunk here)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.bytes_written = 0
        self.finished = False

    async def flush(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ClientGone(str(exc)) from exc
        if self._writer.is_closing():
            raise ClientGone("the Runtime API closed the response")

    async def write(self, body_part: bytes) -> None:
        """Send ``body_part`` now, framed as one chunk of the transfer encoding (an empty
        one is skipped: the empty chunk ends the body)."""
        if not body_part:
            return
        if self.finished:
            raise ClientGone("the response is already finished")
        self._writer.write(b"%x\r\n%s\r\n" % (len(body_part), body_part))
        self.bytes_written += len(body_part)
        await self.flush()

    async def finish(self, error: BaseException | None = None) -> HttpReply | None:
        """End the body (with error trailers when ``error``); the Runtime API's reply."""
        if self.finished:
            return None
        self.finished = True
        trailers = b""
        if error is not None:
            error_type = f"Runtime.{type(error).__name__}"
            body = json.dumps({"errorType": error_type, "errorMessage": str(error)[:1000]})
            trailers = (
                f"{ERROR_TYPE_TRAILER}: {error_type}\r\n"
                f"{ERROR_BODY_TRAILER}: {base64.b64encode(body.encode()).decode()}\r\n"
            ).encode("latin-1")
        try:
            self._writer.write(b"0\r\n" + trailers + b"\r\n")
            await self._writer.drain()
            return await _read_reply(self._reader)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            return None
        finally:
            self._writer.close()


def http_prelude(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The ``http-integration-response`` prelude: JSON status/headers/cookies, 8 NULs."""
    combined: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, raw_value in headers:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name == "set-cookie":
            cookies.append(value)
        elif name in combined:
            combined[name] = f"{combined[name]}, {value}"
        else:
            combined[name] = value
    prelude: dict[str, Any] = {"statusCode": status, "headers": combined}
    if cookies:
        prelude["cookies"] = cookies
    return json.dumps(prelude, separators=(",", ":")).encode() + b"\0" * 8
