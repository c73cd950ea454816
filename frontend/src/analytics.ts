// The analytics views: findings, the alert list, the heatmap and the
// correlation matrix (with its scatter). Everything they show comes from the
// plugin's analytics routes (http_api.md); nothing is recomputed here. All
// names and messages enter the DOM as text.

import {
  fetchCorrelation,
  fetchHeatmap,
  fetchScatter,
  missingRoutes,
  toNumber,
  type AlertEvent,
  type Correlation,
  type Finding,
  type Heatmap,
  type Scatter,
  type Severity,
  type TagInfo,
} from "./api";
import { FONT_STACK } from "./chart";
import { clear, el, icon, setText } from "./dom";
import { axisFormatter, formatDateTime, formatDuration, formatNumber, formatValue } from "./format";
import type { Theme } from "./theme";

export const SEVERITIES: Severity[] = ["critical", "warning", "info"];
const SEVERITY_RANK: Record<string, number> = { critical: 0, warning: 1, info: 2 };
const SEVERITY_LABEL: Record<Severity, string> = { critical: "Critical", warning: "Warning", info: "Info" };

export function severityIcon(sev: Severity, size = 16): SVGSVGElement {
  const s = SEVERITIES.includes(sev) ? sev : "info";
  const svg = icon(s === "critical" ? "error" : s === "warning" ? "warning" : "info", size);
  svg.classList.add(`sev-${s}`);
  return svg;
}

function runLabel(run: string, color: string): HTMLElement {
  const chip = el("bdi", { class: "run-name an-run" }, run);
  chip.style.setProperty("--run-color", color);
  return chip;
}

/** A collapsible section like the chart sections (same head, same stored state). */
export interface Panel {
  root: HTMLElement;
  body: HTMLElement;
  count: HTMLElement;
  tools: HTMLElement;
  expanded(): boolean;
}

export function makePanel(
  id: string,
  title: string,
  collapsed: Set<string>,
  onToggle: (expanded: boolean) => void,
): Panel {
  const count = el("span", { class: "section-count" });
  const head = el(
    "button",
    { class: "section-head", attrs: { type: "button", "aria-expanded": "true" } },
    icon("chevron", 20),
    el("span", { class: "section-title" }, title),
    count,
  );
  const tools = el("div", { class: "panel-tools" });
  const body = el("div", { class: "panel-body" });
  const root = el("section", { class: "section panel", dataset: { section: id } }, el("div", { class: "panel-head" }, head, tools), body);
  const apply = () => {
    const c = collapsed.has(id);
    root.classList.toggle("collapsed", c);
    head.setAttribute("aria-expanded", String(!c));
  };
  head.addEventListener("click", () => {
    if (collapsed.has(id)) collapsed.delete(id);
    else collapsed.add(id);
    apply();
    onToggle(!collapsed.has(id));
  });
  apply();
  return { root, body, count, tools, expanded: () => !collapsed.has(id) };
}

// -- findings ------------------------------------------------------------------

export interface RunFindings {
  run: string;
  color: string;
  findings: Finding[] | null;
}

export class FindingsView {
  readonly root = el("section", { class: "findings", attrs: { "aria-label": "Findings" } });

  update(items: RunFindings[]): void {
    clear(this.root);
    const known = items.filter((i) => i.findings !== null);
    this.root.hidden = known.length === 0;
    if (known.length === 0) return;
    const multi = items.length > 1;
    const rows: { run: string; color: string; f: Finding }[] = [];
    for (const i of known) for (const f of i.findings!) rows.push({ run: i.run, color: i.color, f });
    rows.sort((a, b) => (SEVERITY_RANK[a.f.severity] ?? 3) - (SEVERITY_RANK[b.f.severity] ?? 3));
    if (rows.length === 0) {
      this.root.appendChild(el("div", { class: "findings-empty" }, "No findings: nothing in the data so far calls for attention."));
      return;
    }
    for (const { run, color, f } of rows) {
      const sev: Severity = SEVERITIES.includes(f.severity) ? f.severity : "info";
      this.root.appendChild(
        el(
          "div",
          { class: `finding sev-${sev}`, dataset: { finding: String(f.id ?? "") } },
          severityIcon(sev, 18),
          el(
            "div",
            { class: "finding-body" },
            el("div", { class: "finding-title" }, f.title ?? "", multi ? runLabel(run, color) : null),
            el("div", { class: "finding-text", dir: "auto" }, f.text ?? ""),
          ),
        ),
      );
    }
  }
}

