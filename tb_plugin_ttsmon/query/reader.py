"""`Reader`: ttsmon data of one experiment, read through a TensorBoard data provider.

Every consumer reads through here: the plugin's routes (`plugin/plugin.py`
parses the query and encodes the answer), `ttsmon export` and `ttsmon report`
(`query.logdir.LogdirData`), and the seed's chart calls (`compat.py`).
Answers are plain Python values; floats may be NaN or infinite, and the one
encoder (`query.encode.dumps`) spells them for JSON.

Nothing here uses the multiplexer, which does not exist under TensorBoard's
Rust loader.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from tensorboard import errors
from tensorboard.data import provider as provider_lib

from tb_plugin_ttsmon import analytics, catalogue, metadata
from tb_plugin_ttsmon.query import profiles as profiles_lib
from tb_plugin_ttsmon.query.cache import ResultCache
from tb_plugin_ttsmon.query.downsample import minmax_indices

PLUGIN = metadata.PLUGIN_NAME
# Ask the data provider for every point it keeps; the loader's own limit
# (--samples_per_plugin) is the real bound.
READ_ALL = 10**8
# Scopes whose latest values the overview shows.
SAMPLED_GROUPS = ("system", "process", "container", "gpu", "tf")


class Series:
    """One series as numpy columns."""

    @property
    def nbytes(self) -> int:
        """Memory of the columns (what a shared read of the series costs)."""
        return int(self.wall_time.nbytes + self.step.nbytes + self.value.nbytes)

    __slots__ = ("kind", "step", "unit", "value", "wall_time")

    def __init__(self, unit: str, kind: str, data: Sequence[Any]) -> None:
        self.unit = unit
        self.kind = kind
        n = len(data)
        self.wall_time = np.fromiter((d.wall_time for d in data), np.float64, n)
        self.step = np.fromiter((d.step for d in data), np.int64, n)
        self.value = np.fromiter((d.value for d in data), np.float64, n)
        # Read-only: one read of a run serves every route and viewer (`sharing_reads`).
        for column in (self.wall_time, self.step, self.value):
            column.flags.writeable = False

    def rows(self, index: np.ndarray | None = None) -> list[tuple[float, int, float]]:
        """``(wall_time_s, step, value)`` rows; values may be NaN or infinite."""
        w, s, v = self.wall_time, self.step, self.value
        if index is not None:
            w, s, v = w[index], s[index], v[index]
        return list(zip(w.tolist(), s.tolist(), v.tolist()))


# Fields of an alert event, in the order http_api.md shows them.
ALERT_FIELDS = (
    "wall_time_s",
    "training_step",
    "rule",
    "tag",
    "op",
    "threshold",
    "value",
    "for_s",
    "severity",
    "state",
    "message",
)


# Longest user value quoted whole in an error message: a 3000-character run
# name from a hostile query is no readable sentence.
MAX_QUOTED_CHARS = 100


# The series `compare` reads: training, validation, memory, GPUs, requests.
_COMPARED = re.compile(
    r"^(train/|val/|process/rss_bytes$|system/memory_used_bytes$"
    r"|gpu/\d+/(utilization_percent|memory_used_bytes|process_memory_used_bytes)$"
    r"|inference/(latency_ms|rtf)$)"
)


def quoted(value: object) -> str:
    """`value` as a message quotes it: repr(), cut to `MAX_QUOTED_CHARS` with an ellipsis."""
    text = repr(value)
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[: MAX_QUOTED_CHARS - 1]}… ({len(str(value))} characters)"


def _with_last(index: np.ndarray, n: int) -> np.ndarray:
    """`index` (ascending) with the last position ``n - 1`` added if missing."""
    if n and (not len(index) or index[-1] != n - 1):
        return np.append(index, n - 1)
    return index


def series_bytes(series: Mapping[str, Series]) -> int:
    """Memory of a run's read (`Reader.sharing_reads`): its columns plus a little per series."""
    return sum(s.nbytes + 200 for s in series.values())


