"""Container limits and usage from Linux cgroups (v2, v1 or a hybrid of both).

A job in a container can be throttled or OOM-killed long before the host looks
busy, so the numbers worth showing are the container's own: its CPU quota and
memory limit, and how close it runs to them. They are written only where a
limit is set; an unlimited cgroup (the usual case on a bare host) adds nothing.

Everything is read from plain files under a filesystem root (``/`` in real
use), so tests lay out a fake ``proc/`` and ``sys/fs/cgroup/`` tree instead of
patching Python.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog, FieldHealth

_log = logging.getLogger(__name__)

# v1 reports "no limit" as the largest page-aligned counter value
# (9223372036854771712 on 64-bit kernels); anything this large is no limit.
_UNLIMITED_BYTES = 2**60

# FieldHealth field names, one per file read each sample.
_CPU_LIMIT = "cpu_limit"
_CPU_USAGE = "cpu_usage"
_MEMORY_LIMIT = "memory_limit"
_MEMORY_USED = "memory_used"


@dataclasses.dataclass(frozen=True)
class _CpuFiles:
    """Where this process's CPU quota and usage counter live."""

    version: int
    limit_paths: tuple[str, ...]  # v2: (cpu.max,); v1: (cpu.cfs_quota_us, cpu.cfs_period_us)
    usage_path: str | None  # v2: cpu.stat; v1: cpuacct.usage, None where no cpuacct is found


@dataclasses.dataclass(frozen=True)
class _MemoryFiles:
    """Where this process's memory limit and usage live."""

    version: int
    limit_path: str  # v2: memory.max; v1: memory.limit_in_bytes
    used_path: str  # v2: memory.current; v1: memory.usage_in_bytes


@dataclasses.dataclass(frozen=True)
class _Layout:
    """The result of discovery: which hierarchy, and which files to read."""

    version: int | None
    cpu: _CpuFiles | None
    memory: _MemoryFiles | None
    host_memory_bytes: int | None


