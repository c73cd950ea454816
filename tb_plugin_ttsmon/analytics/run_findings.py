"""Findings: plain-language statements about a run's efficiency, with the numbers they cite."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from tb_plugin_ttsmon.analytics import serving
from tb_plugin_ttsmon.analytics.anomalies import Anomaly, AnomalyParams, detect_level_shifts
from tb_plugin_ttsmon.analytics.common import (
    SEVERITY_RANK,
    Finding,
    SeriesLike,
    finite_values,
    fixed,
    max_of,
)
from tb_plugin_ttsmon.units import format_bytes

# Fewer sampled points than this say nothing about a run's efficiency.
MIN_SAMPLES = 10


def findings(
    series: Mapping[str, SeriesLike],
    params: AnomalyParams | None = None,
    anomalies: Sequence[Anomaly] | None = None,
) -> list[Finding]:
    """Efficiency statements the data supports, most important first.

    Args:
      series: Tag -> series of one run.
      params: Thresholds for the level-shift check of ``train/steps_per_s``.
      anomalies: Already detected anomalies (saves a second scan), else
        ``train/steps_per_s`` is scanned here.
    """
    params = params or AnomalyParams()
    out: list[Finding] = []
    out += _nan_loss(series)
    gpus = sorted({int(m.group(1)) for t in series if (m := re.match(r"gpu/(\d+)/", t))})
    out += _input_bound(series, gpus)
    for g in gpus:
        out += _gpu_memory(series, g)
        out += _throttling(series, g)
    out += _host_memory(series)
    out += _disk(series)
    out += _inference(series)
    out += _steps_regression(series, params, anomalies)
    out.sort(key=lambda f: SEVERITY_RANK.get(f.severity, 9))
    return out


def _nan_loss(series: Mapping[str, SeriesLike]) -> list[Finding]:
    out = []
    for tag in ("train/loss", "val/loss"):
        s = series.get(tag)
        if s is None or not len(s.value):
            continue
        bad = ~np.isfinite(s.value)
        count = int(bad.sum())
        if not count:
            continue
        first = int(s.step[np.argmax(bad)])
        out.append(
            Finding(
                "non_finite_loss",
                "critical",
                "The loss became NaN or infinite",
                f"{tag} was NaN or infinite at {count} of {len(s.value)} points, first at "
                f"step {first}: lower the learning rate, clip gradients or check the data.",
                {"non_finite_count": float(count), "first_step": float(first)},
            )
        )
    return out


def _input_bound(series: Mapping[str, SeriesLike], gpus: list[int]) -> list[Finding]:
    utils = [finite_values(series.get(f"gpu/{g}/utilization_percent")) for g in gpus]
    utils = [u for u in utils if len(u) >= MIN_SAMPLES]
    cpu_tag = (
        "container/cpu_percent_of_limit"
        if "container/cpu_percent_of_limit" in series
        else "system/cpu_percent"
    )
    cpu = finite_values(series.get(cpu_tag))
    if not utils or len(cpu) < MIN_SAMPLES:
        return []
    gpu_mean = float(np.mean(np.concatenate(utils)))
    cpu_mean = float(np.mean(cpu))
    if gpu_mean >= 50 or cpu_mean < 80:
        return []
    where = "its container's CPU quota" if cpu_tag.startswith("container/") else "CPU"
    return [
        Finding(
            "input_bound",
            "warning",
            "The input pipeline is the likely bottleneck",
            f"GPU utilization averaged {fixed(gpu_mean)} % while {where} was at "
            f"{fixed(cpu_mean)} %: the input pipeline is the likely bottleneck.",
            {
                "gpu_utilization_mean_percent": round(gpu_mean, 1),
                "cpu_mean_percent": round(cpu_mean, 1),
            },
        )
    ]


def _gpu_memory(series: Mapping[str, SeriesLike], g: int) -> list[Finding]:
    used = series.get(f"gpu/{g}/memory_used_bytes")
    total = max_of(series.get(f"gpu/{g}/memory_total_bytes"))
    pct = finite_values(series.get(f"gpu/{g}/memory_used_percent"))
    peak_bytes = None
    if used is not None and total:
        u = finite_values(used)
        if len(u) >= MIN_SAMPLES:
            pct = u / total * 100.0
            peak_bytes = float(u.max())
    if len(pct) < MIN_SAMPLES:
        return []
    peak = float(pct.max())
    numbers = {"gpu_memory_peak_percent": round(peak, 1)}
    size = ""
    if total:
        numbers["gpu_memory_total_bytes"] = total
        size = f" of {format_bytes(total)}"
    if total and peak_bytes is not None:
        numbers["gpu_memory_peak_bytes"] = peak_bytes
        size = f" ({format_bytes(peak_bytes)} of {format_bytes(total)})"
    if peak > 95:
        return [
            Finding(
                "gpu_memory_full",
                "warning",
                f"GPU {g} memory nearly full",
                f"Peak GPU {g} memory {fixed(peak)} %{size}: close to out-of-memory; "
                "a smaller batch or mixed precision gives room.",
                numbers,
            )
        ]
    if peak < 70 and any(t.startswith("train/") for t in series):
        return [
            Finding(
                "gpu_memory_headroom",
                "info",
                "Room for a larger batch",
                f"Peak GPU {g} memory {fixed(peak)} %{size}: there is room for a larger batch.",
                numbers,
            )
        ]
    return []


def _throttling(series: Mapping[str, SeriesLike], g: int) -> list[Finding]:
    util = series.get(f"gpu/{g}/utilization_percent")
    if util is None or len(util.value) < MIN_SAMPLES:
        return []
    out = []
    for reason in ("thermal", "power"):
        thr = series.get(f"gpu/{g}/throttle_{reason}")
        if thr is None:
            continue
        # Both come from the same sample, so they share its step.
        _, iu, it = np.intersect1d(util.step, thr.step, return_indices=True)
        busy = util.value[iu] >= 80
        if busy.sum() < MIN_SAMPLES // 2:
            continue
        throttled = busy & (thr.value[it] >= 0.5)
        share = float(throttled.sum() / busy.sum() * 100)
        if share < 5:
            continue
        extra = ""
        numbers = {"throttled_share_percent": round(share, 1), "busy_samples": float(busy.sum())}
        temp = finite_values(series.get(f"gpu/{g}/temperature_c"))
        if reason == "thermal" and len(temp):
            extra = f", temperature up to {fixed(temp.max())} °C"
            numbers["temperature_max_c"] = float(temp.max())
        power = finite_values(series.get(f"gpu/{g}/power_w"))
        if reason == "power" and len(power):
            extra = f", power up to {fixed(power.max())} W"
            numbers["power_max_w"] = float(power.max())
        out.append(
            Finding(
                f"gpu_{reason}_throttling",
                "warning",
                f"GPU {g} {reason} throttling",
                f"GPU {g} was {reason}-throttled in {fixed(share)} % of the samples with "
                f"utilization ≥ 80 %{extra}: clocks were cut while it was busy.",
                numbers,
            )
        )
    return out


def _host_memory(series: Mapping[str, SeriesLike]) -> list[Finding]:
    out = []
    mem = finite_values(series.get("system/memory_percent"))
    if len(mem) >= MIN_SAMPLES and mem.max() > 90:
        out.append(
            Finding(
                "host_memory_pressure",
                "critical" if mem.max() > 97 else "warning",
                "Host memory nearly exhausted",
                f"Host memory peaked at {fixed(mem.max())} % (mean {fixed(mem.mean())} %): "
                "the run risks swapping or the OOM killer.",
                {"memory_peak_percent": float(mem.max()), "memory_mean_percent": float(mem.mean())},
            )
        )
    swap = series.get("system/swap_used_bytes")
    sv = finite_values(swap)
    if swap is not None and len(sv) >= MIN_SAMPLES:
        rise = float(sv.max() - sv[0])
        if rise > 256 * 2**20:
            out.append(
                Finding(
                    "swap_pressure",
                    "warning",
                    "The host is swapping",
                    f"Swap use grew by {format_bytes(rise)} to {format_bytes(sv.max())} "
                    "during the run: memory is short and steps slow down.",
                    {"swap_rise_bytes": rise, "swap_peak_bytes": float(sv.max())},
                )
            )
    return out


def _disk(series: Mapping[str, SeriesLike]) -> list[Finding]:
    used = finite_values(series.get("system/logdir_disk_used_percent"))
    if not len(used) or used[-1] <= 90:
        return []
    free = finite_values(series.get("system/logdir_disk_free_bytes"))
    free_text = f" ({format_bytes(free[-1])} free)" if len(free) else ""
    return [
        Finding(
            "logdir_disk_full",
            "critical" if used[-1] > 95 else "warning",
            "The log directory's disk is nearly full",
            f"The log directory's disk is {fixed(used[-1])} % full{free_text}: "
            "checkpoints and logs may fail to write.",
            {"disk_used_percent": float(used[-1])},
        )
    ]


def _inference(series: Mapping[str, SeriesLike]) -> list[Finding]:
    return serving.findings(series)


def _steps_regression(
    series: Mapping[str, SeriesLike], params: AnomalyParams, anomalies: Sequence[Anomaly] | None
) -> list[Finding]:
    tag = "train/steps_per_s"
    s = series.get(tag)
    if s is None:
        return []
    found = (
        [a for a in anomalies if a.tag == tag]
        if anomalies is not None
        else detect_level_shifts(tag, s, params)
    )
    drops = [a for a in found if a.type == "level_shift" and a.severity == "warning"]
    if not drops:
        return []
    worst = max(drops, key=lambda a: a.score)
    return [
        Finding(
            "steps_per_s_regression",
            "warning",
            "Training slowed down",
            f"Training throughput dropped at step {worst.start_step}: {worst.message}.",
            {"steps_per_s_after": float(worst.value or 0.0), "score": worst.score},
        )
    ]
