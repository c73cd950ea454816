"""Rates and counts a user reads off the run: throughput, CPU rates, children, RTF, facts."""

from __future__ import annotations

import math
import os
import time

import psutil
from tbdata import python_provider, read_documents, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.host import HostSource, ProcessTreeSource
from tb_plugin_ttsmon.recorder.sampler import Sampler


def test_first_window_throughput_is_not_inflated(tmp_path):
    """One request half a second into a run reads as at most 2 requests/s."""
    quiet_s = 0.5
    # One sample at start, then the sampler waits 30 s: only sample_now samples.
    with ttsmon.Monitor(tmp_path / "run", interval=30.0, gpus=False) as mon:
        time.sleep(quiet_s)
        mon.log_inference(latency_ms=120.0, audio_seconds=3.0)
        stats = mon.sample_now()
    # The window is younger than its 10 s, so throughput divides by the
    # time since the Monitor started (more than quiet_s), not by the
    # moment between the request and the sample.
    assert 0 < stats["inference/requests_per_s"] <= 1 / quiet_s
    assert 0 < stats["inference/audio_s_per_s"] <= 3.0 / quiet_s


def test_rates_survive_the_wall_clock_being_set_back(monkeypatch):
    """NTP sets the clock back an hour between two samples: rates are still there."""
    samples = []
    sampler = Sampler(
        [HostSource(FaultLog()), ProcessTreeSource(FaultLog())],
        lambda wall_s, values: samples.append(values),
        interval_s=1.0,
        faults=FaultLog(),
    )
    real_time = time.time
    sampler.sample_once()
    time.sleep(0.05)
    monkeypatch.setattr(time, "time", lambda: real_time() - 3600.0)
    second = sampler.sample_once()
    monkeypatch.undo()
    assert 0.0 <= second["system/cpu_percent"] <= 100.0
    assert second["process/cpu_percent"] >= 0.0


def test_child_count_is_never_negative(monkeypatch):
    """A root process whose CPU times are denied counts no children, not -1."""
    me = os.getpid()
    real_cpu_times = psutil.Process.cpu_times

    def cpu_times(self):
        if self.pid == me:
            raise psutil.AccessDenied(me)
        return real_cpu_times(self)

    # psutil's oneshot() cache hooks, which its memoized methods carry.
    cpu_times.cache_activate = real_cpu_times.cache_activate
    cpu_times.cache_deactivate = real_cpu_times.cache_deactivate
    monkeypatch.setattr(psutil.Process, "cpu_times", cpu_times)
    source = ProcessTreeSource(FaultLog())
    for _ in range(2):
        out: dict[str, float] = {}
        source.sample(time.monotonic(), out)
        assert out["process/child_count"] >= 0.0


def test_inference_without_audio_records_no_infinite_rtf(tmp_path):
    run = tmp_path / "run"
    with ttsmon.Monitor(run, interval=None) as mon:
        mon.log_inference(1, latency_ms=80.0, audio_seconds=0)
        mon.log_inference(2, latency_ms=90.0, audio_seconds=2.0)
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
        alerts = read_documents(p, "run", metadata.ALERTS_TAG)
    assert series["inference/latency_ms"].steps == [1, 2]
    assert series["inference/audio_s"].values == [0.0, 2.0]
    rtf = series["inference/rtf"]
    assert rtf.steps == [2] and all(math.isfinite(v) for v in rtf.values)
    assert alerts == []


def test_run_facts_name_the_process_start(tmp_path):
    """Two Monitors in one process share a process start; the facts say which."""
    for _ in range(2):
        with ttsmon.Monitor(tmp_path / "run", interval=None):
            pass
        time.sleep(1.05 - time.time() % 1.0)  # file names sort by whole seconds
    with python_provider(str(tmp_path)) as p:
        facts = read_documents(p, "run", metadata.RUN_FACTS_TAG)
    assert len(facts) == 2
    started = psutil.Process().create_time()
    for doc in facts:
        assert doc["pid"] == os.getpid()
        assert doc["process_started_at_s"] == started
    starts = {(d["hostname"], d["pid"], d["process_started_at_s"]) for d in facts}
    assert len(starts) == 1
