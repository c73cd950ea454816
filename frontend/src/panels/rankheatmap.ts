// One job metric as a ranks x time heatmap (the Job view's default): a row
// per rank, a column per time bucket, one canvas. 64 ranks get ~4 px each,
// so the rows are labelled every k-th rank (never overlapping) and the worst
// rank's label is always there, highlighted.

import type { JobMetric, JobRank, JobView } from "../api";
import { clear, el } from "../dom";
import { formatClock, formatDateTime, formatDuration, formatValue } from "../format";
import type { Theme } from "../theme";
import { VIRIDIS_GRADIENT, VIRIDIS_LUT } from "./colors";
import { standsOut } from "../jobs";

/** Row height in CSS px: 14 for a few ranks, ~4 at 64, at least 2 (a 128-rank job: 256 px). */
export function rowHeightPx(ranks: number): number {
  return Math.max(2, Math.min(14, Math.round(256 / Math.max(1, ranks))));
}
/** A rank label's height in CSS px: labels are at least this far apart. */
const LABEL_PX = 13;
/** Label every k-th row: the smallest of these (or the ranks per node) that keeps labels apart. */
const LABEL_STEPS = [1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 256, 512, 1024];
/** The colour scale spans these quantiles of the metric's values: one outlier rank must not flatten the rest. */
const LOW_Q = 0.02;
const HIGH_Q = 0.98;


function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const x = q * (sorted.length - 1);
  const i = Math.floor(x);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i] + (x - i) * (sorted[j] - sorted[i]);
}

function sortedFinite(values: Iterable<number>): Float64Array {
  const out: number[] = [];
  for (const v of values) if (Number.isFinite(v)) out.push(v);
  return Float64Array.from(out).sort();
}

/**
 * The colour scale's ends: the 2nd and 98th percentile of all cells, so a
 * moment's spike (a checkpoint, one slow batch) does not flatten the rest,
 * widened to every rank's median, so a rank that is off all the time (the
 * straggler: 1 of 64 ranks is under 2 % of the cells) keeps its own end of
 * the scale instead of stretching the healthy ranks' jitter over all of it.
 */
export function robustRange(rows: Float64Array[]): [number, number] | null {
  const all = sortedFinite((function* () {
    for (const r of rows) yield* r;
  })());
  if (all.length === 0) return null;
  let lo = quantile(all, LOW_Q);
  let hi = quantile(all, HIGH_Q);
  for (const r of rows) {
    const m = quantile(sortedFinite(r), 0.5);
    if (m < lo) lo = m;
    if (m > hi) hi = m;
  }
  if (!(hi > lo)) {
    lo = all[0];
    hi = all[all.length - 1];
  }
  return [lo, hi];
}

/**
 * The rows with short holes filled: a rank's value holds until its next
 * point when they are at most ~1.5 typical spacings apart (a metric sampled
 * every 5 s in 1 s buckets), so the map is not striped; a longer hole (a
 * stalled rank, a rank that started late) stays empty.
 */
export function fillShortGaps(rows: Float64Array[]): Float64Array[] {
  const gaps: number[] = [];
  for (const r of rows) {
    let last = -1;
    for (let c = 0; c < r.length; c++) {
      if (!Number.isFinite(r[c])) continue;
      if (last >= 0) gaps.push(c - last);
      last = c;
    }
  }
  if (gaps.length === 0) return rows;
  gaps.sort((a, b) => a - b);
  const typical = gaps[Math.floor(gaps.length / 2)];
  const maxStep = Math.max(1, Math.round(typical * 1.5));
  if (maxStep <= 1) return rows;
  return rows.map((r) => {
    const out = Float64Array.from(r);
    let last = -1;
    for (let c = 0; c < r.length; c++) {
      if (!Number.isFinite(r[c])) continue;
      if (last >= 0 && c - last > 1 && c - last <= maxStep) out.fill(r[last], last + 1, c);
      last = c;
    }
    return out;
  });
}

