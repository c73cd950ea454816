// Client of the plugin's HTTP API (tb_plugin_ttsmon/plugin/http_api.md).
//
// Every URL is relative: the iframe's <base> is `<root>/data/plugin/ttsmon/`,
// so `./runs` works under any --path_prefix.

/** One row of a series as sent: [wall_time_s, step, value]; value may be "NaN"/"Infinity"/"-Infinity". */
export type RawRow = [number, number, number | string];

export interface RunInfo {
  run: string;
  hostname: string | null;
  started_at_s: number | null;
  last_wall_time_s: number | null;
  restarts: number;
  groups: string[];
  facts: Facts | null;
  /** its distributed job (issue 11; null outside a job, absent from older servers: see jobs.ts) */
  job?: string | null;
  rank?: number | null;
  local_rank?: number | null;
  node_rank?: number | null;
  world_size?: number | null;
}

export interface Facts {
  hostname?: string;
  pid?: number;
  started_at_s?: number;
  versions?: Record<string, string | null>;
  host?: {
    cpu_count_logical?: number;
    cpu_count_physical?: number;
    cpu_model?: string;
    memory_total_bytes?: number;
    swap_total_bytes?: number;
  };
  nvml?: {
    available?: boolean;
    reason?: string;
    driver_version?: string;
    devices?: { index: number; name?: string; memory_total_bytes?: number; power_limit_w?: number }[];
  };
  tensorflow_devices?: { gpus?: unknown[] };
  recorder?: { interval_s?: number; writer?: string; version?: string };
  /** a rank of a distributed job (docs/format.md, "Distributed jobs") */
  job?: string;
  rank?: number;
  local_rank?: number;
  node_rank?: number;
  world_size?: number;
  distributed?: { launcher?: string; local_world_size?: number; samples_node?: boolean; rank_dir?: boolean };
  [key: string]: unknown;
}

export interface ModelFacts {
  name?: string;
  class?: string;
  framework?: string;
  parameter_count?: number;
  trainable_parameter_count?: number;
  size_bytes?: number;
  layer_count?: number;
  [key: string]: unknown;
}

export interface TagInfo {
  tag: string;
  group: string;
  unit: string;
  kind: string;
  description?: string;
  max_step?: number;
  max_wall_time_s?: number;
}

export interface LatestValue {
  value: number;
  unit: string;
  wall_time_s: number;
  step: number;
}

export interface Overview {
  run: string;
  facts: Facts | null;
  model: ModelFacts | null;
  latest: Record<string, LatestValue>;
  sample_count: number;
  first_wall_time_s: number | null;
  last_wall_time_s: number | null;
  duration_s: number | null;
  training: { last_step: number | null; loss: number | null };
  inference: { requests: number };
}

/** A series as the charts use it: parallel arrays, non-finite values kept as numbers. */
export interface Series {
  tag: string;
  unit: string;
  kind: string;
  total: number;
  wall: Float64Array;
  step: Float64Array;
  value: Float64Array;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Turns the API's "NaN"/"Infinity"/"-Infinity" strings back into numbers. */
export function toNumber(v: unknown): number {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  if (v === null || v === undefined) return NaN;
  const n = Number(v);
  return n;
}

async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const resp = await fetch(path, { signal, headers: { Accept: "application/json" } });
  if (!resp.ok) {
    let text = "";
    try {
      text = (await resp.text()).trim();
    } catch {
      // the body is only for the message
    }
    throw new HttpError(resp.status, `${resp.status} ${resp.statusText}: ${text || path}`);
  }
  return (await resp.json()) as T;
}

function query(params: [string, string | number][]): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join("&");
}

export async function fetchRuns(signal?: AbortSignal): Promise<RunInfo[]> {
  const body = await getJson<{ runs: RunInfo[] }>("./runs", signal);
  return body.runs ?? [];
}

export async function fetchTags(run: string, signal?: AbortSignal): Promise<TagInfo[]> {
  const body = await getJson<{ tags: TagInfo[] }>(`./tags?${query([["run", run]])}`, signal);
  return body.tags ?? [];
}

export async function fetchOverview(run: string, signal?: AbortSignal): Promise<Overview> {
  return getJson<Overview>(`./overview?${query([["run", run]])}`, signal);
}

/** One run's data version (`GET versions`): it changes whenever any of its series gains a point. */
export interface RunVersion {
  version: string;
  last_wall_time_s: number | null;
}

