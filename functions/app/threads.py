"""Blocking storage calls, run off the event loop in thread pools sized for waiting.

boto3 is blocking, so every DynamoDB and S3 call runs in a thread while the event loop
(shared by every open stream) goes on. ``asyncio.to_thread`` would put them all in the
loop's default pool: ``min(32, cpus + 4)`` threads, 6 on a 2-core machine. Those threads
mostly wait on the network, and one pool for everything lets a burst of one kind starve
the other: found by ``python -m bench load``, where 500 streams opening at once (a
session read and a presence renewal each) queued control actions for up to 2 s.

So the process has one pool per store, each large enough for the waiting it does (the
botocore connection pools in ``functions/app/dependencies.py`` and ``chunker/format/s3.py`` are at
least as large, so no thread waits for a connection):

- ``SESSION_STORE`` — DynamoDB: control actions, presence, stream opens, the session poll.
- ``CHUNK_STORE`` — S3: chunks, manifests, published days (streams and history queries),
  so a frame that needs a chunk never queues behind session traffic, and vice versa.

Threads start on first use, so a Lambda environment that serves one request at a time
only ever starts the few it uses.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

SESSION_STORE_THREADS = 32
CHUNK_STORE_THREADS = 16

SESSION_STORE = ThreadPoolExecutor(SESSION_STORE_THREADS, thread_name_prefix="session-store")
CHUNK_STORE = ThreadPoolExecutor(CHUNK_STORE_THREADS, thread_name_prefix="chunk-store")


async def run_in(
    pool: ThreadPoolExecutor, call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``call(*args, **kwargs)`` in a thread of ``pool``, with this task's context
    variables (the request id the logs carry), as ``asyncio.to_thread`` does."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    bound = functools.partial(context.run, call, *args, **kwargs)
    return await loop.run_in_executor(pool, bound)
