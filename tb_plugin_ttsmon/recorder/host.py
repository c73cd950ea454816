"""Host and process-tree metrics, through psutil.

Rates (CPU %, bytes/s) are deltas of the kernel's counters between two
samples, so the first sample of a run has none: a rate over the few
microseconds since start-up would only be noise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil

from tb_plugin_ttsmon.recorder.faults import FaultLog, FieldHealth

# Finding a process's descendants through psutil reads /proc/<pid>/stat of
# every process on the host, the most expensive step of a sample on a busy
# machine; the tree changes rarely (data-loader workers start with an epoch),
# so it is looked up at most this often.
CHILDREN_REFRESH_S = 5.0


def descendant_pids(pid: int) -> list[int] | None:
    """The pids below `pid`, from the kernel's own child lists; None where there are none.

    Linux lists each thread's children in ``/proc/<pid>/task/<tid>/children``
    (CONFIG_PROC_CHILDREN, on in the common distributions' kernels), so the
    tree costs one small read per thread of its processes, where psutil's
    `children()` reads every process of the host: 8 ranks on a node with a
    thousand processes would each read a thousand files every 5 s. A child
    created while the lists are read may be missed until the next refresh.
    """
    try:
        found: list[int] = []
        todo = [pid]
        while todo:
            parent = todo.pop()
            for tid in os.listdir(f"/proc/{parent}/task"):
                try:
                    with open(f"/proc/{parent}/task/{tid}/children", "rb") as f:
                        kids = [int(k) for k in f.read().split()]
                except FileNotFoundError:
                    if tid == str(parent):
                        raise
                    continue  # a thread that ended
                found += kids
                todo += kids
        return found
    except (OSError, ValueError):
        return None  # not Linux, no CONFIG_PROC_CHILDREN, or the root is gone


class HostSource:
    """CPU, load, memory, swap, disk and network I/O, logdir disk space."""

    name = "host"

    def __init__(self, faults: FaultLog, logdir: str | None = None, per_core: bool = True) -> None:
        self._faults = faults
        self._health = FieldHealth(faults, "host")
        self._logdir = os.path.abspath(logdir) if logdir and "://" not in logdir else None
        self._per_core = per_core
        self._core_tags: list[str] = []
        self._last_s: float | None = None
        self._last_cpu: Any = None
        self._last_disk: tuple[int, int] | None = None
        self._last_net: tuple[int, int] | None = None

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds the host metrics to `out`; rates divide by differences of `monotonic_s`."""
        dt = None if self._last_s is None else monotonic_s - self._last_s
        if dt is not None and dt <= 0:
            dt = None
        self._last_s = monotonic_s
        for field, read in self._FIELDS:
            if not self._health.enabled(field):
                continue
            try:
                read(self, dt, out)
            except Exception as err:  # psutil.Error, OSError, or anything odd
                self._health.failed(field, f"{type(err).__name__}: {err}")
            else:
                self._health.ok(field)

    def _cpu(self, dt: float | None, out: dict[str, float]) -> None:
        times = psutil.cpu_times(percpu=True)
        last, self._last_cpu = self._last_cpu, times
        if last is None or dt is None or len(last) != len(times):
            return
        busy_total = 0.0
        all_total = 0.0
        if len(self._core_tags) != len(times):
            self._core_tags = [
                f"system/cpu_core/{i}/utilization_percent" for i in range(len(times))
            ]
        for tag, now, before in zip(self._core_tags, times, last):
            busy_now, total_now = _busy_and_total(now)
            busy_before, total_before = _busy_and_total(before)
            total = total_now - total_before
            busy = max(busy_now - busy_before, 0.0)
            busy_total += busy
            all_total += total
            if self._per_core:
                out[tag] = 100.0 * busy / total if total > 0 else 0.0
        out["system/cpu_percent"] = 100.0 * busy_total / all_total if all_total > 0 else 0.0

    def _load(self, dt: float | None, out: dict[str, float]) -> None:
        one, five, fifteen = os.getloadavg()
        out["system/load_avg_1m"] = one
        out["system/load_avg_5m"] = five
        out["system/load_avg_15m"] = fifteen

    def _memory(self, dt: float | None, out: dict[str, float]) -> None:
        vm = psutil.virtual_memory()
        # "Used" as total minus available: what the job could still get,
        # unlike psutil's `used`, which leaves out caches on Linux only.
        out["system/memory_used_bytes"] = float(vm.total - vm.available)
        out["system/memory_available_bytes"] = float(vm.available)
        out["system/memory_percent"] = float(vm.percent)

    def _swap(self, dt: float | None, out: dict[str, float]) -> None:
        sw = psutil.swap_memory()
        out["system/swap_used_bytes"] = float(sw.used)
        out["system/swap_percent"] = float(sw.percent)

    def _disk_io(self, dt: float | None, out: dict[str, float]) -> None:
        io = psutil.disk_io_counters(perdisk=False)
        if io is None:  # no disks the kernel reports (some containers)
            return
        now = (io.read_bytes, io.write_bytes)
        last, self._last_disk = self._last_disk, now
        if last is not None and dt is not None:
            out["system/disk_read_bytes_per_s"] = max(now[0] - last[0], 0) / dt
            out["system/disk_write_bytes_per_s"] = max(now[1] - last[1], 0) / dt

    def _net_io(self, dt: float | None, out: dict[str, float]) -> None:
        recv = sent = 0
        # Loopback is left out: it is traffic of the host with itself
        # (TensorBoard, local data servers), not network use.
        for nic, c in psutil.net_io_counters(pernic=True).items():
            if nic == "lo":
                continue
            recv += c.bytes_recv
            sent += c.bytes_sent
        last, self._last_net = self._last_net, (recv, sent)
        if last is not None and dt is not None:
            out["system/net_recv_bytes_per_s"] = max(recv - last[0], 0) / dt
            out["system/net_sent_bytes_per_s"] = max(sent - last[1], 0) / dt

    def _logdir_disk(self, dt: float | None, out: dict[str, float]) -> None:
        if self._logdir is None:
            return
        path = self._logdir
        # The run directory may not exist (yet, or any more): its filesystem
        # is then that of the nearest existing parent.
        while not os.path.isdir(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)
        du = psutil.disk_usage(path)
        out["system/logdir_disk_free_bytes"] = float(du.free)
        out["system/logdir_disk_used_percent"] = float(du.percent)

    _FIELDS: tuple[
        tuple[str, Callable[[HostSource, float | None, dict[str, float]], None]], ...
    ] = (
        ("cpu", _cpu),
        ("load", _load),
        ("memory", _memory),
        ("swap", _swap),
        ("disk_io", _disk_io),
        ("net_io", _net_io),
        ("logdir_disk", _logdir_disk),
    )

    def facts(self) -> dict[str, Any]:
        """CPU model and count, memory and swap totals."""
        facts: dict[str, Any] = {
            "cpu_count_logical": psutil.cpu_count(logical=True),
            "cpu_count_physical": psutil.cpu_count(logical=False),
            "cpu_model": _cpu_model(),
        }
        try:
            facts["memory_total_bytes"] = psutil.virtual_memory().total
            facts["swap_total_bytes"] = psutil.swap_memory().total
        except Exception as err:
            self._faults.warn_once("host:facts", "cannot read memory totals (%s)", err)
        return {"host": facts}

    def close(self) -> None:
        """Nothing to release."""


def _busy_and_total(t: Any) -> tuple[float, float]:
    """Busy and total CPU seconds of one `cpu_times` row.

    Guest time is already inside user time on Linux, and iowait is idle time
    (the CPU could run something else), as in `psutil.cpu_percent`.
    """
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return total - idle, total


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or None


class ProcessTreeSource:
    """CPU, RSS and threads of one process and all its descendants.

    RSS is summed over the tree, so pages shared between a parent and its
    forked workers count once per process (PSS would be exact, but reading
    smaps costs milliseconds per process).
    """

    name = "process"

    def __init__(self, faults: FaultLog, pid: int | None = None) -> None:
        self._faults = faults
        self._pid = os.getpid() if pid is None else pid
        self._root: psutil.Process | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._cpu_s: dict[int, float] = {}
        self._last_s: float | None = None
        self._children_at = -1e18
        self._gone = False
        self._pids: frozenset[int] = frozenset({self._pid})

    @property
    def pid(self) -> int:
        """The root process's pid."""
        return self._pid

    def tree_pids(self) -> frozenset[int]:
        """The pids of the tree as of the last sample (thread-safe snapshot)."""
        return self._pids

    def alive(self) -> bool:
        """Whether the root process still runs."""
        if self._gone:
            return False
        try:
            root = self._root or psutil.Process(self._pid)
            return root.is_running() and root.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds the process-tree metrics to `out`; rates divide by differences of `monotonic_s`."""
        if self._gone:
            return
        try:
            self._sample(monotonic_s, out)
        except psutil.NoSuchProcess:
            self._gone = True
            self._faults.warn_once(
                "process:gone", "process %d exited; process metrics stop", self._pid
            )
        except Exception as err:
            self._faults.warn_once(
                "process:error", "process metrics failed (%s: %s)", type(err).__name__, err
            )

    def _sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        if self._root is None:
            self._root = psutil.Process(self._pid)
            self._procs = {self._pid: self._root}
        mono = time.monotonic()
        if mono - self._children_at >= CHILDREN_REFRESH_S:
            self._children_at = mono
            procs = {self._pid: self._root}
            for child in self._children():
                # Keep the old object: psutil checks a pid's identity by
                # its creation time, which a reused pid would not match.
                procs[child.pid] = self._procs.get(child.pid, child)
            self._procs = procs
        dt = None if self._last_s is None else monotonic_s - self._last_s
        self._last_s = monotonic_s
        cpu_now: dict[int, float] = {}
        cpu_delta = rss = 0.0
        threads = 0
        for pid, proc in list(self._procs.items()):
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    mem = proc.memory_info()
                    n_threads = proc.num_threads()
            except psutil.NoSuchProcess:
                if pid == self._pid:
                    raise
                del self._procs[pid]  # a worker that exited
                continue
            except psutil.AccessDenied as err:
                self._faults.warn_once(
                    f"process:denied:{pid}",
                    "no access to process %d (%s); it is left out of process metrics",
                    pid,
                    err,
                )
                del self._procs[pid]
                continue
            used = t.user + t.system
            cpu_now[pid] = used
            before = self._cpu_s.get(pid)
            if before is not None:
                cpu_delta += max(used - before, 0.0)
            rss += mem.rss
            threads += n_threads
        self._cpu_s = cpu_now
        self._pids = frozenset(cpu_now)
        if dt is not None and dt > 0:
            out["process/cpu_percent"] = 100.0 * cpu_delta / dt
        out["process/rss_bytes"] = rss
        out["process/thread_count"] = float(threads)
        # Children only: the root may be missing from `cpu_now` (access denied).
        out["process/child_count"] = float(sum(1 for pid in cpu_now if pid != self._pid))

    def _children(self) -> list[psutil.Process]:
        """The root's descendants: from the kernel's child lists where it has them."""
        assert self._root is not None
        pids = descendant_pids(self._pid)
        if pids is None:
            return list(self._root.children(recursive=True))
        out = []
        for pid in pids:
            known = self._procs.get(pid)
            if known is not None:
                out.append(known)
                continue
            try:
                out.append(psutil.Process(pid))
            except psutil.NoSuchProcess:
                continue  # exited since it was listed
        return out

    def facts(self) -> dict[str, Any]:
        """The root process's pid and command name."""
        facts: dict[str, Any] = {"pid": self._pid}
        try:
            proc = psutil.Process(self._pid)
            facts["name"] = proc.name()
            facts["create_time_s"] = proc.create_time()
        except psutil.Error as err:
            facts["error"] = f"{type(err).__name__}: {err}"
        return {"process": facts}

    def close(self) -> None:
        """Nothing to release."""
