// The side panels: flight board, task list, notifications feed. Rows are keyed by the
// row's id and updated in place, so an entity can never be listed twice.

import { label, language, t } from "./i18n.js";
import { standText, VEHICLE_COLORS } from "./map.js";
import { noticeKind, noticeText } from "./notices.js";
import { lateness, minutes } from "./lateness.js";
import { FINISHED } from "./state.js";

const FLIGHT_WINDOW_BEFORE_MS = 45 * 60000; // a board shows what is about to happen
const FLIGHT_WINDOW_AFTER_MS = 3 * 3600000;
const TASK_TYPE_VEHICLE = {
  refuel: "fuel_truck",
  catering: "catering_truck",
  baggage_unload: "baggage_tractor",
  baggage_load: "baggage_tractor",
  cleaning: "cleaning_van",
  water: "water_truck",
  lavatory: "lavatory_truck",
  pushback: "pushback_tug",
  passenger_bus: "passenger_bus",
};
// Which milestone a flight row's `actual` time is: the time of the event its status names.
const ACTUAL_MILESTONE = {
  landed: "landing",
  on_block: "on_block",
  off_block: "off_block",
  departed: "takeoff",
};

/** Reuse, create, reorder and remove children of `container` so they match `items`. */
function syncRows(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  let previous = null;
  for (const item of items) {
    const key = keyOf(item);
    let el = existing.get(key);
    if (el) {
      existing.delete(key);
    } else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const expected = previous ? previous.nextSibling : container.firstChild;
    if (el !== expected) container.insertBefore(el, expected);
    previous = el;
  }
  for (const el of existing.values()) el.remove();
}

function cell(tag, className) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** A flight's block delay as known now (docs/api.md, "Lateness"): the actual on-block /
 * off-block once reached, else the estimate, minus the schedule; null when neither. */
function blockDelayMs(flight) {
  const atBlock = flight.actual !== null && flight.actual !== undefined
    && ACTUAL_MILESTONE[flight.status] === (flight.movement === "arrival" ? "on_block" : "off_block");
  const at = atBlock ? flight.actual : flight.estimated ?? null;
  return at === null ? null : at - flight.scheduled;
}

function bestTime(flight) {
  return flight.actual ?? flight.estimated ?? flight.scheduled;
}

export class Panels {
  /**
   * @param {object} deps {time: AirportTime, flightsById: Map (catalogue), onPickVehicle}
   */
  constructor(deps) {
    this.time = deps.time;
    this.catalogueFlights = deps.flightsById;
    this.onPickVehicle = deps.onPickVehicle ?? (() => {});
    this.flightBody = document.querySelector("[data-testid=flight-board] tbody");
    this.flightEmpty = document.getElementById("flights-empty");
    this.flightCount = document.getElementById("flights-count");
    this.taskBody = document.querySelector("[data-testid=task-list] tbody");
    this.taskEmpty = document.getElementById("tasks-empty");
    this.taskCount = document.getElementById("tasks-count");
    this.noteList = document.querySelector("[data-testid=notification-feed]");
    this.noteEmpty = document.getElementById("notes-empty");
    this.movement = "all";
    for (const button of document.querySelectorAll("[data-movement]")) {
      button.addEventListener("click", () => {
        this.movement = button.dataset.movement;
        for (const b of document.querySelectorAll("[data-movement]")) {
          b.setAttribute("aria-pressed", String(b === button));
        }
        this.lastRender = null;
      });
    }
    this.lateOnly = false;
    this.taskSort = "plan";
    const lateOnly = document.querySelector("[data-testid=task-late-only]");
    lateOnly?.addEventListener("change", () => {
      this.lateOnly = lateOnly.checked;
      this.lastRender = null;
    });
    const sort = document.querySelector("[data-testid=task-sort]");
    sort?.addEventListener("change", () => {
      this.taskSort = sort.value;
      this.lastRender = null;
    });
    this.taskBody.addEventListener("click", (e) => {
      const row = e.target.closest("tr[data-vehicle-id]");
      if (row && row.dataset.vehicleId) this.onPickVehicle(row.dataset.vehicleId);
    });
    this.lastRender = null;
    this.highlighted = null; // flight id marked on the board (jump to flight)
    this.scrollToHighlight = false;
  }

