// One chart section (System, Training, Inference): a collapsible panel with
// a grid of chart cards, its empty state and the "no GPU" card or note.

import { ChartCard } from "../chart/card";
import type { ChartGroup } from "../chart/group";
import { isMany, ManyHeatmap, topLines } from "../chart/many";
import type { LineData, Mark } from "../chart/types";
import { clear, el, setText } from "../dom";
import { devicesText } from "../overview";
import { makePanel } from "../panels/panel";
import { gpuCardIndex, runHasGpu, runHasSection, type ChartDef, type RunStyle, type SectionId } from "../specs";
import type { RunData } from "./rundata";

const SECTION_HINTS: Record<SectionId, string> = {
  system: "The Monitor's sampler writes system/, process/ and gpu/ values every interval.",
  training: "Training values appear once the job calls log_training() or uses ttsmon.keras.MonitorCallback.",
  inference: "Inference values appear once the job calls log_inference() or time_inference().",
};

export class ChartSection {
  readonly root: HTMLElement;
  readonly grid: HTMLElement;
  private readonly note: HTMLElement;
  private readonly empty: HTMLElement;
  private readonly count: HTMLElement;
  private readonly charts = new Map<string, ChartCard>();
  /** the heatmaps under many-series charts, by chart id */
  private readonly heatmaps = new Map<string, ManyHeatmap>();

  constructor(
    readonly id: SectionId,
    title: string,
    private readonly emptyText: string,
    collapsed: Set<string>,
    onToggle: () => void,
  ) {
    const panel = makePanel(id, title, collapsed, onToggle, { bodyClass: "section-body", rootClass: "" });
    this.note = el("div", { class: "section-note" });
    this.note.hidden = true;
    this.grid = el("div", { class: "chart-grid" });
    this.empty = el("div", { class: "section-empty" });
    this.empty.hidden = true;
    panel.body.append(this.note, this.empty, this.grid);
    this.root = panel.root;
    this.count = panel.count;
  }

  /** The cards now shown. */
  cards(): Iterable<ChartCard> {
    return this.charts.values();
  }

  /** Sets each card's marks. */
  setMarks(marksFor: (def: ChartDef) => Mark[]): void {
    for (const card of this.charts.values()) card.setMarks(marksFor(card.def));
  }

  /** Shows `defs` (cards are kept, reordered, created or destroyed by id). */
  render(defs: ChartDef[], styles: RunStyle[], data: Map<string, RunData>, group: ChartGroup): void {
    const hasData = styles.some((r) => runHasSection(r, this.id));
    // Empty states: the whole section, and GPUs within System.
    this.empty.hidden = hasData || styles.length === 0;
    clear(this.empty);
    if (!hasData && styles.length > 0) {
      this.empty.appendChild(el("div", { class: "empty-title" }, this.emptyText));
      this.empty.appendChild(el("div", { class: "empty-hint" }, SECTION_HINTS[this.id]));
    }
    this.root.classList.toggle("is-empty", !hasData);
    setText(this.count, defs.length ? String(defs.length) : "");

    const gpuNote: string[] = [];
    let gpuCard: ChartDef | null = null;
    if (this.id === "system" && hasData) {
      const without = styles.filter((r) => !runHasGpu(r));
      if (without.length === styles.length) {
        const d = data.get(styles[0].run);
        const reason = styles.length === 1 && d ? devicesText(d.overview, d.info).title : "";
        gpuCard = {
          id: "gpu-none",
          rowId: "gpu-none",
          section: "system",
          title: "GPU",
          description: reason,
          unit: "",
          range: "auto",
          style: "plot",
          refLines: [],
          bits: [],
          lines: [],
          empty: styles.length === 1 ? "This run has no GPU" : "None of the selected runs has a GPU",
        };
      } else if (without.length > 0) {
        gpuNote.push(...without.map((r) => r.run));
      }
    }
    this.note.hidden = gpuNote.length === 0;
    clear(this.note);
    if (gpuNote.length) {
      this.note.appendChild(document.createTextNode("No GPU on "));
      gpuNote.forEach((r, i) => {
        if (i) this.note.appendChild(document.createTextNode(", "));
        this.note.appendChild(el("bdi", { class: "run-name" }, r));
      });
    }

    const ordered = [...defs];
    if (gpuCard) ordered.splice(gpuCardIndex(ordered), 0, gpuCard);
    const keep = new Set(ordered.map((d) => d.id));
    for (const [id, card] of this.charts) {
      if (!keep.has(id)) {
        card.destroy();
        this.charts.delete(id);
      }
    }
    for (const [id, hm] of this.heatmaps) {
      if (!keep.has(id) || !isMany(ordered.find((d) => d.id === id)!)) {
        hm.root.remove();
        this.heatmaps.delete(id);
      }
    }
    ordered.forEach((def, i) => {
      let card = this.charts.get(def.id);
      if (!card) {
        card = new ChartCard(def, group);
        this.charts.set(def.id, card);
      }
      if (this.grid.children[i] !== card.root) this.grid.insertBefore(card.root, this.grid.children[i] ?? null);
      if (def.lines.length === 0) {
        card.def = def;
        card.showEmpty(def.empty ?? "No data yet");
        if (def.description) card.root.title = def.description;
      } else if (isMany(def)) {
        // Hundreds of layers or cores: the top K as lines, all of them as a heatmap.
        const all = lineData(def, data);
        const top = topLines(def, all, group.theme.items);
        card.update(top.def, top.lines);
        let hm = this.heatmaps.get(def.id);
        if (!hm) {
          hm = new ManyHeatmap();
          this.heatmaps.set(def.id, hm);
        }
        if (hm.root.parentElement !== card.root) card.root.appendChild(hm.root);
        hm.update(def, all, group.mode, group.theme, (card.root.clientWidth || 620) - 24);
      } else {
        card.update(def, lineData(def, data));
      }
      card.observe();
    });
  }
}

/** The loaded series of a chart's lines (a line whose series did not load is left out). */
function lineData(def: ChartDef, data: Map<string, RunData>): LineData[] {
  const out: LineData[] = [];
  for (const line of def.lines) {
    const d = data.get(line.run);
    const series = d?.series.get(line.tag);
    if (!d || !series) continue;
    out.push({ line, series, clock: d.clock });
  }
  return out;
}