/**
 * Every run's data version. The answer carries an ETag and `Cache-Control:
 * no-cache`, so the browser's HTTP cache revalidates it with If-None-Match
 * on its own: an idle refresh is one 304 (hence no `cache: "no-store"`).
 */
export async function fetchVersions(signal?: AbortSignal): Promise<Map<string, RunVersion>> {
  const body = await getJson<{ runs: Record<string, RunVersion> }>("./versions", signal);
  return new Map(Object.entries(body.runs ?? {}));
}

/** One series of a `series` / `series_batch` answer. */
export interface SeriesPart extends Series {
  /** the step of the series' last kept point on the server (null: no points) */
  lastStep: number | null;
  /** the rows replace what the client held (the series was reset, or asked whole) */
  reset: boolean;
}

interface RawSeries {
  unit: string;
  kind: string;
  total: number;
  rows: RawRow[];
  last_step?: number | null;
  since_step?: number;
  reset?: boolean;
}

function parseSeries(tag: string, s: RawSeries): SeriesPart {
  const n = s.rows.length;
  const wall = new Float64Array(n);
  const step = new Float64Array(n);
  const value = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const r = s.rows[j];
    wall[j] = r[0];
    step[j] = r[1];
    value[j] = toNumber(r[2]);
  }
  const lastStep = s.last_step ?? (n ? step[n - 1] : null);
  return { tag, unit: s.unit, kind: s.kind, total: s.total, wall, step, value, lastStep, reset: s.since_step === undefined || s.reset === true };
}

/** One run's part of a `series_batch` request. */
export interface BatchEntry {
  run: string;
  tags: string[];
  points: number;
  /** tag -> the last step the client holds: only newer rows come */
  since_step?: Record<string, number>;
}

/** The API's limits on one `series_batch` request. */
export const MAX_BATCH_ENTRIES = 500;
export const MAX_BATCH_TAGS = 20_000;

/**
 * Series of many runs in one `POST series_batch` (split only where the
 * API's limits demand). Results come back per entry, in order: a map of
 * series, or an error message for a run or tag that vanished.
 */
export async function fetchSeriesBatch(entries: BatchEntry[], signal?: AbortSignal): Promise<(Map<string, SeriesPart> | string)[]> {
  // Entries of more than MAX_TAGS_PER_REQUEST tags are split first.
  const flat: { entry: BatchEntry; index: number }[] = [];
  entries.forEach((e, index) => {
    for (let i = 0; i < e.tags.length; i += MAX_TAGS_PER_REQUEST) {
      const tags = e.tags.slice(i, i + MAX_TAGS_PER_REQUEST);
      const since = e.since_step ? Object.fromEntries(tags.filter((t) => t in e.since_step!).map((t) => [t, e.since_step![t]])) : undefined;
      flat.push({ entry: { run: e.run, tags, points: e.points, ...(since && Object.keys(since).length ? { since_step: since } : {}) }, index });
    }
  });
  const out: (Map<string, SeriesPart> | string)[] = entries.map(() => new Map<string, SeriesPart>());
  let start = 0;
  while (start < flat.length) {
    let end = start;
    let tags = 0;
    while (end < flat.length && end - start < MAX_BATCH_ENTRIES && tags + flat[end].entry.tags.length <= MAX_BATCH_TAGS) {
      tags += flat[end].entry.tags.length;
      end++;
    }
    const chunk = flat.slice(start, end);
    const resp = await fetch("./series_batch", {
      method: "POST",
      signal,
      headers: { Accept: "application/json" },
      body: new URLSearchParams({ requests: JSON.stringify(chunk.map((c) => c.entry)) }),
    });
    if (!resp.ok) {
      const text = (await resp.text().catch(() => "")).trim();
      throw new HttpError(resp.status, `${resp.status} ${resp.statusText}: ${text || "series_batch"}`);
    }
    const body = (await resp.json()) as { results: ({ series?: Record<string, RawSeries>; error?: string } | null)[] };
    chunk.forEach((c, i) => {
      const result = body.results?.[i];
      const into = out[c.index];
      if (typeof into === "string") return;
      if (!result || result.error !== undefined || !result.series) {
        out[c.index] = result?.error ?? "no answer";
        return;
      }
      for (const [tag, s] of Object.entries(result.series)) into.set(tag, parseSeries(tag, s));
    });
    start = end;
  }
  return out;
}

/** The API's limit on tags per `series` request. */
export const MAX_TAGS_PER_REQUEST = 200;