// -- alerts --------------------------------------------------------------------

export interface RunAlerts {
  run: string;
  color: string;
  alerts: AlertEvent[] | null;
}

const MAX_ALERT_ROWS = 300;

export class AlertsPanel {
  readonly panel: Panel;
  private filter: Severity | "all" = "all";
  private items: RunAlerts[] = [];
  private readonly filterBtns = new Map<string, HTMLButtonElement>();
  private readonly list = el("div", { class: "alert-list", attrs: { role: "list" } });
  private readonly empty = el("div", { class: "panel-empty" });

  constructor(
    collapsed: Set<string>,
    onToggle: () => void,
    private readonly onPick: (run: string, alert: AlertEvent) => void,
  ) {
    this.panel = makePanel("alerts", "Alerts", collapsed, onToggle);
    const seg = el("div", { class: "segmented", attrs: { role: "group", "aria-label": "Severity" } });
    for (const f of ["all", ...SEVERITIES] as const) {
      const b = el("button", { class: "seg-btn", attrs: { type: "button" }, dataset: { severity: f } });
      b.addEventListener("click", () => {
        this.filter = f;
        this.render();
      });
      this.filterBtns.set(f, b);
      seg.appendChild(b);
    }
    this.panel.tools.appendChild(seg);
    this.panel.body.append(this.empty, this.list);
  }

  update(items: RunAlerts[]): void {
    this.items = items;
    this.render();
  }

  private render(): void {
    const known = this.items.filter((i) => i.alerts !== null);
    this.panel.root.hidden = known.length === 0;
    const multi = this.items.length > 1;
    const all: { run: string; color: string; a: AlertEvent }[] = [];
    for (const i of known) for (const a of i.alerts!) all.push({ run: i.run, color: i.color, a });
    all.sort((x, y) => y.a.wall_time_s - x.a.wall_time_s);
    const counts: Record<string, number> = { all: all.length, critical: 0, warning: 0, info: 0 };
    for (const { a } of all) counts[a.severity] = (counts[a.severity] ?? 0) + 1;
    for (const [f, b] of this.filterBtns) {
      const label = f === "all" ? "All" : SEVERITY_LABEL[f as Severity];
      setText(b, `${label} ${counts[f] ?? 0}`);
      b.classList.toggle("active", f === this.filter);
      b.setAttribute("aria-pressed", String(f === this.filter));
    }
    const firing = new Set<string>();
    // still firing: the newest event of a rule (per run and tag) is a firing one
    const seen = new Set<string>();
    for (const { run, a } of all) {
      const k = `${run}\u0000${a.rule}\u0000${a.tag}`;
      if (seen.has(k)) continue;
      seen.add(k);
      if (a.state === "firing") firing.add(k);
    }
    setText(this.panel.count, firing.size ? `${firing.size} firing` : all.length ? String(all.length) : "");
    this.panel.count.classList.toggle("firing", firing.size > 0);

    const shown = all.filter(({ a }) => this.filter === "all" || a.severity === this.filter);
    clear(this.list);
    this.empty.hidden = shown.length > 0;
    setText(
      this.empty,
      all.length === 0 ? "No alerts: no rule fired in the selected runs." : `No ${SEVERITY_LABEL[this.filter as Severity]?.toLowerCase() ?? ""} alerts.`,
    );
    for (const { run, color, a } of shown.slice(0, MAX_ALERT_ROWS)) {
      const sev: Severity = SEVERITIES.includes(a.severity) ? a.severity : "info";
      const state = a.state === "resolved" ? "resolved" : "firing";
      const row = el(
        "button",
        {
          class: `alert-row sev-${sev} ${state}`,
          attrs: { type: "button", role: "listitem" },
          title: "Zoom every chart to this moment",
          dataset: { severity: sev, state },
        },
        severityIcon(sev, 16),
        el("span", { class: "alert-time" }, formatDateTime(a.wall_time_s)),
        el("span", { class: `alert-state ${state}` }, state),
        multi ? runLabel(run, color) : null,
        el("span", { class: "alert-msg", dir: "auto" }, a.message ?? a.rule),
        a.training_step !== null && a.training_step !== undefined ? el("span", { class: "alert-step" }, `step ${formatNumber(a.training_step, 12)}`) : null,
      );
      row.addEventListener("click", () => this.onPick(run, a));
      this.list.appendChild(row);
    }
    if (shown.length > MAX_ALERT_ROWS) {
      this.list.appendChild(el("div", { class: "panel-note" }, `${shown.length - MAX_ALERT_ROWS} older alerts not listed`));
    }
  }
}

