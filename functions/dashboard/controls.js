// The control bar and everything that changes the session: play/pause, step, speed,
// seek (keys, timeline, jump to a flight), range, loop, filters, share, keyboard shortcuts.
// Every change goes through the control API; the UI then follows the session's answer and
// the stream's playback events, so several viewers of one session stay in step.

import { ApiError } from "./api.js";
import { enumValues, label, t } from "./i18n.js";
import { standName, standText } from "./map.js";

export const SPEEDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];
const KEY_SEEK_MS = 30000;
const SHIFT_KEY_SEEK_MS = 5 * 60000; // Shift+←/→ while playing
const STEP_TICKS = 1;
const SHIFT_STEP_TICKS = 10; // Shift+←/→ while paused
const DAY_MS = 86400000;
const DEPARTURE_LEAD_MS = 45 * 60000;
// "HH:MM", optionally "+N" days after the service day ("02:00+1"); "24:00" ends the day.
const TIME_PATTERN = /^(?:([01]\d|2[0-3]):([0-5]\d)|24:00)(?:\+([1-7]))?$/;
const POPOVERS = {
  "share-popover": "share-button",
  "filters-popover": "filters-button",
  "bookmarks-popover": "bookmarks-button",
};
const FILTER_KINDS = { vehicle_types: "vehicle_type", task_types: "task_type", task_statuses: "task_status" };
const FILTER_NAMES = ["vehicle_types", "vehicle_ids", "task_types", "task_statuses", "flights", "stands"];
const FILTER_LEGENDS = {
  vehicle_types: "filters.vehicleTypes",
  vehicle_ids: "filters.vehicleIds",
  task_types: "filters.taskTypes",
  task_statuses: "filters.taskStatuses",
  flights: "filters.flights",
  stands: "filters.stands",
};
const MAX_SUMMARY_VALUES = 4;
const NOTICE_MS = 15000;

const $ = (id) => document.getElementById(id);

/** Filters in one form: only the filters that are set, each a sorted list of strings. */
function normalFilters(filters) {
  const normal = {};
  for (const name of FILTER_NAMES) {
    const values = filters?.[name];
    if (Array.isArray(values)) normal[name] = [...values].map(String).sort();
  }
  return normal;
}

function canonical(filters) {
  return JSON.stringify(FILTER_NAMES.map((name) => filters[name] ?? null));
}

function sameValues(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** A normal form as the API takes it: every filter named, null for "no filter". */
function apiFilters(filters) {
  return Object.fromEntries(FILTER_NAMES.map((name) => [name, filters[name] ?? null]));
}

/** A short message at the bottom of the page. */
export function toast(message) {
  const el = $("toast");
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    el.hidden = true;
  }, 3200);
}

function togglePopover(id, show) {
  const el = $(id);
  el.hidden = show === undefined ? !el.hidden : !show;
  // A closed popover gives the keyboard back (a field left focused in it would swallow
  // the shortcuts).
  if (el.hidden && el.contains(document.activeElement)) document.activeElement.blur();
}

/** Close every open popover; true if one was open. */
function closePopovers() {
  let closed = false;
  for (const id of Object.keys(POPOVERS)) {
    if (!$(id).hidden) {
      togglePopover(id, false);
      closed = true;
    }
  }
  return closed;
}

/** Whole days from local date `a` to local date `b` ("YYYY-MM-DD"). */
function daysBetween(a, b) {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);
}

/** "YYYY-MM-DD" `n` days after `date`. */
function addDays(date, n) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Whether an API error means this page's session is gone (not just a refused request). */
function sessionGone(error) {
  const type = error.problem?.type ?? "";
  return error.status === 404 && /\/(session-not-found|session-gone)$/.test(type);
}

/** A refused request, in the page's language (the API's own detail kept in brackets). */
function problemText(error) {
  const slug = (error.problem?.type ?? "").split("/").pop();
  const known = slug ? t(`problem.${slug}`) : "";
  if (known && known !== `problem.${slug}`) return `${known} (${error.message})`;
  return error.message;
}

function speedLabel(speed) {
  return `${speed}×`;
}

/** Whether keys typed at `target` belong to it (text fields, selects), not to shortcuts. */
export function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target.tagName === "INPUT" && !["checkbox", "radio", "button"].includes(target.type);
}