/** Fetches several series of one run in one request (several if > MAX_TAGS_PER_REQUEST tags). */
export async function fetchSeries(
  run: string,
  tags: string[],
  points: number,
  signal?: AbortSignal,
): Promise<Map<string, Series>> {
  const out = new Map<string, Series>();
  for (let i = 0; i < tags.length; i += MAX_TAGS_PER_REQUEST) {
    const chunk = tags.slice(i, i + MAX_TAGS_PER_REQUEST);
    const params: [string, string | number][] = [["run", run]];
    for (const t of chunk) params.push(["tag", t]);
    params.push(["points", points]);
    const body = await getJson<{ series: Record<string, RawSeries> }>(`./series?${query(params)}`, signal);
    for (const [tag, s] of Object.entries(body.series ?? {})) out.set(tag, parseSeries(tag, s));
  }
  return out;
}

/** URL of the server-side export of a whole run (every point kept). */
export function exportUrl(run: string, format: "csv" | "json"): string {
  return `./export?${query([
    ["run", run],
    ["format", format],
  ])}`;
}

// -- analytics routes (http_api.md, "Analytics routes") -----------------------

export type Severity = "info" | "warning" | "critical";

export interface AlertEvent {
  wall_time_s: number;
  training_step: number | null;
  rule: string;
  tag: string;
  op: string;
  threshold: number | null;
  value: number | string | null;
  for_s: number | null;
  severity: Severity;
  state: "firing" | "resolved";
  message: string;
}

export interface Anomaly {
  tag: string;
  type: string;
  severity: Severity;
  start_wall_time_s: number;
  end_wall_time_s: number;
  start_step: number | null;
  end_step: number | null;
  score: number | string | null;
  value: number | string | null;
  message: string;
}

export interface HeatmapRow {
  tag: string;
  unit: string;
  label: string;
  scale: "limit" | "range";
  min: number | null;
  max: number | null;
  limit: number | null;
  values: (number | string | null)[];
  normalized: (number | null)[];
}

export interface Heatmap {
  run: string;
  start_wall_time_s: number | null;
  end_wall_time_s: number | null;
  bucket_s: number | null;
  rows: HeatmapRow[];
}

export interface Correlation {
  run: string;
  tags: string[];
  grid_s: number | null;
  pearson: (number | null)[][];
  spearman: (number | null)[][];
  n: number[][];
}

export interface Scatter {
  run: string;
  x: string;
  y: string;
  x_unit: string;
  y_unit: string;
  grid_s: number | null;
  n: number;
  pearson: number | null;
  spearman: number | null;
  points: [number, number, number][];
}

export interface Finding {
  id: string;
  severity: Severity;
  title: string;
  text: string;
  numbers?: Record<string, number>;
}

/** Analytics routes this server answered 404 for (an older backend): asked once per page. */
export const missingRoutes = new Set<string>();

/** GET an analytics route; null (and remembered) where the server has no such route. */
async function getAnalytics<T>(route: string, params: [string, string | number][], signal?: AbortSignal): Promise<T | null> {
  if (missingRoutes.has(route)) return null;
  try {
    return await getJson<T>(`./${route}?${query(params)}`, signal);
  } catch (e) {
    // TensorBoard answers an unknown plugin route with its plain-text 404;
    // the plugin's own 404s (unknown run, tag or job) carry a JSON or text
    // body naming it, so only a bare "Not Found" marks the route as missing.
    if (e instanceof HttpError && e.status === 404 && !/run|tag|job/i.test(e.message.replace(/^404 [^:]*:/, ""))) {
      missingRoutes.add(route);
      return null;
    }
    throw e;
  }
}

export async function fetchAlerts(run: string, signal?: AbortSignal): Promise<AlertEvent[] | null> {
  const body = await getAnalytics<{ alerts: AlertEvent[] }>("alerts", [["run", run]], signal);
  return body ? body.alerts ?? [] : null;
}

export async function fetchAnomalies(run: string, signal?: AbortSignal): Promise<Anomaly[] | null> {
  const body = await getAnalytics<{ anomalies: Anomaly[] }>("anomalies", [["run", run]], signal);
  return body ? body.anomalies ?? [] : null;
}

export async function fetchFindings(run: string, signal?: AbortSignal): Promise<Finding[] | null> {
  const body = await getAnalytics<{ findings: Finding[] }>("findings", [["run", run]], signal);
  return body ? body.findings ?? [] : null;
}

export async function fetchHeatmap(run: string, buckets: number, signal?: AbortSignal): Promise<Heatmap | null> {
  return getAnalytics<Heatmap>("heatmap", [["run", run], ["buckets", buckets]], signal);
}

