// The Job view (issue 11): one distributed job's ranks side by side. A
// 64-rank job drawn as 64 lines per chart is a tangle; here each metric is
// one row (a ranks x time heatmap, or the min-max band with the median and
// the worst rank's own line), the worst rank is named, the job's findings
// (straggler, stalled rank, hang, uneven GPU memory) say what is wrong, and
// each node's GPUs are small multiples. Loaded from the `job` route only
// while the panel is expanded and on screen.

import type uPlot from "uplot";

import { fetchJob, missingRoutes, type JobFinding, type JobMetric, type JobView, type RunInfo } from "../api";
import { save, store } from "../app/store";
import { clear, el, setText } from "../dom";
import { formatClock, formatDateTime, formatDuration, formatValue } from "../format";
import { jobGroups, jobLabel, jobName, ranksOnNodes, STANDS_OUT_FRACTION, standsOut, TOP_LEVEL, type JobGroup } from "../jobs";
import type { Theme } from "../theme";
import { findingRow } from "./findings";
import { bandChart, gpuMax, nodeChart } from "./jobcharts";
import { LazyPanel } from "./lazy";
import { RankHeatmap } from "./rankheatmap";
import { SEVERITY_RANK } from "./severity";

/** About one time bucket per this many pixels of the plot. */
const PX_PER_BUCKET = 4.5;
const MAX_BUCKETS = 2000;
/** The rank labels' column left of each heatmap (styles/job.css: .job-hm-labels). */
const LABELS_PX = 64;

export type JobMode = "heatmap" | "band";
const MODES: { id: JobMode; label: string; title: string }[] = [
  { id: "heatmap", label: "Heatmap", title: "Each metric as ranks (rows) x time (columns)" },
  { id: "band", label: "Band", title: "Each metric as the min-max band across ranks, their median and the worst rank's line" },
];

