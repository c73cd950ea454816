"""A Prometheus ``/metrics`` endpoint for serving fleets that outgrow TensorBoard (issue 12).

`Monitor(..., prometheus_port=N)` and ``ttsmon watch --prometheus-port N``
serve, with `prometheus_client`, on 127.0.0.1 unless told otherwise:

* histograms ``ttsmon_request_duration_seconds``, ``ttsmon_ttfa_seconds``
  (time to first audio), ``ttsmon_stage_duration_seconds{stage="gpt_gen"}``
  and ``ttsmon_rtf`` (real-time factor, a ratio);
* counters ``ttsmon_requests_total`` and ``ttsmon_audio_seconds_total``
  (both with ``cache="warm"|"cold"|"unknown"``);
* a gauge per sampled series with its latest value, named after its tag in
  Prometheus' base units: ``system/memory_used_bytes`` is
  ``ttsmon_system_memory_used_bytes``, ``system/cpu_percent`` is
  ``ttsmon_system_cpu_ratio`` (0..1), ``gpu/0/power_w`` is
  ``ttsmon_gpu_power_watts{gpu="0"}``, milliseconds become seconds.

A request costs the serving thread one append to a deque. The histograms are
filled from it off that thread, in batches (numpy bins a batch in one call),
on every sampler tick and before every scrape, so Prometheus never slows
synthesis down; prometheus_client's metric families and HTTP server expose
them.
"""

from __future__ import annotations

import collections
import math
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tb_plugin_ttsmon.recorder.faults import FaultLog

PREFIX = "ttsmon"
DEFAULT_HOST = "127.0.0.1"
# Requests waiting for the histograms; beyond it, the oldest are dropped (and
# counted): only where nothing scrapes and no sampler ticks.
MAX_PENDING = 100_000
# Seconds. TTS latencies run from tens of ms (a vocoder) to a minute (a long
# text through a GPT); time to first audio from ~50 ms.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
TTFA_BUCKETS_S = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)

# Tag suffix -> (Prometheus suffix, factor to base units).
_UNIT_SUFFIXES: tuple[tuple[str, str, float], ...] = (
    ("_bytes_per_s", "_bytes_per_second", 1.0),
    ("_per_s", "_per_second", 1.0),
    ("_percent", "_ratio", 0.01),
    ("_bytes", "_bytes", 1.0),
    ("_ms", "_seconds", 0.001),
    ("_mhz", "_hertz", 1e6),
    ("_w", "_watts", 1.0),
    ("_c", "_celsius", 1.0),
    ("_s", "_seconds", 1.0),
)
_INDEX_RE = re.compile(r"(gpu|cpu_core)/(\d+)/")
_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def gauge_name(tag: str) -> tuple[str, dict[str, str], float]:
    """A sampled tag as (Prometheus name, labels, factor to base units).

    ``gpu/0/power_w`` -> (``ttsmon_gpu_power_watts``, ``{"gpu": "0"}``, 1.0);
    ``tf/gpu/1/memory_current_bytes`` -> (``ttsmon_tf_gpu_memory_current_bytes``,
    ``{"gpu": "1"}``, 1.0).
    """
    labels: dict[str, str] = {}
    m = _INDEX_RE.search(tag)
    if m:
        labels["gpu" if m.group(1) == "gpu" else "core"] = m.group(2)
        tag = tag[: m.start()] + m.group(1) + "/" + tag[m.end() :]
    for suffix, prom, factor in _UNIT_SUFFIXES:
        if tag.endswith(suffix):
            tag, unit, scale = tag[: -len(suffix)], prom, factor
            break
    else:
        unit, scale = "", 1.0
    name = f"{PREFIX}_{_UNSAFE.sub('_', tag)}{unit}"
    return name, labels, scale