export class Controls {
  /**
   * @param {object} deps
   * @param {import("./api.js").Api} deps.api
   * @param {object} deps.app the dashboard's shared context (sessionId, view, clock, manifest,
   *   time, map, timeline)
   * @param {() => void} deps.onChange called after the controls followed a new clock
   * @param {(message: string) => void} deps.onFatal the session is gone
   */
  constructor({ api, app, onChange, onFatal }) {
    this.api = api;
    this.app = app;
    this.onChange = onChange;
    this.onFatal = onFatal;
    this.queue = Promise.resolve();
    // What the last unanswered request asked for: a key pressed again before the answer
    // came builds on it (two presses of "+" are two steps up, not the same step twice).
    this.pending = { state: null, speed: null, position: null };
    this.rangeKey = "";
  }

  // --- talking to the control API ------------------------------------------------------

  /** Apply a session view from the API (control answers, token renewals). */
  applyView(view) {
    this.app.view = view;
    this.followFilters(view.filters, view.filters_by, view.version);
    if (this.app.clock.fromView(view)) this.sync();
  }

  /** Send one control action. Calls go out one at a time, in the order they were made:
   * two in flight at once could be applied by the server in either order. */
  control(command) {
    const result = this.queue.then(() => this.send(command));
    this.queue = result;
    return result;
  }

  async send(command) {
    try {
      const view = await this.api.control(this.app.sessionId, command);
      this.applyView(view);
      return view;
    } catch (error) {
      if (error instanceof ApiError && sessionGone(error)) {
        this.onFatal(t("toast.sessionGone"));
      } else {
        toast(t("toast.error", { msg: error instanceof ApiError ? problemText(error) : error.message }));
      }
      return null;
    }
  }

  async controlPending(key, value, command) {
    this.pending[key] = value;
    try {
      return await this.control(command);
    } finally {
      if (this.pending[key] === value) this.pending[key] = null;
    }
  }

  togglePlay() {
    const status = this.pending.state ?? this.app.clock.status;
    const action = status === "playing" ? "pause" : "play";
    this.controlPending("state", action === "play" ? "playing" : "paused", { action });
  }

  step(ticks) {
    if (this.app.clock.status === "paused") this.control({ action: "step", ticks });
  }

  /** Seek to `position`, kept inside the session's range (the API refuses outside). */
  seek(position) {
    const clock = this.app.clock;
    const target = Math.round(Math.min(Math.max(position, clock.rangeStart), clock.rangeEnd - 1000));
    return this.controlPending("position", target, { action: "seek", position: target });
  }

  seekBy(deltaMs) {
    this.seek((this.pending.position ?? this.app.clock.now()) + deltaMs);
  }

  changeSpeed(direction) {
    const speed = this.pending.speed ?? this.app.clock.speed;
    const next =
      direction > 0
        ? SPEEDS.find((s) => s > speed + 1e-9)
        : [...SPEEDS].reverse().find((s) => s < speed - 1e-9);
    if (next !== undefined) this.controlPending("speed", next, { action: "set_speed", speed: next });
  }

  // --- following the clock -------------------------------------------------------------

  /** Make every control show the session's current clock, range and filters. */
  sync() {
    const clock = this.app.clock;
    const play = $("play");
    const playing = clock.status === "playing";
    play.dataset.state = playing ? "playing" : clock.status;
    play.dataset.i18nTitle = playing ? "controls.pause" : "controls.play";
    play.title = t(play.dataset.i18nTitle);
    play.setAttribute("aria-label", play.title);
    $("step-back").disabled = clock.status !== "paused";
    $("step-forward").disabled = clock.status !== "paused";
    this.fillSpeeds();
    $("clock-speed").textContent = t("clock.speed", { s: clock.speed });
    $("loop-toggle").checked = clock.loop;
    const rangeKey = `${clock.rangeStart}-${clock.rangeEnd}`;
    if (this.rangeKey !== rangeKey) {
      this.rangeKey = rangeKey;
      $("range-start").value = this.timeInputValue(clock.rangeStart);
      $("range-end").value = this.timeInputValue(clock.rangeEnd);
      this.app.timeline.setRange(clock.rangeStart, clock.rangeEnd);
      this.fillJumpFlights();
    }
    this.onChange();
  }

