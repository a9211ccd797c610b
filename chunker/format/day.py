"""The service day: a local calendar day of an airport, as a UTC millisecond window.

All replay times inside the system are integer milliseconds since the Unix epoch (UTC).
A service day runs from local midnight to the next local midnight in the airport's time
zone, so it has 23, 24 or 25 hours on DST change days. Hour jobs and hourly raw files are
numbered by hour index from the start of the service day (``00`` .. ``23``, or ``24``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HOUR_MS = 3_600_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class InvalidServiceDay(ValueError):
    """The date or time zone does not describe a service day."""


def to_ms(value: dt.datetime) -> int:
    """Exact epoch milliseconds of an aware datetime (floored to the millisecond)."""
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


def from_ms(ms: int) -> dt.datetime:
    """UTC datetime of epoch milliseconds."""
    return EPOCH + dt.timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class ServiceDay:
    """One airport's service day and its UTC window ``[start_ms, end_ms)``."""

    service_date: dt.date
    timezone: str
    start_ms: int
    end_ms: int

    @classmethod
    def of(cls, service_date: dt.date | str, timezone: str) -> ServiceDay:
        """The service day for a local date in an IANA time zone."""
        if isinstance(service_date, str):
            try:
                service_date = dt.date.fromisoformat(service_date)
            except ValueError as exc:
                raise InvalidServiceDay(f"not a date (YYYY-MM-DD): {service_date!r}") from exc
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Asia", "x" * 300
            raise InvalidServiceDay(f"unknown time zone {timezone!r}") from exc
        start = dt.datetime.combine(service_date, dt.time(), tzinfo=zone)
        end = dt.datetime.combine(service_date + dt.timedelta(days=1), dt.time(), tzinfo=zone)
        return cls(service_date, timezone, to_ms(start), to_ms(end))

    @property
    def date_text(self) -> str:
        """``YYYY-MM-DD``."""
        return self.service_date.isoformat()

    @property
    def hours(self) -> int:
        """Number of hour jobs in the day (23, 24 or 25)."""
        return (self.end_ms - self.start_ms) // HOUR_MS

    def hour_window(self, hour: int) -> tuple[int, int]:
        """``[start, end)`` of hour index ``hour`` (0-based from local midnight)."""
        if not 0 <= hour < self.hours:
            raise InvalidServiceDay(f"hour {hour} is outside the day (0..{self.hours - 1})")
        start = self.start_ms + hour * HOUR_MS
        return start, start + HOUR_MS

    def hour_of(self, ms: int) -> int:
        """Hour index containing ``ms`` (which must be inside the day)."""
        return (ms - self.start_ms) // HOUR_MS

    def contains(self, ms: int) -> bool:
        """Whether ``ms`` falls inside the day."""
        return self.start_ms <= ms < self.end_ms

    @staticmethod
    def local_date_of(ms: int, timezone: str) -> str:
        """The service date (local calendar date, ``YYYY-MM-DD``) containing instant ``ms``."""
        return from_ms(ms).astimezone(ZoneInfo(timezone)).date().isoformat()

    def local_clock(self, ms: int) -> str:
        """Local wall-clock text (``HH:MM:SS``) of an instant, for messages and logs."""
        return from_ms(ms).astimezone(ZoneInfo(self.timezone)).strftime("%H:%M:%S")
