"""Reading a run through our `series` route vs TensorBoard's own batched `timeSeries` route.

Run it from the repository root::

    python bench/plugin_read.py [--quick] [--big]

Method. One logdir holds two runs with the same values, steps and wall times:

* ``ttsmon``: a run as the recorder writes it (`bench/_tb.py`
  `write_recorded_run`): 43 series, 39 sampled once a second (step = ms since
  the epoch) and 4 logged per training step, through our event writer;
* ``builtin``: the same 43 series as TensorBoard's built-in scalars (what
  ``scalar_pb`` writes), one event per sample and per training log.

Two logdirs: a realistic one (3 600 samples: an hour at 1 Hz) and, with
``--big``, a bigger one (20 000 samples: 5.5 hours). The default run takes
~3 minutes on 2 busy cores, --quick (defaults only) ~1.5, --big ~5 more.
Each is served by a real ``tensorboard`` under both loaders (``--load_fast=true``, the Rust data
server, and ``--load_fast=false``, the Python one), with two sets of flags:

* defaults: what users get; the loader keeps up to 5 000 points per ttsmon
  series (our `fix_flags`) and 1 000 per built-in scalar series, and our
  request asks for the ``points`` the tab asks for on a 1 400 px page
  (``frontend/src/app.ts`` `pointsFor`: 917, three charts a row),
  downsampled on the server;
* equal points: ``--samples_per_plugin=scalars=5000,ttsmon=5000`` and
  ``points=5000``, so both sides return the same points per series.

The requests are the ones each dashboard makes:

* ours: the tab's first load of a run, one ``POST series_batch`` per section
  whose ``requests`` is ``[{"run": R, "tags": [...], "points": N}]``
  (``frontend/src/api.ts`` `fetchSeriesBatch`, ``app.ts`` `doRefresh`): 39
  tags for "system", 4 for "training". Our plugin caches answers by request
  and data version, so it is timed twice: cold (each round asks one point
  more, so the cache misses: what new data costs) and cached (the same
  request again: what a second viewer pays). TensorBoard has no such cache;
* theirs: TensorBoard's Time Series dashboard's, one ``POST
  data/plugin/timeseries/timeSeries`` whose form field ``requests`` is a JSON
  list of ``{"plugin": "scalars", "tag": T, "run": R}``, for the same tags.

Both are sent with ``Accept-Encoding: gzip`` (as a browser sends them), the
three contenders take turns (ABC, CBA, ...) for the rounds, and the figures are the
median latency (end to end, one request at a time), the bytes on the wire and
the decoded JSON bytes. Ratios are ours / theirs; below 1 means ours is
cheaper. Informational: the exit status is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tb

from tb_plugin_ttsmon.units import format_bytes

OURS_RUN = "ttsmon"
THEIR_RUN = "builtin"
EQUAL_POINTS = 5000
CONFIGS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    # (label, extra tensorboard flags, our `points`)
    ("defaults", (), _tb.tab_points()),
    (
        "equal points",
        (f"--samples_per_plugin=scalars={EQUAL_POINTS},ttsmon={EQUAL_POINTS}",),
        EQUAL_POINTS,
    ),
)


def _ours_form(tags: list[str], points: int) -> dict[str, str]:
    return {"requests": json.dumps([{"run": OURS_RUN, "tags": tags, "points": points}])}


def _their_form(tags: list[str]) -> dict[str, str]:
    return {
        "requests": json.dumps([{"plugin": "scalars", "tag": t, "run": THEIR_RUN} for t in tags])
    }


def _our_points(body: bytes) -> dict[str, int]:
    (result,) = json.loads(body)["results"]
    if "error" in result:
        raise RuntimeError(f"series_batch answered an error: {result}")
    return {tag: len(s["rows"]) for tag, s in result["series"].items()}


def _their_points(body: bytes) -> dict[str, int]:
    out = {}
    for item in json.loads(body):
        if "error" in item:
            raise RuntimeError(f"timeSeries answered an error: {item}")
        out[item["tag"]] = len(item["runToSeries"].get(THEIR_RUN, []))
    return out


def _last_step_theirs(base: str, tag: str) -> int:
    body = _tb.fetch(base + "data/plugin/timeseries/timeSeries", _their_form([tag])).body
    return int(json.loads(body)[0]["runToSeries"][THEIR_RUN][-1]["step"])


def _wait_loaded(base: str, samples: int) -> float:
    """Seconds until both runs' last sample and last training log are served."""
    from tb_plugin_ttsmon import metadata

    last_sample = metadata.sample_step(_tb.T0_S + samples - 1)
    last_train = (samples - 1) * _tb.STEPS_PER_SAMPLE + 1
    wanted = [(_tb.SAMPLED_TAGS[-1], last_sample), (_tb.TRAINING_TAGS[-1], last_train)]
    return _tb.wait_until(
        lambda: all(
            _tb.last_step(base, OURS_RUN, tag) == step and _last_step_theirs(base, tag) == step
            for tag, step in wanted
        ),
        "both runs",
    )


