// The tab: header (runs, x axis, refresh), overview strip, and the System,
// Training and Inference sections of charts. All state lives here; a refresh
// asks only what changed (the runs' data versions first, then the new rows of
// the runs that moved) and redraws in place.

import {
  fetchOverview,
  fetchProfiles,
  fetchRuns,
  fetchSeriesBatch,
  fetchTags,
  fetchVersions,
  HttpError,
  toNumber,
  type AlertEvent,
  type BatchEntry,
  type RunInfo,
  type RunVersion,
  type Series,
  type TagInfo,
} from "./api";
import { ChartGroup } from "./chart/group";
import { clear, el, setText } from "./dom";
import { overviewCard } from "./overview";
import { AlertsPanel } from "./panels/alerts";
import { ComparePanel } from "./panels/compare";
import { CorrelationPanel } from "./panels/correlation";
import { FindingsView } from "./panels/findings";
import { HeatmapPanel } from "./panels/heatmap";
import { JobPanel } from "./panels/job";
import { ProfilerPanel } from "./panels/profiler";
import { ServingPanel } from "./panels/serving";
import { RunPicker } from "./runpicker";
import { buildCharts, SECTIONS, tagsToFetch, type ChartDef, type RunStyle, type SectionId } from "./specs";
import { connectToHost, DATA_RELOADED, RUNS_CHANGED } from "./tbhost";
import { DARK, LIGHT, watchDarkMode, type Theme } from "./theme";
import { RunClock, X_MODES, type XMode } from "./xaxis";
import { RunMarks } from "./app/marks";
import { capSeries, lastStepOf, mergeSeries, minmaxIndices } from "./app/live";
import { MANY_SERIES_POINTS, manySeriesTags } from "./chart/many";
import { fetchAnalytics, profilesPending, type RunData } from "./app/rundata";
import { ChartSection } from "./app/section";
import { save, store } from "./app/store";
import { Toolbar } from "./app/toolbar";

export const AUTO_REFRESH_MS = 5000;
const DEFAULT_MAX_SELECTED = 5;
const MIN_CHART_WIDTH = 400;
const GRID_GAP = 12;

declare global {
  interface Window {
    /** For tests and the bench: performance.now() when the first full render was drawn. */
    __ttsmonRendered?: number;
    __ttsmon?: { refreshes: number; renders: number; errors: string[] };
    /** For tests: the series the tab holds (what its charts draw), and the browser's downsampler. */
    __ttsmonLive?: {
      series(run: string, tag: string): { step: number[]; wall: number[]; value: number[]; total: number } | null;
      minmaxIndices(values: (number | string | null)[], maxPoints: number): number[];
      capSeries(values: number[], maxPoints: number): number[];
    };
  }
}

export class App {
  private readonly root: HTMLElement;
  private theme: Theme = LIGHT;
  private readonly group: ChartGroup;
  private readonly picker: RunPicker;
  private readonly overviewEl: HTMLElement;
  private readonly sectionsEl: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly noRunsEl: HTMLElement;
  private readonly noneSelectedEl: HTMLElement;
  private readonly toolbar: Toolbar;
  private readonly sections = new Map<SectionId, ChartSection>();
  private readonly findingsView = new FindingsView();
  private readonly jobPanel: JobPanel;
  private readonly comparePanel: ComparePanel;
  private readonly servingPanel: ServingPanel;
  private readonly alertsPanel: AlertsPanel;
  private readonly heatmapPanel: HeatmapPanel;
  private readonly correlationPanel: CorrelationPanel;
  private readonly profilerPanel: ProfilerPanel;

