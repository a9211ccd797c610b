"""An ADS-B-style surface track export, with every real-world fault on purpose (issue #18).

``adsb_track()`` returns the CSV lines and, for each data line, what it is, so a test can
count what the chunker must keep, quarantine and amend without asking the chunker. The
committed copy is ``tests/fixtures/tracks/adsb_surface.csv`` (a test keeps it equal).

Three movers on ``tests.rawday.tiny_reference``'s airport, one fix per second, source ids
``icao24``-like (mapped to fleet ids with ``VEHICLE_MAP``):

- ``a1c001`` (V01, pushback tug): drives east 600 m at ~20 km/h, stands still 60 s (GPS
  jitter), drives north 180 m. Many fixes have no heading / speed (empty cells); some
  carry a *stale* speed (the airborne 250 kt the feed still repeats, or the -1 sentinel);
  three glitches 1.2 km off the track in 11 s (the issue's case); exact repeated lines.
- ``a1c002`` (V02, baggage tractor): the first fix is a glitch far off, then a slow track.
- ``a1c003`` (V03, catering truck): parked the whole time, no motion values at all.

Plus lines no importer can use (bad time, no position).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass

from tests.rawday import ORIGIN

VEHICLE_MAP = {"a1c001": "V01", "a1c002": "V02", "a1c003": "V03"}
HEADER = "icao24,time,lat,lon,groundspeed_kt,track_deg,onground,alt_ft"
START = dt.datetime(2026, 3, 14, 1, 0, 0, tzinfo=dt.UTC)  # 09:00 at the airport
M_PER_DEG_LAT = 111_195.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(ORIGIN[0]))


@dataclass
class Line:
    """One data line of the export and what the test knows about it."""

    text: str
    kind: str  # good | duplicate | jump | unusable
    mover: str = ""
    t_ms: int = 0
    x: float = 0.0  # metres east of the origin
    y: float = 0.0
    heading_given: bool = True
    speed: str = "ok"  # ok | missing | stale
    moving: bool = True


def _lat_lon(x: float, y: float) -> tuple[float, float]:
    return round(ORIGIN[0] + y / M_PER_DEG_LAT, 7), round(ORIGIN[1] + x / M_PER_DEG_LON, 7)


def adsb_track() -> list[Line]:
    """Every data line of the export, in file order."""
    rng = random.Random(18)
    lines: list[Line] = []

    def fix(
        mover: str,
        second: float,
        x: float,
        y: float,
        heading: float | None,
        speed_kt: float | None,
        moving: bool,
        kind: str = "good",
        stale: str | None = None,
    ) -> Line:
        t = START + dt.timedelta(seconds=second)
        lat, lon = _lat_lon(x, y)
        speed_text = stale if stale is not None else ("" if speed_kt is None else f"{speed_kt:.1f}")
        text = (
            f"{mover},{t.timestamp():.1f},{lat},{lon},{speed_text},"
            f"{'' if heading is None else f'{heading:.1f}'},True,{-11 + rng.randrange(3)}"
        )
        line = Line(
            text,
            kind,
            mover,
            round(t.timestamp() * 1000),
            x,
            y,
            heading_given=heading is not None,
            speed="stale" if stale is not None else ("missing" if speed_kt is None else "ok"),
            moving=moving,
        )
        lines.append(line)
        return line

    # a1c001: east 600 m at 5.4 m/s (~10.5 kt), still 60 s, north 180 m.
    speed_ms = 5.4
    second = 0
    x, y = 0.0, 40.0
    glitch_at = {30: 1200.0, 34: -1150.0, 40: 1250.0}  # three jumps in 11 s, ~1.2 km off
    while x < 600:
        jitter = rng.uniform(-1, 1)
        heading = None if second % 3 == 0 else 90.0
        speed_kt: float | None = None if second % 4 == 0 else round(speed_ms / 0.514444, 1)
        stale = "250.0" if second % 17 == 5 else ("-1" if second % 29 == 7 else None)
        fix("a1c001", second, x, y + jitter, heading, speed_kt, True, stale=stale)
        if second in glitch_at:
            fix("a1c001", second + 0.5, x + glitch_at[second], y + 900, 90.0, 10.0, True, "jump")
        if second % 25 == 3:
            lines.append(Line(lines[-1].text, "duplicate"))
        x += speed_ms
        second += 1
    for _ in range(60):
        fix(
            "a1c001",
            second,
            x + rng.uniform(-1.5, 1.5),
            y + rng.uniform(-1.5, 1.5),
            None,
            None,
            False,
        )
        if second % 20 == 0:
            lines.append(Line(lines[-1].text, "duplicate"))
        second += 1
    for _ in range(34):
        y += speed_ms
        fix("a1c001", second, x, y, None if second % 2 else 0.0, None, True)
        second += 1

    # a1c002: a glitch as its very first fix, then 40 s at ~2.5 m/s towards the east.
    fix("a1c002", 0, 2000.0, -1500.0, None, None, True, "jump")
    for step in range(1, 41):
        fix("a1c002", step, 100 + step * 2.5, 60.0, None, None, True)

    # a1c003: parked, a fix every 5 s, nothing but position and time.
    for step in range(0, 150, 5):
        fix("a1c003", step, 420 + rng.uniform(-1, 1), 90 + rng.uniform(-1, 1), None, None, False)

    lines.append(Line("a1c001,yesterday,29.8,123.2,,,True,0", "unusable"))
    lines.append(Line("a1c002,1773450000.0,,,,,True,0", "unusable"))
    return lines


def csv_text(lines: list[Line]) -> str:
    """The export as a file."""
    return HEADER + "\n" + "\n".join(line.text for line in lines) + "\n"


COLUMNS = (
    "id=icao24,t=time,lat=lat,lon=lon,speed=groundspeed_kt,heading=track_deg,"
    "on_ground=onground,altitude=alt_ft"
)
