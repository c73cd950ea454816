// What one refresh loads for a selected run, and the loading of its analytics.

import {
  fetchAlerts,
  fetchAnomalies,
  fetchFindings,
  fetchProfiles,
  type AlertEvent,
  type Anomaly,
  type Finding,
  type Overview,
  type Profiles,
  type RunInfo,
  type Series,
  type TagInfo,
} from "../api";
import type { RunClock } from "../xaxis";

export interface Analytics {
  /** null: the server has no such route (or it failed) */
  alerts: AlertEvent[] | null;
  anomalies: Anomaly[] | null;
  findings: Finding[] | null;
  profiles: Profiles | null;
}

export interface RunData extends Analytics {
  info: RunInfo;
  tags: Map<string, TagInfo>;
  overview: Overview | null;
  series: Map<string, Series>;
  clock: RunClock;
}

/** Alerts, anomalies (all tags: one request), findings and profiles of a run, in parallel. */
export async function fetchAnalytics(run: string, errors: string[]): Promise<Analytics> {
  const wrap = <T>(what: string, p: Promise<T | null>): Promise<T | null> =>
    p.catch((e) => {
      errors.push(`${run}: ${what}: ${String((e as Error).message ?? e)}`);
      return null;
    });
  // one `profiles` request per run: a pending summary is asked for again on the next refresh
  const [alerts, anomalies, findings, profiles] = await Promise.all([
    wrap("alerts", fetchAlerts(run)),
    wrap("anomalies", fetchAnomalies(run)),
    wrap("findings", fetchFindings(run)),
    wrap("profiles", fetchProfiles(run)),
  ]);
  return { alerts, anomalies, findings, profiles };
}

/** Whether a profile summary is still being computed on the server (it is asked for again). */
export function profilesPending(p: Profiles | null): boolean {
  return p !== null && p.sessions.some((s) => (s.hosts ?? []).some((h) => h.status === "pending"));
}
