"""Two runs side by side: their setup differences, speed, memory, and a verdict.

Pure numpy, like the rest of `analytics`: the read layer gives each run's
series, run facts and model facts (`RunSide`), and `compare` returns plain
JSON-able data that the ``compare`` route, ``ttsmon compare`` and the tab's
comparison panel all show.

Speed is the time per training step: the wall time between consecutive
logged training steps, divided by the steps between them (what a user
waits for, input pipeline and all), with the warm-up (the first tenth of the
steps, at least 5 intervals: compilation, caches) left out. The ratio of the
two runs' medians gets a 95 % interval from a bootstrap over steps (each run
resampled on its own, `BOOTSTRAP_RESAMPLES` times); an interval that holds
1.0 means the runs do not differ measurably.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_plugin_ttsmon.analytics.common import SeriesLike, finite_values
from tb_plugin_ttsmon.units import format_bytes

BOOTSTRAP_RESAMPLES = 2000
# Resampling a long run's every step costs resamples x steps; beyond this
# many steps a random subset is resampled (a slightly wider, honest interval).
BOOTSTRAP_MAX_STEPS = 2000
CONFIDENCE = 0.95
# Warm-up left out of the step times: this share of the intervals, at least MIN.
WARMUP_SHARE = 0.1
WARMUP_MIN_INTERVALS = 5
# Fewer step intervals than this (after the warm-up) say nothing about speed.
MIN_INTERVALS = 10
# Run facts that name the process or the moment, not the setup.
_IGNORED_FACTS = re.compile(
    r"^(cwd|log_dir|pid|process(\..*)?|process_started_at_s|started_at_s|user"
    r"|recorder\.monitored_pid|distributed\.(rank_dir|job_log_dir)"
    r"|nvml\.(devices\.\d+\.(uuid|pci_bus_id|index)|reason)|rank|local_rank|node_rank)$"
)
_MODEL_FACTS = (
    "parameter_count",
    "trainable_parameter_count",
    "size_bytes",
    "dtype_policy",
    "jit_compile",
    "loss_scale",
    "optimizer",
    "layer_count",
    "dtypes",
    "class",
)
# Setup keys a person reads first, with their names in sentences.
_LABELS = {
    "frameworks.mixed_precision_policy": "mixed precision policy",
    "frameworks.xla_jit": "XLA (TensorFlow's global JIT)",
    "frameworks.tf_xla_flags": "TF_XLA_FLAGS",
    "jit_compile": "XLA (jit_compile)",
    "dtype_policy": "dtype policy",
    "parameter_count": "parameters",
    "size_bytes": "model size",
    "hostname": "host",
    "versions.tensorflow": "TensorFlow",
    "versions.torch": "PyTorch",
    "versions.keras": "Keras",
    "batch_size": "batch size",
}
_FIRST = ("jit_compile", "xla", "mixed_precision", "dtype_policy", "batch_size", "devices",
          "parameter_count", "versions.", "hostname")  # fmt: skip


@dataclasses.dataclass
class RunSide:
    """One run as the comparison reads it."""

    name: str
    series: Mapping[str, SeriesLike]
    facts: Mapping[str, Any] | None = None
    models: Sequence[Mapping[str, Any]] = ()


def compare(
    a: RunSide, b: RunSide, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """`b` against `a`: setup differences, performance with intervals, and a one-line verdict.

    Ratios read "b against a": a speedup above 1 means `b` takes less time
    per step; a memory change of -0.18 means `b` uses 18 % less.
    """
    rng = np.random.default_rng(seed)
    setup = setup_differences(a, b)
    speed = _speed(a, b, rng, resamples)
    perf: dict[str, Any] = {"step_time_ms": speed}
    perf["gpu_memory_bytes"] = _paired(_gpu_memory(a.series), _gpu_memory(b.series))
    perf["host_memory_bytes"] = _paired(_host_memory(a.series), _host_memory(b.series))
    perf["gpu_utilization_percent"] = _paired(_gpu_util(a.series), _gpu_util(b.series))
    perf["inference"] = {
        "latency_ms": _paired(
            _percentiles(a.series.get("inference/latency_ms")),
            _percentiles(b.series.get("inference/latency_ms")),
        ),
        "rtf": _paired(
            _percentiles(a.series.get("inference/rtf")), _percentiles(b.series.get("inference/rtf"))
        ),
    }
    perf["time_to_loss"] = _time_to_loss(a.series, b.series)
    verdict, differ = _verdict(a.name, b.name, speed, perf, setup)
    return {
        "a": a.name,
        "b": b.name,
        "setup": setup,
        "performance": perf,
        "verdict": verdict,
        "differ": differ,
        "confidence": CONFIDENCE,
    }


# -- setup ---------------------------------------------------------------------


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(doc, list) and doc and all(isinstance(x, Mapping) for x in doc):
        for i, v in enumerate(doc):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = doc
    return out


def _label(key: str) -> str:
    last = key.rsplit(".", 1)[-1]
    if key in _LABELS:
        return _LABELS[key]
    if last in _LABELS and key.startswith("model."):
        return f"{key.split('.')[1]}: {_LABELS[last]}"
    if m := re.match(r"nvml\.devices\.(\d+)\.name$", key):
        return f"GPU {m.group(1)} model"
    return key


def setup_differences(a: RunSide, b: RunSide) -> list[dict[str, Any]]:
    """Every run-fact and model-fact key whose value differs, the most telling first."""
    fa, fb = _flatten(a.facts or {}), _flatten(b.facts or {})
    for side, models in ((fa, a.models), (fb, b.models)):
        for doc in models:
            if isinstance(doc, Mapping) and isinstance(doc.get("name"), str):
                for key in _MODEL_FACTS:
                    if key in doc:
                        side[f"model.{doc['name']}.{key}"] = doc[key]
    out = []
    for key in sorted(set(fa) | set(fb)):
        if _IGNORED_FACTS.match(key):
            continue
        va, vb = fa.get(key), fb.get(key)
        if va != vb:
            out.append({"key": key, "label": _label(key), "a": va, "b": vb})

    def order(d: dict[str, Any]) -> tuple[int, str]:
        hits = [i for i, word in enumerate(_FIRST) if word in d["key"]]
        return (hits[0] if hits else len(_FIRST), d["key"])

    return sorted(out, key=order)


def _phrase(diff: dict[str, Any]) -> str:
    a, b = diff["a"], diff["b"]
    if "jit" in diff["key"] or "xla" in diff["key"]:
        on = {True: "on", False: "off", None: "unset"}
        if isinstance(b, bool) or b is None:
            return f"{diff['label']} {on.get(a, a)} → {on.get(b, b)}"
    if (
        diff["key"].endswith("size_bytes")
        and isinstance(a, (int, float))
        and isinstance(b, (int, float))
    ):
        return f"{diff['label']} {format_bytes(a)} → {format_bytes(b)}"
    return f"{diff['label']} {_show(a)} → {_show(b)}"


def _show(v: Any) -> str:
    if v is None:
        return "unset"
    if isinstance(v, float):
        return f"{v:g}"
    text = str(v)
    return text if len(text) <= 40 else text[:39] + "…"


# -- speed -----------------------------------------------------------------------


@dataclasses.dataclass
class StepTimes:
    """A run's time per training step: after the warm-up, and the warm-up itself."""

    ms: np.ndarray  # per step, after the warm-up, in logged order
    warmup_intervals: int
    warmup_s: float  # wall time of the warm-up (compilation, caches)
    source: str