// -- shared: run choice, visibility ---------------------------------------------

/** A <select> of the selected runs (hidden when there is only one). */
class RunSelect {
  readonly root = el("select", { class: "run-select", attrs: { "aria-label": "Run" } });
  value: string | null = null;

  constructor(onChange: () => void) {
    this.root.addEventListener("change", () => {
      this.value = this.root.value;
      onChange();
    });
  }

  update(runs: string[]): void {
    if (this.value === null || !runs.includes(this.value)) this.value = runs[0] ?? null;
    const same = this.root.options.length === runs.length && runs.every((r, i) => this.root.options[i].value === r);
    if (!same) {
      clear(this.root);
      for (const r of runs) {
        const o = el("option", null, r);
        o.value = r;
        this.root.appendChild(o);
      }
    }
    if (this.value !== null) this.root.value = this.value;
    this.root.hidden = runs.length < 2;
  }
}

/** A panel that loads only while it is expanded and on screen. */
abstract class LazyPanel {
  readonly panel: Panel;
  protected visible = false;
  protected dirty = true;
  protected loading: Promise<void> | null = null;
  protected readonly note = el("div", { class: "panel-note" });

  constructor(id: string, title: string, collapsed: Set<string>, onToggle: () => void) {
    this.panel = makePanel(id, title, collapsed, () => {
      onToggle();
      this.maybeLoad();
    });
    this.note.hidden = true;
    const io = new IntersectionObserver((entries) => {
      for (const e of entries) this.visible = e.isIntersecting;
      this.maybeLoad();
    });
    io.observe(this.panel.root);
  }

  /** Data changed (a refresh): reload now if shown, else once shown. */
  invalidate(): void {
    this.dirty = true;
    this.maybeLoad();
  }

  protected maybeLoad(): void {
    if (!this.dirty || !this.visible || !this.panel.expanded() || this.loading) return;
    this.dirty = false;
    this.loading = this.load()
      .catch((e) => this.showNote(`Could not load: ${String((e as Error).message ?? e)}`))
      .finally(() => {
        this.loading = null;
        if (this.dirty) this.maybeLoad();
      });
  }

  protected showNote(text: string): void {
    setText(this.note, text);
    this.note.hidden = text === "";
  }

  protected abstract load(): Promise<void>;
}

// -- colour scales -----------------------------------------------------------

const VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"].map(hexRgb);

function hexRgb(h: string): [number, number, number] {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

function ramp(stops: [number, number, number][], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** -1 (blue) .. 0 (the card) .. +1 (red). */
function diverging(r: number, theme: Theme): { bg: string; fg: string } {
  const neutral = hexRgb(theme.dark ? "#2b2c2f" : "#ffffff");
  const end = hexRgb(r < 0 ? (theme.dark ? "#4a7fd4" : "#2166ac") : theme.dark ? "#d35c5c" : "#b2182b");
  const t = Math.min(1, Math.abs(r));
  const c = neutral.map((v, k) => Math.round(v + t * (end[k] - v)));
  const strong = t > 0.55;
  return { bg: `rgb(${c[0]},${c[1]},${c[2]})`, fg: strong ? "#ffffff" : theme.text };
}

// -- heatmap -------------------------------------------------------------------

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
    new ResizeObserver(() => {
      const want = this.wantedBuckets();
      if (this.data && Math.abs(want - this.buckets) > Math.max(2, this.buckets * 0.1)) this.invalidate();
      else this.draw();
    }).observe(this.plot);
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
    bar.style.background = `linear-gradient(to right, ${VIRIDIS.map((c) => `rgb(${c.join(",")})`).join(", ")})`;
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

// -- correlation -----------------------------------------------------------------

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
