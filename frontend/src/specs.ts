// What each section shows: a reader of the chart catalogue,
// tb_plugin_ttsmon/charts.json, the one table of which series go in which
// chart, with which unit and axis (the HTML report and the seed's charts read
// the same file through tb_plugin_ttsmon/catalogue.py). esbuild bundles the
// JSON into index.js. `buildCharts` turns the catalogue's rows and the tags
// each selected run has into concrete charts (one line per run, and per GPU;
// one chart per run with a colour per core, layer or stage; one chart per
// user metric).

import type { TagInfo } from "./api";
import catalogueJson from "../../tb_plugin_ttsmon/charts.json";

export type SectionId = "system" | "training" | "inference";
export type YRange = "percent" | "zero" | "auto" | "bool";
export type Role = "line" | "limit" | "points";
export type Layout = "runs" | "items" | "names";
export type Style = "plot" | "lane";

interface SeriesRow {
  tag: string; // may hold {gpu}, {core}, {layer}, {stage}, {name}
  label?: string; // with the same placeholders
  role?: Role;
}

/** One chart of the catalogue (fields as in tb_plugin_ttsmon/catalogue.py's ChartSpec). */
export interface ChartRow {
  id: string;
  section: SectionId;
  title: string;
  description: string;
  /** null: each chart of a "names" layout takes its tags' unit */
  unit: string | null;
  percent_of?: string;
  y?: YRange;
  layout?: Layout;
  style?: Style;
  series: SeriesRow[];
  ref_lines?: { value: number; label: string }[];
  bits?: [number, string][];
}

interface SectionRow {
  id: SectionId;
  title: string;
  empty: string;
  scopes: string[];
  x: "wall" | "step";
}

interface CatalogueDoc {
  step_tag: string;
  sections: SectionRow[];
  charts: ChartRow[];
}

const CATALOGUE = catalogueJson as unknown as CatalogueDoc;

export const SECTIONS: { id: SectionId; title: string; empty: string }[] = CATALOGUE.sections;

const SCOPE_SECTION = new Map<string, SectionRow>();
for (const s of CATALOGUE.sections) for (const scope of s.scopes) SCOPE_SECTION.set(scope, s);

/** The section a tag's data belongs to (what one `series` request per section asks for). */
export function sectionOf(tag: string): SectionId | null {
  return SCOPE_SECTION.get(tag.split("/", 1)[0])?.id ?? null;
}

/** Tags placed on the x axis by their own step in "training step" mode. */
export function usesTrainingStep(tag: string): boolean {
  return SCOPE_SECTION.get(tag.split("/", 1)[0])?.x === "step";
}

export const TRAINING_STEP_TAG = CATALOGUE.step_tag;

/** Dash patterns for several lines of one run in one chart (GPU 1, write, p95 ...). */
export const DASHES: number[][] = [[], [6, 4], [2, 3], [10, 4, 2, 4], [1, 5]];
const LIMIT_DASH = [2, 3];

export interface RunStyle {
  run: string;
  color: string;
  tags: Map<string, TagInfo>;
}

export interface LineDef {
  key: string; // unique within the chart, stable across refreshes
  run: string;
  tag: string;
  /** legend text after the run name ("GPU 0", "read", "p95"); "" for the run alone */
  label: string;
  color: string;
  dash: number[];
  width: number;
  alpha: number;
  /** draw the points only (one value per request) */
  points: boolean;
  /** which marker a points line draws (chart/markers.ts): the k-th points series of a run gets the k-th */
  marker?: number;
}

export interface ChartDef {
  id: string;
  /** the catalogue row's id (`id` adds the run or metric name) */
  rowId: string;
  section: SectionId;
  title: string;
  /** e.g. the run of a per-run chart */
  subtitle?: { text: string; color: string };
  description: string;
  unit: string;
  /** what 100 % is on a percent chart ("one core") */
  percentOf?: string;
  range: YRange;
  style: Style;
  refLines: { value: number; label: string }[];
  bits: [number, string][];
  lines: LineDef[];
  /** shown instead of the plot when there are no lines */
  empty?: string;
}

// -- tag patterns -------------------------------------------------------------

const COMPONENT = "[A-Za-z0-9_.\\-]+";
// As in tb_plugin_ttsmon/metadata.py: an index, or one or more tag components.
const PLACEHOLDER_RE: Record<string, string> = {
  gpu: "\\d+",
  core: "\\d+",
  layer: `${COMPONENT}(?:/${COMPONENT})*`,
  stage: `${COMPONENT}(?:/${COMPONENT})*`,
  name: `${COMPONENT}(?:/${COMPONENT})*`,
};

const regexCache = new Map<string, RegExp>();
function patternRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (!re) {
    const src = pattern
      .split(/(\{\w+\})/)
      .map((part) => {
        const m = /^\{(\w+)\}$/.exec(part);
        if (m) return `(?<${m[1]}>${PLACEHOLDER_RE[m[1]] ?? "[^/]+"})`;
        return part.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
      })
      .join("");
    re = new RegExp(`^${src}$`);
    regexCache.set(pattern, re);
  }
  return re;
}

