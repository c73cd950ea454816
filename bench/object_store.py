"""What a run in an object store costs in requests and bytes, and what a kill -9 loses (issue 13).

Run it from the repository root::

    python bench/object_store.py [--quick] [--seconds S] [--kills K]

Everything runs against moto's S3 server on loopback (tests/s3server.py),
which records every request it answers; the counts below are the server's,
not the writers' own.

1. **Writing a run, side by side for the same seconds**, each contender in
   its own process and bucket, at 1 Hz sampling:

   * ``ttsmon``: `Monitor("s3://...", interval=1.0)` at the default settings
     (rolling objects every 30 s through s3fs);
   * ``TensorBoard`` (the baseline): TensorBoard's own `EventFileWriter` on
     its TF-free file layer (boto3), the only way TensorBoard's code writes
     ``s3://`` today, flushing every 30 s like our rolls, with the same
     samples (the recorder's sources, one event of all values a second). Its
     file layer cannot append to an object, so each flush PUTs the whole
     file again.

   Per hour and run: objects, PUT requests and bytes uploaded. ttsmon's are
   measured rates times 3600 s; the baseline's bytes grow with the square of
   the run's length (flush k uploads k intervals), extrapolated from its
   measured bytes per interval.

2. **Reading it**: a TensorBoard (TensorFlow unimportable, default
   ``--reload_interval=5``) serving ttsmon's bucket the whole time; its
   requests per hour and run (listing and GETs), since a team's bill is
   mostly readers.

3. **The bill of a month** of 1 Hz sampling for a 64-rank job (every rank
   writes its own run), in requests, and in dollars at S3 Standard's list
   price (us-east-1, 2026: $0.005 per 1,000 PUT/LIST, $0.0004 per 1,000
   GET; change `PRICES` for your store).

4. **kill -9**: a job logging 100 steps a second with ``roll_s=2`` is killed
   at a random moment K times; after a next writer of the run directory
   took over what the dead one had spooled, the lost window is the time
   between the first step missing from the bucket and the kill. The design
   bound is one roll interval.

Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests"))
sys.path.insert(0, REPO_ROOT)

from s3server import s3_server  # noqa: E402
from tbserver import tensorboard_server  # noqa: E402

PRICES = {"put_per_1000": 0.005, "list_per_1000": 0.005, "get_per_1000": 0.0004}
HOUR_S = 3600.0
MONTH_H = 30 * 24
RANKS = 64

_TTSMON_JOB = textwrap.dedent(
    """
    import sys, time
    import tb_plugin_ttsmon as ttsmon
    url, seconds = sys.argv[1], float(sys.argv[2])
    mon = ttsmon.Monitor(url, interval=1.0)   # default roll_s, spool
    time.sleep(seconds)
    mon.close()
    """
)

# TensorBoard's own writer on its TF-free file layer (TensorFlow blocked, as
# in an environment without it), the same samples once a second.
_BASELINE_JOB = textwrap.dedent(
    """
    import importlib.abc, sys, tempfile, time
    class _Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".", 1)[0] in ("tensorflow", "keras"):
                raise ImportError(name)
    sys.meta_path.insert(0, _Block())
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    import tb_plugin_ttsmon as ttsmon
    from tb_plugin_ttsmon.recorder import writers
    url, seconds = sys.argv[1], float(sys.argv[2])
    sampler = ttsmon.Monitor(tempfile.mkdtemp(), interval=3600.0)  # its sources; sampled below
    writer = EventFileWriter(url, flush_secs=30)
    seen = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        values = sampler.sample_now()
        new = {t for t in values if t not in seen}
        seen |= new
        summary = writers.build_summary(values.items(), needs_metadata=new)
        now = time.time()
        writer.add_event(event_pb2.Event(wall_time=now, step=int(now), summary=summary))
        time.sleep(1.0)
    writer.close()
    """
)

_KILL_JOB = textwrap.dedent(
    """
    import sys, time
    import tb_plugin_ttsmon as ttsmon
    mon = ttsmon.Monitor(sys.argv[1], interval=1.0, roll_s=float(sys.argv[2]), gpus=False)
    i = 0
    while True:
        mon.log_training(i, loss=1.0)
        print(i, repr(time.time()), flush=True)
        i += 1
        time.sleep(0.01)
    """
)


def _script(tmp: str, name: str, body: str) -> str:
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(body)
    return path


def _tally(requests: list[dict[str, Any]], agent: str) -> dict[str, int]:
    """One client's requests (by its User-Agent): PUTs and their bytes, LISTs, GETs/HEADs."""
    mine = [r for r in requests if agent in r["agent"] and "/moto-api/" not in r["url"]]
    puts = [r for r in mine if r["method"] == "PUT"]

    def bucket_level(url: str) -> bool:  # path-style: /<bucket>?... lists, /<bucket>/<key> not
        return urllib.parse.urlsplit(url).path.strip("/").count("/") == 0

    lists = [r for r in mine if r["method"] == "GET" and bucket_level(r["url"])]
    gets = [r for r in mine if r["method"] in ("GET", "HEAD") and not bucket_level(r["url"])]
    return {
        "requests": len(mine),
        "put": len(puts),
        "put_bytes": sum(r["body_bytes"] for r in puts),
        "list": len(lists),
        "get": len(gets),
    }


