"""The plugin's routes over real event files and TensorBoard's real data providers.

Event files are written by the recorder; the plugin is mounted in TensorBoard's
own WSGI app (which turns our errors into 400/404) on the Python loader's data
provider and on the Rust data server, and driven with werkzeug's test client.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shutil
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
from tb_plugin_ttsmon.plugin import TTSMonLoader
from tb_plugin_ttsmon.plugin import plugin as plugin_mod
from tb_plugin_ttsmon.recorder import writers

AMHARIC_RUN = "ሙከራ-<b>&amp;"
RTL_RUN = "تجربة-שלום"


def _strict_json(body: bytes):
    def no_constants(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(body.decode("utf-8"), parse_constant=no_constants)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    # A full run: samples, training with NaN/Inf, gradients, inference, model facts.
    with ttsmon.Monitor(root / AMHARIC_RUN, interval=0.1, writer="event", gpus=False) as mon:
        for step in range(1, 31):
            loss = {10: math.nan, 20: math.inf}.get(step, 2.0 / step)
            mon.log_training(step, loss=loss, learning_rate=1e-3)
            mon.log_gradients(step, {"enc.w": np.ones(4) * step, "dec.w": np.ones(2)})
        for i in range(40):
            mon.log_inference(latency_ms=100.0 + i, audio_seconds=2.0, stages={"gpt": 70.0})
        mon.log_model(_TinyTorchLike(), name="tiny")
        while mon.samples_taken < 4:
            time.sleep(0.05)
    # A run with another writer's long series (for downsampling) and an RTL name.
    w = writers.create_writer("event", str(root / RTL_RUN))
    rng = np.random.default_rng(0)
    values = rng.normal(10.0, 1.0, 5000)
    values[1234] = 500.0  # a spike
    values[4000] = math.nan
    for i, v in enumerate(values):
        w.write(i, {"train/loss": float(v)}, wall_time_s=1_700_000_000.0 + i)
    w.close()
    # A run with only another plugin's data (the built-in scalars plugin).
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from tb_plugin_ttsmon import metadata

    def builtin_scalar(tag, value):
        # As the built-in Scalars plugin's summary_v2 writes it, without TensorFlow.
        summary = summary_pb2.Summary()
        v = summary.value.add(tag=tag, tensor=metadata.scalar_tensor(value))
        v.metadata.CopyFrom(
            scalar_metadata.create_summary_metadata(display_name="", description="")
        )
        return summary

    other = EventFileWriter(str(root / "other-plugin"))
    for step in range(3):
        other.add_event(
            event_pb2.Event(step=step, wall_time=1.0 + step, summary=builtin_scalar("loss", 0.5))
        )
    other.close()
    # The same other-plugin data inside our full run directory, too.
    same = EventFileWriter(str(root / AMHARIC_RUN))
    same.add_event(event_pb2.Event(step=1, summary=builtin_scalar("acc", 1.0)))
    same.close()
    return str(root)


class _TinyTorchLike:
    """Enough of a torch.nn.Module for log_model (no torch needed)."""

    class _P:
        def __init__(self, n):
            self.n = n
            self.requires_grad = True
            self.dtype = "torch.float32"

        def numel(self):
            return self.n

        def element_size(self):
            return 4

    def named_parameters(self):
        return [("w", self._P(10))]

    def state_dict(self):
        return {}

    def parameters(self):
        return [self._P(10)]

    def buffers(self):
        return []

    def modules(self):
        return [self]


def _flags(**kw):
    return argparse.Namespace(samples_per_plugin={"ttsmon": 10_000}, **kw)


def _client(provider, path_prefix=""):
    ctx = base_plugin.TBContext(data_provider=provider, flags=_flags(), logdir="")
    plugin = TTSMonLoader().load(ctx)
    app = application.TensorBoardWSGI([plugin], path_prefix=path_prefix, data_provider=provider)
    return werkzeug_test.Client(app)


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, logdir):
    if request.param == "python":
        mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
        mux.AddRunsFromDirectory(logdir)
        mux.Reload()
        yield _client(mdp.MultiplexerDataProvider(mux, logdir))
    else:
        with rust_provider(logdir) as provider:
            yield _client(provider)


def _get(client, route, **params):
    query = urllib.parse.urlencode(params, doseq=True)
    return client.get(f"/data/plugin/ttsmon/{route}" + (f"?{query}" if query else ""))


def _ok(client, route, **params):
    r = _get(client, route, **params)
    assert r.status_code == 200, (r.status_code, r.get_data(as_text=True))
    return _strict_json(r.get_data())


# -- runs and tags ---------------------------------------------------------------


def test_runs_lists_only_ttsmon_runs_with_their_facts(client):
    runs = {r["run"]: r for r in _ok(client, "runs")["runs"]}
    assert set(runs) == {AMHARIC_RUN, RTL_RUN}
    full = runs[AMHARIC_RUN]
    assert full["hostname"] == full["facts"]["hostname"] and full["hostname"]
    assert {"system", "process", "train", "gradients", "inference", "sampler"} <= set(
        full["groups"]
    )
    assert "gpu" not in full["groups"]
    assert full["restarts"] == 0 and full["started_at_s"] > 1.7e9
    assert runs[RTL_RUN]["facts"] is None and runs[RTL_RUN]["groups"] == ["train"]


def test_tags_have_units_and_kinds_and_no_foreign_tags(client):
    tags = {t["tag"]: t for t in _ok(client, "tags", run=AMHARIC_RUN)["tags"]}
    assert "acc" not in tags  # the built-in scalars plugin's tag in the same run
    assert tags["system/memory_used_bytes"]["unit"] == "B"
    assert tags["system/memory_used_bytes"]["kind"] == "gauge"
    assert tags["inference/latency_ms"] == {
        **tags["inference/latency_ms"],
        "unit": "ms",
        "kind": "event",
        "group": "inference",
    }
    assert tags["train/loss"]["max_step"] == 30


# -- series ------------------------------------------------------------------


def test_series_of_several_tags_with_non_finite_values(client):
    body = _ok(client, "series", run=AMHARIC_RUN, tag=["train/loss", "train/learning_rate"])
    loss = body["series"]["train/loss"]
    assert loss["total"] == 30 and len(loss["rows"]) == 30
    steps = [r[1] for r in loss["rows"]]
    assert steps == list(range(1, 31))
    by_step = {r[1]: r[2] for r in loss["rows"]}
    assert by_step[10] == "NaN" and by_step[20] == "Infinity"
    assert by_step[1] == pytest.approx(2.0)
    assert all(isinstance(r[0], float) and r[0] > 1.7e9 for r in loss["rows"])
    assert body["series"]["train/learning_rate"]["rows"][0][2] == pytest.approx(1e-3)


def test_series_downsampling_keeps_spikes_and_nan(client):
    body = _ok(client, "series", run=RTL_RUN, tag="train/loss", points=200)
    loss = body["series"]["train/loss"]
    assert loss["total"] == 5000
    rows = loss["rows"]
    assert 150 <= len(rows) <= 202  # 200, a NaN bucket's point, and always the last point
    assert rows[-1][1] == 4999
    by_step = {r[1]: r[2] for r in rows}
    assert by_step[1234] == pytest.approx(500.0)
    assert by_step[4000] == "NaN"
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"tag": "train/loss"}, 400, "missing query parameter 'run'"),
        ({"run": AMHARIC_RUN}, 400, "missing query parameter 'tag'"),
        ({"run": AMHARIC_RUN, "tag": "train/loss", "points": "abc"}, 400, "must be an integer"),
        ({"run": AMHARIC_RUN, "tag": "train/loss", "points": "1"}, 400, "between 2 and 100000"),
        ({"run": AMHARIC_RUN, "tag": "train/loss", "points": "1000001"}, 400, "between"),
        ({"run": AMHARIC_RUN, "tag": ["t"] * 201}, 400, "at most 200 tags"),
        ({"run": "nope", "tag": "train/loss"}, 404, "run 'nope' has no ttsmon data"),
        ({"run": AMHARIC_RUN, "tag": "acc"}, 404, "has no ttsmon series 'acc'"),
        ({"run": "other-plugin", "tag": "loss"}, 404, "no ttsmon data"),
    ],
)
def test_series_errors_are_400_or_404_with_a_message(client, params, status, words):
    r = _get(client, "series", **params)
    assert r.status_code == status
    assert words in r.get_data(as_text=True)
    assert r.headers["Content-Type"].startswith("text/plain")


# -- overview and export -----------------------------------------------------


def test_overview(client):
    body = _ok(client, "overview", run=AMHARIC_RUN)
    assert body["facts"]["pid"] == os.getpid()
    assert body["model"]["name"] == "tiny" and body["model"]["parameter_count"] == 10
    mem = body["latest"]["system/memory_used_bytes"]
    assert mem["unit"] == "B" and mem["value"] > 0
    assert not any(k.startswith(("train/", "inference/")) for k in body["latest"])
    assert body["sample_count"] >= 4
    assert 0 < body["duration_s"] < 600
    assert body["training"]["last_step"] == 30
    assert body["training"]["loss"] == pytest.approx(2.0 / 30)
    assert body["inference"]["requests"] == 40


def test_overview_of_unknown_run_is_404(client):
    assert _get(client, "overview", run="nope").status_code == 404
    assert _get(client, "overview").status_code == 400


def test_export_csv(client):
    r = _get(client, "export", run=AMHARIC_RUN, format="csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="ttsmon-')
    assert (
        "filename*=UTF-8''" + urllib.parse.quote(f"ttsmon-{AMHARIC_RUN}.csv", safe="")
        in disposition
    )
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    loss = [row for row in rows if row["tag"] == "train/loss"]
    assert len(loss) == 30
    values = {int(row["step"]): float(row["value"]) for row in loss}
    assert math.isnan(values[10]) and values[20] == math.inf and values[2] == 1.0
    assert {row["tag"] for row in rows} >= {"system/memory_used_bytes", "inference/rtf"}


def test_export_json(client):
    r = _get(client, "export", run=AMHARIC_RUN, format="json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    body = _strict_json(r.get_data())
    assert body["run"] == AMHARIC_RUN and body["facts"]["pid"] == os.getpid()
    assert len(body["series"]["train/loss"]["rows"]) == 30
    assert _get(client, "export", run=AMHARIC_RUN, format="xml").status_code == 400


def test_both_loaders_serve_the_same_data(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    py = _client(mdp.MultiplexerDataProvider(mux, logdir))
    with rust_provider(logdir) as provider:
        rs = _client(provider)
        for route, params in [
            ("tags", {"run": AMHARIC_RUN}),
            ("series", {"run": AMHARIC_RUN, "tag": ["train/loss", "inference/latency_ms"]}),
            ("series", {"run": RTL_RUN, "tag": "train/loss", "points": 100}),
            ("export", {"run": AMHARIC_RUN, "format": "json"}),
        ]:
            assert _ok(py, route, **params) == _ok(rs, route, **params), route


# -- static files ------------------------------------------------------------------


@pytest.fixture
def static_client(tmp_path, monkeypatch, logdir):
    static = tmp_path / "pkg" / "static"
    static.mkdir(parents=True)
    (static / "index.js").write_text("export function render() {}\n")
    (static / "index.css").write_text("body { margin: 0 }\n")
    (tmp_path / "pkg" / "secret.txt").write_text("TOP-SECRET-CONTENT")
    monkeypatch.setattr(plugin_mod, "STATIC_DIR", str(static))
    mux = plugin_event_multiplexer.EventMultiplexer()
    return _client(mdp.MultiplexerDataProvider(mux, logdir))


def test_static_files_with_mime_types(static_client):
    r = static_client.get("/data/plugin/ttsmon/index.js")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert b"export function render" in r.get_data()
    r = static_client.get("/data/plugin/ttsmon/static/index.css")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    "path",
    [
        "static/../secret.txt",
        "static/..%2fsecret.txt",
        "static/%2e%2e/secret.txt",
        "static/%2e%2e%2fsecret.txt",
        "static/..\\secret.txt",
        "static/..%5csecret.txt",
        "static//etc/passwd",
        "static/%2fetc%2fpasswd",
        "static/",
        "static/nope.js",
        "secret.txt",
        "static/index.js/",
    ],
)
def test_nothing_outside_static_is_reachable(static_client, path):
    r = static_client.get("/data/plugin/ttsmon/" + path)
    assert r.status_code == 404
    assert b"TOP-SECRET-CONTENT" not in r.get_data()


def test_frontend_metadata_and_activity(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer()
    ctx = base_plugin.TBContext(data_provider=mdp.MultiplexerDataProvider(mux, logdir))
    plugin = TTSMonLoader().load(ctx)
    meta = plugin.frontend_metadata()
    assert meta.es_module_path == "/index.js" and meta.tab_name == "TTS Monitor"
    assert plugin.is_active() is False  # TensorBoard decides from list_plugins()


# -- flags and damaged files -------------------------------------------------------


def test_fix_flags_default_and_user_value():
    flags = argparse.Namespace(samples_per_plugin={})
    TTSMonLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"ttsmon": 5_000}
    flags = argparse.Namespace(samples_per_plugin={"ttsmon": 50, "images": 3})
    TTSMonLoader().fix_flags(flags)
    assert flags.samples_per_plugin == {"ttsmon": 50, "images": 3}


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_truncated_event_file_serves_what_was_written(tmp_path, loader):
    """A job killed mid-write leaves a record cut short: the rest is served."""
    run = tmp_path / "killed"
    w = writers.create_writer("event", str(run))
    for step in range(100):
        w.write(step, {"train/loss": float(step)})
    w.close()
    (path,) = [run / n for n in os.listdir(run)]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    if loader == "python":
        mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
        mux.AddRunsFromDirectory(str(tmp_path))
        mux.Reload()
        body = _ok(
            _client(mdp.MultiplexerDataProvider(mux, str(tmp_path))),
            "series",
            run="killed",
            tag="train/loss",
        )
    else:
        with rust_provider(str(tmp_path)) as provider:
            body = _ok(_client(provider), "series", run="killed", tag="train/loss")
    steps = [r[1] for r in body["series"]["train/loss"]["rows"]]
    assert steps == list(range(99))


def test_copy_of_the_logdir_under_a_path_prefix(logdir, tmp_path):
    shutil.copytree(logdir, tmp_path / "copy")
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
    mux.AddRunsFromDirectory(str(tmp_path / "copy"))
    mux.Reload()
    client = _client(mdp.MultiplexerDataProvider(mux, str(tmp_path)), path_prefix="/tb")
    r = client.get("/tb/data/plugin/ttsmon/runs")
    assert r.status_code == 200
    assert {x["run"] for x in _strict_json(r.get_data())["runs"]} == {AMHARIC_RUN, RTL_RUN}
