"""The real A/B: the demo's Amharic TTS model trained twice on CPU, XLA off then on, then compared.

`ttsmon compare` must name the XLA difference (the model's `jit_compile`,
from the model facts the Keras callback records), print a steps/s ratio
with its interval, and that ratio must be the one computed here on our own
from the logged steps' wall times (raw event files, not the read layer).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import require_tf
from tbdata import raw_events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 240


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    require_tf()
    root = tmp_path_factory.mktemp("xla")
    for jit in ("off", "on"):  # one after the other: they would share the 2 cores
        subprocess.run(
            [sys.executable, os.path.join(REPO, "demo", "train.py"), "--steps", str(STEPS),
             "--requests", "1", "--jit-compile", jit, "--logdir", str(root), "--run", f"xla/{jit}"],
            check=True, capture_output=True, timeout=900,
        )  # fmt: skip
    return root


def _compare(logdir, *extra):
    cmd = [
        sys.executable,
        "-m",
        "tb_plugin_ttsmon.cli",
        "compare",
        str(logdir),
        "xla/off",
        "xla/on",
    ]
    out = subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _median_step_ms(run_dir) -> float:
    """Our own reading: train/loss events' (step, wall time), each interval's ms per step."""
    points = sorted(
        (e.wall_time, e.step)
        for e in raw_events(str(run_dir))
        for v in e.summary.value
        if v.tag == "train/loss"
    )
    wall = np.array([p[0] for p in points])
    step = np.array([p[1] for p in points])
    ms = np.diff(wall) / np.diff(step) * 1000.0
    warm = max(5, math.ceil(0.1 * len(ms)))  # the warm-up the comparison leaves out
    return float(np.median(ms[warm:]))


def test_compare_names_xla_and_its_ratio_is_the_logged_one(logdir):
    answer = json.loads(_compare(logdir, "--format", "json"))
    setup = {d["key"]: d for d in answer["setup"]}
    xla = setup["model.amharic_tts.jit_compile"]
    assert (xla["a"], xla["b"]) == (False, True)
    speed = answer["performance"]["step_time_ms"]
    lo, hi = speed["ci"]
    assert lo <= speed["speedup"] <= hi
    ours = _median_step_ms(logdir / "xla" / "off") / _median_step_ms(logdir / "xla" / "on")
    assert speed["speedup"] == pytest.approx(ours, rel=1e-9)

    text = _compare(logdir)
    assert "amharic_tts: XLA (jit_compile)  off → on" in text
    assert f"{speed['speedup']:.2f}× speed (95 % CI {lo:.2f}–{hi:.2f})" in text
    assert answer["verdict"] in text
    print(text)  # the figures of the closing note (pytest -s)
