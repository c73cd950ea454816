"""A synthetic distributed job, written as real event files by the recorder's writer.

`write_job` lays out what a torchrun job of ``nodes x ranks_per_node`` ranks
writes with ttsmon: one run per rank, ``<folder>/<host>-rank<k>``, whose
``run/facts`` name the job; local rank 0 of each node also holds the node's
host and GPU series (``system/``, ``gpu/{i}/``), as the recorder's elected
node sampler does. Every rank logs its step phases (``train/step_time_ms``,
``train/data_time_ms``), steps/s, loss, its process tree and the GPU memory
of its processes on its own GPU.

Faults can be planted, each the way it looks in real logs:

* ``straggler_rank``: that rank's input pipeline is slow (its time between
  steps is long), and in DDP every other rank waits for it inside its step;
* ``stalled_rank``: that rank stops logging at ``stall_at_s`` while the
  others go on;
* ``hang_at_s``: from then on no rank's step advances while every GPU stays
  busy (a collective hang);
* ``heavy_memory_rank``: that rank holds far more GPU memory than the rest.

Used by the job view's tests (server and browser) and its render benchmark.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import writers

GIB = 1024**3


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What `write_job` writes (see the module docstring)."""

    folder: str = "exp1"
    job: str = "torchrun-5c1f0e2a"
    nodes: int = 2
    ranks_per_node: int = 2
    start_wall_s: float = 1_795_872_000.0
    steps: int = 120
    step_s: float = 1.0
    sample_s: float = 5.0
    fast_data_ms: float = 2.0
    compute_ms: float = 9.0
    straggler_rank: int | None = None
    straggler_data_ms: float = 24.0
    stalled_rank: int | None = None
    stall_at_s: float = 60.0
    hang_at_s: float | None = None
    hang_for_s: float = 0.0
    heavy_memory_rank: int | None = None
    gpu_memory_total_bytes: int = 80 * GIB

    @property
    def world_size(self) -> int:
        return self.nodes * self.ranks_per_node

    def host(self, node: int) -> str:
        return f"node-{node}"

    def run(self, rank: int) -> str:
        node = rank // self.ranks_per_node
        return (
            f"{self.folder}/{self.host(node)}-rank{rank}"
            if self.folder
            else (f"{self.host(node)}-rank{rank}")
        )


def _rank_memory_bytes(spec: JobSpec, rank: int) -> float:
    base = 30 * GIB + (rank % 7) * 0.2 * GIB
    return 62 * GIB if rank == spec.heavy_memory_rank else base


def write_job(root: str | os.PathLike[str], spec: JobSpec) -> list[str]:
    """Writes the job's runs under `root`; returns the run names."""
    names = []
    end_s = spec.start_wall_s + spec.steps * spec.step_s + (spec.hang_for_s or 0.0)
    for rank in range(spec.world_size):
        node, local = divmod(rank, spec.ranks_per_node)
        run = spec.run(rank)
        names.append(run)
        w = writers.EventFileSummaryWriter(str(Path(root) / run))
        try:
            _write_rank(w, spec, rank, node, local, end_s)
        finally:
            w.close()
    return names


def _facts(spec: JobSpec, rank: int, node: int, local: int) -> dict[str, object]:
    samples_node = local == 0
    doc: dict[str, object] = {
        "hostname": spec.host(node),
        "pid": 1000 + rank,
        "process_started_at_s": spec.start_wall_s - 5,
        "started_at_s": spec.start_wall_s - 1,
        "job": spec.job,
        "rank": rank,
        "local_rank": local,
        "world_size": spec.world_size,
        "node_rank": node,
        "distributed": {
            "launcher": "torchrun",
            "local_world_size": spec.ranks_per_node,
            "samples_node": samples_node,
            "rank_dir": True,
        },
    }
    if samples_node:
        doc["nvml"] = {
            "available": True,
            "devices": [
                {"index": g, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-{node:04x}{g:04x}"}
                for g in range(spec.ranks_per_node)
            ],
        }
    return doc


def _write_rank(
    w: writers.EventFileSummaryWriter,
    spec: JobSpec,
    rank: int,
    node: int,
    local: int,
    end_s: float,
) -> None:
    t0 = spec.start_wall_s
    facts = _facts(spec, rank, node, local)
    w.write(metadata.sample_step(t0 - 1), {}, {metadata.RUN_FACTS_TAG: facts}, t0 - 1)
    stop_s = t0 + spec.stall_at_s if rank == spec.stalled_rank else math.inf
    hang_s = t0 + spec.hang_at_s if spec.hang_at_s is not None else math.inf
    # Training: one event per step, at the step's end.
    slow = spec.straggler_rank is not None
    last_step = 0
    for step in range(1, spec.steps + 1):
        wall = t0 + step * spec.step_s
        if wall >= stop_s or wall >= hang_s:
            break
        last_step = step
        straggling = rank == spec.straggler_rank
        data_ms = spec.straggler_data_ms if straggling else spec.fast_data_ms
        # In DDP the others wait inside their step for the straggler's gradients.
        wait_ms = spec.straggler_data_ms - spec.fast_data_ms if slow and not straggling else 0.0
        jitter = 0.3 * math.sin(step * 0.7 + rank)
        scalars = {
            "train/step_time_ms": spec.compute_ms + wait_ms + jitter,
            "train/data_time_ms": data_ms + 0.1 * math.cos(step + rank),
            "train/loss": 2.5 * math.exp(-step / 80.0) + 0.05 * math.sin(step + rank),
        }
        if step > 1:
            scalars["train/steps_per_s"] = 1.0 / spec.step_s
        w.write(step, scalars, wall_time_s=wall)
    # Samples: the rank's process tree and GPU memory; the node's host and GPUs
    # where this rank is the node's sampler.
    gpu = local
    t = t0
    while t <= end_s:
        alive = t < stop_s
        if not alive:
            break
        hung = t >= hang_s
        step_now = min(last_step, int((min(t, hang_s) - t0) / spec.step_s))
        values: dict[str, float] = {
            "process/cpu_percent": 95.0 + 3.0 * math.sin(t / 17.0 + rank),
            "process/rss_bytes": 6 * GIB + rank * 10 * 1024**2,
            f"gpu/{gpu}/process_memory_used_bytes": _rank_memory_bytes(spec, rank),
            "sampler/duration_ms": 1.2,
        }
        if step_now > 0:
            values["sampler/training_step"] = float(step_now)
        if local == 0:
            values["system/cpu_percent"] = 60.0 + 5 * math.sin(t / 11.0)
            for g in range(spec.ranks_per_node):
                owner = node * spec.ranks_per_node + g
                busy = 99.0 if hung else 88.0 + 6 * math.sin(t / 9.0 + g)
                if owner == spec.stalled_rank and t >= t0 + spec.stall_at_s:
                    busy = 0.0
                used = _rank_memory_bytes(spec, owner) + 0.5 * GIB
                values[f"gpu/{g}/utilization_percent"] = busy
                values[f"gpu/{g}/memory_used_bytes"] = used
                values[f"gpu/{g}/memory_total_bytes"] = float(spec.gpu_memory_total_bytes)
        w.write(metadata.sample_step(t), values, wall_time_s=t)
        t += spec.sample_s
