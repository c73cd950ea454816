// The Alerts panel: every alert event of the selected runs, newest first,
// filterable by severity; a click zooms every chart to the alert.

import type { AlertEvent, Severity } from "../api";
import { clear, el, setText } from "../dom";
import { formatDateTime, formatNumber } from "../format";
import { makePanel, type Panel } from "./panel";
import { runLabel, SEVERITIES, SEVERITY_LABEL, severityIcon } from "./severity";

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
