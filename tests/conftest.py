"""Shared fixtures.

`TTSMON_TEST_NO_TF=1` makes TensorFlow and Keras unimportable in this process
(the suite's second pass in `make test`), so the TF-free path is tested in a
process where TensorFlow cannot be imported at all.

`require(condition, what)` is the one rule for tests that need a component
of the machine (Chromium, root for a tmpfs, torch, xprof, TensorFlow in the
TensorFlow pass): outside CI they skip with a reason, under CI (``CI=true``)
they fail, because `make test` installs all of them there and a skip would
hide a broken install. The TensorFlow-free pass skipping TensorFlow-only
tests is the point of that pass, not a missing component: it stays a skip.
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
    """Whether TensorFlow imports in this process."""
    if NO_TF:
        return False
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


# CI services set CI=true (GitHub Actions, GitLab, Buildkite, ...).
IN_CI = os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require(condition: object, what: str) -> None:
    """Skips the calling test (or module) unless `condition`; fails it under CI.

    Args:
      condition: Whether the component is there.
      what: The missing component in words, e.g. ``"PyTorch (import torch)"``.
    """
    if condition:
        return
    if IN_CI:
        pytest.fail(
            f"{what} is missing under CI (CI=true): `make test` should have installed it",
            pytrace=False,
        )
    pytest.skip(f"{what} is missing (under CI this fails)", allow_module_level=True)


def require_tf() -> None:
    """Skips in the TensorFlow-free pass; elsewhere TensorFlow is `require`d."""
    if NO_TF:
        pytest.skip("TensorFlow is blocked in this pass (TTSMON_TEST_NO_TF=1)")
    require(_tf_available(), "TensorFlow (import tensorflow)")


WRITERS = ["event", "tf"]


@pytest.fixture(params=WRITERS)
def writer_name(request):
    """Each recorder test runs once per writer; the tf one needs TensorFlow."""
    if request.param == "tf":
        require_tf()
    return request.param


@pytest.fixture(scope="session")
def needs_tf():
    """Skips a test in the TensorFlow-free pass; see `require_tf`."""
    require_tf()


@pytest.fixture(autouse=True)
def _ttsmon_logs_propagate():
    # caplog listens on the root logger; make sure ours reaches it. Each test
    # is its own "process" for the warnings that are once per process.
    from tb_plugin_ttsmon.recorder import faults

    faults._PROCESS_SEEN.clear()
    logger = logging.getLogger("tb_plugin_ttsmon")
    logger.propagate = True
    yield


@pytest.fixture(scope="session")
def browser_installed():
    """Skips (fails under CI) a browser test where Chromium or Playwright is missing."""
    from browserkit import require_browser

    require_browser()


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for a test module (tests/browserkit.py).

    Per module, not per session: Chromium's processes are children of this
    one, and the process-tree tests count this process's children.
    """
    from browserkit import CHROMIUM, CHROMIUM_ARGS, require_browser, sync_playwright

    require_browser()
    assert sync_playwright is not None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
