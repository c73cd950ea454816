// What each section shows, as data: a chart is a title, a unit and the tags
// drawn in it; adding a metric is one row. `buildCharts` turns these rows and
// the tags each selected run has into concrete charts (one line per run, and
// per GPU, stage or layer where the tag has one).

import type { TagInfo } from "./api";

export type SectionId = "system" | "training" | "inference";
export type YRange = "percent" | "zero" | "auto";

export const SECTIONS: { id: SectionId; title: string; empty: string }[] = [
  { id: "system", title: "System", empty: "No system samples yet" },
  { id: "training", title: "Training", empty: "No training data yet" },
  { id: "inference", title: "Inference", empty: "No inference data yet" },
];

/** The section a tag's data belongs to (what one `series` request per section asks for). */
export function sectionOf(tag: string): SectionId | null {
  const scope = tag.split("/", 1)[0];
  switch (scope) {
    case "system":
    case "process":
    case "container":
    case "gpu":
    case "tf":
    case "sampler":
      return "system";
    case "train":
    case "val":
    case "gradients":
      return "training";
    case "inference":
      return "inference";
    default:
      return null;
  }
}

/** Tags placed on the x axis by their own step in "training step" mode. */
export function usesTrainingStep(tag: string): boolean {
  const scope = tag.split("/", 1)[0];
  return scope === "train" || scope === "val" || scope === "gradients";
}

export const TRAINING_STEP_TAG = "sampler/training_step";

/** Dash patterns for several lines of one run in one chart (GPU 1, write, p95 ...). */
export const DASHES: number[][] = [[], [6, 4], [2, 3], [10, 4, 2, 4], [1, 5]];

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
}

export interface ChartDef {
  id: string;
  section: SectionId;
  title: string;
  /** e.g. the run of a per-run chart */
  subtitle?: { text: string; color: string };
  description: string;
  unit: string;
  range: YRange;
  refLines: { value: number; label: string }[];
  lines: LineDef[];
  /** shown instead of the plot when there are no lines */
  empty?: string;
}

interface VariantRow {
  tag: string; // may hold {gpu}
  label: string;
  thin?: boolean; // a reference line: total, limit
  points?: boolean;
}

interface ChartRow {
  id: string;
  section: SectionId;
  title: string;
  description: string;
  unit: string;
  range: YRange;
  variants: VariantRow[];
  gpu?: boolean;
  refLines?: { value: number; label: string }[];
  /** shown when no selected run has any of the tags (else the chart is left out) */
  empty?: string;
}

