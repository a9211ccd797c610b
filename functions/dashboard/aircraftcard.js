// The card of the aircraft clicked on the map, in the vehicle card's style: who it is
// (callsign, registration, ICAO 24-bit address, type), the flight leg its fix links to
// (movement, stand, scheduled / estimated / actual times), the stand it occupies now, and
// its ground speed and heading from the last surface fix.

import { label, language, t } from "./i18n.js";
import { standText } from "./map.js";
import { cardList, placeCard } from "./overlays.js";

/** The stand the server's occupancy says this aircraft (or its linked leg) holds, if any. */
function occupiedStand(state, id, row) {
  for (const stand of state.stands.values()) {
    if (stand.aircraft_id === id) return stand.id;
  }
  if (!row.flight_id) return null;
  for (const stand of state.stands.values()) {
    if ([stand.flight_id, stand.arrival_id, stand.departure_id].includes(row.flight_id)) return stand.id;
  }
  return null;
}

export class AircraftCard {
  /**
   * @param {HTMLElement} element
   * @param {object} deps {map: ApronMap, time: AirportTime, flights: Map (catalogue)}
   */
  constructor(element, deps) {
    this.element = element;
    this.map = deps.map;
    this.time = deps.time;
    this.flights = deps.flights;
    this.key = "";
  }

  /** Show the selected aircraft's card while the map draws it (none once it left the
   * state or its last fix is older than the fade age). `dataTime`: the replay time shown. */
  update(state, dataTime) {
    const card = this.element;
    const id = this.map.selectedAircraftId;
    const aircraft = id ? state.aircraft.get(id) : null;
    if (!aircraft || dataTime - aircraft.row.t > state.staleness.fade_after_ms) {
      if (!card.hidden) card.hidden = true;
      this.key = "";
      return;
    }
    const row = aircraft.row;
    // The leg as recorded up to the replay time. A leg the fix links to but not recorded
    // yet is named from the catalogue (who it is), never with the catalogue's times or
    // status: those are the end of the day's, the future at this instant.
    const flight = row.flight_id ? state.flights.get(row.flight_id) ?? null : null;
    const known = !flight && row.flight_id ? this.flights.get(row.flight_id) ?? null : null;
    const stand = occupiedStand(state, id, row);
    const key = JSON.stringify([id, row.t, flight?.t ?? null, Boolean(known), stand, language()]);
    if (key !== this.key) {
      this.key = key;
      this.render(id, row, flight, stand, known);
    }
    card.hidden = false;
    placeCard(card, this.map.screen(state.positionOf(aircraft, performance.now())), this.map);
  }

  render(id, row, flight, stand, known = null) {
    const none = t("vehicle.none");
    const time = (ms) => (ms === null || ms === undefined ? none : this.time.hm(ms));
    const leg = flight ?? known;
    const legName = (l) => (l.flight_number ? `${l.callsign} (${l.flight_number})` : l.callsign);
    const rows = [
      [t("aircraft.registration"), row.registration ?? leg?.registration ?? none, "aircraft-registration"],
      [t("aircraft.icao24"), row.icao24 ?? none, "aircraft-icao24"],
      [t("vehicle.type"), leg?.aircraft_type ?? none, "aircraft-type"],
    ];
    if (known) {
      const notYet = t("aircraft.notRecorded");
      rows.push(
        [t("vehicle.flight"), `${legName(known)} · ${t(`aircraft.${known.movement}`)}`, "aircraft-flight"],
        [t("aircraft.status"), notYet, "aircraft-status"],
      );
    } else if (flight) {
      const name = legName(flight);
      rows.push(
        [t("vehicle.flight"), `${name} · ${t(`aircraft.${flight.movement}`)}`, "aircraft-flight"],
        [t("aircraft.flightStand"), standText(flight.stand), "aircraft-flight-stand"],
        [t("aircraft.scheduled"), time(flight.scheduled), "aircraft-scheduled"],
        [t("aircraft.actual"), flight.actual ? time(flight.actual) : flight.estimated ? t("aircraft.estimatedAt", { at: time(flight.estimated) }) : none, "aircraft-actual"],
        [t("aircraft.status"), label("flight_status", flight.status), "aircraft-status"],
      );
    } else {
      rows.push([t("vehicle.flight"), none, "aircraft-flight"]);
    }
    rows.push(
      [t("aircraft.onStand"), stand ? standText(stand) : t("aircraft.offStand"), "aircraft-on-stand"],
      [t("aircraft.groundSpeed"), `${Math.round(row.speed_kmh)} km/h`, "aircraft-speed"],
      [t("aircraft.heading"), `${Math.round(row.heading) % 360}°`, "aircraft-heading"],
      [t("vehicle.fix"), this.time.hms(row.t), "aircraft-fix"],
    );
    const head = document.createElement("div");
    head.className = "vc-head";
    const name = document.createElement("strong");
    name.textContent = row.callsign ?? flight?.callsign ?? row.registration ?? id; // as the map labels it
    name.dataset.testid = "aircraft-callsign";
    const sub = document.createElement("span");
    sub.className = "muted";
    sub.textContent = t("aircraft.card");
    head.append(name, sub);
    this.element.replaceChildren(head, cardList(rows));
    this.element.dataset.aircraftId = id;
  }
}
