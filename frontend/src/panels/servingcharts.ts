// The Serving view's charts: each stage's share of the latency per time
// window, stacked (uPlot); time to first audio per window (uPlot); and the
// latency histogram of each window (one canvas). All three share the x
// range [start, end) of the answer's buckets and the same plot margins, so a
// window lines up from one to the next; the two uPlot charts share a cursor.

import uPlot from "uplot";

import type { ServingView } from "../api";
import { panelTimeAxis } from "../chart/options";
import { AXIS_FONT } from "../chart/style";
import { append, clear, el } from "../dom";
import { axisFormatter, formatClock, formatDateTime, formatDuration, formatNumber, formatValue } from "../format";
import { naturalCompare } from "../specs";
import type { Theme } from "../theme";
import { ramp, VIRIDIS, VIRIDIS_GRADIENT, VIRIDIS_LUT } from "./colors";

const SYNC_KEY = "ttsmon-serving";
/** The y axis' width and the right padding of every plot (the histogram's label column and margin match). */
export const AXIS_PX = 64;
export const PAD_RIGHT_PX = 14;
export const STACK_HEIGHT_PX = 200;
export const TTFA_HEIGHT_PX = 150;
/** The histogram's height per latency bin (24 bins: 168 px). */
const BIN_PX = 7;
export const UNATTRIBUTED = "unattributed";

/** "10:03:20 – 10:03:30", the bucket's wall-clock range. */
export function bucketRange(view: ServingView, b: number): string {
  const t = view.start_wall_time_s + b * view.bucket_s;
  return `${formatDateTime(t)} – ${formatClock(t + view.bucket_s)}`;
}

/** A latency in ms as people read it: 850 ms, 13.2 s, 1 m 05 s. */
export function formatMs(ms: number | null): string {
  return ms === null ? "—" : formatDuration(ms / 1000);
}

/**
 * A colour per stage: the Inference section's "Stage latency" chart gives
 * stage k (in natural order) `theme.items[k]`, so the same stage has the
 * same colour here; `unattributed`, time in no stage, is grey.
 */
export function stageColors(stages: string[], theme: Theme): Map<string, string> {
  const sorted = [...stages].sort(naturalCompare);
  return new Map(stages.map((s) => [s, s === UNATTRIBUTED ? theme.refLine : theme.items[sorted.indexOf(s) % theme.items.length]]));
}

function withAlpha(color: string, alpha: number): string {
  const h = color.replace("#", "");
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
  return `rgba(${r},${g},${b},${alpha})`;
}

/** The bucket under an x value: a window holds from its start to the next one's. */
function bucketAt(view: ServingView, x: number): number {
  return Math.max(0, Math.min(view.buckets - 1, Math.floor((x - view.start_wall_time_s) / view.bucket_s)));
}

/** x of each bucket's start, and the end: a stepped path draws the last window to its end too. */
function xs(view: ServingView): number[] {
  const out = Array.from({ length: view.buckets }, (_, b) => view.start_wall_time_s + b * view.bucket_s);
  out.push(view.end_wall_time_s);
  return out;
}

/** `values` with the last one repeated at the end (see `xs`). */
function withEnd(values: (number | null)[]): (number | null)[] {
  return [...values, values.length ? values[values.length - 1] : null];
}

/** Each window holds its value from its start to the next window's; a window without requests is a gap. */
const steps = uPlot.paths.stepped!({ align: 1, alignGaps: 1 });

function axes(theme: Theme, unit: string, ySplits?: number[]): uPlot.Axis[] {
  return [
    panelTimeAxis(theme),
    {
      stroke: theme.axis,
      font: AXIS_FONT,
      grid: { stroke: theme.grid, width: 1 },
      ticks: { show: false },
      space: 24,
      gap: 4,
      size: AXIS_PX,
      splits: ySplits ? () => ySplits : undefined,
      values: (_u, splits, _ai, _space, incr) => (unit === "ms" ? splits.map((v) => (v === 0 ? "0" : formatMs(v))) : axisFormatter(unit, splits, incr)),
    },
  ];
}

/** Called with the window under the cursor of a chart (null: none), to mark it elsewhere. */
export type OnWindow = (bucket: number | null) => void;

