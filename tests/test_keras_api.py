"""The package's public face with and without Keras, and the callback on Monitor's public API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from tbdata import python_provider, read_scalars

import tb_plugin_ttsmon as ttsmon

# Runs `code` where tensorflow / keras cannot be imported, as on a PyTorch-only machine.
_WITHOUT_KERAS = """
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".", 1)[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"No module named {name!r} (blocked)")
        return None

sys.meta_path.insert(0, Block())
"""

_PUBLIC = [
    "DEFAULT_ALERTS",
    "Alert",
    "AlertEvent",
    "InferenceRequest",
    "Monitor",
    "TensorFlowMonitor",
]


def _run(code: str) -> dict:
    env = dict(os.environ, TTSMON_WRITER="event")
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_KERAS + code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_star_import_works_without_keras():
    got = _run(
        """
ns = {}
exec("from tb_plugin_ttsmon import *", ns)
names = sorted(k for k in ns if k != "__builtins__")
try:
    import tb_plugin_ttsmon
    tb_plugin_ttsmon.keras
    keras_error = None
except ImportError as err:
    keras_error = str(err)
print(json.dumps({"names": names, "keras_error": keras_error}))
"""
    )
    assert got["names"] == sorted(_PUBLIC)
    assert "Keras" in got["keras_error"] and "tensorflow" in got["keras_error"]


def test_all_is_the_recorders_public_classes():
    assert sorted(ttsmon.__all__) == sorted(_PUBLIC)
    for name in ttsmon.__all__:
        assert getattr(ttsmon, name).__doc__ or name == "DEFAULT_ALERTS"


class _PublicOnly:
    """A Monitor seen only through its public names (what an integration may use)."""

    def __init__(self, monitor):
        self._monitor = monitor

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(f"{name} is private to Monitor")
        return getattr(self._monitor, name)


def test_callback_uses_only_monitors_public_api(tmp_path, needs_tf):
    import keras
    import numpy as np

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
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x = np.random.default_rng(0).normal(size=(32, 8)).astype("float32")
    y = x[:, :1]
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        cb = MonitorCallback(monitor=_PublicOnly(mon))
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[cb])
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    for tag in ("train/loss", "train/mae", "train/learning_rate", "gradients/tts/out/norm"):
        assert series[tag].steps == [1, 2, 3, 4], tag
    assert series["train/steps_per_s"].steps == [2, 3, 4]


@pytest.mark.skipif(os.environ.get("TTSMON_TEST_NO_TF") != "1", reason="the TF-free pass only")
def test_star_import_in_this_process_without_tensorflow():
    ns: dict = {}
    exec("from tb_plugin_ttsmon import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == sorted(_PUBLIC)
