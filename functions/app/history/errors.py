"""What a history query can fail with, apart from the chunk format's errors.

Its own module, so that the error vocabulary (``functions.app.domain.errors``), which every
function imports, does not import the history queries with them: the stream function
never runs one (its cold start, docs/performance.md).
"""

from __future__ import annotations


class HistoryError(ValueError):
    """A query that cannot be answered as asked (window reversed or too long)."""


class FlightNotFound(LookupError):
    """No such flight leg in the day's catalogue."""


class FlightAmbiguous(LookupError):
    """A flight number or callsign that names more than one leg of the day."""


class VehicleNotFound(LookupError):
    """No such vehicle in the fleet of the days a query covers."""


class TurnaroundNotFound(LookupError):
    """No turnaround of the day has that id, or a leg with that id, number or callsign."""


class BadCursor(ValueError):
    """A paging cursor that does not lie in the query's window."""