  fillSpeeds() {
    const select = $("speed");
    const current = this.app.clock.speed;
    const speeds = SPEEDS.includes(current) ? SPEEDS : [...SPEEDS, current].sort((a, b) => a - b);
    const wanted = speeds.join(",");
    if (select.dataset.speeds !== wanted) {
      select.replaceChildren(
        ...speeds.map((s) => {
          const option = document.createElement("option");
          option.value = String(s);
          option.textContent = speedLabel(s);
          return option;
        }),
      );
      select.dataset.speeds = wanted;
    }
    select.value = String(current);
  }

  /** A range bound as typed in the range fields: "HH:MM", "+N" for a later day, "24:00"
   * for the end of a day (ranges may span days: the API allows up to 7). */
  timeInputValue(ms) {
    const { manifest, time } = this.app;
    let days = daysBetween(manifest.service_date, time.date(ms));
    let hm = time.hm(ms);
    if (hm === "00:00" && days >= 1 && ms > this.app.clock.rangeStart) {
      days -= 1; // an end at midnight is the end of the day before
      hm = "24:00";
    }
    return days > 0 ? `${hm}+${days}` : hm;
  }

  /** Epoch ms of a range field's value ("HH:MM[+N]" or "24:00[+N]"), or null. */
  parseRangeTime(value, extraDays = 0) {
    const match = TIME_PATTERN.exec(value);
    if (!match) return null;
    const { manifest, time } = this.app;
    const days = Number(match[3] ?? 0) + extraDays;
    if (match[1] === undefined) return time.toEpoch(addDays(manifest.service_date, days + 1), "00:00");
    return time.toEpoch(addDays(manifest.service_date, days), `${match[1]}:${match[2]}`);
  }

  // --- jump to a flight ----------------------------------------------------------------

  /** When to look at a flight: an arrival's on-block time; for a departure, the arrival of
   * its turnaround (or 45 min before it leaves). */
  flightTarget(flight) {
    if (flight.movement === "arrival") return flight.actual ?? flight.estimated ?? flight.scheduled;
    const arrival = flight.turnaround_id
      ? this.app.manifest.catalogue.flights.find(
          (f) => f.turnaround_id === flight.turnaround_id && f.movement === "arrival",
        )
      : null;
    if (arrival) return arrival.actual ?? arrival.estimated ?? arrival.scheduled;
    return (flight.actual ?? flight.estimated ?? flight.scheduled) - DEPARTURE_LEAD_MS;
  }

  fillJumpFlights() {
    const { clock, time, manifest } = this.app;
    const select = $("jump-flight");
    const flights = manifest.catalogue.flights
      .map((f) => ({ f, at: this.flightTarget(f) }))
      .sort((a, b) => a.at - b.at || a.f.callsign.localeCompare(b.f.callsign));
    const placeholder = document.createElement("option");
    placeholder.value = "";
    placeholder.textContent = t("controls.jump");
    const options = flights.map(({ f, at }) => {
      const option = document.createElement("option");
      const inRange = at >= clock.rangeStart && at < clock.rangeEnd;
      const arrow = f.movement === "arrival" ? "↓" : "↑";
      const outside = inRange ? "" : ` (${t("controls.outsideRange")})`;
      option.value = f.id;
      option.textContent = `${time.hm(at)}  ${f.callsign} ${arrow} ${f.route ?? "—"} · ${t("flights.stand")} ${standText(f.stand)}${outside}`;
      option.disabled = !inRange;
      option.dataset.target = String(at);
      option.dataset.stand = f.stand ?? "";
      return option;
    });
    select.replaceChildren(placeholder, ...options);
    select.value = "";
  }

  // --- range ---------------------------------------------------------------------------

  applyRange() {
    const startValue = $("range-start").value.trim();
    const endValue = $("range-end").value.trim();
    const start = this.parseRangeTime(startValue);
    let end = this.parseRangeTime(endValue);
    if (start === null || end === null) {
      toast(t("error.badTime"));
      return;
    }
    // An end at or before the start without a day of its own is on the next day:
    // "22:00 – 02:00" is a night shift, not a mistake.
    if (end <= start && !endValue.includes("+")) end = this.parseRangeTime(endValue, 1);
    if (end <= start) {
      toast(t("error.rangeOrder", { start: startValue, end: endValue }));
      return;
    }
    this.control({ action: "set_range", start, end }).then((view) => {
      if (view) toast(t("toast.rangeApplied"));
    });
  }

