// Severity names, ranks and icons, and the run chip of multi-run lists.

import type { Severity } from "../api";
import { el, icon } from "../dom";

export const SEVERITIES: Severity[] = ["critical", "warning", "info"];
export const SEVERITY_RANK: Record<string, number> = { critical: 0, warning: 1, info: 2 };
export const SEVERITY_LABEL: Record<Severity, string> = { critical: "Critical", warning: "Warning", info: "Info" };

/** The icon of a severity, coloured by its class. */
export function severityIcon(sev: Severity, size = 16): SVGSVGElement {
  const s = SEVERITIES.includes(sev) ? sev : "info";
  const svg = icon(s === "critical" ? "error" : s === "warning" ? "warning" : "info", size);
  svg.classList.add(`sev-${s}`);
  return svg;
}

/** A run's name as a chip in its colour (lists of several runs). */
export function runLabel(run: string, color: string): HTMLElement {
  const chip = el("bdi", { class: "run-name an-run" }, run);
  chip.style.setProperty("--run-color", color);
  return chip;
}