def step_times_ms(series: Mapping[str, SeriesLike]) -> StepTimes:
    """Milliseconds per training step after the warm-up, and the warm-up's length.

    From the wall times of consecutive logged steps of ``train/loss`` (else
    the first ``train/`` series): each interval's time over its steps, only
    where both grow (a restart's steps going back are no interval). Fewer
    than `MIN_INTERVALS` after the warm-up give no times.
    """
    tag = (
        "train/loss"
        if "train/loss" in series
        else next(
            (t for t in sorted(series) if t.startswith("train/") and t != "train/steps_per_s"), None
        )
    )
    if tag is None:
        return StepTimes(np.zeros(0), 0, 0.0, "")
    s = series[tag]
    order = np.argsort(s.wall_time, kind="stable")
    wall, step = s.wall_time[order], s.step[order]
    d_wall, d_step = np.diff(wall), np.diff(step)
    ok = (d_step > 0) & (d_wall > 0) & np.isfinite(d_wall)
    per_step = (d_wall[ok] / d_step[ok]) * 1000.0
    warm = max(WARMUP_MIN_INTERVALS, math.ceil(WARMUP_SHARE * len(per_step)))
    warm_s = float(d_wall[ok][:warm].sum())
    source = f"{tag} wall times"
    if len(per_step) - warm < MIN_INTERVALS:
        return StepTimes(np.zeros(0), min(warm, len(per_step)), warm_s, source)
    return StepTimes(per_step[warm:], warm, warm_s, source)