  // --- filters -------------------------------------------------------------------------
  //
  // Filters are session state: the summary beside the button shows them to every viewer,
  // a notice says when another viewer changed them, and a change is sent conditional on
  // the version this page showed when the popover was opened. On a 409 nothing is lost:
  // if the filters did not change meanwhile (someone only paused) the change is re-sent at
  // once; otherwise the popover shows what the other viewer changed and offers to re-apply
  // this viewer's own change on top of it.

  buildFilters() {
    const groups = {
      vehicle_types: enumValues("vehicle_type"),
      task_types: enumValues("task_type"),
      task_statuses: enumValues("task_status"),
    };
    for (const [name, values] of Object.entries(groups)) {
      const box = document.querySelector(`fieldset[data-filter=${name}] .options`);
      box.replaceChildren(
        ...values.map((value) => {
          const wrap = document.createElement("label");
          wrap.className = "check";
          const input = document.createElement("input");
          input.type = "checkbox";
          input.value = value;
          const span = document.createElement("span");
          span.dataset.value = value;
          span.textContent = FILTER_KINDS[name] ? label(FILTER_KINDS[name], value) : value;
          wrap.append(input, span);
          return wrap;
        }),
      );
    }
    this.fillSearchOptions();
    // What the page shows now (from the session view) and what the popover was opened on.
    const view = this.app.view;
    this.shown = { filters: normalFilters(view.filters), by: view.filters_by ?? null, version: view.version };
    this.base = null;
    this.sending = null; // canonical text of the filters this page is sending
    this.showSummary();
  }

  relabelFilters() {
    for (const span of document.querySelectorAll("fieldset[data-filter] .options span")) {
      const kind = FILTER_KINDS[span.closest("fieldset").dataset.filter];
      if (kind) span.textContent = label(kind, span.dataset.value);
    }
    for (const fieldset of document.querySelectorAll("fieldset[data-search]")) {
      this.setChips(fieldset, this.chipValues(fieldset)); // chips show labels too
    }
  }

  /** The searchable lists: flights by callsign / flight number / id, vehicles by id. */
  fillSearchOptions() {
    const { manifest } = this.app;
    const flightOptions = [...manifest.catalogue.flights]
      .sort((a, b) => a.callsign.localeCompare(b.callsign))
      .map((f) => {
        const option = document.createElement("option");
        option.value = f.callsign;
        const arrow = f.movement === "arrival" ? "↓" : "↑";
        option.label = `${f.flight_number} ${arrow} ${f.route} · ${t("flights.stand")} ${standText(f.stand)} · ${f.id}`;
        return option;
      });
    $("filter-flight-options").replaceChildren(...flightOptions);
    const vehicleOptions = [...manifest.catalogue.vehicles]
      .sort((a, b) => a.vehicle_id.localeCompare(b.vehicle_id, undefined, { numeric: true }))
      .map((v) => {
        const option = document.createElement("option");
        option.value = v.vehicle_id;
        option.label = `${label("vehicle_type", v.vehicle_type)} · ${v.label}`;
        return option;
      });
    $("filter-vehicle-options").replaceChildren(...vehicleOptions);
    // Stands: a real airport has hundreds; typed, not ticked. One option per stand id.
    const stands = new Map(this.app.manifest.layout.stands.map((s) => [s.stand_id, s]));
    const standOptions = this.standIds().map((id) => {
      const stand = stands.get(id);
      const option = document.createElement("option");
      option.value = id;
      const name = standName(stand);
      option.label = `${name === id ? "" : `${name} · `}${t(stand.kind === "remote" ? "map.remoteStand" : "map.contactStand")}${stand.terminal_id ? ` · ${stand.terminal_id}` : ""}`;
      return option;
    });
    $("filter-stand-options").replaceChildren(...standOptions);
  }

  /** The airport's stand ids, once each, in natural order (A2 before A10). */
  standIds() {
    const ids = new Set(this.app.manifest.layout.stands.map((s) => s.stand_id));
    return [...ids].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  }

