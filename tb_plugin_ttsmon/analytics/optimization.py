"""Optimization insights (mixed precision, XLA, loss scaling, retracing), backed by the run's data.

Pure numpy, like the other findings (`run_findings`), but they also read
the run facts (the mixed-precision policy, TensorFlow's JIT setting, each
GPU's compute capability from NVML), the model facts (Keras' `jit_compile`,
the optimizer) and, where the run has one, a profiler summary (op mix).
A finding whose evidence this run lacks is not made: no GPU facts, no
mixed-precision advice; no training steps, no XLA advice.

Each finding names what to change, in code, and the numbers it rests on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_plugin_ttsmon.analytics.common import Finding, SeriesLike, finite_values, fixed
from tb_plugin_ttsmon.analytics.comparison import step_times_ms

# A GPU busier than this (median %) while training is compute-bound.
BUSY_GPU_PERCENT = 70.0
# ... unless the input pipeline takes this share of the step (step phases).
INPUT_SHARE = 0.2
# Tensor cores: compute capability 7.0 (Volta) and later.
TENSOR_CORE_CAPABILITY = 7.0
# XLA advice: step time spread (p90 / median) or op launches per step.
SPREAD_P90_OVER_MEDIAN = 1.5
MANY_OPS_PER_STEP = 200
# Loss scale trouble: at least this many halvings with no growth after, or
# this many non-finite gradient norms.
SCALE_HALVINGS = 3
NON_FINITE_GRADIENTS = 3
# Retracing: new traces after the warm-up share of the steps.
RETRACES = 3
RETRACE_WARMUP_SHARE = 0.1
# XLA recompiling: steps this many times the median, at least this many.
SPIKE_OVER_MEDIAN = 5.0
SPIKES = 3


def optimization_findings(
    series: Mapping[str, SeriesLike],
    facts: Mapping[str, Any] | None,
    models: Sequence[Mapping[str, Any]] = (),
    profile: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Mixed precision, XLA, loss-scale and retracing findings the run's data backs.

    Args:
      series: Tag -> series of one run.
      facts: The run's latest ``run/facts`` document.
      models: Its ``model/facts`` documents (latest per model).
      profile: A profiler summary of the run (`query.profiles.summarize`), if any.
    """
    facts = facts if isinstance(facts, Mapping) else {}
    keras_models = [m for m in models if isinstance(m, Mapping) and "jit_compile" in m]
    out: list[Finding] = []
    out += _mixed_precision_off(series, facts, models, profile)
    out += _xla_off(series, facts, keras_models, profile)
    out += _loss_scale_trouble(series)
    out += _retracing(series, facts, keras_models)
    return out


def op_mix(profile: Mapping[str, Any] | None) -> dict[str, float] | None:
    """From a profile summary: op launches per step, time shares of matmul/conv and the top ops."""
    if not isinstance(profile, Mapping):
        return None
    totals = profile.get("op_totals")
    if not isinstance(totals, Mapping) or not totals.get("self_time_ms"):
        return None
    total = float(totals["self_time_ms"])
    ops = [o for o in profile.get("top_ops") or [] if isinstance(o, Mapping)]
    top5 = sum(float(o.get("self_time_ms") or 0.0) for o in ops[:5])
    out = {
        "matmul_conv_percent": 100.0 * float(totals.get("matmul_conv_ms") or 0.0) / total,
        "top5_percent": 100.0 * top5 / total,
    }
    steps = profile.get("steps")
    if isinstance(steps, int) and steps > 0 and totals.get("launches"):
        out["ops_per_step"] = float(totals["launches"]) / steps
    return out


