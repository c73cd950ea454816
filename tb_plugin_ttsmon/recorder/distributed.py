"""Which rank of which distributed job this process is, from its launcher's environment.

Launchers tell each process its place in the job through environment
variables; nothing here talks to the job's process group, so a `Monitor` can
start before (or without) ``torch.distributed.init_process_group``:

* torchrun and ``torch.distributed`` launchers: ``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``GROUP_RANK`` (the node),
  ``TORCHELASTIC_RUN_ID``, ``TORCHELASTIC_RESTART_COUNT``;
* TensorFlow: ``TF_CONFIG`` (a cluster spec and this task's type and index);
* Open MPI: ``OMPI_COMM_WORLD_RANK``, ``OMPI_COMM_WORLD_LOCAL_RANK``,
  ``OMPI_COMM_WORLD_SIZE``, ``OMPI_COMM_WORLD_LOCAL_SIZE``;
* SLURM (``srun``): ``SLURM_JOB_ID``, ``SLURM_PROCID``, ``SLURM_LOCALID``,
  ``SLURM_NTASKS``, ``SLURM_NODEID``.

The first launcher of that list whose variables are set wins: torchrun inside a
SLURM allocation numbers its workers itself, and ``SLURM_PROCID`` is then the
node's task, not the worker's rank.

The **job id** is the same string in every rank of one job, so that readers
can group the ranks: the launcher's own id where it has one (a torchrun
rendezvous id, a SLURM job and step), else a digest of what the ranks share
(the rendezvous address and port, the TF cluster spec). torchrun without
``--rdzv-id`` names every job ``none``; its ranks then get a digest of
``MASTER_ADDR:MASTER_PORT``, which two jobs run one after the other may share,
so readers tell jobs apart by job id *and* the folder their runs are in.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from typing import Any

# torchrun's default rendezvous id: not a job id.
_NO_RUN_ID = frozenset({"", "none", "None"})
# TF_CONFIG task types in rank order; an evaluator runs beside the job.
_TF_RANKED_TYPES = ("chief", "master", "worker", "ps")
# SLURM_TASKS_PER_NODE: "2(x3),1" = 2 tasks on each of 3 nodes, then 1.
_SLURM_TASKS_RE = re.compile(r"(\d+)(?:\(x(\d+)\))?")
_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
# Who samples the host and the GPUs (`Monitor`'s `host_sampling`).
HOST_SAMPLING = ("auto", "always", "never")
# Overrides of a Monitor's arguments for a whole job, set where the job is launched.
RANK_DIR_ENV = "TTSMON_RANK_DIR"
HOST_SAMPLING_ENV = "TTSMON_HOST_SAMPLING"
# The last path component of a run directory that already names rank k:
# "rank3", "node-a-rank3", "rank_3", "rank-03", or the bare number "3".
_RANK_DIR_RE = re.compile(r"(?:(?:^|[^A-Za-z0-9])rank[-_]?|^)0*(\d+)$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class RankInfo:
    """This process's place in a distributed job.

    Attributes:
      launcher: ``"torchrun"``, ``"tf_config"``, ``"openmpi"`` or ``"slurm"``.
      job: The job id: the same in every rank of the job.
      rank: Global rank, 0-based.
      world_size: Ranks in the job.
      local_rank: Rank on this node (None where the launcher does not say).
      local_world_size: Ranks on this node (None where unknown).
      node_rank: Index of this node in the job (None where unknown).
      restart_count: torchrun's restart count of the worker group.
      task_type: TF_CONFIG's task type (``worker``, ``chief``, ...).
      task_index: TF_CONFIG's task index.
    """

    launcher: str
    job: str
    rank: int
    world_size: int
    local_rank: int | None = None
    local_world_size: int | None = None
    node_rank: int | None = None
    restart_count: int | None = None
    task_type: str | None = None
    task_index: int | None = None

    @property
    def distributed(self) -> bool:
        """Whether the job has more than one rank."""
        return self.world_size > 1

    @property
    def first_on_node(self) -> bool:
        """Whether this is the node's first rank (local rank 0, or unknown)."""
        return not self.local_rank

    def with_job(self, job: str) -> RankInfo:
        """This rank in the job `job` (an explicit job id wins over the launcher's)."""
        return dataclasses.replace(self, job=job)

    def facts(self) -> dict[str, Any]:
        """The top-level `run/facts` fields (`docs/format.md`, *Distributed jobs*)."""
        return {
            "job": self.job,
            "rank": self.rank,
            "local_rank": self.local_rank,
            "world_size": self.world_size,
            "node_rank": self.node_rank,
        }

    def launcher_facts(self) -> dict[str, Any]:
        """The `distributed` section of `run/facts`: what else the launcher said."""
        out: dict[str, Any] = {
            "launcher": self.launcher,
            "local_world_size": self.local_world_size,
        }
        if self.restart_count is not None:
            out["restart_count"] = self.restart_count
        if self.task_type is not None:
            out["task_type"] = self.task_type
            out["task_index"] = self.task_index
        return out


