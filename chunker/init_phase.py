"""The Lambda init phase of every function: garbage collection paused while it runs.

Each function's init begins by importing the package of its entry point, which imports this
module first (``functions.aws_lambda`` for the control and stream functions,
``chunker.batch`` for the chunker). While Lambda initializes a function it sets
``AWS_LAMBDA_INITIALIZATION_TYPE``; then the cyclic garbage collector is paused here until
the entry point has built what it keeps per container (``init_finished``). An init
creates some hundred thousand long-lived objects (modules, classes, pydantic validators,
botocore models) and next to no garbage (under a thousand unreachable objects after the
control function's init), so every collection it triggers rescans live objects for
nothing (``python -m bench coldstart``: docs/performance.md). ``init_finished`` moves what
the init built into the permanent generation (``gc.freeze``), so later collections do not
rescan it either, and resumes collection. It lives with the chunker, which both function
packages import, as they import the chunk format.
"""

from __future__ import annotations

import gc
import os

_PAUSED = bool(os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"))
if _PAUSED:
    gc.disable()


def init_finished() -> None:
    """The init is done: freeze what it built and resume garbage collection."""
    global _PAUSED  # noqa: PLW0603  # once per process
    if _PAUSED:
        _PAUSED = False
        gc.freeze()
        gc.enable()
