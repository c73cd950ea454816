"""Profiler sessions: `GET profiles`, the xprof adapter, its cache and deep links.

The adapter tests run on a small CPU capture kept in `tests/data/` (no
TensorFlow needed); one test captures a tiny model with TensorFlow itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.parse

import pytest
from conftest import require
from tensorboard.backend import application
from tensorboard.backend.event_processing import data_provider as mdp
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug import test as werkzeug_test

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.plugin import TTSMonLoader
from tb_plugin_ttsmon.query import profiles
from tb_plugin_ttsmon.recorder import writers

FIXTURE = os.path.join(os.path.dirname(__file__), "data", "cpu_tiny.xplane.pb")
RUN = "amharic-tts/ሙከራ@1"
SESSION = "2026_11_28_15_01_02"
BROKEN = "2026_11_28_16_00_00"
DOC_ONLY = "2026_11_28_17_00_00"
HOST = "gpu@node-3"

try:
    import xprof.convert.raw_to_tool_data as xprof
except ImportError:  # pragma: no cover - depends on the machine
    xprof = None
require(xprof is not None, "xprof (the tensorboard-plugin-profile package)")


def _write_profile_doc(run_dir: str, doc: dict) -> None:
    w = writers.create_writer("event", run_dir)
    w.write(int(time.time() * 1000), {}, documents={metadata.PROFILE_TAG: doc})
    w.close()


def _session_doc(session: str, hosts: list[str], **kw) -> dict:
    return {
        "session": session,
        "session_dir": f"plugins/profile/{session}",
        "hosts": hosts,
        "trigger": "steps",
        "start_wall_time_s": 1795874462.1,
        "stop_wall_time_s": 1795874463.9,
        "start_step": 100,
        "stop_step": 105,
        "status": "ok",
        "files": [],
        **kw,
    }


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    run_dir = root / RUN
    good = run_dir / "plugins" / "profile" / SESSION
    good.mkdir(parents=True)
    shutil.copy(FIXTURE, good / f"{HOST}.xplane.pb")
    # What the Profile plugin and xprof leave in session folders: not hosts.
    (good / ".cached_tools.json").write_text("{}")
    (good / "NO_MODULE.hlo_proto.pb").write_bytes(b"")
    broken = run_dir / "plugins" / "profile" / BROKEN
    broken.mkdir(parents=True)
    (broken / "zero.xplane.pb").write_bytes(b"")
    (broken / "garbage.xplane.pb").write_bytes(b"\x00not a proto" * 100)
    _write_profile_doc(str(run_dir), _session_doc(SESSION, [HOST]))
    _write_profile_doc(
        str(run_dir), _session_doc(DOC_ONLY, ["lost"], status="failed", error="disk full")
    )
    # A run TensorBoard knows, without captures.
    _write_profile_doc(str(root / "plain"), _session_doc("x", []))
    return str(root)


@pytest.fixture(scope="module")
def provider(logdir):
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 10_000})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    return mdp.MultiplexerDataProvider(mux, logdir)


def _client(provider, logdir):
    flags = argparse.Namespace(samples_per_plugin={"ttsmon": 10_000})
    ctx = base_plugin.TBContext(data_provider=provider, flags=flags, logdir=logdir)
    plugin = TTSMonLoader().load(ctx)
    app = application.TensorBoardWSGI([plugin], data_provider=provider)
    return werkzeug_test.Client(app), plugin


@pytest.fixture
def client(provider, logdir):
    c, plugin = _client(provider, logdir)
    yield c
    plugin._profile_cache.wait(30)


def _get(client, **params):
    query = urllib.parse.urlencode(params)
    return client.get("/data/plugin/ttsmon/profiles" + (f"?{query}" if query else ""))


def _profiles(client, run=RUN, settle=True):
    """The answer once no host is pending any more (settle=False: the first answer)."""
    deadline = time.monotonic() + 60
    while True:
        r = _get(client, run=run)
        assert r.status_code == 200, r.get_data(as_text=True)
        body = json.loads(r.get_data(as_text=True))
        pending = [h for s in body["sessions"] for h in s["hosts"] if h["status"] == "pending"]
        if not settle or not pending or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def _sessions(body):
    return {s["session"]: s for s in body["sessions"]}


# -- deep links ----------------------------------------------------------------


def test_deep_link_format_encodes_run_session_host_and_at_sign():
    link = profiles.profile_link("amharic-tts/ሙከራ-1", SESSION, "trace_viewer", "gpu@node-3")
    assert link == (
        "../../../?run=amharic-tts%2F%E1%88%99%E1%8A%A8%E1%88%AB-1%2F2026_11_28_15_01_02"
        "&tag=trace_viewer&host=gpu%40node-3#profile"
    )
    # The Profile plugin names sessions of the logdir root without a run.
    assert profiles.profile_link(".", "s1", "overview_page", "h").startswith(
        "../../../?run=s1&tag=overview_page&host=h#"
    )
    # Relative to <root>/data/plugin/ttsmon/, under any --path_prefix.
    base = "http://x/prefix/data/plugin/ttsmon/"
    assert urllib.parse.urljoin(base, link).startswith("http://x/prefix/?run=")


# -- the route -------------------------------------------------------------------


def test_session_from_document_and_folder_has_hosts_summary_and_links(client):
    body = _profiles(client)
    assert body["run"] == RUN
    assert body["xprof"]["available"] is True and body["xprof"]["version"]
    assert list(_sessions(body)) == [SESSION, BROKEN, DOC_ONLY]  # oldest first
    s = _sessions(body)[SESSION]
    assert s["trigger"] == "steps" and (s["start_step"], s["stop_step"]) == (100, 105)
    assert s["start_wall_time_s"] == pytest.approx(1795874462.1)
    assert s["capture_status"] == "ok"
    # Only the .xplane.pb is a host; the cache files beside it are not.
    assert s["hosts"] == [
        {
            "host": HOST,
            "file": f"{HOST}.xplane.pb",
            "size_bytes": os.path.getsize(FIXTURE),
            "status": "ok",
            "error": None,
        }
    ]
    summary = s["summary"]
    assert summary["host"] == HOST
    assert summary["steps"] > 0
    assert summary["step_time_ms_mean"] > 0 and summary["step_time_ms_stddev"] >= 0
    assert summary["compute_ms_mean"] > 0 and summary["input_ms_mean"] >= 0
    assert summary["input_percent"] == pytest.approx(
        100 * summary["input_ms_mean"] / summary["step_time_ms_mean"]
    )
    assert summary["verdict"] in ("input_bound", "moderately_input_bound", "not_input_bound")
    assert summary["hardware_type"] == "CPU_ONLY"
    # CPU-only capture: no device numbers, no memory profile.
    assert summary["device_compute_percent"] is None
    assert summary["peak_memory_bytes"] is None
    ops = summary["top_ops"]
    assert ops and all("IDLE" not in (op["name"], op["type"]) for op in ops)
    assert "MatMul" in {op["name"] for op in ops}
    times = [op["self_time_ms"] for op in ops]
    assert times == sorted(times, reverse=True) and times[0] > 0
    assert sum(op["self_time_percent"] for op in ops) <= 100.0 + 1e-6
    for sug in summary["suggestions"]:
        assert any(ch.isdigit() for ch in sug["text"])  # each cites its numbers
    quoted_run = urllib.parse.quote(f"{RUN}/{SESSION}", safe="")
    assert s["links"]["memory_profile"] == (
        f"../../../?run={quoted_run}&tag=memory_profile&host=gpu%40node-3#profile"
    )
    # The Profile plugin's name for the trace viewer of .xplane.pb captures.
    assert "&tag=trace_viewer%40&" in s["links"]["trace_viewer"]
    assert set(s["links"]) == {
        "overview_page",
        "trace_viewer",
        "memory_profile",
        "framework_op_stats",
    }


def test_first_request_is_pending_then_the_summary_comes(client):
    first = _sessions(_profiles(client, settle=False))[SESSION]
    assert first["summary"] is None and first["hosts"][0]["status"] == "pending"
    later = _sessions(_profiles(client))[SESSION]
    assert later["summary"]["steps"] > 0


def test_empty_and_garbage_captures_are_reported(client):
    s = _sessions(_profiles(client))[BROKEN]
    hosts = {h["host"]: h for h in s["hosts"]}
    assert hosts["zero"]["status"] == "empty" and hosts["zero"]["size_bytes"] == 0
    assert "empty" in hosts["zero"]["error"]
    assert hosts["garbage"]["status"] == "unreadable"
    assert "parse" in hosts["garbage"]["error"]
    assert s["summary"] is None
    assert s["trigger"] is None and s["capture_status"] is None  # no document: a folder only


def test_documented_session_without_folder_says_so(client):
    s = _sessions(_profiles(client))[DOC_ONLY]
    assert s["capture_status"] == "failed" and s["capture_error"] == "disk full"
    assert s["hosts"] == [
        {
            "host": "lost",
            "file": "lost.xplane.pb",
            "size_bytes": None,
            "status": "unreadable",
            "error": "file not found in the session folder",
        }
    ]


def test_without_xprof_sessions_are_still_listed(client, monkeypatch):
    monkeypatch.setitem(sys.modules, "xprof.convert.raw_to_tool_data", None)
    body = _profiles(client)
    assert body["xprof"]["available"] is False and "xprof" in body["xprof"]["reason"]
    s = _sessions(body)[SESSION]
    assert s["summary"] is None and s["hosts"][0]["status"] == "ok"
    assert s["links"]["trace_viewer"].endswith("&tag=trace_viewer%40&host=gpu%40node-3#profile")
    hosts = {h["host"]: h["status"] for h in _sessions(body)[BROKEN]["hosts"]}
    assert hosts["zero"] == "empty"


def test_summaries_are_cached_by_file_size_and_mtime(tmp_path, monkeypatch):
    calls = []
    real = xprof.xspace_to_tool_data

    def counting(paths, tool, params, *args):
        calls.append((tuple(paths), tool))
        return real(paths, tool, params, *args)

    monkeypatch.setattr(xprof, "xspace_to_tool_data", counting)
    path = str(tmp_path / "h.xplane.pb")
    shutil.copy(FIXTURE, path)
    cache = profiles.SummaryCache()
    assert cache.get(path, "h", os.stat(path)).status == "pending"
    cache.wait(30)
    first = cache.get(path, "h", os.stat(path))
    assert first.status == "ok" and first.summary["steps"] > 0
    n = len(calls)
    assert n >= 3  # overview, op stats, memory
    assert cache.get(path, "h", os.stat(path)) is first
    assert len(calls) == n  # not recomputed
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new capture in its place
    assert cache.get(path, "h", os.stat(path)).status == "pending"
    cache.wait(30)
    assert cache.get(path, "h", os.stat(path)).status == "ok" and len(calls) == 2 * n


def test_errors_unknown_run_missing_run_and_traversal(client, logdir):
    assert _get(client).status_code == 400
    assert _get(client, run="nope").status_code == 404
    assert _get(client, run="../" + os.path.basename(logdir)).status_code == 404
    assert profiles.profile_dir(logdir, "../..") is None
    assert profiles.profile_dir(logdir, "/etc") is None
    assert profiles.profile_dir("", RUN) is None
    body = _profiles(client, run="plain")
    assert [s["session"] for s in body["sessions"]] == ["x"]
    assert body["sessions"][0]["hosts"] == [] and body["sessions"][0]["links"] is None


# -- parsing what CPU-only captures lack ------------------------------------------------


def test_parsers_return_null_for_missing_fields():
    empty = profiles.step_summary(None)
    assert empty["steps"] == 0 and empty["step_time_ms_mean"] is None and empty["verdict"] is None
    assert profiles.top_ops([]) == [] and profiles.top_ops({"rows": "x"}) == []
    assert profiles.peak_memory_bytes({"memoryProfilePerAllocator": {}}) is None
    assert profiles.peak_memory_bytes("garbage") is None
    gpu = {
        "memoryProfilePerAllocator": {
            "GPU_0_bfc": {"profileSummary": {"peakStats": {"peakBytesInUse": "1288490188"}}},
            "cpu": {"profileSummary": {"peakBytesUsageLifetime": "1024"}},
        }
    }
    assert profiles.peak_memory_bytes(gpu) == 1288490188


def test_suggestions_cite_their_numbers():
    summary = {
        "step_time_ms_mean": 212.4,
        "input_ms_mean": 61.0,
        "input_percent": 28.7,
        "device_compute_percent": 30.0,
        "top_ops": [
            {
                "name": "Conv2D",
                "type": "Conv2D",
                "self_time_ms": 120.5,
                "self_time_percent": 31.2,
                "occurrences": 40,
            }
        ],
    }
    found = {s["id"]: s for s in profiles.suggestions(summary)}
    assert set(found) == {"input_bound", "low_device_utilization", "hot_op"}
    assert found["input_bound"]["severity"] == "warning"
    assert "28.7 %" in found["input_bound"]["text"] and "61.00" in found["input_bound"]["text"]
    assert "30.0 %" in found["low_device_utilization"]["text"]
    assert "Conv2D" in found["hot_op"]["text"] and "31.2 %" in found["hot_op"]["text"]


# -- a real capture -----------------------------------------------------------------------


def test_tiny_tensorflow_capture_is_summarized(needs_tf, tmp_path):
    import tensorflow as tf

    run_dir = str(tmp_path / "tf-run")
    w = tf.Variable(tf.random.normal((32, 32)))

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
        w.assign_sub(0.01 * tape.gradient(loss, w))
        return loss

    x = tf.random.normal((16, 32))
    train_step(x)
    tf.profiler.experimental.start(run_dir)
    try:
        for step in range(5):
            with tf.profiler.experimental.Trace("train", step_num=step, _r=1):
                train_step(x)
    finally:
        tf.profiler.experimental.stop()
    _write_profile_doc(run_dir, _session_doc("unused", []))
    mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 100})
    mux.AddRunsFromDirectory(str(tmp_path))
    mux.Reload()
    c, plugin = _client(mdp.MultiplexerDataProvider(mux, str(tmp_path)), str(tmp_path))
    try:
        captured = [s for s in _profiles(c, run="tf-run")["sessions"] if s["hosts"]]
    finally:
        plugin._profile_cache.wait(30)
    assert len(captured) == 1
    s = captured[0]
    assert [h["status"] for h in s["hosts"]] == ["ok"]
    assert s["summary"]["steps"] >= 3 and s["summary"]["step_time_ms_mean"] > 0
    assert "MatMul" in {op["name"] for op in s["summary"]["top_ops"]}