def process_starts(facts: Sequence[Any]) -> int:
    """How many processes wrote these run-facts documents.

    A process that starts several Monitors (a notebook, two `fit` calls)
    writes one document per Monitor; a restart of the job is a new process.
    Processes are told apart by (hostname, pid, process_started_at_s); a
    document without `process_started_at_s` (written before ttsmon recorded
    it) counts by (hostname, pid).
    """
    seen = set()
    for doc in facts:
        if not isinstance(doc, dict):
            continue
        key = (str(doc.get("hostname")), str(doc.get("pid")), str(doc.get("process_started_at_s")))
        seen.add(key)
    return len(seen)


def group_of(tag: str) -> str:
    """The scope of a tag: its first component."""
    return tag.split("/", 1)[0]


# Fields of `run/facts` that place a run in its distributed job (docs/format.md).
JOB_FIELDS = ("job", "rank", "local_rank", "node_rank", "world_size")


def folder_of(run: str) -> str:
    """The folder of a run: its name before the last ``/`` (``""`` at the top level).

    A job is its job id *and* its folder: launchers reuse default ids.
    """
    return run.rsplit("/", 1)[0] if "/" in run else ""


def job_fields(facts: Any) -> dict[str, Any]:
    """A run's place in its job from its run facts (None where it is in none)."""
    doc = facts if isinstance(facts, dict) else {}
    out = {k: doc.get(k) for k in JOB_FIELDS}
    if not isinstance(out["job"], str) or not out["job"]:
        return dict.fromkeys(JOB_FIELDS)
    for k in JOB_FIELDS[1:]:
        v = out[k]
        if not isinstance(v, int) or isinstance(v, bool):
            out[k] = None
    return out


