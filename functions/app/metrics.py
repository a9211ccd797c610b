"""Business metrics of the app, as CloudWatch EMF through Powertools ``Metrics``.

Each metric is added where its business event happens (docs/operations.md lists them):
``SessionsCreated``, ``ControlActions`` and ``VersionConflicts`` in the session service,
``StreamsOpened`` and ``StreamsEnded`` (dimension ``reason``) at the stream route,
``FramesSent`` and ``BytesSent`` in the SSE response (the transport). Namespace and service
come from ``POWERTOOLS_METRICS_NAMESPACE`` / ``POWERTOOLS_SERVICE_NAME`` (the template
sets them per function).

Flushing: Powertools keeps added metrics in one process-wide set until it is flushed.
The app flushes it at the end of every request (``functions.app.web.middleware``), which
under Lambda is once per invocation and under uvicorn keeps the set to one request's
worth; the Lambda adapters flush again at the invocation's end for what they added
themselves (a no-op when nothing was). With ``POWERTOOLS_METRICS_DISABLED=true`` nothing
is printed and the set is dropped at each flush instead, so it cannot grow either.

A metric with a dimension of its own (``StreamsEnded`` by ``reason``) is emitted at once as
a single-metric EMF document, the way Powertools does it (``single_metric``): one set's
metrics share one dimension set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from aws_lambda_powertools import Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# The template sets POWERTOOLS_METRICS_NAMESPACE; without it (a laptop) metrics still
# have a home, since EMF without a namespace is invalid.
DEFAULT_NAMESPACE = "DispatchReplay"

metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)

P = ParamSpec("P")
R = TypeVar("R")


def count(name: str, value: float = 1) -> None:
    """Add ``value`` to the count ``name`` (flushed with the request)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def measure(name: str, unit: MetricUnit, value: float) -> None:
    """Add one sample of ``name`` in ``unit`` (flushed with the request)."""
    metrics.add_metric(name=name, unit=unit, value=value)


def count_by(name: str, dimension: str, key: str, value: float = 1) -> None:
    """Emit the count ``name`` with its own dimension ``dimension=key`` now."""
    if is_metrics_disabled():
        return
    dimensions = {dimension: key}
    service = metrics.service
    if service:
        dimensions["service"] = str(service)
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=value,
        namespace=metrics.namespace,
        default_dimensions=dimensions,
    ):
        pass
    sys.stdout.flush()


def flush() -> None:
    """Publish what was added since the last flush (nothing to publish: nothing printed).

    Powertools ``print``s the EMF document; stdout is a pipe in Lambda (block-buffered
    under the streaming bridge, which runs outside the managed runtime), so it is flushed
    too: a document still in the buffer when the environment is frozen or shut down would
    reach CloudWatch late or never."""
    if is_metrics_disabled():
        metrics.clear_metrics()
    elif metrics.metric_set:
        metrics.flush_metrics()
        sys.stdout.flush()


def flushed(handler: Callable[P, R]) -> Callable[P, R]:
    """A Lambda handler whose metrics are flushed when its invocation ends, however it
    ends (``Metrics.log_metrics``, minus its warning on invocations that added none)."""

    @wraps(handler)
    def invoke(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return handler(*args, **kwargs)
        finally:
            flush()

    return invoke
