"""Profiler captures: windows of training steps, traced by TensorFlow's profiler.

Captures land where TensorBoard's Profile tab finds them,
``<run dir>/plugins/profile/<session>/<host>.xplane.pb``, and each one is also
recorded as a ``profile/sessions`` document, so the ttsmon tab can list it and
draw its window on every chart.

Profiling needs TensorFlow (its profiler writes the XSpace files). Without it
every call here logs one plain WARNING and does nothing: profiling is never a
reason for a training job to stop.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog, logger

PROFILE_DIR = os.path.join("plugins", "profile")


def _tensorflow() -> Any:
    """TensorFlow if it can be imported, else None (never raises)."""
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    try:
        import tensorflow
    except Exception:  # ImportError, or a broken install
        return None
    return tensorflow


class Profiler:
    """Starts and stops TensorFlow's profiler for a run directory.

    Thread-safe; `step()` is meant for the training thread.

    Args:
      log_dir: The run directory.
      write: Writes one ``profile/sessions`` document (wall time, document).
      faults: Where problems are reported, once each.
    """

    def __init__(
        self, log_dir: str, write: Callable[[float, dict[str, Any]], None], faults: FaultLog
    ) -> None:
        self.log_dir = log_dir
        self._write = write
        self._faults = faults
        self._lock = threading.Lock()
        self._armed: tuple[int, int, str] | None = None  # (first step, last step, trigger)
        self._active: dict[str, Any] | None = None  # the capture in flight
        self._stop_after: int | None = None
        self._current_step: int | None = None
        self.sessions: list[dict[str, Any]] = []  # documents written, oldest first

    @property
    def active(self) -> bool:
        """Whether a capture is running."""
        return self._active is not None

    def _no_tensorflow(self) -> bool:
        if _tensorflow() is not None:
            return False
        self._faults.warn_once(
            "profiler:no-tf",
            "profiling needs TensorFlow (tf.profiler writes the traces the Profile tab reads); "
            "install tensorflow to capture profiles. Training goes on without them.",
        )
        return True

    def arm(self, start_step: int, num_steps: int, trigger: str = "steps") -> bool:
        """Captures steps ``start_step .. start_step + num_steps - 1`` (see `step`)."""
        if self._no_tensorflow():
            return False
        with self._lock:
            self._armed = (start_step, start_step + num_steps - 1, trigger)
        return True

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        """Marks one training step: starts or stops an armed capture, and names
        the step in the trace (``tf.profiler.experimental.Trace``) while one runs."""
        self._current_step = step
        armed = self._armed
        if armed is not None and self._active is None and armed[0] <= step <= armed[1]:
            with self._lock:
                self._armed = None
            if self.start(trigger=armed[2], _step=step):
                self._stop_after = armed[1]
        trace = self._trace(step) if self._active is not None else None
        try:
            if trace is None:
                yield
            else:
                with trace:
                    yield
        finally:
            if (
                self._active is not None
                and self._stop_after is not None
                and step >= self._stop_after
            ):
                self.stop(_step=step)

    def _trace(self, step: int) -> Any:
        tf = sys.modules.get("tensorflow")
        try:
            return tf.profiler.experimental.Trace("train", step_num=step, _r=1) if tf else None
        except Exception:
            return None

    def start(self, trigger: str = "manual", _step: int | None = None) -> bool:
        """Starts a capture now; False (with one warning) if it cannot."""
        if self._no_tensorflow():
            return False
        tf = _tensorflow()
        with self._lock:
            if self._active is not None:
                self._faults.warn_once(
                    "profiler:busy", "a profile capture is already running; start ignored"
                )
                return False
            before = _sessions(self.log_dir)
            try:
                tf.profiler.experimental.start(self.log_dir)
            except Exception as err:  # another profiler session, a bad directory, ...
                self._faults.warn_once(
                    "profiler:start", "cannot start the profiler (%s: %s)", type(err).__name__, err
                )
                return False
            self._active = {
                "before": before,
                "trigger": trigger,
                "start_wall_time_s": time.time(),
                "start_step": _step if _step is not None else self._current_step,
            }
        logger.info("ttsmon: profiling %s from step %s", self.log_dir, self._active["start_step"])
        return True

    def stop(self, _step: int | None = None) -> dict[str, Any] | None:
        """Stops the capture in flight and records it; returns its document."""
        tf: Any = sys.modules.get("tensorflow")
        with self._lock:
            active, self._active = self._active, None
            self._stop_after = None
            if active is None:
                return None
            doc: dict[str, Any] = {
                "trigger": active["trigger"],
                "start_wall_time_s": active["start_wall_time_s"],
                "start_step": active["start_step"],
                "status": "ok",
                "error": None,
            }
            try:
                tf.profiler.experimental.stop()
            except Exception as err:
                doc["status"] = "failed"
                doc["error"] = f"{type(err).__name__}: {err}"
            doc["stop_wall_time_s"] = time.time()
            doc["stop_step"] = _step if _step is not None else self._current_step
            new = sorted(_sessions(self.log_dir) - active["before"])
            session = new[-1] if new else None
            doc["session"] = session
            doc["session_dir"] = os.path.join(PROFILE_DIR, session) if session else None
            files = _files(os.path.join(self.log_dir, PROFILE_DIR, session)) if session else []
            doc["files"] = files
            doc["hosts"] = sorted(
                f["name"][: -len(".xplane.pb")] for f in files if f["name"].endswith(".xplane.pb")
            ) or ([socket.gethostname()] if session else [])
            if doc["status"] == "ok" and not any(f["size_bytes"] for f in files):
                doc["status"] = "failed"
                doc["error"] = "the profiler wrote no trace data"
            self.sessions.append(doc)
        if doc["status"] != "ok":
            self._faults.warn_once("profiler:stop", "profile capture failed (%s)", doc["error"])
        try:
            self._write(doc["stop_wall_time_s"], doc)
        except Exception as err:
            self._faults.warn_once("profiler:write", "recording a profile capture failed (%s)", err)
        return doc


def _sessions(log_dir: str) -> set[str]:
    try:
        return set(os.listdir(os.path.join(log_dir, PROFILE_DIR)))
    except OSError:
        return set()


def _files(path: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return out
    for name in names:
        try:
            out.append({"name": name, "size_bytes": os.path.getsize(os.path.join(path, name))})
        except OSError:
            continue
    return out
