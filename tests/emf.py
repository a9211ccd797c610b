"""CloudWatch Embedded Metric Format documents read back from a process's stdout."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any


def emitted(out: str) -> list[tuple[str, dict[str, str], float]]:
    """(metric name, its dimensions, summed value) of every EMF document in ``out``."""
    found = []
    for text in out.splitlines():
        if not text.startswith("{"):
            continue
        document: dict[str, Any] = json.loads(text)
        if "_aws" not in document:
            continue  # a log line
        directive = document["_aws"]["CloudWatchMetrics"][0]
        dimensions = {name: document[name] for name in directive["Dimensions"][0]}
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            found.append(
                (metric["Name"], dimensions, sum(value) if isinstance(value, list) else value)
            )
    return found


def totals(out: str) -> Counter[str]:
    """Each metric's sum over every document (dimensions ignored)."""
    counter: Counter[str] = Counter()
    for name, _, value in emitted(out):
        counter[name] += value
    return counter
