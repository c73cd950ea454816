"""A fake pynvml module for tests: two H100s with scriptable faults.

`FakeNvml` exposes the pynvml functions that `recorder.nvml` calls, with the
real pynvml constants and error classes, so that the code under test sees the
same names and catches the same exceptions as on a GPU machine. Faults are
raised as ``pynvml.NVMLError(code)``, which pynvml maps to its real subclasses
(``NVMLError_NotSupported``, ``NVMLError_GpuIsLost``, ...).

Example:
    fake = FakeNvml()
    fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVML_ERROR_NOT_SUPPORTED, device=1)
    source = NvmlSource(FaultLog(), nvml=fake)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pynvml

GIB = 1024**3


@dataclasses.dataclass
class FakeProcess:
    """One entry of NVML's running-process lists."""

    pid: int
    usedGpuMemory: int | None  # pynvml's field names, here and below
    gpuInstanceId: int = 0xFFFFFFFF  # NVML's "no MIG instance"
    computeInstanceId: int = 0xFFFFFFFF


@dataclasses.dataclass
class FakeGpu:
    """What one fake GPU reports; tests change the fields between samples."""

    index: int
    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = ""
    memory_total_bytes: int = 80 * GIB
    memory_used_bytes: int = 6 * GIB
    utilization_gpu_percent: int = 87
    utilization_memory_percent: int = 41
    temperature_c: int = 63
    power_mw: int = 312_500
    power_limit_mw: int = 700_000
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    clock_event_reasons: int = 0
    compute_capability: tuple[int, int] = (9, 0)  # Hopper
    compute_processes: list[FakeProcess] = dataclasses.field(default_factory=list)
    graphics_processes: list[FakeProcess] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.uuid:
            self.uuid = f"GPU-{self.index:08x}-5e1f-4c3b-9a6d-0123456789ab"


@dataclasses.dataclass
class _Plan:
    """A scripted fault: after `ok_calls` good calls, raise `code` `times` times (None: forever)."""

    code: int
    ok_calls: int = 0
    times: int | None = None


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}>"


