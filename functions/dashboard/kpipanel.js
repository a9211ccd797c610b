// The KPI panel (issue #19 item 6): the history API's KPIs (GET …/kpis, docs/api.md "KPIs")
// for the session's range and filters, as small charts. The charts are inline SVG drawn
// here: the page is static files with no build step and must work offline (no CDN), and
// four bar charts need no charting library — a few elements each, crisp at any zoom,
// styled by the page's CSS, readable by tests through their data attributes.

import { label, t } from "./i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const MAX_KPI_MS = 12 * 3_600_000; // the API's window cap (a shift)
const ROW = 16; // px per bar row
const LABEL_W = 112;
const BAR_W = 170;
const VALUE_W = 96;

const $ = (id) => document.getElementById(id);

function svg(tag, attributes = {}, text = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  return el;
}

const minutes = (ms) => (ms === null || ms === undefined ? "—" : `${Math.round(ms / 60000)}`);
const percent = (share) => (share === null || share === undefined ? "—" : `${Math.round(share * 100)} %`);

/**
 * A horizontal bar chart. rows: [{name, values: [{v, cls, text}]}]; the bars of a row are
 * drawn over each other, the first the longest (e.g. p90 behind p50).
 */
function barChart(testId, rows, max, unit) {
  const height = rows.length * ROW + 4;
  const chart = svg("svg", {
    class: "kpi-chart",
    viewBox: `0 0 ${LABEL_W + BAR_W + VALUE_W} ${height}`,
    width: LABEL_W + BAR_W + VALUE_W,
    height,
    role: "img",
    "data-testid": testId,
  });
  const scale = max > 0 ? BAR_W / max : 0;
  rows.forEach((row, i) => {
    const y = i * ROW + 2;
    const g = svg("g", { "data-row": row.key ?? row.name });
    g.append(svg("text", { x: LABEL_W - 6, y: y + 11, class: "kpi-label", "text-anchor": "end" }, row.name));
    g.append(svg("rect", { x: LABEL_W, y: y + 2, width: BAR_W, height: ROW - 6, class: "kpi-track" }));
    for (const value of row.values) {
      const width = Math.max(0, Math.min(BAR_W, (value.v ?? 0) * scale));
      g.append(svg("rect", { x: LABEL_W, y: y + 2, width, height: ROW - 6, class: value.cls, "data-value": value.v ?? "" }));
    }
    g.append(svg("text", { x: LABEL_W + BAR_W + 6, y: y + 11, class: "kpi-value" }, `${row.text}${unit}`));
    chart.append(g);
  });
  return chart;
}

export class KpiPanel {
  /** @param {object} deps {api, app} */
  constructor(deps) {
    this.api = deps.api;
    this.app = deps.app;
    this.request = 0;
    this.last = null; // the last KPI document shown (test hook)
  }

  /** The window asked: the session's range, or its 12 h around the clock when longer. */
  window() {
    const clock = this.app.clock;
    let start = clock.rangeStart;
    let end = clock.rangeEnd;
    if (end - start > MAX_KPI_MS) {
      start = Math.max(clock.rangeStart, Math.min(clock.now() - MAX_KPI_MS / 2, clock.rangeEnd - MAX_KPI_MS));
      end = start + MAX_KPI_MS;
    }
    return { start: Math.round(start), end: Math.round(end) };
  }

  /** The session's filters the KPIs take (stands, task types, vehicle types). */
  filters() {
    const shown = this.app.controls.shown?.filters ?? {};
    return { stand: shown.stands ?? [], task_type: shown.task_types ?? [], vehicle_type: shown.vehicle_types ?? [] };
  }

  /** Each frame: an open panel follows a change of the session's range or filters. */
  follow() {
    if ($("kpi-popover").hidden) return;
    const clock = this.app.clock;
    const key = `${clock.rangeStart}|${clock.rangeEnd}|${JSON.stringify(this.filters())}`;
    if (this.key !== undefined && key !== this.key) this.refresh();
    this.key = key;
  }

  toggle() {
    const panel = $("kpi-popover");
    panel.hidden = !panel.hidden;
    this.key = undefined;
    if (!panel.hidden) this.refresh();
  }