  private runs: RunInfo[] = [];
  private readonly colors = new Map<string, string>();
  private selected: Set<string> | null = null;
  private data = new Map<string, RunData>();
  /** per run, the data version its held data was loaded at */
  private readonly loaded = new Map<string, string>();
  /** the run names `runs` was last asked for (null: ask every refresh) */
  private runsKey: string | null = null;
  /** the run versions when `runs` was last asked */
  private runsVersions = new Map<string, string>();
  /** the user chose the selection (an empty one included) */
  private userChose = false;
  private xMode: XMode;
  private auto: boolean;
  private collapsed: Set<string>;
  private inFlight: Promise<void> | null = null;
  private queued = false;
  /** a refresh was skipped while the tab was hidden */
  private stale = false;
  private generation = 0;
  private lastUpdated: number | null = null;
  private readonly stats = { refreshes: 0, renders: 0, errors: [] as string[] };

  constructor(root: HTMLElement) {
    this.root = root;
    window.__ttsmon = this.stats;
    window.__ttsmonLive = {
      series: (run, tag) => {
        const s = this.data.get(run)?.series.get(tag);
        return s ? { step: [...s.step], wall: [...s.wall], value: [...s.value], total: s.total } : null;
      },
      minmaxIndices: (values, maxPoints) => minmaxIndices(Float64Array.from(values, toNumber), maxPoints),
      capSeries: (values, maxPoints) => {
        const v = Float64Array.from(values);
        const steps = Float64Array.from(values, (_, i) => i);
        return [...capSeries({ tag: "", unit: "", kind: "", total: v.length, wall: steps, step: steps, value: v }, maxPoints).step];
      },
    };
    this.xMode = store<XMode>("xMode", "wall");
    if (!X_MODES.some((m) => m.id === this.xMode)) this.xMode = "wall";
    this.auto = store<boolean>("autoRefresh", true);
    this.collapsed = new Set(store<string[]>("collapsed", []));
    this.group = new ChartGroup(this.theme);
    this.group.mode = this.xMode;
    this.group.onChange = () => this.toolbar.showZoomed(this.group.zoom !== null);

    // -- header --
    this.picker = new RunPicker((sel) => {
      this.selected = sel;
      this.userChose = true;
      save("selected", [...sel]);
      void this.refresh();
    });
    this.toolbar = new Toolbar(this.picker.root, {
      setMode: (mode) => this.setMode(mode),
      resetZoom: () => this.group.resetZoom(),
      toggleAuto: () => {
        this.auto = !this.auto;
        save("autoRefresh", this.auto);
        this.toolbar.showAuto(this.auto);
        if (this.auto) void this.refresh();
      },
      refresh: () => void this.refresh(),
    });

    this.errorEl = el("div", { class: "error-banner", attrs: { role: "alert" } });
    this.errorEl.hidden = true;
    this.noRunsEl = el(
      "div",
      { class: "no-runs" },
      el("div", { class: "no-runs-title" }, "No ttsmon data in this log directory yet"),
      el("div", { class: "no-runs-hint" }, "Record a job with tb_plugin_ttsmon.Monitor(\"<logdir>/<run>\") or ttsmon.keras.MonitorCallback; its run appears here within seconds."),
    );
    this.noRunsEl.hidden = true;
    this.noneSelectedEl = el("div", { class: "no-runs" }, el("div", { class: "no-runs-hint" }, "No run selected: choose runs with the Runs button."));
    this.noneSelectedEl.hidden = true;
    this.overviewEl = el("section", { class: "overview", attrs: { "aria-label": "Overview" } });
    this.sectionsEl = el("div", { class: "sections" });
    const saveCollapsed = () => save("collapsed", [...this.collapsed]);
    // The Job view first: with a distributed job it is the tab's overview.
    this.jobPanel = new JobPanel(this.collapsed, saveCollapsed, this.theme);
    this.sectionsEl.appendChild(this.jobPanel.panel.root);
    // Then, with exactly two runs selected, their comparison (a hint otherwise).
    this.comparePanel = new ComparePanel(this.collapsed, saveCollapsed);
    this.sectionsEl.appendChild(this.comparePanel.panel.root);
    // Then the Serving view: for a run that serves requests it is the tab's
    // overview, as the Job view is for a job; the Inference section's
    // per-request charts below are its detail.
    this.servingPanel = new ServingPanel(this.collapsed, saveCollapsed, this.theme);
    this.sectionsEl.appendChild(this.servingPanel.panel.root);
    this.alertsPanel = new AlertsPanel(this.collapsed, saveCollapsed, (run, a) => this.zoomToAlert(run, a));
    this.sectionsEl.appendChild(this.alertsPanel.panel.root);
    for (const s of SECTIONS) {
      const section = new ChartSection(s.id, s.title, s.empty, this.collapsed, saveCollapsed);
      this.sections.set(s.id, section);
      this.sectionsEl.appendChild(section.root);
    }
    this.profilerPanel = new ProfilerPanel(this.collapsed, saveCollapsed);
    this.sectionsEl.appendChild(this.profilerPanel.panel.root);
    this.heatmapPanel = new HeatmapPanel(this.collapsed, saveCollapsed);
    this.correlationPanel = new CorrelationPanel(this.collapsed, saveCollapsed, this.theme);
    this.sectionsEl.append(this.heatmapPanel.panel.root, this.correlationPanel.panel.root);
    this.jobPanel.panel.root.hidden = true;
    this.comparePanel.panel.root.hidden = true;
    this.servingPanel.panel.root.hidden = true;
    this.alertsPanel.panel.root.hidden = true;
    this.heatmapPanel.panel.root.hidden = true;
    this.correlationPanel.panel.root.hidden = true;
    this.profilerPanel.panel.root.hidden = true;
    this.findingsView.root.hidden = true;

    this.root.appendChild(this.toolbar.root);
    this.root.appendChild(el("main", { class: "content" }, this.errorEl, this.noRunsEl, this.noneSelectedEl, this.overviewEl, this.findingsView.root, this.sectionsEl));
    this.toolbar.showMode(this.xMode);
    this.toolbar.showAuto(this.auto);
    this.toolbar.showZoomed(false);

    watchDarkMode((dark) => this.setTheme(dark ? DARK : LIGHT));
    // Canvas text is drawn with whatever font is loaded at the time.
    document.fonts?.addEventListener?.("loadingdone", () => this.group.redraw());
    // TensorBoard's reload (its button and its own periodic reload) reaches
    // the tab through the plugin host's messages; see tbhost.ts.
    connectToHost({
      [DATA_RELOADED]: () => this.refreshIfVisible(),
      [RUNS_CHANGED]: () => this.refreshIfVisible(),
    });
    window.setInterval(() => {
      if (this.auto) this.refreshIfVisible();
    }, AUTO_REFRESH_MS);
    this.watchFrameVisibility();
    window.setInterval(() => this.toolbar.showUpdated(this.lastUpdated), 1000);
    this.refreshIfVisible();
  }

