"""Trailing-window statistics of inference requests (p50/p95/p99, throughput).

Requests are recorded on the serving threads (O(1) each, under a lock); the
sampler thread turns the last `window_s` seconds into percentiles once per
tick, so the cost of numpy stays off the request path.
"""

from __future__ import annotations

import collections
import threading

import numpy as np


class InferenceWindow:
    """Keeps the requests of the last `window_s` seconds."""

    def __init__(self, window_s: float = 10.0) -> None:
        if not window_s > 0:
            raise ValueError(f"inference window must be > 0 s, got {window_s!r}")
        self.window_s = float(window_s)
        # (finish wall time, latency ms, audio s or NaN, rtf or NaN)
        self._requests: collections.deque[tuple[float, float, float, float]] = collections.deque()
        self._lock = threading.Lock()
        self._first_request_s: float | None = None

    def add(self, finished_s: float, latency_ms: float, audio_s: float, rtf: float) -> None:
        """Records one finished request."""
        with self._lock:
            self._requests.append((finished_s, latency_ms, audio_s, rtf))
            if self._first_request_s is None:
                self._first_request_s = finished_s

    def stats(self, now_s: float) -> dict[str, float]:
        """The window's statistics as ttsmon tags; empty before the first request.

        Throughput is requests (and audio seconds) finished in the window
        divided by the window's length, or by the time since the first
        request while that is shorter. Percentile tags are left out of a
        window with no requests; throughput then reads 0.
        """
        with self._lock:
            cutoff = now_s - self.window_s
            while self._requests and self._requests[0][0] < cutoff:
                self._requests.popleft()
            if self._first_request_s is None:
                return {}
            rows = list(self._requests)
            span_s = min(self.window_s, max(now_s - self._first_request_s, 1e-3))
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
