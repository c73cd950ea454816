"""Runs for the comparison tests, written with the recorder's event writer at chosen wall times.

`write_run` writes `STEPS` training steps of about `step_ms` each (lognormal
noise; the first 20 eight times slower: the warm-up the comparison leaves
out), a val/loss every 40 steps, 60 one-second samples of GPU memory
(rising to `gpu_gib`), utilization and RSS, and the run and model facts of a
Keras job whose model has `jit_compile=xla`. Expected ratios are then known:
8 ms against 10 ms is a 1.25x speedup and 20 % less GPU memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import writers

T0 = 1_700_000_000.0
GIB = 2**30
STEPS = 400


def facts(xla: bool) -> dict[str, Any]:
    return {
        "hostname": "trainer-1",
        "pid": 1234 if xla else 5678,  # differs, and is not a setup difference
        "started_at_s": T0,
        "frameworks": {"mixed_precision_policy": "float32", "xla_jit": False},
        "versions": {"tensorflow": "2.21.0", "keras": "3.15.1"},
        "nvml": {
            "devices": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}]
        },
    }


def write_run(run_dir: str, *, step_ms: float, gpu_gib: float, xla: bool, seed: int,
              val_speed: float = 1.0, hostile: bool = False) -> None:  # fmt: skip
    """One run (see the module); `hostile`: one GPU memory sample is NaN."""
    rng = np.random.default_rng(seed)
    w = writers.create_writer("event", run_dir)
    w.write(0, {}, {metadata.RUN_FACTS_TAG: facts(xla)}, wall_time_s=T0)
    model = {"name": "amharic_tts", "framework": "keras", "parameter_count": 281552,
             "size_bytes": 1126208, "dtype_policy": "float32", "jit_compile": xla}  # fmt: skip
    w.write(1, {}, {metadata.MODEL_FACTS_TAG: model}, wall_time_s=T0)
    wall = T0
    for step in range(STEPS):
        wall += (step_ms * (8 if step < 20 else 1) * rng.lognormal(0, 0.1)) / 1000.0
        w.write(step, {"train/loss": 1.0 / (1 + step * val_speed)}, wall_time_s=wall)
        if step % 40 == 39:
            w.write(step, {"val/loss": 1.2 / (1 + step * val_speed)}, wall_time_s=wall)
    for i in range(60):
        used = gpu_gib * GIB * (0.9 + 0.1 * i / 59)
        values = {
            "gpu/0/memory_used_bytes": float("nan") if hostile and i == 5 else used,
            "gpu/0/utilization_percent": 90.0,
            "process/rss_bytes": 3.0 * GIB,
        }
        w.write(metadata.sample_step(T0 + i), values, wall_time_s=T0 + i)
    w.close()
