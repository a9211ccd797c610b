// The dispatcher's decisions beside the notifications: a feed of the decisions the stream
// delivered, and the decision behind a selected task (click a task row or a feed entry) —
// who was chosen, by which rule, and every candidate it considered with its ETA at the
// stand, on-time verdict and, for an excluded one, the reason. Rows come from the stream
// as stored (docs/api.md, `dispatch_decision`); nothing is recomputed here.

import { label, t } from "./i18n.js";

const FEED_SHOWN = 30;
const QUALITY_WINDOW_MS = 3 * 3600000; // measured over the 3 h before the shown time
const QUALITY_REFRESH_MS = 5 * 60000; // re-measured when the shown time moved this far
const QUALITY_MIN_WALL_MS = 10000;
const CHOSEN = "#facc15";
const ELIGIBLE = "rgba(125, 211, 252, 0.9)";
const EXCLUDED = "rgba(148, 163, 184, 0.55)";
const CHIP = "rgba(10, 15, 24, 0.88)"; // under a candidate's label, over the layout's

/**
 * Draw a decision's candidates on the map where the decision saw them (their recorded
 * position: where each one's drive would start), a line from each to the task's stand
 * labelled with its ETA there; the chosen one highlighted, excluded ones grey with their
 * reason. Records what it drew in `map.lastModel.decision` (test hook).
 */
