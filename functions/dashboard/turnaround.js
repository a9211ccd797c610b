// The turnaround view (issue #19 item 2): a Gantt of one aircraft's visit to a stand, as the
// history API computes it (GET …/turnarounds/{flight}): per task a planned bar and an
// actual bar, the part after the planned end marked late, the critical path to off-block
// marked, a playhead at the replay clock. A bar seeks to its start and selects its
// vehicle. Nothing is derived here that the API did not say: the page draws its answer.

import { label, t } from "./i18n.js";
import { standText } from "./map.js";

const PAD_MS = 5 * 60_000;
const LABEL_PX = 110; // style.css .ta-row's first column

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class TurnaroundView {
  /**
   * @param {HTMLElement} root the (hidden) section the view draws into
   * @param {object} deps {api, time: AirportTime, airport, date, onSeek(ms), onPickVehicle(id)}
   */
  constructor(root, deps) {
    this.root = root;
    this.deps = deps;
    this.document = null;
    this.span = null;
    this.playhead = null;
    this.request = 0;
    this.errorKey = "turnaround.error";
  }

  /** Open the turnaround of `flight` (a leg id): fetch it, draw it. */
  open(flight) {
    const { airport, date } = this.deps;
    return this.load(`/airports/${airport}/days/${date}/turnarounds/${encodeURIComponent(flight)}`);
  }

  /** Fetch the history document at `path` and draw it (the latest call wins). */
  async load(path) {
    const request = ++this.request;
    const { api } = this.deps;
    this.root.hidden = false;
    this.root.dataset.state = "loading";
    try {
      const document = await api.request("GET", path);
      if (request !== this.request) return; // a later click won
      this.document = document;
      this.draw();
      this.root.dataset.state = "ready";
    } catch (error) {
      if (request !== this.request) return;
      this.root.replaceChildren(el("p", "muted", t(this.errorKey, { msg: error.message })));
      this.root.dataset.state = "error";
    }
  }

  close() {
    this.request += 1;
    this.root.hidden = true;
    this.document = null;
    this.root.replaceChildren();
  }

  /** Where `ms` falls on the chart, in percent. */
  x(ms) {
    const [lo, hi] = this.span;
    return (100 * (ms - lo)) / (hi - lo);
  }

  /** A line over the whole chart at `ms` (the tracks start after the label column). */
  overlayLeft(ms) {
    return `calc(${LABEL_PX}px + (100% - ${LABEL_PX}px) * ${(this.x(ms) / 100).toFixed(5)})`;
  }

  draw() {
    const doc = this.document;
    const time = this.deps.time;
    const moments = [];
    for (const task of doc.tasks) {
      for (const k of ["planned_start", "planned_end", "started", "completed", "arrived"]) {
        if (task[k] !== null) moments.push(task[k]);
      }
    }
    for (const leg of [doc.arrival, doc.departure]) {
      if (leg) moments.push(leg.scheduled, ...(leg.block !== null ? [leg.block] : []));
    }
    this.span = [Math.min(...moments) - PAD_MS, Math.max(...moments) + PAD_MS];
    const chain = doc.critical_path ? doc.critical_path.chain : [];
    const critical = new Set(chain.filter((e) => e.kind === "task").map((e) => e.id));

    const head = el("header", "ta-head");
    const names = [doc.arrival, doc.departure].filter(Boolean).map((leg) => leg.callsign);
    head.append(el("h3", "", `${names.join(" → ")} · ${t("turnaround.stand")} ${standText(doc.stand)}`));
    if (doc.critical_path) {
      const minutes = Math.round(doc.critical_path.delay_ms / 60_000);
      const delay = el("span", minutes > 15 ? "chip late" : "chip", t("turnaround.offBlockDelay", { n: minutes }));
      delay.dataset.testid = "turnaround-delay";
      head.append(delay);
    }
    const links = this.chainList(chain);
    head.append(this.closeButton("turnaround.close", "turnaround-close"));

    const chart = el("div", "ta-chart");
    chart.dataset.testid = "turnaround-gantt";
    for (const leg of [doc.arrival, doc.departure]) {
      if (!leg || leg.block === null) continue;
      const mark = el("div", "ta-block");
      mark.style.left = this.overlayLeft(leg.block);
      mark.title = `${t(leg.movement === "arrival" ? "turnaround.onBlock" : "turnaround.offBlock")} ${time.hm(leg.block)}`;
      chart.append(mark);
    }
    for (const task of doc.tasks) {
      const row = el("div", "ta-row");
      row.dataset.testid = "turnaround-task";
      row.dataset.taskId = task.id;
      row.classList.toggle("critical", critical.has(task.id));
      const name = el("span", "ta-label", label("task_type", task.task_type));
      name.title = `${task.id} · ${task.vehicle_id ?? "—"}`;
      const track = el("div", "ta-track");
      track.append(this.plannedBar(task));
      if (task.started !== null) {
        const actual = this.actualBar(task, task.completed ?? this.span[1], "turnaround-bar");
        if (task.travel_ms !== null) {
          actual.title += ` · ${t("turnaround.travel", { n: Math.round(task.travel_ms / 60_000) })}`;
        }
        actual.addEventListener("click", () => {
          this.deps.onSeek(task.started);
          if (task.vehicle_id) this.deps.onPickVehicle(task.vehicle_id);
        });
        track.append(actual);
      }
      row.append(name, track);
      chart.append(row);
    }
    this.playhead = el("div", "ta-playhead");
    this.playhead.dataset.testid = "turnaround-playhead";
    chart.append(this.playhead);

    const legend = el("p", "muted ta-legend", t("turnaround.legend"));
    this.root.replaceChildren(...[head, links, chart, legend].filter(Boolean));
  }

  /** The header's × button: closes the view. */
  closeButton(titleKey, testId) {
    const closer = el("button", "tool", "×");
    closer.type = "button";
    closer.title = t(titleKey);
    closer.dataset.testid = testId;
    closer.addEventListener("click", () => this.close());
    return closer;
  }

  /** A task's planned window as an outlined bar on its track. */
  plannedBar(task) {
    const time = this.deps.time;
    const planned = el("div", "ta-planned");
    planned.style.left = `${this.x(task.planned_start)}%`;
    planned.style.width = `${this.x(task.planned_end) - this.x(task.planned_start)}%`;
    planned.title = `${t("turnaround.planned")} ${time.hm(task.planned_start)}–${time.hm(task.planned_end)}`;
    return planned;
  }

  /** A started task's actual bar from its start to `end`, red past its planned end. */
  actualBar(task, end, testId) {
    const time = this.deps.time;
    const actual = el("button", "ta-actual");
    actual.type = "button";
    actual.dataset.testid = testId;
    actual.style.left = `${this.x(task.started)}%`;
    actual.style.width = `${Math.max(0.4, this.x(end) - this.x(task.started))}%`;
    const late = task.end_delay_ms !== null ? Math.round(task.end_delay_ms / 60_000) : null;
    actual.title = `${t("turnaround.actual")} ${time.hm(task.started)}–${task.completed ? time.hm(task.completed) : "…"}`
      + (late !== null && late > 0 ? ` · ${t("turnaround.late", { n: late })}` : "");
    if (end > task.planned_end) {
      const overrun = el("span", "ta-late");
      const from = Math.max(task.planned_end, task.started);
      overrun.style.left = `${(100 * (from - task.started)) / (end - task.started)}%`;
      actual.append(overrun);
      actual.classList.add("late");
    }
    return actual;
  }

  /** The critical path as read, first cause first: each link and the minutes it added
   * (the API's `added_ms`); a task link seeks to its task and selects its vehicle, a
   * late vehicle's link selects that vehicle. */
  chainList(chain) {
    if (!chain.length) return null;
    const list = el("ol", "ta-chain");
    list.dataset.testid = "turnaround-chain";
    list.title = t("turnaround.chainTitle");
    const tasks = new Map((this.document?.tasks ?? []).map((task) => [task.id, task]));
    for (const [i, link] of chain.entries()) {
      const minutes = Math.round(link.added_ms / 60_000);
      const task = link.kind === "task" ? tasks.get(link.id) : null;
      const what = task ? label("task_type", task.task_type) : link.id;
      const item = el("li", minutes > 0 ? "late" : "",
        `${t(`turnaround.link.${link.kind}`, { id: what })} ${minutes > 0 ? "+" : ""}${minutes} min`);
      item.dataset.testid = "turnaround-link";
      item.dataset.kind = link.kind;
      item.dataset.id = link.id;
      item.dataset.addedMs = String(link.added_ms);
      // A late vehicle is the cause of the task after it: one click seeks there too.
      const target = task ?? (link.kind === "vehicle_arrival" ? tasks.get(chain[i + 1]?.id) : null);
      if (target && target.started !== null) {
        item.classList.add("link");
        item.addEventListener("click", () => {
          this.deps.onSeek(target.started);
          const vehicle = link.kind === "vehicle_arrival" ? link.id : target.vehicle_id;
          if (vehicle) this.deps.onPickVehicle(vehicle);
        });
      }
      list.append(item);
    }
    return list;
  }

  /** Move the playhead to the replay clock (every frame; cheap). */
  update(clock) {
    if (!this.playhead || !this.span) return;
    const inside = clock >= this.span[0] && clock <= this.span[1];
    this.playhead.hidden = !inside;
    if (inside) this.playhead.style.left = this.overlayLeft(clock);
    this.playhead.dataset.at = String(clock);
  }
}
