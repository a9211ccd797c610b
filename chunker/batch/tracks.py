"""Track rules: what one mover's fixes, taken together, say about each fix.

Pure functions over one mover's fixes in time order, each testable alone (and ready for a
columnar rewrite of the position path: they take plain sequences, not rows):

- ``implausible_jumps``: which fixes imply a speed from the previous accepted fix beyond
  what the mover can do (quarantined as ``implausible_jump``);
- ``derive_motion``: heading and speed for fixes that lack them, from the neighbouring
  fixes (a chord over a few seconds, so GPS jitter neither makes a parked truck "move"
  nor spins its arrow; heading held while stationary).

Distances use a local flat projection (metres east/north of the track's first fix): exact
to well under a metre over an airport. Limits come per mover kind: each vehicle type
(``limits_for``) and aircraft (``aircraft_limit``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chunker.format.records import MoverLimits, VehicleType

EARTH_M_PER_DEG = 111_195.0  # metres per degree of latitude (mean Earth radius 6371 km)

# Top speed (km/h) of each vehicle type when reference.json's mover_limits does not say.
# Generous on purpose: above it a reported speed is not believed and a jump is a glitch.
DEFAULT_MAX_SPEED_KMH: dict[VehicleType, float] = {
    VehicleType.FUEL_TRUCK: 90.0,
    VehicleType.CATERING_TRUCK: 90.0,
    VehicleType.BAGGAGE_TRACTOR: 50.0,
    VehicleType.CLEANING_VAN: 110.0,
    VehicleType.WATER_TRUCK: 90.0,
    VehicleType.LAVATORY_TRUCK: 90.0,
    VehicleType.PUSHBACK_TUG: 50.0,
    VehicleType.PASSENGER_BUS: 90.0,
}

# Derivation: the chord over fixes within this many ms either side gives speed and heading.
DERIVE_HALF_WINDOW_MS = 5_000
# Below this chord length the mover is taken as stationary: its heading is held.
STATIONARY_CHORD_M = 8.0


@dataclass(frozen=True, slots=True)
class Limit:
    """One mover's physical limits, in the units the rules use."""

    max_speed_kmh: float
    tolerance_m: float
    confirm_fixes: int

    @property
    def metres_per_ms(self) -> float:
        return self.max_speed_kmh / 3_600.0


def limits_for(vehicle_type: VehicleType, configured: MoverLimits) -> Limit:
    """The limit of a vehicle of ``vehicle_type`` under the reference's ``mover_limits``."""
    top = configured.vehicle_types.get(vehicle_type, DEFAULT_MAX_SPEED_KMH[vehicle_type])
    return Limit(top, configured.position_tolerance_m, configured.confirm_fixes)


def aircraft_limit(configured: MoverLimits) -> Limit:
    """An aircraft's limit under the reference's ``mover_limits`` (its take-off roll)."""
    return Limit(configured.aircraft_kmh, configured.position_tolerance_m, configured.confirm_fixes)


class Flat:
    """A local equirectangular projection around one latitude: degrees -> metres."""

    __slots__ = ("kx", "ky", "lat0", "lon0")

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.ky = EARTH_M_PER_DEG
        self.kx = EARTH_M_PER_DEG * math.cos(math.radians(lat0))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """Metres east and north of the origin."""
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky


def _plausible(
    t: Sequence[int], xy: Sequence[tuple[float, float]], a: int, b: int, limit: Limit
) -> bool:
    """Whether the mover can get from fix ``a`` to fix ``b`` (b after a) in the time."""
    dx = xy[b][0] - xy[a][0]
    dy = xy[b][1] - xy[a][1]
    reach = limit.tolerance_m + limit.metres_per_ms * (t[b] - t[a])
    return dx * dx + dy * dy <= reach * reach


def _chain(
    t: Sequence[int], xy: Sequence[tuple[float, float]], start: int, count: int, limit: Limit
) -> bool:
    """Whether ``count`` fixes from ``start`` exist and each is plausible from the one before."""
    if start + count > len(t):
        return False
    return all(_plausible(t, xy, i - 1, i, limit) for i in range(start + 1, start + count))


