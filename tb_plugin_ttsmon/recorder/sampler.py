"""The sampler thread: reads every source once per tick, off the training thread."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from tb_plugin_ttsmon.recorder.faults import FaultLog
from tb_plugin_ttsmon.recorder.sources import Source

MIN_INTERVAL_S = 0.1
# How long `Sampler.stop` waits for the sample in flight. A source stuck
# longer (a hung NVML call) is left to finish on the sampler thread, which
# then closes the sources itself: stopping never hangs the job, and no source
# is closed under a running sample.
STOP_JOIN_S = 10.0

# emit(wall_time_s, values) writes one sample; facts(sources) is called once,
# on the sampler thread, before the first sample.
EmitFn = Callable[[float, dict[str, float]], None]
FactsFn = Callable[[Sequence[Source]], None]


def check_interval(interval: Any) -> float:
    """`interval` as seconds, or an error a user can act on.

    Raises:
      TypeError: not a number.
      ValueError: below 0.1 s, or not finite.
    """
    if isinstance(interval, bool) or not isinstance(interval, (int, float)):
        raise TypeError(f"interval must be a number of seconds, not {type(interval).__name__}")
    interval = float(interval)
    if not math.isfinite(interval) or interval < MIN_INTERVAL_S:
        raise ValueError(f"interval must be at least {MIN_INTERVAL_S} s, got {interval!r}")
    return interval


class Sampler:
    """Calls `emit` with one sample of all `sources` every `interval_s`.

    Ticks are on a fixed grid from the start. One sample is in flight at a
    time (one thread); a sample that overruns its tick skips the ticks it
    missed rather than piling them up, and says how many in
    ``sampler/skipped_ticks_count``. Nothing raised by a source or by `emit`
    leaves the thread: it is logged once and sampling goes on.

    Sources see one sampling pass at a time: `sample_once` from another
    thread waits for the sampler thread's pass (and the other way round), and
    `close_sources` runs only once no pass is in flight.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        emit: EmitFn,
        interval_s: float,
        faults: FaultLog,
        on_start: FactsFn | None = None,
    ) -> None:
        self.interval_s = check_interval(interval_s)
        self._sources = list(sources)
        self._emit = emit
        self._faults = faults
        self._on_start = on_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Held for a whole pass over the sources: they are not thread-safe.
        self._pass_lock = threading.Lock()
        # Guards the two flags below and `_exited` (never held during a pass).
        self._state_lock = threading.Lock()
        # Set when stop() gave up waiting: the thread closes the sources on exit.
        self._close_on_exit = False
        self._exited = False
        self._sources_closed = False
        self.samples_taken = 0

    def start(self) -> None:
        """Starts the thread; the first sample is taken at once."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="ttsmon-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float | None = None) -> None:
        """Stops the thread after the sample in flight, if any.

        Waits up to `timeout_s` (default `STOP_JOIN_S`) for that sample; a
        source stuck beyond it is left to finish on the sampler thread.
        """
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(STOP_JOIN_S if timeout_s is None else timeout_s)

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            with self._state_lock:
                self._exited = True
                close = self._close_on_exit
            if close:
                with self._pass_lock:
                    self._close_sources()

    def _loop(self) -> None:
        if self._on_start is not None:
            try:
                self._on_start(self._sources)
            except Exception as err:
                self._faults.warn_once("sampler:facts", "writing run facts failed (%s)", err)
        start = time.monotonic()
        tick = 0
        skipped = 0
        while not self._stop.is_set():
            self.sample_once(skipped)
            elapsed_ticks = (time.monotonic() - start) / self.interval_s
            next_tick = max(tick + 1, math.floor(elapsed_ticks) + 1)
            skipped = next_tick - tick - 1
            tick = next_tick
            self._stop.wait(max(start + tick * self.interval_s - time.monotonic(), 0.0))

    def sample_once(self, skipped_ticks: int = 0) -> dict[str, float]:
        """Takes and emits one sample now; returns it (also used by tests).

        Waits for a pass in flight on another thread first. After
        `close_sources` it takes no sample and returns ``{}``.
        """
        with self._pass_lock:
            if self._sources_closed:
                return {}
            wall_s = time.time()
            # Sources get a monotonic reading: their rates divide by its
            # differences, which a wall-clock step (NTP) would make wrong.
            monotonic_s = time.monotonic()
            t0 = time.perf_counter()
            values: dict[str, float] = {}
            for source in self._sources:
                try:
                    source.sample(monotonic_s, values)
                except Exception as err:  # a source broke its no-raise contract
                    self._faults.warn_once(
                        f"sampler:{source.name}",
                        "%s metrics failed (%s: %s)",
                        source.name,
                        type(err).__name__,
                        err,
                    )
            values["sampler/duration_ms"] = (time.perf_counter() - t0) * 1000.0
            if skipped_ticks:
                values["sampler/skipped_ticks_count"] = float(skipped_ticks)
            if self._close_on_exit:
                return values  # stop() gave up on this pass; its owner has moved on
            try:
                self._emit(wall_s, values)
            except Exception as err:
                self._faults.warn_once("sampler:emit", "writing a sample failed (%s)", err)
            self.samples_taken += 1
            return values

    def close_sources(self) -> None:
        """Closes every source (after `stop`), never while a sample runs.

        If the sampler thread is still in a sample (`stop` timed out), the
        thread closes them when that sample ends, and this returns at once.
        """
        with self._state_lock:
            if self._thread is not None and not self._exited:
                self._close_on_exit = True
                return
        # The lock also waits out a sample_now() on another thread.
        with self._pass_lock:
            self._close_sources()

    def _close_sources(self) -> None:
        self._sources_closed = True
        for source in self._sources:
            try:
                source.close()
            except Exception as err:
                self._faults.warn_once(
                    f"close:{source.name}", "closing %s failed (%s)", source.name, err
                )