def _measure(base: str, points: int, rounds: int) -> list[dict[str, Any]]:
    """Per section: tags, points per series, p50 latency and bytes of each contender."""
    rows = []
    ours_url = base + "data/plugin/ttsmon/series_batch"
    their_url = base + "data/plugin/timeseries/timeSeries"
    # A cold request must miss our answer cache (keyed by the request), so
    # each asks for one point more than the last: the same work, give or
    # take a bucket.
    jitter = itertools.count(1)
    for section, tags in _tb.sections(_tb.ALL_TAGS).items():
        ours_form, their_form = _ours_form(tags, points), _their_form(tags)
        ours, theirs = _tb.fetch(ours_url, ours_form), _tb.fetch(their_url, their_form)
        if ours.status != 200 or theirs.status != 200:
            raise RuntimeError(
                f"{section}: HTTP {ours.status} from series_batch ({ours.body[:200]!r}), "
                f"{theirs.status} from timeSeries ({theirs.body[:200]!r})"
            )
        our_points, their_points = _our_points(ours.body), _their_points(theirs.body)
        if sorted(our_points) != sorted(their_points):
            raise RuntimeError(f"{section}: the two sides returned different tags")

        def cold(tags: list[str] = tags) -> _tb.Response:
            return _tb.fetch(ours_url, _ours_form(tags, points + next(jitter)))

        times = _tb.interleaved(
            [
                ("cold", cold),
                ("cached", functools.partial(_tb.fetch, ours_url, ours_form)),
                ("theirs", functools.partial(_tb.fetch, their_url, their_form)),
            ],
            rounds,
        )
        rows.append(
            {
                "section": section,
                "tags": len(tags),
                "points": (max(our_points.values()), max(their_points.values())),
                "p50_s": (
                    _tb.p50(times["cold"]),
                    _tb.p50(times["cached"]),
                    _tb.p50(times["theirs"]),
                ),
                "wire_bytes": (ours.wire_bytes, theirs.wire_bytes),
                "json_bytes": (len(ours.body), len(theirs.body)),
            }
        )
    return rows


def _print_rows(label: str, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        (po, pt), (cold, cached, theirs) = r["points"], r["p50_s"]
        (wo, wt), (jo, jt) = r["wire_bytes"], r["json_bytes"]
        print(
            f"{label:26s} {r['section']:>8s} {r['tags']:>4d} {f'{po:,}/{pt:,}':>12s} "
            f"{cold * 1e3:>8.1f} {cached * 1e3:>8.1f} {theirs * 1e3:>8.1f} "
            f"{cold / theirs:>6.2f} {cached / theirs:>6.2f}  "
            f"{format_bytes(wo):>9s} {format_bytes(wt):>9s} {wo / wt:>5.2f}  "
            f"{format_bytes(jo):>9s} {format_bytes(jt):>9s} {jo / jt:>5.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--quick", action="store_true", help="the realistic logdir with defaults only (~1.5 min)"
    )
    parser.add_argument(
        "--big", action="store_true", help="also the bigger logdir (20 000 samples, ~5 min more)"
    )
    args = parser.parse_args(argv)
    plan: list[tuple[int, tuple[tuple[str, tuple[str, ...], int], ...]]]
    plan = [(3_600, CONFIGS[:1] if args.quick else CONFIGS)]
    if args.big:
        plan.append((20_000, CONFIGS))
    # The Python loader's reads take seconds: fewer rounds of them.
    rounds = {True: 3 if args.quick else 7, False: 3}

    print(
        f"plugin_read: ttsmon `series_batch` (one POST per tab section, points={_tb.tab_points()} "
        f"as the tab asks on a 1 400 px page) vs TensorBoard's `timeSeries` (one POST per "
        f"section, same tags); {len(_tb.ALL_TAGS)} series per run; median of "
        f"{rounds[True]} (Rust loader) or {rounds[False]} (Python loader) alternating rounds "
        f"per row; {os.cpu_count()} CPUs, load average "
        f"{_tb.load_average():.1f}"
    )
    header = (
        f"{'run, loader, flags':26s} {'section':>8s} {'tags':>4s} {'pts ours/tb':>12s} "
        f"{'cold ms':>8s} {'hit ms':>8s} {'tb ms':>8s} {'cold/tb':>6s} {'hit/tb':>6s}  "
        f"{'ours wire':>9s} {'tb wire':>9s} {'ratio':>5s}  {'ours JSON':>9s} {'tb JSON':>9s} "
        f"{'ratio':>5s}"
    )
    for samples, configs in plan:
        with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as logdir:
            t0 = time.perf_counter()
            _tb.write_recorded_run(os.path.join(logdir, OURS_RUN), samples)
            _tb.write_builtin_run(os.path.join(logdir, THEIR_RUN), samples)
            print()
            print(f"{samples:,} samples per series (written in {time.perf_counter() - t0:.0f} s)")
            print(header)
            for load_fast in (True, False):
                loader = "rust" if load_fast else "python"
                for label, extra, points in configs:
                    with _tb.tensorboard_server(
                        logdir, load_fast=load_fast, extra_args=extra
                    ) as base:
                        loaded_s = _wait_loaded(base, samples)
                        rows = _measure(base, points, rounds[load_fast])
                    _print_rows(f"{samples // 1000}k, {loader}, {label}", rows)
                    print(f"{'':26s} (both runs served {loaded_s:.0f} s after start)")
    print()
    print(
        "pts: points per series returned (ours downsampled to `points` from what the loader "
        "keeps); cold: our answer cache missed (a new request or new data); hit: the same "
        "request again (a second viewer; TensorBoard has no such cache); wire: gzip bytes "
        "sent; ratios: ours / TensorBoard's."
    )
    print(
        "With defaults the loader keeps up to 5 000 points per ttsmon series but 1 000 per "
        "built-in one, and ours reads all it keeps before downsampling: where the read "
        "costs per point (the Python loader), compare the equal-points rows."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
