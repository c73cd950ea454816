"""Real launchers on loopback (issue 11): a torchrun DDP job and a TF_CONFIG job, seen as jobs.

* ``torchrun --nproc_per_node=2`` runs tests/launch/ddp_worker.py: DDP on the
  gloo backend, every rank calling ``Monitor("<logdir>/job1")``; rank 1's
  input pipeline sleeps 20 ms per step.
* Two processes with ``TF_CONFIG`` naming two loopback ports run
  tests/launch/mwms_worker.py under ``MultiWorkerMirroredStrategy``.

Each job is then served by a real TensorBoard and read as the tab reads it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import NO_TF, require, require_tf
from tbserver import _free_port, tensorboard_server

from tb_plugin_ttsmon.recorder import distributed

LAUNCH = Path(__file__).parent / "launch"
STEPS = 60
SLOW_MS = 20.0


def _get(url: str):
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read().decode())


def _wait_for_job(api: str, ranks: int, timeout_s: float = 90.0):
    """The job's runs and its view, once TensorBoard has loaded every rank's run."""
    deadline = time.monotonic() + timeout_s
    while True:
        runs = [r for r in _get(api + "runs")["runs"] if r["job"]]
        if len(runs) == ranks and all(r["facts"] for r in runs):
            job, folder = runs[0]["job"], runs[0]["run"].rsplit("/", 1)[0]
            q = urllib.parse.urlencode({"job": job, "folder": folder})
            view = _get(api + "job?" + q)
            if len(view["ranks"]) == ranks and all(r["last_step"] for r in view["ranks"]):
                return runs, view
        if time.monotonic() > deadline:
            raise AssertionError(f"the job's {ranks} runs did not appear: {runs}")
        time.sleep(1.0)


def _clean_env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "TF_CONFIG", "SLURM_JOB_ID", "TTSMON_RANK_DIR"):
        env.pop(var, None)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def test_torchrun_ddp_job_is_one_job_and_finds_its_straggler(tmp_path):
    require(importlib.util.find_spec("torch") is not None, "PyTorch (import torch)")
    torchrun = Path(sys.executable).with_name("torchrun")
    require(torchrun.exists(), f"torchrun next to {sys.executable}")
    logdir = tmp_path / "logs"
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            str(LAUNCH / "ddp_worker.py"),
            str(logdir / "job1"),
            f"--steps={STEPS}",
            "--slow-rank=1",
            f"--slow-ms={SLOW_MS}",
        ],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    host = distributed.short_hostname()
    assert sorted(os.listdir(logdir / "job1")) == [f"{host}-rank0", f"{host}-rank1"]
    with tensorboard_server(str(logdir)) as url:
        runs, view = _wait_for_job(url + "data/plugin/ttsmon/", 2)
    # One job, two ranks.
    assert {r["job"] for r in runs} == {runs[0]["job"]} and runs[0]["job"].startswith("torch")
    assert sorted(r["rank"] for r in runs) == [0, 1]
    assert {r["world_size"] for r in runs} == {2}
    assert {r["facts"]["distributed"]["launcher"] for r in runs} == {"torchrun"}
    assert view["world_size"] == 2 and view["node_count"] == 1
    # The host is sampled once: by local rank 0, into its run.
    by_rank = {r["rank"]: r for r in runs}
    assert "system" in by_rank[0]["groups"] and "system" not in by_rank[1]["groups"]
    assert "process" in by_rank[1]["groups"]
    assert [r["samples_node"] for r in view["ranks"]] == [True, False]
    assert [r["last_step"] for r in view["ranks"]] == [STEPS, STEPS]
    # Rank 1's slow input pipeline makes it the straggler; rank 0 waits in its step.
    (straggler,) = [f for f in view["findings"] if f["id"] == "straggler"]
    assert straggler["rank"] == 1 and straggler["run"] == f"job1/{host}-rank1"
    n = straggler["numbers"]
    assert n["data_time_ms"] >= SLOW_MS
    assert n["others_step_time_ms"] > n["step_time_ms"]
    metrics = {m["id"]: m for m in view["metrics"]}
    assert metrics["data-time"]["worst"]["rank"] == 1
    assert metrics["step-time"]["worst"]["rank"] == 0


def test_tf_config_workers_are_one_job(tmp_path):
    if NO_TF:
        require_tf()  # skips in the TensorFlow-free pass
    require(importlib.util.find_spec("tensorflow") is not None, "TensorFlow")
    logdir = tmp_path / "logs"
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = _clean_env()
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(LAUNCH / "mwms_worker.py"), str(logdir / "job1"), "20"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-4000:]
    host = distributed.short_hostname()
    assert sorted(os.listdir(logdir / "job1")) == [f"{host}-rank0", f"{host}-rank1"]
    with tensorboard_server(str(logdir)) as url:
        runs, view = _wait_for_job(url + "data/plugin/ttsmon/", 2)
    assert len({r["job"] for r in runs}) == 1 and runs[0]["job"].startswith("tf-")
    assert sorted(r["rank"] for r in runs) == [0, 1]
    facts = {r["rank"]: r["facts"] for r in runs}
    assert [facts[k]["distributed"]["task_index"] for k in (0, 1)] == [0, 1]
    assert {f["distributed"]["launcher"] for f in facts.values()} == {"tf_config"}
    assert [r["samples_node"] for r in view["ranks"]] == [True, False]
    assert [r["last_step"] for r in view["ranks"]] == [20, 20]
    assert {m["id"] for m in view["metrics"]} >= {"step-time", "data-time", "loss"}
