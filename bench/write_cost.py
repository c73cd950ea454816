"""What writing costs: ttsmon's writers against TensorBoard's own `EventFileWriter`, batched alike.

Run it from the repository root::

    python bench/write_cost.py [--quick] [--no-profile]

Two workloads, each a run of calls into a new event file in a temporary
directory, timed from the first call to the end of ``close()`` (so that the
cost includes getting the events onto disk, not just into a queue; opening
the writer is not timed):

* a sampler sample: 39 scalars per call (what the sampler writes each
  second on a 2-GPU host, `bench/_tb.py` `SAMPLED_TAGS`), 400 calls;
* a training step: 5 scalars per call (``train/loss`` ...), 2 000 calls.

Contenders:

* ``ttsmon event`` / ``ttsmon tf``: ``create_writer(name, d).write(step,
  {tags: values})``, what the recorder calls: one event per call.
* ``EventFileWriter, batched`` (the baseline of the ratios): TensorBoard's
  TF-free writer fed the same values batched the same way, one event per
  call holding one `Summary` with every value of the call, each a rank-0
  float32 tensor, with the very `SummaryMetadata` our writer attaches
  (`metadata.create_summary_metadata`, built once per tag before timing) on
  each tag's first value. That is the least work TensorBoard's own code does
  to put the same bytes on disk; the bytes per call are printed for both.
* for reference: ``EventFileWriter, 1 scalar/event`` (one event per value,
  as TensorBoard's ``scalar_pb`` users write) and eager ``tf.summary.scalar``
  (one op call per value).

The machine is shared and noisy, so every round runs every contender once,
forwards in even rounds and backwards in odd ones (ABBA...), and each figure
is a median over rounds. The ratio ours / baseline is the median of the
per-round ratios (each from two runs a fraction of a second apart). Both
the caller's wall time and the process CPU time (all threads: the writers
frame and write on their own thread) are shown.

Then a cProfile of our event writer's calling thread over both workloads,
for whoever optimizes it (the writer thread itself is not profiled).

Goals (PASS/MISS, informational; the exit status is 0 either way):
ttsmon / EventFileWriter batched <= 1.1 on the worse of wall and CPU, and
tf.summary.scalar / ttsmon >= 10 (why the recorder never calls
``tf.summary.scalar`` once per value).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _tb

SAMPLE_TAGS: tuple[str, ...] = _tb.SAMPLED_TAGS
STEP_TAGS: tuple[str, ...] = (*_tb.TRAINING_TAGS, "train/accuracy")

GOAL_OURS = 1.1
GOAL_EAGER = 10.0

# (calls per run for a sample, for a step, rounds)
FULL = (400, 2000, 11)
QUICK = (150, 600, 5)

# A contender: `make(d)` opens a writer on directory `d` (not timed);
# `run(writer, tags, rows)` makes one call per row and returns once the writer
# is closed.
Make = Callable[[str], Any]
Run = Callable[[Any, Sequence[str], list[list[float]]], None]


def _ours(name: str) -> tuple[Make, Run]:
    from tb_plugin_ttsmon.recorder.writers import create_writer

    def run(writer: Any, tags: Sequence[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            writer.write(step, dict(zip(tags, row)))
        writer.close()

    return (lambda d: create_writer(name, d)), run


def _event_file_writer_batched() -> tuple[Make, Run]:
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from tb_plugin_ttsmon import metadata

    # The metadata our writer attaches, built before any timing (a writer of
    # TensorBoard's own would keep it per tag too).
    summary_metadata = {tag: metadata.create_summary_metadata(tag) for tag in _all_tags()}
    dt_float = types_pb2.DT_FLOAT
    shape = metadata.scalar_tensor(0.0).tensor_shape

    def run(writer: Any, tags: Sequence[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            summary = summary_pb2.Summary()
            values = summary.value
            for tag, value in zip(tags, row):
                v = values.add(
                    tag=tag,
                    tensor=tensor_pb2.TensorProto(
                        dtype=dt_float, tensor_shape=shape, float_val=[value]
                    ),
                )
                if step == 0:
                    v.metadata.CopyFrom(summary_metadata[tag])
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()

    return (lambda d: EventFileWriter(d, max_queue_size=1024)), run


def _event_file_writer_per_scalar() -> tuple[Make, Run]:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.plugins.scalar import summary_v2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    def run(writer: Any, tags: Sequence[str], rows: list[list[float]]) -> None:
        for step, row in enumerate(rows):
            for tag, value in zip(tags, row):
                summary = summary_v2.scalar_pb(tag, value)
                writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))
        writer.close()

    return (lambda d: EventFileWriter(d, max_queue_size=1024)), run


def _tf_summary_scalar() -> tuple[Make, Run]:
    import tensorflow as tf

    def run(writer: Any, tags: Sequence[str], rows: list[list[float]]) -> None:
        with writer.as_default():
            for step, row in enumerate(rows):
                for tag, value in zip(tags, row):
                    tf.summary.scalar(tag, value, step=step)
        writer.close()

    return tf.summary.create_file_writer, run


def _all_tags() -> tuple[str, ...]:
    return SAMPLE_TAGS + tuple(t for t in STEP_TAGS if t not in SAMPLE_TAGS)


def _dir_bytes(d: str) -> int:
    return sum(entry.stat().st_size for entry in os.scandir(d) if entry.is_file())


def _measure(make: Make, run: Run, tags: Sequence[str], rows: list[list[float]]) -> tuple:
    """(wall s, process CPU s, bytes on disk) of one run in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as d:
        writer = make(d)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        run(writer, tags, rows)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        return wall, cpu, _dir_bytes(d)


