"""Tests of the cgroup source against fake /proc and /sys/fs/cgroup trees.

Each fixture lays out, under tmp_path, the files a kernel would show for one
kind of host or container; the source reads them through its `root` argument,
so nothing in Python is patched. One test runs against the real machine.
"""

from __future__ import annotations

import logging
import pathlib
import shutil

import pytest

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.cgroup import CgroupSource
from tb_plugin_ttsmon.recorder.faults import FaultLog

GiB = 1024**3
V1_UNLIMITED = "9223372036854771712"  # what a 64-bit kernel shows for "no limit"
CPU_TAGS = {
    "container/cpu_limit_cores",
    "container/cpu_usage_cores",
    "container/cpu_percent_of_limit",
}
MEMORY_TAGS = {
    "container/memory_limit_bytes",
    "container/memory_used_bytes",
    "container/memory_percent_of_limit",
}


def write(root: pathlib.Path, rel: str, text: str) -> pathlib.Path:
    """Writes `text` to `root/rel`, creating directories on the way."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def sample(src: CgroupSource, now_s: float) -> dict[str, float]:
    out: dict[str, float] = {}
    src.sample(now_s, out)
    return out


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture
def source_at():
    """Builds a CgroupSource on a fake root with its own FaultLog."""

    def make(root: pathlib.Path) -> CgroupSource:
        return CgroupSource(FaultLog(), root=str(root))

    return make


@pytest.fixture
def v2_limited(tmp_path: pathlib.Path) -> pathlib.Path:
    """cgroup v2 host: the job's group has 1.5 CPUs and 2 GiB."""
    write(tmp_path, "proc/self/cgroup", "0::/job.slice/train.scope\n")
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    # Decoys in the root group: the process's own group must win over them.
    write(tmp_path, "sys/fs/cgroup/cpu.stat", "usage_usec 999999999\n")
    write(tmp_path, "sys/fs/cgroup/memory.current", "7\n")
    group = "sys/fs/cgroup/job.slice/train.scope"
    write(tmp_path, f"{group}/cpu.max", "150000 100000\n")
    write(
        tmp_path,
        f"{group}/cpu.stat",
        "usage_usec 1000000\nuser_usec 800000\nsystem_usec 200000\nnr_periods 0\n",
    )
    write(tmp_path, f"{group}/memory.max", f"{2 * GiB}\n")
    write(tmp_path, f"{group}/memory.current", f"{GiB // 2}\n")
    return tmp_path


@pytest.fixture
def v2_unlimited(tmp_path: pathlib.Path) -> pathlib.Path:
    """cgroup v2 with no CPU quota and no memory limit."""
    write(tmp_path, "proc/self/cgroup", "0::/user.slice/session-1.scope\n")
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    group = "sys/fs/cgroup/user.slice/session-1.scope"
    write(tmp_path, f"{group}/cpu.max", "max 100000\n")
    write(tmp_path, f"{group}/cpu.stat", "usage_usec 5000\n")
    write(tmp_path, f"{group}/memory.max", "max\n")
    write(tmp_path, f"{group}/memory.current", "123456\n")
    return tmp_path


@pytest.fixture
def v2_path_missing(tmp_path: pathlib.Path) -> pathlib.Path:
    """A v2 container: /proc names the host's path, the group is mounted at the root."""
    write(tmp_path, "proc/self/cgroup", "0::/system.slice/docker-abc123.scope\n")
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    write(tmp_path, "sys/fs/cgroup/cpu.max", "400000 100000\n")
    write(tmp_path, "sys/fs/cgroup/cpu.stat", "usage_usec 0\n")
    write(tmp_path, "sys/fs/cgroup/memory.max", f"{8 * GiB}\n")
    write(tmp_path, "sys/fs/cgroup/memory.current", f"{2 * GiB}\n")
    return tmp_path


