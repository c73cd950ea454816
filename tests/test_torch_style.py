"""A PyTorch-style training loop on the TF-free writer (numpy stands in for torch).

This file runs in both passes of `make test`; in the second pass TensorFlow
cannot be imported at all, which is the PyTorch user's situation.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import require
from tbdata import python_provider, read_documents, read_scalars

import tb_plugin_ttsmon as ttsmon
from tb_plugin_ttsmon import metadata


def test_loop_with_numpy_gradients(tmp_path, monkeypatch):
    monkeypatch.delenv("TTSMON_WRITER", raising=False)
    rng = np.random.default_rng(0)
    params = {"encoder.proj.weight": rng.normal(size=(8, 4)), "decoder.out.bias": np.zeros(4)}
    with ttsmon.Monitor(tmp_path / "run", interval=0.1, writer="event", gpus=False) as mon:
        for step in range(20):
            grads = {name: rng.normal(size=p.shape) * 0.1 for name, p in params.items()}
            for name in params:
                params[name] -= 0.01 * grads[name]
            norm = mon.log_gradients(step, grads)
            mon.log_training(step, loss=float(np.exp(-step / 10)), learning_rate=0.01)
            assert norm > 0
        mon.log_inference(latency_ms=250.0, audio_seconds=1.0, stages={"gpt": 180.0})
        mon.sample_now()
    with python_provider(str(tmp_path)) as p:
        series = read_scalars(p, "run")
        (facts,) = read_documents(p, "run", metadata.RUN_FACTS_TAG)
    assert series["train/loss"].steps == list(range(20))
    assert len(series["gradients/encoder.proj/norm"].points) == 20
    assert series["inference/rtf"].values == [0.25]
    assert facts["recorder"]["writer"] == "event"


def test_auto_writer_without_tensorflow(tmp_path, monkeypatch):
    if "tensorflow" in sys.modules or not _tf_blocked():
        pytest.skip("only meaningful where TensorFlow cannot be imported")
    monkeypatch.delenv("TTSMON_WRITER", raising=False)
    with ttsmon.Monitor(tmp_path / "run", interval=None) as mon:
        mon.log_training(0, loss=1.0)
    assert mon.writer_name == "event"
    assert "tensorflow" not in sys.modules


def _tf_blocked() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return True
    return False


def test_torch_tensors_when_torch_is_installed(tmp_path):
    try:
        import torch
    except ImportError:
        torch = None
    require(torch is not None, "PyTorch (import torch)")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 1))
    loss = model(torch.ones(2, 4)).sum()
    loss.backward()
    with ttsmon.Monitor(tmp_path / "run", interval=None, writer="event") as mon:
        norm = mon.log_gradients(0, {n: p.grad for n, p in model.named_parameters()})
        mon.log_training(0, loss=loss)
        facts = mon.log_model(model)
    expected = torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())).item()
    assert norm == pytest.approx(expected, rel=1e-5)
    assert facts["parameter_count"] == 19
