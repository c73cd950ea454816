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

    # -- the seed's charts (matplotlib figures of this monitor's run) ------------

    def _read(self) -> dict[str, Any]:
        """This run's series, read back from its event files through the read layer."""
        from tb_plugin_ttsmon.query import LogdirData

        if self._monitor is not None:
            self._monitor.flush()
        data = LogdirData(self.log_dir)
        if "." not in data.run_names():
            return {}
        return data.reader.read(".")

    def _figure(self, title: str, chart_ids: list[str]) -> Any:
        """One panel per catalogue chart (`charts.json`): its title, unit and lines."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from tb_plugin_ttsmon import catalogue

        cat = catalogue.load()
        series = self._read()
        have = [t for t, s in series.items() if len(s.value)]
        planned = {}
        for section in {cat.chart(c).section for c in chart_ids}:
            planned.update({p.spec.id: p for p in cat.plan(section, have)})
        fig, axes = plt.subplots(
            len(chart_ids), 1, figsize=(9, 2.4 * len(chart_ids)), squeeze=False
        )
        fig.suptitle(title)
        for ax, chart_id in zip(axes[:, 0], chart_ids):
            spec = cat.chart(chart_id)
            by_step = cat.section(spec.section).x == "step"
            plan = planned.get(chart_id)
            unit, div = spec.unit or "", 1.0
            if unit == "B":
                unit, div = "GiB", _GIB
            for ln in plan.lines if plan is not None else ():
                s = series[ln.tag]
                x = s.step if by_step else s.wall_time - s.wall_time[0]
                style = {"linestyle": ":"} if ln.role == catalogue.ROLE_LIMIT else {}
                ax.plot(x, s.value / div, label=ln.tag, linewidth=1.2, **style)
            name = spec.title + (f" (100 % = {spec.percent_of})" if spec.percent_of else "")
            ax.set_title(name, fontsize=10, loc="left")
            ax.set_ylabel(unit, fontsize=8)
            ax.grid(alpha=0.3)
            if ax.lines:
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        return fig

    def get_system_performance_chart(self) -> Any:
        """CPU, memory and GPU over time, as a matplotlib Figure (the seed's system chart).

        Panels are the tab's charts of the same name (the catalogue, `charts.json`):
        host CPU and process CPU apart, as their "100 %" differ.
        """
        return self._figure(
            "System performance", ["cpu", "process-cpu", "memory", "gpu-util", "gpu-memory"]
        )

    def get_training_metrics_chart(self) -> Any:
        """Loss, accuracy, learning rate and gradient norm by step, as a matplotlib Figure."""
        return self._figure("Training", ["loss", "accuracy", "learning-rate", "gradient-norm"])

    def get_performance_heatmap(self) -> Any:
        """Sampled metrics over time buckets (each row scaled to its limit or range)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        import numpy as np

        from tb_plugin_ttsmon.query import LogdirData

        if self._monitor is not None:
            self._monitor.flush()
        data = LogdirData(self.log_dir)
        rows: list[dict[str, Any]] = []
        if "." in data.run_names():
            rows = data.reader.heatmap(".", 60)["rows"]
        fig, ax = plt.subplots(figsize=(9, 0.3 * max(len(rows), 4) + 1.2))
        if rows:
            grid = np.array(
                [[np.nan if v is None else v for v in r["normalized"]] for r in rows], float
            )
            ax.imshow(grid, aspect="auto", cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
            ax.set_yticks(range(len(rows)), [r["label"] for r in rows], fontsize=7)
        else:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("Performance heatmap (0 = low, 1 = limit or max)", fontsize=10, loc="left")
        ax.set_xlabel("time bucket")
        fig.tight_layout()
        return fig


def _gib(value: float | None) -> float | None:
    return None if value is None else value / _GIB
