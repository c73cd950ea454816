"""Alert rules: firing once per episode, cooldown, recovery, callbacks, and the written events."""

from __future__ import annotations

import logging
import math
import sys
import threading
import time

import pytest
from tbdata import python_provider, read_documents, rust_provider

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.alerts import DEFAULT_ALERTS, Alert, AlertEngine
from tb_plugin_ttsmon.recorder.faults import FaultLog


class _Sink:
    def __init__(self):
        self.docs = []

    def __call__(self, wall_s, doc):
        self.docs.append(doc)


def _engine(*rules, on_alert=None):
    sink = _Sink()
    return AlertEngine(list(rules), sink, on_alert, FaultLog()), sink


def _feed(engine, tag, values, start_s=1000.0, every_s=1.0, step=None):
    for i, v in enumerate(values):
        engine.observe({tag: v}, start_s + i * every_s, step)


def test_fires_once_per_episode_after_for_seconds_and_records_recovery():
    engine, sink = _engine(Alert("gpu/{gpu}/temperature_c", ">=", 85, for_seconds=3, cooldown_s=0))
    temps = [80, 86, 87, 88, 89, 90, 91, 84, 83, 86, 86, 86, 86, 80]
    _feed(engine, "gpu/1/temperature_c", temps)
    states = [(d["state"], d["wall_time_s"] - 1000.0) for d in sink.docs]
    # Over the threshold from t=1; due at t=4; back under at t=7; again t=9..12, due at 12.
    assert states == [("firing", 4.0), ("resolved", 7.0), ("firing", 12.0), ("resolved", 13.0)]
    first = sink.docs[0]
    assert first["tag"] == "gpu/1/temperature_c" and first["value"] == 89
    assert first["message"] == "gpu/1/temperature_c 89 °C >= 85 °C for 3 s"
    assert sink.docs[1]["message"].startswith("gpu/1/temperature_c back to 84 °C")


def test_cooldown_holds_back_a_repeat_and_its_recovery():
    engine, sink = _engine(Alert("system/memory_percent", ">", 95, cooldown_s=100))
    pattern = [96, 90, 97, 90, 98, 90]  # three episodes, 1 s apart
    _feed(engine, "system/memory_percent", pattern)
    assert [d["state"] for d in sink.docs] == ["firing", "resolved"]
    _feed(engine, "system/memory_percent", [99, 90], start_s=1200.0)  # after the cooldown
    assert [d["state"] for d in sink.docs] == ["firing", "resolved", "firing", "resolved"]


def test_a_relapse_in_the_cooldown_fires_when_the_cooldown_ends():
    """NaN loss, finite for a step, then NaN for good: the relapse is not silent."""
    engine, sink = _engine(Alert("train/loss", "non_finite", severity="critical", cooldown_s=60))
    engine.observe({"train/loss": math.nan}, 1000.0, 1)
    engine.observe({"train/loss": 0.5}, 1001.0, 2)
    # NaN again 9 s after the first firing, and it stays NaN.
    for i in range(10, 121):
        engine.observe({"train/loss": math.nan}, 1000.0 + i, i)
    states = [(d["state"], d["wall_time_s"] - 1000.0) for d in sink.docs]
    # The relapse at t=10 is held back until the cooldown ends at t=60,
    # where it still holds: it fires then, and only once.
    assert states == [("firing", 0.0), ("resolved", 1.0), ("firing", 60.0)]
    assert sink.docs[2]["message"] == "train/loss is NaN at step 60"


def test_a_relapse_that_ends_within_the_cooldown_stays_silent():
    engine, sink = _engine(Alert("system/memory_percent", ">", 95, cooldown_s=100))
    _feed(engine, "system/memory_percent", [96, 90] + [97] * 50 + [90] * 60)
    assert [d["state"] for d in sink.docs] == ["firing", "resolved"]


def test_alert_messages_state_bytes_in_binary_units():
    engine, sink = _engine(Alert("process/rss_bytes", ">", 8 * 2**30, cooldown_s=0))
    _feed(engine, "process/rss_bytes", [9.5 * 2**30, 512 * 2**20])
    assert [d["message"] for d in sink.docs] == [
        "process/rss_bytes 9.5 GiB > 8 GiB",
        "process/rss_bytes back to 512 MiB (threshold > 8 GiB) after 1 s",
    ]


