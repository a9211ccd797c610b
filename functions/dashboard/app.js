// The dashboard's entry point: finds the session, feeds the stream into the replay state,
// shows the connection state, and draws everything once per animation frame.

import { Api, ApiError } from "./api.js";
import { signIn } from "./auth.js";
import { Bookmarks } from "./bookmarks.js";
import { AirportTime, PlaybackClock } from "./clock.js";
import { Controls, toast } from "./controls.js";
import { applyTranslations, language, onLanguageChange, setLanguage, t } from "./i18n.js";
import { ApronMap } from "./map.js";
import { KpiPanel } from "./kpipanel.js";
import { bindNotifications, EventNavigator, Follower } from "./navigate.js";
import { buildLegend, cardTaskText, mapOverlays, VehicleCard } from "./overlays.js";
import { AircraftCard } from "./aircraftcard.js";
import { DecisionsPanel } from "./decisions.js";
import { CompareView } from "./compare.js";
import { Panels } from "./panels.js";
import { QualityPanel } from "./quality.js";


import { TurnaroundView } from "./turnaround.js";
import { VehicleDayView } from "./vehicleday.js";
import { resolveSession } from "./session.js";
import { ReplayState } from "./state.js";
import { ReplayStream } from "./stream.js";
import { Timeline } from "./timeline.js";

const PRESENCE_INTERVAL_MS = 45000; // the server's presence lease is 120 s

const $ = (id) => document.getElementById(id);

// `?user=NAME` sets the local identity (the X-Replay-User header) of this page's API calls.
// Local mode only (AUTH_MODE=local, what `dispatch-replay demo` runs): it lets a second
// viewer on the same machine be a different user, e.g. to open a share link as
// `/?join=TOKEN&user=bob`. A deployment takes the caller from its JWT authorizer instead.
const params = new URLSearchParams(location.search);
const api = new Api(params.get("user"));

/** What the modules share. */
const app = {
  ready: false,
  sessionId: null,
  view: null,
  manifest: null,
  time: null,
  clock: new PlaybackClock(),
  state: null,
  map: null,
  timeline: null,
  panels: null,
  quality: null,
  controls: null,
  card: null,
  aircraftCard: null,
  stream: null,
  connection: "connecting",
  streamPosition: null, // replay time of the last frame or snapshot the stream delivered
  streamPlayback: null, // the last playback event the stream delivered
  vehicles: new Map(), // catalogue: vehicle id -> {vehicle_type, label, ...}
  vehicleTypes: new Map(),
  flightsById: new Map(),
  frames: 0,
  trails: false,
  clockText: "",
  shown: { position: null, source: "clock" }, // what the header clock shows (shownTime)
  frameSpans: [], // replay ms between recent frames of the stream
};

// --- test hook: a read-only view of what the page holds, and a way to drop the stream ----

