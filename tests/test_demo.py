"""Smoke tests of the demo scripts: run them for a few steps, read the logdir back."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import unicodedata

import tbdata
from conftest import require

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(ROOT, "demo")


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_sentences_are_amharic_in_geez_script():
    sys.path.insert(0, DEMO)
    try:
        import amharic_data
    finally:
        sys.path.remove(DEMO)
    assert len(amharic_data.SENTENCES) >= 40
    for sentence in amharic_data.SENTENCES:
        letters = [ch for ch in sentence if ch not in " ?"]
        assert letters, sentence
        assert all(unicodedata.name(ch).startswith("ETHIOPIC") for ch in letters), sentence
        assert sentence[-1] in "።?", sentence


def test_keras_demo_quick_run_fills_the_tab(tmp_path, needs_tf):
    proc = _run(["demo/train.py", "--quick", "--logdir", str(tmp_path), "--run", "smoke"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tensorboard --logdir" in proc.stdout

    with tbdata.python_provider(str(tmp_path)) as provider:
        scalars = tbdata.read_scalars(provider, "smoke")
        profiles = tbdata.read_documents(provider, "smoke", "profile/sessions")
        run_facts = tbdata.read_documents(provider, "smoke", "run/facts")
        models = tbdata.read_documents(provider, "smoke", "model/facts")
        alerts = tbdata.read_documents(provider, "smoke", "alerts/events")

    loss = scalars["train/loss"]
    assert len(loss.points) == 12 and all(v > 0 for v in loss.values)
    assert scalars["val/loss"].points
    lr = scalars["train/learning_rate"].values
    assert lr[0] < max(lr), "the warm-up of the learning-rate schedule is not visible"
    layers = {t.split("/")[1] for t in scalars if t.startswith("gradients/")}
    assert {"embedding", "enc_conv", "dec_gru", "mel_out"} <= layers, sorted(layers)
    assert all(v > 0 for v in scalars["train/gradient_norm"].values)

    latency = scalars["inference/latency_ms"]
    assert len(latency.points) == 11  # 4 single, 1 batched, a burst of 6
    rtf = scalars["inference/rtf"].values
    assert len(rtf) == 11 and all(0 < v < math.inf for v in rtf)
    for stage in ("gpt_gen", "s2mel", "bigvgan", "unattributed"):
        assert len(scalars[f"inference/stage/{stage}/latency_ms"].points) == 11, stage
    # Streamed: the first audio comes before the request ends; cold and warm apart.
    ttfa = scalars["inference/ttfa_ms"].values
    assert len(ttfa) == 11 and all(0 < t <= lat for t, lat in zip(ttfa, latency.values))
    assert sum(scalars["inference/segments_count"].values) >= 11
    cold = scalars["inference/cold/latency_ms"].values
    warm = scalars["inference/warm/latency_ms"].values
    assert len(cold) + len(warm) == 11 and 2 <= len(cold) <= 3  # one per new speaker
    assert len(scalars["inference/stage/speaker_prompt/latency_ms"].points) == len(cold)
    assert scalars["inference/stage/gpt_gen/tokens_per_s"].values
    assert 8 in scalars["inference/batch_size"].values

    assert profiles and profiles[0]["status"] == "ok"
    assert profiles[0]["start_step"] <= 10 <= profiles[0]["stop_step"]
    assert run_facts
    names = {m["name"] for m in models}
    assert {"amharic_tts", "encoder", "decoder"} <= names
    assert all(m["parameter_count"] > 0 for m in models)
    assert any(a["rule"] == "loss_above_target" for a in alerts)


def test_torch_demo_runs_without_tensorflow(tmp_path):
    require(importlib.util.find_spec("torch") is not None, "PyTorch (import torch)")
    block_tf = (
        "import runpy, sys\n"
        "for name in ('tensorflow', 'keras', 'tf_keras'):\n"
        "    sys.modules[name] = None  # import raises ImportError\n"
        f"sys.argv = ['torch_loop.py', '--steps', '5', '--logdir', {str(tmp_path)!r},"
        " '--run', 'torch']\n"
        "runpy.run_path('demo/torch_loop.py', run_name='__main__')\n"
    )
    proc = _run(["-c", block_tf])
    assert proc.returncode == 0, proc.stderr[-3000:]

    with tbdata.python_provider(str(tmp_path)) as provider:
        scalars = tbdata.read_scalars(provider, "torch")
        models = tbdata.read_documents(provider, "torch", "model/facts")
    assert scalars["train/loss"].steps == [1, 2, 3, 4, 5]
    assert scalars["val/loss"].steps == [5]
    assert len(scalars["train/learning_rate"].points) == 5
    assert {"embedding", "enc_gru", "mel_out"} <= {
        t.split("/")[1] for t in scalars if t.startswith("gradients/")
    }
    assert len(scalars["inference/latency_ms"].points) == 8
    assert len(scalars["inference/stage/bigvgan/latency_ms"].points) == 8
    assert len(scalars["inference/ttfa_ms"].points) == 8
    assert models[0]["name"] == "amharic_tts_torch" and models[0]["parameter_count"] > 0


def test_torch_demo_without_torch_says_so_in_one_line():
    block_torch = (
        "import runpy, sys\n"
        "sys.modules['torch'] = None\n"
        "sys.argv = ['torch_loop.py', '--steps', '5']\n"
        "runpy.run_path('demo/torch_loop.py', run_name='__main__')\n"
    )
    proc = _run(["-c", block_torch], timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs PyTorch" in lines[0], proc.stderr
    assert proc.stdout == ""
