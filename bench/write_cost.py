"""What one scalar costs to write: ttsmon's writers against TensorFlow's and TensorBoard's.

Run it from the repository root::

    python bench/write_cost.py [--quick]

Method: every variant writes the same samples of 30 scalars (realistic tags
such as ``system/cpu_core/7/utilization_percent``) into a new event file in a
temporary directory, then closes its writer, so that the cost includes getting
the events onto disk and not just into a queue. Creating the writer is not
timed. The variants are:

* ``tf.summary.scalar``: eager TensorFlow, one op call per scalar, under
  ``with tf.summary.create_file_writer(d).as_default():``.
* ``EventFileWriter``: TensorBoard's TF-free writer, one ``add_event`` per
  scalar, each event holding one float32 tensor value (summary metadata on
  the first value of each tag only, which is all TensorBoard reads). This is
  the baseline of the goals below.
* ``EventFileWriter+scalar_pb``: the same, with the event built by
  TensorBoard's own ``scalar_pb`` (metadata in every event), as a TF-free user
  of TensorBoard's API would write it. Shown for reference.
* ``ttsmon event`` / ``ttsmon tf``: ``create_writer(name, d).write(step,
  {30 tags: values})``, one event per sample.

One round runs every variant once, in a rotating order; the figure per variant
is the median over rounds, so that machine noise hits every variant alike.
Both wall time (what the calling thread waits, plus the final close) and
process CPU time (all threads: EventFileWriter serializes on the caller and
writes on its own thread) are shown, per scalar value. Note that TensorBoard's
EventFileWriter reaches files through TensorFlow's ``gfile`` when TensorFlow is
installed, as it is here.

A second, smaller table times calls of 4 scalars (a training step's log, as
`MonitorCallback` writes it every step), where a step pays the cost per call
rather than per scalar: eager ``tf.summary.scalar`` (4 op calls) and one
``write()`` of each of our writers, per call.

Goals (printed with PASS/MISS; informational, the exit status is 0 either way):

* ttsmon tf / EventFileWriter <= 1.3 (and ttsmon event, shown alongside): our
  writers may batch and add metadata handling, but not cost more than 1.3x
  the bare TF-free writer per scalar.
* tf.summary.scalar / ttsmon >= 10: the reason the recorder does not call
  ``tf.summary.scalar`` once per value.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SCALARS_PER_SAMPLE = 30
TAGS = (
    [f"system/cpu_core/{i}/utilization_percent" for i in range(16)]
    + [f"gpu/{i}/utilization_percent" for i in range(4)]
    + [f"gpu/{i}/memory_used_bytes" for i in range(4)]
    + [
        "system/cpu_percent",
        "system/memory_used_bytes",
        "process/rss_bytes",
        "process/cpu_percent",
        "train/loss",
        "train/steps_per_s",
    ]
)
assert len(TAGS) == SCALARS_PER_SAMPLE
STEP_TAGS = ["train/loss", "train/learning_rate", "train/gradient_norm", "train/steps_per_s"]

# ttsmon / EventFileWriter, at most; tf.summary.scalar / ttsmon, at least.
GOAL_OURS = 1.3
GOAL_EAGER = 10.0

# (samples per round, rounds): the full run takes ~30 s on a 2-core machine,
# the quick one ~6 s.
FULL = (400, 9)
QUICK = (100, 3)

# A variant: `make(d)` opens a writer on directory `d` (not timed), `run(writer,
# tags, rows)` writes one sample (one value per tag) per row and returns once
# the writer is closed.
Make = Callable[[str], Any]
# (wall s, process CPU s, bytes on disk)
Measurement = tuple[float, float, int]
Run = Callable[[Any, list[str], list[list[float]]], None]


def _tf_summary_scalar() -> tuple[Make, Run]:
    import tensorflow as tf

    def run(writer: Any, tags: list[str], rows: list[list[float]]) -> None:
        with writer.as_default():
            for step, row in enumerate(rows):
                for tag, value in zip(tags, row):
                    tf.summary.scalar(tag, value, step=step)
        writer.close()

    return tf.summary.create_file_writer, run


def _event_file_writer_lean() -> tuple[Make, Run]:
    from tensorboard.compat.proto import (
        event_pb2,
        summary_pb2,
        tensor_pb2,
        tensor_shape_pb2,
        types_pb2,
    )
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    shape = tensor_shape_pb2.TensorShapeProto()
    summary_metadata = scalar_metadata.create_summary_metadata(display_name=None, description=None)

    def run(writer: Any, tags: list[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            for tag, value in zip(tags, row):
                summary = summary_pb2.Summary()
                v = summary.value.add(
                    tag=tag,
                    tensor=tensor_pb2.TensorProto(
                        dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=[value]
                    ),
                )
                if step == 0:
                    v.metadata.CopyFrom(summary_metadata)
                writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()

    return EventFileWriter, run


def _event_file_writer_scalar_pb() -> tuple[Make, Run]:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.scalar import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    def run(writer: Any, tags: list[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            for tag, value in zip(tags, row):
                summary = summary_v2.scalar_pb(tag, value)
                writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()

    return EventFileWriter, run


def _ours(name: str) -> tuple[Make, Run]:
    from tb_plugin_ttsmon.recorder.writers import create_writer

    def run(writer: Any, tags: list[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            writer.write(step, dict(zip(tags, row)))
        writer.close()

    return (lambda d: create_writer(name, d)), run


def _dir_bytes(d: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(d) if entry.is_file())


def _measure(make: Make, run: Run, tags: list[str], rows: list[list[float]]) -> Measurement:
    """(wall s, process CPU s, bytes on disk) of one run in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as d:
        writer = make(d)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        run(writer, tags, rows)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return wall, cpu, _dir_bytes(d)


