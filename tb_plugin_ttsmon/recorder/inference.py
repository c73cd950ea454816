"""Trailing-window statistics of inference requests (p50/p95/p99, throughput).

Requests are recorded on the serving threads (O(1) each, under a lock); the
sampler thread turns the last `window_s` seconds into percentiles once per
tick, so the cost of numpy stays off the request path. `InferenceSource` is
that sampler source; `InferenceRequest` is what `Monitor.time_inference`
yields.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

import numpy as np

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder.values import to_float, to_step

_NO_STAGES: Mapping[str, float] = {}


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
        # Columns, oldest first from index `_start`: finish monotonic s, latency ms,
        # audio s, RTF and TTFA ms (NaN where unknown). Lists, not deques: the
        # window's start is found by bisection and the statistics read whole
        # slices into numpy, so a tick costs C loops, not one Python step per
        # request (a vocoder service logs thousands of requests per second).
        self._time: list[float] = []
        self._cols: tuple[list[float], ...] = ([], [], [], [])
        self._start = 0
        self._next_cut = _COMPACT_AT
        # Stage -> (finish times, latencies), with its own start.
        self._stages: dict[str, _StageColumn] = {}
        self._lock = threading.Lock()
        self._any_request = False

    def add(
        self,
        finished_s: float,
        latency_ms: float,
        audio_s: float,
        rtf: float,
        ttfa_ms: float = math.nan,
        stages: Mapping[str, float] = _NO_STAGES,
    ) -> None:
        """Records one request finished at monotonic time `finished_s`."""
        with self._lock:
            self._time.append(finished_s)
            lat, audio, r, ttfa = self._cols
            lat.append(latency_ms)
            audio.append(audio_s)
            r.append(rtf)
            ttfa.append(ttfa_ms)
            for stage, ms in stages.items():
                col = self._stages.get(stage)
                if col is None:
                    col = self._stages[stage] = _StageColumn()
                col.time.append(finished_s)
                col.value.append(ms)
            self._any_request = True
            if len(self._time) >= self._next_cut:
                # Without a sampler nothing reads the window: keep it bounded anyway.
                cutoff = finished_s - self.window_s
                self._cut(cutoff)
                for col in self._stages.values():
                    col.cut(cutoff)
                self._next_cut = len(self._time) + _COMPACT_AT

    def _cut(self, cutoff: float) -> tuple[np.ndarray, ...]:
        """Drops what ended before `cutoff`; the columns of what is left (caller holds the lock)."""
        start = bisect.bisect_left(self._time, cutoff, lo=self._start)
        if start > _COMPACT_AT and start * 2 > len(self._time):
            del self._time[:start]
            for col in self._cols:
                del col[:start]
            start = 0
        self._start = start
        return tuple(np.asarray(col[start:], dtype=np.float64) for col in self._cols)

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
            if not self._any_request:
                return {}
            cutoff = now_s - self.window_s
            latency, audio, rtf, ttfa = self._cut(cutoff)
            stages = {name: col.cut(cutoff) for name, col in self._stages.items()}
            # The floor only keeps a request logged in the Monitor's first
            # millisecond from dividing by zero.
            span_s = min(self.window_s, max(now_s - self.started_s, 1e-3))
        out = {"inference/requests_per_s": len(latency) / span_s}
        if not len(latency):
            out["inference/audio_s_per_s"] = 0.0
            return out
        p50, p95, p99 = np.percentile(latency, [50.0, 95.0, 99.0])
        out["inference/latency_p50_ms"] = float(p50)
        out["inference/latency_p95_ms"] = float(p95)
        out["inference/latency_p99_ms"] = float(p99)
        out["inference/audio_s_per_s"] = float(np.nansum(audio)) / span_s
        rtf = rtf[np.isfinite(rtf)]
        if len(rtf):
            out["inference/rtf_mean"] = float(rtf.mean())
            r50, r95 = np.percentile(rtf, [50.0, 95.0])
            out["inference/rtf_p50"] = float(r50)
            out["inference/rtf_p95"] = float(r95)
        ttfa = ttfa[np.isfinite(ttfa)]
        if len(ttfa):
            t50, t95, t99 = np.percentile(ttfa, [50.0, 95.0, 99.0])
            out["inference/ttfa_p50_ms"] = float(t50)
            out["inference/ttfa_p95_ms"] = float(t95)
            out["inference/ttfa_p99_ms"] = float(t99)
        for stage, values in stages.items():
            finite = values[np.isfinite(values)]
            if len(finite):
                out[f"inference/stage/{stage}/latency_p95_ms"] = float(np.percentile(finite, 95.0))
        return out


# Dropped requests are deleted from the columns once this many have piled up
# at their front (and they are most of the list): amortized O(1) per request.
_COMPACT_AT = 4096


class _StageColumn:
    """One stage's latencies in the window, with their finish times."""

    __slots__ = ("start", "time", "value")

    def __init__(self) -> None:
        self.time: list[float] = []
        self.value: list[float] = []
        self.start = 0

    def cut(self, cutoff: float) -> np.ndarray:
        start = bisect.bisect_left(self.time, cutoff, lo=self.start)
        if start > _COMPACT_AT and start * 2 > len(self.time):
            del self.time[:start]
            del self.value[:start]
            start = 0
        self.start = start
        return np.asarray(self.value[start:], dtype=np.float64)


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