window.__replay = {
  state() {
    const vehicles = app.state ? app.state.vehicles : new Map();
    const positions = {};
    for (const [id, v] of vehicles) {
      const { lat, lon, heading, state, t: fix } = v.row;
      positions[id] = { lat, lon, heading, state, t: fix };
    }
    const stats = app.stream ? app.stream.stats : { events: 0, duplicates: 0, reconnects: 0 };
    const playback = app.streamPlayback;
    return {
      ready: app.ready,
      sessionId: app.sessionId,
      role: app.view ? app.view.role : null,
      connection: app.connection,
      transport: app.stream ? app.stream.transport : "connecting",
      clockPosition: app.clock.now(),
      clockText: app.clockText,
      shownPosition: app.shown.position,
      clockSource: app.shown.source,
      shownClock: app.shown.clock ?? null,
      standLabels: app.map ? app.map.lastStandLabels : [],
      terminalLabels: app.map ? app.map.lastTerminalLabels : [],
      runwayLabels: app.map ? app.map.lastRunwayLabels ?? [] : [],
      staticLayerRenders: app.map ? app.map.staticLayer.renders : 0, // the cached layout layer's redraws
      highlightedFlight: app.panels ? app.panels.highlighted : null,
      highlightedStand: app.map ? app.map.highlightStand : null,
      selectedVehicle: app.map ? app.map.selectedId ?? null : null,
      followedVehicle: app.follower ? app.follower.vehicleId : null,
      followRecentres: app.follower ? app.follower.recentres : 0,
      eventsLoaded: app.events ? app.events.loaded : false,
      eventKind: app.events ? app.events.kind : null,
      lastEvent: app.events && app.events.cursor ? { kind: app.events.cursor.kind, t: app.events.cursor.t } : null,
      kpiWindow: app.kpis && app.kpis.last ? { start: app.kpis.last.start, end: app.kpis.last.end } : null,
      mapSize: app.map ? { width: app.map.width, height: app.map.height } : null,
      decision: app.decisions ? app.decisions.shown : null, // the decision card as drawn
      decisionQuality: app.decisions ? app.decisions.quality : null, // the panel's last measurement
      notesPane: app.decisions ? app.decisions.pane : null, // "notes" or "decisions": the tab in front
      streamPosition: app.streamPosition,
      frameSpan: app.manifest ? frameSpan() : null,
      playback: {
        state: app.clock.status,
        speed: app.clock.speed,
        version: app.clock.version,
        rangeStart: app.clock.rangeStart,
        rangeEnd: app.clock.rangeEnd,
        loop: app.clock.loop,
        position: app.clock.anchorPosition,
      },
      streamPlayback: playback
        ? { state: playback.state, speed: playback.speed, version: playback.version, position: playback.position }
        : null,
      positions,
      vehicleCount: vehicles.size,
      taskIds: app.state ? [...app.state.tasks.keys()] : [],
      flightIds: app.state ? [...app.state.flights.keys()] : [],
      notificationIds: app.state ? [...app.state.notifications.keys()] : [],
      eventsSeen: stats.events,
      duplicateEvents: stats.duplicates,
      reconnects: stats.reconnects,
      lastEventId: app.stream ? app.stream.lastEventId : "",
      frames: app.frames,
      language: language(),
      timelineDomain: app.timeline ? app.timeline.domain : null,
      timelineBookmarks: app.timeline ? app.timeline.bookmarks.map((b) => ({ id: b.bookmark_id, at: b.at, end: b.end ?? null })) : [],
      dayStart: app.manifest ? app.manifest.start : null,
      dayEnd: app.manifest ? app.manifest.end : null,
    };
  },
  /** Where vehicle `id` is drawn, in CSS pixels relative to the map canvas (or null). */
  screenOf(id) {
    const vehicle = app.state ? app.state.vehicles.get(id) : null;
    return vehicle ? app.map.screen(app.state.positionOf(vehicle, performance.now())) : null;
  },
  /** Drop the stream as a network failure would; the normal reconnect logic resumes it. */
  dropConnection() {
    if (app.stream) app.stream.drop();
  },
  /** Select vehicle `id` on the map (its card opens), as a click on it would. */
  selectVehicle(id) {
    if (app.map) app.map.selectedId = id;
  },
};

/**
 * Test hook: what the last map frame drew, and what each vehicle's card says. `at` is the
 * replay time the map shows (staleness is measured against it); `movers` by id: where
 * (lat, lon of the fix drawn; x, y in CSS px on the canvas), `fix` its time, `drawn` /
 * `faded`, `moving` (still gliding to that fix); `stands`: stand id -> the flight drawn on
 * it; `aircraft`: aircraft id -> the aircraft drawn (lat, lon, heading of the fix drawn,
 * x, y, callsign, flight_id, at_stand, `length` in px, `labelled`); `cards`: vehicle id -> the card's task line;
 * `standLabels`: the stand labels the static layer placed ({id, text, named, x, y}: text is what the map wrote, the label); `terminalLabels`: its terminal names.
 */
window.__replayModel = () => {
  const model = app.map ? app.map.lastModel : { at: null, movers: {}, stands: {} };
  const cards = {};
  if (app.state) for (const id of app.state.vehicles.keys()) cards[id] = cardTaskText(app.state, id);
  return {
    at: model.at,
    position: app.streamPosition,
    staleness: app.state ? app.state.staleness : null,
    movers: model.movers,
    stands: model.stands,
    decision: model.decision ?? null, // the selected decision's candidates as drawn (decisions.js)
    aircraft: model.aircraft ?? {},
    standLabels: app.map ? (app.map.lastStandLabels ?? []).map(({ id, text, named, x, y }) => ({ id, text, named, x, y })) : [],
    terminalLabels: app.map ? (app.map.lastTerminalLabels ?? []) : [],
    callouts: model.callouts ?? [], // callsigns written: {callsign, x, y, w, h} in CSS px
    view: app.map ? app.map.viewModel() : null, // labels, scale bar, overlays, layout on screen (ApronMap.viewModel)
    cards,
    frames: app.frames,
  };
};

