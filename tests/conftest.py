"""Shared fixtures.

`TTSMON_TEST_NO_TF=1` makes TensorFlow and Keras unimportable in this process
(the suite's second pass in `make test`), so the TF-free path is tested in a
process where TensorFlow cannot be imported at all.
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys

import pytest

_BLOCKED = ("tensorflow", "keras", "tf_keras")


class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in _BLOCKED:
            raise ImportError(f"{fullname} is blocked (TTSMON_TEST_NO_TF=1)")
        return None


NO_TF = os.environ.get("TTSMON_TEST_NO_TF") == "1"
if NO_TF:
    if any(m.split(".", 1)[0] in _BLOCKED for m in sys.modules):
        raise RuntimeError("TensorFlow was imported before the blocker was installed")
    sys.meta_path.insert(0, _BlockTensorFlow())


def _tf_available() -> bool:
    if NO_TF:
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


WRITERS = ["event", "tf"]


@pytest.fixture(params=WRITERS)
def writer_name(request):
    """Each recorder test runs once per writer; the tf one needs TensorFlow."""
    if request.param == "tf" and not _tf_available():
        pytest.skip("TensorFlow is not importable in this process")
    return request.param


@pytest.fixture
def needs_tf():
    """Skips a test where TensorFlow cannot be imported."""
    if not _tf_available():
        pytest.skip("TensorFlow is not importable in this process")


@pytest.fixture(autouse=True)
def _ttsmon_logs_propagate():
    # caplog listens on the root logger; make sure ours reaches it. Each test
    # is its own "process" for the warnings that are once per process.
    from tb_plugin_ttsmon.recorder import faults

    faults._PROCESS_SEEN.clear()
    logger = logging.getLogger("tb_plugin_ttsmon")
    logger.propagate = True
    yield


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a test module (tests/browserkit.py).

    Per module, not per session: Chromium's processes are children of this
    one, and the process-tree tests count this process's children.
    """
    from browserkit import CHROMIUM, CHROMIUM_ARGS, sync_playwright

    if sync_playwright is None or not os.path.exists(CHROMIUM):
        pytest.skip("Chromium or Playwright is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
