// X-axis modes and the aligned tables uPlot draws.
//
// - "wall": seconds since the epoch, shown in local time.
// - "relative": seconds since the run's first record (each run its own zero).
// - "step": the training step. Training series (train/, val/, gradients/)
//   carry it as their step. Everything else (system samples, inference)
//   carries a millisecond clock, so it is placed by wall time: through the
//   `sampler/training_step` series (the latest training step at each
//   sample), else by interpolating the training series' wall times.

import type { Series } from "./api";
import { TRAINING_STEP_TAG, usesTrainingStep } from "./specs";

export type XMode = "wall" | "relative" | "step";

export const X_MODES: { id: XMode; label: string; title: string }[] = [
  { id: "wall", label: "Wall", title: "Wall-clock time (local)" },
  { id: "relative", label: "Relative", title: "Time since the run's first record" },
  { id: "step", label: "Step", title: "Training step (system samples placed by the training step they were taken at)" },
];

/** What one run's x mapping needs. */
export class RunClock {
  /** wall times and training steps, increasing in wall time */
  private mapWall: Float64Array = new Float64Array(0);
  private mapStep: Float64Array = new Float64Array(0);
  /** step function (sampler) or linear interpolation (training wall times) */
  private mapKind: "step" | "linear" | "none" = "none";

  constructor(readonly t0: number) {}

  /** Builds the wall → training step map from what was fetched for the run. */
  static build(t0: number, series: Map<string, Series>): RunClock {
    const clock = new RunClock(t0);
    const sampler = series.get(TRAINING_STEP_TAG);
    if (sampler && sampler.value.length > 0) {
      clock.setMap(sampler.wall, sampler.value, "step");
      return clock;
    }
    // Fallback: the training series with the most points.
    let best: Series | null = null;
    for (const s of series.values()) {
      if (usesTrainingStep(s.tag) && (!best || s.wall.length > best.wall.length)) best = s;
    }
    if (best && best.wall.length > 0) clock.setMap(best.wall, best.step, "linear");
    return clock;
  }

  private setMap(wall: Float64Array, step: Float64Array, kind: "step" | "linear"): void {
    const idx = Array.from(wall.keys()).filter((i) => Number.isFinite(wall[i]) && Number.isFinite(step[i]));
    idx.sort((a, b) => wall[a] - wall[b]);
    this.mapWall = Float64Array.from(idx, (i) => wall[i]);
    this.mapStep = Float64Array.from(idx, (i) => step[i]);
    this.mapKind = kind;
  }

  get canMapSteps(): boolean {
    return this.mapKind !== "none";
  }

  /** Training step at wall time `t`, or NaN where it is not known. */
  stepAt(t: number): number {
    const w = this.mapWall;
    const n = w.length;
    if (n === 0 || t < w[0]) return NaN;
    // last index with w[i] <= t
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (w[mid] <= t) lo = mid;
      else hi = mid - 1;
    }
    if (this.mapKind === "step") return this.mapStep[lo];
    if (lo === n - 1) return t === w[lo] ? this.mapStep[lo] : NaN;
    const f = (t - w[lo]) / (w[lo + 1] - w[lo] || 1);
    return this.mapStep[lo] + f * (this.mapStep[lo + 1] - this.mapStep[lo]);
  }

  /** X values of a series in a mode (NaN where a point has no x). */
  xs(s: Series, mode: XMode): Float64Array {
    const n = s.wall.length;
    const out = new Float64Array(n);
    if (mode === "wall") out.set(s.wall);
    else if (mode === "relative") for (let i = 0; i < n; i++) out[i] = s.wall[i] - this.t0;
    else if (usesTrainingStep(s.tag)) out.set(s.step);
    else for (let i = 0; i < n; i++) out[i] = this.stepAt(s.wall[i]);
    return out;
  }
}

/** A point whose value is NaN or ±Inf: drawn as a marker, not as a line point. */
export interface NonFinite {
  x: number;
  value: number;
  wall: number;
  step: number;
}

export interface Table {
  /** [xs, ys...] with null where a line has no finite value at that x */
  data: (Float64Array | (number | null)[])[];
  /** per line (index 0 = first y), its non-finite points */
  nonFinite: NonFinite[][];
  /** per line, how many points had no x in this mode */
  dropped: number[];
}

/**
 * Aligns several (x, y) lines on the union of their x values. Within one
 * line, points with the same x keep the last finite value (a paused job
 * sampled at one training step); NaN/Inf go to `nonFinite`.
 */
export function alignLines(lines: { x: Float64Array; s: Series }[]): Table {
  const nonFinite: NonFinite[][] = [];
  const dropped: number[] = [];
  const cleaned: { x: Float64Array; y: Float64Array }[] = [];
  let total = 0;
  for (const { x, s } of lines) {
    const n = x.length;
    const order = new Uint32Array(n);
    let m = 0;
    let sorted = true;
    let prev = -Infinity;
    let drop = 0;
    const nf: NonFinite[] = [];
    for (let i = 0; i < n; i++) {
      const xi = x[i];
      if (!Number.isFinite(xi)) {
        drop++;
        continue;
      }
      if (!Number.isFinite(s.value[i])) {
        nf.push({ x: xi, value: s.value[i], wall: s.wall[i], step: s.step[i] });
        continue;
      }
      if (xi < prev) sorted = false;
      prev = xi;
      order[m++] = i;
    }
    let idx = order.subarray(0, m);
    if (!sorted) idx = Uint32Array.from(idx).sort((a, b) => x[a] - x[b] || a - b);
    // collapse equal x (keep last)
    const xo: number[] = [];
    const yo: number[] = [];
    for (let k = 0; k < idx.length; k++) {
      const i = idx[k];
      if (xo.length > 0 && xo[xo.length - 1] === x[i]) yo[yo.length - 1] = s.value[i];
      else {
        xo.push(x[i]);
        yo.push(s.value[i]);
      }
    }
    cleaned.push({ x: Float64Array.from(xo), y: Float64Array.from(yo) });
    nf.sort((a, b) => a.x - b.x);
    nonFinite.push(nf);
    dropped.push(drop);
    total += xo.length;
  }

  // Union of x values (most lines of a chart share the sample clock, so this is small).
  let xs: Float64Array;
  if (cleaned.length === 1) xs = cleaned[0].x;
  else {
    const all = new Float64Array(total);
    let o = 0;
    for (const c of cleaned) {
      all.set(c.x, o);
      o += c.x.length;
    }
    all.sort();
    let u = 0;
    for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[u - 1]) all[u++] = all[i];
    xs = all.slice(0, u);
  }
  const data: (Float64Array | (number | null)[])[] = [xs];
  for (const c of cleaned) {
    const ys: (number | null)[] = new Array(xs.length).fill(null);
    let j = 0;
    for (let i = 0; i < c.x.length; i++) {
      while (xs[j] < c.x[i]) j++;
      ys[j] = c.y[i];
    }
    data.push(ys);
  }
  return { data, nonFinite, dropped };
}
