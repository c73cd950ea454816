// The Correlation panel: a matrix of the chosen series of one run (Pearson or
// Spearman, from the correlation route); a click on a cell shows its scatter.

import { fetchCorrelation, fetchScatter, missingRoutes, toNumber, type Correlation, type Scatter, type TagInfo } from "../api";
import { FONT_STACK } from "../chart/style";
import { clear, el, icon } from "../dom";
import { axisFormatter, formatDuration, formatNumber } from "../format";
import type { Theme } from "../theme";
import { diverging } from "./colors";
import { LazyPanel, RunSelect } from "./lazy";


/** Defaults, in order; `{gpu}` matches every GPU index. */
const DEFAULT_CORRELATION = [
  "system/cpu_percent",
  "system/memory_percent",
  "gpu/{gpu}/utilization_percent",
  "gpu/{gpu}/memory_used_percent",
  "system/disk_read_bytes_per_s",
  "system/disk_write_bytes_per_s",
  "system/net_recv_bytes_per_s",
  "system/net_sent_bytes_per_s",
  "train/steps_per_s",
  "train/loss",
];
const MAX_DEFAULT = 10;
const SCATTER_POINTS = 2000;
const SCATTER_H = 260;

function matches(pattern: string, tag: string): boolean {
  if (!pattern.includes("{gpu}")) return pattern === tag;
  const [a, b] = pattern.split("{gpu}");
  return tag.startsWith(a) && tag.endsWith(b) && /^\d+$/.test(tag.slice(a.length, tag.length - b.length));
}

export function defaultCorrelationTags(tags: string[]): string[] {
  const out: string[] = [];
  for (const p of DEFAULT_CORRELATION) for (const t of [...tags].sort()) if (matches(p, t) && !out.includes(t)) out.push(t);
  return out.slice(0, MAX_DEFAULT);
}

/** Tags worth correlating: scalar series, not the bookkeeping ones. */
function candidateTags(tags: TagInfo[]): string[] {
  return tags
    .filter((t) => t.kind !== "document" && !t.tag.startsWith("run/") && !t.tag.startsWith("model/") && !t.tag.startsWith("alerts/") && t.tag !== "sampler/training_step")
    .map((t) => t.tag)
    .sort();
}

function formatR(r: number | null | undefined): string {
  if (r === null || r === undefined || !Number.isFinite(r)) return "—";
  return (r < 0 ? "−" : "") + Math.abs(r).toFixed(2);
}

export class CorrelationPanel extends LazyPanel {
  private readonly runSelect: RunSelect;
  private tagsByRun = new Map<string, TagInfo[]>();
  /** chosen tags per run (the user's choice survives refreshes) */
  private chosen = new Map<string, string[]>();
  private method: "pearson" | "spearman" = "pearson";
  private readonly methodBtns = new Map<string, HTMLButtonElement>();
  private readonly chips = el("div", { class: "corr-chips" });
  private readonly add = el("select", { class: "corr-add", attrs: { "aria-label": "Add a metric" } });
  private readonly matrix = el("div", { class: "corr-matrix", attrs: { role: "grid" } });
  private readonly scatterBox = el("div", { class: "corr-scatter" });
  private readonly scatterCanvas = el("canvas", { class: "scatter-canvas", attrs: { role: "img" } });
  private readonly scatterCaption = el("div", { class: "scatter-caption" });
  private data: Correlation | null = null;
  private scatter: Scatter | null = null;
  private scatterPair: [string, string] | null = null;
  private scatterGen = 0;

  constructor(
    collapsed: Set<string>,
    onToggle: () => void,
    private theme: Theme,
  ) {
    super("correlation", "Correlation", collapsed, onToggle);
    this.runSelect = new RunSelect(() => {
      this.scatterPair = null;
      this.invalidate();
    });
    const seg = el("div", { class: "segmented", attrs: { role: "group", "aria-label": "Coefficient" } });
    for (const [m, label, title] of [
      ["pearson", "Pearson", "Pearson's r: linear correlation"],
      ["spearman", "Spearman", "Spearman's ρ: rank (monotonic) correlation"],
    ] as const) {
      const b = el("button", { class: "seg-btn", title, attrs: { type: "button" } }, label);
      b.addEventListener("click", () => {
        this.method = m;
        this.renderMatrix();
      });
      this.methodBtns.set(m, b);
      seg.appendChild(b);
    }
    this.panel.tools.append(this.runSelect.root, seg);
    this.add.addEventListener("change", () => {
      const run = this.runSelect.value;
      const t = this.add.value;
      if (run && t) {
        this.chosen.set(run, [...this.currentTags(), t]);
        this.invalidate();
      }
      this.add.value = "";
    });
    this.scatterBox.hidden = true;
    const close = el("button", { class: "icon-btn", title: "Close the scatter plot", attrs: { type: "button", "aria-label": "Close scatter" } }, icon("close", 16));
    close.addEventListener("click", () => {
      this.scatterPair = null;
      this.scatter = null;
      this.scatterBox.hidden = true;
      this.renderMatrix();
    });
    this.scatterBox.append(el("div", { class: "scatter-head" }, this.scatterCaption, close), this.scatterCanvas);
    this.panel.body.append(
      el("div", { class: "corr-controls" }, this.chips, this.add),
      this.note,
      el("div", { class: "corr-layout" }, this.matrix, this.scatterBox),
    );
    new ResizeObserver(() => this.drawScatter()).observe(this.scatterBox);
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.renderMatrix();
    this.drawScatter();
  }

