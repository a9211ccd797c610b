// Compare mode (issue 20 item 6): two dispatch runs ("variants") of one service day played
// in sync, side by side, with their decision quality and its difference.
//
// One session, one playback clock: the session plays its own variant (the left map, the
// page's usual stream) and names a second one (`compare`, set when the session is made);
// a second stream of the same session, `…/stream?variant=<compare>`, feeds the right map.
// So play, pause, seek, speed, range and filters — one control bar, one session — act on
// both streams at once: the server renders both from the same playback clock and
// timeline, and no pair of clients can drift apart. Pan and zoom the left map; the right
// one follows it (the same view of the same layout, so a vehicle's two positions line up).
//
// The panel over the right map is the KPI comparison: GET …/decision-quality?variant=&
// compare= for the window the KPI panel uses (the session's range, at most 12 h) narrowed
// to the hours the day recorded activity in, each figure for both variants and the
// server's difference (right minus left).

import { t } from "./i18n.js";
import { ApronMap } from "./map.js";
import { mapOverlays } from "./overlays.js";
import { ReplayState } from "./state.js";
import { ReplayStream } from "./stream.js";

const $ = (id) => document.getElementById(id);

// The compared figures, in the panel's order: how each is shown, and which way is better
// (+1: higher, -1: lower, 0: neither), for the difference's colour.
const FIGURES = [
  ["on_time_share", "share", 1],
  ["regret_mean_ms", "minutes", -1],
  ["regret_p90_ms", "minutes", -1],
  ["reassignments_per_100_tasks", "rate", -1],
  ["escalations_no_vehicle", "count", -1],
  ["assignments", "count", 0],
];

function shown(value, how, signed = false) {
  if (value === null || value === undefined) return "—";
  const sign = signed && value > 0 ? "+" : "";
  if (how === "share") return `${sign}${Math.round(value * 1000) / 10} %`;
  if (how === "minutes") return `${sign}${(value / 60000).toFixed(1)} min`;
  if (how === "rate") return `${sign}${value.toFixed(2)}`;
  return `${sign}${value}`;
}

function el(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** [start, end) of the day's recorded activity (the histogram's first to last bin with a
 * task event), or the whole day when the histogram shows none. */
function activeSpan(manifest) {
  const h = manifest.histogram;
  const active = h.task_events.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
  if (!active.length) return { start: manifest.start, end: manifest.end };
  return { start: h.start + active[0] * h.bin_ms, end: h.start + (active[active.length - 1] + 1) * h.bin_ms };
}

/** The published variants of a day (default first), or [] when they cannot be listed. */
export async function dayVariants(api, airport, date) {
  try {
    const path = `/airports/${encodeURIComponent(airport)}/days/${encodeURIComponent(date)}/variants`;
    return (await api.request("GET", path)).variants.map((v) => v.variant);
  } catch (error) {
    console.warn("dispatch-replay: the day's variants did not load", error);
    return [];
  }
}

export class CompareView {
  /** @param {object} deps {api, app}: the page's API client and shared state */
  constructor({ api, app, onSplit = () => {} }) {
    this.api = api;
    this.app = app;
    this.onSplit = onSplit; // the pane is split: what sizes itself to the map, again
    this.variants = [];
    this.active = false;
    this.map = null;
    this.state = null;
    this.stream = null;
    this.position = null; // replay time of the right stream's last frame or snapshot
    this.quality = null; // the last comparison shown (test hook)
    this.qualityWindow = null;
    this.request = 0;
  }

  /** The Compare button (shown when the day has another variant), and compare mode if
   * the session names a variant to compare with. */
  async bind() {
    const { app } = this;
    const button = $("compare-button");
    this.variants = await dayVariants(this.api, app.manifest.airport.airport_id, app.manifest.service_date);
    const own = app.view.variant ?? "default";
    const others = this.variants.filter((v) => v !== own);
    button.hidden = !(app.view.compare || others.length);
    button.setAttribute("aria-pressed", app.view.compare ? "true" : "false");
    this.relabel();
    button.addEventListener("click", () => this.toggle(others[0]));
    if (app.view.compare) this.open(own, app.view.compare);
    window.__replayCompare = () => this.model();
  }

  /** Test hook: what compare mode shows — its variants, the right map's last frame (its
   * replay time and movers as drawn, like window.__replayModel's) and the comparison. */
  model() {
    return {
      active: this.active,
      variants: this.variants,
      left: this.left ?? null,
      right: this.right ?? null,
      position: this.position,
      transport: this.stream ? this.stream.transport : null,
      at: this.map ? this.map.lastModel.at : null,
      movers: this.map ? this.map.lastModel.movers : {},
      view: this.map ? this.map.viewModel() : null,
      quality: this.quality,
    };
  }

