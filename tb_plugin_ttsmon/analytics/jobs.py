"""The job view: a distributed job's ranks side by side, and what they say together.

A job of 64 ranks is 64 runs (`recorder.distributed`); drawn as 64 lines per
chart it cannot be read. Here each metric of the catalogue's job view
(``charts.json``, ``job``) becomes a ranks x time matrix of bucket means,
with the min / median / max across ranks per bucket and the worst rank
named; each node's GPUs become one small chart's worth of bucketed series;
and four findings look across ranks, where a single run cannot see them:

* ``straggler``: one rank's time between steps (its input pipeline) is well
  above the job's median, and in data-parallel training the others wait for
  it inside their steps; or, where ranks do not wait for each other, one
  rank's step time is;
* ``stalled_rank``: a rank stopped logging training steps while the others
  went on;
* ``gpu_busy_no_progress``: no rank's step advanced for a while, yet the GPUs
  stayed busy, as in a hung collective (NCCL spins at 100 %);
* ``uneven_gpu_memory``: one rank holds far more (or less) GPU memory than
  the job's median.

Pure numpy over `SeriesLike` columns, like the rest of the analytics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tb_plugin_ttsmon.analytics.common import SEVERITY_RANK, SeriesLike, finite_values, fixed
from tb_plugin_ttsmon.analytics.heatmaps import bucket_means, nice_buckets
from tb_plugin_ttsmon.analytics.run_findings import Finding
from tb_plugin_ttsmon.catalogue import WORSE_LOW, JobMetric
from tb_plugin_ttsmon.units import format_bytes, format_duration

GIB = 1024.0**3
_GPU_TAG_RE = re.compile(r"gpu/(\d+)/([A-Za-z0-9_.\-]+)")
# A rank's own processes on a GPU: which GPUs it uses.
_PROCESS_MEMORY = "process_memory_used_bytes"
# Device-wide GPU series: written by the node's sampler only.
_DEVICE_WIDE = "utilization_percent"
STEP_TIME = "train/step_time_ms"
DATA_TIME = "train/data_time_ms"


@dataclasses.dataclass(frozen=True)
class JobParams:
    """Thresholds of the job findings (the defaults are what the tab uses).

    Attributes:
      warmup_steps: Steps left out at the start of each rank's phase timings
        (compilation, cuDNN autotuning and first batches are slower everywhere).
      straggler_min_ms: The least excess over the job's median that makes a
        straggler, in ms (below it, timer noise).
      straggler_ratio: ... and the least ratio to that median.
      stall_min_s: The least silence of a rank, in s, that is a stall ...
      stall_intervals: ... or this many of the job's median step intervals, if longer.
      hang_min_s: The least time without progress, in s, that is a hang ...
      hang_intervals: ... or this many median step intervals, if longer.
      busy_percent: Mean GPU utilization at which GPUs count as busy.
      min_busy_samples: Fewest GPU samples inside a hang to trust their mean.
      memory_ratio: Ratio of a rank's peak GPU memory to the job's median
        that counts as uneven (or its inverse, for a rank far below).
      memory_min_bytes: ... and the least difference in bytes.
    """

    warmup_steps: int = 3
    straggler_min_ms: float = 2.0
    straggler_ratio: float = 1.5
    stall_min_s: float = 30.0
    stall_intervals: float = 20.0
    hang_min_s: float = 60.0
    hang_intervals: float = 20.0
    busy_percent: float = 80.0
    min_busy_samples: int = 3
    memory_ratio: float = 1.5
    memory_min_bytes: float = GIB


@dataclasses.dataclass(frozen=True)
class JobFinding(Finding):
    """A finding about a job, naming the rank it is about (None: the whole job)."""

    rank: int | None = None
    run: str | None = None


@dataclasses.dataclass(frozen=True)
class RankData:
    """One rank's run: its latest run facts and the series the job view reads.

    Attributes:
      run: The run's name.
      facts: Its latest ``run/facts`` document (``job``, ``rank``, ``hostname``...).
      series: Tag -> series: the job metrics' tags it has, its GPU series.
      last_wall_time_s: Its newest point of any series (from the listing),
        to tell a rank whose process still runs from one that is gone.
    """

    run: str
    facts: Mapping[str, Any]
    series: Mapping[str, SeriesLike]
    last_wall_time_s: float | None = None

    @property
    def rank(self) -> int | None:
        return _int_or_none(self.facts.get("rank"))

    @property
    def host(self) -> str:
        host = self.facts.get("hostname")
        return host if isinstance(host, str) and host else "(unknown host)"

    @property
    def node_rank(self) -> int | None:
        return _int_or_none(self.facts.get("node_rank"))

    @functools.cached_property
    def train_points(self) -> tuple[np.ndarray, np.ndarray]:
        """(wall times, steps) of every training point the rank logged, by wall time.

        Read by the rank's entry and by three findings: sorted once.
        """
        walls, steps = [], []
        for tag, s in self.series.items():
            if tag.startswith("train/") and len(s.wall_time):
                walls.append(s.wall_time)
                steps.append(s.step)
        if not walls:
            return np.zeros(0), np.zeros(0, np.int64)
        w, st = np.concatenate(walls), np.concatenate(steps)
        order = np.argsort(w, kind="stable")
        return w[order], st[order]


def _int_or_none(x: object) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None


def _sort_key(r: RankData) -> tuple[int, int, str]:
    rank = r.rank
    return (0, rank, r.run) if rank is not None else (1, 0, r.run)


def _nan_stats(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min, median and max of each column over its finite rows (NaN where none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
        return np.nanmin(matrix, 0), np.nanmedian(matrix, 0), np.nanmax(matrix, 0)


def _as_list(x: np.ndarray) -> list[float | None]:
    """Bucket means for the answer: 6 significant digits (a third of the bytes), None if empty."""
    return [float(f"{v:.6g}") if math.isfinite(v) else None for v in x.tolist()]


def _gpu_tags(series: Mapping[str, SeriesLike], suffix: str) -> dict[int, str]:
    out = {}
    for tag in series:
        m = _GPU_TAG_RE.fullmatch(tag)
        if m and m.group(2) == suffix:
            out[int(m.group(1))] = tag
    return out


def rank_gpus(r: RankData) -> list[int]:
    """The GPUs whose memory ever held this rank's processes."""
    return sorted(
        g
        for g, tag in _gpu_tags(r.series, _PROCESS_MEMORY).items()
        if (v := finite_values(r.series[tag])).size and float(v.max()) > 0
    )


