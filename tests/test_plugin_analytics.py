"""The analytics routes over recorder-written event files, on both of TensorBoard's loaders.

One run is a short real `Monitor` run; the other is written with the event
writer: 20 minutes of samples and training with planted situations (a loss
spike, NaN losses, a latency regression, a GPU collapse while training, an
RSS leak, thermal throttling, GPU memory headroom) and two alert events.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse

import numpy as np
import pytest
from tbdata import rust_provider
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as mdp
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import analytics as A
from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.plugin import TTSMonLoader
from tb_plugin_ttsmon.recorder import writers

LIVE_RUN = "live-ሙከራ"
SYNTH_RUN = "synthetic"
T0 = 1_700_000_000.0
SAMPLES = 1200  # one per second: 20 minutes
TRAIN_STEPS = 2400  # two per second

ALERTS = [
    {
        "wall_time_s": T0 + 300.0,
        "training_step": 600,
        "rule": "gpu_memory_high",
        "tag": "gpu/0/memory_used_percent",
        "op": ">",
        "threshold": 95.0,
        "value": 97.1,
        "for_s": 30.0,
        "severity": "warning",
        "state": "firing",
        "message": "GPU 0 memory 97.1 % > 95 % for 30 s",
    },
    {
        "wall_time_s": T0 + 400.0,
        "training_step": 800,
        "rule": "gpu_memory_high",
        "tag": "gpu/0/memory_used_percent",
        "op": ">",
        "threshold": 95.0,
        "value": 81.0,
        "for_s": 30.0,
        "severity": "warning",
        "state": "resolved",
        "message": "GPU 0 memory back to 81.0 % (<= 95 %) after 100 s",
    },
]


def _strict_json(body: bytes):
    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(body.decode("utf-8"), parse_constant=no_constants)


def _write_synthetic(run_dir: str) -> None:
    rng = np.random.default_rng(0)
    w = writers.create_writer("event", run_dir)
    t = np.arange(SAMPLES, dtype=float)
    util = np.clip(rng.normal(90.0, 3.0, SAMPLES), 0, 100)
    util[600:700] = rng.normal(5.0, 1.0, 100)  # input stall while training goes on
    throttle = np.zeros(SAMPLES)
    throttle[100:200] = 1.0
    for i in range(SAMPLES):
        wall = T0 + t[i]
        w.write(
            metadata.sample_step(wall),
            {
                "system/cpu_percent": float(min(130.0 - util[i] + rng.normal(0, 1), 100.0)),
                "gpu/0/utilization_percent": float(util[i]),
                "gpu/0/memory_used_bytes": 49.6e9,
                "gpu/0/memory_total_bytes": 80e9,
                "gpu/0/throttle_thermal": float(throttle[i]),
                "gpu/0/temperature_c": 86.0 if throttle[i] else 70.0,
                "process/rss_bytes": 2e9 + 4e5 * t[i] + rng.normal(0, 5e6),
                "sampler/duration_ms": 3.0,
            },
            wall_time_s=wall,
        )
    loss = 0.5 + 3.0 * np.exp(-np.arange(TRAIN_STEPS) / 800) + rng.normal(0, 0.03, TRAIN_STEPS)
    loss[1000] = 40.0
    loss[1500:1503] = math.nan
    for step in range(TRAIN_STEPS):
        w.write(
            step,
            {"train/loss": float(loss[step]), "train/steps_per_s": 2.0 + rng.normal(0, 0.05)},
            wall_time_s=T0 + step * 0.5,
        )
    latency = rng.normal(300.0, 20.0, 300)
    latency[200:] += 200.0
    for i in range(300):
        w.write(i, {"inference/latency_ms": float(latency[i])}, wall_time_s=T0 + 4.0 * i)
    for doc in ALERTS:
        wall = doc["wall_time_s"]
        w.write(
            metadata.sample_step(wall), {}, documents={metadata.ALERTS_TAG: doc}, wall_time_s=wall
        )
    w.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("analytics")
    with ttsmon.Monitor(root / LIVE_RUN, interval=0.1, writer="event", gpus=False) as mon:
        for step in range(1, 41):
            mon.log_training(step, loss=math.nan if step == 30 else 3.0 / step)
        for i in range(10):
            mon.log_inference(latency_ms=100.0 + i, audio_seconds=2.0)
        while mon.samples_taken < 4:
            time.sleep(0.02)
    _write_synthetic(str(root / SYNTH_RUN))
    return str(root)


def _client(provider):
    flags = type("Flags", (), {"samples_per_plugin": {"ttsmon": 10_000}})()
    ctx = base_plugin.TBContext(data_provider=provider, flags=flags, logdir="")
    plugin = TTSMonLoader().load(ctx)
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return werkzeug_test.Client(app)


def _python_client(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    return _client(mdp.MultiplexerDataProvider(mux, logdir))


@pytest.fixture(scope="module")
def clients(logdir):
    with rust_provider(logdir) as provider:
        yield {"python": _python_client(logdir), "rust": _client(provider)}


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, clients):
    return clients[request.param]


def _get(client, route, **params):
    query = urllib.parse.urlencode(params, doseq=True)
    return client.get(f"/data/plugin/ttsmon/{route}" + (f"?{query}" if query else ""))


def _ok(client, route, **params):
    r = _get(client, route, **params)
    assert r.status_code == 200, (r.status_code, r.get_data(as_text=True))
    assert r.headers["Content-Type"].startswith("application/json")
    return _strict_json(r.get_data())


# -- alerts ------------------------------------------------------------------------------


def test_alerts_are_the_recorded_events_oldest_first(client):
    body = _ok(client, "alerts", run=SYNTH_RUN)
    assert body["run"] == SYNTH_RUN
    assert [a["state"] for a in body["alerts"]] == ["firing", "resolved"]
    for got, want in zip(body["alerts"], ALERTS):
        assert got == want


def test_alerts_of_a_live_run_have_the_documented_fields(client):
    # The recorder's default rules (being written alongside) may fire on the NaN loss.
    alerts = _ok(client, "alerts", run=LIVE_RUN)["alerts"]
    fields = set(ALERTS[0])
    for a in alerts:
        assert set(a) == fields
        assert a["severity"] in ("info", "warning", "critical")
        assert a["state"] in ("firing", "resolved")
    walls = [a["wall_time_s"] for a in alerts]
    assert walls == sorted(walls)
    nan = [a for a in alerts if a["tag"] == "train/loss" and a["state"] == "firing"]
    assert all(a["severity"] == "critical" and a["training_step"] == 30 for a in nan)


# -- anomalies ---------------------------------------------------------------------------


def test_anomalies_find_every_planted_situation(client):
    body = _ok(client, "anomalies", run=SYNTH_RUN)
    found = {(a["tag"], a["type"]): a for a in body["anomalies"]}
    assert set(found) == {
        ("train/loss", "spike"),
        ("train/loss", "non_finite"),
        ("inference/latency_ms", "level_shift"),
        ("gpu/0/utilization_percent", "collapse"),
        ("process/rss_bytes", "leak"),
    }
    spike = found["train/loss", "spike"]
    assert (spike["start_step"], spike["end_step"], spike["value"]) == (1000, 1000, 40.0)
    nan = found["train/loss", "non_finite"]
    assert (nan["start_step"], nan["end_step"], nan["severity"]) == (1500, 1502, "critical")
    assert nan["value"] == "NaN"  # non-finite numbers as strings
    assert abs(found["inference/latency_ms", "level_shift"]["start_step"] - 200) <= 5
    collapse = found["gpu/0/utilization_percent", "collapse"]
    assert collapse["start_wall_time_s"] == T0 + 600 and collapse["end_wall_time_s"] == T0 + 699
    assert collapse["start_step"] == metadata.sample_step(T0 + 600)
    walls = [a["start_wall_time_s"] for a in body["anomalies"]]
    assert walls == sorted(walls)
    assert body["parameters"]["spike_ratio"] == 5.0 and body["parameters"]["window"] == 25


def test_anomalies_of_chosen_tags_still_see_training(client):
    body = _ok(client, "anomalies", run=SYNTH_RUN, tag="gpu/0/utilization_percent")
    assert [a["type"] for a in body["anomalies"]] == ["collapse"]
    assert _ok(client, "anomalies", run=SYNTH_RUN, tag="system/cpu_percent")["anomalies"] == []


def test_anomalies_of_a_live_run(client):
    body = _ok(client, "anomalies", run=LIVE_RUN)
    (nan,) = [a for a in body["anomalies"] if a["type"] == "non_finite"]
    assert nan["tag"] == "train/loss" and nan["start_step"] == 30


# -- heatmap -----------------------------------------------------------------------------


def test_heatmap_rows_scaled_to_limits(client):
    body = _ok(client, "heatmap", run=SYNTH_RUN, buckets=20)
    # 20 minutes in at most 20 buckets: 2-minute buckets on the clock's 2-minute marks.
    assert body["bucket_s"] == 120.0
    assert body["start_wall_time_s"] == 1_699_999_920.0 <= T0
    assert body["end_wall_time_s"] == 1_699_999_920.0 + 11 * 120.0 >= T0 + SAMPLES - 1
    rows = {r["tag"]: r for r in body["rows"]}
    assert "gpu/0/memory_total_bytes" not in rows
    assert not any(t.startswith(("train/", "inference/")) for t in rows)
    mem = rows["gpu/0/memory_used_bytes"]
    assert (mem["scale"], mem["unit"], mem["label"]) == ("limit", "B", "GPU 0 memory used")
    assert mem["limit"] == pytest.approx(80e9, rel=1e-6)
    assert mem["normalized"] == pytest.approx([0.62] * 11, abs=1e-3)
    util = rows["gpu/0/utilization_percent"]
    assert len(util["values"]) == 11 and util["limit"] == 100.0
    # The planted collapse shows as a darker bucket (2-minute means blur it).
    assert min(util["normalized"]) < 0.6 < 0.8 < max(util["normalized"])
    assert rows["process/rss_bytes"]["scale"] == "range"


def test_heatmap_of_a_live_run_uses_host_memory_from_facts(client):
    body = _ok(client, "heatmap", run=LIVE_RUN)
    rows = {r["tag"]: r for r in body["rows"]}
    assert body["bucket_s"] in A.NICE_BUCKETS_S
    assert 2 <= len(rows["system/cpu_percent"]["values"]) <= 120
    assert rows["system/memory_used_bytes"]["scale"] == "limit"


# -- correlation and scatter -------------------------------------------------------------


def test_correlation_on_the_sample_grid(client):
    tags = ["system/cpu_percent", "gpu/0/utilization_percent", "process/rss_bytes"]
    body = _ok(client, "correlation", run=SYNTH_RUN, tag=tags)
    assert body["tags"] == tags and body["grid_s"] == pytest.approx(1.0)
    assert body["n"] == [[SAMPLES] * 3] * 3
    assert body["pearson"][0][1] < -0.95 and body["spearman"][0][1] < -0.5
    assert body["pearson"][0][0] == 1.0
    assert body["pearson"][1][0] == body["pearson"][0][1]


def test_scatter_of_one_cell(client):
    body = _ok(
        client,
        "scatter",
        run=SYNTH_RUN,
        x="system/cpu_percent",
        y="gpu/0/utilization_percent",
        points=100,
    )
    assert (body["x_unit"], body["y_unit"], body["n"]) == ("%", "%", SAMPLES)
    assert len(body["points"]) == 100 and body["points"][0][0] == T0
    assert body["pearson"] < -0.95
    wall, x, y = body["points"][-1]
    assert wall == T0 + SAMPLES - 1 and x == pytest.approx(130 - y, abs=5)


# -- findings ----------------------------------------------------------------------------


def test_findings_of_the_synthetic_run(client):
    body = _ok(client, "findings", run=SYNTH_RUN)
    by_id = {f["id"]: f for f in body["findings"]}
    assert set(by_id) == {"non_finite_loss", "gpu_memory_headroom", "gpu_thermal_throttling"}
    assert body["findings"][0]["id"] == "non_finite_loss"
    assert by_id["gpu_memory_headroom"]["text"] == (
        "Peak GPU 0 memory 62 % (46.2 GiB of 74.5 GiB): there is room for a larger batch."
    )
    assert "86 °C" in by_id["gpu_thermal_throttling"]["text"]


def test_findings_of_a_short_live_run(client):
    body = _ok(client, "findings", run=LIVE_RUN)
    assert [f["id"] for f in body["findings"]] == ["non_finite_loss"]


# -- errors and both loaders -------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "params", "status", "words"),
    [
        ("alerts", {}, 400, "missing query parameter 'run'"),
        ("alerts", {"run": "nope"}, 404, "run 'nope' has no ttsmon data"),
        ("anomalies", {"run": "nope"}, 404, "no ttsmon data"),
        ("anomalies", {"run": SYNTH_RUN, "tag": "nope"}, 404, "has no ttsmon series 'nope'"),
        ("heatmap", {"run": SYNTH_RUN, "buckets": "1"}, 400, "between 2 and 2000"),
        ("heatmap", {"run": SYNTH_RUN, "buckets": "x"}, 400, "must be an integer"),
        ("heatmap", {"run": "nope"}, 404, "no ttsmon data"),
        ("correlation", {"run": SYNTH_RUN, "tag": "train/loss"}, 400, "2 to 40"),
        ("correlation", {"run": SYNTH_RUN, "tag": ["train/loss"] * 2}, 400, "got 1"),
        ("correlation", {"run": SYNTH_RUN, "tag": [f"t{i}" for i in range(41)]}, 400, "2 to 40"),
        ("correlation", {"run": SYNTH_RUN, "tag": ["train/loss", "x"]}, 404, "series 'x'"),
        ("scatter", {"run": SYNTH_RUN, "x": "train/loss"}, 400, "missing query parameter"),
        ("scatter", {"run": SYNTH_RUN, "x": "train/loss", "y": "q"}, 404, "series 'q'"),
        ("scatter", {"run": SYNTH_RUN, "x": "a", "y": "b", "points": "0"}, 400, "between"),
        ("findings", {"run": "nope"}, 404, "no ttsmon data"),
    ],
)
def test_errors_are_400_or_404_with_a_message(client, route, params, status, words):
    r = _get(client, route, **params)
    assert r.status_code == status, r.get_data(as_text=True)
    assert words in r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")


def test_edge_queries_never_answer_500(client):
    for route, params in [
        ("correlation", {"run": LIVE_RUN, "tag": ["train/loss", "inference/latency_ms"]}),
        ("scatter", {"run": LIVE_RUN, "x": "train/loss", "y": "train/loss"}),
        ("scatter", {"run": LIVE_RUN, "x": "train/loss", "y": "inference/latency_ms"}),
        ("anomalies", {"run": LIVE_RUN, "tag": ["train/loss", "train/loss"]}),
        ("heatmap", {"run": LIVE_RUN, "buckets": "2000"}),
    ]:
        _ok(client, route, **params)


def test_both_loaders_serve_the_same_analytics(clients):
    py, rs = clients["python"], clients["rust"]
    for route, params in [
        ("alerts", {"run": SYNTH_RUN}),
        ("anomalies", {"run": SYNTH_RUN}),
        ("heatmap", {"run": SYNTH_RUN, "buckets": 50}),
        ("correlation", {"run": SYNTH_RUN, "tag": ["system/cpu_percent", "process/rss_bytes"]}),
        ("scatter", {"run": SYNTH_RUN, "x": "system/cpu_percent", "y": "process/rss_bytes"}),
        ("findings", {"run": SYNTH_RUN}),
    ]:
        assert _ok(py, route, **params) == _ok(rs, route, **params), route
