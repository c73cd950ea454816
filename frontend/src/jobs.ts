// Distributed jobs (issue 11): each rank of a torchrun / TF_CONFIG / SLURM /
// Open MPI job writes its own run, whose facts name the job. A job is its id
// *and* its folder (http_api.md, "Job routes"): two jobs that reused a
// launcher's default id in two folders are two jobs. The run picker groups
// by job and the Job view chooses one; both name a job the same way.

import type { JobMetric, RunInfo } from "./api";
import { formatValue } from "./format";
import { naturalCompare } from "./specs";

/** What the folder of a top-level run is called where a person reads it. */
export const TOP_LEVEL = "(top level)";

/** A run's folder as the API names it: its name before the last "/", "" at the top level. */
export function runFolder(run: string): string {
  const i = run.lastIndexOf("/");
  return i > 0 ? run.slice(0, i) : "";
}

/** A run's place in its job (null outside a job). */
export interface RunJob {
  job: string;
  folder: string;
  rank: number | null;
  localRank: number | null;
  nodeRank: number | null;
  worldSize: number | null;
}

function int(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/**
 * The run's job: the `runs` route's own fields, or (from a server older than
 * issue 11's `runs`) the same fields of its run facts.
 */
export function jobOf(r: RunInfo): RunJob | null {
  const f = r.facts ?? {};
  const job = r.job ?? f.job;
  if (typeof job !== "string" || job === "") return null;
  return {
    job,
    folder: runFolder(r.run),
    rank: int(r.rank ?? f.rank),
    localRank: int(r.local_rank ?? f.local_rank),
    nodeRank: int(r.node_rank ?? f.node_rank),
    worldSize: int(r.world_size ?? f.world_size),
  };
}

/** The key of a job: folder and id (a NUL cannot occur in either). */
export function jobKey(folder: string, job: string): string {
  return `${folder}\u0000${job}`;
}

/** One job as the runs show it. */
export interface JobGroup {
  key: string;
  job: string;
  folder: string;
  /** its runs, by rank (natural order of the name where ranks tie or are missing) */
  runs: RunInfo[];
  /** distinct nodes (node rank, else host) */
  nodes: number;
  /** the launcher's world size (the largest any rank reports) */
  worldSize: number | null;
  /** the newest data of any of its runs */
  lastWallTimeS: number;
}

function byRank(a: RunInfo, b: RunInfo): number {
  const ra = jobOf(a)?.rank ?? Infinity;
  const rb = jobOf(b)?.rank ?? Infinity;
  if (ra !== rb) return ra < rb ? -1 : 1;
  return naturalCompare(a.run, b.run);
}

/** Every job among `runs`, by folder then id (natural order). */
export function jobGroups(runs: RunInfo[]): JobGroup[] {
  const by = new Map<string, { job: string; folder: string; runs: RunInfo[] }>();
  for (const r of runs) {
    const j = jobOf(r);
    if (!j) continue;
    const key = jobKey(j.folder, j.job);
    let g = by.get(key);
    if (!g) by.set(key, (g = { job: j.job, folder: j.folder, runs: [] }));
    g.runs.push(r);
  }
  const out: JobGroup[] = [];
  for (const [key, g] of by) {
    g.runs.sort(byRank);
    const nodes = new Set<string>();
    let worldSize: number | null = null;
    let last = 0;
    for (const r of g.runs) {
      const j = jobOf(r)!;
      nodes.add(j.nodeRank !== null ? `#${j.nodeRank}` : r.facts?.hostname ?? r.hostname ?? r.run);
      if (j.worldSize !== null) worldSize = Math.max(worldSize ?? 0, j.worldSize);
      last = Math.max(last, r.last_wall_time_s ?? 0);
    }
    out.push({ key, job: g.job, folder: g.folder, runs: g.runs, nodes: nodes.size, worldSize, lastWallTimeS: last });
  }
  return out.sort((a, b) => naturalCompare(a.folder, b.folder) || naturalCompare(a.job, b.job));
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

/**
 * "64 ranks on 8 nodes"; "62 of 64 ranks on 8 nodes" while some ranks have
 * not written yet (or their runs are gone).
 */
export function ranksOnNodes(ranks: number, nodes: number, worldSize: number | null): string {
  const r = worldSize !== null && worldSize > ranks ? `${ranks} of ${plural(worldSize, "rank")}` : plural(ranks, "rank");
  return `${r} on ${plural(nodes, "node")}`;
}

/** "exp1 · torchrun-5c1f0e2a": a job's name (the picker's group header, the Job view's choice). */
export function jobName(folder: string, job: string): string {
  return `${folder || TOP_LEVEL} · ${job}`;
}

/** "exp1 · torchrun-5c1f0e2a — 64 ranks on 8 nodes". */
export function jobLabel(g: JobGroup): string {
  return `${jobName(g.folder, g.job)} — ${ranksOnNodes(g.runs.length, g.nodes, g.worldSize)}`;
}

/** A worst rank within this fraction of the job's median does not stand out (31.05 ms against 31 ms). */
export const STANDS_OUT_FRACTION = 0.02;

/**
 * Whether a job metric's worst rank stands out from the job's median: more
 * than 2 % apart, and apart as a person reads them. Where every rank runs at
 * 1 step/s, calling rank 0 "worst" would send people hunting.
 */
export function standsOut(m: JobMetric): boolean {
  const w = m.worst;
  if (w === null) return false;
  if (formatValue(w.value, m.unit) === formatValue(w.job_median, m.unit)) return false;
  if (!Number.isFinite(w.value) || !Number.isFinite(w.job_median)) return true;
  return Math.abs(w.value - w.job_median) > STANDS_OUT_FRACTION * Math.abs(w.job_median);
}