def samples_node(r: RankData) -> bool:
    """Whether this rank wrote its node's host or device-wide GPU series."""
    if any(t.startswith(("system/", "container/")) for t in r.series):
        return True
    if _gpu_tags(r.series, _DEVICE_WIDE):
        return True
    dist = r.facts.get("distributed")
    return isinstance(dist, Mapping) and dist.get("samples_node") is True


def _median_step_interval_s(ranks: Sequence[RankData]) -> float | None:
    """The job's typical time per training step, from each rank's step timeline."""
    gaps = []
    for r in ranks:
        w, st = r.train_points
        if len(w) < 3:
            continue
        # One wall time per distinct step: a step's tags may come as several events.
        _, first = np.unique(st, return_index=True)
        ws, ss = w[first], st[first]
        order = np.argsort(ss)
        ws, ss = ws[order], ss[order]
        dw, ds = np.diff(ws), np.diff(ss)
        ok = (ds > 0) & np.isfinite(dw) & (dw >= 0)
        if ok.any():
            gaps.append(float(np.median(dw[ok] / ds[ok])))
    return float(np.median(gaps)) if gaps else None


def _phase_median(r: RankData, tag: str, params: JobParams) -> float | None:
    s = r.series.get(tag)
    if s is None or not len(s.value):
        return None
    keep = s.step >= int(s.step.min()) + params.warmup_steps
    v = s.value[keep] if keep.any() else s.value
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else None