declare global {
  interface Window {
    /** For tests and the bench: Job view renders, and the last one's times (ms). */
    __ttsmonJob?: { renders: number; lastRenderMs: number; lastLoadMs: number };
  }
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

export class JobPanel extends LazyPanel {
  private readonly select = el("select", { class: "run-select job-select", attrs: { "aria-label": "Job" } });
  private readonly modeBtns = new Map<JobMode, HTMLButtonElement>();
  private readonly head = el("div", { class: "job-head" });
  private readonly findings = el("div", { class: "job-findings", attrs: { "aria-label": "Job findings" } });
  private readonly metricsEl = el("div", { class: "job-metrics" });
  private readonly nodesEl = el("div", { class: "job-nodes" });
  private mode: JobMode;
  private jobs: JobGroup[] = [];
  /** the chosen job's key; kept across refreshes once the user picked one */
  private chosen: string | null = null;
  private userChose = false;
  /** the chosen job and its runs' data versions when it was last loaded */
  private loadedKey = "";
  private view: JobView | null = null;
  private buckets = 0;
  private heatmaps: RankHeatmap[] = [];
  private plots: { u: uPlot; box: HTMLElement }[] = [];
  private readonly stats = { renders: 0, lastRenderMs: NaN, lastLoadMs: NaN };

  constructor(
    collapsed: Set<string>,
    onToggle: () => void,
    private theme: Theme,
  ) {
    super("job", "Job", collapsed, onToggle);
    this.mode = store<JobMode>("jobMode", "heatmap");
    if (!MODES.some((m) => m.id === this.mode)) this.mode = "heatmap";
    this.select.addEventListener("change", () => {
      this.chosen = this.select.value;
      this.userChose = true;
      this.loadedKey = "";
      this.invalidate();
    });
    const seg = el("div", { class: "segmented job-mode", attrs: { role: "group", "aria-label": "Draw metrics as" } });
    for (const m of MODES) {
      const b = el("button", { class: "seg-btn", title: m.title, attrs: { type: "button" }, dataset: { mode: m.id } }, m.label);
      b.addEventListener("click", () => this.setMode(m.id));
      this.modeBtns.set(m.id, b);
      seg.appendChild(b);
    }
    this.showMode();
    this.panel.tools.append(this.select, seg);
    this.panel.root.classList.add("job-panel");
    this.panel.body.append(this.note, this.head, this.findings, this.metricsEl, this.nodesEl);
    this.followWidth(this.metricsEl, { wanted: () => this.wantedBuckets(), loaded: () => (this.view ? this.buckets : null) }, () => this.resize());
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.render();
  }

  /**
   * The runs (all of them: the view is about jobs, not the selection), the
   * selection (the default job is the one with most selected ranks) and the
   * runs' data versions (the view is asked again only when its job's
   * changed; null: every time).
   */
  setRuns(runs: RunInfo[], selected: Set<string>, versions: Map<string, string> | null): void {
    this.jobs = jobGroups(runs);
    this.panel.root.hidden = this.jobs.length === 0 || missingRoutes.has("job");
    if (this.jobs.length === 0) return;
    if (!this.userChose || !this.jobs.some((g) => g.key === this.chosen)) this.chosen = this.defaultJob(selected).key;
    const labels = this.jobs.map((g) => jobLabel(g));
    const same = this.select.options.length === labels.length && this.jobs.every((g, i) => this.select.options[i].value === g.key && this.select.options[i].text === labels[i]);
    if (!same) {
      clear(this.select);
      this.jobs.forEach((g, i) => {
        const o = el("option", null, labels[i]);
        o.value = g.key;
        this.select.appendChild(o);
      });
    }
    this.select.value = this.chosen!;
    this.select.hidden = this.jobs.length < 2;
    setText(this.panel.count, this.jobs.length > 1 ? `${this.jobs.length} jobs` : "");
    const job = this.current()!;
    const key = `${job.key}\u0001${versions ? job.runs.map((r) => `${r.run}\u0000${versions.get(r.run) ?? ""}`).join("\u0001") : Date.now()}`;
    if (key !== this.loadedKey) {
      this.loadedKey = key;
      this.invalidate();
    }
  }

  /** The job with the most selected runs; where none is selected, the one with the newest data. */
  private defaultJob(selected: Set<string>): JobGroup {
    let best = this.jobs[0];
    let bestCount = -1;
    for (const g of this.jobs) {
      const n = g.runs.filter((r) => selected.has(r.run)).length;
      if (n > bestCount || (n === bestCount && g.lastWallTimeS > best.lastWallTimeS)) {
        best = g;
        bestCount = n;
      }
    }
    return best;
  }

  private current(): JobGroup | null {
    return this.jobs.find((g) => g.key === this.chosen) ?? null;
  }

  private setMode(mode: JobMode): void {
    this.mode = mode;
    save("jobMode", mode);
    this.showMode();
    this.renderMetrics();
  }

  private showMode(): void {
    for (const [m, b] of this.modeBtns) {
      b.classList.toggle("active", m === this.mode);
      b.setAttribute("aria-pressed", String(m === this.mode));
    }
  }

  private plotWidth(): number {
    return Math.max(200, (this.metricsEl.clientWidth || this.panel.body.clientWidth || 1000) - LABELS_PX - 8);
  }

  private wantedBuckets(): number {
    return Math.max(2, Math.min(MAX_BUCKETS, Math.floor(this.plotWidth() / PX_PER_BUCKET)));
  }

  protected async load(): Promise<void> {
    const job = this.current();
    if (!job) return;
    const buckets = this.wantedBuckets();
    const t0 = performance.now();
    let view: JobView | null;
    try {
      view = await fetchJob(job.job, job.folder, buckets);
    } catch (e) {
      this.view = null;
      this.render();
      // An HttpError's message is "500 INTERNAL SERVER ERROR: <the server's text>".
      this.showNote(`Could not load the job view of ${jobName(job.folder, job.job)}: ${String((e as Error).message ?? e)}`);
      return;
    }
    if (view === null) {
      // A server older than issue 11: no job route.
      this.panel.root.hidden = true;
      return;
    }
    const parsed = performance.now();
    this.buckets = buckets;
    this.view = view;
    this.showNote("");
    this.render();
    await nextFrame();
    const drawn = performance.now();
    this.stats.renders++;
    this.stats.lastRenderMs = drawn - parsed;
    this.stats.lastLoadMs = drawn - t0;
    window.__ttsmonJob = { ...this.stats };
    document.body.dataset.jobRendered = String(this.stats.renders);
  }

  private render(): void {
    this.renderHead();
    this.renderFindings();
    this.renderMetrics();
    this.renderNodes();
  }

  private renderHead(): void {
    clear(this.head);
    const v = this.view;
    if (!v) return;
    const parts: HTMLElement[] = [
      el("bdi", { class: "job-id" }, v.job),
      el("bdi", { class: "job-folder" }, v.folder || TOP_LEVEL),
      el("span", { class: "job-size" }, ranksOnNodes(v.ranks.length, v.node_count, v.world_size)),
    ];
    if (v.start_wall_time_s !== null && v.end_wall_time_s !== null) {
      const sameDay = formatDateTime(v.start_wall_time_s).slice(0, 10) === formatDateTime(v.end_wall_time_s).slice(0, 10);
      const end = sameDay ? formatClock(v.end_wall_time_s) : formatDateTime(v.end_wall_time_s);
      parts.push(el("span", { class: "job-range" }, `${formatDateTime(v.start_wall_time_s)} – ${end}`));
    }
    if (v.bucket_s) parts.push(el("span", { class: "job-buckets" }, `${v.buckets} buckets of ${formatDuration(v.bucket_s)}`));
    parts.forEach((p, i) => {
      if (i > 0) this.head.appendChild(el("span", { class: "job-sep", attrs: { "aria-hidden": "true" } }, "·"));
      this.head.appendChild(p);
    });
  }

  private renderFindings(): void {
    clear(this.findings);
    const v = this.view;
    if (!v) return;
    const list = [...v.findings].sort((a, b) => (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3));
    if (list.length === 0) {
      this.findings.appendChild(el("div", { class: "findings-empty" }, "No findings: the ranks keep pace with each other."));
      return;
    }
    for (const f of list) this.findings.appendChild(this.findingRow(f));
  }

  private findingRow(f: JobFinding): HTMLElement {
    const who = f.rank !== null && f.rank !== undefined ? el("span", { class: "job-finding-rank" }, `rank ${f.rank}`, f.run ? el("bdi", { class: "an-run" }, f.run) : null) : null;
    const row = findingRow(f, who);
    row.classList.add("job-finding");
    if (f.rank !== null && f.rank !== undefined) row.dataset.rank = String(f.rank);
    if (f.run) row.dataset.run = f.run;
    return row;
  }

  private renderMetrics(): void {
    clear(this.metricsEl);
    this.heatmaps = [];
    // Node charts are kept: only the metric rows change with the mode.
    const keep = this.plots.filter((p) => this.nodesEl.contains(p.box));
    for (const p of this.plots) if (!keep.includes(p)) p.u.destroy();
    this.plots = keep;
    const v = this.view;
    if (!v) return;
    if (v.metrics.length === 0 || v.ranks.length === 0) {
      this.metricsEl.appendChild(
        el("div", { class: "panel-empty" }, "No job metrics yet: the ranks have logged no step times, steps/s, loss or process samples so far."),
      );
      return;
    }
    const width = Math.max(200, this.metricsEl.clientWidth || 1000);
    for (const m of v.metrics) {
      const row = el("div", { class: "job-metric", dataset: { metric: m.id } }, this.metricHead(v, m));
      this.metricsEl.appendChild(row);
      const hasValues = m.median.some((x) => Number.isFinite(x));
      if (!hasValues) {
        row.appendChild(el("div", { class: "panel-empty" }, "No values yet."));
        continue;
      }
      if (this.mode === "heatmap") {
        const hm = new RankHeatmap(v, m);
        row.appendChild(hm.root);
        hm.draw(this.theme);
        this.heatmaps.push(hm);
      } else {
        const box = el("div", { class: "job-band" });
        row.appendChild(box);
        this.plots.push({ u: bandChart(box, v, m, this.theme, width), box });
      }
    }
  }

  private metricHead(v: JobView, m: JobMetric): HTMLElement {
    const unit = m.unit ? el("span", { class: "job-metric-unit" }, m.unit) : null;
    const w = m.worst;
    let worst: HTMLElement | null = null;
    if (w && !standsOut(m)) {
      // Said, but not as a culprit: every rank at 1 step/s has no worst one.
      worst = el(
        "span",
        { class: "job-worst none", title: `Every rank is within ${STANDS_OUT_FRACTION * 100} % of the job's median` },
        `no rank stands out (rank ${w.rank}: ${formatValue(w.value, m.unit)}, job median ${formatValue(w.job_median, m.unit)})`,
      );
    } else if (w) {
      const end = m.worse === "low" ? "lowest" : "highest";
      worst = el(
        "span",
        { class: "job-worst", dataset: { rank: String(w.rank), run: w.run }, title: `The rank whose median over the run is the ${end}, against the median of all ${v.ranks.length} ranks' medians` },
        `worst rank ${w.rank} (`,
        el("bdi", null, w.run),
        `): ${formatValue(w.value, m.unit)}, job median ${formatValue(w.job_median, m.unit)}`,
      );
    }
    return el("div", { class: "job-metric-head" }, el("span", { class: "job-metric-title", title: m.description }, m.title), unit, worst);
  }

  private renderNodes(): void {
    for (const p of this.plots) if (this.nodesEl.contains(p.box)) p.u.destroy();
    this.plots = this.plots.filter((p) => !this.nodesEl.contains(p.box));
    clear(this.nodesEl);
    const v = this.view;
    if (!v) return;
    const withGpus = v.nodes.filter((n) => n.gpus.length > 0);
    this.nodesEl.appendChild(el("div", { class: "job-nodes-title" }, `GPUs per node`, el("span", { class: "job-nodes-note" }, `${v.nodes.length} node${v.nodes.length === 1 ? "" : "s"}, one line per GPU`)));
    if (withGpus.length === 0 || v.gpu_metrics.length === 0) {
      this.nodesEl.appendChild(el("div", { class: "panel-empty" }, "No GPU series from this job's nodes: no rank sampled its node's GPUs (no NVML, or no node sampler)."));
      return;
    }
    const rankOfRun = new Map(v.ranks.map((r) => [r.run, r.rank]));
    for (const gm of v.gpu_metrics) {
      const grid = el("div", { class: "job-node-grid", dataset: { gpuMetric: gm.id } });
      this.nodesEl.append(
        el("div", { class: "job-node-metric", title: gm.description }, gm.title, gm.unit ? el("span", { class: "job-metric-unit" }, gm.unit) : null),
        grid,
      );
      const yMax = gpuMax(v, gm);
      for (const n of withGpus) {
        const sampler = rankOfRun.get(n.run);
        const box = el("div", { class: "job-node-plot" });
        const card = el(
          "div",
          { class: "job-node-card", dataset: { node: n.host, nodeRank: String(n.node_rank ?? "") } },
          el("div", { class: "job-node-title", title: n.run }, el("bdi", null, n.host), sampler !== undefined ? el("span", { class: "job-node-sampler" }, ` (rank ${sampler} samples it)`) : null),
          box,
        );
        grid.appendChild(card);
        // Sized once in the document: the grid decides the card's width.
        const width = Math.max(160, Math.floor(box.clientWidth || 300));
        this.plots.push({ u: nodeChart(box, v, n, gm, this.theme, width, yMax), box });
      }
    }
  }

  /** The width changed: redraw heatmaps, resize charts. */
  private resize(): void {
    for (const hm of this.heatmaps) hm.draw(this.theme);
    for (const p of this.plots) {
      const w = Math.floor(p.box.clientWidth);
      if (w > 0 && w !== p.u.width) p.u.setSize({ width: w, height: p.u.height });
    }
  }
}
