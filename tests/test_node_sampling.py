"""One sampler of the host and its GPUs per node (issue 11).

Ranks are real processes with a launcher's variables, each with its own
Monitor; the node's lock is a real ``flock`` in a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from fake_nvml import GIB, FakeNvml, FakeProcess
from tbdata import python_provider, read_documents, read_scalars

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import distributed
from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.node import NodeRole, lock_path
from tb_plugin_ttsmon.recorder.nvml import NvmlSource

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

_RANK = textwrap.dedent(
    """
    import sys, time
    sys.modules["tensorflow"] = None  # a PyTorch job's process: starts in a second, not five
    from tb_plugin_ttsmon.recorder import node
    node.DEFAULT_GRACE_S = float(sys.argv[3])
    node.DEFAULT_RETRY_S = 0.2
    import tb_plugin_ttsmon as ttsmon
    mon = ttsmon.Monitor(sys.argv[1], interval=0.1, writer="event", gpus=False,
                         host_sampling=sys.argv[4])
    print(mon.log_dir, flush=True)
    t0 = time.monotonic()
    step = 0
    while time.monotonic() - t0 < float(sys.argv[2]):
        with mon.step(step):
            time.sleep(0.02)
        mon.log_training(step, loss=1.0)
        step += 1
    mon.close()
    """
)


def _start_rank(
    logdir, rank, world, job, seconds, *, grace_s=10.0, host_sampling="auto", tmpdir=None
):
    env = {
        **os.environ,
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": str(world),
        "GROUP_RANK": "0",
        "TORCHELASTIC_RUN_ID": job,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen(
        [sys.executable, "-c", _RANK, str(logdir), str(seconds), str(grace_s), host_sampling],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs):
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
        outs.append(out.strip())
    return outs


def _runs(logdir):
    host = distributed.short_hostname()
    with python_provider(str(logdir)) as p:
        return {
            rank: (
                read_scalars(p, f"{host}-rank{rank}"),
                read_documents(p, f"{host}-rank{rank}", metadata.RUN_FACTS_TAG),
            )
            for rank in range(3)
        }


def test_one_rank_per_node_samples_the_host(tmp_path):
    job = uuid.uuid4().hex
    procs = [_start_rank(tmp_path, r, 3, job, 2.0, tmpdir=tmp_path) for r in range(3)]
    dirs = _finish(procs)
    host = distributed.short_hostname()
    assert dirs == [str(tmp_path / f"{host}-rank{r}") for r in range(3)]
    runs = _runs(tmp_path)
    samplers = [r for r, (series, _) in runs.items() if "system/cpu_percent" in series]
    assert samplers == [0]
    for rank, (series, facts) in runs.items():
        # Every rank samples its own process tree and times its steps.
        assert "process/rss_bytes" in series and "train/step_time_ms" in series
        assert not any(t.startswith(("system/", "container/")) for t in series) or rank == 0
        assert facts[-1]["distributed"]["samples_node"] is (rank == 0)
        assert facts[-1]["job"] == f"torchrun-{job}"
    assert "host" in runs[0][1][-1] and "host" not in runs[1][1][-1]
    # The lock file says who holds it, for people.
    assert os.path.exists(lock_path(f"torchrun-{job}", str(tmp_path)))


def test_another_rank_takes_over_when_the_sampler_exits(tmp_path):
    job = uuid.uuid4().hex
    first = _start_rank(tmp_path, 0, 2, job, 1.0, grace_s=0.5, tmpdir=tmp_path)
    second = _start_rank(tmp_path, 1, 2, job, 4.0, grace_s=0.5, tmpdir=tmp_path)
    _finish([first, second])
    runs = _runs(tmp_path)
    rank0, _ = runs[0]
    rank1, facts1 = runs[1]
    end0 = max(w for _, w, _ in rank0["system/cpu_percent"].points)
    walls1 = [w for _, w, _ in rank1["system/memory_used_bytes"].points]
    assert walls1 and min(walls1) >= end0 - 0.05  # never both at once
    assert max(walls1) > end0 + 1.0
    # Its facts at the start say it did not sample the node; new ones at the takeover say it does.
    assert [f["distributed"]["samples_node"] for f in facts1] == [False, True]
    assert "host" in facts1[-1]


@pytest.mark.parametrize(("setting", "expected"), [("always", [0, 1]), ("never", [])])
def test_host_sampling_setting(tmp_path, setting, expected):
    job = uuid.uuid4().hex
    procs = [
        _start_rank(tmp_path, r, 2, job, 1.0, host_sampling=setting, tmpdir=tmp_path)
        for r in range(2)
    ]
    _finish(procs)
    host = distributed.short_hostname()
    with python_provider(str(tmp_path)) as p:
        have = [r for r in range(2) if "system/cpu_percent" in read_scalars(p, f"{host}-rank{r}")]
    assert have == expected


def test_node_role_is_one_holder_per_job(tmp_path):
    calls = []
    faults = FaultLog()
    a = NodeRole("job-a", True, faults, who="a", lock_dir=str(tmp_path))
    b = NodeRole(
        "job-a",
        False,
        faults,
        who="b",
        lock_dir=str(tmp_path),
        grace_s=0.0,
        retry_s=0.0,
        on_takeover=lambda: calls.append("b"),
    )
    other_job = NodeRole("job-b", True, faults, lock_dir=str(tmp_path))
    assert a.try_acquire() and a.holder
    assert not b.try_acquire() and not b.holder
    assert other_job.try_acquire()  # another job on the node samples it too
    with open(a.path) as f:
        assert f.read().split() == [str(os.getpid()), "a"]
    a.close()
    assert b.try_acquire() and b.holder and calls == ["b"]
    b.close()
    other_job.close()


def test_a_late_rank_waits_its_grace_before_asking(tmp_path):
    faults = FaultLog()
    late = NodeRole("job", False, faults, lock_dir=str(tmp_path), grace_s=3600.0)
    assert not late.try_acquire()  # nobody holds it, but local rank 0 may still come
    early = NodeRole("job", True, faults, lock_dir=str(tmp_path))
    assert early.try_acquire()
    early.close()
    late.close()


def test_a_rank_that_does_not_sample_the_node_reads_only_its_own_gpu_memory():
    fake = FakeNvml(gpu_count=4)
    me = os.getpid()
    fake.gpus[2].compute_processes = [
        FakeProcess(pid=me, usedGpuMemory=5 * GIB),
        FakeProcess(pid=4242, usedGpuMemory=7 * GIB),  # another rank
    ]
    node_sampler = [False]
    source = NvmlSource(FaultLog(), lambda: {me}, nvml=fake, device_wide=lambda: node_sampler[0])
    out: dict[str, float] = {}
    source.sample(100.0, out)
    assert out == {"gpu/2/process_memory_used_bytes": 5 * GIB}
    # The GPUs it does not use are looked at again only every PROCESS_RESCAN_S.
    fake.calls.clear()
    out = {}
    source.sample(101.0, out)
    assert out == {"gpu/2/process_memory_used_bytes": 5 * GIB}
    assert fake.calls["nvmlDeviceGetComputeRunningProcesses"] == 1
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 0
    # The node's sampler reads every GPU's device-wide fields.
    node_sampler[0] = True
    out = {}
    source.sample(102.0, out)
    assert {f"gpu/{g}/utilization_percent" for g in range(4)} <= set(out)
    source.close()
