"""Shared helpers of the benchmarks: a real `tensorboard`, HTTP timing, realistic logdirs.

* `tensorboard_server`: a real ``tensorboard`` process (either loader) on a
  free port of 127.0.0.1, stopped on exit.
* `fetch`: one timed HTTP request, as a browser sends it (``Accept-Encoding:
  gzip``), returning the latency, the bytes on the wire and the decoded body.
* `interleaved`: runs several contenders in alternating order (ABAB, BABA,
  ...) so that the noise of a shared machine hits each alike.
* `write_recorded_run` / `write_builtin_run`: a run as the recorder writes it
  (~43 series: a sampler sample per second and a training log per step), and
  the same values as TensorBoard's built-in scalars, for a fair read baseline.

Benchmarks print figures and ratios; none of these helpers asserts on time.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
import tbserver as _tbserver  # noqa: E402  (tests/ is on the path only now)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The wall time of the first sample of the written runs (fixed, so that runs
# written twice are the same).
T0_S = 1_790_000_000.0


@contextlib.contextmanager
def tensorboard_server(
    logdir: str,
    *,
    load_fast: bool = True,
    extra_args: Sequence[str] = (),
    timeout_s: float = 120.0,
) -> Iterator[str]:
    """Runs ``tensorboard --logdir logdir`` and yields its base URL (ending in ``/``).

    The tests' helper (tests/tbserver.py), so benchmarks and tests start
    TensorBoard alike.
    """
    with _tbserver.tensorboard_server(
        logdir, load_fast=load_fast, extra_args=tuple(extra_args), timeout_s=timeout_s
    ) as url:
        yield url


@dataclass(frozen=True)
class Response:
    """One timed HTTP exchange."""

    latency_s: float
    wire_bytes: int
    body: bytes
    status: int


def fetch(url: str, form: dict[str, str] | None = None, timeout_s: float = 300.0) -> Response:
    """GET `url` (or POST `form` to it, url-encoded), timed from send to last byte.

    It asks for gzip as browsers do, so `wire_bytes` is what crosses the
    network and the latency includes the server's compression; `body` is the
    decoded body. An HTTP error status is returned, not raised.
    """
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Accept-Encoding": "gzip"})
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as r:
            raw, status, encoding = r.read(), r.status, r.headers.get("Content-Encoding")
    except urllib.error.HTTPError as err:
        raw, status, encoding = err.read(), err.code, err.headers.get("Content-Encoding")
    latency_s = time.perf_counter() - t0
    body = gzip.decompress(raw) if encoding == "gzip" else raw
    return Response(latency_s, len(raw), body, status)


def interleaved(
    contenders: Sequence[tuple[str, Callable[[], Any]]], rounds: int
) -> dict[str, list[float]]:
    """Seconds per call of each contender, over `rounds` rounds in alternating order.

    Round r runs the contenders forwards when r is even and backwards when it
    is odd (ABBA...), so neither always runs first, right after the other.
    A contender may return a `Response`, whose `latency_s` is then its time
    (the client's own decoding is not counted); otherwise the call is timed.
    """
    out: dict[str, list[float]] = {name: [] for name, _ in contenders}
    for r in range(rounds):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for name, fn in order:
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
            out[name].append(result.latency_s if isinstance(result, Response) else elapsed)
    return out


def p50(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def load_average() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# -- realistic runs ------------------------------------------------------------

# What the sampler writes each second on a 2-GPU host without a container
# limit: 39 series (the per-core CPU series are left out: a 32-core host
# would add 32 series of the same shape).
SAMPLED_TAGS: tuple[str, ...] = (
    "system/cpu_percent",
    "system/load_avg_1m",
    "system/memory_used_bytes",
    "system/memory_percent",
    "system/swap_used_bytes",
    "system/disk_read_bytes_per_s",
    "system/disk_write_bytes_per_s",
    "system/net_recv_bytes_per_s",
    "system/net_sent_bytes_per_s",
    "system/logdir_disk_free_bytes",
    "process/cpu_percent",
    "process/rss_bytes",
    "process/thread_count",
    "process/child_count",
    *(
        f"gpu/{g}/{name}"
        for g in range(2)
        for name in (
            "utilization_percent",
            "memory_utilization_percent",
            "memory_used_bytes",
            "memory_total_bytes",
            "memory_used_percent",
            "temperature_c",
            "power_w",
            "power_limit_w",
            "sm_clock_mhz",
            "memory_clock_mhz",
            "throttle_thermal",
        )
    ),
    "sampler/duration_ms",
    "sampler/training_step",
    "gpu/0/throttle_power",
)
# What a training step logs (Monitor.log_training through MonitorCallback).
TRAINING_TAGS: tuple[str, ...] = (
    "train/loss",
    "train/learning_rate",
    "train/gradient_norm",
    "train/steps_per_s",
)
ALL_TAGS: tuple[str, ...] = SAMPLED_TAGS + TRAINING_TAGS
STEPS_PER_SAMPLE = 5  # training steps between two samples (5 steps/s at 1 Hz)


def section_of(tag: str) -> str | None:
    """The tab's section of `tag` (frontend/src/specs.ts `sectionOf`)."""
    scope = tag.split("/", 1)[0]
    if scope in ("system", "process", "container", "gpu", "tf", "sampler"):
        return "system"
    if scope in ("train", "val", "gradients"):
        return "training"
    if scope == "inference":
        return "inference"
    return None


def sections(tags: Sequence[str]) -> dict[str, list[str]]:
    """`tags` grouped by the tab's section, each sorted: one `series` request each."""
    out: dict[str, list[str]] = {}
    for tag in sorted(tags):
        section = section_of(tag)
        if section is not None:
            out.setdefault(section, []).append(tag)
    return out


def tab_points(width_px: int = 1400) -> int:
    """The `points` the tab asks for at a page width (frontend/src/app.ts `pointsFor`)."""
    min_chart_width_px, gap_px = 400, 12
    cols = max(1, (width_px + gap_px) // (min_chart_width_px + gap_px))
    col_w = (width_px - gap_px * (cols - 1)) / cols
    return min(100_000, max(200, round(col_w * 2)))


def recorded_values(samples: int, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """(wall s, sampled values [samples x tags], training steps, training values).

    Plausible values (percentages in 0..100, bytes in the GiB, a decaying
    loss), float32-representable as the recorder stores them.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    wall = T0_S + np.arange(samples, dtype=np.float64)
    sampled = np.empty((samples, len(SAMPLED_TAGS)), dtype=np.float64)
    for j, tag in enumerate(SAMPLED_TAGS):
        if tag.endswith("_percent"):
            col = np.clip(rng.normal(60.0, 15.0, samples), 0.0, 100.0)
        elif tag.endswith("_bytes") or tag.endswith("_bytes_per_s"):
            col = rng.gamma(4.0, 2.0**30, samples)
        elif tag.startswith("gpu/") and tag.endswith(("_total_bytes", "_limit_w")):
            col = np.full(samples, 80.0 * 2**30 if "bytes" in tag else 700.0)
        elif "throttle" in tag:
            col = (rng.random(samples) < 0.02).astype(np.float64)
        elif tag == "sampler/training_step":
            col = np.arange(samples, dtype=np.float64) * STEPS_PER_SAMPLE
        else:
            col = rng.normal(100.0, 20.0, samples)
        sampled[:, j] = col
    steps = np.arange(samples, dtype=np.int64) * STEPS_PER_SAMPLE + 1
    decay = np.exp(-np.arange(samples) / (samples / 4 + 1))
    loss = 0.4 + 3.0 * decay + rng.normal(0, 0.03, samples)
    training = np.column_stack(
        [
            loss,
            np.full(samples, 1e-4),
            rng.lognormal(0.0, 0.3, samples),
            rng.normal(5.0, 0.2, samples),
        ]
    )
    return wall, sampled.astype(np.float32), steps, training.astype(np.float32)


def write_recorded_run(run_dir: str, samples: int, seed: int = 0) -> int:
    """Writes `samples` sampler samples and training logs with the recorder's writer.

    One event per sample (39 series, step = milliseconds since the epoch, as
    the sampler steps them) and one per training log (4 series at the
    training step), through `create_writer("event")`. Returns the values written.
    """
    from tb_plugin_ttsmon import metadata
    from tb_plugin_ttsmon.recorder.writers import create_writer

    wall, sampled, steps, training = recorded_values(samples, seed)
    writer = create_writer("event", run_dir)
    for i in range(samples):
        writer.write(
            metadata.sample_step(float(wall[i])),
            zip(SAMPLED_TAGS, sampled[i].tolist()),
            wall_time_s=float(wall[i]),
        )
        writer.write(
            int(steps[i]),
            zip(TRAINING_TAGS, training[i].tolist()),
            wall_time_s=float(wall[i]) + 0.5,
        )
    writer.close()
    return samples * len(ALL_TAGS)


def write_builtin_run(run_dir: str, samples: int, seed: int = 0) -> None:
    """The same values, steps and wall times as TensorBoard's built-in scalars.

    Written as `tensorboard.plugins.scalar.summary_v2.scalar_pb` builds them
    (a float32 rank-0 tensor, the scalars plugin's metadata on each tag's
    first value), batched one event per sample and per training log as ours.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from tb_plugin_ttsmon import metadata

    wall, sampled, steps, training = recorded_values(samples, seed)
    md = scalar_metadata.create_summary_metadata(display_name="", description="")
    writer = EventFileWriter(run_dir, max_queue_size=1024)

    def add(step: int, wall_s: float, tags: Sequence[str], row: list[float], first: bool) -> None:
        summary = summary_pb2.Summary()
        for tag, value in zip(tags, row):
            v = summary.value.add(tag=tag, tensor=metadata.scalar_tensor(value))
            if first:
                v.metadata.CopyFrom(md)
        writer.add_event(event_pb2.Event(wall_time=wall_s, step=step, summary=summary))

    for i in range(samples):
        w = float(wall[i])
        add(metadata.sample_step(w), w, SAMPLED_TAGS, sampled[i].tolist(), i == 0)
        add(int(steps[i]), w + 0.5, TRAINING_TAGS, training[i].tolist(), i == 0)
    writer.close()


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 180.0) -> float:
    """Polls `check` every 0.5 s until it is true; returns the seconds waited.

    Raises:
      RuntimeError: `timeout_s` passed first (with the last error `check` raised).
    """
    t0 = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - t0 < timeout_s:
        try:
            if check():
                return time.monotonic() - t0
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            last_error = err  # not loaded yet, or an answer of another shape: try again
        time.sleep(0.5)
    raise RuntimeError(
        f"TensorBoard did not load {what} within {timeout_s:.0f} s (last error: {last_error!r})"
    )


def series_url(base: str, run: str, tags: Sequence[str], points: int) -> str:
    """Our `series` route's URL for `tags` of `run`, as the tab builds it."""
    query = urllib.parse.urlencode([("run", run), *(("tag", t) for t in tags), ("points", points)])
    return f"{base}data/plugin/ttsmon/series?{query}"


def last_step(base: str, run: str, tag: str) -> int:
    """The last step our `series` route serves for `tag` (every point, no downsampling)."""
    import json

    body = fetch(series_url(base, run, [tag], 100_000)).body
    return int(json.loads(body)["series"][tag]["rows"][-1][1])
