"""Threads that must not wait on each other: a slow disk, a slow source, stop().

Every test here orders its threads with events it controls (a flush that is
held, a sample that is held) and asserts on what happened in that order. The
waits have generous bounds only so that a broken recorder fails the test
instead of hanging it; they are not timing checks.
"""

from __future__ import annotations

import threading

from fake_nvml import FakeNvml
from tbdata import python_provider, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon.recorder import sampler as sampler_mod
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.nvml import NvmlSource

# How long a test waits for something that should happen at once before it
# calls the recorder stuck.
STUCK_S = 20.0


class _SlowFile:
    """The event file's lowest layer (the file object), with a flush we hold."""

    closed = False

    def __init__(self, real):
        self.real = real
        self.flush_entered = threading.Event()
        self.release = threading.Event()

    def write(self, data):
        self.real.write(data)

    def flush(self):
        self.flush_entered.set()
        assert self.release.wait(STUCK_S * 3), "the test never released the flush"
        self.real.flush()

    def close(self):
        self.real.close()


def test_a_slow_flush_never_stalls_the_training_thread(tmp_path):
    run = tmp_path / "run"
    mon = ttsmon.Monitor(run, interval=None, writer="event", gpus=False)
    try:
        mon.log_training(0, loss=1.0)
        mon.flush()
        guard = mon._writer._guard  # the file object under the event records
        slow = _SlowFile(guard._file)
        guard._file = slow

        flusher = threading.Thread(target=mon.flush, name="slow-flush")
        flusher.start()
        assert slow.flush_entered.wait(STUCK_S)  # the flush is now blocked on the disk

        trained = threading.Event()

        def train():
            for step in range(1, 4):
                mon.log_training(step, loss=1.0 / (step + 1))
            trained.set()

        trainer = threading.Thread(target=train, name="training")
        trainer.start()
        # The training thread's calls return while the flush is still held.
        assert trained.wait(STUCK_S), "log_training waited for a flush of the disk"
        assert flusher.is_alive() and not slow.release.is_set()
    finally:
        slow.release.set()
    flusher.join(STUCK_S)
    trainer.join(STUCK_S)
    mon.close()
    with python_provider(str(tmp_path)) as p:
        assert read_scalars(p, "run")["train/loss"].steps == [0, 1, 2, 3]


class _HeldSource:
    """A source whose first sample is held until released; it records overlaps."""

    name = "held"

    def __init__(self):
        self.lock = threading.Lock()
        self.inside = 0
        self.calls = 0
        self.entered = threading.Event()
        self.overlap = threading.Event()
        self.release = threading.Event()
        self.closed_while_sampling = False
        self.closed = threading.Event()

    def sample(self, now_s, out):
        with self.lock:
            self.inside += 1
            self.calls += 1
            first = self.calls == 1
            if self.inside > 1:
                self.overlap.set()
        try:
            if first:
                self.entered.set()
                # Held until released, or until a second sample runs beside it.
                self.release.wait(STUCK_S * 3)
            out["held/value"] = 1.0
        finally:
            with self.lock:
                self.inside -= 1

    def facts(self):
        return {}

    def close(self):
        with self.lock:
            if self.inside:
                self.closed_while_sampling = True
        self.closed.set()


def _monitor_with(source, run):
    mon = ttsmon.Monitor(run, interval=0.1, writer="event", gpus=False, start=False)
    mon._build_sources = lambda: [source]
    mon.start()
    return mon


def test_sample_now_never_runs_sources_beside_the_sampler_thread(tmp_path):
    source = _HeldSource()
    mon = _monitor_with(source, tmp_path / "run")
    try:
        assert source.entered.wait(STUCK_S)  # the sampler thread is inside a sample
        result: dict = {}
        caller = threading.Thread(target=lambda: result.update(mon.sample_now()))
        caller.start()
        # On a recorder without the sampling lock the second pass runs at
        # once and sets `overlap`; with it, the caller waits for the first.
        overlapped = source.overlap.wait(2.0)
        source.release.set()
        caller.join(STUCK_S)
        assert not overlapped, "sample_now ran the sources beside the sampler thread"
        assert not caller.is_alive() and result["held/value"] == 1.0
    finally:
        source.release.set()
        mon.close()
    assert not source.overlap.is_set()


def test_stop_closes_sources_only_after_the_sample_in_flight(tmp_path, monkeypatch):
    # stop() waits this long for the sample in flight before it returns.
    monkeypatch.setattr(sampler_mod, "STOP_JOIN_S", 0.5, raising=False)
    source = _HeldSource()
    mon = _monitor_with(source, tmp_path / "run")
    try:
        assert source.entered.wait(STUCK_S)
        stopper = threading.Thread(target=mon.stop)
        stopper.start()
        stopper.join(STUCK_S * 2)
        # stop() returned (a stuck source must not hang the job) but the
        # sample is still in flight: nothing may be closed under it.
        assert not stopper.is_alive()
        assert not source.closed_while_sampling
        assert not source.closed.is_set()
        source.release.set()
        # The sampler thread closes its sources once its last sample ends.
        assert source.closed.wait(STUCK_S)
        assert not source.closed_while_sampling
    finally:
        source.release.set()
        mon.close()


class _HangingNvml(FakeNvml):
    """Fake NVML whose temperature query hangs once sampling runs, until released."""

    def __init__(self):
        super().__init__(gpu_count=1)
        self.query_entered = threading.Event()
        self.release = threading.Event()
        self.inside = 0
        self.shutdown_while_querying = False

    def nvmlDeviceGetTemperature(self, handle, sensor):
        self.inside += 1
        try:
            self.query_entered.set()
            self.release.wait(STUCK_S * 3)
            return super().nvmlDeviceGetTemperature(handle, sensor)
        finally:
            self.inside -= 1

    def nvmlShutdown(self):
        if self.inside:
            self.shutdown_while_querying = True
        super().nvmlShutdown()


def test_stop_shuts_nvml_down_only_after_the_query_in_flight(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sampler_mod, "STOP_JOIN_S", 0.5, raising=False)
    fake = _HangingNvml()
    mon = ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event", start=False)
    mon._build_sources = lambda: [NvmlSource(FaultLog(), nvml=fake)]
    mon.start()
    try:
        assert fake.query_entered.wait(STUCK_S)  # a sample is inside an NVML call
        mon.close()  # returns: a hung driver must not hang the job's exit
        assert fake.shutdown_count == 0 and fake.initialised
        fake.release.set()
        deadline = threading.Event()
        for _ in range(int(STUCK_S / 0.05)):
            if fake.shutdown_count:
                break
            deadline.wait(0.05)
        assert fake.shutdown_count == 1 and not fake.shutdown_while_querying
    finally:
        fake.release.set()
        mon.close()
    # The sample that finished after close() was dropped quietly.
    assert not [r for r in caplog.records if "closed Monitor" in r.getMessage()]
