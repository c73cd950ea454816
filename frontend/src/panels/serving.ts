// The Serving view (issue 12): where a TTS server's request time goes and
// what its users wait for, for one run that logged inference requests. A
// summary strip (requests, latency, RTF, time to first audio, audio made),
// the serving findings, each stage's share of the latency over time
// (stacked), time to first audio over time, the latency histogram of each
// window, and cold against warm requests (the speaker-prompt cache). Loaded
// from the `serving` route only while the panel is expanded and on screen.

import type uPlot from "uplot";

import { fetchServing, HttpError, missingRoutes, serverMessage, type ServingCacheSide, type ServingView } from "../api";
import { clear, el, setText } from "../dom";
import { formatClock, formatDateTime, formatDuration, formatNumber, formatValue } from "../format";
import type { Theme } from "../theme";
import { findingRow } from "./findings";
import { LazyPanel, RunSelect } from "./lazy";
import { SEVERITY_RANK } from "./severity";
import { AXIS_PX, formatMs, LatencyHistogram, PAD_RIGHT_PX, stageColors, stageShareChart, ttfaChart } from "./servingcharts";

/** About one time window per this many pixels of the plot ... */
const PX_PER_BUCKET = 7;
/** ... and at least this many requests per window on average (fewer make every window's share noise). */
const REQUESTS_PER_BUCKET = 3;
const MAX_BUCKETS = 2000;

declare global {
  interface Window {
    /** For tests: Serving view renders, and the last one's time (answer parsed to drawn, ms). */
    __ttsmonServing?: { renders: number; lastRenderMs: number };
  }
}

/** A selected run the view can show. */
export interface ServingRun {
  run: string;
  /** its data version when the tab loaded it (undefined: unknown, asked again every time) */
  version?: string;
  /** its inference requests so far (the overview's count), to size the windows */
  requests: number;
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

interface Stat {
  id: string;
  label: string;
  value: string;
  title: string;
  bad?: boolean;
}

export class ServingPanel extends LazyPanel {
  private readonly runSelect: RunSelect;
  private readonly head = el("div", { class: "sv-head" });
  private readonly statsEl = el("div", { class: "sv-stats", attrs: { "aria-label": "Serving summary" } });
  private readonly findingsEl = el("div", { class: "sv-findings", attrs: { "aria-label": "Serving findings" } });
  private readonly stackEl = el("div", { class: "sv-block sv-stack", dataset: { block: "stage-share" } });
  private readonly ttfaEl = el("div", { class: "sv-block sv-ttfa", dataset: { block: "ttfa" } });
  private readonly histEl = el("div", { class: "sv-block sv-hist", dataset: { block: "latency-histogram" } });
  private readonly cacheEl = el("div", { class: "sv-block sv-cache", dataset: { block: "cache" } });
  private readonly content = el("div", { class: "sv-content" }, this.head, this.statsEl, this.findingsEl, this.stackEl, this.ttfaEl, this.histEl, this.cacheEl);
  private runs: ServingRun[] = [];
  /** the chosen run and its data version when it was last loaded */
  private loadedKey = "";
  private view: ServingView | null = null;
  private buckets = 0;
  private plots: { u: uPlot; box: HTMLElement }[] = [];
  private histogram: LatencyHistogram | null = null;
  private readonly stats = { renders: 0, lastRenderMs: NaN };
  /** The window under the charts' cursor, outlined on the histogram below them. */
  private readonly onWindow = (bucket: number | null) => this.histogram?.showWindow(bucket);

  constructor(
    collapsed: Set<string>,
    onToggle: () => void,
    private theme: Theme,
  ) {
    super("serving", "Serving", collapsed, onToggle);
    this.runSelect = new RunSelect(() => {
      this.loadedKey = this.keyOf(this.current());
      this.invalidate();
    });
    this.panel.tools.appendChild(this.runSelect.root);
    this.panel.root.classList.add("serving-panel");
    this.panel.body.append(this.note, this.content);
    this.followWidth(this.content, { wanted: () => this.wantedBuckets(), loaded: () => (this.view ? this.buckets : null) }, () => this.resize());
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.render();
  }