# Syncs a device before a time is read: `torch.cuda.synchronize`, or nothing.
SyncFn = Callable[[], None]


def _no_sync() -> None:
    return None


def cuda_sync() -> SyncFn:
    """`torch.cuda.synchronize` where the job uses CUDA through PyTorch, else a no-op.

    Never imports torch: a job that has not imported it has no CUDA work in
    flight. Where torch is imported but CUDA is not initialized, there is
    nothing to wait for either.
    """
    torch = sys.modules.get("torch")
    cuda = getattr(torch, "cuda", None)
    try:
        if cuda is not None and cuda.is_available() and cuda.is_initialized():
            return cast(SyncFn, cuda.synchronize)
    except Exception:  # a broken CUDA setup: time without waiting rather than fail
        return _no_sync
    return _no_sync


def resolve_sync(sync: str | SyncFn | None) -> SyncFn:
    """The sync function for `Monitor.time_inference`'s `sync` argument.

    Raises:
      ValueError: an unknown name.
      TypeError: neither a name, a callable nor None.
    """
    if sync is None:
        return _no_sync
    if sync == "cuda":
        return cuda_sync()
    if isinstance(sync, str):
        raise ValueError(f"sync must be 'cuda', a callable or None, got {sync!r}")
    if not callable(sync):
        raise TypeError(f"sync must be 'cuda', a callable or None, not {type(sync).__name__}")
    return sync


@dataclasses.dataclass
class Segment:
    """One text segment of a streamed request."""

    latency_ms: float
    wall_time_s: float
    audio_seconds: float | None = None
    tokens: int | None = None


