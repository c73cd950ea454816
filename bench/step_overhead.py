"""What `MonitorCallback` adds to a Keras training step.

Run it from the repository root::

    python bench/step_overhead.py [--quick]

Method: a small text-to-mel-like model (token embedding, three Conv1D layers,
a Dense projection to 80 mel bins; 64 tokens per item, batch 8) is trained on
random data with ``model.fit(..., epochs=1, verbose=0)`` on the CPU. Four
variants, each on its own copy of the model (same initial weights):

* ``no callback``: the baseline. Keras 3 then dispatches its own batch-end
  work (History) to a thread pool.
* ``no-op callback``: a callback whose ``on_train_batch_end`` does nothing.
  Any callback that overrides it turns Keras's async dispatch off, so this
  shows what that synchronization alone costs.
* ``MonitorCallback``: ``MonitorCallback(d, interval=1.0,
  update_freq="batch")`` with the default writer (``auto``: tf.summary here,
  as TensorFlow is imported): every step logged, the machine sampled at 1 Hz,
  gradient norms on.
* ``MonitorCallback, no grad norms``: the same with ``gradient_norms=False``,
  so that the cost of the gradient-norm hook shows on its own.

Each model is first fitted with its callback, untimed, so that the train
function is traced (with the gradient-norm hook, where it is on) before any
timing. A round then fits every variant once for an epoch of many steps, in a
rotating order; the figure per variant is the median over rounds of the fit's
time divided by its steps, so that machine noise hits every variant alike.
Two times are taken: wall time, and the process's CPU time (every thread, so
the sampler thread and the writer are in it). On a small shared machine the
wall time of a step swings by up to 2x with other processes' load (the
framework's threads wait for a core), while its CPU time stays within a few
percent: the CPU figure is the steadier one, the wall figure the one a user
waits for. Both include what the callback does once per fit (open the event
file, start and stop the sampler, write run and model facts, close the file);
a 2-step fit of each variant per round shows that fixed cost apart. At the
end the event files are read back, to check that the callback really logged
every step (and the gradient norms where they are on).

Goal: MonitorCallback / no callback <= 1.03 (printed with PASS/MISS for wall
and CPU; informational, the exit status is 0 either way). The step takes a
few ms on purpose: on a step of 0.2 ms the ratio would measure Python
overhead, not a training job. The time per step and the difference in ms are
printed, so a reader can work out the ratio for a step of another length.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

GOAL_RATIO = 1.03
TOKENS = 64
VOCABULARY = 100
CHANNELS = 128
MEL_BINS = 80
BATCH = 8
# A fit this short is mostly the per-fit cost of a callback (facts, file, thread).
SHORT_STEPS = 2


@dataclass(frozen=True)
class Plan:
    """How long the run is."""

    rounds: int
    steps: int


# Many short rounds rather than a few long ones: a burst of load from another
# process then hits every variant alike. The full run takes ~80 s on a 2-core
# machine, the quick one ~15 s.
FULL = Plan(rounds=10, steps=150)
QUICK = Plan(rounds=4, steps=40)


@dataclass
class Variant:
    """One way of running `fit`, on its own copy of the model."""

    name: str
    model: Any
    callbacks: Callable[[], list[Any]]
    log_dir: str | None = None
    step_s: list[float] = field(default_factory=list)
    cpu_step_s: list[float] = field(default_factory=list)
    short_fit_s: list[float] = field(default_factory=list)


def _build_model(keras: Any) -> Any:
    tokens = keras.Input((TOKENS,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, CHANNELS, name="embedding")(tokens)
    for i in range(3):
        x = keras.layers.Conv1D(CHANNELS, 5, padding="same", activation="relu", name=f"conv_{i}")(x)
    mel = keras.layers.Dense(MEL_BINS, name="mel")(x)
    return keras.Model(tokens, mel, name="tiny_text_to_mel")


def _fit(variant: Variant, x: Any, y: Any) -> tuple[float, float]:
    """(wall s, process CPU s) of one epoch of `fit` over `x`, `y`."""
    t0, c0 = time.perf_counter(), time.process_time()
    variant.model.fit(
        x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=variant.callbacks()
    )
    return time.perf_counter() - t0, time.process_time() - c0


def _logged(log_dir: str) -> dict[str, int]:
    """Values per tag group in the event files of `log_dir`."""
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    counts = {"train/loss": 0, "train/gradient_norm": 0, "gradients/*/norm": 0, "samples": 0}
    for name in sorted(os.listdir(log_dir)):
        if ".tfevents." not in name:
            continue
        for event in LegacyEventFileLoader(os.path.join(log_dir, name)).Load():
            for value in event.summary.value:
                tag = value.tag
                if tag in ("train/loss", "train/gradient_norm"):
                    counts[tag] += 1
                elif tag.startswith("gradients/") and tag.endswith("/norm"):
                    counts["gradients/*/norm"] += 1
                elif tag == "sampler/duration_ms":
                    counts["samples"] += 1
    return counts


class _OncePerMessage(logging.Filter):
    """Lets each distinct message through once: every fit opens a new Monitor,
    which warns afresh about what it can not record (no NVML here)."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


