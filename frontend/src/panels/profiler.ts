// The Profiler panel: one card per profiler session of each selected run
// (http_api.md, "Profiler routes"), with its window, hosts, the summary the
// backend computed from the capture, its optimization suggestions, and deep
// links into TensorBoard's Profile tab. Nothing is computed here from raw
// profiles; every name and message enters the DOM as text.

import { toNumber, type Profiles, type ProfileHost, type ProfileSession, type ProfileSummary, type ProfileTool, type Severity } from "../api";
import { makePanel, type Panel } from "./panel";
import { severityIcon, SEVERITIES } from "./severity";
import type { Mark } from "../chart/types";
import { clear, el } from "../dom";
import { formatBytes, formatClock, formatDateTime, formatDuration, formatNumber } from "../format";

export const EMPTY_TEXT =
  "No profile captured yet — use mon.profile(start_step, num_steps) or MonitorCallback(profile_steps=(start, stop))";
export const NO_XPROF_TEXT = "Profile summaries need the Profile plugin: pip install tensorboard-plugin-profile";

/** The deep links, in the order shown. */
export const PROFILE_LINKS: { tool: ProfileTool; label: string; title: string }[] = [
  { tool: "trace_viewer", label: "Execution timeline", title: "Open the trace viewer in TensorBoard's Profile tab" },
  { tool: "memory_profile", label: "Memory analysis", title: "Open the memory profile in TensorBoard's Profile tab" },
  { tool: "framework_op_stats", label: "Operation profiling", title: "Open the framework op statistics in TensorBoard's Profile tab" },
  { tool: "overview_page", label: "Overview", title: "Open the overview page in TensorBoard's Profile tab" },
];

const TRIGGER_LABEL: Record<string, string> = {
  steps: "steps",
  manual: "manual",
  alert: "alert",
};

const VERDICT_LABEL: Record<string, string> = {
  input_bound: "Input-bound",
  highly_input_bound: "Highly input-bound",
  moderately_input_bound: "Moderately input-bound",
  not_input_bound: "Not input-bound",
  compute_bound: "Compute-bound",
};

const HOST_STATUS: Record<string, string> = {
  ok: "ok",
  empty: "empty (0-byte file)",
  unreadable: "unreadable",
  pending: "analysing…",
};

export interface RunProfiles {
  run: string;
  color: string;
  profiles: Profiles | null;
}

function num(v: unknown): number | null {
  const n = toNumber(v);
  return Number.isFinite(n) ? n : null;
}

function ms(v: number): string {
  return `${formatNumber(v, 3)} ms`;
}

function humanize(s: string): string {
  const t = s.replace(/_/g, " ");
  return t.charAt(0).toUpperCase() + t.slice(1);
}

/** "steps 100–105" or "" where the steps are unknown. */
export function stepsText(s: ProfileSession): string {
  const a = s.start_step ?? null;
  const b = s.stop_step ?? null;
  if (a === null && b === null) return "";
  if (a !== null && b !== null) return a === b ? `step ${formatNumber(a, 12)}` : `steps ${formatNumber(a, 12)}–${formatNumber(b, 12)}`;
  return a !== null ? `from step ${formatNumber(a, 12)}` : `to step ${formatNumber(b!, 12)}`;
}

/** "2026-11-28 15:01:02 → 15:01:03 (1.8 s)" or "" where the times are unknown. */
export function timeText(s: ProfileSession): string {
  const a = num(s.start_wall_time_s);
  const b = num(s.stop_wall_time_s);
  if (a === null && b === null) return "";
  if (a !== null && b !== null) return `${formatDateTime(a)} → ${formatClock(b)} (${formatDuration(Math.max(0, b - a))})`;
  return a !== null ? `from ${formatDateTime(a)}` : `until ${formatDateTime(b!)}`;
}

