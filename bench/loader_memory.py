"""Memory that TensorBoard's loaders spend on ttsmon's 10 000 points per series.

Run it from the repository root::

    python bench/loader_memory.py [--quick]

Method: one run of 60 ttsmon series (a 2-GPU host's sample) with 10 000
points each, the default number kept per series with this plugin installed.
A real ``tensorboard`` process loads it with the Rust loader and then with the
Python loader; once every series is loaded, the resident memory of the
TensorBoard process and its children (the Rust data server) is read and
compared with the same TensorBoard over an empty log directory. The
difference, per run and per 10 000-point series, is what the default costs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for path in (REPO_ROOT, os.path.join(REPO_ROOT, "tests")):
    if path not in sys.path:
        sys.path.insert(0, path)

SERIES = 60
RUN = "run"


def _tree_rss_bytes(port: int) -> int:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if any(arg == f"--port={port}" for arg in cmd):
            tree = [proc, *proc.children(recursive=True)]
            return sum(p.memory_info().rss for p in tree)
    raise RuntimeError("tensorboard process not found")


def _loaded(base: str, points: int) -> bool:
    try:
        with urllib.request.urlopen(base + f"data/plugin/ttsmon/tags?run={RUN}", timeout=60) as r:
            tags = json.loads(r.read())["tags"]
    except Exception:
        return False
    return len(tags) == SERIES and all(t["max_step"] == points - 1 for t in tags)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2 000 points per series")
    points = 2_000 if parser.parse_args(argv).quick else 10_000

    import numpy as np
    from tbserver import tensorboard_server

    from tb_plugin_ttsmon.recorder import writers

    tags = [f"gpu/{g}/m{i}_percent" for g in range(2) for i in range(SERIES // 2)]
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as logdir:
        w = writers.create_writer("event", os.path.join(logdir, RUN))
        values = np.random.default_rng(0).uniform(0, 100, size=(points, SERIES))
        for i in range(points):
            w.write(i, zip(tags, values[i].tolist()), wall_time_s=1.7e9 + i)
        w.close()
        print(
            f"loader_memory: one run of {SERIES} ttsmon series x {points:,} points "
            "(resident memory of tensorboard and its data server, less an empty logdir's)"
        )
        for load_fast in (True, False):
            with tensorboard_server(empty, load_fast=load_fast) as base:
                time.sleep(2)
                port = int(base.rsplit(":", 1)[1].strip("/"))
                idle = _tree_rss_bytes(port)
            with tensorboard_server(logdir, load_fast=load_fast) as base:
                deadline = time.monotonic() + 600
                while not _loaded(base, points) and time.monotonic() < deadline:
                    time.sleep(1)
                time.sleep(2)
                port = int(base.rsplit(":", 1)[1].strip("/"))
                full = _tree_rss_bytes(port)
            extra = full - idle
            loader = "Rust (--load_fast=true)" if load_fast else "Python (--load_fast=false)"
            print(
                f"  {loader:28s} +{extra / 2**20:7.1f} MiB per run, "
                f"{extra / SERIES / 2**20:6.2f} MiB per series, "
                f"{extra / (SERIES * points):6.1f} bytes per point"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