function baseOptions(
  view: ServingView,
  theme: Theme,
  width: number,
  height: number,
  unit: string,
  series: uPlot.Series[],
  onWindow: OnWindow,
  ySplits?: number[],
): uPlot.Options {
  return {
    width,
    height,
    series,
    scales: { x: { time: true, range: () => [view.start_wall_time_s, view.end_wall_time_s] } },
    axes: axes(theme, unit, ySplits),
    legend: { show: true, live: true },
    padding: [8, PAD_RIGHT_PX, 0, 0],
    cursor: {
      sync: { key: SYNC_KEY, setSeries: false, scales: ["x", null] },
      drag: { x: false, y: false, setScale: false },
      // The window under the cursor, not the nearest window start.
      dataIdx: (_u, _si, _closest, x) => bucketAt(view, x),
      focus: { prox: -1 },
      points: { show: false },
    },
    hooks: {
      setCursor: [
        (u) => {
          const left = u.cursor.left;
          onWindow(left === undefined || left < 0 ? null : bucketAt(view, u.posToVal(left, "x")));
        },
      ],
    },
  };
}

function timeSeries(view: ServingView, whole: string): uPlot.Series {
  return { label: "Window", value: (_u, _v, _si, idx) => (idx === null || idx === undefined || idx >= view.buckets ? whole : bucketRange(view, idx)) };
}

/**
 * Cumulative sums of `rows` (a bucket with no value in a row stays a gap),
 * skipping hidden rows, and the bands that fill between consecutive shown
 * rows: uPlot's stacked-series approach.
 */
export function stack(rows: (number | null)[][], shown: boolean[]): { data: (number | null)[][]; bands: uPlot.Band[] } {
  const n = rows[0]?.length ?? 0;
  const acc = new Array<number>(n).fill(0);
  const data = rows.map((r, i) => (shown[i] ? r.map((v, k) => (v === null ? null : (acc[k] += v))) : r.slice()));
  const bands: uPlot.Band[] = [];
  let lower = -1;
  rows.forEach((_, i) => {
    if (!shown[i]) return;
    // uPlot's series indices are 1-based (0 is x); [upper, lower].
    if (lower >= 0) bands.push({ series: [i + 1, lower + 1] });
    lower = i;
  });
  return { data, bands };
}

/**
 * Stage share of latency over time, stacked: one area per stage in the
 * answer's order (the largest at the bottom, `unattributed` on top, grey),
 * 0-100 %. The legend gives each stage's own share of the window under the
 * cursor and, without a cursor, its share of the whole run.
 */
export function stageShareChart(target: HTMLElement, view: ServingView, theme: Theme, width: number, colors: Map<string, string>, onWindow: OnWindow): uPlot {
  const rows = view.stages.map((s) => withEnd(view.stage_share[s].map((v) => (v === null ? null : v * 100))));
  const series: uPlot.Series[] = [timeSeries(view, "whole run")];
  view.stages.forEach((stage, i) => {
    const color = colors.get(stage) ?? theme.refLine;
    const overall = view.summary.stage_share[stage];
    series.push({
      label: stage,
      class: "area",
      stroke: color,
      width: 1,
      fill: withAlpha(color, theme.dark ? 0.62 : 0.42),
      paths: steps,
      spanGaps: false,
      points: { show: false },
      value: (_u, _v, _si, idx) => {
        if (idx === null || idx === undefined || idx >= view.buckets) return overall === null ? "—" : formatValue(overall * 100, "%", 3);
        const own = rows[i][idx];
        return own === null ? "—" : formatValue(own, "%", 3);
      },
    });
  });
  const shown = view.stages.map(() => true);
  const stacked = stack(rows, shown);
  const opts = baseOptions(view, theme, width, STACK_HEIGHT_PX, "%", series, onWindow, [0, 25, 50, 75, 100]);
  opts.scales!.y = { range: () => [0, 100] };
  opts.bands = stacked.bands;
  opts.hooks = {
    ...opts.hooks,
    // A stage hidden from its legend entry leaves the stack: stacked again.
    setSeries: [
      (u, si) => {
        if (si === null || si === undefined) return;
        const again = stack(
          rows,
          u.series.slice(1).map((s) => s.show !== false),
        );
        u.delBand(null);
        for (const b of again.bands) u.addBand(b);
        u.setData([xs(view), ...again.data] as uPlot.AlignedData);
      },
    ],
  };
  const u = new uPlot(opts, [xs(view), ...stacked.data] as uPlot.AlignedData, target);
  // Square swatches in the stage colours (the tab's legend draws line markers).
  u.root.querySelectorAll<HTMLElement>(".u-legend .u-series.area .u-marker").forEach((m, i) => {
    m.style.setProperty("--swatch", colors.get(view.stages[i]) ?? theme.refLine);
  });
  return u;
}

