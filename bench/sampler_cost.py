"""What the sampler costs: CPU time per system sample, as a share of one core.

Run it from the repository root::

    python bench/sampler_cost.py [--quick]

Method, part 1 (per sample): two `Monitor`s with the TF-free ``event`` writer,
one with ``per_core_cpu=True`` and one with ``False``, each on its own
temporary run directory. Their sampler threads are started with a one-hour
interval, so that after the first sample they sleep and the process's CPU
time is ours alone. Then `Monitor.sample_now()` (one full sample: host and
process-tree metrics, cgroup, the NVML attempt, TensorFlow memory, and the
write) is called back to back on the main thread, in blocks that alternate
between the two monitors over several rounds; the median block gives each
figure. Three clocks are read around each block:

* ``thread CPU``: `time.thread_time()`, the calling thread only (sampling,
  building and serializing the event);
* ``process CPU``: `time.process_time()`, every thread, so it also holds the
  work of EventFileWriter's own thread (framing, CRC, the file write);
* ``wall``: `time.perf_counter()`.

Back to back, the process-tree walk (the kernel's child lists, one read per
thread of the tree; psutil's walk of every process of the host where the
kernel has none) runs only every ``CHILDREN_REFRESH_S`` seconds of
wall time, so it is timed on its own and its share is added to the per-sample
cost at each rate (at 1 Hz one sample in five pays for it). The share of a
core is CPU seconds per sample times samples per second.

Method, part 2 (the real thread): a Monitor's own sampler thread runs at
10 Hz, then at 1 Hz, while the main thread sleeps. The process's CPU time over
each window (`time.process_time()`: every thread, with nanosecond accounting;
psutil's `cpu_times` counts 10 ms clock ticks, too coarse for a few samples),
less the idle rate measured just before without any monitor, is the sampler's
cost as the operating system sees it. The samples taken are counted in the
event file, read back with TensorBoard's loader. This figure is the one the
goal is about: back to back, caches and clocks are warm and each sample costs
less than one taken after a second of sleep.

The writer here is the TF-free one (TensorBoard's EventFileWriter). The cost of
the tf.summary writer per scalar, side by side with it, is in write_cost.py.

Goal: at most 0.2 % of one core at 1 Hz, judged on the real thread (printed
with PASS/MISS; informational, the exit status is 0 either way).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# The event writer imports TensorFlow where it is installed (see writers.py).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if TYPE_CHECKING:
    from tb_plugin_ttsmon.recorder.monitor import Monitor

GOAL_CORE_PERCENT_AT_1HZ = 0.2


@dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    rounds: int
    calls_per_block: int
    idle_s: float
    background_10hz_s: float
    background_1hz_s: float


# The full run takes ~50 s on a 2-core machine, the quick one ~15 s.
FULL = Plan(
    rounds=10, calls_per_block=100, idle_s=5.0, background_10hz_s=10.0, background_1hz_s=20.0
)
QUICK = Plan(rounds=4, calls_per_block=50, idle_s=1.0, background_10hz_s=3.0, background_1hz_s=5.0)


@dataclass
class Blocks:
    """Per-sample figures of each timed block of one variant."""

    thread_cpu_s: list[float] = field(default_factory=list)
    process_cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)


def _event_files(d: str) -> list[str]:
    return [os.path.join(d, n) for n in sorted(os.listdir(d)) if ".tfevents." in n]


def _dir_bytes(d: str) -> int:
    return sum(os.path.getsize(p) for p in _event_files(d))


def _wait_first_sample(mon: Monitor, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while mon.last_sample_time_s is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the sampler took no sample within a minute")
        time.sleep(0.01)


def _time_block(mon: Monitor, calls: int) -> tuple[float, float, float]:
    """(thread CPU s, process CPU s, wall s) per sample over `calls` samples."""
    sample_now = mon.sample_now
    t0, p0, w0 = time.thread_time(), time.process_time(), time.perf_counter()
    for _ in range(calls):
        sample_now()
    t1, p1, w1 = time.thread_time(), time.process_time(), time.perf_counter()
    return (t1 - t0) / calls, (p1 - p0) / calls, (w1 - w0) / calls


def _tree_walk_cpu_s(repeats: int = 20) -> float:
    """CPU seconds of one walk of this process's tree, as ProcessTreeSource does it."""
    from tb_plugin_ttsmon.recorder.faults import FaultLog
    from tb_plugin_ttsmon.recorder.host import ProcessTreeSource

    source = ProcessTreeSource(FaultLog())
    source.sample(time.monotonic(), {})  # sets up the root process
    t0 = time.thread_time()
    for _ in range(repeats):
        source._children()
    return (time.thread_time() - t0) / repeats


