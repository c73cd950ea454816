"""Anomalies in one run's series: spikes, non-finite values, level shifts, GPU
utilization collapses and memory leaks.

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
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tb_plugin_ttsmon.analytics.common import SeriesLike, fixed, runs
from tb_plugin_ttsmon.units import format_amount, non_finite_name


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
    starts, ends = runs(hit)
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
                    f"{what}{tag} {format_amount(x[peak], s.unit)} at step {int(s.step[ip])} "
                    f"is {fixed(score, 1)}x its rolling median "
                    f"({format_amount(base[peak], s.unit)})"
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
    starts, ends = runs(bad)
    for a, b in zip(starts.tolist(), ends.tolist()):
        count = b - a + 1
        first = float(s.value[a])
        kinds = sorted({non_finite_name(v) for v in s.value[a : b + 1].tolist()})
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
    starts, ends = runs(hit)
    for a, b in zip(starts.tolist(), ends.tolist()):
        best = a + int(np.argmax(np.abs(rel[a : b + 1])))
        r = float(rel[best])
        c = int(changes[best])
        end = min(c + w - 1, len(x) - 1)
        i0, i1 = int(index[c]), int(index[end])
        rose = r > 0
        regression = rose == _higher_is_worse(tag)
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
                    f"{tag} {'rose' if rose else 'fell'} {fixed(abs(r) * 100)} % from "
                    f"{format_amount(before[best], s.unit)} to "
                    f"{format_amount(after[best], s.unit)} at step {int(s.step[i0])} "
                    f"({w} points before and after)" + (": a regression" if regression else "")
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
                f"{tag} rose steadily by {format_amount(rise, s.unit)} "
                f"(+{fixed(rise / start_level * 100)} %) over {fixed(span_s / 60)} min "
                f"({format_amount(slope * 60, s.unit)}/min, R² {r2:.2f}): a possible leak"
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
    starts, ends = runs(u < limit)
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
                    f"{tag} fell to {fixed(level)} % (typically {fixed(typical)} %) for "
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
      tags: Tags to scan (default: all of `series`); tags not in `series` are skipped.
      train_times_s: Training event wall times for collapse detection;
        default: taken from the ``train/`` series in `series`.
    """
    params = params or AnomalyParams()
    if train_times_s is None:
        train_times_s = train_wall_times(series)
    out: list[Anomaly] = []
    for tag in series if tags is None else tags:
        s = series.get(tag)
        if s is None:
            continue  # nothing recorded under it: nothing to find
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
