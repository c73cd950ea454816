"""Analytics over ttsmon series: anomalies, heatmap, correlation and findings.

Pure numpy: no TensorBoard, no HTTP. The plugin's analytics routes call it on
the points the data provider keeps, and a static report can call it on the
same arrays. Every function takes plain columns (wall time in seconds, step,
value) and returns plain Python data.

Costs are linear in the number of points: rolling statistics are taken over
block medians (a strided summary of the lookback), never over a full window
per point, so a 100 000-point series costs a few milliseconds.

Detection parameters (`AnomalyParams`), with their defaults from practice:

* ``spike``: a finite value above ``spike_ratio`` (5x) its rolling median
  baseline *and* more than ``spike_mad_k`` (6) scaled MADs above it. The
  baseline is the median of the previous ``lookback`` (500) points, taken as
  the median of ``window`` (25) block medians, and needs at least ``window``
  points of history. Checked on training, validation, gradient and inference
  latency series (resource series are bursty by nature).
* ``non_finite``: NaN / Inf points, consecutive ones merged into one range;
  critical for losses and gradient norms.
* ``level_shift``: the level of the ``shift_points`` (30) points after an
  index differs from that of the 30 before by at least ``shift_ratio`` (30 %),
  a level being the mean of three block medians (robust to single spikes);
  on inference latency / RTF and ``train/steps_per_s``. The change must also
  exceed ``shift_z`` (5) standard errors, so noisy latencies need a larger
  shift. A regression (latency up, throughput down) is a warning, an
  improvement is info.
* ``collapse``: GPU utilization below ``collapse_fraction`` (0.3) of its
  typical level (75th percentile, itself at least ``collapse_min_typical_percent``)
  for at least ``collapse_min_s`` (30 s) while training steps continue.
* ``leak``: ``process/rss_bytes`` (or container memory) rising steadily over
  at least ``leak_min_s`` (10 min): robust (Theil-Sen) slope > 0, a good fit
  (R² ≥ ``leak_min_r2``, 0.8), a rise of at least ``leak_min_rise_fraction``
  (10 %), and still rising in the second half (not a warm-up plateau).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SEVERITIES = ("critical", "warning", "info")
_SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}


class SeriesLike(Protocol):
    """What the functions here read from a series (``reader.Series`` fits)."""

    wall_time: np.ndarray  # float64 seconds since the epoch
    step: np.ndarray  # int64
    value: np.ndarray  # float64
    unit: str


@dataclasses.dataclass
class Columns:
    """A series as numpy columns, for callers without a `reader.Series`."""

    wall_time: np.ndarray
    step: np.ndarray
    value: np.ndarray
    unit: str = ""

    @classmethod
    def of(
        cls,
        wall_time_s: Sequence[float] | np.ndarray,
        value: Sequence[float] | np.ndarray,
        step: Sequence[int] | np.ndarray | None = None,
        unit: str = "",
    ) -> Columns:
        """Columns from array-likes; `step` defaults to 0, 1, 2, ..."""
        w = np.asarray(wall_time_s, dtype=np.float64)
        v = np.asarray(value, dtype=np.float64)
        s = np.arange(len(v), dtype=np.int64) if step is None else np.asarray(step, np.int64)
        return cls(w, s, v, unit)


# -- anomalies ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AnomalyParams:
    """Detection thresholds (see the module docstring for what each catches)."""

    spike_ratio: float = 5.0
    spike_mad_k: float = 6.0
    window: int = 25
    lookback: int = 500
    shift_ratio: float = 0.30
    shift_points: int = 30
    shift_z: float = 5.0
    collapse_fraction: float = 0.3
    collapse_min_s: float = 30.0
    collapse_min_typical_percent: float = 20.0
    leak_min_s: float = 600.0
    leak_min_r2: float = 0.8
    leak_min_rise_fraction: float = 0.10

    def to_dict(self) -> dict[str, Any]:
        """The parameters as JSON-able data."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One anomaly: where, what, how bad, and a sentence with numbers."""

    tag: str
    type: str  # spike | non_finite | level_shift | collapse | leak
    severity: str  # critical | warning | info
    start_wall_time_s: float
    end_wall_time_s: float
    start_step: int
    end_step: int
    score: float
    value: float | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The anomaly as JSON-able data (`value` may be non-finite; callers encode it)."""
        return dataclasses.asdict(self)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and (inclusive) ends of the runs of True in a boolean array."""
    if not len(mask):
        empty = np.zeros(0, np.int64)
        return empty, empty
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def _is_loss_or_gradient(tag: str) -> bool:
    return tag in ("train/loss", "val/loss", "train/gradient_norm") or (
        tag.startswith("gradients/") and tag.endswith("/norm")
    )


def _spike_tag(tag: str) -> bool:
    group = tag.split("/", 1)[0]
    if group in ("train", "val", "gradients"):
        # Rates and schedules move by design; accuracy is bounded.
        return not tag.endswith(("steps_per_s", "learning_rate", "accuracy"))
    return group == "inference" and "latency" in tag


def _shift_tag(tag: str) -> bool:
    return tag == "train/steps_per_s" or (
        tag.startswith("inference/") and ("latency" in tag or "rtf" in tag)
    )


