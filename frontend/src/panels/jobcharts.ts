// The Job view's uPlot charts: a metric's min-max band across ranks with the
// median and the worst rank's own line, and the per-node GPU small
// multiples. All share one cursor (their x is the job's wall time), apart
// from the tab's other charts.

import uPlot from "uplot";

import type { JobGpuMetric, JobMetric, JobNode, JobView } from "../api";
import { panelTimeAxis } from "../chart/options";
import { AXIS_FONT, textWidth } from "../chart/style";
import { axisFormatter, BYTE_INCREMENTS, formatDateTime, formatValue } from "../format";
import type { Theme } from "../theme";
import { standsOut } from "../jobs";

const SYNC_KEY = "ttsmon-job";
export const BAND_HEIGHT_PX = 170;
export const NODE_HEIGHT_PX = 140;

interface Line {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  values: (number | null)[];
}

interface PlotSpec {
  width: number;
  height: number;
  theme: Theme;
  unit: string;
  /** "percent": 0..100; "zero": 0..`yMax`; else padded around the data */
  y: string;
  yMax?: number;
  xs: number[];
  lines: Line[];
  /** [upper, lower] line indices (0-based) whose gap is filled */
  band?: [number, number];
  bandFill?: string;
}

/** The bucket columns to draw: those where `has(c)`; x at each bucket's middle. */
function columns(view: JobView, has: (c: number) => boolean): { cols: number[]; xs: number[] } {
  const cols: number[] = [];
  const xs: number[] = [];
  const t0 = view.start_wall_time_s ?? 0;
  const b = view.bucket_s ?? 1;
  for (let c = 0; c < view.buckets; c++) {
    if (!has(c)) continue;
    cols.push(c);
    xs.push(t0 + (c + 0.5) * b);
  }
  return { cols, xs };
}

function pick(a: Float64Array, cols: number[]): (number | null)[] {
  return cols.map((c) => (Number.isFinite(a[c]) ? a[c] : null));
}

function withAlpha(hex: string, alpha: number): string {
  const h = hex.replace("#", "");
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
  return `rgba(${r},${g},${b},${alpha})`;
}

function yRange(spec: PlotSpec): uPlot.Range.Function {
  return (_u, dmin, dmax) => {
    if (spec.y === "percent") return [0, Math.max(100, dmax ?? 0)];
    let lo = dmin;
    let hi = dmax;
    if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
    if (spec.y === "zero") {
      const top = Math.max(hi, spec.yMax ?? hi);
      const [, padded] = uPlot.rangeNum(0, top, 0.08, true);
      return [Math.min(0, lo), top > 0 ? padded : 1];
    }
    if (hi === lo) {
      lo -= Math.abs(lo) * 0.1 || 1;
      hi += Math.abs(hi) * 0.1 || 1;
    }
    return uPlot.rangeNum(lo, hi, 0.1, true);
  };
}

