// What the chart draws over its lines besides marks: reference lines, and a
// red band, a triangle and a hover target at every NaN/Inf point.

import uPlot from "uplot";

import { el } from "../dom";
import { formatDateTime, formatNumber, nonFiniteLabel } from "../format";
import { usesTrainingStep, type ChartDef } from "../specs";
import type { Theme } from "../theme";
import type { NonFinite, Table } from "../xaxis";
import { FONT_STACK, MAX_DOM_MARKERS } from "./style";
import type { LineData } from "./types";

/** Dotted horizontal lines with their labels (RTF 1: real time). */
export function drawRefLines(u: uPlot, def: ChartDef, theme: Theme): void {
  const ctx = u.ctx;
  const { left, width } = u.bbox;
  const dpr = uPlot.pxRatio;
  for (const r of def.refLines) {
    const y = Math.round(u.valToPos(r.value, "y", true)) + 0.5;
    ctx.strokeStyle = theme.refLine;
    ctx.lineWidth = dpr;
    ctx.setLineDash([4 * dpr, 3 * dpr]);
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(left + width, y);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = theme.axis;
    ctx.font = `${10 * dpr}px ${FONT_STACK}`;
    ctx.textAlign = "right";
    ctx.textBaseline = "bottom";
    ctx.fillText(r.label, left + width - 4 * dpr, y - 2 * dpr);
  }
}

/** A red band and a triangle at the top at each NaN/Inf (so a PNG export shows them too). */
export function drawNonFinite(u: uPlot, table: Table | null, theme: Theme): void {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const dpr = uPlot.pxRatio;
  const nfs = table?.nonFinite ?? [];
  const bandW = Math.max(2, 3 * dpr);
  const tri = 5 * dpr;
  for (let li = 0; li < nfs.length; li++) {
    if (!u.series[li + 1]?.show) continue;
    for (const p of nfs[li]) {
      const x = u.valToPos(p.x, "x", true);
      if (x < left - bandW || x > left + width + bandW) continue;
      ctx.fillStyle = theme.nonFiniteBand;
      ctx.fillRect(Math.round(x - bandW / 2), top, bandW, height);
      ctx.fillStyle = theme.nonFinite;
      ctx.beginPath();
      ctx.moveTo(x - tri, top);
      ctx.lineTo(x + tri, top);
      ctx.lineTo(x, top + 1.6 * tri);
      ctx.closePath();
      ctx.fill();
    }
  }
}

/** Hover targets for the NaN/Inf points, with a tooltip naming what, where and when. */
export function placeNonFiniteTargets(u: uPlot, layer: HTMLElement, table: Table | null, lines: LineData[]): void {
  const nfs = table?.nonFinite ?? [];
  const plotW = u.bbox.width / uPlot.pxRatio;
  const wanted: { li: number; p: NonFinite; left: number }[] = [];
  for (let li = 0; li < nfs.length && wanted.length < MAX_DOM_MARKERS; li++) {
    if (!u.series[li + 1]?.show) continue;
    for (const p of nfs[li]) {
      const left = u.valToPos(p.x, "x");
      if (left < -4 || left > plotW + 4) continue;
      wanted.push({ li, p, left });
      if (wanted.length >= MAX_DOM_MARKERS) break;
    }
  }
  while (layer.childElementCount > wanted.length) layer.lastElementChild!.remove();
  while (layer.childElementCount < wanted.length) layer.appendChild(el("div", { class: "nf-marker", attrs: { role: "img" } }));
  wanted.forEach((w, i) => {
    const m = layer.children[i] as HTMLElement;
    m.style.left = `${w.left}px`;
    const line = lines[w.li].line;
    const what = nonFiniteLabel(w.p.value);
    const text =
      `${what} in ${line.tag} (${line.run})` +
      ` at ${usesTrainingStep(line.tag) ? `step ${formatNumber(w.p.step, 12)}, ` : ""}${formatDateTime(w.p.wall)}`;
    if (m.title !== text) {
      m.title = text;
      m.setAttribute("aria-label", text);
      m.dataset.value = what;
    }
  });
}
