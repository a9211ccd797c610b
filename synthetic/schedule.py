"""The day's flight programme: turnarounds in arrival/departure banks, delays, stands, tasks.

Times are epoch milliseconds. A *turnaround* is one aircraft's visit: an arrival leg, a
departure leg, or both (aircraft that night-stop have only one leg inside the day). Its
tasks follow the usual ground-handling order; their actual start depends on when the
dispatched vehicle arrives, which ``synthetic.dispatch`` decides.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from chunker.format.day import ServiceDay
from chunker.format.records import TASK_VEHICLE_TYPE, TaskType, VehicleType
from synthetic.layout import AirportLayout, StandSpot

MINUTE = 60_000

# (IATA, ICAO, name, home terminal); fictional carriers.
AIRLINES = [
    ("L7", "LNH", "Lanhai Airlines", "T1"),
    ("Q3", "QTA", "Qiantang Air", "T1"),
    ("E5", "EHB", "East Harbour Airways", "T1"),
    ("M9", "MYW", "Mingyue Airways", "T2"),
    ("J4", "JDS", "Jade Sky", "T2"),
]
AIRLINE_WEIGHTS = [0.34, 0.2, 0.16, 0.18, 0.12]
ROUTES = (
    *("PEK", "PKX", "CAN", "CTU", "TFU", "SZX", "XIY", "KMG", "CKG", "WUH", "HAK", "TAO"),
    *("DLC", "HRB", "NKG", "XMN", "CSX", "TSN", "ICN", "NRT", "KIX", "HKG", "TPE", "SIN"),
    *("BKK", "MNL"),
)
NARROWBODY = [("A320", 0.35), ("A321", 0.25), ("B738", 0.3), ("A20N", 0.1)]
WIDEBODY = [("A333", 0.4), ("B789", 0.35), ("B77W", 0.25)]
WIDEBODY_SHARE = 0.18
OVERNIGHT_SHARE = 0.08  # of legs: originating departures, and as many terminating arrivals
# Arrival banks, local hour of the day -> weight; plus a uniform background.
BANKS = [(7.5, 0.20), (10.5, 0.22), (13.5, 0.18), (17.0, 0.22), (20.5, 0.18)]
BANK_SIGMA_MIN = 38.0
BACKGROUND_SHARE = 0.15
CANCEL_SHARE = 0.015
STAND_CHANGE_SHARE = 0.05
REMOTE_SHARE = 0.2  # of turnarounds planned on a remote stand even when a gate is free

TASK_VEHICLE = TASK_VEHICLE_TYPE  # the domain's rule: who does which task


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    """When a task type happens in a turnaround, and for how long (minutes)."""

    task_type: TaskType
    side: str  # "arrival": offset from on-block; "departure": offset from target off-block
    offset_min: float
    narrow_min: float
    wide_min: float
    lead_min: float  # how early the vehicle should be there
    suffix: str = ""
    remote_only: bool = False


ARRIVAL_TASKS = [
    TaskTemplate(TaskType.PASSENGER_BUS, "arrival", 1, 12, 16, 5, "arr", remote_only=True),
    TaskTemplate(TaskType.BAGGAGE_UNLOAD, "arrival", 2, 15, 28, 4),
    TaskTemplate(TaskType.CLEANING, "arrival", 8, 14, 28, 3),
    TaskTemplate(TaskType.LAVATORY, "arrival", 10, 9, 14, 3),
    TaskTemplate(TaskType.WATER, "arrival", 11, 9, 14, 3),
    TaskTemplate(TaskType.CATERING, "arrival", 12, 15, 32, 3),
    TaskTemplate(TaskType.REFUEL, "arrival", 15, 17, 38, 3),
]
DEPARTURE_TASKS = [
    TaskTemplate(TaskType.PASSENGER_BUS, "departure", -38, 20, 24, 5, "dep", remote_only=True),
    TaskTemplate(TaskType.BAGGAGE_LOAD, "departure", -36, 20, 32, 4),
    TaskTemplate(TaskType.PUSHBACK, "departure", 0, 6, 8, 8),
]
# An aircraft that spent the night on stand is prepared before its first departure.
ORIGINATING_TASKS = [
    TaskTemplate(TaskType.CLEANING, "departure", -85, 20, 35, 3),
    TaskTemplate(TaskType.CATERING, "departure", -70, 15, 32, 3),
    TaskTemplate(TaskType.WATER, "departure", -62, 9, 14, 3),
    TaskTemplate(TaskType.REFUEL, "departure", -60, 18, 40, 3),
]
TERMINATING_TASKS = [t for t in ARRIVAL_TASKS if t.task_type not in (TaskType.REFUEL,)]


@dataclass
class Leg:
    """One flight (an arrival or a departure) as the airport database knows it."""

    flight_id: str
    flight_number: str
    callsign: str
    movement: str  # arrival | departure
    route: str
    scheduled: int  # in-block (arrival) / off-block (departure) time
    delay_min: float = 0.0  # planned delay (arrivals); departures get theirs from the apron
    cancelled_at: int | None = None
    estimated_known_at: int | None = None
    # Actuals, filled in by the simulation.
    runway_ms: int | None = None  # landing / take-off
    block_ms: int | None = None  # on-block / off-block


@dataclass
class Turnaround:
    """One aircraft's visit to a stand."""

    turnaround_id: str
    airline: str
    aircraft_type: str
    registration: str
    widebody: bool
    arrival: Leg | None
    departure: Leg | None
    on_block: int  # actual on-block (or day start for aircraft parked overnight)
    target_off_block: int  # departure's scheduled off-block, or day end
    stand: StandSpot | None = None
    initial_stand: StandSpot | None = None
    stand_changed_at: int | None = None

    @property
    def cancelled(self) -> bool:
        leg = self.arrival or self.departure
        return leg is not None and leg.cancelled_at is not None

    def stand_at(self, t: int) -> StandSpot:
        """The stand the airport database showed at time t."""
        assert self.stand is not None
        if self.stand_changed_at is not None and t < self.stand_changed_at:
            assert self.initial_stand is not None
            return self.initial_stand
        return self.stand


