"""An incident report for a bookmark (issue #19 item 7): one self-contained HTML file (no
script, no external resource: it opens offline, mails as an attachment, prints) with the
bookmark's window, the session's notes in it, the KPIs of the window, the navigable events
in it, the Gantt of the turnarounds it concerns and a map snapshot at the bookmark's time.

Everything comes from the same history queries the API serves (``queries.History``); this
module only lays them out. It is written as pieces, section by section, and bounded: at
most ``MAX_TURNAROUNDS`` Gantts, ``MAX_EVENTS_LISTED`` events, the session's notes (at most
50, bookmarks' own cap) and one map.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from chunker.format.encoding import Manifest
from functions.app.domain.bookmarks import Bookmark
from functions.app.history.kpis import KpiFilters
from functions.app.history.navigation import EVENT_KINDS
from functions.app.history.queries import MAX_KPI_MS, History

MOMENT_MARGIN_MS = 15 * 60_000  # a bookmarked moment reports the half hour around it
MAX_TURNAROUNDS = 3
MAX_EVENTS_LISTED = 200
MAP_W, MAP_H = 900, 420
GANTT_W, GANTT_ROW, GANTT_LABEL = 900, 18, 190
VEHICLE_COLORS = {
    "fuel_truck": "#fb923c",
    "catering_truck": "#a78bfa",
    "baggage_tractor": "#facc15",
    "cleaning_van": "#34d399",
    "water_truck": "#38bdf8",
    "lavatory_truck": "#d6a36a",
    "pushback_tug": "#f472b6",
    "passenger_bus": "#e2e8f0",
}
STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans CJK SC",sans-serif;
margin:24px auto;max-width:960px;color:#0f172a}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid
#cbd5e1;padding-bottom:4px}h3{font-size:14px;margin:16px 0 6px}.muted{color:#64748b}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:3px 8px;
border-bottom:1px solid #e2e8f0}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.note{white-space:pre-wrap}svg text{font:11px system-ui,sans-serif}.late{color:#b91c1c}
"""


def window_of(bookmark: Bookmark) -> tuple[int, int, bool]:
    """The report's window: the bookmark's range (at most ``MAX_KPI_MS`` of it from its
    start; the flag says it was cut), or the half hour around a moment."""
    if bookmark.end is None:
        return bookmark.at - MOMENT_MARGIN_MS, bookmark.at + MOMENT_MARGIN_MS, False
    end = min(bookmark.end, bookmark.at + MAX_KPI_MS)
    return bookmark.at, end, end < bookmark.end