/** Time to first audio per window: p50 (solid) and p95 (dashed). */
export function ttfaChart(target: HTMLElement, view: ServingView, theme: Theme, width: number, onWindow: OnWindow): uPlot {
  const color = theme.palette[0];
  const line = (label: string, values: (number | null)[], whole: number | null, dash?: number[]): uPlot.Series => ({
    label,
    stroke: color,
    width: dash ? 1.25 : 1.75,
    dash,
    paths: steps,
    spanGaps: false,
    points: { show: false },
    value: (_u, _v, _si, idx) => {
      if (idx === null || idx === undefined || idx >= view.buckets) return formatMs(whole);
      return formatMs(values[idx]);
    },
  });
  const series: uPlot.Series[] = [
    timeSeries(view, "whole run"),
    line("p50", view.ttfa.p50_ms, view.summary.ttfa_p50_ms),
    line("p95", view.ttfa.p95_ms, view.summary.ttfa_p95_ms, [5, 3]),
  ];
  const opts = baseOptions(view, theme, width, TTFA_HEIGHT_PX, "ms", series, onWindow);
  opts.scales!.y = {
    range: (_u, _lo, hi) => {
      const top = hi !== null && Number.isFinite(hi) && hi > 0 ? hi : 1;
      return [0, uPlot.rangeNum(0, top, 0.1, true)[1]];
    },
  };
  return new uPlot(opts, [xs(view), withEnd(view.ttfa.p50_ms), withEnd(view.ttfa.p95_ms)] as uPlot.AlignedData, target);
}


function rampCss(t: number): string {
  return ramp(VIRIDIS, t);
}

function cssRgb(color: string): [number, number, number] {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (m) return [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16)) as [number, number, number];
  return [255, 255, 255];
}

/**
 * The latency histogram of each window: x = windows, y = the log-spaced
 * latency bins (low latency at the bottom), colour = requests in the cell
 * (viridis from 1 to the busiest cell; none: the "no value" colour). One
 * canvas at one pixel per cell, scaled up without smoothing.
 */
export class LatencyHistogram {
  readonly root: HTMLElement;
  private readonly labels = el("div", { class: "sv-hm-labels" });
  private readonly canvas = el("canvas", { class: "sv-hm-canvas", attrs: { role: "img" } });
  private readonly tip = el("div", { class: "sv-hm-tip hm-tip", attrs: { role: "tooltip" } });
  /** the window under the cursor of the charts above */
  private readonly mark = el("div", { class: "sv-hm-mark", attrs: { "aria-hidden": "true" } });
  private readonly plot = el("div", { class: "sv-hm-plot" }, this.canvas, this.mark, this.tip);
  private readonly axis = el("div", { class: "sv-hm-axis" });
  private readonly legend = el("div", { class: "sv-hm-legend" });
  private readonly bins: number;
  private readonly max: number;
  readonly total: number;

  constructor(private readonly view: ServingView) {
    const h = view.latency_histogram;
    this.bins = Math.max(0, h.edges_ms.length - 1);
    let max = 0;
    let total = 0;
    for (const row of h.counts)
      for (const c of row) {
        total += c;
        if (c > max) max = c;
      }
    this.max = max;
    this.total = total;
    this.tip.hidden = true;
    this.mark.hidden = true;
    this.root = el("div", { class: "sv-hm" }, el("div", { class: "sv-hm-wrap" }, this.labels, el("div", { class: "sv-hm-main" }, this.plot, this.axis)), this.legend);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.build();
  }

  private build(): void {
    const { view, bins } = this;
    const edges = view.latency_histogram.edges_ms;
    const height = bins * BIN_PX;
    this.labels.style.height = `${height}px`;
    // A label every k-th edge, at least 28 px apart, the lowest and highest always.
    const k = Math.max(1, Math.ceil(28 / BIN_PX));
    for (let i = 0; i <= bins; i += k) this.addLabel(i, edges[i]);
    if (bins % k !== 0) this.addLabel(bins, edges[bins]);
    this.axis.append(el("span", null, formatDateTime(view.start_wall_time_s)), el("span", null, `${view.buckets} windows of ${formatDuration(view.bucket_s)}`), el("span", null, formatDateTime(view.end_wall_time_s)));
    const bar = el("span", { class: "sv-hm-bar" });
    if (this.max > 1) bar.style.background = VIRIDIS_GRADIENT;
    else {
      bar.style.width = "10px";
      bar.style.background = rampCss(this.shade(1));
    }
    const requests = `${formatNumber(this.total, 12)} request${this.total === 1 ? "" : "s"}`;
    append(
      this.legend,
      el("span", null, "1"),
      bar,
      this.max > 1 ? el("span", null, formatNumber(this.max, 12)) : null,
      el("span", { class: "sv-hm-none" }, "none"),
      el("span", { class: "sv-hm-legend-note", dataset: { total: String(this.total) } }, `requests per window and latency bin; ${requests} in all; hover for the window, the latency range and the count`),
    );
    this.canvas.dataset.total = String(this.total);
    this.canvas.setAttribute("aria-label", `Latency histogram: ${requests} in ${view.buckets} windows by ${bins} latency bins`);
  }