def _section(facts: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = facts.get(key)
    return value if isinstance(value, Mapping) else {}


def _gpu_median_util(series: Mapping[str, SeriesLike]) -> float | None:
    utils = [
        finite_values(s) for t, s in series.items() if re.match(r"gpu/\d+/utilization_percent$", t)
    ]
    utils = [u for u in utils if len(u)]
    return float(np.median(np.concatenate(utils))) if utils else None


def _input_share(series: Mapping[str, SeriesLike]) -> float | None:
    data, step = (
        finite_values(series.get("train/data_time_ms")),
        finite_values(series.get("train/step_time_ms")),
    )
    if not len(data) or not len(step):
        return None
    total = float(np.median(data) + np.median(step))
    return float(np.median(data)) / total if total > 0 else None


def _tensor_core_gpus(facts: Mapping[str, Any]) -> list[tuple[str, float]]:
    devices = _section(facts, "nvml").get("devices")
    out = []
    for d in devices if isinstance(devices, list) else []:
        if not isinstance(d, Mapping):
            continue
        try:
            capability = float(d.get("compute_capability") or "")  # "9.0"
        except (TypeError, ValueError):
            continue
        if capability >= TENSOR_CORE_CAPABILITY:
            out.append((str(d.get("name") or "GPU"), capability))
    return out


def _mixed_precision_off(
    series: Mapping[str, SeriesLike],
    facts: Mapping[str, Any],
    models: Sequence[Mapping[str, Any]],
    profile: Mapping[str, Any] | None,
) -> list[Finding]:
    frameworks = _section(facts, "frameworks")
    policy = frameworks.get("mixed_precision_policy")
    dtypes = {str(d) for m in models if isinstance(m, Mapping) for d in (m.get("dtypes") or [])}
    policies = {
        str(m.get("dtype_policy"))
        for m in models
        if isinstance(m, Mapping) and m.get("dtype_policy")
    }
    half = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")
    if (policy in half) or any(p in half for p in policies) or dtypes & {"float16", "bfloat16"}:
        return []  # on already (PyTorch autocast leaves no trace in the facts: then not shown)
    if policy is None and not policies:
        # Nothing says which precision the job trains in: PyTorch's autocast
        # keeps float32 parameters and leaves no trace in the facts.
        return []
    gpus = _tensor_core_gpus(facts)
    util = _gpu_median_util(series)
    if not gpus or util is None or util < BUSY_GPU_PERCENT or not len(step_times_ms(series).ms):
        return []
    share = _input_share(series)
    if share is not None and share >= INPUT_SHARE:
        return []  # input-bound: faster math would wait for data
    name, capability = gpus[0]
    numbers: dict[str, float] = {
        "gpu_utilization_median_percent": round(util, 1),
        "compute_capability": capability,
    }
    evidence = ""
    mix = op_mix(profile)
    if mix is not None:
        numbers["matmul_conv_percent"] = round(mix["matmul_conv_percent"], 1)
        evidence = (
            f" The profile puts {fixed(mix['matmul_conv_percent'])} % of op time in matmul and "
            "convolution ops, which tensor cores run."
        )
    if share is not None:
        numbers["input_share_percent"] = round(share * 100, 1)
    return [
        Finding(
            "mixed_precision_off",
            "warning",
            "Mixed precision is off on a GPU with tensor cores",
            f"Training runs in {policy or 'float32'} on {name} (compute capability {capability:g}, "
            f"tensor cores) while the GPU is busy (median {fixed(util)} %) and the step is not "
            f"waiting for input.{evidence} Keras: "
            'keras.mixed_precision.set_global_policy("mixed_bfloat16") (or "mixed_float16", which '
            "adds loss scaling) before building the model. PyTorch: "
            'with torch.autocast("cuda", dtype=torch.bfloat16): around the forward pass and '
            "the loss.",
            numbers,
        )
    ]


def _xla_off(
    series: Mapping[str, SeriesLike],
    facts: Mapping[str, Any],
    keras_models: Sequence[Mapping[str, Any]],
    profile: Mapping[str, Any] | None,
) -> list[Finding]:
    frameworks = _section(facts, "frameworks")
    trained = [m for m in keras_models if m.get("jit_compile") is not None]
    if not trained or any(m.get("jit_compile") for m in trained) or frameworks.get("xla_jit"):
        return []
    times = step_times_ms(series).ms
    mix = op_mix(profile)
    reasons: list[str] = []
    numbers: dict[str, float] = {}
    if len(times):
        median, p90 = float(np.median(times)), float(np.percentile(times, 90))
        if median > 0 and p90 / median >= SPREAD_P90_OVER_MEDIAN:
            reasons.append(
                f"step time varies a lot (p90 {fixed(p90, 1)} ms against a median of "
                f"{fixed(median, 1)} ms)"
            )
            numbers.update(step_time_median_ms=round(median, 3), step_time_p90_ms=round(p90, 3))
    if mix is not None and mix.get("ops_per_step", 0) >= MANY_OPS_PER_STEP:
        reasons.append(
            f"the profile shows {fixed(mix['ops_per_step'])} op launches per step, the top 5 ops "
            f"taking {fixed(mix['top5_percent'])} % of op time (many small ops)"
        )
        numbers.update(
            ops_per_step=round(mix["ops_per_step"], 1),
            top5_ops_percent=round(mix["top5_percent"], 1),
        )
    if not reasons:
        return []
    name = str(trained[0].get("name") or "the model")
    return [
        Finding(
            "xla_off",
            "info",
            "XLA compilation is off",
            f"{name} trains without XLA and " + " and ".join(reasons) + ": XLA fuses small ops "
            "into fewer kernels. Try model.compile(..., jit_compile=True) and compare the runs "
            "(ttsmon compare); with variable-length TTS batches, bucket them by length "
            "(tf.data's bucket_by_sequence_length) so XLA compiles a few shapes, not one per "
            "batch.",
            numbers,
        )
    ]


def _loss_scale_trouble(series: Mapping[str, SeriesLike]) -> list[Finding]:
    out = []
    scale = series.get("train/loss_scale")
    if scale is not None and len(finite_values(scale)) >= 2:
        v = finite_values(scale)
        halvings = int(np.sum(v[1:] < v[:-1] * 0.75))
        grew_after = bool(np.any(v[np.argmin(v) :][1:] > v.min()))
        if halvings >= SCALE_HALVINGS and not grew_after and v[-1] < v[0]:
            out.append(
                Finding(
                    "loss_scale_falling",
                    "warning",
                    "The loss scale keeps falling",
                    f"The dynamic loss scale fell {halvings} times, from {v[0]:g} to {v[-1]:g}, "
                    "and "
                    "never grew back: gradients overflow float16 at step after step. Use "
                    '"mixed_bfloat16" (no loss scaling needed) where the GPU has bfloat16 '
                    "(compute capability 8.0+), or find the layer that overflows (keep softmax, "
                    'normalization and the loss in float32: dtype="float32" on those layers).',
                    {
                        "halvings": float(halvings),
                        "first_scale": float(v[0]),
                        "last_scale": float(v[-1]),
                    },
                )
            )
    for tag in ("train/gradient_norm",):
        s = series.get(tag)
        if s is None or not len(s.value):
            continue
        bad = int(np.sum(~np.isfinite(s.value)))
        if bad >= NON_FINITE_GRADIENTS and scale is not None:
            out.append(
                Finding(
                    "non_finite_gradients",
                    "warning",
                    "Gradients are NaN or infinite again and again under mixed precision",
                    f"{tag} was not finite at {bad} of {len(s.value)} steps while loss scaling is "
                    "on: each such step is skipped. If it keeps happening the loss scale cannot "
                    "settle: check the inputs for inf/NaN, lower the learning rate, or switch to "
                    '"mixed_bfloat16".',
                    {"non_finite_count": float(bad), "steps": float(len(s.value))},
                )
            )
    return out


def _retracing(
    series: Mapping[str, SeriesLike],
    facts: Mapping[str, Any],
    keras_models: Sequence[Mapping[str, Any]],
) -> list[Finding]:
    out = []
    traces = series.get("train/traces_count")
    if traces is not None and len(traces.value) >= 10:
        order = np.argsort(traces.step, kind="stable")
        v = traces.value[order]
        cut = int(len(v) * RETRACE_WARMUP_SHARE)
        new = float(v[-1] - v[cut]) if np.isfinite(v[-1]) and np.isfinite(v[cut]) else 0.0
        if new >= RETRACES:
            out.append(
                Finding(
                    "retracing_storm",
                    "warning",
                    "The training step keeps being retraced",
                    f"TensorFlow traced the training step {int(v[-1])} times, {int(new)} of them "
                    "after the warm-up: each new input shape (TTS batches of varying length) costs "
                    "a trace and a slow step. Pad batches to a few lengths "
                    "(tf.data's bucket_by_sequence_length, or padded_batch to fixed buckets), or "
                    "give tf.function an input_signature with None for the time axis.",
                    {"traces": float(v[-1]), "traces_after_warmup": new},
                )
            )
            return out
    xla_on = any(m.get("jit_compile") for m in keras_models) or bool(
        _section(facts, "frameworks").get("xla_jit")
    )
    times = step_times_ms(series).ms
    if xla_on and len(times):
        median = float(np.median(times))
        spikes = int(np.sum(times >= SPIKE_OVER_MEDIAN * median)) if median > 0 else 0
        if spikes >= SPIKES:
            out.append(
                Finding(
                    "xla_recompiling",
                    "warning",
                    "Step time spikes again and again with XLA on",
                    f"{spikes} steps after the warm-up took {fixed(SPIKE_OVER_MEDIAN)}× the median "
                    f"({fixed(median, 1)} ms) or more with XLA on: XLA compiles anew for every new "
                    "input shape. Bucket TTS batches by length (a handful of padded lengths) so "
                    "each shape compiles once.",
                    {"spikes": float(spikes), "step_time_median_ms": round(median, 3)},
                )
            )
    return out
