// Which session this page shows: one joined with a share token (`?join=`), the one in the
// URL (`?session=`, so a reload keeps it), or a new paused one at a busy hour of the first
// published day (or of `?airport=&day=`, what the day picker asks for).
//
// A link to a moment (bookmarks.js, momentLink) adds `t` (epoch ms), `start`/`end` (the
// range), `filters` (JSON), `select` (`vehicle:ID` / `flight:ID`) and `bookmark`: a new
// session is made at that moment with those filters, unless `session` names one the viewer
// may open (then the bookmark is opened in it).

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

const MOMENT_PARAMS = ["t", "start", "end", "filters", "select", "bookmark"];

/** The moment a deep link names (null if none), checked: a bad link says why. */
function momentOf(params) {
  if (!MOMENT_PARAMS.some((name) => params.has(name))) return null;
  const number = (name) => {
    if (!params.has(name)) return null;
    const value = Number(params.get(name));
    if (!Number.isFinite(value)) throw new Error(t("error.badLink", { name }));
    return value;
  };
  let filters = null;
  if (params.has("filters")) {
    try {
      filters = JSON.parse(params.get("filters"));
    } catch {
      throw new Error(t("error.badLink", { name: "filters" }));
    }
  }
  return {
    t: number("t"),
    start: number("start"),
    end: number("end"),
    filters,
    select: params.get("select"),
    bookmark: params.get("bookmark"),
  };
}

/**
 * The session view, its day's manifest, the published airports and the moment a deep link
 * asked for; puts `?session=ID` in the address bar.
 * @param {import("./api.js").Api} api
 * @param {URLSearchParams} params the page's query
 */
export async function resolveSession(api, params) {
  const airports = (await api.airports()).airports;
  const moment = momentOf(params);
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
    const start = moment?.start ?? manifest.start;
    const end = moment?.end ?? manifest.end;
    const at = moment?.t ?? busyHour(manifest);
    view = await api.createSession({
      airport: airport.airport,
      start,
      end,
      position: Math.min(Math.max(at, start), end - 1),
      speed: 1,
      state: "paused",
      ...(moment?.filters ? { filters: moment.filters } : {}),
      // Compare mode (compare.js): a second variant of the day played on the same clock.
      ...(params.get("compare") ? { compare: params.get("compare") } : {}),
    });
    if (moment) moment.bookmark = null; // a bookmark lives in its own session only
  }
  const url = new URL(location.href);
  for (const name of ["join", "airport", "day", "compare", ...MOMENT_PARAMS]) url.searchParams.delete(name);
  url.searchParams.set("session", view.session_id);
  history.replaceState(null, "", url);
  return { view, manifest, airports, moment };
}