  async refresh() {
    const panel = $("kpi-popover");
    const body = $("kpi-body");
    const request = ++this.request;
    const window = this.window();
    const filters = this.filters();
    panel.dataset.state = "loading";
    $("kpi-window").textContent = `${this.app.time.hm(window.start)}–${this.app.time.hm(window.end)}`;
    const ignored = ["vehicle_ids", "flights", "task_statuses"].some((k) => (this.app.controls.shown?.filters?.[k] ?? []).length);
    $("kpi-note").textContent = ignored ? t("kpis.ignored") : "";
    try {
      const kpis = await this.api.kpis(this.app.manifest.airport.airport_id, window.start, window.end, filters);
      if (request !== this.request) return;
      this.last = kpis;
      body.replaceChildren(...this.render(kpis));
      panel.dataset.state = "ready";
    } catch (error) {
      if (request !== this.request) return;
      body.replaceChildren(Object.assign(document.createElement("p"), { className: "empty", textContent: error.message }));
      panel.dataset.state = "error";
    }
  }

  render(kpis) {
    const section = (title, ...content) => {
      const el = document.createElement("section");
      el.className = "kpi-section";
      const h = document.createElement("h4");
      h.textContent = title;
      el.append(h, ...content);
      return el;
    };
    const d = kpis.departures;
    const otp = barChart(
      "kpi-otp",
      [{ key: "on_time", name: t("kpis.onTime", { n: d.on_time, of: d.count }), values: [{ v: d.on_time_share, cls: "kpi-bar ok" }], text: percent(d.on_time_share) }],
      1,
      "",
    );
    const delays = document.createElement("p");
    delays.className = "kpi-line mono";
    delays.setAttribute("data-testid", "kpi-departures");
    delays.dataset.count = String(d.count);
    delays.textContent = t("kpis.departureDelay", { p50: minutes(d.delay_p50_ms), p90: minutes(d.delay_p90_ms) });

    const types = Object.entries(kpis.tasks);
    const maxDelay = Math.max(1, ...types.map(([, v]) => (v.start_delay_p90_ms ?? 0) / 60000));
    const taskChart = barChart(
      "kpi-task-delays",
      types.map(([type, v]) => ({
        key: type,
        name: label("task_type", type),
        values: [
          { v: Math.max(0, (v.start_delay_p90_ms ?? 0) / 60000), cls: "kpi-bar p90" },
          { v: Math.max(0, (v.start_delay_p50_ms ?? 0) / 60000), cls: "kpi-bar p50" },
        ],
        text: `${minutes(v.start_delay_p50_ms)} / ${minutes(v.start_delay_p90_ms)}`,
      })),
      maxDelay,
      t("kpis.unitMin"),
    );
    const utilChart = barChart(
      "kpi-utilisation",
      Object.entries(kpis.utilisation).map(([type, v]) => ({
        key: type,
        name: label("vehicle_type", type),
        values: [
          { v: v.busy_share, cls: "kpi-bar busy" },
          { v: v.servicing_share, cls: "kpi-bar servicing" },
        ],
        text: percent(v.busy_share),
      })),
      1,
      "",
    );
    const counts = document.createElement("p");
    counts.className = "kpi-line mono";
    counts.setAttribute("data-testid", "kpi-counts");
    counts.dataset.conflicts = String(kpis.conflicts);
    counts.dataset.reassignments = String(kpis.reassignments);
    counts.textContent = t("kpis.counts", { conflicts: kpis.conflicts, reassignments: kpis.reassignments });
    return [
      section(t("kpis.departures"), otp, delays),
      section(t("kpis.events"), counts),
      section(t("kpis.taskDelays"), taskChart, legendLine([["p50", t("kpis.p50")], ["p90", t("kpis.p90")]])),
      section(t("kpis.utilisation"), utilChart, legendLine([["busy", t("kpis.busy")], ["servicing", t("kpis.servicing")]])),
    ];
  }

  bind() {
    $("kpi-button").addEventListener("click", () => this.toggle());
    $("kpi-refresh").addEventListener("click", () => this.refresh());
    $("kpi-close").addEventListener("click", () => {
      $("kpi-popover").hidden = true;
    });
  }
}

function legendLine(items) {
  const p = document.createElement("p");
  p.className = "kpi-legend";
  for (const [cls, text] of items) {
    const swatch = document.createElement("span");
    swatch.className = `kpi-swatch ${cls}`;
    const span = document.createElement("span");
    span.textContent = text;
    p.append(swatch, span);
  }
  return p;
}
