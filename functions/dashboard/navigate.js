// Navigation by the domain's own events (issue #19 item 4): the day's navigable events as
// the server lists them (GET …/days/{date}/events, docs/api.md "Events": the page derives no
// event itself), drawn as markers on the timeline and stepped through by kind with keys and
// buttons; a click on a notification seeks to it and selects what it names; "follow" keeps
// the selected vehicle centred on the map.

import { isTyping } from "./controls.js";
import { label, t } from "./i18n.js";
import { standText } from "./map.js";

/** Marker kinds in legend order, and their colours (the timeline draws one lane each). */
export const EVENT_KINDS = ["overdue_task", "conflict", "late_on_block", "late_off_block", "reassignment", "escalation"];
export const EVENT_COLORS = {
  overdue_task: "#fb923c",
  conflict: "#f87171",
  late_on_block: "#facc15",
  late_off_block: "#f472b6",
  reassignment: "#38bdf8",
  escalation: "#a3e635",
};
/** A key for "next event of this kind" (with Shift: the previous one). */
export const KIND_KEYS = { o: "overdue_task", c: "conflict", b: "late_on_block", d: "late_off_block", r: "reassignment", e: "escalation" };
/** Kinds that are (or carry) a dispatch decision: going to one opens its decision card. */
const DECIDED = new Set(["decision", "escalation", "reassignment"]);
/** Keys for next / previous dispatch decision (of the decisions tab's filter). */
const DECISION_KEYS = { ".": 1, ",": -1 };
const MAX_KPI_MS = 12 * 3600000; // the decision-quality API's window cap

// "Follow": the vehicle may wander this share of the map's smaller side from the centre
// before the view re-centres on it (a re-centre redraws the cached layout layer once, so
// not every frame).
const FOLLOW_SLACK = 0.06;

const $ = (id) => document.getElementById(id);

export class EventNavigator {
  /**
   * @param {object} deps {api, app, seek(t), toast(text)}
   */
  constructor(deps) {
    this.api = deps.api;
    this.app = deps.app;
    this.seek = deps.seek;
    this.toast = deps.toast;
    this.events = [];
    this.counts = {};
    this.kind = "overdue_task";
    this.cursor = null; // the event last jumped to
    this.loaded = false;
    this.pending = null; // [direction, kind] of a step asked for before the events loaded
    this.highRegret = null; // the day's high-regret decisions ("task|t" keys), once asked
  }

  /** Fetch the day's events (one answer, cached by the server per published version). */
  async load() {
    const { manifest } = this.app;
    const body = await this.api.events(manifest.airport.airport_id, manifest.service_date);
    this.events = body.events;
    this.counts = body.counts;
    this.loaded = true;
    const lanes = new Set(EVENT_KINDS); // every decision is navigable, not a lane
    this.app.timeline.setMarkers(this.events.filter((e) => lanes.has(e.kind)), EVENT_COLORS, EVENT_KINDS);
    this.renderLegend();
    if (this.pending) this.step(...this.pending); // a key pressed while they loaded
  }

