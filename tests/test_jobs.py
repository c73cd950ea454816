"""The job view and the job findings (issue 11), read through TensorBoard's loaders.

Jobs are written as real event files by `jobdata.write_job` (the layout and
facts a torchrun job writes with ttsmon), with faults planted where the
findings should see them; the real launchers are in tests/test_launchers.py.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from jobdata import GIB, JobSpec, write_job
from tbdata import python_provider, rust_provider
from tbserver import tensorboard_server
from tensorboard import context, errors

from tb_plugin_ttsmon import analytics, catalogue
from tb_plugin_ttsmon.query import Reader
from tb_plugin_ttsmon.recorder import writers

PROVIDERS = {"python": python_provider, "rust": rust_provider}


def _view(root, spec: JobSpec, loader="python", buckets=120):
    with PROVIDERS[loader](str(root)) as p:
        reader = Reader(p, context.RequestContext(), "")
        members = reader.job_runs()
        runs = members[(spec.job, spec.folder)]
        return reader.job(spec.job, spec.folder, runs, buckets)


def _finding(view, fid):
    found = [f for f in view["findings"] if f["id"] == fid]
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """16 ranks on 4 nodes: rank 6 straggles, rank 9 stalls, rank 13 holds twice the memory."""
    root = tmp_path_factory.mktemp("faulty")
    spec = JobSpec(
        nodes=4,
        ranks_per_node=4,
        steps=300,
        straggler_rank=6,
        stalled_rank=9,
        stall_at_s=80,
        heavy_memory_rank=13,
    )
    write_job(root, spec)
    return root, spec


@pytest.mark.parametrize("loader", ["python", "rust"])
def test_faults_are_found_with_their_numbers(faulty, loader):
    root, spec = faulty
    view = _view(root, spec, loader)
    straggler = _finding(view, "straggler")
    assert straggler["rank"] == 6 and straggler["run"] == spec.run(6)
    n = straggler["numbers"]
    assert n["data_time_ms"] == pytest.approx(spec.straggler_data_ms, abs=0.2)
    assert n["others_median_ms"] == pytest.approx(spec.fast_data_ms, abs=0.2)
    # The others wait for it inside their steps.
    assert n["others_step_time_ms"] - n["step_time_ms"] == pytest.approx(
        spec.straggler_data_ms - spec.fast_data_ms, abs=0.5
    )
    assert "Rank 6" in straggler["text"] and "wait for it" in straggler["text"]

    stalled = _finding(view, "stalled_rank")
    assert stalled["rank"] == 9
    assert stalled["numbers"]["last_step"] == 79 and stalled["numbers"]["job_last_step"] == 300
    assert stalled["numbers"]["silent_s"] == pytest.approx(300 - 79, abs=1)
    assert "exited" in stalled["text"]  # its samples stopped too

    uneven = _finding(view, "uneven_gpu_memory")
    assert uneven["rank"] == 13
    assert uneven["numbers"]["peak_bytes"] == 62 * GIB
    assert "62 GiB" in uneven["text"]
    assert _finding(view, "gpu_busy_no_progress") is None


def test_the_view_has_every_rank_metric_and_node(faulty):
    root, spec = faulty
    view = _view(root, spec)
    assert view["job"] == spec.job and view["folder"] == spec.folder
    assert view["world_size"] == 16 and view["node_count"] == 4
    assert [r["rank"] for r in view["ranks"]] == list(range(16))  # 10 after 9, not after 1
    assert [r["samples_node"] for r in view["ranks"]] == [r % 4 == 0 for r in range(16)]
    assert all(r["gpus"] == [r["rank"] % 4] for r in view["ranks"])
    assert view["ranks"][9]["last_step"] == 79
    cat = catalogue.load()
    assert [m["id"] for m in view["metrics"]] == [m.id for m in cat.job_metrics]
    count = view["buckets"]
    assert count >= 2 and view["bucket_s"] * count == pytest.approx(
        view["end_wall_time_s"] - view["start_wall_time_s"]
    )
    for m in view["metrics"]:
        values = np.array([[np.nan if v is None else v for v in row] for row in m["values"]])
        assert values.shape == (16, count)
        for band, fn in (("min", np.nanmin), ("median", np.nanmedian), ("max", np.nanmax)):
            have = ~np.all(np.isnan(values), 0)
            expected = fn(values[:, have], 0)
            got = np.array([v for v in m[band] if v is not None])
            np.testing.assert_allclose(got, expected, rtol=1e-5)
    by_id = {m["id"]: m for m in view["metrics"]}
    assert by_id["data-time"]["worst"]["rank"] == 6
    assert by_id["rank-gpu-memory"]["worst"]["rank"] == 13
    assert by_id["steps-per-s"]["worst"] is None  # every rank alike
    # The stalled rank's row is empty after it stopped.
    stalled_s = spec.start_wall_s + spec.stall_at_s + 10 - view["start_wall_time_s"]
    stall_bucket = int(stalled_s // view["bucket_s"])
    assert all(v is None for v in by_id["step-time"]["values"][9][stall_bucket:])
    # Nodes: the GPUs of each, from its sampler, with the rank that uses each GPU.
    assert [n["host"] for n in view["nodes"]] == [spec.host(i) for i in range(4)]
    node1 = view["nodes"][1]
    assert node1["run"] == spec.run(4) and node1["rank"] == 4
    assert [g["gpu"] for g in node1["gpus"]] == [0, 1, 2, 3]
    assert [g["ranks"] for g in node1["gpus"]] == [[4], [5], [6], [7]]
    assert node1["gpus"][0]["memory_total_bytes"] == 80 * GIB
    util = node1["gpus"][1]["series"]["gpu-util"]
    assert len(util) == count and 80 <= np.nanmean([v for v in util if v is not None]) <= 100


def test_a_healthy_job_has_no_findings(tmp_path):
    spec = JobSpec(nodes=2, ranks_per_node=4, steps=200)
    write_job(tmp_path, spec)
    view = _view(tmp_path, spec)
    assert view["findings"] == []


def test_a_hung_job_with_busy_gpus(tmp_path):
    spec = JobSpec(nodes=2, ranks_per_node=2, steps=200, hang_at_s=120, hang_for_s=240)
    write_job(tmp_path, spec)
    view = _view(tmp_path, spec)
    hang = _finding(view, "gpu_busy_no_progress")
    assert hang["severity"] == "critical" and hang["rank"] is None
    assert hang["numbers"]["last_step"] == 119
    assert hang["numbers"]["gpus"] == 4
    assert hang["numbers"]["no_progress_s"] >= 240
    assert hang["numbers"]["gpu_utilization_mean_percent"] == pytest.approx(99, abs=0.5)
    assert view["findings"][0]["id"] == "gpu_busy_no_progress"  # critical first
    # Every rank hangs together: none of them is a stalled rank.
    assert _finding(view, "stalled_rank") is None


def test_jobs_are_told_apart_by_folder_and_id(tmp_path):
    # Two jobs that reused torchrun's default id (on the default port), in two folders.
    a = JobSpec(folder="exp1", job="torch-0a0b0c0d", nodes=1, ranks_per_node=2)
    b = JobSpec(folder="exp2", job="torch-0a0b0c0d", nodes=1, ranks_per_node=3)
    write_job(tmp_path, a)
    write_job(tmp_path, b)
    with python_provider(str(tmp_path)) as p:
        reader = Reader(p, context.RequestContext(), "")
        members = reader.job_runs()
        assert {k: len(v) for k, v in members.items()} == {
            ("torch-0a0b0c0d", "exp1"): 2,
            ("torch-0a0b0c0d", "exp2"): 3,
        }
        runs = {r["run"]: r for r in reader.runs()["runs"]}
        assert runs[b.run(2)]["job"] == "torch-0a0b0c0d" and runs[b.run(2)]["rank"] == 2
        assert runs[b.run(2)]["world_size"] == 3 and runs[b.run(2)]["node_rank"] == 0
        with pytest.raises(errors.NotFoundError, match="no run of job"):
            reader.job("nope", None, [], 10)


def test_hostile_values_never_break_the_view(tmp_path):
    spec = JobSpec(folder="", job="<b>job</b>&", nodes=1, ranks_per_node=2, steps=20)
    write_job(tmp_path, spec)
    w = writers.EventFileSummaryWriter(str(tmp_path / spec.run(1)))
    try:
        t = spec.start_wall_s + 30
        for i, v in enumerate((math.nan, math.inf, -math.inf, 3e38)):
            w.write(100 + i, {"train/data_time_ms": v, "train/step_time_ms": v}, wall_time_s=t + i)
            w.write(
                int((t + i) * 1000),
                {"gpu/1/process_memory_used_bytes": v, "process/cpu_percent": v},
                wall_time_s=t + i,
            )
    finally:
        w.close()
    view = _view(tmp_path, spec)
    assert view["folder"] == "" and len(view["ranks"]) == 2
    # Every number is finite or None: the encoder spells nothing odd.
    text = json.dumps(view, allow_nan=False)
    assert "<b>job</b>&" in text


def test_job_params_thresholds_are_respected():
    # A 1.4x data time with 1 ms excess is below both bars: no straggler.
    walls = np.arange(50, dtype=float)
    steps = np.arange(50)

    def rank(i, data_ms):
        series = {
            "train/data_time_ms": analytics.Columns.of(walls, np.full(50, data_ms), steps, "ms"),
            "train/step_time_ms": analytics.Columns.of(walls, np.full(50, 10.0), steps, "ms"),
        }
        return analytics.RankData(f"r{i}", {"rank": i, "hostname": "h"}, series)

    quiet = [rank(0, 2.5), rank(1, 2.5), rank(2, 3.5)]
    assert analytics.job_findings(quiet) == []
    loud = [rank(0, 2.5), rank(1, 2.5), rank(2, 9.0)]
    (f,) = analytics.job_findings(loud)
    assert f.id == "straggler" and f.rank == 2
    strict = analytics.JobParams(straggler_min_ms=10.0)
    assert analytics.job_findings(loud, strict) == []


# -- over HTTP, through a real TensorBoard ------------------------------------------------------


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), dict(err.headers)


@pytest.mark.parametrize("load_fast", [True, False])
def test_job_route(faulty, load_fast):
    root, spec = faulty
    with tensorboard_server(str(root), load_fast=load_fast) as url:
        api = url + "data/plugin/ttsmon/"
        q = urllib.parse.urlencode({"job": spec.job, "folder": spec.folder, "buckets": 60})
        status, body = 0, ""
        for _ in range(60):  # the loader may still be reading the 16 runs
            status, body, headers = _get(api + "job?" + q)
            if status == 200 and len(json.loads(body)["ranks"]) == 16:
                break
            time.sleep(1)
        view = json.loads(body)
        assert status == 200 and len(view["ranks"]) == 16, body[:300]
        assert view["buckets"] <= 60
        assert {f["id"] for f in view["findings"]} == {
            "straggler",
            "stalled_rank",
            "uneven_gpu_memory",
        }
        # Shared and revalidated like the analytics.
        req = urllib.request.Request(api + "job?" + q, headers={"If-None-Match": headers["ETag"]})
        try:
            urllib.request.urlopen(req, timeout=60)
            raise AssertionError("expected 304")
        except urllib.error.HTTPError as err:
            assert err.code == 304
        # Every folder when none is named.
        status, body, _ = _get(api + "job?" + urllib.parse.urlencode({"job": spec.job}))
        assert status == 200 and json.loads(body)["folder"] is None
        status, body, _ = _get(api + "runs")
        runs = {r["run"]: r for r in json.loads(body)["runs"]}
        assert runs[spec.run(5)]["rank"] == 5 and runs[spec.run(5)]["job"] == spec.job
        for query, code, words in [
            ("", 400, "missing query parameter 'job'"),
            ("job=" + urllib.parse.quote(spec.job) + "&buckets=1", 400, "between 2 and 2000"),
            ("job=nope", 404, "no run of job 'nope'"),
            ("job=" + urllib.parse.quote(spec.job) + "&folder=elsewhere", 404, "in folder"),
            ("job=%3Cscript%3E" + "x" * 3000, 404, "characters"),
        ]:
            status, body, _ = _get(api + "job?" + query)
            assert status == code and words in body, (query[:40], status, body[:200])


def test_the_report_has_the_job(faulty):
    from tb_plugin_ttsmon import report
    from tb_plugin_ttsmon.query.logdir import LogdirData

    root, spec = faulty
    data = LogdirData(str(root))
    page = report.render_html(data, [spec.run(0), spec.run(6)])
    assert page.count('<article class="job"') == 1
    job = page[page.index('<article class="job"') : page.index("</article>")]
    assert f"<bdi>{spec.job}</bdi>" in job and "16 ranks on 4 nodes" in job
    assert "Rank 6 is the straggler" in job and "Rank 9 stopped logging" in job
    # One ranks-table row per rank, and a band chart per job metric.
    assert job.count("<tr><td>") == 16
    assert job.count('min to max across ranks" src="data:image/png') == len(
        catalogue.load().job_metrics
    )