  setRuns(runs: { run: string; tags: TagInfo[] }[]): void {
    this.tagsByRun = new Map(runs.map((r) => [r.run, r.tags]));
    this.runSelect.update(runs.map((r) => r.run));
    this.panel.root.hidden = runs.length === 0 || missingRoutes.has("correlation");
    this.renderControls();
    this.invalidate();
  }

  private currentTags(): string[] {
    const run = this.runSelect.value;
    if (!run) return [];
    const available = new Set(candidateTags(this.tagsByRun.get(run) ?? []));
    const mine = this.chosen.get(run);
    if (mine) return mine.filter((t) => available.has(t));
    return defaultCorrelationTags([...available]);
  }

  private renderControls(): void {
    const run = this.runSelect.value;
    const tags = this.currentTags();
    clear(this.chips);
    for (const t of tags) {
      const x = el("button", { class: "chip-x", title: `Remove ${t}`, attrs: { type: "button", "aria-label": `Remove ${t}` } }, icon("close", 12));
      x.addEventListener("click", () => {
        if (!run) return;
        this.chosen.set(run, tags.filter((o) => o !== t));
        if (this.scatterPair?.includes(t)) this.scatterPair = null;
        this.invalidate();
      });
      this.chips.appendChild(el("span", { class: "corr-chip", dataset: { tag: t } }, el("span", { dir: "auto" }, t), x));
    }
    // Rebuilt only when its options change (a refresh must not close it while open).
    const options = candidateTags(run ? this.tagsByRun.get(run) ?? [] : []).filter((t) => !tags.includes(t));
    const key = options.join("\u0000");
    if (this.add.dataset.key !== key || this.add.options.length === 0) {
      this.add.dataset.key = key;
      clear(this.add);
      const first = el("option", null, "Add a metric…");
      first.value = "";
      this.add.appendChild(first);
      for (const t of options) {
        const o = el("option", null, t);
        o.value = t;
        this.add.appendChild(o);
      }
    }
    this.add.disabled = this.add.options.length <= 1 || tags.length >= 40;
  }

  override invalidate(): void {
    this.renderControls();
    super.invalidate();
  }

  protected async load(): Promise<void> {
    const run = this.runSelect.value;
    const tags = this.currentTags();
    if (!run || tags.length < 2) {
      this.data = null;
      this.showNote(run ? "Pick at least two metrics." : "");
      this.renderMatrix();
      return;
    }
    const c = await fetchCorrelation(run, tags);
    if (c === null) {
      this.panel.root.hidden = true;
      return;
    }
    this.data = c;
    this.showNote("");
    this.renderMatrix();
    if (this.scatterPair) await this.loadScatter(...this.scatterPair);
  }

  private renderMatrix(): void {
    for (const [m, b] of this.methodBtns) {
      b.classList.toggle("active", m === this.method);
      b.setAttribute("aria-pressed", String(m === this.method));
    }
    clear(this.matrix);
    const c = this.data;
    if (!c) return;
    const tags = c.tags;
    const values = c[this.method] ?? [];
    this.matrix.style.gridTemplateColumns = `minmax(120px, max-content) repeat(${tags.length}, minmax(52px, 64px))`;
    this.matrix.appendChild(el("div", { class: "corr-corner" }, this.method === "pearson" ? "Pearson r" : "Spearman ρ"));
    tags.forEach((t, j) => this.matrix.appendChild(el("div", { class: "corr-col", title: t, dir: "auto" }, el("span", null, String(j + 1)))));
    tags.forEach((ti, i) => {
      this.matrix.appendChild(el("div", { class: "corr-row", title: ti, dir: "auto" }, `${i + 1}. ${ti}`));
      tags.forEach((tj, j) => {
        const r = values[i]?.[j] ?? null;
        const n = c.n?.[i]?.[j] ?? 0;
        const col = r === null || !Number.isFinite(r) ? null : diverging(r, this.theme);
        const selected = this.scatterPair !== null && this.scatterPair[0] === ti && this.scatterPair[1] === tj;
        const cell = el(
          "button",
          {
            class: `corr-cell${i === j ? " diag" : ""}${selected ? " selected" : ""}`,
            attrs: { type: "button", role: "gridcell", "aria-label": `${ti} vs ${tj}: ${formatR(r)}, n ${n}` },
            title: `${ti} vs ${tj}\n${this.method === "pearson" ? "Pearson r" : "Spearman ρ"} ${formatR(r)}, n = ${formatNumber(n, 12)}${i === j ? "" : "\nClick for the scatter plot"}`,
            dataset: { x: ti, y: tj },
          },
          el("span", { class: "corr-r" }, formatR(r)),
          el("span", { class: "corr-n" }, `n ${formatNumber(n, 3)}`),
        );
        if (col) {
          cell.style.background = col.bg;
          cell.style.color = col.fg;
        }
        if (i !== j) cell.addEventListener("click", () => void this.loadScatter(ti, tj));
        else cell.disabled = true;
        this.matrix.appendChild(cell);
      });
    });
  }