class Clock:
    """Epoch ms as the airport's local time."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def local(self, t: int | None, seconds: bool = False) -> str:
        if t is None:
            return "—"
        when = dt.datetime.fromtimestamp(t / 1000, self.zone)
        return when.strftime("%H:%M:%S" if seconds else "%H:%M")

    def stamp(self, t: int) -> str:
        return dt.datetime.fromtimestamp(t / 1000, self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")


def _minutes(ms: int | None) -> str:
    return "—" if ms is None else f"{round(ms / 60_000)} min"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{round(value * 100)} %"


def report(
    history: History,
    airport: str,
    bookmark: Bookmark,
    notes: Sequence[Bookmark],
    session_id: str,
) -> Iterator[str]:
    """The report's HTML, piece by piece (the day of the bookmark must be published: the
    caller checks it with ``History.chunks.day_at`` before the first piece)."""
    start, end, cut = window_of(bookmark)
    manifest = history.chunks.day_at(airport, bookmark.at)
    start, end = max(start, manifest.start), min(end, manifest.end)
    clock = Clock(manifest.airport.timezone)
    title = f"Incident report · {manifest.airport.name} · {manifest.service_date}"
    yield (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class='muted'>{clock.stamp(start)} – "
        f"{clock.local(end, True)} (airport time) · session {escape(session_id)}"
        f"{' · the range was cut to its first 12 h' if cut else ''}</p>"
        f"<p class='note'><b>{escape(bookmark.author)}</b> at "
        f"{clock.local(bookmark.at, True)}: {escape(bookmark.text)}</p>"
    )
    yield _notes(clock, notes, start, end)
    yield _kpis(history.kpis(airport, start, end, KpiFilters()))
    # Every decision is navigable, but the report lists what went wrong: the decisions
    # that did (reassignments, escalations) are events of their own kinds.
    incidents = frozenset(EVENT_KINDS) - {"decision"}
    events = [
        e
        for e in history.events(airport, manifest.service_date.isoformat(), incidents)["events"]
        if start <= e["t"] < end
    ]
    yield _events(clock, manifest, events)
    for turnaround in _turnarounds(history, manifest, bookmark, events):
        yield _gantt(clock, turnaround)
    _, state = history.state_at(airport, bookmark.at)
    selected = None if bookmark.selection is None else bookmark.selection.vehicle_id
    yield _map(clock, manifest, state.vehicles, bookmark.at, selected)
    yield (
        "<p class='muted'>Made by dispatch-replay from the published chunks "
        f"(version {escape(manifest.version)}); definitions in docs/api.md.</p></body></html>"
    )


def _notes(clock: Clock, notes: Sequence[Bookmark], start: int, end: int) -> str:
    rows = [
        f"<tr><td>{clock.local(n.at, True)}{'–' + clock.local(n.end) if n.end else ''}</td>"
        f"<td>{escape(n.author)}</td><td class='note'>{escape(n.text)}</td>"
        f"<td>{escape(_selection(n))}</td></tr>"
        for n in sorted(notes, key=lambda n: n.at)
        if n.at < end and (n.end or n.at) >= start
    ]
    body = "".join(rows) or "<tr><td colspan='4' class='muted'>No notes in this window</td></tr>"
    return (
        "<h2>Notes</h2><table><tr><th>When</th><th>Who</th><th>Note</th><th>Selection</th></tr>"
        f"{body}</table>"
    )


def _selection(bookmark: Bookmark) -> str:
    s = bookmark.selection
    if s is None:
        return ""
    return " · ".join(v for v in (s.vehicle_id, s.flight_id) if v)


def _kpis(kpis: dict[str, Any]) -> str:
    d = kpis["departures"]
    tasks = "".join(
        f"<tr><td>{escape(k)}</td><td class='n'>{v['started']}</td>"
        f"<td class='n'>{_minutes(v['start_delay_p50_ms'])}</td>"
        f"<td class='n'>{_minutes(v['start_delay_p90_ms'])}</td><td class='n'>{v['completed']}</td>"
        f"<td class='n'>{_minutes(v['end_delay_p50_ms'])}</td>"
        f"<td class='n'>{_minutes(v['end_delay_p90_ms'])}</td></tr>"
        for k, v in kpis["tasks"].items()
    )
    util = "".join(
        f"<tr><td>{escape(k)}</td><td class='n'>{v['vehicles']}</td>"
        f"<td class='n'>{_share(v['busy_share'])}</td>"
        f"<td class='n'>{_share(v['servicing_share'])}</td></tr>"
        for k, v in kpis["utilisation"].items()
    )
    return (
        "<h2>KPIs of the window</h2>"
        f"<p data-kpi='departures'>Departures: {d['count']}, on time (off-block ≤ 15 min late): "
        f"{d['on_time']} ({_share(d['on_time_share'])}); off-block delay p50 "
        f"{_minutes(d['delay_p50_ms'])}, p90 {_minutes(d['delay_p90_ms'])}. "
        f"<span data-kpi='conflicts'>Conflicts: {kpis['conflicts']}</span>; "
        f"<span data-kpi='reassignments'>reassignments: {kpis['reassignments']}</span>.</p>"
        "<h3>Task delays by type</h3><table><tr><th>Task</th><th class='n'>Started</th>"
        "<th class='n'>Start p50</th><th class='n'>Start p90</th><th class='n'>Completed</th>"
        f"<th class='n'>End p50</th><th class='n'>End p90</th></tr>{tasks}</table>"
        "<h3>Vehicle utilisation by type</h3><table><tr><th>Vehicle type</th>"
        "<th class='n'>Vehicles</th><th class='n'>Busy</th><th class='n'>Servicing</th></tr>"
        f"{util}</table>"
    )


def _events(clock: Clock, manifest: Manifest, events: list[dict[str, Any]]) -> str:
    callsigns = {f["id"]: f["callsign"] for f in manifest.catalogue.flights}
    rows = []
    for e in events[:MAX_EVENTS_LISTED]:
        what = " · ".join(
            str(v)
            for v in (
                callsigns.get(e.get("flight_id") or "", e.get("flight_id")),
                e.get("task_type"),
                e.get("stand"),
                e.get("vehicle_id"),
                _minutes(e["delay_ms"]) + " late" if e.get("delay_ms") else None,
            )
            if v
        )
        rows.append(
            f"<tr data-event='{escape(e['kind'])}'><td>{clock.local(e['t'], True)}</td>"
            f"<td>{escape(e['kind'])}</td><td>{escape(what)}</td></tr>"
        )
    more = len(events) - MAX_EVENTS_LISTED
    tail = f"<p class='muted'>… and {more} more</p>" if more > 0 else ""
    body = "".join(rows) or "<tr><td colspan='3' class='muted'>No events in this window</td></tr>"
    return (
        f"<h2>Events ({len(events)})</h2><table><tr><th>When</th><th>Kind</th><th>What</th></tr>"
        f"{body}</table>{tail}"
    )


def _turnarounds(
    history: History, manifest: Manifest, bookmark: Bookmark, events: list[dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The bookmark's selected flight's turnaround; else those of the window's late
    off-blocks, latest first by delay; at most ``MAX_TURNAROUNDS``."""
    date = manifest.service_date.isoformat()
    airport = manifest.airport.airport_id
    wanted: list[str] = []
    if bookmark.selection is not None and bookmark.selection.flight_id:
        wanted.append(bookmark.selection.flight_id)
    late = sorted(
        (e for e in events if e["kind"] == "late_off_block"), key=lambda e: -e["delay_ms"]
    )
    wanted += [e["flight_id"] for e in late]
    seen: set[str] = set()
    for flight_id in wanted:
        if len(seen) == MAX_TURNAROUNDS:
            return
        try:
            found = history.turnaround(airport, date, flight_id)
        except LookupError:  # a selection naming a leg of another day, or an ambiguous one
            continue
        if found["id"] not in seen:
            seen.add(found["id"])
            yield found


