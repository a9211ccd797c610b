// The apron map: layout from the manifest on a canvas, vehicles on top, pan and zoom.
// World coordinates are metres east / south of the airport's reference point (a local
// equirectangular projection: exact enough over a few kilometres).
import { CachedLayer, LabelGrid, fitCanvasToParent } from "./canvas.js";
import { label, language } from "./i18n.js";
import { lateness } from "./lateness.js";

export const VEHICLE_COLORS = {
  fuel_truck: "#fb923c",
  catering_truck: "#a78bfa",
  baggage_tractor: "#facc15",
  cleaning_van: "#34d399",
  water_truck: "#38bdf8",
  lavatory_truck: "#c8a27a",
  pushback_tug: "#f472b6",
  passenger_bus: "#e2e8f0",
};

export const STATE_RINGS = {
  idle: null,
  en_route: "#f8fafc",
  waiting: "#fbbf24",
  servicing: "#22c55e",
  returning: "#64748b",
};

const COLORS = {
  background: "#0a0f18",
  late: "#ef4444",
  grass: "#0d1420",
  runway: "#1a202b",
  runwayMark: "rgba(226, 232, 240, 0.55)",
  road: "#1d2838",
  roadEdge: "#263449",
  roadCentre: "rgba(148, 163, 184, 0.25)",
  terminal: "#18233a",
  terminalEdge: "#33466a",
  terminalLabel: "rgba(203, 213, 225, 0.75)",
  contactStand: "rgba(96, 165, 250, 0.55)",
  remoteStand: "rgba(45, 212, 191, 0.55)",
  standLabel: "rgba(148, 163, 184, 0.85)",
  aircraft: "rgba(226, 232, 240, 0.85)",
  aircraftMoving: "#e0f2fe",
  aircraftOutline: "#0369a1",
  aircraftLabel: "#bae6fd",
  depotLabel: "rgba(148, 163, 184, 0.8)",
  selection: "#ffffff",
  grid: "rgba(51, 65, 85, 0.22)",
};

const GRID_STEPS_M = [25, 50, 100, 250, 500, 1000, 2000, 5000];

const FONT_UI = 'system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';
const FONT_MONO = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace';
const MIN_SCALE = 0.02; // px per metre
const MAX_SCALE = 12;
const STAND_BOX_M = 44;
const STAND_LABEL_PX = 10;
const STAND_LABEL_GAP_PX = 4;
const MIN_LABELLED_BOX_PX = 14; // stand boxes at least this big get labels wherever there is room
const EDGE_PX = 16; // the initial view's margin at an edge no overlay takes
const COVER_GAP_PX = 4; // labels and the scale bar stay this far from an overlay
const FIT_GAP_PX = 12; // and the initial view this far

/** A terminal's name on the map in the page's language ("Terminal 1" -> "T1 航站楼"). */
export function terminalName(terminal) {
  if (language() !== "zh") return terminal.name;
  const numbered = /^terminal\s*(\w+)$/i.exec(terminal.name.trim());
  if (numbered) return `T${numbered[1]} 航站楼`;
  if (terminal.named === false) {
    // The importer's labels for unnamed buildings (chunker/imports/osm_layout.py).
    const by = /^Building by (.+)$/.exec(terminal.name);
    if (by) return `${by[1]} 旁建筑`;
    const nth = /^Terminal building (\d+)$/.exec(terminal.name);
    if (nth) return `航站楼建筑 ${nth[1]}`;
  }
  return terminal.name; // a name of its own: the layout has no Chinese name for it
}

/** The stands of the layout on show, by id: what standText() names. */
const standsById = new Map();

/**
 * What a person sees for a stand: the layout's label (the source's ref as written,
 * "W06/W07"; a repeat "F70 (2)"; an unnamed stand "Stand near F70" or, far from any
 * designated stand, "Stand 3 (unnamed)"), else its id; the
 * importer's made-up labels in the page's language (chunker/imports/osm_layout.py).
 */
export function standName(stand) {
  const text = stand.label ?? stand.stand_id;
  if (language() !== "zh" || stand.named !== false) return text;
  const near = /^Stand near (.+?)( \(\d+\))?$/.exec(text);
  if (near) return `${near[1]} 附近机位${near[2] ?? ""}`;
  const unnamed = /^Stand (\d+) \(unnamed\)$/.exec(text);
  if (unnamed) return `未命名机位 ${unnamed[1]}`;
  const nth = /^Stand (\d+)$/.exec(text); // layouts imported before "(unnamed)"
  if (nth) return `机位 ${nth[1]}`;
  return text;
}

/** standName() of a stand id (flight board, cards, filters); the id when the layout lacks it. */
export function standText(id) {
  if (id === null || id === undefined) return id;
  const stand = standsById.get(id);
  return stand ? standName(stand) : id;
}

/** A depot's name on the map: in Chinese, what it is (the vehicle type's depot). */
export function depotName(depot) {
  if (language() !== "zh") return depot.name;
  return `${label("vehicle_type", depot.vehicle_type)}停车场`;
}

