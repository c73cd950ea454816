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
    from tb_plugin_ttsmon import keras

__version__ = VERSION
__all__ = [
    "DEFAULT_ALERTS",
    "Alert",
    "AlertEvent",
    "InferenceRequest",
    "Monitor",
    "TensorFlowMonitor",
    "__version__",
    "keras",
]


def __getattr__(name: str) -> Any:
    # `ttsmon.keras` imports Keras, so it is loaded on first use only.
    if name == "keras":
        return importlib.import_module("tb_plugin_ttsmon.keras")
    raise AttributeError(f"module 'tb_plugin_ttsmon' has no attribute {name!r}")
