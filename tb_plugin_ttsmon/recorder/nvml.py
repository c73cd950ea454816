"""GPU metrics through NVML: the only module of the project that touches NVML.

NVML (the library behind ``nvidia-smi``) is reached through ``pynvml``, from
the ``nvidia-ml-py`` package. It is imported in the first sample, not here, so
that the recorder imports and runs on machines without it.

Hardware gaps are values, not crashes:

* No NVML (no driver, no library, no permission): one warning naming the
  reason, then no GPU series for the rest of the run.
* A field that a GPU does not support (NVML's NotSupported): that field is
  switched off at once, with one warning; the device's other fields go on.
* A field that fails for another NVML reason: switched off after three
  failures in a row, with one warning; a failure followed by a success costs
  nothing.
* A GPU that falls off the bus (NVML's GpuIsLost): that device is dropped,
  with one warning.

Nothing here ever raises into the training job.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog, FieldHealth

logger = logging.getLogger(__name__)

# NVML reports power in milliwatts; tags carry watts.
_MW_PER_W = 1000.0

# Error codes from nvml.h (a stable ABI). pynvml's own constants are used when
# the module has them; these are only the fallbacks for older pynvml builds.
_ERROR_NOT_SUPPORTED = 3
_ERROR_NO_PERMISSION = 4
_ERROR_DRIVER_NOT_LOADED = 9
_ERROR_LIBRARY_NOT_FOUND = 12
_ERROR_FUNCTION_NOT_FOUND = 13
_ERROR_GPU_IS_LOST = 15
_ERROR_LIB_RM_VERSION_MISMATCH = 18

# Why NVML would not start, in words, by error code (name, fallback code).
_INIT_PROBLEMS: tuple[tuple[str, int, str], ...] = (
    ("NVML_ERROR_LIBRARY_NOT_FOUND", _ERROR_LIBRARY_NOT_FOUND, "NVML library not found"),
    ("NVML_ERROR_DRIVER_NOT_LOADED", _ERROR_DRIVER_NOT_LOADED, "NVIDIA driver not loaded"),
    ("NVML_ERROR_NO_PERMISSION", _ERROR_NO_PERMISSION, "no permission to use NVML"),
    (
        "NVML_ERROR_LIB_RM_VERSION_MISMATCH",
        _ERROR_LIB_RM_VERSION_MISMATCH,
        "NVML library and kernel driver versions differ (reload the driver or reboot)",
    ),
)

# Entries of CUDA_VISIBLE_DEVICES that hide every GPU on purpose, so that
# seeing them is no fault.
_NO_DEVICE_ENTRIES = frozenset({"NoDevFiles", ""})
_NEGATIVE_INT = re.compile(r"-\d+")

# The type a field reader returns: one value per tag of its row, in order;
# None where the value is not available this time (no tag is written).
Reading = tuple[float | None, ...]


def _no_pids() -> Collection[int]:
    return ()


class _Nvml:
    """The NVML module, with what the readers need looked up once at init.

    Also holds the per-sample cache of the process tree's pids, so that the
    (psutil) walk of the tree runs once per sample, not once per GPU.
    """

    def __init__(self, lib: Any, tree_pids: Callable[[], Collection[int]]) -> None:
        self.lib = lib
        self.error: type[BaseException] = lib.NVMLError
        self.not_supported = getattr(lib, "NVML_ERROR_NOT_SUPPORTED", _ERROR_NOT_SUPPORTED)
        self.function_not_found = getattr(
            lib, "NVML_ERROR_FUNCTION_NOT_FOUND", _ERROR_FUNCTION_NOT_FOUND
        )
        self.gpu_is_lost = getattr(lib, "NVML_ERROR_GPU_IS_LOST", _ERROR_GPU_IS_LOST)
        self.temperature_gpu = getattr(lib, "NVML_TEMPERATURE_GPU", 0)
        self.clock_sm = getattr(lib, "NVML_CLOCK_SM", 1)
        self.clock_mem = getattr(lib, "NVML_CLOCK_MEM", 2)
        self.thermal_mask = _reason_bit(lib, "SwThermalSlowdown", 0x20) | _reason_bit(
            lib, "HwThermalSlowdown", 0x40
        )
        self.power_mask = _reason_bit(lib, "SwPowerCap", 0x04) | _reason_bit(
            lib, "HwPowerBrakeSlowdown", 0x80
        )
        # pynvml may name a function that the installed driver lacks (it
        # raises FunctionNotFound then); each of these falls back to the older
        # name that older drivers have.
        self.clock_event_reasons = _FirstAvailable(
            self,
            ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons"),
        )
        self.compute_processes = _FirstAvailable(
            self,
            ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2"),
        )
        self.graphics_processes = _FirstAvailable(
            self,
            ("nvmlDeviceGetGraphicsRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses_v2"),
        )
        self._tree_pids = tree_pids
        self._pids: frozenset[int] | None = None

    def code(self, err: BaseException) -> object:
        """The NVML error code of `err` (None if it has none)."""
        return getattr(err, "value", None)

    def is_permanent(self, err: BaseException) -> bool:
        """Whether `err` means the call can never work on this device and driver."""
        return self.code(err) in (self.not_supported, self.function_not_found)

    def new_sample(self) -> None:
        """Forgets the pids of the previous sample."""
        self._pids = None

    def pids(self) -> frozenset[int]:
        """The pids of the monitored process tree, read once per sample."""
        if self._pids is None:
            self._pids = frozenset(self._tree_pids())
        return self._pids


def _reason_bit(lib: Any, name: str, default: int) -> int:
    """A clock event reason bit by its pynvml name (renamed from "throttle" in 12.x)."""
    for prefix in ("nvmlClocksEventReason", "nvmlClocksThrottleReason"):
        value = getattr(lib, prefix + name, None)
        if isinstance(value, int):
            return value
    return default


class _FirstAvailable:
    """Calls the first of several NVML functions that pynvml and the driver both have."""

    def __init__(self, nv: _Nvml, names: Sequence[str]) -> None:
        self._nv = nv
        self._names = [n for n in names if callable(getattr(nv.lib, n, None))]

    def __call__(self, *args: Any) -> Any:
        while self._names:
            try:
                return getattr(self._nv.lib, self._names[0])(*args)
            except self._nv.error as err:
                if self._nv.code(err) != self._nv.function_not_found or len(self._names) == 1:
                    raise
                self._names.pop(0)
        raise self._nv.lib.NVMLError(self._nv.function_not_found)


class _Device:
    """One GPU being sampled, with its tag strings made once at init."""

    __slots__ = (
        "fields",
        "graphics_processes_ok",
        "handle",
        "index",
        "lost",
        "next_scan_s",
        "ours",
    )

    def __init__(self, index: int, handle: Any) -> None:
        self.index = index
        self.handle = handle
        # Whether the monitored process tree was ever seen holding memory
        # here: the GPUs a rank uses, when it samples only its own processes.
        self.ours = False
        self.next_scan_s = 0.0
        self.lost = False  # fell off the bus: dropped for the rest of the run
        # The graphics process list is a nice-to-have next to the compute list;
        # a device that does not support it still gets process memory.
        self.graphics_processes_ok = True
        # (row, fault key, full tags) of the fields still sampled.
        self.fields: list[tuple[_Field, str, tuple[str, ...]]] = [
            (row, f"gpu{index}.{row.key}", tuple(f"gpu/{index}/{t}" for t in row.tags))
            for row in FIELDS
        ]


@dataclasses.dataclass(frozen=True)
class _Field:
    """One row of the field table: one NVML reading and the tags it gives.

    Attributes:
      key: The field's name in fault messages, after ``gpu{index}.``.
      tags: Tag suffixes after ``gpu/{gpu}/`` (rows of `metadata.METRICS`),
        one per value that `read` returns.
      read: Reads the field of one device; returns one value per tag, None
        where a value is not available this time.
    """

    key: str
    tags: tuple[str, ...]
    read: Callable[[_Nvml, _Device], Reading]


def _read_utilization(nv: _Nvml, dev: _Device) -> Reading:
    rates = nv.lib.nvmlDeviceGetUtilizationRates(dev.handle)
    return (float(rates.gpu), float(rates.memory))


def _read_memory(nv: _Nvml, dev: _Device) -> Reading:
    info = nv.lib.nvmlDeviceGetMemoryInfo(dev.handle)
    used, total = float(info.used), float(info.total)
    return (used, total, used * 100.0 / total if total > 0 else None)


def _read_temperature(nv: _Nvml, dev: _Device) -> Reading:
    return (float(nv.lib.nvmlDeviceGetTemperature(dev.handle, nv.temperature_gpu)),)


def _read_power(nv: _Nvml, dev: _Device) -> Reading:
    return (nv.lib.nvmlDeviceGetPowerUsage(dev.handle) / _MW_PER_W,)


def _read_power_limit(nv: _Nvml, dev: _Device) -> Reading:
    return (nv.lib.nvmlDeviceGetEnforcedPowerLimit(dev.handle) / _MW_PER_W,)


def _read_sm_clock(nv: _Nvml, dev: _Device) -> Reading:
    return (float(nv.lib.nvmlDeviceGetClockInfo(dev.handle, nv.clock_sm)),)


def _read_memory_clock(nv: _Nvml, dev: _Device) -> Reading:
    return (float(nv.lib.nvmlDeviceGetClockInfo(dev.handle, nv.clock_mem)),)


def _read_throttle(nv: _Nvml, dev: _Device) -> Reading:
    reasons = int(nv.clock_event_reasons(dev.handle))
    return (
        float(reasons),
        1.0 if reasons & nv.thermal_mask else 0.0,
        1.0 if reasons & nv.power_mask else 0.0,
    )


def _read_process_memory(nv: _Nvml, dev: _Device) -> Reading:
    """GPU memory of the monitored process tree on one device.

    0 is a real value (our processes hold nothing on this GPU). No value is
    given when our processes are listed but NVML hides their memory (vGPU,
    some containers): 0 would then be a lie.
    """
    processes = list(nv.compute_processes(dev.handle))
    if dev.graphics_processes_ok:
        try:
            processes.extend(nv.graphics_processes(dev.handle))
        except nv.error as err:
            if not nv.is_permanent(err):
                raise
            dev.graphics_processes_ok = False
    pids = nv.pids()
    total = 0
    counted: set[tuple[int, object, object]] = set()
    hidden = False
    for proc in processes:
        if proc.pid not in pids:
            continue
        # A process with both a compute and a graphics context is in both
        # lists with the same memory: count it once. On a MIG GPU, one process
        # is listed once per instance it uses, each with its own memory.
        entry = (
            proc.pid,
            getattr(proc, "gpuInstanceId", None),
            getattr(proc, "computeInstanceId", None),
        )
        if entry in counted:
            continue
        used = proc.usedGpuMemory
        if used is None:
            hidden = True
            continue
        counted.add(entry)
        total += used
    if hidden and not counted:
        return (None,)
    return (float(total),)


# The fields read from each GPU per sample. Adding a metric is one row here
# plus its tag rows in `metadata.METRICS`.
FIELDS: tuple[_Field, ...] = (
    _Field("utilization", ("utilization_percent", "memory_utilization_percent"), _read_utilization),
    _Field(
        "memory",
        ("memory_used_bytes", "memory_total_bytes", "memory_used_percent"),
        _read_memory,
    ),
    _Field("temperature", ("temperature_c",), _read_temperature),
    _Field("power", ("power_w",), _read_power),
    _Field("power_limit", ("power_limit_w",), _read_power_limit),
    _Field("sm_clock", ("sm_clock_mhz",), _read_sm_clock),
    _Field("memory_clock", ("memory_clock_mhz",), _read_memory_clock),
    _Field(
        "throttle",
        ("throttle_reasons_bitmask", "throttle_thermal", "throttle_power"),
        _read_throttle,
    ),
    _Field("process_memory", ("process_memory_used_bytes",), _read_process_memory),
)


_PROCESS_MEMORY_FIELD = FIELDS[-1]
assert _PROCESS_MEMORY_FIELD.key == "process_memory"
# Seconds between looks at a GPU that holds none of a rank's processes, for a
# rank that samples only its own processes (it may start using one later).
PROCESS_RESCAN_S = 10.0


def _describe(err: BaseException) -> str:
    """`err` as "TypeName: message", safe for any exception."""
    try:
        text = str(err)
    except Exception:  # pynvml's __str__ may call into a library that is not there
        text = repr(getattr(err, "value", ""))
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _text(value: object) -> str | None:
    """A string from pynvml, which returned bytes before version 11."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _cuda_version_text(version: object) -> str | None:
    """NVML's CUDA driver version (12040) as people write it ("12.4")."""
    if not isinstance(version, int) or version <= 0:
        return None
    return f"{version // 1000}.{version % 1000 // 10}"