  /** Refreshes now, or (while the tab is hidden) once it is shown again. */
  private refreshIfVisible(): void {
    if (this.visible()) void this.refresh();
    else this.stale = true;
  }

  /** TensorBoard hides an inactive plugin's iframe with `visibility: hidden`. */
  private watchFrameVisibility(): void {
    const onShow = () => {
      if (this.stale && this.visible()) {
        this.stale = false;
        void this.refresh();
      }
    };
    document.addEventListener("visibilitychange", () => {
      // Page Visibility API: nothing is asked while hidden; shown again, the
      // tab refreshes at once.
      if (document.visibilityState === "hidden") this.stale = true;
      else onShow();
    });
    try {
      const frame = window.frameElement;
      if (frame) new MutationObserver(onShow).observe(frame, { attributes: true, attributeFilter: ["style"] });
    } catch {
      // cross-origin parent: the document's own visibility is all there is
    }
  }

  private visible(): boolean {
    if (document.visibilityState === "hidden") return false;
    try {
      const frame = window.frameElement as HTMLElement | null;
      if (frame && frame.style.visibility === "hidden") return false;
    } catch {
      // cross-origin parent: assume visible
    }
    return true;
  }

  private setTheme(theme: Theme): void {
    this.theme = theme;
    this.group.theme = theme;
    document.documentElement.classList.toggle("dark", theme.dark);
    this.heatmapPanel?.setTheme();
    this.jobPanel?.setTheme(theme);
    this.servingPanel?.setTheme(theme);
    this.correlationPanel?.setTheme(theme);
    this.renderCharts();
  }