/** Which rows get a label: every k-th (k from LABEL_STEPS or the ranks per node), the worst always. */
export function labelledRows(ranks: JobRank[], rowPx: number, worstRow: number): number[] {
  const perNode = ranks.filter((r) => r.node_rank === ranks[0]?.node_rank).length;
  const steps = [...LABEL_STEPS, perNode].filter((k) => k > 0).sort((a, b) => a - b);
  const k = steps.find((s) => s * rowPx >= LABEL_PX) ?? ranks.length;
  const out: number[] = [];
  const room = Math.ceil(LABEL_PX / rowPx);
  for (let i = 0; i < ranks.length; i += k) {
    if (worstRow >= 0 && Math.abs(i - worstRow) < room) continue;
    out.push(i);
  }
  if (worstRow >= 0) out.push(worstRow);
  return out.sort((a, b) => a - b);
}

export class RankHeatmap {
  readonly root: HTMLElement;
  private readonly labels = el("div", { class: "job-hm-labels" });
  private readonly canvas = el("canvas", { class: "job-hm-canvas", attrs: { role: "img" } });
  private readonly tip = el("div", { class: "job-hm-tip", attrs: { role: "tooltip" } });
  private readonly plot = el("div", { class: "job-hm-plot" }, this.canvas, this.tip);
  private readonly axis = el("div", { class: "job-hm-axis" });
  private readonly legend = el("div", { class: "job-hm-legend" });
  private rows: Float64Array[] = [];
  private range: [number, number] | null = null;
  private rowPx = 4;

  constructor(
    private readonly view: JobView,
    private readonly metric: JobMetric,
  ) {
    this.tip.hidden = true;
    this.root = el("div", { class: "job-hm" }, el("div", { class: "job-hm-wrap" }, this.labels, el("div", { class: "job-hm-main" }, this.plot, this.axis)), this.legend);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.rows = fillShortGaps(metric.values);
    this.range = robustRange(metric.values);
    this.rowPx = rowHeightPx(view.ranks.length);
    this.build();
  }

  private worstRow(): number {
    const w = this.metric.worst;
    return w && standsOut(this.metric) ? this.view.ranks.findIndex((r) => r.rank === w.rank && r.run === w.run) : -1;
  }

  /** The parts that do not depend on the width: labels, axis, legend. */
  private build(): void {
    const { view, metric } = this;
    const ranks = view.ranks;
    const worst = this.worstRow();
    this.labels.style.height = `${ranks.length * this.rowPx}px`;
    for (const i of labelledRows(ranks, this.rowPx, worst)) {
      const label = el("div", { class: `job-hm-label${i === worst ? " worst" : ""}`, title: ranks[i].run, dataset: { rank: String(ranks[i].rank) } }, `rank ${ranks[i].rank}`);
      label.style.top = `${(i + 0.5) * this.rowPx}px`;
      this.labels.appendChild(label);
    }
    const start = view.start_wall_time_s;
    const end = view.end_wall_time_s;
    if (start !== null && end !== null) {
      this.axis.append(el("span", null, formatDateTime(start)), el("span", null, formatDateTime(end)));
    }
    const bar = el("span", { class: "job-hm-bar" });
    bar.style.background = VIRIDIS_GRADIENT;
    if (this.range && this.range[0] === this.range[1]) {
      this.legend.append(el("span", null, `every value ${formatValue(this.range[0], metric.unit)}`), el("span", { class: "job-hm-nodata" }, "no value"));
    } else if (this.range) {
      const [lo, hi] = this.range;
      this.legend.append(
        el("span", null, `≤ ${formatValue(lo, metric.unit)}`),
        bar,
        el("span", null, `≥ ${formatValue(hi, metric.unit)}`),
        el("span", { class: "job-hm-nodata" }, "no value"),
        el("span", { class: "job-hm-legend-note" }, `colour: ${metric.title.toLowerCase()}${metric.unit ? ` (${metric.unit})` : ""}, 2nd to 98th percentile of all ranks (and every rank's median); hover for rank, time and value`),
      );
    } else {
      this.legend.append(el("span", { class: "job-hm-legend-note" }, "No values yet"));
    }
    this.canvas.setAttribute("aria-label", `${metric.title}: ${ranks.length} ranks over ${view.buckets} time buckets`);
  }

