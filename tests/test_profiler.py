"""Profiler captures from the recorder: windows of steps, manual, Keras, alert-triggered, no TF."""

from __future__ import annotations

import logging
import os
import socket

import pytest
from tbdata import python_provider, read_documents

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata


def _tiny_step():
    import tensorflow as tf

    @tf.function
    def step(x):
        return tf.reduce_sum(tf.matmul(x, x))

    x = tf.random.normal((64, 64))
    return lambda: step(x)


def _assert_capture(run, doc, first, last, trigger):
    assert doc["status"] == "ok", doc
    assert (doc["start_step"], doc["stop_step"], doc["trigger"]) == (first, last, trigger)
    assert doc["session_dir"] == os.path.join("plugins", "profile", doc["session"])
    assert doc["hosts"] == [socket.gethostname()]
    xplane = run / doc["session_dir"] / f"{socket.gethostname()}.xplane.pb"
    assert xplane.stat().st_size > 0
    assert {"name": xplane.name, "size_bytes": xplane.stat().st_size} in doc["files"]
    assert doc["stop_wall_time_s"] >= doc["start_wall_time_s"]


def test_profile_a_window_of_steps(tmp_path, needs_tf):
    run = tmp_path / "run"
    step_fn = _tiny_step()
    with ttsmon.Monitor(run, interval=None, writer="event") as mon:
        assert mon.profile(3, 2) is True
        for step in range(8):
            with mon.step(step):
                step_fn()
                assert mon._profiler.active == (3 <= step <= 4)
        (doc,) = mon.profile_sessions
    _assert_capture(run, doc, 3, 4, "steps")
    with python_provider(str(tmp_path)) as p:
        (written,) = read_documents(p, "run", metadata.PROFILE_TAG)
    assert written["session"] == doc["session"] and written["start_step"] == 3


def test_manual_start_and_stop(tmp_path, needs_tf):
    run = tmp_path / "run"
    step_fn = _tiny_step()
    with ttsmon.Monitor(run, interval=None, writer="event") as mon:
        mon.log_training(10, loss=1.0)
        assert mon.start_profiler() is True
        assert mon.start_profiler() is False  # one at a time
        for _ in range(3):
            step_fn()
        mon.log_training(12, loss=0.9)
        doc = mon.stop_profiler()
        assert mon.stop_profiler() is None
    _assert_capture(run, doc, 10, 12, "manual")


def test_keras_profile_steps(tmp_path, needs_tf):
    import keras
    import numpy as np

    from tb_plugin_ttsmon.keras import MonitorCallback

    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    x = np.random.default_rng(0).normal(size=(96, 8)).astype("float32")
    y = x[:, :1]
    run = tmp_path / "run"
    cb = MonitorCallback(str(run), interval=None, writer="event", profile_steps=(2, 3))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        (doc,) = read_documents(p, "run", metadata.PROFILE_TAG)
    _assert_capture(run, doc, 2, 3, "steps")


def test_an_alert_can_start_a_short_capture(tmp_path, needs_tf):
    run = tmp_path / "run"
    step_fn = _tiny_step()
    rule = ttsmon.Alert("train/steps_per_s", "<", 1e9, name="slow_steps", cooldown_s=3600)
    with ttsmon.Monitor(
        run,
        interval=None,
        writer="event",
        alerts=[rule],
        profile_on_alert=["slow_steps"],
        profile_on_alert_steps=2,
    ) as mon:
        for step in range(10):
            with mon.step(step):
                step_fn()
            mon.log_training(step, loss=1.0)  # at step 1, steps/s fires the rule
        docs = mon.profile_sessions
    assert len(docs) == 1 and docs[0]["trigger"] == "alert"
    assert docs[0]["stop_step"] - docs[0]["start_step"] == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda m: m.profile(-1, 2), ValueError),
        (lambda m: m.profile(1, 0), ValueError),
        (lambda m: m.profile("1", 2), TypeError),
    ],
)
def test_bad_profile_arguments(tmp_path, call, error):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        with pytest.raises(error):
            call(mon)


def test_bad_keras_profile_steps(needs_tf):
    from tb_plugin_ttsmon.keras import MonitorCallback

    with pytest.raises(ValueError, match="profile_steps"):
        MonitorCallback("logs", profile_steps=(5, 2))


def test_without_tensorflow_profiling_says_so_and_training_goes_on(tmp_path, monkeypatch, caplog):
    from tb_plugin_ttsmon.recorder import profiler

    monkeypatch.setattr(profiler, "_tensorflow", lambda: None)
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
            assert mon.profile(0, 3) is False
            assert mon.start_profiler() is False
            for step in range(5):
                with mon.step(step):
                    mon.log_training(step, loss=1.0)
            assert mon.stop_profiler() is None
            assert mon.profile_sessions == []
    msgs = [
        r.getMessage() for r in caplog.records if "profiling needs TensorFlow" in r.getMessage()
    ]
    assert len(msgs) == 1