@pytest.fixture
def v1_joined(tmp_path: pathlib.Path) -> pathlib.Path:
    """A v1 Docker container: cpu and cpuacct mounted together as "cpu,cpuacct"."""
    write(
        tmp_path,
        "proc/self/cgroup",
        "12:memory:/docker/abc123\n"
        "4:cpu,cpuacct:/docker/abc123\n"
        "3:cpuset:/docker/abc123\n"
        "1:name=systemd:/docker/abc123\n",
    )
    write(tmp_path, "proc/meminfo", f"MemTotal:       {16 * GiB // 1024} kB\nMemFree: 1 kB\n")
    # Inside the container the group is mounted at each controller's root.
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "3000000000\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.limit_in_bytes", f"{4 * GiB}\n")
    write(tmp_path, "sys/fs/cgroup/memory/memory.usage_in_bytes", f"{GiB}\n")
    return tmp_path


@pytest.fixture
def v1_unlimited(tmp_path: pathlib.Path) -> pathlib.Path:
    """A v1 host like the CI machine: separate cpu/cpuacct mounts, no limits."""
    write(
        tmp_path,
        "proc/self/cgroup",
        "4:memory:/process_api/4e3a\n2:cpuacct:/\n1:cpu:/\n0::/\n",
    )
    write(tmp_path, "proc/meminfo", f"MemTotal:       {16 * GiB // 1024} kB\n")
    write(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_quota_us", "-1\n")
    write(tmp_path, "sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "sys/fs/cgroup/cpuacct/cpuacct.usage", "123456789\n")
    write(tmp_path, "sys/fs/cgroup/memory/process_api/4e3a/memory.limit_in_bytes", V1_UNLIMITED)
    write(tmp_path, "sys/fs/cgroup/memory/process_api/4e3a/memory.usage_in_bytes", "3616768\n")
    return tmp_path


@pytest.fixture
def hybrid(tmp_path: pathlib.Path) -> pathlib.Path:
    """v1 lines plus a unified "0::/" line; cpu has v1 files, memory only v2 ones."""
    write(
        tmp_path,
        "proc/self/cgroup",
        "5:memory:/job\n3:cpu,cpuacct:/job\n0::/job\n",
    )
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    # v1 cpu under separate mounts (no joined dir), in the job's own group.
    write(tmp_path, "sys/fs/cgroup/cpu/job/cpu.cfs_quota_us", "50000\n")
    write(tmp_path, "sys/fs/cgroup/cpu/job/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "sys/fs/cgroup/cpuacct/job/cpuacct.usage", "1000000000\n")
    # v2 files for both: cpu's must lose to v1, memory's are the only ones.
    write(tmp_path, "sys/fs/cgroup/job/cpu.max", "800000 100000\n")
    write(tmp_path, "sys/fs/cgroup/job/cpu.stat", "usage_usec 1\n")
    write(tmp_path, "sys/fs/cgroup/job/memory.max", f"{GiB}\n")
    write(tmp_path, "sys/fs/cgroup/job/memory.current", f"{GiB // 4}\n")
    return tmp_path


# -- what a user sees ------------------------------------------------------


def test_v2_limits_first_sample_has_no_cpu_rate(v2_limited, source_at, caplog):
    src = source_at(v2_limited)

    assert sample(src, 100.0) == {
        "container/cpu_limit_cores": 1.5,
        "container/memory_limit_bytes": float(2 * GiB),
        "container/memory_used_bytes": float(GiB // 2),
        "container/memory_percent_of_limit": 25.0,
    }
    assert warnings_of(caplog) == []


def test_v2_cpu_rate_across_two_samples(v2_limited, source_at):
    src = source_at(v2_limited)
    cpu_stat = v2_limited / "sys/fs/cgroup/job.slice/train.scope/cpu.stat"
    sample(src, 100.0)
    # 1.5 s of CPU in 2 s of wall time: 0.75 cores, half of the 1.5-core quota.
    cpu_stat.write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")

    out = sample(src, 102.0)

    assert out["container/cpu_limit_cores"] == 1.5
    assert out["container/cpu_usage_cores"] == pytest.approx(0.75)
    assert out["container/cpu_percent_of_limit"] == pytest.approx(50.0)
    assert all(type(v) is float for v in out.values())


def test_cpu_rate_is_skipped_when_counter_goes_back_or_clock_stalls(v2_limited, source_at):
    src = source_at(v2_limited)
    cpu_stat = v2_limited / "sys/fs/cgroup/job.slice/train.scope/cpu.stat"
    sample(src, 100.0)
    cpu_stat.write_text("usage_usec 10\n")  # cgroup recreated: counter restarted
    assert CPU_TAGS & set(sample(src, 101.0)) == {"container/cpu_limit_cores"}
    cpu_stat.write_text("usage_usec 500010\n")
    assert CPU_TAGS & set(sample(src, 101.0)) == {"container/cpu_limit_cores"}  # no time passed
    cpu_stat.write_text("usage_usec 1000010\n")
    # The rate is measured from the latest reading (101.0 s, 0.5 s of CPU).
    assert sample(src, 102.0)["container/cpu_usage_cores"] == pytest.approx(0.5)


def test_limits_are_reread_each_sample(v2_limited, source_at):
    src = source_at(v2_limited)
    group = v2_limited / "sys/fs/cgroup/job.slice/train.scope"
    sample(src, 100.0)
    (group / "cpu.max").write_text("300000 100000\n")
    (group / "memory.max").write_text("max\n")

    out = sample(src, 101.0)

    assert out["container/cpu_limit_cores"] == 3.0
    assert MEMORY_TAGS.isdisjoint(out)
    assert src.facts() == {
        "cgroup": {"version": 2, "cpu_limit_cores": 3.0, "memory_limit_bytes": None}
    }


def test_v2_unlimited_writes_and_logs_nothing(v2_unlimited, source_at, caplog):
    src = source_at(v2_unlimited)

    assert sample(src, 1.0) == {}
    assert sample(src, 2.0) == {}
    assert warnings_of(caplog) == []
    assert src.facts() == {
        "cgroup": {"version": 2, "cpu_limit_cores": None, "memory_limit_bytes": None}
    }


def test_v2_missing_group_path_falls_back_to_mount_root(v2_path_missing, source_at):
    src = source_at(v2_path_missing)

    # facts() before any sample does the discovery itself.
    assert src.facts()["cgroup"] == {
        "version": 2,
        "cpu_limit_cores": 4.0,
        "memory_limit_bytes": 8 * GiB,
    }
    assert sample(src, 10.0) == {
        "container/cpu_limit_cores": 4.0,
        "container/memory_limit_bytes": float(8 * GiB),
        "container/memory_used_bytes": float(2 * GiB),
        "container/memory_percent_of_limit": 25.0,
    }


def test_v2_path_escaping_the_mount_falls_back_to_mount_root(v2_path_missing, source_at):
    # Under a cgroup namespace a process outside its root sees "/../..".
    write(v2_path_missing, "proc/self/cgroup", "0::/../../outside\n")
    write(v2_path_missing, "outside/cpu.max", "100000 100000\n")

    assert sample(source_at(v2_path_missing), 10.0)["container/cpu_limit_cores"] == 4.0


def test_v1_joined_cpu_cpuacct(v1_joined, source_at):
    src = source_at(v1_joined)
    usage = v1_joined / "sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"

    assert sample(src, 50.0) == {
        "container/cpu_limit_cores": 2.0,
        "container/memory_limit_bytes": float(4 * GiB),
        "container/memory_used_bytes": float(GiB),
        "container/memory_percent_of_limit": 25.0,
    }
    usage.write_text("7000000000\n")  # +4 s of CPU (in ns) over 4 s: one full core
    out = sample(src, 54.0)
    assert out["container/cpu_usage_cores"] == pytest.approx(1.0)
    assert out["container/cpu_percent_of_limit"] == pytest.approx(50.0)
    assert src.facts() == {
        "cgroup": {"version": 1, "cpu_limit_cores": 2.0, "memory_limit_bytes": 4 * GiB}
    }


def test_v1_cpu_mounted_under_single_names(v1_joined, source_at):
    # Same /proc line, but the hierarchy is mounted as "cpu" and "cpuacct".
    joined = v1_joined / "sys/fs/cgroup/cpu,cpuacct"
    shutil.copytree(joined, v1_joined / "sys/fs/cgroup/cpu")
    shutil.move(joined, v1_joined / "sys/fs/cgroup/cpuacct")
    (v1_joined / "sys/fs/cgroup/cpu/cpu.cfs_quota_us").write_text("150000\n")

    assert sample(source_at(v1_joined), 1.0)["container/cpu_limit_cores"] == 1.5


def test_v1_cpu_without_cpuacct_keeps_the_limit_and_says_why_once(v1_joined, source_at, caplog):
    (v1_joined / "sys/fs/cgroup/cpu,cpuacct/cpuacct.usage").unlink()
    write(v1_joined, "proc/self/cgroup", "12:memory:/docker/abc123\n4:cpu:/docker/abc123\n")
    shutil.move(v1_joined / "sys/fs/cgroup/cpu,cpuacct", v1_joined / "sys/fs/cgroup/cpu")
    src = source_at(v1_joined)

    outs = [sample(src, float(t)) for t in range(3)]

    assert [CPU_TAGS & set(out) for out in outs] == [{"container/cpu_limit_cores"}] * 3
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "cpu_usage is switched off" in messages[0]
    assert "no cpuacct.usage found" in messages[0]


def test_v1_unlimited_memory_and_cpu_writes_and_logs_nothing(v1_unlimited, source_at, caplog):
    src = source_at(v1_unlimited)

    assert sample(src, 1.0) == {}
    assert sample(src, 2.0) == {}
    assert warnings_of(caplog) == []
    assert src.facts() == {
        "cgroup": {"version": 1, "cpu_limit_cores": None, "memory_limit_bytes": None}
    }


def test_v1_memory_limit_above_host_memory_is_no_limit(v1_unlimited, source_at):
    limit = v1_unlimited / "sys/fs/cgroup/memory/process_api/4e3a/memory.limit_in_bytes"
    limit.write_text(f"{32 * GiB}\n")  # the host has 16 GiB: this limit can never bind
    src = source_at(v1_unlimited)
    assert sample(src, 1.0) == {}

    limit.write_text(f"{8 * GiB}\n")
    assert sample(src, 2.0) == {
        "container/memory_limit_bytes": float(8 * GiB),
        "container/memory_used_bytes": 3616768.0,
        "container/memory_percent_of_limit": pytest.approx(100.0 * 3616768 / (8 * GiB)),
    }


def test_hybrid_prefers_v1_where_its_files_exist(hybrid, source_at):
    src = source_at(hybrid)
    sample(src, 0.0)
    (hybrid / "sys/fs/cgroup/cpuacct/job/cpuacct.usage").write_text("1250000000\n")

    out = sample(src, 1.0)

    assert out == {
        "container/cpu_limit_cores": 0.5,  # v1's 50000/100000, not v2's 8 cores
        "container/cpu_usage_cores": pytest.approx(0.25),
        "container/cpu_percent_of_limit": pytest.approx(50.0),
        "container/memory_limit_bytes": float(GiB),  # v1 memory has no files: v2's
        "container/memory_used_bytes": float(GiB // 4),
        "container/memory_percent_of_limit": 25.0,
    }
    assert src.facts() == {
        "cgroup": {"version": 1, "cpu_limit_cores": 0.5, "memory_limit_bytes": GiB}
    }


def test_no_proc_means_no_cgroup(tmp_path, source_at, caplog):
    src = source_at(tmp_path)

    assert sample(src, 1.0) == {}
    assert src.facts() == {
        "cgroup": {"version": None, "cpu_limit_cores": None, "memory_limit_bytes": None}
    }
    assert warnings_of(caplog) == []


def test_written_tags_are_in_the_metric_table(v2_limited, source_at):
    src = source_at(v2_limited)
    sample(src, 0.0)
    (v2_limited / "sys/fs/cgroup/job.slice/train.scope/cpu.stat").write_text("usage_usec 3000000\n")

    out = sample(src, 1.0)

    assert set(out) == CPU_TAGS | MEMORY_TAGS
    for tag in out:
        spec = metadata.spec_for_tag(tag)
        assert spec.pattern == tag
        assert spec.unit in (metadata.UNIT_CORES, metadata.UNIT_BYTES, metadata.UNIT_PERCENT)


# -- faults ----------------------------------------------------------------


def test_file_deleted_mid_run_switches_off_once(v2_limited, source_at, caplog):
    src = source_at(v2_limited)
    current = v2_limited / "sys/fs/cgroup/job.slice/train.scope/memory.current"
    sample(src, 0.0)
    current.unlink()

    outs = [sample(src, float(t)) for t in range(1, 3)]
    assert warnings_of(caplog) == []  # two failures: not yet off
    outs += [sample(src, float(t)) for t in range(3, 7)]

    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "memory_used is switched off" in messages[0]
    assert "memory.current" in messages[0]
    for out in outs:  # the other fields carry on
        assert out["container/memory_limit_bytes"] == float(2 * GiB)
        assert out["container/cpu_limit_cores"] == 1.5
        assert "container/cpu_usage_cores" in out
        assert {"container/memory_used_bytes", "container/memory_percent_of_limit"}.isdisjoint(out)
    # Off for the rest of the run, even if the file comes back.
    current.write_text("1\n")
    assert "container/memory_used_bytes" not in sample(src, 10.0)


def test_file_unreadable_mid_run_switches_off_once(v1_joined, source_at, caplog):
    src = source_at(v1_joined)
    quota = v1_joined / "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us"
    sample(src, 0.0)
    quota.unlink()
    quota.mkdir()  # reading a directory fails with an OSError, as root too

    outs = [sample(src, float(t)) for t in range(1, 6)]

    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert "cpu_limit is switched off" in messages[0]
    for out in outs:
        assert CPU_TAGS.isdisjoint(out)
        assert out["container/memory_used_bytes"] == float(GiB)
    assert src.facts()["cgroup"]["cpu_limit_cores"] is None


def test_malformed_content_is_a_failure_not_a_crash(v2_limited, source_at, caplog):
    src = source_at(v2_limited)
    group = v2_limited / "sys/fs/cgroup/job.slice/train.scope"
    (group / "cpu.max").write_text("lots of cpu\n")
    (group / "memory.max").write_text("2G\n")
    (group / "cpu.stat").write_text("usage_usec\n")

    outs = [sample(src, float(t)) for t in range(4)]

    assert outs == [{}] * 4
    messages = sorted(warnings_of(caplog))
    assert len(messages) == 2
    assert "cpu_limit is switched off" in messages[0]
    assert "memory_limit is switched off" in messages[1]
    assert "'2G'" in messages[1]


def test_failures_must_be_in_a_row(v2_limited, source_at, caplog):
    src = source_at(v2_limited)
    current = v2_limited / "sys/fs/cgroup/job.slice/train.scope/memory.current"
    for t in range(6):
        # Fails every other sample (a file briefly gone during a cgroup move).
        if t % 2:
            current.write_text("1024\n")
        else:
            current.unlink(missing_ok=True)
        sample(src, float(t))

    assert warnings_of(caplog) == []
    assert sample(src, 6.0)["container/memory_used_bytes"] == 1024.0


def test_close_is_idempotent(v2_limited, source_at):
    src = source_at(v2_limited)
    sample(src, 0.0)
    src.close()
    src.close()


# -- the real machine ------------------------------------------------------


def test_real_machine_does_not_raise_and_facts_are_consistent(caplog):
    src = CgroupSource(FaultLog(), root="/")
    outs = [sample(src, 1000.0), sample(src, 1001.0)]
    facts = src.facts()

    assert set(facts) == {"cgroup"}
    cgroup = facts["cgroup"]
    assert set(cgroup) == {"version", "cpu_limit_cores", "memory_limit_bytes"}
    assert cgroup["version"] in (1, 2, None)
    cpu_limit, memory_limit = cgroup["cpu_limit_cores"], cgroup["memory_limit_bytes"]
    assert cpu_limit is None or (isinstance(cpu_limit, float) and cpu_limit > 0)
    assert memory_limit is None or (isinstance(memory_limit, int) and memory_limit > 0)
    for out in outs:
        assert set(out) <= CPU_TAGS | MEMORY_TAGS
        assert all(type(v) is float for v in out.values())
        # Tags appear exactly where facts report a limit.
        assert ("container/cpu_limit_cores" in out) == (cpu_limit is not None)
        assert ("container/memory_limit_bytes" in out) == (memory_limit is not None)
        if memory_limit is not None:
            assert out["container/memory_limit_bytes"] == float(memory_limit)
    assert warnings_of(caplog) == []