const CHARTS: ChartRow[] = [
  // -- system ------------------------------------------------------------
  {
    id: "cpu", section: "system", title: "CPU utilization", unit: "%", range: "percent",
    description: "All cores of the host (100% = every core busy)",
    variants: [{ tag: "system/cpu_percent", label: "" }],
  },
  {
    id: "memory", section: "system", title: "Memory used", unit: "B", range: "zero",
    description: "Host memory in use (total minus available); process tree RSS dashed",
    variants: [
      { tag: "system/memory_used_bytes", label: "" },
      { tag: "process/rss_bytes", label: "process RSS" },
    ],
  },
  {
    id: "gpu-util", section: "system", title: "GPU utilization", unit: "%", range: "percent", gpu: true,
    description: "Time a kernel was running, per GPU",
    variants: [{ tag: "gpu/{gpu}/utilization_percent", label: "GPU {gpu}" }],
  },
  {
    id: "gpu-memory", section: "system", title: "GPU memory", unit: "B", range: "zero", gpu: true,
    description: "Memory in use per GPU, all processes (total dotted)",
    variants: [
      { tag: "gpu/{gpu}/memory_used_bytes", label: "GPU {gpu}" },
      { tag: "gpu/{gpu}/memory_total_bytes", label: "GPU {gpu} total", thin: true },
    ],
  },
  {
    id: "gpu-temperature", section: "system", title: "GPU temperature", unit: "°C", range: "auto", gpu: true,
    description: "Core temperature per GPU",
    variants: [{ tag: "gpu/{gpu}/temperature_c", label: "GPU {gpu}" }],
  },
  {
    id: "gpu-power", section: "system", title: "GPU power", unit: "W", range: "zero", gpu: true,
    description: "Power draw per GPU (enforced limit dotted)",
    variants: [
      { tag: "gpu/{gpu}/power_w", label: "GPU {gpu}" },
      { tag: "gpu/{gpu}/power_limit_w", label: "GPU {gpu} limit", thin: true },
    ],
  },
  {
    id: "disk", section: "system", title: "Disk I/O", unit: "B/s", range: "zero",
    description: "All disks: read solid, write dashed",
    variants: [
      { tag: "system/disk_read_bytes_per_s", label: "read" },
      { tag: "system/disk_write_bytes_per_s", label: "write" },
    ],
  },
  {
    id: "network", section: "system", title: "Network I/O", unit: "B/s", range: "zero",
    description: "All interfaces but loopback: received solid, sent dashed",
    variants: [
      { tag: "system/net_recv_bytes_per_s", label: "received" },
      { tag: "system/net_sent_bytes_per_s", label: "sent" },
    ],
  },
  {
    id: "container-memory", section: "system", title: "Container memory", unit: "B", range: "zero",
    description: "Memory charged to the cgroup (limit dotted)",
    variants: [
      { tag: "container/memory_used_bytes", label: "" },
      { tag: "container/memory_limit_bytes", label: "limit", thin: true },
    ],
  },
  // -- training ----------------------------------------------------------
  {
    id: "loss", section: "training", title: "Loss", unit: "", range: "auto",
    description: "Training loss solid, validation loss dashed",
    variants: [
      { tag: "train/loss", label: "train" },
      { tag: "val/loss", label: "val" },
    ],
  },
  {
    id: "accuracy", section: "training", title: "Accuracy", unit: "", range: "auto",
    description: "Training accuracy solid, validation accuracy dashed",
    variants: [
      { tag: "train/accuracy", label: "train" },
      { tag: "val/accuracy", label: "val" },
    ],
  },
  {
    id: "learning-rate", section: "training", title: "Learning rate", unit: "", range: "auto",
    description: "Learning rate",
    variants: [{ tag: "train/learning_rate", label: "" }],
  },
  {
    id: "gradient-norm", section: "training", title: "Gradient norm", unit: "", range: "zero",
    description: "Global L2 norm of all gradients",
    variants: [{ tag: "train/gradient_norm", label: "" }],
  },
  {
    id: "steps-per-s", section: "training", title: "Steps per second", unit: "steps/s", range: "zero",
    description: "Training steps per second",
    variants: [{ tag: "train/steps_per_s", label: "" }],
  },
  // -- inference ---------------------------------------------------------
  {
    id: "latency", section: "inference", title: "Latency", unit: "ms", range: "zero",
    description: "Each request (dots); p50 solid, p95 dashed, p99 dotted over the trailing window",
    variants: [
      { tag: "inference/latency_ms", label: "request", points: true },
      { tag: "inference/latency_p50_ms", label: "p50" },
      { tag: "inference/latency_p95_ms", label: "p95" },
      { tag: "inference/latency_p99_ms", label: "p99" },
    ],
  },
  {
    id: "rtf", section: "inference", title: "Real-time factor", unit: "", range: "zero",
    description: "Synthesis time / audio time per request (dots) and window mean; below 1 is faster than real time",
    variants: [
      { tag: "inference/rtf", label: "request", points: true },
      { tag: "inference/rtf_mean", label: "mean" },
    ],
    refLines: [{ value: 1, label: "real time" }],
  },
  {
    id: "requests-per-s", section: "inference", title: "Requests per second", unit: "requests/s", range: "zero",
    description: "Requests finished per second over the trailing window",
    variants: [{ tag: "inference/requests_per_s", label: "" }],
  },
  {
    id: "audio-per-s", section: "inference", title: "Audio seconds per second", unit: "audio s/s", range: "zero",
    description: "Audio produced per wall-clock second over the trailing window",
    variants: [{ tag: "inference/audio_s_per_s", label: "" }],
  },
];

const KNOWN_TRAIN = new Set(["loss", "accuracy", "learning_rate", "gradient_norm", "steps_per_s"]);
const KNOWN_VAL = new Set(["loss", "accuracy"]);

/** Series colours for per-run charts with one line per layer or stage. */
function itemColor(palette: string[], i: number): string {
  return palette[i % palette.length];
}

function gpuIndices(run: RunStyle): number[] {
  const out = new Set<number>();
  for (const tag of run.tags.keys()) {
    const m = /^gpu\/(\d+)\//.exec(tag);
    if (m) out.add(Number(m[1]));
  }
  return [...out].sort((a, b) => a - b);
}

export function runHasGpu(run: RunStyle): boolean {
  return gpuIndices(run).length > 0;
}

function unitOf(runs: RunStyle[], tag: string, fallback: string): string {
  for (const r of runs) {
    const info = r.tags.get(tag);
    if (info) return info.unit;
  }
  return fallback;
}

