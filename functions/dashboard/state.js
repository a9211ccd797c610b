// The replay state as the stream builds it: vehicles (with what smooth motion needs),
// tasks, flights and notifications, each keyed by its id so nothing can appear twice; and
// the state the server derives from them (docs/data-format.md, "Derived state"): which
// aircraft holds each stand, and each vehicle's current and last task. The page shows
// those as they come; it never re-derives them from the raw rows.

/** Task statuses after which a task is over. */
export const FINISHED = new Set(["completed", "cancelled"]);
const TRAIL_POINTS = 40;
const MAX_NOTIFICATIONS = 200;
const MIN_ANIMATION_MS = 40;
const MAX_ANIMATION_MS = 1200;

function shortestTurn(from, to) {
  return ((((to - from) % 360) + 540) % 360) - 180;
}

export class ReplayState {
  /** @param {(lat: number, lon: number) => {x: number, y: number}} project */
  constructor(project) {
    this.project = project;
    this.vehicles = new Map(); // id -> {row, from, to, start, duration, trail}
    this.tasks = new Map();
    this.flights = new Map();
    this.notifications = new Map(); // insertion order = arrival order
    this.stands = new Map(); // stand id -> derived row of the aircraft on it
    this.vehicleTasks = new Map(); // vehicle id -> derived row {current, last}
    this.decisions = new Map(); // task id -> its latest dispatch decision
    this.decisionFeed = new Map(); // "task|t" -> decision, arrival order (the feed)
    this.aircraft = new Map(); // aircraft id -> {row, from, to, start, duration, trail}, as vehicles
    this.staleness = { fade_after_ms: 90000, hide_after_ms: 600000 }; // from the snapshot
    this.retentionMs = 0;
    this.t = 0; // replay time of the last frame or snapshot
    this.frameInterval = 1000; // wall ms between vehicle frames (moving average)
    this.lastFramePerf = 0;
    this.revision = 0; // bumped whenever tasks / flights / notifications change
  }

  applySnapshot(snapshot) {
    const now = performance.now();
    this.t = snapshot.t;
    this.retentionMs = snapshot.task_retention_ms ?? 0;
    this.vehicles.clear();
    for (const row of snapshot.vehicles) this.placeVehicle(row, now);
    this.tasks = new Map(snapshot.tasks.map((row) => [row.id, row]));
    this.flights = new Map(snapshot.flights.map((row) => [row.id, row]));
    this.notifications = new Map();
    this.applyNotifications(snapshot.notifications);
    this.stands = new Map((snapshot.stands ?? []).map((row) => [row.id, row]));
    this.vehicleTasks = new Map((snapshot.vehicle_tasks ?? []).map((row) => [row.id, row]));
    // The decision behind each active task (docs/api.md, "Decisions in the state").
    this.decisions = new Map((snapshot.decisions ?? []).map((row) => [row.id, row]));
    this.decisionFeed = new Map();
    this.aircraft.clear();
    for (const row of snapshot.aircraft ?? []) this.placeMover(this.aircraft, row, now);
    if (snapshot.staleness) this.staleness = snapshot.staleness;
    this.lastFramePerf = 0;
    this.revision += 1;
  }

  placeVehicle(row, now) {
    this.placeMover(this.vehicles, row, now);
  }

  placeMover(movers, row, now) {
    const p = this.project(row.lat, row.lon);
    const at = { x: p.x, y: p.y, h: row.heading };
    movers.set(row.id, { row, from: at, to: at, start: now, duration: 0, trail: [p] });
  }

  /**
   * An `aircraft_update`: aircraft glide to their fixes as vehicles do; a row with
   * `removed: true` says the aircraft left the state (took off, or no fix for the expiry:
   * docs/data-format.md, "Aircraft leave the state"), so it leaves the map.
   */
  applyAircraft(t, rows) {
    this.t = Math.max(this.t, t);
    const duration = Math.min(MAX_ANIMATION_MS, Math.max(MIN_ANIMATION_MS, this.frameInterval));
    const fixes = [];
    for (const row of rows) {
      if (row.removed === true) this.aircraft.delete(row.id);
      else fixes.push(row);
    }
    this.glide(this.aircraft, fixes, performance.now(), duration);
  }

  applyVehicles(t, rows) {
    const now = performance.now();
    if (this.lastFramePerf) {
      const interval = now - this.lastFramePerf;
      this.frameInterval = this.frameInterval * 0.7 + Math.min(interval, 5000) * 0.3;
    }
    this.lastFramePerf = now;
    this.t = Math.max(this.t, t);
    // Glide to each new fix over about one frame interval: the next fix arrives as this
    // animation ends, so vehicles move continuously instead of hopping once per frame.
    const duration = Math.min(MAX_ANIMATION_MS, Math.max(MIN_ANIMATION_MS, this.frameInterval));
    this.glide(this.vehicles, rows, now, duration);
  }