  /** Where a count sits on viridis: 1 at the dark end, the busiest cell at the bright one (a lone count in the middle). */
  private shade(count: number): number {
    return this.max > 1 ? (count - 1) / (this.max - 1) : 0.5;
  }

  private addLabel(i: number, edgeMs: number): void {
    const label = el("div", { class: "sv-hm-label" }, formatMs(edgeMs));
    label.style.top = `${(this.bins - i) * BIN_PX}px`;
    this.labels.appendChild(label);
  }

  /** Draws at the plot's width (called again when it changes). */
  draw(theme: Theme): void {
    const cols = this.view.buckets;
    const rows = this.bins;
    const cssW = Math.floor(this.plot.clientWidth);
    if (cssW <= 0 || cols === 0 || rows === 0) return;
    const cssH = rows * BIN_PX;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    const img = new ImageData(cols, rows);
    const px = img.data;
    const none = cssRgb(theme.noData);
    const counts = this.view.latency_histogram.counts;
    for (let b = 0; b < cols; b++) {
      for (let k = 0; k < rows; k++) {
        const c = counts[b]?.[k] ?? 0;
        // Bin 0 (the lowest latency) is the bottom row.
        const o = ((rows - 1 - k) * cols + b) * 4;
        if (c > 0) {
          const t = this.shade(c);
          const li = Math.round(t * 255) * 4;
          px[o] = VIRIDIS_LUT[li];
          px[o + 1] = VIRIDIS_LUT[li + 1];
          px[o + 2] = VIRIDIS_LUT[li + 2];
        } else {
          [px[o], px[o + 1], px[o + 2]] = none;
        }
        px[o + 3] = 255;
      }
    }
    const cells = document.createElement("canvas");
    cells.width = cols;
    cells.height = rows;
    cells.getContext("2d")?.putImageData(img, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(cells, 0, 0, this.canvas.width, this.canvas.height);
    this.legend.style.setProperty("--no-data", theme.noData);
  }

  /** Outlines window `bucket` (null: none). */
  showWindow(bucket: number | null): void {
    this.mark.hidden = bucket === null;
    if (bucket === null) return;
    const w = 100 / this.view.buckets;
    this.mark.style.left = `${bucket * w}%`;
    this.mark.style.width = `${w}%`;
  }

  private hover(e: MouseEvent): void {
    const { view, bins } = this;
    const rect = this.canvas.getBoundingClientRect();
    const b = Math.floor(((e.clientX - rect.left) / rect.width) * view.buckets);
    const k = bins - 1 - Math.floor(((e.clientY - rect.top) / rect.height) * bins);
    if (b < 0 || b >= view.buckets || k < 0 || k >= bins) {
      this.tip.hidden = true;
      return;
    }
    const edges = view.latency_histogram.edges_ms;
    const c = view.latency_histogram.counts[b]?.[k] ?? 0;
    const inWindow = view.requests_per_bucket[b] ?? 0;
    clear(this.tip);
    this.tip.append(
      el("div", { class: "hm-tip-title" }, bucketRange(view, b)),
      el("div", null, `latency ${formatMs(edges[k])} – ${formatMs(edges[k + 1])}`),
      el("div", { class: "sv-hm-tip-count" }, `${c} request${c === 1 ? "" : "s"}`, el("span", { class: "sv-hm-tip-of" }, ` of ${inWindow} in this window`)),
    );
    this.tip.dataset.bucket = String(b);
    this.tip.dataset.bin = String(k);
    this.tip.dataset.count = String(c);
    this.tip.hidden = false;
    const x = e.clientX - rect.left;
    const y = e.clientY - rect.top;
    this.tip.style.left = `${Math.max(0, Math.min(x + 14, rect.width - 250))}px`;
    this.tip.style.top = `${y + 14}px`;
  }
}