def _interleaved(
    variants: list[tuple[str, Make, Run]], tags: list[str], rows: list[list[float]], rounds: int
) -> dict[str, Measurement]:
    """Per variant: median wall s, median CPU s, bytes on disk, over `rounds` rotated rounds."""
    for _, make, run in variants:  # untimed: first-call costs (ops, proto classes)
        _measure(make, run, tags, rows[:20])
    runs: dict[str, list[Measurement]] = {name: [] for name, _, _ in variants}
    for r in range(rounds):
        k = r % len(variants)
        for name, make, run in variants[k:] + variants[:k]:
            runs[name].append(_measure(make, run, tags, rows))
    return {
        name: (
            statistics.median(m[0] for m in ms),
            statistics.median(m[1] for m in ms),
            ms[-1][2],
        )
        for name, ms in runs.items()
    }


def _verdict(ratio: float, goal: float, at_most: bool) -> str:
    ok = ratio <= goal if at_most else ratio >= goal
    return f"{'PASS' if ok else 'MISS'} (goal {'<=' if at_most else '>='} {goal:g})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    args = parser.parse_args(argv)
    samples, rounds = QUICK if args.quick else FULL

    import tensorflow as tf  # noqa: F401  (imported before timing: EventFileWriter uses it too)

    rng = random.Random(0)
    rows = [[rng.uniform(0.0, 100.0) for _ in TAGS] for _ in range(samples)]
    eager = "tf.summary.scalar (eager)"
    base = "EventFileWriter, 1 scalar/event"
    ours = ["ttsmon event writer", "ttsmon tf writer"]
    variants: list[tuple[str, Make, Run]] = [
        (eager, *_tf_summary_scalar()),
        (base, *_event_file_writer_lean()),
        ("EventFileWriter+scalar_pb", *_event_file_writer_scalar_pb()),
        (ours[0], *_ours("event")),
        (ours[1], *_ours("tf")),
    ]

    print(
        f"write_cost: cost per scalar value, {SCALARS_PER_SAMPLE} scalars per sample, "
        f"{samples} samples per run, writer closed inside the timing; "
        f"median of {rounds} interleaved rounds"
    )
    result = _interleaved(variants, TAGS, rows, rounds)
    n_values = samples * SCALARS_PER_SAMPLE
    wall_us = {n: m[0] / n_values * 1e6 for n, m in result.items()}
    cpu_us = {n: m[1] / n_values * 1e6 for n, m in result.items()}
    print()
    print(f"{'variant':34} {'wall us/scalar':>14} {'CPU us/scalar':>14} {'bytes/sample':>13}")
    for name, (_, _, size) in result.items():
        print(f"{name:34} {wall_us[name]:14.2f} {cpu_us[name]:14.2f} {size / samples:13.0f}")
    print()
    print(f"{'ratio':34} {'wall':>8} {'CPU':>8}  verdict (on the worse of wall and CPU)")
    checks = [
        ("ttsmon event / EventFileWriter", ours[0], base, True, GOAL_OURS),
        ("ttsmon tf / EventFileWriter", ours[1], base, True, GOAL_OURS),
        ("tf.summary.scalar / ttsmon event", eager, ours[0], False, GOAL_EAGER),
        ("tf.summary.scalar / ttsmon tf", eager, ours[1], False, GOAL_EAGER),
    ]
    for label, num, den, at_most, goal in checks:
        rw = wall_us[num] / wall_us[den]
        rc = cpu_us[num] / cpu_us[den]
        worst = max(rw, rc) if at_most else min(rw, rc)
        print(f"{label:34} {rw:8.2f} {rc:8.2f}  {_verdict(worst, goal, at_most)}")
    print()
    for name in ours:
        per_sample = result[name][2] / samples
        print(
            f"{name}: {per_sample:.0f} bytes on disk per sample of {SCALARS_PER_SAMPLE} scalars "
            f"({per_sample / SCALARS_PER_SAMPLE:.1f} bytes/scalar, file header and metadata "
            f"included), {per_sample * 86400 / 2**20:.0f} MiB/day at 1 Hz"
        )

    # A training step's log is a few scalars per call, where the cost per
    # call, not per scalar, is what a step pays.
    calls = samples * 2
    step_rows = [[rng.uniform(0.0, 10.0) for _ in STEP_TAGS] for _ in range(calls)]
    step_variants = [v for v in variants if v[0] in (eager, *ours)]
    step_result = _interleaved(step_variants, STEP_TAGS, step_rows, rounds)
    print()
    print(
        f"per call of {len(STEP_TAGS)} scalars (a training step's log: "
        f"{', '.join(STEP_TAGS)}), {calls} calls per run:"
    )
    print(f"{'variant':34} {'wall us/call':>14} {'CPU us/call':>14}")
    for name, (wall_s, cpu_s, _) in step_result.items():
        print(f"{name:34} {wall_s / calls * 1e6:14.1f} {cpu_s / calls * 1e6:14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
