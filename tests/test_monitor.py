"""`Monitor` end to end: what lands in the run, read back through TensorBoard."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from tbdata import python_provider, read_documents, read_scalars, rust_provider

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata


def _read(tmp_path, run="run"):
    with python_provider(str(tmp_path)) as p:
        return read_scalars(p, run)


def _wait_for_samples(mon, n, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while mon.samples_taken < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mon.samples_taken >= n


def test_system_samples_and_run_facts(tmp_path, writer_name):
    run = tmp_path / "run"
    with ttsmon.Monitor(run, interval=0.1, writer=writer_name, gpus=False) as mon:
        _wait_for_samples(mon, 4)
        current = mon.current()
    assert 0.0 <= current["system/cpu_percent"] <= 100.0
    assert current["system/memory_used_bytes"] > 0
    series = _read(tmp_path)
    cpu = series["system/cpu_percent"]
    mem = series["system/memory_used_bytes"]
    # The first sample has no rates (no interval yet); the rest all have them.
    assert len(mem.points) >= 4 and len(cpu.points) == len(mem.points) - 1
    assert mem.unit == "B" and mem.kind == "gauge" and cpu.unit == "%"
    # Sample steps are the sample clock: milliseconds since the epoch, strictly increasing.
    steps = mem.steps
    assert steps == sorted(set(steps))
    assert all(abs(s / 1000.0 - wall) < 1.0 for s, wall, _ in mem.points)
    assert series["process/rss_bytes"].values[-1] > 10 * 2**20
    assert series["process/thread_count"].values[-1] >= 2  # this thread and the sampler
    with python_provider(str(tmp_path)) as p:
        (facts,) = read_documents(p, "run", metadata.RUN_FACTS_TAG)
    assert facts["pid"] == os.getpid()
    assert facts["recorder"]["writer"] == writer_name
    assert facts["recorder"]["interval_s"] == 0.1
    assert facts["host"]["cpu_count_logical"] == os.cpu_count()
    assert facts["host"]["memory_total_bytes"] > 0
    assert facts["versions"]["tensorboard"]
    assert "nvml" not in facts  # gpus=False


def test_training_logging(tmp_path, writer_name):
    run = tmp_path / "run"
    with ttsmon.Monitor(run, interval=None, writer=writer_name) as mon:
        for step in range(5):
            mon.log_training(
                step,
                loss=np.float32(1.0 / (step + 1)),
                learning_rate=1e-3,
                accuracy=0.5,
                tokens_per_s=100.0,
                val_loss=2.0,
            )
        mon.log_training(5, loss=float("nan"))
        mon.log_training(6, loss=float("inf"), gradient_norm=-math.inf)
        mon.log_validation(6, accuracy=0.75)
    series = _read(tmp_path)
    loss = series["train/loss"]
    assert loss.steps == list(range(7))
    assert (
        loss.values[:2] == [1.0, 0.5] and math.isnan(loss.values[5]) and loss.values[6] == math.inf
    )
    assert series["train/gradient_norm"].values == [-math.inf]
    assert series["train/learning_rate"].values == pytest.approx([1e-3] * 5)
    assert series["train/tokens_per_s"].unit == "1/s"
    assert series["val/loss"].values == [2.0] * 5
    assert series["val/accuracy"].values == [0.75]
    sps = series["train/steps_per_s"]
    assert sps.steps == [1, 2, 3, 4, 5, 6] and all(v > 0 for v in sps.values)
    assert sps.unit == "steps/s"


def test_gradient_norms_global_and_per_layer(tmp_path, writer_name):
    grads = [np.full((2, 2), 2.0), np.full((2,), 1.0), np.full((3,), 2.0)]
    names = ["encoder/dense/kernel:0", "encoder/dense/bias:0", "decoder/out/kernel:0"]
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer=writer_name) as mon:
        total = mon.log_gradients(3, grads, names)
        mon.log_gradients(4, {"vocoder.conv.weight": np.array([3.0, 4.0]), "x": None})
    assert total == pytest.approx(math.sqrt(16 + 2 + 12))
    series = _read(tmp_path)
    assert series["gradients/encoder/dense/norm"].values == pytest.approx([math.sqrt(18)])
    assert series["gradients/decoder/out/norm"].values == pytest.approx([math.sqrt(12)])
    assert series["gradients/vocoder.conv/norm"].values == pytest.approx([5.0])
    assert series["train/gradient_norm"].values == pytest.approx([total, 5.0])


def test_gradients_of_tensorflow_tensors(tmp_path, needs_tf):
    import tensorflow as tf

    v = tf.Variable(tf.ones((2, 3)), name="dense/kernel")
    emb = tf.IndexedSlices(tf.constant([[3.0, 4.0]]), tf.constant([0]), tf.constant([5, 2]))
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        total = mon.log_gradients(0, [tf.ones((2, 3)), emb], [v, "embedding/embeddings"])
    assert total == pytest.approx(math.sqrt(6 + 25))


def test_inference_events_and_window_statistics(tmp_path, writer_name):
    with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer=writer_name, gpus=False) as mon:
        for i in range(100):
            mon.log_inference(latency_ms=float(i + 1), audio_seconds=2.0, batch_size=1)
        with mon.time_inference(batch_size=2) as req:
            with req.stage("gpt"):
                time.sleep(0.01)
            with req.stage("vocoder"):
                pass
            req.audio_seconds = 4.0
        stats = mon.sample_now()
    assert stats["inference/latency_p50_ms"] == pytest.approx(51.0, abs=1.0)
    assert stats["inference/latency_p99_ms"] == pytest.approx(100.0, abs=1.5)
    assert stats["inference/requests_per_s"] > 0
    series = _read(tmp_path)
    lat = series["inference/latency_ms"]
    assert len(lat.points) == 101 and lat.unit == "ms" and lat.kind == "event"
    assert lat.steps == sorted(set(lat.steps))  # the request clock never repeats
    assert series["inference/rtf"].values[0] == pytest.approx(0.0005)
    assert series["inference/stage/gpt/latency_ms"].values[0] >= 10.0
    assert series["inference/batch_size"].values[-1] == 2.0
    assert series["inference/latency_p95_ms"].kind == "window"


def test_model_facts_for_keras(tmp_path, needs_tf):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        facts = mon.log_model(model)
    assert facts["parameter_count"] == model.count_params() == 19
    assert facts["size_bytes"] == 19 * 4
    with python_provider(str(tmp_path)) as p:
        (doc,) = read_documents(p, "run", metadata.MODEL_FACTS_TAG)
    assert doc["name"] == model.name and doc["layer_count"] == 2


def test_model_facts_reject_unknown_objects(tmp_path):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        with pytest.raises(TypeError, match="Keras model or a PyTorch module"):
            mon.log_model(object())


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda m: m.log_training(1, loss="high"), TypeError, "loss must be a number"),
        (lambda m: m.log_training(1, loss=np.ones(3)), ValueError, "must be a scalar"),
        (lambda m: m.log_training(-1, loss=1.0), ValueError, "step must be >= 0"),
        (lambda m: m.log_training(1.5, loss=1.0), TypeError, "step must be an int"),
        (lambda m: m.log_scalars(1, {"bad tag!": 1.0}), ValueError, "not valid"),
        (lambda m: m.log_inference(latency_ms=-1.0), ValueError, "latency_ms"),
        (lambda m: m.log_inference(latency_ms=1.0, stages={"a b": 1}), ValueError, "stage name"),
        (lambda m: m.log_gradients(1, [np.ones(2)], ["a", "b"]), ValueError, "must align"),
        (lambda m: m.log_gradients(1, [np.ones(2)]), TypeError, "needs `variables`"),
    ],
)
def test_bad_input_raises_at_the_call(tmp_path, call, error, message):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        with pytest.raises(error, match=message):
            call(mon)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"interval": -1.0}, ValueError),
        ({"interval": 0.05}, ValueError),
        ({"interval": "1"}, TypeError),
        ({"writer": "nope"}, ValueError),
        ({"flush_s": 0}, ValueError),
    ],
)
def test_bad_settings_raise(tmp_path, kwargs, error):
    with pytest.raises(error):
        ttsmon.Monitor(tmp_path / "run", **kwargs)


def test_logging_after_close_warns_once_and_does_not_raise(tmp_path, caplog):
    mon = ttsmon.Monitor(tmp_path / "run", interval=None, writer="event")
    mon.close()
    mon.close()
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        mon.log_training(1, loss=1.0)
        mon.log_training(2, loss=1.0)
    assert [r.getMessage() for r in caplog.records].count(
        f"ttsmon: logging on a closed Monitor ({tmp_path / 'run'}) is ignored"
    ) == 1


def test_interpreter_exit_flushes(tmp_path, writer_name):
    script = textwrap.dedent(
        f"""
        import tb_plugin_ttsmon as ttsmon
        mon = ttsmon.Monitor(
            {str(tmp_path / "run")!r}, interval=0.1, flush_s=60, writer={writer_name!r}
        )
        for step in range(3):
            mon.log_training(step, loss=float(step))
        # no close(): interpreter exit must flush
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert _read(tmp_path)["train/loss"].values == [0.0, 1.0, 2.0]