/** The band a session draws on every chart of its run; null where it has no window at all. */
export function profileMark(run: string, s: ProfileSession, multi: boolean): Mark | null {
  const a = num(s.start_wall_time_s);
  const b = num(s.stop_wall_time_s);
  const sa = num(s.start_step);
  const sb = num(s.stop_step);
  if (a === null && b === null && sa === null && sb === null) return null;
  const lines = [`Profile ${s.session}${s.trigger ? ` (${TRIGGER_LABEL[s.trigger] ?? s.trigger})` : ""}`];
  if (multi) lines.push(`run ${run}`);
  const t = timeText(s);
  if (t) lines.push(t);
  const st = stepsText(s);
  if (st) lines.push(st);
  return {
    kind: "profile",
    run,
    start: a ?? b ?? NaN,
    end: b ?? a ?? NaN,
    startStep: sa ?? sb,
    endStep: sb ?? sa,
    severity: "info",
    value: null,
    title: lines.join("\n"),
  };
}

/**
 * A link of the route as an absolute URL. The links are relative to the
 * plugin's iframe as its requests see it: its `<base>`, `<root>/data/plugin/ttsmon/`
 * (document.baseURI; location.href, `<root>/data/plugin_entry.html`, is one
 * level higher and would miss a --path_prefix).
 */
export function linkHref(link: string): string {
  return new URL(link, document.baseURI || location.href).href;
}

/** Opens a link of the route in the whole TensorBoard page (not the iframe). */
export function openInTensorBoard(link: string): void {
  const href = linkHref(link);
  try {
    (window.top ?? window).location.assign(href);
  } catch {
    window.location.assign(href);
  }
}

export class ProfilerPanel {
  readonly panel: Panel;
  private readonly note = el("div", { class: "prof-note", attrs: { role: "note" } });
  private readonly list = el("div", { class: "prof-list" });
  private readonly empty = el("div", { class: "panel-empty prof-empty" });
  private key = "";

  constructor(collapsed: Set<string>, onToggle: () => void) {
    this.panel = makePanel("profiler", "Profiler", collapsed, onToggle);
    this.note.hidden = true;
    this.panel.body.classList.add("prof-body");
    this.panel.body.append(this.note, this.empty, this.list);
  }

  /** True while a summary is being computed (the next refresh asks again). */
  pending(items: RunProfiles[]): boolean {
    return items.some((i) => (i.profiles?.sessions ?? []).some((s) => s.summary === null && (s.hosts ?? []).some((h) => h.status === "pending")));
  }

  update(items: RunProfiles[]): void {
    const known = items.filter((i) => i.profiles !== null);
    this.panel.root.hidden = known.length === 0;
    const key = JSON.stringify(known.map((i) => [i.run, i.color, i.profiles]));
    if (key === this.key) return;
    this.key = key;
    const multi = items.length > 1;
    const sessions: { run: string; color: string; s: ProfileSession; xprof: boolean }[] = [];
    const noXprof: { run: string; reason: string }[] = [];
    for (const i of known) {
      const xprof = i.profiles!.xprof?.available !== false;
      if (!xprof) noXprof.push({ run: i.run, reason: i.profiles!.xprof?.reason ?? "" });
      for (const s of i.profiles!.sessions) sessions.push({ run: i.run, color: i.color, s, xprof });
    }
    // newest first, across runs
    sessions.sort((x, y) => (num(y.s.start_wall_time_s) ?? 0) - (num(x.s.start_wall_time_s) ?? 0));
    this.panel.count.textContent = sessions.length ? String(sessions.length) : "";

    clear(this.note);
    this.note.hidden = noXprof.length === 0;
    if (noXprof.length) {
      this.note.append(severityIcon("info", 16), el("span", null, NO_XPROF_TEXT));
      const reasons = [...new Set(noXprof.map((n) => n.reason).filter((r) => r))];
      if (reasons.length) this.note.title = reasons.join("\n");
    }

    this.empty.hidden = sessions.length > 0;
    this.empty.textContent = EMPTY_TEXT;
    clear(this.list);
    for (const { run, color, s, xprof } of sessions) this.list.appendChild(this.card(run, color, s, xprof, multi));
  }