  private setMode(mode: XMode): void {
    if (mode === this.xMode) return;
    this.xMode = mode;
    this.group.mode = mode;
    this.group.zoom = null;
    save("xMode", mode);
    this.toolbar.showMode(mode);
    this.renderCharts();
    this.toolbar.showZoomed(false);
  }

  private showError(messages: string[]): void {
    this.errorEl.hidden = messages.length === 0;
    setText(this.errorEl, messages.join("\n"));
    if (messages.length) this.stats.errors.push(...messages);
  }

  /** Refreshes now; a refresh asked for while one runs is done once after it. */
  refresh(): Promise<void> {
    if (this.inFlight) {
      this.queued = true;
      return this.inFlight;
    }
    this.inFlight = this.doRefresh().finally(() => {
      this.inFlight = null;
      if (this.queued) {
        this.queued = false;
        void this.refresh();
      }
    });
    return this.inFlight;
  }

  private colorOf(run: string): string {
    let c = this.colors.get(run);
    if (!c) {
      c = String(this.colors.size);
      this.colors.set(run, c);
    }
    const idx = Number(c);
    return this.theme.palette[idx % this.theme.palette.length];
  }

  private runColors(): Map<string, string> {
    return new Map(this.runs.map((r) => [r.run, this.colorOf(r.run)]));
  }

  private defaultSelection(runs: RunInfo[]): Set<string> {
    const stored = store<string[] | null>("selected", null);
    if (stored) {
      const names = new Set(runs.map((r) => r.run));
      const kept = stored.filter((r) => names.has(r));
      if (kept.length > 0) return new Set(kept);
    }
    const recent = [...runs].sort((a, b) => (b.last_wall_time_s ?? 0) - (a.last_wall_time_s ?? 0));
    return new Set(recent.slice(0, DEFAULT_MAX_SELECTED).map((r) => r.run));
  }

  private pointsFor(section: SectionId): number {
    const grid = this.sections.get(section)!.grid;
    const w = grid.clientWidth || this.sectionsEl.clientWidth || document.documentElement.clientWidth || 1200;
    const cols = Math.max(1, Math.floor((w + GRID_GAP) / (MIN_CHART_WIDTH + GRID_GAP)));
    const colW = (w - GRID_GAP * (cols - 1)) / cols;
    return Math.min(100_000, Math.max(200, Math.round(colW * 2)));
  }

