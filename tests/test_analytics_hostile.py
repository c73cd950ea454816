"""Every route-facing analytics function on hostile data: NaN, +-Inf, values near
float32's limits (+-3e38), one-point and empty series.

The plugin must never answer 500, and a RuntimeWarning from numpy here means an
answer computed from an overflow or a 0/0: both are failures (see the
``filterwarnings`` mark). Non-finite numbers may stay in the returned data as
float NaN / Inf (the JSON encoder spells them), but what the tab draws
(normalized heatmap cells, coefficients, scatter points) must be finite.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tb_plugin_ttsmon import analytics as A

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

T0 = 1_700_000_000.0
N = 1200  # 2 s sampling: 40 minutes, long enough for the leak and collapse checks
F32_MAX = 3.4028234663852886e38


def _pattern(name: str, n: int = N) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    base = 50.0 + 10.0 * np.sin(i / 25.0)
    if name == "nan":
        return np.full(n, math.nan)
    if name == "inf":
        return np.where(i % 2 == 0, math.inf, -math.inf)
    if name == "mixed_non_finite":
        v = base.copy()
        v[::7] = math.nan
        v[3::11] = math.inf
        v[5::13] = -math.inf
        return v
    if name == "near_f32_max":
        return np.where(i % 2 == 0, 3e38, -3e38)
    if name == "f32_max_spikes":
        v = base.copy()
        v[n // 2 :: 97] = F32_MAX
        v[n // 3 :: 89] = -3e38
        return v
    if name == "f32_max_flat":
        return np.full(n, 3e38)
    if name == "rising_to_f32_max":
        return np.linspace(0.0, 3e38, n)
    if name == "constant_zero":
        return np.zeros(n)
    if name == "denormal_and_signed_zero":
        return np.where(i % 3 == 0, 1e-45, np.where(i % 3 == 1, -1e-45, -0.0))
    if name == "float64_extremes":
        return np.where(i % 3 == 0, 1.7e308, np.where(i % 3 == 1, -1.7e308, 5e-324))
    if name == "limits_then_nan":
        # hostile_data.py's sampled series: a few points, each hostile, NaN last.
        v = np.array([8e10, 8e10, 0.0, math.nan, math.inf, 8e10, -3e38, 0.0, math.nan])
        return np.resize(v, n)
    raise KeyError(name)


PATTERNS = (
    "nan",
    "inf",
    "mixed_non_finite",
    "near_f32_max",
    "f32_max_spikes",
    "f32_max_flat",
    "rising_to_f32_max",
    "constant_zero",
    "denormal_and_signed_zero",
    "limits_then_nan",
)

# (tag, unit): one tag for each detector, finding and heatmap scaling rule.
TAGS = (
    ("train/loss", ""),
    ("val/loss", ""),
    ("train/gradient_norm", ""),
    ("train/steps_per_s", "steps/s"),
    ("inference/latency_ms", "ms"),
    ("inference/rtf", ""),
    ("process/rss_bytes", "B"),
    ("process/cpu_percent", "%"),
    ("container/memory_used_bytes", "B"),
    ("container/memory_limit_bytes", "B"),
    ("container/cpu_usage_cores", "cores"),
    ("container/cpu_limit_cores", "cores"),
    ("container/cpu_percent_of_limit", "%"),
    ("system/cpu_percent", "%"),
    ("system/memory_percent", "%"),
    ("system/memory_used_bytes", "B"),
    ("system/swap_used_bytes", "B"),
    ("system/logdir_disk_used_percent", "%"),
    ("system/logdir_disk_free_bytes", "B"),
    ("gpu/0/utilization_percent", "%"),
    ("gpu/0/memory_used_bytes", "B"),
    ("gpu/0/memory_total_bytes", "B"),
    ("gpu/0/memory_used_percent", "%"),
    ("gpu/0/power_w", "W"),
    ("gpu/0/power_limit_w", "W"),
    ("gpu/0/temperature_c", "°C"),
    ("gpu/0/throttle_thermal", "bool"),
    ("gpu/0/throttle_power", "bool"),
    ("tf/gpu/0/memory_current_bytes", "B"),
)


def _series(values: np.ndarray, unit: str, dt_s: float = 2.0) -> A.Columns:
    wall = T0 + np.arange(len(values)) * dt_s
    # Sampled series carry the millisecond wall time as their step, like the recorder's.
    return A.Columns.of(wall, values, step=(wall * 1000).astype(np.int64), unit=unit)


def _run_of(pattern_of_tag) -> dict[str, A.Columns]:
    return {tag: _series(pattern_of_tag(tag), unit) for tag, unit in TAGS}


def _uniform(name: str) -> dict[str, A.Columns]:
    return _run_of(lambda tag: _pattern(name))


def _mixed(seed: int) -> dict[str, A.Columns]:
    """Each tag a different pattern, some of them one point long or empty."""
    r = np.random.default_rng(seed)
    shapes = [*PATTERNS, "one_point", "one_nan", "one_inf", "one_f32_max", "empty"]

    def pick(tag: str) -> np.ndarray:
        name = shapes[int(r.integers(len(shapes)))]
        single = {"one_point": 1.0, "one_nan": math.nan, "one_inf": math.inf}
        if name in single:
            return np.array([single[name]])
        if name == "one_f32_max":
            return np.array([-3e38])
        if name == "empty":
            return np.zeros(0)
        return _pattern(name)

    return _run_of(pick)


def _tiny(values: list[float]) -> dict[str, A.Columns]:
    return _run_of(lambda tag: np.asarray(values, dtype=np.float64))


RUNS = {
    **{f"all_{name}": (lambda name=name: _uniform(name)) for name in PATTERNS},
    **{f"mixed_{seed}": (lambda seed=seed: _mixed(seed)) for seed in range(6)},
    "one_point": lambda: _tiny([1.0]),
    "one_nan_point": lambda: _tiny([math.nan]),
    "one_inf_point": lambda: _tiny([-math.inf]),
    "one_f32_max_point": lambda: _tiny([3e38]),
    "two_points": lambda: _tiny([3e38, -3e38]),
    "empty": lambda: _tiny([]),
    "eight_hostile_points": lambda: _tiny(
        [2.0, math.inf, 1.5, -math.inf, 3e38, -3e38, 1.2, math.nan]
    ),
}

# What a run/facts document may hold when another tool wrote it (the read
# layer passes the latest one on as it is).
HOSTILE_FACTS = (
    None,
    {},
    3e38,
    [1, 2],
    "facts",
    {"nvml": 1, "tensorflow_devices": "x"},
    {"nvml": {"devices": 7, "cuda_visible_devices": 0}, "tensorflow_devices": {"gpus": 3}},
    {"nvml": {"devices": "GPU-0"}, "tensorflow_devices": {"gpus": ["a", "b"]}},
    {
        "nvml": {
            "devices": [{"index": True}, {"index": -1}, {"index": math.nan}, None, {"index": 0}],
            "cuda_visible_devices": ",,,",
        },
        "tensorflow_devices": {"gpus": ["/physical_device:GPU:0"]},
    },
    {"nvml": {"devices": [{"index": 0, "uuid": None}], "cuda_visible_devices": "GPU-"}},
)


def _finite_or_none(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isfinite(x))


def _check_heatmap(h: dict) -> None:
    for row in h["rows"]:
        assert all(_finite_or_none(v) for v in row["values"]), row["tag"]
        assert all(v is None or 0.0 <= v <= 1.0 for v in row["normalized"]), row["tag"]
        assert len(row["values"]) == len(row["normalized"])
        assert row["limit"] is None or (math.isfinite(row["limit"]) and row["limit"] > 0)


def _check_matrix(rows: list[list[float | None]]) -> None:
    for row in rows:
        assert all(v is None or -1.0 <= v <= 1.0 for v in row)


@pytest.mark.parametrize("run_name", sorted(RUNS))
def test_hostile_runs_give_answers_not_exceptions(run_name):
    run = RUNS[run_name]()

    found = A.detect_anomalies(run)
    for a in found:
        assert isinstance(a.message, str) and a.message
        assert a.severity in A.SEVERITIES
        assert math.isfinite(a.score)
        assert math.isfinite(a.start_wall_time_s) and math.isfinite(a.end_wall_time_s)
    # Only a subset, as the anomalies route asks, and a tag the run lacks.
    A.detect_anomalies(run, tags=["gpu/0/utilization_percent", "train/no_such_tag"])

    for host_total in (None, 64 * 2**30, 3e38, math.nan, math.inf, -1.0, 0.0):
        h = A.heatmap(run, buckets=60, host_memory_total_bytes=host_total)
        _check_heatmap(h)
    for facts in HOSTILE_FACTS:
        _check_heatmap(A.heatmap(run, buckets=30, facts=facts))
    _check_heatmap(A.heatmap(run, buckets=2))

    tags = sorted(run)[:40]
    c = A.correlation(A.align([run[t] for t in tags]))
    _check_matrix(c["pearson"])
    _check_matrix(c["spearman"])
    assert len(c["n"]) == len(tags)
    assert math.isfinite(c["grid_s"]) and c["grid_s"] > 0

    for x, y in (("system/cpu_percent", "gpu/0/utilization_percent"), ("train/loss",) * 2):
        s = A.scatter(run[x], run[y], max_points=500)
        assert s["n"] >= len(s["points"])
        assert all(math.isfinite(v) for p in s["points"] for v in p)
        assert _finite_or_none(s["pearson"]) and _finite_or_none(s["spearman"])

    for f in A.findings(run):
        assert isinstance(f.text, str) and f.severity in A.SEVERITIES
        assert all(isinstance(v, float) for v in f.numbers.values())
    A.findings(run, anomalies=found)


def test_a_loss_that_becomes_nan_is_still_a_critical_finding_and_anomaly():
    loss = np.linspace(3.0, 1.0, 400)
    loss[300:] = math.nan
    run = {"train/loss": _series(loss, "", dt_s=0.5)}
    (f,) = A.findings(run)
    assert f.id == "non_finite_loss"
    assert "at 100 of 400 points" in f.text
    (a,) = A.detect_anomalies(run)
    assert (a.type, a.severity) == ("non_finite", "critical")
    assert a.message.startswith("train/loss is NaN at 100 points")


def test_values_at_float32s_limit_are_not_a_regression_of_0_percent():
    # +-3e38 back and forth is noise to the level-shift check, not an overflow.
    v = np.where(np.arange(600) % 2 == 0, 3e38, -3e38)
    found = A.detect_anomalies({"train/steps_per_s": _series(v, "steps/s")})
    assert [a for a in found if a.type == "level_shift"] == []


def test_heatmap_of_values_near_float32s_limit_spans_the_range():
    v = np.r_[np.full(50, -3e38), np.full(50, 3e38)]
    h = A.heatmap({"train/loss": _series(v, "", dt_s=1.0)}, buckets=10)
    (row,) = h["rows"]
    assert (row["min"], row["max"]) == (-3e38, 3e38)
    assert row["normalized"][0] == 0.0 and row["normalized"][-1] == 1.0


def test_heatmap_with_no_room_for_buckets():
    run = {"system/cpu_percent": _series(np.array([10.0, 20.0]), "%")}
    for buckets in (0, 1, -5):
        h = A.heatmap(run, buckets=buckets)
        (row,) = h["rows"]
        assert h["bucket_s"] > 0 and len(row["values"]) >= 1
    # A range that ends before it starts is read as empty, not as an error.
    h = A.heatmap(run, buckets=10, start_wall_time_s=T0 + 100, end_wall_time_s=T0)
    _check_heatmap(h)


def test_correlation_of_empty_and_one_point_series():
    empty = A.Columns.of([], [])
    one = A.Columns.of([T0], [1.0])
    for series in ([empty, empty], [one, one], [empty, one], [one, _series(np.arange(9.0), "")]):
        c = A.correlation(A.align(series))
        assert c["pearson"][0][1] is None and c["spearman"][0][1] is None
    s = A.scatter(empty, one)
    assert (s["n"], s["points"], s["pearson"]) == (0, [], None)


def test_float64_extremes_from_another_tool_raise_nothing():
    # Our recorder writes float32; another tool may write float64 under our
    # plugin name. Sums of such values overflow (numpy warns): the answers
    # need not be meaningful, but the routes must still answer.
    run = _uniform("float64_extremes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        A.detect_anomalies(run)
        A.findings(run)
        A.heatmap(run, buckets=30)
        c = A.correlation(A.align(list(run.values())))
        s = A.scatter(run["train/loss"], run["val/loss"])
    _check_matrix(c["pearson"])
    _check_matrix(c["spearman"])
    assert _finite_or_none(s["pearson"])


def test_findings_say_huge_values_in_a_few_digits():
    huge = {
        "system/memory_percent": _series(np.full(50, 3e38), "%"),
        "gpu/0/utilization_percent": _series(np.full(50, 95.0), "%"),
        "gpu/0/throttle_thermal": _series(np.ones(50), "bool"),
        "gpu/0/temperature_c": _series(np.full(50, 3e38), "°C"),
    }
    texts = {f.id: f.text for f in A.findings(huge)}
    assert texts["host_memory_pressure"].startswith("Host memory peaked at 3e+38 % (mean 3e+38 %)")
    assert "temperature up to 3e+38 °C" in texts["gpu_thermal_throttling"]


def test_a_spike_to_float32s_limit_reads_in_a_few_digits():
    loss = np.linspace(3.0, 1.0, 1000)
    loss[800] = 3e38
    (a,) = A.detect_anomalies({"train/loss": _series(loss, "", dt_s=1.0)})
    assert (a.type, a.severity, a.value) == ("spike", "critical", 3e38)
    assert (
        a.message == "train/loss 3e+38 at step 1700000800000 is 1.58e+38x its rolling median (1.9)"
    )


def test_heatmap_rows_are_in_natural_order():
    from tb_plugin_ttsmon import analytics

    cols = {
        f"system/cpu_core/{i}/utilization_percent": analytics.Columns.of(
            [1.0, 2.0, 3.0], [10.0, 20.0, 30.0], unit="%"
        )
        for i in (10, 2, 1, 0)
    }
    rows = analytics.heatmap(cols, 10)["rows"]
    assert [r["tag"].split("/")[2] for r in rows] == ["0", "1", "2", "10"]
