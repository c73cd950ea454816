// Number, unit, time and duration formatting (locale-independent, so what a
// test reads is what a user reads everywhere). Bytes in binary multiples and
// units after a space, as tb_plugin_ttsmon/units.py says them in findings,
// alerts and the report (tests/test_catalogue_units.py compares the two).

const BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Non-finite values as people read them. */
export function nonFiniteLabel(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  return v > 0 ? "+Inf" : "−Inf";
}

function groupThousands(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * `v` with about `sig` significant digits, no trailing zeros; thousands
 * grouped; exponent notation for very small or very large magnitudes.
 */
export function formatNumber(v: number, sig = 4): string {
  if (!Number.isFinite(v)) return nonFiniteLabel(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e15 || a < 1e-4) {
    const [m, e] = v.toExponential(Math.max(0, sig - 1)).split("e");
    return `${trimZeros(m)}e${Number(e)}`;
  }
  const digits = Math.max(0, sig - 1 - Math.floor(Math.log10(a)));
  let s = v.toFixed(Math.min(digits, 20));
  s = trimZeros(s);
  const neg = s.startsWith("-");
  const body = neg ? s.slice(1) : s;
  const [i, f] = body.split(".");
  return (neg ? "−" : "") + groupThousands(i) + (f ? `.${f}` : "");
}

function trimZeros(s: string): string {
  if (!s.includes(".")) return s;
  return s.replace(/0+$/, "").replace(/\.$/, "");
}

/** Index into BINARY for a magnitude (bytes). */
export function binaryExponent(absBytes: number): number {
  if (!(absBytes >= 1024)) return 0;
  return Math.min(BINARY.length - 1, Math.floor(Math.log2(absBytes) / 10));
}

export function formatBytes(v: number, sig = 3): string {
  if (!Number.isFinite(v)) return nonFiniteLabel(v);
  const e = binaryExponent(Math.abs(v));
  return `${formatNumber(v / 1024 ** e, sig)} ${BINARY[e]}`;
}

/** A value with its unit, as shown in legends and the overview. */
export function formatValue(v: number, unit: string, sig = 4): string {
  if (!Number.isFinite(v)) return nonFiniteLabel(v);
  // A physical quantity this small is float noise (an idle CPU's 1e-10 %),
  // not a reading; dimensionless values (a learning rate) keep their digits.
  if (unit !== "" && Math.abs(v) < 1e-3) v = 0;
  switch (unit) {
    case "B":
      return formatBytes(v, sig);
    case "B/s":
      return `${formatBytes(v, sig)}/s`;
    case "%":
      // a space before the unit, as tb_plugin_ttsmon/units.py writes it in findings and alerts
      return `${formatNumber(v, sig)} %`;
    case "":
    case "count":
    case "bitmask":
      return formatNumber(v, sig);
    case "step":
      return formatNumber(Math.round(v), 12);
    case "bool":
      return v ? "yes" : "no";
    case "s":
      return formatDuration(v);
    default:
      return `${formatNumber(v, sig)} ${unit}`;
  }
}

/**
 * A bitmask as hex with the names of its known bits set:
 * `formatBitmask(5, [[1, "idle"], [4, "power cap"]])` is "0x5 idle, power cap".
 */
export function formatBitmask(v: number, bits: [number, string][]): string {
  if (!Number.isFinite(v)) return nonFiniteLabel(v);
  const n = Math.round(v);
  if (n === 0) return "0 none";
  const names = bits.filter(([b]) => (n & b) !== 0).map(([, name]) => name);
  let known = 0;
  for (const [b] of bits) known |= b;
  if ((n & ~known) !== 0) names.push("other");
  return `0x${n.toString(16)} ${names.join(", ")}`;
}

/**
 * Axis tick labels for one axis: every tick in one unit (a bytes axis reads
 * 0, 2 GiB, 4 GiB rather than mixing units).
 */
export function axisFormatter(unit: string, ticks: number[], incr?: number): string[] {
  const finite = ticks.filter((t) => Number.isFinite(t));
  const maxAbs = finite.reduce((m, t) => Math.max(m, Math.abs(t)), 0);
  if (unit === "B" || unit === "B/s") {
    // The unit of the tick spacing, so that ticks read 250 MiB, 500 MiB, 750 MiB
    // rather than 0.244 GiB, 0.488 GiB.
    const e = binaryExponent(incr && incr > 0 ? incr : maxAbs);
    const suffix = BINARY[e] + (unit === "B/s" ? "/s" : "");
    return ticks.map((t) => (t === 0 ? "0" : `${axisNumber(t / 1024 ** e)} ${suffix}`));
  }
  if (unit === "bool") return ticks.map((t) => (t === 1 ? "yes" : t === 0 ? "no" : ""));
  if (unit === "bitmask") return ticks.map((t) => (Number.isInteger(t) ? (t === 0 ? "0" : `0x${t.toString(16)}`) : ""));
  let suffix = "";
  if (unit === "%" || unit === "°C" || unit === "W" || unit === "ms" || unit === "MHz" || unit === "cores") suffix = ` ${unit}`;
  else if (unit === "s") suffix = " s";
  return ticks.map((t) => (t === 0 ? "0" : `${axisNumber(t)}${suffix}`));
}

function axisNumber(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e9)) {
    const [m, e] = v.toExponential(2).split("e");
    return `${trimZeros(m)}e${Number(e)}`;
  }
  if (a >= 1e6) return `${trimZeros((v / 1e6).toFixed(2))}M`;
  if (a >= 1e4) return `${trimZeros((v / 1e3).toFixed(1))}k`;
  return formatNumber(v, 6);
}