def _gantt(clock: Clock, turnaround: dict[str, Any]) -> str:
    tasks = turnaround["tasks"]
    times = [
        t
        for task in tasks
        for t in (task["planned_start"], task["planned_end"], task["started"], task["completed"])
        if t is not None
    ]
    for leg in (turnaround["arrival"], turnaround["departure"]):
        if leg is not None:
            times += [t for t in (leg["scheduled"], leg["block"]) if t is not None]
    if not times:
        return ""
    a, b = min(times), max(times)
    span = max(1, b - a)
    width = GANTT_W - GANTT_LABEL - 10

    def x(t: int) -> float:
        return GANTT_LABEL + (t - a) / span * width

    path = turnaround["critical_path"]
    critical = {e["id"] for e in path["chain"] if e["kind"] == "task"} if path else set()
    height = (len(tasks) + 1) * GANTT_ROW + 10
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{GANTT_W}' height='{height}' "
        f"viewBox='0 0 {GANTT_W} {height}' data-gantt='{escape(turnaround['id'])}'>"
    ]
    for i, task in enumerate(tasks):
        y = i * GANTT_ROW + 4
        bold = " font-weight='700'" if task["id"] in critical else ""
        name = f"{task['task_type']} · {task['vehicle_id'] or '—'}"
        parts.append(f"<text x='4' y='{y + 12}'{bold}>{escape(name)}</text>")
        parts.append(
            f"<rect x='{x(task['planned_start']):.1f}' y='{y + 2}' "
            f"width='{max(1, x(task['planned_end']) - x(task['planned_start'])):.1f}' "
            f"height='{GANTT_ROW - 6}' fill='none' stroke='#94a3b8'/>"
        )
        if task["started"] is not None:
            finish = task["completed"] or b
            fill = "#dc2626" if finish > task["planned_end"] else "#2563eb"
            outline = ' stroke="#0f172a" stroke-width="1.5"' if task["id"] in critical else ""
            parts.append(
                f"<rect x='{x(task['started']):.1f}' y='{y + 4}' "
                f"width='{max(1, x(finish) - x(task['started'])):.1f}' height='{GANTT_ROW - 10}' "
                f"fill='{fill}'{outline} data-task='{escape(task['id'])}'>"
                f"<title>{escape(task['id'])}</title></rect>"
            )
    for leg, color in ((turnaround["arrival"], "#16a34a"), (turnaround["departure"], "#9333ea")):
        if leg is not None and leg["block"] is not None:
            parts.append(
                f"<line x1='{x(leg['block']):.1f}' x2='{x(leg['block']):.1f}' y1='0' "
                f"y2='{height}' stroke='{color}' stroke-dasharray='4 3'/>"
            )
    axis_y = len(tasks) * GANTT_ROW + 16
    parts.append(f"<text x='{GANTT_LABEL}' y='{axis_y}'>{clock.local(a)}</text>")
    parts.append(
        f"<text x='{GANTT_W - 10}' y='{axis_y}' text-anchor='end'>{clock.local(b)}</text></svg>"
    )
    departure = turnaround["departure"]
    delay = "" if path is None else f" · off-block {_minutes(path['delay_ms'])} late"
    legs = " / ".join(
        leg["callsign"] for leg in (turnaround["arrival"], departure) if leg is not None
    )
    chain = ""
    if path is not None:
        links = " → ".join(
            f"{escape(str(e.get('task_type') or e['kind']))} +{_minutes(e['added_ms'])}"
            for e in path["chain"]
        )
        chain = f"<p class='muted'>Critical path: {links}</p>"
    return (
        f"<h2>Turnaround {escape(turnaround['id'])} · {escape(legs)} · stand "
        f"{escape(turnaround['stand'])}{escape(delay)}</h2>{''.join(parts)}{chain}"
        "<p class='muted'>Outline: planned; bar: actual (red: ended after plan); bold: the "
        "critical path; dashed: on-block (green), off-block (purple).</p>"
    )