def bill_part(tmp: str, seconds: float) -> None:
    with s3_server(tmp, record=True) as ours, s3_server(tmp, record=True) as base:
        ours.create_bucket("bench")
        base.create_bucket("bench")
        ours.reset_requests()
        base.reset_requests()
        url = "s3://bench/exp1/rank0"
        env_ours = {**os.environ, **ours.env()}
        env_base = {**os.environ, **base.env(), "S3_ENDPOINT": base.endpoint}
        ours_py = _script(tmp, "ours.py", _TTSMON_JOB)
        base_py = _script(tmp, "base.py", _BASELINE_JOB)
        jobs = [
            subprocess.Popen([sys.executable, ours_py, url, str(seconds)], env=env_ours),
            subprocess.Popen([sys.executable, base_py, url, str(seconds)], env=env_base),
        ]
        started = time.monotonic()
        # A TensorBoard reading ttsmon's bucket the whole time, at its default reload.
        with tensorboard_server(
            "s3://bench/exp1",
            load_fast=False,
            block_tf=True,
            env=ours.env(),
            log_dir=tmp,
            reload_interval_s=5,
        ):
            read_started = time.monotonic()
            for job in jobs:
                job.wait(seconds + 180)
            read_s = time.monotonic() - read_started
        elapsed = time.monotonic() - started
        requests_ours = ours.requests()
        ttsmon_w = _tally(requests_ours, "aiobotocore")
        tb_r = _tally(requests_ours, "Boto3")
        base_w = _tally(base.requests(), "Boto3")
        objects = ours.objects("bench", "exp1/rank0/")
    _print_bill(seconds, elapsed, read_s, ttsmon_w, base_w, tb_r, len(objects))