  /** Draws at the plot's width (called again when it changes). */
  draw(theme: Theme): void {
    const cssW = Math.floor(this.plot.clientWidth);
    const ranks = this.view.ranks.length;
    const cols = this.view.buckets;
    if (cssW <= 0 || ranks === 0 || cols === 0) return;
    const cssH = ranks * this.rowPx;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    // One pixel per cell, scaled up without smoothing: no per-cell drawing calls.
    const img = new ImageData(cols, ranks);
    const px = img.data;
    const range = this.range;
    if (range) {
      const [lo, hi] = range;
      const span = hi > lo ? hi - lo : 1;
      for (let r = 0; r < ranks; r++) {
        const row = this.rows[r];
        for (let c = 0; c < cols; c++) {
          const v = row[c];
          if (!Number.isFinite(v)) continue;
          const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / span)) : 0.5;
          const li = Math.round(t * 255) * 4;
          const o = (r * cols + c) * 4;
          px[o] = VIRIDIS_LUT[li];
          px[o + 1] = VIRIDIS_LUT[li + 1];
          px[o + 2] = VIRIDIS_LUT[li + 2];
          px[o + 3] = 255;
        }
      }
    }
    const cells = document.createElement("canvas");
    cells.width = cols;
    cells.height = ranks;
    cells.getContext("2d")?.putImageData(img, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = theme.noData;
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.legend.style.setProperty("--no-data", theme.noData);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, 0, 0, this.canvas.width, this.canvas.height);
    // Node boundaries: a hairline where the node changes.
    ctx.fillStyle = theme.panel;
    const nodes = this.view.ranks;
    for (let r = 1; r < ranks; r++) {
      if (nodes[r].node_rank === nodes[r - 1].node_rank && nodes[r].host === nodes[r - 1].host) continue;
      ctx.fillRect(0, Math.round(r * this.rowPx * dpr) - Math.max(1, Math.round(dpr / 2)), this.canvas.width, Math.max(1, Math.round(dpr)));
    }
    // The worst rank: a mark at both ends of its row.
    const worst = this.worstRow();
    if (worst >= 0) {
      ctx.fillStyle = theme.severity.critical;
      const y = Math.round(worst * this.rowPx * dpr);
      const h = Math.max(2, Math.round(this.rowPx * dpr));
      ctx.fillRect(0, y, Math.round(3 * dpr), h);
      ctx.fillRect(this.canvas.width - Math.round(3 * dpr), y, Math.round(3 * dpr), h);
    }
  }

  private hover(e: MouseEvent): void {
    const view = this.view;
    const rect = this.canvas.getBoundingClientRect();
    const ri = Math.floor((e.clientY - rect.top) / this.rowPx);
    const ci = Math.floor(((e.clientX - rect.left) / rect.width) * view.buckets);
    const rank = view.ranks[ri];
    if (!rank || ci < 0 || ci >= view.buckets) {
      this.tip.hidden = true;
      return;
    }
    const raw = this.metric.values[ri][ci];
    const held = this.rows[ri][ci];
    clear(this.tip);
    this.tip.append(
      el("div", { class: "job-hm-tip-title" }, `rank ${rank.rank}`, el("span", { class: "job-hm-tip-host" }, " on ", el("bdi", null, rank.host))),
      el("bdi", { class: "job-hm-tip-run" }, rank.run),
    );
    if (view.start_wall_time_s !== null && view.bucket_s) {
      const t = view.start_wall_time_s + ci * view.bucket_s;
      this.tip.appendChild(el("div", null, `${formatDateTime(t)} – ${formatClock(t + view.bucket_s)} (${formatDuration(view.bucket_s)})`));
    }
    const value = Number.isFinite(raw)
      ? `${this.metric.title}: ${formatValue(raw, this.metric.unit)}`
      : Number.isFinite(held)
        ? `${this.metric.title}: ${formatValue(held, this.metric.unit)} (its last value; no point in this bucket)`
        : "no value in this bucket";
    this.tip.appendChild(el("div", { class: "job-hm-tip-value" }, value));
    this.tip.dataset.rank = String(rank.rank);
    this.tip.hidden = false;
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    this.tip.style.left = `${Math.max(0, Math.min(x + 14, rect.width - 260))}px`;
    this.tip.style.top = `${y + 14}px`;
  }
}