def bootstrap_ratio(
    a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int
) -> tuple[float, float, float]:
    """``median(a) / median(b)`` and its `CONFIDENCE` interval, each side resampled on its own."""

    def medians(x: np.ndarray) -> np.ndarray:
        if len(x) > BOOTSTRAP_MAX_STEPS:
            x = rng.choice(x, BOOTSTRAP_MAX_STEPS, replace=False)
        idx = rng.integers(0, len(x), size=(resamples, len(x)))
        return np.median(x[idx], axis=1)

    point = float(np.median(a) / np.median(b))
    ratios = medians(a) / medians(b)
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return point, float(lo), float(hi)


def _speed(a: RunSide, b: RunSide, rng: np.random.Generator, resamples: int) -> dict[str, Any]:
    sa, sb = step_times_ms(a.series), step_times_ms(b.series)
    ta, tb = sa.ms, sb.ms

    def side(st: StepTimes) -> dict[str, Any] | None:
        t = st.ms
        if not len(t):
            return None
        median = float(np.median(t))
        return {
            "median": median,
            "mean": float(t.mean()),
            "p90": float(np.percentile(t, 90)),
            "steps_per_s": 1000.0 / median if median > 0 else None,
            "intervals": len(t),
            "warmup_intervals": st.warmup_intervals,
            "warmup_s": st.warmup_s,
        }

    out: dict[str, Any] = {"a": side(sa), "b": side(sb), "source": sa.source or sb.source}
    if len(ta) and len(tb) and np.median(tb) > 0:
        speedup, lo, hi = bootstrap_ratio(ta, tb, rng, resamples)
        # Every step after the warm-up counted: a median leaves out the slow
        # ones (recompiling, validation, checkpoints), a user's wall clock does not.
        mean_speedup = float(ta.mean() / tb.mean()) if tb.mean() > 0 else None
        out.update(speedup=speedup, ci=[lo, hi], resamples=resamples, mean_speedup=mean_speedup)
    else:
        out.update(speedup=None, ci=None, mean_speedup=None)
    return out


# -- memory, utilization, inference --------------------------------------------------


def _sum_by_step(parts: Sequence[SeriesLike]) -> np.ndarray:
    """Per sample, the sum over `parts` (one series per GPU, sampled together)."""
    if not parts:
        return np.zeros(0)
    steps = np.concatenate([p.step for p in parts])
    values = np.concatenate([p.value for p in parts])
    ok = np.isfinite(values)
    uniq, inverse = np.unique(steps[ok], return_inverse=True)
    return np.bincount(inverse, weights=values[ok], minlength=len(uniq))


def _gpus(series: Mapping[str, SeriesLike], name: str) -> list[SeriesLike]:
    pattern = re.compile(rf"gpu/\d+/{name}$")
    return [s for t, s in sorted(series.items()) if pattern.match(t)]


def _stats(v: np.ndarray) -> dict[str, float] | None:
    if not len(v):
        return None
    return {"peak": float(v.max()), "median": float(np.median(v))}


def _gpu_memory(series: Mapping[str, SeriesLike]) -> dict[str, Any] | None:
    """The job's own GPU memory (all its GPUs) where recorded, else all processes'."""
    for name, basis in (("process_memory_used_bytes", "the job's processes"),
                        ("memory_used_bytes", "all processes")):  # fmt: skip
        stats = _stats(_sum_by_step(_gpus(series, name)))
        if stats is not None:
            return {**stats, "basis": basis}
    return None


def _host_memory(series: Mapping[str, SeriesLike]) -> dict[str, Any] | None:
    for tag, basis in (("process/rss_bytes", "process tree RSS"),
                       ("system/memory_used_bytes", "host memory in use")):  # fmt: skip
        stats = _stats(finite_values(series.get(tag)))
        if stats is not None:
            return {**stats, "basis": basis}
    return None


def _gpu_util(series: Mapping[str, SeriesLike]) -> dict[str, Any] | None:
    parts = _gpus(series, "utilization_percent")
    if not parts:
        return None
    mean = _sum_by_step(parts) / len(parts)
    return {"median": float(np.median(mean)), "mean": float(mean.mean())} if len(mean) else None


def _percentiles(s: SeriesLike | None) -> dict[str, float] | None:
    v = finite_values(s)
    if not len(v):
        return None
    p50, p95 = np.percentile(v, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "count": len(v)}