// Tags some chart names exactly: a pattern row never takes them
// (train/{name} leaves train/loss to the Loss chart).
const EXACT_TAGS = new Set<string>();
for (const c of CATALOGUE.charts) for (const s of c.series) if (!s.tag.includes("{")) EXACT_TAGS.add(s.tag);

/** The placeholder values if `tag` is one of the row's tags, else null. */
function matchRow(row: SeriesRow, tag: string): Record<string, string> | null {
  if (!row.tag.includes("{")) return tag === row.tag ? {} : null;
  if (EXACT_TAGS.has(tag)) return null;
  const m = patternRegex(row.tag).exec(tag);
  return m ? { ...(m.groups ?? {}) } : null;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (all, k: string) => values[k] ?? all);
}

/** Orders "core 2" before "core 10" (as catalogue.natural_key does). */
export function naturalCompare(a: string, b: string): number {
  const pa = a.split(/(\d+)/).filter(Boolean);
  const pb = b.split(/(\d+)/).filter(Boolean);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const da = /^\d+$/.test(pa[i]);
    const db = /^\d+$/.test(pb[i]);
    if (da && db) {
      const d = Number(pa[i]) - Number(pb[i]);
      if (d !== 0) return d;
    } else if (da !== db) {
      return da ? -1 : 1;
    } else if (pa[i] !== pb[i]) {
      return pa[i] < pb[i] ? -1 : 1;
    }
  }
  return pa.length - pb.length;
}

// A run's tags in natural order, sorted once per loaded tag list (not once per chart).
const sortedCache = new WeakMap<Map<string, TagInfo>, string[]>();
function sortedTags(run: RunStyle): string[] {
  let tags = sortedCache.get(run.tags);
  if (!tags) {
    tags = [...run.tags.keys()].sort(naturalCompare);
    sortedCache.set(run.tags, tags);
  }
  return tags;
}

// -- building charts ----------------------------------------------------------

function unitOf(runs: RunStyle[], tag: string, fallback: string | null): string {
  for (const r of runs) {
    const info = r.tags.get(tag);
    if (info) return info.unit;
  }
  return fallback ?? "";
}