  /**
   * One refresh. It asks `versions` first (one 304 when nothing changed) and
   * then only about the selected runs whose version moved: their tags,
   * overview and analytics (each answered 304 by the server's cache when
   * unchanged), and per section one `series_batch` across all of them with
   * `since_step` per tag, whose rows are appended to what the tab holds. A
   * run that stopped changing (a finished job) keeps its version, so its
   * `versions` entry is all a refresh costs for it.
   */
  private async doRefresh(): Promise<void> {
    const gen = ++this.generation;
    this.stats.refreshes++;
    this.toolbar.showLoading(true);
    const errors: string[] = [];
    try {
      let versions: Map<string, RunVersion> | null;
      try {
        versions = await fetchVersions();
      } catch (e) {
        // An older backend without `versions`: every refresh loads everything.
        if (!(e instanceof HttpError && e.status === 404)) throw e;
        versions = null;
      }
      const namesKey = versions ? [...versions.keys()].sort().join("\u0000") : null;
      // `runs` (names, hosts, facts) again only when the set of runs changed,
      // or a run without facts yet has new data (its facts may have come).
      const factsMissing = versions !== null && this.runs.some((r) => r.facts === null && this.runsVersions.get(r.run) !== versions!.get(r.run)?.version);
      let runs: RunInfo[];
      if (namesKey === null || namesKey !== this.runsKey || factsMissing) {
        runs = await fetchRuns();
        this.runsKey = namesKey;
        this.runsVersions = new Map([...(versions ?? [])].map(([r, v]) => [r, v.version]));
      } else {
        runs = this.runs;
      }
      if (versions) for (const r of runs) r.last_wall_time_s = versions.get(r.run)?.last_wall_time_s ?? r.last_wall_time_s;
      for (const r of [...runs].sort((a, b) => (a.run < b.run ? -1 : 1))) this.colorOf(r.run);
      this.runs = runs;
      const names = new Set(runs.map((r) => r.run));
      if (this.selected === null || (this.selected.size === 0 && runs.length > 0 && this.data.size === 0 && !this.userChose)) {
        this.selected = runs.length ? this.defaultSelection(runs) : null;
      } else {
        for (const s of [...this.selected]) if (!names.has(s)) this.selected.delete(s);
      }
      const selected = this.selected ?? new Set<string>();
      this.picker.update(runs, this.runColors(), selected);
      this.jobPanel.setRuns(runs, selected, versions ? new Map([...versions].map(([r, v]) => [r, v.version])) : null);
      // A and B in the picker's order (the chips'), each asked again when its data moved.
      this.comparePanel.setRuns(
        runs.filter((r) => selected.has(r.run)).map((r) => ({ run: r.run, color: this.colorOf(r.run), version: versions?.get(r.run)?.version })),
        runs.length,
      );
      this.noRunsEl.hidden = runs.length > 0;
      this.noneSelectedEl.hidden = runs.length === 0 || selected.size > 0;

      const chosen = runs.filter((r) => selected.has(r.run));
      const changed = chosen.filter((r) => !this.data.has(r.run) || versions === null || this.loaded.get(r.run) !== versions.get(r.run)?.version);
      const dropped = [...this.data.keys()].some((r) => !selected.has(r));
      // A profile summary the server is still computing is asked again, alone.
      const pendingProfiles = chosen.filter((r) => !changed.includes(r) && profilesPending(this.data.get(r.run)?.profiles ?? null));
      if (changed.length === 0 && !dropped && pendingProfiles.length === 0) {
        this.lastUpdated = Date.now();
        this.toolbar.showUpdated(this.lastUpdated);
        this.showError(errors);
        this.toolbar.showLoading(false);
        await this.signalRendered();
        return;
      }

      // Tags and overview of every changed run, in parallel.
      const metas = await Promise.all(
        changed.map(async (info) => {
          const [tags, overview] = await Promise.all([
            fetchTags(info.run).catch((e) => {
              errors.push(`${info.run}: tags: ${String(e.message ?? e)}`);
              return null;
            }),
            fetchOverview(info.run).catch((e) => {
              errors.push(`${info.run}: overview: ${String(e.message ?? e)}`);
              return null;
            }),
          ]);
          const old = this.data.get(info.run);
          return {
            info,
            failed: tags === null,
            tags: tags ? new Map(tags.map((t) => [t.tag, t])) : old?.tags ?? new Map<string, TagInfo>(),
            overview: overview ?? old?.overview ?? null,
          };
        }),
      );
      const metaOf = new Map(metas.map((m) => [m.info.run, m]));
      const styles: RunStyle[] = chosen.map((r) => ({ run: r.run, color: this.colorOf(r.run), tags: metaOf.get(r.run)?.tags ?? this.data.get(r.run)!.tags }));
      const styleOf = new Map(styles.map((st) => [st.run, st]));
      const defs = new Map<SectionId, ChartDef[]>();
      for (const s of SECTIONS) defs.set(s.id, buildCharts(s.id, styles, this.theme.items));

      // Alerts, anomalies (all tags: one request per run), findings and
      // profiles of each changed run, in parallel with the series.
      const analyticsP = Promise.all(metas.map((m) => fetchAnalytics(m.info.run, errors)));
      const profilesP = Promise.all(pendingProfiles.map((r) => fetchProfiles(r.run).catch(() => null)));

      // Per section, one `series_batch` over every changed run.
      const held = new Map(metas.map((m) => [m.info.run, new Map<string, Series>()]));
      await Promise.all(
        SECTIONS.map(async (s) => {
          const sectionDefs = defs.get(s.id)!;
          const many = manySeriesTags(sectionDefs);
          const entries: BatchEntry[] = [];
          const points = this.pointsFor(s.id);
          for (const m of metas) {
            const tags = tagsToFetch(s.id, styleOf.get(m.info.run)!, sectionDefs);
            const old = this.data.get(m.info.run)?.series;
            const since = (group: string[]) => {
              const out: Record<string, number> = {};
              for (const t of group) {
                const last = lastStepOf(old?.get(t));
                if (last !== null) out[t] = last;
              }
              return out;
            };
            const few = tags.filter((t) => !many.has(t));
            const lots = tags.filter((t) => many.has(t));
            if (few.length) entries.push({ run: m.info.run, tags: few, points, since_step: since(few) });
            if (lots.length) entries.push({ run: m.info.run, tags: lots, points: MANY_SERIES_POINTS, since_step: since(lots) });
          }
          if (entries.length === 0) return;
          try {
            const results = await fetchSeriesBatch(entries);
            results.forEach((result, i) => {
              const e = entries[i];
              const m = metaOf.get(e.run)!;
              if (typeof result === "string") {
                errors.push(`${e.run}: ${s.title}: ${result}`);
                m.failed = true;
                return;
              }
              const old = this.data.get(e.run)?.series;
              const into = held.get(e.run)!;
              for (const [tag, part] of result) into.set(tag, mergeSeries(old?.get(tag), part, e.points));
            });
          } catch (err) {
            errors.push(`${s.title}: ${String((err as Error).message ?? err)}`);
            for (const m of metas) m.failed = true;
          }
        }),
      );
      const analytics = await analyticsP;
      const profiles = await profilesP;
      if (gen !== this.generation) return;

      const data = new Map<string, RunData>();
      for (const info of chosen) {
        const m = metaOf.get(info.run);
        const old = this.data.get(info.run);
        if (!m) {
          data.set(info.run, { ...old!, info });
          continue;
        }
        const series = held.get(info.run)!;
        // A section that failed keeps what the tab held.
        if (m.failed && old) for (const [tag, s] of old.series) if (!series.has(tag)) series.set(tag, s);
        let t0 = Infinity;
        if (m.overview?.first_wall_time_s != null) t0 = Math.min(t0, m.overview.first_wall_time_s);
        if (info.started_at_s != null) t0 = Math.min(t0, info.started_at_s);
        for (const s of series.values()) if (s.wall.length) t0 = Math.min(t0, s.wall[0]);
        if (!Number.isFinite(t0)) t0 = 0;
        const a = analytics[metas.indexOf(m)];
        data.set(info.run, { info, tags: m.tags, overview: m.overview, series, clock: RunClock.build(t0, series), ...a });
        // Asked again next time unless everything came.
        if (m.failed || versions === null) this.loaded.delete(info.run);
        else this.loaded.set(info.run, versions.get(info.run)?.version ?? "");
      }
      pendingProfiles.forEach((r, i) => {
        const d = data.get(r.run);
        if (d && profiles[i]) data.set(r.run, { ...d, profiles: profiles[i] });
      });
      for (const r of [...this.loaded.keys()]) if (!data.has(r)) this.loaded.delete(r);
      this.data = data;
      this.renderOverview();
      this.renderAnalytics();
      this.renderCharts(defs);
      this.lastUpdated = Date.now();
      this.toolbar.showUpdated(this.lastUpdated);
      this.showError(errors);
    } catch (e) {
      this.showError([`Could not load the runs: ${String((e as Error).message ?? e)}`]);
    } finally {
      if (gen === this.generation) this.toolbar.showLoading(false);
    }
    await this.signalRendered();
  }