function humanize(name: string): string {
  const s = name.replace(/_/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * The charts of one section for the selected runs, in display order. A
 * chart none of whose tags any run has is left out (GPU charts are replaced
 * by one "no GPU" card; see `gpuEmptyMessage`).
 */
export function buildCharts(section: SectionId, runs: RunStyle[], palette: string[]): ChartDef[] {
  const out: ChartDef[] = [];
  for (const row of CHARTS) {
    if (row.section !== section) continue;
    const lines: LineDef[] = [];
    // Dashes tell a run's lines apart: the first full line is solid, the next dashed ...
    const lineRank = new Map<VariantRow, number>();
    for (const v of row.variants) if (!v.thin && !v.points) lineRank.set(v, lineRank.size);
    for (const run of runs) {
      const gpus = row.gpu ? gpuIndices(run) : [null];
      row.variants.forEach((v) => {
        const vi = lineRank.get(v) ?? 0;
        gpus.forEach((gpu, gi) => {
          const tag = gpu === null ? v.tag : v.tag.replace("{gpu}", String(gpu));
          if (!run.tags.has(tag)) return;
          const label = gpu === null ? v.label : v.label.replace("{gpu}", String(gpu));
          // Several GPUs: the GPU picks the dash; otherwise the variant does.
          const dashIdx = row.gpu && gpus.length > 1 ? gi : v.thin ? 0 : vi;
          lines.push({
            key: `${run.run}\u0000${tag}`,
            run: run.run,
            tag,
            label,
            color: run.color,
            dash: v.thin ? [2, 3] : DASHES[dashIdx % DASHES.length],
            width: v.thin ? 1 : v.points ? 0 : 1.5,
            alpha: v.thin ? 0.7 : v.points ? 0.55 : 1,
            points: !!v.points,
          });
        });
      });
    }
    if (lines.length === 0) continue;
    out.push({
      id: row.id,
      section,
      title: row.title,
      description: row.description,
      unit: unitOf(runs, lines[0].tag, row.unit),
      range: row.range,
      refLines: row.refLines ?? [],
      lines,
    });
  }

  if (section === "training") {
    out.push(...otherMetricCharts(runs));
    out.push(...perRunItemCharts(runs, palette, {
      idPrefix: "gradient-layers",
      title: "Gradient norm per layer",
      description: "L2 norm of each layer's gradients",
      pattern: /^gradients\/(.+)\/norm$/,
      section: "training",
      unit: "",
      range: "zero",
    }));
  }
  if (section === "inference") {
    out.push(...perRunItemCharts(runs, palette, {
      idPrefix: "stage-latency",
      title: "Latency per stage",
      description: "Latency of each inference stage per request",
      pattern: /^inference\/stage\/(.+)\/latency_ms$/,
      section: "inference",
      unit: "ms",
      range: "zero",
    }));
  }
  return out;
}

/** train/{name} and val/{name} beyond the named charts: one chart per name. */
function otherMetricCharts(runs: RunStyle[]): ChartDef[] {
  const names = new Set<string>();
  for (const run of runs) {
    for (const tag of run.tags.keys()) {
      const m = /^(train|val)\/([^/]+)$/.exec(tag);
      if (!m) continue;
      if ((m[1] === "train" && KNOWN_TRAIN.has(m[2])) || (m[1] === "val" && KNOWN_VAL.has(m[2]))) continue;
      names.add(m[2]);
    }
  }
  const out: ChartDef[] = [];
  for (const name of [...names].sort()) {
    const lines: LineDef[] = [];
    for (const run of runs) {
      ["train", "val"].forEach((scope, vi) => {
        const tag = `${scope}/${name}`;
        if (!run.tags.has(tag)) return;
        lines.push({
          key: `${run.run}\u0000${tag}`, run: run.run, tag, label: scope, color: run.color,
          dash: DASHES[vi], width: 1.5, alpha: 1, points: false,
        });
      });
    }
    out.push({
      id: `metric-${name}`,
      section: "training",
      title: humanize(name),
      description: `train/${name} solid, val/${name} dashed`,
      unit: unitOf(runs, lines[0].tag, ""),
      range: "auto",
      refLines: [],
      lines,
    });
  }
  return out;
}

/** One chart per run with one coloured line per layer / stage. */
function perRunItemCharts(
  runs: RunStyle[],
  palette: string[],
  o: { idPrefix: string; title: string; description: string; pattern: RegExp; section: SectionId; unit: string; range: YRange },
): ChartDef[] {
  const out: ChartDef[] = [];
  for (const run of runs) {
    const items: [string, string][] = [];
    for (const tag of run.tags.keys()) {
      const m = o.pattern.exec(tag);
      if (m) items.push([m[1], tag]);
    }
    if (items.length === 0) continue;
    items.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    out.push({
      id: `${o.idPrefix}\u0000${run.run}`,
      section: o.section,
      title: o.title,
      subtitle: runs.length > 1 ? { text: run.run, color: run.color } : undefined,
      description: o.description,
      unit: o.unit,
      range: o.range,
      refLines: [],
      lines: items.map(([item, tag], i) => ({
        key: `${run.run}\u0000${tag}`, run: run.run, tag, label: item,
        color: itemColor(palette, i), dash: [], width: 1.5, alpha: 1, points: false,
      })),
    });
  }
  return out;
}

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
