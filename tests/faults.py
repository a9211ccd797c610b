"""Faults injected at a boto3 client's edge, for the fault-injection tests.

A handler on botocore's ``before-send`` event answers in place of the service: the request
never reaches moto, and the client sees exactly what AWS would send back (status, error
code, body), so its own retry policy, parsing and error mapping run unchanged. Latency is
injected by sleeping before the request goes on. Production code is not touched.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.awsrequest import AWSPreparedRequest, AWSResponse


class _Body:
    """The raw body of a synthetic response, as botocore reads it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data

    def read(self, *_: Any) -> bytes:
        return self.data


@dataclass
class Fault:
    """Answer ``operation`` (e.g. ``s3.GetObject``) with an error, or delay it.

    ``times``: how many requests are affected (None: until cleared). ``when``: an extra
    condition on the request (e.g. its URL names one key).
    """

    operation: str
    status: int = 0
    code: str = ""
    delay_s: float = 0.0
    times: int | None = None
    when: Callable[[AWSPreparedRequest], bool] | None = None
    hits: int = 0

    def applies(self, operation: str, request: AWSPreparedRequest) -> bool:
        if operation != self.operation or (self.times is not None and self.hits >= self.times):
            return False
        return self.when is None or self.when(request)

    def response(self, request: AWSPreparedRequest) -> AWSResponse:
        service = self.operation.split(".")[0]
        if service == "s3":
            headers = {"Content-Type": "application/xml"}
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{self.code}</Code>'
                f"<Message>injected fault</Message><RequestId>fault</RequestId></Error>"
            ).encode()
        else:  # JSON protocol services (DynamoDB)
            headers = {"Content-Type": "application/x-amz-json-1.0"}
            body = orjson.dumps(
                {"__type": f"com.amazonaws.{service}#{self.code}", "message": "injected fault"}
            )
        return AWSResponse(request.url, self.status, headers, _Body(body))


class FaultInjector:
    """Faults on the clients given; every request an active fault matched is counted."""

    def __init__(self, clients: Iterable[Any]) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.requests: Counter[str] = Counter()  # every request seen, by operation
        self.injected: Counter[str] = Counter()  # errors answered, by operation
        self.log: list[tuple[str, str, str | None]] = []
        for client in clients:
            # Registered for the service, not on bare "before-send": handlers of a more
            # specific event name run first, so this answers before moto's own hook would.
            service = client.meta.service_model.service_id.hyphenize()
            client.meta.events.register(f"before-send.{service}", self._before_send)

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _before_send(
        self, request: AWSPreparedRequest, event_name: str = "", **_: Any
    ) -> AWSResponse | None:
        operation = event_name.removeprefix("before-send.")
        with self._lock:
            self.requests[operation] += 1
            fault = next((f for f in self._faults if f.applies(operation, request)), None)
            self.log.append((operation, request.url, fault.code if fault else None))
            if fault is None:
                return None
            fault.hits += 1
        if fault.delay_s:
            time.sleep(fault.delay_s)  # on the caller's (worker) thread, like a slow network
        if not fault.status:
            return None
        with self._lock:
            self.injected[operation] += 1
        response = fault.response(request)
        # botocore calls every before-send handler and uses the first answer; in-process
        # moto's handler comes after this one and would still *execute* the request (a
        # "throttled" write would be applied). Pointing the request nowhere makes moto
        # pass on it; each retry builds a fresh request.
        request.url = "http://fault-injected.invalid/"
        return response


def url_names(fragment: str) -> Callable[[AWSPreparedRequest], bool]:
    """A ``when`` condition: the request URL contains ``fragment`` (e.g. an S3 key)."""
    return lambda request: fragment in request.url