def _idle_cpu_rate(duration_s: float) -> float:
    """CPU seconds per second this process spends while the main thread sleeps."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    time.sleep(duration_s)
    return (time.process_time() - cpu0) / (time.perf_counter() - wall0)


@dataclass(frozen=True)
class Background:
    """What the real sampler thread cost over one window."""

    interval_s: float
    wall_s: float
    cpu_s: float
    samples: int
    median_duration_ms: float

    def core_percent(self, idle_rate: float) -> float:
        """The share of one core, less what the process spends idle."""
        return max(self.cpu_s / self.wall_s - idle_rate, 0.0) * 100

    @property
    def cpu_ms_per_sample(self) -> float:
        """CPU milliseconds per sample (idle rate not subtracted)."""
        return self.cpu_s / self.samples * 1e3 if self.samples else float("nan")


def _run_background(d: str, interval_s: float, duration_s: float) -> Background:
    """Runs a Monitor's sampler thread for `duration_s` while this thread sleeps."""
    from tb_plugin_ttsmon.recorder.monitor import Monitor

    mon = Monitor(d, interval=interval_s, writer="event", per_core_cpu=True)
    _wait_first_sample(mon)
    # Start between two ticks, past the first sample (facts, first rates).
    time.sleep(interval_s * 1.5)
    start_s, cpu0, wall0 = time.time(), time.process_time(), time.perf_counter()
    time.sleep(duration_s)
    cpu_s, wall_s, end_s = time.process_time() - cpu0, time.perf_counter() - wall0, time.time()
    mon.close()
    samples, durations_ms = _count_samples(d, start_s, end_s)
    median_ms = statistics.median(durations_ms) if durations_ms else float("nan")
    return Background(interval_s, wall_s, cpu_s, samples, median_ms)


