// The Heatmap panel: every sampled series of one run over time buckets,
// each row scaled to its limit or range (from the heatmap route).

import { fetchHeatmap, missingRoutes, toNumber, type Heatmap } from "../api";
import { clear, el, setText } from "../dom";
import { formatDateTime, formatDuration, formatNumber, formatValue } from "../format";
import { ramp, VIRIDIS, VIRIDIS_GRADIENT } from "./colors";
import { LazyPanel, RunSelect } from "./lazy";

const HM_ROW_H = 16;
const HM_PX_PER_BUCKET = 5;

export class HeatmapPanel extends LazyPanel {
  private readonly runSelect: RunSelect;
  private readonly labels = el("div", { class: "hm-labels" });
  private readonly canvas = el("canvas", { class: "hm-canvas", attrs: { role: "img", "aria-label": "Heatmap" } });
  private readonly axis = el("div", { class: "hm-axis" });
  private readonly tip = el("div", { class: "hm-tip", attrs: { role: "tooltip" } });
  private readonly plot = el("div", { class: "hm-plot" }, this.canvas, this.tip);
  private readonly scale = el("div", { class: "hm-scale" });
  private data: Heatmap | null = null;
  private buckets = 0;
  /** samples per run (from the overview): more buckets than samples would be mostly blank */
  private samples = new Map<string, number>();

  constructor(collapsed: Set<string>, onToggle: () => void) {
    super("heatmap", "Heatmap", collapsed, onToggle);
    this.runSelect = new RunSelect(() => this.invalidate());
    this.panel.tools.appendChild(this.runSelect.root);
    this.tip.hidden = true;
    this.panel.body.append(
      this.note,
      el("div", { class: "hm-wrap" }, this.labels, el("div", { class: "hm-main" }, this.plot, this.axis)),
      this.scale,
    );
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.followWidth(this.plot, { wanted: () => this.wantedBuckets(), loaded: () => (this.data ? this.buckets : null) }, () => this.draw());
  }

  /** The colour scale (viridis) reads the same in light and dark mode. */
  setTheme(): void {
    this.draw();
  }

  setRuns(runs: string[], samples: Map<string, number> = new Map()): void {
    this.samples = samples;
    this.runSelect.update(runs);
    this.panel.root.hidden = runs.length === 0 || missingRoutes.has("heatmap");
    this.invalidate();
  }

  private wantedBuckets(): number {
    const w = this.plot.clientWidth || 800;
    const run = this.runSelect.value;
    const samples = run ? this.samples.get(run) ?? Infinity : Infinity;
    return Math.max(2, Math.min(2000, Math.floor(w / HM_PX_PER_BUCKET), samples > 0 ? samples : Infinity));
  }

  protected async load(): Promise<void> {
    const run = this.runSelect.value;
    if (!run) return;
    const buckets = this.wantedBuckets();
    const hm = await fetchHeatmap(run, buckets);
    if (hm === null) {
      this.panel.root.hidden = true;
      return;
    }
    this.buckets = buckets;
    this.data = hm;
    this.showNote(hm.rows.length ? "" : "No sampled series in this run yet.");
    this.render();
  }

  private render(): void {
    const hm = this.data;
    clear(this.labels);
    clear(this.axis);
    clear(this.scale);
    if (!hm) return;
    setText(this.panel.count, hm.rows.length ? String(hm.rows.length) : "");
    for (const r of hm.rows) {
      this.labels.appendChild(el("div", { class: "hm-label", title: `${r.tag}${r.scale === "limit" ? " (scaled to its limit)" : " (scaled to its own range)"}`, dir: "auto" }, r.label || r.tag));
    }
    if (hm.start_wall_time_s !== null && hm.end_wall_time_s !== null) {
      this.axis.append(
        el("span", null, formatDateTime(hm.start_wall_time_s)),
        el("span", { class: "hm-axis-mid" }, hm.bucket_s ? `${this.columns()} buckets of ${formatDuration(hm.bucket_s)}` : ""),
        el("span", null, formatDateTime(hm.end_wall_time_s)),
      );
    }
    const bar = el("span", { class: "hm-scale-bar" });
    bar.style.background = VIRIDIS_GRADIENT;
    this.scale.append(el("span", null, "0"), bar, el("span", null, "1 (each row's limit or its own max)"));
    this.draw();
  }

  private columns(): number {
    return this.data?.rows.reduce((m, r) => Math.max(m, r.normalized.length), 0) ?? 0;
  }

  private draw(): void {
    const hm = this.data;
    const cssW = Math.floor(this.plot.clientWidth);
    if (!hm || cssW <= 0) return;
    const rows = hm.rows.length;
    const cols = this.columns();
    const cssH = Math.max(1, rows * HM_ROW_H);
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(cssW * dpr);
    this.canvas.height = Math.round(cssH * dpr);
    this.canvas.style.width = `${cssW}px`;
    this.canvas.style.height = `${cssH}px`;
    const ctx = this.canvas.getContext("2d");
    if (!ctx || cols === 0) return;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    const cw = this.canvas.width / cols;
    const rh = HM_ROW_H * dpr;
    hm.rows.forEach((r, ri) => {
      for (let c = 0; c < r.normalized.length; c++) {
        const v = r.normalized[c];
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        ctx.fillStyle = ramp(VIRIDIS, v);
        ctx.fillRect(Math.floor(c * cw), ri * rh, Math.ceil(cw), rh - dpr);
      }
    });
  }

  private hover(e: MouseEvent): void {
    const hm = this.data;
    if (!hm) return;
    const rect = this.canvas.getBoundingClientRect();
    const cols = this.columns();
    const ri = Math.floor((e.clientY - rect.top) / HM_ROW_H);
    const ci = Math.floor(((e.clientX - rect.left) / rect.width) * cols);
    const row = hm.rows[ri];
    if (!row || ci < 0 || ci >= cols) {
      this.tip.hidden = true;
      return;
    }
    const raw = row.values[ci];
    const value = raw === null || raw === undefined ? null : toNumber(raw);
    const norm = row.normalized[ci];
    const lines: string[] = [row.label || row.tag];
    if (hm.start_wall_time_s !== null && hm.bucket_s) {
      const t = hm.start_wall_time_s + ci * hm.bucket_s;
      lines.push(`${formatDateTime(t)} + ${formatDuration(hm.bucket_s)}`);
    }
    lines.push(value === null ? "no samples" : `mean ${formatValue(value, row.unit)}`);
    if (norm !== null && norm !== undefined && row.scale === "limit" && row.limit !== null) {
      lines.push(`${formatNumber(norm * 100, 3)}% of ${formatValue(row.limit, row.unit)}`);
    }
    clear(this.tip);
    lines.forEach((l, i) => this.tip.appendChild(el("div", { class: i === 0 ? "hm-tip-title" : undefined }, l)));
    this.tip.hidden = false;
    const x = e.clientX - rect.left;
    this.tip.style.left = `${Math.min(x + 12, rect.width - 200)}px`;
    this.tip.style.top = `${(ri + 1) * HM_ROW_H + 4}px`;
  }
}
