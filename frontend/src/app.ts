// The tab: header (runs, x axis, refresh), overview strip, and the System,
// Training and Inference sections of charts. All state lives here; refreshes
// fetch everything for the selected runs and redraw in place.

import {
  fetchAlerts,
  fetchAnomalies,
  fetchFindings,
  fetchOverview,
  fetchProfiles,
  fetchRuns,
  fetchSeries,
  fetchTags,
  type AlertEvent,
  type Anomaly,
  type Finding,
  type Overview,
  type Profiles,
  type RunInfo,
  type Series,
  type TagInfo,
} from "./api";
import { AlertsPanel, CorrelationPanel, FindingsView, HeatmapPanel } from "./analytics";
import { ChartCard, ChartGroup, type LineData, type Mark } from "./chart";
import { clear, el, icon, setText } from "./dom";
import { formatClock } from "./format";
import { devicesText, overviewCard } from "./overview";
import { profileMark, ProfilerPanel } from "./profiler";
import { RunPicker } from "./runpicker";
import {
  buildCharts,
  runHasGpu,
  runHasSection,
  SECTIONS,
  tagsToFetch,
  type ChartDef,
  type RunStyle,
  type SectionId,
  usesTrainingStep,
} from "./specs";
import { connectToHost, DATA_RELOADED, RUNS_CHANGED } from "./tbhost";
import { DARK, LIGHT, watchDarkMode, type Theme } from "./theme";
import { RunClock, X_MODES, type XMode } from "./xaxis";

export const AUTO_REFRESH_MS = 5000;
const DEFAULT_MAX_SELECTED = 5;
const MIN_CHART_WIDTH = 400;
const GRID_GAP = 12;

const SECTION_HINTS: Record<SectionId, string> = {
  system: "The Monitor's sampler writes system/, process/ and gpu/ values every interval.",
  training: "Training values appear once the job calls log_training() or uses ttsmon.keras.MonitorCallback.",
  inference: "Inference values appear once the job calls log_inference() or time_inference().",
};

interface RunData {
  info: RunInfo;
  tags: Map<string, TagInfo>;
  overview: Overview | null;
  series: Map<string, Series>;
  clock: RunClock;
  /** null: the server has no such route (or it failed) */
  alerts: AlertEvent[] | null;
  anomalies: Anomaly[] | null;
  findings: Finding[] | null;
  profiles: Profiles | null;
}

interface Analytics {
  alerts: AlertEvent[] | null;
  anomalies: Anomaly[] | null;
  findings: Finding[] | null;
  profiles: Profiles | null;
}

interface SectionView {
  id: SectionId;
  root: HTMLElement;
  grid: HTMLElement;
  note: HTMLElement;
  empty: HTMLElement;
  count: HTMLElement;
  charts: Map<string, ChartCard>;
}

function store<T>(key: string, fallback: T): T {
  try {
    const raw = window.localStorage.getItem(`ttsmon.${key}`);
    return raw === null ? fallback : (JSON.parse(raw) as T);
  } catch {
    return fallback;
  }
}

function save(key: string, value: unknown): void {
  try {
    window.localStorage.setItem(`ttsmon.${key}`, JSON.stringify(value));
  } catch {
    // private mode or a full quota: settings are only a convenience
  }
}