/** Whether boxes {x, y, w, h} `a` and `b` overlap. */
function overlaps(a, b) {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/** The area (m²) of a closed outline (shoelace). */
function polygonArea(outline) {
  let twice = 0;
  outline.forEach((a, i) => {
    const b = outline[(i + 1) % outline.length];
    twice += a.x * b.y - b.x * a.y;
  });
  return Math.abs(twice) / 2;
}

export class ApronMap {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} manifest the day's manifest (airport.reference_point, layout)
   */
  constructor(canvas, manifest) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    const ref = manifest.airport.reference_point;
    this.lat0 = ref.lat;
    this.lon0 = ref.lon;
    this.mPerLat = 110574;
    this.mPerLon = 111320 * Math.cos((ref.lat * Math.PI) / 180);
    this.layout = this.prepareLayout(manifest.layout);
    this.scale = 0.25;
    this.tx = 0;
    this.ty = 0;
    this.width = 1;
    this.height = 1;
    this.dpr = 1;
    this.userMoved = false;
    // The page's overlays over this map (tools, chips, legend, panels) and where they
    // cover it ({x, y, w, h} in CSS px, COVER_GAP_PX wider each side): measured when any
    // of them or the map changes size (watchCovers), so the initial view, the labels and
    // the scale bar keep clear of them.
    this.coverElements = [];
    this.covers = [];
    this.coversKey = "";
    this.coversLanguage = null; // the language the covers were last measured in (draw)
    this.coverObserver = new ResizeObserver(() => this.measureCovers());
    this.followers = []; // maps whose view follows this one's (compare mode): fit() keeps clear of their covers too
    this.onCoversChange = () => {};
    this.lastScaleBar = null; // where the scale bar was drawn: {x, y, w, h} in CSS px (test hook)
    this.hoverId = null;
    this.selectedId = null;
    this.selectedAircraftId = null; // the aircraft whose card is open
    this.highlightStand = null; // the stand of the flight jumped to
    this.lastStandLabels = []; // what the last frame labelled: [{id, x, y, width}] (test hook)
    this.lastTerminalLabels = []; // terminal names the static layer drew (test hook)
    this.lastTerminalBoxes = []; // and where: [{name, x, y, w, h}] in CSS px (test hook)
    this.staticLayer = new CachedLayer(canvas); // the layout under the movers, redrawn on pan / zoom / resize / language
    this.attribution = manifest.layout.attribution ?? null;
    this.showAttribution(canvas.parentElement, this.attribution);
    // What the last frame drew (test hook, window.__replayModel): movers by id with where
    // and how (faded / hidden), and the stands drawn occupied with the flight on each.
    this.lastModel = { at: null, movers: {}, stands: {}, aircraft: {}, callouts: [] };
    this.onHover = () => {};
    this.onSelect = () => {};
    this.bindPointer();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  /** The layout's source credit in the map's corner (OSM data is ODbL: it must show). */
  showAttribution(pane, attribution) {
    pane.querySelector(".map-attribution")?.remove();
    if (!attribution) return;
    const credit = document.createElement("div");
    credit.className = "map-attribution";
    credit.dataset.testid = "map-attribution";
    const link = document.createElement("a");
    link.href = attribution.url;
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = attribution.license;
    credit.append(`${attribution.text} · `, link);
    pane.append(credit);
    this.watchCovers([credit]);
  }

  /** World metres of a position. */
  project(lat, lon) {
    return { x: (lon - this.lon0) * this.mPerLon, y: (this.lat0 - lat) * this.mPerLat };
  }

  prepareLayout(layout) {
    const p = (point) => this.project(point.lat, point.lon);
    const nodes = new Map(layout.road_nodes.map((n) => [n.node_id, p(n.position)]));
    const roads = layout.road_edges
      .filter((e) => nodes.has(e.from_node) && nodes.has(e.to_node))
      .map((e) => [nodes.get(e.from_node), nodes.get(e.to_node)]);
    const stands = layout.stands.map((s) => ({ ...s, at: p(s.position) }));
    standsById.clear();
    for (const stand of layout.stands) standsById.set(stand.stand_id, stand);
    const depots = layout.depots.map((d) => ({ ...d, at: p(d.position) }));
    const terminals = layout.terminals.map((tm) => {
      const outline = tm.outline.map(p);
      const c = outline.reduce((acc, q) => ({ x: acc.x + q.x, y: acc.y + q.y }), { x: 0, y: 0 });
      return { ...tm, outline, centre: { x: c.x / outline.length, y: c.y / outline.length }, area: polygonArea(outline) };
    });
    // Label priority among terminals: the largest building first.
    const terminalsByArea = [...terminals].sort((a, b) => b.area - a.area);
    const runways = layout.runways.map((r) => ({ ...r, from: p(r.start), to: p(r.end) }));
    // The apron (not the runways) decides the initial view.
    const points = [
      ...nodes.values(),
      ...stands.map((s) => s.at),
      ...depots.map((d) => d.at),
      ...terminals.flatMap((tm) => tm.outline),
    ];
    const bounds = {
      minX: Math.min(...points.map((q) => q.x)) - 60,
      maxX: Math.max(...points.map((q) => q.x)) + 60,
      minY: Math.min(...points.map((q) => q.y)) - 60,
      maxY: Math.max(...points.map((q) => q.y)) + 60,
    };
    const standSpacing = this.medianNeighbourDistance(stands.map((s) => s.at));
    // Alternate neighbours along each row of stands (a row: stands within a stand box of
    // the row's first across it), so crowded labels can go above and below by turns.
    const rows = [];
    for (const stand of [...stands].sort((a, b) => a.at.y - b.at.y)) {
      const row = rows[rows.length - 1];
      if (row && Math.abs(stand.at.y - row[0].at.y) <= STAND_BOX_M) row.push(stand);
      else rows.push([stand]);
    }
    for (const row of rows) {
      row.sort((a, b) => a.at.x - b.at.x).forEach((stand, i) => {
        stand.labelAbove = i % 2 === 1;
      });
    }
    return { roads, stands, depots, terminals, terminalsByArea, runways, bounds, standSpacing };
  }

  medianNeighbourDistance(points) {
    if (points.length < 2) return 80;
    const nearest = points.map((a) => {
      let best = Infinity;
      for (const b of points) if (a !== b) best = Math.min(best, Math.hypot(a.x - b.x, a.y - b.y));
      return best;
    });
    nearest.sort((a, b) => a - b);
    return nearest[Math.floor(nearest.length / 2)];
  }

  // --- view ---------------------------------------------------------------------------

  resize() {
    ({ dpr: this.dpr, width: this.width, height: this.height } = fitCanvasToParent(this.canvas));
    this.measureCovers();
    if (!this.userMoved) this.fit();
  }

  /** Keep clear of `elements` (overlays positioned over the map): see `covers`. */
  watchCovers(elements) {
    for (const element of elements) {
      if (this.coverElements.includes(element)) continue;
      this.coverElements.push(element);
      this.coverObserver.observe(element);
    }
    this.measureCovers();
  }

  /** Where the watched overlays cover the map now; a hidden one covers nothing. */
  measureCovers() {
    const canvas = this.canvas.getBoundingClientRect();
    const covers = [];
    this.coverElements = this.coverElements.filter((element) => element.isConnected);
    for (const element of this.coverElements) {
      const r = element.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      const box = {
        x: Math.floor(r.left - canvas.left) - COVER_GAP_PX,
        y: Math.floor(r.top - canvas.top) - COVER_GAP_PX,
        w: Math.ceil(r.width) + 2 * COVER_GAP_PX,
        h: Math.ceil(r.height) + 2 * COVER_GAP_PX,
      };
      const left = r.left - canvas.left;
      const top = r.top - canvas.top;
      if (left + r.width <= 0 || top + r.height <= 0 || left >= canvas.width || top >= canvas.height) continue;
      covers.push(box);
    }
    const key = covers.map((c) => `${c.x},${c.y},${c.w},${c.h}`).join(";");
    if (key === this.coversKey) return;
    this.covers = covers;
    this.coversKey = key; // part of the static layer's key: labels are placed again
    if (!this.userMoved) this.fit();
    this.onCoversChange();
  }

  /** The initial view's margins: EDGE_PX, and past each cover (this map's and its
   * followers') on the edge where it takes the least of the map; an axis the covers would
   * squeeze to under 40 % of the map keeps only the plain margins. */
  fitInsets() {
    const inset = { top: EDGE_PX, right: EDGE_PX, bottom: EDGE_PX, left: EDGE_PX };
    for (const map of [this, ...this.followers]) {
      for (const c of map.covers) {
        const gap = FIT_GAP_PX - COVER_GAP_PX;
        const edges = [
          ["left", c.x + c.w + gap, map.width],
          ["right", map.width - c.x + gap, map.width],
          ["top", c.y + c.h + gap, map.height],
          ["bottom", map.height - c.y + gap, map.height],
        ];
        const [edge, need] = edges.reduce((best, e) => (e[1] / e[2] < best[1] / best[2] ? e : best));
        inset[edge] = Math.max(inset[edge], need);
      }
    }
    if (this.width - inset.left - inset.right < 0.4 * this.width) inset.left = inset.right = EDGE_PX;
    if (this.height - inset.top - inset.bottom < 0.4 * this.height) inset.top = inset.bottom = EDGE_PX;
    return inset;
  }

  fit() {
    const b = this.layout.bounds;
    const inset = this.fitInsets();
    const width = Math.max(1, this.width - inset.left - inset.right);
    const height = Math.max(1, this.height - inset.top - inset.bottom);
    const scale = Math.min(width / (b.maxX - b.minX), height / (b.maxY - b.minY));
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
    this.tx = inset.left + width / 2 - ((b.minX + b.maxX) / 2) * this.scale;
    this.ty = inset.top + height / 2 - ((b.minY + b.maxY) / 2) * this.scale;
  }

  /** Test hook: where the last static layer put its labels and scale bar, what the
   * overlays cover, and where the layout's bounds are on screen ({x, y, w, h}, CSS px). */
  viewModel() {
    const labels = [
      ...(this.lastRunwayLabels ?? []).map(({ id, x, y, w, h }) => ({ kind: "runway", text: id, x, y, w, h })),
      ...this.lastTerminalBoxes.map(({ name, x, y, w, h }) => ({ kind: "terminal", text: name, x, y, w, h })),
      ...(this.lastDepotLabels ?? []).map(({ name, x, y, w, h }) => ({ kind: "depot", text: name, x, y, w, h })),
      ...this.lastStandLabels.map(({ text, box }) => ({ kind: "stand", text, ...box })),
      ...this.lastModel.callouts.map(({ callsign, x, y, w, h }) => ({ kind: "callsign", text: callsign, x, y, w, h })),
    ];
    return { width: this.width, height: this.height, scaleBar: this.lastScaleBar, covers: this.covers, layout: this.layoutBox(), labels };
  }

  /** The layout's bounds (the apron, as fit() frames it) on screen. */
  layoutBox() {
    const b = this.layout.bounds;
    const a = this.screen({ x: b.minX, y: b.minY });
    const z = this.screen({ x: b.maxX, y: b.maxY });
    return { x: a.x, y: a.y, w: z.x - a.x, h: z.y - a.y };
  }

  resetView() {
    this.userMoved = false;
    this.fit();
  }

  /** Zoom by `factor` keeping screen point (cx, cy) still (default: the centre). */
  zoomBy(factor, cx = this.width / 2, cy = this.height / 2) {
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    const k = scale / this.scale;
    this.tx = cx - (cx - this.tx) * k;
    this.ty = cy - (cy - this.ty) * k;
    this.scale = scale;
    this.userMoved = true;
  }

  screen(p) {
    return { x: p.x * this.scale + this.tx, y: p.y * this.scale + this.ty };
  }

  bindPointer() {
    const canvas = this.canvas;
    let drag = null;
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      canvas.setPointerCapture(e.pointerId);
      drag = { x: e.clientX, y: e.clientY, tx: this.tx, ty: this.ty, moved: false };
    });
    canvas.addEventListener("pointermove", (e) => {
      const r = canvas.getBoundingClientRect();
      const x = e.clientX - r.left;
      const y = e.clientY - r.top;
      if (drag) {
        const dx = e.clientX - drag.x;
        const dy = e.clientY - drag.y;
        if (drag.moved || Math.hypot(dx, dy) > 4) {
          drag.moved = true;
          this.userMoved = true;
          this.tx = drag.tx + dx;
          this.ty = drag.ty + dy;
          canvas.classList.add("dragging");
        }
        return;
      }
      this.hoverAt(x, y);
    });
    const end = (e) => {
      if (!drag) return;
      const wasDrag = drag.moved;
      drag = null;
      canvas.classList.remove("dragging");
      if (!wasDrag && e.type === "pointerup") {
        const r = canvas.getBoundingClientRect();
        const x = e.clientX - r.left;
        const y = e.clientY - r.top;
        const id = this.hitTest(x, y);
        this.selectedId = id;
        // No vehicle there: an aircraft drawn there opens its card (aircraftcard.js).
        this.selectedAircraftId = id ? null : this.hitTestAircraft(x, y);
        this.onSelect(id);
      }
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    canvas.addEventListener("pointerleave", () => {
      if (this.hoverId !== null) {
        this.hoverId = null;
        this.onHover(null, 0, 0);
      }
    });
    canvas.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const r = canvas.getBoundingClientRect();
        const factor = Math.exp(-Math.max(-300, Math.min(300, e.deltaY)) * 0.0022);
        this.zoomBy(factor, e.clientX - r.left, e.clientY - r.top);
      },
      { passive: false },
    );
  }

  hoverAt(x, y) {
    const id = this.hitTest(x, y);
    if (id !== this.hoverId || id !== null) {
      this.hoverId = id;
      this.onHover(id, x, y);
    }
    this.canvas.classList.toggle("pointing", id !== null);
  }

  // --- drawing ------------------------------------------------------------------------

  vehicleSize() {
    return Math.min(26, Math.max(12, 14 * this.scale));
  }

  /** The vehicle drawn under screen point (x, y), if any. */
  hitTest(x, y) {
    if (!this.lastDrawn) return null;
    const radius = Math.max(9, this.vehicleSize() * 0.75);
    let best = null;
    let bestDistance = radius;
    for (const [id, p] of this.lastDrawn) {
      const d = Math.hypot(p.x - x, p.y - y);
      if (d <= bestDistance) {
        best = id;
        bestDistance = d;
      }
    }
    return best;
  }

  /** The aircraft drawn under screen point (x, y) (within half its drawn length), if any. */
  hitTestAircraft(x, y) {
    let best = null;
    let bestDistance = Infinity;
    for (const [id, a] of Object.entries(this.lastModel?.aircraft ?? {})) {
      const d = Math.hypot(a.x - x, a.y - y);
      if (a.drawn && d <= Math.max(10, a.length / 2) && d < bestDistance) {
        best = id;
        bestDistance = d;
      }
    }
    return best;
  }

  /**
   * Draw one frame: the static layout from its cached layer (redrawn only when the view or
   * the language changed), then what the replay moves on top of it.
   * @param {import("./state.js").ReplayState} state
   * @param {object} options {trails: boolean, vehicleTypes: Map<id,type>, dataTime: number}:
   *   `dataTime` is the replay time the map shows (staleness is measured against it)
   */
  draw(state, options) {
    const ctx = this.ctx;
    const now = performance.now();
    if (language() !== this.coversLanguage) {
      // A language switch resizes the overlays too: measure them now rather than when their
      // observer reports after this frame, so the labels are placed once, clear of their
      // new sizes, not twice. (Only then: measuring forces a layout.)
      this.coversLanguage = language();
      this.measureCovers();
    }
    const key = [this.width, this.height, this.dpr, this.scale, this.tx, this.ty, language(), this.coversKey].join("|");
    this.staticLayer.update(key, this.canvas, (layer) => this.drawStatic(layer));
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    this.lastModel = { at: options.dataTime, movers: {}, stands: {}, aircraft: {}, callouts: [] };
    // An aircraft whose own fixes went quiet (a parked aircraft's transponder is often
    // off) is drawn on the stand it holds, like one known only from flight statuses.
    const reporting = new Set();
    for (const [id, aircraft] of state.aircraft ?? []) {
      if (options.dataTime - aircraft.row.t <= state.staleness.fade_after_ms) reporting.add(id);
    }
    // Callsigns go where no stand number, terminal or other callsign is (stand numbers win:
    // a callsign moves to the aircraft's other side, or waits for a closer zoom).
    const callouts = this.calloutGrid();
    this.drawOccupiedStands(ctx, state.stands, reporting, callouts);
    this.drawAircraftMovers(ctx, state, options, now, callouts);
    this.drawVehicles(ctx, state, options, now);
    if (this.overlay) this.overlay(ctx, this); // e.g. a selected decision's candidates (decisions.js)
  }

  /** Everything that does not move: drawn into the cached layer, labels decluttered. */
  drawStatic(ctx) {
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = COLORS.background;
    ctx.fillRect(0, 0, this.width, this.height);
    this.drawGrid(ctx);
    this.drawRunways(ctx);
    this.drawRoads(ctx);
    this.drawTerminals(ctx);
    this.drawStandBoxes(ctx);
    this.drawDepots(ctx);
    this.lastScaleBar = this.scaleBarPlace();
    this.drawLabels(ctx);
    this.drawScaleBar(ctx, this.lastScaleBar);
  }

  /** A faint metric grid: scale and orientation at a glance. */
  drawGrid(ctx) {
    const step = GRID_STEPS_M.find((m) => m * this.scale >= 70) ?? GRID_STEPS_M[GRID_STEPS_M.length - 1];
    const px = step * this.scale;
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = (((this.tx % px) + px) % px); x < this.width; x += px) {
      ctx.moveTo(Math.round(x) + 0.5, 0);
      ctx.lineTo(Math.round(x) + 0.5, this.height);
    }
    for (let y = (((this.ty % px) + px) % px); y < this.height; y += px) {
      ctx.moveTo(0, Math.round(y) + 0.5);
      ctx.lineTo(this.width, Math.round(y) + 0.5);
    }
    ctx.stroke();
  }

  /**
   * Where the scale bar (the grid's step) goes: bottom right; where an overlay covers
   * that corner, left of it along the bottom edge, else above it up the right edge; the
   * first place no cover touches. {x, y, w, h} (what it takes), x1 its right end, line
   * its line's y, px its length, text.
   */
  scaleBarPlace() {
    const step = GRID_STEPS_M.find((m) => m * this.scale >= 70) ?? GRID_STEPS_M[GRID_STEPS_M.length - 1];
    const px = step * this.scale;
    const text = step >= 1000 ? `${step / 1000} km` : `${step} m`;
    // The bar with its label above it (10 px text, its bottom 3 px above the line).
    const at = (x1, line) => ({ x: x1 - px - 2, y: line - 15, w: px + 4, h: 17, x1, line, px, text });
    const blocker = (box) => this.covers.find((c) => overlaps(c, box));
    const start = at(this.width - EDGE_PX, this.height - 18);
    for (const move of [(c, p) => at(c.x - 2, p.line), (c, p) => at(p.x1, c.y - 3)]) {
      let place = start;
      for (let tries = 0; tries <= this.covers.length; tries += 1) {
        const c = blocker(place);
        if (!c) return place;
        place = move(c, place);
        if (place.x < 0 || place.y < 0) break;
      }
    }
    return start; // nowhere clear: the corner, as before there were overlays
  }

  /** The scale bar where scaleBarPlace() put it. */
  drawScaleBar(ctx, place) {
    const { x1, line: y, px, text: label } = place;
    const x0 = x1 - px;
    ctx.lineWidth = 1;
    ctx.strokeStyle = COLORS.standLabel;
    ctx.beginPath();
    ctx.moveTo(x0, y - 4);
    ctx.lineTo(x0, y);
    ctx.lineTo(x1, y);
    ctx.lineTo(x1, y - 4);
    ctx.stroke();
    ctx.fillStyle = COLORS.standLabel;
    ctx.font = `10px ${FONT_MONO}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(label, (x0 + x1) / 2, y - 3);
  }

  drawRunways(ctx) {
    for (const r of this.layout.runways) {
      const a = this.screen(r.from);
      const b = this.screen(r.to);
      const width = Math.max(3, r.width_m * this.scale);
      ctx.lineCap = "butt";
      ctx.strokeStyle = COLORS.runway;
      ctx.lineWidth = width;
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
      ctx.strokeStyle = COLORS.runwayMark;
      ctx.lineWidth = Math.max(1, width * 0.04);
      ctx.setLineDash([Math.max(4, 30 * this.scale), Math.max(4, 20 * this.scale)]);
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
      ctx.setLineDash([]);
    }
  }

  drawRoads(ctx) {
    const width = Math.max(2, 12 * this.scale);
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = COLORS.roadEdge;
    ctx.lineWidth = width + 2;
    this.strokeRoads(ctx);
    ctx.strokeStyle = COLORS.road;
    ctx.lineWidth = width;
    this.strokeRoads(ctx);
    if (width > 6) {
      ctx.strokeStyle = COLORS.roadCentre;
      ctx.lineWidth = 1;
      ctx.setLineDash([6, 6]);
      this.strokeRoads(ctx);
      ctx.setLineDash([]);
    }
  }

  strokeRoads(ctx) {
    ctx.beginPath();
    for (const [from, to] of this.layout.roads) {
      const a = this.screen(from);
      const b = this.screen(to);
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
    }
    ctx.stroke();
  }

  drawTerminals(ctx) {
    for (const tm of this.layout.terminals) {
      ctx.beginPath();
      tm.outline.forEach((q, i) => {
        const s = this.screen(q);
        if (i === 0) ctx.moveTo(s.x, s.y);
        else ctx.lineTo(s.x, s.y);
      });
      ctx.closePath();
      ctx.fillStyle = COLORS.terminal;
      ctx.fill();
      ctx.strokeStyle = COLORS.terminalEdge;
      ctx.lineWidth = 1.2;
      ctx.stroke();
    }
  }

  standBox() {
    return Math.max(5, STAND_BOX_M * this.scale);
  }

  drawStandBoxes(ctx) {
    const box = this.standBox();
    ctx.lineWidth = 1;
    for (const stand of this.layout.stands) {
      const s = this.screen(stand.at);
      if (s.x < -box || s.y < -box || s.x > this.width + box || s.y > this.height + box) continue;
      const remote = stand.kind === "remote";
      ctx.save();
      ctx.translate(s.x, s.y);
      ctx.rotate((stand.heading * Math.PI) / 180);
      ctx.strokeStyle = remote ? COLORS.remoteStand : COLORS.contactStand;
      if (remote) ctx.setLineDash([3, 2]);
      ctx.strokeRect(-box / 2, -box / 2, box, box);
      ctx.setLineDash([]);
      ctx.restore();
    }
  }

  /**
   * Every label of the static layer, decluttered: placed in priority order (runways,
   * terminals, depots, stands), each only where it overlaps no label placed before it, so a
   * zoomed-out view shows fewer labels instead of a blob. Stand labels try their preferred
   * side (alternating along a row) first, then the other side.
   */
  drawLabels(ctx) {
    const grid = this.coverGrid();
    const placed = (box) => grid.place(box);
    ctx.fillStyle = COLORS.standLabel;
    ctx.font = `600 11px ${FONT_MONO}`;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    this.lastRunwayLabels = [];
    for (const r of this.layout.runways) {
      const width = Math.max(3, r.width_m * this.scale);
      if (width <= 6) continue;
      const w = ctx.measureText(r.runway_id).width;
      // At the runway's start, else (under the legend, say) further along it.
      const a = this.screen(r.from);
      const b = this.screen(r.to);
      for (const f of [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]) {
        const x = Math.min(Math.max(a.x + f * (b.x - a.x), 6) + 4, this.width - 6 - w);
        const y = a.y + f * (b.y - a.y) - width / 2 - 8;
        if (!placed({ x, y: y - 7, w, h: 14 })) continue;
        ctx.fillText(r.runway_id, x, y);
        this.lastRunwayLabels.push({ id: r.runway_id, x, y: y - 7, w, h: 14 });
        break;
      }
    }
    this.lastTerminalLabels = [];
    this.lastTerminalBoxes = [];
    this.drawTerminalLabels(ctx, placed, true);
    this.lastDepotLabels = [];
    const depotSize = Math.max(7, 26 * this.scale);
    if (this.scale > 0.45) {
      ctx.fillStyle = COLORS.depotLabel;
      ctx.font = `10px ${FONT_UI}`;
      ctx.textAlign = "left";
      for (const depot of this.layout.depots) {
        const s = this.screen(depot.at);
        const name = depotName(depot);
        const x = s.x + depotSize / 2 + 4;
        const box = { x, y: s.y - 6, w: ctx.measureText(name).width, h: 12 };
        if (!placed(box)) continue;
        ctx.fillText(name, x, s.y);
        this.lastDepotLabels.push({ id: depot.depot_id, name, ...box });
      }
    }
    this.lastStandLabels = [];
    this.drawStandLabels(ctx, placed, true);
    // A building or stand the source gave no name ("Building by D-pier", "Stand near
    // F70") is labelled last: only where no named terminal, depot or stand label wants the room.
    this.drawTerminalLabels(ctx, placed, false);
    this.drawStandLabels(ctx, placed, false);
  }

  /** Terminal names, the largest building first: the named ones or the unnamed ones. */
  drawTerminalLabels(ctx, placed, named) {
    ctx.fillStyle = COLORS.terminalLabel;
    ctx.font = `${named ? "600 12px" : "11px"} ${FONT_UI}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const tm of this.layout.terminalsByArea) {
      if ((tm.named !== false) !== named) continue;
      const centre = this.screen(tm.centre);
      const name = terminalName(tm);
      const w = ctx.measureText(name).width;
      const box = { x: centre.x - w / 2 - 2, y: centre.y - 8, w: w + 4, h: 16 };
      if (!placed(box)) continue;
      ctx.fillText(name, centre.x, centre.y);
      this.lastTerminalLabels.push(name);
      this.lastTerminalBoxes.push({ name, named, ...box });
    }
  }

  /** Stand labels (standName), the named stands' or the unnamed ones'. */
  drawStandLabels(ctx, placed, named) {
    const box = this.standBox();
    ctx.font = `${STAND_LABEL_PX}px ${FONT_MONO}`;
    if (this.standLabelWidth === undefined) {
      // The zoom at which stands get labels goes by the stands' own refs, not by the
      // longer made-up labels of unnamed ones (those take the room that is left).
      const refs = this.layout.stands.filter((st) => st.named !== false);
      this.standLabelWidth = Math.max(0, ...refs.map((st) => ctx.measureText(standName(st)).width));
    }
    // Zoomed out, no stand is labelled: neighbouring stands need half the widest label's
    // width between them (labels alternate sides), or the stand box a readable size (a real
    // layout has stands close together somewhere; the collision test thins those).
    const spacing = this.layout.standSpacing * this.scale;
    this.standLabelsRoomy = spacing >= this.standLabelWidth + STAND_LABEL_GAP_PX;
    const labels = this.lastStandLabels;
    if (spacing * 2 < this.standLabelWidth + STAND_LABEL_GAP_PX && box < MIN_LABELLED_BOX_PX) return;
    ctx.fillStyle = COLORS.standLabel;
    ctx.textAlign = "center";
    if (!named) ctx.font = `${STAND_LABEL_PX}px ${FONT_UI}`;
    const h = STAND_LABEL_PX + 2;
    for (const stand of this.layout.stands) {
      if ((stand.named !== false) !== named) continue;
      const text = standName(stand);
      const s = this.screen(stand.at);
      const width = ctx.measureText(text).width;
      const w = width + STAND_LABEL_GAP_PX;
      const sides = stand.labelAbove && !this.standLabelsRoomy ? [true, false] : [false, true];
      for (const above of sides) {
        const y = above ? s.y - box / 2 - 2 : s.y + box / 2 + 2;
        const top = above ? y - h : y;
        if (!placed({ x: s.x - w / 2, y: top, w, h })) continue;
        ctx.textBaseline = above ? "bottom" : "top";
        ctx.fillText(text, s.x, y);
        labels.push({ id: stand.stand_id, text, named, x: s.x, y, above, width, box: { x: s.x - width / 2, y: top, w: width, h } });
        break;
      }
    }
  }

  /** A label grid holding what no label may go under: the overlays (tools, chips,
   * legend, panels, the layout's credit) and the scale bar. */
  coverGrid() {
    const grid = new LabelGrid(this.width, this.height);
    for (const c of this.covers) grid.reserve(c);
    if (this.lastScaleBar) grid.reserve(this.lastScaleBar);
    return grid;
  }

  /** A label grid holding the covers and the static layer's stand and terminal labels. */
  calloutGrid() {
    const grid = this.coverGrid();
    for (const l of this.lastStandLabels) grid.place({ x: l.box.x - 1, y: l.box.y, w: l.box.w + 2, h: l.box.h });
    for (const b of this.lastTerminalBoxes ?? []) grid.place(b);
    return grid;
  }

  /** Write `callsign` centred on x, below `below` or else above `above` (screen y), where
   * `grid` has room; the box it took, or null (not written). */
  placeCallsign(ctx, grid, callsign, x, below, above) {
    const width = ctx.measureText(callsign).width;
    const h = STAND_LABEL_PX + 2;
    for (const y of [below, above - h]) {
      const box = { x: x - width / 2 - 2, y, w: width + 4, h };
      if (!grid.place(box)) continue;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(callsign, x, y + 1);
      this.lastModel.callouts.push({ callsign, ...box }); // test hook: what was written where
      return box;
    }
    return null;
  }

  /** Per frame: the aircraft on occupied stands (the server's occupancy), the jumped-to stand. */
  drawOccupiedStands(ctx, occupied, reporting = new Set(), callouts = this.calloutGrid()) {
    const box = this.standBox();
    const labelled = this.standLabelsRoomy && box > 22 ? new Set(this.lastStandLabels.map((l) => l.id)) : null;
    for (const stand of this.layout.stands) {
      // The server's occupancy (state.stands): the aircraft of a turnaround from on-block
      // to off-block, never re-derived here from flight statuses.
      const flight = occupied.get(stand.stand_id);
      const highlighted = stand.stand_id === this.highlightStand;
      if (!flight && !highlighted) continue;
      const s = this.screen(stand.at);
      if (flight && flight.source === "aircraft" && reporting.has(flight.aircraft_id)) {
        // Held by an aircraft that reports: drawAircraftMovers draws it where its fix says.
        this.lastModel.stands[stand.stand_id] = flight.flight_id;
      } else if (flight) {
        this.lastModel.stands[stand.stand_id] = flight.flight_id;
        ctx.save();
        ctx.translate(s.x, s.y);
        ctx.rotate((stand.heading * Math.PI) / 180);
        this.drawAircraft(ctx, Math.max(14, 38 * this.scale));
        ctx.restore();
        if (labelled && labelled.has(stand.stand_id)) {
          ctx.fillStyle = COLORS.terminalLabel;
          ctx.font = `${STAND_LABEL_PX}px ${FONT_MONO}`;
          this.placeCallsign(ctx, callouts, flight.callsign, s.x, s.y + box / 2 + 2, s.y - box / 2 - 2);
        }
      }
      if (highlighted) {
        ctx.strokeStyle = COLORS.selection;
        ctx.lineWidth = 2;
        ctx.strokeRect(s.x - box / 2 - 4, s.y - box / 2 - 4, box + 8, box + 8);
        ctx.lineWidth = 1;
      }
    }
  }

  /** A simple airliner silhouette, nose up, `length` px long, at the origin. */
  drawAircraft(ctx, length) {
    const l = length / 2;
    ctx.fillStyle = COLORS.aircraft;
    ctx.beginPath();
    ctx.moveTo(0, -l);
    ctx.quadraticCurveTo(l * 0.09, -l * 0.92, l * 0.09, -l * 0.7);
    ctx.lineTo(l * 0.09, -l * 0.2);
    ctx.lineTo(l * 0.95, l * 0.18);
    ctx.lineTo(l * 0.95, l * 0.3);
    ctx.lineTo(l * 0.09, l * 0.12);
    ctx.lineTo(l * 0.07, l * 0.72);
    ctx.lineTo(l * 0.36, l * 0.92);
    ctx.lineTo(l * 0.36, l);
    ctx.lineTo(0, l * 0.93);
    ctx.lineTo(-l * 0.36, l);
    ctx.lineTo(-l * 0.36, l * 0.92);
    ctx.lineTo(-l * 0.07, l * 0.72);
    ctx.lineTo(-l * 0.09, l * 0.12);
    ctx.lineTo(-l * 0.95, l * 0.3);
    ctx.lineTo(-l * 0.95, l * 0.18);
    ctx.lineTo(-l * 0.09, -l * 0.2);
    ctx.lineTo(-l * 0.09, -l * 0.7);
    ctx.quadraticCurveTo(-l * 0.09, -l * 0.92, 0, -l);
    ctx.fill();
  }

  /**
   * Aircraft from their own surface fixes (aircraft_update): the airliner silhouette at the
   * fix's heading, true to scale (~38 m) but never smaller than 16 px, outlined so it reads
   * apart from the parked-by-flight-status silhouettes and from vehicles (arrows); callsign
   * labels decluttered. An aircraft whose last fix is older than the fade age is not drawn:
   * it took off or left the surface coverage.
   */
  drawAircraftMovers(ctx, state, options, now, grid = this.calloutGrid()) {
    if (!state.aircraft || state.aircraft.size === 0) return;
    const length = Math.max(16, 38 * this.scale);
    ctx.font = `${STAND_LABEL_PX}px ${FONT_MONO}`;
    for (const [id, aircraft] of [...state.aircraft.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const row = aircraft.row;
      const fresh = options.dataTime - row.t <= state.staleness.fade_after_ms;
      const at = state.positionOf(aircraft, now);
      const s = this.screen(at);
      const flight = row.flight_id ? state.flights.get(row.flight_id) : null;
      const callsign = row.callsign ?? flight?.callsign ?? row.registration ?? id;
      const model = { drawn: fresh, lat: row.lat, lon: row.lon, heading: row.heading, fix: row.t, x: s.x, y: s.y };
      Object.assign(model, { callsign, flight_id: row.flight_id, at_stand: row.at_stand, length, labelled: false });
      this.lastModel.aircraft[id] = model;
      if (!fresh) continue;
      if (s.x < -length || s.y < -length || s.x > this.width + length || s.y > this.height + length) continue;
      ctx.save();
      ctx.translate(s.x, s.y);
      ctx.rotate((at.h * Math.PI) / 180);
      this.drawAircraft(ctx, length);
      ctx.fillStyle = COLORS.aircraftMoving;
      ctx.fill();
      ctx.strokeStyle = COLORS.aircraftOutline;
      ctx.lineWidth = 1.5;
      ctx.stroke();
      ctx.restore();
      ctx.fillStyle = COLORS.aircraftLabel;
      model.labelled = this.placeCallsign(ctx, grid, callsign, s.x, s.y + length / 2 + 1, s.y - length / 2 - 1) !== null;
    }
  }

  drawDepots(ctx) {
    const size = Math.max(7, 26 * this.scale);
    for (const depot of this.layout.depots) {
      const s = this.screen(depot.at);
      ctx.fillStyle = "rgba(15, 23, 42, 0.9)";
      ctx.strokeStyle = VEHICLE_COLORS[depot.vehicle_type] ?? "#94a3b8";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.rect(s.x - size / 2, s.y - size / 2, size, size);
      ctx.fill();
      ctx.stroke();
    }
  }

  drawVehicles(ctx, state, options, now) {
    const size = this.vehicleSize();
    const drawn = new Map();
    const pulse = 0.5 + 0.5 * Math.sin(now / 260);
    // A mover that stopped reporting fades, then is no longer drawn (state.freshness).
    const freshness = new Map();
    for (const [id, vehicle] of state.vehicles) freshness.set(id, state.freshness(vehicle, options.dataTime));
    // Trails first, under every vehicle.
    for (const [id, vehicle] of state.vehicles) {
      if (!options.trails && id !== this.selectedId) continue;
      if (freshness.get(id) === "hidden") continue;
      const trail = vehicle.trail;
      if (trail.length < 2) continue;
      const head = state.positionOf(vehicle, now);
      const color = VEHICLE_COLORS[options.vehicleTypes.get(id)] ?? "#94a3b8";
      ctx.strokeStyle = color;
      ctx.lineWidth = Math.max(1.5, size * 0.16);
      ctx.lineCap = "round";
      const points = [...trail.slice(0, -1), head];
      for (let i = 1; i < points.length; i += 1) {
        const a = this.screen(points[i - 1]);
        const b = this.screen(points[i]);
        ctx.globalAlpha = 0.05 + 0.5 * (i / points.length);
        ctx.beginPath();
        ctx.moveTo(a.x, a.y);
        ctx.lineTo(b.x, b.y);
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
    }
    // Idle vehicles under active ones.
    const order = [...state.vehicles.entries()].sort(
      (a, b) => (a[1].row.state === "idle" ? 0 : 1) - (b[1].row.state === "idle" ? 0 : 1),
    );
    for (const [id, vehicle] of order) {
      const at = state.positionOf(vehicle, now);
      const s = this.screen(at);
      const fresh = freshness.get(id);
      const { lat, lon, t: fix } = vehicle.row;
      const moving = vehicle.duration > 0 && now < vehicle.start + vehicle.duration;
      // Late for its task (docs/api.md, "Lateness"): a red ring.
      const task = state.vehicleTask(id).current;
      const late = task !== null && lateness(task, options.dataTime).lateNow;
      this.lastModel.movers[id] = { drawn: fresh !== "hidden", faded: fresh === "faded", lat, lon, fix, x: s.x, y: s.y, moving, late };
      if (fresh === "hidden") continue;
      drawn.set(id, s);
      if (s.x < -40 || s.y < -40 || s.x > this.width + 40 || s.y > this.height + 40) continue;
      const color = VEHICLE_COLORS[options.vehicleTypes.get(id)] ?? "#94a3b8";
      const vehicleState = vehicle.row.state;
      const ring = STATE_RINGS[vehicleState];
      ctx.save();
      ctx.translate(s.x, s.y);
      if (id === this.selectedId || id === this.hoverId) {
        ctx.strokeStyle = COLORS.selection;
        ctx.lineWidth = 1.5;
        ctx.globalAlpha = id === this.selectedId ? 0.95 : 0.55;
        ctx.beginPath();
        ctx.arc(0, 0, size * 0.95, 0, Math.PI * 2);
        ctx.stroke();
        ctx.globalAlpha = 1;
      }
      if (late) {
        ctx.strokeStyle = COLORS.late;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(0, 0, size * 1.15, 0, Math.PI * 2);
        ctx.stroke();
      }
      if (vehicleState === "servicing" && fresh === "fresh") {
        ctx.fillStyle = `rgba(34, 197, 94, ${0.12 + 0.18 * pulse})`;
        ctx.beginPath();
        ctx.arc(0, 0, size * 0.8, 0, Math.PI * 2);
        ctx.fill();
      }
      ctx.rotate((at.h * Math.PI) / 180);
      const h = size / 2;
      ctx.beginPath();
      ctx.moveTo(0, -h);
      ctx.lineTo(h * 0.68, h * 0.78);
      ctx.lineTo(0, h * 0.42);
      ctx.lineTo(-h * 0.68, h * 0.78);
      ctx.closePath();
      const faded = fresh === "faded";
      ctx.globalAlpha = faded ? 0.28 : vehicleState === "idle" ? 0.5 : 1;
      ctx.fillStyle = color;
      ctx.fill();
      ctx.globalAlpha = faded ? 0.5 : 1;
      if (faded) ctx.setLineDash([2, 2]);
      if (ring) {
        ctx.strokeStyle = ring;
        ctx.lineWidth = 1.3;
        ctx.stroke();
      } else {
        ctx.strokeStyle = "rgba(0, 0, 0, 0.6)";
        ctx.lineWidth = 1;
        ctx.stroke();
      }
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      ctx.restore();
    }
    this.lastDrawn = drawn;
  }
}
