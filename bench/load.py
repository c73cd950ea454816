"""K simulated viewers replay the tab's own request cycle against a real TensorBoard.

The cycle is recorded from the tab itself (Debian's Chromium through
Playwright, `bench/load_cycle.py`): its first load and its auto-refreshes
(every `AUTO_REFRESH_MS` = 5 s, frontend/src/app.ts), with the runs selected.
Each viewer thread then sends the first-load cycle once and the idle refresh
cycle again and again, every 5 s, with its own ETags (``If-None-Match`` where
the tab sent one), at most 6 requests in flight as Chromium. Whatever the tab
asks for today is what is measured: the benchmark cannot drift from it.

Logdirs (written once, kept under ``--cache``):

* (a) ``demo``: one run as the demo records it, written by the real recorder
  in a few seconds instead of `make demo`'s minutes of Keras training: a
  `Monitor` sampling every 0.1 s (per-core CPU on, no GPU here) while a loop
  logs 3000 training steps (loss, learning rate, gradient norm, steps/s; a
  validation loss every 100 steps; gradient norms of 6 layers) and then 400
  timed inference requests with the demo's 4 stages and their audio length.
* (b) ``runs24``: 24 runs x 43 tags x 10 000 samples written directly with
  `tb_plugin_ttsmon.recorder.writers` (`bench/_tb.write_recorded_run`), and
  their twin as TensorBoard's built-in scalars for the Scalars baseline.
* ``runs12``: 12 runs x 43 tags x 4000 samples, for the before/after idle case.

Figures per number of viewers: p50/p99 latency of the refresh requests (and
of the first loads), errors, TensorBoard's CPU (psutil cpu_times of the
``tensorboard`` process and its children, the Rust data server included, net
of what TensorBoard burns with no viewer), bytes per refresh, and the shared
cache's peak size (``GET stats``).

Run: ``.venv/bin/python bench/load.py`` (about 20 minutes on a busy 2-core
machine once the logdirs are written, which takes about 3 minutes the first
time; the Scalars baseline and the 24-run first loads are most of it) or
``--quick`` (about 7 minutes); ``--skip a,b,scalars,before`` leaves parts
out. It prints figures and ratios measured side by side in this run; it
asserts nothing about time.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tb  # bench/_tb.py: a real tensorboard, realistic runs
from load_cycle import Call, Cycle, Tally, Viewer, describe, record_cycle

from tb_plugin_ttsmon.units import format_bytes, format_number

REFRESH_INTERVAL_S = 5.0  # AUTO_REFRESH_MS in frontend/src/app.ts
OLD_CODE_DIR = "/tmp/head"  # the code before issue 10 (commit 7246ce2)
OLD_COMMIT = "7246ce2"
# The shared cache's peak size at the end of each load table, for the goals.
results_peak: dict[str, int | None] = {}
LOGDIR_FORMAT = 1  # bump when what the logdir writers write changes


# -- logdirs -------------------------------------------------------------------


# The demo's inference stages and their typical latency (scaled by 1..2 at random).
DEMO_STAGES_MS = (("frontend", 0.3), ("encoder", 1.0), ("decoder", 2.0), ("vocoder", 0.5))


def _write_demo_run(run_dir: str, steps: int = 3000, requests: int = 400) -> None:
    """The demo's kind of run, recorded by the real `Monitor` in seconds (see the module doc)."""
    import numpy as np

    import tb_plugin_ttsmon as ttsmon

    rng = np.random.default_rng(0)
    layers = [f"{part}/layer_{i}/kernel" for part in ("encoder", "decoder") for i in range(3)]
    with ttsmon.Monitor(run_dir, interval=0.1, writer="event", gpus=False) as mon:
        for step in range(1, steps + 1):
            warmup = min(1.0, step / 200)
            lr = 1e-3 * warmup * 0.5 * (1 + math.cos(math.pi * step / steps))
            loss = 0.02 + 0.5 * math.exp(-step / 600) + abs(rng.normal(0, 0.005))
            grads = {name: rng.normal(0, 0.1 * (1 + i), 16) for i, name in enumerate(layers)}
            norm = mon.log_gradients(step, grads)
            mon.log_training(step, loss=loss, learning_rate=lr, gradient_norm=norm)
            if step % 100 == 0:
                mon.log_validation(step, loss=loss * 1.1)
            if step % 20 == 0:
                time.sleep(0.05)  # let the sampler take its samples alongside
        for i in range(requests):
            batch = 8 if i == 0 else 1
            with mon.time_inference(batch_size=batch) as req:
                for stage, ms in DEMO_STAGES_MS:
                    with req.stage(stage):
                        time.sleep(ms / 1000 * (1 + rng.random()))
                req.audio_seconds = 1.5 + rng.random() * 3