// --- connection state ----------------------------------------------------------------------

/** connecting / live / reconnecting / paused / ended / error, from the transport and clock. */
function updateConnection() {
  if (app.connection === "error") return;
  const transport = app.stream ? app.stream.transport : "connecting";
  let state = transport;
  if (transport === "live") {
    state = app.clock.status === "ended" ? "ended" : app.clock.status === "paused" ? "paused" : "live";
  }
  const el = $("connection");
  if (state !== app.connection || el.dataset.lang !== language()) {
    app.connection = state;
    el.dataset.state = state;
    el.dataset.lang = language();
    $("connection-label").textContent = t(`conn.${state}`);
  }
}

function fatal(message) {
  if (app.stream) app.stream.stop();
  app.connection = "error";
  $("connection").dataset.state = "error";
  $("connection-label").textContent = t("conn.error");
  $("overlay").hidden = false;
  $("overlay").classList.add("failed");
  $("overlay-text").textContent = message;
}

// --- the stream ----------------------------------------------------------------------------

/** Start of the tick containing `t` (ticks are aligned to the start of the service day). */
function tickStart(t) {
  const tick = app.manifest.config.tick_ms;
  return t - ((((t - app.manifest.start) % tick) + tick) % tick);
}

function onEvent(name, data) {
  const state = app.state;
  switch (name) {
    case "snapshot":
      state.applySnapshot(data);
      app.streamPosition = data.t;
      app.frameSpans = [];
      $("overlay").hidden = true;
      break;
    case "playback":
      app.streamPlayback = data;
      app.controls.followFilters(data.filters, data.filters_by, data.version);
      app.bookmarks.follow(data.bookmarks_revision);
      if (app.clock.fromPlayback(data)) app.controls.sync();
      break;
    case "vehicle_update":
      state.applyVehicles(data.t, data.vehicles);
      dataAt(data.t);
      state.expireTasks(tickStart(data.t));
      break;
    case "aircraft_update":
      state.applyAircraft(data.t, data.aircraft);
      dataAt(data.t);
      break;
    case "task_update":
      state.applyTasks(data.t, data.tasks);
      dataAt(data.t);
      state.expireTasks(tickStart(data.t));
      break;
    case "flight_update":
      state.applyFlights(data.t, data.flights);
      dataAt(data.t);
      break;
    case "stand_update":
      state.applyDerived("stands", data.t, data.stands);
      dataAt(data.t);
      break;
    case "vehicle_task_update":
      state.applyDerived("vehicle_tasks", data.t, data.vehicle_tasks);
      dataAt(data.t);
      break;
    case "notification":
      state.applyNotifications(data.notifications);
      dataAt(data.t);
      break;
    case "dispatch_decision":
      state.applyDecisions(data.t, data.decisions);
      dataAt(data.t);
      break;
    case "end":
      app.clock.markEnded(data.position);
      app.controls.sync();
      break;
    default:
      break;
  }
  updateConnection();
}

function renewPresence() {
  api.presence(app.sessionId).catch((error) => {
    if (error instanceof ApiError && error.status === 404) fatal(t("toast.sessionGone"));
  });
}

// --- drawing -------------------------------------------------------------------------------

/**
 * What the header clock shows, and why: the playback clock while it and the data agree;
 * the time of the newest data shown when the clock runs ahead of it (high speed merges
 * many ticks into one frame, so the map is up to a frame behind the estimated clock); the
 * newest data's time, stopped, while the stream is down (the map is frozen too).
 * Returns {position, source: "clock" | "data" | "offline", clock}: `clock` is the playback
 * clock the choice was made against. It is read once: at 1024x one step of the page's
 * coarse performance clock (100 µs) is 102 ms of replay, so a second read can disagree.
 */
