// The overview strip: one card per selected run with its facts and latest values.

import { exportUrl, type Overview, type RunInfo } from "./api";
import { el } from "./dom";
import { formatAgo, formatBytes, formatCount, formatDuration, formatNumber, formatValue } from "./format";

interface Stat {
  label: string;
  value: string;
  title?: string;
  warn?: boolean;
}

function stat(s: Stat): HTMLElement {
  return el(
    "div",
    { class: `stat${s.warn ? " warn" : ""}`, title: s.title },
    el("div", { class: "stat-label" }, s.label),
    el("div", { class: "stat-value", dir: "auto" }, s.value),
  );
}

function latest(ov: Overview, tag: string): number | null {
  const v = ov.latest?.[tag];
  if (!v) return null;
  const n = typeof v.value === "number" ? v.value : Number(v.value);
  return n;
}

function gpuIndicesOf(ov: Overview): number[] {
  const out = new Set<number>();
  for (const tag of Object.keys(ov.latest ?? {})) {
    const m = /^gpu\/(\d+)\//.exec(tag);
    if (m) out.add(Number(m[1]));
  }
  for (const d of ov.facts?.nvml?.devices ?? []) if (typeof d.index === "number") out.add(d.index);
  return [...out].sort((a, b) => a - b);
}

/** "2 × NVIDIA H200", "NVIDIA A100, NVIDIA T4", or "no GPU". */
export function devicesText(ov: Overview | null, run: RunInfo): { text: string; title: string; hasGpu: boolean } {
  const facts = ov?.facts ?? run.facts;
  const devices = facts?.nvml?.devices ?? [];
  if (devices.length > 0) {
    const names = devices.map((d) => d.name || `GPU ${d.index}`);
    const counts = new Map<string, number>();
    for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
    const text = [...counts].map(([n, c]) => (c > 1 ? `${c} × ${n}` : n)).join(", ");
    const driver = facts?.nvml?.driver_version ? `driver ${facts.nvml.driver_version}` : "";
    return { text, title: [names.join("\n"), driver].filter(Boolean).join("\n"), hasGpu: true };
  }
  if (ov && gpuIndicesOf(ov).length > 0) return { text: `${gpuIndicesOf(ov).length} GPU`, title: "", hasGpu: true };
  const reason = facts?.nvml?.reason;
  return { text: "no GPU", title: reason ? `NVML: ${reason}` : "No GPU was sampled in this run", hasGpu: false };
}

function frameworkText(ov: Overview | null, run: RunInfo): Stat {
  const v = (ov?.facts ?? run.facts)?.versions ?? {};
  if (v.tensorflow) return { label: "TensorFlow", value: String(v.tensorflow), title: v.keras ? `Keras ${v.keras}` : undefined };
  if (v.torch) return { label: "PyTorch", value: String(v.torch) };
  return { label: "TensorFlow", value: "not installed" };
}