def job_view(
    ranks: Sequence[RankData],
    metrics: Sequence[JobMetric],
    gpu_metrics: Sequence[JobMetric],
    buckets: int = 120,
    params: JobParams | None = None,
) -> dict[str, Any]:
    """The job view of http_api.md (``GET job``), less the job's name and folder."""
    params = params or JobParams()
    ranks = sorted(ranks, key=_sort_key)
    walls = [
        s.wall_time[np.isfinite(s.wall_time)]
        for r in ranks
        for s in r.series.values()
        if len(s.wall_time)
    ]
    walls = [w for w in walls if len(w)]
    start = min((float(w.min()) for w in walls), default=None)
    end = max((float(w.max()) for w in walls), default=None)
    gpus_of = {r.run: rank_gpus(r) for r in ranks}
    out: dict[str, Any] = {
        "world_size": max((_int_or_none(r.facts.get("world_size")) or 0 for r in ranks), default=0)
        or len(ranks),
        "node_count": len({r.host for r in ranks}),
        "start_wall_time_s": None,
        "end_wall_time_s": None,
        "bucket_s": None,
        "buckets": 0,
        "ranks": [_rank_entry(r, gpus_of[r.run]) for r in ranks],
        "metrics": [],
        "gpu_metrics": [_metric_head(m) for m in gpu_metrics],
        "nodes": [],
        "findings": [f.to_dict() for f in job_findings(ranks, params)],
    }
    if start is None or end is None:
        return out
    start, bucket_s, count = nice_buckets(start, end, buckets)
    out.update(
        start_wall_time_s=start,
        end_wall_time_s=start + count * bucket_s,
        bucket_s=bucket_s,
        buckets=count,
    )
    for m in metrics:
        entry = _metric_rows(m, ranks, start, bucket_s, count)
        if entry is not None:
            out["metrics"].append(entry)
    out["nodes"] = _nodes(ranks, gpus_of, gpu_metrics, start, bucket_s, count)
    return out


def _metric_head(m: JobMetric) -> dict[str, Any]:
    return {
        "id": m.id,
        "tag": m.tag,
        "title": m.title,
        "unit": m.unit,
        "worse": m.worse,
        "y": m.y,
        "description": m.description,
    }


def _rank_entry(r: RankData, gpus: list[int]) -> dict[str, Any]:
    w, st = r.train_points
    last_step = last_step_wall = None
    if len(st):
        i = int(np.argmax(st))
        last_step, last_step_wall = int(st[i]), float(w[i])
    series_walls = [float(s.wall_time.max()) for s in r.series.values() if len(s.wall_time)]
    last_wall = max([*series_walls, *([r.last_wall_time_s] if r.last_wall_time_s else [])] or [0])
    return {
        "rank": r.rank,
        "run": r.run,
        "host": r.host,
        "node_rank": r.node_rank,
        "local_rank": _int_or_none(r.facts.get("local_rank")),
        "samples_node": samples_node(r),
        "gpus": gpus,
        "last_step": last_step,
        "last_wall_time_s": last_wall or None,
        "last_step_wall_time_s": last_step_wall,
    }


