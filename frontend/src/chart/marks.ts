// Alert bands, anomaly bands and rings, and profiled windows over a chart:
// drawn on the canvas (so a PNG export has them) with DOM hover targets on
// top for their tooltips.

import uPlot from "uplot";

import { el } from "../dom";
import type { Theme } from "../theme";
import type { XMode } from "../xaxis";
import { MAX_DOM_MARKERS } from "./style";
import type { LineData, Mark } from "./types";

/** A drawn mark, in CSS pixels within the plot area. */
export interface PlacedMark {
  m: Mark;
  x: number;
  y: number | null;
  w: number;
}

/** Equal keys: the same mark (a redraw is not needed). */
export function markKey(m: Mark): string {
  return `${m.kind}|${m.run}|${m.start}|${m.end}|${m.severity}|${m.open ? 1 : 0}|${m.title}`;
}

/** A mark's x range in `mode`, or null where it has none (its run is not in the chart). */
export function markRange(m: Mark, lines: LineData[], mode: XMode): [number, number] | null {
  const line = lines.find((l) => l.line.run === m.run);
  if (!line) return null;
  const clock = line.clock;
  let a: number;
  let b: number;
  if (mode === "wall") {
    a = m.start;
    b = m.end;
  } else if (mode === "relative") {
    a = m.start - clock.t0;
    b = m.end - clock.t0;
  } else {
    a = m.startStep ?? clock.stepAt(m.start);
    b = m.endStep ?? clock.stepAt(m.end);
    if (!Number.isFinite(b) && Number.isFinite(a)) b = a;
  }
  if (!Number.isFinite(a) || !Number.isFinite(b)) return null;
  return a <= b ? [a, b] : [b, a];
}

/** Alert bands (translucent, severity-coloured), anomaly bands and rings, profiled windows. */
export function drawMarks(u: uPlot, marks: Mark[], lines: LineData[], mode: XMode, theme: Theme): PlacedMark[] {
  const placed: PlacedMark[] = [];
  if (marks.length === 0) return placed;
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const dpr = uPlot.pxRatio;
  const colors = theme.severity;
  for (const m of marks) {
    const r = markRange(m, lines, mode);
    if (!r) continue;
    const x0 = u.valToPos(r[0], "x", true);
    let x1 = u.valToPos(r[1], "x", true);
    if (m.open) x1 = Math.max(x1, left + width);
    if (x1 < left - 4 * dpr || x0 > left + width + 4 * dpr) continue;
    const color = m.kind === "profile" ? theme.profile : colors[m.severity];
    const isPoint = x1 - x0 < 2 * dpr;
    ctx.fillStyle = color;
    if (m.kind === "profile") {
      // a translucent band with a strip along the top and its edges drawn
      const w = Math.max(x1 - x0, 2 * dpr);
      ctx.globalAlpha = 0.1;
      ctx.fillRect(x0, top, w, height);
      ctx.globalAlpha = 0.85;
      ctx.fillRect(x0, top, w, 3 * dpr);
      ctx.globalAlpha = 0.6;
      ctx.fillRect(Math.round(x0), top, dpr, height);
      ctx.fillRect(Math.round(x0 + w - dpr), top, dpr, height);
    } else if (m.kind === "alert") {
      ctx.globalAlpha = 0.13;
      ctx.fillRect(x0, top, Math.max(x1 - x0, 2 * dpr), height);
      ctx.globalAlpha = 0.9;
      ctx.fillRect(x0, top + height - 3 * dpr, Math.max(x1 - x0, 2 * dpr), 3 * dpr);
    } else {
      ctx.globalAlpha = isPoint ? 0.5 : 0.16;
      if (isPoint) ctx.fillRect(Math.round(x0 - dpr / 2), top, dpr, height);
      else ctx.fillRect(x0, top, x1 - x0, height);
    }
    ctx.globalAlpha = 1;
    let y: number | null = null;
    if (m.kind === "anomaly" && m.value !== null && Number.isFinite(m.value)) {
      const yy = u.valToPos(m.value, "y", true);
      if (yy >= top - 1 && yy <= top + height + 1) y = yy;
    }
    const cx = isPoint ? x0 : (Math.max(x0, left) + Math.min(x1, left + width)) / 2;
    if (m.kind === "anomaly") {
      ctx.strokeStyle = color;
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      if (y !== null) ctx.arc(cx, y, 5 * dpr, 0, 2 * Math.PI);
      else {
        // a diamond on the bottom edge where the value is off the scale or not finite
        const s = 5 * dpr;
        const by = top + height - s - dpr;
        ctx.moveTo(cx, by - s);
        ctx.lineTo(cx + s, by);
        ctx.lineTo(cx, by + s);
        ctx.lineTo(cx - s, by);
        ctx.closePath();
      }
      ctx.stroke();
    }
    placed.push({
      m,
      x: cx / dpr - u.bbox.left / dpr,
      y: y === null ? null : (y - top) / dpr,
      w: (Math.min(x1, left + width) - Math.max(x0, left)) / dpr,
    });
  }
  return placed;
}

/** Hover targets (tooltips) for the drawn marks, reusing the layer's elements. */
export function placeMarkTargets(layer: HTMLElement, placed: PlacedMark[]): void {
  const wanted = placed.slice(0, MAX_DOM_MARKERS);
  while (layer.childElementCount > wanted.length) layer.lastElementChild!.remove();
  while (layer.childElementCount < wanted.length) layer.appendChild(el("div", { attrs: { role: "img" } }));
  wanted.forEach((p, i) => {
    const d = layer.children[i] as HTMLElement;
    const kindCls = p.m.kind === "alert" ? "alert-mark" : p.m.kind === "profile" ? "profile-mark" : "an-marker";
    const cls = `mark-target ${kindCls} sev-${p.m.severity}`;
    if (d.className !== cls) d.className = cls;
    d.style.left = `${p.x}px`;
    if (p.m.kind === "profile") {
      // the band's top strip, as wide as the band
      const w = Math.max(14, p.w);
      d.style.width = `${w}px`;
      d.style.marginLeft = `${-w / 2}px`;
      d.style.top = "0px";
      d.style.bottom = "";
    } else if (p.y === null) {
      d.style.width = "";
      d.style.marginLeft = "";
      d.style.top = "";
      d.style.bottom = "0px";
    } else {
      d.style.width = "";
      d.style.marginLeft = "";
      d.style.top = `${p.y - 7}px`;
      d.style.bottom = "";
    }
    if (d.title !== p.m.title) {
      d.title = p.m.title;
      d.setAttribute("aria-label", p.m.title);
    }
  });
}