  /** Mark flight `id` on the board; scroll its row into view once the board shows replay
   * time `at` (the jump's target: before the seek lands the board is of another time). */
  highlightFlight(id, at = null) {
    this.highlighted = id;
    this.highlightAt = at;
    this.scrollToHighlight = id !== null;
    if (id !== null && this.movement !== "all") {
      document.querySelector("[data-movement=all]").click(); // the flight may be the other way
    }
    this.lastRender = null;
  }

  callsign(flightId, state) {
    const flight = state.flights.get(flightId) ?? this.catalogueFlights.get(flightId);
    if (flight) return flight.callsign;
    // A flight the day's data never described (no flight events): its id, without the
    // service-date suffix ids usually carry ("L75189-20260314-D" -> "L75189"); the whole id
    // is in the row's tooltip.
    return flightId ? flightId.replace(/-\d{8}(-[A-Z])?$/, "") : "—";
  }

  /** Re-render when the state, the language, the filter or the minute changed. */
  render(state, clock) {
    const minute = Math.floor(clock / 60000);
    const key = `${state.revision}|${language()}|${this.movement}|${minute}`;
    if (key === this.lastRender) return;
    this.lastRender = key;
    this.renderFlights(state, clock);
    this.renderTasks(state, clock);
    this.renderNotifications(state);
  }

  renderFlights(state, clock) {
    const flights = [...state.flights.values()]
      .filter((f) => this.movement === "all" || f.movement === this.movement)
      .filter((f) => {
        const at = bestTime(f);
        return at >= clock - FLIGHT_WINDOW_BEFORE_MS && at <= clock + FLIGHT_WINDOW_AFTER_MS;
      })
      .sort((a, b) => bestTime(a) - bestTime(b) || a.id.localeCompare(b.id));
    const time = this.time;
    const lang = language();
    syncRows(
      this.flightBody,
      flights,
      (f) => f.id,
      () => {
        const tr = cell("tr");
        tr.setAttribute("data-testid", "flight-row");
        for (const c of ["callsign", "route", "stand", "time", "time delay", "time", "status"]) {
          tr.append(cell("td", c));
        }
        return tr;
      },
      (tr, f) => {
        const signature = `${lang}|${f.t}|${f.status}|${f.stand}|${f.estimated}|${f.actual}`;
        if (tr.dataset.signature === signature) return;
        tr.dataset.signature = signature;
        tr.dataset.flightId = f.id;
        tr.dataset.movement = f.movement;
        tr.dataset.status = f.status;
        const [callsign, route, stand, sched, est, actual, status] = tr.children;
        const arrow = cell("span", "mv");
        arrow.textContent = f.movement === "arrival" ? "↓" : "↑";
        arrow.title = t(f.movement === "arrival" ? "flights.arrivals" : "flights.departures");
        callsign.replaceChildren(arrow, document.createTextNode(f.callsign));
        // Flight number, type, registration and route are optional (an ADS-B feed has none).
        callsign.title = [f.flight_number, f.aircraft_type, f.registration].filter(Boolean).join(" · ");
        setText(route, f.route ?? "—");
        setText(stand, standText(f.stand));
        setText(sched, time.hm(f.scheduled));
        setText(est, f.estimated && f.estimated !== f.scheduled ? time.hm(f.estimated) : "");
        est.classList.toggle("late", Boolean(f.estimated && f.estimated > f.scheduled + 5 * 60000));
        this.renderActual(actual, f);
        // The block delay (docs/api.md, "Lateness") rides on the Est cell: its tooltip
        // and, once the block time is known, "+N" beside the estimate's place.
        const late = blockDelayMs(f);
        const shown = late === null ? null : Math.round(late / 60000);
        est.dataset.delayMs = late === null ? "" : String(late);
        est.title = shown === null ? "" : t("flights.delayTitle", { n: shown > 0 ? `+${shown}` : String(shown) });
        status.replaceChildren(this.badge(`flight-${f.status}`, label("flight_status", f.status)));
      },
    );
    this.flightEmpty.hidden = flights.length > 0;
    setText(this.flightCount, String(flights.length));
    this.showHighlight(clock);
  }