  /**
   * The selected runs that logged inference (the panel is hidden without
   * any); the chosen run's view is asked again only when its data version
   * changed.
   */
  setRuns(runs: ServingRun[]): void {
    this.runs = runs;
    this.panel.root.hidden = runs.length === 0 || missingRoutes.has("serving");
    this.runSelect.update(runs.map((r) => r.run));
    if (runs.length === 0) return;
    const key = this.keyOf(this.current());
    if (key !== this.loadedKey) {
      this.loadedKey = key;
      this.invalidate();
    }
  }

  /** A run's name and data version: the view is asked again when it changes (always where the version is unknown). */
  private keyOf(r: ServingRun | null): string {
    return r ? `${r.run}\u0000${r.version ?? Date.now()}` : "";
  }

  private current(): ServingRun | null {
    return this.runs.find((r) => r.run === this.runSelect.value) ?? null;
  }

  private plotWidth(): number {
    return Math.max(200, (this.content.clientWidth || this.panel.body.clientWidth || 1000) - AXIS_PX - PAD_RIGHT_PX);
  }

  private wantedBuckets(): number {
    const requests = this.current()?.requests ?? 0;
    const byWidth = Math.floor(this.plotWidth() / PX_PER_BUCKET);
    const byRequests = requests > 0 ? Math.floor(requests / REQUESTS_PER_BUCKET) : byWidth;
    return Math.max(2, Math.min(MAX_BUCKETS, byWidth, byRequests));
  }

  protected async load(): Promise<void> {
    const run = this.current()?.run;
    if (!run) return;
    const buckets = this.wantedBuckets();
    let view: ServingView | null;
    try {
      view = await fetchServing(run, buckets);
    } catch (e) {
      this.view = null;
      this.render();
      // A 404 that names the run: it has no inference requests (only an RTF, say).
      if (e instanceof HttpError && e.status === 404) this.showNote(serverMessage(e));
      else this.showNote(`Could not load the serving view of ${run}: ${String((e as Error).message ?? e)}`);
      return;
    }
    if (view === null) {
      // A server older than issue 12: no serving route.
      this.panel.root.hidden = true;
      return;
    }
    if (run !== this.current()?.run) return; // another run was chosen meanwhile
    const parsed = performance.now();
    this.buckets = buckets;
    this.view = view;
    this.showNote("");
    this.render();
    await nextFrame();
    this.stats.renders++;
    this.stats.lastRenderMs = performance.now() - parsed;
    window.__ttsmonServing = { ...this.stats };
    document.body.dataset.servingRendered = String(this.stats.renders);
  }

  private render(): void {
    for (const p of this.plots) p.u.destroy();
    this.plots = [];
    this.histogram = null;
    for (const part of [this.head, this.statsEl, this.findingsEl, this.stackEl, this.ttfaEl, this.histEl, this.cacheEl]) clear(part);
    const v = this.view;
    this.content.hidden = v === null;
    setText(this.panel.count, v ? `${formatNumber(v.requests, 12)} requests` : "");
    if (!v) return;
    this.renderHead(v);
    this.renderStats(v);
    this.renderFindings(v);
    this.renderStages(v);
    this.renderTtfa(v);
    this.renderHistogram(v);
    this.renderCache(v);
  }

  private renderHead(v: ServingView): void {
    const sameDay = formatDateTime(v.start_wall_time_s).slice(0, 10) === formatDateTime(v.end_wall_time_s).slice(0, 10);
    const end = sameDay ? formatClock(v.end_wall_time_s) : formatDateTime(v.end_wall_time_s);
    const parts: HTMLElement[] = [
      el("bdi", { class: "sv-run" }, v.run),
      el("span", null, `${formatDateTime(v.start_wall_time_s)} – ${end}`),
      el("span", null, `${v.buckets} windows of ${formatDuration(v.bucket_s)}`),
    ];
    parts.forEach((p, i) => {
      if (i > 0) this.head.appendChild(el("span", { class: "sv-sep", attrs: { "aria-hidden": "true" } }, "·"));
      this.head.appendChild(p);
    });
  }

