"""Spike-preserving downsampling of a series (numpy, O(n)).

A chart of 100 000 points on 800 pixels shows min/max envelopes anyway, so
the server keeps, per bucket of consecutive points, the point with the lowest
and the one with the highest finite value: the drawn line is the same, the
spikes survive (uniform sampling, TensorBoard's own, drops most of them). A
bucket that holds NaN or Inf also keeps its first such point, so the chart
can mark it.
"""

from __future__ import annotations

import numpy as np


def minmax_indices(values: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted indices of the points to keep so that at most ~`max_points` remain.

    Args:
      values: 1-D float array, in the series' order.
      max_points: Target number of points (>= 2). Buckets holding non-finite
        values may add one point each beyond it.

    Returns:
      An int64 array of indices into `values`, ascending, without repeats.
    """
    n = len(values)
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    buckets = max(max_points // 2, 1)
    size = -(-n // buckets)  # ceil
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    finite = np.isfinite(grid)
    low = np.where(finite, grid, np.inf).argmin(axis=1)
    high = np.where(finite, grid, -np.inf).argmax(axis=1)
    has_finite = finite.any(axis=1)
    base = np.arange(buckets, dtype=np.int64) * size
    keep = [base[has_finite] + low[has_finite], base[has_finite] + high[has_finite]]
    # Non-finite points of the series itself (not the padding past its end).
    real = np.arange(buckets * size).reshape(buckets, size) < n
    bad = ~finite & real
    has_bad = bad.any(axis=1)
    if has_bad.any():
        keep.append(base[has_bad] + bad[has_bad].argmax(axis=1))
    out = np.unique(np.concatenate(keep))
    return out[out < n]
