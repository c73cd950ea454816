"""The pure numpy analytics: planted anomalies found, clean series left alone,
heatmap scaling, correlation against numpy, findings for planted situations."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tb_plugin_ttsmon import analytics as A

T0 = 1_700_000_000.0


def cols(values, *, dt_s=1.0, unit="", step=None, t0=T0):
    values = np.asarray(values, dtype=np.float64)
    wall = t0 + np.arange(len(values)) * dt_s
    return A.Columns.of(wall, values, step=step, unit=unit)


def scan(tag, s, **kw):
    return A.detect_anomalies({tag: s}, **kw)


def rng(seed=0):
    return np.random.default_rng(seed)


def decreasing_loss(n=5000, seed=0):
    x = np.arange(n)
    return 0.5 + 3.0 * np.exp(-x / 1500) + rng(seed).normal(0, 0.05, n)


# -- planted anomalies -----------------------------------------------------------------


def test_loss_spike_is_found_at_its_step_with_ratio_and_message():
    v = decreasing_loss()
    v[2500] = 12.0
    (a,) = scan("train/loss", cols(v, step=np.arange(1, 5001)))
    assert (a.type, a.start_step, a.end_step) == ("spike", 2501, 2501)
    assert a.value == pytest.approx(12.0)
    assert 5 < a.score < 20
    assert a.message.startswith("train/loss 12 at step 2501 is ")
    assert "rolling median" in a.message


def test_gradient_explosion_over_several_steps_is_one_range():
    v = rng(1).lognormal(0.0, 0.2, 3000)
    v[2000:2004] = [50.0, 400.0, 900.0, 60.0]
    (a,) = scan("train/gradient_norm", cols(v))
    assert (a.type, a.start_step, a.end_step) == ("spike", 2000, 2003)
    assert a.value == pytest.approx(900.0) and a.severity == "critical"
    assert "gradient explosion" in a.message


def test_non_finite_points_are_merged_into_ranges_and_critical_for_loss():
    v = decreasing_loss(1000)
    v[100] = math.nan
    v[500:503] = [math.inf, math.nan, math.nan]
    found = scan("train/loss", cols(v))
    nf = [(a.start_step, a.end_step, a.severity, a.score) for a in found if a.type == "non_finite"]
    assert nf == [(100, 100, "critical", 1.0), (500, 502, "critical", 3.0)]
    assert [a for a in found if a.type != "non_finite"] == []
    assert "NaN" in found[1].message and "Inf" in found[1].message
    # On a resource series the same points are only a warning.
    (b, _) = scan("system/cpu_percent", cols(v))
    assert b.severity == "warning"


def test_latency_regression_is_a_level_shift_warning_at_the_change():
    v = rng(2).normal(100.0, 10.0, 2000)
    v[1200:] += 60.0
    (a,) = scan("inference/latency_ms", cols(v, unit="ms"))
    assert a.type == "level_shift" and a.severity == "warning"
    assert abs(a.start_step - 1200) <= 10
    assert a.value == pytest.approx(160.0, rel=0.05)
    assert "rose 6" in a.message and "regression" in a.message


def test_steps_per_s_drop_is_a_regression_and_a_rise_only_info():
    v = rng(3).normal(10.0, 0.3, 600)
    v[300:] = rng(4).normal(6.0, 0.3, 300)
    (a,) = scan("train/steps_per_s", cols(v, unit="steps/s"))
    assert (a.type, a.severity) == ("level_shift", "warning")
    assert abs(a.start_step - 300) <= 10 and "fell 40 %" in a.message
    (b,) = scan("train/steps_per_s", cols(v[::-1].copy(), unit="steps/s"))
    assert b.severity == "info"


def test_slow_rss_leak_over_half_an_hour():
    t = np.arange(0, 1800.0, 2.0)
    rss = 2e9 + t * 4e5 + rng(5).normal(0, 1e7, len(t))
    (a,) = scan("process/rss_bytes", cols(rss, dt_s=2.0, unit="B"))
    assert a.type == "leak" and a.severity == "warning"
    assert a.start_wall_time_s == T0 and a.end_wall_time_s == T0 + 1798.0
    # About 719 MB (decimal): in binary units, which memory is counted in.
    assert re.search(r"rose steadily by 6[89]\d MiB \(\+36 %\) over 30 min", a.message)


def test_no_leak_for_a_warm_up_plateau_or_a_short_run():
    t = np.arange(0, 1800.0, 2.0)
    plateau = 2e9 + 1e9 * (1 - np.exp(-t / 120)) + rng(6).normal(0, 1e7, len(t))
    assert scan("process/rss_bytes", cols(plateau, dt_s=2.0, unit="B")) == []
    short = 2e9 + np.arange(200) * 1e7  # steep, but 400 s only
    assert scan("process/rss_bytes", cols(short, dt_s=2.0, unit="B")) == []


def test_gpu_collapse_while_training_runs():
    util = rng(7).normal(92.0, 3.0, 600)
    util[300:360] = rng(8).normal(8.0, 2.0, 60)  # one minute at 1 s sampling
    gpu = cols(util, unit="%", step=(T0 + np.arange(600)) * 1000)
    train = cols(np.ones(1200), dt_s=0.5)  # steps keep coming
    found = A.detect_anomalies({"gpu/0/utilization_percent": gpu, "train/loss": train})
    (a,) = [a for a in found if a.type == "collapse"]
    assert a.tag == "gpu/0/utilization_percent"
    assert a.start_wall_time_s == T0 + 300 and a.end_wall_time_s == T0 + 359
    assert "fell to 8 %" in a.message and "typically 9" in a.message
    # The same dip while training paused (evaluation) is no collapse.
    paused = cols(np.ones(300), dt_s=1.0)  # training ends at 300 s
    found = A.detect_anomalies({"gpu/0/utilization_percent": gpu, "train/loss": paused})
    assert [a for a in found if a.type == "collapse"] == []


# -- clean series ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "values"),
    [
        ("train/loss", decreasing_loss(20_000, seed=11)),
        ("train/loss", 2.0 + rng(12).normal(0, 0.2, 10_000)),
        ("train/gradient_norm", rng(13).lognormal(0.0, 0.3, 10_000)),
        # Periodic: a loss that jumps at each epoch's harder shard.
        (
            "train/loss",
            1.0 + 0.3 * np.sin(np.arange(10_000) / 40) + rng(14).normal(0, 0.05, 10_000),
        ),
        ("inference/latency_ms", rng(15).gamma(9.0, 20.0, 5000)),
        ("train/steps_per_s", rng(16).normal(12.0, 1.0, 5000)),
        ("process/rss_bytes", 3e9 + rng(17).normal(0, 2e7, 3000)),
        ("gpu/0/utilization_percent", np.clip(rng(18).normal(85, 8, 3000), 0, 100)),
    ],
)
def test_clean_series_raise_at_most_one_anomaly(tag, values):
    found = scan(tag, cols(values))
    assert len(found) <= 1, [a.message for a in found]


def test_learning_rate_warmup_and_early_loss_drop_are_not_anomalies():
    steps = np.arange(1, 5001)
    lr = np.minimum(steps / 1000, 1.0) * 1e-3
    loss = 8.0 / np.sqrt(steps) + rng(19).normal(0, 0.02, 5000)
    steps_per_s = np.where(steps < 50, 2.0, 11.0) + rng(20).normal(0, 0.2, 5000)
    series = {
        "train/learning_rate": cols(lr, step=steps),
        "train/loss": cols(loss, step=steps),
        "train/steps_per_s": cols(steps_per_s, step=steps, unit="steps/s"),
    }
    found = A.detect_anomalies(series)
    # Compilation makes the first steps slow: at most an "info" speed-up.
    assert [a for a in found if a.severity != "info"] == []


def test_rolling_baseline_needs_history_and_excludes_the_point():
    x = np.ones(100)
    x[60] = 50.0
    med, _ = A.rolling_baseline(x, window=25, lookback=500)
    assert np.isnan(med[:25]).all()
    assert med[60] == 1.0 and np.isfinite(med[30:]).all()


def test_anomaly_parameters_are_documented_defaults():
    p = A.AnomalyParams().to_dict()
    assert p["spike_ratio"] == 5.0 and p["window"] == 25 and p["lookback"] == 500
    assert p["shift_ratio"] == 0.3 and p["leak_min_s"] == 600.0


# -- heatmap ---------------------------------------------------------------------------


def test_heatmap_scales_to_limits_or_ranges_and_leaves_empty_buckets_none():
    n = 100
    series = {
        "system/cpu_percent": cols(np.full(n, 50.0), unit="%"),
        "gpu/0/memory_used_bytes": cols(np.linspace(0, 40e9, n), unit="B"),
        "gpu/0/memory_total_bytes": cols(np.full(n, 80e9), unit="B"),
        "container/memory_used_bytes": cols(np.full(n, 1e9), unit="B"),
        "container/memory_limit_bytes": cols(np.full(n, 4e9), unit="B"),
        "system/disk_read_bytes_per_s": cols(np.r_[np.zeros(50), np.full(50, 200.0)], unit="B/s"),
        # Only in the first half: the second half's buckets are empty.
        "process/thread_count": cols(np.arange(50.0), unit="count"),
    }
    h = A.heatmap(series, buckets=10)
    # 99 s in at most 10 buckets: 10 s buckets from a multiple of 10 s.
    assert h["start_wall_time_s"] == T0 and h["end_wall_time_s"] == T0 + 100
    assert h["bucket_s"] == 10.0
    rows = {r["tag"]: r for r in h["rows"]}
    assert "gpu/0/memory_total_bytes" not in rows and "container/memory_limit_bytes" not in rows
    cpu = rows["system/cpu_percent"]
    assert (cpu["scale"], cpu["limit"]) == ("limit", 100.0)
    assert cpu["normalized"] == [0.5] * 10 and cpu["values"] == [50.0] * 10
    gpu = rows["gpu/0/memory_used_bytes"]
    assert gpu["scale"] == "limit" and gpu["limit"] == 80e9 and gpu["label"] == "GPU 0 memory used"
    assert gpu["normalized"][0] == pytest.approx(
        np.mean(np.linspace(0, 40e9, n)[:10]) / 80e9, abs=1e-4
    )
    assert gpu["normalized"][-1] < 0.5
    assert rows["container/memory_used_bytes"]["normalized"] == [0.25] * 10
    disk = rows["system/disk_read_bytes_per_s"]
    assert disk["scale"] == "range" and (disk["min"], disk["max"]) == (0.0, 200.0)
    assert disk["normalized"][0] == 0.0 and disk["normalized"][-1] == 1.0
    threads = rows["process/thread_count"]
    assert threads["values"][-5:] == [None] * 5 and threads["normalized"][-1] is None
    assert threads["values"][0] == pytest.approx(4.5)


@pytest.mark.parametrize(
    ("start", "span_s", "max_buckets", "expected"),
    [
        (1_700_000_003.2, 99.0, 10, (1_699_999_995.0, 15.0, 8)),
        (1_700_000_000.0, 3.0, 120, (1_700_000_000.0, 0.1, 31)),
        (1_700_000_000.0, 86_400.0, 120, (1_700_000_000.0, 900.0, 97)),
        (1_700_000_100.0, 7 * 86_400.0, 100, (1_699_999_200.0, 7200.0, 85)),
    ],
)
def test_heatmap_buckets_follow_the_time_range(start, span_s, max_buckets, expected):
    got_start, bucket_s, count = A.nice_buckets(start, start + span_s, max_buckets)
    assert (got_start, bucket_s, count) == pytest.approx(expected)
    assert got_start <= start and got_start + count * bucket_s > start + span_s


def test_heatmap_of_nothing():
    assert A.heatmap({}, buckets=10)["rows"] == []


# -- correlation -----------------------------------------------------------------------


def _corr(*values, walls=None):
    series = [
        A.Columns.of(T0 + np.arange(len(v)) if walls is None else walls[k], v)
        for k, v in enumerate(values)
    ]
    return A.correlation(A.align(series))


def test_perfect_positive_negative_and_independent():
    x = rng(21).normal(size=500)
    y = rng(22).normal(size=500)
    c = _corr(x, 3 * x + 1, -x, y)
    p, s = np.array(c["pearson"], dtype=float), np.array(c["spearman"], dtype=float)
    assert p[0, 1] == pytest.approx(1.0) and p[0, 2] == pytest.approx(-1.0)
    assert s[0, 1] == pytest.approx(1.0) and s[0, 2] == pytest.approx(-1.0)
    assert abs(p[0, 3]) < 0.15
    assert p == pytest.approx(np.corrcoef([x, 3 * x + 1, -x, y]), abs=1e-6)
    ranks = np.argsort(np.argsort([x, y], axis=1), axis=1)
    assert s[0, 3] == pytest.approx(np.corrcoef(ranks)[0, 1], abs=1e-6)
    assert c["n"] == [[500] * 4] * 4 and c["grid_s"] == 1.0


def test_monotone_but_not_linear_is_spearman_one():
    x = np.linspace(0.1, 5, 200)
    c = _corr(x, np.exp(x))
    assert c["spearman"][0][1] == pytest.approx(1.0)
    assert c["pearson"][0][1] < 0.95


def test_gaps_use_pairwise_cells_and_ties_get_mean_ranks():
    x = rng(23).normal(size=400)
    y = 2 * x + rng(24).normal(0, 0.5, 400)
    y_gappy = y.copy()
    y_gappy[100:250] = np.nan
    c = _corr(x, y_gappy)
    keep = np.isfinite(y_gappy)
    assert c["n"] == [[400, 250], [250, 250]]
    assert c["pearson"][0][1] == pytest.approx(np.corrcoef(x[keep], y[keep])[0, 1], abs=1e-6)
    rx = A.rank_average(x[keep])
    ry = A.rank_average(y[keep])
    assert c["spearman"][0][1] == pytest.approx(np.corrcoef(rx, ry)[0, 1], abs=1e-6)
    assert A.rank_average(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [2.5, 0.0, 2.5, 1.0]


def test_two_series_with_different_gaps_against_numpy():
    x = rng(25).normal(size=300)
    y = x + rng(26).normal(0, 1.0, 300)
    z = rng(27).normal(size=300)
    x[10:60] = np.nan
    y[200:230] = np.nan
    c = _corr(x, y, z)
    both = np.isfinite(x) & np.isfinite(y)
    assert c["n"][0][1] == both.sum() == 220 and c["n"][0][2] == 250
    assert c["pearson"][0][1] == pytest.approx(np.corrcoef(x[both], y[both])[0, 1], abs=1e-6)
    ranks = [A.rank_average(v[both]) for v in (x, y)]
    assert c["spearman"][0][1] == pytest.approx(np.corrcoef(ranks)[0, 1], abs=1e-6)
    assert c["pearson"][1][0] == c["pearson"][0][1]


def test_constant_or_too_short_gives_none():
    c = _corr(np.arange(50.0), np.full(50, 7.0))
    assert c["pearson"][0][1] is None and c["spearman"][0][1] is None
    assert c["pearson"][1][1] is None and c["pearson"][0][0] == 1.0
    c = _corr(np.array([1.0, 2.0]), np.array([2.0, 1.0]))
    assert c["pearson"][0][1] is None and c["n"][0][1] == 2


def test_alignment_on_the_median_interval_averages_per_cell():
    fast = A.Columns.of(T0 + np.arange(0, 100, 0.5), np.arange(200.0))
    slow = A.Columns.of(T0 + np.arange(0, 100, 2.0), np.arange(50.0))
    a = A.align([fast, slow])
    assert a.grid_s == pytest.approx(1.25)
    row = a.values[0]
    assert row[0] == pytest.approx(np.mean([0, 1, 2]))  # 0, 0.5, 1.0 s in cell 0


def test_scatter_pairs_are_subsampled_evenly():
    x = np.arange(5000.0)
    out = A.scatter(A.Columns.of(T0 + x, x), A.Columns.of(T0 + x, 2 * x), max_points=100)
    assert out["n"] == 5000 and len(out["points"]) == 100
    assert out["points"][0] == [T0, 0.0, 0.0] and out["points"][-1] == [T0 + 4999, 4999.0, 9998.0]
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)


# -- findings --------------------------------------------------------------------------


def _sampled(values, unit="%"):
    v = np.asarray(values, dtype=float)
    return cols(v, unit=unit, step=((T0 + np.arange(len(v))) * 1000).astype(np.int64))


def healthy_run(n=300):
    r = rng(30)
    return {
        "system/cpu_percent": _sampled(r.normal(40, 5, n)),
        "system/memory_percent": _sampled(r.normal(50, 2, n)),
        "system/logdir_disk_used_percent": _sampled(np.full(n, 40.0)),
        "gpu/0/utilization_percent": _sampled(np.clip(r.normal(93, 3, n), 0, 100)),
        "gpu/0/memory_used_bytes": _sampled(np.full(n, 68e9), unit="B"),
        "gpu/0/memory_total_bytes": _sampled(np.full(n, 80e9), unit="B"),
        "gpu/0/throttle_thermal": _sampled(np.zeros(n), unit="bool"),
        "gpu/0/throttle_power": _sampled(np.zeros(n), unit="bool"),
        "train/loss": cols(decreasing_loss(1000)),
        "train/steps_per_s": cols(r.normal(10, 0.3, 1000), unit="steps/s"),
        "inference/rtf": cols(r.normal(0.3, 0.02, 50)),
        "inference/latency_ms": cols(r.normal(400, 30, 50), unit="ms"),
    }


def test_healthy_run_has_no_findings():
    assert A.findings(healthy_run()) == []


def test_too_little_data_has_no_findings():
    run = {k: cols(v.value[:3], unit=v.unit) for k, v in healthy_run().items()}
    run["system/cpu_percent"] = _sampled([99.0, 99.0])
    run["gpu/0/utilization_percent"] = _sampled([5.0, 5.0])
    assert A.findings(run) == []


def test_input_bound_finding_cites_both_means():
    run = healthy_run()
    run["system/cpu_percent"] = _sampled(np.full(300, 97.0))
    run["gpu/0/utilization_percent"] = _sampled(np.full(300, 31.0))
    (f,) = A.findings(run)
    assert f.id == "input_bound" and f.severity == "warning"
    assert f.text == (
        "GPU utilization averaged 31 % while CPU was at 97 %: "
        "the input pipeline is the likely bottleneck."
    )
    assert f.numbers == {"gpu_utilization_mean_percent": 31.0, "cpu_mean_percent": 97.0}


def test_headroom_and_full_gpu_memory():
    run = healthy_run()
    run["gpu/0/memory_used_bytes"] = _sampled(np.linspace(10e9, 49.6e9, 300), unit="B")
    (f,) = A.findings(run)
    assert f.id == "gpu_memory_headroom" and f.severity == "info"
    # 49.6e9 of 80e9 bytes, said in binary units.
    assert f.text == (
        "Peak GPU 0 memory 62 % (46.2 GiB of 74.5 GiB): there is room for a larger batch."
    )
    run["gpu/0/memory_used_bytes"] = _sampled(np.full(300, 78e9), unit="B")
    (f,) = A.findings(run)
    assert f.id == "gpu_memory_full" and "98 % (72.6 GiB of 74.5 GiB)" in f.text


def test_thermal_throttling_while_busy():
    run = healthy_run()
    throttle = np.zeros(300)
    throttle[100:160] = 1.0
    run["gpu/0/throttle_thermal"] = _sampled(throttle, unit="bool")
    run["gpu/0/temperature_c"] = _sampled(np.full(300, 87.0), unit="°C")
    (f,) = A.findings(run)
    assert f.id == "gpu_thermal_throttling"
    assert "20 % of the samples" in f.text and "87 °C" in f.text


def test_memory_disk_inference_nan_and_slowdown_findings():
    run = healthy_run()
    run["system/memory_percent"] = _sampled(np.full(300, 96.0))
    run["system/logdir_disk_used_percent"] = _sampled(np.full(300, 97.0))
    run["inference/rtf"] = cols(np.full(50, 1.4))
    loss = decreasing_loss(1000)
    loss[700:705] = math.nan
    run["train/loss"] = cols(loss)
    sps = np.r_[np.full(500, 10.0), np.full(500, 6.0)]
    run["train/steps_per_s"] = cols(sps, unit="steps/s")
    found = {f.id: f for f in A.findings(run)}
    assert set(found) == {
        "non_finite_loss",
        "host_memory_pressure",
        "logdir_disk_full",
        "slower_than_real_time",
        "steps_per_s_regression",
    }
    assert next(iter(found)) == "non_finite_loss"  # critical first
    assert "5 of 1000 points, first at step 700" in found["non_finite_loss"].text
    text = found["slower_than_real_time"].text
    assert text.startswith("p95 RTF is 1.40: slower than real time. Mean RTF 1.40 over 50")
    assert "fell 40 %" in found["steps_per_s_regression"].text