function shownTime() {
  const clock = app.clock.now();
  const data = app.streamPosition;
  if (data === null) return { position: clock, source: "clock", clock };
  const transport = app.stream ? app.stream.transport : "connecting";
  if (transport !== "live") return { position: Math.min(clock, data), source: "offline", clock };
  if (app.clock.status !== "playing") return { position: clock, source: "clock", clock };
  // A frame at `data` shows the state of its whole tick.
  const tick = app.manifest.config.tick_ms;
  const newest = data + tick - 1;
  if (clock <= newest) return { position: clock, source: "clock", clock };
  // A lag of up to a couple of frames is the merging: the map is at `newest`, say so. A
  // longer one is a stretch without data (nothing moved, or outside the recording): the
  // state is unchanged there, so the playback clock is the truth.
  if (clock - newest > Math.max(2 * tick, 2.5 * frameSpan())) return { position: clock, source: "clock", clock };
  return { position: newest, source: clock - newest > tick ? "data" : "clock", clock };
}

/** Replay ms between the stream's recent frames (median of the last few). */
function frameSpan() {
  const spans = [...app.frameSpans].sort((a, b) => a - b);
  return spans.length ? spans[Math.floor(spans.length / 2)] : app.manifest.config.tick_ms;
}

/**
 * A frame event at replay time `t`: the data time moves on; remember the frame's span. A
 * frame sent after the stream's playback event of the clock's version proves the session's
 * clock was at `t`: the page's estimate catches up if it fell behind (older frames, still
 * in flight when a control answer moved the clock, prove nothing about the new clock).
 */
function dataAt(t) {
  if (app.streamPosition !== null && t > app.streamPosition) {
    app.frameSpans.push(t - app.streamPosition);
    if (app.frameSpans.length > 8) app.frameSpans.shift();
  }
  app.streamPosition = t;
  if (app.streamPlayback && app.streamPlayback.version === app.clock.version) app.clock.reached(t);
}

function drawClock(position, source) {
  const text = app.time.hms(position);
  const panel = $("clock-panel");
  if (panel.dataset.source !== source || panel.dataset.lang !== language()) {
    panel.dataset.source = source;
    panel.dataset.lang = language();
    const label = $("clock-source");
    label.hidden = source === "clock";
    label.textContent = source === "clock" ? "" : t(`clock.source.${source}`);
    label.title = source === "clock" ? "" : t(`clock.sourceTitle.${source}`);
    app.clockText = ""; // the labels below follow the language
  }
  if (source === "data") {
    const ahead = t("clock.playbackAt", { at: app.time.hms(app.clock.now()) });
    if ($("clock-source").dataset.ahead !== ahead) {
      $("clock-source").dataset.ahead = ahead;
      $("clock-source").title = `${t("clock.sourceTitle.data")} ${ahead}`;
    }
  }
  if (text === app.clockText) return;
  app.clockText = text;
  $("clock").textContent = text;
  $("clock").dataset.position = String(Math.floor(position));
  const date = app.time.date(position);
  if ($("clock-date").textContent !== date) $("clock-date").textContent = date;
  const offset = app.time.offsetLabel(position);
  const tzTitle = t("clock.tzTitle", {
    zone: app.time.zoneName(position, language()),
    id: app.manifest.airport.timezone,
    offset,
  });
  if ($("clock-tz").textContent !== offset) $("clock-tz").textContent = offset;
  if ($("clock-tz").title !== tzTitle) $("clock-tz").title = tzTitle;
}

function frame() {
  app.frames += 1;
  const shown = shownTime();
  app.shown = shown; // the test hook reads what was drawn, and the clock it was drawn against
  const position = shown.position;
  drawClock(position, shown.source);
  app.timeline.draw(position);
  app.follower.update(performance.now());
  app.kpis.follow();
  app.map.draw(app.state, { trails: app.trails, vehicleTypes: app.vehicleTypes, dataTime: position });
  app.compare.draw(position); // compare mode's second map, at the same replay time
  app.panels.render(app.state, position);
  app.decisions.render(app.state);
  app.decisions.measure(position);
  app.card.update(app.state, position);
  app.aircraftCard.update(app.state, position);
  // The vehicles on the map: one whose last fix is past the hide age is not drawn.
  const drawn = Object.values(app.map.lastModel.movers).filter((m) => m.drawn).length;
  const count = `${drawn}|${language()}`;
  app.turnaround.update(position);
  app.vehicleDay.update(position);
  const dayButton = $("vehicle-day-open");
  if (dayButton.disabled === Boolean(app.map.selectedId)) dayButton.disabled = !app.map.selectedId;
  const countEl = $("vehicle-count");
  if (countEl.dataset.count !== count) {
    countEl.dataset.count = count;
    countEl.textContent = t("map.vehicles", { n: drawn });
  }
  requestAnimationFrame(frame);
}

