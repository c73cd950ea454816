"""``ttsmon watch --parse indextts2 -- COMMAND`` (issue 12): zero-code serving metrics.

The watched program is `demo/indextts2_log.py`, which prints IndexTTS2's
timer blocks in the real formats (v2 on stdout, 2.5 through `logging` on
stderr, v1's fast path) between tqdm-style progress bars. Its output must
come through byte for byte, and every block must become a request whose
numbers are the printed ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tbdata import python_provider, read_scalars

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "demo" / "indextts2_log.py"
WATCH = [sys.executable, "-m", "tb_plugin_ttsmon.cli", "watch"]
TIMER = re.compile(r">>\s*(?:\[fast\]\s*)?([A-Za-z0-9_ ]+?)\s*:\s*([0-9.]+)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RANK", None)
    return env


def _printed_blocks(text: str) -> list[dict[str, float]]:
    """The blocks as the program printed them, read independently of the parser."""
    blocks, block = [], {}
    for line in text.splitlines():
        m = TIMER.search(line)
        if not m:
            continue
        block[m.group(1).strip()] = float(m.group(2))
        if m.group(1).strip() == "RTF":
            blocks.append(block)
            block = {}
    return blocks


@pytest.mark.parametrize("style", ["2", "2.5", "fast"])
def test_output_passes_through_and_every_block_is_a_request(tmp_path, style):
    args = [str(DEMO), "--requests", "5", "--scale", "0.005", "--seed", "3", "--style", style]
    direct = subprocess.run(
        [sys.executable, *args], capture_output=True, timeout=120, env=_env(), check=True
    )
    logdir = tmp_path / "serve"
    watched = subprocess.run(
        [
            *WATCH,
            "--logdir",
            str(logdir),
            "--no-gpus",
            "--interval",
            "0.2",
            "--parse",
            "indextts2",
            "--",
            sys.executable,
            *args,
        ],
        capture_output=True,
        timeout=120,
        env=_env(),
    )
    assert watched.returncode == 0, watched.stderr.decode(errors="replace")[-2000:]
    # Byte for byte: the progress bars' carriage returns, Amharic text, the timer lines.
    assert watched.stdout == direct.stdout
    if style != "2.5":  # logging prints wall-clock times: equal up to them
        assert watched.stderr == direct.stderr
    else:
        strip = re.compile(rb"^[0-9-]+ [0-9:,]+ - ", re.M)
        assert strip.sub(b"", watched.stderr) == strip.sub(b"", direct.stderr)
    printed = _printed_blocks((watched.stdout + watched.stderr).decode())
    assert len(printed) == 5
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "serve")
    latency = series["inference/latency_ms"].values
    assert [round(v) for v in latency] == [
        round(1000 * b.get("Total inference time", b.get("Total fast inference time", 0)))
        for b in printed
    ]
    assert series["inference/rtf"].values == pytest.approx([b["RTF"] for b in printed], rel=1e-6)
    assert series["inference/audio_s"].values == pytest.approx(
        [b["Generated audio length"] for b in printed], rel=1e-6
    )
    if style == "fast":
        assert not any(t.startswith("inference/stage/") for t in series)
        return
    gpt = series["inference/stage/gpt_gen/latency_ms"].values
    assert gpt == pytest.approx([1000 * b["gpt_gen_time"] for b in printed], rel=1e-6)
    unattributed = series["inference/stage/unattributed/latency_ms"].values
    for b, rest in zip(printed, unattributed, strict=True):
        stages = sum(v for k, v in b.items() if k.endswith("_time") and k != "Total inference time")
        assert rest == pytest.approx(1000 * (b["Total inference time"] - stages), abs=0.02)
    assert ("inference/stage/gpt_forward/latency_ms" in series) is (style == "2")


def test_a_line_comes_through_while_the_program_still_runs(tmp_path):
    # The program prints a line, then waits until the test has seen it; buffered
    # output (ours or the program's) would keep the line back: the test then
    # times out instead of going on.
    flag = tmp_path / "seen"
    child = (
        "import os, time, sys\n"
        "print('first line', flush=True)\n"
        f"while not os.path.exists({str(flag)!r}): time.sleep(0.02)\n"
        "print('>> gpt_gen_time: 1.00 seconds')\n"
        "print('>> Total inference time: 1.50 seconds')\n"
        "print('>> Generated audio length: 3.00 seconds')\n"
        "print('>> RTF: 0.5000')\n"
    )
    proc = subprocess.Popen(
        [
            *WATCH,
            "--logdir",
            str(tmp_path / "run"),
            "--no-gpus",
            "--parse",
            "indextts2",
            "--",
            sys.executable,
            "-c",
            child,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in _env().items() if k != "PYTHONUNBUFFERED"},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"first line\n"
        assert proc.poll() is None  # the program is still running
        flag.touch()
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert rest.endswith(b">> RTF: 0.5000\n")
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["inference/latency_ms"].values == [1500.0]
    assert series["inference/stage/unattributed/latency_ms"].values == [500.0]


def test_user_patterns_and_bad_arguments(tmp_path):
    child = "print('vocoder took 84 ms'); print('synthesis done in 1.50 s, rtf=0.42')"
    done = subprocess.run(
        [
            *WATCH,
            "--logdir",
            str(tmp_path / "run"),
            "--no-gpus",
            "--parse-pattern",
            r"vocoder_ms=vocoder took (\d+) ms",
            "--parse-pattern",
            r"total=done in ([\d.]+) s",
            "--parse-pattern",
            r"rtf=rtf=([\d.]+)",
            "--",
            sys.executable,
            "-c",
            child,
        ],
        capture_output=True,
        timeout=120,
        env=_env(),
    )
    assert done.returncode == 0, done.stderr
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
    assert series["inference/stage/vocoder/latency_ms"].values == [84.0]
    assert series["inference/rtf"].values == pytest.approx([0.42])
    for args, words in [
        (["--parse", "vits"], b"unknown log format 'vits'"),
        (["--parse-pattern", "gpt=no group"], b"needs a group"),
        (["--parse", "indextts2", "--pid", str(os.getpid())], b"start it after --"),
        (["--prometheus-port", "70000"], b"a port is 0..65535"),
    ]:
        bad = subprocess.run(
            [
                *WATCH,
                "--logdir",
                str(tmp_path / "bad"),
                *args,
                *([] if "--pid" in args else ["--", sys.executable, "-c", "pass"]),
            ],
            capture_output=True,
            timeout=60,
            env=_env(),
        )
        assert bad.returncode == 2 and words in bad.stderr, (args, bad.stderr)
