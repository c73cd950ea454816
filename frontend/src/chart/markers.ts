// Point markers: several per-request series of one run in one chart (cold
// and warm latency, their times to first audio) share the run's colour, so
// they are told apart by marker, as lines are by dash: a dot, a ring, a
// square, a hollow square.

import type uPlot from "uplot";

export interface Marker {
  shape: "dot" | "square";
  hollow: boolean;
}

const MARKERS: Marker[] = [
  { shape: "dot", hollow: false },
  { shape: "dot", hollow: true },
  { shape: "square", hollow: false },
  { shape: "square", hollow: true },
];

/** The `i`-th points series' marker of a run. */
export function markerOf(i: number | undefined): Marker {
  return MARKERS[(i ?? 0) % MARKERS.length];
}

/** uPlot's point options for a marker in `color` (`panel`: the card's colour, inside a hollow one). */
export function pointOptions(m: Marker, color: string, panel: string): uPlot.Series.Points {
  const hollow = m.hollow ? { size: 5.5, width: 1.25, stroke: color, fill: panel } : { size: m.shape === "square" ? 4 : 3.5, width: 0, stroke: color, fill: color };
  return { show: true, ...hollow, ...(m.shape === "square" ? { paths: squarePoints } : {}) };
}

/** Squares where uPlot draws circles. */
const squarePoints: uPlot.Series.Points.PathBuilder = (u, si, i0, i1, filtIdxs) => {
  const s = u.series[si];
  const p = s.points ?? {};
  const ratio = window.devicePixelRatio || 1;
  const width = (p.width ?? 0) * ratio;
  const half = (((p.size ?? 4) - (p.width ?? 0)) / 2) * ratio;
  const path = new Path2D();
  const xs = u.data[0];
  const ys = u.data[si];
  const square = (i: number) => {
    const y = ys[i];
    if (y === null || y === undefined) return;
    const px = Math.round(u.valToPos(xs[i] as number, "x", true));
    const py = Math.round(u.valToPos(y, s.scale ?? "y", true));
    path.rect(px - half, py - half, 2 * half, 2 * half);
  };
  if (filtIdxs) filtIdxs.forEach(square);
  else for (let i = i0; i <= i1; i++) square(i);
  // A zero lineWidth is ignored by the canvas: no stroke path then.
  return { stroke: width > 0 ? path : null, fill: path };
};

/** The legend swatch's CSS background (a square's series class is `pts-square`, chart/options.ts). */
export function legendBackground(m: Marker, color: string, panel: string): string {
  if (!m.hollow) return color;
  return m.shape === "dot" ? `radial-gradient(circle closest-side, ${panel} 55%, ${color} 62%)` : `linear-gradient(${panel}, ${panel}) center / 50% 50% no-repeat, ${color}`;
}

/** A marker drawn on a 2D canvas at (x, y), radius `r` (the PNG export's legend). */
export function drawMarker(ctx: CanvasRenderingContext2D, m: Marker, x: number, y: number, r: number, color: string, panel: string): void {
  ctx.beginPath();
  if (m.shape === "dot") ctx.arc(x, y, r, 0, 2 * Math.PI);
  else ctx.rect(x - r, y - r, 2 * r, 2 * r);
  ctx.fillStyle = m.hollow ? panel : color;
  ctx.fill();
  if (m.hollow) {
    ctx.strokeStyle = color;
    ctx.lineWidth = r / 2;
    ctx.stroke();
  }
}
