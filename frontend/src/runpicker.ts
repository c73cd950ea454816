// The run picker: selected runs as chips in the header, and a drop-down list
// to choose among many runs (a team's log directory holds hundreds): a filter
// box, grouping by experiment folder or host, All / None on what the filter
// shows, and a checkbox per group. Run names are user strings: they are only
// ever inserted as text.

import type { RunInfo } from "./api";
import { save, store } from "./app/store";
import { clear, el, icon } from "./dom";
import { formatAgo } from "./format";
import { naturalCompare } from "./specs";

export type GroupBy = "folder" | "host" | "none";
const GROUP_BYS: { id: GroupBy; label: string }[] = [
  { id: "folder", label: "Folder" },
  { id: "host", label: "Host" },
  { id: "none", label: "No groups" },
];
/** Chips shown in the header; more selected runs are one "+N more" chip. */
const MAX_CHIPS = 6;
const NO_FOLDER = "(top level)";
const NO_HOST = "(unknown host)";

/** The experiment folder of a run: its name's path before the last "/". */
export function folderOf(run: string): string {
  const i = run.lastIndexOf("/");
  return i > 0 ? run.slice(0, i) : NO_FOLDER;
}

/** The host a run was recorded on (its run facts). */
export function hostOf(r: RunInfo): string {
  return r.facts?.hostname ?? r.hostname ?? NO_HOST;
}

export class RunPicker {
  readonly root: HTMLElement;
  private readonly chips: HTMLElement;
  private readonly button: HTMLButtonElement;
  private readonly panel: HTMLElement;
  private readonly list: HTMLElement;
  private readonly filterInput: HTMLInputElement;
  private readonly groupSelect: HTMLSelectElement;
  private readonly shownEl: HTMLElement;
  private readonly countEl: HTMLElement;
  private runs: RunInfo[] = [];
  private colors = new Map<string, string>();
  private selected = new Set<string>();
  private filter = "";
  private groupBy: GroupBy;

