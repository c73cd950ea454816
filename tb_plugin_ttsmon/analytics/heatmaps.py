"""The heatmap: time buckets x sampled series, each row scaled to its ceiling or range."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.analytics.common import SeriesLike, max_of
from tb_plugin_ttsmon.analytics.devices import tf_gpu_to_nvml_gpu

# Series that are limits of others, not activity worth a row.
_LIMIT_SERIES_RE = re.compile(
    r"(gpu/\d+/(memory_total_bytes|power_limit_w|throttle_reasons_bitmask)"
    r"|container/(cpu_limit_cores|memory_limit_bytes))"
)
_NVML_MEMORY_RE = re.compile(r"gpu/(\d+)/(memory_used_bytes|process_memory_used_bytes)")
_TF_MEMORY_RE = re.compile(r"tf/gpu/(\d+)/(memory_current_bytes|memory_peak_bytes)")
_POWER_RE = re.compile(r"gpu/(\d+)/power_w")


def limit_of(
    tag: str,
    series: Mapping[str, SeriesLike],
    host_memory_total_bytes: float | None = None,
    facts: Mapping[str, Any] | None = None,
) -> float | None:
    """The known ceiling of `tag` in its own unit, or None (scale to its own range).

    TensorFlow's allocator series (``tf/gpu/{i}/...``) are scaled by an NVML
    GPU's total only when `tf_gpu_to_nvml_gpu` knows the two to be one device.

    Args:
      tag: The series to scale.
      series: The run's series (limit series among them).
      host_memory_total_bytes: The host's memory, from the run facts.
      facts: The run's latest ``run/facts`` document, if any.
    """
    return _limit_of(tag, series, host_memory_total_bytes, tf_gpu_to_nvml_gpu(series, facts))


def _limit_of(
    tag: str,
    series: Mapping[str, SeriesLike],
    host_memory_total_bytes: float | None,
    tf_to_nvml: Mapping[int, int],
) -> float | None:
    if tag == "process/cpu_percent":
        return None  # 100 per core: the core count is not a series
    s = series.get(tag)
    if s is not None and s.unit == metadata.UNIT_PERCENT:
        return 100.0
    if m := _NVML_MEMORY_RE.fullmatch(tag):
        return max_of(series.get(f"gpu/{m.group(1)}/memory_total_bytes"))
    if m := _TF_MEMORY_RE.fullmatch(tag):
        nvml_index = tf_to_nvml.get(int(m.group(1)))
        if nvml_index is None:
            return None
        return max_of(series.get(f"gpu/{nvml_index}/memory_total_bytes"))
    if m := _POWER_RE.fullmatch(tag):
        return max_of(series.get(f"gpu/{m.group(1)}/power_limit_w"))
    if tag == "container/memory_used_bytes":
        return max_of(series.get("container/memory_limit_bytes"))
    if tag == "container/cpu_usage_cores":
        return max_of(series.get("container/cpu_limit_cores"))
    if tag == "system/memory_used_bytes" and host_memory_total_bytes:
        total = float(host_memory_total_bytes)
        return total if math.isfinite(total) and total > 0 else None
    if s is not None and s.unit == metadata.UNIT_BOOL:
        return 1.0
    return None


def label_of(tag: str) -> str:
    """A short label for people: ``gpu/0/memory_used_bytes`` -> ``GPU 0 memory used``."""
    parts = tag.split("/")
    last = re.sub(r"_(bytes_per_s|percent|bytes|ms|c|w|mhz|count|cores|s)$", "", parts[-1]).replace(
        "_", " "
    )
    if parts[0] == "gpu" and len(parts) >= 3:
        return f"GPU {parts[1]} {last}"
    if parts[:2] == ["tf", "gpu"] and len(parts) >= 4:
        return f"TF GPU {parts[2]} {last}"
    middle = " ".join(p.replace("_", " ") for p in parts[1:-1])
    return " ".join(x for x in (parts[0], middle, last) if x)


# Bucket lengths a person reads at a glance; the heatmap uses the shortest one
# that keeps the bucket count within what was asked for, aligned to the clock.
NICE_BUCKETS_S = (
    0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
)  # fmt: skip


def nice_buckets(start_s: float, end_s: float, max_buckets: int) -> tuple[float, float, int]:
    """(aligned start, bucket length, count): round lengths, at most `max_buckets`.

    The bucket length follows the time range (seconds for a short test run,
    minutes over hours, hours over days) and buckets start on multiples of
    their length, so their edges fall on round clock times. A range that ends
    before it starts is read as an empty one at `start_s`; fewer than one
    bucket means one.
    """
    max_buckets = max(int(max_buckets), 1)
    end_s = max(end_s, start_s)
    span_s = end_s - start_s
    for bucket_s in NICE_BUCKETS_S:
        start = math.floor(start_s / bucket_s) * bucket_s
        count = math.floor((end_s - start) / bucket_s) + 1
        if count <= max_buckets:
            return start, float(bucket_s), count
    bucket_s = span_s / max_buckets if span_s > 0 else 1.0
    return start_s, bucket_s, max_buckets


def heatmap(
    series: Mapping[str, SeriesLike],
    buckets: int = 120,
    host_memory_total_bytes: float | None = None,
    start_wall_time_s: float | None = None,
    end_wall_time_s: float | None = None,
    facts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Time buckets x series: the mean per bucket, raw and normalized to 0..1.

    Args:
      series: Tag -> series; limit series (GPU memory total, power limit,
        container limits, throttle bitmask) scale others and get no row.
      buckets: The most time buckets to use; their length is the shortest
        of `NICE_BUCKETS_S` that fits (see `nice_buckets`).
      host_memory_total_bytes: Scales ``system/memory_used_bytes`` (from run facts).
      start_wall_time_s: Start of the range (default: earliest point).
      end_wall_time_s: End of the range (default: latest point).
      facts: The run's latest ``run/facts`` document: tells whether
        TensorFlow's GPU series may be scaled by an NVML GPU's total (see
        `tf_gpu_to_nvml_gpu`).

    Returns:
      ``{"start_wall_time_s", "end_wall_time_s", "bucket_s", "rows"}`` as in
      http_api.md; empty buckets are None.
    """
    # Natural order: "cpu_core/2" before "cpu_core/10", GPU 2 before GPU 10.
    tags = sorted(
        (t for t in series if not _LIMIT_SERIES_RE.fullmatch(t)),
        key=lambda t: [
            (0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", t)
        ],
    )
    walls = [series[t].wall_time for t in tags if len(series[t].wall_time)]
    if start_wall_time_s is None:
        start_wall_time_s = min((float(w.min()) for w in walls), default=None)
    if end_wall_time_s is None:
        end_wall_time_s = max((float(w.max()) for w in walls), default=None)
    if start_wall_time_s is None or end_wall_time_s is None:
        return {"start_wall_time_s": None, "end_wall_time_s": None, "bucket_s": None, "rows": []}
    start_wall_time_s, bucket_s, buckets = nice_buckets(start_wall_time_s, end_wall_time_s, buckets)
    end_wall_time_s = start_wall_time_s + buckets * bucket_s
    tf_to_nvml = tf_gpu_to_nvml_gpu(series, facts)
    rows = []
    for tag in tags:
        s = series[tag]
        ok = np.isfinite(s.value)
        if not ok.any():
            continue
        v = s.value[ok]
        means, counts = bucket_means(s, start_wall_time_s, bucket_s, buckets)
        lo, hi = float(v.min()), float(v.max())
        limit = _limit_of(tag, series, host_memory_total_bytes, tf_to_nvml)
        if limit:
            norm = np.clip(means / limit, 0.0, 1.0)
            scale = "limit"
        else:
            norm = (means - lo) / (hi - lo) if hi > lo else np.zeros(buckets)
            scale = "range"
        empty = counts == 0
        rows.append(
            {
                "tag": tag,
                "unit": s.unit,
                "label": label_of(tag),
                "scale": scale,
                "min": lo,
                "max": hi,
                "limit": limit,
                "values": _with_none(means, empty),
                "normalized": _with_none(np.round(norm, 4), empty),
            }
        )
    return {
        "start_wall_time_s": start_wall_time_s,
        "end_wall_time_s": end_wall_time_s,
        "bucket_s": bucket_s,
        "rows": rows,
    }


def bucket_means(
    s: SeriesLike, start_wall_time_s: float, bucket_s: float, buckets: int
) -> tuple[np.ndarray, np.ndarray]:
    """The mean of `s`'s finite values in each time bucket, and their counts.

    Bucket ``i`` covers ``start + i * bucket_s`` up to the next; points
    before the first or after the last bucket count in that bucket. Empty
    buckets have the mean NaN (and count 0).
    """
    ok = np.isfinite(s.value)
    v = s.value[ok]
    idx = np.clip(
        ((s.wall_time[ok] - start_wall_time_s) / bucket_s).astype(np.int64), 0, buckets - 1
    )
    counts = np.bincount(idx, minlength=buckets)
    sums = np.bincount(idx, weights=v, minlength=buckets)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means, counts


def _with_none(x: np.ndarray, empty: np.ndarray) -> list[float | None]:
    out: list[float | None] = x.tolist()
    for i in np.flatnonzero(empty).tolist():
        out[i] = None
    return out