export function overviewCard(run: RunInfo, color: string, ov: Overview | null, nowS: number): HTMLElement {
  const facts = ov?.facts ?? run.facts;
  const host = facts?.hostname ?? run.hostname ?? "";
  const last = ov?.last_wall_time_s ?? run.last_wall_time_s;
  const ago = last ? nowS - last : Infinity;
  const live = ago < 30;

  const head = el(
    "div",
    { class: "ov-head" },
    el("span", { class: "run-dot", style: { background: color } }),
    el("bdi", { class: "ov-run" }, run.run),
    host ? el("span", { class: "ov-host", title: "Host" }, host) : null,
    el(
      "span",
      { class: `ov-state${live ? " live" : ""}`, title: last ? `Last record: ${new Date(last * 1000).toString()}` : "" },
      live ? "live" : last ? `last data ${formatAgo(ago)}` : "no data",
    ),
    run.restarts > 0 ? el("span", { class: "ov-state", title: "Times the job was started again in this run directory" }, `${run.restarts} restart${run.restarts > 1 ? "s" : ""}`) : null,
    el("span", { class: "spacer" }),
    el("a", { class: "ov-link", attrs: { href: exportUrl(run.run, "csv"), download: "" }, title: "Every point of this run as CSV" }, "CSV"),
    el("a", { class: "ov-link", attrs: { href: exportUrl(run.run, "json"), download: "" }, title: "Every point and the run facts as JSON" }, "JSON"),
  );

  const facts1: Stat[] = [];
  facts1.push(frameworkText(ov, run));
  const dev = devicesText(ov, run);
  facts1.push({ label: "Devices", value: dev.text, title: dev.title });
  const cores = facts?.host?.cpu_count_logical;
  if (cores) {
    const phys = facts?.host?.cpu_count_physical;
    facts1.push({ label: "CPU cores", value: String(cores), title: [facts?.host?.cpu_model, phys ? `${phys} physical` : ""].filter(Boolean).join(", ") });
  }
  const mem = facts?.host?.memory_total_bytes;
  if (mem) facts1.push({ label: "Memory", value: formatBytes(mem, 3) });
  if (ov?.duration_s != null) facts1.push({ label: "Monitored", value: formatDuration(ov.duration_s) });
  if (ov) facts1.push({ label: "Samples", value: formatNumber(ov.sample_count, 12), title: "System samples kept" });
  const model = ov?.model;
  if (model && (model.parameter_count != null || model.size_bytes != null)) {
    const parts: string[] = [];
    if (model.parameter_count != null) parts.push(`${formatCount(model.parameter_count)} params`);
    if (model.size_bytes != null) parts.push(formatBytes(model.size_bytes, 3));
    facts1.push({
      label: model.name ? `Model ${model.name}` : "Model",
      value: parts.join(" · "),
      title: [model.class, model.framework, model.trainable_parameter_count != null ? `${formatNumber(model.trainable_parameter_count, 12)} trainable` : ""].filter(Boolean).join(", "),
    });
  }
  if (ov?.training?.last_step != null) {
    const loss = ov.training.loss;
    facts1.push({
      label: "Training",
      value: `step ${formatNumber(ov.training.last_step, 12)}${loss != null ? ` · loss ${formatValue(Number(loss), "")}` : ""}`,
      warn: loss != null && !Number.isFinite(Number(loss)),
    });
  }
  if (ov && ov.inference?.requests > 0) facts1.push({ label: "Inference", value: `${formatNumber(ov.inference.requests, 12)} requests` });

  const now: Stat[] = [];
  if (ov) {
    const cpu = latest(ov, "system/cpu_percent");
    if (cpu !== null) now.push({ label: "CPU", value: formatValue(cpu, "%", 3) });
    const used = latest(ov, "system/memory_used_bytes");
    if (used !== null) {
      const pct = latest(ov, "system/memory_percent");
      now.push({ label: "Memory", value: `${formatBytes(used, 3)}${mem ? ` / ${formatBytes(mem, 3)}` : ""}`, title: pct !== null ? `${formatNumber(pct, 3)}% in use` : undefined });
    }
    const rss = latest(ov, "process/rss_bytes");
    if (rss !== null) now.push({ label: "Process RSS", value: formatBytes(rss, 3) });
    for (const g of gpuIndicesOf(ov)) {
      const util = latest(ov, `gpu/${g}/utilization_percent`);
      const gmem = latest(ov, `gpu/${g}/memory_used_bytes`);
      const gtot = latest(ov, `gpu/${g}/memory_total_bytes`);
      const temp = latest(ov, `gpu/${g}/temperature_c`);
      const power = latest(ov, `gpu/${g}/power_w`);
      const parts: string[] = [];
      if (util !== null) parts.push(formatValue(util, "%", 3));
      if (gmem !== null) parts.push(`${formatBytes(gmem, 3)}${gtot ? ` / ${formatBytes(gtot, 3)}` : ""}`);
      if (temp !== null) parts.push(formatValue(temp, "°C", 3));
      if (power !== null) parts.push(formatValue(power, "W", 3));
      if (parts.length) now.push({ label: `GPU ${g}`, value: parts.join(" · "), title: "utilization · memory · temperature · power" });
    }
  }

  return el(
    "div",
    { class: "ov-card", dataset: { run: run.run }, style: { borderLeftColor: color } },
    head,
    el("div", { class: "ov-stats" }, ...facts1.map(stat)),
    now.length ? el("div", { class: "ov-stats ov-now" }, el("div", { class: "ov-now-label" }, "Latest"), ...now.map(stat)) : null,
  );
}
