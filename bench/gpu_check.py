"""Checks on a GPU machine that ttsmon records what the GPU does.

Run it from the repository root on a machine with an NVIDIA GPU::

    python bench/gpu_check.py [--logdir DIR]

It needs PyTorch (with CUDA), nvidia-ml-py, psutil and tensorboard; not
TensorFlow. It records with `tb_plugin_ttsmon.Monitor` (TF-free event writer,
0.5 s interval) for about 30 s: idle, then matrix products on ``cuda:0``, then
idle again. Then it reads the event files back with TensorBoard's own loader,
prints every ``gpu/*`` series (points, min, mean, max, and the mean before,
during and after the load) and the run facts.

Exit status: 0 when the check passed, 1 when no ``gpu/*`` series was recorded
or when ``cuda:0``'s utilization did not rise by at least 20 points under
load. Without PyTorch or CUDA the load phase is skipped (with a message) and
only the presence of ``gpu/*`` series is checked. Only figures are printed;
nothing here judges timings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

IDLE_S = 5.0
LOAD_S = 20.0
INTERVAL_S = 0.5
# NVML's utilization is an average over its own sampling period (up to 1 s),
# so samples this close after a phase starts still show the previous phase.
SETTLE_S = 1.5
MIN_RISE_PERCENT = 20.0
MATRIX_SIZE = 8192
# Matrix products queued between two synchronizations: enough to keep the GPU
# busy, few enough that the load phase ends on time.
PRODUCTS_PER_SYNC = 8

GIB = float(1024**3)


class _Load:
    """Matrix products on cuda:0, prepared before the monitor starts."""

    def __init__(self) -> None:
        import torch

        self._torch = torch
        self.device_name = torch.cuda.get_device_name(0)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        self._a = torch.randn(MATRIX_SIZE, MATRIX_SIZE, device="cuda:0", dtype=dtype)
        self._b = torch.randn(MATRIX_SIZE, MATRIX_SIZE, device="cuda:0", dtype=dtype)
        self._a @ self._b  # the first product loads the kernels
        torch.cuda.synchronize(0)
        # cuda:0's UUID, to find its NVML index (CUDA_VISIBLE_DEVICES and
        # CUDA_DEVICE_ORDER renumber devices); older PyTorch lacks it.
        uuid = getattr(torch.cuda.get_device_properties(0), "uuid", None)
        self.uuid = None if uuid is None else str(uuid).lower()

    def run(self, seconds: float) -> float:
        """Runs products for `seconds`; returns the rate reached, in TFLOP/s."""
        torch = self._torch
        products = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(PRODUCTS_PER_SYNC):
                self._a @ self._b
            torch.cuda.synchronize(0)
            products += PRODUCTS_PER_SYNC
        elapsed = time.perf_counter() - start
        return products * 2.0 * MATRIX_SIZE**3 / elapsed / 1e12


def _prepare_load() -> tuple[_Load | None, str]:
    """The load, or None and why it cannot run here."""
    try:
        import torch
    except ImportError as err:
        return None, f"PyTorch is not installed ({err})"
    if not torch.cuda.is_available():
        return None, f"PyTorch {torch.__version__} sees no CUDA device"
    try:
        return _Load(), ""
    except Exception as err:  # any CUDA failure only means: no load phase
        return None, f"the CUDA load could not start ({type(err).__name__}: {err})"


def _record(logdir: str, load: _Load | None) -> dict[str, tuple[float, float]]:
    """Records idle / load / idle; returns each phase's wall-time span."""
    from tb_plugin_ttsmon import Monitor

    phases: dict[str, tuple[float, float]] = {}
    with Monitor(logdir, interval=INTERVAL_S, writer="event"):
        start = time.time()
        print(f"recording: idle {IDLE_S:.0f} s", flush=True)
        time.sleep(IDLE_S)
        phases["before"] = (start, time.time())
        if load is not None:
            print(f"recording: load on cuda:0 for {LOAD_S:.0f} s", flush=True)
            tflops = load.run(LOAD_S)
            phases["during"] = (phases["before"][1], time.time())
            print(f"           {tflops:.1f} TFLOP/s on {load.device_name}")
            print(f"recording: idle {IDLE_S:.0f} s", flush=True)
            time.sleep(IDLE_S)
            phases["after"] = (phases["during"][1], time.time())
    return phases


