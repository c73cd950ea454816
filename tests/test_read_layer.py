"""The read layer (`tb_plugin_ttsmon.query`): one path, one encoder, non-finite data, imports.

Regression tests of issue 9's read-side defects: a NaN or Inf latest value,
facts holding NaN (also as bare tokens written by another tool), a one-point
run and values near float32's limits must not turn a route into a 500;
`restarts` counts process starts; the report shows its profile summary.
"""

from __future__ import annotations

import ast
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from tbdata import python_provider, rust_provider
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from test_plugin import _client, _get, _strict_json

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata, report
from tb_plugin_ttsmon.query import LogdirData, encode
from tb_plugin_ttsmon.recorder import writers

PACKAGE = pathlib.Path(ttsmon.__file__).parent
T0 = 1_760_000_000.0


def _foreign_facts(run_dir: str, text: str) -> None:
    """A run-facts document as another tool might write it: JSON with bare NaN tokens."""
    md = metadata.create_document_metadata(metadata.RUN_FACTS_TAG)
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=metadata.scalar_tensor(0.0).tensor_shape,
        string_val=[text.encode("utf-8")],
    )
    summary = summary_pb2.Summary()
    summary.value.add(tag=metadata.RUN_FACTS_TAG, tensor=tensor, metadata=md)
    w = EventFileWriter(run_dir)
    w.add_event(event_pb2.Event(step=0, wall_time=T0, summary=summary))
    w.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("nonfinite")
    # Latest loss NaN, latest sampled value +Inf, a -Inf in between.
    w = writers.create_writer("event", str(root / "nan-latest"))
    for i in range(20):
        loss = math.nan if i == 19 else (-math.inf if i == 7 else 1.0 / (i + 1))
        w.write(i, {"train/loss": loss, "train/learning_rate": 1e-3}, wall_time_s=T0 + i)
        cpu = math.inf if i == 19 else 40.0 + i
        w.write(
            metadata.sample_step(T0 + i + 0.5),
            {"system/cpu_percent": cpu, "sampler/duration_ms": 1.0},
            wall_time_s=T0 + i + 0.5,
        )
    w.close()
    _foreign_facts(
        str(root / "nan-latest"),
        '{"hostname": "h", "pid": 1, "host": {"memory_total_bytes": NaN}, "x": Infinity}',
    )
    # One point of everything.
    w = writers.create_writer("event", str(root / "one-point"))
    w.write(3, {"train/loss": 0.5, "inference/latency_ms": 12.0}, wall_time_s=T0)
    w.write(metadata.sample_step(T0), {"system/cpu_percent": 5.0, "gpu/0/utilization_percent": 1.0})
    w.close()
    # Values near float32's limits.
    w = writers.create_writer("event", str(root / "huge"))
    for i in range(50):
        big = 3.0e38 if i % 2 else -3.0e38
        w.write(
            metadata.sample_step(T0 + i),
            {
                "system/cpu_percent": big,
                "system/memory_used_bytes": abs(big),
                "gpu/0/utilization_percent": big,
                "gpu/0/memory_used_bytes": abs(big),
                "process/rss_bytes": 3.0e38,
            },
            wall_time_s=T0 + i,
        )
        w.write(i, {"train/loss": big, "train/steps_per_s": 3.0e38}, wall_time_s=T0 + i)
        w.write(i, {"inference/latency_ms": abs(big), "inference/rtf": 3.0e38}, wall_time_s=T0 + i)
    w.close()
    return str(root)


@pytest.fixture(scope="module", params=["python", "rust"])
def client(request, logdir):
    provider_of = python_provider if request.param == "python" else rust_provider
    with provider_of(logdir) as provider:
        yield _client(provider)


def _answer(client, route, **params):
    r = _get(client, route, **params)
    assert r.status_code == 200, (route, params, r.status_code, r.get_data(as_text=True)[:500])
    return _strict_json(r.get_data())