@dataclass
class Task:
    """One ground-handling task, and (after dispatch) what actually happened."""

    task_id: str
    task_type: TaskType
    vehicle_type: VehicleType
    turnaround: Turnaround
    flight_id: str
    template: TaskTemplate
    ready: int  # earliest actual start
    planned_start: int
    planned_end: int
    duration: int
    created: int
    order: int  # dispatch order key (nominal desired arrival)
    cancelled_at: int | None = None
    # Dispatch results.
    vehicle_id: str | None = None
    first_vehicle_id: str | None = None  # assigned first, then reassigned
    assigned: int = 0
    reassigned: int | None = None
    depart: int = 0
    arrive: int = 0
    start: int = 0
    end: int = 0
    extra: dict[str, int] = field(default_factory=dict)


@dataclass
class Programme:
    """The day's turnarounds and tasks."""

    turnarounds: list[Turnaround]
    tasks: list[Task]
    dropped: int  # turnarounds that found no free stand


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _arrival_minute(rng: random.Random) -> float:
    """Local minute of day of a scheduled arrival, from the bank profile."""
    while True:
        if rng.random() < BACKGROUND_SHARE:
            minute = rng.uniform(6 * 60, 22 * 60)
        else:
            centre = rng.choices([b[0] for b in BANKS], weights=[b[1] for b in BANKS])[0]
            minute = rng.gauss(centre * 60, BANK_SIGMA_MIN)
        if 5.5 * 60 <= minute <= 22.2 * 60:
            return minute


def _arrival_delay(rng: random.Random) -> float:
    """Minutes late at in-block (negative: early). A long tail, as real days have."""
    draw = rng.random()
    if draw < 0.62:
        return max(-20.0, min(12.0, rng.gauss(-3.0, 6.0)))
    if draw < 0.93:
        return 8.0 + rng.expovariate(1 / 22.0)
    return rng.uniform(60.0, 180.0)


def _ground_minutes(rng: random.Random, widebody: bool) -> float:
    if widebody:
        return rng.choice([95, 105, 110, 120, 135, 150])
    return rng.choice([45, 50, 55, 55, 60, 65, 70, 75])