def _count_samples(d: str, start_s: float, end_s: float) -> tuple[int, list[float]]:
    """Samples in the event files of `d` stamped within [start_s, end_s], and their durations."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    count = 0
    durations_ms: list[float] = []
    for path in _event_files(d):
        for event in LegacyEventFileLoader(path).Load():
            if not start_s <= event.wall_time <= end_s:
                continue
            for value in event.summary.value:
                if value.tag == "sampler/duration_ms":
                    count += 1
                    durations_ms.append(value.tensor.float_val[0])
    return count, durations_ms


def _verdict(percent: float) -> str:
    ok = percent <= GOAL_CORE_PERCENT_AT_1HZ
    return f"{'PASS' if ok else 'MISS'} (goal <= {GOAL_CORE_PERCENT_AT_1HZ:g} % of a core at 1 Hz)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL

    import psutil

    from tb_plugin_ttsmon.recorder.host import CHILDREN_REFRESH_S
    from tb_plugin_ttsmon.recorder.monitor import Monitor

    print(
        "sampler_cost: CPU time of one system sample (Monitor.sample_now, TF-free event "
        f"writer), {plan.calls_per_block} calls per block, median of {plan.rounds} "
        "interleaved rounds; then the real sampler thread at 10 Hz and at 1 Hz"
    )
    print(
        f"host: {psutil.cpu_count()} logical CPUs, {len(psutil.pids())} processes; "
        "NVML is attempted (gpus=True)"
    )

    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as root:
        variants = {"per_core_cpu=True": True, "per_core_cpu=False": False}
        monitors = {}
        for name, per_core in variants.items():
            d = os.path.join(root, name.replace("=", "_"))
            # A one-hour interval: the sampler thread takes its first sample
            # and then sleeps, so the process's CPU time is the calls' alone.
            monitors[name] = Monitor(
                d, interval=3600.0, writer="event", per_core_cpu=per_core, start=True
            )
        for mon in monitors.values():
            _wait_first_sample(mon)
        values_per_sample = {}
        for name, mon in monitors.items():
            for _ in range(20):  # warm-up: the first rates, psutil's caches
                values_per_sample[name] = len(mon.sample_now())
            mon.flush()
        bytes_before = {name: _dir_bytes(mon.log_dir) for name, mon in monitors.items()}

        blocks = {name: Blocks() for name in variants}
        names = list(variants)
        for r in range(plan.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                thread_s, process_s, wall_s = _time_block(monitors[name], plan.calls_per_block)
                blocks[name].thread_cpu_s.append(thread_s)
                blocks[name].process_cpu_s.append(process_s)
                blocks[name].wall_s.append(wall_s)
        bytes_per_sample = {}
        for name, mon in monitors.items():
            mon.flush()
            added = _dir_bytes(mon.log_dir) - bytes_before[name]
            bytes_per_sample[name] = added / (plan.rounds * plan.calls_per_block)
        for mon in monitors.values():
            mon.close()

        walk_s = _tree_walk_cpu_s()

        # Part 2: the real thread, at 10 Hz and at 1 Hz.
        idle_rate = _idle_cpu_rate(plan.idle_s)
        background = [
            _run_background(os.path.join(root, f"background-{interval_s:g}s"), interval_s, run_s)
            for interval_s, run_s in ((0.1, plan.background_10hz_s), (1.0, plan.background_1hz_s))
        ]

    print()
    print(
        f"{'variant':20} {'values':>6} {'thread CPU':>10} {'process CPU':>11} {'wall':>7} "
        f"{'bytes':>6} {'% core':>7} {'% core':>7}"
    )
    print(
        f"{'':20} {'/sample':>6} {'ms/sample':>10} {'ms/sample':>11} {'ms':>7} "
        f"{'/sample':>6} {'at 1 Hz':>7} {'at 10 Hz':>7}"
    )
    for name in variants:
        b = blocks[name]
        thread_ms = statistics.median(b.thread_cpu_s) * 1e3
        process_ms = statistics.median(b.process_cpu_s) * 1e3
        wall_ms = statistics.median(b.wall_s) * 1e3
        # At rate f, one sample in (f * CHILDREN_REFRESH_S) walks the tree.
        per_1hz_s = process_ms / 1e3 + walk_s / (1.0 * CHILDREN_REFRESH_S)
        per_10hz_s = process_ms / 1e3 + walk_s / (10.0 * CHILDREN_REFRESH_S)
        print(
            f"{name:20} {values_per_sample[name]:6d} {thread_ms:10.3f} {process_ms:11.3f} "
            f"{wall_ms:7.3f} {bytes_per_sample[name]:6.0f} {per_1hz_s * 1.0 * 100:7.3f} "
            f"{per_10hz_s * 10.0 * 100:7.3f}"
        )
    print(
        f"(the shares use process CPU plus the process-tree walk, {walk_s * 1e3:.3f} ms CPU, "
        f"once every {CHILDREN_REFRESH_S:g} s)"
    )
    print("(back to back, caches and clocks are warm: the goal is judged on the real thread)")

    print()
    print(
        f"real sampler thread (per_core_cpu=True), main thread asleep; process CPU less the "
        f"idle rate ({idle_rate * 100:.4f} % of a core):"
    )
    print(
        f"{'rate':>6} {'run s':>6} {'samples':>7} {'CPU ms':>8} {'% core':>7} "
        f"{'sampler/duration_ms':>20}"
    )
    print(f"{'':>6} {'':>6} {'in file':>7} {'/sample':>8} {'':>7} {'median':>20}")
    for b in background:
        print(
            f"{1 / b.interval_s:4g}Hz {b.wall_s:6.1f} {b.samples:7d} {b.cpu_ms_per_sample:8.3f} "
            f"{b.core_percent(idle_rate):7.3f} {b.median_duration_ms:20.3f}"
        )
    at_1hz = background[-1].core_percent(idle_rate)
    print()
    print(f"real thread at 1 Hz: {at_1hz:.3f} % of a core -> {_verdict(at_1hz)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
