"""Run-level facts: who ran what, where, with which software.

Written once per start of a monitor as the `run/facts` document. Versions
come from package metadata, so a fact never imports a framework the job did
not import itself.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import platform
import socket
import sys
import time
from typing import Any

import psutil

from tb_plugin_ttsmon.version import VERSION

# Distributions whose versions users ask about first; the first installed
# name of each group is reported.
_PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tensorflow", ("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-nightly")),
    ("keras", ("keras",)),
    ("tensorboard", ("tensorboard",)),
    ("torch", ("torch",)),
    ("numpy", ("numpy",)),
    ("psutil", ("psutil",)),
    ("nvidia_ml_py", ("nvidia-ml-py",)),
    ("tensorboard_plugin_profile", ("tensorboard-plugin-profile",)),
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that matter to a training run."""
    out: dict[str, str | None] = {}
    for key, dists in _PACKAGES:
        out[key] = None
        for dist in dists:
            try:
                out[key] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers with a bare uid)
        return None


def framework_facts() -> dict[str, Any]:
    """Settings of the frameworks the job imported: mixed precision, XLA."""
    facts: dict[str, Any] = {}
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            facts["mixed_precision_policy"] = keras.mixed_precision.global_policy().name
        except Exception:
            pass
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "config"):
        try:
            facts["xla_jit"] = bool(tf.config.optimizer.get_jit())
        except Exception:
            pass
    xla_flags = os.environ.get("TF_XLA_FLAGS")
    if xla_flags:
        facts["tf_xla_flags"] = xla_flags
    for var in ("CUDA_VISIBLE_DEVICES", "TF_ENABLE_ONEDNN_OPTS", "OMP_NUM_THREADS"):
        if var in os.environ:
            facts.setdefault("environment", {})[var] = os.environ[var]
    return facts


def _process_started_at_s() -> float | None:
    """This process's start time (seconds since the epoch), from the OS."""
    try:
        return float(psutil.Process().create_time())
    except (psutil.Error, OSError):  # the OS refuses: the fact is optional
        return None


def run_facts(settings: dict[str, Any]) -> dict[str, Any]:
    """The static part of the run facts; sources add their own sections."""
    return {
        "recorder": {"name": "ttsmon", "version": VERSION, **settings},
        "hostname": socket.gethostname(),
        "user": _user(),
        "pid": os.getpid(),
        # With hostname and pid, names one process start: Monitors started
        # again inside one process share it, a restarted job does not.
        "process_started_at_s": _process_started_at_s(),
        "program": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None,
        "cwd": os.getcwd(),
        "started_at_s": time.time(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": package_versions(),
        "frameworks": framework_facts(),
    }