  /** The legend under the timeline: each marker kind (a button: choose it), the histogram. */
  renderLegend() {
    const list = $("event-kinds");
    list.replaceChildren(
      ...EVENT_KINDS.map((kind) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "legend-kind";
        button.dataset.kind = kind;
        button.setAttribute("data-testid", "event-kind");
        button.setAttribute("aria-pressed", String(kind === this.kind));
        button.title = t("events.chooseTitle", { kind: t(`events.kind.${kind}`) });
        const swatch = document.createElement("span");
        swatch.className = "legend-tick";
        swatch.style.background = EVENT_COLORS[kind];
        const text = document.createElement("span");
        text.textContent = `${t(`events.kind.${kind}`)} ${this.loaded ? this.counts[kind] ?? 0 : "…"}`;
        button.append(swatch, text);
        button.addEventListener("click", () => this.choose(kind));
        return button;
      }),
    );
  }

  choose(kind) {
    this.kind = kind;
    this.app.timeline.markerKind = kind;
    for (const button of document.querySelectorAll("[data-testid=event-kind]")) {
      button.setAttribute("aria-pressed", String(button.dataset.kind === kind));
    }
  }

  /** Jump to the next (direction 1) or previous (-1) event of `kind` inside the range. */
  step(direction, kind = this.kind) {
    if (kind !== this.kind) this.choose(kind);
    if (!this.loaded) {
      this.pending = [direction, kind];
      this.toast(t("events.loading"));
      return null;
    }
    this.pending = null;
    return this.stepIn(this.events.filter((e) => e.kind === kind), direction, t(`events.kind.${kind}`));
  }

  /** Jump to the next / previous event of `list` (by time) inside the range; `named`
   * says what the list holds when there is none. */
  stepIn(list, direction, named) {
    const clock = this.app.clock;
    const inRange = list.filter((e) => e.t >= clock.rangeStart && e.t < clock.rangeEnd);
    const now = this.app.controls.pending?.position ?? clock.now(); // a seek not yet landed counts
    let index;
    // After a jump the clock may not have landed yet (or moved a little while playing):
    // step from the event jumped to, so two presses visit two events (also at one instant).
    const from = this.cursor && Math.abs(now - this.cursor.t) < 5000 ? inRange.indexOf(this.cursor) : -1;
    if (from >= 0) index = from + direction;
    else if (direction > 0) index = inRange.findIndex((e) => e.t > now);
    else index = inRange.findLastIndex((e) => e.t < now);
    const event = index >= 0 ? inRange[index] : undefined;
    if (!event) {
      this.toast(t(direction > 0 ? "events.noneAfter" : "events.noneBefore", { kind: named }));
      return null;
    }
    this.go(event);
    return event;
  }

  /** Jump to the next / previous dispatch decision the decisions tab's filter keeps: all,
   * the no-vehicle escalations, or those of high regret (the decision-quality API's list
   * for the day, asked once). */
  async stepDecision(direction) {
    const filter = $("decision-filter").value;
    if (!this.loaded) {
      this.toast(t("events.loading"));
      return null;
    }
    let list = this.events.filter((e) => e.kind === "decision");
    if (filter === "escalation") list = list.filter((e) => e.decision === "escalate_no_vehicle");
    if (filter === "high_regret") {
      let wanted;
      try {
        wanted = await this.highRegretKeys();
      } catch {
        this.toast(t("decisions.qualityFailed")); // asked again at the next press
        return null;
      }
      list = list.filter((e) => wanted.has(`${e.task_id}|${e.t}`));
    }
    return this.stepIn(list, direction, t(`decisions.filter.${filter}`));
  }

  /** "task|t" of the day's high-regret decisions (docs/api.md "Decision quality"). */
  async highRegretKeys() {
    if (this.highRegret) return this.highRegret;
    const { manifest } = this.app;
    const airport = encodeURIComponent(manifest.airport.airport_id);
    const keys = new Set();
    for (let start = manifest.start; start < manifest.end; start += MAX_KPI_MS) {
      const end = Math.min(manifest.end, start + MAX_KPI_MS);
      const q = await this.api.request("GET", `/airports/${airport}/decision-quality?start=${start}&end=${end}&limit=200`);
      for (const h of q.high_regret) keys.add(`${h.task_id}|${h.t}`);
    }
    this.highRegret = keys;
    return keys;
  }

  /** Seek to an event and select what it names; a decision (or an event a decision made)
   * opens its decision card, its candidates drawn on the map at that instant. */
  go(event) {
    this.cursor = event;
    this.seek(event.t);
    select(this.app, event, event.t);
    if (DECIDED.has(event.kind) && event.task_id) this.app.decisions.select(event.task_id, true);
    this.toast(describe(event, this.app));
  }

  bind() {
    this.app.timeline.describeMarker = (event) => describe(event, this.app);
    $("event-prev").addEventListener("click", () => this.step(-1));
    $("event-next").addEventListener("click", () => this.step(1));
    $("decision-prev").addEventListener("click", () => this.stepDecision(-1));
    $("decision-next").addEventListener("click", () => this.stepDecision(1));
    this.app.timeline.onMarker = (event) => {
      this.choose(event.kind);
      this.go(event);
    };
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      const key = e.key.toLowerCase();
      if (e.key === "]" || e.key === "[") {
        e.preventDefault();
        this.step(e.key === "]" ? 1 : -1);
      } else if (DECISION_KEYS[e.key]) {
        e.preventDefault();
        this.stepDecision(DECISION_KEYS[e.key]);
      } else if (KIND_KEYS[key]) {
        e.preventDefault();
        this.step(e.shiftKey ? -1 : 1, KIND_KEYS[key]);
      }
    });
    this.renderLegend();
  }
}

