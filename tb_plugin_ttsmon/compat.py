"""The seed document's `TensorFlowMonitor` calls, on top of `Monitor`.

The original dashboard was used as::

    monitor = TensorFlowMonitor()
    status = monitor.start_monitoring(interval=1.0)
    current_metrics = monitor.get_current_metrics()
    monitor.log_training_metrics(loss=0.5, accuracy=0.85, learning_rate=0.001, gradient_norm=1.2)
    monitor.stop_monitoring()

Those calls keep working; the data now goes to TensorBoard event files with
the full history instead of a JSON file capped at 1000 points.
"""

from __future__ import annotations

import time
from typing import Any

from tb_plugin_ttsmon.recorder.monitor import Monitor

_GIB = 1024.0**3


class TensorFlowMonitor:
    """The seed's monitor API.

    Args:
      log_dir: The run directory (the seed's default ``logs/tensorflow``).
    """

    def __init__(self, log_dir: str = "logs/tensorflow") -> None:
        self.log_dir = log_dir
        self._monitor: Monitor | None = None
        self._step = 0
        self._started_at_s: float | None = None

    @property
    def monitor(self) -> Monitor:
        """The underlying `Monitor` (created on first use, not sampling)."""
        if self._monitor is None or self._monitor.closed:
            self._monitor = Monitor(self.log_dir, interval=1.0, start=False)
        return self._monitor

    @property
    def is_monitoring(self) -> bool:
        """Whether the sampler thread runs."""
        return self._started_at_s is not None

    def start_monitoring(self, interval: float = 1.0) -> str:
        """Starts sampling the system every `interval` seconds; returns a status line.

        Raises:
          TypeError, ValueError: `interval` is not a number of at least 0.1 s.
        """
        if self.is_monitoring:
            return (
                f"Monitoring already running (every {self.monitor.interval:g} s) -> {self.log_dir}"
            )
        from tb_plugin_ttsmon.recorder.sampler import check_interval

        interval = check_interval(interval)
        if self._monitor is not None and self._monitor.interval != interval:
            self._monitor.close()
            self._monitor = None
        if self._monitor is None or self._monitor.closed:
            self._monitor = Monitor(self.log_dir, interval=interval, start=False)
        self._monitor.start()
        self._started_at_s = time.time()
        return f"Monitoring started (every {interval:g} s) -> {self.log_dir}"

    def stop_monitoring(self) -> str:
        """Stops sampling and flushes; returns a status line."""
        if self._monitor is None:
            return "Monitoring was not running"
        samples = self._monitor.samples_taken
        self._monitor.close()
        duration = time.time() - self._started_at_s if self._started_at_s else 0.0
        self._started_at_s = None
        return f"Monitoring stopped after {duration:.1f} s ({samples} samples) -> {self.log_dir}"

    def get_current_metrics(self) -> dict[str, Any]:
        """The latest sample, with the seed's friendly keys and every ttsmon tag.

        Keys: ``timestamp``, ``cpu_percent``, ``memory_percent``,
        ``memory_used_gb``, ``gpu_memory_used_gb`` / ``gpu_utilization_percent``
        / ``gpu_temperature_c`` (GPU 0, where present), ``monitoring``, and
        ``metrics`` (tag -> value).
        """
        current = self._monitor.current() if self._monitor is not None else {}
        out: dict[str, Any] = {
            "timestamp": self._monitor.last_sample_time_s if self._monitor else None,
            "monitoring": self.is_monitoring,
            "cpu_percent": current.get("system/cpu_percent"),
            "memory_percent": current.get("system/memory_percent"),
            "memory_used_gb": _gib(current.get("system/memory_used_bytes")),
            "gpu_memory_used_gb": _gib(current.get("gpu/0/memory_used_bytes")),
            "gpu_utilization_percent": current.get("gpu/0/utilization_percent"),
            "gpu_temperature_c": current.get("gpu/0/temperature_c"),
            "metrics": current,
        }
        return out

    def log_training_metrics(
        self,
        loss: Any = None,
        accuracy: Any = None,
        learning_rate: Any = None,
        gradient_norm: Any = None,
        step: int | None = None,
        **more: Any,
    ) -> int:
        """Logs training metrics at `step`, or at the next automatic step.

        The automatic step counts calls from 0 in this process; a restarted
        job should pass `step` (its global step) so that its points follow
        the earlier ones. Returns the step used.

        Raises:
          TypeError, ValueError: as `Monitor.log_training`.
        """
        if step is None:
            step = self._step
        self.monitor.log_training(step, loss, accuracy, learning_rate, gradient_norm, **more)
        self._step = int(step) + 1
        return int(step)


def _gib(value: float | None) -> float | None:
    return None if value is None else value / _GIB
