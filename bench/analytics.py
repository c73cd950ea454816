"""Cost of the analytics: in process (pure numpy), and end to end over HTTP from a real TensorBoard.

Usage (from the repository root): ``python bench/analytics.py [--quick | --big]
[--no-http]``. The default run takes ~3 minutes on 2 busy cores; --quick
(no Python loader) ~1.5; --big (adds 1 M points in part 1 and a Rust loader
keeping every point in part 2) ~6. Prints figures; PASS/MISS is
informational (the exit status is 0 either way).

Part 1, in process. 40 series of N points each (a realistic mix: host, GPU,
training, inference and process tags, with a few planted anomalies), as
numpy arrays: what the routes get after the data provider's read. Goal:
heatmap + correlation + anomaly scan over 40 x 100 000 points in <= 200 ms.
The runs at 10 k / 100 k (--big: and 1 M) points per series show how the
cost grows (10 = linear). Median of the repeats.

Part 2, over HTTP. The same 40 series (20 000 points each) written with the
recorder's event writer into a logdir, served by a real ``tensorboard``
under both loaders (``--load_fast=true``, the Rust data server, and
``--load_fast=false``; --quick leaves it out); with default flags the
loader keeps 5 000 points per series, and (--big only) a Rust-loader
TensorBoard with
``--samples_per_plugin=ttsmon=20000`` keeps all of them. Each analytics
route is asked what the tab asks (``overview``, ``anomalies``, ``heatmap``
with 160 buckets, ``correlation`` of the tab's default tags, ``findings``),
plus a ``series`` request for all 40 tags as the cost of the read alone.
The plugin caches answers by request and data version, so each route is
timed cold (an ignored ``bench_round`` parameter makes every request new:
what new data costs) and as a cache hit (the same request again). The
routes take turns (forwards, then backwards) for the rounds; the p50
latency (end to end, gzip as a browser asks) and the bytes are shown next
to the numpy cost of the same computation on as many points as the loader
keeps.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tb
import numpy as np

from tb_plugin_ttsmon import analytics
from tb_plugin_ttsmon.units import format_bytes

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


HTTP_SAMPLES = 20_000
HEATMAP_BUCKETS = 160  # the tab: an ~800 px plot at 5 px per bucket (analytics.ts)
RUN = "bench"
# The tab's default correlation tags, in order (frontend/src/analytics.ts
# DEFAULT_CORRELATION, at most 10; {gpu} is any GPU index).
DEFAULT_CORRELATION = (
    "system/cpu_percent",
    "system/memory_percent",
    "gpu/{gpu}/utilization_percent",
    "gpu/{gpu}/memory_used_percent",
    "system/disk_read_bytes_per_s",
    "system/disk_write_bytes_per_s",
    "system/net_recv_bytes_per_s",
    "system/net_sent_bytes_per_s",
    "train/steps_per_s",
    "train/loss",
)


def correlation_tags(tags: list[str]) -> list[str]:
    """The tags the tab correlates by default (`defaultCorrelationTags`)."""
    out: list[str] = []
    for pattern in DEFAULT_CORRELATION:
        a, _, b = pattern.partition("{gpu}")
        for tag in sorted(tags):
            matches = pattern == tag or (
                "{gpu}" in pattern
                and tag.startswith(a)
                and tag.endswith(b)
                and tag[len(a) : len(tag) - len(b)].isdigit()
            )
            if matches and tag not in out:
                out.append(tag)
    return out[:10]


def median_of(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds of `repeats` calls of `fn`."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def numpy_costs(n: int, repeats: int) -> dict[str, float]:
    """Seconds of each route's computation on 40 series of `n` points, in process."""
    run = make_run(n)
    corr_cols = [run[t] for t in correlation_tags(list(run))]
    return {
        "heatmap": median_of(lambda: analytics.heatmap(run, HEATMAP_BUCKETS), repeats),
        "correlation": median_of(
            lambda: analytics.correlation(analytics.align(corr_cols)), repeats
        ),
        "correlation_all": median_of(
            lambda: analytics.correlation(analytics.align(list(run.values()))), repeats
        ),
        "anomalies": median_of(lambda: analytics.detect_anomalies(run), repeats),
        "findings": median_of(lambda: analytics.findings(run), repeats),
        "found": float(len(analytics.detect_anomalies(run))),
    }


def part_numpy(sizes: list[int], repeats: int) -> None:
    print(
        f"{'points/series':>14} {'heatmap ms':>11} {'corr ms':>9} {'anomaly ms':>11} "
        f"{'total ms':>9} {'findings ms':>12} {'anomalies':>9}"
    )
    totals = {}
    for n in sizes:
        r = numpy_costs(n, 1 if n >= 1_000_000 else repeats)
        # The goal's three: the heatmap, all 40 series correlated, the anomaly scan.
        totals[n] = r["heatmap"] + r["correlation_all"] + r["anomalies"]
        print(
            f"{n:>14,} {r['heatmap'] * 1e3:>11.1f} {r['correlation_all'] * 1e3:>9.1f} "
            f"{r['anomalies'] * 1e3:>11.1f} {totals[n] * 1e3:>9.1f} "
            f"{r['findings'] * 1e3:>12.1f} {int(r['found']):>9}"
        )
    for a, b in itertools.pairwise(sizes):
        print(f"t({b // 1000:,}k)/t({a // 1000:,}k) = {totals[b] / totals[a]:.1f} (10 = linear)")
    total = totals[100_000]
    verdict = "PASS" if total <= GOAL_S else "MISS"
    print(f"{verdict}: 40 x 100 000 points in {total * 1e3:.0f} ms (goal <= {GOAL_S * 1e3:.0f} ms)")