/** Select what an event or notification names: its vehicle on the map, its flight on the
 * board (and stand on the map). */
export function select(app, named, at) {
  if (named.vehicle_id) app.map.selectedId = named.vehicle_id;
  const flight = named.flight_id ? app.flightsById.get(named.flight_id) : null;
  if (named.flight_id) app.panels.highlightFlight(named.flight_id, at);
  const stand = named.stand ?? flight?.stand ?? null;
  if (stand) app.map.highlightStand = stand;
}

/** One line saying what the event is, in the page's language. */
function describe(event, app) {
  const parts = [app.time.hms(event.t), event.kind === "decision" ? label("decision", event.decision) : t(`events.kind.${event.kind}`)];
  const flight = event.flight_id ? app.flightsById.get(event.flight_id) : null;
  if (flight) parts.push(flight.callsign);
  if (event.stand) parts.push(standText(event.stand));
  const from = event.from_vehicle_id ?? event.previous_vehicle_id;
  if (event.vehicle_id) parts.push(from ? `${from} → ${event.vehicle_id}` : event.vehicle_id);
  if (event.delay_ms) parts.push(t("events.late", { min: Math.round(event.delay_ms / 60000) }));
  return parts.join(" · ");
}

/** A click on a notification of the feed: seek to its time, select what it names. */
export function bindNotifications(app, seek) {
  document.querySelector("[data-testid=notification-feed]").addEventListener("click", (e) => {
    const item = e.target.closest("[data-notification-id]");
    const note = item ? app.state.notifications.get(item.dataset.notificationId) : null;
    if (!note) return;
    seek(note.t);
    select(app, note, note.t);
  });
}

/** "Follow this vehicle": keeps the selected vehicle near the map's centre. */
export class Follower {
  constructor(app) {
    this.app = app;
    this.vehicleId = null;
    this.recentres = 0; // view moves made by following (test hook)
  }

  toggle() {
    const id = this.app.map.selectedId;
    this.vehicleId = this.vehicleId || !id ? null : id;
    this.sync();
  }

  sync() {
    const button = $("follow-toggle");
    button.setAttribute("aria-pressed", String(this.vehicleId !== null));
    button.disabled = !this.app.map.selectedId && this.vehicleId === null;
  }

  /** Before the map draws a frame: re-centre on the followed vehicle if it wandered off.
   * Following stops when the vehicle is no longer selected or the user drags the map. */
  update(now) {
    const { map, state } = this.app;
    if (this.vehicleId !== null && (map.selectedId !== this.vehicleId || map.canvas.classList.contains("dragging"))) {
      this.vehicleId = null;
    }
    const enabled = Boolean(map.selectedId) || this.vehicleId !== null;
    const button = $("follow-toggle");
    if (button.disabled === enabled || button.getAttribute("aria-pressed") !== String(this.vehicleId !== null)) this.sync();
    if (this.vehicleId === null) return;
    const vehicle = state.vehicles.get(this.vehicleId);
    if (!vehicle) return;
    const at = map.screen(state.positionOf(vehicle, now));
    const dx = map.width / 2 - at.x;
    const dy = map.height / 2 - at.y;
    if (Math.hypot(dx, dy) <= FOLLOW_SLACK * Math.min(map.width, map.height)) return;
    map.tx += dx;
    map.ty += dy;
    map.userMoved = true; // a resize keeps the view the follower chose
    this.recentres += 1;
  }

  bind() {
    $("follow-toggle").addEventListener("click", () => this.toggle());
    document.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      if (e.key === "f" || e.key === "F") {
        e.preventDefault();
        this.toggle();
      }
    });
    this.sync();
  }
}
