// The Compare panel (issue 14): run B against run A when exactly two runs
// are selected. The verdict sentence, the speed per step of each run with the
// B/A speed ratio and its confidence interval drawn on an axis around 1.0,
// the recorded setup differences (what was changed between the runs), and a
// performance table (time per step, memory, utilization, inference, time to
// loss) with B's change against A coloured by whether it is better. Loaded
// from the `compare` route only while the panel is expanded and on screen;
// A is the first of the two in the picker's order, "Swap A/B" turns it round.

import { fetchCompare, HttpError, missingRoutes, serverMessage, type CompareAnswer, type ComparePair, type CompareSetupDiff } from "../api";
import { clear, el, setText } from "../dom";
import { formatBytes, formatDuration, formatNumber } from "../format";
import { LazyPanel } from "./lazy";

declare global {
  interface Window {
    /** For tests: Compare panel renders, and the last answer drawn. */
    __ttsmonCompare?: { renders: number; last: CompareAnswer | null };
  }
}

/** A selected run the panel can compare. */
export interface CompareRun {
  run: string;
  /** its colour in the tab (the picker's dot) */
  color: string;
  /** its data version (undefined: unknown, asked again every time) */
  version?: string;
}

/** Setting values longer than this are cut (the cell's title has all of it). */
const MAX_VALUE_CHARS = 48;
/** A change smaller than this (relative) is neither better nor worse. */
const NEUTRAL_CHANGE = 0.005;

type Better = "lower" | "higher" | null;
type Tone = "better" | "worse" | "neutral";

/** One row of the performance table. */
interface PerfRow {
  id: string;
  label: string;
  title: string;
  a: string;
  b: string;
  /** B's relative change against A (null: none shown) */
  change: number | null;
  better: Better;
}

