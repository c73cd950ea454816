"""Per-layer gradient norms under `MonitorCallback`, matched by the variables the optimizer applies.

Each expected norm is computed without ttsmon: the optimizers are plain SGD,
so the gradient a step applied to a variable is ``(before - after) / lr``,
read from the weights around each step.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from tbdata import python_provider, read_scalars

pytestmark = pytest.mark.usefixtures("needs_tf")

_LAYER_TAG = re.compile(r"gradients/(.+)/norm")


def _applied_norms_callback(layer_lrs):
    """Records, per step, the norm of each layer's applied gradient (from the weights).

    Args:
      layer_lrs: Variable path prefix ("gan/generator/g1/") -> the SGD learning
        rate of the optimizer that updates that layer.
    """
    import keras

    class AppliedNorms(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps = []  # one {layer: norm} per step

        def on_train_batch_begin(self, batch, logs=None):
            self._before = {v.path: np.array(v.numpy(), np.float64) for v in self._variables()}

        def on_train_batch_end(self, batch, logs=None):
            squares = {}
            for v in self._variables():
                layer = v.path.rsplit("/", 1)[0]
                delta = (self._before[v.path] - np.array(v.numpy(), np.float64)) / layer_lrs[layer]
                squares[layer] = squares.get(layer, 0.0) + float(np.sum(delta * delta))
            self.steps.append({k: math.sqrt(s) for k, s in squares.items() if s > 0})

        def _variables(self):
            return self.model.trainable_variables

    return AppliedNorms()


def _recorded(tmp_path, run="run"):
    """{step: {layer: norm}}, {step: global norm}, {step: lr} as TensorBoard reads them."""
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, run)
    layers: dict[int, dict[str, float]] = {}
    for tag, s in series.items():
        m = _LAYER_TAG.fullmatch(tag)
        if m:
            for step, value in zip(s.steps, s.values):
                layers.setdefault(step, {})[m.group(1)] = value
    glob = series.get("train/gradient_norm")
    lr = series.get("train/learning_rate")
    return (
        layers,
        dict(zip(glob.steps, glob.values)) if glob else {},
        dict(zip(lr.steps, lr.values)) if lr else {},
    )


def _assert_norms(recorded_layers, recorded_global, expected_steps):
    assert sorted(recorded_layers) == list(range(1, len(expected_steps) + 1))
    for step, expected in enumerate(expected_steps, start=1):
        got = recorded_layers[step]
        assert sorted(got) == sorted(expected), (step, got, expected)
        for layer, norm in expected.items():
            assert got[layer] == pytest.approx(norm, rel=1e-3), (step, layer)
        total = math.sqrt(sum(n * n for n in expected.values()))
        assert recorded_global[step] == pytest.approx(total, rel=1e-3), step


def _data(n, width, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, width)).astype("float32")


def test_custom_train_step_that_applies_some_variables_in_its_own_order(tmp_path):
    """Layer "b" is frozen by the step, and the rest go to `apply` in reverse order."""
    import keras
    import tensorflow as tf

    from tb_plugin_ttsmon.keras import MonitorCallback

    class PartialStep(keras.Model):
        def train_step(self, data):
            x, y = data
            frozen = {v.path for v in self.get_layer("b").trainable_variables}
            variables = [v for v in self.trainable_variables if v.path not in frozen][::-1]
            with tf.GradientTape() as tape:
                loss = keras.ops.mean(keras.ops.square(self(x, training=True) - y))
            self.optimizer.apply(tape.gradient(loss, variables), variables)
            return {"loss": loss}

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    h = keras.layers.Dense(6, name="a")(inputs)
    h = keras.layers.Dense(4, name="b")(h)
    model = PartialStep(inputs, keras.layers.Dense(1, name="c")(h), name="tts")
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _data(48, 8), _data(48, 1, seed=1)
    applied = _applied_norms_callback({"a": 0.1, "b": 0.1, "c": 0.1})
    cb = MonitorCallback(str(tmp_path / "run"), interval=None, writer="event")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[applied, cb])

    layers, glob, lr = _recorded(tmp_path)
    assert [sorted(s) for s in applied.steps] == [["a", "c"]] * 3
    _assert_norms(layers, glob, applied.steps)
    assert lr == {1: pytest.approx(0.1), 2: pytest.approx(0.1), 3: pytest.approx(0.1)}


class _Gan:
    """A tiny GAN (a vocoder's shape: generator and discriminator, one optimizer each)."""

    @staticmethod
    def build(g_lr=0.1, d_lr=0.05):
        import keras
        import tensorflow as tf

        class Gan(keras.Model):
            def __init__(self):
                super().__init__(name="gan")
                self.generator = keras.Sequential(
                    [
                        keras.Input((4,)),
                        keras.layers.Dense(8, name="g1"),
                        keras.layers.Dense(2, name="g2"),
                    ],
                    name="generator",
                )
                self.discriminator = keras.Sequential(
                    [
                        keras.Input((2,)),
                        keras.layers.Dense(8, name="d1"),
                        keras.layers.Dense(1, name="d2"),
                    ],
                    name="discriminator",
                )

            def compile(self, g_optimizer, d_optimizer):
                super().compile()
                self.g_optimizer = g_optimizer
                self.d_optimizer = d_optimizer

            def train_step(self, data):
                z, real = data
                ops = keras.ops
                g, d = self.generator, self.discriminator
                with tf.GradientTape() as tape:
                    fake = g(z, training=True)
                    d_loss = ops.mean(ops.softplus(-d(real, training=True))) + ops.mean(
                        ops.softplus(d(fake, training=True))
                    )
                self.d_optimizer.apply(
                    tape.gradient(d_loss, d.trainable_variables), d.trainable_variables
                )
                with tf.GradientTape() as tape:
                    g_loss = ops.mean(ops.softplus(-d(g(z, training=True), training=True)))
                self.g_optimizer.apply(
                    tape.gradient(g_loss, g.trainable_variables), g.trainable_variables
                )
                return {"d_loss": d_loss, "g_loss": g_loss}

        keras.utils.set_random_seed(0)
        gan = Gan()
        gan.compile(keras.optimizers.SGD(g_lr), keras.optimizers.SGD(d_lr))
        return gan


def test_gan_with_a_generator_and_a_discriminator_optimizer(tmp_path):
    from tb_plugin_ttsmon.keras import MonitorCallback

    gan = _Gan.build(g_lr=0.1, d_lr=0.05)
    lrs = {
        "generator/g1": 0.1,
        "generator/g2": 0.1,
        "discriminator/d1": 0.05,
        "discriminator/d2": 0.05,
    }
    applied = _applied_norms_callback(lrs)
    cb = MonitorCallback(str(tmp_path / "run"), interval=None, writer="event")
    z, real = _data(48, 4), _data(48, 2, seed=1) + 3.0
    for _ in range(2):  # the second fit goes on from the optimizers' count
        gan.fit(z, real, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[applied, cb])

    layers, glob, lr = _recorded(tmp_path)
    assert [sorted(s) for s in applied.steps] == [sorted(lrs)] * 6
    _assert_norms(layers, glob, applied.steps)
    # The model's own optimizer (compile's default) never applies: the rate
    # logged is the first of the model's optimizers that did, the generator's.
    assert sorted(lr) == [1, 2, 3, 4, 5, 6]
    assert all(v == pytest.approx(0.1) for v in lr.values())
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert sorted(series["train/d_loss"].steps) == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]  # two event files; their order is the writer's


def test_a_new_callback_on_a_model_fit_before_still_gets_norms(tmp_path):
    """The train function traced in the first fit is reused by the second."""
    import keras

    from tb_plugin_ttsmon.keras import MonitorCallback

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, name="hidden"),
            keras.layers.Dense(1, name="out"),
        ],
        name="tts",
    )
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x, y = _data(32, 8), _data(32, 1, seed=1)
    first = MonitorCallback(str(tmp_path / "first"), interval=None, writer="event")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[first])
    applied = _applied_norms_callback({"tts/hidden": 0.1, "tts/out": 0.1})
    second = MonitorCallback(str(tmp_path / "second"), interval=None, writer="event")
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[applied, second])

    layers, glob, _ = _recorded(tmp_path, "second")
    # Steps continue from the optimizer's count: 3 and 4.
    assert sorted(layers) == [3, 4]
    _assert_norms(
        {s - 2: v for s, v in layers.items()}, {s - 2: v for s, v in glob.items()}, applied.steps
    )