def _write_runs(logdir: str, runs: int, samples: int, builtin: bool) -> None:
    writer = _tb.write_builtin_run if builtin else _tb.write_recorded_run
    workers = max(1, min(2, os.cpu_count() or 1))  # the machine is shared: 2 at most
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        futures = [
            pool.submit(writer, os.path.join(logdir, f"team/run-{i:02d}"), samples, i)
            for i in range(runs)
        ]
        for f in futures:
            f.result()


def logdir(cache_dir: str, name: str, build: str, runs: int = 0, samples: int = 0) -> str:
    """A logdir of kind `build` ("demo", "runs", "builtin"), written once into `cache_dir`."""
    path = os.path.join(cache_dir, f"{name}-v{LOGDIR_FORMAT}")
    done = os.path.join(path, ".complete")
    if os.path.exists(done):
        return path
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    t0 = time.monotonic()
    if build == "demo":
        _write_demo_run(os.path.join(path, "amharic-tts/demo"))
    else:
        _write_runs(path, runs, samples, builtin=build == "builtin")
    with open(done, "w") as f:
        f.write("ok\n")
    print(f"  wrote {name} in {time.monotonic() - t0:.0f} s ({path})", flush=True)
    return path


# -- TensorBoard ---------------------------------------------------------------


@dataclass
class Server:
    """A running TensorBoard: its URL and process."""

    url: str
    process: psutil.Process

    def cpu_s(self) -> float:
        """CPU seconds of TensorBoard and its children (the Rust data server) so far."""
        total = 0.0
        procs = [self.process]
        with contextlib.suppress(psutil.Error):
            procs += self.process.children(recursive=True)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def cache_peak_bytes(self) -> int | None:
        """The shared cache's peak size (``GET stats``), None where the route is missing."""
        r = _tb.fetch(self.url + "data/plugin/ttsmon/stats")
        if r.status != 200:
            return None
        return int(json.loads(r.body)["cache"]["peak_bytes"])


_SHIM = """import sys
sys.meta_path[:] = [
    f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")
]
"""


@contextlib.contextmanager
def serve(path: str, *, load_fast: bool = True, pythonpath: str | None = None) -> Iterator[Server]:
    """A real `tensorboard` on `path`; with `pythonpath`, the plugin is imported from there."""
    saved_path, saved_cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if pythonpath is not None:
        # The venv's editable install maps tb_plugin_ttsmon to this tree through
        # an import hook that outranks PYTHONPATH, and `python -m` puts the
        # working directory first: a sitecustomize drops the hook, and the
        # server starts from the shim's directory.
        shim = tempfile.mkdtemp(prefix="ttsmon-bench-old-")
        with open(os.path.join(shim, "sitecustomize.py"), "w") as f:
            f.write(_SHIM)
        os.environ["PYTHONPATH"] = os.pathsep.join([shim, pythonpath])
        os.chdir(shim)
    try:
        cm = _tb.tensorboard_server(path, load_fast=load_fast)
        url = cm.__enter__()
    finally:
        if pythonpath is not None:
            os.chdir(saved_cwd)
            if saved_path is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved_path
    try:
        port = urllib.parse.urlparse(url).port
        mine = [
            p
            for p in psutil.Process().children(recursive=True)
            if f"--port={port}" in " ".join(p.cmdline())
        ]
        if not mine:
            raise RuntimeError(f"no tensorboard process on port {port}")
        yield Server(url, mine[0])
    except BaseException:
        cm.__exit__(*sys.exc_info())
        raise
    else:
        cm.__exit__(None, None, None)


