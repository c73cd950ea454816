"""Profiler sessions of a run: listing, summaries through xprof, deep links.

Implementation notes (see `http_api.md`, *Profiler routes*):

- Sessions are the union of the recorder's `profile/sessions` documents (read
  through the data provider by `Reader.profiles`) and the session folders under
  `<run dir>/plugins/profile/`. The folders are the one thing read from the file
  system, because profiler captures are not summaries; TensorBoard's Profile
  plugin reads them the same way. Run directories are resolved to real paths and
  must stay inside the log directory.
- TensorBoard's Profile plugin names its runs `<run>/<session>` (just
  `<session>` for the logdir root, run `.`), which is what `profile_link` puts
  in its deep links.
- Only `<host>.xplane.pb` files count: the Profile plugin and xprof write cache
  files (`.cached_tools.json`, `*.hlo_proto.pb`, ...) into the same folders.
- Summaries come from `xprof.convert.raw_to_tool_data.xspace_to_tool_data`
  (package `xprof`, tested with 2.24), imported lazily and run on one worker
  thread, never on the request thread: the first request answers
  `status: pending` and starts the work; later ones get the cached result, keyed
  by (file path, size, mtime).
- Tools used: `overview_page` (step-time table and hardware type; the
  `input_pipeline_analyzer` table is the same and serves as a fallback),
  `framework_op_stats` (ops by self time) and `memory_profile` (peak bytes in
  use per allocator). Their gviz / JSON outputs are parsed defensively: a field
  that a CPU-only capture lacks becomes null.
"""

from __future__ import annotations

import collections
import concurrent.futures
import importlib
import json
import math
import os
import statistics
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

XPLANE_SUFFIX = ".xplane.pb"
PROFILE_SUBDIR = os.path.join("plugins", "profile")
# Our link names -> the Profile tab's tool names. xprof >= 2.x lists the trace
# viewer of .xplane.pb captures as "trace_viewer@" (its /run_tools route).
LINK_TOOLS = {
    "overview_page": "overview_page",
    "trace_viewer": "trace_viewer@",
    "memory_profile": "memory_profile",
    "framework_op_stats": "framework_op_stats",
}
TOP_OPS = 10
CACHE_ENTRIES = 256
# xprof's own thresholds (input_pipeline_analysis): >= 20 % of the step waiting
# for input is "highly", >= 5 % "moderately" input-bound.
INPUT_BOUND_PERCENT = 20.0
INPUT_MODERATE_PERCENT = 5.0
LOW_DEVICE_PERCENT = 50.0
HOT_OP_PERCENT = 30.0

STATUS_OK = "ok"
STATUS_EMPTY = "empty"
STATUS_UNREADABLE = "unreadable"
STATUS_PENDING = "pending"

_CONVERTER_MODULE = "xprof.convert.raw_to_tool_data"


# -- deep links -------------------------------------------------------------------


def profile_run_name(run: str, session: str) -> str:
    """The Profile plugin's name for `session` of TensorBoard run `run`."""
    return session if run in ("", ".") else f"{run}/{session}"


def profile_link(run: str, session: str, tool: str, host: str) -> str:
    """A link that opens TensorBoard's Profile tab on `run`, `session`, `tool` and `host`.

    Relative to the plugin's iframe (`<root>/data/plugin/ttsmon/`), so it stays
    right under `--path_prefix`. Every character outside RFC 3986's unreserved
    set is percent-encoded (`/` and `@` included).
    """

    def q(s: str) -> str:
        return urllib.parse.quote(s, safe="")

    return f"../../../?run={q(profile_run_name(run, session))}&tag={q(tool)}&host={q(host)}#profile"


def links(run: str, session: str, host: str | None) -> dict[str, str] | None:
    """Links for each tool of `LINK_TOOLS`, or None without a host to show."""
    if host is None:
        return None
    return {name: profile_link(run, session, tool, host) for name, tool in LINK_TOOLS.items()}


# -- xprof ---------------------------------------------------------------------------


def _converter_module() -> Any:
    return importlib.import_module(_CONVERTER_MODULE)