def test_overview_of_a_run_whose_latest_loss_is_nan(client):
    body = _answer(client, "overview", run="nan-latest")
    assert body["training"]["loss"] == "NaN"
    assert body["latest"]["system/cpu_percent"]["value"] == "Infinity"
    # The other tool's facts, bare NaN / Infinity tokens and all, come through spelled.
    assert body["facts"]["host"]["memory_total_bytes"] == "NaN"
    assert body["facts"]["x"] == "Infinity"


def test_every_analytic_of_non_finite_runs_answers(client):
    for run in ("nan-latest", "one-point", "huge"):
        _answer(client, "runs")
        _answer(client, "tags", run=run)
        _answer(client, "overview", run=run)
        _answer(client, "series", run=run, tag=["train/loss"])
        _answer(client, "export", run=run, format="json")
        _answer(client, "alerts", run=run)
        _answer(client, "anomalies", run=run)
        _answer(client, "heatmap", run=run)
        _answer(client, "findings", run=run)
        _answer(client, "profiles", run=run)
        _answer(client, "scatter", run=run, x="train/loss", y="train/loss")
    _answer(client, "correlation", run="huge", tag=["system/cpu_percent", "process/rss_bytes"])
    _answer(client, "correlation", run="one-point", tag=["system/cpu_percent", "train/loss"])


def test_series_rows_spell_non_finite_values(client):
    rows = _answer(client, "series", run="nan-latest", tag="train/loss")["series"]["train/loss"][
        "rows"
    ]
    assert rows[7][2] == "-Infinity" and rows[-1][2] == "NaN"
    assert rows[0][2] == 1.0


def test_huge_values_keep_their_magnitude(client):
    rows = _answer(client, "series", run="huge", tag="system/memory_used_bytes")["series"][
        "system/memory_used_bytes"
    ]["rows"]
    assert all(r[2] == pytest.approx(3.0e38, rel=1e-6) for r in rows)


# -- the encoder ---------------------------------------------------------------------------


def test_encoder_spells_non_finite_numbers_everywhere():
    doc = {
        "a": [1.0, math.nan, {"b": -math.inf}],
        "c": np.float64("inf"),
        "d": np.array([1.0, np.nan]),
        "e": np.int64(3),
        "f": (math.inf,),
        "g": {1, 2},
        "ok": "NaN in a string stays",
    }
    text = encode.dumps(doc)
    assert "NaN," not in text.replace('"NaN",', "")
    back = _strict_json(text.encode())
    assert back == {
        "a": [1.0, "NaN", {"b": "-Infinity"}],
        "c": "Infinity",
        "d": [1.0, "NaN"],
        "e": 3,
        "f": ["Infinity"],
        "g": [1, 2],
        "ok": "NaN in a string stays",
    }


def test_encoder_keeps_finite_documents_as_they_are():
    doc = {"x": [1, 2.5, None, True, "ሰላም"], "y": {"z": 1e-300}}
    assert json.loads(encode.dumps(doc)) == doc


# -- restarts: process starts, not Monitor starts -------------------------------------------


_CHILD = """
import sys, tb_plugin_ttsmon as ttsmon
with ttsmon.Monitor(sys.argv[1], interval=60, writer="event", gpus=False) as mon:
    mon.log_training(int(sys.argv[2]), loss=1.0)
"""


def test_restarts_count_process_starts_not_monitor_starts(tmp_path):
    run = tmp_path / "job"
    # One process, two Monitors one after the other (two `fit` calls, a notebook).
    for step in (1, 2):
        with ttsmon.Monitor(run, interval=60, writer="event", gpus=False) as mon:
            mon.log_training(step, loss=1.0)
    data = LogdirData(str(tmp_path))
    assert data.runs()[0]["restarts"] == 0
    # The job started again: a new process.
    subprocess.run([sys.executable, "-c", _CHILD, str(run), "3"], check=True, timeout=120)
    data = LogdirData(str(tmp_path))
    assert data.runs()[0]["restarts"] == 1


# -- the report ------------------------------------------------------------------------------