def wait_loaded(server: Server, runs: int) -> float:
    """Waits until TensorBoard serves `runs` runs and their tags stop growing; seconds waited."""
    t0 = time.monotonic()
    previous: list[object] = [None]
    stable = [0]

    def check() -> bool:
        body = json.loads(_tb.fetch(server.url + "data/plugin/ttsmon/runs").body)
        names = [r["run"] for r in body["runs"]]
        if len(names) < runs:
            return False
        state = []
        for name in names:
            q = urllib.parse.urlencode({"run": name})
            tags = json.loads(_tb.fetch(f"{server.url}data/plugin/ttsmon/tags?{q}").body)["tags"]
            state.append(sorted((t["tag"], t.get("max_step")) for t in tags))
        stable[0] = stable[0] + 1 if state == previous[0] else 0
        previous[0] = state
        return stable[0] >= 2  # unchanged over 2 polls: ~2 reloads (--reload_interval=1)

    _tb.wait_until(check, f"{runs} runs", timeout_s=600)
    return time.monotonic() - t0


def run_names(server: Server) -> list[str]:
    """The runs our `runs` route lists, sorted."""
    body = json.loads(_tb.fetch(server.url + "data/plugin/ttsmon/runs").body)
    return [r["run"] for r in body["runs"]]


def idle_cores(server: Server, seconds: float) -> float:
    """TensorBoard's CPU with no viewer (its reloads), in cores."""
    c0, t0 = server.cpu_s(), time.monotonic()
    time.sleep(seconds)
    return (server.cpu_s() - c0) / (time.monotonic() - t0)


# -- viewers -------------------------------------------------------------------


@dataclass
class Phase:
    """One phase of a measurement: every viewer's first load, or their refreshes."""

    tally: Tally
    wall_s: float
    cpu_s: float  # TensorBoard's CPU in the phase, net of its idle cost

    def per_cycle_cpu_s(self) -> float:
        return self.cpu_s / max(1, self.tally.cycles)

    def per_cycle_bytes(self) -> float:
        return self.tally.wire_bytes / max(1, self.tally.cycles)

    def per_cycle_requests(self) -> float:
        return self.tally.requests / max(1, self.tally.cycles)


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank), NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def viewers_load(
    server: Server,
    first: Sequence[Call],
    refresh: Sequence[Call],
    viewers: int,
    *,
    cycles: int = 0,
    duration_s: float = 0.0,
    idle: float = 0.0,
) -> tuple[Phase, Phase]:
    """`viewers` tabs: each first loads once, then refreshes every 5 s.

    Starts are spread over one refresh interval, as tabs opened at different
    times. The refreshes stop after `cycles` each, or after `duration_s`. A
    refresh that takes longer than the interval is followed by the next at once
    (the tab queues one refresh while one is in flight). `idle` is
    TensorBoard's CPU with no viewer, in cores, subtracted from each phase.
    """
    tabs = [Viewer(server.url) for _ in range(viewers)]
    offsets_s = [REFRESH_INTERVAL_S * i / viewers for i in range(viewers)]
    first_tally, refresh_tally = Tally(), Tally()

    def first_load(i: int) -> None:
        time.sleep(offsets_s[i])
        tabs[i].run(first, first_tally)

    def refreshes(i: int, start_s: float) -> None:
        n = 0
        while True:
            due = start_s + offsets_s[i] + n * REFRESH_INTERVAL_S
            if cycles and n >= cycles:
                return
            if duration_s and due - start_s >= duration_s:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            tabs[i].run(refresh, refresh_tally)
            n += 1

    def phase(target: Callable[..., None], tally: Tally, *args: float) -> Phase:
        c0, t0 = server.cpu_s(), time.monotonic()
        threads = [
            threading.Thread(target=target, args=(i, *args), daemon=True) for i in range(viewers)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall_s = time.monotonic() - t0
        return Phase(tally, wall_s, server.cpu_s() - c0 - idle * wall_s)

    try:
        p1 = phase(first_load, first_tally)
        p2 = phase(refreshes, refresh_tally, time.monotonic())
    finally:
        for tab in tabs:
            tab.close()
    return p1, p2


def scalars_cycle(runs: Sequence[str]) -> tuple[Call, ...]:
    """TensorBoard's Scalars dashboard (its `timeSeries` route) asking the same tags.

    Its tag listing, then one POST per section of the tab (system, training)
    holding every (run, tag) of the section, as the dashboard batches its cards.
    """
    form = ("content-type", "application/x-www-form-urlencoded")
    calls = [Call("GET", "data/plugin/timeseries/tags", None, (), False, 0)]
    for tags in _tb.sections(_tb.ALL_TAGS).values():
        requests = [{"plugin": "scalars", "tag": t, "run": r} for r in runs for t in tags]
        body = urllib.parse.urlencode({"requests": json.dumps(requests)}).encode()
        calls.append(Call("POST", "data/plugin/timeseries/timeSeries", body, (form,), False, 1))
    return tuple(calls)


def points_served(server: Server, calls: Sequence[Call]) -> tuple[int, int]:
    """(points, series) in the answers to `calls` (our series routes and `timeSeries`)."""
    points = series = 0

    def walk(node: object) -> None:
        nonlocal points, series
        if isinstance(node, dict):
            if isinstance(node.get("rows"), list):
                points += len(node["rows"])
                series += 1
                return
            if isinstance(node.get("runToSeries"), dict):
                for values in node["runToSeries"].values():
                    points += len(values)
                    series += 1
                return
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for call in calls:
        route = call.path.split("?", 1)[0]
        if not route.endswith(("/series", "/series_batch", "/timeSeries")):
            continue
        form = dict(urllib.parse.parse_qsl(call.body.decode())) if call.body else None
        r = _tb.fetch(server.url + call.path, form)
        if r.status == 200:
            walk(json.loads(r.body))
    return points, series


# -- tables --------------------------------------------------------------------


def _ms(s: float) -> str:
    return "n/a" if math.isnan(s) else f"{s * 1000:.0f} ms"


def _row(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths))


