"""GPS fixes from vehicles' legs: ~1 Hz while moving, every 5 s when stopped at an aircraft,
every 30 s parked at the depot; metre-level noise, short dropouts and rare longer outages.

Fixes are produced hour by hour (one raw file per hour) from a random stream seeded by
(seed, vehicle, hour), so an hour's file is the same whichever window is generated.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from zoneinfo import ZoneInfo

from synthetic.dispatch import Leg, VehicleDay
from synthetic.layout import to_lat_lon

NOISE_M = 1.6  # horizontal GPS error, roughly uniform-sum distributed
DROPOUT_CHANCE = 0.003  # per moving fix: a few seconds without a fix starts here


class LocalClock:
    """Epoch ms -> ISO 8601 local time with offset, as the airport's exports write it."""

    def __init__(self, timezone: str):
        self.zone = ZoneInfo(timezone)
        self._seconds: dict[int, tuple[str, str]] = {}

    def text(self, ms: int) -> str:
        second, fraction = divmod(ms, 1000)
        parts = self._seconds.get(second)
        if parts is None:
            iso = dt.datetime.fromtimestamp(second, self.zone).isoformat()
            parts = self._seconds[second] = (iso[:19], iso[19:])
        return f"{parts[0]}.{fraction:03d}{parts[1]}"


def _noise(rng: random.Random) -> float:
    # Sum of three uniforms: bell-shaped, bounded, and much cheaper than gauss().
    return (rng.random() + rng.random() + rng.random() - 1.5) * NOISE_M


def hour_fixes(
    vd: VehicleDay,
    outages: list[tuple[int, int]],
    lo: int,
    hi: int,
    seed: int,
    clock: LocalClock,
    to_lat_lon: Callable[[float, float], tuple[float, float]] = to_lat_lon,
) -> list[tuple[int, str]]:
    """(t, JSON line) of every fix the vehicle reported in [lo, hi); ``to_lat_lon`` is the
    layout's frame (``AirportLayout.to_lat_lon``)."""
    rng = random.Random(seed * 1_000_003 + vd.index * 7_919 + lo // 3_600_000)
    phase = (vd.index * 7_411) % 30_000
    vehicle_id = vd.vehicle.vehicle_id
    lines: list[tuple[int, str]] = []
    skip_until = -1
    for leg in vd.legs:
        if leg.t1 <= lo:
            continue
        if leg.t0 >= hi:
            break
        interval = leg.interval_ms
        start = max(leg.t0, lo)
        t = phase + -(-(start - phase) // interval) * interval
        end = min(leg.t1, hi)
        state = leg.state.value
        if leg.moving:
            segment = 0
            times = leg.times
            points = leg.points
            while t < end:
                while segment < len(times) - 2 and times[segment + 1] <= t:
                    segment += 1
                if t < skip_until or any(a <= t < b for a, b in outages):
                    t += interval
                    continue
                if rng.random() < DROPOUT_CHANCE:
                    skip_until = t + rng.randrange(3, 11) * 1000
                (x0, y0), (x1, y1) = points[segment], points[segment + 1]
                span = times[segment + 1] - times[segment]
                f = (t - times[segment]) / span if span else 1.0
                dx, dy = x1 - x0, y1 - y0
                length = math.hypot(dx, dy)
                speed = length / span * 3_600 if span else 0.0
                ramp = min(1.0, 0.25 + (t - leg.t0) / 6_000, 0.25 + (leg.t1 - t) / 6_000)
                speed = max(0.0, speed * ramp + _noise(rng) * 0.4)
                heading = math.degrees(math.atan2(dx, dy)) if length > 0.01 else leg.heading
                if leg.points[-1] != leg.points[0] and leg.state.value == "servicing":
                    heading += 180.0  # a pushback tug faces the aircraft it pushes
                lat, lon = to_lat_lon(x0 + f * dx + _noise(rng), y0 + f * dy + _noise(rng))
                lines.append((t, _line(clock.text(t), vehicle_id, lat, lon, heading, speed, state)))
                t += interval
        else:
            x, y = leg.points[0]
            heading = leg.heading
            while t < end:
                if any(a <= t < b for a, b in outages):
                    t += interval
                    continue
                lat, lon = to_lat_lon(x + _noise(rng), y + _noise(rng))
                speed = abs(_noise(rng)) * 0.08
                lines.append((t, _line(clock.text(t), vehicle_id, lat, lon, heading, speed, state)))
                t += interval
    return lines


def _line(
    text: str, vehicle_id: str, lat: float, lon: float, heading: float, speed: float, state: str
) -> str:
    heading = round(heading % 360.0, 1) % 360.0
    return (
        f'{{"t":"{text}","vehicle_id":"{vehicle_id}","lat":{lat:.6f},"lon":{lon:.6f},'
        f'"heading":{heading:.1f},"speed_kmh":{speed:.1f},"state":"{state}"}}'
    )


def plan_outages(
    vehicles: list[VehicleDay], rng: random.Random, share: float = 0.25
) -> dict[str, list[tuple[int, int]]]:
    """Rare GPS outages (90-300 s) while a vehicle is out working; about ``share`` per vehicle."""
    outages: dict[str, list[tuple[int, int]]] = {}
    for vd in vehicles:
        busy: list[Leg] = [leg for leg in vd.legs if leg.state.value != "idle"]
        if not busy or rng.random() >= share:
            continue
        leg = rng.choice(busy)
        start = rng.randrange(leg.t0, max(leg.t0 + 1, leg.t1))
        outages[vd.vehicle.vehicle_id] = [(start, start + rng.randrange(90_000, 300_000))]
    return outages
