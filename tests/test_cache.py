"""Shared, cached answers (issue 10): the cache, data versions, ETags, increments, batches.

The cache is tested on its own (byte bound, single flight, errors), then
through the plugin on TensorBoard's real data providers: a new point in a
run changes its data version and so its answers; two viewers share one
computation; an unchanged answer is a 304; `since_step` increments meet
without gaps or repeats under both loaders, served by a real `tensorboard`.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from tbserver import tensorboard_server
from tensorboard.backend.event_processing import data_provider as mdp
from tensorboard.backend.event_processing import plugin_event_multiplexer
from test_plugin import _client, _strict_json

from tb_plugin_ttsmon import analytics, metadata
from tb_plugin_ttsmon.plugin import plugin as plugin_mod
from tb_plugin_ttsmon.query import Reader
from tb_plugin_ttsmon.query.cache import ResultCache
from tb_plugin_ttsmon.recorder import writers

T0 = 1_760_000_000.0


# -- the cache on its own -------------------------------------------------------------------


def test_the_byte_bound_holds_and_old_entries_go_first():
    cache = ResultCache(max_bytes=10_000)
    for i in range(100):
        assert cache.get_or_compute(("k", i), lambda i=i: bytes([i % 256]) * 1000) == (
            bytes([i % 256]) * 1000
        )
        assert cache.stats().bytes <= 10_000
    stats = cache.stats()
    assert stats.entries == 10 and stats.evictions == 90 and stats.peak_bytes == 10_000
    # The newest are kept, the oldest went.
    calls = []
    cache.get_or_compute(("k", 99), lambda: calls.append(99) or b"x")
    cache.get_or_compute(("k", 0), lambda: calls.append(0) or b"y")
    assert calls == [0]


def test_a_body_larger_than_the_bound_is_served_but_not_kept():
    cache = ResultCache(max_bytes=100)
    assert cache.get_or_compute("big", lambda: b"z" * 1000) == b"z" * 1000
    assert cache.stats().bytes == 0 and cache.stats().entries == 0


def test_two_viewers_asking_at_once_share_one_computation():
    cache = ResultCache()
    started, release = threading.Event(), threading.Event()
    calls = []

    def compute():
        calls.append(threading.current_thread().name)
        started.set()
        release.wait(30)
        return b"answer"

    results = []
    first = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
    second.start()
    # The second request is waiting for the first's result, not computing.
    deadline = time.monotonic() + 30
    while cache.stats().shared < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    first.join(30)
    second.join(30)
    assert results == [b"answer", b"answer"]
    assert len(calls) == 1
    assert cache.stats().shared == 1 and cache.stats().misses == 1


def test_a_failed_computation_reaches_every_waiter_and_is_not_kept():
    cache = ResultCache()

    def boom():
        raise KeyError("gone")

    with pytest.raises(KeyError):
        cache.get_or_compute("k", boom)
    assert cache.get_or_compute("k", lambda: b"ok") == b"ok"


def test_slow_computations_run_on_the_worker_pool():
    cache = ResultCache(slow_workers=1)
    names = []
    cache.get_or_compute(
        "a", lambda: names.append(threading.current_thread().name) or b"1", slow=True
    )
    cache.get_or_compute("b", lambda: names.append(threading.current_thread().name) or b"2")
    assert names[0].startswith("ttsmon-analytics")
    assert names[1] == threading.current_thread().name


# -- through the plugin, on a data provider that reloads ---------------------------------------


def _write(run_dir, first: int, last: int) -> None:
    w = writers.create_writer("event", str(run_dir))
    for step in range(first, last + 1):
        w.write(step, {"train/loss": 1.0 / step, "train/steps_per_s": 5.0}, wall_time_s=T0 + step)
        w.write(
            metadata.sample_step(T0 + step + 0.5),
            {"system/cpu_percent": 10.0 + step % 7, "gpu/0/utilization_percent": 90.0},
            wall_time_s=T0 + step + 0.5,
        )
    w.close()


class _Live:
    """The plugin over a Python loader that reloads when told to, like a live TensorBoard."""

    def __init__(self, logdir: str) -> None:
        self.mux = plugin_event_multiplexer.EventMultiplexer(tensor_size_guidance={"ttsmon": 0})
        self.mux.AddRunsFromDirectory(logdir)
        self.mux.Reload()
        self.client = _client(mdp.MultiplexerDataProvider(self.mux, logdir))

    def get(self, route: str, etag: str | None = None, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        headers = {"If-None-Match": etag} if etag else {}
        return self.client.get(f"/data/plugin/ttsmon/{route}?{query}", headers=headers)


@pytest.fixture
def live(tmp_path, monkeypatch):
    # Each request sees a reload at once (the shared listing lives 1 s otherwise).
    monkeypatch.setattr(plugin_mod, "VERSIONS_TTL_S", 0.0)
    _write(tmp_path / "a", 1, 100)
    _write(tmp_path / "b", 1, 50)
    return _Live(str(tmp_path)), tmp_path


def test_an_unchanged_answer_is_a_304_and_new_data_a_new_answer(live):
    lv, root = live
    for route in ("overview", "findings", "anomalies", "tags", "alerts"):
        first = lv.get(route, run="a")
        assert first.status_code == 200, first.get_data(as_text=True)
        etag = first.headers["ETag"]
        again = lv.get(route, etag=etag, run="a")
        assert again.status_code == 304 and again.get_data() == b""
    before = lv.get("overview", run="a")
    _write(root / "a", 101, 120)
    lv.mux.Reload()
    after = lv.get("overview", etag=before.headers["ETag"], run="a")
    assert after.status_code == 200  # the new data version retired the cached answer
    assert _strict_json(after.get_data())["training"]["last_step"] == 120
    assert _strict_json(before.get_data())["training"]["last_step"] == 100
    # Run b did not change: its answers are still current.
    b = lv.get("overview", run="b")
    assert lv.get("overview", etag=b.headers["ETag"], run="b").status_code == 304


def test_versions_change_only_for_the_run_that_grew(live):
    lv, root = live
    first = lv.get("versions")
    v1 = _strict_json(first.get_data())["runs"]
    assert set(v1) == {"a", "b"}
    assert lv.get("versions", etag=first.headers["ETag"]).status_code == 304
    _write(root / "b", 51, 60)
    lv.mux.Reload()
    v2 = _strict_json(lv.get("versions").get_data())["runs"]
    assert v2["a"] == v1["a"] and v2["b"]["version"] != v1["b"]["version"]
    assert v2["b"]["last_wall_time_s"] == pytest.approx(T0 + 60.5)


def test_one_listing_of_the_data_versions_serves_a_burst_of_requests(live, monkeypatch):
    lv, _ = live
    monkeypatch.setattr(plugin_mod, "VERSIONS_TTL_S", 60.0)
    calls = []
    real = Reader.data_versions

    def counting(self, runs=None):
        calls.append(runs)
        return real(self, runs)

    monkeypatch.setattr(Reader, "data_versions", counting)
    for route in ("versions", "runs", "overview", "tags", "series"):
        assert lv.get(route, run="a", tag="train/loss").status_code == 200
    assert calls == [None]  # one listing of every run, shared


def test_two_viewers_share_one_findings_computation(live, monkeypatch):
    lv, _ = live
    calls = []
    real = analytics.findings

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(analytics, "findings", counting)
    bodies = [lv.get("findings", run="a").get_data() for _ in range(2)]
    assert bodies[0] == bodies[1] and len(calls) == 1
    stats = _strict_json(lv.get("stats").get_data())["cache"]
    assert stats["hits"] >= 1 and stats["bytes"] <= stats["max_bytes"]


def test_since_step_returns_exactly_the_new_points(live):
    lv, root = live
    full = _strict_json(lv.get("series", run="a", tag="train/loss").get_data())
    loss = full["series"]["train/loss"]
    assert loss["last_step"] == 100 and [r[1] for r in loss["rows"]] == list(range(1, 101))
    _write(root / "a", 101, 130)
    lv.mux.Reload()
    more = _strict_json(
        lv.get("series", run="a", tag="train/loss", since_step=loss["last_step"]).get_data()
    )["series"]["train/loss"]
    assert [r[1] for r in more["rows"]] == list(range(101, 131))
    assert more["reset"] is False and more["last_step"] == 130 and more["total"] == 130
    idle = lv.get("series", run="a", tag="train/loss", since_step=130)
    assert _strict_json(idle.get_data())["series"]["train/loss"]["rows"] == []


def test_a_series_that_went_back_comes_whole_as_a_reset(live):
    lv, _ = live
    body = _strict_json(lv.get("series", run="b", tag="train/loss", since_step=10_000).get_data())
    s = body["series"]["train/loss"]
    assert s["reset"] is True and [r[1] for r in s["rows"]] == list(range(1, 51))


def test_downsampled_answers_end_on_the_last_point(live):
    lv, _ = live
    s = _strict_json(lv.get("series", run="a", tag="system/cpu_percent", points=10).get_data())
    rows = s["series"]["system/cpu_percent"]["rows"]
    assert len(rows) <= 12 and rows[-1][1] == metadata.sample_step(T0 + 100.5)


def test_a_batch_covers_several_runs_and_reports_a_missing_one(live):
    lv, _ = live
    requests = [
        {
            "run": "a",
            "tags": ["train/loss", "system/cpu_percent"],
            "since_step": {"train/loss": 95},
        },
        {"run": "gone", "tags": ["train/loss"]},
        {"run": "b", "tags": ["train/loss"], "points": 10},
        {"run": "b", "tags": ["no/such_tag"]},
    ]
    r = lv.client.post("/data/plugin/ttsmon/series_batch", data={"requests": json.dumps(requests)})
    assert r.status_code == 200, r.get_data(as_text=True)
    results = _strict_json(r.get_data())["results"]
    assert [x["run"] for x in results] == ["a", "gone", "b", "b"]
    assert [row[1] for row in results[0]["series"]["train/loss"]["rows"]] == [96, 97, 98, 99, 100]
    assert len(results[0]["series"]["system/cpu_percent"]["rows"]) == 100
    assert "has no ttsmon data" in results[1]["error"]
    assert len(results[2]["series"]["train/loss"]["rows"]) <= 12
    assert "no ttsmon series" in results[3]["error"]
    bad = lv.client.post("/data/plugin/ttsmon/series_batch", data={"requests": "[{]"})
    assert bad.status_code == 400 and b"not valid JSON" in bad.get_data()


# -- a real TensorBoard, both loaders: increments meet without gaps or repeats -----------


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return _strict_json(r.read())


@pytest.mark.parametrize("load_fast", [True, False], ids=["rust_loader", "python_loader"])
def test_increments_from_a_live_tensorboard_have_no_gaps_or_repeats(tmp_path, load_fast):
    run_dir = tmp_path / "growing"
    _write(run_dir, 1, 40)
    with tensorboard_server(str(tmp_path), load_fast=load_fast) as url:
        base = url + "data/plugin/ttsmon/"
        series_url = base + "series?run=growing&tag=train/loss&tag=system/cpu_percent"
        deadline = time.monotonic() + 60
        held: dict[str, list[int]] = {}
        while time.monotonic() < deadline:
            try:
                body = _get_json(series_url)
            except urllib.error.HTTPError:
                time.sleep(0.3)
                continue
            if body["series"]["train/loss"]["last_step"] == 40:
                held = {t: [r[1] for r in s["rows"]] for t, s in body["series"].items()}
                break
            time.sleep(0.3)
        assert held["train/loss"] == list(range(1, 41))
        # Three more bursts, each read as an increment since what is held.
        for first, last in ((41, 55), (56, 56), (57, 90)):
            _write(run_dir, first, last)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                since = {t: steps[-1] for t, steps in held.items()}
                req = [{"run": "growing", "tags": list(held), "since_step": since}]
                data = urllib.parse.urlencode({"requests": json.dumps(req)}).encode()
                with urllib.request.urlopen(base + "series_batch", data=data, timeout=30) as r:
                    result = _strict_json(r.read())["results"][0]
                for tag, s in result["series"].items():
                    assert s["reset"] is False
                    held[tag] += [row[1] for row in s["rows"]]
                if held["train/loss"][-1] == last and len(held["system/cpu_percent"]) == last:
                    break
                time.sleep(0.3)
        assert held["train/loss"] == list(range(1, 91))
        assert held["system/cpu_percent"] == [
            metadata.sample_step(T0 + s + 0.5) for s in range(1, 91)
        ]


def test_analytics_of_a_growing_run_are_recomputed_at_most_so_often(live, monkeypatch):
    lv, root = live
    monkeypatch.setattr(plugin_mod, "ANALYTICS_MAX_AGE_S", 3600.0)
    first = lv.get("anomalies", run="a")
    _write(root / "a", 101, 110)
    lv.mux.Reload()
    # Within the age bound: the same answer (a 304 for its holder), while the
    # series and the overview are current.
    assert lv.get("anomalies", etag=first.headers["ETag"], run="a").status_code == 304
    assert _strict_json(lv.get("overview", run="a").get_data())["training"]["last_step"] == 110
    monkeypatch.setattr(plugin_mod, "ANALYTICS_MAX_AGE_S", 0.0)
    assert lv.get("anomalies", etag=first.headers["ETag"], run="a").status_code == 200


def test_every_route_of_a_run_shares_one_read_per_data_version(live, monkeypatch):
    lv, root = live
    calls = []
    real = Reader._read_points

    def counting(self, run, listed, wanted):
        calls.append((run, len(wanted)))
        return real(self, run, listed, wanted)

    monkeypatch.setattr(Reader, "_read_points", counting)
    for route, params in (
        ("overview", {}),
        ("anomalies", {}),
        ("findings", {}),
        ("heatmap", {}),
        ("series", {"tag": "train/loss"}),
        ("correlation", {"tag": ["train/loss", "system/cpu_percent"]}),
    ):
        assert lv.get(route, run="a", **params).status_code == 200
    assert calls == [("a", 4)]  # the whole run, once
    _write(root / "a", 101, 105)
    lv.mux.Reload()
    assert lv.get("series", run="a", tag="train/loss").status_code == 200
    assert calls == [("a", 4), ("a", 4)]  # a new version: read again, once
    reads = _strict_json(lv.get("stats").get_data())["reads"]
    assert 0 < reads["bytes"] <= reads["max_bytes"] and reads["entries"] == 2