def _print_bill(
    seconds: float,
    elapsed: float,
    read_s: float,
    ours: dict[str, int],
    base: dict[str, int],
    reader: dict[str, int],
    objects: int,
) -> None:
    print(f"## Writing a run at 1 Hz sampling, {elapsed:.0f} s side by side\n")
    print(f"{'':36s} {'objects':>8s} {'PUTs':>6s} {'bytes up':>10s} {'other':>6s}")
    # (TensorBoard's file layer also PUTs an empty "directory" marker object.)
    rows = [("ttsmon (roll_s=30)", objects, ours), ("TensorBoard EventFileWriter", 1, base)]
    for name, n, w in rows:
        other = w["requests"] - w["put"]
        print(f"{name:36s} {n:8d} {w['put']:6d} {w['put_bytes']:10d} {other:6d}")
    # Per hour. ttsmon: one PUT per roll (the last object, at close, left
    # out of the rate), bytes at the measured rate. TensorBoard: every flush
    # PUTs the whole file so far, so its bytes grow with the square of the
    # run's length: an hour uploads (3600 s / measured s)^2 the bytes measured.
    rolls_h = max(ours["put"] - 1, 0) / seconds * HOUR_S
    mib_h = ours["put_bytes"] / seconds * HOUR_S / 2**20
    base_puts_h = base["put"] / seconds * HOUR_S
    base_mib_h = base["put_bytes"] * (HOUR_S / seconds) ** 2 / 2**20
    print("\nPer hour and run (from the rates above):")
    print(
        f"  ttsmon:      {rolls_h:.0f} objects = {rolls_h:.0f} PUTs (by design {HOUR_S / 30:.0f}), "
        f"{mib_h:.2f} MiB uploaded"
    )
    print(
        f"  TensorBoard: one object PUT whole {base_puts_h:.0f} times, {base_mib_h:.0f} MiB "
        f"uploaded ({base_mib_h / max(mib_h, 1e-9):.0f}x ttsmon's; it grows with the run's "
        "length squared)"
    )
    lists_h = reader["list"] / read_s * HOUR_S
    gets_h = reader["get"] / read_s * HOUR_S
    print(f"  one TensorBoard reading it (reload 5 s): {lists_h:.0f} LISTs, {gets_h:.0f} GETs")

    month = MONTH_H * RANKS
    puts, lists, gets = rolls_h * month, lists_h * month, gets_h * month
    cost_w = puts / 1000 * PRICES["put_per_1000"]
    cost_r = lists / 1000 * PRICES["list_per_1000"] + gets / 1000 * PRICES["get_per_1000"]
    print(f"\n## A month of 1 Hz sampling, {RANKS}-rank job (a run per rank, 30 days)\n")
    print(f"  writing: {puts:,.0f} PUTs, {mib_h * month / 1024:.0f} GiB -> ${cost_w:,.2f}")
    print(
        f"  a TensorBoard open on it all month: {lists:,.0f} LISTs + {gets:,.0f} GETs"
        f" -> ${cost_r:,.2f}"
    )
    print(f"  prices: {PRICES}")
    print("  roll_s=120 quarters the writing bill; a longer --reload_interval cuts the reading one")


def kill_part(tmp: str, kills: int, roll_s: float = 2.0) -> None:
    from tb_plugin_ttsmon.recorder import objectstore

    losses = []
    with s3_server(tmp) as s3:
        s3.create_bucket("kills")
        env = {**os.environ, **s3.env()}
        os.environ.update(s3.env())
        script = _script(tmp, "kill.py", _KILL_JOB)
        for k in range(kills):
            url = f"s3://kills/run{k}"
            proc = subprocess.Popen(
                [sys.executable, script, url, str(roll_s)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            logged: dict[int, float] = {}
            kill_after_s = random.uniform(2 * roll_s, 4 * roll_s)
            first = None
            assert proc.stdout is not None
            for line in proc.stdout:
                step, wall = line.split()
                logged[int(step)] = float(wall)
                first = first or float(wall)
                if float(wall) - first >= kill_after_s:
                    break
            killed_at = time.time()
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            objectstore.RollingObjectWriter(url, roll_s=roll_s).close()  # adopts the dead spool
            kept = 0
            from tensorboard.backend.event_processing import event_file_loader
            from tensorboard.compat.proto import event_pb2

            for obj in s3.objects("kills", f"run{k}/"):
                path = os.path.join(tmp, "obj")
                with open(path, "wb") as f:
                    f.write(s3.get("kills", obj["Key"]))
                for raw in event_file_loader.RawEventFileLoader(path).Load():
                    ev = event_pb2.Event.FromString(raw)
                    kept += sum(v.tag == "train/loss" for v in ev.summary.value)
            lost_s = killed_at - logged[kept] if kept in logged else 0.0
            losses.append(lost_s)
    print(f"\n## kill -9 with roll_s={roll_s:g} ({kills} kills at random moments)\n")
    print("  lost the last " + ", ".join(f"{x:.2f}" for x in losses) + " s")
    worst = max(losses)
    print(f"  worst {worst:.2f} s = {worst / roll_s:.2f} roll intervals (bound: 1 + an upload)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="65 s of writing, 3 kills")
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds of writing (default 125)"
    )
    parser.add_argument("--kills", type=int, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (65.0 if args.quick else 125.0)
    kills = args.kills or (3 if args.quick else 6)
    with tempfile.TemporaryDirectory() as tmp:
        bill_part(tmp, seconds)
        kill_part(tmp, kills)


if __name__ == "__main__":
    main()
