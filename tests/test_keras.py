"""A real Keras `fit` with `MonitorCallback` on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tbdata import python_provider, read_documents, read_scalars

from tb_plugin_ttsmon import metadata

pytestmark = pytest.mark.usefixtures("needs_tf")


def _data(n=64):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x @ rng.normal(size=(8, 1))).astype("float32")
    return x, y


def _model():
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, name="hidden"),
            keras.layers.Dense(1, name="out"),
        ],
        name="tts",  # Keras numbers default names per process: sequential_1, ...
    )
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=4, decay_rate=0.5)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", metrics=["mae"])
    return model


def test_fit_records_training_validation_gradients_and_model(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data()
    model = _model()
    cb = MonitorCallback(str(tmp_path / "run"), interval=0.1, writer="event")
    model.fit(x, y, batch_size=16, epochs=2, validation_split=0.25, verbose=0, callbacks=[cb])
    assert cb.monitor is not None and cb.monitor.closed
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
        (model_doc,) = read_documents(p, "run", metadata.MODEL_FACTS_TAG)
    # 48 training rows / 16 = 3 steps per epoch, 2 epochs: steps 1..6.
    assert series["train/loss"].steps == [1, 2, 3, 4, 5, 6]
    assert all(v > 0 for v in series["train/loss"].values)
    assert len(series["train/mae"].values) == 6
    lr = series["train/learning_rate"].values
    # The rate each step applied: the schedule at iterations 0, 1, ...
    assert lr[:2] == pytest.approx([0.01, 0.01 * 0.5 ** (1 / 4)], rel=1e-5)
    assert lr == sorted(lr, reverse=True)
    assert series["val/loss"].steps == [3, 6]
    gnorm = series["train/gradient_norm"].values
    hidden = series["gradients/tts/hidden/norm"].values
    out = series["gradients/tts/out/norm"].values
    assert len(gnorm) == 6 and all(g > 0 for g in gnorm)
    for g, h, o in zip(gnorm, hidden, out):
        assert g == pytest.approx(math.sqrt(h * h + o * o), rel=1e-5)
    assert model_doc["parameter_count"] == model.count_params()
    assert "system/memory_used_bytes" in series


def test_gradient_norm_matches_tensorflow(tmp_path):
    """The norm logged for a step equals the norm of that step's gradients."""
    import keras
    import tensorflow as tf

    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data(16)
    model = _model()
    before = [w.numpy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    expected = float(tf.linalg.global_norm(tape.gradient(loss, model.trainable_weights)))
    for w, b in zip(model.trainable_weights, before):
        w.assign(b)
    cb = MonitorCallback(str(tmp_path / "run"), interval=None, writer="event")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        (norm,) = read_scalars(p, "run")["train/gradient_norm"].values
    assert norm == pytest.approx(expected, rel=1e-4)


def test_second_fit_continues_steps_and_epoch_update_freq(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data()
    model = _model()
    cb = MonitorCallback(str(tmp_path / "run"), interval=None, update_freq="epoch", writer="event")
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    # Sorted: one event file per fit; how files opened in one second sort
    # is the writer's business (tests/test_writers.py).
    assert sorted(series["train/loss"].steps) == [4, 8, 12]
    assert sorted(series["train/gradient_norm"].steps) == [4, 8, 12]


def test_bad_update_freq():
    from tb_plugin_ttsmon.keras import MonitorCallback

    with pytest.raises(ValueError, match="update_freq"):
        MonitorCallback("logs", update_freq=0)


def test_without_gradient_hook(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data()
    model = _model()
    cb = MonitorCallback(str(tmp_path / "run"), interval=None, gradient_norms=False, writer="event")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["train/loss"].steps == [1, 2, 3, 4]
    assert len(series["train/learning_rate"].values) == 4
    assert not any(t.startswith("gradients/") or t == "train/gradient_norm" for t in series)


def test_mixed_precision_norms_are_unscaled(tmp_path):
    """Under mixed_float16 the hook sits on the inner optimizer, after unscaling."""
    import keras

    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data(16)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model()
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        cb = MonitorCallback(str(tmp_path / "run"), interval=None, writer="event")
        model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[cb])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with python_provider(str(tmp_path)) as p:
        norms = read_scalars(p, "run")["train/gradient_norm"].values
    # The loss scale is 2**15: scaled norms would be tens of thousands.
    assert norms and all(0 < n < 100 for n in norms), norms


def test_public_names():
    import tb_plugin_ttsmon as ttsmon
    from tb_plugin_ttsmon.keras import MonitorCallback

    assert ttsmon.keras.MonitorCallback is MonitorCallback
    with pytest.raises(AttributeError):
        ttsmon.no_such_name  # noqa: B018


def test_callback_passes_alert_rules_to_its_monitor(tmp_path):
    import tb_plugin_ttsmon as ttsmon
    from tb_plugin_ttsmon import metadata
    from tb_plugin_ttsmon.keras import MonitorCallback

    x, y = _data()
    model = _model()
    seen = []
    cb = MonitorCallback(
        str(tmp_path / "run"),
        interval=None,
        writer="event",
        alerts=[ttsmon.Alert("train/loss", ">", 0.0, name="any_loss")],
        on_alert=seen.append,
    )
    model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        docs = read_documents(p, "run", metadata.ALERTS_TAG)
    assert [(d["rule"], d["state"], d["training_step"]) for d in docs] == [
        ("any_loss", "firing", 1)
    ]
    assert [e.rule for e in seen] == ["any_loss"]