  glide(movers, rows, now, duration) {
    for (const row of rows) {
      const vehicle = movers.get(row.id);
      if (!vehicle) {
        this.placeMover(movers, row, now);
        continue;
      }
      const from = this.positionOf(vehicle, now);
      const p = this.project(row.lat, row.lon);
      vehicle.row = row;
      vehicle.from = from;
      vehicle.to = { x: p.x, y: p.y, h: from.h + shortestTurn(from.h, row.heading) };
      vehicle.start = now;
      vehicle.duration = duration;
      const last = vehicle.trail[vehicle.trail.length - 1];
      if (!last || last.x !== p.x || last.y !== p.y) {
        vehicle.trail.push(p);
        if (vehicle.trail.length > TRAIL_POINTS) vehicle.trail.shift();
      }
    }
  }

  /** Where a vehicle is drawn at performance time `now` (world metres, heading). */
  positionOf(vehicle, now) {
    const { from, to, start, duration } = vehicle;
    if (duration <= 0 || now >= start + duration) return to;
    const k = Math.max(0, (now - start) / duration);
    return { x: from.x + (to.x - from.x) * k, y: from.y + (to.y - from.y) * k, h: from.h + (to.h - from.h) * k };
  }

  applyTasks(t, rows) {
    this.t = Math.max(this.t, t);
    for (const row of rows) this.tasks.set(row.id, row);
    this.revision += 1;
  }

  applyFlights(t, rows) {
    this.t = Math.max(this.t, t);
    for (const row of rows) this.flights.set(row.id, row);
    this.revision += 1;
  }

  /** A `dispatch_decision` event: each is its task's latest decision, and joins the feed. */
  applyDecisions(t, rows) {
    this.t = Math.max(this.t, t);
    for (const row of rows) {
      this.decisions.set(row.id, row);
      this.decisionFeed.set(`${row.id}|${row.t}`, row);
    }
    while (this.decisionFeed.size > MAX_NOTIFICATIONS) {
      this.decisionFeed.delete(this.decisionFeed.keys().next().value);
    }
    this.revision += 1;
  }

  applyNotifications(rows) {
    for (const row of rows) {
      this.notifications.delete(row.id); // keep arrival order, never two entries per id
      this.notifications.set(row.id, row);
    }
    while (this.notifications.size > MAX_NOTIFICATIONS) {
      this.notifications.delete(this.notifications.keys().next().value);
    }
    this.revision += 1;
  }

  /**
   * Drop finished tasks past the retention, as the server's state does (docs/data-format.md):
   * a row leaves when row.t < floor_tick(t) - task_retention_ms.
   */
  expireTasks(tickStart) {
    if (this.retentionMs <= 0) return;
    let changed = false;
    for (const [id, row] of this.tasks) {
      if (FINISHED.has(row.status) && row.t < tickStart - this.retentionMs) {
        this.tasks.delete(id);
        changed = true;
      }
    }
    if (changed) this.revision += 1;
  }

  /**
   * Derived rows (a `stand_update` or `vehicle_task_update`): each replaces its entity's;
   * a vacated stand, or a vehicle with neither a current nor a last task, leaves.
   */
  applyDerived(kind, t, rows) {
    this.t = Math.max(this.t, t);
    const entities = kind === "stands" ? this.stands : this.vehicleTasks;
    for (const row of rows) {
      const present = kind === "stands" ? row.occupied : Boolean(row.current || row.last);
      if (present) entities.set(row.id, row);
      else entities.delete(row.id);
    }
    this.revision += 1;
  }

  /** What the server says vehicle `id` works on: {current, last} (either may be null). */
  vehicleTask(vehicleId) {
    return this.vehicleTasks.get(vehicleId) ?? { current: null, last: null };
  }

  /**
   * How fresh a vehicle's last fix is at replay time `at` (the data time the map shows, not
   * the wall clock): "fresh", "faded" once older than the fade age, "hidden" once older
   * than the hide age (the snapshot's `staleness`, docs/api.md).
   */
  freshness(vehicle, at) {
    const age = at - vehicle.row.t;
    if (age > this.staleness.hide_after_ms) return "hidden";
    if (age > this.staleness.fade_after_ms) return "faded";
    return "fresh";
  }
}
