// The legend: each line's name (run · label) and the value it shows, at the
// cursor or, without one, the line's latest value; NaN/Inf by name.

import type uPlot from "uplot";

import { el } from "../dom";
import { formatBitmask, formatValue, nonFiniteLabel } from "../format";
import type { ChartDef, LineDef } from "../specs";
import type { NonFinite, Table } from "../xaxis";

/** The legend text of a line: the run (where several share the chart, or the line has no label) · label. */
export function legendLabel(line: LineDef, multiRun: boolean): HTMLElement {
  const label = el("span", { class: "legend-label" });
  if (multiRun || !line.label) label.appendChild(el("bdi", { class: "legend-run" }, line.run));
  if (line.label) {
    if (multiRun) label.appendChild(document.createTextNode(" · "));
    label.appendChild(document.createTextNode(line.label));
  }
  return label;
}

/** A value of the chart's unit as the legend shows it (a bitmask with its bits named). */
export function valueText(def: ChartDef, v: number): string {
  if (def.unit === "bitmask" && def.bits.length) return formatBitmask(v, def.bits);
  return formatValue(v, def.unit);
}

/** Line `li`'s latest value (series `si` of `u`): a NaN/Inf after the last finite one wins. */
export function lastValueText(u: uPlot, def: ChartDef, table: Table | null, si: number, li: number): string {
  const ys = u.data[si];
  const xs = u.data[0];
  const nf = table?.nonFinite[li] ?? [];
  let i = ys ? ys.length - 1 : -1;
  while (i >= 0 && (ys[i] === null || ys[i] === undefined)) i--;
  const lastNf = nf.length ? nf[nf.length - 1] : null;
  if (lastNf && (i < 0 || lastNf.x > (xs[i] as number))) return nonFiniteLabel(lastNf.value);
  return i >= 0 ? valueText(def, ys[i] as number) : "—";
}

/** The non-finite point of line `li` nearest the cursor, if nearer than its nearest finite one. */
export function nonFiniteAtCursor(u: uPlot, table: Table | null, li: number, idx: number | null): NonFinite | null {
  const nf = table?.nonFinite[li];
  if (!nf || nf.length === 0 || u.cursor.left === undefined || u.cursor.left < 0) return null;
  const cx = u.cursor.left;
  let best: NonFinite | null = null;
  let bestD = Infinity;
  for (const p of nf) {
    const d = Math.abs(u.valToPos(p.x, "x") - cx);
    if (d < bestD) {
      bestD = d;
      best = p;
    }
  }
  if (!best) return null;
  if (idx !== null && idx !== undefined) {
    const xd = Math.abs(u.valToPos(u.data[0][idx] as number, "x") - cx);
    if (xd < bestD) return null;
  }
  return bestD <= 12 || idx === null || idx === undefined ? best : null;
}
