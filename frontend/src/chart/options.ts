// The uPlot options of one chart: its series (lines, dots, step lanes), y
// range, axes in the chart's unit, the synced cursor and drag-to-zoom.

import uPlot from "uplot";

import { axisFormatter, BYTE_INCREMENTS, formatRelativeTick, formatTimeTicks } from "../format";
import type { ChartDef } from "../specs";
import type { Theme } from "../theme";
import type { XMode } from "../xaxis";
import { legendLabel } from "./legend";
import { legendBackground, markerOf, pointOptions } from "./markers";
import { AXIS_FONT, LANE_HEIGHT, PLOT_HEIGHT, textWidth } from "./style";
import type { LineData } from "./types";

const SYNC_KEY = "ttsmon";

const RELATIVE_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
  604800,
];
const STEP_INCRS: number[] = (() => {
  const out: number[] = [];
  for (let e = 0; e <= 12; e++) for (const m of [1, 2, 5]) out.push(m * 10 ** e);
  return out;
})();

/** Bitmask ticks on whole bits: 0x1, 0x2, 0x4 ... */
const BIT_INCREMENTS = Array.from({ length: 12 }, (_, i) => 2 ** i);

/** A lane's states change between samples: drawn as steps, not slopes. */
const stepped = uPlot.paths.stepped!({ align: 1 });

/** The plot height of a chart. */
export function plotHeight(def: ChartDef): number {
  return def.style === "lane" ? LANE_HEIGHT : PLOT_HEIGHT;
}

/** What the options call back into. */
export interface PlotContext {
  def: ChartDef;
  lines: LineData[];
  mode: XMode;
  theme: Theme;
  width: number;
  /** the x legend row's text at the cursor */
  xValueText(v: number | null): string;
  /** line `li`'s legend value */
  lineValue(u: uPlot, v: number | null | undefined, si: number, idx: number | null | undefined, li: number): string;
  onZoom(min: number, max: number): void;
  onDraw(u: uPlot): void;
}

/** The y range: percent charts from 0 to at least 100, lanes 0 to 1, others padded. */
function yRange(def: ChartDef): uPlot.Range.Function {
  return (_u, dmin, dmax) => {
    if (def.range === "bool") return [-0.15, 1.15];
    let lo = dmin;
    let hi = dmax;
    if (lo === null || hi === null || !Number.isFinite(lo) || !Number.isFinite(hi)) {
      lo = 0;
      hi = def.range === "percent" ? 100 : 1;
    }
    for (const r of def.refLines) {
      lo = Math.min(lo, r.value);
      hi = Math.max(hi, r.value * 1.05);
    }
    if (def.range === "percent") return [Math.min(0, lo), Math.max(100, hi * 1.02)];
    if (def.range === "zero") {
      const [, top] = uPlot.rangeNum(Math.min(0, lo), hi, 0.08, true);
      return [Math.min(0, lo), hi > 0 ? top : 1];
    }
    return uPlot.rangeNum(lo, hi, 0.08, true);
  };
}

function series(ctx: PlotContext): uPlot.Series[] {
  const { mode, lines, def } = ctx;
  const multiRun = new Set(lines.map((l) => l.line.run)).size > 1;
  const out: uPlot.Series[] = [
    {
      label: mode === "wall" ? "Time" : mode === "relative" ? "Since start" : "Step",
      value: (_u, v, _si, idx) => (idx === null || idx === undefined ? "latest" : ctx.xValueText(v)),
    },
  ];
  lines.forEach(({ line }, li) => {
    const s: uPlot.Series = {
      label: legendLabel(line, multiRun),
      // one class token (uPlot adds it with classList.add): "pts", or "pts-square"
      class: line.points ? (markerOf(line.marker).shape === "square" ? "pts-square" : "pts") : undefined,
      stroke: line.color,
      width: line.width,
      dash: line.dash,
      alpha: line.alpha,
      spanGaps: true,
      value: (u, v, si, idx) => ctx.lineValue(u, v, si, idx, li),
    };
    if (line.points) {
      s.paths = () => null;
      s.points = pointOptions(markerOf(line.marker), line.color, ctx.theme.panel);
      s.width = 0;
    } else {
      s.points = { show: false };
      if (def.style === "lane") s.paths = stepped;
    }
    out.push(s);
  });
  return out;
}