class CgroupSource:
    """Samples the CPU and memory limits of the container the process runs in.

    Tags (see ``metadata.METRICS``), each written only while its limit is set:

    * ``container/cpu_limit_cores``, ``container/cpu_usage_cores``,
      ``container/cpu_percent_of_limit``: the CPU quota in cores, and the CPU
      the whole cgroup used since the previous sample. The first sample has
      no previous one, so it has no usage or percent.
    * ``container/memory_limit_bytes``, ``container/memory_used_bytes``,
      ``container/memory_percent_of_limit``: the memory limit and the memory
      charged to the cgroup (page cache included, as the OOM killer counts it).

    The cgroup files are found once, in the first `sample()` or `facts()`;
    the limits are re-read every sample because they can change at runtime
    (``docker update``, Kubernetes in-place resize). A file that keeps failing
    (vanished, unreadable, malformed) is switched off after three failures in
    a row with one warning; `sample()` never raises.

    Attributes:
      name: ``"cgroup"``, this source's name in fault messages.
    """

    name = "cgroup"

    def __init__(self, faults: FaultLog, root: str = "/") -> None:
        """Creates the source; it reads nothing until the first `sample()`.

        Args:
          faults: Where failures are reported, each once.
          root: The filesystem root under which ``proc/self/cgroup`` and
            ``sys/fs/cgroup`` are read; tests point it at a fake tree.
        """
        self._faults = faults
        self._root = root
        self._health = FieldHealth(faults, self.name)
        self._layout: _Layout | None = None
        # (monotonic s, cumulative CPU s) of the previous usage read, for the rate.
        self._prev_cpu: tuple[float, float] | None = None

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds the container's limits and usage to `out`.

        Args:
          monotonic_s: `time.monotonic()` of this sample, in seconds; only
            differences between samples are used (for the CPU rate).
          out: Tag -> value; nothing is added where no limit is set.
        """
        try:
            layout = self._discover()
            if layout.cpu is not None:
                self._sample_cpu(layout.cpu, monotonic_s, out)
            if layout.memory is not None:
                self._sample_memory(layout.memory, layout.host_memory_bytes, out)
        except Exception as err:
            self._faults.warn_once(
                f"{self.name}:unexpected", "%s: sampling failed: %r", self.name, err
            )

    def facts(self) -> dict[str, Any]:
        """The cgroup version and the current limits, for the run facts document.

        Returns:
          ``{"cgroup": {"version": 1 | 2 | None, "cpu_limit_cores": float | None,
          "memory_limit_bytes": int | None}}``; a limit is None where none is set
          or it cannot be read, and the version is None where the process is in
          no cgroup that could be found (not Linux, no ``/proc``).
        """
        cpu_limit_cores: float | None = None
        memory_limit_bytes: int | None = None
        version: int | None = None
        try:
            layout = self._discover()
            version = layout.version
            if layout.cpu is not None and self._health.enabled(_CPU_LIMIT):
                try:
                    cpu_limit_cores = _read_cpu_limit_cores(layout.cpu)
                except (OSError, ValueError):
                    pass  # facts are informative; sample() reports the fault
            if layout.memory is not None and self._health.enabled(_MEMORY_LIMIT):
                try:
                    memory_limit_bytes = _read_memory_limit_bytes(
                        layout.memory, layout.host_memory_bytes
                    )
                except (OSError, ValueError):
                    pass
        except Exception as err:
            self._faults.warn_once(
                f"{self.name}:facts", "%s: reading facts failed: %r", self.name, err
            )
        return {
            "cgroup": {
                "version": version,
                "cpu_limit_cores": cpu_limit_cores,
                "memory_limit_bytes": memory_limit_bytes,
            }
        }

    def close(self) -> None:
        """Does nothing: files are opened and closed within each read."""

    # -- sampling ---------------------------------------------------------

    def _sample_cpu(self, files: _CpuFiles, monotonic_s: float, out: dict[str, float]) -> None:
        if not self._health.enabled(_CPU_LIMIT):
            return
        try:
            limit_cores = _read_cpu_limit_cores(files)
        except (OSError, ValueError) as err:
            self._health.failed(_CPU_LIMIT, _reason(err))
            self._prev_cpu = None
            return
        self._health.ok(_CPU_LIMIT)
        if limit_cores is None:
            # A usage rate across an unlimited stretch would mix two regimes.
            self._prev_cpu = None
            return
        out["container/cpu_limit_cores"] = limit_cores

        if not self._health.enabled(_CPU_USAGE):
            return
        if files.usage_path is None:
            # A v1 cpu hierarchy without cpuacct: say once why usage is missing.
            self._health.failed(_CPU_USAGE, "no cpuacct.usage found", permanent=True)
            return
        try:
            usage_s = _read_cpu_usage_s(files.version, files.usage_path)
        except (OSError, ValueError) as err:
            self._health.failed(_CPU_USAGE, _reason(err))
            self._prev_cpu = None
            return
        self._health.ok(_CPU_USAGE)
        prev, self._prev_cpu = self._prev_cpu, (monotonic_s, usage_s)
        if prev is None:
            return
        elapsed_s = monotonic_s - prev[0]
        used_s = usage_s - prev[1]
        # A clock step back, or a counter that went down (the cgroup was
        # recreated), has no meaningful rate; the new reading is the baseline.
        if elapsed_s <= 0.0 or used_s < 0.0:
            return
        usage_cores = used_s / elapsed_s
        out["container/cpu_usage_cores"] = usage_cores
        out["container/cpu_percent_of_limit"] = 100.0 * usage_cores / limit_cores

    def _sample_memory(
        self, files: _MemoryFiles, host_memory_bytes: int | None, out: dict[str, float]
    ) -> None:
        if not self._health.enabled(_MEMORY_LIMIT):
            return
        try:
            limit_bytes = _read_memory_limit_bytes(files, host_memory_bytes)
        except (OSError, ValueError) as err:
            self._health.failed(_MEMORY_LIMIT, _reason(err))
            return
        self._health.ok(_MEMORY_LIMIT)
        if limit_bytes is None:
            return
        out["container/memory_limit_bytes"] = float(limit_bytes)

        if not self._health.enabled(_MEMORY_USED):
            return
        try:
            used_bytes = _parse_int(_read(files.used_path), files.used_path)
        except (OSError, ValueError) as err:
            self._health.failed(_MEMORY_USED, _reason(err))
            return
        self._health.ok(_MEMORY_USED)
        out["container/memory_used_bytes"] = float(used_bytes)
        out["container/memory_percent_of_limit"] = 100.0 * used_bytes / limit_bytes

    # -- discovery --------------------------------------------------------

    def _discover(self) -> _Layout:
        if self._layout is None:
            self._layout = _discover(self._root, self._faults)
            _log.debug("cgroup layout under %r: %s", self._root, self._layout)
        return self._layout


def _discover(root: str, faults: FaultLog) -> _Layout:
    """Finds this process's cgroup files under `root`; never raises OSError."""
    try:
        text = _read(os.path.join(root, "proc/self/cgroup"))
    except FileNotFoundError:
        # Not Linux, or no /proc: no containers to speak of, and nothing to report.
        return _Layout(None, None, None, None)
    except OSError as err:
        faults.warn_once(
            "cgroup:discover",
            "cgroup: cannot read proc/self/cgroup, container metrics are off (%s)",
            err,
        )
        return _Layout(None, None, None, None)

    v1_paths: dict[str, str] = {}  # controller -> cgroup path
    v1_mounts: dict[str, list[str]] = {}  # controller -> candidate mount dir names
    unified_path: str | None = None
    for line in text.splitlines():
        # "hierarchy-ID:controller-list:cgroup-path"; the path may contain ':'.
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controller_list, path = parts
        if hierarchy == "0" and controller_list == "":
            unified_path = path
            continue
        controllers = [c for c in controller_list.split(",") if c and not c.startswith("name=")]
        for controller in controllers:
            v1_paths[controller] = path
            # Joined hierarchies are mounted as "cpu,cpuacct" (often with "cpu"
            # and "cpuacct" symlinks beside it), or under each single name.
            v1_mounts[controller] = [",".join(controllers), controller] + [
                c for c in controllers if c != controller
            ]

    cgroup_dir = os.path.join(root, "sys/fs/cgroup")
    v2_dir: str | None = None
    if unified_path is not None and os.path.isfile(os.path.join(cgroup_dir, "cgroup.controllers")):
        v2_dir = _existing_dir(cgroup_dir, unified_path) or cgroup_dir

    def v1_file(controller: str, filename: str) -> str | None:
        if controller not in v1_paths:
            return None
        return _find_v1_file(cgroup_dir, v1_mounts[controller], v1_paths[controller], filename)

    # Each controller independently: v1 where its v1 files exist (hybrid hosts
    # keep cpu and memory on v1), else v2. Only the limit file has to exist
    # now: a usage file missing later is a fault that sample() counts, rather
    # than a field silently off for good because it was briefly gone at start.
    cpu: _CpuFiles | None = None
    quota_path = v1_file("cpu", "cpu.cfs_quota_us")
    if quota_path is not None:
        period_path = os.path.join(os.path.dirname(quota_path), "cpu.cfs_period_us")
        # cpuacct can be mounted apart from cpu, so it is looked up on its own.
        usage_path = v1_file("cpuacct", "cpuacct.usage")
        cpu = _CpuFiles(1, (quota_path, period_path), usage_path)
    elif v2_dir is not None and os.path.isfile(os.path.join(v2_dir, "cpu.max")):
        cpu = _CpuFiles(2, (os.path.join(v2_dir, "cpu.max"),), os.path.join(v2_dir, "cpu.stat"))

    memory: _MemoryFiles | None = None
    limit_path = v1_file("memory", "memory.limit_in_bytes")
    if limit_path is not None:
        used_path = os.path.join(os.path.dirname(limit_path), "memory.usage_in_bytes")
        memory = _MemoryFiles(1, limit_path, used_path)
    elif v2_dir is not None and os.path.isfile(os.path.join(v2_dir, "memory.max")):
        memory = _MemoryFiles(
            2, os.path.join(v2_dir, "memory.max"), os.path.join(v2_dir, "memory.current")
        )

    version: int | None
    if (cpu is not None and cpu.version == 1) or (memory is not None and memory.version == 1):
        version = 1
    elif v2_dir is not None:
        version = 2
    elif v1_paths:
        version = 1
    else:
        version = None
    host_memory_bytes = (
        _host_memory_bytes(root) if memory is not None and memory.version == 1 else None
    )
    return _Layout(version, cpu, memory, host_memory_bytes)


