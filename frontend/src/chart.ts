// One chart card (a uPlot chart with its title, legend and export buttons)
// and the group that keeps all charts' cursors, x ranges and zoom together.

import uPlot from "uplot";

import type { Series } from "./api";
import { el, icon, setText, clear } from "./dom";
import {
  axisFormatter,
  BYTE_INCREMENTS,
  formatDateTime,
  formatNumber,
  formatRelativeTick,
  formatTimeTicks,
  formatValue,
  nonFiniteLabel,
} from "./format";
import { usesTrainingStep, type ChartDef, type LineDef } from "./specs";
import type { Theme } from "./theme";
import { alignLines, type NonFinite, type RunClock, type Table, type XMode } from "./xaxis";

export const FONT_STACK = 'Roboto, "Helvetica Neue", Arial, "Noto Sans Ethiopic", "Abyssinica SIL", Nyala, sans-serif';
const AXIS_FONT = `11px ${FONT_STACK}`;
const PLOT_HEIGHT = 190;
const SYNC_KEY = "ttsmon";
const MAX_DOM_MARKERS = 200;

const RELATIVE_INCRS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
  604800,
];
const STEP_INCRS: number[] = (() => {
  const out: number[] = [];
  for (let e = 0; e <= 12; e++) for (const m of [1, 2, 5]) out.push(m * 10 ** e);
  return out;
})();

/**
 * An alert interval, an anomaly or a profiled window drawn over a chart: a
 * band from start to end (or a point where they are equal), placed by the
 * run's clock.
 */
export interface Mark {
  kind: "alert" | "anomaly" | "profile";
  run: string;
  start: number;
  end: number;
  /** training steps where known; else the run's clock maps the wall times */
  startStep: number | null;
  endStep: number | null;
  severity: "info" | "warning" | "critical";
  /** the point's value (a spike), drawn as a ring on the line */
  value: number | null;
  title: string;
  /** an alert still firing at the end of the data */
  open?: boolean;
}

/** A line's data as loaded: its rows and x values in the current mode. */
export interface LineData {
  line: LineDef;
  series: Series;
  clock: RunClock;
}

let measureCtx: CanvasRenderingContext2D | null = null;
function textWidth(s: string): number {
  if (!measureCtx) {
    measureCtx = document.createElement("canvas").getContext("2d");
    if (measureCtx) measureCtx.font = AXIS_FONT;
  }
  return measureCtx ? measureCtx.measureText(s).width : s.length * 6.5;
}

/** Keeps every chart's x range, zoom and cursor in step. */
export class ChartGroup {
  readonly charts = new Set<ChartCard>();
  mode: XMode = "wall";
  theme: Theme;
  /** the x range the user zoomed to; null: the full extent */
  zoom: [number, number] | null = null;
  extent: [number, number] | null = null;
  onChange: (() => void) | null = null;

  constructor(theme: Theme) {
    this.theme = theme;
  }

  /** The union of all charts' x extents (so a cursor at x lines up everywhere). */
  recomputeExtent(): void {
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of this.charts) {
      const e = c.xExtent();
      if (!e) continue;
      lo = Math.min(lo, e[0]);
      hi = Math.max(hi, e[1]);
    }
    this.extent = lo <= hi ? [lo, hi] : null;
  }

  range(): [number, number] | null {
    const r = this.zoom ?? this.extent;
    if (!r) return null;
    if (r[0] === r[1]) return [r[0] - 1, r[1] + 1];
    return r;
  }

  zoomTo(min: number, max: number): void {
    if (!(max > min)) return;
    this.zoom = [min, max];
    for (const c of this.charts) c.applyRange();
    this.onChange?.();
  }

  redraw(): void {
    for (const c of this.charts) c.redraw();
  }

  resetZoom(): void {
    this.zoom = null;
    for (const c of this.charts) c.applyRange();
    this.onChange?.();
  }
}

interface PlacedMark {
  m: Mark;
  /** CSS pixels within the plot area */
  x: number;
  y: number | null;
  w: number;
}

function markKey(m: Mark): string {
  return `${m.kind}|${m.run}|${m.start}|${m.end}|${m.severity}|${m.open ? 1 : 0}|${m.title}`;
}

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return String(v);
}

