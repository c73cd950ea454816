// Sizes and fonts shared by every chart (and the analytics panels' canvases).

export const FONT_STACK = 'Roboto, "Helvetica Neue", Arial, "Noto Sans Ethiopic", "Abyssinica SIL", Nyala, sans-serif';
export const AXIS_FONT = `11px ${FONT_STACK}`;
/** The plot's height in CSS pixels: a full chart, and a lane (0/1 states, bitmasks). */
export const PLOT_HEIGHT = 190;
export const LANE_HEIGHT = 84;
/** DOM hover targets per chart, at most (the canvas draws every mark). */
export const MAX_DOM_MARKERS = 200;

let measureCtx: CanvasRenderingContext2D | null = null;

/** Width of `s` in the axis font, in CSS pixels. */
export function textWidth(s: string): number {
  if (!measureCtx) {
    measureCtx = document.createElement("canvas").getContext("2d");
    if (measureCtx) measureCtx.font = AXIS_FONT;
  }
  return measureCtx ? measureCtx.measureText(s).width : s.length * 6.5;
}