def _rounds(
    contenders: list[tuple[str, Make, Run]],
    tags: Sequence[str],
    rows: list[list[float]],
    rounds: int,
) -> dict[str, list[tuple]]:
    """Every contender's measurements, one per round, ABBA order."""
    for _, make, run in contenders:  # untimed: first-call costs (ops, proto classes)
        _measure(make, run, tags, rows[:20])
    out: dict[str, list[tuple]] = {name: [] for name, _, _ in contenders}
    for r in range(rounds):
        order = contenders if r % 2 == 0 else contenders[::-1]
        for name, make, run in order:
            out[name].append(_measure(make, run, tags, rows))
    return out


def _events(d: str) -> list[tuple[int, bytes]]:
    """(step, serialized summary) of every summary event in directory `d`'s one file."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    (name,) = os.listdir(d)
    events = [
        event_pb2.Event.FromString(r) for r in RawEventFileLoader(os.path.join(d, name)).Load()
    ]
    return [(e.step, e.summary.SerializeToString()) for e in events if e.HasField("summary")]


def _same_events(a: tuple[Make, Run], b: tuple[Make, Run], tags: Sequence[str]) -> bool:
    """Whether two contenders put the same summaries at the same steps on disk."""
    rows = [[float(i + j) for j in range(len(tags))] for i in range(3)]
    out = []
    for make, run in (a, b):
        with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as d:
            run(make(d), tags, rows)
            out.append(_events(d))
    return out[0] == out[1]


def _verdict(ratio: float, goal: float, at_most: bool) -> str:
    ok = ratio <= goal if at_most else ratio >= goal
    return f"{'PASS' if ok else 'MISS'} (goal {'<=' if at_most else '>='} {goal:g})"


BASE = "EventFileWriter, batched"
OURS = ("ttsmon event", "ttsmon tf")
EAGER = "tf.summary.scalar (eager)"


def _report(
    title: str, per: str, tags: Sequence[str], calls: int, runs: dict[str, list[tuple]]
) -> None:
    n_values = calls * len(tags)
    print()
    print(f"{title}: {len(tags)} scalars per call, {calls} calls per run, writer closed inside")
    print(
        f"{'contender':34} {'wall us/call':>13} {'CPU us/call':>12} {'wall us/value':>14} "
        f"{'bytes/call':>11}"
    )
    for name, ms in runs.items():
        wall = statistics.median(m[0] for m in ms)
        cpu = statistics.median(m[1] for m in ms)
        print(
            f"{name:34} {wall / calls * 1e6:13.1f} {cpu / calls * 1e6:12.1f} "
            f"{wall / n_values * 1e6:14.2f} {ms[-1][2] / calls:11.1f}"
        )
    print(f"{'ratio (median of per-round ratios)':34} {'wall':>13} {'CPU':>12}  verdict")
    checks = [(f"{o} / {BASE}", o, BASE, True, GOAL_OURS) for o in OURS if o in runs]
    checks += [(f"{EAGER} / {o}", EAGER, o, False, GOAL_EAGER) for o in OURS if EAGER in runs]
    for label, num, den, at_most, goal in checks:
        rw = statistics.median(a[0] / b[0] for a, b in zip(runs[num], runs[den]))
        rc = statistics.median(a[1] / b[1] for a, b in zip(runs[num], runs[den]))
        worst = max(rw, rc) if at_most else min(rw, rc)
        print(f"{label:34} {rw:13.2f} {rc:12.2f}  {_verdict(worst, goal, at_most)} [{per}]")


def _profile(sample_rows: list[list[float]], step_rows: list[list[float]], top: int) -> None:
    """cProfile of our event writer's calling thread: both workloads, 10x the calls."""
    from tb_plugin_ttsmon.recorder.writers import create_writer

    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as d:
        writer = create_writer("event", d)
        writer.write(0, dict(zip(_all_tags(), [0.0] * len(_all_tags()))))  # metadata: untimed
        profiler = cProfile.Profile()
        profiler.enable()
        for step in range(1, 11):
            for i, row in enumerate(sample_rows):
                writer.write(step * 100_000 + i, dict(zip(SAMPLE_TAGS, row)))
            for i, row in enumerate(step_rows):
                writer.write(step * 100_000 + i, dict(zip(STEP_TAGS, row)))
        writer.close()
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    calls = 10 * (len(sample_rows) + len(step_rows))
    print()
    print(
        f"cProfile of `ttsmon event` write() + close(), calling thread only, {calls} calls "
        f"({len(SAMPLE_TAGS)} and {len(STEP_TAGS)} scalars), by own time; cProfile's "
        f"overhead inflates small Python functions:"
    )
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    head = [line for line in lines[:start] if "function calls" in line]
    print("\n".join([*head, *lines[start:]]).rstrip())


