// One chart card: its title, a uPlot plot with its legend, NaN/Inf markers,
// marks (alerts, anomalies, profiled windows) and PNG/CSV export. The parts
// live beside it: options.ts (uPlot options), legend.ts, marks.ts,
// overlays.ts, export.ts; group.ts keeps all cards in step.

import uPlot from "uplot";

import { clear, el, icon, setText } from "../dom";
import { formatDateTime, formatNumber, formatRelativeTick, nonFiniteLabel } from "../format";
import type { ChartDef } from "../specs";
import { alignLines, type Table } from "../xaxis";
import { chartCsv, exportCsv, exportPng } from "./export";
import type { ChartGroup } from "./group";
import { lastValueText, nonFiniteAtCursor, valueText } from "./legend";
import { drawMarks, markKey, placeMarkTargets } from "./marks";
import { plotHeight, plotOptions } from "./options";
import { drawNonFinite, drawRefLines, placeNonFiniteTargets } from "./overlays";
import type { LineData, Mark } from "./types";

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
    pngBtn.addEventListener("click", () => {
      if (this.u) exportPng(this.u, this.def, this.lines, this.group.theme);
    });
    csvBtn.addEventListener("click", () => exportCsv(this.def, this.lines, this.group.mode));
    this.plotEl = el("div", { class: "chart-plot" });
    this.emptyEl = el("div", { class: "chart-empty" });
    this.markerLayer = el("div", { class: "nf-layer" });
    this.markLayer = el("div", { class: "nf-layer mark-layer" });
    this.root = el(
      "div",
      { class: `chart-card${def.style === "lane" ? " lane" : ""}`, dataset: { chart: def.id } },
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
    const base = this.def.percentOf ? ` of ${this.def.percentOf}` : "";
    this.titleEl.title = this.def.description + (unit ? ` (${unit}${base})` : "");
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
        this.u?.setSize({ width: w, height: plotHeight(this.def) });
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

  destroy(): void {
    this.destroyPlot();
    this.resizeObs?.disconnect();
    this.group.charts.delete(this);
    this.root.remove();
  }

  /** The loaded rows of every line as CSV (what the CSV button downloads). */
  csv(): string {
    return chartCsv(this.lines, this.group.mode);
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

  /** Line `li`'s legend value: at the cursor, or the latest without one. */
  private lineValue(u: uPlot, v: number | null | undefined, si: number, idx: number | null | undefined, li: number): string {
    const left = u.cursor.left;
    if (left === undefined || left === null || left < 0) return lastValueText(u, this.def, this.table, si, li);
    // Outside the line's own x range (another run's time, a zoom) it has no value.
    const span = this.spans[li];
    const cx = u.posToVal(left, "x");
    const tol = Math.abs(u.posToVal(left + 8, "x") - cx);
    if (!span || cx < span[0] - tol || cx > span[1] + tol) return "—";
    const nf = nonFiniteAtCursor(u, this.table, li, idx ?? null);
    if (nf) return nonFiniteLabel(nf.value);
    return v === null || v === undefined ? "—" : valueText(this.def, v);
  }

  private createPlot(): void {
    const width = Math.max(200, Math.floor(this.plotEl.clientWidth) || 400);
    this.width = width;
    const opts = plotOptions({
      def: this.def,
      lines: this.lines,
      mode: this.group.mode,
      theme: this.group.theme,
      width,
      xValueText: (v) => this.xValueText(v),
      lineValue: (u, v, si, idx, li) => this.lineValue(u, v, si, idx, li),
      onZoom: (min, max) => this.group.zoomTo(min, max),
      onDraw: (u) => this.drawOverlays(u),
    });
    const u = new uPlot(opts, this.table!.data as uPlot.AlignedData, this.plotEl);
    u.over.appendChild(this.markLayer);
    u.over.appendChild(this.markerLayer);
    u.over.addEventListener("dblclick", () => this.group.resetZoom());
    this.u = u;
    this.applyRange();
  }

  /** Marks, reference lines and NaN/Inf markers, clipped to the plot area; then their hover targets. */
  private drawOverlays(u: uPlot): void {
    const theme = this.group.theme;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    const placed = drawMarks(u, this.marks, this.lines, this.group.mode, theme);
    drawRefLines(u, this.def, theme);
    drawNonFinite(u, this.table, theme);
    ctx.restore();
    placeNonFiniteTargets(u, this.markerLayer, this.table, this.lines);
    placeMarkTargets(this.markLayer, placed);
  }
}
