// The header: the run picker, the x axis modes, reset zoom, auto-refresh,
// refresh now, the loading spinner and the "Updated" time.

import { clear, el, icon, setText } from "../dom";
import { formatClock } from "../format";
import { X_MODES, type XMode } from "../xaxis";

export interface ToolbarActions {
  setMode(mode: XMode): void;
  resetZoom(): void;
  toggleAuto(): void;
  refresh(): void;
}

export class Toolbar {
  readonly root: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly spinner: HTMLElement;
  private readonly autoBtn: HTMLButtonElement;
  private readonly modeButtons = new Map<XMode, HTMLButtonElement>();
  private readonly resetZoomBtn: HTMLButtonElement;

  constructor(picker: HTMLElement, actions: ToolbarActions) {
    const modeGroup = el("div", { class: "segmented", attrs: { role: "group", "aria-label": "X axis" } });
    for (const m of X_MODES) {
      const b = el("button", { class: "seg-btn", title: m.title, attrs: { type: "button" } }, m.label);
      b.addEventListener("click", () => actions.setMode(m.id));
      this.modeButtons.set(m.id, b);
      modeGroup.appendChild(b);
    }
    this.resetZoomBtn = el("button", { class: "text-btn zoom-reset", attrs: { type: "button" }, title: "Show the full x range (or double-click a chart)" }, "Reset zoom");
    this.resetZoomBtn.addEventListener("click", () => actions.resetZoom());
    this.autoBtn = el("button", { class: "toggle-btn", attrs: { type: "button" } });
    this.autoBtn.addEventListener("click", () => actions.toggleAuto());
    const refreshBtn = el("button", { class: "icon-btn", title: "Refresh now", attrs: { type: "button", "aria-label": "Refresh" } }, icon("refresh", 18));
    refreshBtn.addEventListener("click", () => actions.refresh());
    this.spinner = el("span", { class: "spinner", title: "Loading", attrs: { role: "status", "aria-label": "Loading" } });
    this.spinner.hidden = true;
    this.statusEl = el("span", { class: "status" });
    this.root = el(
      "header",
      { class: "toolbar" },
      picker,
      el("div", { class: "toolbar-right" },
        el("span", { class: "toolbar-label" }, "X axis"),
        modeGroup,
        this.resetZoomBtn,
        el("span", { class: "divider" }),
        this.autoBtn,
        refreshBtn,
        this.spinner,
        this.statusEl,
      ),
    );
  }

  showMode(mode: XMode): void {
    for (const [m, b] of this.modeButtons) {
      b.classList.toggle("active", m === mode);
      b.setAttribute("aria-pressed", String(m === mode));
    }
  }

  showAuto(auto: boolean): void {
    clear(this.autoBtn);
    this.autoBtn.appendChild(icon(auto ? "pause" : "play", 16));
    this.autoBtn.appendChild(document.createTextNode(auto ? "Auto 5 s" : "Paused"));
    this.autoBtn.classList.toggle("active", auto);
    this.autoBtn.setAttribute("aria-pressed", String(auto));
    this.autoBtn.title = auto ? "Auto-refresh every 5 s: click to pause" : "Auto-refresh paused: click to resume";
  }

  showZoomed(zoomed: boolean): void {
    this.resetZoomBtn.hidden = !zoomed;
  }

  showLoading(loading: boolean): void {
    this.spinner.hidden = !loading;
  }

  /** "Updated 14:03:22" (`lastUpdated`: ms since the epoch). */
  showUpdated(lastUpdated: number | null): void {
    if (lastUpdated === null) setText(this.statusEl, "");
    else setText(this.statusEl, `Updated ${formatClock(lastUpdated / 1000)}`);
    this.statusEl.title = lastUpdated ? new Date(lastUpdated).toString() : "";
  }
}