def test_report_shows_the_profile_summary(tmp_path):
    pytest.importorskip("xprof.convert.raw_to_tool_data")
    run = tmp_path / "profiled"
    with ttsmon.Monitor(run, interval=60, writer="event", gpus=False) as mon:
        mon.log_training(1, loss=1.0)
    session = run / "plugins" / "profile" / "2026_01_01_00_00_00"
    session.mkdir(parents=True)
    data_dir = pathlib.Path(__file__).parent / "data"
    shutil.copy(data_dir / "cpu_tiny.xplane.pb", session / "host1.xplane.pb")
    html_text = report.render_html(LogdirData(str(tmp_path)), ["profiled"], profile_wait_s=120)
    section = html_text[html_text.index('class="profiles"') :]
    section = section[: section.index("</section>")]
    assert "host1" in section
    assert "step " in section and " ms over " in section, section[:2000]
    assert "top op " in section


# -- imports run one way ------------------------------------------------------------------------


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return out


def _modules(sub: str) -> list[pathlib.Path]:
    p = PACKAGE / sub
    return sorted(p.rglob("*.py")) if p.is_dir() else [p.with_suffix(".py")]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("recorder", ("tb_plugin_ttsmon.query", "tb_plugin_ttsmon.plugin", "werkzeug")),
        ("recorder", ("tb_plugin_ttsmon.analytics", "tb_plugin_ttsmon.report")),
        ("query", ("tb_plugin_ttsmon.plugin", "tb_plugin_ttsmon.report", "tb_plugin_ttsmon.cli")),
        ("query", ("tb_plugin_ttsmon.recorder", "werkzeug", "tensorflow")),
        ("analytics", ("tb_plugin_ttsmon.query", "tb_plugin_ttsmon.plugin", "tensorboard")),
        ("report", ("tb_plugin_ttsmon.plugin",)),
        ("cli", ("tb_plugin_ttsmon.plugin",)),
        ("compat", ("tb_plugin_ttsmon.plugin",)),
    ],
)
def test_imports_run_one_way(layer, forbidden):
    bad = []
    for path in _modules(layer):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not bad, bad


def test_the_plugin_reads_through_the_read_layer_only():
    # The routes' module builds no analytics and decodes no documents itself.
    names = _imports(PACKAGE / "plugin" / "plugin.py")
    assert "tb_plugin_ttsmon.query" in names
    assert not any(n.startswith("tb_plugin_ttsmon.analytics") for n in names)
    source = (PACKAGE / "plugin" / "plugin.py").read_text(encoding="utf-8")
    assert "json.dumps" not in source  # one encoder: query.encode


def test_cli_export_spells_non_finite_values(logdir, tmp_path):
    out = tmp_path / "nan.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tb_plugin_ttsmon.cli",
            "export",
            logdir,
            "--run",
            "nan-latest",
            "--format",
            "json",
            "-o",
            str(out),
        ],
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    doc = _strict_json(out.read_bytes())
    rows = doc["series"]["train/loss"]["rows"]
    assert rows[-1][2] == "NaN"
    assert doc["facts"]["host"]["memory_total_bytes"] == "NaN"


def test_report_charts_are_the_catalogues_and_keep_host_and_process_cpu_apart(tmp_path):
    from tb_plugin_ttsmon import catalogue

    with ttsmon.Monitor(tmp_path / "sampled", interval=0.1, writer="event", gpus=False) as mon:
        for step in range(1, 6):
            mon.log_training(step, loss=1.0 / step)
        while mon.samples_taken < 4:
            time.sleep(0.05)
    data = LogdirData(str(tmp_path))
    html_text = report.render_html(data, ["sampled"], profile_wait_s=0)
    titles = re.findall(r'<img alt="([^"]*)"', html_text)
    assert "CPU utilization, all cores (100 % = all cores)" in titles
    assert "Process CPU (100 % = one core)" in titles
    # Every chart the tab would plan for these tags, and no other.
    tags = [t for t, s in data.reader.read("sampled").items() if len(s.value)]
    cat = catalogue.load()
    planned = [p.title for section in ("system", "training") for p in cat.plan(section, tags)]
    assert [t.split(" (100 % = ")[0] for t in titles] == planned
