"""The embedded local AWS: moto's server mode in a child process, on 127.0.0.1.

Used by ``dispatch-replay demo`` and by the end-to-end tests. Production code never knows
about it: it only sees ``AWS_ENDPOINT_URL`` pointing here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class LocalStackError(RuntimeError):
    """The embedded server did not start."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on right now, as a server listens: with
    ``SO_REUSEADDR`` (uvicorn sets it), so connections of a server that just stopped,
    left in TIME_WAIT, do not keep its port busy."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_http(
    url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers (any HTTP status), the process dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise LocalStackError(f"{url}: the server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise LocalStackError(f"{url} did not answer within {timeout_s} s") from None
            time.sleep(0.05)


def stop_process(
    process: subprocess.Popen[bytes], signal: int | None = None, timeout_s: float = 10
) -> None:
    """Ask a child process to stop (SIGTERM, or ``signal``), kill it if it does not."""
    if process.poll() is None:
        if signal is None:
            process.terminate()
        else:
            process.send_signal(signal)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class MotoServer:
    """A running moto server: its endpoint and the environment that points boto3 at it."""

    endpoint: str
    process: subprocess.Popen[bytes]

    @property
    def environment(self) -> dict[str, str]:
        """Variables for a process that should use this server (credentials are dummies)."""
        return {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}


@contextmanager
def moto_server(port: int | None = None, quiet: bool = True) -> Iterator[MotoServer]:
    """Start moto's server mode on 127.0.0.1 (with DynamoDB's atomic writes:
    ``functions.local.moto_patch``) and always stop it."""
    port = port or free_port()
    env = {**os.environ, **LOCAL_CREDENTIALS}
    process = subprocess.Popen(
        [sys.executable, "-m", "functions.local.moto_patch", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.DEVNULL if quiet else None,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{endpoint}/moto-api/", 30, process)
        yield MotoServer(endpoint, process)
    finally:
        stop_process(process)


def ensure_table(dynamodb: DynamoDBClient, table: str) -> None:
    """Create the sessions table (on-demand, TTL on ``expires_at``) if it does not exist.

    For the local stack and tests; in the cloud template.yaml creates the same table.
    """
    try:
        dynamodb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "session_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        return
    dynamodb.get_waiter("table_exists").wait(TableName=table)
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
