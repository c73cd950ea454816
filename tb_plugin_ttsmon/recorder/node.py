"""One sampler of the host and its GPUs per node, in a job of many ranks.

Eight ranks on a node that each sampled the host and every GPU would read the
same counters eight times and write them into eight runs. Instead, one rank
per node is the node's sampler, chosen without races by an exclusive lock on
a file in the node's temporary directory (``flock``: the kernel drops it when
its holder exits, however it exits). Local rank 0 asks first; the other ranks
ask only after `grace_s`, and then every `retry_s`, so that they take over
when local rank 0 runs no Monitor or has exited, and never beat it at start.

`NodeRole` is itself a source, placed first among the sampler's sources: it
settles the role at the start of each pass, and `NodeGated` sources (host,
cgroup) sample only while this rank holds it. Which rank samples a node can
change during a job (a takeover); the run facts written at a takeover say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.sources import Source

try:  # POSIX; elsewhere every rank samples its node (no lock to elect one)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("tb_plugin_ttsmon")

# Seconds a rank other than local rank 0 waits before it asks for the node's
# lock (local rank 0 may start its Monitor a little later), and between asks.
DEFAULT_GRACE_S = 10.0
DEFAULT_RETRY_S = 5.0


def lock_path(job: str, lock_dir: str | None = None) -> str:
    """The node lock file of job `job` in the node's temporary directory."""
    digest = hashlib.blake2b(job.encode("utf-8"), digest_size=8).hexdigest()
    return os.path.join(lock_dir or tempfile.gettempdir(), f"ttsmon-node-{digest}.lock")


class NodeRole:
    """Whether this rank samples its node: holds the node lock of its job.

    Attributes:
      name: The source's name in fault messages.
      holder: Whether this rank is the node's sampler now.
    """

    name = "node_role"

    def __init__(
        self,
        job: str,
        first_on_node: bool,
        faults: FaultLog,
        *,
        who: str = "",
        grace_s: float | None = None,
        retry_s: float | None = None,
        lock_dir: str | None = None,
        on_takeover: Callable[[], None] | None = None,
    ) -> None:
        """Creates the role; the lock is first asked for by `try_acquire` or `sample`.

        Args:
          job: The job id (ranks of one job share a lock; other jobs have theirs).
          first_on_node: Local rank 0 (or unknown): asks at once.
          faults: Where failures are reported, each once.
          who: This rank's run directory, written into the lock file for people.
          grace_s: How long another rank waits before it first asks
            (default `DEFAULT_GRACE_S`).
          retry_s: Seconds between asks of a rank that does not hold the lock
            (default `DEFAULT_RETRY_S`).
          lock_dir: The directory of the lock file (default: the temporary one).
          on_takeover: Called (on the sampler thread) when this rank becomes
            the node's sampler after its start, e.g. to write new run facts.
        """
        self.path = lock_path(job, lock_dir)
        self._faults = faults
        self._who = who
        grace_s = DEFAULT_GRACE_S if grace_s is None else grace_s
        self._retry_s = float(DEFAULT_RETRY_S if retry_s is None else retry_s)
        self._next_ask_s = time.monotonic() + (0.0 if first_on_node else float(grace_s))
        self._on_takeover = on_takeover
        self._fd: int | None = None
        self._asked = False
        self.holder = False

    def try_acquire(self, monotonic_s: float | None = None) -> bool:
        """Asks for the node lock if it is time; returns whether this rank holds it."""
        if self.holder:
            return True
        now = time.monotonic() if monotonic_s is None else monotonic_s
        if now < self._next_ask_s:
            return False
        self._next_ask_s = now + self._retry_s
        took = self._lock()
        first = not self._asked
        self._asked = True
        if took:
            self.holder = True
            if not first:
                logger.info("ttsmon: %s now samples this node's host and GPUs", self._who)
                if self._on_takeover is not None:
                    self._on_takeover()
        return took

    def _lock(self) -> bool:
        if fcntl is None:
            return True
        try:
            if self._fd is None:
                flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                self._fd = os.open(self.path, flags, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another rank samples this node
        except OSError as err:
            # No lock to be had (a read-only /tmp, another user's file): better
            # twice the samples than none, so the first rank samples anyway.
            self._faults.warn_once(
                "node:lock",
                "cannot use the node lock %s (%s); sampling the node anyway",
                self.path,
                err,
            )
            self._close_fd()
            return True
        with contextlib.suppress(OSError):  # who holds it, for people looking
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, f"{os.getpid()} {self._who}\n".encode(), 0)
        return True

    def is_holder(self) -> bool:
        """Whether this rank is the node's sampler now (for sources that read it per sample)."""
        return self.holder

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Settles the role for this pass (the `NodeGated` sources after it read it)."""
        self.try_acquire(monotonic_s)

    def facts(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        """Gives the node up (another rank takes over at its next ask)."""
        self.holder = False
        self._close_fd()

    def _close_fd(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor releases the flock


class NodeGated:
    """A node-wide source (host, cgroup) that samples only on the node's sampler rank."""

    def __init__(self, source: Source, role: NodeRole) -> None:
        self._source = source
        self._role = role
        self.name = source.name

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        if self._role.holder:
            self._source.sample(monotonic_s, out)

    def facts(self) -> dict[str, Any]:
        return self._source.facts() if self._role.holder else {}

    def close(self) -> None:
        self._source.close()
