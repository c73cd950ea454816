"""The `ttsmon` TensorBoard plugin: routes over the data provider, and the tab's files.

Each route is a thin `*_route` that parses and checks the query, calls the
read layer (`tb_plugin_ttsmon.query.Reader`) and answers through the one JSON
encoder (`query.encode.dumps`, which spells NaN and Infinity as strings). Bad queries raise
`tensorboard.errors.InvalidArgumentError` (400), unknown runs and tags
`NotFoundError` (404); TensorBoard turns both into plain-text responses.
`http_api.md` beside this file documents every route.
"""

from __future__ import annotations

import mimetypes
import os
import re
import urllib.parse
from typing import Any

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.query import Reader, encode, profiles
from tb_plugin_ttsmon.query.reader import quoted

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")
DEFAULT_POINTS = 2000
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

    def get_plugin_apps(self) -> dict[str, Any]:
        return {
            "/index.js": self._index_js_route,
            "/static/*": self._static_route,
            "/runs": self._runs_route,
            "/tags": self._tags_route,
            "/series": self._series_route,
            "/overview": self._overview_route,
            "/export": self._export_route,
            "/alerts": self._alerts_route,
            "/anomalies": self._anomalies_route,
            "/heatmap": self._heatmap_route,
            "/correlation": self._correlation_route,
            "/scatter": self._scatter_route,
            "/findings": self._findings_route,
            "/profiles": self._profiles_route,
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
        return http_util.Respond(
            request, encode.dumps(payload), "application/json", headers=headers
        )

    # -- data routes -----------------------------------------------------------

    @_application
    def _runs_route(self, request: _Request) -> _Response:
        return self._json(request, self._reader(request).runs())

    @_application
    def _tags_route(self, request: _Request) -> _Response:
        return self._json(request, self._reader(request).tags(self._run(request)))

    @_application
    def _series_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = request.args.getlist("tag")
        if not tags:
            raise errors.InvalidArgumentError("missing query parameter 'tag' (one or more)")
        if len(tags) > MAX_TAGS:
            raise errors.InvalidArgumentError(
                f"at most {MAX_TAGS} tags per request, got {len(tags)}"
            )
        points = _int_arg(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        return self._json(request, self._reader(request).series(run, tags, points))

    @_application
    def _overview_route(self, request: _Request) -> _Response:
        return self._json(request, self._reader(request).overview(self._run(request)))

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

    # -- analytics routes (issue 4) ----------------------------------------------

    @_application
    def _alerts_route(self, request: _Request) -> _Response:
        return self._json(request, self._reader(request).alerts(self._run(request)))

    @_application
    def _anomalies_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = request.args.getlist("tag")
        if len(tags) > MAX_TAGS:
            raise errors.InvalidArgumentError(
                f"at most {MAX_TAGS} tags per request, got {len(tags)}"
            )
        return self._json(request, self._reader(request).anomalies(run, tags or None))

    @_application
    def _heatmap_route(self, request: _Request) -> _Response:
        run = self._run(request)
        buckets = _int_arg(request, "buckets", DEFAULT_BUCKETS, 2, MAX_BUCKETS)
        return self._json(request, self._reader(request).heatmap(run, buckets))

    @_application
    def _correlation_route(self, request: _Request) -> _Response:
        run = self._run(request)
        tags = list(dict.fromkeys(request.args.getlist("tag")))
        if not 2 <= len(tags) <= MAX_CORRELATION_TAGS:
            raise errors.InvalidArgumentError(
                f"query parameter 'tag' must name 2 to {MAX_CORRELATION_TAGS} different "
                f"series, got {len(tags)}"
            )
        return self._json(request, self._reader(request).correlation(run, tags))

    @_application
    def _scatter_route(self, request: _Request) -> _Response:
        run = self._run(request)
        x, y = request.args.get("x"), request.args.get("y")
        if x is None or y is None:
            raise errors.InvalidArgumentError("missing query parameter 'x' or 'y' (a tag each)")
        points = _int_arg(request, "points", DEFAULT_POINTS, 2, MAX_POINTS)
        return self._json(request, self._reader(request).scatter(run, x, y, points))

    @_application
    def _findings_route(self, request: _Request) -> _Response:
        return self._json(request, self._reader(request).findings(self._run(request)))

    # -- profiler routes (issue 5) ------------------------------------------------

    @_application
    def _profiles_route(self, request: _Request) -> _Response:
        run = self._run(request)
        return self._json(
            request, self._reader(request).profiles(run, self._logdir, self._profile_cache)
        )

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