def write_logdir(logdir: str, n: int) -> None:
    """`make_run(n)` written with the recorder's event writer: one event per sample."""
    from tb_plugin_ttsmon.recorder.writers import create_writer

    run = make_run(n)
    tags = list(run)
    first = run[tags[0]]
    values = np.column_stack([run[t].value for t in tags]).astype(np.float32)
    writer = create_writer("event", os.path.join(logdir, RUN))
    for i in range(n):
        writer.write(
            int(first.step[i]), zip(tags, values[i].tolist()), wall_time_s=float(first.wall_time[i])
        )
    writer.close()


def routes(base: str, tags: list[str]) -> list[tuple[str, str]]:
    """(name, URL) of every route the tab's analytics ask for, and its series read."""

    def url(route: str, params: list[tuple[str, Any]]) -> str:
        return f"{base}data/plugin/ttsmon/{route}?{urllib.parse.urlencode(params)}"

    return [
        ("overview", url("overview", [("run", RUN)])),
        ("anomalies", url("anomalies", [("run", RUN)])),
        ("heatmap", url("heatmap", [("run", RUN), ("buckets", HEATMAP_BUCKETS)])),
        (
            "correlation",
            url("correlation", [("run", RUN), *(("tag", t) for t in correlation_tags(tags))]),
        ),
        ("findings", url("findings", [("run", RUN)])),
        ("series (read only)", _tb.series_url(base, RUN, tags, _tb.tab_points())),
    ]


# Our answers are cached by request and data version: a parameter the
# routes ignore, new each time, makes a request miss the cache.
_ROUND = itertools.count(1)


def _cold(url: str) -> _tb.Response:
    r = _tb.fetch(f"{url}&bench_round={next(_ROUND)}")
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status} from {url}: {r.body[:300]!r}")
    return r


def _is_loaded(base: str, last_step: int) -> bool:
    return _tb.last_step(base, RUN, "train/loss") == last_step


def part_http(quick: bool, big: bool) -> None:
    rounds = 3 if quick else 5
    repeats = 3 if quick else 5
    configs: list[tuple[str, bool, tuple[str, ...], int]] = [("rust, defaults", True, (), 5_000)]
    if not quick:
        configs.append(("python, defaults", False, (), 5_000))
    if big:
        configs.append(
            ("rust, ttsmon=20000", True, (f"--samples_per_plugin=ttsmon={HTTP_SAMPLES}",), 20_000)
        )
    tags = list(make_run(10))
    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as logdir:
        t0 = time.perf_counter()
        write_logdir(logdir, HTTP_SAMPLES)
        print()
        print(
            f"over HTTP: {len(tags)} series x {HTTP_SAMPLES:,} points written with the recorder "
            f"(in {time.perf_counter() - t0:.0f} s); p50 of {rounds} rounds, the routes taking "
            f"turns; numpy: median of {repeats} on as many points as the loader keeps"
        )
        print(
            f"{'loader, flags':20s} {'route':>19s} {'cold ms':>8s} {'hit ms':>7s} "
            f"{'numpy ms':>9s} {'cold/numpy':>10s} {'wire':>9s} {'JSON':>9s}"
        )
        costs: dict[int, dict[str, float]] = {}
        last = int(make_run(HTTP_SAMPLES)["train/loss"].step[-1])
        for label, load_fast, extra, kept in configs:
            with _tb.tensorboard_server(logdir, load_fast=load_fast, extra_args=extra) as base:
                loaded_s = _tb.wait_until(functools.partial(_is_loaded, base, last), "the run")
                named = routes(base, tags)
                first = {name: _tb.fetch(url) for name, url in named}  # warm, bytes, status
                for name, r in first.items():
                    if r.status != 200:
                        raise RuntimeError(f"{name}: HTTP {r.status}: {r.body[:300]!r}")
                contenders = [(f"{n} cold", functools.partial(_cold, u)) for n, u in named]
                contenders += [(f"{n} hit", functools.partial(_tb.fetch, u)) for n, u in named]
                times = _tb.interleaved(contenders, rounds)
            if kept not in costs:
                costs[kept] = numpy_costs(kept, repeats)
            for name, _ in named:
                r = first[name]
                cold_s, hit_s = _tb.p50(times[f"{name} cold"]), _tb.p50(times[f"{name} hit"])
                numpy_s = costs[kept].get(name)
                numpy_text = f"{numpy_s * 1e3:9.1f}" if numpy_s is not None else f"{'-':>9s}"
                ratio = f"{cold_s / numpy_s:10.1f}" if numpy_s else f"{'-':>10s}"
                print(
                    f"{label:20s} {name:>19s} {cold_s * 1e3:8.1f} {hit_s * 1e3:7.1f} "
                    f"{numpy_text} {ratio} {format_bytes(r.wire_bytes):>9s} "
                    f"{format_bytes(len(r.body)):>9s}"
                )
            print(f"{'':20s} (served {loaded_s:.0f} s after start, {kept:,} points kept)")
        print(
            "cold: our answer cache missed (new data, or a new question); hit: the same request "
            "again (a second viewer, or a refresh without new data)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="fewer repeats, no Python loader")
    size.add_argument("--big", action="store_true", help="1 M points too; every point kept")
    parser.add_argument("--no-http", action="store_true", help="part 1 only (no TensorBoard)")
    args = parser.parse_args()
    sizes = [10_000, 100_000, 1_000_000] if args.big else [10_000, 100_000]
    repeats = 2 if args.quick else 3
    print(
        f"analytics over {SERIES} series, median of {repeats} (numpy {np.__version__}, "
        f"{os.cpu_count()} CPUs, load average {_tb.load_average():.1f})"
    )
    part_numpy(sizes, repeats)
    if not args.no_http:
        part_http(args.quick, args.big)


if __name__ == "__main__":
    main()