export async function fetchCorrelation(run: string, tags: string[], signal?: AbortSignal): Promise<Correlation | null> {
  return getAnalytics<Correlation>("correlation", [["run", run], ...tags.map((t): [string, string] => ["tag", t])], signal);
}

export async function fetchScatter(run: string, x: string, y: string, points: number, signal?: AbortSignal): Promise<Scatter | null> {
  return getAnalytics<Scatter>("scatter", [["run", run], ["x", x], ["y", y], ["points", points]], signal);
}

// -- profiler route (http_api.md, "Profiler routes") ---------------------------

export type ProfileTool = "trace_viewer" | "memory_profile" | "framework_op_stats" | "overview_page";

export interface ProfileHost {
  host: string;
  file?: string | null;
  size_bytes?: number | null;
  /** ok, empty (a 0-byte file), unreadable (with error) or pending */
  status: string;
  error?: string | null;
}

export interface ProfileOp {
  name: string;
  type?: string | null;
  self_time_ms?: number | string | null;
  self_time_percent?: number | string | null;
  occurrences?: number | null;
}

export interface ProfileSuggestion {
  id?: string;
  severity?: Severity;
  text: string;
}

export interface ProfileSummary {
  host?: string | null;
  step_time_ms_mean?: number | string | null;
  step_time_ms_stddev?: number | string | null;
  steps?: number | null;
  input_ms_mean?: number | string | null;
  compute_ms_mean?: number | string | null;
  other_ms_mean?: number | string | null;
  input_percent?: number | string | null;
  verdict?: string | null;
  top_ops?: ProfileOp[] | null;
  peak_memory_bytes?: number | string | null;
  suggestions?: ProfileSuggestion[] | null;
}

export interface ProfileSession {
  session: string;
  trigger?: string | null;
  start_wall_time_s?: number | null;
  stop_wall_time_s?: number | null;
  start_step?: number | null;
  stop_step?: number | null;
  hosts?: ProfileHost[] | null;
  summary: ProfileSummary | null;
  links?: Partial<Record<ProfileTool, string>> | null;
}

export interface Profiles {
  run: string;
  xprof: { available: boolean; version?: string | null; reason?: string | null } | null;
  sessions: ProfileSession[];
}

/** The run's profiler sessions; null where the server has no `profiles` route. */
export async function fetchProfiles(run: string, signal?: AbortSignal): Promise<Profiles | null> {
  const body = await getAnalytics<Profiles>("profiles", [["run", run]], signal);
  return body ? { run: body.run ?? run, xprof: body.xprof ?? null, sessions: body.sessions ?? [] } : null;
}

// -- job route (http_api.md, "Job routes (issue 11)") --------------------------

/** One rank of a job. */
export interface JobRank {
  rank: number;
  run: string;
  host: string;
  node_rank: number | null;
  local_rank: number | null;
  /** it wrote its node's host and GPU series */
  samples_node: boolean;
  /** NVML indices of the GPUs its processes use */
  gpus: number[];
  last_step: number | null;
  last_wall_time_s: number | null;
  last_step_wall_time_s: number | null;
}

/** The rank whose median over the run is the worst, against the median of all ranks' medians. */
export interface JobWorst {
  rank: number;
  run: string;
  value: number;
  job_median: number;
}

/** One job metric across the ranks; NaN where a rank (or every rank) has no value in a bucket. */
export interface JobMetric {
  id: string;
  tag: string;
  title: string;
  unit: string;
  /** which end is the worst rank: "high" (step time) or "low" (steps per second) */
  worse: string;
  description: string;
  /** one row per entry of `ranks`, one column per bucket */
  values: Float64Array[];
  min: Float64Array;
  median: Float64Array;
  max: Float64Array;
  worst: JobWorst | null;
}

/** A metric of the per-node GPU small multiples. */
export interface JobGpuMetric {
  id: string;
  title: string;
  unit: string;
  /** the y range: "percent", "zero" or "auto" (as the catalogue's charts) */
  y: string;
  description: string;
}

export interface JobGpu {
  gpu: number;
  /** the ranks whose processes use it */
  ranks: number[];
  memory_total_bytes: number | null;
  /** gpu metric id -> bucketed means (NaN: no sample) */
  series: Record<string, Float64Array>;
}

export interface JobNode {
  node_rank: number | null;
  host: string;
  /** the run of the rank that sampled the node */
  run: string;
  gpus: JobGpu[];
}

