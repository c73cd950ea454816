"""Answers computed once and shared by every viewer: a byte-bounded, single-flight cache.

A team watches one log directory from many tabs. Without sharing, every tab
reruns every analytic of every run every refresh. Entries here are keyed by
what an answer depends on (the route, its query and the data version of the
runs it reads, `Reader.data_versions`), so a new point in a run retires its
entries by changing the key: nothing has to be invalidated by hand, and two
viewers asking the same question share one computation (single flight: the
second waits for the first's result instead of computing again).

Entries hold the finished JSON body, so the bound is in bytes, what the
server's memory pays, not in entries, and a hit costs no encoding. Least
recently used entries go first. (TensorBoard's `http_util.Respond`
compresses each answer; bodies are kept uncompressed so that a batched
answer can be joined from cached parts.)

Computations marked ``slow`` (the analytics) run on a small worker pool, so
that however many viewers ask for anomalies at once, at most `slow_workers`
of them compute while the request threads that serve series stay free.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_SLOW_WORKERS = 2


@dataclasses.dataclass
class CacheStats:
    """Counters of a `ResultCache` (for benchmarks and tests)."""

    hits: int = 0
    misses: int = 0
    shared: int = 0  # requests that waited for another request's computation
    evictions: int = 0
    bytes: int = 0
    peak_bytes: int = 0
    entries: int = 0


def _len(value: object) -> int:
    return len(value)  # type: ignore[arg-type]


class ResultCache(Generic[V]):
    """Values (response bodies, by default) by key, at most `max_bytes` in all.

    Thread-safe. `get_or_compute` returns the value of a key, computing it
    at most once at a time per key; an exception of the computation reaches
    every request waiting for it and is not cached.

    Args:
      max_bytes: The bound, as `size_of` counts.
      slow_workers: Threads of the pool that `slow` computations run on.
      size_of: The bytes a value holds (``len`` of a body by default).
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        slow_workers: int = DEFAULT_SLOW_WORKERS,
        size_of: Callable[[V], int] = _len,
    ) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._size_of = size_of
        self._entries: collections.OrderedDict[Hashable, tuple[V, int]] = collections.OrderedDict()
        self._running: dict[Hashable, concurrent.futures.Future[V]] = {}
        self._slow_workers = max(1, slow_workers)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._stats = CacheStats()

    def stats(self) -> CacheStats:
        """A copy of the counters."""
        with self._lock:
            return dataclasses.replace(self._stats)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V], *, slow: bool = False) -> V:
        """The body of `key`, from the cache or from ``compute()``.

        Args:
          key: What the body depends on (hashable).
          compute: Returns the body.
          slow: Run `compute` on the worker pool instead of this thread.
        """
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self._stats.hits += 1
                return entry[0]
            future = self._running.get(key)
            owner = future is None
            if owner:
                self._stats.misses += 1
                future = concurrent.futures.Future[V]()
                self._running[key] = future
            else:
                self._stats.shared += 1
        assert future is not None
        if not owner:
            return future.result()
        try:
            body = self._executor().submit(compute).result() if slow else compute()
        except BaseException as err:
            with self._lock:
                self._running.pop(key, None)
            future.set_exception(err)
            raise
        with self._lock:
            self._running.pop(key, None)
            self._store(key, body)
        future.set_result(body)
        return body

    def _store(self, key: Hashable, value: V) -> None:
        # Called with the lock held. A value larger than the whole bound is
        # served but not kept.
        size = self._size_of(value)
        if size > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._stats.bytes -= old[1]
        self._entries[key] = (value, size)
        self._stats.bytes += size
        while self._stats.bytes > self.max_bytes and self._entries:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._stats.bytes -= dropped
            self._stats.evictions += 1
        self._stats.entries = len(self._entries)
        self._stats.peak_bytes = max(self._stats.peak_bytes, self._stats.bytes)

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._slow_workers, thread_name_prefix="ttsmon-analytics"
                )
            return self._pool