def _rank_row(
    m: JobMetric, r: RankData, start: float, bucket_s: float, count: int
) -> np.ndarray | None:
    tags = [t for t in r.series if m.match(t)]
    if not tags:
        return None
    rows = np.vstack([bucket_means(r.series[t], start, bucket_s, count)[0] for t in tags])
    if len(tags) == 1:
        return rows[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        combined = np.nansum(rows, 0) if m.sum else np.nanmean(rows, 0)
    combined[np.all(~np.isfinite(rows), 0)] = np.nan
    return combined


def _metric_rows(
    m: JobMetric, ranks: Sequence[RankData], start: float, bucket_s: float, count: int
) -> dict[str, Any] | None:
    rows = [_rank_row(m, r, start, bucket_s, count) for r in ranks]
    if all(row is None or not np.isfinite(row).any() for row in rows):
        return None
    matrix = np.vstack([np.full(count, np.nan) if row is None else row for row in rows])
    lo, med, hi = _nan_stats(matrix)
    return {
        **_metric_head(m),
        "values": [_as_list(row) for row in matrix],
        "min": _as_list(lo),
        "median": _as_list(med),
        "max": _as_list(hi),
        "worst": _worst(m, ranks, matrix),
    }


def _worst(m: JobMetric, ranks: Sequence[RankData], matrix: np.ndarray) -> dict[str, Any] | None:
    """The rank furthest from the job's median at the worse end, with its median and the job's.

    Ranks are compared bucket by bucket, against the median of the ranks in
    the same bucket: a rank that stopped early is judged on the time it ran
    (its loss from the first minutes is not "worse" than the others' later
    loss), and a metric that drifts for every rank names nobody.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bucket_median = np.nanmedian(matrix, 0)
        offsets = np.nanmedian(matrix - bucket_median, 1)
    have = np.flatnonzero(np.isfinite(offsets))
    if len(have) < 2:
        return None
    ends = offsets[have]
    pick = int(have[np.argmin(ends)] if m.worse == WORSE_LOW else have[np.argmax(ends)])
    if offsets[pick] == 0:
        return None  # every rank alike: none is worse
    row = matrix[pick]
    where = np.isfinite(row) & np.isfinite(bucket_median)
    r = ranks[pick]
    return {
        "rank": r.rank,
        "run": r.run,
        "value": float(np.median(row[where])),
        # The job's median over the same buckets, so the two compare.
        "job_median": float(np.median(bucket_median[where])),
    }


def _nodes(
    ranks: Sequence[RankData],
    gpus_of: Mapping[str, list[int]],
    gpu_metrics: Sequence[JobMetric],
    start: float,
    bucket_s: float,
    count: int,
) -> list[dict[str, Any]]:
    by_host: dict[str, list[RankData]] = {}
    for r in ranks:
        by_host.setdefault(r.host, []).append(r)

    def order(item: tuple[str, list[RankData]]) -> tuple[int, str]:
        nodes = [r.node_rank for r in item[1] if r.node_rank is not None]
        return (min(nodes) if nodes else 1 << 30, item[0])

    out = []
    for host, members in sorted(by_host.items(), key=order):
        samplers = [r for r in members if samples_node(r)]
        # The rank that wrote most of the node's samples names the node's run;
        # after a takeover the node's series come from both.
        samplers.sort(key=lambda r: -sum(len(s.value) for s in r.series.values()))
        gpus = sorted({g for r in samplers for g in _gpu_tags(r.series, _DEVICE_WIDE)})
        node_ranks = [r.node_rank for r in members if r.node_rank is not None]
        entry: dict[str, Any] = {
            "node_rank": min(node_ranks) if node_ranks else None,
            "host": host,
            "run": samplers[0].run if samplers else None,
            "rank": samplers[0].rank if samplers else None,
            "gpus": [],
        }
        for g in gpus:
            series: dict[str, list[float | None]] = {}
            for m in gpu_metrics:
                rows = [
                    bucket_means(r.series[t], start, bucket_s, count)[0]
                    for r in samplers
                    for t in r.series
                    if t.startswith(f"gpu/{g}/") and m.match(t)
                ]
                if rows:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        series[m.id] = _as_list(np.nanmean(np.vstack(rows), 0))
            totals = [
                float(v.max())
                for r in samplers
                if (v := finite_values(r.series.get(f"gpu/{g}/memory_total_bytes"))).size
            ]
            entry["gpus"].append(
                {
                    "gpu": g,
                    "ranks": [r.rank for r in members if g in gpus_of[r.run]],
                    "memory_total_bytes": max(totals) if totals else None,
                    "series": series,
                }
            )
        out.append(entry)
    return out


# -- findings -------------------------------------------------------------------------------------


def job_findings(ranks: Sequence[RankData], params: JobParams | None = None) -> list[JobFinding]:
    """The job's findings (see the module docstring), most important first."""
    params = params or JobParams()
    ranks = sorted(ranks, key=_sort_key)
    out: list[JobFinding] = []
    # The job's time per step scales the bars of a stall and of a hang.
    interval = _median_step_interval_s(ranks) or 0.0
    out += _straggler(ranks, params)
    out += _stalled(ranks, params, interval)
    out += _busy_no_progress(ranks, params, interval)
    out += _uneven_memory(ranks, params)
    out.sort(key=lambda f: SEVERITY_RANK.get(f.severity, 9))
    return out


def _who(r: RankData) -> str:
    return f"Rank {r.rank} ({r.run})" if r.rank is not None else r.run


def _straggler(ranks: Sequence[RankData], params: JobParams) -> list[JobFinding]:
    data = {r.run: _phase_median(r, DATA_TIME, params) for r in ranks}
    step = {r.run: _phase_median(r, STEP_TIME, params) for r in ranks}
    by_run = {r.run: r for r in ranks}
    for tag, medians in ((DATA_TIME, data), (STEP_TIME, step)):
        have = {run: v for run, v in medians.items() if v is not None}
        if len(have) < 2:
            continue
        worst_run = max(have, key=lambda run: have[run])
        worst = have[worst_run]
        # Against the *other* ranks: with two ranks the job's median is halfway.
        job_median = float(np.median([v for run, v in have.items() if run != worst_run]))
        excess = worst - job_median
        if excess < params.straggler_min_ms or worst < params.straggler_ratio * job_median:
            continue
        r = by_run[worst_run]
        over = sorted(
            (
                run
                for run, v in have.items()
                if v - job_median >= params.straggler_min_ms
                and v >= params.straggler_ratio * job_median
            ),
            key=lambda run: -have[run],
        )
        more = f" ({len(over) - 1} more ranks are above the same bar)" if len(over) > 1 else ""
        numbers: dict[str, float] = {
            "others_median_ms": round(job_median, 3),
            "excess_ms": round(excess, 3),
            "ratio": round(worst / job_median, 3) if job_median > 0 else math.inf,
            "ranks_over": float(len(over)),
        }
        if tag == DATA_TIME:
            numbers["data_time_ms"] = round(worst, 3)
            own_step = step.get(worst_run)
            others = [v for run, v in step.items() if run != worst_run and v is not None]
            wait = ""
            if own_step is not None and others:
                others_step = float(np.median(others))
                numbers["step_time_ms"] = round(own_step, 3)
                numbers["others_step_time_ms"] = round(others_step, 3)
                if others_step - own_step >= 0.5 * excess:
                    wait = (
                        f"; the other ranks wait for it inside their steps (median step time "
                        f"{fixed(others_step, 1)} ms against {fixed(own_step, 1)} ms on "
                        f"rank {r.rank})"
                    )
            text = (
                f"{_who(r)} spends {fixed(worst, 1)} ms between steps (its input pipeline), "
                f"{fixed(excess, 1)} ms more than the other ranks' median of "
                f"{fixed(job_median, 1)} ms"
                f"{wait}{more}. Every step of the job waits for its slowest rank: give this "
                f"rank's data loader more workers or prefetching, or look for a slow disk or "
                f"a busy CPU on {r.host}."
            )
        else:
            numbers["step_time_ms"] = round(worst, 3)
            text = (
                f"{_who(r)} takes {fixed(worst, 1)} ms per step, {fixed(excess, 1)} ms more "
                f"than the other ranks' median of {fixed(job_median, 1)} ms{more}; ranks that "
                f"synchronize wait for it. Look at its GPU (clocks, throttling, a neighbour "
                f"job) on {r.host}."
            )
        return [
            JobFinding(
                "straggler",
                "warning",
                f"Rank {r.rank} is the straggler" if r.rank is not None else "A straggler",
                text,
                numbers,
                rank=r.rank,
                run=r.run,
            )
        ]
    return []


def _stalled(ranks: Sequence[RankData], params: JobParams, interval: float) -> list[JobFinding]:
    last: dict[str, tuple[float, int]] = {}
    for r in ranks:
        w, st = r.train_points
        if len(w):
            i = int(np.argmax(w))
            last[r.run] = (float(w[i]), int(st.max()))
    if len(last) < 2:
        return []
    job_last_wall = max(v[0] for v in last.values())
    job_last_step = max(v[1] for v in last.values())
    bar = max(params.stall_min_s, params.stall_intervals * interval)
    going = [run for run, v in last.items() if job_last_wall - v[0] < bar]
    out = []
    for r in ranks:
        if r.run not in last or r.run in going:
            continue
        # "The others go on": most of the other ranks logged within the bar.
        if len(going) * 2 < len(last) - 1:
            continue
        wall, step = last[r.run]
        silent = job_last_wall - wall
        sampled = max(
            [float(s.wall_time.max()) for s in r.series.values() if len(s.wall_time)]
            + ([r.last_wall_time_s] if r.last_wall_time_s else [])
        )
        alive = job_last_wall - sampled < bar
        state = (
            "its process is still being sampled: it is stuck, not gone (dump its stack with "
            "py-spy dump)"
            if alive
            else "its samples stopped too: the process has likely exited (look at its log)"
        )
        out.append(
            JobFinding(
                "stalled_rank",
                "warning",
                f"Rank {r.rank} stopped logging" if r.rank is not None else "A rank stopped",
                f"{_who(r)} last logged step {step}, {format_duration(silent)} before the "
                f"job's latest training step (step {job_last_step}, logged by "
                f"{len(going)} other ranks); {state}.",
                {
                    "last_step": float(step),
                    "job_last_step": float(job_last_step),
                    "silent_s": round(silent, 3),
                    "ranks_going_on": float(len(going)),
                },
                rank=r.rank,
                run=r.run,
            )
        )
    return out


def _busy_no_progress(
    ranks: Sequence[RankData], params: JobParams, interval: float
) -> list[JobFinding]:
    # The job's progress: the times its highest step so far went up.
    walls, steps = [], []
    for r in ranks:
        w, st = r.train_points
        walls.append(w)
        steps.append(st)
    if not walls or not sum(len(w) for w in walls):
        return []
    w = np.concatenate(walls)
    st = np.concatenate(steps)
    order = np.argsort(w, kind="stable")
    w, st = w[order], st[order]
    best = np.maximum.accumulate(st)
    rises = np.concatenate(([True], best[1:] > best[:-1]))
    progress = w[rises]
    # Where the GPUs' samples end is where we can still tell they were busy.
    util = [
        (r, s)
        for r in ranks
        for tag, s in r.series.items()
        if (m := _GPU_TAG_RE.fullmatch(tag)) and m.group(2) == _DEVICE_WIDE and len(s.value)
    ]
    if not util:
        return []
    end = max(float(s.wall_time.max()) for _, s in util)
    edges = np.concatenate((progress, [end]))
    gaps = np.diff(edges)
    bar = max(params.hang_min_s, params.hang_intervals * interval)
    candidates = np.flatnonzero(gaps >= bar)
    found = None
    for i in candidates[np.argsort(-gaps[candidates])]:
        t0, t1 = float(edges[i]), float(edges[i + 1])
        vals = [s.value[(s.wall_time > t0) & (s.wall_time <= t1)] for _, s in util]
        v = np.concatenate(vals)
        v = v[np.isfinite(v)]
        if len(v) >= params.min_busy_samples and float(v.mean()) >= params.busy_percent:
            gpus = sum(1 for x in vals if len(x))
            found = (t0, t1, float(v.mean()), gpus, int(best[rises][i]))
            break
    if found is None:
        return []
    t0, t1, mean, gpus, step = found
    ongoing = t1 >= end
    when = "until the last sample" if ongoing else "before it moved again"
    return [
        JobFinding(
            "gpu_busy_no_progress",
            "critical",
            "GPUs busy, training stuck",
            f"No rank's training step advanced for {format_duration(t1 - t0)} after step "
            f"{step} ({when}), while {gpus} GPUs averaged {fixed(mean)} % utilization: the "
            f"job looks hung in a collective (an all-reduce waiting for a rank that never "
            f"joins). Dump every rank's stack (py-spy dump), and run with "
            f"NCCL_DEBUG=INFO and TORCH_NCCL_ASYNC_ERROR_HANDLING=1 so a hang becomes an error.",
            {
                "no_progress_s": round(t1 - t0, 3),
                "gpu_utilization_mean_percent": round(mean, 1),
                "gpus": float(gpus),
                "last_step": float(step),
            },
        )
    ]


def _uneven_memory(ranks: Sequence[RankData], params: JobParams) -> list[JobFinding]:
    peaks: dict[str, float] = {}
    for r in ranks:
        total = 0.0
        for tag in _gpu_tags(r.series, _PROCESS_MEMORY).values():
            v = finite_values(r.series[tag])
            if v.size:
                total += float(v.max())
        if total > 0:
            peaks[r.run] = total
    if len(peaks) < 2:
        return []
    by_run = {r.run: r for r in ranks}
    high = max(peaks, key=lambda run: peaks[run])
    low = min(peaks, key=lambda run: peaks[run])

    def others(run: str) -> float:
        return float(np.median([v for r, v in peaks.items() if r != run]))

    pick, how, median = None, "", 0.0
    if peaks[high] >= params.memory_ratio * others(high) and (
        peaks[high] - others(high) >= params.memory_min_bytes
    ):
        pick, how, median = high, "more", others(high)
    elif others(low) >= params.memory_ratio * peaks[low] and (
        others(low) - peaks[low] >= params.memory_min_bytes
    ):
        pick, how, median = low, "less", others(low)
    if pick is None:
        return []
    r = by_run[pick]
    other = by_run[low if how == "more" else high]
    ratio = peaks[pick] / median if median > 0 else math.inf
    end = "lowest" if how == "more" else "highest"
    return [
        JobFinding(
            "uneven_gpu_memory",
            "warning",
            "GPU memory differs across ranks",
            f"{_who(r)} peaks at {format_bytes(peaks[pick])} of GPU memory, "
            f"{fixed(ratio, 2)}× the other ranks' median of {format_bytes(median)} ({end}: rank "
            f"{other.rank}, {format_bytes(peaks[other.run])}). The fullest GPU sets the batch "
            f"size every rank can use: look for uneven batches (sort or bucket variable-length "
            f"utterances by length per rank), or state kept on one rank only.",
            {
                "peak_bytes": peaks[pick],
                "others_median_bytes": median,
                "ratio": round(ratio, 3),
                "other_peak_bytes": peaks[other.run],
            },
            rank=r.rank,
            run=r.run,
        )
    ]
