"""Fault bookkeeping for the recorder: each kind of fault is logged once.

The recorder watches a training job; it must never flood that job's log or
raise into it. Sources report failures here: a fault is logged once at
WARNING with its reason, and a field that keeps failing is switched off for
the rest of the run (and said so, once).
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("tb_plugin_ttsmon")

# Keys of faults that belong to the process (no NVML on this host), not to one
# Monitor: a job that runs `fit` ten times, each with its own Monitor, is told once.
_PROCESS_SEEN: set[str] = set()
_PROCESS_LOCK = threading.Lock()


class FaultLog:
    """Logs each fault key once, at WARNING (thread-safe)."""

    def __init__(self, log: logging.Logger = logger) -> None:
        self._log = log
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warn_once(self, key: str, msg: str, *args: object, per_process: bool = False) -> bool:
        """Logs `msg % args` unless `key` was logged before; True if it logged.

        With `per_process`, "before" includes every other FaultLog of this process.
        """
        with self._lock:
            if key in self._seen:
                return False
            self._seen.add(key)
        if per_process:
            with _PROCESS_LOCK:
                if key in _PROCESS_SEEN:
                    return False
                _PROCESS_SEEN.add(key)
        self._log.warning("ttsmon: " + msg, *args)
        return True

    def seen(self, key: str) -> bool:
        """Whether `key` was logged."""
        with self._lock:
            return key in self._seen

    def forget(self, key: str) -> None:
        """Lets `key` be logged again (after the fault went away)."""
        with self._lock:
            self._seen.discard(key)


class FieldHealth:
    """Switches off a metric field after `max_failures` failures in a row.

    A field that fails with an error known to be permanent (for example
    NVML's NotSupported) is switched off at once. Thread-compatible: one
    sampler thread owns it.
    """

    def __init__(self, faults: FaultLog, source: str, max_failures: int = 3) -> None:
        self._faults = faults
        self._source = source
        self._max_failures = max_failures
        self._failures: dict[str, int] = {}
        self._disabled: set[str] = set()

    def enabled(self, field: str) -> bool:
        """Whether `field` is still sampled."""
        return field not in self._disabled

    def ok(self, field: str) -> None:
        """Records a success of `field`."""
        if self._failures:
            self._failures.pop(field, None)

    def failed(self, field: str, reason: object, permanent: bool = False) -> None:
        """Records a failure of `field`, switching it off when it keeps failing."""
        count = self._failures.get(field, 0) + 1
        self._failures[field] = count
        if permanent or count >= self._max_failures:
            self._disabled.add(field)
            self._failures.pop(field, None)
            self._faults.warn_once(
                f"{self._source}:{field}:off",
                "%s: %s is switched off for this run (%s)",
                self._source,
                field,
                reason,
            )

    @property
    def disabled(self) -> frozenset[str]:
        """The fields switched off so far."""
        return frozenset(self._disabled)
