// What the heatmap and correlation panels share: a run choice, and loading
// only while the panel is expanded and on screen.

import { clear, el, setText } from "../dom";
import { makePanel, type Panel } from "./panel";

/** A <select> of the selected runs (hidden when there is only one). */
export class RunSelect {
  readonly root = el("select", { class: "run-select", attrs: { "aria-label": "Run" } });
  value: string | null = null;

  constructor(onChange: () => void) {
    this.root.addEventListener("change", () => {
      this.value = this.root.value;
      onChange();
    });
  }

  update(runs: string[]): void {
    if (this.value === null || !runs.includes(this.value)) this.value = runs[0] ?? null;
    const same = this.root.options.length === runs.length && runs.every((r, i) => this.root.options[i].value === r);
    if (!same) {
      clear(this.root);
      for (const r of runs) {
        const o = el("option", null, r);
        o.value = r;
        this.root.appendChild(o);
      }
    }
    if (this.value !== null) this.root.value = this.value;
    this.root.hidden = runs.length < 2;
  }
}

/** A panel that loads only while it is expanded and on screen. */
export abstract class LazyPanel {
  readonly panel: Panel;
  protected visible = false;
  protected dirty = true;
  protected loading: Promise<void> | null = null;
  protected readonly note = el("div", { class: "panel-note" });

  constructor(id: string, title: string, collapsed: Set<string>, onToggle: () => void) {
    this.panel = makePanel(id, title, collapsed, () => {
      onToggle();
      this.maybeLoad();
    });
    this.note.hidden = true;
    const io = new IntersectionObserver((entries) => {
      for (const e of entries) this.visible = e.isIntersecting;
      this.maybeLoad();
    });
    io.observe(this.panel.root);
  }

  /** Data changed (a refresh): reload now if shown, else once shown. */
  invalidate(): void {
    this.dirty = true;
    this.maybeLoad();
  }

  protected maybeLoad(): void {
    if (!this.dirty || !this.visible || !this.panel.expanded() || this.loading) return;
    this.dirty = false;
    this.loading = this.load()
      .catch((e) => this.showNote(`Could not load: ${String((e as Error).message ?? e)}`))
      .finally(() => {
        this.loading = null;
        if (this.dirty) this.maybeLoad();
      });
  }

  /**
   * Follows `target`'s width: asks the server again when the width wants
   * other buckets than the loaded answer has (by over 10 %), else redraws
   * what it holds. Height changes are ignored.
   */
  protected followWidth(target: HTMLElement, buckets: { wanted: () => number; loaded: () => number | null }, redraw: () => void): void {
    let width = 0;
    new ResizeObserver(() => {
      const w = target.clientWidth;
      if (w === width) return;
      width = w;
      const have = buckets.loaded();
      if (have !== null && Math.abs(buckets.wanted() - have) > Math.max(2, have * 0.1)) this.invalidate();
      else redraw();
    }).observe(target);
  }

  protected showNote(text: string): void {
    setText(this.note, text);
    this.note.hidden = text === "";
  }

  protected abstract load(): Promise<void>;
}
