// A chart's exports: a PNG (title, plot and legend) and a CSV of the rows
// loaded for it.

import uPlot from "uplot";

import { el } from "../dom";
import type { ChartDef } from "../specs";
import type { Theme } from "../theme";
import type { XMode } from "../xaxis";
import { drawMarker, markerOf } from "./markers";
import { FONT_STACK } from "./style";
import type { LineData } from "./types";

function csvCell(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function csvNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  return String(v);
}

export function safeFileName(s: string): string {
  // keep letters of any script; drop what file systems or shells dislike
  const cleaned = s.replace(/[\\/:*?"<>|\u0000-\u001f]+/g, "_").replace(/\s+/g, "_");
  return cleaned.replace(/^_+|_+$/g, "").slice(0, 120) || "chart";
}

export function download(href: string, filename: string): void {
  const a = el("a", { attrs: { href, download: filename }, style: { display: "none" } });
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** ttsmon-<chart>-<run> (or -<n>-runs). */
export function fileStem(def: ChartDef, lines: LineData[]): string {
  const runs = [...new Set(lines.map((l) => l.line.run))];
  return `ttsmon-${def.id.split("\u0000")[0]}-${runs.length === 1 ? runs[0] : `${runs.length}-runs`}`;
}

/** The loaded rows of every line, long format (what the chart shows, downsampled as loaded). */
export function chartCsv(lines: LineData[], mode: XMode): string {
  const xName = mode === "wall" ? "x_wall_time_s" : mode === "relative" ? "x_relative_s" : "x_training_step";
  const header = ["run", "tag", "unit", "wall_time_s", "step", xName, "value"];
  const rows = [header.join(",")];
  for (const { line, series, clock } of lines) {
    const xs = clock.xs(series, mode);
    for (let i = 0; i < series.value.length; i++) {
      rows.push(
        [
          csvCell(line.run),
          csvCell(line.tag),
          csvCell(series.unit),
          String(series.wall[i]),
          String(series.step[i]),
          Number.isFinite(xs[i]) ? String(xs[i]) : "",
          csvNumber(series.value[i]),
        ].join(","),
      );
    }
  }
  return rows.join("\n") + "\n";
}

export function exportCsv(def: ChartDef, lines: LineData[], mode: XMode): void {
  const blob = new Blob([chartCsv(lines, mode)], { type: "text/csv;charset=utf-8" });
  const url = URL.createObjectURL(blob);
  download(url, `${safeFileName(fileStem(def, lines))}.csv`);
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** The plot as drawn, with the chart's title above and its legend below. */
export function exportPng(u: uPlot, def: ChartDef, lines: LineData[], theme: Theme): void {
  const dpr = uPlot.pxRatio;
  const src = u.ctx.canvas;
  const pad = 12 * dpr;
  const titleH = 26 * dpr;
  const lineH = 18 * dpr;
  const legendItems = lines.map((l) => ({
    color: l.line.color,
    dash: l.line.dash,
    points: l.line.points,
    marker: markerOf(l.line.marker),
    text: [l.line.run, l.line.label].filter(Boolean).join(" · "),
  }));
  const out = document.createElement("canvas");
  out.width = src.width + 2 * pad;
  out.height = titleH + src.height + legendItems.length * lineH + 2 * pad;
  const ctx = out.getContext("2d")!;
  ctx.fillStyle = theme.panel;
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = theme.text;
  ctx.font = `500 ${14 * dpr}px ${FONT_STACK}`;
  ctx.textBaseline = "top";
  const unit = def.unit ? ` (${def.unit})` : "";
  ctx.fillText(`${def.title}${unit}${def.subtitle ? ` · ${def.subtitle.text}` : ""}`, pad, pad);
  ctx.drawImage(src, pad, pad + titleH);
  ctx.font = `${12 * dpr}px ${FONT_STACK}`;
  legendItems.forEach((item, i) => {
    const y = pad + titleH + src.height + i * lineH + 4 * dpr;
    if (item.points) {
      drawMarker(ctx, item.marker, pad + 7 * dpr, y + 6 * dpr, 3 * dpr, item.color, theme.panel);
    } else {
      ctx.strokeStyle = item.color;
      ctx.lineWidth = 2 * dpr;
      ctx.setLineDash(item.dash.map((d) => d * dpr));
      ctx.beginPath();
      ctx.moveTo(pad, y + 6 * dpr);
      ctx.lineTo(pad + 14 * dpr, y + 6 * dpr);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = theme.text;
    ctx.fillText(item.text, pad + 20 * dpr, y);
  });
  download(out.toDataURL("image/png"), `${safeFileName(fileStem(def, lines))}.png`);
}
