"""Reading ``reference.json`` tolerantly: bad entries are reported and skipped.

The reference is the contract's ``Reference`` model, but one bad stand must not refuse a
day (a real OpenStreetMap ref like ``Run up Position 28`` is not an entity id). So each
entry of each section is validated on its own:

- an entry that fails its model is skipped (``invalid_entry``, with the first error);
- an entry whose id repeats an earlier entry's of the same section is skipped
  (``duplicate_id``): the first one wins, since records name entities by id and two
  entries of one id cannot be told apart (importers disambiguate before, e.g. ``N70-2``);
- a positioned entry more than ``MAX_LAYOUT_RADIUS_M`` from the airport's reference point
  is skipped (``far_from_airport``): it would stretch the area fixes are checked against;
- a section that is not a list is skipped whole (``not_a_list``), a missing one is empty
  (``missing_section``), an unknown top-level key is ignored (``unknown_section``).

Fatal (``ReferenceUnusable``): not a JSON object, an ``airport`` entry that fails its model
(no time zone or reference point: no service day, no area), ``mover_limits`` that fail
theirs, or no usable stand left.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import from_json

from chunker.format.encoding import MAX_LISTED_REFERENCE_ISSUES, ReferenceIssue, ReferenceReport
from chunker.format.records import (
    Airport,
    Attribution,
    Depot,
    MoverLimits,
    Point,
    Reference,
    RoadEdge,
    RoadNode,
    Runway,
    Stand,
    Terminal,
    Vehicle,
)

MAX_LAYOUT_RADIUS_M = 30_000.0  # the largest airports span ~15 km

INVALID_ENTRY = "invalid_entry"
DUPLICATE_ID = "duplicate_id"
FAR_FROM_AIRPORT = "far_from_airport"
NOT_A_LIST = "not_a_list"
UNKNOWN_SECTION = "unknown_section"
MISSING_SECTION = "missing_section"

# Section -> (entry model, its id field or None).
SECTIONS: dict[str, tuple[type[BaseModel], str | None]] = {
    "vehicles": (Vehicle, "vehicle_id"),
    "stands": (Stand, "stand_id"),
    "depots": (Depot, "depot_id"),
    "terminals": (Terminal, "terminal_id"),
    "runways": (Runway, "runway_id"),
    "road_nodes": (RoadNode, "node_id"),
    "road_edges": (RoadEdge, None),
}


class ReferenceUnusable(ValueError):
    """The reference cannot describe a day at all; the message says why."""


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return str(exc)[:300]
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "entry"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"[:300]


def _distance_m(a: Point, b: Point) -> float:
    ky = 111_195.0
    kx = ky * math.cos(math.radians((a.lat + b.lat) / 2))
    return math.hypot((a.lon - b.lon) * kx, (a.lat - b.lat) * ky)


def _positions(entry: BaseModel) -> list[Point]:
    if isinstance(entry, Stand | Depot | RoadNode):
        return [entry.position]
    if isinstance(entry, Terminal):
        return list(entry.outline)
    if isinstance(entry, Runway):
        return [entry.start, entry.end]
    return []


def read_reference(data: bytes) -> tuple[Reference, ReferenceReport]:
    """The usable reference in ``data`` and what was skipped; ``ReferenceUnusable`` if none."""
    try:
        # pydantic-core's parser, as the models' own JSON validation uses: NaN / Infinity
        # parse (and fail their entry's finite-number check instead of the whole file).
        document = from_json(data, allow_inf_nan=True)
    except ValueError as exc:
        raise ReferenceUnusable(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ReferenceUnusable("not a JSON object")
    try:
        airport = Airport.model_validate(document.get("airport"))
    except ValidationError as exc:
        raise ReferenceUnusable(f"airport: {_first_error(exc)}") from exc
    try:
        limits = MoverLimits.model_validate(document.get("mover_limits") or {})
    except ValidationError as exc:
        raise ReferenceUnusable(f"mover_limits: {_first_error(exc)}") from exc
    try:
        attribution = (
            None
            if document.get("attribution") is None
            else Attribution.model_validate(document["attribution"])
        )
    except ValidationError as exc:
        raise ReferenceUnusable(f"attribution: {_first_error(exc)}") from exc
    issues: list[ReferenceIssue] = []
    counts: Counter[str] = Counter()

    def skip(section: str, index: int | None, entry_id: Any, reason: str, detail: str) -> None:
        counts[f"{section}:{reason}"] += 1
        if len(issues) < MAX_LISTED_REFERENCE_ISSUES:
            shown = entry_id if isinstance(entry_id, str) else None
            issues.append(
                ReferenceIssue(
                    section=section,
                    index=index,
                    entry_id=None if shown is None else shown[:200],
                    reason=reason,
                    detail=detail,
                )
            )

    for key in sorted(set(document) - set(SECTIONS) - {"airport", "mover_limits", "attribution"}):
        skip(str(key)[:64], None, None, UNKNOWN_SECTION, "not part of reference.json: ignored")
    sections: dict[str, list[Any]] = {}
    for section, (model, id_field) in SECTIONS.items():
        raw = document.get(section, [])
        kept: list[Any] = []
        sections[section] = kept
        if section not in document:
            skip(section, None, None, MISSING_SECTION, "absent: taken as empty")
        elif not isinstance(raw, list):
            skip(section, None, None, NOT_A_LIST, f"{type(raw).__name__}, not a list: ignored")
            continue
        seen: set[str] = set()
        for index, item in enumerate(raw):
            claimed = item.get(id_field) if id_field and isinstance(item, dict) else None
            try:
                entry = model.model_validate(item)
            except ValidationError as exc:
                skip(section, index, claimed, INVALID_ENTRY, _first_error(exc))
                continue
            entry_id = getattr(entry, id_field) if id_field else None
            if entry_id is not None and entry_id in seen:
                skip(
                    section, index, entry_id, DUPLICATE_ID, f"{entry_id!r} repeats an earlier entry"
                )
                continue
            far = max(
                (_distance_m(airport.reference_point, p) for p in _positions(entry)), default=0.0
            )
            if far > MAX_LAYOUT_RADIUS_M:
                skip(
                    section,
                    index,
                    entry_id,
                    FAR_FROM_AIRPORT,
                    f"{far / 1000:.1f} km from the airport's reference point "
                    f"(> {MAX_LAYOUT_RADIUS_M / 1000:g} km)",
                )
                continue
            if entry_id is not None:
                seen.add(entry_id)
            kept.append(entry)
    if not sections["stands"]:
        raise ReferenceUnusable(
            "no usable stand"
            + (f" ({counts.most_common(1)[0][0]}: {counts.most_common(1)[0][1]})" if counts else "")
        )
    reference = Reference(airport=airport, mover_limits=limits, attribution=attribution, **sections)
    return reference, ReferenceReport(skipped=dict(sorted(counts.items())), issues=issues)
