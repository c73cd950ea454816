"""TensorFlow allocator memory: real TensorFlow on CPU, and a fake GPU config layer."""

from __future__ import annotations

import sys
import types

from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.tfmem import TFMemorySource


def test_nothing_without_tensorflow_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    out: dict[str, float] = {}
    TFMemorySource(FaultLog()).sample(0.0, out)
    assert out == {}


def test_real_tensorflow_on_cpu_adds_nothing(needs_tf):
    import tensorflow  # noqa: F401

    src = TFMemorySource(FaultLog())
    out: dict[str, float] = {}
    src.sample(0.0, out)
    assert out == {}
    assert src.facts()["tensorflow_devices"]["gpus"] == []


def _fake_tf(peaks, fail_on=None):
    class Device:
        def __init__(self, name):
            self.name = name

    def get_memory_info(name):
        if name == fail_on:
            raise ValueError(f"No matching devices found for '{name}'")
        i = int(name.rsplit(":", 1)[1])
        return {"current": peaks[i] // 2, "peak": peaks[i]}

    config = types.SimpleNamespace(
        list_logical_devices=lambda kind: [Device(f"/device:GPU:{i}") for i in range(len(peaks))],
        list_physical_devices=lambda kind: [],
        experimental=types.SimpleNamespace(get_memory_info=get_memory_info),
        optimizer=types.SimpleNamespace(get_jit=lambda: ""),
    )
    return types.SimpleNamespace(config=config)


def test_per_gpu_current_and_peak(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow", _fake_tf([8 << 30, 2 << 30], "/device:GPU:1"))
    src = TFMemorySource(FaultLog())
    for _ in range(4):
        out: dict[str, float] = {}
        src.sample(0.0, out)
    assert out == {
        "tf/gpu/0/memory_current_bytes": float(4 << 30),
        "tf/gpu/0/memory_peak_bytes": float(8 << 30),
    }
    off = [r.getMessage() for r in caplog.records if "switched off" in r.getMessage()]
    assert len(off) == 1 and "/device:GPU:1" in off[0]
