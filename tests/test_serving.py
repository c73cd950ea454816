"""Serving (issue 12): the streaming API, device-synced stages, cache state, window
statistics, the serving view over HTTP, and the Prometheus endpoint against a real
Prometheus server."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import require
from servingdata import ServingSpec, write_serving_run
from tbdata import python_provider, read_scalars
from tbserver import tensorboard_server

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon.recorder import inference

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def _read(tmp_path, run="run"):
    with python_provider(str(tmp_path)) as p:
        return read_scalars(p, run)


# -- the streaming API ----------------------------------------------------------------------------


def test_a_streamed_request_with_segments_tokens_and_cache_state(tmp_path, writer_name):
    calls = []
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer=writer_name) as mon:
        with mon.time_inference(sync=lambda: calls.append(1)) as req:
            req.cache_hit = False
            with req.stage("gpt_gen"):
                time.sleep(0.05)
            for audio, tokens in ((0.8, 40), (1.2, 60), (0.5, 25)):
                time.sleep(0.01)
                req.segment(audio_seconds=audio, tokens=tokens)
            with req.stage("bigvgan"):
                time.sleep(0.01)
        # start, 2 stages x 2 ends, 3 segments, finish: every boundary waited for the device.
        assert len(calls) == 1 + 4 + 3 + 1
    s = _read(tmp_path)
    latency = s["inference/latency_ms"].values[0]
    gpt = s["inference/stage/gpt_gen/latency_ms"].values[0]
    assert latency >= 90 and gpt >= 50
    # The first segment is the first audio: after the GPT stage and one pause.
    ttfa = s["inference/ttfa_ms"].values[0]
    assert gpt + 10 <= ttfa < latency
    assert s["inference/cold/ttfa_ms"].values == [ttfa]
    assert s["inference/cold/latency_ms"].values == [latency]
    assert s["inference/cache_hit"].values == [0.0]
    assert "inference/warm/latency_ms" not in s
    assert s["inference/audio_s"].values == pytest.approx([2.5])
    assert s["inference/segments_count"].values == [3.0]
    assert s["inference/tokens_count"].values == [125.0]
    assert s["inference/stage/gpt_gen/tokens_per_s"].values == pytest.approx(
        [125 / (gpt / 1000)], rel=1e-5
    )
    assert s["inference/stage/gpt_gen/ms_per_token"].values == pytest.approx([gpt / 125], rel=1e-5)
    seg = s["inference/segment/latency_ms"]
    assert len(seg.values) == 3 and seg.values[0] == pytest.approx(ttfa, rel=1e-4)
    assert all(v >= 10 for v in seg.values)
    assert s["inference/segment/tokens_count"].values == [40.0, 60.0, 25.0]
    assert s["inference/segment/audio_s"].values == pytest.approx([0.8, 1.2, 0.5])
    # Segments come before their request, steps strictly increasing.
    assert max(seg.steps) < s["inference/latency_ms"].steps[0]
    # The time no stage covers: the pauses between segments.
    rest = s["inference/stage/unattributed/latency_ms"].values[0]
    bigvgan = s["inference/stage/bigvgan/latency_ms"].values[0]
    assert rest == pytest.approx(latency - gpt - bigvgan, abs=0.01)


def test_sync_cuda_waits_for_the_gpu_where_torch_uses_cuda(monkeypatch):
    # No GPU here: torch.cuda is faked at its lowest layer the recorder touches.
    synced = []
    cuda = types.SimpleNamespace(
        is_available=lambda: True,
        is_initialized=lambda: True,
        synchronize=lambda: synced.append(1),
    )
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    sync = inference.resolve_sync("cuda")
    sync()
    assert synced == [1]
    # CUDA present but never initialized by the job: nothing to wait for.
    cuda.is_initialized = lambda: False
    inference.resolve_sync("cuda")()
    assert synced == [1]
    monkeypatch.delitem(sys.modules, "torch")
    assert inference.resolve_sync("cuda") is inference.resolve_sync(None)
    with pytest.raises(ValueError, match="sync must be 'cuda'"):
        inference.resolve_sync("rocm")
    with pytest.raises(TypeError, match="sync must be"):
        inference.resolve_sync(42)  # type: ignore[arg-type]


def test_sync_cuda_with_real_torch_on_a_cpu(tmp_path):
    torch = pytest.importorskip("torch") if not os.environ.get("CI") else __import__("torch")
    assert not torch.cuda.is_available()
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        with mon.time_inference(sync="cuda") as req, req.stage("gpt_gen"):
            torch.ones(64, 64) @ torch.ones(64, 64)
    assert "inference/stage/gpt_gen/latency_ms" in _read(tmp_path)


def test_log_inference_takes_what_a_server_measured(tmp_path):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        mon.log_inference(
            latency_ms=900.0,
            audio_seconds=2.0,
            stages={"gpt_gen": 500.0, "s2mel": 100.0, "unattributed": 50.0},
            ttfa_ms=300.0,
            cache_hit=True,
            rtf=0.5,
            tokens=100,
        )
        for bad, words in [
            ({"ttfa_ms": -1.0}, "ttfa_ms must be >= 0"),
            ({"rtf": -0.1}, "rtf must be >= 0"),
            ({"tokens": -3}, "tokens"),
            ({"token_stage": "a b"}, "not valid"),
            ({"stages": {"gpt gen": 1.0}}, "stage name"),
        ]:
            with pytest.raises((TypeError, ValueError), match=words):
                mon.log_inference(latency_ms=1.0, **bad)
    s = _read(tmp_path)
    assert s["inference/rtf"].values == [0.5]  # as measured, not 0.9 / 2.0
    assert s["inference/stage/unattributed/latency_ms"].values == [50.0]  # as given
    assert s["inference/warm/latency_ms"].values == [900.0]
    assert s["inference/warm/ttfa_ms"].values == [300.0]
    assert s["inference/stage/gpt_gen/tokens_per_s"].values == [200.0]


def test_window_statistics_of_ttfa_rtf_and_stages():
    window = inference.InferenceWindow(window_s=60.0, started_s=0.0)
    rng = np.random.default_rng(3)
    ttfa = rng.uniform(100, 900, 200)
    rtf = rng.uniform(0.2, 1.6, 200)
    gpt = rng.uniform(1000, 5000, 200)
    for i in range(200):
        window.add(10.0 + i * 0.1, 2000.0, 1.0, rtf[i], ttfa[i], {"gpt_gen": gpt[i]})
    window.add(31.0, 2000.0, 1.0, math.nan)  # a request without TTFA or stages
    stats = window.stats(40.0)
    assert stats["inference/ttfa_p50_ms"] == pytest.approx(np.percentile(ttfa, 50))
    assert stats["inference/ttfa_p95_ms"] == pytest.approx(np.percentile(ttfa, 95))
    assert stats["inference/ttfa_p99_ms"] == pytest.approx(np.percentile(ttfa, 99))
    assert stats["inference/rtf_p50"] == pytest.approx(np.percentile(rtf, 50))
    assert stats["inference/rtf_p95"] == pytest.approx(np.percentile(rtf, 95))
    assert stats["inference/stage/gpt_gen/latency_p95_ms"] == pytest.approx(np.percentile(gpt, 95))


# -- the serving view, over HTTP -------------------------------------------------------------


@pytest.mark.parametrize("load_fast", [True, False])
def test_serving_route(tmp_path, load_fast):
    spec = ServingSpec()
    reqs = write_serving_run(tmp_path, spec)
    with ttsmon.Monitor(tmp_path / "train-only", interval=None, writer="event") as mon:
        mon.log_training(1, loss=1.0)
    with tensorboard_server(str(tmp_path), load_fast=load_fast) as url:
        api = url + "data/plugin/ttsmon/"
        q = urllib.parse.urlencode({"run": spec.run, "buckets": 30})
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(api + "serving?" + q, timeout=60) as r:
                    view = json.loads(r.read())
                if view["requests"] == spec.requests:
                    break
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
            assert time.monotonic() < deadline, "the run never loaded"
            time.sleep(0.5)
        for query, code, words in [
            ({"run": "train-only"}, 404, "has no inference requests"),
            ({"run": "nope"}, 404, "no ttsmon data"),
            ({}, 400, "missing query parameter 'run'"),
            ({"run": spec.run, "buckets": "1"}, 400, "between 2 and 2000"),
        ]:
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(api + "serving?" + urllib.parse.urlencode(query), timeout=60)
            assert info.value.code == code
            assert words in info.value.read().decode()
    # Event files hold float32.
    latency = np.array([r["latency_ms"] for r in reqs], dtype=np.float32).astype(np.float64)
    assert view["buckets"] <= 30 and view["stages"][0] == "gpt_gen"
    assert view["stages"][-1] == "unattributed"
    # Every request is in the histogram once.
    assert sum(map(sum, view["latency_histogram"]["counts"])) == spec.requests
    edges = view["latency_histogram"]["edges_ms"]
    assert edges[0] <= latency.min() and edges[-1] >= latency.max()
    # Overall stage shares: each stage's time over all requests' time.
    total = latency.sum()
    for stage in ("gpt_gen", "s2mel", "unattributed"):
        share = sum(r[f"stage:{stage}"] for r in reqs) / total
        assert view["summary"]["stage_share"][stage] == pytest.approx(share, abs=1e-3)
    # A bucket's shares add up to 1 (the stages here cover every request's time).
    for b in range(view["buckets"]):
        shares = [view["stage_share"][s][b] for s in view["stages"]]
        if shares[0] is not None:
            assert sum(shares) == pytest.approx(1.0, abs=2e-3)
    cold = np.array([r["latency_ms"] for r in reqs if not r["cache_hit"]])
    warm = np.array([r["latency_ms"] for r in reqs if r["cache_hit"]])
    cache = view["cache"]
    assert cache["cold"]["requests"] == len(cold) and cache["warm"]["requests"] == len(warm)
    assert cache["cold_over_warm_p50"] == pytest.approx(
        np.percentile(cold, 50) / np.percentile(warm, 50), rel=1e-4
    )
    assert view["summary"]["rtf_p95"] == pytest.approx(
        np.percentile([r["rtf"] for r in reqs], 95), rel=1e-4
    )
    found = {f["id"]: f for f in view["findings"]}
    assert set(found) == {
        "stage_dominates",
        "slower_than_real_time",
        "cold_slower_than_warm",
        "unattributed_latency",
    }
    share = view["summary"]["stage_share"]["gpt_gen"]
    assert found["stage_dominates"]["text"].startswith(f"gpt_gen is {round(100 * share)} % of")
    ratio = cache["cold_over_warm_p50"]
    assert (
        f"cold requests are {ratio:.1f}× slower than warm ones"
        in (found["cold_slower_than_warm"]["text"])
    )


# -- Prometheus ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(base: str, expr: str) -> list[dict]:
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{base}/api/v1/query?{q}", timeout=30) as r:
        doc = json.loads(r.read())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def test_a_real_prometheus_scrapes_the_endpoint(tmp_path):
    require(os.path.exists(PROMETHEUS), "Debian's prometheus (/usr/bin/prometheus)")
    mon = ttsmon.Monitor(tmp_path / "run", interval=0.2, writer="event", prometheus_port=0)
    try:
        assert mon.prometheus_url is not None
        target = urllib.parse.urlsplit(mon.prometheus_url)
        assert target.hostname == "127.0.0.1"  # loopback unless told otherwise
        for i in range(20):
            mon.log_inference(
                latency_ms=1000.0 + 100 * i,
                audio_seconds=2.0,
                stages={"gpt_gen": 600.0 + 50 * i, "bigvgan": 100.0},
                ttfa_ms=250.0,
                cache_hit=i % 4 != 0,
            )
        prom_port = _free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n"
            "scrape_configs:\n  - job_name: ttsmon\n"
            f"    static_configs:\n      - targets: ['{target.netloc}']\n"
        )
        prom = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115
        )
        base = f"http://127.0.0.1:{prom_port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    found = _query(base, "ttsmon_request_duration_seconds_count")
                except (urllib.error.URLError, ConnectionError):
                    found = []
                if found:
                    break
                assert prom.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "Prometheus never scraped the endpoint"
                time.sleep(0.5)
            assert float(found[0]["value"][1]) == 20
            assert found[0]["metric"]["job"] == "ttsmon"
            stage = _query(base, 'ttsmon_stage_duration_seconds_count{stage="gpt_gen"}')
            assert float(stage[0]["value"][1]) == 20
            summed = _query(base, 'ttsmon_stage_duration_seconds_sum{stage="gpt_gen"}')
            assert float(summed[0]["value"][1]) == pytest.approx(
                sum(0.6 + 0.05 * i for i in range(20))
            )
            cold = _query(base, 'ttsmon_requests_total{cache="cold"}')
            assert float(cold[0]["value"][1]) == 5
            audio = _query(base, "sum(ttsmon_audio_seconds_total)")
            assert float(audio[0]["value"][1]) == 40.0
            p50 = _query(base, "histogram_quantile(0.5, ttsmon_request_duration_seconds_bucket)")
            assert 1.0 <= float(p50[0]["value"][1]) <= 2.5  # latencies 1.0..2.9 s
            rtf = _query(base, "ttsmon_rtf_count")
            assert float(rtf[0]["value"][1]) == 20
            memory = _query(base, "ttsmon_system_memory_used_bytes")
            assert float(memory[0]["value"][1]) > 0
            cpu = _query(base, "ttsmon_process_cpu_ratio")
            assert cpu and 0 <= float(cpu[0]["value"][1]) < 64
        finally:
            prom.terminate()
            prom.wait(30)
    finally:
        mon.close()
    # Closed: nothing listens there any more (connections may linger in TIME_WAIT).
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", target.port))


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(
            ValueError, match=f"cannot serve Prometheus metrics on 127.0.0.1:{port}"
        ):
            ttsmon.Monitor(tmp_path / "run", interval=None, prometheus_port=port)
