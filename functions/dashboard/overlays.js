// What floats over the map: the legend and the card of the hovered or selected vehicle
// (its id, type, state, current task and flight, from the task rows that reference it).

import { enumValues, label, language, t } from "./i18n.js";
import { STATE_RINGS, VEHICLE_COLORS } from "./map.js";

const ARROW = "M0 -5 L3.4 3.9 L0 2.1 L-3.4 3.9 Z";

function legendItem(svgPath, text) {
  const item = document.createElement("div");
  item.className = "legend-item";
  item.innerHTML = `<svg viewBox="-6 -6 12 12" aria-hidden="true">${svgPath}</svg>`;
  const span = document.createElement("span");
  span.textContent = text;
  item.append(span);
  return item;
}

/** (Re)build the legend in the current language; returns its height in pixels. */
export function buildLegend(legend) {
  const types = enumValues("vehicle_type").map((type) =>
    legendItem(`<path d="${ARROW}" fill="${VEHICLE_COLORS[type]}"/>`, label("vehicle_type", type)),
  );
  const states = Object.entries(STATE_RINGS).map(([state, ring]) => {
    const look = ring ? `stroke="${ring}" stroke-width="1.2"` : 'opacity="0.5"';
    return legendItem(`<path d="${ARROW}" fill="#64748b" ${look}/>`, label("vehicle_state", state));
  });
  const title = document.createElement("div");
  title.className = "legend-title";
  title.textContent = t("map.legend");
  const grid = document.createElement("div");
  grid.className = "legend-grid";
  grid.append(...types, ...states);
  legend.replaceChildren(title, grid);
  return legend.offsetHeight;
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

  /** Show the card of the hovered vehicle, else of the selected one, else none. */
  update(state) {
    const card = this.element;
    const id = this.hover?.id ?? this.map.selectedId;
    const vehicle = id ? state.vehicles.get(id) : null;
    if (!vehicle) {
      if (!card.hidden) card.hidden = true;
      this.key = "";
      return;
    }
    const task = state.taskOfVehicle(id);
    const key = `${id}|${vehicle.row.t}|${task ? task.id + task.status : ""}|${language()}`;
    if (key !== this.key) {
      this.key = key;
      this.render(id, vehicle, task, state);
    }
    card.hidden = false;
    // Next to the pointer while hovering, else next to the selected vehicle (it follows).
    const at = this.hover?.id ? this.hover : this.map.screen(state.positionOf(vehicle, performance.now()));
    const width = card.offsetWidth;
    const height = card.offsetHeight;
    const left = at.x + 16 + width > this.map.width ? at.x - 16 - width : at.x + 16;
    const top = Math.min(Math.max(8, at.y - height / 2), this.map.height - height - 8);
    card.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
  }

  render(id, vehicle, task, state) {
    const info = this.vehicles.get(id);
    const type = info ? info.vehicle_type : null;
    const flight = task ? (state.flights.get(task.flight_id) ?? this.flights.get(task.flight_id)) : null;
    const none = t("vehicle.none");
    const rows = [
      [t("vehicle.type"), label("vehicle_type", type)],
      [t("vehicle.state"), label("vehicle_state", vehicle.row.state)],
      [t("vehicle.speed"), `${Math.round(vehicle.row.speed_kmh)} km/h`],
      [t("vehicle.task"), task ? `${label("task_type", task.task_type)} · ${label("task_status", task.status)}` : none],
      [t("vehicle.flight"), flight ? `${flight.callsign} (${flight.flight_number})` : (task?.flight_id ?? none)],
      [t("vehicle.stand"), task ? task.stand : none],
      [t("vehicle.fix"), this.time.hms(vehicle.row.t)],
    ];
    const head = document.createElement("div");
    head.className = "vc-head";
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = VEHICLE_COLORS[type] ?? "#94a3b8";
    const name = document.createElement("strong");
    name.textContent = id;
    const sub = document.createElement("span");
    sub.className = "muted";
    sub.textContent = info ? info.label : "";
    head.append(dot, name, sub);
    const list = document.createElement("dl");
    for (const [term, value] of rows) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      list.append(dt, dd);
    }
    this.element.replaceChildren(head, list);
    this.element.dataset.vehicleId = id;
  }
}
