"""ttsmon: system, training and inference monitoring in a TensorBoard tab.

The recorder (this package's public face) writes TensorBoard event files;
the plugin (`tb_plugin_ttsmon.plugin`) shows them in the "TTS Monitor" tab::

    import tb_plugin_ttsmon as ttsmon

    with ttsmon.Monitor("logs/run1", interval=1.0) as mon:
        mon.log_training(step, loss=loss, learning_rate=lr)

Keras users add ``ttsmon.keras.MonitorCallback(log_dir)`` to ``fit``.
The event format is defined in `tb_plugin_ttsmon.metadata`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tb_plugin_ttsmon.compat import TensorFlowMonitor
from tb_plugin_ttsmon.recorder.alerts import DEFAULT_ALERTS, Alert, AlertEvent
from tb_plugin_ttsmon.recorder.monitor import InferenceRequest, Monitor
from tb_plugin_ttsmon.version import VERSION

if TYPE_CHECKING:
    from tb_plugin_ttsmon import keras as keras

__version__ = VERSION
# What `from tb_plugin_ttsmon import *` gives: the recorder's public classes.
# `keras` is left out on purpose: it imports Keras (seconds, and an
# ImportError where only PyTorch is installed), so it loads on first use.
__all__ = [
    "DEFAULT_ALERTS",
    "Alert",
    "AlertEvent",
    "InferenceRequest",
    "Monitor",
    "TensorFlowMonitor",
]


def __getattr__(name: str) -> Any:
    if name == "keras":
        return importlib.import_module("tb_plugin_ttsmon.keras")
    raise AttributeError(f"module 'tb_plugin_ttsmon' has no attribute {name!r}")