  private card(run: string, color: string, s: ProfileSession, xprof: boolean, multi: boolean): HTMLElement {
    const runChip = multi ? el("bdi", { class: "run-name an-run" }, run) : null;
    runChip?.style.setProperty("--run-color", color);
    const trigger = s.trigger ? el("span", { class: "prof-trigger", title: "What started this capture" }, TRIGGER_LABEL[s.trigger] ?? s.trigger) : null;
    const head = el("div", { class: "prof-head" }, el("bdi", { class: "prof-session" }, s.session), trigger, runChip);

    const win: (string | HTMLElement)[] = [];
    const t = timeText(s);
    const st = stepsText(s);
    if (t) win.push(el("span", { class: "prof-time" }, t));
    if (st) win.push(el("span", { class: "prof-steps" }, st));
    if (!win.length) win.push(el("span", { class: "prof-muted" }, "window not recorded"));
    const windowRow = el("div", { class: "prof-window" }, ...win);

    const hosts = el("div", { class: "prof-hosts" }, el("span", { class: "prof-label" }, "Hosts"));
    const hostList = s.hosts ?? [];
    if (!hostList.length) hosts.appendChild(el("span", { class: "prof-muted" }, "no capture file"));
    for (const h of hostList) hosts.appendChild(this.hostChip(h));

    const body = el("div", { class: "prof-main" }, this.summary(s, xprof), this.links(s));
    return el(
      "article",
      { class: "prof-card", dataset: { session: s.session, run }, attrs: { "aria-label": `Profile session ${s.session}` } },
      head,
      windowRow,
      hosts,
      body,
    );
  }

  private hostChip(h: ProfileHost): HTMLElement {
    const status = h.status ?? "pending";
    const size = num(h.size_bytes);
    const chip = el(
      "span",
      { class: `prof-host status-${status}`, dataset: { status } },
      el("bdi", { class: "prof-host-name" }, h.host),
      el("span", { class: "prof-host-status" }, HOST_STATUS[status] ?? status),
      size !== null && status !== "empty" ? el("span", { class: "prof-muted" }, formatBytes(size)) : null,
    );
    if (h.error) chip.title = h.error;
    return chip;
  }

  private summary(s: ProfileSession, xprof: boolean): HTMLElement {
    const box = el("div", { class: "prof-summary" });
    const sum = s.summary;
    if (!sum) {
      const hosts = s.hosts ?? [];
      let text: string;
      let cls = "prof-muted";
      if (!xprof) text = "No summary: the Profile plugin (tensorboard-plugin-profile) is not installed.";
      else if (hosts.some((h) => h.status === "pending")) {
        text = "Analysing the capture…";
        cls = "prof-muted prof-pending";
      } else if (hosts.length && hosts.every((h) => h.status === "empty")) text = "No summary: the capture file is empty.";
      else if (hosts.some((h) => h.status === "unreadable")) text = "No summary: the capture could not be read.";
      else text = "No summary for this capture.";
      box.appendChild(el("div", { class: cls }, text));
      return box;
    }
    box.appendChild(this.numbers(sum));
    const ops = (sum.top_ops ?? []).filter((o) => o && o.name);
    if (ops.length) {
      const table = el("table", { class: "prof-ops" });
      table.appendChild(
        el("thead", null, el("tr", null, el("th", null, "Top ops by self time"), el("th", null, "Type"), el("th", { class: "num" }, "Self time"), el("th", { class: "num" }, "%"), el("th", { class: "num" }, "Count"))),
      );
      const tbody = el("tbody");
      for (const o of ops.slice(0, 10)) {
        const t = num(o.self_time_ms);
        const p = num(o.self_time_percent);
        tbody.appendChild(
          el(
            "tr",
            null,
            el("td", { class: "prof-op", title: o.name }, el("bdi", null, o.name)),
            el("td", { class: "prof-muted" }, o.type && o.type !== o.name ? o.type : ""),
            el("td", { class: "num" }, t === null ? "—" : ms(t)),
            el("td", { class: "num" }, p === null ? "—" : `${formatNumber(p, 3)} %`),
            el("td", { class: "num" }, o.occurrences === null || o.occurrences === undefined ? "—" : formatNumber(o.occurrences, 12)),
          ),
        );
      }
      table.appendChild(tbody);
      box.appendChild(table);
    }
    const sugg = (sum.suggestions ?? []).filter((x) => x && x.text);
    if (sugg.length) {
      const list = el("div", { class: "prof-suggestions", attrs: { role: "list", "aria-label": "Optimization suggestions" } });
      for (const x of sugg) {
        const sev: Severity = x.severity && SEVERITIES.includes(x.severity) ? x.severity : "info";
        list.appendChild(
          el("div", { class: `prof-suggestion finding sev-${sev}`, attrs: { role: "listitem" }, dataset: { suggestion: String(x.id ?? "") } }, severityIcon(sev, 16), el("div", { class: "finding-text", dir: "auto" }, x.text)),
        );
      }
      box.appendChild(list);
    }
    return box;
  }

