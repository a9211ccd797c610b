"""Exports: turnarounds, task events and notifications of a window as CSV or JSON, produced
row by row so memory stays bounded however long the window is (the rows are never held;
the chunks they come from are in the reader's byte-bounded cache).

The rows come from ``queries.History.export_rows`` (a lazy iterator over the window's
ticks); this module only encodes them: ``encode`` turns an iterator of rows into an
iterator of byte pieces of the whole document.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import orjson

from chunker.format.rows import NotificationRow, Row, TaskRow

ExportKind = Literal["turnarounds", "tasks", "notifications"]
ExportFormat = Literal["csv", "json"]
MAX_EXPORT_MS = 7 * 24 * 3_600_000  # a window of at most a week, streamed
LEG_FIELDS = (
    "id",
    "flight_number",
    "callsign",
    "route",
    "scheduled",
    "estimated",
    "actual",
    "status",
)
COLUMNS: dict[str, tuple[str, ...]] = {
    "tasks": tuple(TaskRow.__annotations__),
    "notifications": tuple(NotificationRow.__annotations__),
    "turnarounds": (
        "id",
        "stand",
        "registration",
        "aircraft_type",
        "airline",
        "start",
        "end",
        *(f"arrival_{name}" for name in LEG_FIELDS),
        *(f"departure_{name}" for name in LEG_FIELDS),
    ),
}
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def turnaround_row(found: dict[str, Any]) -> dict[str, Any]:
    """A turnaround search hit (``turnarounds.summary``) as one flat export row."""
    row = {name: found[name] for name in COLUMNS["turnarounds"][:7]}
    for movement in ("arrival", "departure"):
        leg = found[movement] or {}
        for name in LEG_FIELDS:
            row[f"{movement}_{name}"] = leg.get(name)
    return row


def _csv_value(value: Any) -> Any:
    return "" if value is None else value


def encode(kind: ExportKind, rows: Iterable[Row], form: ExportFormat) -> Iterator[bytes]:
    """The document of ``rows`` in ``form``, in pieces (one per row, plus framing): CSV
    with a header of ``COLUMNS[kind]`` (empty cells for null), or one JSON array."""
    if form == "json":
        yield b"["
        separator = b""
        for row in rows:
            yield separator + orjson.dumps(row)
            separator = b",\n"
        yield b"]\n"
        return
    columns = COLUMNS[kind]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_value(row.get(name)) for name in columns])
        if buffer.tell() > 32_768:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()
