"""Distributed jobs on the recorder's side (issue 11): launchers, rank directories, facts, phases.

The launchers' variables are the ones torchrun, TensorFlow, Open MPI and
SLURM really set (the real launchers run in tests/test_launchers.py); here
each is given as an environment and the recorder's reading of it is checked.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from tbdata import python_provider, raw_events, read_documents, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import distributed

TORCHRUN = {
    "RANK": "3",
    "WORLD_SIZE": "8",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "GROUP_RANK": "1",
    "TORCHELASTIC_RUN_ID": "tts-42",
    "TORCHELASTIC_RESTART_COUNT": "0",
    "MASTER_ADDR": "10.0.0.1",
    "MASTER_PORT": "29500",
}
_LAUNCHER_VARS = (
    *TORCHRUN,
    "TF_CONFIG",
    "OMPI_COMM_WORLD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "OMPI_COMM_WORLD_LOCAL_RANK",
    "OMPI_COMM_WORLD_LOCAL_SIZE",
    "SLURM_JOB_ID",
    "SLURM_PROCID",
    "SLURM_NTASKS",
    "SLURM_LOCALID",
    "SLURM_NODEID",
    "SLURM_STEP_ID",
    "TTSMON_RANK_DIR",
    "TTSMON_HOST_SAMPLING",
)


@pytest.fixture
def launched(monkeypatch):
    """Sets a launcher's variables for the test (and clears every other launcher's)."""
    for var in _LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)

    def set_env(env: dict[str, str]) -> None:
        for k, v in env.items():
            monkeypatch.setenv(k, v)

    return set_env


def _tf_config(task_type: str, index: int) -> str:
    cluster = {
        "chief": ["127.0.0.1:20000"],
        "worker": ["127.0.0.1:20001", "127.0.0.1:20002", "10.0.0.7:20003"],
    }
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


# -- reading the launchers ------------------------------------------------------------------------


def test_torchrun_variables():
    info = distributed.detect(TORCHRUN)
    assert info == distributed.RankInfo(
        launcher="torchrun",
        job="torchrun-tts-42",
        rank=3,
        world_size=8,
        local_rank=1,
        local_world_size=2,
        node_rank=1,
        restart_count=0,
    )
    assert info.distributed and not info.first_on_node
    assert info.facts() == {
        "job": "torchrun-tts-42",
        "rank": 3,
        "local_rank": 1,
        "world_size": 8,
        "node_rank": 1,
    }


def test_torchrun_without_a_rendezvous_id_shares_a_job_id_across_ranks():
    # torchrun names every job "none" without --rdzv-id; its ranks share the
    # rendezvous address, so they still share one job id, and another job on
    # another port gets another.
    base = {**TORCHRUN, "TORCHELASTIC_RUN_ID": "none"}
    ids = {distributed.detect({**base, "RANK": str(r)}).job for r in range(8)}
    assert len(ids) == 1 and ids.pop().startswith("torch-")
    other = distributed.detect({**base, "MASTER_PORT": "29501"})
    assert other.job != distributed.detect(base).job
    # Inside a SLURM allocation, the SLURM job names it.
    assert distributed.detect({**base, "SLURM_JOB_ID": "777"}).job == "slurm-777"


def test_torch_distributed_launch_without_group_rank_numbers_nodes_from_local_size():
    env = {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4"}
    info = distributed.detect(env)
    assert info.node_rank == 1 and info.local_rank == 1


def test_tf_config_ranks_chief_first_and_finds_local_ranks_by_host():
    infos = [distributed.detect({"TF_CONFIG": _tf_config("chief", 0)})]
    infos += [distributed.detect({"TF_CONFIG": _tf_config("worker", i)}) for i in range(3)]
    assert [i.rank for i in infos] == [0, 1, 2, 3]
    assert {i.world_size for i in infos} == {4}
    assert len({i.job for i in infos}) == 1 and infos[0].job.startswith("tf-")
    # Three tasks on 127.0.0.1 (node 0), one on 10.0.0.7 (node 1).
    assert [i.local_rank for i in infos] == [0, 1, 2, 0]
    assert [i.node_rank for i in infos] == [0, 0, 0, 1]
    assert [i.local_world_size for i in infos] == [3, 3, 3, 1]
    assert infos[2].task_type == "worker" and infos[2].task_index == 1
    assert infos[2].launcher_facts()["task_type"] == "worker"


def test_tf_config_of_another_cluster_is_another_job():
    a = distributed.detect({"TF_CONFIG": _tf_config("worker", 0)})
    other = json.dumps(
        {"cluster": {"worker": ["127.0.0.1:30001", "127.0.0.1:30002"]}, "task": {"type": "worker"}}
    )
    b = distributed.detect({"TF_CONFIG": other})
    assert a.job != b.job and b.rank == 0 and b.world_size == 2


def test_slurm_and_open_mpi_variables():
    slurm = distributed.detect(
        {
            "SLURM_JOB_ID": "123",
            "SLURM_STEP_ID": "0",
            "SLURM_PROCID": "9",
            "SLURM_NTASKS": "16",
            "SLURM_LOCALID": "1",
            "SLURM_NODEID": "4",
            "SLURM_TASKS_PER_NODE": "2(x8)",
        }
    )
    assert (slurm.launcher, slurm.job, slurm.rank, slurm.world_size) == (
        "slurm",
        "slurm-123.0",
        9,
        16,
    )
    assert (slurm.local_rank, slurm.node_rank, slurm.local_world_size) == (1, 4, 2)
    mpi = distributed.detect(
        {
            "OMPI_COMM_WORLD_RANK": "6",
            "OMPI_COMM_WORLD_SIZE": "8",
            "OMPI_COMM_WORLD_LOCAL_RANK": "2",
            "OMPI_COMM_WORLD_LOCAL_SIZE": "4",
            "OMPI_MCA_ess_base_jobid": "3141",
        }
    )
    assert (mpi.launcher, mpi.job, mpi.rank, mpi.local_rank, mpi.node_rank) == (
        "openmpi",
        "openmpi-3141",
        6,
        2,
        1,
    )


def test_torchrun_inside_slurm_numbers_ranks_as_torchrun_does():
    # srun starts one torchrun per node: SLURM_PROCID is the node's task, not the rank.
    env = {**TORCHRUN, "SLURM_JOB_ID": "55", "SLURM_PROCID": "1", "SLURM_NTASKS": "4"}
    info = distributed.detect(env)
    assert info.launcher == "torchrun" and info.rank == 3 and info.world_size == 8


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"RANK": "x", "WORLD_SIZE": "2"},
        {"RANK": "2", "WORLD_SIZE": "2"},  # out of range
        {"TF_CONFIG": "{not json"},
        {"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "ps"}})},
        {"SLURM_PROCID": "0", "SLURM_NTASKS": "2"},  # no job id: not srun
    ],
)
def test_unreadable_or_missing_variables_mean_no_job(env):
    assert distributed.detect(env) is None


def test_names_rank():
    assert distributed.names_rank("logs/job1/rank3", 3)
    assert distributed.names_rank("logs/job1/node-a-rank03/", 3)
    assert distributed.names_rank("logs/job1/Rank_3", 3)
    assert not distributed.names_rank("logs/job1/rank3", 13)
    assert distributed.names_rank("logs/job1/3", 3)
    assert not distributed.names_rank("logs/job1/13", 3)
    assert not distributed.names_rank("logs/job1/run3", 3)
    assert not distributed.names_rank("logs/job1/crank3x", 3)
    assert not distributed.names_rank("logs/job1", 0)


# -- the Monitor in a job -------------------------------------------------------------------------


def _facts(logdir, run):
    with python_provider(str(logdir)) as p:
        return read_documents(p, run, metadata.RUN_FACTS_TAG)


def test_a_rank_writes_its_own_run_and_its_place_in_the_job(tmp_path, launched):
    launched(TORCHRUN)
    host = distributed.short_hostname()
    with ttsmon.Monitor(tmp_path / "job1", interval=None, writer="event", gpus=False) as mon:
        assert mon.log_dir == os.path.join(str(tmp_path / "job1"), f"{host}-rank3")
        assert mon.rank is not None and mon.rank.rank == 3
        mon.log_training(1, loss=0.5)
    (doc,) = _facts(tmp_path / "job1", f"{host}-rank3")
    assert {k: doc[k] for k in ("job", "rank", "local_rank", "world_size", "node_rank")} == {
        "job": "torchrun-tts-42",
        "rank": 3,
        "local_rank": 1,
        "world_size": 8,
        "node_rank": 1,
    }
    assert doc["distributed"]["launcher"] == "torchrun"
    assert doc["distributed"]["local_world_size"] == 2
    assert doc["distributed"]["rank_dir"] is True
    assert doc["distributed"]["job_log_dir"] == str(tmp_path / "job1")


@pytest.mark.parametrize(
    ("kwargs", "env", "expected"),
    [
        ({"rank_dir": False}, {}, "job1"),
        ({}, {"TTSMON_RANK_DIR": "0"}, "job1"),
        ({"rank_dir": True}, {"TTSMON_RANK_DIR": "0"}, "job1/{host}-rank3"),  # the argument wins
        ({"log": "job1/rank3"}, {}, "job1/rank3"),  # the path already names the rank
        ({"job": "my-run"}, {}, "job1/{host}-rank3"),
    ],
)
def test_explicit_settings_win(tmp_path, launched, kwargs, env, expected):
    launched({**TORCHRUN, **env})
    kwargs = dict(kwargs)
    log = kwargs.pop("log", "job1")
    host = distributed.short_hostname()
    mon = ttsmon.Monitor(tmp_path / log, interval=None, writer="event", gpus=False, **kwargs)
    try:
        assert mon.log_dir == str(tmp_path / expected.format(host=host))
        if "job" in kwargs:
            assert mon.rank is not None and mon.rank.job == "my-run"
    finally:
        mon.close()


def test_outside_a_job_nothing_changes(tmp_path, launched):
    launched({"RANK": "0", "WORLD_SIZE": "1"})  # a single-process torchrun
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event", gpus=False) as mon:
        assert mon.log_dir == str(tmp_path / "run")
        assert mon.samples_node
    (doc,) = _facts(tmp_path, "run")
    assert doc["rank"] == 0 and doc["world_size"] == 1 and doc["job"].startswith("torch")


def test_bad_settings_are_refused(tmp_path, launched):
    launched(TORCHRUN)
    with pytest.raises(ValueError, match="host_sampling"):
        ttsmon.Monitor(tmp_path, host_sampling="sometimes")
    with pytest.raises(ValueError, match="job"):
        ttsmon.Monitor(tmp_path, job="  ")
    with pytest.raises(TypeError, match="rank_dir"):
        ttsmon.Monitor(tmp_path, rank_dir="yes")


# -- step phases --------------------------------------------------------------------------------


def test_step_phases_are_timed_and_written_with_the_step(tmp_path, writer_name):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer=writer_name) as mon:
        for step in range(1, 6):
            time.sleep(0.03)  # the input pipeline
            with mon.step(step):
                time.sleep(0.01)  # the step
            mon.log_training(step, loss=1.0 / step)
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    inside = series["train/step_time_ms"]
    between = series["train/data_time_ms"]
    assert inside.steps == [1, 2, 3, 4, 5] and inside.unit == "ms"
    assert between.steps == [2, 3, 4, 5]  # the first step has no previous one
    assert all(10.0 <= v < 200.0 for v in inside.values)
    assert all(30.0 <= v < 300.0 for v in between.values)
    assert min(between.values) > max(inside.values) - 5.0
    # One event per step: the timings travel with the step's loss.
    events = [
        {v.tag for v in e.summary.value}
        for e in raw_events(str(tmp_path))
        if any(v.tag == "train/loss" for v in e.summary.value)
    ]
    assert len(events) == 5
    assert all({"train/loss", "train/step_time_ms"} <= tags for tags in events)


def test_step_phases_without_log_training_are_written_on_their_own(tmp_path):
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        for step in range(3):
            with mon.step(step):
                pass
        with pytest.raises(RuntimeError), mon.step(3):
            raise RuntimeError("out of memory")
        with mon.step(4):  # after a failed step: no time between steps
            pass
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["train/step_time_ms"].steps == [0, 1, 2, 4]
    assert series["train/data_time_ms"].steps == [1, 2]