def implausible_jumps(
    t: Sequence[int], lat: Sequence[float], lon: Sequence[float], limit: Limit
) -> list[int]:
    """Indices of the fixes that are jumps (``t`` sorted, one mover).

    The rule: a fix whose implied speed from the previous *accepted* fix exceeds the
    mover's top speed (after ``tolerance_m`` of position error) is a jump. Two guards keep
    a glitch from condemning the good fixes after it:

    - the track starts at the first fix from which at least one of the next
      ``confirm_fixes - 1`` fixes is plausible (a lone glitch as first fix is a jump, not
      the anchor; a glitch second does not condemn a good first); a track where no fix
      qualifies starts at its first fix;
    - a fix implausible from the previous accepted one is accepted anyway if it begins
      ``confirm_fixes`` consecutive mutually plausible fixes none of which is plausible
      from that accepted fix: the mover really is somewhere else (the accepted fix was the
      glitch, or the recording resumed after a hole).
    """
    n = len(t)
    if n < 2:
        return []
    flat = Flat(lat[0], lon[0])
    xy = [flat.xy(a, b) for a, b in zip(lat, lon, strict=True)]
    confirm = limit.confirm_fixes
    start = next(
        (
            i
            for i in range(n - 1)
            if any(_plausible(t, xy, i, j, limit) for j in range(i + 1, min(n, i + confirm)))
        ),
        0,
    )
    jumps = list(range(start))
    anchor = start
    for i in range(start + 1, n):
        if _plausible(t, xy, anchor, i, limit) or (
            _chain(t, xy, i, confirm, limit)
            and not any(_plausible(t, xy, anchor, j, limit) for j in range(i, i + confirm))
        ):
            anchor = i
        else:
            jumps.append(i)
    return jumps


def bearing_deg(dx: float, dy: float) -> float:
    """Degrees clockwise from north of a displacement east ``dx``, north ``dy``; [0, 360)."""
    heading = math.degrees(math.atan2(dx, dy)) % 360.0
    return 0.0 if heading >= 360.0 else heading


def derive_motion(
    t: Sequence[int],
    lat: Sequence[float],
    lon: Sequence[float],
    heading: Sequence[float | None],
    speed_kmh: Sequence[float | None],
) -> tuple[list[float], list[float]]:
    """Every fix's heading and speed: as given where given, else derived (``t`` sorted).

    A missing value comes from the chord between the first and the last fix within
    ``DERIVE_HALF_WINDOW_MS`` either side (at least the neighbour on each side that
    exists): speed = chord length / its duration; heading = the chord's bearing if it is at
    least ``STATIONARY_CHORD_M`` long. A stationary fix holds the mover's previous heading
    (given or derived); before the first known heading, the first one after it; with
    none at all, 0. A fix alone has speed 0. Values are rounded to 0.1.
    """
    n = len(t)
    flat = Flat(lat[0], lon[0]) if n else Flat(0.0, 0.0)
    xy = [flat.xy(a, b) for a, b in zip(lat, lon, strict=True)]
    speeds: list[float] = []
    chords: list[float | None] = []  # the chord's bearing where the mover moved
    lo = hi = 0
    for i in range(n):
        while t[i] - t[lo] > DERIVE_HALF_WINDOW_MS:
            lo += 1
        hi = max(hi, i)
        while hi + 1 < n and t[hi + 1] - t[i] <= DERIVE_HALF_WINDOW_MS:
            hi += 1
        a = min(lo, i - 1) if i > 0 else 0
        b = max(hi, i + 1) if i + 1 < n else n - 1
        dx = xy[b][0] - xy[a][0]
        dy = xy[b][1] - xy[a][1]
        chord = math.hypot(dx, dy)
        span = t[b] - t[a]
        given = speed_kmh[i]
        if given is not None:
            speeds.append(given)
        else:
            speeds.append(round(chord / span * 3_600.0, 1) if span > 0 else 0.0)
        chords.append(bearing_deg(dx, dy) if chord >= STATIONARY_CHORD_M else None)
    headings: list[float | None] = []
    held: float | None = None
    for i in range(n):
        given_heading = heading[i]
        if given_heading is not None:
            held = given_heading
        else:
            moving = chords[i]
            if moving is not None:
                held = round(moving, 1) % 360.0
        headings.append(held if given_heading is None else given_heading)
    first = next((h for h in headings if h is not None), 0.0)
    filled = [first if h is None else h for h in headings]
    return filled, speeds