  /** The actual time and which milestone it is (landing, on-block, off-block, take-off). */
  renderActual(cell, f) {
    if (!f.actual) {
      cell.replaceChildren();
      cell.title = "";
      delete cell.dataset.milestone;
      return;
    }
    const milestone = ACTUAL_MILESTONE[f.status] ?? "other";
    const tag = document.createElement("span");
    tag.className = "milestone";
    tag.textContent = t(`flights.milestone.${milestone}`);
    cell.replaceChildren(document.createTextNode(this.time.hm(f.actual)), tag);
    cell.dataset.milestone = milestone;
    cell.title = t(`flights.milestoneTitle.${milestone}`, { at: this.time.hm(f.actual) });
  }

  showHighlight(clock) {
    let row = null;
    for (const tr of this.flightBody.children) {
      const on = this.highlighted !== null && tr.dataset.flightId === this.highlighted;
      tr.classList.toggle("highlight", on);
      tr.setAttribute("aria-selected", String(on));
      if (on) row = tr;
    }
    if (!row || !this.scrollToHighlight) return;
    if (this.highlightAt !== null && Math.abs(clock - this.highlightAt) > 60000) return;
    this.scrollToHighlight = false;
    const box = row.closest(".scroll");
    const header = box.querySelector("thead")?.offsetHeight ?? 0;
    const rowBox = row.getBoundingClientRect();
    const boxBox = box.getBoundingClientRect();
    // Centre the row in the visible part of the list (under the sticky header).
    box.scrollTop += rowBox.top - boxBox.top - header - (box.clientHeight - header - rowBox.height) / 2;
  }

