// Canvas sizing shared by the map and the timeline.

/** Size `canvas` to its parent box at the device pixel ratio; returns the CSS size. */
export function fitCanvasToParent(canvas) {
  const box = canvas.parentElement.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, box.width);
  const height = Math.max(1, box.height);
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  return { dpr, width, height };
}

/**
 * A layer drawn once and reused: a canvas stacked under the visible one (which is then
 * transparent and cleared each frame), redrawn only when its key (the view: size, pan,
 * zoom, language) changes. Stacked rather than blitted: an unchanged layer costs the
 * compositor nothing per frame, where a drawImage of the whole view is a full-size copy.
 * `renders` counts the redraws (the page's test hook shows it: it must not grow while
 * only movers move).
 */
export class CachedLayer {
  /** @param {HTMLCanvasElement} above the canvas drawn on top of this layer */
  constructor(above) {
    this.canvas = document.createElement("canvas");
    this.canvas.className = "map-layer";
    this.canvas.setAttribute("aria-hidden", "true");
    above.before(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.key = null;
    this.renders = 0;
  }

  /** Redraw with `render(ctx)` at the size of `above` if `key` differs from the last one. */
  update(key, above, render) {
    if (key === this.key) return;
    if (this.canvas.width !== above.width) this.canvas.width = above.width;
    if (this.canvas.height !== above.height) this.canvas.height = above.height;
    this.canvas.style.width = above.style.width;
    this.canvas.style.height = above.style.height;
    this.ctx.setTransform(1, 0, 0, 1, 0, 0);
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    render(this.ctx);
    this.key = key;
    this.renders += 1;
  }
}

/**
 * Label placement without overlap: boxes (CSS px) are placed in priority order, each only if
 * it touches no box placed before it. A uniform grid of buckets keeps the test near O(1)
 * per label, so thousands of candidate labels cost little.
 */
export class LabelGrid {
  constructor(width, height, cell = 48) {
    this.cell = cell;
    this.columns = Math.max(1, Math.ceil(width / cell));
    this.rows = Math.max(1, Math.ceil(height / cell));
    this.buckets = new Map();
    this.width = width;
    this.height = height;
  }

  /** Place `box` {x, y, w, h} (top-left, size) if it is on screen and overlaps nothing placed. */
  place(box) {
    if (box.x + box.w < 0 || box.y + box.h < 0 || box.x > this.width || box.y > this.height) return false;
    const cells = this.cellsOf(box);
    for (const key of cells) {
      for (const other of this.buckets.get(key) ?? []) {
        if (box.x < other.x + other.w && other.x < box.x + box.w && box.y < other.y + other.h && other.y < box.y + box.h) {
          return false;
        }
      }
    }
    this.reserve(box);
    return true;
  }

  /** Hold `box` whatever it overlaps: what no label may go under (an overlay, say). */
  reserve(box) {
    for (const key of this.cellsOf(box)) {
      const bucket = this.buckets.get(key);
      if (bucket) bucket.push(box);
      else this.buckets.set(key, [box]);
    }
  }

  cellsOf(box) {
    const c0 = Math.max(0, Math.floor(box.x / this.cell));
    const c1 = Math.min(this.columns - 1, Math.floor((box.x + box.w) / this.cell));
    const r0 = Math.max(0, Math.floor(box.y / this.cell));
    const r1 = Math.min(this.rows - 1, Math.floor((box.y + box.h) / this.cell));
    const keys = [];
    for (let r = r0; r <= r1; r += 1) for (let c = c0; c <= c1; c += 1) keys.push(r * this.columns + c);
    return keys;
  }
}
