"""Run comparison (`ttsmon compare`, the `compare` route) on recorder-written runs, both loaders.

Synthetic runs are written with the recorder's event writer at chosen wall
times, so the expected ratios are known; the real A/B of XLA on and off is
tests/test_compare_xla.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
from comparedata import GIB, T0, write_run
from tbdata import rust_provider
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as mdp
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

from tb_plugin_ttsmon import analytics
from tb_plugin_ttsmon.analytics import comparison as compare_lib
from tb_plugin_ttsmon.analytics.common import Columns
from tb_plugin_ttsmon.plugin import TTSMonLoader


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    write_run(str(root / "xla-off"), step_ms=10.0, gpu_gib=10.0, xla=False, seed=1)
    write_run(str(root / "xla-on"), step_ms=8.0, gpu_gib=8.0, xla=True, seed=2, val_speed=1.3)
    write_run(str(root / "same"), step_ms=10.0, gpu_gib=10.0, xla=False, seed=3, hostile=True)
    return root


def _client(provider):
    flags = type("Flags", (), {"samples_per_plugin": {"ttsmon": 10_000}})()
    ctx = base_plugin.TBContext(data_provider=provider, flags=flags, logdir="")
    app = application.TensorBoardWSGI([TTSMonLoader().load(ctx)], data_provider=provider)
    return werkzeug_test.Client(app)


@pytest.fixture(scope="module")
def clients(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    python = _client(mdp.MultiplexerDataProvider(mux, str(logdir)))
    with rust_provider(str(logdir)) as provider:
        yield {"python": python, "rust": _client(provider)}


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, clients):
    return clients[request.param]


def _compare(client, a, b):
    query = urllib.parse.urlencode({"a": a, "b": b})
    r = client.get(f"/data/plugin/ttsmon/compare?{query}")
    body = r.get_data()
    return r.status_code, json.loads(body) if r.status_code == 200 else body.decode()


def test_a_faster_run_is_named_with_its_ratio_interval_and_setup(client):
    status, body = _compare(client, "xla-off", "xla-on")
    assert status == 200
    speed = body["performance"]["step_time_ms"]
    assert speed["speedup"] == pytest.approx(1.25, rel=0.05)
    lo, hi = speed["ci"]
    assert 1.0 < lo < speed["speedup"] < hi < 1.4
    assert speed["a"]["warmup_intervals"] >= 20 - 1  # the slow first steps are left out
    assert speed["a"]["median"] == pytest.approx(10.0, rel=0.05)
    assert body["differ"] is True
    # Setup: the model's jit_compile, not the pids.
    keys = [d["key"] for d in body["setup"]]
    assert keys == ["model.amharic_tts.jit_compile"]
    gpu = body["performance"]["gpu_memory_bytes"]
    assert gpu["change"]["peak"] == pytest.approx(-0.2, abs=0.01)
    ttl = body["performance"]["time_to_loss"]
    assert ttl["tag"] == "val/loss" and ttl["change"] < -0.2
    verdict = body["verdict"]
    assert (
        verdict.startswith("xla-on is 1.2") and "faster per step than xla-off (95 % CI" in verdict
    )
    assert "uses 20 % less GPU memory at its peak" in verdict
    assert "reaches the same validation loss" in verdict and "sooner in wall time" in verdict
    assert verdict.endswith("the setup differs in: amharic_tts: XLA (jit_compile) off → on.")


def test_runs_of_the_same_speed_do_not_differ_measurably(client):
    status, body = _compare(client, "xla-off", "same")
    assert status == 200
    lo, hi = body["performance"]["step_time_ms"]["ci"]
    assert lo <= 1.0 <= hi
    assert body["differ"] is False
    assert "do not differ measurably per step" in body["verdict"]
    assert "the recorded setup is the same" in body["verdict"]
    # A NaN memory sample is left out, not spread into the answer.
    assert body["performance"]["gpu_memory_bytes"]["b"]["peak"] == pytest.approx(10 * GIB)


def test_bad_and_unknown_runs_are_readable_errors(client):
    r = client.get("/data/plugin/ttsmon/compare?a=xla-off")
    assert r.status_code == 400 and b"'a' or 'b'" in r.get_data()
    status, text = _compare(client, "xla-off", "no-such-run")
    assert status == 404 and "'no-such-run' has no ttsmon data" in text
    status, _ = _compare(client, "<img src=x onerror=alert(1)>", "xla-on")
    assert status == 404


def test_the_ratio_is_the_ratio_of_medians_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    a = 10.0 * rng.lognormal(0, 0.2, 500)
    b = 7.0 * rng.lognormal(0, 0.2, 500)
    point, lo, hi = compare_lib.bootstrap_ratio(a, b, np.random.default_rng(1), 1000)
    assert point == pytest.approx(np.median(a) / np.median(b))
    assert lo < point < hi and lo > 1.3 and hi < 1.6


def test_too_few_steps_say_so():
    def side(name):
        return analytics.RunSide(name, {"train/loss": Columns.of([T0, T0 + 1], [1.0, 0.5])})

    body = analytics.compare(side("a"), side("b"))
    assert body["performance"]["step_time_ms"]["speedup"] is None
    assert "cannot be compared per step" in body["verdict"]


def test_cli_compare_prints_text_and_json(logdir):
    cmd = [sys.executable, "-m", "tb_plugin_ttsmon.cli", "compare", str(logdir), "xla-off"]
    text = subprocess.run([*cmd, "xla-on"], capture_output=True, text=True, timeout=120)
    assert text.returncode == 0, text.stderr
    out = text.stdout
    assert "ttsmon compare: xla-on (B) against xla-off (A)" in out
    assert "amharic_tts: XLA (jit_compile)  off → on" in out
    assert "time per step, median" in out and "× speed (95 % CI" in out
    as_json = subprocess.run([*cmd, "xla-on", "--format", "json"], capture_output=True, text=True)
    assert json.loads(as_json.stdout)["setup"][0]["b"] is True
    missing = subprocess.run([*cmd, "nope"], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