  private renderStats(v: ServingView): void {
    const s = v.summary;
    const rtf = (x: number | null) => (x === null ? "—" : formatValue(x, "", 3));
    const stats: Stat[] = [
      { id: "requests", label: "Requests", value: formatNumber(v.requests, 12), title: "Inference requests the run logged" },
      { id: "latency-p50", label: "Latency p50", value: formatMs(s.latency_p50_ms), title: "Median request latency over the run" },
      { id: "latency-p95", label: "p95", value: formatMs(s.latency_p95_ms), title: "95th percentile request latency" },
      { id: "latency-p99", label: "p99", value: formatMs(s.latency_p99_ms), title: "99th percentile request latency" },
      { id: "rtf-p50", label: "RTF p50", value: rtf(s.rtf_p50), title: "Median real-time factor: synthesis time / audio time; below 1 is faster than real time", bad: s.rtf_p50 !== null && s.rtf_p50 > 1 },
      { id: "rtf-p95", label: "RTF p95", value: rtf(s.rtf_p95), title: "95th percentile real-time factor; above 1 is slower than real time", bad: s.rtf_p95 !== null && s.rtf_p95 > 1 },
      { id: "ttfa-p50", label: "First audio p50", value: formatMs(s.ttfa_p50_ms), title: "Median time to first audio (req.first_audio())" },
      { id: "ttfa-p95", label: "p95", value: formatMs(s.ttfa_p95_ms), title: "95th percentile time to first audio" },
      { id: "audio", label: "Audio made", value: s.audio_s_total === null ? "—" : formatDuration(s.audio_s_total), title: "Seconds of audio all requests produced" },
    ];
    for (const st of stats) {
      this.statsEl.appendChild(
        el(
          "div",
          { class: `sv-stat${st.bad ? " bad" : ""}`, title: st.title, dataset: { stat: st.id } },
          el("div", { class: "sv-stat-label" }, st.label),
          el("div", { class: "sv-stat-value" }, st.value),
        ),
      );
    }
  }

  private renderFindings(v: ServingView): void {
    const list = [...v.findings].sort((a, b) => (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3));
    if (list.length === 0) {
      this.findingsEl.appendChild(el("div", { class: "findings-empty" }, "No findings: no stage dominates, requests keep up with real time, and cold and warm requests are alike."));
      return;
    }
    for (const f of list) this.findingsEl.appendChild(findingRow(f));
  }

  private blockHead(target: HTMLElement, title: string, description: string, note: HTMLElement | string | null): void {
    target.appendChild(el("div", { class: "sv-block-head" }, el("span", { class: "sv-block-title", title: description }, title), note ? el("span", { class: "sv-block-note" }, note) : null));
  }

  private width(): number {
    return Math.max(260, Math.floor(this.content.clientWidth || 1000));
  }

  private renderStages(v: ServingView): void {
    const colors = stageColors(v.stages, this.theme);
    const overall = el("span", { class: "sv-overall" }, "whole run: ");
    v.stages.forEach((s, i) => {
      const share = v.summary.stage_share[s];
      if (i > 0) overall.appendChild(document.createTextNode(", "));
      const name = el("bdi", { class: "sv-stage-name" }, s);
      name.style.setProperty("--swatch", colors.get(s) ?? this.theme.refLine);
      overall.append(name, ` ${share === null ? "—" : formatValue(share * 100, "%", 3)}`);
    });
    this.blockHead(
      this.stackEl,
      "Stage share of latency",
      "Each stage's time over the summed latency of the requests that finished in each window, stacked (largest at the bottom; unattributed, the time in no timed stage, on top)",
      overall,
    );
    if (v.stages.length === 0) {
      this.stackEl.appendChild(el("div", { class: "panel-empty" }, "No request timed its stages (req.stage(...))."));
      return;
    }
    const box = el("div", { class: "sv-plot" });
    this.stackEl.appendChild(box);
    this.plots.push({ u: stageShareChart(box, v, this.theme, this.width(), colors, this.onWindow), box });
  }

  private renderTtfa(v: ServingView): void {
    const p50 = v.summary.ttfa_p50_ms;
    this.blockHead(this.ttfaEl, "Time to first audio", "How long each window's users waited for the first audio: p50 and p95 of the requests that finished in it", p50 === null ? null : `whole run: p50 ${formatMs(p50)}, p95 ${formatMs(v.summary.ttfa_p95_ms)}`);
    if (v.ttfa.p50_ms.length === 0) {
      this.ttfaEl.appendChild(el("div", { class: "panel-empty" }, "No request reported its first audio (req.first_audio())"));
      return;
    }
    const box = el("div", { class: "sv-plot" });
    this.ttfaEl.appendChild(box);
    this.plots.push({ u: ttfaChart(box, v, this.theme, this.width(), this.onWindow), box });
  }