class Reader:
    """Reads ttsmon data of one experiment for one request."""

    def __init__(self, data_provider: Any, ctx: Any, experiment_id: str) -> None:
        self._provider = data_provider
        self._ctx = ctx
        self._eid = experiment_id
        self._shared: ResultCache[dict[str, Series]] | None = None
        self._versions: Mapping[str, str] = {}

    def sharing_reads(
        self, cache: ResultCache[dict[str, Series]], versions: Mapping[str, str]
    ) -> Reader:
        """This reader, reading each run whole once per data version through `cache`.

        The overview, the series sections and every analytic of a run read
        the same points; with a shared read they are fetched from the data
        provider once per (run, `versions[run]`) for every route and viewer.
        Runs missing from `versions` are read as before.
        """
        self._shared, self._versions = cache, versions
        return self

    @property
    def experiment_id(self) -> str:
        """The experiment this reader reads (part of every cache key)."""
        return self._eid

    # -- listing ---------------------------------------------------------------

    def _list_scalars(self, runs: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        flt = provider_lib.RunTagFilter(runs=runs) if runs is not None else None
        return self._provider.list_scalars(
            self._ctx, experiment_id=self._eid, plugin_name=PLUGIN, run_tag_filter=flt
        )

    def _list_tensors(self, runs: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        flt = provider_lib.RunTagFilter(runs=runs) if runs is not None else None
        return self._provider.list_tensors(
            self._ctx, experiment_id=self._eid, plugin_name=PLUGIN, run_tag_filter=flt
        )

    def _documents(self, runs: Sequence[str] | None, tag: str) -> dict[str, list[Any]]:
        """Every JSON document `tag` per run, in step order (unparsable ones skipped)."""
        flt = provider_lib.RunTagFilter(runs=runs, tags=[tag])
        data = self._provider.read_tensors(
            self._ctx,
            experiment_id=self._eid,
            plugin_name=PLUGIN,
            downsample=READ_ALL,
            run_tag_filter=flt,
        )
        out: dict[str, list[Any]] = {}
        for run, tags in data.items():
            docs = []
            for datum in tags.get(tag, []):
                try:
                    arr = np.asarray(datum.numpy)
                    docs.append(metadata.decode_document(arr.reshape(-1)[0]))
                except (ValueError, IndexError, UnicodeDecodeError, TypeError):
                    continue  # a damaged document is no reason to fail the run
            out[run] = docs
        return out

    def _require_run(self, run: str) -> dict[str, Any]:
        scalars = self._list_scalars([run]).get(run)
        tensors = self._list_tensors([run]).get(run)
        if not scalars and not tensors:
            raise errors.NotFoundError(f"run {quoted(run)} has no ttsmon data")
        return scalars or {}

    # -- routes ----------------------------------------------------------------

    def runs(self) -> dict[str, Any]:
        """The runs holding ttsmon data, with their latest facts."""
        scalars = self._list_scalars()
        tensors = self._list_tensors()
        names = sorted(set(scalars) | set(tensors))
        facts = self._documents(names, metadata.RUN_FACTS_TAG) if names else {}
        out = []
        for run in names:
            docs = facts.get(run, [])
            latest = docs[-1] if docs else None
            series = scalars.get(run, {})
            walls = [ts.max_wall_time for ts in series.values()]
            walls += [ts.max_wall_time for ts in tensors.get(run, {}).values()]
            out.append(
                {
                    "run": run,
                    "hostname": latest.get("hostname") if isinstance(latest, dict) else None,
                    "started_at_s": docs[0].get("started_at_s")
                    if docs and isinstance(docs[0], dict)
                    else None,
                    "last_wall_time_s": max(walls) if walls else None,
                    "restarts": max(process_starts(docs) - 1, 0),
                    "groups": sorted({group_of(t) for t in series}),
                    **job_fields(latest),
                    "facts": latest,
                }
            )
        return {"runs": out}

    # -- serving (issue 12) --------------------------------------------------------

    def serving(self, run: str, buckets: int) -> dict[str, Any]:
        """The serving view of `run` (``GET serving`` in http_api.md).

        Raises:
          NotFoundError: the run does not exist or logged no inference request.
        """
        listed = self._require_run(run)
        tags = [t for t in listed if group_of(t) == "inference"]
        view = analytics.serving_view(self.read(run, tags), buckets) if tags else None
        if view is None:
            raise errors.NotFoundError(f"run {quoted(run)} has no inference requests")
        return {"run": run, **view}

    # -- jobs (issue 11) ---------------------------------------------------------

    def job_runs(self) -> dict[tuple[str, str], list[str]]:
        """The runs of every distributed job, by (job id, folder)."""
        scalars = self._list_scalars()
        tensors = self._list_tensors()
        names = sorted(set(scalars) | set(tensors))
        facts = self._documents(names, metadata.RUN_FACTS_TAG) if names else {}
        out: dict[tuple[str, str], list[str]] = {}
        for run in names:
            docs = facts.get(run, [])
            job = job_fields(docs[-1] if docs else None)["job"]
            if job is not None:
                out.setdefault((job, folder_of(run)), []).append(run)
        return out

    def job(
        self, job: str, folder: str | None, runs: Sequence[str], buckets: int
    ) -> dict[str, Any]:
        """The job view of the runs of job `job` (``GET job`` in http_api.md).

        Reads only the tags the view draws, of every rank at once: a job of
        64 ranks is one read of the data provider, not 64 whole runs.

        Raises:
          NotFoundError: `runs` is empty.
        """
        where = f" in folder {quoted(folder)}" if folder is not None else ""
        if not runs:
            raise errors.NotFoundError(f"no run of job {quoted(job)}{where}")
        cat = catalogue.load()
        listed = self._list_scalars(list(runs))
        wanted_by_run: dict[str, list[str]] = {}
        for run in runs:
            wanted_by_run[run] = [
                t
                for t in listed.get(run, {})
                if t.startswith("train/")
                or t.endswith("/memory_total_bytes")
                or any(m.match(t) for m in (*cat.job_metrics, *cat.job_gpu_metrics))
            ]
        every = sorted({t for tags in wanted_by_run.values() for t in tags})
        data = (
            self._provider.read_scalars(
                self._ctx,
                experiment_id=self._eid,
                plugin_name=PLUGIN,
                downsample=READ_ALL,
                run_tag_filter=provider_lib.RunTagFilter(runs=list(runs), tags=every),
            )
            if every
            else {}
        )
        facts = self._documents(list(runs), metadata.RUN_FACTS_TAG)
        ranks = []
        for run in runs:
            points = data.get(run, {})
            run_listing = listed.get(run, {})
            series = {}
            for tag in wanted_by_run[run]:
                payload = metadata.parse_plugin_metadata(run_listing[tag].plugin_content)
                series[tag] = Series(payload.unit, payload.kind, points.get(tag, []))
            walls = [ts.max_wall_time for ts in run_listing.values()]
            finite = [w for w in walls if isinstance(w, float) and math.isfinite(w)]
            docs = facts.get(run, [])
            latest = docs[-1] if docs and isinstance(docs[-1], dict) else {}
            ranks.append(analytics.RankData(run, latest, series, max(finite) if finite else None))
        view = analytics.job_view(ranks, cat.job_metrics, cat.job_gpu_metrics, buckets)
        return {"job": job, "folder": folder, **view}

    def tags(self, run: str) -> dict[str, Any]:
        """Every series of `run` with unit and kind."""
        series = self._require_run(run)
        out = []
        for tag in sorted(series):
            ts = series[tag]
            payload = metadata.parse_plugin_metadata(ts.plugin_content)
            out.append(
                {
                    "tag": tag,
                    "group": group_of(tag),
                    "unit": payload.unit,
                    "kind": payload.kind,
                    "description": payload.description or ts.description or "",
                    "max_step": ts.max_step,
                    "max_wall_time_s": ts.max_wall_time,
                }
            )
        return {"run": run, "tags": out}

    def read(self, run: str, tags: Iterable[str] | None = None) -> dict[str, Series]:
        """Every kept point of `tags` (default: all) of `run`.

        Raises:
          NotFoundError: the run, or one of `tags`, does not exist.
        """
        listed = self._require_run(run)
        wanted = sorted(listed) if tags is None else list(dict.fromkeys(tags))
        for tag in wanted:
            if tag not in listed:
                raise errors.NotFoundError(f"run {quoted(run)} has no ttsmon series {quoted(tag)}")
        if not wanted:
            return {}
        version = self._versions.get(run)
        if self._shared is not None and version is not None:
            whole = self._shared.get_or_compute(
                (self._eid, run, version), lambda: self._read_points(run, listed, sorted(listed))
            )
            late = [t for t in wanted if t not in whole]  # listed after the version was taken
            fresh = self._read_points(run, listed, late) if late else {}
            return {tag: whole[tag] if tag in whole else fresh[tag] for tag in wanted}
        return self._read_points(run, listed, wanted)

    def _read_points(
        self, run: str, listed: Mapping[str, Any], wanted: Sequence[str]
    ) -> dict[str, Series]:
        data = self._provider.read_scalars(
            self._ctx,
            experiment_id=self._eid,
            plugin_name=PLUGIN,
            downsample=READ_ALL,
            run_tag_filter=provider_lib.RunTagFilter(runs=[run], tags=wanted),
        ).get(run, {})
        out = {}
        for tag in wanted:
            payload = metadata.parse_plugin_metadata(listed[tag].plugin_content)
            out[tag] = Series(payload.unit, payload.kind, data.get(tag, []))
        return out

    def series(
        self,
        run: str,
        tags: Sequence[str],
        points: int,
        since_step: Mapping[str, int] | int | None = None,
    ) -> dict[str, Any]:
        """Rows of `tags`, each downsampled to about `points` (spikes kept).

        Args:
          since_step: Only rows with a step above it (per tag, or one for
            all): what a client that holds a series up to that step lacks.
            A series whose last step is below it has been reset (a job
            restarted from an earlier checkpoint replaces the later steps)
            and comes whole, with ``"reset": true``.

        The last point of a series is always among the rows, so its step is
        where the next ``since_step`` starts: increments meet without gaps
        or repeats.
        """
        out = {}
        for tag, s in self.read(run, tags).items():
            since = since_step.get(tag) if isinstance(since_step, Mapping) else since_step
            index: np.ndarray | None = None
            reset = False
            n = len(s.value)
            last_step = int(s.step[-1]) if n else None
            if since is not None and n:
                if last_step is not None and last_step < since:
                    reset = True
                else:
                    index = np.flatnonzero(s.step > since)
            if index is None and n > points:
                index = _with_last(minmax_indices(s.value, points), n)
            elif index is not None and len(index) > points:
                index = index[_with_last(minmax_indices(s.value[index], points), len(index))]
            entry: dict[str, Any] = {
                "unit": s.unit,
                "kind": s.kind,
                "total": n,
                "last_step": last_step,
                "rows": s.rows(index),
            }
            if since is not None:
                entry["since_step"] = since
                entry["reset"] = reset
            out[tag] = entry
        return {"run": run, "points": points, "series": out}

    def data_versions(self, runs: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """A cheap version of each run's data, from the data provider's listing only.

        The version changes whenever a series or document of the run gains a
        point (its last step or wall time moves), so it keys every cached
        answer about the run (`query.cache`).

        Returns:
          ``{run: {"version": hex string, "last_wall_time_s": float | None}}``
          for the runs (of `runs`, default all) that hold ttsmon data.
        """
        scalars = self._list_scalars(runs)
        tensors = self._list_tensors(runs)
        out = {}
        for run in sorted(set(scalars) | set(tensors)):
            digest = hashlib.blake2b(digest_size=8)
            last_wall: float | None = None
            for kind, listing in (("s", scalars.get(run, {})), ("t", tensors.get(run, {}))):
                for tag in sorted(listing):
                    ts = listing[tag]
                    digest.update(f"{kind}{tag}\0{ts.max_step}\0{ts.max_wall_time!r}\n".encode())
                    wall = ts.max_wall_time
                    if isinstance(wall, float) and math.isfinite(wall):
                        last_wall = wall if last_wall is None else max(last_wall, wall)
            out[run] = {"version": digest.hexdigest(), "last_wall_time_s": last_wall}
        return out

    def overview(self, run: str) -> dict[str, Any]:
        """Latest sampled values, facts, model facts and how much was recorded."""
        listed = self._require_run(run)
        sampled = [t for t in listed if group_of(t) in SAMPLED_GROUPS]
        latest_data = self._provider.read_scalars(
            self._ctx,
            experiment_id=self._eid,
            plugin_name=PLUGIN,
            downsample=1,  # the data providers always keep the last point
            run_tag_filter=provider_lib.RunTagFilter(runs=[run], tags=[*sampled, "train/loss"]),
        ).get(run, {})
        latest = {}
        for tag in sorted(sampled):
            points = latest_data.get(tag)
            if not points:
                continue
            d = points[-1]
            unit = metadata.parse_plugin_metadata(listed[tag].plugin_content).unit
            latest[tag] = {
                "value": d.value,
                "unit": unit,
                "wall_time_s": d.wall_time,
                "step": d.step,
            }
        counted = [t for t in ("sampler/duration_ms", "inference/latency_ms") if t in listed]
        full = self.read(run, counted) if counted else {}
        samples = full.get("sampler/duration_ms")
        facts = self._documents([run], metadata.RUN_FACTS_TAG).get(run, [])
        models = self._documents([run], metadata.MODEL_FACTS_TAG).get(run, [])
        first = last = None
        if samples is not None and len(samples.wall_time):
            first, last = float(samples.wall_time[0]), float(samples.wall_time[-1])
        if facts and isinstance(facts[0], dict) and isinstance(facts[0].get("started_at_s"), float):
            first = min(first or math.inf, facts[0]["started_at_s"])
        train_steps = [ts.max_step for t, ts in listed.items() if group_of(t) == "train"]
        loss = latest_data.get("train/loss")
        requests = full.get("inference/latency_ms")
        return {
            "run": run,
            "facts": facts[-1] if facts else None,
            "model": models[-1] if models else None,
            "latest": latest,
            "sample_count": len(samples.value) if samples is not None else 0,
            "first_wall_time_s": first,
            "last_wall_time_s": last,
            "duration_s": (last - first) if first is not None and last is not None else None,
            "training": {
                "last_step": max(train_steps) if train_steps else None,
                "loss": loss[-1].value if loss else None,
            },
            "inference": {"requests": len(requests.value) if requests is not None else 0},
        }

    def export_json(self, run: str) -> dict[str, Any]:
        """The whole run (every kept point) as one JSON-able document."""
        data = self.read(run)
        facts = self._documents([run], metadata.RUN_FACTS_TAG).get(run, [])
        models = self._documents([run], metadata.MODEL_FACTS_TAG).get(run, [])
        return {
            "run": run,
            "facts": facts[-1] if facts else None,
            "model": models[-1] if models else None,
            "series": {
                tag: {"unit": s.unit, "kind": s.kind, "rows": s.rows()} for tag, s in data.items()
            },
        }

    def export_csv(self, run: str) -> str:
        """The whole run as long-format CSV: tag, unit, kind, wall_time_s, step, value."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["tag", "unit", "kind", "wall_time_s", "step", "value"])
        for tag, s in self.read(run).items():
            # repr() of a float round-trips exactly and spells nan/inf/-inf.
            for w, st, v in zip(s.wall_time.tolist(), s.step.tolist(), s.value.tolist()):
                writer.writerow([tag, s.unit, s.kind, repr(w), st, repr(v)])
        return buf.getvalue()

    # -- analytics (issue 4) ---------------------------------------------------

    def alerts(self, run: str) -> dict[str, Any]:
        """The recorder's alert events of `run` (firing and resolved), oldest first."""
        self._require_run(run)
        docs = self._documents([run], metadata.ALERTS_TAG).get(run, [])
        events = [{k: d.get(k) for k in ALERT_FIELDS} for d in docs if isinstance(d, dict)]

        def when(e: dict[str, Any]) -> float:
            w = e["wall_time_s"]
            ok = isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w)
            return float(w) if ok else math.inf

        events.sort(key=when)  # stable: same-time events keep their written order
        return {"run": run, "alerts": events}

    def anomalies(self, run: str, tags: Sequence[str] | None = None) -> dict[str, Any]:
        """Anomalies in `tags` (default: every series) of `run`, oldest first.

        Raises:
          NotFoundError: the run, or one of `tags`, does not exist.
        """
        listed = self._require_run(run)
        for tag in tags or ():
            if tag not in listed:
                raise errors.NotFoundError(f"run {quoted(run)} has no ttsmon series {quoted(tag)}")
        wanted = list(dict.fromkeys(tags)) if tags else sorted(listed)
        # Collapse detection needs the training events even when only a GPU tag is asked for.
        train = [t for t in listed if group_of(t) == "train"]
        data = self.read(run, list(dict.fromkeys([*wanted, *train])))
        params = analytics.AnomalyParams()
        found = analytics.detect_anomalies(data, params, tags=wanted)
        return {
            "run": run,
            "anomalies": [a.to_dict() for a in found],
            "parameters": params.to_dict(),
        }

    def heatmap(self, run: str, buckets: int) -> dict[str, Any]:
        """Sampled series bucketed over the run's time range (see http_api.md)."""
        listed = self._require_run(run)
        sampled = [t for t in listed if group_of(t) in SAMPLED_GROUPS]
        data = self.read(run, sampled) if sampled else {}
        facts = self._documents([run], metadata.RUN_FACTS_TAG).get(run, [])
        memory_total = None
        if facts and isinstance(facts[-1], dict) and isinstance(facts[-1].get("host"), dict):
            value = facts[-1]["host"].get("memory_total_bytes")
            if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
                memory_total = float(value)
        latest = facts[-1] if facts and isinstance(facts[-1], dict) else None
        out = analytics.heatmap(data, buckets, host_memory_total_bytes=memory_total, facts=latest)
        return {"run": run, **out}

    def correlation(self, run: str, tags: Sequence[str]) -> dict[str, Any]:
        """Pearson and Spearman matrices of `tags` on a common wall-time grid."""
        data = self.read(run, tags)
        aligned = analytics.align(list(data.values()))
        return {"run": run, "tags": list(data), **analytics.correlation(aligned)}

    def scatter(self, run: str, x: str, y: str, points: int) -> dict[str, Any]:
        """The aligned `(wall_time_s, x, y)` pairs of two series, at most `points`."""
        data = self.read(run, [x, y])
        xs, ys = data[x], data.get(y, data[x])
        out = analytics.scatter(xs, ys, points)
        return {"run": run, "x": x, "y": y, "x_unit": xs.unit, "y_unit": ys.unit, **out}

    def compare(self, run_a: str, run_b: str) -> dict[str, Any]:
        """`run_b` against `run_a`: setup differences, speed with an interval, memory, a verdict.

        Raises:
          NotFoundError: either run does not exist.
        """
        sides = []
        for run in (run_a, run_b):
            listed = self._require_run(run)
            wanted = [t for t in listed if _COMPARED.match(t)]
            facts = self._documents([run], metadata.RUN_FACTS_TAG).get(run, [])
            sides.append(
                analytics.RunSide(
                    run,
                    self.read(run, wanted) if wanted else {},
                    facts[-1] if facts and isinstance(facts[-1], dict) else None,
                    self.models(run),
                )
            )
        return analytics.compare(sides[0], sides[1])

    def findings(self, run: str, profile: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Plain-language statements about `run`, most important first.

        Efficiency (`analytics.findings`) and optimization insights
        (`analytics.optimization_findings`: they also read the run and model
        facts, and `profile`, a profiler summary of the run, where given).
        """
        data = self.read(run)
        facts = self._documents([run], metadata.RUN_FACTS_TAG).get(run, [])
        found = analytics.findings(data)
        found += analytics.optimization_findings(
            data,
            facts[-1] if facts and isinstance(facts[-1], dict) else None,
            self.models(run),
            profile,
        )
        found.sort(key=lambda f: analytics.SEVERITIES.index(f.severity))
        return {"run": run, "findings": [f.to_dict() for f in found]}

    def models(self, run: str) -> list[dict[str, Any]]:
        """The latest ``model/facts`` document of each model of `run`."""
        latest: dict[str, dict[str, Any]] = {}
        for doc in self._documents([run], metadata.MODEL_FACTS_TAG).get(run, []):
            if isinstance(doc, dict):
                latest[str(doc.get("name"))] = doc
        return list(latest.values())

    # -- profiler (issue 5) ------------------------------------------------------

    def profiles(self, run: str, logdir: str, cache: profiles_lib.SummaryCache) -> dict[str, Any]:
        """The profiler sessions of `run`: documents merged with session folders.

        Any run TensorBoard knows qualifies (a run may hold only captures).

        Raises:
          NotFoundError: the data provider does not know `run`.
        """
        known = {r.run_name for r in self._provider.list_runs(self._ctx, experiment_id=self._eid)}
        if run not in known:
            raise errors.NotFoundError(f"no run {quoted(run)}")
        docs = self._documents([run], metadata.PROFILE_TAG).get(run, [])
        return profiles_lib.list_sessions(run, docs, logdir, cache)