  private async signalRendered(): Promise<void> {
    await new Promise<void>((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    this.stats.renders++;
    document.body.dataset.refreshes = String(this.stats.refreshes);
    document.body.dataset.renders = String(this.stats.renders);
    if (window.__ttsmonRendered === undefined) {
      window.__ttsmonRendered = performance.now();
      document.body.dataset.rendered = "1";
    }
  }

  private renderOverview(): void {
    clear(this.overviewEl);
    const now = Date.now() / 1000;
    for (const run of this.runs) {
      const d = this.data.get(run.run);
      if (!d) continue;
      this.overviewEl.appendChild(overviewCard(d.info, this.colorOf(run.run), d.overview, now));
    }
    this.overviewEl.hidden = this.overviewEl.childElementCount === 0;
  }

  /** Draws the charts from the loaded data (after a refresh, or a mode or theme change). */
  private renderCharts(defs?: Map<SectionId, ChartDef[]>): void {
    const styles: RunStyle[] = [...this.data.values()].map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), tags: d.tags }));
    for (const s of SECTIONS) {
      const sectionDefs = defs?.get(s.id) ?? buildCharts(s.id, styles, this.theme.items);
      this.sections.get(s.id)!.render(sectionDefs, styles, this.data, this.group);
    }
    this.group.recomputeExtent();
    for (const c of this.group.charts) c.applyRange();
    this.applyMarks();
  }

  /** Findings, the alert list, and the serving, heatmap and correlation panels (they load when shown). */
  private renderAnalytics(): void {
    const runs = this.runs.filter((r) => this.data.has(r.run)).map((r) => this.data.get(r.run)!);
    // Runs that logged inference: `runs` says so, and a run's tags say it as
    // soon as it starts serving (`runs` is asked again only for new runs).
    const serving = runs.filter((d) => d.info.groups?.includes("inference") || [...d.tags.values()].some((t) => t.group === "inference"));
    this.servingPanel.setRuns(serving.map((d) => ({ run: d.info.run, version: this.loaded.get(d.info.run), requests: d.overview?.inference?.requests ?? 0 })));
    this.findingsView.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), findings: d.findings })));
    this.alertsPanel.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), alerts: d.alerts })));
    this.heatmapPanel.setRuns(
      runs.map((d) => d.info.run),
      new Map(runs.map((d) => [d.info.run, d.overview?.sample_count ?? 0])),
    );
    this.correlationPanel.setRuns(runs.map((d) => ({ run: d.info.run, tags: [...d.tags.values()] })));
    this.profilerPanel.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), profiles: d.profiles })));
  }

  /**
   * Profiled windows on every chart, alert bands on the System charts,
   * anomaly markers on the charts of their tags.
   */
  private applyMarks(): void {
    const marks = new RunMarks(this.data.values(), this.data.size > 1);
    for (const section of this.sections.values()) section.setMarks((def) => marks.forChart(def));
  }

  /** Zooms every chart to a window around an alert (in step mode, at its training step). */
  private zoomToAlert(run: string, a: AlertEvent): void {
    const d = this.data.get(run);
    if (!d) return;
    let x: number;
    if (this.xMode === "wall") x = a.wall_time_s;
    else if (this.xMode === "relative") x = a.wall_time_s - d.clock.t0;
    else x = a.training_step ?? d.clock.stepAt(a.wall_time_s);
    if (!Number.isFinite(x)) return;
    const ext = this.group.extent;
    const span = ext ? ext[1] - ext[0] : 0;
    const floor = this.xMode === "step" ? 50 : 300;
    let half = span > 0 ? Math.min(span * 0.1, Math.max(span * 0.02, floor)) : floor;
    if (!(half > 0)) half = 1;
    this.group.zoomTo(x - half, x + half);
  }
}
