"""Trailing-window statistics of inference requests (p50/p95/p99, throughput).

Requests are recorded on the serving threads (O(1) each, under a lock); the
sampler thread turns the last `window_s` seconds into percentiles once per
tick, so the cost of numpy stays off the request path. `InferenceSource` is
that sampler source; `InferenceRequest` is what `Monitor.time_inference`
yields.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from tb_plugin_ttsmon import metadata


class InferenceWindow:
    """Keeps the requests of the last `window_s` seconds.

    Times are `time.monotonic()` readings: throughput divides by their
    differences, which a wall-clock step must not distort.

    Args:
      window_s: The window's length.
      started_s: When counting started (the Monitor's start), as
        `time.monotonic()`; default: now.
    """

    def __init__(self, window_s: float = 10.0, started_s: float | None = None) -> None:
        if not window_s > 0:
            raise ValueError(f"inference window must be > 0 s, got {window_s!r}")
        self.window_s = float(window_s)
        self.started_s = time.monotonic() if started_s is None else float(started_s)
        # (finish monotonic s, latency ms, audio s or NaN, rtf or NaN)
        self._requests: collections.deque[tuple[float, float, float, float]] = collections.deque()
        self._lock = threading.Lock()
        self._any_request = False

    def add(self, finished_s: float, latency_ms: float, audio_s: float, rtf: float) -> None:
        """Records one request finished at monotonic time `finished_s`."""
        with self._lock:
            self._requests.append((finished_s, latency_ms, audio_s, rtf))
            self._any_request = True

    def stats(self, now_s: float) -> dict[str, float]:
        """The window's statistics at monotonic time `now_s`; empty before the first request.

        Throughput is requests (and audio seconds) finished in the window
        divided by the window's length, or by the time since counting
        started while that is shorter: one request in the first second of a
        run reads as about one per second, not as one per the few
        milliseconds since that request. Percentile tags are left out of a
        window with no requests; throughput then reads 0.
        """
        with self._lock:
            cutoff = now_s - self.window_s
            while self._requests and self._requests[0][0] < cutoff:
                self._requests.popleft()
            if not self._any_request:
                return {}
            rows = list(self._requests)
            # The floor only keeps a request logged in the Monitor's first
            # millisecond from dividing by zero.
            span_s = min(self.window_s, max(now_s - self.started_s, 1e-3))
        out = {"inference/requests_per_s": len(rows) / span_s}
        if not rows:
            out["inference/audio_s_per_s"] = 0.0
            return out
        arr = np.asarray(rows, dtype=np.float64)
        latency = arr[:, 1]
        p50, p95, p99 = np.percentile(latency, [50.0, 95.0, 99.0])
        out["inference/latency_p50_ms"] = float(p50)
        out["inference/latency_p95_ms"] = float(p95)
        out["inference/latency_p99_ms"] = float(p99)
        audio = arr[:, 2]
        out["inference/audio_s_per_s"] = float(np.nansum(audio)) / span_s
        rtf = arr[:, 3]
        if np.isfinite(rtf).any():
            out["inference/rtf_mean"] = float(np.nanmean(rtf[np.isfinite(rtf)]))
        return out


class InferenceSource:
    """The sampler's source for `InferenceWindow`: its statistics in each sample."""

    name = "inference"

    def __init__(self, window: InferenceWindow) -> None:
        self._window = window

    def sample(self, monotonic_s: float, out: dict[str, float]) -> None:
        """Adds the window's percentiles and throughput at `monotonic_s` to `out`."""
        out.update(self._window.stats(monotonic_s))

    def facts(self) -> dict[str, Any]:
        """No facts: the window's length is in the recorder settings."""
        return {}

    def close(self) -> None:
        """Nothing to release."""


class InferenceRequest:
    """What `Monitor.time_inference` yields: fill in what is known after synthesis.

    Attributes:
      audio_seconds: Seconds of audio produced (sets the RTF); may be set
        inside the block, once the audio exists.
      batch_size: Items synthesized by this request.
      stages: Stage name -> latency in ms, filled by `stage()`.
    """

    def __init__(self, audio_seconds: float | None, batch_size: int | None) -> None:
        self.audio_seconds = audio_seconds
        self.batch_size = batch_size
        self.stages: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Times one stage of the request (``gpt``, ``vocoder``, ...)."""
        metadata.check_name(name, "stage name")
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + (time.perf_counter() - t0) * 1e3
