"""One rank of a 2-process DDP job on the gloo backend, started by `torchrun` (test_launchers.py).

Every rank runs the same number of steps (DDP needs matching collectives).
Rank `--slow-rank` sleeps `--slow-ms` in its input pipeline before each
step, outside `mon.step()`: the straggler the job view must name.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# A PyTorch job: TensorFlow is not needed (and takes seconds to import).
sys.modules["tensorflow"] = None  # type: ignore[assignment]

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

import tb_plugin_ttsmon as ttsmon  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--slow-rank", type=int, default=1)
    ap.add_argument("--slow-ms", type=float, default=20.0)
    args = ap.parse_args()

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1))
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    mon = ttsmon.Monitor(args.logdir, interval=0.2, writer="event")
    print(f"rank {rank} writes {mon.log_dir}", flush=True)
    gen = torch.Generator().manual_seed(rank)
    for step in range(1, args.steps + 1):
        # The input pipeline: one rank's is slow.
        time.sleep((args.slow_ms if rank == args.slow_rank else 0.5) / 1000.0)
        x = torch.randn(32, 64, generator=gen)
        y = x.sum(1, keepdim=True)
        with mon.step(step):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()  # the all-reduce: a fast rank waits here
            opt.step()
        mon.log_training(step, loss=loss.item())
    mon.close()
    dist.barrier()
    dist.destroy_process_group()
    print(f"rank {rank} done pid {os.getpid()}", flush=True)


if __name__ == "__main__":
    main()
