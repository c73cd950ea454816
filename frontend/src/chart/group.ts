// The group that keeps all charts' cursors, x ranges and zoom together.

import type { Theme } from "../theme";
import type { XMode } from "../xaxis";

/** What the group needs of a chart. */
export interface GroupMember {
  xExtent(): [number, number] | null;
  applyRange(): void;
  redraw(): void;
}

/** Keeps every chart's x range, zoom and cursor in step. */
export class ChartGroup {
  readonly charts = new Set<GroupMember>();
  mode: XMode = "wall";
  theme: Theme;
  /** the x range the user zoomed to; null: the full extent */
  zoom: [number, number] | null = null;
  extent: [number, number] | null = null;
  onChange: (() => void) | null = null;

  constructor(theme: Theme) {
    this.theme = theme;
  }

  /** The union of all charts' x extents (so a cursor at x lines up everywhere). */
  recomputeExtent(): void {
    let lo = Infinity;
    let hi = -Infinity;
    for (const c of this.charts) {
      const e = c.xExtent();
      if (!e) continue;
      lo = Math.min(lo, e[0]);
      hi = Math.max(hi, e[1]);
    }
    this.extent = lo <= hi ? [lo, hi] : null;
  }

  range(): [number, number] | null {
    const r = this.zoom ?? this.extent;
    if (!r) return null;
    if (r[0] === r[1]) return [r[0] - 1, r[1] + 1];
    return r;
  }

  zoomTo(min: number, max: number): void {
    if (!(max > min)) return;
    this.zoom = [min, max];
    for (const c of this.charts) c.applyRange();
    this.onChange?.();
  }

  redraw(): void {
    for (const c of this.charts) c.redraw();
  }

  resetZoom(): void {
    this.zoom = null;
    for (const c of this.charts) c.applyRange();
    this.onChange?.();
  }
}