def _map(
    clock: Clock,
    manifest: Manifest,
    vehicles: dict[str, Any],
    at: int,
    selected: str | None,
) -> str:
    layout = manifest.layout
    points = [s.position for s in layout.stands] + [n.position for n in layout.road_nodes]
    points += [p for t in layout.terminals for p in t.outline] + [d.position for d in layout.depots]
    if not points:
        return ""
    lat0, lat1 = min(p.lat for p in points), max(p.lat for p in points)
    lon0, lon1 = min(p.lon for p in points), max(p.lon for p in points)
    scale = min((MAP_W - 40) / max(1e-9, lon1 - lon0), (MAP_H - 40) / max(1e-9, lat1 - lat0))

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return 20 + (lon - lon0) * scale, MAP_H - 20 - (lat - lat0) * scale

    nodes = {n.node_id: xy(n.position.lat, n.position.lon) for n in layout.road_nodes}
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{MAP_W}' height='{MAP_H}' "
        f"viewBox='0 0 {MAP_W} {MAP_H}' data-map='snapshot' style='background:#0b1220'>"
    ]
    for terminal in layout.terminals:
        corners = (xy(p.lat, p.lon) for p in terminal.outline)
        outline = " ".join(f"{px:.1f},{py:.1f}" for px, py in corners)
        parts.append(f"<polygon points='{outline}' fill='#1e293b' stroke='#334155'/>")
    for edge in layout.road_edges:
        if edge.from_node in nodes and edge.to_node in nodes:
            (x1, y1), (x2, y2) = nodes[edge.from_node], nodes[edge.to_node]
            parts.append(
                f"<line x1='{x1:.1f}' y1='{y1:.1f}' x2='{x2:.1f}' y2='{y2:.1f}' stroke='#334155'/>"
            )
    for stand in layout.stands:
        sx, sy = xy(stand.position.lat, stand.position.lon)
        parts.append(
            f"<rect x='{sx - 3:.1f}' y='{sy - 3:.1f}' width='6' height='6' fill='none' "
            f"stroke='#64748b'><title>{escape(stand.stand_id)}</title></rect>"
        )
    types = {v.vehicle_id: v.vehicle_type.value for v in manifest.catalogue.vehicles}
    for vehicle_id, row in sorted(vehicles.items()):
        vx, vy = xy(row["lat"], row["lon"])
        color = VEHICLE_COLORS.get(types.get(vehicle_id, ""), "#e2e8f0")
        ring = (
            f"<circle cx='{vx:.1f}' cy='{vy:.1f}' r='9' fill='none' stroke='#f8fafc' "
            "stroke-width='2'/>"
            if vehicle_id == selected
            else ""
        )
        parts.append(
            f"{ring}<circle cx='{vx:.1f}' cy='{vy:.1f}' r='4' fill='{color}' "
            f"data-vehicle='{escape(vehicle_id)}'><title>{escape(vehicle_id)}</title></circle>"
        )
    parts.append("</svg>")
    legend = " · ".join(
        f"<span style='color:{c}'>●</span> {escape(k)}" for k, c in VEHICLE_COLORS.items()
    )
    return (
        f"<h2>Map at {clock.local(at, True)}</h2>{''.join(parts)}"
        f"<p class='muted'>{legend}{' · ringed: ' + escape(selected) if selected else ''}</p>"
    )