def _verdict(ratio: float) -> str:
    return "PASS" if ratio <= GOAL_RATIO else "MISS"


def main(argv: list[str] | None = None) -> int:
    global BATCH
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a ~15 s smoke run")
    parser.add_argument(
        "--batch",
        type=int,
        default=BATCH,
        help=f"items per step (default {BATCH}: a step of a few ms; 64 gives a step of "
        "tens of ms, closer to a real TTS training step)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    BATCH = args.batch

    import keras
    import numpy as np

    from tb_plugin_ttsmon.keras import MonitorCallback
    from tb_plugin_ttsmon.recorder.faults import logger as ttsmon_logger
    from tb_plugin_ttsmon.recorder.writers import resolve_writer_name

    ttsmon_logger.addFilter(_OncePerMessage())

    class NoOpCallback(keras.callbacks.Callback):
        """Overrides on_train_batch_end, which makes Keras dispatch it synchronously."""

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            pass

    rng = np.random.default_rng(0)
    x = rng.integers(0, VOCABULARY, size=(plan.steps * BATCH, TOKENS), dtype=np.int32)
    y = rng.standard_normal((plan.steps * BATCH, TOKENS, MEL_BINS), dtype=np.float32)
    x_short, y_short = x[: SHORT_STEPS * BATCH], y[: SHORT_STEPS * BATCH]

    keras.utils.set_random_seed(0)
    first = _build_model(keras)
    weights = first.get_weights()

    def model() -> Any:
        m = _build_model(keras)
        m.set_weights(weights)
        m.compile(optimizer="adam", loss="mse")
        return m

    with tempfile.TemporaryDirectory(prefix="ttsmon-bench-") as root:
        noop = NoOpCallback()
        mon_dir = os.path.join(root, "monitor")
        mon_nograd_dir = os.path.join(root, "monitor-nograd")
        # One callback per variant for the whole run: the train function is
        # traced once, with the gradient-norm hook of that callback.
        mon = MonitorCallback(mon_dir, interval=1.0, update_freq="batch")
        mon_nograd = MonitorCallback(
            mon_nograd_dir, interval=1.0, update_freq="batch", gradient_norms=False
        )
        variants = [
            Variant("no callback", model(), lambda: []),
            Variant("no-op callback", model(), lambda: [noop]),
            Variant("MonitorCallback", model(), lambda: [mon], mon_dir),
            Variant(
                "MonitorCallback, no grad norms", model(), lambda: [mon_nograd], mon_nograd_dir
            ),
        ]

        print(
            f"step_overhead: time per training step of model.fit(verbose=0) (goal: "
            f"MonitorCallback / no callback <= {GOAL_RATIO:g}), "
            f"{first.count_params():,}-parameter Conv1D text-to-mel model, batch {BATCH}, "
            f"{plan.steps} steps per fit, median of {plan.rounds} interleaved rounds; "
            f"MonitorCallback(interval=1.0, update_freq='batch', writer='auto' -> "
            f"{resolve_writer_name('auto')!r})"
        )
        for v in variants:  # trace, untimed
            _fit(v, x_short, y_short)
            _fit(v, x_short, y_short)

        for r in range(plan.rounds):
            k = r % len(variants)
            for v in variants[k:] + variants[:k]:
                wall_s, cpu_s = _fit(v, x, y)
                v.step_s.append(wall_s / plan.steps)
                v.cpu_step_s.append(cpu_s / plan.steps)
                v.short_fit_s.append(_fit(v, x_short, y_short)[0])

        logged = {v.name: _logged(v.log_dir) for v in variants if v.log_dir is not None}

    base = variants[0]
    wall = {v.name: statistics.median(v.step_s) for v in variants}
    cpu = {v.name: statistics.median(v.cpu_step_s) for v in variants}
    base_short = statistics.median(base.short_fit_s)
    print()
    print(
        f"{'variant':32} {'wall':>7} {'/ none':>6} {'per-round / none':>22} {'CPU':>7} "
        f"{'/ none':>6} {'extra':>6}"
    )
    print(
        f"{'':32} {'ms/step':>7} {'':>6} {'median (min..max)':>22} {'ms/step':>7} {'':>6} "
        f"{'ms/fit':>6}"
    )
    for v in variants:
        paired = [s / b for s, b in zip(v.step_s, base.step_s)]
        extra_ms = (statistics.median(v.short_fit_s) - base_short) * 1e3
        print(
            f"{v.name:32} {wall[v.name] * 1e3:7.3f} {wall[v.name] / wall[base.name]:6.3f} "
            f"{statistics.median(paired):6.3f} ({min(paired):5.3f}..{max(paired):5.3f}) "
            f"{cpu[v.name] * 1e3:7.3f} {cpu[v.name] / cpu[base.name]:6.3f} {extra_ms:6.1f}"
        )
    print(
        "(wall and CPU: medians over rounds of a fit's wall time / process CPU time per step; "
        f"extra ms/fit: a {SHORT_STEPS}-step fit's wall time less the baseline's, what the "
        "callback costs once per fit call, included in ms/step)"
    )
    print()
    print(f"{'ratio (and difference, ms/step)':44} {'wall':>6} {'CPU':>6} {'+wall':>6} {'+CPU':>6}")
    ratios = [
        ("MonitorCallback / no callback", "MonitorCallback", "no callback", True),
        (
            "MonitorCallback, no grad norms / no callback",
            "MonitorCallback, no grad norms",
            "no callback",
            True,
        ),
        ("no-op callback / no callback (Keras sync)", "no-op callback", "no callback", False),
        ("MonitorCallback / no-op callback (ttsmon)", "MonitorCallback", "no-op callback", False),
        (
            "MonitorCallback / no grad norms (norm hook)",
            "MonitorCallback",
            "MonitorCallback, no grad norms",
            False,
        ),
    ]
    for label, num, den, judged in ratios:
        rw, rc = wall[num] / wall[den], cpu[num] / cpu[den]
        verdict = f"  wall {_verdict(rw)}, CPU {_verdict(rc)}" if judged else ""
        dw, dc = (wall[num] - wall[den]) * 1e3, (cpu[num] - cpu[den]) * 1e3
        print(f"{label:44} {rw:6.3f} {rc:6.3f} {dw:6.3f} {dc:6.3f}{verdict}")
    print()
    fits = 2 + 2 * plan.rounds
    expected_loss = (2 + plan.rounds) * SHORT_STEPS + plan.rounds * plan.steps
    for name, counts in logged.items():
        print(
            f"logged by {name!r} over {fits} fits: {counts['train/loss']} train/loss values "
            f"(of {expected_loss} steps), {counts['train/gradient_norm']} global and "
            f"{counts['gradients/*/norm']} per-layer gradient norms, {counts['samples']} "
            "system samples"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