def select_devices(
    cuda_visible_devices: str | None, uuids: Sequence[str | None]
) -> tuple[list[int], str | None]:
    """The NVML indices of the GPUs that CUDA_VISIBLE_DEVICES lets CUDA see.

    Follows CUDA's reading of the variable: comma-separated device indices or
    ``GPU-<uuid>`` prefixes, where the first entry that names no device ends
    the list (so ``-1`` or an empty value hides every GPU). MIG instances
    cannot be told apart by NVML's device-level metrics, so a list with MIG
    ids selects every device.

    Args:
      cuda_visible_devices: The variable's value; None when it is not set.
      uuids: NVML's UUID of each device, by NVML index (None if unreadable).

    Returns:
      The selected NVML indices in the variable's order (CUDA's ``cuda:0``
      first), and a sentence for people when an entry matched no device.
    """
    all_devices = list(range(len(uuids)))
    if cuda_visible_devices is None:
        return all_devices, None
    entries = [e.strip() for e in cuda_visible_devices.split(",")]
    if any(e.upper().startswith("MIG-") for e in entries):
        return all_devices, None
    selected: list[int] = []
    for entry in entries:
        index = _match_entry(entry, uuids)
        if index is None:
            if entry in _NO_DEVICE_ENTRIES or _NEGATIVE_INT.fullmatch(entry):
                return selected, None
            problem = (
                f"CUDA_VISIBLE_DEVICES={cuda_visible_devices!r}: entry {entry!r} names no GPU "
                f"that NVML sees ({len(uuids)} GPUs)"
            )
            return selected, problem
        if index not in selected:
            selected.append(index)
    return selected, None


