"""The `ttsmon` TensorBoard plugin: routes over the data provider, and the tab's files.

Each route is a thin `*_route` that parses and checks the query, calls the
read layer (`tb_plugin_ttsmon.query.Reader`) and answers through the one JSON
encoder (`query.encode.dumps`, which spells NaN and Infinity as strings). Bad queries raise
`tensorboard.errors.InvalidArgumentError` (400), unknown runs and tags
`NotFoundError` (404); TensorBoard turns both into plain-text responses.
`http_api.md` beside this file documents every route.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import mimetypes
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.query import Reader, encode, profiles
from tb_plugin_ttsmon.query.cache import ResultCache
from tb_plugin_ttsmon.query.reader import Series, quoted, series_bytes

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
DEFAULT_POINTS = 2000
# Bound of the shared answer cache. The demo run's full answer set is about
# 0.3 MiB; 24 runs x 43 tags of 10 000 points, every section and analytic
# cached, about 40 MiB.
CACHE_MAX_BYTES = 64 * 1024 * 1024
# Bound of the shared whole-run reads: 24 bytes a point, so 128 MiB hold
# 5.6 million points (24 runs x 43 series x 5000 points).
READ_CACHE_MAX_BYTES = 128 * 1024 * 1024
# How long one listing of the data versions serves every request (seconds).
VERSIONS_TTL_S = 1.0
# How stale an analytic of a growing run may be (seconds): see `_cached`.
ANALYTICS_MAX_AGE_S = 15.0
# How long one reading of which runs make up each distributed job serves
# (seconds), while the set of runs stays the same: a job's membership is in
# its ranks' run facts, written at their start.
JOB_MEMBERS_TTL_S = 5.0
MAX_BATCH_ENTRIES = 500
# A model with hundreds of parameter tensors (IndexTTS2's GPT) has as many
# gradients/{layer}/norm series in one run.
MAX_BATCH_ENTRY_TAGS = 2000
MAX_BATCH_TAGS = 20_000
MAX_POINTS = 100_000
MAX_TAGS = 200
DEFAULT_BUCKETS = 120
MAX_BUCKETS = 2000
MAX_CORRELATION_TAGS = 40
TAB_NAME = "TTS Monitor"

_Request = wrappers.Request
_Response = wrappers.Response
# werkzeug's decorator, untyped here: its stubs do not cover methods.
_application: Any = wrappers.Request.application


def _static_files() -> dict[str, str]:
    """Name -> path of the files the tab may load: the flat `static/` folder, nothing else.

    Requests are matched against this list, never joined onto a path, so no
    spelling of ``..`` can reach outside the folder.
    """
    try:
        names = os.listdir(STATIC_DIR)
    except OSError:
        return {}
    return {
        n: os.path.join(STATIC_DIR, n) for n in names if os.path.isfile(os.path.join(STATIC_DIR, n))
    }


class TTSMonPlugin(base_plugin.TBPlugin):
    """Serves the TTS Monitor tab and its data."""

    plugin_name = metadata.PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        super().__init__(context)
        self._data_provider = context.data_provider
        self._static = _static_files()
        # Profile captures are read from the file system (they are not summaries).
        self._logdir = getattr(context, "logdir", None) or ""
        self._profile_cache = profiles.SummaryCache()
        # Answers shared by every viewer of this TensorBoard (query/cache.py).
        self._cache: ResultCache[bytes] = ResultCache(CACHE_MAX_BYTES)
        # Whole-run reads shared by every route and viewer per data version.
        self._reads: ResultCache[dict[str, Series]] = ResultCache(
            READ_CACHE_MAX_BYTES, size_of=series_bytes
        )
        self._versions_lock = threading.Lock()
        self._versions_memo: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._analytics_versions: dict[tuple[str, str], tuple[str, float]] = {}
        # Per experiment: (when, run names, {(job, folder): runs}).
        self._job_members: dict[
            str, tuple[float, frozenset[str], dict[tuple[str, str], list[str]]]
        ] = {}

    def get_plugin_apps(self) -> dict[str, Any]:
        return {
            "/index.js": self._index_js_route,
            "/static/*": self._static_route,
            "/runs": self._runs_route,
            "/tags": self._tags_route,
            "/series": self._series_route,
            "/series_batch": self._series_batch_route,
            "/versions": self._versions_route,
            "/stats": self._stats_route,
            "/overview": self._overview_route,
            "/export": self._export_route,
            "/alerts": self._alerts_route,
            "/anomalies": self._anomalies_route,
            "/heatmap": self._heatmap_route,
            "/correlation": self._correlation_route,
            "/scatter": self._scatter_route,
            "/findings": self._findings_route,
            "/compare": self._compare_route,
            "/profiles": self._profiles_route,
            "/job": self._job_route,
            "/serving": self._serving_route,
        }

    def is_active(self) -> bool:
        # TensorBoard decides from the data provider's list_plugins(), which
        # sees our summaries' plugin name; this is only its cheap fallback.
        return False

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name=TAB_NAME)

    # -- helpers ---------------------------------------------------------------

    def _reader(self, request: _Request) -> Reader:
        if self._data_provider is None:
            raise errors.FailedPreconditionError("TensorBoard has no data provider")
        return Reader(
            self._data_provider,
            plugin_util.context(request.environ),
            plugin_util.experiment_id(request.environ),
        )

    @staticmethod
    def _run(request: _Request) -> str:
        run = request.args.get("run")
        if run is None:
            raise errors.InvalidArgumentError("missing query parameter 'run'")
        return run

    @staticmethod
    def _json(
        request: _Request, payload: Any, headers: list[tuple[str, str]] | None = None
    ) -> _Response:
        return _respond_json(request, encode.dumps(payload).encode("utf-8"), headers)

    def _data_versions(
        self, reader: Reader, runs: Sequence[str] | None
    ) -> dict[str, dict[str, Any]]:
        """`Reader.data_versions` of `runs` (all where None), one listing per `VERSIONS_TTL_S`.

        Every request of every viewer starts by asking the data versions; a
        listing through the Rust data server costs tens of milliseconds, so
        one listing of all runs is shared for a moment. TensorBoard itself
        reloads every few seconds (`--reload_interval`), so the answers are
        no staler than the loader's.
        """
        now = time.monotonic()
        eid = reader.experiment_id
        with self._versions_lock:
            memo = self._versions_memo.get(eid)
            if memo is None or now - memo[0] > VERSIONS_TTL_S:
                memo = None
        if memo is None:
            memo = (now, reader.data_versions())
            with self._versions_lock:
                self._versions_memo[eid] = memo
        every = memo[1]
        if runs is None:
            return every
        missing = [r for r in runs if r not in every]
        if missing:
            # A run that appeared within the TTL: ask for it alone.
            every = {**every, **reader.data_versions(missing)}
        return {r: every[r] for r in runs if r in every}

    def _analytics_version(self, eid: str, run: str, version: str) -> str:
        """The data version a run's analytics are keyed by: `version`, changed at most so often."""
        now = time.monotonic()
        with self._versions_lock:
            held = self._analytics_versions.get((eid, run))
            if held is None or (held[0] != version and now - held[1] >= ANALYTICS_MAX_AGE_S):
                held = (version, now)
                self._analytics_versions[(eid, run)] = held
            return held[0]

    def _cached(
        self,
        request: _Request,
        runs: Sequence[str] | None,
        compute: Callable[[Reader], Any],
        *,
        slow: bool = False,
    ) -> _Response:
        """The answer of `compute`, shared by every viewer while `runs`' data stays the same.

        The key is the route, its query and the data version of `runs`
        (every run where None); the ETag is that key's digest, so a client
        whose copy is current gets 304 for the price of one listing.

        A `slow` answer (an analytic) of a run that keeps growing is
        recomputed at most every `ANALYTICS_MAX_AGE_S`: a live run changes
        its version every few seconds, and rerunning every analytic of every
        live run at that pace would take the server's cores. Findings and
        anomalies a few seconds old say the same thing.
        """
        reader = self._reader(request)
        versions = self._data_versions(reader, runs)
        if runs is not None and any(r not in versions for r in runs):
            return self._json(request, compute(reader))  # raises the readable 404
        keyed = {r: v["version"] for r, v in versions.items()}
        reader.sharing_reads(self._reads, dict(keyed))
        if slow:
            keyed = {
                r: self._analytics_version(reader.experiment_id, r, v) for r, v in keyed.items()
            }
        key = (
            reader.experiment_id,
            request.path,
            tuple(request.args.items(multi=True)),
            tuple(keyed.items()),
        )
        etag = _etag(key)
        if request.if_none_match.contains_weak(etag):
            return _not_modified(etag)
        body = self._cache.get_or_compute(
            key, lambda: encode.dumps(compute(reader)).encode("utf-8"), slow=slow
        )
        return _respond_json(request, body, [("ETag", f'"{etag}"')])

    # -- data routes -----------------------------------------------------------

    @_application
    def _versions_route(self, request: _Request) -> _Response:
        versions = self._data_versions(self._reader(request), None)
        return _json_by_content(request, {"runs": versions})

    @_application
    def _stats_route(self, request: _Request) -> _Response:
        return self._json(
            request,
            {
                "cache": {
                    **dataclasses.asdict(self._cache.stats()),
                    "max_bytes": self._cache.max_bytes,
                },
                "reads": {
                    **dataclasses.asdict(self._reads.stats()),
                    "max_bytes": self._reads.max_bytes,
                },
            },
        )

    @_application
    def _runs_route(self, request: _Request) -> _Response:
        return self._cached(request, None, lambda r: r.runs())

    @_application
    def _tags_route(self, request: _Request) -> _Response:
        run = self._run(request)
        return self._cached(request, [run], lambda r: r.tags(run))

    @_application
    def _series_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = _tags_arg(request.args.getlist("tag"))
        points = _int_arg(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        since = _since_arg(request.args.get("since_step"))
        return self._cached(request, [run], lambda r: r.series(run, tags, points, since))

    @_application
    def _series_batch_route(self, request: _Request) -> _Response:
        # POST like TensorBoard's own batched `timeSeries` route: 24 runs x 43
        # tags with their `since_step` do not fit in a URL.
        form = request.form if request.method == "POST" else request.args
        entries = _batch_arg(form.get("requests"))
        reader = self._reader(request)
        versions = self._data_versions(reader, sorted({e.run for e in entries}))
        reader.sharing_reads(self._reads, {r: v["version"] for r, v in versions.items()})
        parts = []
        for e in entries:
            version = versions.get(e.run)
            if version is None:
                error = f"run {quoted(e.run)} has no ttsmon data"
                parts.append(encode.dumps({"run": e.run, "error": error}).encode("utf-8"))
                continue
            key = ("series_batch", reader.experiment_id, e, version["version"])
            try:
                parts.append(
                    self._cache.get_or_compute(key, functools.partial(_batch_part, reader, e))
                )
            except (errors.NotFoundError, errors.InvalidArgumentError) as err:
                parts.append(encode.dumps({"run": e.run, "error": str(err)}).encode("utf-8"))
        body = b'{"results":[' + b",".join(parts) + b"]}"
        return _respond_json(request, body)

    @_application
    def _overview_route(self, request: _Request) -> _Response:
        run = self._run(request)
        return self._cached(request, [run], lambda r: r.overview(run))

    @_application
    def _export_route(self, request: _Request) -> _Response:
        run = self._run(request)
        fmt = request.args.get("format")
        if fmt not in ("csv", "json"):
            raise errors.InvalidArgumentError("query parameter 'format' must be 'csv' or 'json'")
        reader = self._reader(request)
        headers = [("Content-Disposition", _attachment(f"ttsmon-{run}.{fmt}"))]
        if fmt == "csv":
            return http_util.Respond(
                request, reader.export_csv(run), "text/csv; charset=utf-8", headers=headers
            )
        return self._json(request, reader.export_json(run), headers)

    # -- analytics routes (issue 4): computed off the request thread, shared -----

    @_application
    def _alerts_route(self, request: _Request) -> _Response:
        run = self._run(request)
        return self._cached(request, [run], lambda r: r.alerts(run))

    @_application
    def _anomalies_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = request.args.getlist("tag")
        if len(tags) > MAX_TAGS:
            raise errors.InvalidArgumentError(
                f"at most {MAX_TAGS} tags per request, got {len(tags)}"
            )
        return self._cached(request, [run], lambda r: r.anomalies(run, tags or None), slow=True)

    @_application
    def _heatmap_route(self, request: _Request) -> _Response:
        run = self._run(request)
        buckets = _int_arg(request, "buckets", DEFAULT_BUCKETS, 2, MAX_BUCKETS)
        return self._cached(request, [run], lambda r: r.heatmap(run, buckets), slow=True)

    @_application
    def _correlation_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = list(dict.fromkeys(request.args.getlist("tag")))
        if not 2 <= len(tags) <= MAX_CORRELATION_TAGS:
            raise errors.InvalidArgumentError(
                f"query parameter 'tag' must name 2 to {MAX_CORRELATION_TAGS} different "
                f"series, got {len(tags)}"
            )
        return self._cached(request, [run], lambda r: r.correlation(run, tags), slow=True)

    @_application
    def _scatter_route(self, request: _Request) -> _Response:
        run = self._run(request)
        x, y = request.args.get("x"), request.args.get("y")
        if x is None or y is None:
            raise errors.InvalidArgumentError("missing query parameter 'x' or 'y' (a tag each)")
        points = _int_arg(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        return self._cached(request, [run], lambda r: r.scatter(run, x, y, points), slow=True)

    @_application
    def _serving_route(self, request: _Request) -> _Response:
        run = self._run(request)
        buckets = _int_arg(request, "buckets", DEFAULT_BUCKETS, 2, MAX_BUCKETS)
        return self._cached(request, [run], lambda r: r.serving(run, buckets), slow=True)

    @_application
    def _findings_route(self, request: _Request) -> _Response:
        run = self._run(request)
        return self._cached(
            request, [run], lambda r: r.findings(run, self._profile_summary(r, run)), slow=True
        )

    def _profile_summary(self, reader: Reader, run: str) -> dict[str, Any] | None:
        """The newest summarized profile of `run`, if one is ready (never waits for xprof)."""
        try:
            sessions = reader.profiles(run, self._logdir, self._profile_cache)["sessions"]
        except (errors.NotFoundError, OSError):
            return None
        ready = [s["summary"] for s in sessions if s.get("summary")]
        return ready[-1] if ready else None

    @_application
    def _compare_route(self, request: _Request) -> _Response:
        a, b = request.args.get("a"), request.args.get("b")
        if a is None or b is None:
            raise errors.InvalidArgumentError("missing query parameter 'a' or 'b' (a run each)")
        return self._cached(request, [a, b], lambda r: r.compare(a, b), slow=True)

    # -- job routes (issue 11) ----------------------------------------------------

    def _jobs(self, reader: Reader) -> dict[tuple[str, str], list[str]]:
        """The runs of each distributed job, read again when runs come or go, or every 5 s."""
        names = frozenset(self._data_versions(reader, None))
        now = time.monotonic()
        with self._versions_lock:
            memo = self._job_members.get(reader.experiment_id)
        if memo is not None and memo[1] == names and now - memo[0] <= JOB_MEMBERS_TTL_S:
            return memo[2]
        members = reader.job_runs()
        with self._versions_lock:
            self._job_members[reader.experiment_id] = (now, names, members)
        return members

    @_application
    def _job_route(self, request: _Request) -> _Response:
        job = request.args.get("job")
        if not job:
            raise errors.InvalidArgumentError("missing query parameter 'job' (a job id)")
        folder = request.args.get("folder")
        buckets = _int_arg(request, "buckets", DEFAULT_BUCKETS, 2, MAX_BUCKETS)
        reader = self._reader(request)
        runs = sorted(
            run
            for (j, f), members in self._jobs(reader).items()
            if j == job and (folder is None or f == folder)
            for run in members
        )
        if not runs:
            where = f" in folder {quoted(folder)}" if folder is not None else ""
            raise errors.NotFoundError(f"no run of job {quoted(job)}{where}")
        return self._cached(request, runs, lambda r: r.job(job, folder, runs, buckets), slow=True)

    # -- profiler routes (issue 5) ------------------------------------------------

    @_application
    def _profiles_route(self, request: _Request) -> _Response:
        run = self._run(request)
        answer = self._reader(request).profiles(run, self._logdir, self._profile_cache)
        # Not cached (captures are files, and summaries finish on their own
        # time), but an unchanged answer is still a 304.
        return _json_by_content(request, answer)

    # -- static files ----------------------------------------------------------

    @_application
    def _index_js_route(self, request: _Request) -> _Response:
        return self._serve_static(request, "index.js")

    @_application
    def _static_route(self, request: _Request) -> _Response:
        prefix = "/static/"
        path = request.path
        name = path[path.rindex(prefix) + len(prefix) :] if prefix in path else ""
        return self._serve_static(request, name)

    def _serve_static(self, request: _Request, name: str) -> _Response:
        path = self._static.get(name)
        if path is None:
            raise errors.NotFoundError(f"no static file {quoted(name)}")
        mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".js"):
            mimetype = "text/javascript"  # some hosts map .js to application/x-javascript
        with open(path, "rb") as f:
            data = f.read()
        return http_util.Respond(request, data, mimetype)


def _respond_json(
    request: _Request, body: bytes, headers: list[tuple[str, str]] | None = None
) -> _Response:
    return http_util.Respond(request, body, "application/json", headers=headers)


def _json_by_content(request: _Request, payload: Any) -> _Response:
    """`payload` with an ETag of its own bytes: 304 where the client holds the same answer."""
    body = encode.dumps(payload).encode("utf-8")
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    if request.if_none_match.contains_weak(etag):
        return _not_modified(etag)
    return _respond_json(request, body, [("ETag", f'"{etag}"')])


def _etag(key: object) -> str:
    return hashlib.blake2b(repr(key).encode("utf-8"), digest_size=12).hexdigest()


def _not_modified(etag: str) -> _Response:
    return _Response(
        status=304,
        headers=[("ETag", f'"{etag}"'), ("Cache-Control", "no-cache, must-revalidate")],
    )


def _tags_arg(tags: list[str]) -> list[str]:
    if not tags:
        raise errors.InvalidArgumentError("missing query parameter 'tag' (one or more)")
    if len(tags) > MAX_TAGS:
        raise errors.InvalidArgumentError(f"at most {MAX_TAGS} tags per request, got {len(tags)}")
    return tags


def _since_arg(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d{1,19}", raw):
        raise errors.InvalidArgumentError(
            f"query parameter 'since_step' must be an integer, got {quoted(raw)}"
        )
    return int(raw)


class _BatchEntry(NamedTuple):
    """One run's part of a `series_batch` request (hashable: a cache key)."""

    run: str
    tags: tuple[str, ...]
    points: int
    since_step: tuple[tuple[str, int], ...]

    def since(self) -> dict[str, int] | None:
        return dict(self.since_step) or None


def _batch_part(reader: Reader, e: _BatchEntry) -> bytes:
    return encode.dumps(reader.series(e.run, list(e.tags), e.points, e.since())).encode("utf-8")


def _batch_arg(raw: str | None) -> list[_BatchEntry]:
    """The entries of a `series_batch` request (see http_api.md)."""
    if not raw:
        raise errors.InvalidArgumentError("missing field 'requests' (a JSON list)")
    try:
        doc = json.loads(raw)
    except ValueError:
        raise errors.InvalidArgumentError("field 'requests' is not valid JSON") from None
    if not isinstance(doc, list) or not 1 <= len(doc) <= MAX_BATCH_ENTRIES:
        raise errors.InvalidArgumentError(
            f"field 'requests' must be a list of 1 to {MAX_BATCH_ENTRIES} entries"
        )
    out, total = [], 0
    for i, item in enumerate(doc):
        where = f"requests[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("run"), str):
            raise errors.InvalidArgumentError(f"{where} must be an object with a 'run' string")
        tags = item.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise errors.InvalidArgumentError(f"{where}.tags must be a list of tag strings")
        if not 1 <= len(tags) <= MAX_BATCH_ENTRY_TAGS:
            raise errors.InvalidArgumentError(
                f"{where}.tags must name 1 to {MAX_BATCH_ENTRY_TAGS} tags, got {len(tags)}"
            )
        total += len(tags)
        points = item.get("points", DEFAULT_POINTS)
        if not isinstance(points, int) or isinstance(points, bool) or not 2 <= points <= MAX_POINTS:
            raise errors.InvalidArgumentError(
                f"{where}.points must be an integer from 2 to {MAX_POINTS}"
            )
        since = item.get("since_step") or {}
        if not isinstance(since, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in since.items()
        ):
            raise errors.InvalidArgumentError(f"{where}.since_step must map tags to integer steps")
        out.append(_BatchEntry(item["run"], tuple(tags), points, tuple(sorted(since.items()))))
    if total > MAX_BATCH_TAGS:
        raise errors.InvalidArgumentError(f"at most {MAX_BATCH_TAGS} tags per batch, got {total}")
    return out


def _int_arg(request: _Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"\d{1,9}", raw):
        raise errors.InvalidArgumentError(
            f"query parameter {name!r} must be an integer, got {quoted(raw)}"
        )
    value = int(raw)
    if not low <= value <= high:
        raise errors.InvalidArgumentError(
            f"query parameter {name!r} must be between {low} and {high}, got {value}"
        )
    return value


def _attachment(filename: str) -> str:
    """A Content-Disposition for `filename`: ASCII fallback plus RFC 5987 UTF-8 name."""
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "ttsmon-export"
    utf8_name = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{utf8_name}"