export interface JobFinding extends Finding {
  rank: number | null;
  run: string | null;
}

/** The job view (`GET job`), its per-bucket arrays as numbers. */
export interface JobView {
  job: string;
  folder: string;
  world_size: number | null;
  node_count: number;
  start_wall_time_s: number | null;
  end_wall_time_s: number | null;
  bucket_s: number | null;
  buckets: number;
  ranks: JobRank[];
  metrics: JobMetric[];
  gpu_metrics: JobGpuMetric[];
  nodes: JobNode[];
  findings: JobFinding[];
}

type RawNumbers = (number | string | null)[];

interface RawJobView extends Omit<JobView, "metrics" | "nodes"> {
  metrics: (Omit<JobMetric, "values" | "min" | "median" | "max" | "worst"> & {
    values: RawNumbers[];
    min: RawNumbers;
    median: RawNumbers;
    max: RawNumbers;
    worst: { rank: number; run: string; value: number | string; job_median: number | string } | null;
  })[];
  nodes: (Omit<JobNode, "gpus"> & { gpus: (Omit<JobGpu, "series"> & { series: Record<string, RawNumbers> })[] })[];
}

/** A per-bucket array as numbers: null (no value) and "NaN" are NaN, "Infinity" is Infinity. */
function numbers(a: RawNumbers | null | undefined, n: number): Float64Array {
  const out = new Float64Array(n).fill(NaN);
  if (!a) return out;
  for (let i = 0; i < Math.min(n, a.length); i++) out[i] = toNumber(a[i]);
  return out;
}

function parseJob(raw: RawJobView): JobView {
  const metrics = raw.metrics ?? [];
  const buckets = Math.max(raw.buckets ?? 0, ...metrics.map((m) => m.median?.length ?? 0));
  const ranks = raw.ranks ?? [];
  return {
    ...raw,
    buckets,
    ranks,
    metrics: metrics.map((m) => ({
      ...m,
      values: ranks.map((_, r) => numbers(m.values?.[r], buckets)),
      min: numbers(m.min, buckets),
      median: numbers(m.median, buckets),
      max: numbers(m.max, buckets),
      worst: m.worst ? { ...m.worst, value: toNumber(m.worst.value), job_median: toNumber(m.worst.job_median) } : null,
    })),
    gpu_metrics: raw.gpu_metrics ?? [],
    nodes: (raw.nodes ?? []).map((n) => ({
      ...n,
      gpus: (n.gpus ?? []).map((g) => ({
        ...g,
        ranks: g.ranks ?? [],
        series: Object.fromEntries(Object.entries(g.series ?? {}).map(([k, v]) => [k, numbers(v, buckets)])),
      })),
    })),
    findings: raw.findings ?? [],
  };
}

/**
 * The job view of job `job` in `folder` ("" for top-level runs) with at most
 * `buckets` time buckets; null where the server has no `job` route (older
 * than issue 11).
 */
export async function fetchJob(job: string, folder: string, buckets: number, signal?: AbortSignal): Promise<JobView | null> {
  const raw = await getAnalytics<RawJobView>(
    "job",
    [
      ["job", job],
      ["folder", folder],
      ["buckets", buckets],
    ],
    signal,
  );
  return raw ? parseJob(raw) : null;
}

// -- serving route (http_api.md, "Serving routes (issue 12)") ------------------

/** One side of the speaker-prompt cache: cold (a miss) or warm (a hit). */
export interface ServingCacheSide {
  requests: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  ttfa_p50_ms: number | null;
}

/** Percentiles over the whole run (null where the run has no such value). */
export interface ServingSummary {
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
  latency_p99_ms: number | null;
  rtf_p50: number | null;
  rtf_p95: number | null;
  ttfa_p50_ms: number | null;
  ttfa_p95_ms: number | null;
  audio_s_total: number | null;
  /** each stage's share of all the requests' time (0..1) */
  stage_share: Record<string, number | null>;
}

/**
 * The serving view of a run (`GET serving`): per time bucket, each stage's
 * share of the latency, time-to-first-audio percentiles and a latency
 * histogram; over the run, cold against warm, the percentiles and the
 * serving findings. Per-bucket values are numbers or null (no request in
 * the bucket, or a non-finite value).
 */