  /** Leave or enter compare mode: a new session at the same instant (one with a second
   * variant, or one without). */
  toggle(other) {
    const { app } = this;
    const url = new URL(location.href);
    url.searchParams.delete("session");
    url.searchParams.set("airport", app.manifest.airport.airport_id);
    url.searchParams.set("day", app.manifest.service_date);
    url.searchParams.set("t", String(Math.round(app.clock.now())));
    if (app.view.compare) url.searchParams.delete("compare");
    else url.searchParams.set("compare", other);
    location.assign(url);
  }

  relabel() {
    const button = $("compare-button");
    const label = button.querySelector("span");
    label.textContent = t(this.app.view.compare ? "compare.single" : "compare.button");
    button.title = t(this.app.view.compare ? "compare.singleTitle" : "compare.buttonTitle");
    if (!this.active) return;
    this.labels[0].textContent = t("compare.left", { variant: this.left });
    this.labels[1].textContent = t("compare.right", { variant: this.right });
    this.follow.textContent = t("compare.follows", { variant: this.left });
    this.renderQuality();
  }

  /** Split the map pane: the page's map on the left, the compared variant's on the right. */
  open(left, right) {
    const { app } = this;
    this.active = true;
    this.left = left;
    this.right = right;
    const pane = app.map.canvas.parentElement;
    pane.classList.add("comparing");
    const halfA = el("div", { class: "compare-half compare-a", "data-testid": "compare-left" });
    const halfB = el("div", { class: "compare-half compare-b", "data-testid": "compare-right" });
    // The left half takes the page's map canvas and its cached layout layer (ApronMap
    // sizes a canvas to its parent): the map's handlers and overlays stay as they were.
    pane.prepend(halfA, halfB);
    halfA.append(app.map.staticLayer.canvas, app.map.canvas);
    const canvas = el("canvas", { id: "map-compare", "data-testid": "compare-map" });
    halfB.append(canvas);
    this.labels = [
      el("div", { class: "compare-label", "data-testid": "compare-label-left" }),
      el("div", { class: "compare-label", "data-testid": "compare-label-right" }),
    ];
    halfA.append(this.labels[0]);
    halfB.append(this.labels[1]);
    this.panel = el("div", { class: "compare-kpis", "data-testid": "compare-kpis" });
    halfB.append(this.panel);
    this.folded = null; // the reader's choice (the panel's title): null, the panel's size decides
    new ResizeObserver(() => this.fold()).observe(halfB);
    // The flight board, tasks and decisions are the session's own variant's (the left
    // map's): said above them, and marked in the left map's colour, so no one reads the
    // right map's vehicles against the left's tasks without knowing it.
    const side = document.querySelector(".side");
    side.classList.add("comparing");
    this.follow = el("div", { class: "compare-follow", role: "note", "data-testid": "compare-follow" });
    side.prepend(this.follow);
    app.map.resize();
    this.onSplit();
    this.map = new ApronMap(canvas, app.manifest); // its view follows the left map's (draw)
    // One view for both maps: the left map's initial view keeps clear of the overlays over
    // either (the comparison covers the right map's bottom); each map's labels and scale
    // bar keep clear of its own.
    app.map.followers.push(this.map);
    this.map.onCoversChange = () => {
      if (!app.map.userMoved) app.map.fit();
    };
    for (const map of [app.map, this.map]) map.watchCovers(mapOverlays());
    this.state = new ReplayState((lat, lon) => this.map.project(lat, lon));
    this.stream = new ReplayStream({
      api: this.api,
      sessionId: app.sessionId,
      url: app.view.stream.url,
      variant: right,
      onEvent: (name, data) => this.onEvent(name, data),
      onTransport: () => {},
    });
    this.stream.start();
    this.relabel();
    this.refreshQuality();
  }

  tickStart(time) {
    const { manifest } = this.app;
    const tick = manifest.config.tick_ms;
    return time - ((((time - manifest.start) % tick) + tick) % tick);
  }

  /** The right stream's events: its replay state only (the clock is the left stream's). */
  onEvent(name, data) {
    const state = this.state;
    switch (name) {
      case "snapshot":
        state.applySnapshot(data);
        break;
      case "vehicle_update":
        state.applyVehicles(data.t, data.vehicles);
        state.expireTasks(this.tickStart(data.t));
        break;
      case "aircraft_update":
        state.applyAircraft(data.t, data.aircraft);
        break;
      case "task_update":
        state.applyTasks(data.t, data.tasks);
        state.expireTasks(this.tickStart(data.t));
        break;
      case "flight_update":
        state.applyFlights(data.t, data.flights);
        break;
      case "stand_update":
        state.applyDerived("stands", data.t, data.stands);
        break;
      case "vehicle_task_update":
        state.applyDerived("vehicle_tasks", data.t, data.vehicle_tasks);
        break;
      case "notification":
        state.applyNotifications(data.notifications);
        break;
      case "dispatch_decision":
        state.applyDecisions(data.t, data.decisions);
        break;
      default:
        return;
    }
    if (data && typeof data.t === "number") this.position = data.t;
  }