function humanize(name: string): string {
  const s = name.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function lineStyle(role: Role, dashIdx: number): Pick<LineDef, "dash" | "width" | "alpha" | "points"> {
  if (role === "limit") return { dash: LIMIT_DASH, width: 1, alpha: 0.7, points: false };
  if (role === "points") return { dash: DASHES[0], width: 0, alpha: 0.55, points: true };
  return { dash: DASHES[dashIdx % DASHES.length], width: 1.5, alpha: 1, points: false };
}

function chartDef(row: ChartRow, id: string, title: string, unit: string, lines: LineDef[]): ChartDef {
  return {
    id,
    rowId: row.id,
    section: row.section,
    title,
    description: row.description,
    unit,
    percentOf: row.percent_of,
    range: row.y ?? "auto",
    style: row.style ?? "plot",
    refLines: row.ref_lines ?? [],
    bits: row.bits ?? [],
    lines,
  };
}

/**
 * One chart for all runs, a colour per run. Several lines of one run are told
 * apart by dash: by series (solid, dashed ...) and, where the run has several
 * GPUs, by GPU within each series.
 */
function runsChart(row: ChartRow, runs: RunStyle[]): ChartDef | null {
  const lines: LineDef[] = [];
  const rank = new Map<SeriesRow, number>();
  for (const s of row.series) if ((s.role ?? "line") === "line") rank.set(s, rank.size);
  // Points of one run share its colour: each points series gets a marker of its own.
  const markers = new Map<SeriesRow, number>();
  for (const s of row.series) if (s.role === "points") markers.set(s, markers.size);
  for (const run of runs) {
    const tags = sortedTags(run);
    const matched = row.series.map((s) => {
      if (!s.tag.includes("{")) return run.tags.has(s.tag) ? [{ tag: s.tag, values: {} }] : [];
      const prefix = s.tag.slice(0, s.tag.indexOf("{"));
      return tags.flatMap((tag) => {
        const values = tag.startsWith(prefix) ? matchRow(s, tag) : null;
        return values ? [{ tag, values }] : [];
      });
    });
    // The distinct placeholder values (GPU indices) of this run's lines.
    const keys = [...new Set(matched.flat().map((m) => Object.values(m.values).join("/")))].sort(naturalCompare);
    const n = keys.length;
    row.series.forEach((s, si) => {
      const vi = rank.get(s) ?? 0;
      for (const { tag, values } of matched[si]) {
        const gi = keys.indexOf(Object.values(values).join("/"));
        lines.push({
          key: `${run.run}\u0000${tag}`,
          run: run.run,
          tag,
          label: fill(s.label ?? "", values),
          color: run.color,
          ...lineStyle(s.role ?? "line", n > 1 ? vi * n + gi : vi),
          marker: markers.get(s),
        });
      }
    });
  }
  if (lines.length === 0) return null;
  return chartDef(row, row.id, row.title, unitOf(runs, lines[0].tag, row.unit), lines);
}

/** One chart per run with one coloured line per core, layer or stage. */
function itemCharts(row: ChartRow, runs: RunStyle[], palette: string[]): ChartDef[] {
  const out: ChartDef[] = [];
  for (const run of runs) {
    const items: { item: string; tag: string; s: SeriesRow; values: Record<string, string> }[] = [];
    for (const tag of run.tags.keys()) {
      for (const s of row.series) {
        const values = matchRow(s, tag);
        if (values) items.push({ item: Object.values(values)[0] ?? tag, tag, s, values });
      }
    }
    if (items.length === 0) continue;
    items.sort((a, b) => naturalCompare(a.item, b.item));
    const def = chartDef(
      row,
      `${row.id}\u0000${run.run}`,
      row.title,
      unitOf([run], items[0].tag, row.unit),
      items.map(({ tag, s, values }, i) => ({
        key: `${run.run}\u0000${tag}`,
        run: run.run,
        tag,
        label: fill(s.label ?? "", values),
        ...lineStyle(s.role ?? "line", 0),
        color: palette[i % palette.length],
      })),
    );
    if (runs.length > 1) def.subtitle = { text: run.run, color: run.color };
    out.push(def);
  }
  return out;
}

/** One chart per {name} (user metrics: train/X solid, val/X dashed). */
function nameCharts(row: ChartRow, runs: RunStyle[]): ChartDef[] {
  const names = new Set<string>();
  for (const run of runs) {
    for (const tag of run.tags.keys()) {
      for (const s of row.series) {
        const name = matchRow(s, tag)?.name;
        if (name !== undefined) names.add(name);
      }
    }
  }
  const out: ChartDef[] = [];
  for (const name of [...names].sort(naturalCompare)) {
    const lines: LineDef[] = [];
    for (const run of runs) {
      row.series.forEach((s, vi) => {
        const tag = fill(s.tag, { name });
        if (!run.tags.has(tag) || matchRow(s, tag) === null) return;
        lines.push({
          key: `${run.run}\u0000${tag}`,
          run: run.run,
          tag,
          label: fill(s.label ?? "", { name }),
          color: run.color,
          ...lineStyle(s.role ?? "line", vi),
        });
      });
    }
    if (lines.length === 0) continue;
    const def = chartDef(row, `${row.id}-${name}`, fill(row.title, { name: humanize(name) }), unitOf(runs, lines[0].tag, row.unit), lines);
    def.description = fill(row.description, { name });
    out.push(def);
  }
  return out;
}

/**
 * The charts of one section for the selected runs, in catalogue order. A
 * chart none of whose tags any run has is left out (GPU charts are replaced
 * by one "no GPU" card; see `gpuCardIndex`).
 */
export function buildCharts(section: SectionId, runs: RunStyle[], palette: string[]): ChartDef[] {
  const out: ChartDef[] = [];
  for (const row of CATALOGUE.charts) {
    if (row.section !== section) continue;
    const layout = row.layout ?? "runs";
    if (layout === "items") out.push(...itemCharts(row, runs, palette));
    else if (layout === "names") out.push(...nameCharts(row, runs));
    else {
      const def = runsChart(row, runs);
      if (def) out.push(def);
    }
  }
  return out;
}

// -- GPUs ---------------------------------------------------------------------

const ROW_INDEX = new Map(CATALOGUE.charts.map((c, i) => [c.id, i]));
const FIRST_GPU_ROW = CATALOGUE.charts.findIndex((c) => c.series.some((s) => s.tag.startsWith("gpu/")));

export function runHasGpu(run: RunStyle): boolean {
  for (const tag of run.tags.keys()) if (/^gpu\/\d+\//.test(tag)) return true;
  return false;
}

/** Where the "no GPU" card goes among a section's charts: where the GPU charts would be. */
export function gpuCardIndex(defs: ChartDef[]): number {
  const at = defs.findIndex((d) => (ROW_INDEX.get(d.rowId) ?? 0) >= FIRST_GPU_ROW);
  return at >= 0 ? at : defs.length;
}

// -- fetching -----------------------------------------------------------------

/** Every tag a section's charts draw for one run (plus what the x axis needs). */
export function tagsToFetch(section: SectionId, run: RunStyle, charts: ChartDef[]): string[] {
  const tags = new Set<string>();
  for (const c of charts) for (const l of c.lines) if (l.run === run.run) tags.add(l.tag);
  if (section === "system" && run.tags.has(TRAINING_STEP_TAG)) tags.add(TRAINING_STEP_TAG);
  return [...tags].sort();
}

/** Whether the run has any data of the section. */
export function runHasSection(run: RunStyle, section: SectionId): boolean {
  for (const tag of run.tags.keys()) if (sectionOf(tag) === section && tag !== TRAINING_STEP_TAG) return true;
  return false;
}