class InferenceRequest:
    """What `Monitor.time_inference` yields: fill in what is known during synthesis.

    Attributes:
      audio_seconds: Seconds of audio produced (sets the RTF); may be set
        inside the block, once the audio exists. With segments and no value
        set, the segments' audio is summed.
      batch_size: Items synthesized by this request.
      cache_hit: Whether the speaker prompt came from a cache (warm) or had
        to be computed (cold); None: not said. Cold and warm latencies are
        then kept as separate series.
      stages: Stage name -> latency in ms, filled by `stage()`.
      ttfa_ms: Time to first audio, set by `first_audio()`.
      segments: The text segments, from `segment()`.
    """

    def __init__(
        self,
        audio_seconds: float | None,
        batch_size: int | None,
        sync: SyncFn = _no_sync,
    ) -> None:
        self.audio_seconds = audio_seconds
        self.batch_size = batch_size
        self.cache_hit: bool | None = None
        self.stages: dict[str, float] = {}
        self.ttfa_ms: float | None = None
        self.segments: list[Segment] = []
        self._sync = sync
        self._start_s = time.perf_counter()
        self._mark_s = self._start_s

    def _now(self) -> float:
        self._sync()
        return time.perf_counter()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Times one stage of the request (``gpt_gen``, ``s2mel``, ``bigvgan``...).

        With ``sync="cuda"``, both ends wait for the GPU first, so the work a
        stage queued is counted in it, not in the next.
        """
        metadata.check_name(name, "stage name")
        t0 = self._now()
        try:
            yield
        finally:
            self.stages[name] = self.stages.get(name, 0.0) + (self._now() - t0) * 1e3

    def first_audio(self) -> float:
        """Marks the first audio of the request (``inference/ttfa_ms``); returns it in ms.

        Only the first call counts: later chunks are not "first".
        """
        if self.ttfa_ms is None:
            self.ttfa_ms = (self._now() - self._start_s) * 1e3
        return self.ttfa_ms

    def segment(self, audio_seconds: Any = None, tokens: Any = None) -> None:
        """Records one text segment: its time since the previous one, audio and tokens.

        The first segment also marks the first audio when `first_audio()`
        was not called. With token counts, the GPT stage gets tokens per
        second and time per output token.

        Raises:
          TypeError, ValueError: a value is not a non-negative number.
        """
        audio = None if audio_seconds is None else to_float("audio_seconds", audio_seconds)
        if audio is not None and not audio >= 0:
            raise ValueError(f"audio_seconds must be >= 0, got {audio}")
        count = None if tokens is None else to_step(tokens, "tokens")
        now = self._now()
        if self.ttfa_ms is None:
            self.ttfa_ms = (now - self._start_s) * 1e3
        self.segments.append(Segment((now - self._mark_s) * 1e3, time.time(), audio, count))
        self._mark_s = now

    def finish(self) -> float:
        """The request's latency in ms, now (the device synced first)."""
        return (self._now() - self._start_s) * 1e3


# The stage that accounts for a request's time no timed stage covers.
UNATTRIBUTED = "unattributed"


def non_negative(name: str, value: Any) -> float | None:
    """`value` as a float >= 0 (NaN and +Inf kept: they are data), or None for None.

    Raises:
      TypeError: not a number.
      ValueError: negative.
    """
    if value is None:
        return None
    x = to_float(name, value)
    if x < 0:
        raise ValueError(f"{name} must be >= 0, got {x}")
    return x


_checked_names: set[str] = set()


def checked_stages(stages: Mapping[str, Any] | None) -> dict[str, float]:
    """Stage name -> ms, each name a valid tag component, each value a number.

    Raises:
      TypeError, ValueError: a bad name or value.
    """
    out: dict[str, float] = {}
    for stage, value in (stages or {}).items():
        if stage not in _checked_names:
            metadata.check_name(stage, "stage name")
            if len(_checked_names) < 4096:  # stage names are few
                _checked_names.add(stage)
        # A plain float is the common case: no name built for an error not raised.
        out[stage] = value if type(value) is float else to_float(f"stages[{stage!r}]", value)
    return out


# Stage name -> its latency tag; the f-string per stage per request adds up.
_stage_tags: dict[str, str] = {}


def stage_tag(stage: str) -> str:
    """``inference/stage/{stage}/latency_ms``."""
    tag = _stage_tags.get(stage)
    if tag is None:
        tag = f"inference/stage/{stage}/latency_ms"
        if len(_stage_tags) < 4096:
            _stage_tags[stage] = tag
    return tag


def segment_scalars(segment: Segment) -> dict[str, float]:
    """The event of one text segment."""
    out = {"inference/segment/latency_ms": segment.latency_ms}
    if segment.audio_seconds is not None:
        out["inference/segment/audio_s"] = segment.audio_seconds
    if segment.tokens is not None:
        out["inference/segment/tokens_count"] = float(segment.tokens)
    return out


