"""Host and process-tree metrics on the real machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from tb_plugin_ttsmon.recorder import host
from tb_plugin_ttsmon.recorder.faults import FaultLog


def test_host_metrics_are_sane(tmp_path):
    src = host.HostSource(FaultLog(), str(tmp_path), per_core=True)
    out: dict[str, float] = {}
    src.sample(time.time(), out)
    assert "system/cpu_percent" not in out  # no rates in the first sample
    busy_until = time.monotonic() + 0.3
    while time.monotonic() < busy_until:
        pass
    out = {}
    src.sample(time.time(), out)
    cores = psutil.cpu_count()
    assert 0 < out["system/cpu_percent"] <= 100
    per_core = [out[f"system/cpu_core/{i}/utilization_percent"] for i in range(cores)]
    assert max(per_core) > 50  # this thread kept one core busy
    assert out["system/cpu_percent"] == pytest_approx(sum(per_core) / cores, 5.0)
    vm = psutil.virtual_memory()
    assert 0 < out["system/memory_used_bytes"] < vm.total
    assert out["system/memory_used_bytes"] + out["system/memory_available_bytes"] == vm.total
    assert out["system/logdir_disk_free_bytes"] > 0
    assert out["system/disk_read_bytes_per_s"] >= 0 and out["system/net_recv_bytes_per_s"] >= 0
    assert out["system/load_avg_1m"] >= 0


def pytest_approx(value, abs_):
    import pytest

    return pytest.approx(value, abs=abs_)


def test_per_core_can_be_turned_off():
    src = host.HostSource(FaultLog(), None, per_core=False)
    out: dict[str, float] = {}
    src.sample(time.time(), out)
    time.sleep(0.05)
    src.sample(time.time(), out)
    assert "system/cpu_percent" in out
    assert not any(k.startswith("system/cpu_core/") for k in out)
    assert "system/logdir_disk_free_bytes" not in out


def test_process_tree_includes_children(monkeypatch):
    monkeypatch.setattr(host, "CHILDREN_REFRESH_S", 0.0)
    code = "import time\nx = bytearray(64 * 2**20)\nwhile True: pass"
    children = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    try:
        src = host.ProcessTreeSource(FaultLog())
        procs = [psutil.Process(c.pid) for c in children]

        def children_cpu_s():
            return sum(sum(p.cpu_times()[:2]) for p in procs)

        out: dict[str, float] = {}
        t0, cpu0 = time.time(), children_cpu_s()
        src.sample(t0, out)
        time.sleep(1.0)
        out = {}
        t1, cpu1 = time.time(), children_cpu_s()
        src.sample(t1, out)
        assert out["process/child_count"] == 2
        assert src.tree_pids() == {os.getpid(), *(c.pid for c in children)}
        # The tree's CPU covers the busy children's (however loaded the host is).
        children_percent = 100 * (cpu1 - cpu0) / (t1 - t0)
        assert children_percent > 10
        assert out["process/cpu_percent"] >= 0.8 * children_percent
        assert out["process/rss_bytes"] > 2 * 64 * 2**20
        for child in children:
            child.kill()
            child.wait()
        out = {}
        src.sample(time.time(), out)
        assert out["process/child_count"] == 0
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_process_that_exits_stops_its_metrics(caplog):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    src = host.ProcessTreeSource(FaultLog(), pid=child.pid)
    out: dict[str, float] = {}
    src.sample(time.time(), out)
    src.sample(time.time(), out)
    assert out == {}
    assert not src.alive()


def test_descendants_from_the_kernels_child_lists_match_psutils_walk():
    from tb_plugin_ttsmon.recorder.host import descendant_pids

    if not sys.platform.startswith("linux"):
        assert descendant_pids(os.getpid()) is None
        return
    # Children with children of their own.
    kids = [
        subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30"], start_new_session=True)
        for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process().children(recursive=True)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        # The shells may still be forking: compare the two readings of a tree that
        # did not change in between (psutil's walk before and after ours agree).
        for _ in range(100):
            walked = sorted(p.pid for p in psutil.Process().children(recursive=True))
            ours = sorted(descendant_pids(os.getpid()) or [])
            if walked == sorted(p.pid for p in psutil.Process().children(recursive=True)):
                break
            time.sleep(0.05)
        assert len(walked) >= 6
        assert ours == walked
    finally:
        for k in kids:
            os.killpg(k.pid, 9)  # the grandchildren too
            k.wait()
    assert descendant_pids(2**22 + 12345) is None  # no such process