def test_non_finite_loss_is_critical_and_logged_as_error(caplog):
    engine, sink = _engine(*DEFAULT_ALERTS)
    with caplog.at_level(logging.INFO, logger="tb_plugin_ttsmon"):
        engine.observe({"train/loss": 0.5, "train/gradient_norm": 1.0}, 1000.0, 10)
        engine.observe({"train/loss": math.nan}, 1001.0, 11)
        engine.observe({"train/loss": math.nan}, 1002.0, 12)  # same episode
        engine.observe({"train/loss": 0.4, "train/gradient_norm": math.inf}, 1003.0, 13)
    fired = [(d["rule"], d["state"], d["severity"]) for d in sink.docs]
    assert fired == [
        ("loss_not_finite", "firing", "critical"),
        ("loss_not_finite", "resolved", "critical"),
        ("gradient_norm_not_finite", "firing", "critical"),
    ]
    assert sink.docs[0]["message"] == "train/loss is NaN at step 11"
    assert sink.docs[0]["training_step"] == 11
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "ttsmon alert [critical] loss_not_finite: train/loss is NaN at step 11",
        "ttsmon alert [critical] gradient_norm_not_finite: "
        "train/gradient_norm is Infinity at step 13",
    ]


def test_rss_leak_trend_fires_on_a_steady_rise_only():
    rule = Alert("process/rss_bytes", "trend", 20.0, for_seconds=600, name="leak")
    engine, sink = _engine(rule)
    # Flat but noisy memory for 20 minutes: no alert.
    noise = [2e9 + (37 * i % 11) * 1e6 for i in range(1200)]
    _feed(engine, "process/rss_bytes", noise)
    assert sink.docs == []
    # Then a steady climb of 30 % over 10 minutes.
    engine2, sink2 = _engine(rule)
    climb = [2e9 * (1 + 0.3 * i / 600) + (37 * i % 11) * 1e5 for i in range(700)]
    _feed(engine2, "process/rss_bytes", climb)
    assert [d["state"] for d in sink2.docs] == ["firing"]
    assert "rose" in sink2.docs[0]["message"] and "leak" in sink2.docs[0]["message"]


def test_gpu_throttled_while_busy_is_derived_from_a_sample():
    engine, sink = _engine(*DEFAULT_ALERTS)
    busy_throttled = {
        "gpu/0/utilization_percent": 95.0,
        "gpu/0/throttle_thermal": 1.0,
        "gpu/0/throttle_power": 0.0,
        "gpu/1/utilization_percent": 20.0,  # idle GPU throttled: not worth an alert
        "gpu/1/throttle_thermal": 1.0,
    }
    for i in range(8):
        engine.observe(busy_throttled, 1000.0 + i, None)
    docs = [(d["rule"], d["tag"], d["state"]) for d in sink.docs]
    assert docs == [("gpu_throttled_while_busy", "gpu/0/throttle_while_busy", "firing")]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"tag": "x", "op": "=="}, ValueError),
        ({"tag": "bad tag", "op": ">"}, ValueError),
        ({"tag": "x", "op": ">", "threshold": "9"}, TypeError),
        ({"tag": "x", "op": ">", "for_seconds": -1}, ValueError),
        ({"tag": "x", "op": ">", "severity": "fatal"}, ValueError),
        ({"tag": "x", "op": "trend"}, ValueError),
        ({"tag": "x", "op": ">", "threshold": math.inf}, ValueError),
    ],
)
def test_bad_rules_are_rejected(kwargs, error):
    with pytest.raises(error):
        Alert(**kwargs)


