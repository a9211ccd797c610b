// What floats over the map: the legend and the card of the hovered or selected vehicle
// (its id, type, state, and the current or last task the server derived for it).

import { enumValues, label, language, t } from "./i18n.js";
import { STATE_RINGS, standText, VEHICLE_COLORS } from "./map.js";
const ARROW = "M0 -5 L3.4 3.9 L0 2.1 L-3.4 3.9 Z";
// The map's airliner (map.js drawAircraft) at legend size, nose up.
const PLANE = "M0 -5.5 L0.5 -3.8 L0.5 -1 L5.2 1 L5.2 1.6 L0.5 0.7 L0.4 4 L2 5 L2 5.5 L0 5.1 L-2 5.5 L-2 5 L-0.4 4 L-0.5 0.7 L-5.2 1.6 L-5.2 1 L-0.5 -1 L-0.5 -3.8 Z";

/** A vehicle's label in the page's language: in Chinese, its type and fleet number
 * ("Fuel truck 01" -> "加油车 01"); the fleet's own label stays in the tooltip. */
function vehicleLabel(info) {
  if (language() !== "zh") return info.label;
  const number = /(\d+)$/.exec(info.vehicle_id ?? "");
  return `${label("vehicle_type", info.vehicle_type)}${number ? ` ${number[1]}` : ""}`;
}

function legendItem(svgPath, text) {
  const item = document.createElement("div");
  item.className = "legend-item";
  item.innerHTML = `<svg viewBox="-6 -6 12 12" aria-hidden="true">${svgPath}</svg>`;
  const span = document.createElement("span");
  span.textContent = text;
  item.append(span);
  return item;
}

/** What floats over the map for good (not the cards, which follow the pointer): the tools,
 * the status chips, the legend, and in compare mode each map's label and the comparison.
 * The maps keep their initial view, labels and scale bar clear of them (ApronMap.watchCovers). */
export function mapOverlays() {
  const pane = document.querySelector(".map-pane");
  return [...pane.querySelectorAll(".map-tools, .map-status, .legend, .compare-label, .compare-kpis")];
}

/** (Re)build the legend in the current language; returns its height in pixels. Its title
 * folds and unfolds it (`legend.dataset.collapsed`), then calls `onToggle`. */
export function buildLegend(legend, onToggle = () => {}) {
  const types = enumValues("vehicle_type").map((type) =>
    legendItem(`<path d="${ARROW}" fill="${VEHICLE_COLORS[type]}"/>`, label("vehicle_type", type)),
  );
  const states = Object.entries(STATE_RINGS).map(([state, ring]) => {
    const look = ring ? `stroke="${ring}" stroke-width="1.2"` : 'opacity="0.5"';
    return legendItem(`<path d="${ARROW}" fill="#64748b" ${look}/>`, label("vehicle_state", state));
  });
  const collapsed = legend.dataset.collapsed === "true";
  const title = document.createElement("button");
  title.type = "button";
  title.className = "legend-title";
  title.setAttribute("data-testid", "legend-toggle");
  title.setAttribute("aria-expanded", String(!collapsed));
  title.title = t(collapsed ? "map.legendShow" : "map.legendHide");
  title.textContent = `${collapsed ? "▸" : "▾"} ${t("map.legend")}`;
  title.addEventListener("click", () => {
    legend.dataset.collapsed = String(!collapsed);
    legend.dataset.chosen = "true"; // the reader's choice stands from now on
    onToggle();
  });
  const grid = document.createElement("div");
  grid.className = "legend-grid";
  const aircraft = legendItem(`<path d="${PLANE}" fill="#e0f2fe" stroke="#0369a1" stroke-width="0.6"/>`, t("map.aircraft"));
  aircraft.dataset.testid = "legend-aircraft";
  grid.append(...types, ...states, aircraft);
  legend.replaceChildren(title, grid);
  return legend.offsetHeight;
}

/**
 * The card's "Task" line for vehicle `id`: its current task (the server's `vehicle_tasks`:
 * en route / arrived / in progress, never the next queued one) as "type · status"; with
 * none, "Idle" for a vehicle reporting idle, else "None". The hook reads it for every vehicle.
 */
export function cardTaskText(state, id) {
  const vehicle = state.vehicles.get(id);
  const { current } = state.vehicleTask(id);
  if (current) return `${label("task_type", current.task_type)} · ${label("task_status", current.status)}`;
  return vehicle && vehicle.row.state === "idle" ? label("vehicle_state", "idle") : t("vehicle.noTask");
}

/** A card's body: [term, value, test id?] rows as a definition list. */
export function cardList(rows) {
  const list = document.createElement("dl");
  for (const [term, value, testId] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (testId) dd.dataset.testid = testId;
    list.append(dt, dd);
  }
  return list;
}

