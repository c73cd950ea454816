"""`MonitorCallback` around `fit`s that end badly, repeated `fit`s, and alert-triggered profiles.

Real Keras on tensorflow-cpu, real event files read back through TensorBoard,
and the open files of this process (``/proc/self/fd``) for "a live writer".
"""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest
from tbdata import python_provider, read_documents, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata

pytestmark = pytest.mark.usefixtures("needs_tf")

# A fit that raised is noticed by the callback's watcher thread, which looks
# twice a second; this only bounds how long a failing test waits.
WAIT_S = 30.0


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    return x, y


def _model(model_class=None):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    outputs = keras.layers.Dense(1, name="out")(hidden)
    model = (model_class or keras.Model)(inputs, outputs, name="tts")
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    return model


def _open_event_files(run_dir) -> list[str]:
    """Event files of `run_dir` that this process holds open, as `lsof` shows them."""
    run_dir = os.path.realpath(run_dir)
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if os.path.dirname(target) == run_dir and ".tfevents." in os.path.basename(target):
            found.append(os.path.basename(target))
    return sorted(found)


def _event_files(run_dir) -> list[str]:
    return sorted(n for n in os.listdir(run_dir) if ".tfevents." in n)


def _wait_until(condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not {what} after {WAIT_S} s")
        time.sleep(0.05)


def _raise_at(step, error):
    """A user's callback that raises `error` at the end of training step `step` (1-based)."""
    import keras

    class RaiseAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == step:
                raise error

    return RaiseAt()


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("a callback failed")])
def test_fit_that_a_callback_interrupts_closes_its_monitor(tmp_path, error):
    from tb_plugin_ttsmon.keras import MonitorCallback

    run = tmp_path / "run"
    x, y = _data()
    model = _model()
    cb = MonitorCallback(str(run), interval=0.1, writer="event", flush_s=60)
    with pytest.raises(type(error)):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb, _raise_at(2, error)])
    monitor = cb.monitor
    assert monitor is not None
    _wait_until(lambda: monitor.closed, "closed")
    assert _open_event_files(run) == []
    # Closing flushed what was logged (flush_s=60: nothing else would have).
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["train/loss"].steps == [1, 2]
    assert "system/memory_used_bytes" in series
    # The optimizer is the user's again: no wrapper is left on it.
    assert "apply" not in vars(model.optimizer)


def test_fit_whose_train_step_runs_out_of_memory_closes_its_monitor(tmp_path):
    import keras
    import tensorflow as tf

    from tb_plugin_ttsmon.keras import MonitorCallback

    class OutOfMemoryAtStep3(keras.Model):
        def train_step(self, data):
            logs = super().train_step(data)
            if int(self.optimizer.iterations.numpy()) == 3:
                raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")
            return logs

    run = tmp_path / "run"
    x, y = _data()
    model = _model(OutOfMemoryAtStep3)
    model.run_eagerly = True  # a Python `raise` inside the step
    cb = MonitorCallback(str(run), interval=None, writer="event", flush_s=60)
    with pytest.raises(tf.errors.ResourceExhaustedError):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    monitor = cb.monitor
    assert monitor is not None
    _wait_until(lambda: monitor.closed, "closed")
    assert _open_event_files(run) == []
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].steps == [1, 2]


def test_second_fit_after_a_failed_one_has_one_live_writer(tmp_path, writer_name):
    import keras

    from tb_plugin_ttsmon.keras import MonitorCallback

    run = tmp_path / "run"
    x, y = _data()
    model = _model()
    cb = MonitorCallback(str(run), interval=0.1, writer=writer_name)
    with pytest.raises(RuntimeError):
        model.fit(
            x,
            y,
            batch_size=16,
            epochs=1,
            verbose=0,
            callbacks=[cb, _raise_at(2, RuntimeError("stop"))],
        )
    first = cb.monitor
    seen = []

    class CountWriters(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((_event_files(run), _open_event_files(run)))

    # At once: the second fit must not depend on the watcher having run.
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb, CountWriters()])
    assert first is not None and first.closed
    assert cb.monitor is not first and cb.monitor is not None and cb.monitor.closed
    assert len(seen) == 4
    for files, open_files in seen:
        assert len(files) == 2, files  # one file per fit
        assert len(open_files) == 1 and open_files[0] == files[-1], (files, open_files)
    assert _open_event_files(run) == []
    with python_provider(str(tmp_path)) as p:
        # Steps continue from the optimizer's count: 2 steps, then 4 more (sorted:
        # how two files opened in one second sort is the writer's business).
        assert sorted(read_scalars(p, "run")["train/loss"].steps) == [1, 2, 3, 4, 5, 6]


def test_a_given_monitor_is_left_open_but_flushed_when_fit_fails(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    run = tmp_path / "run"
    x, y = _data()
    model = _model()
    with ttsmon.Monitor(run, interval=None, writer="event", flush_s=60) as mon:
        cb = MonitorCallback(monitor=mon)
        with pytest.raises(RuntimeError):
            model.fit(
                x,
                y,
                batch_size=16,
                epochs=1,
                verbose=0,
                callbacks=[cb, _raise_at(3, RuntimeError("stop"))],
            )

        def flushed():
            with python_provider(str(tmp_path)) as p:
                series = read_scalars(p, "run")
            return "train/loss" in series and series["train/loss"].steps == [1, 2, 3]

        _wait_until(flushed, "flushed")
        assert not mon.closed
        assert "apply" not in vars(model.optimizer)
        mon.log_training(100, loss=0.5)  # the user's monitor still works
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].steps == [1, 2, 3, 100]


def test_profile_on_alert_captures_under_the_callback(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    run = tmp_path / "run"
    x, y = _data(96)
    model = _model()
    cb = MonitorCallback(
        str(run),
        interval=None,
        writer="event",
        alerts=[ttsmon.Alert("train/loss", ">", 0.0, name="any_loss", cooldown_s=3600)],
        profile_on_alert=["any_loss"],
        profile_on_alert_steps=2,
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        (doc,) = read_documents(p, "run", metadata.PROFILE_TAG)
        (alert,) = read_documents(p, "run", metadata.ALERTS_TAG)
    # The rule fires on step 1's loss; the capture covers the next 2 steps.
    assert (alert["rule"], alert["training_step"]) == ("any_loss", 1)
    assert doc["status"] == "ok", doc
    assert (doc["trigger"], doc["start_step"], doc["stop_step"]) == ("alert", 2, 3)
    xplane = run / doc["session_dir"] / f"{socket.gethostname()}.xplane.pb"
    assert xplane.stat().st_size > 0


def test_a_fit_that_ends_leaves_no_thread_behind(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data()
    model = _model()
    before = set(threading.enumerate())
    for _ in range(2):
        cb = MonitorCallback(str(tmp_path / "run"), interval=0.1, writer="event")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    left = [t for t in set(threading.enumerate()) - before if t.name.startswith("ttsmon-")]
    for thread in left:
        thread.join(WAIT_S)
    assert [t.name for t in left if t.is_alive()] == []