class _Histogram:
    """One histogram (per label value), filled in batches with numpy."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.edges = np.asarray(buckets, dtype=np.float64)
        # One count per bucket and one for +Inf (not cumulative here).
        self.counts: dict[tuple[str, ...], np.ndarray] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, labels: tuple[str, ...], values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        if not len(values):
            return
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = np.zeros(len(self.edges) + 1, dtype=np.int64)
            self.sums[labels] = 0.0
        # Prometheus buckets are "less than or equal": side="left" puts a value
        # equal to an edge in that edge's bucket.
        counts += np.bincount(
            np.searchsorted(self.edges, values, side="left"), minlength=len(counts)
        )
        self.sums[labels] += float(values.sum())

    def family(self, name: str, doc: str, label_names: list[str]) -> HistogramMetricFamily:
        fam = HistogramMetricFamily(name, doc, labels=label_names)
        for labels, counts in sorted(self.counts.items()):
            cumulative = np.cumsum(counts).tolist()
            les = [_le(e) for e in self.edges.tolist()] + ["+Inf"]
            fam.add_metric(list(labels), list(zip(les, cumulative)), self.sums[labels])
        return fam


def _le(x: float) -> str:
    return repr(float(x))


_CACHE_STATES = ("cold", "warm", "unknown")


class _Requests(Collector):
    """The request histograms and counters: queued on the serving thread, binned in batches."""

    def __init__(self) -> None:
        self.pending: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=MAX_PENDING)
        self.dropped = 0
        self._lock = threading.Lock()
        self._latency = _Histogram(LATENCY_BUCKETS_S)
        self._ttfa = _Histogram(TTFA_BUCKETS_S)
        self._stage = _Histogram(LATENCY_BUCKETS_S)
        self._rtf = _Histogram(RTF_BUCKETS)
        self._requests: dict[str, float] = {}
        self._audio: dict[str, float] = {}

    def drain(self) -> None:
        """Bins the queued requests: numpy over the batch, not a call per value."""
        with self._lock:
            pending = self.pending
            batch = [pending.popleft() for _ in range(len(pending))]
            if not batch:
                return
            n = len(batch)
            latency_ms, ttfa_ms, rtf, audio_s, stages, cache_hit = zip(*batch)
            self._latency.observe((), np.asarray(latency_ms, dtype=np.float64) / 1000.0)
            self._ttfa.observe((), np.asarray(ttfa_ms, dtype=np.float64) / 1000.0)
            self._rtf.observe((), np.asarray(rtf, dtype=np.float64))
            by_stage: dict[str, list[float]] = {}
            for st in stages:
                for name, ms in st.items():
                    by_stage.setdefault(name, []).append(ms)
            for name, values in by_stage.items():
                self._stage.observe((name,), np.asarray(values, dtype=np.float64) / 1000.0)
            # Cache states as codes (0 cold, 1 warm, 2 unknown): counted by numpy.
            codes = np.fromiter((2 if h is None else int(h) for h in cache_hit), np.int64, n)
            audio = np.asarray(audio_s, dtype=np.float64)
            audio = np.where(np.isfinite(audio) & (audio >= 0), audio, 0.0)
            counts = np.bincount(codes, minlength=3)
            seconds = np.bincount(codes, weights=audio, minlength=3)
            for code, cache in enumerate(_CACHE_STATES):
                if counts[code]:
                    self._requests[cache] = self._requests.get(cache, 0.0) + float(counts[code])
                    self._audio[cache] = self._audio.get(cache, 0.0) + float(seconds[code])

    def collect(self) -> Iterable[Any]:
        self.drain()
        with self._lock:
            yield self._latency.family(
                f"{PREFIX}_request_duration_seconds", "Latency of TTS requests", []
            )
            yield self._ttfa.family(f"{PREFIX}_ttfa_seconds", "Time to first audio", [])
            yield self._stage.family(
                f"{PREFIX}_stage_duration_seconds",
                "Latency of one stage of TTS requests",
                ["stage"],
            )
            yield self._rtf.family(
                f"{PREFIX}_rtf", "Real-time factor: synthesis seconds per audio second", []
            )
            requests = CounterMetricFamily(
                f"{PREFIX}_requests", "TTS requests served", labels=["cache"]
            )
            for cache, n in sorted(self._requests.items()):
                requests.add_metric([cache], n)
            yield requests
            audio = CounterMetricFamily(
                f"{PREFIX}_audio_seconds", "Audio produced by TTS requests", labels=["cache"]
            )
            for cache, x in sorted(self._audio.items()):
                audio.add_metric([cache], x)
            yield audio


class PrometheusExporter:
    """The ``/metrics`` endpoint of one Monitor (see the module docstring).

    Args:
      port: TCP port (0: any free one; `port` then says which).
      host: Address to bind; 127.0.0.1 unless the fleet's scraper needs more.
      faults: Where problems are reported, each once.

    Raises:
      OSError: the port cannot be bound (in use, no permission).
    """

    def __init__(self, port: int, host: str = DEFAULT_HOST, faults: FaultLog | None = None) -> None:
        self._faults = faults or FaultLog()
        self.registry = CollectorRegistry(auto_describe=False)
        self._requests = _Requests()
        self.registry.register(self._requests)
        self._gauges: dict[str, Gauge] = {}
        self._gauge_of_tag: dict[str, tuple[Any, float] | None] = {}
        server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        self._server: Any = server
        self.host = host
        self.port: int = server.server_address[1]

    # -- the serving thread: one append -----------------------------------------

    def request(
        self,
        latency_ms: float,
        ttfa_ms: float,
        rtf: float,
        audio_s: float,
        stages: Mapping[str, float],
        cache_hit: bool | None,
    ) -> None:
        """Queues one request for the histograms (O(1), no lock); NaN where not known."""
        pending = self._requests.pending
        if len(pending) == MAX_PENDING:
            self._requests.dropped += 1
        pending.append((latency_ms, ttfa_ms, rtf, audio_s, stages, cache_hit))

    # -- off the serving thread -------------------------------------------------

    def drain(self) -> None:
        """Moves the queued requests into the histograms and counters."""
        self._requests.drain()

    @property
    def dropped(self) -> int:
        """Requests the histograms never saw (the queue was full)."""
        return self._requests.dropped

    def sample(self, values: Mapping[str, float]) -> None:
        """Sets the gauges to a system sample's values (on the sampler thread)."""
        self.drain()
        for tag, value in values.items():
            if not _finite(value):
                continue
            if tag in self._gauge_of_tag:
                target = self._gauge_of_tag[tag]
            else:
                target = self._gauge_of_tag[tag] = self._make_gauge(tag)
            if target is not None:
                gauge, scale = target
                gauge.set(value * scale)

    def _make_gauge(self, tag: str) -> tuple[Any, float] | None:
        if not tag.startswith(("system/", "process/", "container/", "gpu/", "tf/")):
            return None  # inference window statistics: the histograms say it better
        name, labels, scale = gauge_name(tag)
        gauge = self._gauges.get(name)
        try:
            if gauge is None:
                gauge = self._gauges[name] = Gauge(
                    name, f"Latest sample of ttsmon's {tag}", sorted(labels), registry=self.registry
                )
            return (gauge.labels(**labels) if labels else gauge), scale
        except ValueError as err:  # a name clash: leave this tag out, say so once
            self._faults.warn_once(
                f"prometheus:{name}", "prometheus: no gauge for %s (%s)", tag, err
            )
            return None

    def close(self) -> None:
        """Stops serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)