  /** One animation frame: the right map at the time the left one shows, in its view. */
  draw(position) {
    if (!this.active) return;
    const { app } = this;
    const view = this.map;
    if (view.scale !== app.map.scale || view.tx !== app.map.tx || view.ty !== app.map.ty) {
      view.scale = app.map.scale;
      view.tx = app.map.tx;
      view.ty = app.map.ty;
      view.userMoved = true;
    }
    view.draw(this.state, { trails: app.trails, vehicleTypes: app.vehicleTypes, dataTime: position });
    // Measured again when the KPI window moves by a minute or more (it follows the clock
    // when the range is longer than 12 h), not at every frame's millisecond.
    const window = this.window();
    const last = this.qualityWindow;
    if (!last || Math.abs(last.start - window.start) >= 60000 || Math.abs(last.end - window.end) >= 60000) {
      this.refreshQuality();
    }
  }

  /** The KPI panel's window, narrowed to the day's recorded activity (hours without a
   * task event hold no decision: no need to read them). */
  window() {
    const window = this.app.kpis.window();
    const span = activeSpan(this.app.manifest);
    const start = Math.max(window.start, span.start);
    const end = Math.min(window.end, span.end);
    return start < end ? { start, end } : window;
  }

  /** The decision quality of both variants over that window, and the difference. */
  async refreshQuality() {
    const { app } = this;
    const window = this.window();
    this.qualityWindow = window;
    const request = ++this.request;
    const query = new URLSearchParams({
      start: String(window.start),
      end: String(window.end),
      variant: this.left,
      compare: this.right,
      limit: "0",
    });
    const path = `/airports/${encodeURIComponent(app.manifest.airport.airport_id)}/decision-quality?${query}`;
    try {
      const quality = await this.api.request("GET", path);
      if (request !== this.request) return;
      this.quality = quality;
    } catch (error) {
      if (request !== this.request) return;
      console.warn("dispatch-replay: the comparison did not load", error);
      this.quality = { failed: true };
    }
    this.renderQuality();
  }

  renderQuality() {
    const quality = this.quality;
    if (!this.panel) return;
    if (!quality) {
      this.panel.replaceChildren(el("p", { class: "muted" }, t("compare.loading")));
      return;
    }
    if (quality.failed) {
      this.panel.replaceChildren(el("p", { class: "muted" }, t("compare.failed")));
      return;
    }
    // The title folds the table away and back, as the legend's does (a half map at
    // 1024 px is smaller than the table).
    const head = el("button", { type: "button", class: "compare-kpis-head", "data-testid": "compare-toggle" });
    head.addEventListener("click", () => {
      this.folded = this.panel.dataset.collapsed !== "true";
      this.fold();
    });
    const table = el("table", { class: "compare-table", "data-testid": "compare-table" });
    const header = el("tr");
    header.append(el("th"), el("th", {}, this.left), el("th", {}, this.right), el("th", {}, t("compare.difference")));
    table.append(header);
    for (const [name, how, direction] of FIGURES) {
      const a = quality[name];
      const b = quality.compare[name];
      const diff = quality.difference[name];
      const row = el("tr", {
        "data-figure": name,
        "data-left": a ?? "",
        "data-right": b ?? "",
        "data-difference": diff ?? "",
      });
      const sign = diff === null || diff === 0 ? 0 : Math.sign(diff) * direction;
      const better = sign > 0 ? "better" : sign < 0 ? "worse" : "";
      row.append(
        el("th", {}, t(`compare.figure.${name}`)),
        el("td", { class: "mono" }, shown(a, how)),
        el("td", { class: "mono" }, shown(b, how)),
        el("td", { class: `mono diff ${better}` }, shown(diff, how, true)),
      );
      table.append(row);
    }
    this.panel.replaceChildren(head, table);
    this.fold();
  }

  /** Fold or unfold the comparison's table: as the reader chose with its title, else
   * folded where open it would cover much of its map (a half map in a small window). */
  fold() {
    const head = this.panel?.querySelector(".compare-kpis-head");
    if (!head || !this.quality || this.quality.failed) return;
    let folded = this.folded;
    if (folded === null) {
      const half = this.panel.parentElement;
      this.panel.dataset.collapsed = "false"; // measured open
      folded = this.panel.offsetHeight > 0.45 * half.clientHeight || this.panel.offsetWidth > half.clientWidth - 24;
    }
    this.panel.dataset.collapsed = String(folded);
    const time = this.app.time;
    const title = t("compare.title", {
      start: time.hms(this.quality.start).slice(0, 5),
      end: time.hms(this.quality.end).slice(0, 5),
    });
    head.textContent = `${folded ? "▸" : "▾"} ${title}`;
    head.title = t(folded ? "compare.show" : "compare.hide");
    head.setAttribute("aria-expanded", String(!folded));
  }
}
