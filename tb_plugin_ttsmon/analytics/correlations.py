"""Correlation of series on a common wall-time grid: align, Pearson, Spearman, scatter.

Memory is bounded: one request (`align` then `correlation`, or `scatter`)
allocates at most about `CORRELATION_BUDGET_BYTES` beyond its input, whatever
the number and length of its series. What grows is the grid, series x cells:
its float64 values, as many ranks and their finite masks. `max_grid_cells`
is the most cells that fit for a number of series, and `align` widens the
grid to a round width until they fit. Everything else works in chunks: the
input's points go through in blocks of `_POINT_CHUNK`, the correlation sums
in column blocks of about `_CHUNK_BYTES`, and ranking takes one row (or one
pair) at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tb_plugin_ttsmon.analytics.common import SeriesLike

# The most one request may allocate beyond its input.
CORRELATION_BUDGET_BYTES = 64 * 2**20
# A hard cap on grid cells besides the budget (which is the tighter of the
# two for any number of series): more is more than any coefficient needs.
MAX_GRID_CELLS = 1_000_000
# Re-rank a pair for Spearman when its series' own cells exceed their common
# ones by more than this share (1 %: the rank error below it is negligible).
SPEARMAN_RERANK_SHARE = 0.01

# The budget's model, from tracemalloc peaks on gappy 2 to 40 series (which
# take every path: gap sums, re-ranked pairs), with a margin of about 30 %.
# Fixed: the column-chunk temporaries of the correlation sums (a few of
# `_CHUNK_BYTES` each), the series x series results and their Python lists,
# the point chunks (measured: 2 to 7 MiB).
_RESERVED_BYTES = 12 * 2**20
# Per cell and series, held for the whole request: the grid's float64 value,
# its float32 rank and a finite mask or two (measured: 12 bytes).
_BYTES_PER_SERIES_CELL = 16
# Per cell, once: align's sums and counts for the series being placed, or the
# temporaries of ranking one row, or of ranking one pair again on its common
# cells (copies, argsort, groups; measured: 55 bytes).
_BYTES_PER_CELL = 96
# Target size of one series x columns temporary in the correlation sums:
# small enough to stay in cache, which at a million cells is several times
# faster than whole-array passes.
_CHUNK_BYTES = 2**20
# Points of one series handled at a time by `align`.
_POINT_CHUNK = 1 << 16


def max_grid_cells(series_count: int) -> int:
    """The most grid cells `align` uses for `series_count` series (memory budget)."""
    room = CORRELATION_BUDGET_BYTES - _RESERVED_BYTES
    per_cell = max(series_count, 1) * _BYTES_PER_SERIES_CELL + _BYTES_PER_CELL
    return max(2, min(MAX_GRID_CELLS, room // per_cell))


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


def _finite_chunks(s: SeriesLike) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(wall_time, value)`` of the finite points of `s`, `_POINT_CHUNK` points at a time."""
    for p0 in range(0, len(s.value), _POINT_CHUNK):
        v = s.value[p0 : p0 + _POINT_CHUNK]
        ok = np.isfinite(v)
        if ok.any():
            yield s.wall_time[p0 : p0 + _POINT_CHUNK][ok], v[ok]


def _finite_bounds(s: SeriesLike) -> tuple[float, float] | None:
    """Earliest and latest wall time of the finite points of `s`, or None."""
    lo, hi = math.inf, -math.inf
    for w, _ in _finite_chunks(s):
        lo, hi = min(lo, float(w.min())), max(hi, float(w.max()))
    return (lo, hi) if lo <= hi else None


def _median_diff_s(wall: np.ndarray) -> float | None:
    if len(wall) < 2:
        return None
    d = np.diff(wall)
    if (d < 0).any():  # points come in step order, which is nearly always time order
        d = np.diff(np.sort(wall))
    d = d[d > 0]
    return float(np.median(d)) if len(d) else None


def _median_interval_s(s: SeriesLike) -> float | None:
    """The median interval between finite points (over a long series: the median
    of its chunks' medians, which is the same for steady sampling)."""
    medians = [m for w, _ in _finite_chunks(s) if (m := _median_diff_s(w)) is not None]
    return float(np.median(medians)) if medians else None