class _Numbers:
    """Unique flight numbers and registrations per airline."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def flight(self, iata: str) -> int:
        while True:
            number = self.rng.randrange(1001, 8999)
            if f"{iata}{number}" not in self.used and f"{iata}{number + 1}" not in self.used:
                self.used.update({f"{iata}{number}", f"{iata}{number + 1}"})
                return number

    def registration(self) -> str:
        while True:
            text = f"B-{self.rng.randrange(1000, 9999)}"
            if text not in self.used:
                self.used.add(text)
                return text


def build_programme(
    layout: AirportLayout, day: ServiceDay, flights: int, rng: random.Random
) -> Programme:
    """Turnarounds for ``flights`` legs over the service day, with stands and tasks."""
    if flights < 2:
        raise ValueError("a programme needs at least 2 flights")
    date_code = day.service_date.strftime("%Y%m%d")
    overnight = round(flights * OVERNIGHT_SHARE)
    full = (flights - 2 * overnight) // 2
    originating = overnight + (flights - 2 * overnight) % 2
    numbers = _Numbers(rng)
    local_midnight = day.start_ms

    def local_ms(minute: float) -> int:
        # Minutes from local midnight; the service day's UTC window starts there.
        return local_midnight + round(minute * MINUTE / 1000) * 1000

    drafts: list[tuple[str, float, float | None]] = []  # (shape, arrival minute, ground)
    drafts += [("full", _arrival_minute(rng), None) for _ in range(full)]
    drafts += [("originating", rng.uniform(6 * 60, 9.5 * 60), None) for _ in range(originating)]
    drafts += [("terminating", rng.uniform(20.5 * 60, 23.7 * 60), None) for _ in range(overnight)]

    turnarounds: list[Turnaround] = []
    for shape, minute, _ in drafts:
        iata, icao, _, _ = rng.choices(AIRLINES, weights=AIRLINE_WEIGHTS)[0]
        widebody = rng.random() < WIDEBODY_SHARE
        aircraft = _pick(rng, WIDEBODY if widebody else NARROWBODY)
        number = numbers.flight(iata)
        turnaround_id = f"TA{date_code}-{len(turnarounds) + 1:04d}"
        arrival = departure = None
        if shape in ("full", "terminating"):
            delay = _arrival_delay(rng)
            arrival = Leg(
                flight_id=f"{iata}{number}-{date_code}-A",
                flight_number=f"{iata}{number}",
                callsign=f"{icao}{number}",
                movement="arrival",
                route=rng.choice(ROUTES),
                scheduled=local_ms(minute),
                delay_min=delay,
            )
        if shape in ("full", "originating"):
            out_number = number + 1
            if shape == "full":
                std_minute = minute + _ground_minutes(rng, widebody)
                if std_minute > 23.8 * 60:
                    std_minute = minute + 45
            else:
                std_minute = minute
            departure = Leg(
                flight_id=f"{iata}{out_number}-{date_code}-D",
                flight_number=f"{iata}{out_number}",
                callsign=f"{icao}{out_number}",
                movement="departure",
                route=rng.choice(ROUTES),
                scheduled=local_ms(std_minute),
            )
        on_block = (
            arrival.scheduled + round(arrival.delay_min * MINUTE) if arrival else day.start_ms
        )
        if arrival:
            arrival.block_ms = on_block
            arrival.runway_ms = on_block - rng.randrange(4 * MINUTE, 10 * MINUTE)
        target = departure.scheduled if departure else day.end_ms
        if arrival and departure:
            # A late arrival pushes the departure: minimum turn time after on-block.
            minimum = (90 if widebody else 40) * MINUTE
            target = max(target, on_block + minimum)
        turnarounds.append(
            Turnaround(
                turnaround_id,
                iata,
                aircraft,
                numbers.registration(),
                widebody,
                arrival,
                departure,
                on_block,
                target,
            )
        )
        if rng.random() < CANCEL_SHARE and shape == "full":
            assert arrival is not None and departure is not None
            cancel = arrival.scheduled - rng.randrange(60 * MINUTE, 180 * MINUTE)
            arrival.cancelled_at = departure.cancelled_at = max(day.start_ms + MINUTE, cancel)

    turnarounds.sort(key=lambda ta: (ta.on_block, ta.turnaround_id))
    dropped = _allocate_stands(layout, day, turnarounds, rng)
    kept = [ta for ta in turnarounds if ta.stand is not None]
    tasks = _tasks(kept, day, rng)
    return Programme(kept, tasks, dropped)


def _allocate_stands(
    layout: AirportLayout, day: ServiceDay, turnarounds: list[Turnaround], rng: random.Random
) -> int:
    """Greedy stand allocation by on-block time; returns how many found no stand."""
    busy_until: dict[str, int] = {s.stand_id: day.start_ms for s in layout.stands}
    home = {a[0]: a[3] for a in AIRLINES}
    dropped = 0
    for ta in turnarounds:
        if ta.cancelled:
            ta.stand = ta.initial_stand = rng.choice(layout.stands)
            continue
        occupied_from = ta.on_block - 15 * MINUTE if ta.arrival else day.start_ms
        occupied_to = ta.target_off_block + 40 * MINUTE
        free = [
            s
            for s in layout.stands
            if busy_until[s.stand_id] <= occupied_from and (s.widebody or not ta.widebody)
        ]
        if ta.arrival is None:
            # Aircraft parked overnight: only stands nobody used since midnight.
            free = [s for s in free if busy_until[s.stand_id] == day.start_ms]
        preferred = [s for s in free if s.terminal_id == home[ta.airline]]
        contact = [s for s in free if s.kind == "contact"]
        if rng.random() < REMOTE_SHARE:  # planned remote: low-cost turns, terminal works
            preferred = contact = [s for s in free if s.kind == "remote"]
        choice = preferred or contact or free
        if not choice:
            dropped += 1
            continue
        stand = rng.choice(choice)
        busy_until[stand.stand_id] = occupied_to
        ta.stand = ta.initial_stand = stand
        if ta.arrival and rng.random() < STAND_CHANGE_SHARE:
            alternatives = [s for s in layout.stands if s is not stand and s.kind == stand.kind]
            ta.initial_stand = rng.choice(alternatives)
            change = ta.arrival.scheduled - rng.randrange(100 * MINUTE, 140 * MINUTE)
            ta.stand_changed_at = max(day.start_ms + 2 * MINUTE, change)
    return dropped


def _tasks(turnarounds: list[Turnaround], day: ServiceDay, rng: random.Random) -> list[Task]:
    tasks: list[Task] = []
    for ta in turnarounds:
        assert ta.stand is not None
        if ta.arrival and ta.departure:
            templates = ARRIVAL_TASKS + DEPARTURE_TASKS
        elif ta.arrival:
            templates = TERMINATING_TASKS
        else:
            templates = ORIGINATING_TASKS + DEPARTURE_TASKS
        for template in templates:
            if template.remote_only and ta.stand.kind != "remote":
                continue
            leg = ta.arrival if template.side == "arrival" else ta.departure
            if leg is None:  # originating aircraft: prep tasks belong to the departure
                leg = ta.departure
            assert leg is not None
            if template.side == "arrival":
                assert ta.arrival is not None
                anchor_actual = ta.on_block
                # Planned against the schedule unless the delay was known earlier.
                anchor_planned = ta.arrival.scheduled
                if ta.arrival.delay_min >= 15:
                    anchor_planned = ta.on_block
            else:
                anchor_actual = anchor_planned = ta.target_off_block
            offset = round(template.offset_min * MINUTE)
            minutes = template.wide_min if ta.widebody else template.narrow_min
            duration = round(minutes * MINUTE * rng.uniform(0.85, 1.25) / 1000) * 1000
            planned_start = anchor_planned + offset
            planned_end = planned_start + round(minutes * MINUTE)
            created = planned_start - 75 * MINUTE
            if ta.stand_changed_at is not None:
                created = max(created, ta.stand_changed_at + MINUTE)
            created = max(day.start_ms + rng.randrange(1000, 60_000), created)
            suffix = f"-{template.suffix}" if template.suffix else ""
            code = ta.turnaround_id.rsplit("-", 1)[1]
            tasks.append(
                Task(
                    task_id=f"TK{day.service_date:%Y%m%d}-{code}-{template.task_type.value}{suffix}",
                    task_type=template.task_type,
                    vehicle_type=TASK_VEHICLE[template.task_type],
                    turnaround=ta,
                    flight_id=leg.flight_id,
                    template=template,
                    ready=anchor_actual + offset,
                    planned_start=planned_start,
                    planned_end=planned_end,
                    duration=duration,
                    created=created,
                    order=anchor_actual + offset - round(template.lead_min * MINUTE),
                    cancelled_at=leg.cancelled_at,
                )
            )
    tasks.sort(key=lambda task: (task.order, task.task_id))
    return tasks
