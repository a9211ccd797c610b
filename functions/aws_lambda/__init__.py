"""The Lambda entry points: the control function's handlers, the stream function's bridge.

Importing this package starts a function's init phase, so it pauses garbage collection for
the init first (``chunker.init_phase``); the entry point calls ``init_finished`` once its
app is built.
"""

from chunker.init_phase import init_finished

__all__ = ["init_finished"]
