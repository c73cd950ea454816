// Light and dark themes. The tab follows TensorBoard's own setting: the plugin
// iframe is same-origin, so the parent's <body class="dark-mode"> can be
// watched. Outside TensorBoard (or if the parent is not reachable) the
// browser's prefers-color-scheme decides.

export interface Theme {
  dark: boolean;
  /** canvas colours (CSS variables cover the DOM) */
  text: string;
  axis: string;
  grid: string;
  panel: string;
  nonFinite: string;
  nonFiniteBand: string;
  refLine: string;
  /** alert and anomaly colours by severity */
  severity: { info: string; warning: string; critical: string };
  /** profiled windows (bands on every chart) */
  profile: string;
  /** a heatmap cell without a value: apart from both ends of viridis (white on light; on dark, not the dark end's near-black) */
  noData: string;
  palette: string[];
  /** colours of the lines within one run's chart (layers, stages) */
  items: string[];
}

// Run colours: the first few as far apart as possible, readable on the card
// background, none of them the red that marks NaN/Inf.
const LIGHT_PALETTE = [
  "#1a73e8", "#e8710a", "#c2185b", "#558b2f", "#8430ce",
  "#12a4b8", "#b08000", "#425066", "#795548", "#00897b",
];
const DARK_PALETTE = [
  "#8ab4f8", "#fcad70", "#f48fb1", "#a5d67c", "#c58af9",
  "#6fd6e8", "#fdd663", "#aab4c5", "#d7a98c", "#4dd0c4",
];

export const LIGHT: Theme = {
  dark: false,
  text: "#212121",
  axis: "#616161",
  grid: "rgba(0,0,0,0.07)",
  panel: "#ffffff",
  nonFinite: "#d93025",
  nonFiniteBand: "rgba(217,48,37,0.16)",
  refLine: "#9e9e9e",
  severity: { info: "#1a73e8", warning: "#e37400", critical: "#d93025" },
  profile: "#9334e6",
  noData: "#ffffff",
  palette: LIGHT_PALETTE,
  items: ["#00897b", "#7b61ff", "#c99700", "#d64d9c", "#6a9f2a", "#9c6644", "#5c6bc0", "#ef6c00", "#26a69a", "#8d6e63"],
};

export const DARK: Theme = {
  dark: true,
  text: "#e8eaed",
  axis: "#aeb3b9",
  grid: "rgba(255,255,255,0.08)",
  panel: "#2b2c2f",
  nonFinite: "#f28b82",
  nonFiniteBand: "rgba(242,139,130,0.22)",
  refLine: "#8a8f96",
  severity: { info: "#8ab4f8", warning: "#fdd663", critical: "#f28b82" },
  profile: "#d7aefb",
  noData: "#5f6368",
  palette: DARK_PALETTE,
  items: ["#4dd0c4", "#a99bff", "#f1ce63", "#f48fb1", "#aed581", "#d7a98c", "#9fa8da", "#ffb74d", "#80cbc4", "#bcaaa4"],
};

function parentBody(): HTMLElement | null {
  try {
    if (window.parent && window.parent !== window) return window.parent.document.body;
  } catch {
    // a cross-origin parent: fall back to the media query
  }
  return null;
}

/** Calls `onChange(isDark)` now and whenever the effective mode changes. */
export function watchDarkMode(onChange: (dark: boolean) => void): void {
  const media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const body = parentBody();
  let last: boolean | null = null;
  const compute = (): boolean => {
    if (body) return body.classList.contains("dark-mode");
    return media ? media.matches : false;
  };
  const update = () => {
    const dark = compute();
    if (dark !== last) {
      last = dark;
      onChange(dark);
    }
  };
  if (body) {
    new MutationObserver(update).observe(body, { attributes: true, attributeFilter: ["class"] });
  }
  media?.addEventListener?.("change", update);
  update();
}
