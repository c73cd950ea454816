"""Tests of recorder.nvml: the GPU series a user gets, and how hardware gaps show."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pynvml
import pytest
from fake_nvml import GIB, FakeNvml, FakeProcess

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.nvml import NvmlSource, select_devices

REPO_ROOT = Path(__file__).resolve().parent.parent

# The fixture `warnings`: returns the WARNING messages ttsmon logged so far.
Warnings = Callable[[], list[str]]

# One sample of the default fake: GPU 0 busy, GPU 1 nearly idle.
EXPECTED_GPU0 = {
    "gpu/0/utilization_percent": 87.0,
    "gpu/0/memory_utilization_percent": 41.0,
    "gpu/0/memory_used_bytes": 6.0 * GIB,
    "gpu/0/memory_total_bytes": 80.0 * GIB,
    "gpu/0/memory_used_percent": 7.5,
    "gpu/0/temperature_c": 63.0,
    "gpu/0/power_w": 312.5,
    "gpu/0/power_limit_w": 700.0,
    "gpu/0/sm_clock_mhz": 1980.0,
    "gpu/0/memory_clock_mhz": 2619.0,
    "gpu/0/throttle_reasons_bitmask": 0.0,
    "gpu/0/throttle_thermal": 0.0,
    "gpu/0/throttle_power": 0.0,
    "gpu/0/process_memory_used_bytes": 0.0,
}
EXPECTED_GPU1 = {
    "gpu/1/utilization_percent": 12.0,
    "gpu/1/memory_utilization_percent": 3.0,
    "gpu/1/memory_used_bytes": 2.0 * GIB,
    "gpu/1/memory_total_bytes": 80.0 * GIB,
    "gpu/1/memory_used_percent": 2.5,
    "gpu/1/temperature_c": 47.0,
    "gpu/1/power_w": 118.25,
    "gpu/1/power_limit_w": 700.0,
    "gpu/1/sm_clock_mhz": 1980.0,
    "gpu/1/memory_clock_mhz": 2619.0,
    "gpu/1/throttle_reasons_bitmask": 0.0,
    "gpu/1/throttle_thermal": 0.0,
    "gpu/1/throttle_power": 0.0,
    "gpu/1/process_memory_used_bytes": 0.0,
}


@pytest.fixture(autouse=True)
def _no_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> Warnings:
    """Returns a function giving the WARNING messages that ttsmon logged so far."""
    caplog.set_level(logging.WARNING, logger="tb_plugin_ttsmon")

    def logged() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno >= logging.WARNING and r.name.startswith("tb_plugin_ttsmon")
        ]

    return logged


def sample(source: NvmlSource) -> dict[str, float]:
    out: dict[str, float] = {}
    source.sample(1_700_000_000.0, out)
    return out


def gpu_indices(out: dict[str, float]) -> set[int]:
    return {int(tag.split("/")[1]) for tag in out if tag.startswith("gpu/")}


# -- values -------------------------------------------------------------------


def test_two_gpus_give_every_series_in_table_units(warnings: Warnings) -> None:
    source = NvmlSource(FaultLog(), nvml=FakeNvml())

    out = sample(source)

    assert out == {**EXPECTED_GPU0, **EXPECTED_GPU1}
    assert all(type(v) is float for v in out.values())
    assert warnings() == []


def test_every_gpu_row_of_the_tag_table_is_written_and_nothing_else() -> None:
    out = sample(NvmlSource(FaultLog(), nvml=FakeNvml(gpu_count=1)))

    table = {s.pattern for s in metadata.METRICS if s.pattern.startswith("gpu/{gpu}/")}
    assert {metadata.spec_for_tag(tag).pattern for tag in out} == table
    assert {t.replace("gpu/0/", "gpu/{gpu}/") for t in out} == table


def test_values_follow_the_device_between_samples() -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)
    sample(source)

    fake.gpus[0].utilization_gpu_percent = 100
    fake.gpus[0].memory_used_bytes = 60 * GIB
    fake.gpus[0].power_mw = 699_999
    out = sample(source)

    assert out["gpu/0/utilization_percent"] == 100.0
    assert out["gpu/0/memory_used_bytes"] == 60.0 * GIB
    assert out["gpu/0/memory_used_percent"] == 75.0
    assert out["gpu/0/power_w"] == pytest.approx(699.999)


def test_throttle_bits_say_thermal_and_power() -> None:
    fake = FakeNvml()
    fake.gpus[0].clock_event_reasons = (
        pynvml.nvmlClocksEventReasonSwThermalSlowdown | pynvml.nvmlClocksEventReasonSwPowerCap
    )
    fake.gpus[1].clock_event_reasons = pynvml.nvmlClocksEventReasonGpuIdle
    source = NvmlSource(FaultLog(), nvml=fake)

    out = sample(source)
    assert out["gpu/0/throttle_reasons_bitmask"] == 0x24
    assert (out["gpu/0/throttle_thermal"], out["gpu/0/throttle_power"]) == (1.0, 1.0)
    assert out["gpu/1/throttle_reasons_bitmask"] == 0x01
    assert (out["gpu/1/throttle_thermal"], out["gpu/1/throttle_power"]) == (0.0, 0.0)

    fake.gpus[0].clock_event_reasons = pynvml.nvmlClocksEventReasonHwThermalSlowdown
    fake.gpus[1].clock_event_reasons = pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown
    out = sample(source)
    assert (out["gpu/0/throttle_thermal"], out["gpu/0/throttle_power"]) == (1.0, 0.0)
    assert (out["gpu/1/throttle_thermal"], out["gpu/1/throttle_power"]) == (0.0, 1.0)


def test_throttle_reasons_from_an_old_pynvml_without_clock_event_reasons() -> None:
    fake = FakeNvml(missing=("nvmlDeviceGetCurrentClocksEventReasons",))
    fake.gpus[0].clock_event_reasons = pynvml.nvmlClocksThrottleReasonHwThermalSlowdown

    out = sample(NvmlSource(FaultLog(), nvml=fake))

    assert out["gpu/0/throttle_thermal"] == 1.0
    assert fake.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 2


def test_throttle_reasons_from_an_old_driver_without_clock_event_reasons(
    warnings: Warnings,
) -> None:
    # pynvml has the new name, but a driver before 535 lacks the symbol.
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetCurrentClocksEventReasons", pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
    fake.gpus[1].clock_event_reasons = pynvml.nvmlClocksThrottleReasonSwPowerCap
    source = NvmlSource(FaultLog(), nvml=fake)

    first, second = sample(source), sample(source)

    assert first["gpu/1/throttle_power"] == second["gpu/1/throttle_power"] == 1.0
    assert fake.calls["nvmlDeviceGetCurrentClocksEventReasons"] == 1  # not retried
    assert warnings() == []


def test_old_pynvml_bytes_strings_are_decoded() -> None:
    source = NvmlSource(FaultLog(), nvml=FakeNvml(bytes_strings=True))

    facts = source.facts()["nvml"]

    assert facts["driver_version"] == "550.54.15"
    assert facts["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert facts["devices"][1]["uuid"].startswith("GPU-00000001")


# -- which GPUs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("cuda_visible_devices", "expected"),
    [
        ("0,1", {0, 1}),
        ("1", {1}),
        (" 1 ", {1}),
        ("GPU-00000001", {1}),
        ("GPU-00000001-5e1f-4c3b-9a6d-0123456789ab,0", {0, 1}),
        ("gpu-00000000", {0}),
        ("", set()),
        ("-1", set()),
        ("NoDevFiles", set()),
        ("1,-1,0", {1}),
        ("MIG-4b5e7d3c-8f2a-5c1e-9d0b-a1b2c3d4e5f6", {0, 1}),
    ],
)
def test_cuda_visible_devices_picks_the_gpus(
    monkeypatch: pytest.MonkeyPatch,
    warnings: Warnings,
    cuda_visible_devices: str,
    expected: set[int],
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible_devices)
    source = NvmlSource(FaultLog(), nvml=FakeNvml())

    out = sample(source)

    assert gpu_indices(out) == expected
    assert {d["index"] for d in source.facts()["nvml"]["devices"]} == expected
    assert warnings() == []


def test_cuda_visible_devices_keeps_cuda_order_in_facts_and_nvml_index_in_tags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    source = NvmlSource(FaultLog(), nvml=FakeNvml())

    out = sample(source)
    facts = source.facts()["nvml"]

    # cuda:0 is NVML's GPU 1; its series keep NVML's index.
    assert [d["index"] for d in facts["devices"]] == [1, 0]
    assert facts["cuda_visible_devices"] == "1,0"
    assert out["gpu/1/power_w"] == 118.25


def test_cuda_visible_devices_naming_a_missing_gpu_warns_once(
    monkeypatch: pytest.MonkeyPatch, warnings: Warnings
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,0")
    source = NvmlSource(FaultLog(), nvml=FakeNvml())

    outs = [sample(source) for _ in range(3)]

    # CUDA stops reading at the first entry that names no device.
    assert all(gpu_indices(out) == {1} for out in outs)
    assert len(warnings()) == 1
    assert "'7'" in warnings()[0] and "CUDA_VISIBLE_DEVICES" in warnings()[0]


def test_gpu_indices_override_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    fake = FakeNvml()

    out = sample(NvmlSource(FaultLog(), nvml=fake, gpu_indices=[1]))

    assert gpu_indices(out) == {1}
    assert fake.calls["nvmlDeviceGetPowerUsage[0]"] == 0


def test_select_devices_reads_the_variable_as_cuda_does() -> None:
    uuids = ["GPU-aaaa-1", "GPU-aaab-2", "GPU-bbbb-3"]

    assert select_devices(None, uuids) == ([0, 1, 2], None)
    assert select_devices("2,0,2", uuids) == ([2, 0], None)
    assert select_devices("GPU-bb,GPU-aaab", uuids) == ([2, 1], None)
    # A prefix that fits two GPUs names none, as in CUDA.
    indices, problem = select_devices("0,GPU-aaa,1", uuids)
    assert indices == [0] and problem is not None and "GPU-aaa" in problem


# -- NVML missing -------------------------------------------------------------


def test_without_the_nvml_library_one_warning_then_silence(warnings: Warnings) -> None:
    # The real pynvml, on a machine without libnvidia-ml.
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML")
    source = NvmlSource(FaultLog())

    outs = [sample(source) for _ in range(3)]
    facts = source.facts()["nvml"]
    source.close()

    assert outs == [{}, {}, {}]
    assert len(warnings()) == 1
    assert "GPU metrics are off: NVML library not found" in warnings()[0]
    assert "NVMLError_LibraryNotFound" in warnings()[0]
    assert facts["available"] is False
    assert "NVML library not found" in facts["reason"]
    assert facts["devices"] == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no permission to use NVML"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "versions differ"),
        (pynvml.NVML_ERROR_UNKNOWN, "NVML could not start"),
    ],
)
def test_nvml_init_failure_is_one_warning_and_no_retry(
    warnings: Warnings, code: int, words: str
) -> None:
    fake = FakeNvml(init_error=code)
    source = NvmlSource(FaultLog(), nvml=fake)

    outs = [sample(source) for _ in range(5)]
    facts = source.facts()["nvml"]
    source.close()

    assert outs == [{}] * 5
    assert fake.init_count == 1
    assert fake.shutdown_count == 0
    assert len(warnings()) == 1
    assert "GPU metrics are off: " in warnings()[0] and words in warnings()[0]
    assert type(pynvml.NVMLError(code)).__name__ in warnings()[0]
    assert facts["available"] is False and words in facts["reason"]


def test_without_pynvml_installed_one_warning(
    monkeypatch: pytest.MonkeyPatch, warnings: Warnings
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    source = NvmlSource(FaultLog())

    assert sample(source) == {} and sample(source) == {}
    assert len(warnings()) == 1
    assert "GPU metrics are off: nvidia-ml-py is not installed" in warnings()[0]


def test_module_imports_without_pynvml() -> None:
    code = (
        "import sys; sys.modules['pynvml'] = None\n"
        "import tb_plugin_ttsmon.recorder.nvml as m\n"
        "assert m.NvmlSource.name == 'nvml'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# -- field faults -------------------------------------------------------------


def test_not_supported_field_is_switched_off_at_once(warnings: Warnings) -> None:
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVML_ERROR_NOT_SUPPORTED, device=1)
    source = NvmlSource(FaultLog(), nvml=fake)

    outs = [sample(source) for _ in range(3)]

    expected = {**EXPECTED_GPU0, **EXPECTED_GPU1}
    del expected["gpu/1/power_w"]
    assert outs == [expected] * 3
    assert fake.calls["nvmlDeviceGetPowerUsage[1]"] == 1
    assert len(warnings()) == 1
    assert "gpu1.power is switched off" in warnings()[0]
    assert "NVMLError_NotSupported" in warnings()[0]


def test_transient_error_costs_only_that_sample(warnings: Warnings) -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)
    sample(source)

    seen = []
    for _ in range(3):
        # Two failures, a success, and so on: never three in a row.
        fake.fail("nvmlDeviceGetUtilizationRates", pynvml.NVML_ERROR_TIMEOUT, device=0, times=2)
        seen += ["gpu/0/utilization_percent" in sample(source) for _ in range(3)]

    assert seen == [False, False, True] * 3
    assert warnings() == []


def test_field_failing_three_times_in_a_row_is_switched_off(warnings: Warnings) -> None:
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetTemperature", pynvml.NVML_ERROR_UNKNOWN, device=0)
    source = NvmlSource(FaultLog(), nvml=fake)

    outs = [sample(source) for _ in range(3)]
    assert len(warnings()) == 1
    assert "gpu0.temperature is switched off" in warnings()[0]
    assert "NVMLError_Unknown" in warnings()[0]

    fake.heal("nvmlDeviceGetTemperature", device=0)
    outs += [sample(source) for _ in range(3)]

    assert all("gpu/0/temperature_c" not in out for out in outs)
    assert all(out["gpu/1/temperature_c"] == 47.0 for out in outs)
    assert all(out["gpu/0/power_w"] == 312.5 for out in outs)
    assert fake.calls["nvmlDeviceGetTemperature[0]"] == 3
    assert len(warnings()) == 1


def test_gpu_lost_mid_run_drops_that_gpu_with_one_warning(warnings: Warnings) -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)
    assert gpu_indices(sample(source)) == {0, 1}

    fake.fail("nvmlDeviceGetMemoryInfo", pynvml.NVML_ERROR_GPU_IS_LOST, device=1)
    fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVML_ERROR_GPU_IS_LOST, device=1)
    calls_before = fake.calls["nvmlDeviceGetPowerUsage[1]"]
    outs = [sample(source) for _ in range(3)]

    assert outs[0]["gpu/0/power_w"] == 312.5
    assert outs[0]["gpu/1/utilization_percent"] == 12.0  # read before the loss showed
    assert "gpu/1/memory_used_bytes" not in outs[0]
    assert outs[1:] == [EXPECTED_GPU0, EXPECTED_GPU0]
    assert fake.calls["nvmlDeviceGetPowerUsage[1]"] == calls_before
    assert len(warnings()) == 1
    assert "GPU 1 is lost" in warnings()[0] and "NVMLError_GpuIsLost" in warnings()[0]


def test_a_bug_in_a_reading_is_logged_by_type_and_the_sample_goes_on(
    warnings: Warnings,
) -> None:
    fake = FakeNvml()
    fake.gpus[0].power_mw = "n/a"  # type: ignore[assignment]  # makes `/ 1000.0` a TypeError
    source = NvmlSource(FaultLog(), nvml=fake)

    outs = [sample(source) for _ in range(4)]

    assert all("gpu/0/power_w" not in out and out["gpu/1/power_w"] == 118.25 for out in outs)
    assert len(warnings()) == 2
    assert "gpu0.power raised TypeError" in warnings()[0]
    assert "gpu0.power is switched off" in warnings()[1]


# -- process memory -----------------------------------------------------------


def test_process_memory_sums_only_the_process_tree() -> None:
    fake = FakeNvml()
    fake.gpus[0].compute_processes = [
        FakeProcess(pid=100, usedGpuMemory=3 * GIB),  # the training process
        FakeProcess(pid=101, usedGpuMemory=GIB),  # its data-loader worker
        FakeProcess(pid=900, usedGpuMemory=20 * GIB),  # someone else's job
    ]
    # A process with compute and graphics contexts is in both lists.
    fake.gpus[0].graphics_processes = [FakeProcess(pid=101, usedGpuMemory=GIB)]
    fake.gpus[1].compute_processes = [FakeProcess(pid=900, usedGpuMemory=5 * GIB)]
    pid_reads = []

    def tree_pids() -> set[int]:
        pid_reads.append(1)
        return {100, 101, 102}

    out = sample(NvmlSource(FaultLog(), tree_pids=tree_pids, nvml=fake))

    assert out["gpu/0/process_memory_used_bytes"] == 4.0 * GIB
    assert out["gpu/1/process_memory_used_bytes"] == 0.0  # ours use nothing there
    assert len(pid_reads) == 1  # once per sample, not once per GPU


def test_process_memory_counts_each_mig_instance_of_a_process() -> None:
    fake = FakeNvml(gpu_count=1)
    fake.gpus[0].compute_processes = [
        FakeProcess(pid=100, usedGpuMemory=5 * GIB, gpuInstanceId=1, computeInstanceId=0),
        FakeProcess(pid=100, usedGpuMemory=3 * GIB, gpuInstanceId=2, computeInstanceId=0),
    ]

    out = sample(NvmlSource(FaultLog(), tree_pids=lambda: {100}, nvml=fake))

    assert out["gpu/0/process_memory_used_bytes"] == 8.0 * GIB


def test_process_memory_hidden_by_nvml_gives_no_value() -> None:
    # vGPUs and some containers list the process but not its memory.
    fake = FakeNvml()
    fake.gpus[0].compute_processes = [FakeProcess(pid=100, usedGpuMemory=None)]
    fake.gpus[1].compute_processes = [
        FakeProcess(pid=100, usedGpuMemory=None),
        FakeProcess(pid=101, usedGpuMemory=GIB),
    ]

    out = sample(NvmlSource(FaultLog(), tree_pids=lambda: [100, 101], nvml=fake))

    assert "gpu/0/process_memory_used_bytes" not in out
    assert out["gpu/1/process_memory_used_bytes"] == 1.0 * GIB


def test_process_memory_without_graphics_process_list(warnings: Warnings) -> None:
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetGraphicsRunningProcesses", pynvml.NVML_ERROR_NOT_SUPPORTED)
    fake.gpus[0].compute_processes = [FakeProcess(pid=100, usedGpuMemory=3 * GIB)]
    source = NvmlSource(FaultLog(), tree_pids=lambda: {100}, nvml=fake)

    outs = [sample(source) for _ in range(3)]

    assert [o["gpu/0/process_memory_used_bytes"] for o in outs] == [3.0 * GIB] * 3
    assert fake.calls["nvmlDeviceGetGraphicsRunningProcesses"] == 2  # once per GPU
    assert warnings() == []


def test_failing_tree_pids_costs_only_process_memory() -> None:
    def tree_pids() -> set[int]:
        raise RuntimeError("psutil went away")

    out = sample(NvmlSource(FaultLog(), tree_pids=tree_pids, nvml=FakeNvml()))

    assert "gpu/0/process_memory_used_bytes" not in out
    assert out["gpu/0/power_w"] == 312.5


# -- facts and close ----------------------------------------------------------


def test_facts_before_the_first_sample_start_nvml_once() -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)

    facts = source.facts()
    sample(source)
    assert source.facts() == facts
    assert fake.init_count == 1

    assert facts == {
        "nvml": {
            "available": True,
            "reason": None,
            "driver_version": "550.54.15",
            "cuda_driver_version": "12.4",
            "cuda_visible_devices": None,
            "devices": [
                {
                    "index": i,
                    "name": "NVIDIA H100 80GB HBM3",
                    "uuid": f"GPU-0000000{i}-5e1f-4c3b-9a6d-0123456789ab",
                    "memory_total_bytes": 80 * GIB,
                    "power_limit_w": 700.0,
                    "compute_capability": "9.0",
                }
                for i in (0, 1)
            ],
        }
    }


def test_facts_show_what_the_device_does_not_support() -> None:
    fake = FakeNvml(cuda_driver_version=11080)
    fake.fail("nvmlDeviceGetEnforcedPowerLimit", pynvml.NVML_ERROR_NOT_SUPPORTED, device=1)

    facts = NvmlSource(FaultLog(), nvml=fake).facts()["nvml"]

    assert facts["cuda_driver_version"] == "11.8"
    assert [d["power_limit_w"] for d in facts["devices"]] == [700.0, None]


def test_facts_give_the_compute_capability_where_nvml_has_it() -> None:
    fake = FakeNvml()
    fake.gpus[1].compute_capability = (7, 5)
    fake.fail("nvmlDeviceGetCudaComputeCapability", pynvml.NVML_ERROR_NOT_SUPPORTED, device=0)

    facts = NvmlSource(FaultLog(), nvml=fake).facts()["nvml"]

    assert [d["compute_capability"] for d in facts["devices"]] == [None, "7.5"]


def test_close_shuts_nvml_down_once_and_stops_sampling() -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)
    sample(source)

    source.close()
    source.close()

    assert fake.shutdown_count == 1
    assert not fake.initialised
    assert sample(source) == {}
    assert fake.init_count == 1


def test_close_before_any_sample_never_starts_nvml() -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)

    source.close()

    assert sample(source) == {}
    assert (fake.init_count, fake.shutdown_count) == (0, 0)


def test_close_survives_a_failing_shutdown() -> None:
    fake = FakeNvml()
    source = NvmlSource(FaultLog(), nvml=fake)
    sample(source)
    fake.fail("nvmlShutdown", pynvml.NVML_ERROR_UNKNOWN)

    source.close()
    source.close()

    assert fake.calls["nvmlShutdown"] == 1