  /** The stands a typed query names: the stand with that id, else every id it begins. */
  findStands(query) {
    const q = query.trim().toUpperCase();
    if (!q) return [];
    const ids = this.standIds();
    // An id or the label a person reads ("W06/W07" names the stand W06_W07).
    const names = ids.map((id) => [id, id.toUpperCase(), standText(id).toUpperCase()]);
    const exact = names.filter(([, id, name]) => id === q || name === q).map(([id]) => id);
    return exact.length ? exact : names.filter(([, id, name]) => id.startsWith(q) || name.startsWith(q)).map(([id]) => id);
  }

  /** The flight (leg) ids a typed query names: an id, a callsign or a flight number. */
  findFlights(query) {
    const q = query.trim().toUpperCase();
    if (!q) return [];
    const flights = this.app.manifest.catalogue.flights;
    const exact = flights.filter((f) => f.id.toUpperCase() === q);
    if (exact.length) return exact.map((f) => f.id);
    return flights.filter((f) => f.callsign === q || f.flight_number === q).map((f) => f.id);
  }

  findVehicles(query) {
    const q = query.trim().toUpperCase();
    return this.app.manifest.catalogue.vehicles.filter((v) => v.vehicle_id.toUpperCase() === q).map((v) => v.vehicle_id);
  }