export interface ServingView {
  run: string;
  start_wall_time_s: number;
  end_wall_time_s: number;
  bucket_s: number;
  buckets: number;
  requests: number;
  /** largest share first, "unattributed" last */
  stages: string[];
  /** stage -> its share (0..1) of the bucket's summed latency */
  stage_share: Record<string, (number | null)[]>;
  /** stage -> its mean per request in the bucket (ms) */
  stage_ms: Record<string, (number | null)[]>;
  requests_per_bucket: number[];
  /** empty lists when the run has no `inference/ttfa_ms` */
  ttfa: { p50_ms: (number | null)[]; p95_ms: (number | null)[] };
  /** log-spaced bins (`edges_ms`, one more than the bins) x one row of counts per bucket */
  latency_histogram: { edges_ms: number[]; counts: number[][] };
  /** null when no request said whether its speaker prompt was cached */
  cache: { cold: ServingCacheSide; warm: ServingCacheSide; cold_over_warm_p50: number | null } | null;
  summary: ServingSummary;
  findings: Finding[];
}

type RawValue = number | string | null | undefined;

/** A value of the answer as a number; null stays null (no value), "NaN"/"Infinity" become numbers. */
function optNumber(v: RawValue): number | null {
  return v === null || v === undefined ? null : toNumber(v);
}

/** A per-bucket list for drawing: `n` entries, null where there is no finite value. */
function bucketValues(a: RawValue[] | null | undefined, n: number): (number | null)[] {
  const out: (number | null)[] = new Array(n).fill(null);
  if (!a) return out;
  for (let i = 0; i < Math.min(n, a.length); i++) {
    const v = optNumber(a[i]);
    out[i] = v !== null && Number.isFinite(v) ? v : null;
  }
  return out;
}

function parseCacheSide(s: Record<string, RawValue> | null | undefined): ServingCacheSide {
  return {
    requests: optNumber(s?.requests) ?? 0,
    latency_p50_ms: optNumber(s?.latency_p50_ms),
    latency_p95_ms: optNumber(s?.latency_p95_ms),
    ttfa_p50_ms: optNumber(s?.ttfa_p50_ms),
  };
}

/** The `serving` answer as sent: any number may be null or a "NaN"/"Infinity" string. */
interface RawServing {
  run?: string;
  start_wall_time_s?: RawValue;
  end_wall_time_s?: RawValue;
  bucket_s?: RawValue;
  buckets?: number;
  requests?: RawValue;
  stages?: string[];
  stage_share?: Record<string, RawValue[]>;
  stage_ms?: Record<string, RawValue[]>;
  requests_per_bucket?: RawValue[];
  ttfa?: { p50_ms?: RawValue[]; p95_ms?: RawValue[] };
  latency_histogram?: { edges_ms?: RawValue[]; counts?: RawValue[][] };
  cache?: { cold?: Record<string, RawValue>; warm?: Record<string, RawValue>; cold_over_warm_p50?: RawValue } | null;
  summary?: Record<string, RawValue> & { stage_share?: Record<string, RawValue> };
  findings?: Finding[];
}

function parseServing(raw: RawServing, run: string): ServingView {
  const stages: string[] = raw.stages ?? [];
  const counts: RawValue[][] = raw.latency_histogram?.counts ?? [];
  const buckets = Math.max(raw.buckets ?? 0, counts.length, ...stages.map((s) => raw.stage_share?.[s]?.length ?? 0));
  const perStage = (field: "stage_share" | "stage_ms") => Object.fromEntries(stages.map((s) => [s, bucketValues(raw[field]?.[s], buckets)]));
  const ttfa50: RawValue[] = raw.ttfa?.p50_ms ?? [];
  const ttfa95: RawValue[] = raw.ttfa?.p95_ms ?? [];
  const sum: NonNullable<RawServing["summary"]> = raw.summary ?? {};
  const cache = raw.cache
    ? { cold: parseCacheSide(raw.cache.cold), warm: parseCacheSide(raw.cache.warm), cold_over_warm_p50: optNumber(raw.cache.cold_over_warm_p50) }
    : null;
  const edges = (raw.latency_histogram?.edges_ms ?? []).map((e) => optNumber(e) ?? NaN);
  const bins = Math.max(0, edges.length - 1);
  return {
    run: raw.run ?? run,
    start_wall_time_s: optNumber(raw.start_wall_time_s) ?? 0,
    end_wall_time_s: optNumber(raw.end_wall_time_s) ?? 0,
    bucket_s: optNumber(raw.bucket_s) ?? 0,
    buckets,
    requests: optNumber(raw.requests) ?? 0,
    stages,
    stage_share: perStage("stage_share"),
    stage_ms: perStage("stage_ms"),
    requests_per_bucket: Array.from({ length: buckets }, (_, i) => optNumber(raw.requests_per_bucket?.[i]) ?? 0),
    ttfa: {
      p50_ms: ttfa50.length ? bucketValues(ttfa50, buckets) : [],
      p95_ms: ttfa95.length ? bucketValues(ttfa95, buckets) : [],
    },
    latency_histogram: {
      edges_ms: edges,
      counts: Array.from({ length: buckets }, (_, b) => Array.from({ length: bins }, (_, k) => optNumber(counts[b]?.[k]) ?? 0)),
    },
    cache,
    summary: {
      latency_p50_ms: optNumber(sum.latency_p50_ms),
      latency_p95_ms: optNumber(sum.latency_p95_ms),
      latency_p99_ms: optNumber(sum.latency_p99_ms),
      rtf_p50: optNumber(sum.rtf_p50),
      rtf_p95: optNumber(sum.rtf_p95),
      ttfa_p50_ms: optNumber(sum.ttfa_p50_ms),
      ttfa_p95_ms: optNumber(sum.ttfa_p95_ms),
      audio_s_total: optNumber(sum.audio_s_total),
      stage_share: Object.fromEntries(stages.map((s) => [s, optNumber(sum.stage_share?.[s])])),
    },
    findings: raw.findings ?? [],
  };
}

