"""Decision quality of a window ``[start, end)``: how good the dispatcher's choices were,
measured from what happened after them (issue 20, item 5; definitions in docs/api.md,
*Decision quality*).

A pure fold over the decisions and task events of the window's ticks and of a look-ahead
after it (an assignment made at the end of the window arrives after it):
``queries.History.decision_quality`` feeds it. For each decision that chose a vehicle:

- its **arrival**: the first task event of its task, at or after the decision, whose
  status is ``arrived`` (or ``in_progress``, when the arrival was not recorded) and whose
  vehicle is the chosen one — unless another decision about the task came first (the
  decision was superseded: no arrival, not measured);
- **on time**: arrival at or before the decision's ``required_at``;
- **regret**: arrival minus the earliest ETA of the candidates that could be chosen
  (``excluded`` empty) at the decision — what the best alternative promised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chunker.format.rows import Row
from functions.app.history.kpis import KpiFilters, percentile

LOOKAHEAD_MS = 2 * 3_600_000  # how long after the window an arrival is still looked for
HIGH_REGRET_MS = 5 * 60_000  # default threshold of the high-regret list
MAX_LISTED = 200
CHOOSING = frozenset({"assign", "reassign", "escalate_no_vehicle"})
ARRIVED = frozenset({"arrived", "in_progress"})


@dataclass(slots=True)
class _Measured:
    decision: Row
    best: Row | None  # the eligible candidate with the earliest ETA
    arrival: int | None = None
    closed: bool = False  # arrived, or superseded by a later decision about its task


@dataclass
class DecisionQualityFold:
    """Accumulates the decision quality of ``[start, end)``; ``fleet``: vehicle -> type."""

    start: int
    end: int
    fleet: Mapping[str, str]
    filters: KpiFilters = field(default_factory=KpiFilters)
    high_regret_ms: int = HIGH_REGRET_MS
    limit: int = 20
    decisions: int = 0
    tasks: set[str] = field(default_factory=set)
    reassignments: int = 0
    escalations: int = 0
    measured: list[_Measured] = field(default_factory=list)
    _open: dict[str, _Measured] = field(default_factory=dict)  # task -> awaiting arrival

    def _counts(self, row: Row) -> bool:
        f = self.filters
        vehicle = row.get("vehicle_id")
        return (
            (f.stands is None or row.get("stand") in f.stands)
            and (f.task_types is None or row.get("task_type") in f.task_types)
            and (
                f.vehicle_types is None
                or (vehicle is not None and self.fleet.get(vehicle) in f.vehicle_types)
            )
        )

    def decision(self, row: Row) -> None:
        """One decision (as chunks store it), in order; those after ``end`` only close
        the ones before."""
        task_id = row["id"]
        superseded = self._open.pop(task_id, None)
        if superseded is not None:
            superseded.closed = True
        if not self.start <= row["t"] < self.end or not self._counts(row):
            return
        self.decisions += 1
        self.tasks.add(task_id)
        kind = row["decision"]
        self.reassignments += kind == "reassign"
        self.escalations += kind == "escalate_no_vehicle"
        if kind not in CHOOSING or row.get("vehicle_id") is None:
            return
        eligible = [
            c for c in row.get("candidates") or () if c.get("excluded") is None and c.get("eta")
        ]
        best = min(eligible, key=lambda c: (c["eta"], c["vehicle_id"])) if eligible else None
        measured = _Measured(row, best)
        self.measured.append(measured)
        self._open[task_id] = measured

    def task(self, task_id: str, status: str, t: int, vehicle_id: str | None) -> None:
        """One task event, in order."""
        measured = self._open.get(task_id)
        if (
            measured is not None
            and status in ARRIVED
            and vehicle_id == measured.decision["vehicle_id"]
            and t >= measured.decision["t"]
        ):
            measured.arrival = t
            measured.closed = True
            del self._open[task_id]

    def result(self) -> dict[str, Any]:
        """The decision-quality document."""
        arrived = [m for m in self.measured if m.arrival is not None]
        on_time = [m for m in arrived if _on_time(m)]
        timed = [m for m in arrived if m.decision.get("required_at") is not None]
        regrets = [(m, _regret(m)) for m in arrived if m.best is not None]
        values = [r for _, r in regrets if r is not None]
        high = sorted(
            ((m, r) for m, r in regrets if r is not None and r >= self.high_regret_ms),
            key=lambda mr: (-mr[1], mr[0].decision["t"], mr[0].decision["id"]),
        )
        return {
            "start": self.start,
            "end": self.end,
            "decisions": self.decisions,
            "tasks": len(self.tasks),
            "assignments": len(self.measured),
            "arrived": len(arrived),
            "on_time": len(on_time),
            "on_time_share": round(len(on_time) / len(timed), 4) if timed else None,
            "regret_mean_ms": round(sum(values) / len(values)) if values else None,
            "regret_p90_ms": percentile(values, 90),
            "regret_measured": len(values),
            "reassignments": self.reassignments,
            "reassignments_per_100_tasks": round(100 * self.reassignments / len(self.tasks), 2)
            if self.tasks
            else None,
            "escalations_no_vehicle": self.escalations,
            "high_regret_threshold_ms": self.high_regret_ms,
            "high_regret_count": len(high),
            "high_regret": [_listed(m, r) for m, r in high[: self.limit]],
        }


# The figures a comparison of two variants takes the difference of (compare minus variant).
COMPARED = (
    "decisions",
    "tasks",
    "assignments",
    "arrived",
    "on_time",
    "on_time_share",
    "regret_mean_ms",
    "regret_p90_ms",
    "regret_measured",
    "reassignments",
    "reassignments_per_100_tasks",
    "escalations_no_vehicle",
    "high_regret_count",
)


def quality_difference(base: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """``other`` minus ``base`` for every compared figure (None where either is None;
    shares and rates rounded as the figures are)."""
    difference: dict[str, Any] = {}
    for name in COMPARED:
        a, b = base.get(name), other.get(name)
        if a is None or b is None:
            difference[name] = None
        elif isinstance(a, float) or isinstance(b, float):
            difference[name] = round(b - a, 4)
        else:
            difference[name] = b - a
    return difference


def _on_time(m: _Measured) -> bool:
    required = m.decision.get("required_at")
    return required is not None and m.arrival is not None and m.arrival <= required


def _regret(m: _Measured) -> int | None:
    if m.arrival is None or m.best is None:
        return None
    return int(m.arrival - m.best["eta"])


def _listed(m: _Measured, regret: int) -> dict[str, Any]:
    d, best = m.decision, m.best
    assert best is not None
    return {
        "task_id": d["id"],
        "t": d["t"],
        "decision": d["decision"],
        "task_type": d.get("task_type"),
        "flight_id": d.get("flight_id"),
        "stand": d.get("stand"),
        "vehicle_id": d["vehicle_id"],
        "arrival": m.arrival,
        "required_at": d.get("required_at"),
        "best_vehicle_id": best["vehicle_id"],
        "best_eta": best["eta"],
        "regret_ms": regret,
    }
