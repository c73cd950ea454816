// What a chart card is given: its lines' data and the marks drawn over it.

import type { Series } from "../api";
import type { LineDef } from "../specs";
import type { RunClock } from "../xaxis";

/**
 * An alert interval, an anomaly or a profiled window drawn over a chart: a
 * band from start to end (or a point where they are equal), placed by the
 * run's clock.
 */
export interface Mark {
  kind: "alert" | "anomaly" | "profile";
  run: string;
  start: number;
  end: number;
  /** training steps where known; else the run's clock maps the wall times */
  startStep: number | null;
  endStep: number | null;
  severity: "info" | "warning" | "critical";
  /** the point's value (a spike), drawn as a ring on the line */
  value: number | null;
  title: string;
  /** an alert still firing at the end of the data */
  open?: boolean;
}

/** A line's data as loaded: its rows and x values in the current mode. */
export interface LineData {
  line: LineDef;
  series: Series;
  clock: RunClock;
}
