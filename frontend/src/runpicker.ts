// The run picker: selected runs as chips in the header, and a drop-down list
// with a filter box to choose several runs.

import type { RunInfo } from "./api";
import { clear, el, icon } from "./dom";
import { formatAgo } from "./format";

export class RunPicker {
  readonly root: HTMLElement;
  private readonly chips: HTMLElement;
  private readonly button: HTMLButtonElement;
  private readonly panel: HTMLElement;
  private readonly list: HTMLElement;
  private readonly filterInput: HTMLInputElement;
  private readonly countEl: HTMLElement;
  private runs: RunInfo[] = [];
  private colors = new Map<string, string>();
  private selected = new Set<string>();
  private filter = "";

  constructor(private readonly onChange: (selected: Set<string>) => void) {
    this.countEl = el("span", { class: "picker-count" });
    this.button = el(
      "button",
      { class: "picker-btn", attrs: { type: "button", "aria-haspopup": "listbox", "aria-expanded": "false" }, title: "Choose runs" },
      el("span", null, "Runs"),
      this.countEl,
      icon("chevron", 16),
    );
    this.chips = el("div", { class: "run-chips" });
    this.filterInput = el("input", {
      class: "picker-filter",
      attrs: { type: "search", placeholder: "Filter runs (regex)", "aria-label": "Filter runs", spellcheck: "false" },
    });
    this.list = el("div", { class: "picker-list", attrs: { role: "listbox", "aria-multiselectable": "true" } });
    const allBtn = el("button", { class: "text-btn", attrs: { type: "button" } }, "All");
    const noneBtn = el("button", { class: "text-btn", attrs: { type: "button" } }, "None");
    allBtn.addEventListener("click", () => this.setAll(true));
    noneBtn.addEventListener("click", () => this.setAll(false));
    this.panel = el(
      "div",
      { class: "picker-panel" },
      el("div", { class: "picker-panel-head" }, this.filterInput, allBtn, noneBtn),
      this.list,
    );
    this.panel.hidden = true;
    this.root = el("div", { class: "run-picker" }, this.button, this.panel, this.chips);

    this.button.addEventListener("click", () => this.toggle());
    this.filterInput.addEventListener("input", () => {
      this.filter = this.filterInput.value;
      this.renderList();
    });
    document.addEventListener("mousedown", (e) => {
      if (!this.panel.hidden && !this.root.contains(e.target as Node)) this.toggle(false);
    });
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !this.panel.hidden) this.toggle(false);
    });
  }

  private toggle(open?: boolean): void {
    const show = open ?? this.panel.hidden;
    this.panel.hidden = !show;
    this.button.setAttribute("aria-expanded", String(show));
    if (show) {
      this.renderList();
      this.filterInput.focus();
    }
  }

  private matches(run: string): boolean {
    if (!this.filter) return true;
    try {
      return new RegExp(this.filter, "i").test(run);
    } catch {
      return run.toLowerCase().includes(this.filter.toLowerCase());
    }
  }

  /** Visible runs (after the filter) all on or all off. */
  private setAll(on: boolean): void {
    for (const r of this.runs) {
      if (!this.matches(r.run)) continue;
      if (on) this.selected.add(r.run);
      else this.selected.delete(r.run);
    }
    this.render();
    this.onChange(new Set(this.selected));
  }

  update(runs: RunInfo[], colors: Map<string, string>, selected: Set<string>): void {
    this.runs = runs;
    this.colors = colors;
    this.selected = new Set(selected);
    this.render();
  }

  private render(): void {
    this.countEl.textContent = `${this.selected.size}/${this.runs.length}`;
    clear(this.chips);
    for (const r of this.runs) {
      if (!this.selected.has(r.run)) continue;
      const chip = el(
        "span",
        { class: "run-chip", title: `${r.run}${r.hostname ? ` on ${r.hostname}` : ""}`, dataset: { run: r.run } },
        el("span", { class: "run-dot", style: { background: this.colors.get(r.run) ?? "#888" } }),
        el("bdi", { class: "run-name" }, r.run),
        r.hostname ? el("span", { class: "run-host" }, r.hostname) : null,
      );
      this.chips.appendChild(chip);
    }
    if (!this.panel.hidden) this.renderList();
  }

  private renderList(): void {
    clear(this.list);
    const now = Date.now() / 1000;
    let shown = 0;
    for (const r of this.runs) {
      if (!this.matches(r.run)) continue;
      shown++;
      const box = el("input", { attrs: { type: "checkbox" } });
      box.checked = this.selected.has(r.run);
      box.style.setProperty("accent-color", this.colors.get(r.run) ?? "");
      box.addEventListener("change", () => {
        if (box.checked) this.selected.add(r.run);
        else this.selected.delete(r.run);
        this.render();
        this.onChange(new Set(this.selected));
      });
      const ago = r.last_wall_time_s ? formatAgo(now - r.last_wall_time_s) : "";
      this.list.appendChild(
        el(
          "label",
          { class: "picker-row", attrs: { role: "option", "aria-selected": String(box.checked) } },
          box,
          el("span", { class: "run-dot", style: { background: this.colors.get(r.run) ?? "#888" } }),
          el("bdi", { class: "run-name" }, r.run),
          el("span", { class: "run-host" }, r.hostname ?? ""),
          el("span", { class: "run-ago" }, ago),
        ),
      );
    }
    if (shown === 0) this.list.appendChild(el("div", { class: "picker-none" }, this.runs.length ? "No run matches the filter" : "No runs yet"));
  }
}
