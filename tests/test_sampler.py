"""The sampler thread: first sample at once, fixed ticks, skipped ticks, no pile-up."""

from __future__ import annotations

import threading
import time

import pytest

from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.sampler import Sampler, check_interval


class _Recorder:
    def __init__(self):
        self.samples: list[tuple[float, dict]] = []
        self.lock = threading.Lock()

    def __call__(self, wall_s, values):
        with self.lock:
            self.samples.append((wall_s, values))


class _SlowSource:
    name = "slow"

    def __init__(self, delay_s):
        self.delay_s = delay_s
        self.in_flight = 0
        self.max_in_flight = 0

    def sample(self, now_s, out):
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.delay_s)
        out["x/value"] = 1.0
        self.in_flight -= 1

    def facts(self):
        return {}

    def close(self):
        pass


def _wait(pred, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pred()


def test_first_sample_at_start_and_facts_before_it():
    rec = _Recorder()
    order = []
    sampler = Sampler(
        [_SlowSource(0.0)],
        lambda w, v: (order.append("sample"), rec(w, v)),
        interval_s=30.0,
        faults=FaultLog(),
        on_start=lambda sources: order.append("facts"),
    )
    sampler.start()
    _wait(lambda: rec.samples)
    sampler.stop()
    assert order[:2] == ["facts", "sample"]  # long before the first 30 s tick


def test_slow_samples_skip_ticks_instead_of_piling_up():
    rec = _Recorder()
    source = _SlowSource(0.35)
    sampler = Sampler([source], rec, interval_s=0.1, faults=FaultLog())
    sampler.start()
    _wait(lambda: len(rec.samples) >= 4)
    sampler.stop()
    assert source.max_in_flight == 1
    skipped = [v.get("sampler/skipped_ticks_count", 0.0) for _, v in rec.samples[1:]]
    assert all(s >= 2 for s in skipped), skipped
    assert all(v["sampler/duration_ms"] >= 300 for _, v in rec.samples)


def test_ticks_follow_a_fixed_grid():
    rec = _Recorder()
    sampler = Sampler([_SlowSource(0.0)], rec, interval_s=0.1, faults=FaultLog())
    sampler.start()
    _wait(lambda: len(rec.samples) >= 6)
    sampler.stop()
    assert not any("sampler/skipped_ticks_count" in v for _, v in rec.samples[:6])


def test_stop_is_prompt_and_idempotent():
    sampler = Sampler([_SlowSource(0.0)], _Recorder(), interval_s=60.0, faults=FaultLog())
    sampler.start()
    sampler.stop()
    sampler.stop()
    assert not sampler.running


@pytest.mark.parametrize("bad", [0.0, 0.09, -1, float("nan"), float("inf")])
def test_interval_range(bad):
    with pytest.raises(ValueError, match=r"at least 0\.1 s"):
        check_interval(bad)


def test_interval_type():
    with pytest.raises(TypeError):
        check_interval("1s")
    with pytest.raises(TypeError):
        check_interval(True)
    assert check_interval(0.1) == 0.1