LOAD_HEADER = (
    "viewers",
    "first p50",
    "first p99",
    "refresh p50",
    "refresh p99",
    "errors",
    "304s",
    "req/refresh",
    "bytes/refresh",
    "CPU/refresh",
    "CPU/viewer",
    "TB CPU",
)
LOAD_WIDTHS = (7, 9, 9, 11, 11, 6, 6, 11, 13, 11, 10, 7)


def load_row(viewers: int, p1: Phase, p2: Phase, idle: float) -> str:
    lat = p2.tally.latencies_s
    gross_cores = (p2.cpu_s + idle * p2.wall_s) / p2.wall_s
    per_viewer = p2.per_cycle_cpu_s() / REFRESH_INTERVAL_S  # cores, at one refresh per 5 s
    return _row(
        (
            str(viewers),
            _ms(quantile(p1.tally.latencies_s, 0.5)),
            _ms(quantile(p1.tally.latencies_s, 0.99)),
            _ms(quantile(lat, 0.5)),
            _ms(quantile(lat, 0.99)),
            str(p1.tally.errors + p2.tally.errors),
            str(p2.tally.not_modified),
            format_number(p2.per_cycle_requests()),
            format_bytes(p2.per_cycle_bytes()),
            _ms(p2.per_cycle_cpu_s()),
            f"{format_number(100 * per_viewer)} %",
            f"{format_number(100 * gross_cores)} %",
        ),
        LOAD_WIDTHS,
    )


def print_load_header() -> None:
    print(_row(LOAD_HEADER, LOAD_WIDTHS))


def print_legend() -> None:
    print(
        "  first/refresh p50, p99: request latency (send to last byte) in the viewers' first\n"
        "  loads / idle refreshes; errors: HTTP >= 400 or no answer, both phases; 304s: refresh\n"
        "  requests answered 304; bytes: answers received (headers, gzip body); CPU/refresh:\n"
        "  TensorBoard's CPU (process tree, Rust data server included) per refresh, net of its\n"
        "  CPU with no"
        " viewer; CPU/viewer: that at one refresh per 5 s, in % of a core; TB CPU:\n"
        "  TensorBoard's whole CPU during the refreshes, in % of a core (2 cores here, shared)."
    )


# -- experiments -----------------------------------------------------------------


@dataclass
class Settings:
    cache_dir: str
    viewer_counts_a: tuple[int, ...]
    viewer_counts_b: tuple[int, ...]
    viewer_counts_scalars: tuple[int, ...]
    cycles: int
    runs_b: int
    samples_b: int
    samples_12: int
    idle_window_s: float
    python_loader: bool


