"""Optimization insights on real recorded runs: mixed precision, XLA, loss scaling, recompiling.

The GPU is NVML's fake at the lowest layer (an H100: compute capability
9.0, or an older card); everything else is real: a `Monitor` samples it,
Keras trains (a mixed-float16 model whose gradients overflow, a model
compiled with XLA fed batches of changing length), and the findings are read
back through the plugin's read layer, as the tab and the report get them.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from conftest import require_tf
from tbdata import python_provider
from tensorboard.context import RequestContext

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import analytics
from tb_plugin_ttsmon.analytics.common import Columns
from tb_plugin_ttsmon.query.reader import Reader


def _findings(logdir, run):
    with python_provider(str(logdir)) as provider:
        reader = Reader(provider, RequestContext(), "")
        return {f["id"]: f for f in reader.findings(run)["findings"]}


def _keras_model(jit_compile):
    import keras

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)], name="tts")
    model.compile(optimizer="adam", loss="mse", jit_compile=jit_compile)
    return model


def _train_on_fake_gpu(tmp_path, monkeypatch, *, capability=(9, 0), jit_compile=False,
                       data_ms=0.0, uneven=False, run="run"):  # fmt: skip
    """A Monitor on a busy fake GPU; 200 timed steps; a compiled Keras model's facts."""
    import fake_nvml
    import keras  # noqa: F401  # imported before the Monitor: its facts record the policy

    fake = fake_nvml.FakeNvml(gpu_count=1)
    fake.gpus[0].compute_capability = capability
    fake.gpus[0].utilization_gpu_percent = 93
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with ttsmon.Monitor(tmp_path / run, interval=0.1, writer="event") as mon:
        mon.log_model(_keras_model(jit_compile))
        for step in range(200):
            time.sleep(data_ms / 1000)
            with mon.step(step):
                time.sleep(0.012 if uneven and step % 3 == 0 else 0.004)
            mon.log_training(step, loss=1.0 / (step + 1))
        while mon.samples_taken < 12:
            time.sleep(0.02)
    return _findings(tmp_path, run)


def test_float32_on_a_busy_h100_suggests_mixed_precision(tmp_path, monkeypatch):
    require_tf()
    found = _train_on_fake_gpu(tmp_path, monkeypatch)
    f = found["mixed_precision_off"]
    assert f["severity"] == "warning"
    assert "float32 on NVIDIA H100 80GB HBM3 (compute capability 9, tensor cores)" in f["text"]
    assert "median 93 %" in f["text"]
    assert 'set_global_policy("mixed_bfloat16")' in f["text"] and "torch.autocast" in f["text"]
    assert f["numbers"]["compute_capability"] == 9.0
    assert f["numbers"]["input_share_percent"] < 20


def test_no_mixed_precision_advice_without_tensor_cores_or_when_input_bound(tmp_path, monkeypatch):
    require_tf()
    assert "mixed_precision_off" not in _train_on_fake_gpu(
        tmp_path, monkeypatch, capability=(6, 1), run="p100"
    )
    # Waiting 8 ms for data against 4 ms of compute: faster math would not help.
    assert "mixed_precision_off" not in _train_on_fake_gpu(
        tmp_path, monkeypatch, data_ms=8.0, run="input"
    )


def test_uneven_steps_without_xla_suggest_jit_compile(tmp_path, monkeypatch):
    require_tf()
    found = _train_on_fake_gpu(tmp_path, monkeypatch, uneven=True, run="uneven")
    f = found["xla_off"]
    assert f["text"].startswith("tts trains without XLA and step time varies a lot (p90 ")
    assert "jit_compile=True" in f["text"] and "bucket_by_sequence_length" in f["text"]
    assert f["numbers"]["step_time_p90_ms"] / f["numbers"]["step_time_median_ms"] >= 1.5
    with_xla = _train_on_fake_gpu(tmp_path, monkeypatch, uneven=True, jit_compile=True, run="x")
    assert "xla_off" not in with_xla


def test_a_profile_with_many_small_ops_backs_the_xla_and_precision_advice():
    series = {
        "train/loss": Columns.of(1e9 + np.arange(100) * 0.01, np.linspace(1, 0.1, 100)),
        "gpu/0/utilization_percent": Columns.of(1e9 + np.arange(30), np.full(30, 95.0)),
    }
    facts = {
        "frameworks": {"mixed_precision_policy": "float32"},
        "nvml": {"devices": [{"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}]},
    }
    models = [{"name": "tts", "framework": "keras", "jit_compile": False}]
    profile = {
        "steps": 10,
        "op_totals": {"launches": 5000.0, "self_time_ms": 200.0, "matmul_conv_ms": 130.0},
        "top_ops": [{"name": f"op{i}", "self_time_ms": 10.0} for i in range(8)],
    }
    found = {f.id: f for f in analytics.optimization_findings(series, facts, models, profile)}
    assert "500 op launches per step, the top 5 ops taking 25 % of op time" in found["xla_off"].text
    assert "65 % of op time in matmul and convolution ops" in found["mixed_precision_off"].text
    # Without the profile and with even steps, nothing backs the XLA advice.
    found = {f.id for f in analytics.optimization_findings(series, facts, models, None)}
    assert "xla_off" not in found and "mixed_precision_off" in found


def test_a_falling_loss_scale_is_recorded_and_found(tmp_path):
    require_tf()
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)], name="overflow")
        model.compile(optimizer="sgd", loss="mse")
        # Targets of 1e5: the float16-scaled gradients overflow, step after step.
        x = np.ones((64, 4), "float32")
        y = np.full((64, 4), 1e5, "float32")
        cb = ttsmon.keras.MonitorCallback(str(tmp_path / "fp16"), interval=None)
        model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[cb])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    found = _findings(tmp_path, "fp16")
    f = found["loss_scale_falling"]
    assert f["numbers"]["first_scale"] > f["numbers"]["last_scale"]
    assert f["numbers"]["halvings"] >= 3
    assert '"mixed_bfloat16"' in f["text"]


def test_xla_recompiling_for_new_lengths_is_found(tmp_path):
    """A model compiled with XLA, fed TTS-like batches whose length changes now and then."""
    require_tf()
    import keras
    import tensorflow as tf

    def batches():
        for i in range(240):
            length = 8 + 4 * (i // 30)  # a new length every 30 batches: 7 new shapes
            yield np.ones((4, length, 8), "float32"), np.ones((4, length, 2), "float32")

    data = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec((None, None, 8), tf.float32),
            tf.TensorSpec((None, None, 2), tf.float32),
        ),
    )
    inputs = keras.Input((None, 8))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(32)(inputs)), name="tts")
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    cb = ttsmon.keras.MonitorCallback(str(tmp_path / "xla"), interval=None)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    found = _findings(tmp_path, "xla")
    f = found["xla_recompiling"]
    assert f["numbers"]["spikes"] >= 3
    assert "Bucket TTS batches by length" in f["text"]
    # The callback recorded how often TensorFlow traced the step.
    with python_provider(str(tmp_path)) as provider:
        series = Reader(provider, RequestContext(), "").read("xla", ["train/traces_count"])
    assert series["train/traces_count"].value.max() >= 1