def xprof_status() -> dict[str, Any]:
    """Whether xprof can be used here: `available`, `version`, `reason`."""
    try:
        _converter_module()
    except Exception as err:  # ImportError, or a broken native extension
        return {
            "available": False,
            "version": None,
            "reason": f"xprof (tensorboard-plugin-profile) is not usable: {err}",
        }
    version = None
    try:
        version = getattr(importlib.import_module("xprof.version"), "__version__", None)
    except Exception:
        pass
    return {"available": True, "version": version, "reason": None}


class ConversionError(Exception):
    """xprof could not turn a capture into a tool's data."""


def _tool_data(path: str, tool: str) -> Any:
    """The parsed JSON of `tool` for one `.xplane.pb`.

    Raises:
      ConversionError: xprof failed (its message, e.g. "Can't parse ... as binary proto").
    """
    mod = _converter_module()
    failure: list[str] = []
    native = getattr(getattr(mod, "_pywrap_profiler_plugin", None), "xspace_to_tools_data", None)

    def keep_error(paths: Sequence[Any], tool_arg: str, options: Any) -> tuple[Any, bool]:
        # xspace_to_tool_data drops the native error message; keep it.
        assert native is not None
        raw, ok = native(paths, tool_arg, options)
        if not ok:
            failure.append(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw))
        return raw, ok

    params = {"use_saved_result": False}
    try:
        if native is not None:
            data, _ = mod.xspace_to_tool_data([path], tool, params, keep_error)
        else:
            data, _ = mod.xspace_to_tool_data([path], tool, params)
    except Exception as err:
        raise ConversionError(f"{tool}: {type(err).__name__}: {err}") from err
    if data is None:
        raise ConversionError(f"{tool}: {failure[0] if failure else 'xprof returned no data'}")
    try:
        return json.loads(data)
    except (ValueError, TypeError) as err:
        raise ConversionError(f"{tool}: output is not JSON ({err})") from err


# -- parsing the tools' outputs -----------------------------------------------------------


