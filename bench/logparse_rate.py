"""How fast ``ttsmon watch --parse indextts2`` reads a program's output, and its delay (issue 12).

Run it from the repository root::

    python bench/logparse_rate.py [--quick]

The log is what an IndexTTS2 server prints, repeated: per request a text
line, six tqdm redraws (``\\r``), an HTTP access line and the seven-line timer
block; 16 lines per request, 7 of them timers.

1. **The parser alone**: `BlockParser.feed` over every line, on one thread;
   lines per second of its CPU time.
2. **The whole watch**: ``ttsmon watch --parse indextts2 -- cat LOG`` with
   its output to /dev/null: lines per second of the watch process's own CPU
   time (reading the pipes, writing the output on, splitting lines, parsing,
   writing the requests), from `os.wait4`'s resource usage (``cat``'s CPU,
   a few ms, counted in).
3. **The delay**: a program prints a line every 5 ms for 2 s, each holding
   the `time.monotonic()` at which it was printed; this script reads the
   output, directly from the program's pipe (the baseline) and through
   ``ttsmon watch --parse``, and takes the arrival time of each line. The
   delay added by the watch is printed in ms and in lines (delay over the
   5 ms between lines); the goal is under one line.

Goals (issue 12): at least 50 000 lines/s on one core; the child's output
never delayed by more than a line. Printed with PASS/MISS; informational.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

GOAL_LINES_PER_S = 50_000
LINE_INTERVAL_S = 0.005

BLOCK = """\
text: ሰላም፣ እንደምን አደርክ? ዛሬ የአየሩ ሁኔታ ጥሩ ነው።
\r  0%|          | 0/120 [00:00<?, ?it/s]\r 20%|██        | 24/120\r 40%|████      | 48/120\
\r 60%|██████    | 72/120\r 80%|████████  | 96/120\r100%|██████████| 120/120 [00:03<00:00]
>> gpt_gen_time: 6.83 seconds
>> gpt_forward_time: 0.37 seconds
>> s2mel_time: 1.05 seconds
>> bigvgan_time: 0.19 seconds
>> Total inference time: 10.58 seconds
>> Generated audio length: 4.59 seconds
>> RTF: 2.3078
INFO:     127.0.0.1:51234 - "POST /tts HTTP/1.1" 200 OK
"""
LINES_PER_BLOCK = len(BLOCK.replace("\r", "\n").splitlines())


def _parser_alone(blocks: int) -> tuple[float, int]:
    from tb_plugin_ttsmon.recorder import logparse

    got: list[object] = []
    parser = logparse.BlockParser(logparse.FAMILIES["indextts2"], got.append)
    lines = (BLOCK * blocks).replace("\r", "\n").splitlines()
    t0 = time.thread_time()
    for line in lines:
        parser.feed(line)
    cpu = time.thread_time() - t0
    assert len(got) == blocks, (len(got), blocks)
    return len(lines) / cpu, len(lines)


def _watch_cpu(blocks: int) -> tuple[float, float, int]:
    """(lines per CPU second of the watch process, its CPU s, lines)."""
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "server.log")
        with open(log, "w", encoding="utf-8") as f:
            f.write(BLOCK * blocks)
        cmd = [
            sys.executable, "-m", "tb_plugin_ttsmon.cli", "watch",
            "--logdir", os.path.join(d, "run"), "--no-gpus", "--interval", "5",
            "--parse", "indextts2", "--", "cat", log,
        ]  # fmt: skip
        with open(os.devnull, "wb") as null:
            proc = subprocess.Popen(cmd, stdout=null, stderr=null)
            _, status, usage = os.wait4(proc.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # Start-up (imports, the Monitor's first sample) is not parsing: take it off.
        startup = _watch_startup_cpu(d)
    cpu = usage.ru_utime + usage.ru_stime - startup
    lines = blocks * LINES_PER_BLOCK
    return lines / cpu, cpu, lines


def _watch_startup_cpu(d: str) -> float:
    cmd = [
        sys.executable, "-m", "tb_plugin_ttsmon.cli", "watch",
        "--logdir", os.path.join(d, "empty"), "--no-gpus", "--interval", "5",
        "--parse", "indextts2", "--", "true",
    ]  # fmt: skip
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(cmd, stdout=null, stderr=null)
        _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


_TICKER = f"""
import time, sys
for i in range(int(2.0 / {LINE_INTERVAL_S})):
    print(f"tick {{i}} {{time.monotonic():.6f}}", flush=True)
    time.sleep({LINE_INTERVAL_S})
"""


def _delays(through_watch: bool) -> list[float]:
    child = [sys.executable, "-c", _TICKER]
    with tempfile.TemporaryDirectory() as d:
        cmd = (
            [
                sys.executable,
                "-m",
                "tb_plugin_ttsmon.cli",
                "watch",
                "--logdir",
                os.path.join(d, "run"),
                "--no-gpus",
                "--parse",
                "indextts2",
                "--",
                *child,
            ]
            if through_watch
            else child
        )
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert proc.stdout is not None
        out = []
        for raw in proc.stdout:
            now = time.monotonic()
            parts = raw.split()
            if len(parts) == 3 and parts[0] == b"tick":
                out.append(now - float(parts[2]))
        proc.wait()
    return out[10:]  # past start-up


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    blocks = 2_000 if args.quick else 20_000
    rounds = 3

    rates = [_parser_alone(blocks)[0] for _ in range(rounds)]
    print(
        f"logparse_rate: the IndexTTS2 server log ({LINES_PER_BLOCK} lines per request, 7 of "
        f"them timers), {blocks} requests"
    )
    rate = statistics.median(rates)
    verdict = "PASS" if rate >= GOAL_LINES_PER_S else "MISS"
    print(f"  parser alone:   {rate:,.0f} lines/s of CPU (median of {rounds}); {verdict}")
    watch = [_watch_cpu(blocks) for _ in range(rounds)]
    w_rate = statistics.median(w[0] for w in watch)
    verdict = "PASS" if w_rate >= GOAL_LINES_PER_S else "MISS"
    print(
        f"  whole watch:    {w_rate:,.0f} lines/s of the watch process's CPU "
        f"({watch[0][2]:,} lines in {statistics.median(w[1] for w in watch):.2f} s of CPU, "
        f"start-up taken off; median of {rounds}); {verdict}"
    )
    base = _delays(False)
    through = _delays(True)
    b50, b99 = statistics.median(base), sorted(base)[int(0.99 * (len(base) - 1))]
    t50, t99 = statistics.median(through), sorted(through)[int(0.99 * (len(through) - 1))]
    added = t99 - b99
    verdict = "PASS" if added < LINE_INTERVAL_S else "MISS"
    print(
        f"  delay of a line, one every {LINE_INTERVAL_S * 1e3:.0f} ms: direct pipe p50 "
        f"{b50 * 1e3:.2f} ms, p99 {b99 * 1e3:.2f} ms; through the watch p50 {t50 * 1e3:.2f} "
        f"ms, p99 {t99 * 1e3:.2f} ms, max {max(through) * 1e3:.2f} ms"
    )
    print(
        f"  added at p99: {added * 1e3:.2f} ms = {added / LINE_INTERVAL_S:.2f} lines "
        f"(goal < 1 line): {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