// --- start ---------------------------------------------------------------------------------

function renderHeader() {
  const airport = app.manifest.airport;
  $("airport-name").textContent = language() === "zh" && airport.name_zh ? airport.name_zh : airport.name;
  $("airport-name").title = airport.airport_id;
}

function fillDays(airports) {
  const select = $("day-select");
  select.replaceChildren(
    ...airports.flatMap((a) =>
      a.days.map((day) => {
        const option = document.createElement("option");
        option.value = `${a.airport}|${day}`;
        option.textContent = `${a.airport} · ${day}`;
        return option;
      }),
    ),
  );
  select.value = `${app.manifest.airport.airport_id}|${app.manifest.service_date}`;
  select.addEventListener("change", () => {
    // Another day: a new session for it (the day picker is the only way to leave this one).
    const [airport, day] = select.value.split("|");
    const url = new URL(location.href);
    url.searchParams.delete("session");
    url.searchParams.set("airport", airport);
    url.searchParams.set("day", day);
    location.assign(url);
  });
}

function relayoutLegend() {
  const legend = $("legend");
  // A small map has its legend folded until the reader opens or folds it (its title): open,
  // it would cover a quarter of the apron. Decided again when compare mode halves the map.
  if (legend.dataset.chosen !== "true") {
    legend.dataset.collapsed = String(app.map.width < 700 || app.map.height < 540);
  }
  // The map sees the legend's new size (ApronMap.watchCovers): its initial view keeps
  // clear of it, and no map label goes under it.
  buildLegend(legend, relayoutLegend);
}

function bindMap() {
  $("zoom-in").addEventListener("click", () => app.map.zoomBy(1.4));
  $("zoom-out").addEventListener("click", () => app.map.zoomBy(1 / 1.4));
  $("zoom-fit").addEventListener("click", () => app.map.resetView());
  $("trails-toggle").addEventListener("change", (e) => {
    app.trails = e.target.checked;
  });
  app.map.onHover = (id, x, y) => {
    app.card.hover = id ? { id, x, y } : null;
  };
}

/** What a deep link asked to look at, once the session is open: a selection, a bookmark. */
function openMoment(moment) {
  if (!moment) return;
  const [kind, id] = (moment.select ?? "").split(":");
  if (kind === "vehicle" && id) app.map.selectedId = id;
  if (kind === "flight" && id) app.panels.highlightFlight(id, moment.t ?? null);
  if (moment.bookmark) app.bookmarks.focusById(moment.bookmark);
}

