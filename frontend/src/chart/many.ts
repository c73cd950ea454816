// Charts of many series (issue 10): a model with hundreds of parameter
// tensors (IndexTTS2's GPT) logs a gradient norm per layer, and a 128-core
// host a utilization per core. 300 lines are unreadable, so such a chart
// draws the top K series by their latest value as lines and all of them as
// a rows x x-axis heatmap (canvas) under the plot.

import { clear, el, setText } from "../dom";
import { formatDateTime, formatRelativeTick, formatValue } from "../format";
import { ramp, VIRIDIS } from "../panels/colors";
import type { ChartDef } from "../specs";
import type { Theme } from "../theme";
import type { XMode } from "../xaxis";
import type { LineData } from "./types";

/** How many series a many-series chart draws as lines. */
export const TOP_K = 10;
/** Catalogue rows drawn as top K lines plus a heatmap when they have more than TOP_K series. */
const MANY_ROWS: Record<string, string> = { "gradient-layers": "layers", "cpu-cores": "cores" };
/** Points asked per series of such a chart: the heatmap's columns need far fewer than a line. */
export const MANY_SERIES_POINTS = 600;
const HEATMAP_PX_PER_COLUMN = 4;
const HEATMAP_MAX_HEIGHT_PX = 320;

/** Whether `def` is drawn as top K lines and a heatmap. */
export function isMany(def: ChartDef): boolean {
  return def.rowId in MANY_ROWS && def.lines.length > TOP_K;
}

/** The tags of the many-series charts among `defs` (asked with MANY_SERIES_POINTS). */
export function manySeriesTags(defs: ChartDef[]): Set<string> {
  const out = new Set<string>();
  for (const d of defs) if (isMany(d)) for (const l of d.lines) out.add(l.tag);
  return out;
}

function latest(d: LineData): number {
  const v = d.series.value;
  for (let i = v.length - 1; i >= 0; i--) if (Number.isFinite(v[i])) return v[i];
  return -Infinity;
}

/**
 * The top K lines of a many-series chart by latest value (largest first,
 * coloured by rank) and the subtitle that says so ("top 10 of 312 layers").
 */
export function topLines(def: ChartDef, lines: LineData[], palette: string[]): { def: ChartDef; lines: LineData[] } {
  const ranked = [...lines].sort((a, b) => latest(b) - latest(a)).slice(0, TOP_K);
  const shown = ranked.map((d, i) => ({ ...d, line: { ...d.line, color: palette[i % palette.length] } }));
  const note = `top ${shown.length} of ${def.lines.length} ${MANY_ROWS[def.rowId]}`;
  const subtitle = def.subtitle ? { text: `${def.subtitle.text} · ${note}`, color: def.subtitle.color } : { text: note, color: "" };
  return { def: { ...def, subtitle, lines: shown.map((d) => d.line) }, lines: shown };
}

interface Grid {
  labels: string[];
  x0: number;
  x1: number;
  columns: number;
  /** rows x columns, the largest value in each cell (NaN: no point) */
  cells: Float64Array;
}

/**
 * All series of a many-series chart as a heatmap: one row per series (in the
 * chart's order), one column per few pixels of the x axis; the colour is the
 * log of the value (gradient norms span decades), or the value on a percent
 * chart; hovering names the series, the x and the value.
 */
export class ManyHeatmap {
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLElement;
  private readonly legend: HTMLElement;
  private grid: Grid | null = null;
  private def: ChartDef | null = null;
  private mode: XMode = "wall";

  constructor() {
    this.canvas = el("canvas", { class: "many-heatmap-canvas" });
    this.tip = el("div", { class: "many-heatmap-tip", attrs: { role: "tooltip" } });
    this.tip.hidden = true;
    this.legend = el("div", { class: "many-heatmap-legend" });
    this.root = el("div", { class: "many-heatmap" }, this.legend, el("div", { class: "many-heatmap-plot" }, this.canvas, this.tip));
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
  }