class FakeNvml:
    """A stand-in for the pynvml module (see the module docstring).

    Attributes:
      gpus: The fake devices, by NVML index.
      calls: How many times each function was called (by name), in all.
      initialised: Whether nvmlInit was called and nvmlShutdown not since.
      init_count: How many times nvmlInit was called.
      shutdown_count: How many times nvmlShutdown was called.
    """

    def __init__(
        self,
        gpu_count: int = 2,
        *,
        init_error: int | None = None,
        missing: tuple[str, ...] = (),
        bytes_strings: bool = False,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
    ) -> None:
        """Creates the fake.

        Args:
          gpu_count: Number of fake GPUs (GPU 0 is busy, the others nearly idle).
          init_error: NVML error code that nvmlInit raises, if any.
          missing: Function names the fake does not have (as an older pynvml).
          bytes_strings: Return names, UUIDs and versions as bytes (pynvml < 11).
          driver_version: What nvmlSystemGetDriverVersion returns.
          cuda_driver_version: What nvmlSystemGetCudaDriverVersion returns.
        """
        # First: __getattribute__ reads it on every attribute access.
        self._missing = frozenset(missing)
        self.gpus = [FakeGpu(i) for i in range(gpu_count)]
        for idle in self.gpus[1:]:
            idle.memory_used_bytes = 2 * GIB
            idle.utilization_gpu_percent = 12
            idle.utilization_memory_percent = 3
            idle.temperature_c = 47
            idle.power_mw = 118_250
        self.calls: Counter[str] = Counter()
        self.initialised = False
        self.init_count = 0
        self.shutdown_count = 0
        self._init_error = init_error
        self._bytes = bytes_strings
        self._driver_version = driver_version
        self._cuda_driver_version = cuda_driver_version
        self._plans: dict[tuple[str, int | None], _Plan] = {}
        self._handles = [_Handle(i) for i in range(gpu_count)]

    def __getattribute__(self, name: str) -> Any:
        # Lets a test take a function away, as an older pynvml would lack it.
        if name != "_missing" and name in object.__getattribute__(self, "_missing"):
            raise AttributeError(name)
        return object.__getattribute__(self, name)

    # -- scripting ---------------------------------------------------------

    def fail(
        self,
        function: str,
        code: int,
        *,
        device: int | None = None,
        ok_calls: int = 0,
        times: int | None = None,
    ) -> None:
        """Makes `function` raise ``NVMLError(code)``.

        Args:
          function: The pynvml function name.
          code: The NVML_ERROR_* code to raise.
          device: Only on this device's handle (None: every call).
          ok_calls: Calls that still succeed first, counted from now.
          times: How many calls fail before it works again (None: forever).
        """
        self._plans[(function, device)] = _Plan(
            code, ok_calls + self._count(function, device), times
        )

    def heal(self, function: str, device: int | None = None) -> None:
        """Removes the fault set on `function` (and `device`)."""
        self._plans.pop((function, device), None)

    def _count(self, function: str, device: int | None) -> int:
        return self.calls[function if device is None else f"{function}[{device}]"]

    def _enter(self, function: str, handle: _Handle | None = None) -> FakeGpu | None:
        """Counts the call, checks init, and raises a scripted fault if one is due."""
        device = None if handle is None else handle.index
        self.calls[function] += 1
        if device is not None:
            self.calls[f"{function}[{device}]"] += 1
        if not self.initialised:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)
        for key in ((function, device), (function, None)):
            plan = self._plans.get(key)
            if plan is None:
                continue
            calls = self._count(*key)
            if calls <= plan.ok_calls:
                continue
            if plan.times is None or calls <= plan.ok_calls + plan.times:
                raise pynvml.NVMLError(plan.code)
        return None if device is None else self.gpus[device]

    def _gpu(self, function: str, handle: _Handle) -> FakeGpu:
        gpu = self._enter(function, handle)
        assert gpu is not None
        return gpu

    def _str(self, text: str) -> str | bytes:
        return text.encode() if self._bytes else text

    # -- the pynvml API ----------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        self.init_count += 1
        if self._init_error is not None:
            raise pynvml.NVMLError(self._init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self.shutdown_count += 1
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._enter("nvmlSystemGetDriverVersion")
        return self._str(self._driver_version)

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self._cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return self._handles[index]

    def nvmlDeviceGetName(self, handle: _Handle) -> str | bytes:
        return self._str(self._gpu("nvmlDeviceGetName", handle).name)

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str | bytes:
        return self._str(self._gpu("nvmlDeviceGetUUID", handle).uuid)

    def nvmlDeviceGetCudaComputeCapability(self, handle: _Handle) -> tuple[int, int]:
        return self._gpu("nvmlDeviceGetCudaComputeCapability", handle).compute_capability

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> pynvml.c_nvmlUtilization_t:
        gpu = self._gpu("nvmlDeviceGetUtilizationRates", handle)
        return pynvml.c_nvmlUtilization_t(
            gpu=gpu.utilization_gpu_percent, memory=gpu.utilization_memory_percent
        )

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> pynvml.c_nvmlMemory_t:
        gpu = self._gpu("nvmlDeviceGetMemoryInfo", handle)
        return pynvml.c_nvmlMemory_t(
            total=gpu.memory_total_bytes,
            free=gpu.memory_total_bytes - gpu.memory_used_bytes,
            used=gpu.memory_used_bytes,
        )

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        gpu = self._gpu("nvmlDeviceGetTemperature", handle)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature_c

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetPowerUsage", handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetEnforcedPowerLimit", handle).power_limit_mw

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        gpu = self._gpu("nvmlDeviceGetClockInfo", handle)
        if clock_type == pynvml.NVML_CLOCK_SM:
            return gpu.sm_clock_mhz
        if clock_type == pynvml.NVML_CLOCK_MEM:
            return gpu.memory_clock_mhz
        raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetCurrentClocksEventReasons", handle).clock_event_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        return self._gpu("nvmlDeviceGetCurrentClocksThrottleReasons", handle).clock_event_reasons

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[FakeProcess]:
        return list(self._gpu("nvmlDeviceGetComputeRunningProcesses", handle).compute_processes)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: _Handle) -> list[FakeProcess]:
        return list(self._gpu("nvmlDeviceGetGraphicsRunningProcesses", handle).graphics_processes)


# The real constants, error classes and clock reason bits, so that code under
# test that reads them from the module it was given sees pynvml's own.
for _name in dir(pynvml):
    if _name.startswith(
        ("NVML_", "NVMLError", "nvmlClocksEventReason", "nvmlClocksThrottleReason")
    ):
        setattr(FakeNvml, _name, getattr(pynvml, _name))
del _name
