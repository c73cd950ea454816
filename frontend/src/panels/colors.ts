// Colour scales of the heatmap (viridis) and the correlation matrix (diverging).

import type { Theme } from "../theme";

export const VIRIDIS = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"].map(hexRgb);

export function hexRgb(h: string): [number, number, number] {
  return [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
}

export function ramp(stops: [number, number, number][], t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  const c = stops[i].map((v, k) => Math.round(v + f * (stops[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** -1 (blue) .. 0 (the card) .. +1 (red). */
export function diverging(r: number, theme: Theme): { bg: string; fg: string } {
  const neutral = hexRgb(theme.dark ? "#2b2c2f" : "#ffffff");
  const end = hexRgb(r < 0 ? (theme.dark ? "#4a7fd4" : "#2166ac") : theme.dark ? "#d35c5c" : "#b2182b");
  const t = Math.min(1, Math.abs(r));
  const c = neutral.map((v, k) => Math.round(v + t * (end[k] - v)));
  const strong = t > 0.55;
  return { bg: `rgb(${c[0]},${c[1]},${c[2]})`, fg: strong ? "#ffffff" : theme.text };
}

/** Viridis as a CSS gradient, left to right: the heatmaps' colour keys. */
export const VIRIDIS_GRADIENT = `linear-gradient(to right, ${VIRIDIS.map((c) => `rgb(${c.join(",")})`).join(", ")})`;

/** 256 viridis colours as RGBA bytes, for the heatmaps drawn as ImageData (job view, serving view). */
export const VIRIDIS_LUT: Uint8ClampedArray = (() => {
  const out = new Uint8ClampedArray(256 * 4);
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * (VIRIDIS.length - 1);
    const k = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - k;
    for (let c = 0; c < 3; c++) out[i * 4 + c] = Math.round(VIRIDIS[k][c] + f * (VIRIDIS[k + 1][c] - VIRIDIS[k][c]));
    out[i * 4 + 3] = 255;
  }
  return out;
})();