def record(server: Server, runs: Sequence[str] | None, label: str) -> Cycle:
    cycle = record_cycle(server.url, runs, refreshes=2)
    print(f"  recorded from Chromium ({label}): first render {cycle.first_render_s:.1f} s")
    print(f"    first load:    {describe(cycle.first)}; {format_bytes(cycle.first_wire_bytes)}")
    for i, (calls, wire) in enumerate(zip(cycle.refreshes, cycle.refresh_wire_bytes), 1):
        print(f"    refresh {i}:     {describe(calls)}; {format_bytes(wire)}")
    return cycle


def load_table(
    path: str,
    runs_expected: int,
    select_all: bool,
    counts: Sequence[int],
    cycles: int,
    load_fast: bool,
    title: str,
) -> dict[int, tuple[Phase, Phase]]:
    loader = "Rust loader (--load_fast=true)" if load_fast else "Python loader (--load_fast=false)"
    print(f"\n== {title}, {loader} ==", flush=True)
    with serve(path, load_fast=load_fast) as rec_server:
        wait_loaded(rec_server, runs_expected)
        runs = run_names(rec_server) if select_all else None
        cycle = record(rec_server, runs, f"{len(runs) if runs else 'default'} runs selected")
        points, series = points_served(rec_server, cycle.first)
        print(f"    the first load's series answers hold {points} points in {series} series")
    results: dict[int, tuple[Phase, Phase]] = {}
    with serve(path, load_fast=load_fast) as server:  # a fresh one: the first load is cold
        loaded_s = wait_loaded(server, runs_expected)
        idle = idle_cores(server, 8.0)
        print(
            f"  TensorBoard loaded the logdir in {loaded_s:.0f} s; with no viewer it uses"
            f" {format_number(100 * idle)} % of a core (subtracted below)"
        )
        print_load_header()
        for k in counts:
            p1, p2 = viewers_load(server, cycle.first, cycle.refresh, k, cycles=cycles, idle=idle)
            results[k] = (p1, p2)
            print(load_row(k, p1, p2, idle), flush=True)
        peak = server.cache_peak_bytes()
        shown = format_bytes(peak) if peak is not None else "n/a (no stats route)"
        print(f"  shared cache peak: {shown}")
    print_legend()
    if counts and counts[0] == 1:
        p1, p2 = results[1]
        cpu_ratio = p2.per_cycle_cpu_s() / max(1e-9, p1.per_cycle_cpu_s())
        byte_ratio = p2.per_cycle_bytes() / max(1.0, p1.per_cycle_bytes())
        print(
            f"  one viewer: cold full load {_ms(p1.per_cycle_cpu_s())} of server CPU and"
            f" {format_bytes(p1.per_cycle_bytes())}; idle refresh {_ms(p2.per_cycle_cpu_s())}"
            f" and {format_bytes(p2.per_cycle_bytes())}: {format_number(100 * cpu_ratio)} % of the"
            f" CPU and {format_number(100 * byte_ratio)} % of the bytes"
        )
    results_peak[f"{title}, {loader}"] = peak
    return results


def scalars_table(path: str, runs_expected: int, counts: Sequence[int], cycles: int) -> None:
    print(
        "\n== Baseline: TensorBoard's own Scalars dashboard (POST timeSeries), the same"
        " runs, tags and values as built-in scalars, Rust loader ==",
        flush=True,
    )
    with serve(path) as server:
        loaded_s = wait_loaded_scalars(server, runs_expected)
        runs = sorted(
            json.loads(_tb.fetch(server.url + "data/plugin/timeseries/tags").body)["scalars"][
                "runTagInfo"
            ]
        )
        cycle = scalars_cycle(runs)
        points, series = points_served(server, cycle)
        idle = idle_cores(server, 8.0)
        print(
            f"  {len(runs)} runs; one refresh: {describe(cycle)}; {points} points in {series}"
            f" series ({points // max(1, series)} each: TensorBoard keeps 1000 per scalar series);"
            f" loaded in {loaded_s:.0f} s; idle {format_number(100 * idle)} % of a core"
        )
        print_load_header()
        for k in counts:
            p1, p2 = viewers_load(server, cycle, cycle, k, cycles=cycles, idle=idle)
            print(load_row(k, p1, p2, idle), flush=True)
    print("  (TensorBoard's dashboard has no ETags: every refresh asks everything again.)")