function makePlot(target: HTMLElement, spec: PlotSpec): uPlot {
  const { theme, unit } = spec;
  const series: uPlot.Series[] = [
    { label: "Time", value: (_u, v) => (v === null || v === undefined ? "latest" : formatDateTime(v)) },
    ...spec.lines.map(
      (l): uPlot.Series => ({
        label: l.label,
        stroke: l.color,
        width: l.width ?? 1.25,
        dash: l.dash,
        spanGaps: true,
        points: { show: false },
        value: (u, v, si, idx) => {
          // Without a cursor: the latest value of the line.
          if (idx === null || idx === undefined) {
            const ys = u.data[si];
            for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null && ys[i] !== undefined) return formatValue(ys[i] as number, unit, 3);
            return "—";
          }
          return v === null || v === undefined ? "—" : formatValue(v, unit, 3);
        },
      }),
    ),
  ];
  const yAxis: uPlot.Axis = {
    stroke: theme.axis,
    font: AXIS_FONT,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { show: false },
    space: 24,
    gap: 4,
    values: (_u, splits, _ai, _space, incr) => axisFormatter(unit, splits, incr),
    size: (_u, values) => (values ? Math.ceil(values.reduce((m, v) => Math.max(m, textWidth(String(v ?? ""))), 0)) + 12 : 40),
  };
  if (unit === "B" || unit === "B/s") yAxis.incrs = BYTE_INCREMENTS;
  const opts: uPlot.Options = {
    width: spec.width,
    height: spec.height,
    series,
    scales: { x: { time: true }, y: { range: yRange(spec) } },
    axes: [
      panelTimeAxis(theme),
      yAxis,
    ],
    legend: { show: true, live: true },
    padding: [6, 8, 0, 0],
    cursor: {
      sync: { key: SYNC_KEY, setSeries: false, scales: ["x", null] },
      drag: { x: false, y: false, setScale: false },
      focus: { prox: -1 },
      points: { size: 5 },
    },
  };
  if (spec.band) {
    // uPlot's series indices are 1-based (0 is x).
    opts.bands = [{ series: [spec.band[0] + 1, spec.band[1] + 1], fill: spec.bandFill }];
  }
  return new uPlot(opts, [spec.xs, ...spec.lines.map((l) => l.values)] as uPlot.AlignedData, target);
}

/** A metric as min-max band, median and the worst rank's line. */
export function bandChart(target: HTMLElement, view: JobView, metric: JobMetric, theme: Theme, width: number): uPlot {
  const { cols, xs } = columns(view, (c) => Number.isFinite(metric.median[c]));
  const base = theme.palette[0];
  const lines: Line[] = [
    { label: `max of ${view.ranks.length} ranks`, color: withAlpha(base, 0.55), width: 1, values: pick(metric.max, cols) },
    { label: "min", color: withAlpha(base, 0.55), width: 1, values: pick(metric.min, cols) },
    { label: "median", color: base, width: 2, values: pick(metric.median, cols) },
  ];
  const w = metric.worst;
  const row = w && standsOut(metric) ? view.ranks.findIndex((r) => r.rank === w.rank && r.run === w.run) : -1;
  if (w && row >= 0) lines.push({ label: `rank ${w.rank} (worst)`, color: theme.severity.critical, width: 1.5, values: pick(metric.values[row], cols) });
  return makePlot(target, { width, height: BAND_HEIGHT_PX, theme, unit: metric.unit, y: "auto", xs, lines, band: [0, 1], bandFill: withAlpha(base, theme.dark ? 0.22 : 0.16) });
}

/** The largest finite value of a GPU metric over every node, so that the small multiples share a y scale. */
export function gpuMax(view: JobView, metric: JobGpuMetric): number {
  let m = -Infinity;
  for (const n of view.nodes) for (const g of n.gpus) for (const v of g.series[metric.id] ?? []) if (v > m) m = v;
  return m;
}

/** One node's GPUs for one GPU metric: a line per GPU, coloured by its index (the run palette: its first eight are the most distinct). */
export function nodeChart(target: HTMLElement, view: JobView, node: JobNode, metric: JobGpuMetric, theme: Theme, width: number, yMax: number): uPlot {
  const rows = node.gpus.map((g) => g.series[metric.id] ?? new Float64Array(view.buckets).fill(NaN));
  const { cols, xs } = columns(view, (c) => rows.some((r) => Number.isFinite(r[c])));
  const lines: Line[] = node.gpus.map((g, i) => ({
    label: `GPU ${g.gpu}${g.ranks.length ? ` · rank ${g.ranks.join(", ")}` : ""}`,
    color: theme.palette[g.gpu % theme.palette.length],
    values: pick(rows[i], cols),
  }));
  return makePlot(target, { width, height: NODE_HEIGHT_PX, theme, unit: metric.unit, y: metric.y, yMax, xs, lines });
}