/**
 * The serving view of `run` with at most `buckets` time windows; null where
 * the server has no `serving` route (older than issue 12). A run without
 * inference requests is an HttpError 404 whose message says so.
 */
export async function fetchServing(run: string, buckets: number, signal?: AbortSignal): Promise<ServingView | null> {
  const raw = await getAnalytics<RawServing>(
    "serving",
    [
      ["run", run],
      ["buckets", buckets],
    ],
    signal,
  );
  return raw ? parseServing(raw, run) : null;
}

/** The server's own words in an HttpError's message ("404 NOT FOUND: Not found: run 'x' has …" -> "run 'x' has …"). */
export function serverMessage(e: unknown): string {
  const text = String((e as Error)?.message ?? e);
  return text.replace(/^\d{3} [^:]*:\s*/, "").replace(/^Not found:\s*/i, "");
}

// -- run comparison (issue 14) ------------------------------------------------

/** A number as the API sends it (non-finite ones spelled as strings). */
type RawNumber = number | string | null | undefined;

/** One recorded setting that differs: its key, a readable label, and each run's value (any JSON). */
export interface CompareSetupDiff {
  key: string;
  label: string;
  a: unknown;
  b: unknown;
}

export interface CompareStepSide {
  median: number | null;
  /** every step after the warm-up counted (slow steps too) */
  mean: number | null;
  p90: number | null;
  steps_per_s: number | null;
  intervals: number | null;
  warmup_intervals: number | null;
  /** wall time of the warm-up (compiling, caches), seconds */
  warmup_s: number | null;
}

export interface CompareStepTime {
  a: CompareStepSide | null;
  b: CompareStepSide | null;
  source: string;
  /** A's median time per step over B's: above 1, B is faster (null: too few steps) */
  speedup: number | null;
  ci: [number, number] | null;
  resamples: number | null;
}

/** A quantity of both runs (a side is null where that run did not record it) and B's relative change per statistic. */
export interface ComparePair {
  a: Record<string, number | string | null> | null;
  b: Record<string, number | string | null> | null;
  change: Record<string, number | null> | null;
}

export interface CompareTimeToLoss {
  tag: string;
  target: number | null;
  a_s: number | null;
  b_s: number | null;
  change: number | null;
}

/** The `compare` route's answer: `b` against `a`. */
export interface CompareAnswer {
  a: string;
  b: string;
  setup: CompareSetupDiff[];
  performance: {
    step_time_ms: CompareStepTime;
    gpu_memory_bytes: ComparePair | null;
    host_memory_bytes: ComparePair | null;
    gpu_utilization_percent: ComparePair | null;
    inference: { latency_ms: ComparePair | null; rtf: ComparePair | null } | null;
    time_to_loss: CompareTimeToLoss | null;
  };
  verdict: string;
  differ: boolean;
  confidence: number;
}

function compareNumber(v: RawNumber): number | null {
  if (v === null || v === undefined) return null;
  const n = toNumber(v);
  return Number.isNaN(n) ? null : n;
}

function compareRecord(r: unknown): Record<string, number | string | null> | null {
  if (r === null || typeof r !== "object") return null;
  const out: Record<string, number | string | null> = {};
  for (const [k, v] of Object.entries(r as Record<string, unknown>)) {
    out[k] = typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity" ? compareNumber(v as RawNumber) : typeof v === "string" ? v : null;
  }
  return out;
}