def wait_loaded_scalars(server: Server, runs: int) -> float:
    t0 = time.monotonic()
    previous: list[object] = [None]
    stable = [0]

    def check() -> bool:
        body = json.loads(_tb.fetch(server.url + "data/plugin/timeseries/tags").body)
        info = body["scalars"]["runTagInfo"]
        if len(info) < runs:
            return False
        probe = [{"plugin": "scalars", "tag": "train/loss", "run": r} for r in sorted(info)]
        got = _tb.fetch(
            server.url + "data/plugin/timeseries/timeSeries", {"requests": json.dumps(probe)}
        )
        state = [
            [s[-1]["step"] for s in entry.get("runToSeries", {}).values()]
            for entry in json.loads(got.body)
        ]
        stable[0] = stable[0] + 1 if state == previous[0] else 0
        previous[0] = state
        return stable[0] >= 2

    _tb.wait_until(check, f"{runs} runs of built-in scalars", timeout_s=600)
    return time.monotonic() - t0


def before_after(path: str, window_s: float) -> None:
    print(
        f"\n== Before / after: 12 runs x 43 tags x {SAMPLES_12} samples, every run selected,"
        f" no new data, one tab for {window_s:.0f} s, Rust loader ==",
        flush=True,
    )
    if not os.path.isdir(OLD_CODE_DIR):
        print(
            f"  {OLD_CODE_DIR} is missing: `git -C {_tb.REPO_ROOT} worktree add -f"
            f" {OLD_CODE_DIR} {OLD_COMMIT}` gives the old code; before figures left out"
        )
        contenders: list[tuple[str, str | None]] = [("after", None)]
    else:
        contenders = [("before (7246ce2)", OLD_CODE_DIR), ("after (this tree)", None)]
    widths = (17, 12, 8, 12, 12, 11, 12, 13)
    print(
        _row(
            ("code", "first render", "requests", "bytes", "TB CPU", "304s", "first load", "bytes"),
            widths,
        )
    )
    for label, pythonpath in contenders:
        with serve(path, pythonpath=pythonpath) as server:
            wait_loaded(server, 12)
            has_versions = _tb.fetch(server.url + "data/plugin/ttsmon/versions").status == 200
            if has_versions == (pythonpath is not None):
                raise RuntimeError(f"{label}: the server runs the wrong code (versions route)")
            cycle = record_cycle(server.url, run_names(server), refreshes=2)
            tab = Viewer(server.url)
            tally = Tally()
            try:
                tab.run(cycle.first, Tally())
                c0, t0 = server.cpu_s(), time.monotonic()
                n = 0
                while time.monotonic() - t0 < window_s:
                    due = t0 + n * REFRESH_INTERVAL_S
                    time.sleep(max(0.0, due - time.monotonic()))
                    if due - t0 >= window_s:
                        break
                    tab.run(cycle.refresh, tally)
                    n += 1
                time.sleep(max(0.0, t0 + window_s - time.monotonic()))
                wall_s = time.monotonic() - t0
                cores = (server.cpu_s() - c0) / wall_s
            finally:
                tab.close()
        print(
            _row(
                (
                    label,
                    f"{cycle.first_render_s:.1f} s",
                    str(tally.requests),
                    format_bytes(tally.wire_bytes),
                    f"{format_number(100 * cores)} %",
                    str(tally.not_modified),
                    f"{len(cycle.first)} req",
                    format_bytes(cycle.first_wire_bytes),
                ),
                widths,
            ),
            flush=True,
        )
    print(
        f"  requests, bytes (answers received: headers and gzip bodies) and TensorBoard's CPU\n"
        f"  (% of a core, its idle reloads included) over the {window_s:.0f} s after the first"
        " load, one\n  refresh per 5 s (a refresh longer than that is followed at once by the"
        " next);\n  first render: page open to the tab's first full render in Chromium; first"
        " load: the\n  tab's requests and bytes until then (in Chromium)."
    )


