"""What the dispatch system recorded about the simulated day: flight events, task status
transitions, notifications and dispatch decisions, as raw records (dicts in the raw-data
contract's shape)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from chunker.format.day import ServiceDay
from synthetic.dispatch import Alert, Decision
from synthetic.gps import LocalClock
from synthetic.layout import to_lat_lon
from synthetic.schedule import MINUTE, Leg, Programme, Task, Turnaround

Record = tuple[int, dict[str, Any]]  # (t, record)


class Recorder:
    """Builds raw records; every time field is written as local time with its offset."""

    def __init__(
        self,
        day: ServiceDay,
        clock: LocalClock,
        rng: random.Random,
        to_lat_lon: Callable[[float, float], tuple[float, float]] = to_lat_lon,
    ):
        self.to_lat_lon = to_lat_lon  # the layout's frame (AirportLayout.to_lat_lon)
        self.day = day
        self.clock = clock
        self.rng = rng
        self.alerts: list[Alert] = []

    def _time(self, ms: int | None) -> str | None:
        return None if ms is None else self.clock.text(ms)

    # --- flights -----------------------------------------------------------------------------

    def flights(self, programme: Programme) -> list[Record]:
        """Every flight event of the day, with the delay/stand/cancel notifications."""
        records: list[Record] = []
        for ta in programme.turnarounds:
            for leg in (ta.arrival, ta.departure):
                if leg is not None:
                    records += self._leg(ta, leg)
        return records

    def _leg(self, ta: Turnaround, leg: Leg) -> list[Record]:
        rng = self.rng
        out: list[Record] = []
        estimated: int | None = None
        status = "scheduled"

        def emit(t: int, new_status: str, actual: int | None = None) -> None:
            nonlocal status
            status = new_status
            record = {
                "t": self.clock.text(t),
                "flight_id": leg.flight_id,
                "callsign": leg.callsign,
                "flight_number": leg.flight_number,
                "movement": leg.movement,
                "airline": ta.airline,
                "aircraft_type": ta.aircraft_type,
                "registration": ta.registration,
                "route": leg.route,
                "turnaround_id": ta.turnaround_id,
                "stand": ta.stand_at(t).stand_id,
                "scheduled": self.clock.text(leg.scheduled),
                "estimated": self._time(estimated),
                "actual": self._time(actual),
                "status": new_status,
            }
            out.append((t, record))

        published = max(
            self.day.start_ms + rng.randrange(5_000, 90_000), leg.scheduled - 6 * 60 * MINUTE
        )
        emit(published, "scheduled")
        if leg.cancelled_at is not None:
            emit(max(published + MINUTE, leg.cancelled_at), "cancelled")
            if leg.movement == "arrival":
                self.alerts.append(
                    Alert(
                        max(published + MINUTE, leg.cancelled_at),
                        "critical",
                        "flight_cancelled",
                        f"{leg.callsign} from {leg.route} cancelled; turnaround tasks withdrawn",
                        leg.flight_id,
                    )
                )
            return out
        assert leg.block_ms is not None and leg.runway_ms is not None
        block, runway = leg.block_ms, leg.runway_ms
        if leg.movement == "arrival":
            first_sign = runway - rng.randrange(12 * MINUTE, 19 * MINUTE)
        else:
            first_sign = block - rng.randrange(30 * MINUTE, 41 * MINUTE)  # boarding starts
        delay = block - leg.scheduled
        delayed_at = None
        if delay >= 15 * MINUTE:
            lead = (
                rng.randrange(40 * MINUTE, 150 * MINUTE)
                if leg.movement == "arrival"
                else rng.randrange(15 * MINUTE, 45 * MINUTE)
            )
            delayed_at = max(published + MINUTE, min(leg.scheduled - lead, first_sign - MINUTE))
            if delayed_at >= first_sign:
                delayed_at = None
        changed_at = ta.stand_changed_at
        steps: list[tuple[int, str]] = []
        if delayed_at is not None:
            steps.append((delayed_at, "delayed"))
        if changed_at is not None and published < changed_at < first_sign:
            steps.append((changed_at, "stand"))
        for t, what in sorted(steps):
            if what == "delayed":
                estimated = block
                emit(t, "delayed")
                direction = "from" if leg.movement == "arrival" else "to"
                self.alerts.append(
                    Alert(
                        t,
                        "warning" if delay < 60 * MINUTE else "critical",
                        "flight_delayed",
                        f"{leg.callsign} {direction} {leg.route} delayed "
                        f"{round(delay / MINUTE)} min, "
                        f"new {'in' if leg.movement == 'arrival' else 'off'}-block "
                        f"{self.day.local_clock(block)[:5]}",
                        leg.flight_id,
                    )
                )
            else:
                emit(t, status)
                if leg.movement == "arrival":
                    assert ta.initial_stand is not None and ta.stand is not None
                    self.alerts.append(
                        Alert(
                            t,
                            "info",
                            "stand_changed",
                            f"{leg.callsign} stand changed {ta.initial_stand.stand_id} → "
                            f"{ta.stand.stand_id}",
                            leg.flight_id,
                        )
                    )
        estimated = block
        if leg.movement == "arrival":
            emit(first_sign, "approaching")
            emit(runway, "landed", runway)
            emit(block, "on_block", block)
        else:
            emit(first_sign, "boarding")
            emit(block, "off_block", block)
            emit(runway, "departed", runway)
        return out

    # --- tasks -------------------------------------------------------------------------------

    def tasks(self, programme: Programme) -> list[Record]:
        """Every task status transition, and the late-task notifications."""
        records: list[Record] = []
        for task in programme.tasks:
            records += self._task(task)
        return records

    def _task(self, task: Task) -> list[Record]:
        out: list[Record] = []
        previous: str | None = None
        stand = task.turnaround.stand_at(task.created).stand_id

        def emit(
            t: int,
            status: str,
            vehicle_id: str | None = None,
            actual_start: int | None = None,
            actual_end: int | None = None,
        ) -> None:
            nonlocal previous
            out.append(
                (
                    t,
                    {
                        "t": self.clock.text(t),
                        "task_id": task.task_id,
                        "flight_id": task.flight_id,
                        "task_type": task.task_type.value,
                        "status": status,
                        "previous_status": previous,
                        "vehicle_id": vehicle_id,
                        "stand": stand,
                        "planned_start": self.clock.text(task.planned_start),
                        "planned_end": self.clock.text(task.planned_end),
                        "actual_start": self._time(actual_start),
                        "actual_end": self._time(actual_end),
                    },
                )
            )
            previous = status

        if task.cancelled_at is not None:
            if task.created < task.cancelled_at:
                emit(task.created, "created")
                emit(task.cancelled_at + self.rng.randrange(1_000, 20_000), "cancelled")
            return out
        vehicle = task.vehicle_id
        emit(task.created, "created")
        emit(task.assigned, "assigned", task.first_vehicle_id or vehicle)
        if task.reassigned is not None:
            emit(task.reassigned, "assigned", vehicle)
        emit(task.depart, "en_route", vehicle)
        emit(task.arrive, "arrived", vehicle)
        emit(task.start, "in_progress", vehicle, task.start)
        emit(task.end, "completed", vehicle, task.start, task.end)
        if task.start > task.planned_start + 10 * MINUTE:
            self.alerts.append(
                Alert(
                    task.planned_start + 10 * MINUTE,
                    "warning",
                    "task_late",
                    f"{task.task_type.value.replace('_', ' ').capitalize()} at stand {stand} "
                    f"not started, 10 min behind plan",
                    task.flight_id,
                    task.task_id,
                    vehicle,
                )
            )
        return out

    # --- notifications -----------------------------------------------------------------------

    def notifications(self, alerts: list[Alert]) -> list[Record]:
        """All alerts as notification records, numbered in time order."""
        date_code = self.day.service_date.strftime("%Y%m%d")
        ordered = sorted(alerts, key=lambda a: (a.t, a.code, a.text))
        return [
            (
                alert.t,
                {
                    "t": self.clock.text(alert.t),
                    "notification_id": f"N{date_code}-{n:05d}",
                    "level": alert.level,
                    "code": alert.code,
                    "text": alert.text,
                    "flight_id": alert.flight_id,
                    "task_id": alert.task_id,
                    "vehicle_id": alert.vehicle_id,
                },
            )
            for n, alert in enumerate(ordered, start=1)
        ]

    # --- dispatch decisions ------------------------------------------------------------------

    def decisions(self, decisions: list[Decision]) -> list[Record]:
        """Every dispatch decision as a record: the candidates as the planner saw them."""
        text = self.clock.text
        out: list[Record] = []
        for decision in decisions:
            task = decision.task
            candidates = []
            for c in decision.candidates:
                lat, lon = self.to_lat_lon(c.origin.x, c.origin.y)
                candidates.append(
                    {
                        "vehicle_id": c.vehicle_id,
                        "state": None if c.state is None else c.state.value,
                        "lat": round(lat, 7),
                        "lon": round(lon, 7),
                        "free_at": text(c.free_at),
                        "eta": text(c.eta),
                        "on_time": c.on_time,
                        "busy_ms": c.busy_ms,
                        "score": c.score,
                    }
                )
            record: dict[str, Any] = {
                "t": text(decision.t),
                "task_id": task.task_id,
                "flight_id": task.flight_id,
                "decision": decision.kind,
                "vehicle_id": decision.vehicle_id,
                "previous_vehicle_id": decision.previous_vehicle_id,
                "reason": decision.reason,
                "rule": decision.rule,
                "stand": task.turnaround.stand_at(task.created).stand_id,
                "required_at": text(decision.required_at),
                "candidates": candidates,
            }
            out.append((decision.t, record))
        return out