export function drawDecision(ctx, map, decision, time) {
  const stand = map.layout.stands.find((s) => s.stand_id === decision.stand);
  const drawn = [];
  map.lastModel.decision = { task_id: decision.id, stand: decision.stand, candidates: drawn };
  if (!stand) return;
  const target = map.screen(stand.at);
  ctx.save();
  ctx.font = `10px ui-monospace, Menlo, Consolas, monospace`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  // The selected decision is on top: its labels go on a dark chip over stand numbers and
  // callsigns, apart from each other and from the overlays and scale bar (the chosen one
  // first, then by ETA); one with no room is left to the card's table.
  const grid = map.coverGrid();
  const order = [...(decision.candidates ?? [])].sort(
    (a, b) =>
      (b.vehicle_id === decision.vehicle_id) - (a.vehicle_id === decision.vehicle_id) ||
      (a.eta ?? Infinity) - (b.eta ?? Infinity),
  );
  for (const c of order) {
    if (c.lat == null || c.lon == null) continue;
    const at = map.screen(map.project(c.lat, c.lon));
    const chosen = c.vehicle_id === decision.vehicle_id;
    const color = chosen ? CHOSEN : c.excluded != null ? EXCLUDED : ELIGIBLE;
    ctx.strokeStyle = color;
    ctx.lineWidth = chosen ? 2.5 : 1.2;
    ctx.setLineDash(chosen ? [] : c.excluded != null ? [2, 4] : [6, 4]);
    ctx.beginPath();
    ctx.moveTo(at.x, at.y);
    ctx.lineTo(target.x, target.y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.beginPath();
    ctx.arc(at.x, at.y, chosen ? 6 : 4, 0, Math.PI * 2);
    ctx.fill();
    const eta = c.eta == null ? "" : time.hms(c.eta);
    const text = `${c.vehicle_id} ${eta}${c.excluded != null ? ` (${c.excluded})` : ""}`;
    const w = ctx.measureText(text).width;
    const spots = [
      [at.x + 8, at.y],
      [at.x - 8 - w, at.y],
      [at.x - w / 2, at.y - 13],
      [at.x - w / 2, at.y + 13],
    ];
    // Whole on the map or not at all (one cut at the map's edge read "BT-06 06:28:").
    const inside = ([x, y]) => x - 2 >= 0 && x + w + 2 <= map.width && y - 7 >= 0 && y + 7 <= map.height;
    const spot = spots.find((xy) => inside(xy) && grid.place({ x: xy[0] - 2, y: xy[1] - 7, w: w + 4, h: 14 }));
    if (spot) {
      ctx.fillStyle = CHIP;
      ctx.fillRect(spot[0] - 2, spot[1] - 7, w + 4, 14);
      ctx.fillStyle = color;
      ctx.fillText(text, spot[0], spot[1]);
    }
    const labelBox = spot ? { x: spot[0] - 2, y: spot[1] - 7, w: w + 4, h: 14 } : null;
    drawn.push({ vehicle_id: c.vehicle_id, eta: c.eta ?? null, chosen, excluded: c.excluded ?? null, x: at.x, y: at.y, label: labelBox });
  }
  ctx.strokeStyle = CHOSEN;
  ctx.lineWidth = 2;
  ctx.strokeRect(target.x - 9, target.y - 9, 18, 18);
  ctx.restore();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class DecisionsPanel {
  /**
   * @param {HTMLElement} root the panel's element (holds the card and the feed)
   * @param {{time: import("./clock.js").AirportTime, map: import("./map.js").ApronMap,
   *   seek: (t: number) => void, api: import("./api.js").Api, airport: string,
   *   dayStart: number}} deps
   */
  constructor(root, { time, map, seek, api, airport, date, dayStart }) {
    this.root = root;
    this.api = api;
    this.airport = airport;
    this.date = date;
    this.outcomes = new Map(); // "task|t" -> Promise of the decision's outcome (outcome())
    this.dayStart = dayStart;
    this.qualityEl = root.querySelector("[data-testid=decision-quality]");
    this.quality = null; // the last measurement (test hook)
    this.qualityAt = null;
    this.qualityWall = -Infinity;
    this.qualityPending = false;
    this.time = time;
    this.map = map;
    this.seek = seek;
    this.card = root.querySelector("[data-testid=decision-card]");
    this.feed = root.querySelector("[data-testid=decision-feed]");
    this.selectedTask = null;
    this.shown = null; // the card as drawn (test hook): {task_id, t, decision, rule, vehicle_id, candidates}
    this.lastSignature = null;
    // Notifications and decisions share one panel, a tab each (side by side, neither had
    // room for its text at 1280 px).
    this.section = root.closest("section");
    this.section.querySelector("[data-testid=notes-tabs]").addEventListener("click", (e) => {
      const tab = e.target.closest("button[data-pane]");
      if (tab) this.show(tab.dataset.pane);
    });
    this.feed.addEventListener("click", (e) => {
      const item = e.target.closest("li[data-task-id]");
      if (item) this.select(item.dataset.taskId);
    });
    this.qualityEl.addEventListener("click", (e) => {
      const item = e.target.closest("li[data-task-id]");
      if (!item) return;
      this.select(item.dataset.taskId);
      this.seek(Number(item.dataset.t) + 1000); // a tick after it: the decision is in the state
    });
    this.card.addEventListener("click", (e) => {
      const go = e.target.closest("button[data-t]");
      if (go) this.seek(Number(go.dataset.t));
    });
  }

  /** Draw again in the current language. */
  relabel() {
    this.lastSignature = null;
    if (this.quality) this.renderQuality(this.quality);
  }

  /** Show the decision behind `taskId` (on the map, in the card); `show`: bring the
   * decisions tab forward (an explicit ask: a task row, a decision marker or key). */
  select(taskId, show = false) {
    this.selectedTask = taskId;
    this.lastSignature = null;
    if (show) this.show("decisions");
  }

  /** Bring the panel's "notes" or "decisions" tab forward. */
  show(pane) {
    this.section.dataset.pane = pane;
    for (const tab of this.section.querySelectorAll("[data-testid=notes-tabs] button[data-pane]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.pane === pane));
    }
  }

  /** The tab in front (test hook). */
  get pane() {
    return this.section.dataset.pane;
  }

  /** The decision quality of the 3 h before `position` (docs/api.md, "Decision quality"):
   * fetched again once the shown time moved 5 min; its high-regret decisions are links. */
  measure(shown) {
    const position = Math.floor(shown);
    if (this.qualityAt !== null && Math.abs(position - this.qualityAt) < QUALITY_REFRESH_MS) return;
    // At high speed the shown time moves 5 min in a fraction of a second: at most one
    // measurement in flight, and one per QUALITY_MIN_WALL_MS of wall time.
    const now = performance.now();
    if (this.qualityPending || now - this.qualityWall < QUALITY_MIN_WALL_MS) return;
    this.qualityAt = position;
    this.qualityWall = now;
    this.qualityPending = true;
    const end = Math.max(position, this.dayStart + 60000);
    const start = Math.max(this.dayStart, end - QUALITY_WINDOW_MS);
    const path = `/airports/${encodeURIComponent(this.airport)}/decision-quality?start=${start}&end=${end}&limit=5`;
    this.api
      .request("GET", path)
      .then(
        (q) => {
          this.quality = q;
          this.renderQuality(q);
        },
        () => this.qualityEl.replaceChildren(el("p", "empty", t("decisions.qualityFailed"))),
      )
      .finally(() => {
        this.qualityPending = false;
      });
  }

  renderQuality(q) {
    const pct = (x) => (x == null ? "—" : `${Math.round(x * 100)}%`);
    const min = (ms) => (ms == null ? "—" : t("decisions.minutes", { n: (ms / 60000).toFixed(1) }));
    const line = el(
      "p",
      "decision-quality-line",
      t("decisions.quality", {
        onTime: pct(q.on_time_share),
        mean: min(q.regret_mean_ms),
        p90: min(q.regret_p90_ms),
        reassign: q.reassignments_per_100_tasks ?? "—",
        escalations: q.escalations_no_vehicle,
      }),
    );
    line.title = t("decisions.qualityTitle", { start: this.time.hm(q.start), end: this.time.hm(q.end) });
    const list = el("ul", "notes");
    for (const h of q.high_regret) {
      const li = el("li", "decision-item", `${this.time.hm(h.t)} ${h.task_id} +${min(h.regret_ms)}`);
      li.dataset.taskId = h.task_id;
      li.dataset.t = String(h.t);
      list.append(li);
    }
    this.qualityEl.replaceChildren(line, list);
  }

  render(state) {
    const decision = this.selectedTask ? state.decisions.get(this.selectedTask) ?? null : null;
    const signature = `${state.revision}|${this.selectedTask}|${decision ? decision.t : ""}`;
    if (signature === this.lastSignature) return;
    this.lastSignature = signature;
    this.renderCard(decision);
    // A newly chosen decision is shown from its card's top (the pane may have been
    // scrolled down the feed); the same one re-rendered stays where the reader is.
    const shownKey = `${this.selectedTask}|${decision ? decision.t : ""}`;
    if (shownKey !== this.shownKey) this.card.parentElement.scrollTop = 0;
    this.shownKey = shownKey;
    this.map.overlay = decision ? (ctx, map) => drawDecision(ctx, map, decision, this.time) : null;
    if (!decision) delete this.map.lastModel.decision;
    this.renderFeed([...state.decisionFeed.values()].slice(-FEED_SHOWN).reverse());
  }

  renderCard(decision) {
    if (this.selectedTask === null) {
      this.card.replaceChildren(el("p", "empty", t("decisions.pick")));
      this.shown = null;
      return;
    }
    if (decision === null) {
      this.card.replaceChildren(el("p", "empty", t("decisions.none", { task: this.selectedTask })));
      this.shown = { task_id: this.selectedTask, decision: null, candidates: [] };
      return;
    }
    const head = el("p", "decision-head");
    head.append(
      el("strong", "", `${decision.id} · ${label("decision", decision.decision)}`),
      document.createTextNode(
        ` ${this.time.hms(decision.t)} · ${t("decisions.rule")} ${label("rule", decision.rule)}` +
          (decision.vehicle_id ? ` → ${decision.vehicle_id}` : ""),
      ),
    );
    // The dispatcher's own words (free text, in its language): on hover.
    if (decision.reason) head.title = decision.reason;
    const go = el("button", "link", t("decisions.goTo"));
    go.type = "button";
    go.dataset.t = String(decision.t);
    go.setAttribute("data-testid", "decision-go");
    // What the controller reads first, in view without scrolling at 1280 x 800: what was
    // decided, what if, what happened; then the way there and the candidates.
    const nodes = [head];
    const candidates = [...(decision.candidates ?? [])].sort(
      (a, b) => (a.eta ?? Infinity) - (b.eta ?? Infinity) || a.vehicle_id.localeCompare(b.vehicle_id),
    );
    // What if: the best eligible alternative's ETA against the chosen vehicle's, as the
    // dispatcher saw both at the decision (the measured regret: the quality line above).
    const eligible = candidates.filter((c) => c.excluded == null && c.eta != null);
    const picked = candidates.find((c) => c.vehicle_id === decision.vehicle_id);
    if (eligible.length && picked && picked.eta != null) {
      const best = eligible[0];
      const gain = picked.eta - best.eta;
      const whatIf = el(
        "p",
        "decision-whatif",
        gain > 0
          ? t("decisions.whatIf", { vehicle: best.vehicle_id, eta: this.time.hms(best.eta), min: (gain / 60000).toFixed(1) })
          : t("decisions.earliest"),
      );
      whatIf.setAttribute("data-testid", "decision-whatif");
      nodes.push(whatIf);
      if (decision.vehicle_id) nodes.push(this.outcomeLine(decision, best));
    }
    nodes.push(go);
    const table = el("table", "grid decision-candidates");
    table.setAttribute("data-testid", "decision-candidates");
    const body = el("tbody");
    for (const c of candidates) {
      const tr = el("tr");
      tr.dataset.vehicleId = c.vehicle_id;
      tr.dataset.eta = c.eta ?? "";
      const chosen = c.vehicle_id === decision.vehicle_id;
      tr.classList.toggle("chosen", chosen);
      tr.classList.toggle("excluded", c.excluded != null);
      const verdict = c.excluded != null ? label("exclusion", c.excluded) : c.on_time == null ? "" : c.on_time ? t("decisions.onTime") : t("decisions.late");
      tr.title = [
        c.state ? label("vehicle_state", c.state) : "",
        c.distance_m == null ? "" : `${Math.round(c.distance_m)} m`,
        c.score == null ? "" : `${t("decisions.score")} ${c.score}`,
      ]
        .filter(Boolean)
        .join(" · ");
      tr.append(
        el("td", "mono", `${chosen ? "▶ " : ""}${c.vehicle_id}`),
        el("td", "mono", c.eta == null ? "—" : this.time.hms(c.eta)),
        el("td", "verdict", verdict),
      );
      body.append(tr);
    }
    table.append(body);
    nodes.push(table);
    this.card.replaceChildren(...nodes);
    this.shown = {
      task_id: decision.id,
      t: decision.t,
      decision: decision.decision,
      rule: decision.rule,
      vehicle_id: decision.vehicle_id,
      candidates: candidates.map((c) => ({ vehicle_id: c.vehicle_id, eta: c.eta, excluded: c.excluded })),
    };
  }

  /** What happened after `decision`: the chosen vehicle's actual arrival (the task's
   * turnaround, GET …/turnarounds/{flight}) against `best`'s ETA at the decision — the
   * regret docs/api.md defines (arrival minus the best eligible ETA). Filled in when the
   * answer comes; a task reassigned later, or not yet arrived, says so instead. */
  outcomeLine(decision, best) {
    const line = el("p", "decision-outcome muted", "…");
    line.setAttribute("data-testid", "decision-outcome");
    this.outcome(decision).then(
      (arrival) => {
        line.dataset.arrival = arrival.at ?? "";
        if (arrival.at == null) {
          line.textContent = t(arrival.superseded ? "decisions.superseded" : "decisions.notArrived");
          return;
        }
        const regret = arrival.at - best.eta;
        line.dataset.regret = String(regret);
        line.textContent = t("decisions.outcome", {
          vehicle: decision.vehicle_id,
          at: this.time.hms(arrival.at),
          best: best.vehicle_id,
          eta: this.time.hms(best.eta),
          min: (regret / 60000).toFixed(1),
        });
      },
      () => {
        line.textContent = t("decisions.outcomeFailed");
      },
    );
    return line;
  }

  /** The chosen vehicle's arrival after `decision` ({at: ms|null, superseded}), once per
   * decision: the first of the task's arrived / started times by that vehicle alone. */
  outcome(decision) {
    const key = `${decision.id}|${decision.t}`;
    let pending = this.outcomes.get(key);
    if (!pending) {
      const path = `/airports/${encodeURIComponent(this.airport)}/days/${this.date}/turnarounds/${encodeURIComponent(decision.flight_id)}`;
      pending = this.api.request("GET", path).then((doc) => {
        const task = (doc.tasks ?? []).find((x) => x.id === decision.id);
        if (!task) return { at: null, superseded: false };
        // The task's vehicles in the order they came: one after the chosen vehicle means
        // this decision was superseded (not measured); one before it, the vehicle this
        // reassignment replaced, whose own arrival (before the decision) does not count.
        const vehicles = task.vehicles ?? [];
        const index = vehicles.indexOf(decision.vehicle_id);
        if (index >= 0 && index < vehicles.length - 1) return { at: null, superseded: true };
        const at = [task.arrived, task.started].find((x) => x != null && x >= decision.t);
        return { at: index >= 0 && at != null ? at : null, superseded: false };
      });
      pending.catch(() => this.outcomes.delete(key)); // a failed look-up is asked again
      this.outcomes.set(key, pending);
    }
    return pending;
  }

  renderFeed(decisions) {
    const items = decisions.map((d) => {
      const li = el("li", `decision-item decision-${d.decision}`);
      li.dataset.taskId = d.id;
      li.setAttribute("data-testid", "decision-item");
      li.append(
        el("span", "mono", this.time.hm(d.t)),
        document.createTextNode(` ${label("decision", d.decision)} ${d.id} → ${d.vehicle_id ?? "—"}`),
      );
      return li;
    });
    this.feed.replaceChildren(...items);
  }
}