SAMPLES_12 = 4000


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="a few minutes: fewer refreshes, a smaller (b)"
    )
    parser.add_argument("--cache", default=os.path.join("/tmp", "ttsmon-bench-load"))
    parser.add_argument(
        "--python-loader", action="store_true", help="also (a) under --load_fast=false"
    )
    parser.add_argument("--skip", default="", help="comma-separated: a,b,scalars,before")
    args = parser.parse_args(argv)
    # SIGTERM as Ctrl-C, so that the TensorBoards started here are stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        s = Settings(
            cache_dir=args.cache,
            viewer_counts_a=(1, 5, 20, 50),
            viewer_counts_b=(1, 5),
            viewer_counts_scalars=(1,),
            cycles=2,
            runs_b=24,
            samples_b=2500,
            samples_12=SAMPLES_12,
            idle_window_s=15.0,
            python_loader=args.python_loader,
        )
    else:
        s = Settings(
            cache_dir=args.cache,
            viewer_counts_a=(1, 5, 20, 50),
            viewer_counts_b=(1, 5, 20),
            viewer_counts_scalars=(1,),
            cycles=4,
            runs_b=24,
            samples_b=10_000,
            samples_12=SAMPLES_12,
            idle_window_s=30.0,
            python_loader=args.python_loader,
        )
    os.makedirs(s.cache_dir, exist_ok=True)
    print(
        f"bench/load.py{' --quick' if args.quick else ''}: {os.cpu_count()} CPUs, load average"
        f" {_tb.load_average():.1f}; one refresh every {REFRESH_INTERVAL_S:.0f} s, {s.cycles}"
        " refreshes per viewer after its first load",
        flush=True,
    )
    print("writing the logdirs (once; kept under --cache)", flush=True)
    demo = logdir(s.cache_dir, "demo", "demo")
    b_name = f"runs{s.runs_b}x{s.samples_b}"
    runs_b = logdir(s.cache_dir, b_name, "runs", s.runs_b, s.samples_b)
    scalars_b = logdir(s.cache_dir, b_name + "-scalars", "builtin", s.runs_b, s.samples_b)
    runs_12 = logdir(s.cache_dir, f"runs12x{s.samples_12}", "runs", 12, s.samples_12)

    if "a" not in skip:
        a = load_table(demo, 1, False, s.viewer_counts_a, s.cycles, True, "(a) the demo run")
        if s.python_loader:
            load_table(demo, 1, False, s.viewer_counts_a, s.cycles, False, "(a) the demo run")
    if "b" not in skip:
        b = load_table(
            runs_b,
            s.runs_b,
            True,
            s.viewer_counts_b,
            s.cycles,
            True,
            f"(b) {s.runs_b} runs x 43 tags x {s.samples_b} samples, every run selected",
        )
    if "scalars" not in skip:
        # each of its refreshes reads every point again (seconds of CPU, tens of seconds
        # of wall time here): one viewer and 2 refreshes are enough to compare
        scalars_table(scalars_b, s.runs_b, s.viewer_counts_scalars, min(2, s.cycles))
    if "before" not in skip:
        before_after(runs_12, s.idle_window_s)

    print("\n== Goals ==")
    if "a" not in skip and 50 in a:
        p1, p2 = a[50]
        errors = p1.tally.errors + p2.tally.errors
        p99 = quantile(p2.tally.latencies_s + p1.tally.latencies_s, 0.99)
        print(
            f"  50 viewers on (a): 0 errors and p99 < 1 s: {errors} errors, p99 {_ms(p99)}"
            f" (first loads and refreshes together)"
        )
    if "a" not in skip and 1 in a:
        p1, p2 = a[1]
        print(
            f"  idle refresh <= 5 % of a full load (a): CPU"
            f" {format_number(100 * p2.per_cycle_cpu_s() / max(1e-9, p1.per_cycle_cpu_s()))} %,"
            f" bytes {format_number(100 * p2.per_cycle_bytes() / max(1.0, p1.per_cycle_bytes()))} %"
        )
    if "b" not in skip and 1 in b:
        p1, p2 = b[1]
        print(
            f"  24 runs selected on (b): a refresh < 1 s of server time:"
            f" {_ms(p2.per_cycle_cpu_s())} (idle refresh),"
            f" {_ms(p1.per_cycle_cpu_s())} (cold first load)"
        )
    for key, peak in results_peak.items():
        print(
            f"  cache peak bounded: {key}: {format_bytes(peak) if peak is not None else 'n/a'}"
            " (bound 64 MiB)"
        )


if __name__ == "__main__":
    main()