def _read_back(logdir: str) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """The ttsmon series (tag -> ScalarDatum list), their units and the run facts."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer

    from tb_plugin_ttsmon import metadata

    multiplexer = plugin_event_multiplexer.EventMultiplexer(
        tensor_size_guidance={metadata.PLUGIN_NAME: 0}
    )
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    ctx = context.RequestContext()

    listed = provider.list_scalars(ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME)
    read = provider.read_scalars(
        ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=100000
    )
    series: dict[str, Any] = {}
    units: dict[str, str] = {}
    for run, tags in read.items():
        for tag, points in tags.items():
            series[tag] = points
            content = listed[run][tag].plugin_content
            units[tag] = metadata.parse_plugin_metadata(content).unit

    facts: dict[str, Any] = {}
    documents = provider.read_tensors(
        ctx, experiment_id="", plugin_name=metadata.PLUGIN_NAME, downsample=1000
    )
    for tags in documents.values():
        for datum in tags.get(metadata.RUN_FACTS_TAG, []):
            facts = metadata.decode_document(datum.numpy.item())
    return series, units, facts


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _phase_mean(points: Sequence[Any], span: tuple[float, float] | None, settle_s: float) -> float:
    if span is None:
        return math.nan
    return _mean([p.value for p in points if span[0] + settle_s <= p.wall_time <= span[1]])


def _fmt(value: float, unit: str) -> str:
    if math.isnan(value):
        return "-"
    if unit == "B":
        return f"{value / GIB:.2f}"
    return f"{value:.4g}"


def _print_table(
    series: dict[str, Any], units: dict[str, str], phases: dict[str, tuple[float, float]]
) -> dict[str, dict[str, float]]:
    """Prints the gpu/* series; returns each tag's phase means."""
    if not any(t.startswith("gpu/") for t in series):
        print("(none)")
        return {}
    header = ("tag", "unit", "n", "min", "mean", "max", "before", "during", "after")
    rows = []
    means: dict[str, dict[str, float]] = {}
    for tag in sorted(t for t in series if t.startswith("gpu/")):
        points = series[tag]
        values = [p.value for p in points]
        unit = units.get(tag, "")
        phase_means = {
            # The idle phase before the load has nothing earlier to settle from.
            name: _phase_mean(points, phases.get(name), 0.0 if name == "before" else SETTLE_S)
            for name in ("before", "during", "after")
        }
        means[tag] = phase_means
        rows.append(
            (
                tag,
                "GiB" if unit == "B" else unit,
                str(len(values)),
                _fmt(min(values), unit),
                _fmt(_mean(values), unit),
                _fmt(max(values), unit),
                *(_fmt(phase_means[name], unit) for name in ("before", "during", "after")),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
        print("  ".join(cells))
    return means


def _cuda0_nvml_index(facts: dict[str, Any], load: _Load | None) -> int:
    """NVML's index of cuda:0 (what the gpu/{gpu}/ tags use)."""
    devices = facts.get("nvml", {}).get("devices", [])
    if load is not None and load.uuid:
        for device in devices:
            if load.uuid in str(device.get("uuid", "")).lower():
                return int(device["index"])
    # The facts list devices in CUDA_VISIBLE_DEVICES order, cuda:0 first.
    return int(devices[0]["index"]) if devices else 0


def _nvml_pass_costs(passes: int = 200) -> None:
    """CPU per NVML pass of a node's sampler against a rank that reads only its own GPU memory.

    Issue 11's election saves, per rank that is not its node's sampler, the
    device-wide pass (every field of every GPU) minus the own-processes pass;
    these are the real NVML figures for bench/node_sampling.py's fake ones.
    Informational: printed, never judged.
    """
    from tb_plugin_ttsmon.recorder.faults import FaultLog
    from tb_plugin_ttsmon.recorder.nvml import NvmlSource

    me = frozenset({os.getpid()})
    for label, wide in (("node sampler (every field of every GPU)", True), ("other rank", False)):
        source = NvmlSource(FaultLog(), lambda: me, device_wide=lambda wide=wide: wide)
        out: dict[str, float] = {}
        source.sample(time.monotonic(), out)  # starts NVML
        t0 = time.thread_time()
        for _ in range(passes):
            out = {}
            source.sample(time.monotonic(), out)
        ms = (time.thread_time() - t0) / passes * 1000.0
        print(f"  {label}: {ms:.3f} ms of CPU per pass, {len(out)} values")
        source.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the check; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logdir", help="keep the run here (default: a temporary directory)")
    args = parser.parse_args(argv)

    load, no_load_reason = _prepare_load()
    if load is None:
        print(f"NOTE: {no_load_reason}; the load phase is skipped.")

    with tempfile.TemporaryDirectory(prefix="ttsmon-gpu-check-") as tmp:
        logdir = args.logdir or tmp
        phases = _record(logdir, load)
        series, units, facts = _read_back(logdir)
        print(f"\nlogdir: {logdir}{'' if args.logdir else ' (deleted at exit)'}")

    print("\nNVML pass costs (issue 11's node election; the load's memory is still held):")
    try:
        _nvml_pass_costs()
    except Exception as err:  # informational only
        print(f"  not measured: {type(err).__name__}: {err}")

    print(f"\n{len(series)} ttsmon series; gpu/* series (bytes in GiB; phase means):\n")
    means = _print_table(series, units, phases)
    print("\nrun facts:")
    print(json.dumps(facts, indent=1, sort_keys=True, default=str))
    print()

    if not means:
        reason = facts.get("nvml", {}).get("reason") or "see the warnings above"
        print(f"FAIL: no gpu/* series was recorded (NVML: {reason}).")
        return 1
    if load is None:
        print(f"OK: {len(means)} gpu/* series recorded; utilization under load not checked.")
        return 0

    index = _cuda0_nvml_index(facts, load)
    tag = f"gpu/{index}/utilization_percent"
    if tag not in means:
        print(f"FAIL: cuda:0 is NVML GPU {index}, but {tag} was not recorded.")
        return 1
    idle = means[tag]["before"]
    during = means[tag]["during"]
    print(f"{tag} (cuda:0): idle mean {idle:.1f} %, mean under load {during:.1f} %")
    if not during >= idle + MIN_RISE_PERCENT:  # also catches NaN
        print(f"FAIL: utilization did not rise by {MIN_RISE_PERCENT:.0f} points under load.")
        return 1
    print("OK: GPU utilization rose under load.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