function nextFrame(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

function num(v: number | string | null | undefined): number | null {
  return typeof v === "number" && !Number.isNaN(v) ? v : null;
}

/** B's change against A where the server did not say it: (b − a) / a. */
function relChange(a: number | null, b: number | null): number | null {
  if (a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || !(a > 0)) return null;
  return (b - a) / a;
}

/** "−20 %", "+4.5 %", "0 %". */
export function formatChange(c: number): string {
  if (!Number.isFinite(c)) return c > 0 ? "+∞ %" : "—";
  const p = Math.abs(c * 100);
  const text = p.toFixed(p >= 10 ? 0 : 1);
  if (Number(text) === 0) return "0 %";
  return `${c < 0 ? "−" : "+"}${text} %`;
}

function toneOf(change: number | null, better: Better): Tone {
  if (change === null || better === null || !(Math.abs(change) >= NEUTRAL_CHANGE)) return "neutral";
  return (better === "lower") === change < 0 ? "better" : "worse";
}

/** A ratio with two decimals, as the verdict writes it. */
function ratio(x: number): string {
  return Number.isFinite(x) ? x.toFixed(2) : formatNumber(x);
}

function cut(text: string): { text: string; full: string | null } {
  const chars = Array.from(text);
  if (chars.length <= MAX_VALUE_CHARS) return { text, full: null };
  return { text: `${chars.slice(0, MAX_VALUE_CHARS - 1).join("")}…`, full: text };
}

/** A recorded setting as people read it: on/off, unset, bytes, grouped integers, JSON for the rest. */
export function settingText(key: string, v: unknown): string {
  if (v === null || v === undefined) return "unset";
  if (typeof v === "boolean") return v ? "on" : "off";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return formatNumber(v);
    if (/(^|[._])size_bytes$|_bytes$/.test(key)) return formatBytes(v);
    return Number.isInteger(v) ? formatNumber(v, 16) : String(v);
  }
  if (typeof v === "string") return v;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Nice tick spacing for a span: 1, 2, 2.5 or 5 times a power of ten, about `count` ticks. */
function tickStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

export class ComparePanel extends LazyPanel {
  private readonly swapBtn = el("button", { class: "text-btn cmp-swap", attrs: { type: "button" }, title: "Compare the other way round: A becomes B" }, "Swap A/B");
  private readonly hint = el("div", { class: "panel-empty cmp-hint" }, "Select exactly two runs to compare them");
  private readonly errorEl = el("div", { class: "cmp-error", attrs: { role: "alert" } });
  private readonly headEl = el("div", { class: "cmp-head" });
  private readonly verdictEl = el("p", { class: "cmp-verdict", dir: "auto" });
  private readonly speedEl = el("div", { class: "cmp-block cmp-speed", dataset: { block: "speed" } });
  private readonly setupEl = el("div", { class: "cmp-block cmp-setup", dataset: { block: "setup" } });
  private readonly perfEl = el("div", { class: "cmp-block cmp-perf", dataset: { block: "performance" } });
  private readonly content = el(
    "div",
    { class: "cmp-content" },
    this.headEl,
    this.verdictEl,
    this.speedEl,
    el("div", { class: "cmp-tables" }, this.perfEl, this.setupEl),
  );
  /** the two selected runs in the picker's order */
  private pair: [CompareRun, CompareRun] | null = null;
  private swapped = false;
  /** A, B and their data versions when last loaded */
  private loadedKey = "";
  private answer: CompareAnswer | null = null;
  private readonly stats = { renders: 0, last: null as CompareAnswer | null };

  constructor(collapsed: Set<string>, onToggle: () => void) {
    super("compare", "Compare", collapsed, onToggle);
    this.panel.root.classList.add("compare-panel");
    this.swapBtn.addEventListener("click", () => this.swap());
    this.panel.tools.appendChild(this.swapBtn);
    this.errorEl.hidden = true;
    this.panel.body.append(this.hint, this.note, this.errorEl, this.content);
    this.content.hidden = true;
    this.swapBtn.hidden = true;
  }

  /**
   * The selected runs in the picker's order, and how many runs there are:
   * with exactly two selected they are compared (asked again when either's
   * data version changed); else the panel says how to get a comparison, or
   * is hidden where the log directory has fewer than two runs.
   */
  setRuns(selected: CompareRun[], runCount: number): void {
    this.panel.root.hidden = runCount < 2 || missingRoutes.has("compare");
    if (selected.length !== 2) {
      this.pair = null;
      this.swapped = false;
      this.loadedKey = "";
      this.answer = null;
      this.hint.hidden = false;
      this.swapBtn.hidden = true;
      this.showNote("");
      this.showError("");
      this.render();
      return;
    }
    const [x, y] = selected;
    const same = this.pair !== null && new Set([this.pair[0].run, this.pair[1].run, x.run, y.run]).size === 2;
    // Another pair: A is the first again.
    if (!same) this.swapped = false;
    // Keep the user's A/B when the picker's order is the same pair's.
    this.pair = [x, y];
    this.hint.hidden = true;
    this.swapBtn.hidden = false;
    this.follow();
  }

  /** A and B as compared now. */
  private current(): [CompareRun, CompareRun] | null {
    if (!this.pair) return null;
    return this.swapped ? [this.pair[1], this.pair[0]] : [this.pair[0], this.pair[1]];
  }

  private keyOf(ab: [CompareRun, CompareRun] | null): string {
    return ab ? ab.map((r) => `${r.run}\u0000${r.version ?? Date.now()}`).join("\u0000") : "";
  }

  private swap(): void {
    if (!this.pair) return;
    this.swapped = !this.swapped;
    this.follow();
  }

  /** Asks again when A, B or their data changed; another A or B clears the old answer at once. */
  private follow(): void {
    const ab = this.current();
    const key = this.keyOf(ab);
    if (key === this.loadedKey) return;
    this.loadedKey = key;
    this.showError("");
    if (ab && this.answer && (this.answer.a !== ab[0].run || this.answer.b !== ab[1].run)) {
      this.answer = null;
      this.render();
    }
    if (ab && !this.answer) this.showNote(`Comparing ${ab[1].run} against ${ab[0].run}…`);
    this.invalidate();
  }

  private showError(text: string): void {
    setText(this.errorEl, text);
    this.errorEl.hidden = text === "";
  }

  protected async load(): Promise<void> {
    const ab = this.current();
    if (!ab) return;
    const [a, b] = ab;
    let answer: CompareAnswer | null;
    try {
      answer = await fetchCompare(a.run, b.run);
    } catch (e) {
      const now = this.current();
      if (!now || now[0].run !== a.run || now[1].run !== b.run) return; // another pair was chosen meanwhile
      this.answer = null;
      this.showNote("");
      this.render();
      // 404: a run the server does not know (any more); 400: a bad request. Their own words.
      if (e instanceof HttpError && (e.status === 404 || e.status === 400)) this.showError(serverMessage(e));
      else this.showError(`Could not compare ${b.run} against ${a.run}: ${String((e as Error).message ?? e)}`);
      return;
    }
    if (answer === null) {
      // A server older than issue 14: no compare route.
      this.panel.root.hidden = true;
      return;
    }
    const now = this.current();
    if (!now || now[0].run !== a.run || now[1].run !== b.run) return; // another pair was chosen meanwhile
    this.answer = answer;
    this.showNote("");
    this.showError("");
    this.render();
    await nextFrame();
    this.stats.renders++;
    this.stats.last = answer;
    window.__ttsmonCompare = { renders: this.stats.renders, last: answer };
    document.body.dataset.compareRendered = String(this.stats.renders);
  }

  private render(): void {
    for (const part of [this.headEl, this.verdictEl, this.speedEl, this.setupEl, this.perfEl]) clear(part);
    const v = this.answer;
    const ab = this.current();
    this.content.hidden = v === null || ab === null;
    setText(this.panel.count, v ? (v.setup.length === 1 ? "1 setup difference" : `${v.setup.length} setup differences`) : "");
    if (!v || !ab) return;
    this.renderHead(v, ab);
    this.renderVerdict(v);
    this.renderSpeed(v);
    this.renderSetup(v);
    this.renderPerformance(v);
  }

  private badge(side: "a" | "b", name: string, color: string | undefined): HTMLElement {
    const dot = el("span", { class: "run-dot" });
    dot.style.background = color ?? "var(--faint)";
    return el(
      "span",
      { class: `cmp-run side-${side}`, title: `${side.toUpperCase()}: ${name}`, dataset: { side } },
      el("span", { class: "cmp-badge" }, side.toUpperCase()),
      dot,
      el("bdi", { class: "cmp-run-name" }, name),
    );
  }

  private renderHead(v: CompareAnswer, ab: [CompareRun, CompareRun]): void {
    const color = (run: string) => ab.find((r) => r.run === run)?.color;
    this.headEl.append(this.badge("a", v.a, color(v.a)), el("span", { class: "cmp-against" }, "vs"), this.badge("b", v.b, color(v.b)));
  }

  private renderVerdict(v: CompareAnswer): void {
    const speedup = v.performance.step_time_ms.speedup;
    const tone: Tone = !v.differ || speedup === null ? "neutral" : speedup > 1 ? "better" : speedup < 1 ? "worse" : "neutral";
    this.verdictEl.className = `cmp-verdict tone-${tone}`;
    this.verdictEl.dataset.tone = tone;
    setText(this.verdictEl, v.verdict);
  }

  private renderSpeed(v: CompareAnswer): void {
    const st = v.performance.step_time_ms;
    const sides = el("div", { class: "cmp-sides" });
    for (const side of ["a", "b"] as const) {
      const s = st[side];
      const median = s?.median ?? null;
      const perS = s?.steps_per_s ?? null;
      sides.appendChild(
        el(
          "div",
          { class: `cmp-side side-${side}`, dataset: { side } },
          el("span", { class: "cmp-badge" }, side.toUpperCase()),
          el(
            "div",
            { class: "cmp-side-facts" },
            el("span", { class: "cmp-side-value", title: "Median time per training step (warm-up left out)" }, median === null ? "—" : formatDuration(median / 1000), el("span", { class: "cmp-unit" }, " per step")),
            el("span", { class: "cmp-side-sub" }, perS === null ? "— steps/s" : `${formatNumber(perS, 3)} steps/s`),
          ),
        ),
      );
    }
    this.speedEl.append(sides, this.ciGraphic(v));
  }

  /** The B/A speed ratio on an axis with a line at 1.0: the interval as a bar, the estimate as a dot. */
  private ciGraphic(v: CompareAnswer): HTMLElement {
    const st = v.performance.step_time_ms;
    const r = st.speedup;
    const ci = st.ci;
    const pct = Math.round(v.confidence * 100);
    const box = el("div", { class: "cmp-ci" });
    if (r === null || ci === null || !Number.isFinite(r) || !ci.every(Number.isFinite)) {
      box.appendChild(el("div", { class: "cmp-ci-label" }, "B/A speed: not comparable (too few logged training steps)"));
      return box;
    }
    const [lo, hi] = ci[0] <= ci[1] ? ci : [ci[1], ci[0]];
    const label = `B/A speed ${ratio(r)}× (${pct} % CI ${ratio(lo)}–${ratio(hi)})`;
    const tone: Tone = lo > 1 ? "better" : hi < 1 ? "worse" : "neutral";
    box.classList.add(`tone-${tone}`);
    box.appendChild(el("div", { class: "cmp-ci-label", dataset: { speedup: String(r) } }, label));

    let min = Math.min(lo, r, 1);
    let max = Math.max(hi, r, 1);
    const pad = Math.max((max - min) * 0.2, 0.02);
    min = Math.max(0, min - pad);
    max += pad;
    const x = (value: number) => `${(((value - min) / (max - min)) * 100).toFixed(3)}%`;
    const plot = el("div", { class: "cmp-ci-plot", attrs: { role: "img", "aria-label": label } });
    const one = el("div", { class: "cmp-ci-one", title: "1.0: the same speed" });
    one.style.left = x(1);
    const bar = el("div", { class: "cmp-ci-bar", title: `${pct} % confidence interval ${ratio(lo)}–${ratio(hi)} (${st.resamples ?? "?"} bootstrap resamples)` });
    bar.style.left = x(lo);
    bar.style.width = `${(((hi - lo) / (max - min)) * 100).toFixed(3)}%`;
    const dot = el("div", { class: "cmp-ci-dot", title: `B/A speed ${ratio(r)}×: A's median time per step over B's` });
    dot.style.left = x(r);
    plot.append(el("div", { class: "cmp-ci-track" }), one, bar, dot);

    // Ticks: nice values, 1 always, none crowding the 1.
    const step = tickStep(max - min, 5);
    const ticks = el("div", { class: "cmp-ci-ticks", attrs: { "aria-hidden": "true" } });
    const crowd = (max - min) * 0.08;
    const values: number[] = [1];
    for (let t = Math.ceil(min / step) * step; t <= max + 1e-9; t += step) {
      const tv = Number(t.toFixed(10));
      if (Math.abs(tv - 1) >= crowd) values.push(tv);
    }
    for (const t of values.sort((p, q) => p - q)) {
      const tick = el("span", { class: `cmp-ci-tick${t === 1 ? " one" : ""}` }, `${formatNumber(t, 3)}×`);
      tick.style.left = x(t);
      ticks.appendChild(tick);
    }
    const ends = el("div", { class: "cmp-ci-ends", attrs: { "aria-hidden": "true" } }, el("span", null, "← A faster"), el("span", null, "B faster →"));
    box.append(plot, ticks, ends);
    return box;
  }

  private blockHead(target: HTMLElement, title: string, description: string): void {
    target.appendChild(el("div", { class: "cmp-block-head" }, el("span", { class: "cmp-block-title", title: description }, title)));
  }

  private renderSetup(v: CompareAnswer): void {
    this.blockHead(this.setupEl, "Setup differences", "The recorded settings (run facts, model facts) whose values differ between the two runs");
    if (v.setup.length === 0) {
      this.setupEl.appendChild(el("div", { class: "panel-empty cmp-same" }, "No recorded difference"));
      return;
    }
    const cell = (d: CompareSetupDiff, side: "a" | "b") => {
      const { text, full } = cut(settingText(d.key, d[side]));
      const td = el("td", { class: `cmp-value${d[side] === null || d[side] === undefined ? " unset" : ""}`, dataset: { side } }, el("bdi", null, text));
      if (full !== null) td.title = full;
      return td;
    };
    const tbody = el("tbody");
    for (const d of v.setup) {
      tbody.appendChild(el("tr", { dataset: { key: d.key } }, el("th", { class: "cmp-label", attrs: { scope: "row" }, title: d.key }, el("bdi", null, d.label)), cell(d, "a"), cell(d, "b")));
    }
    this.setupEl.appendChild(el("table", { class: "cmp-table" }, this.tableHead(v, false), tbody));
  }

  private tableHead(v: CompareAnswer, change: boolean): HTMLElement {
    const side = (s: "a" | "b", name: string) => el("th", { class: "cmp-col", attrs: { scope: "col" }, title: `${s.toUpperCase()}: ${name}` }, el("span", { class: "cmp-badge" }, s.toUpperCase()), el("bdi", { class: "cmp-col-name" }, name));
    return el(
      "thead",
      null,
      el("tr", null, el("th", { class: "cmp-label", attrs: { scope: "col" } }, change ? "" : "Setting"), side("a", v.a), side("b", v.b), change ? el("th", { class: "cmp-change", attrs: { scope: "col" }, title: "B's change against A; green where better, orange where worse" }, "B vs A") : null),
    );
  }

  private perfRows(v: CompareAnswer): PerfRow[] {
    const p = v.performance;
    const rows: PerfRow[] = [];
    const add = (row: Omit<PerfRow, "a" | "b" | "change"> & { a: number | null; b: number | null; fmt: (x: number) => string; change?: number | null }) => {
      if (row.a === null && row.b === null) return;
      rows.push({
        id: row.id,
        label: row.label,
        title: row.title,
        better: row.better,
        a: row.a === null ? "—" : row.fmt(row.a),
        b: row.b === null ? "—" : row.fmt(row.b),
        change: row.change !== undefined ? row.change : relChange(row.a, row.b),
      });
    };
    const ms = (x: number) => formatDuration(x / 1000);
    const st = p.step_time_ms;
    add({ id: "step-median", label: "Time per step, median", title: `Median time per training step (${st.source || "train/ wall times"}, warm-up left out)`, a: st.a?.median ?? null, b: st.b?.median ?? null, fmt: ms, better: "lower" });
    add({ id: "step-p90", label: "Time per step, p90", title: "90th percentile time per training step", a: st.a?.p90 ?? null, b: st.b?.p90 ?? null, fmt: ms, better: "lower" });
    add({ id: "step-mean", label: "Time per step, mean", title: "Mean time per training step after the warm-up: slow steps (recompiling, validation, checkpoints) counted", a: st.a?.mean ?? null, b: st.b?.mean ?? null, fmt: ms, better: "lower" });
    add({ id: "warmup", label: "Warm-up", title: "Wall time of the first steps left out of the timing (compiling, caches)", a: st.a?.warmup_s ?? null, b: st.b?.warmup_s ?? null, fmt: (x) => formatDuration(x), better: "lower" });
    add({ id: "steps-per-s", label: "Steps/s", title: "Training steps per second (from the median time per step)", a: st.a?.steps_per_s ?? null, b: st.b?.steps_per_s ?? null, fmt: (x) => formatNumber(x, 3), better: "higher" });
    if (st.a || st.b) {
      const timed = (s: typeof st.a) => (s && s.intervals !== null ? `${formatNumber(s.intervals, 12)}${s.warmup_intervals ? ` (+${formatNumber(s.warmup_intervals, 12)} warm-up)` : ""}` : "—");
      rows.push({ id: "steps-timed", label: "Steps timed (warm-up left out)", title: "Step intervals timed; the warm-up's slow first intervals (in brackets) are left out", a: timed(st.a), b: timed(st.b), change: null, better: null });
    }
    const pair = (pp: ComparePair | null, stat: string) => ({
      a: num(pp?.a?.[stat]),
      b: num(pp?.b?.[stat]),
      change: pp?.change && typeof pp.change[stat] === "number" ? pp.change[stat] : relChange(num(pp?.a?.[stat]), num(pp?.b?.[stat])),
    });
    const basis = (pp: ComparePair | null) => {
      const a = pp?.a?.basis;
      const b = pp?.b?.basis;
      if (typeof a === "string" && typeof b === "string" && a !== b) return `A: ${a}; B: ${b}`;
      return typeof a === "string" ? a : typeof b === "string" ? b : "";
    };
    const bytes = (x: number) => formatBytes(x);
    for (const [key, name, id] of [
      ["gpu_memory_bytes", "GPU memory", "gpu-memory"],
      ["host_memory_bytes", "Host memory", "host-memory"],
    ] as const) {
      const pp = p[key];
      if (!pp) continue;
      for (const stat of ["peak", "median"]) {
        add({ id: `${id}-${stat}`, label: `${name}, ${stat}`, title: `${name} in use, ${stat} over the run (${basis(pp)})`, ...pair(pp, stat), fmt: bytes, better: "lower" });
      }
    }
    const util = p.gpu_utilization_percent;
    if (util) add({ id: "gpu-utilization", label: "GPU utilization, median", title: "Median GPU utilization (mean over the run's GPUs)", ...pair(util, "median"), fmt: (x) => `${formatNumber(x, 3)} %`, better: "higher" });
    const lat = p.inference?.latency_ms ?? null;
    if (lat) for (const stat of ["p50", "p95"]) add({ id: `latency-${stat}`, label: `Request latency, ${stat}`, title: `Inference request latency, ${stat}`, ...pair(lat, stat), fmt: ms, better: "lower" });
    const rtf = p.inference?.rtf ?? null;
    if (rtf) for (const stat of ["p50", "p95"]) add({ id: `rtf-${stat}`, label: `RTF, ${stat}`, title: `Real-time factor (synthesis time / audio time), ${stat}; below 1 is faster than real time`, ...pair(rtf, stat), fmt: (x) => formatNumber(x, 3), better: "lower" });
    const ttl = p.time_to_loss;
    if (ttl) {
      const target = ttl.target === null ? "" : ` ≤ ${formatNumber(ttl.target, 4)}`;
      add({
        id: "time-to-loss",
        label: `Time to ${ttl.tag}${target}`,
        title: `Wall time from each run's first training step to its ${ttl.tag} first at or below the worse of the two runs' best values`,
        a: ttl.a_s,
        b: ttl.b_s,
        fmt: formatDuration,
        change: ttl.change,
        better: "lower",
      });
    }
    return rows;
  }

  private renderPerformance(v: CompareAnswer): void {
    this.blockHead(this.perfEl, "Performance", "Each run's numbers and B's change against A: green where B is better (less time, memory, latency and RTF; more steps/s and GPU utilization), orange where worse");
    const rows = this.perfRows(v);
    if (rows.length === 0) {
      this.perfEl.appendChild(el("div", { class: "panel-empty" }, "Neither run recorded anything to compare."));
      return;
    }
    const tbody = el("tbody");
    for (const r of rows) {
      const tone = toneOf(r.change, r.better);
      tbody.appendChild(
        el(
          "tr",
          { dataset: { row: r.id } },
          el("th", { class: "cmp-label", attrs: { scope: "row" }, title: r.title }, el("bdi", null, r.label)),
          el("td", { class: "num", dataset: { side: "a" } }, r.a),
          el("td", { class: "num", dataset: { side: "b" } }, r.b),
          el("td", { class: `num cmp-change tone-${tone}`, dataset: { tone } }, r.change === null ? "" : formatChange(r.change)),
        ),
      );
    }
    this.perfEl.appendChild(el("table", { class: "cmp-table cmp-perf-table" }, this.tableHead(v, true), tbody));
  }
}