def _match_entry(entry: str, uuids: Sequence[str | None]) -> int | None:
    if entry.isdigit():
        index = int(entry)
        return index if index < len(uuids) else None
    if entry.upper().startswith("GPU-"):
        prefix = entry.lower()
        matches = [i for i, u in enumerate(uuids) if u and u.lower().startswith(prefix)]
        # CUDA rejects a prefix that fits more than one GPU.
        return matches[0] if len(matches) == 1 else None
    return None


class NvmlSource:
    """Samples every visible NVIDIA GPU through NVML (see the module docstring).

    Writes the ``gpu/{gpu}/...`` rows of `metadata.METRICS`, where ``{gpu}`` is
    NVML's device index, as ``nvidia-smi`` shows it (not CUDA's index, which
    CUDA_VISIBLE_DEVICES renumbers).

    Attributes:
      name: The source's name in fault messages.
    """

    name = "nvml"

    def __init__(
        self,
        faults: FaultLog,
        tree_pids: Callable[[], Collection[int]] = _no_pids,
        nvml: Any = None,
        gpu_indices: Sequence[int] | None = None,
        device_wide: Callable[[], bool] | None = None,
    ) -> None:
        """Creates the source; NVML is started by the first `sample()` or `facts()`.

        Args:
          faults: Where failures are reported, each once.
          tree_pids: Returns the pids of the monitored process tree; their GPU
            memory is ``gpu/{gpu}/process_memory_used_bytes``. Called at most
            once per sample.
          nvml: The pynvml module to use (tests pass a fake); None imports
            ``pynvml`` when NVML is started.
          gpu_indices: NVML indices of the GPUs to sample; None samples those
            that CUDA_VISIBLE_DEVICES names when it is set, else every GPU.
          device_wide: Whether to read the device-wide fields this sample
            (called once per sample). In a job of many ranks only the node's
            sampler reads them (`recorder.node`); every other rank reads only
            its own processes' memory, and only on the GPUs that hold some
            (`gpu/{gpu}/process_memory_used_bytes`; the others are looked at
            again every `PROCESS_RESCAN_S`). None: always.
        """
        self._faults = faults
        self._health = FieldHealth(faults, self.name)
        self._tree_pids = tree_pids
        self._lib = nvml
        self._gpu_indices = None if gpu_indices is None else [int(i) for i in gpu_indices]
        self._device_wide = device_wide
        self._lock = threading.Lock()
        self._started = False  # start was tried (it is tried once per run)
        self._live = False  # NVML is initialised by us and not shut down yet
        self._nv: _Nvml | None = None
        self._devices: list[_Device] = []
        self._facts: dict[str, Any] = {
            "available": False,
            "reason": None,
            "driver_version": None,
            "cuda_driver_version": None,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "devices": [],
        }

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds the current GPU values (tag -> float) to `out`; never raises.

        Args:
          monotonic_s: `time.monotonic()` of the sample (unused: NVML gives current values).
          out: Where the values go.
        """
        if not self._live:
            if self._started:
                return
            self._start()
            if not self._live:
                return
        try:
            if self._device_wide is None or self._device_wide():
                self._sample_devices(out)
            else:
                self._sample_own_processes(monotonic_s, out)
        except Exception as err:  # the job must go on, whatever went wrong here
            self._faults.warn_once(
                f"nvml:sample:{type(err).__name__}", "nvml: sampling failed (%s)", _describe(err)
            )

    def facts(self) -> dict[str, Any]:
        """NVML's availability, driver versions and the sampled GPUs, for the run facts.

        Starts NVML if no sample has yet. ``devices`` lists the sampled GPUs in
        CUDA's order when CUDA_VISIBLE_DEVICES is set, so its first entry is
        ``cuda:0``.
        """
        if not self._started:
            self._start()
        facts = dict(self._facts)
        facts["devices"] = [dict(d) for d in self._facts["devices"]]
        return {"nvml": facts}

    def close(self) -> None:
        """Shuts NVML down if this source started it; idempotent, never raises."""
        with self._lock:
            if not self._started:
                self._started = True  # a closed source never starts
                self._facts["reason"] = "closed before the first sample"
            if not self._live:
                return
            self._live = False
            try:
                self._lib.nvmlShutdown()
            except Exception as err:  # at shutdown there is nothing left to save
                logger.debug("nvmlShutdown failed: %s", _describe(err))

    # -- start ------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            try:
                self._start_locked()
            except Exception as err:  # the job must go on, whatever went wrong here
                self._shutdown_quietly()
                self._turn_off(f"NVML could not start ({_describe(err)})")

    def _start_locked(self) -> None:
        lib = self._lib
        if lib is None:
            try:
                import pynvml
            except ImportError as err:
                self._turn_off(f"nvidia-ml-py is not installed ({_describe(err)})")
                return
            self._lib = lib = pynvml
        try:
            lib.nvmlInit()
        except lib.NVMLError as err:
            self._turn_off(f"{_init_problem(lib, err)} ({_describe(err)})")
            return
        except OSError as err:
            self._turn_off(f"NVML library could not be loaded ({_describe(err)})")
            return
        self._live = True
        nv = _Nvml(lib, self._tree_pids)
        try:
            count = int(lib.nvmlDeviceGetCount())
        except lib.NVMLError as err:
            self._shutdown_quietly()
            self._turn_off(f"NVML could not count the GPUs ({_describe(err)})")
            return

        handles: dict[int, Any] = {}

        def handle(index: int) -> Any:
            if index not in handles:
                handles[index] = _attempt(nv, lib.nvmlDeviceGetHandleByIndex, index)
            return handles[index]

        indices, problem = self._indices(nv, count, handle)
        if problem:
            self._faults.warn_once("nvml:selection", "nvml: %s", problem)

        devices = []
        for index in indices:
            h = handle(index)
            if h is None:
                self._faults.warn_once(
                    f"nvml:gpu{index}:handle",
                    "nvml: GPU %d is left out: NVML gives no handle for it",
                    index,
                )
                continue
            self._devices.append(_Device(index, h))
            devices.append(self._device_facts(nv, index, h))

        self._nv = nv
        self._facts.update(
            available=True,
            driver_version=_text(_attempt(nv, lib.nvmlSystemGetDriverVersion)),
            cuda_driver_version=_cuda_version_text(
                _attempt(nv, getattr(lib, "nvmlSystemGetCudaDriverVersion", None))
            ),
            devices=devices,
        )

    def _indices(
        self, nv: _Nvml, count: int, handle: Callable[[int], Any]
    ) -> tuple[list[int], str | None]:
        if self._gpu_indices is not None:
            wanted = self._gpu_indices
            indices = [i for i in dict.fromkeys(wanted) if 0 <= i < count]
            missing = [i for i in wanted if not 0 <= i < count]
            problem = f"gpu_indices {missing} name no GPU that NVML sees ({count} GPUs)"
            return indices, problem if missing else None
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is None:
            return list(range(count)), None
        uuids: list[str | None] = []
        for index in range(count):
            h = handle(index)
            uuid = None if h is None else _attempt(nv, nv.lib.nvmlDeviceGetUUID, h)
            uuids.append(_text(uuid))
        return select_devices(env, uuids)

    def _device_facts(self, nv: _Nvml, index: int, h: Any) -> dict[str, Any]:
        lib = nv.lib
        memory = _attempt(nv, lib.nvmlDeviceGetMemoryInfo, h)
        power_limit_mw = _attempt(nv, lib.nvmlDeviceGetEnforcedPowerLimit, h)
        # (major, minor): 7.0 and later have tensor cores (mixed precision pays off).
        capability = _attempt(nv, getattr(lib, "nvmlDeviceGetCudaComputeCapability", None), h)
        return {
            "index": index,
            "name": _text(_attempt(nv, lib.nvmlDeviceGetName, h)) or "",
            "uuid": _text(_attempt(nv, lib.nvmlDeviceGetUUID, h)) or "",
            "memory_total_bytes": None if memory is None else int(memory.total),
            "power_limit_w": None if power_limit_mw is None else power_limit_mw / _MW_PER_W,
            "compute_capability": (
                f"{int(capability[0])}.{int(capability[1])}"
                if isinstance(capability, (tuple, list)) and len(capability) == 2
                else None
            ),
        }

    def _turn_off(self, reason: str) -> None:
        self._facts["reason"] = reason
        self._faults.warn_once("nvml:off", "GPU metrics are off: %s", reason, per_process=True)

    def _shutdown_quietly(self) -> None:
        if self._live:
            self._live = False
            try:
                self._lib.nvmlShutdown()
            except Exception as err:  # NVML is being given up on anyway
                logger.debug("nvmlShutdown failed: %s", _describe(err))

    # -- sample -----------------------------------------------------------

    def _sample_devices(self, out: dict[str, float]) -> None:
        nv = self._nv
        assert nv is not None  # set whenever _live is
        nv.new_sample()
        for dev in self._devices:
            for row, key, tags in dev.fields:
                values = self._read_field(nv, dev, row, key)
                if values is None:
                    if dev.lost:
                        break
                    continue
                for tag, value in zip(tags, values, strict=True):
                    if value is not None:
                        out[tag] = value

    def _sample_own_processes(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Only the process tree's memory, on the GPUs it uses (a rank not sampling its node)."""
        nv = self._nv
        assert nv is not None  # set whenever _live is
        nv.new_sample()
        for dev in self._devices:
            if not dev.ours and monotonic_s < dev.next_scan_s:
                continue
            for row, key, tags in dev.fields:
                if row is not _PROCESS_MEMORY_FIELD:
                    continue
                values = self._read_field(nv, dev, row, key)
                used = None if values is None else values[0]
                if used is not None and used > 0:
                    dev.ours = True
                if dev.ours and used is not None:
                    out[tags[0]] = used
                elif not dev.ours:
                    dev.next_scan_s = monotonic_s + PROCESS_RESCAN_S

    def _read_field(self, nv: _Nvml, dev: _Device, row: _Field, key: str) -> Reading | None:
        """One field of one GPU, or None when it failed (reported; a lost GPU is dropped)."""
        try:
            values = row.read(nv, dev)
        except nv.error as err:
            if nv.code(err) == nv.gpu_is_lost:
                self._lose(dev, err)
            else:
                self._field_failed(dev, key, _describe(err), nv.is_permanent(err))
            return None
        except Exception as err:  # a bug here must not stop the training job
            self._faults.warn_once(
                f"nvml:{key}:{type(err).__name__}",
                "nvml: reading %s raised %s (a ttsmon bug)",
                key,
                _describe(err),
            )
            self._field_failed(dev, key, _describe(err), False)
            return None
        self._health.ok(key)
        return values

    def _field_failed(self, dev: _Device, key: str, reason: str, permanent: bool) -> None:
        self._health.failed(key, reason, permanent=permanent)
        if not self._health.enabled(key):
            # A new list, so that the loop over the old one goes on unharmed.
            dev.fields = [f for f in dev.fields if f[1] != key]

    def _lose(self, dev: _Device, err: BaseException) -> None:
        dev.lost = True
        self._devices = [d for d in self._devices if d is not dev]
        self._faults.warn_once(
            f"nvml:gpu{dev.index}:lost",
            "nvml: GPU %d is lost (%s); its metrics are off for this run "
            "(the kernel log usually has an Xid error)",
            dev.index,
            _describe(err),
        )


def _init_problem(lib: Any, err: BaseException) -> str:
    """Why nvmlInit failed, in words."""
    code = getattr(err, "value", None)
    for name, fallback, words in _INIT_PROBLEMS:
        if code == getattr(lib, name, fallback):
            return words
    return "NVML could not start"


def _attempt(nv: _Nvml, fn: Callable[..., Any] | None, *args: Any) -> Any:
    """`fn(*args)`, or None when pynvml lacks `fn` or NVML fails (facts only)."""
    if fn is None:
        return None
    try:
        return fn(*args)
    except nv.error as err:
        logger.debug("%s failed: %s", getattr(fn, "__name__", fn), _describe(err))
        return None