# Round cell widths (x 10^k seconds) for a grid widened to fit the budget.
_ROUND_MANTISSAS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def _round_width_s(width_s: float) -> float:
    """The smallest round width (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k s) >= `width_s`."""
    exponent = math.floor(math.log10(width_s))
    for mantissa in _ROUND_MANTISSAS:
        candidate = mantissa * 10.0**exponent
        if candidate >= width_s:
            return candidate
    return 10.0 ** (exponent + 1)


def align(series: Sequence[SeriesLike], grid_s: float | None = None) -> Aligned:
    """Averages each series per cell of a common grid (default: median sampling interval).

    The grid has at most `max_grid_cells` cells for this many series; a finer
    one is widened to the smallest round width (see `_round_width_s`) that fits.
    """
    bounds = [_finite_bounds(s) for s in series]
    present = [b for b in bounds if b is not None]
    if not present:
        return Aligned(grid_s or 1.0, 0.0, np.full((len(series), 0), np.nan))
    start = min(b[0] for b in present)
    end = max(b[1] for b in present)
    if grid_s is None:
        intervals = [
            i for s, b in zip(series, bounds) if b and (i := _median_interval_s(s)) is not None
        ]
        grid_s = float(np.median(intervals)) if intervals else 1.0
    grid_s = max(grid_s, 1e-6)
    span_s = end - start
    max_cells = max_grid_cells(len(series))
    if span_s / grid_s > max_cells - 1:
        grid_s = _round_width_s(span_s / (max_cells - 1))
    cells = min(int(span_s / grid_s) + 1, max_cells)
    out = np.full((len(series), cells), np.nan)
    sums = np.empty(cells)
    counts = np.empty(cells)
    for row, s, b in zip(out, series, bounds):
        if b is None:
            continue
        sums.fill(0.0)
        counts.fill(0.0)
        for w, v in _finite_chunks(s):
            idx = ((w - start) / grid_s).astype(np.int64)
            np.clip(idx, 0, cells - 1, out=idx)
            lo, hi = int(idx.min()), int(idx.max()) + 1
            idx -= lo
            counts[lo:hi] += np.bincount(idx, minlength=hi - lo)
            sums[lo:hi] += np.bincount(idx, weights=v, minlength=hi - lo)
        np.divide(sums, counts, out=row, where=counts > 0)
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
    del xs
    group = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    counts = np.diff(np.append(first, n))
    mean_rank = first + (counts - 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = mean_rank[group]
    return ranks


def _chunk_cells(rows: int) -> int:
    return max(256, _CHUNK_BYTES // (8 * max(rows, 1)))


def _pairwise_pearson(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pearson per pair of rows over the columns where both have values.

    Sums are accumulated in column chunks with matrix products: one product
    per chunk for rows without gaps (the usual case), and a few thin ones for
    the rows with gaps, whose pairs are summed over their common columns.
    """
    k, cells = x.shape
    chunk = _chunk_cells(k)
    m = np.isfinite(x)
    counts = m.sum(axis=1)
    g = np.flatnonzero(counts < cells)  # rows with gaps
    sums = np.zeros(k)
    for c0 in range(0, cells, chunk):
        xc = x[:, c0 : c0 + chunk]
        sums += np.where(m[:, c0 : c0 + chunk], xc, 0.0).sum(axis=1, dtype=np.float64)
    # Centre each row first: the sums below then stay small and exact enough.
    mean = np.divide(sums, counts, out=np.zeros(k), where=counts > 0)
    sxy = np.zeros((k, k))
    ng, sg, sj, ssg, ssj = (np.zeros((len(g), k)) for _ in range(5))
    for c0 in range(0, cells, chunk):
        x0 = x[:, c0 : c0 + chunk] - mean[:, None]
        if len(g):
            mc = m[:, c0 : c0 + chunk]
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
    del m
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
    # float32 holds every rank exactly (half-integers below 2**23, far above
    # MAX_GRID_CELLS) in half the memory; the sums over them are float64.
    ranks = np.full(x.shape, np.nan, dtype=np.float32)
    for k in range(len(x)):
        mk = np.isfinite(x[k])
        ranks[k, mk] = rank_average(x[k, mk])
    spearman, _ = _pairwise_pearson(ranks)
    del ranks
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
    pick = np.unique(np.linspace(0, n - 1, min(n, max(max_points, 0))).round().astype(np.int64))
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
