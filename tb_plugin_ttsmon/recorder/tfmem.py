"""TensorFlow's allocator memory per GPU (`tf.config.experimental.get_memory_info`)."""

from __future__ import annotations

import sys
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog, FieldHealth


class TFMemorySource:
    """Current and peak bytes held by TensorFlow's allocator on each GPU.

    Only active when the job itself imported TensorFlow (the sampler never
    imports it) and TensorFlow sees a GPU; on CPU-only hosts it adds nothing.
    """

    name = "tf_memory"

    def __init__(self, faults: FaultLog) -> None:
        self._faults = faults
        self._health = FieldHealth(faults, "tf_memory")
        self._devices: list[tuple[str, str, str]] | None = None

    def _discover(self, tf: Any) -> list[tuple[str, str, str]]:
        devices = []
        for i, dev in enumerate(tf.config.list_logical_devices("GPU")):
            devices.append(
                (dev.name, f"tf/gpu/{i}/memory_current_bytes", f"tf/gpu/{i}/memory_peak_bytes")
            )
        return devices

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds allocator memory for each GPU that TensorFlow uses."""
        tf = sys.modules.get("tensorflow")
        if tf is None or not hasattr(tf, "config"):
            return
        if self._devices is None:
            try:
                self._devices = self._discover(tf)
            except Exception as err:
                self._devices = []
                self._faults.warn_once("tf_memory:init", "cannot list TensorFlow GPUs (%s)", err)
        for name, current_tag, peak_tag in self._devices:
            if not self._health.enabled(name):
                continue
            try:
                info = tf.config.experimental.get_memory_info(name)
            except Exception as err:  # ValueError where the device has no allocator stats
                self._health.failed(name, f"{type(err).__name__}: {err}")
                continue
            self._health.ok(name)
            out[current_tag] = float(info["current"])
            out[peak_tag] = float(info["peak"])

    def facts(self) -> dict[str, Any]:
        """TensorFlow's view of the devices, when TensorFlow is imported."""
        tf = sys.modules.get("tensorflow")
        if tf is None or not hasattr(tf, "config"):
            return {}
        try:
            gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
            jit = tf.config.optimizer.get_jit()
        except Exception as err:
            return {"tensorflow_devices": {"error": f"{type(err).__name__}: {err}"}}
        return {"tensorflow_devices": {"gpus": gpus, "jit": jit or None}}

    def close(self) -> None:
        """Nothing to release."""
