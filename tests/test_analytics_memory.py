"""One correlation request stays within `CORRELATION_BUDGET_BYTES` (64 MiB).

The worst case the correlation route allows: 40 tags of a day-long run whose
points come in bursts a millisecond apart (a step's metrics written together).
Their median interval, 1 ms, would make a grid of 86 million cells; capped at
a million cells that is still 40 x 1e6 float64 values, plus as many ranks.

numpy reports its buffers to tracemalloc, so the traced peak is what the
request allocated beyond its input.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from tb_plugin_ttsmon import analytics as A

T0 = 1_700_000_000.0
MiB = 2**20
TAGS = 40
BURSTS = 1440  # one a minute for a day
PER_BURST = 3


def _bursty_run(seed: int = 0) -> tuple[list[A.Columns], np.ndarray]:
    """40 series sampled together in bursts; each series constant within a burst."""
    r = np.random.default_rng(seed)
    # Bursts start a quarter second past the minute (the first one on it), so
    # that none straddles an edge of a round grid and each fills one cell:
    # the coefficients are then those of the bursts' own values.
    starts = T0 + 60.0 * np.arange(BURSTS) + np.where(np.arange(BURSTS) > 0, 0.25, 0.0)
    wall = (starts[:, None] + 0.001 * np.arange(PER_BURST)[None, :]).ravel()
    latent = r.normal(size=BURSTS)
    levels = np.empty((TAGS, BURSTS))
    levels[0] = latent
    levels[1] = 2.0 * latent + 3.0  # Pearson and Spearman 1 with row 0
    levels[2] = -latent  # -1
    levels[3] = np.exp(latent)  # Spearman 1, Pearson below 1
    levels[4:] = latent * r.uniform(0.2, 2.0, (TAGS - 4, 1)) + r.normal(size=(TAGS - 4, BURSTS))
    series = [A.Columns.of(wall, np.repeat(row, PER_BURST)) for row in levels]
    return series, levels


def _spearman(levels: np.ndarray) -> np.ndarray:
    ranks = np.argsort(np.argsort(levels, axis=1), axis=1)
    return np.corrcoef(ranks)


def test_forty_tags_of_a_fine_grained_day_fit_in_64_mib_and_stay_correct():
    series, levels = _bursty_run()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        aligned = A.align(series)
        c = A.correlation(aligned)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 64 * MiB, f"peak {peak_bytes / MiB:.1f} MiB"
    # The grid was coarsened to fit: still one cell per burst, never two bursts in one.
    assert aligned.values.shape[1] <= A.max_grid_cells(TAGS)
    assert 0.002 < aligned.grid_s < 60.0
    assert c["n"] == [[BURSTS] * TAGS] * TAGS
    pearson = np.array(c["pearson"], dtype=float)
    spearman = np.array(c["spearman"], dtype=float)
    assert pearson[0, 1] == pytest.approx(1.0) and pearson[0, 2] == pytest.approx(-1.0)
    assert spearman[0, 3] == pytest.approx(1.0) and pearson[0, 3] < 0.95
    # Every pair agrees with numpy on the bursts' own values.
    assert pearson == pytest.approx(np.corrcoef(levels), abs=1e-6)
    assert spearman == pytest.approx(_spearman(levels), abs=1e-6)


def test_long_densely_sampled_series_fit_in_64_mib():
    # 40 tags x 200 000 points each at 20 ms: 4.6 GB of grid before the cap.
    n = 200_000
    r = np.random.default_rng(1)
    wall = T0 + 0.02 * np.arange(n)
    base = np.cumsum(r.normal(size=n))
    series = [A.Columns.of(wall, base * (k + 1) + r.normal(0, 0.1, n)) for k in range(TAGS)]
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        c = A.correlation(A.align(series))
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 64 * MiB, f"peak {peak_bytes / MiB:.1f} MiB"
    # A random walk scaled: averaged over wider cells it is still one walk.
    assert min(min(row) for row in c["pearson"]) > 0.99


def test_scatter_of_two_long_series_fits_too():
    n = 2_000_000
    wall = T0 + 0.001 * np.arange(n)
    x = np.sin(np.arange(n) / 5e4)
    xs, ys = A.Columns.of(wall, x), A.Columns.of(wall, 3 * x - 1)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        s = A.scatter(xs, ys, max_points=2000)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 64 * MiB, f"peak {peak_bytes / MiB:.1f} MiB"
    assert s["pearson"] == pytest.approx(1.0) and len(s["points"]) == 2000