  private renderHistogram(v: ServingView): void {
    const edges = v.latency_histogram.edges_ms;
    const range = edges.length >= 2 ? `${edges.length - 1} log-spaced bins from ${formatMs(edges[0])} to ${formatMs(edges[edges.length - 1])}` : null;
    this.blockHead(this.histEl, "Latency per window", "Request latencies counted per time window (columns) and log-spaced latency bin (rows, low at the bottom)", range);
    if (edges.length < 2) {
      this.histEl.appendChild(el("div", { class: "panel-empty" }, "No finite latency to count yet."));
      return;
    }
    this.histogram = new LatencyHistogram(v);
    this.histEl.appendChild(this.histogram.root);
    this.histogram.draw(this.theme);
  }

  private renderCache(v: ServingView): void {
    const c = v.cache;
    const ratio = c?.cold_over_warm_p50 ?? null;
    let note: string | null = null;
    if (ratio !== null && Number.isFinite(ratio)) note = ratio >= 1 ? `cold is ${formatNumber(ratio, 2)}× slower (p50)` : `cold is ${formatNumber(1 / ratio, 2)}× faster (p50)`;
    const noteEl = note ? el("span", { class: `sv-ratio${ratio !== null && ratio >= 1.5 ? " bad" : ""}`, dataset: { ratio: String(ratio) } }, note) : null;
    this.blockHead(this.cacheEl, "Cold and warm requests", "Requests whose speaker prompt was not cached (cold) against those whose was (warm): req.cache_hit", noteEl);
    if (!c) {
      this.cacheEl.appendChild(el("div", { class: "panel-empty" }, "No request said whether its speaker prompt was cached (req.cache_hit)"));
      return;
    }
    const sides: [string, string, ServingCacheSide][] = [
      ["cold", "Cold: prompt not cached", c.cold],
      ["warm", "Warm: prompt cached", c.warm],
    ];
    const fact = (name: string, key: string, value: string) =>
      el("div", { class: "sv-fact", dataset: { fact: key } }, el("div", { class: "sv-fact-label" }, name), el("div", { class: "sv-fact-value" }, value));
    const grid = el("div", { class: "sv-cache-grid" });
    for (const [id, label, side] of sides) {
      grid.appendChild(
        el(
          "div",
          { class: `sv-side ${id}`, dataset: { side: id } },
          el("div", { class: "sv-side-title" }, label),
          el(
            "div",
            { class: "sv-facts" },
            fact("requests", "requests", formatNumber(side.requests, 12)),
            fact("latency p50", "latency-p50", formatMs(side.latency_p50_ms)),
            fact("p95", "latency-p95", formatMs(side.latency_p95_ms)),
            fact("first audio p50", "ttfa-p50", formatMs(side.ttfa_p50_ms)),
          ),
        ),
      );
    }
    // The two medians as bars on one scale, each p95 a thin mark.
    const scale = Math.max(...sides.flatMap(([, , s]) => [s.latency_p50_ms ?? 0, s.latency_p95_ms ?? 0]));
    const pct = (ms: number | null) => (ms === null || !(scale > 0) ? 0 : Math.min(100, (ms / scale) * 100));
    const bars = el("div", { class: "sv-bars", attrs: { role: "img", "aria-label": "Latency p50 (bar) and p95 (mark), cold and warm" } });
    for (const [id, , side] of sides) {
      const fill = el("div", { class: "sv-bar-fill" });
      fill.style.width = `${pct(side.latency_p50_ms)}%`;
      const mark = el("div", { class: "sv-bar-p95" });
      mark.style.left = `${pct(side.latency_p95_ms)}%`;
      mark.hidden = side.latency_p95_ms === null;
      bars.append(
        el("div", { class: "sv-bar-label" }, id),
        el("div", { class: `sv-bar ${id}`, dataset: { side: id }, title: `${id}: latency p50 ${formatMs(side.latency_p50_ms)} (bar), p95 ${formatMs(side.latency_p95_ms)} (mark)` }, fill, mark),
        el("div", { class: "sv-bar-value" }, `${formatMs(side.latency_p50_ms)} · p95 ${formatMs(side.latency_p95_ms)}`),
      );
    }
    this.cacheEl.append(grid, bars);
  }

  /** The width changed: resize the charts, redraw the histogram. */
  private resize(): void {
    const w = this.width();
    for (const p of this.plots) if (w !== p.u.width) p.u.setSize({ width: w, height: p.u.height });
    this.histogram?.draw(this.theme);
  }
}
