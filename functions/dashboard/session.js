// Which session this page shows: one joined with a share token (`?join=`), the one in the
// URL (`?session=`, so a reload keeps it), or a new paused one at a busy hour of the first
// published day (or of `?airport=&day=`, what the day picker asks for).

import { ApiError } from "./api.js";
import { t } from "./i18n.js";

/** Start of the busiest local hour of the day by the manifest's activity histogram. */
export function busyHour(manifest) {
  const h = manifest.histogram;
  const perHour = Math.max(1, Math.round(3600000 / h.bin_ms));
  let best = 0;
  let bestScore = -1;
  for (let i = 0; i + perHour <= h.task_events.length; i += perHour) {
    let score = 0;
    for (let j = i; j < i + perHour; j += 1) {
      score += h.task_events[j] + h.flight_events[j] + h.moving_vehicles[j];
    }
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  const position = h.start + best * h.bin_ms;
  return Math.min(Math.max(position, manifest.start), manifest.end - 1000);
}

/** The manifest of the published day of `airport` that contains instant `at`. */
async function manifestAt(api, airport, at, airports) {
  const entry = airports.find((a) => a.airport === airport);
  const days = entry ? [...entry.days] : [];
  // A local day starts within -14 h..+12 h of its UTC midnight: try the closest first.
  const distance = (day) => Math.abs(Date.parse(`${day}T12:00:00Z`) - at);
  days.sort((a, b) => distance(a) - distance(b));
  for (const day of days.slice(0, 3)) {
    const manifest = await api.manifest(airport, day);
    if (manifest.start <= at && at < manifest.end) return manifest;
  }
  throw new Error(t("error.noData"));
}

/**
 * The session view, its day's manifest and the published airports; puts `?session=ID` in
 * the address bar.
 * @param {import("./api.js").Api} api
 * @param {URLSearchParams} params the page's query
 */
export async function resolveSession(api, params) {
  const airports = (await api.airports()).airports;
  let view = null;
  const shareToken = params.get("join");
  const sessionId = params.get("session");
  if (shareToken) {
    view = await api.join(shareToken);
  } else if (sessionId) {
    try {
      view = await api.getSession(sessionId);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      view = null; // expired, or not this user's: start a new one
    }
  }
  let manifest;
  if (view) {
    manifest = await manifestAt(api, view.airport, view.clock.range_start, airports);
  } else {
    const wanted = airports.find((a) => a.airport === params.get("airport") && a.days.length);
    const airport = wanted ?? airports.find((a) => a.days.length);
    if (!airport) throw new Error(t("error.noData"));
    const day = airport.days.includes(params.get("day")) ? params.get("day") : airport.days[0];
    manifest = await api.manifest(airport.airport, day);
    view = await api.createSession({
      airport: airport.airport,
      start: manifest.start,
      end: manifest.end,
      position: busyHour(manifest),
      speed: 1,
      state: "paused",
    });
  }
  const url = new URL(location.href);
  for (const name of ["join", "airport", "day"]) url.searchParams.delete(name);
  url.searchParams.set("session", view.session_id);
  history.replaceState(null, "", url);
  return { view, manifest, airports };
}
