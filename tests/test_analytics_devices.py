"""TensorFlow's allocator series (``tf/gpu/{i}``, TensorFlow's own GPU numbering) are
scaled by an NVML GPU's total only when the two are known to be the same device.

NVML numbers the GPUs of the machine; TensorFlow numbers the GPUs it can see
(``CUDA_VISIBLE_DEVICES=1`` makes NVML's GPU 1 TensorFlow's GPU 0). Scaling
``tf/gpu/0`` by NVML GPU 0's total would draw another card's memory as a share
of the wrong card.
"""

from __future__ import annotations

import numpy as np
import pytest
from fake_nvml import FakeNvml

from tb_plugin_ttsmon import analytics as A
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.nvml import NvmlSource

T0 = 1_700_000_000.0
GiB = 2**30
N = 100


def _sampled(values, unit: str = "B") -> A.Columns:
    v = np.broadcast_to(np.asarray(values, dtype=np.float64), (N,)).copy()
    wall = T0 + np.arange(N, dtype=np.float64)
    return A.Columns.of(wall, v, step=(wall * 1000).astype(np.int64), unit=unit)


def _gpu(i: int, total_bytes: float, used_bytes: float) -> dict[str, A.Columns]:
    return {
        f"gpu/{i}/memory_total_bytes": _sampled(total_bytes),
        f"gpu/{i}/memory_used_bytes": _sampled(used_bytes),
    }


def _tf(i: int, current_bytes: float) -> dict[str, A.Columns]:
    return {
        f"tf/gpu/{i}/memory_current_bytes": _sampled(current_bytes),
        f"tf/gpu/{i}/memory_peak_bytes": _sampled(current_bytes),
    }


def _rows(series, **kw) -> dict[str, dict]:
    return {r["tag"]: r for r in A.heatmap(series, buckets=10, **kw)["rows"]}


def test_tf_gpu_0_on_a_two_gpu_machine_is_not_scaled_by_nvml_gpu_0():
    # CUDA_VISIBLE_DEVICES=1: TensorFlow's GPU 0 is the 80 GiB card, NVML's GPU 0 a 16 GiB one.
    series = {**_gpu(0, 16 * GiB, 1 * GiB), **_gpu(1, 80 * GiB, 60 * GiB), **_tf(0, 60 * GiB)}
    rows = _rows(series)
    tf = rows["tf/gpu/0/memory_current_bytes"]
    # Absolute bytes on the row's own range, not "375 % of GPU 0" clipped to full.
    assert (tf["scale"], tf["limit"]) == ("range", None)
    assert tf["values"] == [60.0 * GiB] * 10
    assert A.limit_of("tf/gpu/0/memory_peak_bytes", series) is None
    # NVML's own series keep their own totals.
    assert rows["gpu/0/memory_used_bytes"]["normalized"] == [0.0625] * 10
    assert rows["gpu/1/memory_used_bytes"]["normalized"] == [0.75] * 10


def test_the_only_gpu_of_both_is_one_device_whatever_its_numbers():
    # One GPU in NVML (index 1) and one in TensorFlow (index 0): the same card.
    series = {**_gpu(1, 80 * GiB, 60 * GiB), **_tf(0, 40 * GiB)}
    rows = _rows(series)
    tf = rows["tf/gpu/0/memory_current_bytes"]
    assert (tf["scale"], tf["limit"]) == ("limit", 80.0 * GiB)
    assert tf["normalized"] == [0.5] * 10
    assert A.limit_of("tf/gpu/0/memory_peak_bytes", series) == 80.0 * GiB


def _facts(nvml_indices, uuids=None, tf_gpus=1, cuda_visible_devices=None) -> dict:
    uuids = uuids or [f"GPU-{i:08x}-aaaa" for i in nvml_indices]
    return {
        "nvml": {
            "available": True,
            "cuda_visible_devices": cuda_visible_devices,
            "devices": [
                {"index": i, "uuid": u, "memory_total_bytes": 80 * GiB}
                for i, u in zip(nvml_indices, uuids)
            ],
        },
        "tensorflow_devices": {
            "gpus": [f"/physical_device:GPU:{k}" for k in range(tf_gpus)],
            "jit": None,
        },
    }