# Higher is worse for latency and RTF, lower is worse for throughput.
def _higher_is_worse(tag: str) -> bool:
    return not tag.endswith(("steps_per_s", "requests_per_s", "audio_s_per_s"))


_LEAK_TAGS = ("process/rss_bytes", "container/memory_used_bytes")
_GPU_UTIL_RE = re.compile(r"gpu/(\d+)/utilization_percent")


def rolling_baseline(
    value: np.ndarray, window: int = 25, lookback: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Robust trailing baseline of each point: median and MAD of the points before it.

    The lookback is cut into ``window`` blocks of ``lookback // window``
    points; the baseline is the median of the block medians of the complete
    blocks before the point's own block, so a point never counts in its own
    baseline and the cost is O(n) instead of O(n * lookback).

    Args:
      value: Finite values, in order.
      window: Blocks in the lookback; also the history (points) required.
      lookback: Points the baseline looks back over.

    Returns:
      ``(median, mad)`` per point; NaN where fewer than `window` points precede
      the point's block.
    """
    n = len(value)
    median = np.full(n, np.nan)
    mad = np.full(n, np.nan)
    window = max(window, 1)
    block, nblocks = _blocks(n, window, lookback)
    if nblocks < 2:
        return median, mad
    grid = value[: nblocks * block].reshape(nblocks, block)
    block_med = np.median(grid, axis=1)
    block_mad = np.median(np.abs(grid - block_med[:, None]), axis=1)
    # For block j (its points), use blocks max(0, j - window) .. j - 1.
    need_blocks = max(1, -(-window // block))
    base_med = np.full(nblocks + 1, np.nan)
    base_mad = np.full(nblocks + 1, np.nan)
    # The first `window` blocks see a growing history: a short Python loop.
    for j in range(need_blocks, min(window, nblocks + 1)):
        prev = block_med[:j]
        base_med[j] = np.median(prev)
        base_mad[j] = _history_mad(prev, block_mad[:j])
    if nblocks >= window:
        meds = sliding_window_view(block_med, window)  # rows j - window .. j - 1
        mads = sliding_window_view(block_mad, window)
        base_med[window:] = np.median(meds, axis=1)
        # Spread: the typical within-block MAD, or the spread of block medians
        # when the level itself wanders (a slowly falling loss).
        between = np.median(np.abs(meds - base_med[window:, None]), axis=1)
        base_mad[window:] = np.maximum(np.median(mads, axis=1), between)
    per_point = np.repeat(np.arange(nblocks), block)
    median[: nblocks * block] = base_med[per_point]
    mad[: nblocks * block] = base_mad[per_point]
    # The tail that fills no whole block uses the baseline after the last block.
    median[nblocks * block :] = base_med[nblocks]
    mad[nblocks * block :] = base_mad[nblocks]
    return median, mad


def _blocks(n: int, window: int, lookback: int) -> tuple[int, int]:
    """Block size and count of `rolling_baseline` for `n` points."""
    # Short series get smaller blocks, so that they are judged at all.
    block = max(1, min(lookback // window, n // (2 * window)))
    return block, n // block


def _may_spike(x: np.ndarray, ratio: float, window: int, lookback: int) -> bool:
    """False when no point can exceed `ratio` times its baseline (cheap, exact test).

    A baseline is a median of block medians, so it is at least their minimum
    over its history: a rolling *minimum* (cheap) bounds it from below.
    """
    window = max(window, 1)
    block, nblocks = _blocks(len(x), window, lookback)
    if nblocks < 2:
        return False
    block_med = np.median(x[: nblocks * block].reshape(nblocks, block), axis=1)
    padded = np.concatenate((np.full(window, np.inf), block_med))
    lower = sliding_window_view(padded, window).min(axis=1)  # row j: blocks j-window..j-1
    if (lower[np.isfinite(lower)] <= 0).any():
        return True  # no positive lower bound: let the full test decide
    per_point = np.minimum(np.arange(len(x)) // block, nblocks)
    return bool((x > ratio * lower[per_point]).any())


def _history_mad(block_med: np.ndarray, block_mad: np.ndarray) -> float:
    between = float(np.median(np.abs(block_med - np.median(block_med))))
    return max(float(np.median(block_mad)), between)


def detect_spikes(tag: str, s: SeriesLike, params: AnomalyParams) -> list[Anomaly]:
    """Finite values far above their robust rolling baseline (one anomaly per run of them)."""
    finite = np.isfinite(s.value)
    index = np.flatnonzero(finite)
    x = s.value[index]
    if len(x) <= params.window or not _may_spike(
        x, params.spike_ratio, params.window, params.lookback
    ):
        return []
    base, mad = rolling_baseline(x, params.window, params.lookback)
    # 1.4826 * MAD estimates the standard deviation of normal noise; the
    # floor keeps a perfectly flat history from making every wiggle a spike.
    spread = np.maximum(1.4826 * mad, 1e-9 * np.abs(base))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = x / base
        hit = (base > 0) & (ratio > params.spike_ratio) & (x - base > params.spike_mad_k * spread)
    out = []
    starts, ends = _runs(hit)
    for a, b in zip(starts.tolist(), ends.tolist()):
        peak = a + int(np.argmax(x[a : b + 1]))
        i0, i1, ip = int(index[a]), int(index[b]), int(index[peak])
        score = float(ratio[peak])
        severity = "critical" if _is_loss_or_gradient(tag) and score >= 100 else "warning"
        what = "gradient explosion: " if "gradient" in tag else ""
        out.append(
            Anomaly(
                tag=tag,
                type="spike",
                severity=severity,
                start_wall_time_s=float(s.wall_time[i0]),
                end_wall_time_s=float(s.wall_time[i1]),
                start_step=int(s.step[i0]),
                end_step=int(s.step[i1]),
                score=round(score, 2),
                value=float(x[peak]),
                message=(
                    f"{what}{tag} {_num(x[peak])} at step {int(s.step[ip])} is {score:.1f}x "
                    f"its rolling median ({_num(base[peak])})"
                ),
            )
        )
    return out


def detect_non_finite(tag: str, s: SeriesLike) -> list[Anomaly]:
    """NaN / Inf points, consecutive ones merged into one range."""
    bad = ~np.isfinite(s.value)
    if not bad.any():
        return []
    severity = "critical" if _is_loss_or_gradient(tag) else "warning"
    out = []
    starts, ends = _runs(bad)
    for a, b in zip(starts.tolist(), ends.tolist()):
        count = b - a + 1
        first = float(s.value[a])
        kinds = sorted({_nf_name(v) for v in s.value[a : b + 1].tolist()})
        where = (
            f"at step {int(s.step[a])}"
            if count == 1
            else f"at {count} points from step {int(s.step[a])} to {int(s.step[b])}"
        )
        out.append(
            Anomaly(
                tag=tag,
                type="non_finite",
                severity=severity,
                start_wall_time_s=float(s.wall_time[a]),
                end_wall_time_s=float(s.wall_time[b]),
                start_step=int(s.step[a]),
                end_step=int(s.step[b]),
                score=float(count),
                value=first,
                message=f"{tag} is {'/'.join(kinds)} {where}",
            )
        )
    return out


def _nf_name(v: float) -> str:
    return "NaN" if math.isnan(v) else ("Inf" if v > 0 else "-Inf")


def detect_level_shifts(tag: str, s: SeriesLike, params: AnomalyParams) -> list[Anomaly]:
    """Lasting changes of level: the levels of adjacent windows differ by `shift_ratio`.

    The level of a window of `shift_points` points is the mean of the medians
    of its three blocks: as robust to isolated spikes as a median (each block
    median ignores them), as precise as a mean, and O(n) for the whole series.
    Change points are tested at block boundaries.
    """
    index = np.flatnonzero(np.isfinite(s.value))
    x = s.value[index]
    w = params.shift_points
    b = max(1, w // 3)  # block size
    k = max(1, w // b)  # blocks per window
    w = k * b
    nb = len(x) // b
    if nb < 2 * k:
        return []
    grid = x[: nb * b].reshape(nb, b)
    block_med = np.median(grid, axis=1)
    block_mad = np.median(np.abs(grid - block_med[:, None]), axis=1)
    level = sliding_window_view(block_med, k).mean(axis=1)  # window starting at block j
    spread = sliding_window_view(block_mad, k).mean(axis=1)
    before, after = level[:-k], level[k:]
    changes = (np.arange(len(before)) + k) * b  # first point of the "after" window
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (after - before) / np.abs(before)
    # The change must also stand out of the noise: the level's standard error
    # is about 1.25 * sigma / sqrt(w), with sigma ~ 1.4826 * MAD.
    sigma = 1.4826 * np.maximum(spread[:-k], spread[k:])
    noise = params.shift_z * 1.25 * sigma * math.sqrt(2.0 / w)
    hit = (np.abs(before) > 0) & (np.abs(rel) >= params.shift_ratio)
    hit &= np.abs(after - before) > noise
    out = []
    starts, ends = _runs(hit)
    for a, b in zip(starts.tolist(), ends.tolist()):
        best = a + int(np.argmax(np.abs(rel[a : b + 1])))
        r = float(rel[best])
        c = int(changes[best])
        end = min(c + w - 1, len(x) - 1)
        i0, i1 = int(index[c]), int(index[end])
        rose = r > 0
        regression = rose == _higher_is_worse(tag)
        unit = f" {s.unit}" if s.unit else ""
        out.append(
            Anomaly(
                tag=tag,
                type="level_shift",
                severity="warning" if regression else "info",
                start_wall_time_s=float(s.wall_time[i0]),
                end_wall_time_s=float(s.wall_time[i1]),
                start_step=int(s.step[i0]),
                end_step=int(s.step[i1]),
                score=round(abs(r) / params.shift_ratio, 2),
                value=float(after[best]),
                message=(
                    f"{tag} {'rose' if rose else 'fell'} {abs(r) * 100:.0f} % from "
                    f"{_num(before[best])}{unit} to {_num(after[best])}{unit} at step "
                    f"{int(s.step[i0])} ({w} points before and after)"
                    + (": a regression" if regression else "")
                ),
            )
        )
    return out


def detect_leak(tag: str, s: SeriesLike, params: AnomalyParams) -> list[Anomaly]:
    """A steady rise over at least `leak_min_s` (robust linear trend, good fit)."""
    ok = np.isfinite(s.value)
    t, y = s.wall_time[ok], s.value[ok]
    if len(y) < 20 or t[-1] - t[0] < params.leak_min_s:
        return []
    # Theil-Sen on an even subsample: robust to the odd outlier, O(m^2) with m <= 200.
    pick = np.unique(np.linspace(0, len(y) - 1, min(len(y), 200)).astype(np.int64))
    ts, ys = t[pick] - t[0], y[pick]
    slope = _theil_sen(ts, ys)
    if not slope > 0:
        return []
    intercept = float(np.median(ys - slope * ts))
    fit = intercept + slope * ts
    total = float(np.sum((ys - ys.mean()) ** 2))
    r2 = 1.0 - float(np.sum((ys - fit) ** 2)) / total if total > 0 else 0.0
    start_level = intercept
    span_s = float(t[-1] - t[0])
    rise = slope * span_s
    half = len(ts) // 2
    late = _theil_sen(ts[half:], ys[half:])
    if (
        r2 < params.leak_min_r2
        or start_level <= 0
        or rise < params.leak_min_rise_fraction * start_level
        or not late >= 0.5 * slope  # a warm-up rise that levelled off is no leak
    ):
        return []
    return [
        Anomaly(
            tag=tag,
            type="leak",
            severity="warning",
            start_wall_time_s=float(t[0]),
            end_wall_time_s=float(t[-1]),
            start_step=int(s.step[ok][0]),
            end_step=int(s.step[ok][-1]),
            score=round(rise / start_level / params.leak_min_rise_fraction, 2),
            value=float(y[-1]),
            message=(
                f"{tag} rose steadily by {_amount(rise, s.unit)} "
                f"(+{rise / start_level * 100:.0f} %) over {span_s / 60:.0f} min "
                f"({_amount(slope * 60, s.unit)}/min, R² {r2:.2f}): a possible leak"
            ),
        )
    ]


def _theil_sen(t: np.ndarray, y: np.ndarray) -> float:
    if len(t) < 2:
        return math.nan
    i, j = np.triu_indices(len(t), k=1)
    dt = t[j] - t[i]
    keep = dt > 0
    if not keep.any():
        return math.nan
    return float(np.median((y[j] - y[i])[keep] / dt[keep]))


def detect_collapse(
    tag: str, gpu: SeriesLike, train_wall_times_s: np.ndarray, params: AnomalyParams
) -> list[Anomaly]:
    """GPU utilization far below its typical level for a while, while training runs.

    Args:
      tag: The GPU utilization tag.
      gpu: Its series.
      train_wall_times_s: Wall times of training events (any ``train/`` series,
        sorted); a low stretch counts only if at least two fall inside it.
      params: Thresholds.
    """
    ok = np.isfinite(gpu.value)
    t, u, steps = gpu.wall_time[ok], gpu.value[ok], gpu.step[ok]
    if len(u) < 10 or len(train_wall_times_s) < 2:
        return []
    typical = float(np.percentile(u, 75))
    if typical < params.collapse_min_typical_percent:
        return []
    limit = params.collapse_fraction * typical
    out = []
    starts, ends = _runs(u < limit)
    for a, b in zip(starts.tolist(), ends.tolist()):
        # A run's duration reaches to the next sample: a single low sample
        # still covers one interval.
        stop = float(t[b + 1]) if b + 1 < len(t) else float(t[b])
        duration_s = stop - float(t[a])
        if duration_s < params.collapse_min_s:
            continue
        lo, hi = np.searchsorted(train_wall_times_s, [t[a], stop])
        if hi - lo < 2:
            continue  # training paused too (evaluation, checkpointing): no input stall
        level = float(np.mean(u[a : b + 1]))
        out.append(
            Anomaly(
                tag=tag,
                type="collapse",
                severity="warning",
                start_wall_time_s=float(t[a]),
                end_wall_time_s=float(t[b]),
                start_step=int(steps[a]),
                end_step=int(steps[b]),
                score=round(typical / max(level, 1.0), 2),
                value=level,
                message=(
                    f"{tag} fell to {level:.0f} % (typically {typical:.0f} %) for "
                    f"{duration_s:.0f} s while {hi - lo} training steps were logged: "
                    "the GPU waited for input"
                ),
            )
        )
    return out


def train_wall_times(series: Mapping[str, SeriesLike]) -> np.ndarray:
    """Sorted wall times of all training events of a run."""
    parts = [s.wall_time for tag, s in series.items() if tag.startswith("train/")]
    if not parts:
        return np.zeros(0)
    return np.sort(np.concatenate(parts))


def detect_anomalies(
    series: Mapping[str, SeriesLike],
    params: AnomalyParams | None = None,
    tags: Iterable[str] | None = None,
    train_times_s: np.ndarray | None = None,
) -> list[Anomaly]:
    """Every anomaly in `series` (or only in `tags`), oldest first.

    Args:
      series: Tag -> series of one run.
      params: Thresholds (default `AnomalyParams()`).
      tags: Tags to scan (default: all of `series`).
      train_times_s: Training event wall times for collapse detection;
        default: taken from the ``train/`` series in `series`.
    """
    params = params or AnomalyParams()
    if train_times_s is None:
        train_times_s = train_wall_times(series)
    out: list[Anomaly] = []
    for tag in series if tags is None else tags:
        s = series[tag]
        out += detect_non_finite(tag, s)
        if _spike_tag(tag):
            out += detect_spikes(tag, s, params)
        if _shift_tag(tag):
            out += detect_level_shifts(tag, s, params)
        if tag in _LEAK_TAGS:
            out += detect_leak(tag, s, params)
        if _GPU_UTIL_RE.fullmatch(tag):
            out += detect_collapse(tag, s, train_times_s, params)
    out.sort(key=lambda a: (a.start_wall_time_s, a.tag))
    return out


# -- heatmap -------------------------------------------------------------------------

# Series that are limits of others, not activity worth a row.
_LIMIT_SERIES_RE = re.compile(
    r"(gpu/\d+/(memory_total_bytes|power_limit_w|throttle_reasons_bitmask)"
    r"|container/(cpu_limit_cores|memory_limit_bytes))"
)


def limit_of(
    tag: str, series: Mapping[str, SeriesLike], host_memory_total_bytes: float | None = None
) -> float | None:
    """The known ceiling of `tag` in its own unit, or None (scale to its own range)."""
    if tag == "process/cpu_percent":
        return None  # 100 per core: the core count is not a series
    s = series.get(tag)
    if s is not None and s.unit == "%":
        return 100.0
    m = re.fullmatch(
        r"(?:tf/)?gpu/(\d+)/(memory_used_bytes|process_memory_used_bytes|"
        r"memory_current_bytes|memory_peak_bytes)",
        tag,
    )
    if m:
        return _max_of(series.get(f"gpu/{m.group(1)}/memory_total_bytes"))
    m = re.fullmatch(r"gpu/(\d+)/power_w", tag)
    if m:
        return _max_of(series.get(f"gpu/{m.group(1)}/power_limit_w"))
    if tag == "container/memory_used_bytes":
        return _max_of(series.get("container/memory_limit_bytes"))
    if tag == "container/cpu_usage_cores":
        return _max_of(series.get("container/cpu_limit_cores"))
    if tag == "system/memory_used_bytes" and host_memory_total_bytes:
        return float(host_memory_total_bytes)
    if s is not None and s.unit == "bool":
        return 1.0
    return None


def _max_of(s: SeriesLike | None) -> float | None:
    if s is None:
        return None
    v = s.value[np.isfinite(s.value)]
    return float(v.max()) if len(v) and v.max() > 0 else None


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
    their length, so their edges fall on round clock times.
    """
    span_s = max(end_s - start_s, 0.0)
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

    Returns:
      ``{"start_wall_time_s", "end_wall_time_s", "bucket_s", "rows"}`` as in
      http_api.md; empty buckets are None.
    """
    tags = sorted(t for t in series if not _LIMIT_SERIES_RE.fullmatch(t))
    walls = [series[t].wall_time for t in tags if len(series[t].wall_time)]
    if start_wall_time_s is None:
        start_wall_time_s = min((float(w.min()) for w in walls), default=None)
    if end_wall_time_s is None:
        end_wall_time_s = max((float(w.max()) for w in walls), default=None)
    if start_wall_time_s is None or end_wall_time_s is None:
        return {"start_wall_time_s": None, "end_wall_time_s": None, "bucket_s": None, "rows": []}
    start_wall_time_s, bucket_s, buckets = nice_buckets(start_wall_time_s, end_wall_time_s, buckets)
    end_wall_time_s = start_wall_time_s + buckets * bucket_s
    rows = []
    for tag in tags:
        s = series[tag]
        ok = np.isfinite(s.value)
        if not ok.any():
            continue
        v = s.value[ok]
        idx = np.clip(
            ((s.wall_time[ok] - start_wall_time_s) / bucket_s).astype(np.int64), 0, buckets - 1
        )
        counts = np.bincount(idx, minlength=buckets)
        sums = np.bincount(idx, weights=v, minlength=buckets)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        lo, hi = float(v.min()), float(v.max())
        limit = limit_of(tag, series, host_memory_total_bytes)
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


def _with_none(x: np.ndarray, empty: np.ndarray) -> list[float | None]:
    out: list[float | None] = x.tolist()
    for i in np.flatnonzero(empty).tolist():
        out[i] = None
    return out


# -- correlation ---------------------------------------------------------------------

# Grid cells past this are merged (the grid widens), bounding memory and time.
MAX_GRID_CELLS = 1_000_000
# Re-rank a pair for Spearman when its series' own cells exceed their common
# ones by more than this share (1 %: the rank error below it is negligible).
SPEARMAN_RERANK_SHARE = 0.01


@dataclasses.dataclass
class Aligned:
    """Series averaged on a common wall-time grid.

    Attributes:
      grid_s: Cell width in seconds.
      start_wall_time_s: Wall time of cell 0's start.
      values: ``(series, cells)`` float64, NaN where a series has no point.
    """

    grid_s: float
    start_wall_time_s: float
    values: np.ndarray


def _median_interval_s(wall: np.ndarray) -> float | None:
    if len(wall) < 2:
        return None
    d = np.diff(wall)
    if (d < 0).any():  # points come in step order, which is nearly always time order
        d = np.diff(np.sort(wall))
    d = d[d > 0]
    return float(np.median(d)) if len(d) else None


def align(series: Sequence[SeriesLike], grid_s: float | None = None) -> Aligned:
    """Averages each series per cell of a common grid (default: median sampling interval)."""
    finite = [np.isfinite(s.value) for s in series]
    walls = [s.wall_time[f] for s, f in zip(series, finite)]
    present = [w for w in walls if len(w)]
    if not present:
        return Aligned(grid_s or 1.0, 0.0, np.full((len(series), 0), np.nan))
    start = min(float(w.min()) for w in present)
    end = max(float(w.max()) for w in present)
    if grid_s is None:
        intervals = [i for i in (_median_interval_s(w) for w in present) if i]
        grid_s = float(np.median(intervals)) if intervals else 1.0
    grid_s = max(grid_s, (end - start) / MAX_GRID_CELLS, 1e-6)
    cells = int((end - start) / grid_s) + 1
    out = np.full((len(series), cells), np.nan)
    for k, (s, f, w) in enumerate(zip(series, finite, walls)):
        if not len(w):
            continue
        idx = np.minimum(((w - start) / grid_s).astype(np.int64), cells - 1)
        if len(idx) < 2 or bool(np.all(idx[1:] > idx[:-1])):
            out[k, idx] = s.value[f]  # one point per cell (the usual case): no averaging
            continue
        counts = np.bincount(idx, minlength=cells)
        sums = np.bincount(idx, weights=s.value[f], minlength=cells)
        has = counts > 0
        out[k, has] = sums[has] / counts[has]
    return Aligned(grid_s, start, out)


def rank_average(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their mean rank (what Spearman needs)."""
    n = len(x)
    # Any sort will do: tied values share their mean rank whatever their order.
    order = np.argsort(x)
    xs = x[order]
    new = np.empty(n, dtype=bool)
    if n:
        new[0] = True
        new[1:] = xs[1:] != xs[:-1]
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    counts = np.diff(np.append(first, n))
    mean_rank = first + (counts - 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = mean_rank[group]
    return ranks


# Columns per pass of the correlation sums: the temporaries stay in cache,
# which at a million cells is several times faster than whole-array passes.
_CHUNK_CELLS = 8192


def _pairwise_pearson(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson per pair of rows over the columns where both have values.

    Sums are accumulated in column chunks with matrix products: one product
    per chunk for rows without gaps (the usual case), and a few thin ones for
    the rows with gaps, whose pairs are summed over their common columns.
    """
    k, cells = x.shape
    m = np.isfinite(x)
    counts = m.sum(axis=1)
    g = np.flatnonzero(counts < cells)  # rows with gaps
    sums = np.zeros(k)
    for c0 in range(0, cells, _CHUNK_CELLS):
        xc = x[:, c0 : c0 + _CHUNK_CELLS]
        sums += np.where(m[:, c0 : c0 + _CHUNK_CELLS], xc, 0.0).sum(axis=1)
    # Centre each row first: the sums below then stay small and exact enough.
    mean = np.divide(sums, counts, out=np.zeros(k), where=counts > 0)
    sxy = np.zeros((k, k))
    ng, sg, sj, ssg, ssj = (np.zeros((len(g), k)) for _ in range(5))
    for c0 in range(0, cells, _CHUNK_CELLS):
        x0 = x[:, c0 : c0 + _CHUNK_CELLS] - mean[:, None]
        if len(g):
            mc = m[:, c0 : c0 + _CHUNK_CELLS]
            x0[~mc] = 0.0
        sxy += x0 @ x0.T
        if len(g):
            mf = mc.astype(np.float64)
            mg, x0g = mf[g], x0[g]
            x2 = x0 * x0
            ng += mg @ mf.T  # [a, j]: columns that row g[a] and row j share
            sg += x0g @ mf.T  # sum of row g[a] over them
            sj += mg @ x0.T  # sum of row j over them
            ssg += x2[g] @ mf.T
            ssj += mg @ x2.T
    n = np.broadcast_to(np.minimum.outer(counts, counts), (k, k)).astype(np.int64)
    ss = np.diag(sxy).copy()
    scale = ss + counts * mean * mean  # sum of squares: the scale of rounding noise
    with np.errstate(invalid="ignore", divide="ignore"):
        r = sxy / np.sqrt(np.outer(ss, ss))
    # Relative tolerance: a constant series leaves rounding noise, not zero.
    flat = ss <= 1e-12 * scale + 1e-300
    r = np.where(flat[:, None] | flat[None, :] | (n < 3), np.nan, np.clip(r, -1.0, 1.0))
    if len(g):
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sxy[g] - sg * sj / ng
            var_g = ssg - sg * sg / ng
            var_j = ssj - sj * sj / ng
            r_g = cov / np.sqrt(var_g * var_j)
        flat_g = var_g <= 1e-12 * (ssg + ng * mean[g, None] ** 2) + 1e-300
        flat_j = var_j <= 1e-12 * (ssj + ng * mean[None, :] ** 2) + 1e-300
        r_g = np.where((ng < 3) | flat_g | flat_j, np.nan, np.clip(r_g, -1.0, 1.0))
        r[g, :], r[:, g] = r_g, r_g.T
        n = n.copy()
        n[g, :], n[:, g] = ng.astype(np.int64), ng.T.astype(np.int64)
    return r, n


def correlation(aligned: Aligned) -> dict[str, Any]:
    """Pearson and Spearman matrices with pairwise counts (None where undefined).

    Spearman is Pearson on average ranks. Each series is ranked over its own
    cells; a pair whose series cover cells the other lacks (more than
    `SPEARMAN_RERANK_SHARE` of their common cells) is ranked again on the
    common cells, so the value is exact there and within that share elsewhere.
    """
    x = aligned.values
    pearson, n = _pairwise_pearson(x)
    m = np.isfinite(x)
    ranks = np.full_like(x, np.nan)
    for k in range(len(x)):
        ranks[k, m[k]] = rank_average(x[k, m[k]])
    spearman, _ = _pairwise_pearson(ranks)
    own = np.diag(n)
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            # Ranks over each series' own cells differ from ranks over the
            # pair's common cells by at most the share of cells dropped.
            if max(own[i], own[j]) - n[i, j] > SPEARMAN_RERANK_SHARE * n[i, j]:
                r = spearman_pair(x[i], x[j])
                spearman[i, j] = spearman[j, i] = np.nan if r is None else r
    return {
        "grid_s": aligned.grid_s,
        "pearson": _matrix(pearson),
        "spearman": _matrix(spearman),
        "n": n.tolist(),
    }


def _matrix(r: np.ndarray) -> list[list[float | None]]:
    return [[None if math.isnan(v) else round(v, 6) for v in row] for row in r.tolist()]


def _pair_stats(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3:
        return None
    r, _ = _pairwise_pearson(np.vstack([x, y]))
    v = float(r[0, 1])
    return None if math.isnan(v) else round(v, 6)


def pearson_pair(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson of two aligned rows over their common cells, or None."""
    both = np.isfinite(x) & np.isfinite(y)
    return _pair_stats(x[both], y[both])


def spearman_pair(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman of two aligned rows over their common cells, or None."""
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return None
    return _pair_stats(rank_average(x[both]), rank_average(y[both]))


def scatter(x: SeriesLike, y: SeriesLike, max_points: int = 2000) -> dict[str, Any]:
    """Aligned ``[wall_time_s, x, y]`` pairs, evenly subsampled, with both coefficients."""
    a = align([x, y])
    both = np.isfinite(a.values).all(axis=0)
    cells = np.flatnonzero(both)
    xs, ys = a.values[0, cells], a.values[1, cells]
    n = len(cells)
    pick = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(np.int64))
    if n == 0:
        pick = pick[:0]
    wall = a.start_wall_time_s + cells[pick] * a.grid_s
    return {
        "grid_s": a.grid_s,
        "n": int(n),
        "pearson": _pair_stats(xs, ys),
        "spearman": spearman_pair(xs, ys),
        "points": [list(p) for p in zip(wall.tolist(), xs[pick].tolist(), ys[pick].tolist())],
    }


# -- findings ------------------------------------------------------------------------

# Fewer sampled points than this say nothing about a run's efficiency.
MIN_SAMPLES = 10


@dataclasses.dataclass(frozen=True)
class Finding:
    """One plain-language statement about a run, with the numbers it cites."""

    id: str
    severity: str
    title: str
    text: str
    numbers: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-able data."""
        return dataclasses.asdict(self)


def _finite_values(s: SeriesLike | None) -> np.ndarray:
    if s is None:
        return np.zeros(0)
    return s.value[np.isfinite(s.value)]


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
    out.sort(key=lambda f: _SEVERITY_RANK.get(f.severity, 9))
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
    utils = [_finite_values(series.get(f"gpu/{g}/utilization_percent")) for g in gpus]
    utils = [u for u in utils if len(u) >= MIN_SAMPLES]
    cpu_tag = (
        "container/cpu_percent_of_limit"
        if "container/cpu_percent_of_limit" in series
        else "system/cpu_percent"
    )
    cpu = _finite_values(series.get(cpu_tag))
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
            f"GPU utilization averaged {gpu_mean:.0f} % while {where} was at {cpu_mean:.0f} %: "
            "the input pipeline is the likely bottleneck.",
            {
                "gpu_utilization_mean_percent": round(gpu_mean, 1),
                "cpu_mean_percent": round(cpu_mean, 1),
            },
        )
    ]


def _gpu_memory(series: Mapping[str, SeriesLike], g: int) -> list[Finding]:
    used = series.get(f"gpu/{g}/memory_used_bytes")
    total = _max_of(series.get(f"gpu/{g}/memory_total_bytes"))
    pct = _finite_values(series.get(f"gpu/{g}/memory_used_percent"))
    if used is not None and total:
        u = _finite_values(used)
        if len(u) >= MIN_SAMPLES:
            pct = u / total * 100.0
    if len(pct) < MIN_SAMPLES:
        return []
    peak = float(pct.max())
    size = f" of {_amount(total, 'B')}" if total else ""
    numbers = {"gpu_memory_peak_percent": round(peak, 1)}
    if total:
        numbers["gpu_memory_total_bytes"] = total
    if peak > 95:
        return [
            Finding(
                "gpu_memory_full",
                "warning",
                f"GPU {g} memory nearly full",
                f"Peak GPU {g} memory {peak:.0f} %{size}: close to out-of-memory; "
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
                f"Peak GPU {g} memory {peak:.0f} %{size}: there is room for a larger batch.",
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
        temp = _finite_values(series.get(f"gpu/{g}/temperature_c"))
        if reason == "thermal" and len(temp):
            extra = f", temperature up to {temp.max():.0f} °C"
            numbers["temperature_max_c"] = float(temp.max())
        power = _finite_values(series.get(f"gpu/{g}/power_w"))
        if reason == "power" and len(power):
            extra = f", power up to {power.max():.0f} W"
            numbers["power_max_w"] = float(power.max())
        out.append(
            Finding(
                f"gpu_{reason}_throttling",
                "warning",
                f"GPU {g} {reason} throttling",
                f"GPU {g} was {reason}-throttled in {share:.0f} % of the samples with "
                f"utilization ≥ 80 %{extra}: clocks were cut while it was busy.",
                numbers,
            )
        )
    return out


def _host_memory(series: Mapping[str, SeriesLike]) -> list[Finding]:
    out = []
    mem = _finite_values(series.get("system/memory_percent"))
    if len(mem) >= MIN_SAMPLES and mem.max() > 90:
        out.append(
            Finding(
                "host_memory_pressure",
                "critical" if mem.max() > 97 else "warning",
                "Host memory nearly exhausted",
                f"Host memory peaked at {mem.max():.0f} % (mean {mem.mean():.0f} %): "
                "the run risks swapping or the OOM killer.",
                {"memory_peak_percent": float(mem.max()), "memory_mean_percent": float(mem.mean())},
            )
        )
    swap = series.get("system/swap_used_bytes")
    sv = _finite_values(swap)
    if swap is not None and len(sv) >= MIN_SAMPLES:
        rise = float(sv.max() - sv[0])
        if rise > 256 * 2**20:
            out.append(
                Finding(
                    "swap_pressure",
                    "warning",
                    "The host is swapping",
                    f"Swap use grew by {_amount(rise, 'B')} to {_amount(sv.max(), 'B')} "
                    "during the run: memory is short and steps slow down.",
                    {"swap_rise_bytes": rise, "swap_peak_bytes": float(sv.max())},
                )
            )
    return out


def _disk(series: Mapping[str, SeriesLike]) -> list[Finding]:
    used = _finite_values(series.get("system/logdir_disk_used_percent"))
    if not len(used) or used[-1] <= 90:
        return []
    free = _finite_values(series.get("system/logdir_disk_free_bytes"))
    free_text = f" ({_amount(free[-1], 'B')} free)" if len(free) else ""
    return [
        Finding(
            "logdir_disk_full",
            "critical" if used[-1] > 95 else "warning",
            "The log directory's disk is nearly full",
            f"The log directory's disk is {used[-1]:.0f} % full{free_text}: "
            "checkpoints and logs may fail to write.",
            {"disk_used_percent": float(used[-1])},
        )
    ]


def _inference(series: Mapping[str, SeriesLike]) -> list[Finding]:
    rtf = _finite_values(series.get("inference/rtf"))
    if len(rtf) < 5:
        return []
    mean = float(rtf.mean())
    if mean <= 1:
        return []
    lat = _finite_values(series.get("inference/latency_ms"))
    p95 = float(np.percentile(lat, 95)) if len(lat) else None
    tail = f", p95 latency {p95:.0f} ms" if p95 is not None else ""
    numbers = {"rtf_mean": round(mean, 3), "requests": float(len(rtf))}
    if p95 is not None:
        numbers["latency_p95_ms"] = round(p95, 1)
    return [
        Finding(
            "slower_than_real_time",
            "warning",
            "Inference is slower than real time",
            f"Mean RTF {mean:.2f} over {len(rtf)} requests{tail}: "
            "synthesis takes longer than the audio it produces.",
            numbers,
        )
    ]


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


# -- formatting ----------------------------------------------------------------------


def _num(x: float) -> str:
    """A number for a sentence: 3 significant digits, no exponent for everyday sizes."""
    x = float(x)
    if not math.isfinite(x):
        return _nf_name(x)
    if x == 0 or 1e-3 <= abs(x) < 1e6:
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return f"{x:.3g}"


def _amount(x: float, unit: str) -> str:
    """`x` in `unit`, bytes in decimal multiples (what GPU and disk makers quote)."""
    if unit == "B":
        for div, name in ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
            if abs(x) >= div:
                return f"{x / div:.3g} {name}"
        return f"{x:.0f} B"
    return f"{_num(x)} {unit}".rstrip()