  renderTasks(state, clock) {
    const late = new Map([...state.tasks.values()].map((task) => [task.id, lateness(task, clock)]));
    const byPlan = (a, b) => {
      const fa = FINISHED.has(a.status) ? 1 : 0;
      const fb = FINISHED.has(b.status) ? 1 : 0;
      if (fa !== fb) return fa - fb;
      if (fa) return b.t - a.t || a.id.localeCompare(b.id); // finished: latest first
      return a.planned_start - b.planned_start || a.id.localeCompare(b.id);
    };
    const byLate = (a, b) => (late.get(b.id).delay ?? -Infinity) - (late.get(a.id).delay ?? -Infinity) || byPlan(a, b);
    const tasks = [...state.tasks.values()]
      .filter((task) => !this.lateOnly || late.get(task.id).late)
      .sort(this.taskSort === "late" ? byLate : byPlan);
    const time = this.time;
    const lang = language();
    syncRows(
      this.taskBody,
      tasks,
      (task) => task.id,
      () => {
        const tr = cell("tr");
        tr.setAttribute("data-testid", "task-row");
        for (const c of ["type", "flight", "vehicle", "time delay", "status"]) {
          tr.append(cell("td", c));
        }
        return tr;
      },
      (tr, task) => {
        const callsign = this.callsign(task.flight_id, state);
        const how = late.get(task.id);
        const signature = `${lang}|${task.t}|${task.status}|${task.vehicle_id}|${callsign}|${how.delay}|${how.overdue}`;
        if (tr.dataset.signature === signature) return;
        tr.dataset.signature = signature;
        tr.dataset.taskId = task.id;
        tr.dataset.status = task.status;
        tr.dataset.vehicleId = task.vehicle_id ?? "";
        tr.classList.toggle("finished", FINISHED.has(task.status));
        const [type, flight, vehicle, planned, status] = tr.children;
        const dot = cell("span", "dot");
        dot.style.background = VEHICLE_COLORS[TASK_TYPE_VEHICLE[task.task_type]] ?? "#94a3b8";
        type.replaceChildren(dot, document.createTextNode(label("task_type", task.task_type)));
        const standTag = cell("span", "sub");
        standTag.textContent = standText(task.stand);
        flight.replaceChildren(document.createTextNode(callsign), standTag);
        flight.title = task.flight_id ?? "";
        setText(vehicle, task.vehicle_id ?? "—");
        // On plan: the planned start; late: the delay minutes ("+N", ! when it overran),
        // the plan, the actual times and both delays in the tooltip.
        const shown = minutes(how.delay);
        const overran = how.overrun !== null && how.overrun >= 60000;
        setText(planned, how.late ? `+${shown}${overran ? "!" : ""}` : time.hm(task.planned_start));
        const ended = task.status === "completed" ? task.actual_end : null;
        planned.title = [
          t("tasks.plannedWindow", { start: time.hm(task.planned_start), end: time.hm(task.planned_end) }),
          task.actual_start ? `${t("tasks.actual")} ${time.hm(task.actual_start)}–${ended ? time.hm(ended) : "…"}` : "",
          how.delay === null ? "" : t("tasks.lateTitle", { start: minutes(how.startDelay), end: minutes(how.overrun ?? 0) }),
        ].filter(Boolean).join(" · ");
        planned.dataset.delayMs = how.delay === null ? "" : String(how.delay);
        tr.dataset.late = String(how.late);
        tr.dataset.overdue = String(how.overdue);
        tr.classList.toggle("late", how.late);
        status.replaceChildren(this.badge(`task-${task.status}`, label("task_status", task.status)));
      },
    );
    this.taskEmpty.hidden = tasks.length > 0;
    const active = tasks.filter((task) => !FINISHED.has(task.status)).length;
    setText(this.taskCount, t("tasks.active", { n: active }));
  }

  renderNotifications(state) {
    const notes = [...state.notifications.values()].sort((a, b) => b.t - a.t || b.id.localeCompare(a.id));
    const time = this.time;
    const lang = language();
    syncRows(
      this.noteList,
      notes,
      (n) => n.id,
      () => {
        const li = cell("li", "note");
        li.setAttribute("data-testid", "notification-item");
        const head = cell("div", "note-head");
        head.append(cell("span", "badge"), cell("span", "note-time mono"), cell("span", "note-code mono"));
        li.append(head, cell("div", "note-text"), cell("div", "note-refs mono"));
        return li;
      },
      (li, n) => {
        const related = [];
        if (n.flight_id) related.push(this.callsign(n.flight_id, state));
        if (n.vehicle_id) related.push(n.vehicle_id);
        if (n.task_id) related.push(n.task_id);
        const signature = `${lang}|${n.t}|${n.text}|${related.join(" · ")}`;
        if (li.dataset.signature === signature) return;
        li.dataset.signature = signature;
        li.dataset.notificationId = n.id;
        li.dataset.level = n.level;
        const [head, text, refs] = li.children;
        const [badge, when, code] = head.children;
        badge.className = `badge level-${n.level}`;
        setText(badge, label("level", n.level));
        setText(when, time.hms(n.t));
        setText(code, noticeKind(n.code));
        code.title = n.code ?? "";
        const shown = noticeText(n);
        setText(text, shown.text);
        text.title = n.text ?? ""; // the dispatch system's own words, whatever the language
        text.dataset.translated = String(shown.translated);
        setText(refs, related.join(" · "));
      },
    );
    this.noteEmpty.hidden = notes.length > 0;
  }

  badge(kind, text) {
    const span = cell("span", `badge ${kind}`);
    span.textContent = text;
    return span;
  }
}
