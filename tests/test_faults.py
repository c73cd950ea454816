"""Fault injection: the training loop always finishes, with one clear warning per fault.

Disk faults use a real filesystem (a small tmpfs, filled up or remounted
read-only); NVML and psutil faults raise the libraries' real error types.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import psutil
import pytest
from conftest import require
from tbdata import python_provider, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon.recorder import monitor as monitor_mod


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    require(r.returncode == 0, f"a small tmpfs (mount needs root; mount said {r.stderr.strip()!r})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def fast_retry(monkeypatch):
    monkeypatch.setattr(monitor_mod, "WRITE_RETRY_S", 0.2)


def _fill(path):
    """Fills the filesystem of `path` to the last byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def _train(mon, steps, start=0, pause_s=0.0):
    for step in range(start, start + steps):
        mon.log_training(step, loss=1.0 / (step + 1), filler=float(step) * 1e6)
        if pause_s:
            time.sleep(pause_s)


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "tb_plugin_ttsmon"]


def test_full_disk_drops_data_warns_once_and_recovers(small_fs, writer_name, fast_retry, caplog):
    run = small_fs / "run"
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        mon = ttsmon.Monitor(run, interval=0.1, writer=writer_name, flush_s=0.1, gpus=False)
        _train(mon, 5)
        mon.flush()
        _fill(small_fs / "filler")
        _train(mon, 200, start=5, pause_s=0.002)  # must not raise
        mon.flush()
        failures = [m for m in _messages(caplog) if "failed" in m and str(run) in m]
        assert len(failures) == 1, _messages(caplog)
        assert "No space left" in failures[0] or "ENOSPC" in failures[0] or "space" in failures[0]
        os.remove(small_fs / "filler")
        time.sleep(0.3)
        _train(mon, 20, start=205, pause_s=0.02)
        mon.close()
    assert any("works again" in m for m in _messages(caplog))
    with python_provider(str(small_fs)) as p:
        loss = read_scalars(p, "run")["train/loss"]
    assert loss.steps[:5] == [0, 1, 2, 3, 4]  # written before the disk filled
    assert loss.steps[-1] == 224  # written after it was freed
    assert len(os.listdir(run)) >= 2  # recovery opened a new event file


def test_read_only_logdir_at_start_then_writable(small_fs, writer_name, fast_retry, caplog):
    """A job started on a read-only log disk trains on, then logs once it is writable."""
    run = small_fs / "run"
    run.mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        try:
            mon = ttsmon.Monitor(run, interval=0.1, writer=writer_name, flush_s=0.1, gpus=False)
            _train(mon, 50, pause_s=0.005)
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
        time.sleep(0.3)
        _train(mon, 5, start=50, pause_s=0.05)
        mon.close()
    msgs = _messages(caplog)
    assert len([m for m in msgs if "cannot write" in m or "failed" in m]) == 1, msgs
    assert "Read-only" in msgs[0] or "read-only" in msgs[0].lower()
    assert any("works again" in m for m in msgs)
    with python_provider(str(small_fs)) as p:
        steps = read_scalars(p, "run")["train/loss"].steps
    assert steps == [50, 51, 52, 53, 54]


def test_log_file_turning_unwritable_mid_run(tmp_path, fast_retry, caplog):
    """The event file's writes start failing (EROFS at the file layer, as when the
    kernel remounts a disk read-only after errors; a real remount refuses while
    files are open for writing)."""
    import errno

    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        mon = ttsmon.Monitor(run, interval=0.1, writer="event", flush_s=0.1, gpus=False)
        _train(mon, 3)
        mon.flush()
        guard = mon._writer._guard

        class ReadOnly:
            closed = False

            def write(self, data):
                raise OSError(errno.EROFS, "Read-only file system")

            flush = close = lambda self: None

        guard._file = ReadOnly()
        _train(mon, 50, start=3, pause_s=0.002)
        mon.flush()
        time.sleep(0.3)
        _train(mon, 5, start=53, pause_s=0.05)
        mon.close()
    msgs = _messages(caplog)
    failures = [m for m in msgs if "failed" in m]
    assert len(failures) == 1 and "Read-only file system" in failures[0], msgs
    assert any("works again" in m for m in msgs)
    with python_provider(str(tmp_path)) as p:
        steps = read_scalars(p, "run")["train/loss"].steps
    assert steps[:3] == [0, 1, 2] and steps[-1] == 57