  update(def: ChartDef, lines: LineData[], mode: XMode, theme: Theme, widthPx: number): void {
    this.def = def;
    this.mode = mode;
    const width = Math.max(100, Math.floor(widthPx));
    // No more columns than the longest series has points: 20 steps are 20
    // columns, not 150 with gaps between them.
    const longest = Math.max(0, ...lines.map((d) => d.series.value.length));
    const columns = Math.max(2, Math.min(Math.floor(width / HEATMAP_PX_PER_COLUMN), longest));
    const xs = lines.map((d) => d.clock.xs(d.series, mode));
    let x0 = Infinity;
    let x1 = -Infinity;
    for (const x of xs) {
      for (const v of x) {
        if (!Number.isFinite(v)) continue;
        if (v < x0) x0 = v;
        if (v > x1) x1 = v;
      }
    }
    if (!(x0 <= x1)) {
      this.grid = null;
      this.root.hidden = true;
      return;
    }
    if (x1 === x0) x1 = x0 + 1;
    const cells = new Float64Array(lines.length * columns).fill(NaN);
    lines.forEach((d, r) => {
      const v = d.series.value;
      const x = xs[r];
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i]) || !Number.isFinite(x[i])) continue;
        const c = Math.min(columns - 1, Math.floor(((x[i] - x0) / (x1 - x0)) * columns));
        const k = r * columns + c;
        if (!(cells[k] >= v[i])) cells[k] = v[i];
      }
      // A cell between two points holds the earlier one's value (the series
      // stays at it until the next point), so uneven spacing leaves no holes.
      let held = NaN;
      let seen = 0;
      for (let c = 0; c < columns; c++) if (!Number.isNaN(cells[r * columns + c])) seen = c;
      for (let c = 0; c <= seen; c++) {
        const k = r * columns + c;
        if (Number.isNaN(cells[k])) cells[k] = held;
        else held = cells[k];
      }
    });
    this.grid = { labels: lines.map((d) => d.line.label || d.line.tag), x0, x1, columns, cells };
    this.root.hidden = false;
    this.draw(theme, width);
  }

  /** Where a value sits on the colour scale, 0..1. */
  private scale(): (v: number) => number {
    const g = this.grid!;
    if (this.def?.range === "percent") return (v) => v / 100;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of g.cells) {
      if (!(v > 0)) continue;
      const l = Math.log10(v);
      if (l < lo) lo = l;
      if (l > hi) hi = l;
    }
    const span = hi > lo ? hi - lo : 1;
    return (v) => (v > 0 ? (Math.log10(v) - lo) / span : 0);
  }

  private draw(theme: Theme, width: number): void {
    const g = this.grid!;
    const rows = g.labels.length;
    const height = Math.min(HEATMAP_MAX_HEIGHT_PX, Math.max(60, rows * 3));
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(height * dpr);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = theme.panel;
    ctx.fillRect(0, 0, width, height);
    const t = this.scale();
    const cw = width / g.columns;
    const rh = height / rows;
    for (let r = 0; r < rows; r++) {
      const y = Math.floor(r * rh);
      const h = Math.max(1, Math.floor((r + 1) * rh) - y);
      for (let c = 0; c < g.columns; c++) {
        const v = g.cells[r * g.columns + c];
        if (Number.isNaN(v)) continue;
        ctx.fillStyle = ramp(VIRIDIS, t(v));
        const x = Math.floor(c * cw);
        ctx.fillRect(x, y, Math.max(1, Math.floor((c + 1) * cw) - x), h);
      }
    }
    const what = this.def?.rowId === "cpu-cores" ? "core" : "layer";
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", `Heatmap of all ${rows} ${what}s over the x axis`);
    setText(
      this.legend,
      `All ${rows} ${what}s: ${this.def?.range === "percent" ? "colour = utilization, 0 to 100 %" : "colour = log of the value, lowest to highest"}; hover for ${what}, ${this.mode === "step" ? "step" : "time"} and value`,
    );
  }

  private xText(x: number): string {
    if (this.mode === "step") return `step ${Math.round(x).toLocaleString("en-US")}`;
    if (this.mode === "relative") return formatRelativeTick(x);
    return formatDateTime(x);
  }

  private hover(e: MouseEvent): void {
    const g = this.grid;
    if (!g) return;
    const rect = this.canvas.getBoundingClientRect();
    const fx = (e.clientX - rect.left) / rect.width;
    const fy = (e.clientY - rect.top) / rect.height;
    const c = Math.min(g.columns - 1, Math.max(0, Math.floor(fx * g.columns)));
    const r = Math.min(g.labels.length - 1, Math.max(0, Math.floor(fy * g.labels.length)));
    const v = g.cells[r * g.columns + c];
    const x = g.x0 + ((c + 0.5) / g.columns) * (g.x1 - g.x0);
    clear(this.tip);
    this.tip.append(
      el("bdi", { class: "many-heatmap-name" }, g.labels[r]),
      el("div", null, this.xText(x)),
      el("div", null, Number.isNaN(v) ? "no point" : formatValue(v, this.def?.unit ?? "")),
    );
    this.tip.hidden = false;
    const left = Math.min(rect.width - 160, Math.max(0, e.clientX - rect.left + 12));
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${Math.max(0, e.clientY - rect.top + 12)}px`;
  }
}
