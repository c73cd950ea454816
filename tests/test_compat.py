"""The seed document's calls work as written there."""

from __future__ import annotations

import time

import pytest
from tbdata import python_provider, read_scalars

from tb_plugin_ttsmon import TensorFlowMonitor


def test_seed_calls(tmp_path):
    monitor = TensorFlowMonitor(log_dir=str(tmp_path / "tensorflow"))
    status = monitor.start_monitoring(interval=0.1)
    assert status.startswith("Monitoring started (every 0.1 s)")
    deadline = time.monotonic() + 30
    while monitor.get_current_metrics()["cpu_percent"] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    current = monitor.get_current_metrics()
    assert current["monitoring"] is True
    assert 0 <= current["cpu_percent"] <= 100
    assert current["memory_used_gb"] > 0
    assert current["gpu_memory_used_gb"] is None  # no GPU here
    assert "system/memory_percent" in current["metrics"]
    for _ in range(3):
        monitor.log_training_metrics(
            loss=0.5, accuracy=0.85, learning_rate=0.001, gradient_norm=1.2
        )
    status = monitor.stop_monitoring()
    assert status.startswith("Monitoring stopped after")
    assert monitor.get_current_metrics()["monitoring"] is False
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "tensorflow")
    assert series["train/loss"].steps == [0, 1, 2]
    assert series["train/accuracy"].values == pytest.approx([0.85] * 3)
    assert series["train/gradient_norm"].values == pytest.approx([1.2] * 3)
    assert len(series["system/memory_percent"].points) >= 1


def test_logging_without_monitoring_and_explicit_steps(tmp_path):
    monitor = TensorFlowMonitor(log_dir=str(tmp_path / "run"))
    assert monitor.log_training_metrics(loss=1.0, step=100) == 100
    assert monitor.log_training_metrics(loss=0.9) == 101
    assert monitor.stop_monitoring().startswith("Monitoring stopped")
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].steps == [100, 101]


def test_bad_interval_is_a_clear_error(tmp_path):
    monitor = TensorFlowMonitor(log_dir=str(tmp_path / "run"))
    with pytest.raises(ValueError, match=r"at least 0\.1 s"):
        monitor.start_monitoring(interval=0)
    with pytest.raises(TypeError, match="loss must be a number"):
        monitor.log_training_metrics(loss="nan?")


def test_seed_charts_are_matplotlib_figures_of_the_run(tmp_path):
    monitor = TensorFlowMonitor(log_dir=str(tmp_path / "tensorflow"))
    monitor.start_monitoring(interval=0.1)
    for step in range(20):
        monitor.log_training_metrics(loss=2.0 / (step + 1), accuracy=step / 20, learning_rate=1e-3)
    deadline = time.monotonic() + 30
    while monitor.monitor.samples_taken < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    system = monitor.get_system_performance_chart()
    training = monitor.get_training_metrics_chart()
    heat = monitor.get_performance_heatmap()
    monitor.stop_monitoring()
    titles = [ax.get_title(loc="left") for ax in system.axes]
    # The tab's charts (the catalogue): host and process CPU apart, each with its 100 %.
    assert titles == [
        "CPU utilization, all cores (100 % = all cores)",
        "Process CPU (100 % = one core)",
        "Memory used",
        "GPU utilization (100 % = time)",
        "GPU memory",
    ]
    assert [ln.get_label() for ln in system.axes[1].lines] == ["process/cpu_percent"]
    cpu = system.axes[0].lines[0]
    assert cpu.get_label() == "system/cpu_percent" and len(cpu.get_xdata()) >= 3
    loss = training.axes[0].lines[0]
    assert loss.get_label() == "train/loss"
    assert list(loss.get_xdata()) == list(range(20))
    assert loss.get_ydata()[0] == pytest.approx(2.0)
    assert "no data yet" in [t.get_text() for t in system.axes[3].texts]  # no GPU here
    labels = [t.get_text() for t in heat.axes[0].get_yticklabels()]
    assert any("cpu" in label.lower() for label in labels)