def test_unwritable_logdir_at_start_does_not_raise(tmp_path, caplog):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        with ttsmon.Monitor(not_a_dir / "run", interval=None, writer="event") as mon:
            mon.log_training(1, loss=1.0)
    (msg,) = [m for m in _messages(caplog) if "cannot write" in m]
    assert str(not_a_dir / "run") in msg


def test_psutil_access_denied_on_a_child(tmp_path, monkeypatch, caplog):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The platform layer, under psutil's public Process (and its oneshot cache).
        platform_process = psutil._psplatform.Process
        real = platform_process.memory_info

        def memory_info(self):
            if self.pid == child.pid:
                raise psutil.AccessDenied(self.pid, "memory_info")
            return real(self)

        monkeypatch.setattr(platform_process, "memory_info", memory_info)
        with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
            with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event", gpus=False) as mon:
                for _ in range(3):
                    sample = mon.sample_now()
        assert sample["process/child_count"] == 0  # the denied child is left out
        assert sample["process/rss_bytes"] > 0
        denied = [m for m in _messages(caplog) if "no access to process" in m]
        assert len(denied) == 1 and str(child.pid) in denied[0]
    finally:
        child.kill()
        child.wait()


def test_nvml_failing_mid_run_keeps_the_rest_sampling(tmp_path, monkeypatch, caplog):
    import fake_nvml
    import pynvml

    fake = fake_nvml.FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event") as mon:
            first = mon.sample_now()
            fake.fail("nvmlDeviceGetPowerUsage", pynvml.NVML_ERROR_UNKNOWN)
            fake.fail("nvmlDeviceGetTemperature", pynvml.NVML_ERROR_NOT_SUPPORTED)
            for _ in range(4):
                last = mon.sample_now()
            _train(mon, 3)
    assert "gpu/0/power_w" in first and "gpu/0/power_w" not in last
    assert "gpu/0/temperature_c" not in last
    assert last["gpu/0/utilization_percent"] >= 0 and last["system/memory_used_bytes"] > 0
    off = [m for m in _messages(caplog) if "switched off" in m]
    assert any("gpu0.power" in m for m in off) and any("gpu0.temperature" in m for m in off)
    assert len(off) == len(set(off))
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["train/loss"].steps == [0, 1, 2]
    assert len(series["gpu/0/memory_used_bytes"].points) >= 5


def test_missing_nvml_is_one_warning(tmp_path, caplog):
    """The real pynvml on a machine without a driver: one warning naming why."""
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event") as mon:
            for _ in range(3):
                sample = mon.sample_now()
    gpu_msgs = [m for m in _messages(caplog) if "GPU metrics are off" in m]
    assert len(gpu_msgs) == 1 and "NVML" in gpu_msgs[0]
    assert not any(k.startswith("gpu/") for k in sample)


def test_a_source_that_raises_does_not_stop_sampling(tmp_path, caplog):
    class Broken:
        name = "broken"

        def sample(self, now_s, out):
            raise RuntimeError("boom")

        def facts(self):
            return {}

        def close(self):
            pass

    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        mon = ttsmon.Monitor(
            tmp_path / "run", interval=0.1, writer="event", start=False, gpus=False
        )
        real_build = mon._build_sources
        mon._build_sources = lambda: [Broken(), *real_build()]
        mon.start()
        for _ in range(3):
            sample = mon.sample_now()
        mon.close()
    assert sample["system/memory_used_bytes"] > 0
    assert [m for m in _messages(caplog) if "boom" in m] == [
        "ttsmon: broken metrics failed (RuntimeError: boom)"
    ]
