// Findings: one line per finding of the selected runs, most severe first,
// under the overview strip.

import type { Finding, Severity } from "../api";
import { clear, el } from "../dom";
import { runLabel, SEVERITIES, SEVERITY_RANK, severityIcon } from "./severity";

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
    for (const { run, color, f } of rows) this.root.appendChild(findingRow(f, multi ? runLabel(run, color) : null));
  }
}

/**
 * One finding: its severity icon, title (with `beside` after it: the run's
 * chip, or the rank a job's finding is about) and text.
 */
export function findingRow(f: Finding, beside: Node | null = null): HTMLElement {
  const sev: Severity = SEVERITIES.includes(f.severity) ? f.severity : "info";
  return el(
    "div",
    { class: `finding sev-${sev}`, dataset: { finding: String(f.id ?? "") } },
    severityIcon(sev, 18),
    el("div", { class: "finding-body" }, el("div", { class: "finding-title" }, f.title ?? "", beside), el("div", { class: "finding-text", dir: "auto" }, f.text ?? "")),
  );
}