/** Put a map card next to screen point `at`, inside the map (flipped left near its edge). */
export function placeCard(card, at, map) {
  const width = card.offsetWidth;
  const height = card.offsetHeight;
  // Right of the point, else left of it; where neither side has room in the map (a half
  // map in compare mode at 1024 px), right of it over what else the pane shows, never
  // cut by the pane's left edge.
  const pane = card.offsetParent?.clientWidth ?? map.width;
  const right = at.x + 16;
  const onLeft = at.x - 16 - width;
  let left = right + width <= map.width ? right : onLeft >= 0 ? onLeft : right;
  left = Math.max(8, Math.min(left, pane - width - 8));
  const top = Math.min(Math.max(8, at.y - height / 2), map.height - height - 8);
  card.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
}

export class VehicleCard {
  /**
   * @param {HTMLElement} element
   * @param {object} deps {map: ApronMap, time: AirportTime, vehicles: Map (catalogue),
   *   flights: Map (catalogue)}
   */
  constructor(element, deps) {
    this.element = element;
    this.map = deps.map;
    this.time = deps.time;
    this.vehicles = deps.vehicles;
    this.flights = deps.flights;
    this.hover = null; // {id, x, y} while the pointer is over a vehicle
    this.key = "";
  }

  /** Show the card of the hovered vehicle, else of the selected one, else none (nor of a
   * vehicle the map no longer draws: its last fix is older than the hide age). `dataTime`:
   * the replay time the map shows. */
  update(state, dataTime) {
    const card = this.element;
    const id = this.hover?.id ?? this.map.selectedId;
    const vehicle = id ? state.vehicles.get(id) : null;
    const freshness = vehicle ? state.freshness(vehicle, dataTime) : "hidden";
    if (!vehicle || freshness === "hidden") {
      if (!card.hidden) card.hidden = true;
      this.key = "";
      return;
    }
    const task = state.vehicleTask(id);
    const key = `${id}|${vehicle.row.t}|${task.t}|${freshness}|${language()}`;
    if (key !== this.key) {
      this.key = key;
      this.render(id, vehicle, task, freshness, state);
    }
    card.hidden = false;
    // Next to the pointer while hovering, else next to the selected vehicle (it follows).
    const at = this.hover?.id ? this.hover : this.map.screen(state.positionOf(vehicle, performance.now()));
    placeCard(card, at, this.map);
  }

  render(id, vehicle, task, freshness, state) {
    const info = this.vehicles.get(id);
    const type = info ? info.vehicle_type : null;
    const none = t("vehicle.none");
    // The server's derivation: `current` is what it works on now, `last` its last finished
    // task (an idle or returning vehicle has no current one).
    const { current, last } = task;
    const flight = current
      ? (state.flights.get(current.flight_id) ?? this.flights.get(current.flight_id))
      : null;
    const rows = [
      [t("vehicle.type"), label("vehicle_type", type)],
      [t("vehicle.state"), label("vehicle_state", vehicle.row.state)],
      [t("vehicle.speed"), `${Math.round(vehicle.row.speed_kmh)} km/h`],
      [t("vehicle.task"), cardTaskText(state, id), "current-task"],
    ];
    if (current) {
      rows.push([t("vehicle.flight"), flight ? (flight.flight_number ? `${flight.callsign} (${flight.flight_number})` : flight.callsign) : current.flight_id]);
      rows.push([t("vehicle.stand"), standText(current.stand)]);
    } else if (last) {
      const ended = last.actual_end ?? last.t;
      rows.push([
        t("vehicle.lastTask"),
        t("vehicle.lastTaskText", {
          task: label("task_type", last.task_type),
          status: label("task_status", last.status),
          at: this.time.hm(ended),
        }),
        "last-task",
      ]);
    } else {
      rows.push([t("vehicle.flight"), none], [t("vehicle.stand"), none]);
    }
    const fix = this.time.hms(vehicle.row.t);
    rows.push([t("vehicle.fix"), freshness === "faded" ? t("vehicle.staleFix", { at: fix }) : fix, "last-fix"]);
    const head = document.createElement("div");
    head.className = "vc-head";
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = VEHICLE_COLORS[type] ?? "#94a3b8";
    const name = document.createElement("strong");
    name.textContent = id;
    const sub = document.createElement("span");
    sub.className = "muted";
    sub.textContent = info ? vehicleLabel(info) : "";
    sub.title = info ? info.label : "";
    head.append(dot, name, sub);
    this.element.replaceChildren(head, cardList(rows));
    this.element.dataset.vehicleId = id;
    this.element.dataset.freshness = freshness;
  }
}