  private async loadScatter(x: string, y: string): Promise<void> {
    const run = this.runSelect.value;
    if (!run) return;
    this.scatterPair = [x, y];
    this.renderMatrix();
    const gen = ++this.scatterGen;
    try {
      const s = await fetchScatter(run, x, y, SCATTER_POINTS);
      if (gen !== this.scatterGen) return;
      this.scatter = s;
      if (s === null) {
        this.scatterBox.hidden = true;
        this.showNote("This server has no scatter route.");
        return;
      }
    } catch (e) {
      if (gen === this.scatterGen) this.showNote(`Could not load the scatter: ${String((e as Error).message ?? e)}`);
      return;
    }
    this.scatterBox.hidden = false;
    clear(this.scatterCaption);
    const s = this.scatter!;
    this.scatterCaption.append(
      el("span", { class: "scatter-title", dir: "auto" }, `${s.y} vs ${s.x}`),
      el("span", { class: "scatter-stats" }, `r ${formatR(s.pearson)} · ρ ${formatR(s.spearman)} · n ${formatNumber(s.n, 12)}${s.grid_s ? ` · grid ${formatDuration(s.grid_s)}` : ""}`),
    );
    this.drawScatter();
  }

  private drawScatter(): void {
    const s = this.scatter;
    if (!s || this.scatterBox.hidden) return;
    const cssW = Math.max(200, Math.floor(this.scatterBox.clientWidth - 2));
    const cssH = SCATTER_H;
    const dpr = window.devicePixelRatio || 1;
    const cv = this.scatterCanvas;
    cv.width = Math.round(cssW * dpr);
    cv.height = Math.round(cssH * dpr);
    cv.style.width = `${cssW}px`;
    cv.style.height = `${cssH}px`;
    cv.setAttribute("aria-label", `Scatter of ${s.y} against ${s.x}, ${s.points.length} points`);
    const ctx = cv.getContext("2d");
    if (!ctx) return;
    ctx.scale(dpr, dpr);
    const th = this.theme;
    const pts = s.points.map((p) => [toNumber(p[1]), toNumber(p[2])]).filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b));
    const [x0, x1] = extent(pts.map((p) => p[0]));
    const [y0, y1] = extent(pts.map((p) => p[1]));
    const yTicks = niceTicks(y0, y1, 5);
    const xTicks = niceTicks(x0, x1, 6);
    ctx.font = `11px ${FONT_STACK}`;
    const yLabels = axisFormatter(s.y_unit, yTicks);
    const left = 8 + Math.ceil(Math.max(...yLabels.map((l) => ctx.measureText(l).width), 10));
    const right = cssW - 10;
    const top = 8;
    const bottom = cssH - 22;
    const px = (v: number) => left + ((v - x0) / (x1 - x0)) * (right - left);
    const py = (v: number) => bottom - ((v - y0) / (y1 - y0)) * (bottom - top);
    ctx.strokeStyle = th.grid;
    ctx.fillStyle = th.axis;
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    yTicks.forEach((t, i) => {
      const y = Math.round(py(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
      ctx.stroke();
      ctx.fillText(yLabels[i], left - 4, y);
    });
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const xLabels = axisFormatter(s.x_unit, xTicks);
    xTicks.forEach((t, i) => {
      const x = Math.round(px(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillText(xLabels[i], x, bottom + 5);
    });
    ctx.fillStyle = th.palette[0];
    ctx.globalAlpha = pts.length > 500 ? 0.45 : 0.75;
    for (const [a, b] of pts) {
      ctx.beginPath();
      ctx.arc(px(a), py(b), 2.2, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.globalAlpha = 1;
    this.scatterBox.dataset.points = String(pts.length);
  }
}

/** min..max of finite values, widened where empty or constant. */
function extent(vs: number[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of vs) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!(hi >= lo)) return [0, 1];
  if (hi === lo) return [lo - 1, hi + 1];
  return [lo, hi];
}

function niceTicks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

