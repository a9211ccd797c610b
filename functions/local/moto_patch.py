"""moto, made as atomic as the DynamoDB it stands in for.

DynamoDB applies each request to an item atomically: a conditional write checks its
condition and writes in one step, so of two writers expecting the same ``version`` exactly
one succeeds. Sessions rely on that (optimistic concurrency,
``functions.app.domain.session_store``). moto checks and writes in two Python steps with
no lock, so two concurrent requests (its server is threaded; in-process, boto3 calls from
several threads) can both pass the check and one update is silently lost.
``atomic_dynamodb`` serialises moto's DynamoDB backend calls, so the local stack and the
tests keep DynamoDB's guarantee.

Run as ``python -m functions.local.moto_patch`` (moto's server arguments) for the local stack.
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_PATCHED = "_dispatch_replay_atomic"


def atomic_dynamodb() -> None:
    """Make every public method of moto's DynamoDB backend run under one lock (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, _PATCHED, False):
        return
    for name, method in list(vars(DynamoDBBackend).items()):
        if not name.startswith("_") and isinstance(method, types.FunctionType):
            setattr(DynamoDBBackend, name, _locked(method))
    setattr(DynamoDBBackend, _PATCHED, True)


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return call


def main() -> None:
    """moto's server, with atomic DynamoDB requests."""
    from moto.server import main as moto_main

    atomic_dynamodb()
    moto_main()


if __name__ == "__main__":
    main()