def _writer_thread_share(rows: list[list[float]]) -> None:
    """Where our event writer's CPU goes: the calling thread vs its writer thread."""
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    from tb_plugin_ttsmon.recorder.writers import create_writer

    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as d:
        writer = create_writer("event", d)
        cpu0, caller0 = time.process_time(), time.thread_time()
        for step, row in enumerate(rows):
            writer.write(step, dict(zip(SAMPLE_TAGS, row)))
        writer.close()
        cpu_s, caller_s = time.process_time() - cpu0, time.thread_time() - caller0
        event_bytes = _dir_bytes(d) // len(rows)
    record = b"\x00" * event_bytes
    crc_s = min(_timeit(lambda: masked_crc32c(record), 50) for _ in range(3))
    print()
    print(
        f"`ttsmon event`, {len(rows)} samples of {len(SAMPLE_TAGS)} scalars: process CPU "
        f"{cpu_s / len(rows) * 1e6:.0f} us/call, of which the calling thread "
        f"{caller_s / len(rows) * 1e6:.0f} and other threads (the writer thread framing "
        f"and writing) {(cpu_s - caller_s) / len(rows) * 1e6:.0f}"
    )
    print(
        f"TensorBoard's RecordWriter frames each record with a pure-Python CRC32C "
        f"(masked_crc32c): {crc_s * 1e6:.0f} us for one {event_bytes}-byte event"
    )
    try:
        import google_crc32c
    except ImportError:
        return
    c_s = min(_timeit(lambda: google_crc32c.value(record), 2000) for _ in range(3))
    print(f"google_crc32c (C, installed here) does the same in {c_s * 1e6:.2f} us")


def _timeit(fn: Callable[[], Any], number: int) -> float:
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (~20 s)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile")
    args = parser.parse_args(argv)
    sample_calls, step_calls, rounds = QUICK if args.quick else FULL

    import tensorflow as tf  # noqa: F401  (imported before timing: EventFileWriter uses it too)

    rng = random.Random(0)
    sample_rows = [[rng.uniform(0.0, 100.0) for _ in SAMPLE_TAGS] for _ in range(sample_calls)]
    step_rows = [[rng.uniform(0.0, 10.0) for _ in STEP_TAGS] for _ in range(step_calls)]
    contenders: list[tuple[str, Make, Run]] = [
        (OURS[0], *_ours("event")),
        (BASE, *_event_file_writer_batched()),
        (OURS[1], *_ours("tf")),
        ("EventFileWriter, 1 scalar/event", *_event_file_writer_per_scalar()),
        (EAGER, *_tf_summary_scalar()),
    ]
    print(
        f"write_cost: median of {rounds} ABBA rounds; {os.cpu_count()} CPUs, load average "
        f"{_tb.load_average():.1f}"
    )
    ours_event, base = contenders[0], contenders[1]
    same = all(
        _same_events((ours_event[1], ours_event[2]), (base[1], base[2]), tags)
        for tags in (SAMPLE_TAGS, STEP_TAGS)
    )
    print(f"`{OURS[0]}` and `{BASE}` write the same summaries at the same steps: {same}")
    t0 = time.perf_counter()
    sample_runs = _rounds(contenders, SAMPLE_TAGS, sample_rows, rounds)
    _report("a sampler sample", "sample", SAMPLE_TAGS, sample_calls, sample_runs)
    step_runs = _rounds(contenders, STEP_TAGS, step_rows, rounds)
    _report("a training step", "step", STEP_TAGS, step_calls, step_runs)
    print()
    print(
        "bytes/call: file size / calls (version event and first-value metadata included). "
        f"({time.perf_counter() - t0:.0f} s)"
    )
    if not args.no_profile:
        _profile(sample_rows, step_rows, top=14)
        _writer_thread_share(sample_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