@pytest.mark.parametrize(
    ("facts", "same"),
    [
        # CUDA_VISIBLE_DEVICES names NVML's GPU 1, by index or by UUID prefix.
        (_facts([1], cuda_visible_devices="1"), True),
        (_facts([1], uuids=["GPU-5bd2f7a3-1111"], cuda_visible_devices="GPU-5bd2f7a3"), True),
        (_facts([1]), True),
        # Monitor(gpu_indices=[1]) with CUDA_VISIBLE_DEVICES=0: two different cards.
        (_facts([1], cuda_visible_devices="0"), False),
        (_facts([1], uuids=["GPU-5bd2f7a3-1111"], cuda_visible_devices="GPU-99"), False),
        # A MIG slice is named by a MIG UUID that NVML's device facts do not carry.
        (_facts([1], cuda_visible_devices="MIG-4f9b2a10"), False),
        # TensorFlow sees two GPUs, only one of which wrote memory series.
        (_facts([1], tf_gpus=2), False),
        # NVML sampled two GPUs, one of which was lost before its first sample.
        (_facts([1, 2]), False),
    ],
)
def test_run_facts_confirm_or_deny_the_single_gpu_match(facts, same):
    series = {**_gpu(1, 80 * GiB, 60 * GiB), **_tf(0, 40 * GiB)}
    tf = _rows(series, facts=facts)["tf/gpu/0/memory_current_bytes"]
    assert tf["scale"] == ("limit" if same else "range")
    expected = 80.0 * GiB if same else None
    assert A.limit_of("tf/gpu/0/memory_current_bytes", series, facts=facts) == expected
    assert A.tf_gpu_to_nvml_gpu(series, facts) == ({0: 1} if same else {})


def test_two_gpus_in_both_are_not_matched_by_number():
    series = {
        **_gpu(0, 16 * GiB, 1 * GiB),
        **_gpu(1, 80 * GiB, 60 * GiB),
        **_tf(0, 60 * GiB),
        **_tf(1, 1 * GiB),
    }
    rows = _rows(series, facts=_facts([0, 1], tf_gpus=2))
    for i in (0, 1):
        assert rows[f"tf/gpu/{i}/memory_current_bytes"]["scale"] == "range"
    assert A.tf_gpu_to_nvml_gpu(series) == {}


# TFMemorySource.facts() on a job whose TensorFlow sees one GPU.
TF_ONE_GPU_FACTS = {"tensorflow_devices": {"gpus": ["/physical_device:GPU:0"], "jit": None}}


@pytest.mark.parametrize(
    ("cuda_visible_devices", "gpu_indices", "same"),
    [
        ("1", None, True),
        ("GPU-00000001", None, True),  # a UUID prefix, as CUDA accepts
        ("0", [1], False),  # Monitor(gpu_indices=[1]) while the job uses GPU 0
    ],
)
def test_facts_and_series_as_the_recorder_writes_them(
    monkeypatch, cuda_visible_devices, gpu_indices, same
):
    # Two fake 80 GiB H100s behind the real NVML source: its facts and its tags.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible_devices)
    source = NvmlSource(FaultLog(), nvml=FakeNvml(), gpu_indices=gpu_indices)
    out: dict[str, float] = {}
    source.sample(T0, out)
    facts = {**source.facts(), **TF_ONE_GPU_FACTS}
    source.close()
    assert {t.split("/")[1] for t in out} == {"1"}
    series = {tag: _sampled(v, "B" if tag.endswith("_bytes") else "") for tag, v in out.items()}
    series.update(_tf(0, 40 * GiB))
    tf = _rows(series, facts=facts)["tf/gpu/0/memory_current_bytes"]
    if same:
        assert (tf["scale"], tf["limit"], tf["normalized"]) == ("limit", 80.0 * GiB, [0.5] * 10)
    else:
        assert (tf["scale"], tf["limit"]) == ("range", None)