export function safeFileName(s: string): string {
  // keep letters of any script; drop what file systems or shells dislike
  const cleaned = s.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "_").replace(/\s+/g, "_");
  return cleaned.replace(/^_+|_+$/g, "").slice(0, 120) || "chart";
}

function download(href: string, filename: string): void {
  const a = el("a", { attrs: { href, download: filename }, style: { display: "none" } });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

export class ChartCard {
  readonly root: HTMLElement;
  private readonly titleEl: HTMLElement;
  private readonly subtitleEl: HTMLElement;
  private readonly plotEl: HTMLElement;
  private readonly emptyEl: HTMLElement;
  private readonly markerLayer: HTMLElement;
  private readonly markLayer: HTMLElement;
  private marks: Mark[] = [];
  private u: uPlot | null = null;
  private structureKey = "";
  private table: Table | null = null;
  /** per line, the x range it has points in */
  private spans: ([number, number] | null)[] = [];
  private lines: LineData[] = [];
  private width = 0;
  private resizeObs: ResizeObserver | null = null;
  def: ChartDef;

  constructor(
    def: ChartDef,
    private readonly group: ChartGroup,
  ) {
    this.def = def;
    this.titleEl = el("span", { class: "chart-title" });
    this.subtitleEl = el("span", { class: "chart-subtitle", dir: "auto" });
    const pngBtn = el(
      "button",
      { class: "icon-btn", title: "Download this chart as PNG", attrs: { "aria-label": "Download PNG", type: "button" } },
      icon("image", 16),
    );
    const csvBtn = el(
      "button",
      { class: "icon-btn", title: "Download this chart's data as CSV", attrs: { "aria-label": "Download CSV", type: "button" } },
      icon("table", 16),
    );
    pngBtn.addEventListener("click", () => this.exportPng());
    csvBtn.addEventListener("click", () => this.exportCsv());
    this.plotEl = el("div", { class: "chart-plot" });
    this.emptyEl = el("div", { class: "chart-empty" });
    this.markerLayer = el("div", { class: "nf-layer" });
    this.markLayer = el("div", { class: "nf-layer mark-layer" });
    this.root = el(
      "div",
      { class: "chart-card", dataset: { chart: def.id } },
      el("div", { class: "chart-head" }, el("div", { class: "chart-titles" }, this.titleEl, this.subtitleEl), el("div", { class: "chart-actions" }, pngBtn, csvBtn)),
      this.plotEl,
      this.emptyEl,
    );
    this.setHeader();
    group.charts.add(this);
  }

  private setHeader(): void {
    setText(this.titleEl, this.def.title);
    const unit = this.def.unit && this.def.unit !== "count" ? this.def.unit : "";
    this.titleEl.title = this.def.description + (unit ? ` (${unit})` : "");
    if (this.def.subtitle) {
      setText(this.subtitleEl, this.def.subtitle.text);
      this.subtitleEl.style.setProperty("--run-color", this.def.subtitle.color);
      this.subtitleEl.hidden = false;
    } else {
      this.subtitleEl.hidden = true;
    }
  }

  /** Starts following the card's width (call once it is in the document). */
  observe(): void {
    if (this.resizeObs) return;
    this.resizeObs = new ResizeObserver(() => {
      const w = Math.floor(this.plotEl.clientWidth);
      if (w > 0 && w !== this.width) {
        this.width = w;
        this.u?.setSize({ width: w, height: PLOT_HEIGHT });
      }
    });
    this.resizeObs.observe(this.plotEl);
  }

  xExtent(): [number, number] | null {
    if (!this.table) return null;
    const xs = this.table.data[0];
    let lo = xs.length ? (xs[0] as number) : Infinity;
    let hi = xs.length ? (xs[xs.length - 1] as number) : -Infinity;
    for (const nf of this.table.nonFinite) {
      for (const p of nf) {
        lo = Math.min(lo, p.x);
        hi = Math.max(hi, p.x);
      }
    }
    return lo <= hi ? [lo, hi] : null;
  }

  /** Sets new data (and definition); the uPlot instance is kept when the lines are the same. */
  update(def: ChartDef, lines: LineData[]): void {
    this.def = def;
    this.lines = lines;
    this.setHeader();
    const mode = this.group.mode;
    this.table = alignLines(lines.map((l) => ({ x: l.clock.xs(l.series, mode), s: l.series })));
    this.spans = this.table.data.slice(1).map((ys, li) => {
      const xs = this.table!.data[0];
      let lo = Infinity;
      let hi = -Infinity;
      let i = 0;
      while (i < ys.length && ys[i] === null) i++;
      if (i < ys.length) lo = xs[i] as number;
      let j = ys.length - 1;
      while (j >= 0 && ys[j] === null) j--;
      if (j >= 0) hi = xs[j] as number;
      for (const p of this.table!.nonFinite[li]) {
        lo = Math.min(lo, p.x);
        hi = Math.max(hi, p.x);
      }
      return lo <= hi ? [lo, hi] : null;
    });
    const hasPoints = this.table.data[0].length > 0 || this.table.nonFinite.some((n) => n.length > 0);
    if (!hasPoints) {
      this.destroyPlot();
      const allDropped = mode === "step" && lines.length > 0 && this.table.dropped.some((d) => d > 0);
      this.showEmpty(
        allDropped
          ? "No training steps to place these samples on: switch the x axis to Wall or Relative"
          : def.empty ?? "No data yet",
      );
      return;
    }
    this.emptyEl.hidden = true;
    this.plotEl.hidden = false;
    const key = [mode, this.group.theme.dark ? "d" : "l", def.unit, ...lines.map((l) => `${l.line.key}|${l.line.color}|${l.line.label}`)].join("\u0001");
    if (this.u && key === this.structureKey) {
      this.u.batch(() => {
        this.u!.setData(this.table!.data as uPlot.AlignedData, true);
        this.applyRange();
      });
      return;
    }
    this.destroyPlot();
    this.structureKey = key;
    this.createPlot();
  }

  showEmpty(message: string): void {
    this.destroyPlot();
    this.table = null;
    this.plotEl.hidden = true;
    this.emptyEl.hidden = false;
    setText(this.emptyEl, message);
  }

  redraw(): void {
    this.u?.redraw(false, true);
  }

  /** Sets the group's x range on this chart. */
  applyRange(): void {
    const r = this.group.range();
    if (this.u && r) this.u.setScale("x", { min: r[0], max: r[1] });
  }

  private destroyPlot(): void {
    if (this.u) {
      this.u.destroy();
      this.u = null;
    }
    this.structureKey = "";
    clear(this.markerLayer);
    clear(this.markLayer);
  }

  /** Sets the alert bands and anomaly markers (drawn on the next draw). */
  setMarks(marks: Mark[]): void {
    const same = marks.length === this.marks.length && marks.every((m, i) => markKey(m) === markKey(this.marks[i]));
    this.marks = marks;
    if (!same) this.u?.redraw(false, false);
  }

  /** A mark's x range in the current mode, or null where it has none. */
  private markRange(m: Mark): [number, number] | null {
    const line = this.lines.find((l) => l.line.run === m.run);
    if (!line) return null;
    const clock = line.clock;
    const mode = this.group.mode;
    let a: number;
    let b: number;
    if (mode === "wall") {
      a = m.start;
      b = m.end;
    } else if (mode === "relative") {
      a = m.start - clock.t0;
      b = m.end - clock.t0;
    } else {
      a = m.startStep ?? clock.stepAt(m.start);
      b = m.endStep ?? clock.stepAt(m.end);
      if (!Number.isFinite(b) && Number.isFinite(a)) b = a;
    }
    if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
    return a <= b ? [a, b] : [b, a];
  }
  destroy(): void {
    this.destroyPlot();
    this.resizeObs?.disconnect();
    this.group.charts.delete(this);
    this.root.remove();
  }

  private xValueText(v: number | null): string {
    if (v === null || v === undefined) return "";
    switch (this.group.mode) {
      case "wall":
        return formatDateTime(v);
      case "relative":
        return `+${formatRelativeTick(v)}`;
      default:
        return formatNumber(Math.round(v), 12);
    }
  }

  /** Without a cursor the legend shows each line's latest value. */
  private lastValueText(u: uPlot, si: number, li: number): string {
    const ys = u.data[si];
    const xs = u.data[0];
    const nf = this.table?.nonFinite[li] ?? [];
    let i = ys ? ys.length - 1 : -1;
    while (i >= 0 && (ys[i] === null || ys[i] === undefined)) i--;
    const lastNf = nf.length ? nf[nf.length - 1] : null;
    if (lastNf && (i < 0 || lastNf.x > (xs[i] as number))) return nonFiniteLabel(lastNf.value);
    return i >= 0 ? formatValue(ys[i] as number, this.def.unit) : "—";
  }

  /** The non-finite point of line `li` nearest the cursor, if nearer than its nearest finite one. */
  private nonFiniteAtCursor(u: uPlot, li: number, idx: number | null): NonFinite | null {
    const nf = this.table?.nonFinite[li];
    if (!nf || nf.length === 0 || u.cursor.left === undefined || u.cursor.left < 0) return null;
    const cx = u.cursor.left;
    let best: NonFinite | null = null;
    let bestD = Infinity;
    for (const p of nf) {
      const d = Math.abs(u.valToPos(p.x, "x") - cx);
      if (d < bestD) {
        bestD = d;
        best = p;
      }
    }
    if (!best) return null;
    if (idx !== null && idx !== undefined) {
      const xd = Math.abs(u.valToPos(u.data[0][idx] as number, "x") - cx);
      if (xd < bestD) return null;
    }
    return bestD <= 12 || idx === null || idx === undefined ? best : null;
  }

  private createPlot(): void {
    const theme = this.group.theme;
    const def = this.def;
    const mode = this.group.mode;
    const multiRun = new Set(this.lines.map((l) => l.line.run)).size > 1;
    const width = Math.max(200, Math.floor(this.plotEl.clientWidth) || 400);
    this.width = width;

    const series: uPlot.Series[] = [
      {
        label: mode === "wall" ? "Time" : mode === "relative" ? "Since start" : "Step",
        value: (_u, v, _si, idx) => (idx === null || idx === undefined ? "latest" : this.xValueText(v)),
      },
    ];
    this.lines.forEach(({ line }, li) => {
      const label = el("span", { class: "legend-label" });
      if (multiRun || !line.label) label.appendChild(el("bdi", { class: "legend-run" }, line.run));
      if (line.label) {
        if (multiRun || !line.label) label.appendChild(document.createTextNode(" · "));
        label.appendChild(document.createTextNode(line.label));
      }
      const s: uPlot.Series = {
        label,
        class: line.points ? "pts" : undefined,
        stroke: line.color,
        width: line.width,
        dash: line.dash,
        alpha: line.alpha,
        spanGaps: true,
        value: (u, v, si, idx) => {
          const left = u.cursor.left;
          if (left === undefined || left === null || left < 0) return this.lastValueText(u, si, li);
          // Outside the line's own x range (another run's time, a zoom) it has no value.
          const span = this.spans[li];
          const cx = u.posToVal(left, "x");
          const tol = Math.abs(u.posToVal(left + 8, "x") - cx);
          if (!span || cx < span[0] - tol || cx > span[1] + tol) return "—";
          const nf = this.nonFiniteAtCursor(u, li, idx);
          if (nf) return nonFiniteLabel(nf.value);
          return v === null || v === undefined ? "—" : formatValue(v, def.unit);
        },
      };
      if (line.points) {
        s.paths = () => null;
        s.points = { show: true, size: 3.5, width: 0, fill: line.color };
        s.width = 0;
      } else {
        s.points = { show: false };
      }
      series.push(s);
    });

    const yRange: uPlot.Range.Function = (_u, dmin, dmax) => {
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
      space: 28,
      gap: 4,
      values: (_u, splits, _ai, _space, incr) => axisFormatter(def.unit, splits, incr),
      size: (_u, values) => {
        if (!values) return 40;
        const w = values.reduce((m, v) => Math.max(m, textWidth(String(v ?? ""))), 0);
        return Math.ceil(w) + 12;
      },
    };
    if (def.unit === "B" || def.unit === "B/s") yAxis.incrs = BYTE_INCREMENTS;

    const opts: uPlot.Options = {
      width,
      height: PLOT_HEIGHT,
      series,
      scales: {
        x: { time: mode === "wall" },
        y: { range: yRange },
      },
      axes: [xAxis, yAxis],
      legend: {
        show: true,
        live: true,
        markers: {
          width: (_u, si) => (this.lines[si - 1]?.line.points ? 0 : 2),
          fill: (_u, si) => (this.lines[si - 1]?.line.points ? this.lines[si - 1].line.color : "transparent"),
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
              this.group.zoomTo(min, max);
            }
          },
        ],
        draw: [(u) => this.drawOverlays(u)],
      },
    };
    const u = new uPlot(opts, this.table!.data as uPlot.AlignedData, this.plotEl);
    u.over.appendChild(this.markLayer);
    u.over.appendChild(this.markerLayer);
    u.over.addEventListener("dblclick", () => this.group.resetZoom());
    this.u = u;
    this.applyRange();
  }

  /** Reference lines, and a red band and marker at every NaN/Inf point. */
  private drawOverlays(u: uPlot): void {
    const theme = this.group.theme;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = uPlot.pxRatio;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const placed = this.drawMarks(u);
    for (const r of this.def.refLines) {
      const y = Math.round(u.valToPos(r.value, "y", true)) + 0.5;
      ctx.strokeStyle = theme.refLine;
      ctx.lineWidth = dpr;
      ctx.setLineDash([4 * dpr, 3 * dpr]);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + width, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = theme.axis;
      ctx.font = `${10 * dpr}px ${FONT_STACK}`;
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      ctx.fillText(r.label, left + width - 4 * dpr, y - 2 * dpr);
    }
    const nfs = this.table?.nonFinite ?? [];
    const bandW = Math.max(2, 3 * dpr);
    const tri = 5 * dpr;
    for (let li = 0; li < nfs.length; li++) {
      if (!u.series[li + 1]?.show) continue;
      for (const p of nfs[li]) {
        const x = u.valToPos(p.x, "x", true);
        if (x < left - bandW || x > left + width + bandW) continue;
        ctx.fillStyle = theme.nonFiniteBand;
        ctx.fillRect(Math.round(x - bandW / 2), top, bandW, height);
        // a triangle at the top, so that a PNG export shows the marker too
        ctx.fillStyle = theme.nonFinite;
        ctx.beginPath();
        ctx.moveTo(x - tri, top);
        ctx.lineTo(x + tri, top);
        ctx.lineTo(x, top + 1.6 * tri);
        ctx.closePath();
        ctx.fill();
      }
    }
    ctx.restore();
    this.placeMarkers(u);
    this.placeMarkTargets(placed);
  }

  /** Alert bands (translucent, severity-coloured) and anomaly bands and rings. */
  private drawMarks(u: uPlot): PlacedMark[] {
    const placed: PlacedMark[] = [];
    if (this.marks.length === 0) return placed;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = uPlot.pxRatio;
    const colors = this.group.theme.severity;
    for (const m of this.marks) {
      const r = this.markRange(m);
      if (!r) continue;
      const x0 = u.valToPos(r[0], "x", true);
      let x1 = u.valToPos(r[1], "x", true);
      if (m.open) x1 = Math.max(x1, left + width);
      if (x1 < left - 4 * dpr || x0 > left + width + 4 * dpr) continue;
      const color = m.kind === "profile" ? this.group.theme.profile : colors[m.severity];
      const isPoint = x1 - x0 < 2 * dpr;
      ctx.fillStyle = color;
      if (m.kind === "profile") {
        // a translucent band with a strip along the top and its edges drawn
        const w = Math.max(x1 - x0, 2 * dpr);
        ctx.globalAlpha = 0.1;
        ctx.fillRect(x0, top, w, height);
        ctx.globalAlpha = 0.85;
        ctx.fillRect(x0, top, w, 3 * dpr);
        ctx.globalAlpha = 0.6;
        ctx.fillRect(Math.round(x0), top, dpr, height);
        ctx.fillRect(Math.round(x0 + w - dpr), top, dpr, height);
      } else if (m.kind === "alert") {
        ctx.globalAlpha = 0.13;
        ctx.fillRect(x0, top, Math.max(x1 - x0, 2 * dpr), height);
        ctx.globalAlpha = 0.9;
        ctx.fillRect(x0, top + height - 3 * dpr, Math.max(x1 - x0, 2 * dpr), 3 * dpr);
      } else {
        ctx.globalAlpha = isPoint ? 0.5 : 0.16;
        if (isPoint) ctx.fillRect(Math.round(x0 - dpr / 2), top, dpr, height);
        else ctx.fillRect(x0, top, x1 - x0, height);
      }
      ctx.globalAlpha = 1;
      let y: number | null = null;
      if (m.kind === "anomaly" && m.value !== null && Number.isFinite(m.value)) {
        const yy = u.valToPos(m.value, "y", true);
        if (yy >= top - 1 && yy <= top + height + 1) y = yy;
      }
      const cx = isPoint ? x0 : (Math.max(x0, left) + Math.min(x1, left + width)) / 2;
      if (m.kind === "anomaly") {
        ctx.strokeStyle = color;
        ctx.lineWidth = 2 * dpr;
        ctx.beginPath();
        if (y !== null) ctx.arc(cx, y, 5 * dpr, 0, 2 * Math.PI);
        else {
          // a diamond on the bottom edge where the value is off the scale or not finite
          const s = 5 * dpr;
          const by = top + height - s - dpr;
          ctx.moveTo(cx, by - s);
          ctx.lineTo(cx + s, by);
          ctx.lineTo(cx, by + s);
          ctx.lineTo(cx - s, by);
          ctx.closePath();
        }
        ctx.stroke();
      }
      placed.push({ m, x: cx / dpr - u.bbox.left / dpr, y: y === null ? null : (y - top) / dpr, w: (Math.min(x1, left + width) - Math.max(x0, left)) / dpr });
    }
    return placed;
  }

  /** Hover targets (tooltips) for the drawn marks. */
  private placeMarkTargets(placed: PlacedMark[]): void {
    const layer = this.markLayer;
    const wanted = placed.slice(0, MAX_DOM_MARKERS);
    while (layer.childElementCount > wanted.length) layer.lastElementChild!.remove();
    while (layer.childElementCount < wanted.length) layer.appendChild(el("div", { attrs: { role: "img" } }));
    wanted.forEach((p, i) => {
      const d = layer.children[i] as HTMLElement;
      const kindCls = p.m.kind === "alert" ? "alert-mark" : p.m.kind === "profile" ? "profile-mark" : "an-marker";
      const cls = `mark-target ${kindCls} sev-${p.m.severity}`;
      if (d.className !== cls) d.className = cls;
      d.style.left = `${p.x}px`;
      if (p.m.kind === "profile") {
        // the band's top strip, as wide as the band
        const w = Math.max(14, p.w);
        d.style.width = `${w}px`;
        d.style.marginLeft = `${-w / 2}px`;
        d.style.top = "0px";
        d.style.bottom = "";
      } else if (p.y === null) {
        d.style.width = "";
        d.style.marginLeft = "";
        d.style.top = "";
        d.style.bottom = "0px";
      } else {
        d.style.width = "";
        d.style.marginLeft = "";
        d.style.top = `${p.y - 7}px`;
        d.style.bottom = "";
      }
      if (d.title !== p.m.title) {
        d.title = p.m.title;
        d.setAttribute("aria-label", p.m.title);
      }
    });
  }
  private placeMarkers(u: uPlot): void {
    const layer = this.markerLayer;
    const nfs = this.table?.nonFinite ?? [];
    const plotW = u.bbox.width / uPlot.pxRatio;
    const wanted: { li: number; p: NonFinite; left: number }[] = [];
    for (let li = 0; li < nfs.length && wanted.length < MAX_DOM_MARKERS; li++) {
      if (!u.series[li + 1]?.show) continue;
      for (const p of nfs[li]) {
        const left = u.valToPos(p.x, "x");
        if (left < -4 || left > plotW + 4) continue;
        wanted.push({ li, p, left });
        if (wanted.length >= MAX_DOM_MARKERS) break;
      }
    }
    while (layer.childElementCount > wanted.length) layer.lastElementChild!.remove();
    while (layer.childElementCount < wanted.length) layer.appendChild(el("div", { class: "nf-marker", attrs: { role: "img" } }));
    wanted.forEach((w, i) => {
      const m = layer.children[i] as HTMLElement;
      m.style.left = `${w.left}px`;
      const line = this.lines[w.li].line;
      const what = nonFiniteLabel(w.p.value);
      const text =
        `${what} in ${line.tag} (${line.run})` +
        ` at ${usesTrainingStep(line.tag) ? `step ${formatNumber(w.p.step, 12)}, ` : ""}${formatDateTime(w.p.wall)}`;
      if (m.title !== text) {
        m.title = text;
        m.setAttribute("aria-label", text);
        m.dataset.value = what;
      }
    });
  }

  exportPng(): void {
    const u = this.u;
    if (!u) return;
    const theme = this.group.theme;
    const dpr = uPlot.pxRatio;
    const src = u.ctx.canvas;
    const pad = 12 * dpr;
    const titleH = 26 * dpr;
    const lineH = 18 * dpr;
    const legendItems = this.lines.map((l) => ({
      color: l.line.color,
      dash: l.line.dash,
      points: l.line.points,
      text: [l.line.run, l.line.label].filter(Boolean).join(" · "),
    }));
    const out = document.createElement("canvas");
    out.width = src.width + 2 * pad;
    out.height = titleH + src.height + legendItems.length * lineH + 2 * pad;
    const ctx = out.getContext("2d")!;
    ctx.fillStyle = theme.panel;
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = theme.text;
    ctx.font = `500 ${14 * dpr}px ${FONT_STACK}`;
    ctx.textBaseline = "top";
    const unit = this.def.unit ? ` (${this.def.unit})` : "";
    ctx.fillText(`${this.def.title}${unit}${this.def.subtitle ? ` · ${this.def.subtitle.text}` : ""}`, pad, pad);
    ctx.drawImage(src, pad, pad + titleH);
    ctx.font = `${12 * dpr}px ${FONT_STACK}`;
    legendItems.forEach((item, i) => {
      const y = pad + titleH + src.height + i * lineH + 4 * dpr;
      if (item.points) {
        ctx.fillStyle = item.color;
        ctx.beginPath();
        ctx.arc(pad + 7 * dpr, y + 6 * dpr, 3 * dpr, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.strokeStyle = item.color;
        ctx.lineWidth = 2 * dpr;
        ctx.setLineDash(item.dash.map((d) => d * dpr));
        ctx.beginPath();
        ctx.moveTo(pad, y + 6 * dpr);
        ctx.lineTo(pad + 14 * dpr, y + 6 * dpr);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      ctx.fillStyle = theme.text;
      ctx.fillText(item.text, pad + 20 * dpr, y);
    });
    download(out.toDataURL("image/png"), `${safeFileName(this.fileStem())}.png`);
  }

  /** The loaded rows of every line, long format (what the chart shows, downsampled as loaded). */
  csv(): string {
    const mode = this.group.mode;
    const header = ["run", "tag", "unit", "wall_time_s", "step", mode === "wall" ? "x_wall_time_s" : mode === "relative" ? "x_relative_s" : "x_training_step", "value"];
    const rows = [header.join(",")];
    for (const { line, series, clock } of this.lines) {
      const xs = clock.xs(series, mode);
      for (let i = 0; i < series.value.length; i++) {
        rows.push(
          [
            csvCell(line.run),
            csvCell(line.tag),
            csvCell(series.unit),
            String(series.wall[i]),
            String(series.step[i]),
            Number.isFinite(xs[i]) ? String(xs[i]) : "",
            csvNumber(series.value[i]),
          ].join(","),
        );
      }
    }
    return rows.join("\n") + "\n";
  }

  exportCsv(): void {
    const blob = new Blob([this.csv()], { type: "text/csv;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    download(url, `${safeFileName(this.fileStem())}.csv`);
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  private fileStem(): string {
    const runs = [...new Set(this.lines.map((l) => l.line.run))];
    return `ttsmon-${this.def.id.split("\u0000")[0]}-${runs.length === 1 ? runs[0] : `${runs.length}-runs`}`;
  }
}