def _existing_dir(base: str, cgroup_path: str) -> str | None:
    """`base` joined with `cgroup_path` if that is a directory inside `base`."""
    parts = [p for p in cgroup_path.split("/") if p]
    # Under a cgroup namespace a process outside the namespace's root sees
    # paths like "/../..", which must not lead out of the cgroup mount.
    if ".." in parts:
        return None
    path = os.path.join(base, *parts)
    return path if os.path.isdir(path) else None


def _find_v1_file(
    cgroup_dir: str, mounts: list[str], cgroup_path: str, filename: str
) -> str | None:
    """The first `filename` in the v1 group directory, else in a mount's root.

    Inside a container the path from ``/proc/self/cgroup`` is the host's, while
    the container's own group is mounted at the controller's root; the
    specific directory wins wherever it exists.
    """
    mount_dirs = [os.path.join(cgroup_dir, m) for m in dict.fromkeys(mounts)]
    candidates = [d for d in (_existing_dir(m, cgroup_path) for m in mount_dirs) if d is not None]
    for directory in candidates + mount_dirs:
        path = os.path.join(directory, filename)
        if os.path.isfile(path):
            return path
    return None


def _host_memory_bytes(root: str) -> int | None:
    """The host's total memory, read once: a v1 limit at least this large is no limit."""
    try:
        for line in _read(os.path.join(root, "proc/meminfo")).splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