  private numbers(sum: ProfileSummary): HTMLElement {
    const grid = el("dl", { class: "prof-numbers" });
    const add = (label: string, value: HTMLElement | string, cls = "") => {
      grid.append(el("dt", null, label), el("dd", { class: cls }, value));
    };
    const mean = num(sum.step_time_ms_mean);
    const sd = num(sum.step_time_ms_stddev);
    const steps = num(sum.steps);
    if (mean !== null) {
      add("Step time", `${ms(mean)}${sd !== null ? ` ± ${ms(sd)}` : ""}${steps !== null ? ` (${formatNumber(steps, 12)} steps)` : ""}`, "prof-step-time");
    }
    const parts: { key: string; label: string; v: number | null }[] = [
      { key: "input", label: "Input", v: num(sum.input_ms_mean) },
      { key: "compute", label: "Compute", v: num(sum.compute_ms_mean) },
      { key: "other", label: "Other", v: num(sum.other_ms_mean) },
    ];
    const known = parts.filter((p) => p.v !== null && p.v >= 0);
    const total = known.reduce((a, p) => a + p.v!, 0);
    if (known.length) {
      const bar = el("div", { class: "prof-split-bar", attrs: { role: "img" } });
      const legend = el("div", { class: "prof-split-legend" });
      const label: string[] = [];
      for (const p of known) {
        const pct = total > 0 ? (100 * p.v!) / total : 0;
        const seg = el("span", { class: `prof-seg seg-${p.key}` });
        seg.style.width = `${pct}%`;
        bar.appendChild(seg);
        const text = `${p.label} ${ms(p.v!)} (${formatNumber(pct, 3)} %)`;
        label.push(text);
        legend.appendChild(el("span", { class: `prof-split-item seg-${p.key}` }, text));
      }
      bar.setAttribute("aria-label", label.join(", "));
      add("Step split", el("div", { class: "prof-split" }, bar, legend));
    }
    const inputPct = num(sum.input_percent);
    if (sum.verdict || inputPct !== null) {
      const v = sum.verdict ? (VERDICT_LABEL[sum.verdict] ?? humanize(sum.verdict)) : "";
      const text = [v, inputPct !== null ? `${formatNumber(inputPct, 3)} % of the step waits for input` : ""].filter((x) => x).join(" · ");
      add("Verdict", text, `prof-verdict verdict-${sum.verdict ?? "none"}`);
    }
    const peak = num(sum.peak_memory_bytes);
    add("Peak memory", peak !== null ? formatBytes(peak) : "not in this capture", peak !== null ? "" : "prof-muted");
    return grid;
  }

  private links(s: ProfileSession): HTMLElement {
    const box = el("nav", { class: "prof-links", attrs: { "aria-label": `Open session ${s.session} in the Profile tab` } });
    for (const l of PROFILE_LINKS) {
      const link = s.links?.[l.tool];
      if (!link) continue;
      let href: string;
      try {
        href = linkHref(link);
      } catch {
        continue;
      }
      const a = el("a", { class: "prof-link", title: l.title, attrs: { href, target: "_top" }, dataset: { tool: l.tool } }, l.label);
      a.addEventListener("click", (ev) => {
        if (ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return; // new tab/window: the browser's own
        ev.preventDefault();
        openInTensorBoard(link);
      });
      box.appendChild(a);
    }
    if (!box.childElementCount) box.appendChild(el("span", { class: "prof-muted" }, "No links for this session"));
    return box;
  }
}
