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
