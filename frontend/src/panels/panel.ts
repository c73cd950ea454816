// The one builder of a collapsible section: the chart sections (System,
// Training, Inference) and the panels (Alerts, Profiler, Heatmap,
// Correlation) share its head (chevron, title, count), its tools slot and the
// stored collapsed state.

import { el, icon } from "../dom";

/** A collapsible section: its head, a tools slot beside the head, and a body. */
export interface Panel {
  root: HTMLElement;
  body: HTMLElement;
  count: HTMLElement;
  tools: HTMLElement;
  expanded(): boolean;
}

export interface PanelOptions {
  /** the body's class: "panel-body" (a card, the default) or "section-body" (a grid of chart cards) */
  bodyClass?: string;
  /** extra classes of the root ("panel" for the analytics panels) */
  rootClass?: string;
}

/**
 * Builds a collapsible section `id`. Its collapsed state lives in
 * `collapsed` (shared by every section, stored by the caller in
 * `onToggle`).
 */
export function makePanel(
  id: string,
  title: string,
  collapsed: Set<string>,
  onToggle: (expanded: boolean) => void,
  options: PanelOptions = {},
): Panel {
  const count = el("span", { class: "section-count" });
  const head = el(
    "button",
    { class: "section-head", attrs: { type: "button", "aria-expanded": "true" } },
    icon("chevron", 20),
    el("span", { class: "section-title" }, title),
    count,
  );
  const tools = el("div", { class: "panel-tools" });
  const body = el("div", { class: options.bodyClass ?? "panel-body" });
  const rootClass = `section${options.rootClass === undefined ? " panel" : options.rootClass ? ` ${options.rootClass}` : ""}`;
  const root = el("section", { class: rootClass, dataset: { section: id } }, el("div", { class: "panel-head" }, head, tools), body);
  const apply = () => {
    const c = collapsed.has(id);
    root.classList.toggle("collapsed", c);
    head.setAttribute("aria-expanded", String(!c));
  };
  head.addEventListener("click", () => {
    if (collapsed.has(id)) collapsed.delete(id);
    else collapsed.add(id);
    apply();
    onToggle(!collapsed.has(id));
  });
  apply();
  return { root, body, count, tools, expanded: () => !collapsed.has(id) };
}
