// The run picker: selected runs as chips in the header, and a drop-down list
// to choose among many runs (a team's log directory holds hundreds): a filter
// box, grouping by experiment folder, host or distributed job, All / None on
// what the filter shows, and a checkbox per group (one click takes a whole
// job). Run names are user strings: they are only ever inserted as text.

import type { RunInfo } from "./api";
import { save, store } from "./app/store";
import { clear, el, icon } from "./dom";
import { formatAgo } from "./format";
import { jobGroups, jobLabel, jobOf, runFolder, TOP_LEVEL, type JobGroup } from "./jobs";
import { naturalCompare } from "./specs";

export type GroupBy = "folder" | "host" | "job" | "none";
const GROUP_BYS: { id: GroupBy; label: string }[] = [
  { id: "folder", label: "Folder" },
  { id: "host", label: "Host" },
  { id: "job", label: "Job" },
  { id: "none", label: "No groups" },
];
/** Chips shown in the header; more selected runs are one "+N more" chip. */
const MAX_CHIPS = 6;
const NO_FOLDER = TOP_LEVEL;
const NO_HOST = "(unknown host)";
/** The group of the runs that are no rank of a job, after the jobs. */
const NO_JOB = "(not in a job)";

/** The experiment folder of a run: its name's path before the last "/". */
export function folderOf(run: string): string {
  return runFolder(run) || NO_FOLDER;
}

/** A group of the list: its key (data-group), header text, runs and (for a job) the job. */
interface Group {
  key: string;
  label: string;
  runs: RunInfo[];
  job?: JobGroup;
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
  /** the user chose the grouping (stored); else it follows the runs (by job when there are jobs) */
  private groupChosen: boolean;
  /** the jobs of `runs`, by key (computed once per `update`) */
  private jobs = new Map<string, JobGroup>();

  constructor(private readonly onChange: (selected: Set<string>) => void) {
    const stored = store<GroupBy | null>("pickerGroup", null);
    this.groupChosen = stored !== null && GROUP_BYS.some((g) => g.id === stored);
    this.groupBy = this.groupChosen ? stored! : "folder";
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
      this.groupChosen = true;
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

  /** A substring of the run's name, folder, host or job, any case. */
  private matches(r: RunInfo): boolean {
    const f = this.filter.trim().toLowerCase();
    if (!f) return true;
    return r.run.toLowerCase().includes(f) || hostOf(r).toLowerCase().includes(f) || (jobOf(r)?.job.toLowerCase().includes(f) ?? false);
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
    if (runs !== this.runs) {
      this.jobs = new Map(jobGroups(runs).map((g) => [g.key, g]));
      // Until the user picks one, the grouping follows the runs: a log
      // directory with distributed jobs opens grouped by job.
      if (!this.groupChosen) {
        this.groupBy = this.jobs.size > 0 ? "job" : "folder";
        this.groupSelect.value = this.groupBy;
      }
    }
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

  private groups(runs: RunInfo[]): Group[] {
    if (this.groupBy === "none") return [{ key: "", label: "", runs }];
    if (this.groupBy === "job") return this.jobGroupsOf(runs);
    const by = new Map<string, RunInfo[]>();
    for (const r of runs) {
      const key = this.groupBy === "folder" ? folderOf(r.run) : hostOf(r);
      let g = by.get(key);
      if (!g) by.set(key, (g = []));
      g.push(r);
    }
    return [...by].sort((a, b) => naturalCompare(a[0], b[0])).map(([key, rs]) => ({ key, label: key, runs: rs }));
  }

  /**
   * One group per job (folder and id), its runs by rank; the header says the
   * whole job (ranks and nodes), whatever the filter shows. Runs outside a
   * job come last.
   */
  private jobGroupsOf(runs: RunInfo[]): Group[] {
    const shown = new Set(runs);
    const out: Group[] = [];
    for (const g of this.jobs.values()) {
      const rs = g.runs.filter((r) => shown.has(r));
      if (rs.length) out.push({ key: g.key, label: jobLabel(g), runs: rs, job: g });
    }
    const loose = runs.filter((r) => jobOf(r) === null);
    if (loose.length) out.push({ key: NO_JOB, label: NO_JOB, runs: loose });
    return out;
  }

  private renderList(): void {
    clear(this.list);
    const now = Date.now() / 1000;
    const shown = this.visibleRuns();
    this.shownEl.textContent = this.filter.trim()
      ? `${shown.length} of ${this.runs.length} runs match, ${shown.filter((r) => this.selected.has(r.run)).length} selected`
      : `${this.runs.length} runs, ${this.selected.size} selected`;
    for (const g of this.groups(shown)) {
      if (g.label) this.list.appendChild(this.groupRow(g));
      for (const r of g.runs) this.list.appendChild(this.runRow(r, now));
    }
    if (shown.length === 0) this.list.appendChild(el("div", { class: "picker-none" }, this.runs.length ? "No run matches the filter" : "No runs yet"));
  }

  /** A group's header: its checkbox turns all its (shown) runs on or off. */
  private groupRow(g: Group): HTMLElement {
    const runs = g.runs;
    const on = runs.filter((r) => this.selected.has(r.run)).length;
    const box = el("input", { attrs: { type: "checkbox", "aria-label": `Select all runs of ${g.label}` } });
    box.checked = on === runs.length;
    box.indeterminate = on > 0 && on < runs.length;
    box.addEventListener("change", () => this.setRuns(runs, box.checked));
    const dataset: Record<string, string> = { group: g.job ? g.label : g.key };
    if (g.job) {
      dataset.job = g.job.job;
      dataset.folder = g.job.folder;
    }
    return el(
      "label",
      { class: `picker-group${g.job ? " job" : ""}`, dataset, title: g.label },
      box,
      el("bdi", { class: "picker-group-name" }, g.label),
      el("span", { class: "picker-group-count" }, `${on}/${runs.length}`),
    );
  }

  private runRow(r: RunInfo, now: number): HTMLElement {
    const box = el("input", { attrs: { type: "checkbox" } });
    box.checked = this.selected.has(r.run);
    box.style.setProperty("accent-color", this.colors.get(r.run) ?? "");
    box.addEventListener("change", () => this.setRuns([r], box.checked));
    const ago = r.last_wall_time_s ? formatAgo(now - r.last_wall_time_s) : "";
    // Within a folder or job group the folder is said once, in the group's header.
    const job = jobOf(r);
    const inFolder = this.groupBy === "folder" || (this.groupBy === "job" && job !== null);
    const shownName = inFolder && runFolder(r.run) ? r.run.slice(runFolder(r.run).length + 1) : r.run;
    const rank = this.groupBy === "job" && job?.rank != null ? el("span", { class: "run-rank" }, `rank ${job.rank}`) : null;
    return el(
      "label",
      { class: `picker-row${this.groupBy === "none" ? "" : " in-group"}`, title: r.run, dataset: { run: r.run }, attrs: { role: "option", "aria-selected": String(box.checked) } },
      box,
      el("span", { class: "run-dot", style: { background: this.colors.get(r.run) ?? "#888" } }),
      el("span", { class: "run-name-cell" }, el("bdi", { class: "run-name" }, shownName), rank),
      el("span", { class: "run-host" }, this.groupBy === "host" ? "" : r.hostname ?? ""),
      el("span", { class: "run-ago" }, ago),
    );
  }
}
