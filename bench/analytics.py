"""Cost of the analytics (heatmap + correlation + anomaly scan), in process.

40 series of N points each (a realistic mix: host, GPU, training, inference
and process tags, with a few planted anomalies), as numpy arrays: what the
routes get after the data provider's read. Goal: all three over 40 x 100 000
points in <= 200 ms on the server. The runs at 10 k / 100 k / 1 M points per
series show that the cost grows linearly (ratios near 10).

Usage (from the repository root): ``python bench/analytics.py [--quick]``
(--quick: 10 k and 100 k only, fewer repeats). Prints figures; PASS/MISS is
informational.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from tb_plugin_ttsmon import analytics

GOAL_S = 0.200
SERIES = 40
T0 = 1_700_000_000.0


def make_run(n: int, seed: int = 0) -> dict[str, analytics.Columns]:
    """40 series of `n` points at 1 s, with a spike, NaNs, a shift, a collapse and a leak."""
    rng = np.random.default_rng(seed)
    wall = T0 + np.arange(n, dtype=np.float64)
    step = (wall * 1000).astype(np.int64)
    out: dict[str, analytics.Columns] = {}

    def add(tag: str, values: np.ndarray, unit: str = "") -> None:
        out[tag] = analytics.Columns(wall, step, values.astype(np.float64), unit)

    add("system/cpu_percent", np.clip(rng.normal(40, 8, n), 0, 100), "%")
    add("system/memory_percent", np.clip(rng.normal(55, 2, n), 0, 100), "%")
    add("system/memory_used_bytes", rng.normal(60e9, 1e9, n), "B")
    add("system/disk_read_bytes_per_s", rng.gamma(2.0, 5e6, n), "B/s")
    add("system/disk_write_bytes_per_s", rng.gamma(2.0, 5e6, n), "B/s")
    add("system/net_recv_bytes_per_s", rng.gamma(2.0, 1e6, n), "B/s")
    add("system/load_avg_1m", rng.normal(8, 1, n))
    add("process/cpu_percent", rng.normal(300, 30, n), "%")
    add("process/rss_bytes", 8e9 + np.arange(n) * 2e3 + rng.normal(0, 2e7, n), "B")
    for g in range(4):
        util = np.clip(rng.normal(90, 4, n), 0, 100)
        if g == 0:
            util[n // 2 : n // 2 + max(n // 100, 60)] = 4.0
        add(f"gpu/{g}/utilization_percent", util, "%")
        add(f"gpu/{g}/memory_used_bytes", rng.normal(60e9, 1e8, n), "B")
        add(f"gpu/{g}/memory_total_bytes", np.full(n, 80e9), "B")
        add(f"gpu/{g}/temperature_c", rng.normal(70, 2, n), "°C")
        add(f"gpu/{g}/power_w", rng.normal(550, 30, n), "W")
    loss = 0.5 + 3 * np.exp(-np.arange(n) / (n / 5)) + rng.normal(0, 0.03, n)
    loss[n // 3] = 50.0
    loss[2 * n // 3 : 2 * n // 3 + 3] = np.nan
    add("train/loss", loss)
    add("train/gradient_norm", rng.lognormal(0, 0.3, n))
    add("train/steps_per_s", rng.normal(5, 0.2, n), "steps/s")
    latency = rng.normal(300, 20, n)
    latency[n // 2 :] += 150
    add("inference/latency_ms", latency, "ms")
    add("inference/rtf", rng.normal(0.3, 0.03, n))
    k = 0
    while len(out) < SERIES:
        add(f"gradients/layer{k}/norm", rng.lognormal(0, 0.3, n))
        k += 1
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(n: int, repeats: int) -> dict[str, float]:
    run = make_run(n)
    cols = list(run.values())
    heat = best_of(lambda: analytics.heatmap(run, 120), repeats)
    corr = best_of(lambda: analytics.correlation(analytics.align(cols)), repeats)
    anom = best_of(lambda: analytics.detect_anomalies(run), repeats)
    found = analytics.detect_anomalies(run)
    return {
        "heatmap": heat,
        "correlation": corr,
        "anomalies": anom,
        "total": heat + corr + anom,
        "found": float(len(found)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 k and 100 k points only")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    repeats = 2 if args.quick else 3
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"analytics over {SERIES} series, best of {repeats} (numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f})"
    )
    print(
        f"{'points/series':>14} {'heatmap ms':>11} {'corr ms':>9} {'anomaly ms':>11} "
        f"{'total ms':>9} {'anomalies':>9}"
    )
    results = {}
    for n in sizes:
        r = measure(n, 1 if n >= 1_000_000 else repeats)
        results[n] = r
        print(
            f"{n:>14,} {r['heatmap'] * 1e3:>11.1f} {r['correlation'] * 1e3:>9.1f} "
            f"{r['anomalies'] * 1e3:>11.1f} {r['total'] * 1e3:>9.1f} {int(r['found']):>9}"
        )
    for a, b in itertools.pairwise(sizes):
        print(
            f"t({b // 1000:,}k)/t({a // 1000:,}k) = {results[b]['total'] / results[a]['total']:.1f}"
            f" (10 = linear)"
        )
    total = results[100_000]["total"]
    verdict = "PASS" if total <= GOAL_S else "MISS"
    print(f"{verdict}: 40 x 100 000 points in {total * 1e3:.0f} ms (goal <= {GOAL_S * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