/** Nice tick increments for a bytes axis: 1, 2, 2.5, 5 × powers of ten of each binary unit. */
export const BYTE_INCREMENTS: number[] = (() => {
  const out: number[] = [];
  for (let e = 0; e < BINARY.length; e++) {
    for (const m of [1, 2, 2.5, 5, 10, 20, 25, 50, 100, 200, 250, 500]) {
      out.push(m * 1024 ** e);
    }
  }
  return out.sort((a, b) => a - b);
})();

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** 2025-11-28 14:03:22 in the viewer's local time. */
export function formatDateTime(wallS: number): string {
  const d = new Date(wallS * 1000);
  return (
    `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`
  );
}

/** 14:03:22 in the viewer's local time. */
export function formatClock(wallS: number): string {
  const d = new Date(wallS * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** 3 d 4 h, 1 h 02 m, 4 m 05 s, 12.3 s, 850 ms. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return nonFiniteLabel(s);
  const neg = s < 0;
  const a = Math.abs(s);
  let out: string;
  if (a < 1) out = `${formatNumber(a * 1000, 3)} ms`;
  else if (a < 60) out = `${formatNumber(a, 3)} s`;
  else if (a < 3600) out = `${Math.floor(a / 60)} m ${pad2(Math.floor(a % 60))} s`;
  else if (a < 86400) out = `${Math.floor(a / 3600)} h ${pad2(Math.floor((a % 3600) / 60))} m`;
  else out = `${Math.floor(a / 86400)} d ${Math.floor((a % 86400) / 3600)} h`;
  return neg ? `−${out}` : out;
}

/** Relative-time axis ticks: 0, 30s, 1:00, 1:30 ... 1:00:00. */
export function formatRelativeTick(s: number): string {
  const neg = s < 0;
  let a = Math.abs(s);
  if (a < 60) return `${neg ? "−" : ""}${formatNumber(a, 3)}s`;
  a = Math.round(a);
  const h = Math.floor(a / 3600);
  const m = Math.floor((a % 3600) / 60);
  const sec = a % 60;
  const body = h > 0 ? `${h}:${pad2(m)}:${pad2(sec)}` : `${m}:${pad2(sec)}`;
  return (neg ? "−" : "") + body;
}

/** Large counts as 1.19 B, 350 M, 12.5 k. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return nonFiniteLabel(n);
  const a = Math.abs(n);
  if (a >= 1e9) return `${formatNumber(n / 1e9, 3)} B`;
  if (a >= 1e6) return `${formatNumber(n / 1e6, 3)} M`;
  if (a >= 1e4) return `${formatNumber(n / 1e3, 3)} k`;
  return formatNumber(n, 6);
}

/** "12 s ago", "3 m ago", for the "last updated"/"last data" hints. */
export function formatAgo(seconds: number): string {
  if (!Number.isFinite(seconds)) return "";
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

/**
 * Wall-time axis ticks in local time, precise to the tick spacing; the date
 * is added on a second line at the first tick and where the day changes.
 */
export function formatTimeTicks(splits: number[], incrS: number): string[] {
  let lastDay = "";
  return splits.map((v) => {
    if (v === null || v === undefined) return "";
    const d = new Date(v * 1000);
    const day = `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    if (incrS >= 86400) return day;
    const time =
      incrS < 60 ? `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}` : `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    const withDay = day !== lastDay;
    lastDay = day;
    return withDay ? `${time}\n${day}` : time;
  });
}
