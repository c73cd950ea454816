// Incremental series: what a refresh merges into the series the tab holds.
//
// A refresh asks each series only for the rows after the last step the tab
// holds (`since_step`, http_api.md); they are appended here. A series that
// grows past what its chart draws is downsampled in the browser the way the
// server does it (tb_plugin_ttsmon/query/downsample.py: per bucket the lowest
// and the highest finite point, and the first NaN/Inf, so spikes and
// non-finite marks survive), always keeping the last point, whose step is
// where the next `since_step` starts.

import type { Series, SeriesPart } from "../api";

/**
 * Indices of the points to keep so that about `maxPoints` remain (ascending,
 * without repeats); the same buckets as the server's `minmax_indices`.
 */
export function minmaxIndices(values: Float64Array, maxPoints: number): number[] {
  const n = values.length;
  if (n <= maxPoints) return Array.from({ length: n }, (_, i) => i);
  const buckets = Math.max(Math.floor(maxPoints / 2), 1);
  const size = Math.ceil(n / buckets);
  const keep: number[] = [];
  for (let start = 0; start < n; start += size) {
    const end = Math.min(n, start + size);
    let lo = -1;
    let hi = -1;
    let bad = -1;
    for (let i = start; i < end; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) {
        if (bad < 0) bad = i;
        continue;
      }
      if (lo < 0 || v < values[lo]) lo = i;
      if (hi < 0 || v > values[hi]) hi = i;
    }
    const picked = [lo, hi, bad].filter((i) => i >= 0).sort((a, b) => a - b);
    for (const i of picked) if (keep[keep.length - 1] !== i) keep.push(i);
  }
  return keep;
}

/** `minmaxIndices` plus the series' last point. */
function withLast(index: number[], n: number): number[] {
  if (n > 0 && index[index.length - 1] !== n - 1) index.push(n - 1);
  return index;
}

function pick(s: Series, index: number[]): Series {
  const take = (a: Float64Array) => Float64Array.from(index, (i) => a[i]);
  return { tag: s.tag, unit: s.unit, kind: s.kind, total: s.total, wall: take(s.wall), step: take(s.step), value: take(s.value) };
}

/** Downsamples `s` to about `maxPoints` (its last point kept) once it holds more than twice that. */
export function capSeries(s: Series, maxPoints: number): Series {
  // Twice the target before cutting: a series growing a point per refresh
  // is re-bucketed once per `maxPoints` new points, not on every refresh.
  if (s.value.length <= 2 * maxPoints) return s;
  return pick(s, withLast(minmaxIndices(s.value, maxPoints), s.value.length));
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The step the next `since_step` asks after (null: ask for the whole series). */
export function lastStepOf(s: Series | undefined): number | null {
  return s && s.step.length ? s.step[s.step.length - 1] : null;
}

/**
 * `held` with the rows of `part` merged in: appended where `part` holds the
 * rows after `held`'s last step, replacing `held` where the series was reset
 * (or asked whole). Rows at or before the held last step are never appended
 * twice, so the seams have neither gaps nor repeats.
 */
export function mergeSeries(held: Series | undefined, part: SeriesPart, maxPoints: number): Series {
  const base: Series = { tag: part.tag, unit: part.unit, kind: part.kind, total: part.total, wall: part.wall, step: part.step, value: part.value };
  if (!held || part.reset) return capSeries(base, maxPoints);
  const last = lastStepOf(held);
  let from = 0;
  if (last !== null) while (from < part.step.length && part.step[from] <= last) from++;
  if (from === part.step.length) return held.total === part.total ? held : { ...held, total: part.total };
  const merged: Series = {
    tag: held.tag,
    unit: part.unit,
    kind: part.kind,
    total: part.total,
    wall: concat(held.wall, part.wall.subarray(from)),
    step: concat(held.step, part.step.subarray(from)),
    value: concat(held.value, part.value.subarray(from)),
  };
  return capSeries(merged, maxPoints);
}