def _num(x: Any) -> float | None:
    """A finite float from a gviz cell value or a proto3 JSON number/string."""
    if isinstance(x, dict):
        x = x.get("v")
    if isinstance(x, bool):
        return None
    if isinstance(x, str):
        x = x.strip().rstrip("%")
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _tables(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        data = [data]
    return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []


def _columns(table: dict[str, Any]) -> list[str]:
    return [c.get("id", "") if isinstance(c, dict) else "" for c in table.get("cols") or []]


def _rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows as {column id: cell value}."""
    cols = _columns(table)
    out = []
    for row in table.get("rows") or []:
        cells = row.get("c") if isinstance(row, dict) else None
        if not isinstance(cells, list):
            continue
        out.append(
            {
                col: (cell.get("v") if isinstance(cell, dict) else None)
                for col, cell in zip(cols, cells)
            }
        )
    return out


def _step_table(data: Any) -> dict[str, Any] | None:
    for table in _tables(data):
        if "stepTimeMs" in _columns(table):
            return table
    return None


def _mean(xs: list[float]) -> float | None:
    return statistics.fmean(xs) if xs else None


def step_summary(table: dict[str, Any] | None) -> dict[str, Any]:
    """Step-time statistics from the overview / input pipeline step table."""
    steps = []
    for row in _rows(table) if table else []:
        total = _num(row.get("stepTimeMs"))
        if total is None or total <= 0:
            continue
        host = _num(row.get("hostComputeTimeMs")) or 0.0
        device = _num(row.get("deviceComputeTimeMs")) or 0.0
        infeed = _num(row.get("infeedTimeMs")) or 0.0
        steps.append((total, host + device, infeed, device))
    p = (table or {}).get("p") or {}
    hardware = p.get("hardware_type") if isinstance(p, dict) else None
    out: dict[str, Any] = {
        "steps": len(steps),
        "step_time_ms_mean": None,
        "step_time_ms_stddev": None,
        "input_ms_mean": None,
        "compute_ms_mean": None,
        "other_ms_mean": None,
        "input_percent": None,
        "verdict": None,
        "hardware_type": hardware if isinstance(hardware, str) else None,
        "device_compute_percent": None,
    }
    if not steps:
        return out
    totals = [s[0] for s in steps]
    mean = statistics.fmean(totals)
    compute = statistics.fmean(s[1] for s in steps)
    infeed = statistics.fmean(s[2] for s in steps)
    input_percent = 100.0 * infeed / mean
    out.update(
        step_time_ms_mean=mean,
        step_time_ms_stddev=statistics.pstdev(totals),
        input_ms_mean=infeed,
        compute_ms_mean=compute,
        other_ms_mean=max(mean - compute - infeed, 0.0),
        input_percent=input_percent,
        verdict=(
            "input_bound"
            if input_percent >= INPUT_BOUND_PERCENT
            else "moderately_input_bound"
            if input_percent >= INPUT_MODERATE_PERCENT
            else "not_input_bound"
        ),
    )
    if out["hardware_type"] not in (None, "", "CPU_ONLY"):
        out["device_compute_percent"] = 100.0 * statistics.fmean(s[3] for s in steps) / mean
    return out


def top_ops(data: Any, limit: int = TOP_OPS) -> list[dict[str, Any]]:
    """Framework ops by total self time, IDLE left out, from `framework_op_stats`."""
    tables = _tables(data)
    ops: dict[tuple[str, str, str], dict[str, Any]] = {}
    # The first table includes IDLE, the second leaves it out; one is enough.
    for row in _rows(tables[0]) if tables else []:
        name, kind = row.get("operation"), row.get("type")
        self_us = _num(row.get("total_self_time"))
        if not isinstance(name, str) or self_us is None:
            continue
        if "IDLE" in (name, kind):
            continue
        side = str(row.get("host_or_device") or "")
        ops[(side, str(kind), name)] = {
            "name": name,
            "type": kind if isinstance(kind, str) else None,
            "on": side.lower() or None,
            "self_time_ms": self_us / 1000.0,
            "occurrences": int(_num(row.get("occurrences")) or 0),
        }
    total_ms = sum(op["self_time_ms"] for op in ops.values())
    ranked = sorted(ops.values(), key=lambda op: op["self_time_ms"], reverse=True)[:limit]
    for op in ranked:
        op["self_time_percent"] = 100.0 * op["self_time_ms"] / total_ms if total_ms > 0 else None
    return ranked


_MATMUL_CONV = ("matmul", "conv", "einsum", "gemm", "dot")


def op_totals(data: Any) -> dict[str, float] | None:
    """Over every op of `framework_op_stats` (IDLE left out): launches, self time, matmul/conv time.

    What the optimization findings cite: op launches per step (with the
    step count) and the share of op time that tensor cores could take.
    """
    tables = _tables(data)
    launches, total_ms, matmul_ms = 0, 0.0, 0.0
    for row in _rows(tables[0]) if tables else []:
        name, kind = row.get("operation"), row.get("type")
        self_us = _num(row.get("total_self_time"))
        if not isinstance(name, str) or self_us is None or "IDLE" in (name, kind):
            continue
        launches += int(_num(row.get("occurrences")) or 0)
        total_ms += self_us / 1000.0
        if any(word in f"{kind} {name}".lower() for word in _MATMUL_CONV):
            matmul_ms += self_us / 1000.0
    if total_ms <= 0:
        return None
    return {"launches": float(launches), "self_time_ms": total_ms, "matmul_conv_ms": matmul_ms}


def peak_memory_bytes(data: Any) -> int | None:
    """The highest peak bytes in use over the allocators of `memory_profile`, if any."""
    per_allocator = data.get("memoryProfilePerAllocator") if isinstance(data, dict) else None
    if not isinstance(per_allocator, dict):
        return None
    peaks = []
    for profile in per_allocator.values():
        summary = profile.get("profileSummary") if isinstance(profile, dict) else None
        if not isinstance(summary, dict):
            continue
        stats = summary.get("peakStats")
        value = _num(stats.get("peakBytesInUse")) if isinstance(stats, dict) else None
        if value is None:
            value = _num(summary.get("peakBytesUsageLifetime"))
        if value is not None:
            peaks.append(int(value))
    return max(peaks) if peaks else None


def suggestions(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """What to try first, each citing the numbers it comes from."""
    out = []
    pct, step = summary.get("input_percent"), summary.get("step_time_ms_mean")
    if pct is not None and pct >= INPUT_MODERATE_PERCENT:
        out.append(
            {
                "id": "input_bound",
                "severity": "warning" if pct >= INPUT_BOUND_PERCENT else "info",
                "text": f"{pct:.1f} % of each step ({summary['input_ms_mean']:.2f} of "
                f"{step:.2f} ms) waits for input: prefetch, cache or parallelize the "
                "tf.data pipeline.",
            }
        )
    device = summary.get("device_compute_percent")
    if device is not None and device < LOW_DEVICE_PERCENT:
        out.append(
            {
                "id": "low_device_utilization",
                "severity": "warning",
                "text": f"The device computes during only {device:.1f} % of each step "
                f"({step:.2f} ms): look at input, host work and kernel launches in the trace "
                "viewer; larger batches help too.",
            }
        )
    ops = summary.get("top_ops") or []
    if ops and (ops[0].get("self_time_percent") or 0) >= HOT_OP_PERCENT:
        op = ops[0]
        out.append(
            {
                "id": "hot_op",
                "severity": "info",
                "text": f"{op['name']} ({op['type']}) takes {op['self_time_percent']:.1f} % of "
                f"the ops' self time ({op['self_time_ms']:.2f} ms over "
                f"{op['occurrences']} runs): optimize it first.",
            }
        )
    return out


def summarize(path: str, host: str) -> dict[str, Any]:
    """Our summary of one host's capture (runs xprof; slow, off the request thread).

    Raises:
      ConversionError: the capture could not be read.
    """
    overview = _tool_data(path, "overview_page")
    table = _step_table(overview)
    if table is None:
        table = _step_table(_tool_data(path, "input_pipeline_analyzer"))
    summary: dict[str, Any] = {"host": host, **step_summary(table)}
    op_stats = _tool_data(path, "framework_op_stats")
    summary["top_ops"] = top_ops(op_stats)
    summary["op_totals"] = op_totals(op_stats)
    try:
        summary["peak_memory_bytes"] = peak_memory_bytes(_tool_data(path, "memory_profile"))
    except ConversionError:
        summary["peak_memory_bytes"] = None  # the other tools read it: no reason to fail
    summary["suggestions"] = suggestions(summary)
    return summary


# -- sessions on disk ------------------------------------------------------------------


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


def profile_dir(logdir: str, run: str) -> str | None:
    """`<logdir>/<run>/plugins/profile` as a real path, or None if it would leave `logdir`.

    None for a logdir in an object store too: captures are local files (the
    profiler writes next to the job), listed only for a local logdir.
    """
    if not logdir or "://" in logdir:
        return None
    root = os.path.realpath(logdir)
    run_dir = os.path.realpath(os.path.join(root, run))
    if not _inside(run_dir, root):
        return None
    path = os.path.realpath(os.path.join(run_dir, PROFILE_SUBDIR))
    return path if _inside(path, root) else None


def valid_session_name(name: Any) -> bool:
    """A session name that names one folder (no separators, not `.` / `..`)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def session_folders(profile_root: str | None) -> dict[str, dict[str, tuple[str, os.stat_result]]]:
    """session -> host -> (path, stat) of every `<host>.xplane.pb` under `profile_root`."""
    out: dict[str, dict[str, tuple[str, os.stat_result]]] = {}
    if profile_root is None:
        return out
    try:
        sessions = os.listdir(profile_root)
    except OSError:
        return out
    for session in sessions:
        folder = os.path.join(profile_root, session)
        if not valid_session_name(session) or not os.path.isdir(folder):
            continue
        if not _inside(os.path.realpath(folder), profile_root):
            continue
        out[session] = session_hosts(folder)
    return out


def session_hosts(folder: str) -> dict[str, tuple[str, os.stat_result]]:
    """host -> (path, stat) of the `.xplane.pb` files in one session folder."""
    hosts = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    for name in names:
        if not name.endswith(XPLANE_SUFFIX) or len(name) == len(XPLANE_SUFFIX):
            continue
        path = os.path.join(folder, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if os.path.isfile(path):
            hosts[name[: -len(XPLANE_SUFFIX)]] = (path, st)
    return hosts


# -- summaries off the request thread ---------------------------------------------------------


class _Result:
    __slots__ = ("error", "status", "summary")

    def __init__(self, status: str, summary: dict[str, Any] | None, error: str | None) -> None:
        self.status = status
        self.summary = summary
        self.error = error


_Key = tuple[str, int, int]


class SummaryCache:
    """Host summaries computed on one worker thread, cached by (path, size, mtime).

    One per plugin instance. `get` never waits for xprof: it returns a pending
    result and starts the work if it is not done yet.
    """

    def __init__(self, summarize_fn: Callable[[str, str], dict[str, Any]] = summarize) -> None:
        self._summarize = summarize_fn
        self._lock = threading.Lock()
        self._done: collections.OrderedDict[_Key, _Result] = collections.OrderedDict()
        self._running: dict[_Key, concurrent.futures.Future[_Result]] = {}
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def get(self, path: str, host: str, st: os.stat_result) -> _Result:
        """The summary of one `.xplane.pb`, or a pending result while it is computed."""
        if st.st_size == 0:
            return _Result(STATUS_EMPTY, None, "the capture file is empty (0 bytes)")
        key = (path, st.st_size, st.st_mtime_ns)
        with self._lock:
            done = self._done.get(key)
            if done is not None:
                self._done.move_to_end(key)
                return done
            if key not in self._running:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        max_workers=1, thread_name_prefix="ttsmon-profiles"
                    )
                self._running[key] = self._executor.submit(self._compute, key, path, host)
        return _Result(STATUS_PENDING, None, None)

    def _compute(self, key: _Key, path: str, host: str) -> _Result:
        try:
            result = _Result(STATUS_OK, self._summarize(path, host), None)
        except ConversionError as err:
            result = _Result(STATUS_UNREADABLE, None, str(err))
        except Exception as err:  # a bug in xprof must not kill the worker
            result = _Result(STATUS_UNREADABLE, None, f"{type(err).__name__}: {err}")
        with self._lock:
            self._running.pop(key, None)
            self._done[key] = result
            while len(self._done) > CACHE_ENTRIES:
                self._done.popitem(last=False)
        return result

    def wait(self, timeout_s: float | None = None) -> None:
        """Waits for the work started so far (tests; never on a request thread)."""
        with self._lock:
            futures = list(self._running.values())
        concurrent.futures.wait(futures, timeout=timeout_s)


# -- the route's answer ---------------------------------------------------------------------------

_DOC_FIELDS = (
    "trigger",
    "start_wall_time_s",
    "stop_wall_time_s",
    "start_step",
    "stop_step",
)


def list_sessions(
    run: str,
    documents: Sequence[Any],
    logdir: str,
    cache: SummaryCache,
) -> dict[str, Any]:
    """The `profiles` answer for `run` (see http_api.md)."""
    xprof = xprof_status()
    folders = session_folders(profile_dir(logdir, run))
    docs: dict[str, dict[str, Any]] = {}
    for doc in documents:
        if isinstance(doc, dict) and valid_session_name(doc.get("session")):
            docs[doc["session"]] = doc  # a later document of the same session wins
    out = []
    for session in sorted(set(docs) | set(folders)):
        doc = docs.get(session, {})
        found = folders.get(session, {})
        names = set(found)
        documented = doc.get("hosts")
        if isinstance(documented, list):
            names |= {h for h in documented if isinstance(h, str) and h}
        hosts = []
        summary = None
        for host in sorted(names):
            entry: dict[str, Any] = {
                "host": host,
                "file": host + XPLANE_SUFFIX,
                "size_bytes": None,
                "status": STATUS_UNREADABLE,
                "error": None,
            }
            if host not in found:
                entry["error"] = "file not found in the session folder"
            else:
                path, st = found[host]
                entry["size_bytes"] = st.st_size
                if st.st_size == 0 or xprof["available"]:
                    result = cache.get(path, host, st)
                    entry["status"], entry["error"] = result.status, result.error
                    if summary is None and result.summary is not None:
                        summary = result.summary
                else:
                    entry["status"], entry["error"] = STATUS_OK, None
            hosts.append(entry)
        shown = next((h["host"] for h in hosts if h["status"] != STATUS_EMPTY), None)
        if summary is not None:
            shown = summary["host"]
        elif shown is None and hosts:
            shown = hosts[0]["host"]
        item: dict[str, Any] = {"session": session}
        item.update({k: doc.get(k) for k in _DOC_FIELDS})
        item["capture_status"] = doc.get("status")
        item["capture_error"] = doc.get("error")
        item["hosts"] = hosts
        item["summary"] = summary
        item["links"] = links(run, session, shown)
        out.append(item)
    return {"run": run, "xprof": xprof, "sessions": out}
