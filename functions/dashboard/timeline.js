// The timeline: the day's activity histogram, the session's range, the playback cursor and
// the session's bookmarks; click or drag to seek (the seek is sent when the pointer is
// released); a click on a bookmark's flag opens the bookmark.
import { fitCanvasToParent } from "./canvas.js";

const FONT = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace';
const LABEL_HEIGHT = 16;
const TICK_STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720];
const BOOKMARK_COLOR = "#a78bfa";
const BOOKMARK_HIT_PX = 6; // how near a flag a click opens it
// Event markers (navigate.js): one thin lane per kind along the top of the bars.
const MARKER_TOP = 8; // below the playback cursor's head
const MARKER_LANE = 5;
const MARKER_HIT_PX = 4;

export class Timeline {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {object} manifest the day's manifest (start, end, histogram)
   * @param {import("./clock.js").AirportTime} time
   */
  constructor(canvas, manifest, time) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.time = time;
    this.histogram = manifest.histogram;
    this.dayStart = manifest.start;
    this.dayEnd = manifest.end;
    this.rangeStart = manifest.start;
    this.rangeEnd = manifest.end;
    this.zoomToRange = false;
    this.preview = null; // replay time under a dragging pointer
    this.hover = null;
    this.onSeek = () => {};
    this.onBookmark = () => {};
    this.onMarker = () => {};
    this.bookmarks = [];
    this.markers = [];
    this.markerColors = {};
    this.markerLanes = [];
    this.markerKind = null; // the kind next/previous steps through: drawn brighter
    this.width = 1;
    this.height = 1;
    this.dpr = 1;
    this.prepareBins();
    this.bindPointer();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.resize();
  }

  prepareBins() {
    const h = this.histogram;
    const activity = h.task_events.map((v, i) => v + h.flight_events[i] + 2 * h.notifications[i]);
    this.activity = activity;
    this.moving = h.moving_vehicles;
    this.activityMax = Math.max(1, ...activity);
    this.movingMax = Math.max(1, ...h.moving_vehicles);
  }

  get domain() {
    return this.zoomToRange
      ? [this.rangeStart, this.rangeEnd]
      : [this.dayStart, this.dayEnd];
  }

  /** The session's bookmarks, drawn as flags (and bands for ranges). */
  setBookmarks(bookmarks) {
    this.bookmarks = bookmarks;
  }

  /** The day's navigable events (navigate.js), drawn as ticks in one lane per kind. */
  setMarkers(events, colors, kinds) {
    this.markers = events;
    this.markerColors = colors;
    this.markerLanes = kinds;
  }

  /** The event whose tick is at (x, y) (CSS px), or null. */
  markerAt(x, y) {
    const lane = Math.floor((y - MARKER_TOP) / MARKER_LANE);
    if (lane < 0 || lane >= this.markerLanes.length) return null;
    const kind = this.markerLanes[lane];
    let best = null;
    let bestDistance = MARKER_HIT_PX;
    for (const event of this.markers) {
      if (event.kind !== kind) continue;
      const distance = Math.abs(this.xOf(event.t) - x);
      if (distance <= bestDistance) {
        best = event;
        bestDistance = distance;
      }
    }
    return best;
  }

  /** The bookmark whose flag is at x (CSS px), or null. */
  bookmarkAt(x) {
    let best = null;
    let bestDistance = BOOKMARK_HIT_PX;
    for (const bookmark of this.bookmarks) {
      const distance = Math.abs(this.xOf(bookmark.at) - x);
      if (distance <= bestDistance) {
        best = bookmark;
        bestDistance = distance;
      }
    }
    return best;
  }

  setRange(start, end) {
    this.rangeStart = start;
    this.rangeEnd = end;
  }

  resize() {
    ({ dpr: this.dpr, width: this.width, height: this.height } = fitCanvasToParent(this.canvas));
  }

  xOf(t) {
    const [a, b] = this.domain;
    return ((t - a) / (b - a)) * this.width;
  }

  timeAt(x) {
    const [a, b] = this.domain;
    return a + (Math.min(Math.max(x, 0), this.width) / this.width) * (b - a);
  }

  /** A time the session can seek to: inside [range start, range end). */
  clampToRange(t) {
    return Math.round(Math.min(Math.max(t, this.rangeStart), this.rangeEnd - 1000));
  }

  bindPointer() {
    const canvas = this.canvas;
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return this.clampToRange(this.timeAt(e.clientX - r.left));
    };
    canvas.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      const r = canvas.getBoundingClientRect();
      const flag = this.bookmarkAt(e.clientX - r.left);
      if (flag) {
        this.onBookmark(flag); // a flag opens its bookmark (seek + select), not a plain seek
        return;
      }
      const marker = this.markerAt(e.clientX - r.left, e.clientY - r.top);
      if (marker) {
        this.onMarker(marker); // a marker seeks to its event and selects what it names
        return;
      }
      canvas.setPointerCapture(e.pointerId);
      this.preview = at(e);
    });
    canvas.addEventListener("pointermove", (e) => {
      const r = canvas.getBoundingClientRect();
      this.hover = { x: e.clientX - r.left, y: e.clientY - r.top, t: this.timeAt(e.clientX - r.left) };
      if (this.preview !== null) this.preview = at(e);
    });
    canvas.addEventListener("pointerleave", () => {
      this.hover = null;
    });
    canvas.addEventListener("pointerup", (e) => {
      if (this.preview === null) return;
      const target = at(e);
      this.preview = null;
      this.onSeek(target);
    });
    canvas.addEventListener("pointercancel", () => {
      this.preview = null;
    });
  }

  /** The hover text of a marker (set by navigate.js: the kind in the page's language). */
  markerLabel(event) {
    return this.describeMarker ? this.describeMarker(event) : `${this.time.hms(event.t)} ${event.kind}`;
  }

  tickStepMs() {
    const [a, b] = this.domain;
    const minutes = (b - a) / 60000;
    const maxLabels = Math.max(2, this.width / 64);
    for (const step of TICK_STEPS_MIN) if (minutes / step <= maxLabels) return step * 60000;
    return 1440 * 60000;
  }

  /** Draw with the playback cursor at `position`. */
  draw(position) {
    const ctx = this.ctx;
    const w = this.width;
    const barsHeight = this.height - LABEL_HEIGHT;
    const [a, b] = this.domain;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, w, this.height);
    ctx.fillStyle = "#0d1522";
    ctx.fillRect(0, 0, w, barsHeight);

    // Histogram: vehicles moving (area), task / flight / notification activity (bars).
    const h = this.histogram;
    const binWidth = (h.bin_ms / (b - a)) * w;
    const first = Math.max(0, Math.floor((a - h.start) / h.bin_ms));
    const last = Math.min(this.activity.length - 1, Math.ceil((b - h.start) / h.bin_ms));
    ctx.fillStyle = "rgba(45, 212, 191, 0.18)";
    ctx.beginPath();
    ctx.moveTo(this.xOf(h.start + first * h.bin_ms), barsHeight);
    for (let i = first; i <= last; i += 1) {
      const x = this.xOf(h.start + i * h.bin_ms);
      const y = barsHeight - (this.moving[i] / this.movingMax) * (barsHeight - 6);
      ctx.lineTo(x, y);
      ctx.lineTo(x + binWidth, y);
    }
    ctx.lineTo(this.xOf(h.start + (last + 1) * h.bin_ms), barsHeight);
    ctx.closePath();
    ctx.fill();
    ctx.fillStyle = "rgba(96, 165, 250, 0.85)";
    for (let i = first; i <= last; i += 1) {
      const v = this.activity[i];
      if (!v) continue;
      const x = this.xOf(h.start + i * h.bin_ms);
      const height = Math.max(1.5, (v / this.activityMax) * (barsHeight - 8));
      ctx.fillRect(x + 0.5, barsHeight - height, Math.max(1, binWidth - 1), height);
    }

    // Outside the session's range: shaded.
    const rs = this.xOf(this.rangeStart);
    const re = this.xOf(this.rangeEnd);
    ctx.fillStyle = "rgba(5, 8, 14, 0.68)";
    if (rs > 0) ctx.fillRect(0, 0, rs, barsHeight);
    if (re < w) ctx.fillRect(re, 0, w - re, barsHeight);
    ctx.fillStyle = "#f59e0b";
    if (rs >= 0 && rs <= w) ctx.fillRect(rs - 1, 0, 2, barsHeight);
    if (re >= 0 && re <= w) ctx.fillRect(re - 1, 0, 2, barsHeight);

    // Time labels in airport time.
    const step = this.tickStepMs();
    const offset = this.time.offsetMinutes(a) * 60000;
    ctx.font = `10px ${FONT}`;
    ctx.textBaseline = "top";
    ctx.textAlign = "center";
    for (let t = Math.ceil((a + offset) / step) * step - offset; t <= b; t += step) {
      const x = this.xOf(t);
      ctx.fillStyle = "rgba(148, 163, 184, 0.25)";
      ctx.fillRect(Math.round(x), barsHeight, 1, 4);
      if (x < 14 || x > w - 14) continue;
      ctx.fillStyle = "rgba(148, 163, 184, 0.85)";
      ctx.fillText(this.time.hm(t), x, barsHeight + 3);
    }

    // Bookmarks: a flag at each moment, a band under a range.
    for (const bookmark of this.bookmarks) {
      const bx = this.xOf(bookmark.at);
      if (bookmark.end) {
        ctx.fillStyle = "rgba(167, 139, 250, 0.16)";
        ctx.fillRect(bx, 0, this.xOf(bookmark.end) - bx, barsHeight);
      }
      if (bx < -BOOKMARK_HIT_PX || bx > w + BOOKMARK_HIT_PX) continue;
      ctx.fillStyle = BOOKMARK_COLOR;
      ctx.fillRect(Math.round(bx), 0, 1.5, barsHeight);
      ctx.beginPath();
      ctx.moveTo(bx, barsHeight - 12);
      ctx.lineTo(bx + 7, barsHeight - 9);
      ctx.lineTo(bx, barsHeight - 6);
      ctx.closePath();
      ctx.fill();
    }

    // Event markers: a lane per kind, the chosen kind brighter.
    this.markerLanes.forEach((kind, lane) => {
      ctx.globalAlpha = this.markerKind === null || this.markerKind === kind ? 1 : 0.5;
      ctx.fillStyle = this.markerColors[kind];
      const y = MARKER_TOP + lane * MARKER_LANE;
      for (const event of this.markers) {
        if (event.kind !== kind) continue;
        const mx = this.xOf(event.t);
        if (mx < -2 || mx > w + 2) continue;
        ctx.fillRect(Math.round(mx) - 1, y, 2, MARKER_LANE - 1);
      }
    });
    ctx.globalAlpha = 1;

    // Hover guide.
    if (this.hover && this.preview === null) {
      ctx.fillStyle = "rgba(226, 232, 240, 0.35)";
      ctx.fillRect(Math.round(this.hover.x), 0, 1, barsHeight);
    }

    // Playback cursor (or the drag preview).
    const shown = this.preview ?? position;
    const x = this.xOf(shown);
    ctx.fillStyle = "#f8fafc";
    ctx.fillRect(Math.round(x) - 1, 0, 2, barsHeight);
    ctx.beginPath();
    ctx.moveTo(x - 5, 0);
    ctx.lineTo(x + 5, 0);
    ctx.lineTo(x, 6);
    ctx.closePath();
    ctx.fill();
    const flag = this.preview === null && this.hover ? this.bookmarkAt(this.hover.x) : null;
    const marker = this.preview === null && this.hover && !flag ? this.markerAt(this.hover.x, this.hover.y) : null;
    const label = this.preview !== null
      ? this.time.hms(this.preview)
      : flag
        ? `${this.time.hm(flag.at)} ${flag.text.slice(0, 40)}`
        : marker
          ? this.markerLabel(marker)
        : this.hover
          ? this.time.hm(this.hover.t)
          : null;
    if (label) {
      const lx = this.preview !== null ? x : this.hover.x;
      ctx.font = `600 11px ${FONT}`;
      const tw = ctx.measureText(label).width + 10;
      const bx = Math.min(Math.max(lx - tw / 2, 0), w - tw);
      ctx.fillStyle = "rgba(15, 23, 42, 0.92)";
      // Below the marker lanes when it names a marker (it must not hide what it names).
      const ly = marker ? MARKER_TOP + this.markerLanes.length * MARKER_LANE + 2 : 8;
      ctx.fillRect(bx, ly, tw, 16);
      ctx.fillStyle = "#e2e8f0";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText(label, bx + tw / 2, ly + 8);
    }
  }
}
