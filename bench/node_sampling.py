"""What 8 ranks on a node cost to sample: one elected node sampler against 8 independent Monitors.

Run it from the repository root::

    python bench/node_sampling.py [--quick] [--ranks 8] [--fake-gpus 8]

Method: ``--ranks`` real processes run at once on this machine, as the ranks
of one node do. Each creates a `Monitor` (the TF-free ``event`` writer, the
sampler thread at ``--interval``), then sleeps, so that its process CPU time
(`time.process_time()`: every thread, nanosecond accounting) over the window
is the recorder's own: the sampler thread and the writer's thread. Each
process reports its CPU seconds and samples taken over the window after a
warm-up; their sum is the node's cost.

Two setups, run in alternating rounds so that the machine's noise hits both:

* ``independent``: 8 Monitors that each sample the host, the process tree
  and every GPU, as 8 processes did before issue 11 (no launcher variables,
  or ``host_sampling="always"``);
* ``job``: the same 8 processes as the ranks of one torchrun job
  (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``TORCHELASTIC_RUN_ID`` set):
  local rank 0 holds the node lock and samples the host and the GPUs; the
  other 7 sample only their process tree and their own GPU memory.

``--fake-gpus N`` gives every process the tests' fake NVML (``tests/fake_nvml.py``:
the real pynvml constants and errors at the lowest layer) with N GPUs, each
rank's process on its own GPU, so the GPU part of the sampling is in the
figure too. A fake NVML call costs microseconds of Python; a real one costs
more (a driver ioctl), so with real GPUs the saving is larger, not smaller.

Goal (issue 11): the job costs at most about 1/4 of the independent Monitors.
Printed as a ratio with PASS/MISS; informational, the exit status is 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    sys.modules["tensorflow"] = None  # a PyTorch job's process
    sys.path.insert(0, os.path.join(sys.argv[5], "tests"))
    interval, warm, window = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    gpus = int(sys.argv[6])
    if gpus:
        import fake_nvml
        fake = fake_nvml.FakeNvml(gpu_count=gpus)
        rank = int(os.environ.get("LOCAL_RANK", sys.argv[7]))
        fake.gpus[rank % gpus].compute_processes = [
            fake_nvml.FakeProcess(pid=os.getpid(), usedGpuMemory=30 * fake_nvml.GIB)
        ]
        sys.modules["pynvml"] = fake
    import tb_plugin_ttsmon as ttsmon
    mon = ttsmon.Monitor(sys.argv[1], interval=interval, writer="event", gpus=bool(gpus))
    time.sleep(warm)
    c0, n0 = time.process_time(), mon.samples_taken
    time.sleep(window)
    c1, n1 = time.process_time(), mon.samples_taken
    node = mon.samples_node
    mon.close()
    print(json.dumps({"cpu_s": c1 - c0, "samples": n1 - n0, "node": node}))
    """
)


def _run_round(setup: str, ranks: int, interval: float, window: float, gpus: int) -> dict:
    job = uuid.uuid4().hex
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for rank in range(ranks):
            env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
            env["TMPDIR"] = tmp  # the node lock lives here
            if setup == "job":
                env.update(
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(ranks),
                    LOCAL_WORLD_SIZE=str(ranks),
                    GROUP_RANK="0",
                    TORCHELASTIC_RUN_ID=job,
                )
                logdir = os.path.join(tmp, "job")
            else:
                logdir = os.path.join(tmp, f"rank{rank}")
            args = [sys.executable, "-c", _CHILD, logdir, str(interval), "3.0", str(window)]
            procs.append(
                subprocess.Popen(
                    [*args, REPO_ROOT, str(gpus), str(rank)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
            )
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=window + 120)
            results.append(json.loads(out.strip().splitlines()[-1]))
    return {
        "cpu_s": sum(r["cpu_s"] for r in results),
        "samples": sum(r["samples"] for r in results),
        "node_samplers": sum(1 for r in results if r["node"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 rounds of 10 s")
    ap.add_argument("--ranks", type=int, default=8)
    ap.add_argument("--interval", type=float, default=0.25, help="sampler interval, s")
    ap.add_argument("--fake-gpus", type=int, default=0)
    args = ap.parse_args()
    rounds, window = (2, 10.0) if args.quick else (4, 20.0)
    per: dict[str, list[dict]] = {"independent": [], "job": []}
    for i in range(rounds):
        for setup in ("independent", "job") if i % 2 == 0 else ("job", "independent"):
            per[setup].append(_run_round(setup, args.ranks, args.interval, window, args.fake_gpus))
    gpus = f", {args.fake_gpus} fake GPUs" if args.fake_gpus else ", no GPU"
    print(
        f"{args.ranks} ranks on one node, sampler every {args.interval} s{gpus}; "
        f"{rounds} rounds of {window:.0f} s (medians)"
    )
    med: dict[str, float] = {}
    for setup, results in per.items():
        cpu_per_sample_ms = statistics.median(
            1000 * r["cpu_s"] / r["samples"] * args.ranks for r in results
        )
        share = statistics.median(100 * r["cpu_s"] / window for r in results)
        med[setup] = statistics.median(r["cpu_s"] for r in results)
        samplers = {r["node_samplers"] for r in results}
        print(
            f"  {setup:<12} {share:6.2f} % of a core for the node at this rate "
            f"({share * args.interval:.3f} % at 1 Hz), "
            f"{cpu_per_sample_ms:.2f} ms of CPU per tick of all ranks, "
            f"node samplers {sorted(samplers)}"
        )
    ratio = med["job"] / med["independent"]
    verdict = "PASS" if ratio <= 0.25 else "MISS"
    print(f"  job / independent = {ratio:.3f}  (goal <= 0.25: {verdict})")


if __name__ == "__main__":
    main()