def test_monitor_writes_alert_events_and_calls_back(tmp_path, caplog):
    got = []
    done = threading.Event()

    def on_alert(event):
        got.append(event)
        if event.state == "resolved":
            done.set()

    rule = Alert("train/loss", ">", 5.0, name="loss_high", severity="info", cooldown_s=0)
    run = tmp_path / "run"
    with ttsmon.Monitor(
        run, interval=None, writer="event", alerts=[rule], on_alert=on_alert
    ) as mon:
        for step, loss in enumerate([1.0, 9.0, 8.0, float("nan"), 2.0]):
            mon.log_training(step, loss=loss)
        assert done.wait(10)
        events = mon.alert_events
    # At the NaN step the default rule fires, and "loss_high" stops holding (NaN is
    # not > 5); rules are checked defaults first.
    assert [(e.rule, e.state) for e in events] == [
        ("loss_high", "firing"),
        ("loss_not_finite", "firing"),
        ("loss_high", "resolved"),
        ("loss_not_finite", "resolved"),
    ]
    assert [e.state for e in got if e.rule == "loss_high"] == ["firing", "resolved"]
    for provider in (python_provider, rust_provider):
        with provider(str(tmp_path)) as p:
            docs = read_documents(p, "run", metadata.ALERTS_TAG)
        assert [(d["rule"], d["state"], d["training_step"]) for d in docs] == [
            ("loss_high", "firing", 1),
            ("loss_not_finite", "firing", 3),
            ("loss_high", "resolved", 3),
            ("loss_not_finite", "resolved", 4),
        ]


def test_a_failing_callback_is_reported_once(tmp_path, caplog):
    calls = []

    def on_alert(event):
        calls.append(event)
        raise ConnectionError("webhook down")

    rule = Alert("train/loss", ">", 5.0, cooldown_s=0)
    with caplog.at_level(logging.WARNING, logger="tb_plugin_ttsmon"):
        with ttsmon.Monitor(
            tmp_path / "run", interval=None, writer="event", alerts=[rule], on_alert=on_alert
        ) as mon:
            for step, loss in enumerate([9.0, 1.0, 9.0, 1.0]):
                mon.log_training(step, loss=loss)
    assert len(calls) == 4
    reports = [r.getMessage() for r in caplog.records if "on_alert raised" in r.getMessage()]
    assert reports == [
        "ttsmon: on_alert raised ConnectionError: webhook down (later errors are not logged)"
    ]


def test_sampled_gpu_memory_alert_with_fake_nvml(tmp_path, monkeypatch):
    import fake_nvml

    fake = fake_nvml.FakeNvml(gpu_count=1)
    gpu = fake.gpus[0]
    gpu.memory_used_bytes = int(gpu.memory_total_bytes * 0.97)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    rule = Alert("gpu/{gpu}/memory_used_percent", ">", 95.0, name="gpu_full", cooldown_s=0)
    with ttsmon.Monitor(
        tmp_path / "run", interval=0.1, writer="event", alerts=[rule], default_alerts=False
    ) as mon:
        mon.sample_now()
        gpu.memory_used_bytes = int(gpu.memory_total_bytes * 0.5)
        mon.sample_now()
        events = [(e.rule, e.state, e.tag) for e in mon.alert_events]
    assert events[:2] == [
        ("gpu_full", "firing", "gpu/0/memory_used_percent"),
        ("gpu_full", "resolved", "gpu/0/memory_used_percent"),
    ]


def test_a_healthy_run_raises_no_default_alert(tmp_path):
    with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event", gpus=False) as mon:
        for step in range(50):
            mon.log_training(step, loss=1.0 / (step + 1), gradient_norm=0.5)
        while mon.samples_taken < 3:
            time.sleep(0.05)
        assert mon.alert_events == []


def test_default_alerts_can_be_turned_off(tmp_path):
    with ttsmon.Monitor(
        tmp_path / "run", interval=None, writer="event", default_alerts=False
    ) as mon:
        mon.log_training(0, loss=float("nan"))
        assert mon.alert_events == []


def test_alert_arguments_are_checked(tmp_path):
    with pytest.raises(TypeError, match=r"sequence of ttsmon\.Alert"):
        ttsmon.Monitor(tmp_path / "run", alerts=[("train/loss", ">", 1)])
    with pytest.raises(TypeError, match="on_alert must be callable"):
        ttsmon.Monitor(tmp_path / "run", on_alert="http://hook")