def test_restart_keeps_history_under_both_loaders(tmp_path):
    """A restarted job appends; its samples come after the old ones, so the
    Rust loader (which drops records whose step goes backwards) keeps both."""
    run = tmp_path / "run"
    for _ in range(2):
        with ttsmon.Monitor(run, interval=0.1, writer="event", gpus=False) as mon:
            _wait_for_samples(mon, 2)
        time.sleep(1.05 - time.time() % 1.0)  # file names order by whole seconds
    assert len(os.listdir(run)) == 2
    for provider in (python_provider, rust_provider):
        with provider(str(tmp_path)) as p:
            mem = read_scalars(p, "run")["system/memory_used_bytes"]
            facts = read_documents(p, "run", metadata.RUN_FACTS_TAG)
        assert len(mem.points) >= 4
        assert len(facts) == 2


def test_second_live_writer_in_a_run_is_warned_about(tmp_path, caplog):
    run = tmp_path / "run"
    run.mkdir()
    other = run / "events.out.tfevents.1795872326.other-host.example.4242.0.ttsmon"
    other.write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        ttsmon.Monitor(run, interval=None, writer="event").close()
    (msg,) = [r.getMessage() for r in caplog.records if "another process" in r.getMessage()]
    assert "host other-host.example, pid 4242" in msg


def test_data_reaches_tensorboard_without_close(tmp_path, writer_name):
    mon = ttsmon.Monitor(
        tmp_path / "run", interval=0.2, writer=writer_name, flush_s=0.5, gpus=False
    )
    try:
        mon.log_training(1, loss=0.25)
        deadline = time.monotonic() + 30  # bound for slow CI, not a timing check
        seen = []
        while time.monotonic() < deadline and not seen:
            time.sleep(0.25)
            series = _read(tmp_path)
            seen = series["train/loss"].values if "train/loss" in series else []
        assert seen == [0.25]
    finally:
        mon.close()