function start(view, manifest, airports, moment) {
  app.sessionId = view.session_id;
  app.view = view;
  app.manifest = manifest;
  app.time = new AirportTime(manifest.airport.timezone);
  for (const vehicle of manifest.catalogue.vehicles) {
    app.vehicles.set(vehicle.vehicle_id, vehicle);
    app.vehicleTypes.set(vehicle.vehicle_id, vehicle.vehicle_type);
  }
  for (const flight of manifest.catalogue.flights) app.flightsById.set(flight.id, flight);

  app.map = new ApronMap($("map"), manifest);
  app.state = new ReplayState((lat, lon) => app.map.project(lat, lon));
  app.timeline = new Timeline($("timeline"), manifest, app.time);
  app.quality = new QualityPanel($("quality-chip"), $("quality-panel"), manifest);
  app.card = new VehicleCard($("vehicle-card"), {
    map: app.map,
    time: app.time,
    vehicles: app.vehicles,
    flights: app.flightsById,
  });
  app.aircraftCard = new AircraftCard($("aircraft-card"), { map: app.map, time: app.time, flights: app.flightsById });
  app.panels = new Panels({
    time: app.time,
    flightsById: app.flightsById,
    onPickVehicle: (id) => {
      app.map.selectedId = id; // a task row selects its vehicle on the map
    },
  });
  app.decisions = new DecisionsPanel($("decisions"), {
    time: app.time,
    map: app.map,
    seek: (at) => app.controls.seek(at),
    api,
    airport: manifest.airport.airport_id,
    date: manifest.service_date,
    dayStart: manifest.start,
  });
  // A vehicle picked on the map shows the decision behind the task it works on now.
  app.map.onSelect = (id) => {
    const current = id && app.state ? app.state.vehicleTasks.get(id)?.current : null;
    if (current) app.decisions.select(current.id);
  };
  // A task row (or a decision in the feed) shows the decision behind that task.
  document.querySelector("[data-testid=task-list] tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-task-id]");
    if (row) app.decisions.select(row.dataset.taskId, true);
  });
  app.controls = new Controls({ api, app, onChange: updateConnection, onFatal: fatal });
  app.bookmarks = new Bookmarks({ api, app, seek: (at) => app.controls.seek(at), toast });
  app.events = new EventNavigator({ api, app, seek: (at) => app.controls.seek(at), toast });
  app.follower = new Follower(app);
  app.kpis = new KpiPanel({ api, app });
  app.compare = new CompareView({ api, app, onSplit: relayoutLegend });


  // The day's history views (a turnaround, a vehicle's day) read the same day.
  const dayViews = {
    api,
    time: app.time,
    airport: manifest.airport.airport_id,
    date: manifest.service_date,
    onSeek: (position) => app.controls.seek(position),
  };
  app.turnaround = new TurnaroundView($("turnaround"), {
    ...dayViews,
    onPickVehicle: (id) => {
      app.map.selectedId = id;
    },
  });
  app.vehicleDay = new VehicleDayView($("vehicle-day"), dayViews);
  // A flight row opens its turnaround (the board's rows carry their leg id); the map's
  // "Day" button the selected vehicle's day (one of the two views at a time).
  document.querySelector("[data-testid=flight-board] tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-flight-id]");
    if (!row) return;
    app.vehicleDay.close();
    app.turnaround.open(row.dataset.flightId);
  });
  $("vehicle-day-open").addEventListener("click", () => {
    if (!app.map.selectedId) return;
    app.turnaround.close();
    app.vehicleDay.open(app.map.selectedId);
  });
  app.clock.fromView(view);

  renderHeader();
  fillDays(airports);
  relayoutLegend();
  app.map.watchCovers(mapOverlays());
  app.controls.buildFilters();
  app.controls.bind();
  app.bookmarks.bind();
  app.bookmarks.follow(view.bookmarks_revision);
  app.events.bind();
  app.follower.bind();
  app.kpis.bind();
  app.compare.bind();
  bindNotifications(app, (at) => app.controls.seek(at));
  app.events.load().catch((error) => {
    console.warn("dispatch-replay: the day's events did not load", error);
    toast(t("events.failed"));
  });
  openMoment(moment);
  app.controls.syncShare();
  app.controls.sync();
  bindMap();
  $("lang-toggle").addEventListener("click", () => setLanguage(language() === "zh" ? "en" : "zh"));
  if (signIn.enabled) {
    const signOut = $("sign-out");
    const showUser = (user) => {
      signOut.hidden = !user;
      signOut.title = user ? user.email || user.preferred_username || user.sub || "" : "";
    };
    showUser(signIn.user());
    signIn.onChange(showUser);
    signOut.addEventListener("click", () => signIn.signOut());
  }
  onLanguageChange(() => {
    renderHeader();
    relayoutLegend();
    app.controls.relabel();
    app.bookmarks.render();
    app.events.renderLegend();
    if (!$("kpi-popover").hidden) app.kpis.refresh();
    app.decisions.relabel();
    app.compare.relabel();
    app.clockText = ""; // redraw the clock's labels
  });

  app.stream = new ReplayStream({
    api,
    sessionId: view.session_id,
    url: view.stream.url,
    onEvent,
    onTransport: updateConnection,
    onView: (fresh) => app.controls.applyView(fresh),
    onFatal: (error) =>
      fatal(
        error?.code === "access_revoked"
          ? t("toast.accessRevoked")
          : error?.message || t("toast.sessionGone"),
      ),
  });
  app.stream.start();
  setInterval(renewPresence, PRESENCE_INTERVAL_MS);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") renewPresence();
  });
  app.ready = true;
  requestAnimationFrame(frame);
}

async function boot() {
  applyTranslations();
  try {
    const { view, manifest, airports, moment } = await resolveSession(api, params);
    start(view, manifest, airports, moment);
  } catch (error) {
    console.warn("dispatch-replay: could not start", error);
    fatal(t("error.start", { msg: error.message }));
  }
}

boot();
