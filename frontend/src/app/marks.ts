// The marks drawn over the charts, from the runs' analytics: profiled
// windows on every chart, alert intervals on the System charts, anomalies on
// the charts of their tags.

import type { AlertEvent } from "../api";
import type { Mark } from "../chart/types";
import { profileMark } from "../panels/profiler";
import { usesTrainingStep, type ChartDef } from "../specs";
import type { RunData } from "./rundata";

/** Alert intervals (firing → resolved) of a run, severity-coloured. */
export function alertMarks(d: RunData): Mark[] {
  const out: Mark[] = [];
  const open = new Map<string, AlertEvent>();
  const sorted = [...(d.alerts ?? [])].sort((a, b) => a.wall_time_s - b.wall_time_s);
  const end = d.info.last_wall_time_s ?? d.overview?.last_wall_time_s ?? null;
  const push = (f: AlertEvent, r: AlertEvent | null) =>
    out.push({
      kind: "alert",
      run: d.info.run,
      start: f.wall_time_s,
      end: r ? r.wall_time_s : Math.max(end ?? f.wall_time_s, f.wall_time_s),
      startStep: f.training_step ?? null,
      endStep: r ? (r.training_step ?? null) : null,
      severity: f.severity,
      value: null,
      title: r ? `${f.message}\n${r.message}` : `${f.message} (still firing)`,
      open: r === null,
    });
  for (const a of sorted) {
    const k = `${a.rule}\u0000${a.tag}`;
    if (a.state === "firing") {
      if (!open.has(k)) open.set(k, a);
    } else {
      const f = open.get(k);
      if (f) push(f, a);
      open.delete(k);
    }
  }
  for (const f of open.values()) push(f, null);
  return out;
}

/** Every run's marks, ready to hand to the charts. */
export class RunMarks {
  private readonly alertBands = new Map<string, Mark[]>();
  private readonly profileBands = new Map<string, Mark[]>();
  /** by run and tag */
  private readonly anomalies = new Map<string, Mark[]>();

  constructor(data: Iterable<RunData>, multi: boolean) {
    for (const d of data) {
      this.alertBands.set(d.info.run, alertMarks(d));
      const bands: Mark[] = [];
      for (const s of d.profiles?.sessions ?? []) {
        const m = profileMark(d.info.run, s, multi);
        if (m) bands.push(m);
      }
      this.profileBands.set(d.info.run, bands);
      for (const a of d.anomalies ?? []) {
        const key = `${d.info.run}\u0000${a.tag}`;
        const list = this.anomalies.get(key) ?? [];
        const steps = usesTrainingStep(a.tag);
        const v = a.value === null || a.value === undefined ? null : Number(a.value);
        list.push({
          kind: "anomaly",
          run: d.info.run,
          start: a.start_wall_time_s,
          end: a.end_wall_time_s ?? a.start_wall_time_s,
          startStep: steps ? (a.start_step ?? null) : null,
          endStep: steps ? (a.end_step ?? null) : null,
          severity: a.severity,
          value: v !== null && Number.isFinite(v) && a.type === "spike" ? v : null,
          title: a.message,
        });
        this.anomalies.set(key, list);
      }
    }
  }

  /** The marks of one chart: profiled windows, alert bands (System charts), then its tags' anomalies. */
  forChart(def: ChartDef): Mark[] {
    const marks: Mark[] = [];
    const runs = new Set<string>();
    for (const line of def.lines) {
      runs.add(line.run);
      marks.push(...(this.anomalies.get(`${line.run}\u0000${line.tag}`) ?? []));
    }
    if (def.section === "system") for (const r of runs) marks.unshift(...(this.alertBands.get(r) ?? []));
    for (const r of runs) marks.unshift(...(this.profileBands.get(r) ?? []));
    return marks;
  }
}
