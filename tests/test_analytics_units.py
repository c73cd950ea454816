"""Byte amounts in the sentences of findings and anomalies are binary (KiB, MiB, GiB):
a "16 GB" GPU holds 16 GiB, and NVML, the kernel and TensorFlow count in 1024s."""

from __future__ import annotations

import numpy as np

from tb_plugin_ttsmon import analytics as A

T0 = 1_700_000_000.0
GiB = 2**30
MiB = 2**20


def _sampled(values, unit: str, dt_s: float = 1.0) -> A.Columns:
    v = np.asarray(values, dtype=np.float64)
    wall = T0 + np.arange(len(v)) * dt_s
    return A.Columns.of(wall, v, step=(wall * 1000).astype(np.int64), unit=unit)


def _by_id(run: dict[str, A.Columns]) -> dict[str, A.Finding]:
    return {f.id: f for f in A.findings(run)}


def test_a_nearly_full_16_gib_gpu_reads_in_gib():
    run = {
        "gpu/0/memory_used_bytes": _sampled(np.linspace(8 * GiB, 15.5 * GiB, 300), "B"),
        "gpu/0/memory_total_bytes": _sampled(np.full(300, 16 * GiB), "B"),
    }
    f = _by_id(run)["gpu_memory_full"]
    assert f.text == (
        "Peak GPU 0 memory 97 % (15.5 GiB of 16 GiB): close to out-of-memory; "
        "a smaller batch or mixed precision gives room."
    )
    assert f.numbers["gpu_memory_total_bytes"] == 16 * GiB
    assert f.numbers["gpu_memory_peak_bytes"] == 15.5 * GiB


def test_gpu_memory_headroom_cites_used_and_total_in_gib():
    run = {
        "gpu/1/memory_used_bytes": _sampled(np.full(300, 15.2 * GiB), "B"),
        "gpu/1/memory_total_bytes": _sampled(np.full(300, 24 * GiB), "B"),
        "train/loss": _sampled(np.linspace(3, 1, 300), ""),
    }
    f = _by_id(run)["gpu_memory_headroom"]
    assert f.text == (
        "Peak GPU 1 memory 63 % (15.2 GiB of 24 GiB): there is room for a larger batch."
    )


def test_swap_and_disk_findings_say_mib_and_gib():
    swap = np.r_[np.full(100, 1 * GiB), np.full(100, 1.5 * GiB)]
    run = {
        "system/swap_used_bytes": _sampled(swap, "B"),
        "system/logdir_disk_used_percent": _sampled(np.full(50, 97.0), "%"),
        "system/logdir_disk_free_bytes": _sampled(np.full(50, 750 * MiB), "B"),
    }
    found = _by_id(run)
    assert found["swap_pressure"].text == (
        "Swap use grew by 512 MiB to 1.5 GiB during the run: memory is short and steps slow down."
    )
    assert found["logdir_disk_full"].text == (
        "The log directory's disk is 97 % full (750 MiB free): "
        "checkpoints and logs may fail to write."
    )


def test_a_leak_reads_in_mib_and_mib_per_minute():
    t = np.arange(0, 1800.0, 2.0)
    rss = 2 * GiB + t * 200 * 1024  # +200 KiB/s: 11.7 MiB/min, 351 MiB in 30 min
    (a,) = A.detect_anomalies({"process/rss_bytes": _sampled(rss, "B", dt_s=2.0)})
    assert a.type == "leak"
    assert a.message == (
        "process/rss_bytes rose steadily by 351 MiB (+17 %) over 30 min "
        "(11.7 MiB/min, R² 1.00): a possible leak"
    )