def detect(environ: Mapping[str, str] | None = None) -> RankInfo | None:
    """This process's `RankInfo` from its launcher's variables, or None outside a job.

    Variables that are set but unreadable (``RANK=abc``) count as not set: a
    job is never refused for them, it is recorded as a single process.
    """
    env = os.environ if environ is None else environ
    for reader in (_torch, _tf_config, _openmpi, _slurm):
        info = reader(env)
        if info is not None:
            return info
    return None


def short_hostname() -> str:
    """This host's name up to the first dot, safe as a path component."""
    name = socket.gethostname().split(".", 1)[0]
    return _HOST_UNSAFE.sub("_", name).strip("._") or "host"


def rank_dir_name(info: RankInfo) -> str:
    """The run directory of a rank inside the job's log directory: ``<host>-rank<k>``."""
    return f"{short_hostname()}-rank{info.rank}"


def names_rank(log_dir: str, rank: int) -> bool:
    """Whether `log_dir`'s last component already names rank `rank` (``.../rank3``, ``.../3``)."""
    last = os.path.basename(os.path.normpath(log_dir)) if log_dir else ""
    m = _RANK_DIR_RE.search(last)
    return m is not None and int(m.group(1)) == rank


def _int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if raw is None:
        return None
    raw = raw.strip()
    return int(raw) if raw.isdigit() else None


def _digest(*parts: object) -> str:
    text = "\0".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=4).hexdigest()


def _slurm_job(env: Mapping[str, str]) -> str | None:
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job:
        return None
    step = env.get("SLURM_STEP_ID") or env.get("SLURM_STEPID")
    return f"slurm-{job}.{step}" if step else f"slurm-{job}"


def _torch(env: Mapping[str, str]) -> RankInfo | None:
    rank, world = _int(env, "RANK"), _int(env, "WORLD_SIZE")
    if rank is None or world is None or not 0 <= rank < world:
        return None
    local = _int(env, "LOCAL_RANK")
    local_world = _int(env, "LOCAL_WORLD_SIZE")
    node = _int(env, "GROUP_RANK")
    if node is None and local_world:
        node = rank // local_world  # torch.distributed.launch numbers ranks node by node
    run_id = env.get("TORCHELASTIC_RUN_ID", "")
    if run_id not in _NO_RUN_ID:
        job = f"torchrun-{run_id}"
    else:
        job = _slurm_job(env) or (
            "torch-" + _digest(env.get("MASTER_ADDR", ""), env.get("MASTER_PORT", ""), world)
        )
    return RankInfo(
        launcher="torchrun",
        job=job,
        rank=rank,
        world_size=world,
        local_rank=local,
        local_world_size=local_world,
        node_rank=node,
        restart_count=_int(env, "TORCHELASTIC_RESTART_COUNT"),
    )


def _tf_config(env: Mapping[str, str]) -> RankInfo | None:
    raw = env.get("TF_CONFIG")
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(config, dict):
        return None
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        return None
    task_type, task_index = task.get("type"), task.get("index", 0)
    if not isinstance(task_type, str) or not isinstance(task_index, int):
        return None
    # Every task in rank order: the chief first, then workers, then parameter servers.
    tasks: list[tuple[str, int, str]] = []
    for kind in (*_TF_RANKED_TYPES, *sorted(set(cluster) - set(_TF_RANKED_TYPES))):
        addresses = cluster.get(kind)
        if isinstance(addresses, dict):  # {index: address} for sparse clusters
            addresses = [addresses[k] for k in sorted(addresses, key=lambda k: int(k))]
        if not isinstance(addresses, list):
            continue
        for i, address in enumerate(addresses):
            tasks.append((kind, i, str(address)))
    try:
        me = tasks.index(next(t for t in tasks if t[0] == task_type and t[1] == task_index))
    except StopIteration:
        return None
    hosts: list[str] = []
    for _, _, address in tasks:
        host = address.rsplit(":", 1)[0]
        if host not in hosts:
            hosts.append(host)
    my_host = tasks[me][2].rsplit(":", 1)[0]
    on_my_host = [t for t in tasks if t[2].rsplit(":", 1)[0] == my_host]
    spec = json.dumps(cluster, sort_keys=True, separators=(",", ":"))
    return RankInfo(
        launcher="tf_config",
        job=_slurm_job(env) or f"tf-{_digest(spec)}",
        rank=me,
        world_size=len(tasks),
        local_rank=on_my_host.index(tasks[me]),
        local_world_size=len(on_my_host),
        node_rank=hosts.index(my_host),
        task_type=task_type,
        task_index=task_index,
    )


