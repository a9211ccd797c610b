"""The chunk job: raw recordings of a day (or some hours) -> published chunks.

Importing this package starts the chunker function's init phase (its ``Handler`` is
``chunker.batch.lambda_handler``), so it pauses garbage collection for the init first
(``chunker.init_phase``); the handler module calls ``init_finished`` once its settings and
clients are built.
"""

from chunker.init_phase import init_finished

__all__ = ["init_finished"]