  /** Add what the search field of `fieldset` names to its chips (or say it names nothing). */
  addSearched(fieldset) {
    const input = fieldset.querySelector("input");
    const query = input.value.trim();
    if (!query) return;
    const kind = fieldset.dataset.search;
    const find = { flights: (q) => this.findFlights(q), vehicles: (q) => this.findVehicles(q), stands: (q) => this.findStands(q) };
    const found = find[kind](query);
    if (!found.length) {
      const missing = { flights: "filters.noSuchFlight", vehicles: "filters.noSuchVehicle", stands: "filters.noSuchStand" };
      input.setCustomValidity(t(missing[kind], { q: query }));
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    input.value = "";
    const values = new Set(this.chipValues(fieldset));
    for (const value of found) values.add(value);
    this.setChips(fieldset, [...values]);
  }

  chipValues(fieldset) {
    return [...fieldset.querySelectorAll(".chip-value")].map((chip) => chip.dataset.value);
  }

  setChips(fieldset, values) {
    const box = fieldset.querySelector(".chips");
    box.replaceChildren(
      ...values.map((value) => {
        const chip = document.createElement("span");
        chip.className = "chip-value";
        chip.dataset.value = value;
        chip.dataset.testid = "filter-chip";
        chip.setAttribute("data-testid", "filter-chip");
        chip.textContent = this.valueLabel(fieldset.dataset.filter, value);
        chip.title = value;
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.textContent = "×";
        remove.title = t("filters.remove");
        remove.setAttribute("aria-label", `${t("filters.remove")} ${value}`);
        remove.addEventListener("click", () => chip.remove());
        chip.append(remove);
        return chip;
      }),
    );
  }

  /** How a filter value reads to a controller (labels, callsigns). */
  valueLabel(name, value) {
    if (FILTER_KINDS[name]) return label(FILTER_KINDS[name], value);
    if (name === "flights") {
      const flight = this.app.flightsById?.get(value);
      return flight ? flight.callsign : value;
    }
    if (name === "stands") return standText(value);
    return value;
  }

  /** "Fuel truck, Tug" for a filter's values; "any" for no filter. */
  valuesText(name, values) {
    if (!values) return t("filters.any");
    const shown = values.slice(0, MAX_SUMMARY_VALUES).map((v) => this.valueLabel(name, v));
    if (values.length > MAX_SUMMARY_VALUES) shown.push(t("filters.more", { n: values.length - MAX_SUMMARY_VALUES }));
    return shown.join(", ");
  }

  /** One line per filter that differs between `before` and `after` (normal forms). */
  describeChanges(before, after) {
    const lines = [];
    for (const name of FILTER_NAMES) {
      if (sameValues(before[name], after[name])) continue;
      lines.push(
        t("filters.changeLine", {
          filter: t(FILTER_LEGENDS[name]),
          now: this.valuesText(name, after[name]),
          before: this.valuesText(name, before[name]),
        }),
      );
    }
    return lines;
  }

  /** The always-on summary of the session's filters (and who set them). */
  showSummary() {
    const { filters, by } = this.shown;
    const el = $("filters-summary");
    const names = FILTER_NAMES.filter((name) => filters[name]);
    el.dataset.active = String(names.length);
    el.dataset.filters = canonical(filters);
    if (!names.length) {
      el.textContent = t("filters.summaryNone");
      el.title = t("filters.rule");
    } else {
      const parts = names.map((name) => `${t(FILTER_LEGENDS[name])}: ${this.valuesText(name, filters[name])}`);
      el.textContent = parts.join(" · ");
      el.title = `${parts.join("\n")}${by ? `\n${t("filters.setBy", { who: by })}` : ""}\n\n${t("filters.rule")}`;
    }
    $("filters-count").hidden = names.length === 0;
    $("filters-count").textContent = String(names.length);
  }

  /**
   * The session's filters as a view or the stream's `playback` event tells them. A change
   * this page did not send is announced, naming what changed and who changed it.
   */
  followFilters(filters, by, version) {
    if (filters === undefined || !this.shown || version < this.shown.version) return;
    const next = normalFilters(filters);
    const before = this.shown.filters;
    if (canonical(next) === canonical(before)) {
      this.shown.by = by ?? this.shown.by;
      this.shown.version = version;
      return;
    }
    this.shown = { filters: next, by: by ?? null, version };
    this.showSummary();
    if (this.sending !== null && this.sending === canonical(next)) return; // our own change
    const changes = this.describeChanges(before, next);
    $("filters-notice-text").textContent = t("filters.changedBy", {
      who: by ?? t("filters.someone"),
      changes: changes.join("; "),
    });
    $("filters-notice").hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      $("filters-notice").hidden = true;
    }, NOTICE_MS);
  }

  /** Tick the popover's boxes and chips to show `filters` (a normal form). */
  fillPopover(filters) {
    for (const fieldset of document.querySelectorAll("fieldset[data-filter]")) {
      const selected = filters[fieldset.dataset.filter];
      if (fieldset.dataset.search) {
        this.setChips(fieldset, selected ?? []);
        continue;
      }
      for (const input of fieldset.querySelectorAll("input")) {
        input.checked = Array.isArray(selected) && selected.includes(input.value);
      }
    }
  }

  /** The filters the popover says (a normal form): nothing or everything ticked = none. */
  popoverFilters() {
    const filters = {};
    for (const fieldset of document.querySelectorAll("fieldset[data-filter]")) {
      const name = fieldset.dataset.filter;
      if (fieldset.dataset.search) {
        const values = this.chipValues(fieldset);
        if (values.length) filters[name] = [...values].sort();
        continue;
      }
      const inputs = [...fieldset.querySelectorAll("input")];
      const checked = inputs.filter((i) => i.checked).map((i) => i.value);
      if (checked.length && checked.length < inputs.length) filters[name] = checked.sort();
    }
    return filters;
  }

  showFilters() {
    // Opened on what the page shows now: the version a change will be conditional on.
    this.base = { filters: this.shown.filters, version: this.app.clock.version ?? this.app.view.version };
    this.fillPopover(this.base.filters);
    $("filters-conflict").hidden = true;
    $("filters-problem").hidden = true;
    togglePopover("filters-popover", true);
  }

  /** Send the popover's filters, conditional on the version it was opened on. */
  async applyFilters() {
    if (!this.base) this.base = { filters: this.shown.filters, version: this.app.clock.version };
    const wanted = this.popoverFilters();
    $("filters-problem").hidden = true;
    const result = await this.sendFilters(wanted, this.base.version);
    if (result === "applied") {
      $("filters-conflict").hidden = true;
      toast(t("toast.filtersApplied"));
      togglePopover("filters-popover", false);
      this.base = null;
    }
  }

  /** One conditional set_filters; "applied", "conflict" (shown), or "refused" (shown). */
  async sendFilters(wanted, version) {
    const body = { action: "set_filters", filters: apiFilters(wanted), expected_version: version };
    this.sending = canonical(wanted);
    try {
      // In line with the other control calls (see control()), but the errors are handled here.
      const answer = this.queue.then(() => this.api.control(this.app.sessionId, body));
      this.queue = answer.catch(() => null);
      this.applyView(await answer);
      return "applied";
    } catch (error) {
      if (!(error instanceof ApiError)) {
        toast(t("toast.error", { msg: error.message }));
        return "refused";
      }
      if (error.status === 409 && error.problem?.current) {
        const current = error.problem.current;
        const theirs = normalFilters(current.filters);
        this.followFilters(current.filters, current.filters_by, current.version);
        if (canonical(theirs) === canonical(this.base.filters)) {
          // Only the clock moved meanwhile: nobody's filters are at stake.
          this.base = { filters: theirs, version: current.version };
          return this.sendFilters(wanted, current.version);
        }
        this.showConflict(current, wanted);
        return "conflict";
      }
      if (sessionGone(error)) {
        this.onFatal(t("toast.sessionGone"));
        return "refused";
      }
      this.showProblem(error);
      return "refused";
    } finally {
      this.sending = null;
    }
  }

  /** Another viewer changed the filters since the popover was opened: say what, and
   * offer this viewer's own change re-applied on top of theirs. */
  showConflict(current, wanted) {
    const theirs = normalFilters(current.filters);
    const mine = {};
    for (const name of FILTER_NAMES) {
      const changedByMe = !sameValues(this.base.filters[name], wanted[name]);
      const value = changedByMe ? wanted[name] : theirs[name];
      if (value) mine[name] = value;
    }
    $("filters-conflict-text").textContent = t("filters.conflict", { who: current.filters_by ?? t("filters.someone") });
    $("filters-conflict-theirs").replaceChildren(
      ...this.describeChanges(this.base.filters, theirs).map((line) => {
        const li = document.createElement("li");
        li.textContent = line;
        return li;
      }),
    );
    $("filters-conflict").hidden = false;
    this.conflict = { theirs, mine, version: current.version };
    this.fillPopover(mine); // what "re-apply" would send: theirs, with mine on top
  }

  async reapplyFilters() {
    if (!this.conflict) return;
    const { theirs, mine, version } = this.conflict;
    this.conflict = null;
    this.base = { filters: theirs, version };
    $("filters-conflict").hidden = true;
    await this.applyFilters();
  }

  keepTheirFilters() {
    if (!this.conflict) return;
    const { theirs, version } = this.conflict;
    this.conflict = null;
    this.base = { filters: theirs, version };
    this.fillPopover(theirs);
    $("filters-conflict").hidden = true;
  }

  /** A refused change (contradictory filters, bad values), inside the popover. */
  showProblem(error) {
    const box = $("filters-problem");
    const conflicts = error.problem?.conflicts;
    if (Array.isArray(conflicts) && conflicts.length) {
      const head = document.createElement("p");
      head.textContent = t("filters.contradiction");
      const list = document.createElement("ul");
      for (const conflict of conflicts) {
        const li = document.createElement("li");
        li.dataset.code = conflict.code;
        const known = t(`filters.conflict.${conflict.code}`, {
          filters: conflict.filters.map((name) => t(FILTER_LEGENDS[name] ?? name)).join(" + "),
        });
        li.textContent = known === `filters.conflict.${conflict.code}` ? conflict.detail : known;
        li.title = conflict.detail;
        list.append(li);
      }
      box.replaceChildren(head, list);
    } else {
      box.replaceChildren(document.createTextNode(problemText(error)));
    }
    box.hidden = false;
  }

  // --- sharing -------------------------------------------------------------------------

  /** Only the owner may share; members see the button disabled. */
  syncShare() {
    const owner = this.app.view.role === "owner";
    const button = $("share-button");
    button.disabled = !owner;
    button.title = owner ? t("share.title") : t("share.ownerOnly");
  }

  async share() {
    if (this.app.view.role !== "owner") return;
    try {
      const created = await this.api.share(this.app.sessionId);
      const link = new URL(location.pathname, location.origin); // this page, nothing else
      link.searchParams.set("join", created.share_token);
      $("share-link").value = link.toString();
      togglePopover("share-popover", true);
      $("share-link").select();
    } catch (error) {
      toast(`${t("share.failed")}: ${error.message}`);
    }
  }

  async copyShareLink() {
    const input = $("share-link");
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      input.select();
      document.execCommand("copy"); // the clipboard API was refused: the old way
    }
    $("share-copy").textContent = t("share.copied");
    setTimeout(() => {
      $("share-copy").textContent = t("share.copy");
    }, 1500);
  }

  // --- wiring --------------------------------------------------------------------------

  bindKeys() {
    document.addEventListener("keydown", (e) => {
      // Escape closes a popover even from its own fields (the share link is focused).
      if (e.key === "Escape") {
        if (!closePopovers()) {
          this.app.map.selectedId = null;
          this.app.map.highlightStand = null;
          this.app.panels.highlightFlight(null);
        }
        return;
      }
      if (e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      switch (e.key) {
        case " ":
          // Space is play/pause everywhere: not also a click on the focused button/checkbox.
          e.preventDefault();
          if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
          this.togglePlay();
          break;
        case "ArrowLeft":
        case "ArrowRight": {
          e.preventDefault();
          const direction = e.key === "ArrowRight" ? 1 : -1;
          if (this.app.clock.status === "paused") {
            this.step(direction * (e.shiftKey ? SHIFT_STEP_TICKS : STEP_TICKS));
          } else {
            this.seekBy(direction * (e.shiftKey ? SHIFT_KEY_SEEK_MS : KEY_SEEK_MS));
          }
          break;
        }
        case "+":
        case "=":
          e.preventDefault();
          this.changeSpeed(1);
          break;
        case "-":
        case "_":
          e.preventDefault();
          this.changeSpeed(-1);
          break;
        default:
          break;
      }
    });
    // A click (or tap) outside an open popover closes it; its own button toggles it.
    document.addEventListener("pointerdown", (e) => {
      for (const [id, opener] of Object.entries(POPOVERS)) {
        const popover = $(id);
        if (popover.hidden || popover.contains(e.target) || $(opener).contains(e.target)) continue;
        togglePopover(id, false);
      }
    });
  }

  bind() {
    const { app } = this;
    $("play").addEventListener("click", () => this.togglePlay());
    $("step-back").addEventListener("click", () => this.step(-1));
    $("step-forward").addEventListener("click", () => this.step(1));
    $("speed").addEventListener("change", (e) => {
      this.controlPending("speed", Number(e.target.value), { action: "set_speed", speed: Number(e.target.value) });
      e.target.blur(); // give the keyboard shortcuts back
    });
    $("range-apply").addEventListener("click", () => this.applyRange());
    for (const id of ["range-start", "range-end"]) {
      $(id).addEventListener("keydown", (e) => {
        if (e.key === "Enter") this.applyRange();
      });
    }
    $("range-full").addEventListener("click", () =>
      this.control({ action: "set_range", start: app.manifest.start, end: app.manifest.end }),
    );
    $("loop-toggle").addEventListener("change", (e) => this.control({ action: "set_loop", loop: e.target.checked }));
    $("fit-range").addEventListener("change", (e) => {
      app.timeline.zoomToRange = e.target.checked;
    });
    $("jump-flight").addEventListener("change", (e) => {
      const option = e.target.selectedOptions[0];
      if (option && option.dataset.target) {
        // The board marks the flight and scrolls to it once the seek has landed.
        app.panels.highlightFlight(option.value, Number(option.dataset.target));
        app.map.highlightStand = option.dataset.stand || null;
        this.seek(Number(option.dataset.target));
      }
      e.target.value = "";
      e.target.blur();
    });
    $("filters-button").addEventListener("click", () => {
      if ($("filters-popover").hidden) this.showFilters();
      else togglePopover("filters-popover", false);
    });
    $("filters-apply").addEventListener("click", () => this.applyFilters());
    $("filters-clear").addEventListener("click", () => this.fillPopover({}));
    $("filters-reapply").addEventListener("click", () => this.reapplyFilters());
    $("filters-keep").addEventListener("click", () => this.keepTheirFilters());
    for (const fieldset of document.querySelectorAll("fieldset[data-search]")) {
      const input = fieldset.querySelector("input");
      fieldset.querySelector("[data-add]").addEventListener("click", () => this.addSearched(fieldset));
      input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") {
          e.preventDefault();
          this.addSearched(fieldset);
        }
      });
      input.addEventListener("input", () => input.setCustomValidity(""));
    }
    $("share-button").addEventListener("click", () => this.share());
    $("share-copy").addEventListener("click", () => this.copyShareLink());
    for (const button of document.querySelectorAll("[data-close]")) {
      button.addEventListener("click", () => togglePopover(button.dataset.close, false));
    }
    app.timeline.onSeek = (position) => this.seek(position);
    this.bindKeys();
  }

  /** After a language switch. */
  relabel() {
    this.relabelFilters();
    this.fillSearchOptions();
    this.showSummary();
    this.fillJumpFlights();
    this.syncShare();
    this.sync();
  }
}