  constructor(private readonly onChange: (selected: Set<string>) => void) {
    this.groupBy = store<GroupBy>("pickerGroup", "folder");
    if (!GROUP_BYS.some((g) => g.id === this.groupBy)) this.groupBy = "folder";
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
      attrs: { type: "search", placeholder: "Filter runs", "aria-label": "Filter runs", spellcheck: "false" },
    });
    this.groupSelect = el("select", { class: "picker-group-by", attrs: { "aria-label": "Group runs by" } });
    for (const g of GROUP_BYS) {
      const o = el("option", null, g.label);
      o.value = g.id;
      this.groupSelect.appendChild(o);
    }
    this.groupSelect.value = this.groupBy;
    this.groupSelect.addEventListener("change", () => {
      this.groupBy = this.groupSelect.value as GroupBy;
      save("pickerGroup", this.groupBy);
      this.renderList();
    });
    this.list = el("div", { class: "picker-list", attrs: { role: "listbox", "aria-multiselectable": "true" } });
    const allBtn = el("button", { class: "text-btn picker-all", attrs: { type: "button" }, title: "Select every run the filter shows" }, "All");
    const noneBtn = el("button", { class: "text-btn picker-none-btn", attrs: { type: "button" }, title: "Deselect every run the filter shows" }, "None");
    allBtn.addEventListener("click", () => this.setRuns(this.visibleRuns(), true));
    noneBtn.addEventListener("click", () => this.setRuns(this.visibleRuns(), false));
    this.shownEl = el("div", { class: "picker-shown" });
    this.panel = el(
      "div",
      { class: "picker-panel" },
      el("div", { class: "picker-panel-head" }, this.filterInput, this.groupSelect, allBtn, noneBtn),
      this.shownEl,
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

  /** A substring of the run's name, folder or host, any case. */
  private matches(r: RunInfo): boolean {
    const f = this.filter.trim().toLowerCase();
    if (!f) return true;
    return r.run.toLowerCase().includes(f) || hostOf(r).toLowerCase().includes(f);
  }

  private visibleRuns(): RunInfo[] {
    return this.runs.filter((r) => this.matches(r));
  }

  /** Turns `runs` all on or all off. */
  private setRuns(runs: RunInfo[], on: boolean): void {
    for (const r of runs) {
      if (on) this.selected.add(r.run);
      else this.selected.delete(r.run);
    }
    this.render();
    this.onChange(new Set(this.selected));
  }

  update(runs: RunInfo[], colors: Map<string, string>, selected: Set<string>): void {
    const same =
      runs === this.runs &&
      selected.size === this.selected.size &&
      [...selected].every((r) => this.selected.has(r)) &&
      [...colors].every(([k, v]) => this.colors.get(k) === v);
    this.runs = runs;
    this.colors = colors;
    this.selected = new Set(selected);
    if (!same) this.render();
  }

  private render(): void {
    this.countEl.textContent = `${this.selected.size}/${this.runs.length}`;
    clear(this.chips);
    const chosen = this.runs.filter((r) => this.selected.has(r.run));
    for (const r of chosen.slice(0, MAX_CHIPS)) {
      const chip = el(
        "span",
        { class: "run-chip", title: `${r.run}${r.hostname ? ` on ${r.hostname}` : ""}`, dataset: { run: r.run } },
        el("span", { class: "run-dot", style: { background: this.colors.get(r.run) ?? "#888" } }),
        el("bdi", { class: "run-name" }, r.run),
        r.hostname ? el("span", { class: "run-host" }, r.hostname) : null,
      );
      this.chips.appendChild(chip);
    }
    if (chosen.length > MAX_CHIPS) {
      const more = el("button", { class: "run-chip run-chip-more", attrs: { type: "button" }, title: "Show every selected run" }, `+${chosen.length - MAX_CHIPS} more`);
      more.addEventListener("click", () => this.toggle(true));
      this.chips.appendChild(more);
    }
    if (!this.panel.hidden) this.renderList();
  }

  private groups(runs: RunInfo[]): [string, RunInfo[]][] {
    if (this.groupBy === "none") return [["", runs]];
    const by = new Map<string, RunInfo[]>();
    for (const r of runs) {
      const key = this.groupBy === "folder" ? folderOf(r.run) : hostOf(r);
      let g = by.get(key);
      if (!g) by.set(key, (g = []));
      g.push(r);
    }
    return [...by].sort((a, b) => naturalCompare(a[0], b[0]));
  }

  private renderList(): void {
    clear(this.list);
    const now = Date.now() / 1000;
    const shown = this.visibleRuns();
    this.shownEl.textContent = this.filter.trim()
      ? `${shown.length} of ${this.runs.length} runs match, ${shown.filter((r) => this.selected.has(r.run)).length} selected`
      : `${this.runs.length} runs, ${this.selected.size} selected`;
    for (const [name, runs] of this.groups(shown)) {
      if (name) this.list.appendChild(this.groupRow(name, runs));
      for (const r of runs) this.list.appendChild(this.runRow(r, now));
    }
    if (shown.length === 0) this.list.appendChild(el("div", { class: "picker-none" }, this.runs.length ? "No run matches the filter" : "No runs yet"));
  }

  /** A group's header: its checkbox turns all its (shown) runs on or off. */
  private groupRow(name: string, runs: RunInfo[]): HTMLElement {
    const on = runs.filter((r) => this.selected.has(r.run)).length;
    const box = el("input", { attrs: { type: "checkbox", "aria-label": `Select all runs of ${name}` } });
    box.checked = on === runs.length;
    box.indeterminate = on > 0 && on < runs.length;
    box.addEventListener("change", () => this.setRuns(runs, box.checked));
    return el(
      "label",
      { class: "picker-group", dataset: { group: name } },
      box,
      el("bdi", { class: "picker-group-name" }, name),
      el("span", { class: "picker-group-count" }, `${on}/${runs.length}`),
    );
  }

  private runRow(r: RunInfo, now: number): HTMLElement {
    const box = el("input", { attrs: { type: "checkbox" } });
    box.checked = this.selected.has(r.run);
    box.style.setProperty("accent-color", this.colors.get(r.run) ?? "");
    box.addEventListener("change", () => this.setRuns([r], box.checked));
    const ago = r.last_wall_time_s ? formatAgo(now - r.last_wall_time_s) : "";
    // Within a folder group the folder is said once, in the group's header.
    const shownName = this.groupBy === "folder" && folderOf(r.run) !== NO_FOLDER ? r.run.slice(folderOf(r.run).length + 1) : r.run;
    return el(
      "label",
      { class: `picker-row${this.groupBy === "none" ? "" : " in-group"}`, title: r.run, dataset: { run: r.run }, attrs: { role: "option", "aria-selected": String(box.checked) } },
      box,
      el("span", { class: "run-dot", style: { background: this.colors.get(r.run) ?? "#888" } }),
      el("bdi", { class: "run-name" }, shownName),
      el("span", { class: "run-host" }, this.groupBy === "host" ? "" : r.hostname ?? ""),
      el("span", { class: "run-ago" }, ago),
    );
  }
}