# -- file readers: each raises OSError or ValueError, never anything else ----


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _parse_int(text: str, path: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{path}: expected an integer, got {text.strip()[:40]!r}") from None


def _read_cpu_limit_cores(files: _CpuFiles) -> float | None:
    """The CPU quota in cores, or None where there is none."""
    if files.version == 2:
        path = files.limit_paths[0]
        text = _read(path)
        fields = text.split()
        # "max 100000" (or just "max" on old kernels) is no quota.
        if fields and fields[0] == "max":
            return None
        if len(fields) != 2:
            raise ValueError(f"{path}: expected '<quota> <period>', got {text.strip()[:40]!r}")
        quota_us = _parse_int(fields[0], path)
        period_us = _parse_int(fields[1], path)
    else:
        quota_path, period_path = files.limit_paths
        quota_us = _parse_int(_read(quota_path), quota_path)
        if quota_us < 0:  # -1: no quota; skip the period read
            return None
        period_us = _parse_int(_read(period_path), period_path)
        path = quota_path
    if quota_us <= 0 or period_us <= 0:
        raise ValueError(f"{path}: quota {quota_us} us per period {period_us} us is not a limit")
    return quota_us / period_us


def _read_cpu_usage_s(version: int, path: str) -> float:
    """The cgroup's cumulative CPU time, in seconds."""
    text = _read(path)
    if version == 1:
        return _parse_int(text, path) / 1e9  # cpuacct.usage counts ns
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "usage_usec":
            return _parse_int(fields[1], path) / 1e6
    raise ValueError(f"{path}: no usage_usec line")


def _read_memory_limit_bytes(files: _MemoryFiles, host_memory_bytes: int | None) -> int | None:
    """The memory limit in bytes, or None where there is none."""
    text = _read(files.limit_path).strip()
    if files.version == 2 and text == "max":
        return None
    limit_bytes = _parse_int(text, files.limit_path)
    if limit_bytes <= 0:
        raise ValueError(f"{files.limit_path}: limit {limit_bytes} is not a limit")
    # v1 has no "max": unlimited reads as a huge number, and a limit above the
    # host's memory can never bind, so neither is worth a chart.
    if limit_bytes >= _UNLIMITED_BYTES:
        return None
    if files.version == 1 and host_memory_bytes is not None and limit_bytes >= host_memory_bytes:
        return None
    return limit_bytes


def _reason(err: Exception) -> str:
    """A short reason for a fault message (the error names the file)."""
    return f"{type(err).__name__}: {err}"