/**
 * The wall-clock x axis of the panels' small charts (job view, serving view): a
 * label centred on a tick near the right edge would be cut in half, so it is left out.
 */
export function panelTimeAxis(theme: Theme): uPlot.Axis {
  return {
    stroke: theme.axis,
    font: AXIS_FONT,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { stroke: theme.grid, width: 1, size: 4 },
    space: 56,
    values: (u, splits, _ai, _space, incr) => {
      const right = u.bbox.width / (window.devicePixelRatio || 1) - 20;
      return formatTimeTicks(splits, incr).map((t, i) => (u.valToPos(splits[i], "x") > right ? "" : t));
    },
  };
}

function axes(ctx: PlotContext): uPlot.Axis[] {
  const { mode, theme, def } = ctx;
  const xAxis: uPlot.Axis = {
    stroke: theme.axis,
    font: AXIS_FONT,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { stroke: theme.grid, width: 1, size: 4 },
    space: 48,
  };
  if (mode === "wall") {
    xAxis.values = (_u, splits, _ai, _space, incr) => formatTimeTicks(splits, incr);
  } else if (mode === "relative") {
    xAxis.incrs = RELATIVE_INCRS;
    xAxis.values = (_u, splits) => splits.map((v) => formatRelativeTick(v));
  } else if (mode === "step") {
    xAxis.incrs = STEP_INCRS;
    xAxis.values = (_u, splits) => axisFormatter("", splits);
  }
  const yAxis: uPlot.Axis = {
    stroke: theme.axis,
    font: AXIS_FONT,
    grid: { stroke: theme.grid, width: 1 },
    ticks: { show: false },
    space: def.style === "lane" ? 20 : 28,
    gap: 4,
    values: (_u, splits, _ai, _space, incr) => axisFormatter(def.unit, splits, incr),
    size: (_u, values) => {
      if (!values) return 40;
      const w = values.reduce((m, v) => Math.max(m, textWidth(String(v ?? ""))), 0);
      return Math.ceil(w) + 12;
    },
  };
  if (def.unit === "B" || def.unit === "B/s") yAxis.incrs = BYTE_INCREMENTS;
  if (def.range === "bool") yAxis.splits = () => [0, 1];
  if (def.unit === "bitmask") yAxis.incrs = BIT_INCREMENTS;
  return [xAxis, yAxis];
}

/** The options of a new uPlot for `ctx`'s chart. */
export function plotOptions(ctx: PlotContext): uPlot.Options {
  const { lines } = ctx;
  return {
    width: ctx.width,
    height: plotHeight(ctx.def),
    series: series(ctx),
    scales: {
      x: { time: ctx.mode === "wall" },
      y: { range: yRange(ctx.def) },
    },
    axes: axes(ctx),
    legend: {
      show: true,
      live: true,
      markers: {
        width: (_u, si) => (lines[si - 1]?.line.points ? 0 : 2),
        fill: (_u, si) => {
          const line = lines[si - 1]?.line;
          return line?.points ? legendBackground(markerOf(line.marker), line.color, ctx.theme.panel) : "transparent";
        },
      },
    },
    padding: [8, 10, 0, 0],
    cursor: {
      sync: {
        key: SYNC_KEY,
        setSeries: false,
        scales: ["x", null],
        filters: { pub: (type: string) => type !== "mousedown" && type !== "mouseup" && type !== "dblclick" },
      },
      drag: { x: true, y: false, setScale: false },
      hover: { skip: [null, undefined] },
      focus: { prox: -1 },
      points: { size: 6 },
    },
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width > 2) {
            const min = u.posToVal(u.select.left, "x");
            const max = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            ctx.onZoom(min, max);
          }
        },
      ],
      draw: [(u) => ctx.onDraw(u)],
    },
  };
}