def _openmpi(env: Mapping[str, str]) -> RankInfo | None:
    rank, world = _int(env, "OMPI_COMM_WORLD_RANK"), _int(env, "OMPI_COMM_WORLD_SIZE")
    if rank is None or world is None or not 0 <= rank < world:
        return None
    local_world = _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE")
    # Open MPI's job id, by version (ORTE, then PRRTE/PMIx); a digest of the
    # head node's URI where neither is set.
    job_id = (
        env.get("OMPI_MCA_ess_base_jobid")
        or env.get("OMPI_MCA_orte_ess_jobid")
        or env.get("PMIX_NAMESPACE")
    )
    job = _slurm_job(env) or (
        f"openmpi-{job_id}" if job_id else "openmpi-" + _digest(env.get("OMPI_MCA_orte_hnp_uri"))
    )
    return RankInfo(
        launcher="openmpi",
        job=job,
        rank=rank,
        world_size=world,
        local_rank=_int(env, "OMPI_COMM_WORLD_LOCAL_RANK"),
        local_world_size=local_world,
        # mpirun maps ranks to nodes by slot (its default): node = rank // ranks per node.
        node_rank=rank // local_world if local_world else None,
    )


def _slurm(env: Mapping[str, str]) -> RankInfo | None:
    rank, world = _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS")
    job = _slurm_job(env)
    if rank is None or world is None or job is None or not 0 <= rank < world:
        return None
    node = _int(env, "SLURM_NODEID")
    return RankInfo(
        launcher="slurm",
        job=job,
        rank=rank,
        world_size=world,
        local_rank=_int(env, "SLURM_LOCALID"),
        local_world_size=_slurm_tasks_on_node(env.get("SLURM_TASKS_PER_NODE"), node),
        node_rank=node,
    )


def _slurm_tasks_on_node(tasks_per_node: str | None, node: int | None) -> int | None:
    """Tasks on node `node` from SLURM_TASKS_PER_NODE (``"2(x3),1"``)."""
    if not tasks_per_node or node is None:
        return None
    seen = 0
    for part in tasks_per_node.split(","):
        m = _SLURM_TASKS_RE.fullmatch(part.strip())
        if m is None:
            return None
        count, repeat = int(m.group(1)), int(m.group(2) or 1)
        if node < seen + repeat:
            return count
        seen += repeat
    return None


# -- a Monitor's settings in a job ---------------------------------------------------------------


def resolve(job: str | None) -> RankInfo | None:
    """This process's `RankInfo` (`detect`), with `job` as its job id when given.

    Raises:
      ValueError: `job` is empty.
    """
    info = detect()
    if job is None:
        return info
    if not isinstance(job, str) or not job.strip():
        raise ValueError(f"job must be a non-empty string, got {job!r}")
    if info is None:
        return RankInfo(launcher="none", job=job, rank=0, world_size=1)
    return info.with_job(job)


def use_rank_dir(rank_dir: bool | None, info: RankInfo | None, log_dir: str) -> bool:
    """Whether this rank writes to ``<log_dir>/<host>-rank<k>`` (see `Monitor`'s `rank_dir`).

    Raises:
      TypeError: `rank_dir` is neither a bool nor None.
    """
    if rank_dir is not None and not isinstance(rank_dir, bool):
        raise TypeError(f"rank_dir must be True, False or None, not {rank_dir!r}")
    if info is None or not info.distributed:
        return bool(rank_dir) and info is not None
    if rank_dir is not None:
        return rank_dir
    env = os.environ.get(RANK_DIR_ENV, "").strip().lower()
    if env in ("0", "false", "no", "off"):
        return False
    if env in ("1", "true", "yes", "on"):
        return True
    return not names_rank(log_dir, info.rank)


def host_sampling_setting(value: str) -> str:
    """`Monitor`'s `host_sampling`, the environment's where the argument is the default.

    Raises:
      ValueError: not one of `HOST_SAMPLING`.
    """
    if value not in HOST_SAMPLING:
        raise ValueError(f"host_sampling must be one of {HOST_SAMPLING}, got {value!r}")
    env = os.environ.get(HOST_SAMPLING_ENV, "").strip().lower()
    if value == "auto" and env in HOST_SAMPLING:
        return env
    return value


def join(log_dir: str, name: str) -> str:
    """`name` under `log_dir`, a local path or a URL (``s3://bucket/exp1``)."""
    if "://" in log_dir:
        return log_dir.rstrip("/") + "/" + name
    return os.path.join(log_dir, name)
