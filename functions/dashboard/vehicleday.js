// A vehicle's day (issue #19 item 2): its task chain as bars on the turnaround view's chart
// (GET …/days/{date}/vehicles/{id}/day): per task its plan (outline), its drive (from
// en route to the start, light) and its service (bar; red past the planned end), the
// playhead at the replay clock, and the day's totals. A bar seeks to the task's start.
// The numbers are the API's: the page draws its answer.

import { label, t } from "./i18n.js";
import { standText } from "./map.js";
import { el, TurnaroundView } from "./turnaround.js";

const PAD_MS = 5 * 60_000;

function minutes(ms) {
  return `${Math.round(ms / 60_000)} min`;
}

export class VehicleDayView extends TurnaroundView {
  constructor(root, deps) {
    super(root, deps);
    this.errorKey = "vehicleDay.error";
  }

  /** Open the day of vehicle `id`: fetch it, draw it. */
  open(id) {
    const { airport, date } = this.deps;
    return this.load(`/airports/${airport}/days/${date}/vehicles/${encodeURIComponent(id)}/day`);
  }

  draw() {
    const doc = this.document;
    const moments = [];
    for (const task of doc.tasks) {
      for (const k of ["planned_start", "planned_end", "assigned", "en_route", "started", "completed"]) {
        if (task[k] !== null) moments.push(task[k]);
      }
    }
    this.span = moments.length
      ? [Math.min(...moments) - PAD_MS, Math.max(...moments) + PAD_MS]
      : [doc.start, doc.end];

    const head = el("header", "ta-head");
    head.append(el("h3", "", `${doc.vehicle_id} · ${label("vehicle_type", doc.vehicle_type)}`));
    head.append(this.closeButton("vehicleDay.close", "vehicle-day-close"));

    const totals = doc.totals;
    const summary = el("p", "ta-legend", t("vehicleDay.totals", {
      tasks: totals.tasks,
      busy: minutes(totals.busy_ms),
      servicing: minutes(totals.servicing_ms),
      driving: minutes(totals.driving_ms),
      idle: minutes(totals.idle_ms),
      share: totals.utilisation === null ? "—" : (100 * totals.utilisation).toFixed(1),
    }));
    summary.dataset.testid = "vehicle-day-totals";

    const chart = el("div", "ta-chart");
    chart.dataset.testid = "vehicle-day-chart";
    for (const task of doc.tasks) {
      const row = el("div", "ta-row");
      row.dataset.testid = "vehicle-day-task";
      row.dataset.taskId = task.id;
      const name = el("span", "ta-label", `${standText(task.stand)} ${label("task_type", task.task_type)}`);
      name.title = `${task.id} · ${task.flight_id} · ${task.stand}`;
      const track = el("div", "ta-track");
      track.append(this.plannedBar(task));
      const driveFrom = task.en_route ?? task.arrived;
      if (driveFrom !== null) {
        const driveTo = task.started ?? task.completed ?? task.cancelled ?? this.span[1];
        const drive = el("div", "vd-drive");
        drive.style.left = `${this.x(driveFrom)}%`;
        drive.style.width = `${Math.max(0.2, this.x(driveTo) - this.x(driveFrom))}%`;
        track.append(drive);
      }
      if (task.started !== null) {
        const end = task.completed ?? task.cancelled ?? this.span[1];
        const actual = this.actualBar(task, end, "vehicle-day-bar");
        actual.addEventListener("click", () => this.deps.onSeek(task.started));
        track.append(actual);
      }
      row.append(name, track);
      chart.append(row);
    }
    this.playhead = el("div", "ta-playhead");
    chart.append(this.playhead);
    const legend = el("p", "muted ta-legend", t("vehicleDay.legend"));
    this.root.replaceChildren(head, summary, chart, legend);
  }
}