declare global {
  interface Window {
    /** For tests and the bench: performance.now() when the first full render was drawn. */
    __ttsmonRendered?: number;
    __ttsmon?: { refreshes: number; renders: number; errors: string[] };
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
  private readonly statusEl: HTMLElement;
  private readonly spinner: HTMLElement;
  private readonly autoBtn: HTMLButtonElement;
  private readonly modeButtons = new Map<XMode, HTMLButtonElement>();
  private readonly resetZoomBtn: HTMLButtonElement;
  private readonly sections = new Map<SectionId, SectionView>();
  private readonly findingsView = new FindingsView();
  private readonly alertsPanel: AlertsPanel;
  private readonly heatmapPanel: HeatmapPanel;
  private readonly correlationPanel: CorrelationPanel;
  private readonly profilerPanel: ProfilerPanel;

  private runs: RunInfo[] = [];
  private readonly colors = new Map<string, string>();
  private selected: Set<string> | null = null;
  private data = new Map<string, RunData>();
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
    this.xMode = store<XMode>("xMode", "wall");
    if (!X_MODES.some((m) => m.id === this.xMode)) this.xMode = "wall";
    this.auto = store<boolean>("autoRefresh", true);
    this.collapsed = new Set(store<string[]>("collapsed", []));
    this.group = new ChartGroup(this.theme);
    this.group.mode = this.xMode;
    this.group.onChange = () => this.updateZoomButton();

    // -- header --
    this.picker = new RunPicker((sel) => {
      this.selected = sel;
      save("selected", [...sel]);
      void this.refresh();
    });
    const modeGroup = el("div", { class: "segmented", attrs: { role: "group", "aria-label": "X axis" } });
    for (const m of X_MODES) {
      const b = el("button", { class: "seg-btn", title: m.title, attrs: { type: "button" } }, m.label);
      b.addEventListener("click", () => this.setMode(m.id));
      this.modeButtons.set(m.id, b);
      modeGroup.appendChild(b);
    }
    this.resetZoomBtn = el("button", { class: "text-btn zoom-reset", attrs: { type: "button" }, title: "Show the full x range (or double-click a chart)" }, "Reset zoom");
    this.resetZoomBtn.addEventListener("click", () => this.group.resetZoom());
    this.autoBtn = el("button", { class: "toggle-btn", attrs: { type: "button" } });
    this.autoBtn.addEventListener("click", () => {
      this.auto = !this.auto;
      save("autoRefresh", this.auto);
      this.renderAutoButton();
      if (this.auto) void this.refresh();
    });
    const refreshBtn = el("button", { class: "icon-btn", title: "Refresh now", attrs: { type: "button", "aria-label": "Refresh" } }, icon("refresh", 18));
    refreshBtn.addEventListener("click", () => void this.refresh());
    this.spinner = el("span", { class: "spinner", title: "Loading", attrs: { role: "status", "aria-label": "Loading" } });
    this.spinner.hidden = true;
    this.statusEl = el("span", { class: "status" });

    const header = el(
      "header",
      { class: "toolbar" },
      this.picker.root,
      el("div", { class: "toolbar-right" },
        el("span", { class: "toolbar-label" }, "X axis"),
        modeGroup,
        this.resetZoomBtn,
        el("span", { class: "divider" }),
        this.autoBtn,
        refreshBtn,
        this.spinner,
        this.statusEl,
      ),
    );

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
    this.alertsPanel = new AlertsPanel(this.collapsed, saveCollapsed, (run, a) => this.zoomToAlert(run, a));
    this.sectionsEl.appendChild(this.alertsPanel.panel.root);
    for (const s of SECTIONS) this.sections.set(s.id, this.makeSection(s.id, s.title));
    this.profilerPanel = new ProfilerPanel(this.collapsed, saveCollapsed);
    this.sectionsEl.appendChild(this.profilerPanel.panel.root);
    this.heatmapPanel = new HeatmapPanel(this.collapsed, saveCollapsed);
    this.correlationPanel = new CorrelationPanel(this.collapsed, saveCollapsed, this.theme);
    this.sectionsEl.append(this.heatmapPanel.panel.root, this.correlationPanel.panel.root);
    this.alertsPanel.panel.root.hidden = true;
    this.heatmapPanel.panel.root.hidden = true;
    this.correlationPanel.panel.root.hidden = true;
    this.profilerPanel.panel.root.hidden = true;
    this.findingsView.root.hidden = true;

    this.root.appendChild(header);
    this.root.appendChild(el("main", { class: "content" }, this.errorEl, this.noRunsEl, this.noneSelectedEl, this.overviewEl, this.findingsView.root, this.sectionsEl));
    this.renderModeButtons();
    this.renderAutoButton();
    this.updateZoomButton();

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
    window.setInterval(() => this.renderStatus(), 1000);
    void this.refresh();
  }

  private makeSection(id: SectionId, title: string): SectionView {
    const count = el("span", { class: "section-count" });
    const chevron = icon("chevron", 20);
    const head = el(
      "button",
      { class: "section-head", attrs: { type: "button", "aria-expanded": "true" } },
      chevron,
      el("span", { class: "section-title" }, title),
      count,
    );
    const note = el("div", { class: "section-note" });
    note.hidden = true;
    const grid = el("div", { class: "chart-grid" });
    const empty = el("div", { class: "section-empty" });
    empty.hidden = true;
    const root = el("section", { class: "section", dataset: { section: id } }, head, note, empty, grid);
    const view: SectionView = { id, root, grid, note, empty, count, charts: new Map() };
    const applyCollapsed = () => {
      const c = this.collapsed.has(id);
      root.classList.toggle("collapsed", c);
      head.setAttribute("aria-expanded", String(!c));
    };
    head.addEventListener("click", () => {
      if (this.collapsed.has(id)) this.collapsed.delete(id);
      else this.collapsed.add(id);
      save("collapsed", [...this.collapsed]);
      applyCollapsed();
    });
    applyCollapsed();
    this.sectionsEl.appendChild(root);
    return view;
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
    document.addEventListener("visibilitychange", onShow);
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
    this.correlationPanel?.setTheme(theme);
    this.renderCharts();
  }

  private setMode(mode: XMode): void {
    if (mode === this.xMode) return;
    this.xMode = mode;
    this.group.mode = mode;
    this.group.zoom = null;
    save("xMode", mode);
    this.renderModeButtons();
    this.renderCharts();
    this.updateZoomButton();
  }

  private renderModeButtons(): void {
    for (const [m, b] of this.modeButtons) {
      b.classList.toggle("active", m === this.xMode);
      b.setAttribute("aria-pressed", String(m === this.xMode));
    }
  }

  private renderAutoButton(): void {
    clear(this.autoBtn);
    this.autoBtn.appendChild(icon(this.auto ? "pause" : "play", 16));
    this.autoBtn.appendChild(document.createTextNode(this.auto ? "Auto 5 s" : "Paused"));
    this.autoBtn.classList.toggle("active", this.auto);
    this.autoBtn.setAttribute("aria-pressed", String(this.auto));
    this.autoBtn.title = this.auto ? "Auto-refresh every 5 s: click to pause" : "Auto-refresh paused: click to resume";
  }

  private updateZoomButton(): void {
    this.resetZoomBtn.hidden = this.group.zoom === null;
  }

  private renderStatus(): void {
    if (this.lastUpdated === null) setText(this.statusEl, "");
    else setText(this.statusEl, `Updated ${formatClock(this.lastUpdated / 1000)}`);
    this.statusEl.title = this.lastUpdated ? new Date(this.lastUpdated).toString() : "";
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

  private async doRefresh(): Promise<void> {
    const gen = ++this.generation;
    this.stats.refreshes++;
    this.spinner.hidden = false;
    const errors: string[] = [];
    try {
      const runs = await fetchRuns();
      for (const r of [...runs].sort((a, b) => (a.run < b.run ? -1 : 1))) this.colorOf(r.run);
      this.runs = runs;
      const names = new Set(runs.map((r) => r.run));
      if (this.selected === null || (this.selected.size === 0 && runs.length > 0 && this.data.size === 0)) {
        this.selected = runs.length ? this.defaultSelection(runs) : null;
      } else {
        for (const s of [...this.selected]) if (!names.has(s)) this.selected.delete(s);
      }
      const selected = this.selected ?? new Set<string>();
      this.picker.update(runs, this.runColors(), selected);
      this.noRunsEl.hidden = runs.length > 0;
      this.noneSelectedEl.hidden = runs.length === 0 || selected.size > 0;

      const chosen = runs.filter((r) => selected.has(r.run));
      // Tags and overview of every selected run, in parallel.
      const metas = await Promise.all(
        chosen.map(async (info) => {
          const [tags, overview] = await Promise.all([
            fetchTags(info.run).catch((e) => {
              errors.push(`${info.run}: tags: ${String(e.message ?? e)}`);
              return [] as TagInfo[];
            }),
            fetchOverview(info.run).catch((e) => {
              errors.push(`${info.run}: overview: ${String(e.message ?? e)}`);
              return null;
            }),
          ]);
          return { info, tags: new Map(tags.map((t) => [t.tag, t])), overview };
        }),
      );
      const styles: RunStyle[] = metas.map((m) => ({ run: m.info.run, color: this.colorOf(m.info.run), tags: m.tags }));
      const defs = new Map<SectionId, ChartDef[]>();
      for (const s of SECTIONS) defs.set(s.id, buildCharts(s.id, styles, this.theme.items));

      // Alerts, anomalies (all tags: one request per run) and findings of
      // each selected run, in parallel with the series.
      const analyticsP = Promise.all(metas.map((m) => this.fetchAnalytics(m.info.run, errors)));
      // One `series` request per run and section, all in parallel.
      const fetched = await Promise.all(
        metas.map(async (m, i) => {
          const series = new Map<string, Series>();
          await Promise.all(
            SECTIONS.map(async (s) => {
              const tags = tagsToFetch(s.id, styles[i], defs.get(s.id)!);
              if (tags.length === 0) return;
              try {
                const got = await fetchSeries(m.info.run, tags, this.pointsFor(s.id));
                for (const [k, v] of got) series.set(k, v);
              } catch (e) {
                errors.push(`${m.info.run}: ${s.title}: ${String((e as Error).message ?? e)}`);
              }
            }),
          );
          return series;
        }),
      );
      const analytics = await analyticsP;
      if (gen !== this.generation) return;

      const data = new Map<string, RunData>();
      metas.forEach((m, i) => {
        const series = fetched[i];
        let t0 = Infinity;
        if (m.overview?.first_wall_time_s != null) t0 = Math.min(t0, m.overview.first_wall_time_s);
        if (m.info.started_at_s != null) t0 = Math.min(t0, m.info.started_at_s);
        for (const s of series.values()) if (s.wall.length) t0 = Math.min(t0, s.wall[0]);
        if (!Number.isFinite(t0)) t0 = 0;
        data.set(m.info.run, { info: m.info, tags: m.tags, overview: m.overview, series, clock: RunClock.build(t0, series), ...analytics[i] });
      });
      this.data = data;
      this.renderOverview();
      this.renderAnalytics();
      this.renderCharts(defs);
      this.lastUpdated = Date.now();
      this.renderStatus();
      this.showError(errors);
    } catch (e) {
      this.showError([`Could not load the runs: ${String((e as Error).message ?? e)}`]);
    } finally {
      if (gen === this.generation) this.spinner.hidden = true;
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
      const view = this.sections.get(s.id)!;
      const sectionDefs = defs?.get(s.id) ?? buildCharts(s.id, styles, this.theme.items);
      this.renderSection(view, s.empty, sectionDefs, styles);
    }
    this.group.recomputeExtent();
    for (const c of this.group.charts) c.applyRange();
    this.applyMarks();
  }

  private async fetchAnalytics(run: string, errors: string[]): Promise<Analytics> {
    const wrap = <T>(what: string, p: Promise<T | null>): Promise<T | null> =>
      p.catch((e) => {
        errors.push(`${run}: ${what}: ${String((e as Error).message ?? e)}`);
        return null;
      });
    // one `profiles` request per run: a pending summary is asked for again on the next refresh
    const [alerts, anomalies, findings, profiles] = await Promise.all([
      wrap("alerts", fetchAlerts(run)),
      wrap("anomalies", fetchAnomalies(run)),
      wrap("findings", fetchFindings(run)),
      wrap("profiles", fetchProfiles(run)),
    ]);
    return { alerts, anomalies, findings, profiles };
  }

  /** Findings, the alert list, and the heatmap and correlation panels (they load when shown). */
  private renderAnalytics(): void {
    const runs = this.runs.filter((r) => this.data.has(r.run)).map((r) => this.data.get(r.run)!);
    this.findingsView.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), findings: d.findings })));
    this.alertsPanel.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), alerts: d.alerts })));
    this.heatmapPanel.setRuns(
      runs.map((d) => d.info.run),
      new Map(runs.map((d) => [d.info.run, d.overview?.sample_count ?? 0])),
    );
    this.correlationPanel.setRuns(runs.map((d) => ({ run: d.info.run, tags: [...d.tags.values()] })));
    this.profilerPanel.update(runs.map((d) => ({ run: d.info.run, color: this.colorOf(d.info.run), profiles: d.profiles })));
  }

  /** Alert intervals (firing → resolved) per run, severity-coloured. */
  private alertMarks(d: RunData): Mark[] {
    const out: Mark[] = [];
    const open = new Map<string, AlertEvent>();
    const sorted = [...(d.alerts ?? [])].sort((a, b) => a.wall_time_s - b.wall_time_s);
    const end = d.info.last_wall_time_s ?? d.overview?.last_wall_time_s ?? null;
    const push = (f: AlertEvent, r: AlertEvent | null) =>
      out.push({
        kind: "alert",
        run: d.info.run,
        start: f.wall_time_s,
        end: r ? r.wall_time_s : Math.max(end ?? f.wall_time_s, f.wall_time_s),
        startStep: f.training_step ?? null,
        endStep: r ? (r.training_step ?? null) : null,
        severity: f.severity,
        value: null,
        title: r ? `${f.message}\n${r.message}` : `${f.message} (still firing)`,
        open: r === null,
      });
    for (const a of sorted) {
      const k = `${a.rule}\u0000${a.tag}`;
      if (a.state === "firing") {
        if (!open.has(k)) open.set(k, a);
      } else {
        const f = open.get(k);
        if (f) push(f, a);
        open.delete(k);
      }
    }
    for (const f of open.values()) push(f, null);
    return out;
  }

  /**
   * Profiled windows on every chart, alert bands on the System charts,
   * anomaly markers on the charts of their tags.
   */
  private applyMarks(): void {
    const alertBands = new Map<string, Mark[]>();
    const profileBands = new Map<string, Mark[]>();
    const anomalies = new Map<string, Mark[]>();
    const multi = this.data.size > 1;
    for (const d of this.data.values()) {
      alertBands.set(d.info.run, this.alertMarks(d));
      const bands: Mark[] = [];
      for (const s of d.profiles?.sessions ?? []) {
        const m = profileMark(d.info.run, s, multi);
        if (m) bands.push(m);
      }
      profileBands.set(d.info.run, bands);
      for (const a of d.anomalies ?? []) {
        const key = `${d.info.run}\u0000${a.tag}`;
        const list = anomalies.get(key) ?? [];
        const steps = usesTrainingStep(a.tag);
        const v = a.value === null || a.value === undefined ? null : Number(a.value);
        list.push({
          kind: "anomaly",
          run: d.info.run,
          start: a.start_wall_time_s,
          end: a.end_wall_time_s ?? a.start_wall_time_s,
          startStep: steps ? (a.start_step ?? null) : null,
          endStep: steps ? (a.end_step ?? null) : null,
          severity: a.severity,
          value: v !== null && Number.isFinite(v) && a.type === "spike" ? v : null,
          title: a.message,
        });
        anomalies.set(key, list);
      }
    }
    for (const view of this.sections.values()) {
      for (const card of view.charts.values()) {
        const marks: Mark[] = [];
        const runs = new Set<string>();
        for (const line of card.def.lines) {
          runs.add(line.run);
          marks.push(...(anomalies.get(`${line.run}\u0000${line.tag}`) ?? []));
        }
        if (view.id === "system") for (const r of runs) marks.unshift(...(alertBands.get(r) ?? []));
        for (const r of runs) marks.unshift(...(profileBands.get(r) ?? []));
        card.setMarks(marks);
      }
    }
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

  private renderSection(view: SectionView, emptyText: string, defs: ChartDef[], styles: RunStyle[]): void {
    const hasData = styles.some((r) => runHasSection(r, view.id));
    // Empty states: the whole section, and GPUs within System.
    view.empty.hidden = hasData || styles.length === 0;
    clear(view.empty);
    if (!hasData && styles.length > 0) {
      view.empty.appendChild(el("div", { class: "empty-title" }, emptyText));
      view.empty.appendChild(el("div", { class: "empty-hint" }, SECTION_HINTS[view.id]));
    }
    view.root.classList.toggle("is-empty", !hasData);
    setText(view.count, defs.length ? String(defs.length) : "");

    const gpuNote: string[] = [];
    let gpuCard: ChartDef | null = null;
    if (view.id === "system" && hasData) {
      const without = styles.filter((r) => !runHasGpu(r));
      if (without.length === styles.length) {
        const d = this.data.get(styles[0].run);
        const reason = styles.length === 1 && d ? devicesText(d.overview, d.info).title : "";
        gpuCard = {
          id: "gpu-none",
          section: "system",
          title: "GPU",
          description: reason,
          unit: "",
          range: "auto",
          refLines: [],
          lines: [],
          empty: styles.length === 1 ? "This run has no GPU" : "None of the selected runs has a GPU",
        };
      } else if (without.length > 0) {
        gpuNote.push(...without.map((r) => r.run));
      }
    }
    view.note.hidden = gpuNote.length === 0;
    clear(view.note);
    if (gpuNote.length) {
      view.note.appendChild(document.createTextNode("No GPU on "));
      gpuNote.forEach((r, i) => {
        if (i) view.note.appendChild(document.createTextNode(", "));
        view.note.appendChild(el("bdi", { class: "run-name" }, r));
      });
    }

    const ordered = [...defs];
    if (gpuCard) {
      const at = ordered.findIndex((d) => d.id === "memory");
      ordered.splice(at >= 0 ? at + 1 : ordered.length, 0, gpuCard);
    }
    const keep = new Set(ordered.map((d) => d.id));
    for (const [id, card] of view.charts) {
      if (!keep.has(id)) {
        card.destroy();
        view.charts.delete(id);
      }
    }
    ordered.forEach((def, i) => {
      let card = view.charts.get(def.id);
      if (!card) {
        card = new ChartCard(def, this.group);
        view.charts.set(def.id, card);
      }
      if (view.grid.children[i] !== card.root) view.grid.insertBefore(card.root, view.grid.children[i] ?? null);
      if (def.lines.length === 0) {
        card.def = def;
        card.showEmpty(def.empty ?? "No data yet");
        if (def.description) card.root.title = def.description;
      } else {
        card.update(def, this.lineData(def));
      }
      card.observe();
    });
  }

  private lineData(def: ChartDef): LineData[] {
    const out: LineData[] = [];
    for (const line of def.lines) {
      const d = this.data.get(line.run);
      const series = d?.series.get(line.tag);
      if (!d || !series) continue;
      out.push({ line, series, clock: d.clock });
    }
    return out;
  }
}
