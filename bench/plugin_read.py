"""Reading a run through our `series` route vs the built-in Scalars plugin's route.

Run it from the repository root::

    python bench/plugin_read.py [--quick]

Method: one run holds 40 ttsmon series of 100 000 points each, and the same
values as 40 series of TensorBoard's built-in Scalars plugin (tags prefixed
``builtin/``). One real ``tensorboard`` process (the Rust loader, the default
``--load_fast=true``, default flags) serves it. Once every series is loaded,
rounds alternate between

* ours: ONE ``GET /data/plugin/ttsmon/series?run=R&tag=...x40&points=2000``
  (what the tab asks for: a section's tags in one call, downsampled on the
  server with min/max buckets), and
* built-in: 40 ``GET /data/plugin/scalars/scalars?run=R&tag=T`` calls, one
  per tag (each returns every point that loader keeps),

and the median time of each over the rounds is compared. With default flags
the Rust loader keeps 5 000 points per ttsmon series (our `fix_flags`) and
1 000 per built-in scalar series, so ours reads five times the points; a
second TensorBoard with ``--samples_per_plugin=ttsmon=1000`` compares equal
numbers of points.

Goal: ours <= 1.0x the built-in total (printed with PASS/MISS; informational).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO_ROOT, os.path.join(REPO_ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

GOAL = 1.0
TAGS = 40
RUN = "bench"


def _write(logdir: str, points: int) -> None:
    """40 ttsmon series and the same 40 series under the built-in Scalars plugin."""
    import numpy as np
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    from tb_plugin_ttsmon import metadata
    from tb_plugin_ttsmon.recorder import writers

    rng = np.random.default_rng(0)
    values = rng.normal(50.0, 10.0, size=(points, TAGS)).astype(np.float32)
    ours = [f"system/cpu_core/{i}/utilization_percent" for i in range(TAGS)]
    theirs = [f"builtin/cpu_core_{i}" for i in range(TAGS)]
    run = os.path.join(logdir, RUN)

    w = writers.create_writer("event", run)
    for i in range(points):
        w.write(i, zip(ours, values[i].tolist()), wall_time_s=1.7e9 + i)
    w.close()

    # The built-in plugin's values, written as its own summary_v2 does (float32
    # rank-0 tensor, DATA_CLASS_SCALAR), metadata on each tag's first value.
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    builtin_md = scalar_metadata.create_summary_metadata(display_name="", description="")
    out = EventFileWriter(run, max_queue_size=1024)
    for i in range(points):
        summary = summary_pb2.Summary()
        for tag, v in zip(theirs, values[i].tolist()):
            value = summary.value.add(tag=tag, tensor=metadata.scalar_tensor(v))
            if i == 0:
                value.metadata.CopyFrom(builtin_md)
        out.add_event(event_pb2.Event(wall_time=1.7e9 + i, step=i, summary=summary))
    out.close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as r:
        return r.read()


def _wait_loaded(base: str, points: int, timeout_s: float = 600.0) -> None:
    import json

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ours = json.loads(_get(base + "data/plugin/ttsmon/tags?run=" + RUN))["tags"]
            theirs = json.loads(_get(base + "data/plugin/scalars/tags"))[RUN]
            if (
                len(ours) == TAGS
                and all(t["max_step"] == points - 1 for t in ours)
                and len(theirs) == TAGS
            ):
                return
        except Exception:
            pass
        time.sleep(1.0)
    raise RuntimeError("TensorBoard did not load the run in time")


def _measure(base: str, rounds: int) -> tuple[float, float, int, int]:
    import json

    ours_q = urllib.parse.urlencode(
        {
            "run": RUN,
            "tag": [f"system/cpu_core/{i}/utilization_percent" for i in range(TAGS)],
            "points": 2000,
        },
        doseq=True,
    )
    ours_url = base + "data/plugin/ttsmon/series?" + ours_q
    theirs_urls = [
        base + "data/plugin/scalars/scalars?" + urllib.parse.urlencode({"run": RUN, "tag": t})
        for t in (f"builtin/cpu_core_{i}" for i in range(TAGS))
    ]
    _get(ours_url)  # warm both
    for u in theirs_urls:
        _get(u)
    ours_s, theirs_s = [], []
    for r in range(rounds):
        order = [0, 1] if r % 2 == 0 else [1, 0]
        for which in order:
            t0 = time.perf_counter()
            if which == 0:
                body = _get(ours_url)
                ours_s.append(time.perf_counter() - t0)
            else:
                for u in theirs_urls:
                    _get(u)
                theirs_s.append(time.perf_counter() - t0)
    series = json.loads(body)["series"]
    kept = series[next(iter(series))]["total"]
    their_kept = len(json.loads(_get(theirs_urls[0])))
    return statistics.median(ours_s), statistics.median(theirs_s), kept, their_kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 000 points per series")
    args = parser.parse_args(argv)
    points = 10_000 if args.quick else 100_000
    rounds = 5 if args.quick else 9

    from tbserver import tensorboard_server

    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as logdir:
        t0 = time.perf_counter()
        _write(logdir, points)
        print(
            f"plugin_read: one run, {TAGS} ttsmon series and the same {TAGS} built-in scalar "
            f"series of {points:,} points each (written in {time.perf_counter() - t0:.0f} s); "
            f"Rust loader; median of {rounds} interleaved rounds"
        )
        print(
            f"{'flags':36s} {'kept/series ours, theirs':>25s} {'ours ms':>9s} "
            f"{'built-in ms':>12s} {'ratio':>7s}"
        )
        for extra in ((), ("--samples_per_plugin=ttsmon=1000",)):
            with tensorboard_server(logdir, load_fast=True, extra_args=extra) as base:
                _wait_loaded(base, points)
                ours, theirs, kept, their_kept = _measure(base, rounds)
            ratio = ours / theirs
            verdict = "PASS" if ratio <= GOAL else "MISS"
            label = " ".join(extra) or "defaults"
            print(
                f"{label:36s} {f'{kept:,}, {their_kept:,}':>25s} {ours * 1e3:9.1f} "
                f"{theirs * 1e3:12.1f} {ratio:7.2f}  {verdict} (goal <= {GOAL:g})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