function comparePair(p: unknown): ComparePair | null {
  if (p === null || typeof p !== "object") return null;
  const raw = p as { a?: unknown; b?: unknown; change?: unknown };
  const change = compareRecord(raw.change);
  return {
    a: compareRecord(raw.a),
    b: compareRecord(raw.b),
    change: change ? Object.fromEntries(Object.entries(change).map(([k, v]) => [k, typeof v === "number" ? v : null])) : null,
  };
}

function compareStepSide(s: unknown): CompareStepSide | null {
  const r = compareRecord(s);
  if (!r) return null;
  const n = (k: string) => (typeof r[k] === "number" ? (r[k] as number) : null);
  return {
    median: n("median"),
    mean: n("mean"),
    p90: n("p90"),
    steps_per_s: n("steps_per_s"),
    intervals: n("intervals"),
    warmup_intervals: n("warmup_intervals"),
    warmup_s: n("warmup_s"),
  };
}

/** The `compare` answer as sent: any number may be null or a "NaN"/"Infinity" string, any optional part absent. */
interface RawCompare {
  a?: unknown;
  b?: unknown;
  setup?: { key?: unknown; label?: unknown; a?: unknown; b?: unknown }[];
  performance?: {
    step_time_ms?: { a?: unknown; b?: unknown; source?: unknown; speedup?: RawNumber; ci?: RawNumber[] | null; resamples?: RawNumber };
    gpu_memory_bytes?: unknown;
    host_memory_bytes?: unknown;
    gpu_utilization_percent?: unknown;
    inference?: { latency_ms?: unknown; rtf?: unknown } | null;
    time_to_loss?: { tag?: unknown; target?: RawNumber; a_s?: RawNumber; b_s?: RawNumber; change?: RawNumber } | null;
  };
  verdict?: unknown;
  differ?: unknown;
  confidence?: RawNumber;
}

/** The answer with every number a number (or null) and every optional part present (null where absent). */
function parseCompare(raw: RawCompare): CompareAnswer {
  const perf = raw.performance ?? {};
  const st = perf.step_time_ms ?? {};
  const lo = Array.isArray(st.ci) ? compareNumber(st.ci[0]) : null;
  const hi = Array.isArray(st.ci) ? compareNumber(st.ci[1]) : null;
  const ttl = perf.time_to_loss;
  return {
    a: String(raw.a ?? ""),
    b: String(raw.b ?? ""),
    setup: Array.isArray(raw.setup) ? raw.setup.map((d) => ({ key: String(d?.key ?? ""), label: String(d?.label ?? d?.key ?? ""), a: d?.a ?? null, b: d?.b ?? null })) : [],
    performance: {
      step_time_ms: {
        a: compareStepSide(st.a),
        b: compareStepSide(st.b),
        source: String(st.source ?? ""),
        speedup: compareNumber(st.speedup),
        ci: lo !== null && hi !== null ? [lo, hi] : null,
        resamples: compareNumber(st.resamples),
      },
      gpu_memory_bytes: comparePair(perf.gpu_memory_bytes),
      host_memory_bytes: comparePair(perf.host_memory_bytes),
      gpu_utilization_percent: comparePair(perf.gpu_utilization_percent),
      inference: perf.inference ? { latency_ms: comparePair(perf.inference.latency_ms), rtf: comparePair(perf.inference.rtf) } : null,
      time_to_loss: ttl
        ? { tag: String(ttl.tag ?? ""), target: compareNumber(ttl.target), a_s: compareNumber(ttl.a_s), b_s: compareNumber(ttl.b_s), change: compareNumber(ttl.change) }
        : null,
    },
    verdict: String(raw.verdict ?? ""),
    differ: raw.differ === true,
    confidence: compareNumber(raw.confidence) ?? 0.95,
  };
}

/**
 * Run `b` against run `a` (setup differences, speed per step with its
 * interval, memory, inference, time to loss, a verdict); null where the
 * server has no `compare` route. An unknown run is an HttpError 404, a
 * missing one a 400, each with the server's words.
 */
export async function fetchCompare(a: string, b: string, signal?: AbortSignal): Promise<CompareAnswer | null> {
  const raw = await getAnalytics<RawCompare>(
    "compare",
    [
      ["a", a],
      ["b", b],
    ],
    signal,
  );
  return raw === null ? null : parseCompare(raw);
}