def _paired(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
    """Both sides, and b's relative change of each number both have (None where one lacks it)."""
    if a is None and b is None:
        return None
    out: dict[str, Any] = {"a": a, "b": b, "change": None}
    if a is not None and b is not None:
        out["change"] = {
            k: (b[k] - a[k]) / a[k]
            for k in a
            if isinstance(a[k], float) and isinstance(b.get(k), float) and a[k] > 0
        }
    return out


def _time_to_loss(
    a: Mapping[str, SeriesLike], b: Mapping[str, SeriesLike]
) -> dict[str, Any] | None:
    """Wall time from each run's first training step to its loss first at the target.

    The target is the worse of the two runs' best losses (validation where
    both have it, else training), so both reach it.
    """
    for tag in ("val/loss", "train/loss"):
        sa, sb = a.get(tag), b.get(tag)
        if sa is None or sb is None or not len(finite_values(sa)) or not len(finite_values(sb)):
            continue
        target = max(float(finite_values(sa).min()), float(finite_values(sb).min()))
        times = []
        for side, s in ((a, sa), (b, sb)):
            start = _first_wall(side)
            hit = np.flatnonzero(np.isfinite(s.value) & (s.value <= target))
            times.append(
                float(s.wall_time[hit[0]] - start) if len(hit) and start is not None else None
            )
        ta, tb = times
        change = (tb - ta) / ta if ta and tb is not None and ta > 0 else None
        return {"tag": tag, "target": target, "a_s": ta, "b_s": tb, "change": change}
    return None


def _first_wall(series: Mapping[str, SeriesLike]) -> float | None:
    walls = [
        float(s.wall_time.min())
        for t, s in series.items()
        if t.startswith("train/") and len(s.wall_time)
    ]
    return min(walls) if walls else None


# -- the verdict -----------------------------------------------------------------------


def _verdict(
    a: str, b: str, speed: dict[str, Any], perf: dict[str, Any], setup: list[dict[str, Any]]
) -> tuple[str, bool]:
    """One sentence: b against a per step (with the interval), memory, time to loss, the setup."""
    parts: list[str] = []
    differ = False
    if speed.get("speedup") is None:
        head = f"{b} and {a} cannot be compared per step (too few logged training steps)"
    else:
        r, (lo, hi) = speed["speedup"], speed["ci"]
        pct = int(CONFIDENCE * 100)
        if lo <= 1.0 <= hi:
            head = (
                f"{b} and {a} do not differ measurably per step ({b}/{a} speed {r:.2f}×, "
                f"{pct} % CI {lo:.2f}–{hi:.2f})"
            )
        elif r > 1:
            differ = True
            head = f"{b} is {r:.2f}× faster per step than {a} ({pct} % CI {lo:.2f}–{hi:.2f})"
        else:
            differ = True
            ci = f"{pct} % CI {1 / hi:.2f}–{1 / lo:.2f}"
            head = f"{b} is {1 / r:.2f}× slower per step than {a} ({ci})"
    mean = speed.get("mean_speedup")
    if mean is not None and speed.get("speedup") and abs(mean / speed["speedup"] - 1) >= 0.15:
        parts.append(f"{mean:.2f}× counting every step after the warm-up (means, slow steps too)")
    wa, wb = (speed.get("a") or {}).get("warmup_s"), (speed.get("b") or {}).get("warmup_s")
    if wa is not None and wb is not None and abs(wb - wa) >= max(1.0, 0.2 * max(wa, wb)):
        parts.append(f"spends {wb:.1f} s in its warm-up against {wa:.1f} s")
    for key, what in (("gpu_memory_bytes", "GPU memory"), ("host_memory_bytes", "host memory")):
        entry = perf.get(key)
        change = (entry or {}).get("change") or {}
        if "peak" in change and abs(change["peak"]) >= 0.05:
            word = "less" if change["peak"] < 0 else "more"
            parts.append(f"uses {abs(change['peak']) * 100:.0f} % {word} {what} at its peak")
            break
    ttl = perf.get("time_to_loss")
    if ttl and ttl.get("change") is not None and abs(ttl["change"]) >= 0.05:
        word = "sooner" if ttl["change"] < 0 else "later"
        which = "validation loss" if ttl["tag"] == "val/loss" else "training loss"
        parts.append(
            f"reaches the same {which} {abs(ttl['change']) * 100:.0f} % {word} in wall time"
        )
    sentence = head
    if parts:
        sentence += ", " + ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    if setup:
        shown = [_phrase(d) for d in setup[:3]]
        more = f" and {len(setup) - 3} more" if len(setup) > 3 else ""
        sentence += "; the setup differs in: " + "; ".join(shown) + more
    else:
        sentence += "; the recorded setup is the same"
    return sentence + ".", differ