@dataclasses.dataclass
class RequestRecord:
    """One finished request, checked: what `Monitor` writes, windows and exports."""

    latency_ms: float
    audio_s: float | None = None
    batch_size: int | None = None
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    ttfa_ms: float | None = None
    cache_hit: bool | None = None
    rtf: float | None = None
    tokens: int | None = None
    token_stage: str | None = None
    segments: list[Segment] = dataclasses.field(default_factory=list)

    @classmethod
    def of(
        cls, request: InferenceRequest, latency_ms: float, token_stage: str | None
    ) -> RequestRecord:
        """The record of a timed request (`Monitor.time_inference`)."""
        audio = request.audio_seconds
        if audio is None and any(s.audio_seconds is not None for s in request.segments):
            audio = sum(s.audio_seconds or 0.0 for s in request.segments)
        tokens = None
        if any(s.tokens is not None for s in request.segments):
            tokens = sum(s.tokens or 0 for s in request.segments)
        return cls(
            latency_ms=latency_ms,
            audio_s=non_negative("audio_seconds", audio),
            batch_size=None
            if request.batch_size is None
            else to_step(request.batch_size, "batch_size"),
            stages=dict(request.stages),
            ttfa_ms=request.ttfa_ms,
            cache_hit=None if request.cache_hit is None else bool(request.cache_hit),
            tokens=tokens,
            token_stage=token_stage,
            segments=list(request.segments),
        )

    @property
    def all_stages(self) -> dict[str, float]:
        """The timed stages and, where they leave time uncovered, ``unattributed``."""
        if not self.stages or UNATTRIBUTED in self.stages:
            return self.stages
        rest = self.latency_ms - sum(self.stages.values())
        if not math.isfinite(rest) or rest <= 0:
            return self.stages
        return {**self.stages, UNATTRIBUTED: rest}

    def _token_stage(self) -> str | None:
        if self.token_stage is not None:
            return self.token_stage if self.token_stage in self.stages else None
        return next((s for s in self.stages if s.startswith("gpt")), None)

    def scalars(self, stages: Mapping[str, float] | None = None) -> dict[str, float]:
        """The request's event: every tag of format.md that it has.

        `stages`: `all_stages`, where the caller has it already.
        """
        out = {"inference/latency_ms": self.latency_ms}
        audio = self.audio_s
        if audio is not None:
            out["inference/audio_s"] = audio
        if self.rtf is not None:
            out["inference/rtf"] = self.rtf
        elif audio is not None and audio > 0:
            # No audio has no real-time factor (it would be infinite).
            out["inference/rtf"] = (self.latency_ms / 1000.0) / audio
        if self.batch_size is not None:
            out["inference/batch_size"] = float(self.batch_size)
        for stage, ms in (self.all_stages if stages is None else stages).items():
            out[stage_tag(stage)] = ms
        if self.ttfa_ms is not None:
            out["inference/ttfa_ms"] = self.ttfa_ms
        if self.cache_hit is not None:
            side = "warm" if self.cache_hit else "cold"
            out["inference/cache_hit"] = 1.0 if self.cache_hit else 0.0
            out[f"inference/{side}/latency_ms"] = self.latency_ms
            if self.ttfa_ms is not None:
                out[f"inference/{side}/ttfa_ms"] = self.ttfa_ms
        if self.segments:
            out["inference/segments_count"] = float(len(self.segments))
        if self.tokens is not None:
            out["inference/tokens_count"] = float(self.tokens)
            gpt = self._token_stage()
            gpt_ms = self.stages.get(gpt) if gpt is not None else None
            if gpt_ms is not None and gpt_ms > 0 and self.tokens > 0:
                out[f"inference/stage/{gpt}/tokens_per_s"] = self.tokens / (gpt_ms / 1000.0)
                out[f"inference/stage/{gpt}/ms_per_token"] = gpt_ms / self.tokens
        return out
