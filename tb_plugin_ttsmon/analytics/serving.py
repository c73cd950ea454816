"""The serving view: where a TTS server's request time goes, and what users wait for.

From the per-request series a serving run logs (``inference/latency_ms``,
``inference/stage/{stage}/latency_ms``, ``inference/ttfa_ms``,
``inference/cache_hit``, ``inference/rtf``), per time bucket: each stage's
share of the latency (stacked, ``unattributed`` last), time-to-first-audio
percentiles and a histogram of latencies; over the whole run: cold against
warm requests and the percentiles; and four findings that cite their numbers:

* ``stage_dominates``: one stage is most of the latency ("gpt_gen is 77 % of
  latency (p50 26.8 s of 34.7 s)");
* ``slower_than_real_time``: p95 RTF is above 1 ("p95 RTF is 1.4: slower
  than real time"); this one needs only ``inference/rtf``;
* ``cold_slower_than_warm``: cold requests are much slower than warm ones;
* ``unattributed_latency``: much of the latency is in no timed stage.

A request's values are the points of its tags that share its step (the
recorder writes one event per request). Pure numpy, like the rest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from tb_plugin_ttsmon.analytics.common import Finding, SeriesLike, finite_values, fixed
from tb_plugin_ttsmon.analytics.heatmaps import nice_buckets
from tb_plugin_ttsmon.units import format_duration

LATENCY = "inference/latency_ms"
TTFA = "inference/ttfa_ms"
RTF = "inference/rtf"
AUDIO = "inference/audio_s"
CACHE_HIT = "inference/cache_hit"
UNATTRIBUTED = "unattributed"
_STAGE_RE = re.compile(r"inference/stage/(.+)/latency_ms")
# Log-spaced latency bins of the per-window histogram.
HISTOGRAM_BINS = 24
# Thresholds of the findings.
DOMINANT_SHARE = 0.5
UNATTRIBUTED_SHARE = 0.15
COLD_OVER_WARM = 1.5
MIN_REQUESTS = 5


def _by_step(s: SeriesLike) -> dict[int, float]:
    return dict(zip(s.step.tolist(), s.value.tolist()))


def stage_names(series: Mapping[str, SeriesLike]) -> list[str]:
    """The stages a run's requests timed (unordered)."""
    return [m.group(1) for t in series if (m := _STAGE_RE.fullmatch(t))]


def _pct(x: np.ndarray, q: float) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if len(x) else None


def serving_view(series: Mapping[str, SeriesLike], buckets: int = 120) -> dict[str, Any] | None:
    """The ``serving`` answer of http_api.md less the run's name; None without requests."""
    lat = series.get(LATENCY)
    if lat is None or not len(lat.value):
        return None
    steps = lat.step
    wall = lat.wall_time
    latency = lat.value
    n = len(latency)
    index = {int(s): i for i, s in enumerate(steps.tolist())}

    def aligned(tag: str) -> np.ndarray:
        """`tag`'s value for each request (NaN where the request has none)."""
        out = np.full(n, np.nan)
        s = series.get(tag)
        if s is None:
            return out
        for st, v in zip(s.step.tolist(), s.value.tolist()):
            i = index.get(int(st))
            if i is not None:
                out[i] = v
        return out

    stages = {name: aligned(f"inference/stage/{name}/latency_ms") for name in stage_names(series)}
    totals = {name: float(np.nansum(v)) for name, v in stages.items()}
    order = sorted((k for k in stages if k != UNATTRIBUTED), key=lambda k: -totals[k])
    if UNATTRIBUTED in stages:
        order.append(UNATTRIBUTED)
    ttfa = aligned(TTFA)
    rtf = aligned(RTF)
    audio = aligned(AUDIO)
    cache = aligned(CACHE_HIT)

    ok_wall = wall[np.isfinite(wall)]
    start, bucket_s, count = nice_buckets(float(ok_wall.min()), float(ok_wall.max()), buckets)
    col = np.clip(((wall - start) / bucket_s).astype(np.int64), 0, count - 1)
    finite_lat = np.isfinite(latency) & (latency > 0)
    per_bucket = np.bincount(col, minlength=count)
    lat_sum = np.bincount(col[finite_lat], weights=latency[finite_lat], minlength=count)

    share: dict[str, list[float | None]] = {}
    mean_ms: dict[str, list[float | None]] = {}
    for name in order:
        v = stages[name]
        ok = np.isfinite(v) & finite_lat
        sums = np.bincount(col[ok], weights=v[ok], minlength=count)
        counts = np.bincount(col[ok], minlength=count)
        share[name] = [
            round(float(sums[b] / lat_sum[b]), 4) if lat_sum[b] > 0 else None for b in range(count)
        ]
        mean_ms[name] = [
            round(float(sums[b] / counts[b]), 3) if counts[b] else None for b in range(count)
        ]

    ttfa_p50: list[float | None] = []
    ttfa_p95: list[float | None] = []
    if np.isfinite(ttfa).any():
        for b in range(count):
            x = ttfa[col == b]
            ttfa_p50.append(_pct(x, 50))
            ttfa_p95.append(_pct(x, 95))

    histogram = _histogram(latency, col, count)
    total_latency = float(np.nansum(latency[finite_lat]))
    overall = {
        name: round(float(np.nansum(stages[name][finite_lat])) / total_latency, 4)
        if total_latency > 0
        else None
        for name in order
    }
    summary = {
        "latency_p50_ms": _pct(latency, 50),
        "latency_p95_ms": _pct(latency, 95),
        "latency_p99_ms": _pct(latency, 99),
        "rtf_p50": _pct(rtf, 50),
        "rtf_p95": _pct(rtf, 95),
        "ttfa_p50_ms": _pct(ttfa, 50),
        "ttfa_p95_ms": _pct(ttfa, 95),
        "audio_s_total": float(np.nansum(audio)) if np.isfinite(audio).any() else None,
        "stage_share": overall,
    }
    cache_doc = _cache(latency, ttfa, cache)
    return {
        "start_wall_time_s": start,
        "end_wall_time_s": start + count * bucket_s,
        "bucket_s": bucket_s,
        "buckets": count,
        "requests": n,
        "stages": order,
        "stage_share": share,
        "stage_ms": mean_ms,
        "requests_per_bucket": per_bucket.tolist(),
        "ttfa": {"p50_ms": ttfa_p50, "p95_ms": ttfa_p95},
        "latency_histogram": histogram,
        "cache": cache_doc,
        "summary": summary,
        "findings": [
            f.to_dict() for f in _findings(series, latency, stages, order, cache_doc, summary)
        ],
    }


def _histogram(latency: np.ndarray, col: np.ndarray, count: int) -> dict[str, Any]:
    ok = np.isfinite(latency) & (latency > 0)
    if not ok.any():
        return {"edges_ms": [], "counts": [[] for _ in range(count)]}
    lo, hi = float(latency[ok].min()), float(latency[ok].max())
    if hi <= lo:
        lo, hi = lo * 0.9, lo * 1.1
    edges = np.geomspace(lo, hi * (1 + 1e-9), HISTOGRAM_BINS + 1)
    bins = np.clip(np.searchsorted(edges, latency[ok], side="right") - 1, 0, HISTOGRAM_BINS - 1)
    grid = np.zeros((count, HISTOGRAM_BINS), dtype=np.int64)
    np.add.at(grid, (col[ok], bins), 1)
    return {
        "edges_ms": edges.tolist(),
        "counts": grid.tolist(),
    }


def _cache(latency: np.ndarray, ttfa: np.ndarray, cache: np.ndarray) -> dict[str, Any] | None:
    if not np.isfinite(cache).any():
        return None

    def side(mask: np.ndarray) -> dict[str, Any]:
        return {
            "requests": int(mask.sum()),
            "latency_p50_ms": _pct(latency[mask], 50),
            "latency_p95_ms": _pct(latency[mask], 95),
            "ttfa_p50_ms": _pct(ttfa[mask], 50),
        }

    cold, warm = side(cache == 0), side(cache == 1)
    ratio = None
    if cold["latency_p50_ms"] and warm["latency_p50_ms"]:
        ratio = cold["latency_p50_ms"] / warm["latency_p50_ms"]
    return {"cold": cold, "warm": warm, "cold_over_warm_p50": ratio}


def _seconds(ms: float) -> str:
    return format_duration(ms / 1000.0)


def findings(series: Mapping[str, SeriesLike]) -> list[Finding]:
    """The serving findings of a run (none where it served no requests)."""
    view = serving_view(series, buckets=2)
    if view is None:
        return rtf_findings(series)
    return [Finding(**f) for f in view["findings"]]


def rtf_findings(series: Mapping[str, SeriesLike]) -> list[Finding]:
    """``slower_than_real_time``: p95 RTF above 1 (from ``inference/rtf`` alone)."""
    rtf = finite_values(series.get(RTF))
    if len(rtf) < MIN_REQUESTS:
        return []
    p95 = float(np.percentile(rtf, 95))
    if p95 <= 1.0:
        return []
    mean = float(rtf.mean())
    slower = float((rtf > 1.0).mean())
    lat = finite_values(series.get(LATENCY))
    tail = f", p95 latency {_seconds(float(np.percentile(lat, 95)))}" if len(lat) else ""
    numbers = {
        "rtf_p95": round(p95, 3),
        "rtf_mean": round(mean, 3),
        "share_above_1": round(slower, 3),
        "requests": float(len(rtf)),
    }
    if len(lat):
        numbers["latency_p95_ms"] = round(float(np.percentile(lat, 95)), 1)
    return [
        Finding(
            "slower_than_real_time",
            "warning",
            "Inference is slower than real time",
            f"p95 RTF is {fixed(p95, 2)}: slower than real time. Mean RTF {mean:.2f} over "
            f"{len(rtf)} requests{tail}; {fixed(100 * slower)} % of them took longer than the "
            f"audio they made, so streamed playback stalls unless the first audio comes early.",
            numbers,
        )
    ]


def _findings(
    series: Mapping[str, SeriesLike],
    latency: np.ndarray,
    stages: Mapping[str, np.ndarray],
    order: list[str],
    cache: Mapping[str, Any] | None,
    summary: Mapping[str, Any],
) -> list[Finding]:
    out: list[Finding] = []
    ok = np.isfinite(latency)
    if ok.sum() < MIN_REQUESTS:
        return rtf_findings(series)
    share = summary["stage_share"]
    p50 = summary["latency_p50_ms"]
    timed = [k for k in order if k != UNATTRIBUTED]
    if timed and p50:
        top = timed[0]
        s = share.get(top)
        stage_p50 = _pct(stages[top], 50)
        if s is not None and s >= DOMINANT_SHARE and stage_p50 is not None:
            out.append(
                Finding(
                    "stage_dominates",
                    "info",
                    f"{top} takes most of the latency",
                    f"{top} is {fixed(100 * s)} % of latency (p50 {_seconds(stage_p50)} of "
                    f"{_seconds(p50)}): it is where a faster request starts"
                    + (
                        " (shorter prompts, a smaller max_mel_tokens, fp16/bf16, or KV-cache "
                        "reuse)."
                        if top.startswith("gpt")
                        else "."
                    ),
                    {"share": s, "stage_p50_ms": stage_p50, "latency_p50_ms": p50},
                )
            )
    out += rtf_findings(series)
    if cache is not None and cache["cold_over_warm_p50"] is not None:
        ratio = cache["cold_over_warm_p50"]
        cold, warm = cache["cold"], cache["warm"]
        if ratio >= COLD_OVER_WARM and cold["requests"] >= 2 and warm["requests"] >= 2:
            out.append(
                Finding(
                    "cold_slower_than_warm",
                    "info",
                    "Cold requests are slower",
                    f"cold requests are {fixed(ratio, 1)}× slower than warm ones (p50 "
                    f"{_seconds(cold['latency_p50_ms'])} against "
                    f"{_seconds(warm['latency_p50_ms'])}; {cold['requests']} cold of "
                    f"{cold['requests'] + warm['requests']}): cache the speaker prompts of "
                    f"frequent voices ahead of time.",
                    {
                        "cold_over_warm_p50": ratio,
                        "cold_p50_ms": cold["latency_p50_ms"],
                        "warm_p50_ms": warm["latency_p50_ms"],
                        "cold_requests": float(cold["requests"]),
                    },
                )
            )
    un = share.get(UNATTRIBUTED)
    if un is not None and un >= UNATTRIBUTED_SHARE:
        out.append(
            Finding(
                "unattributed_latency",
                "warning",
                "Time no stage accounts for",
                f"unattributed time is {fixed(100 * un)} % of latency: a stage is not timed "
                f"(text normalization, speaker-prompt loading, or moving audio off the GPU); "
                f"wrap it in req.stage(...) to see it.",
                {"share": un},
            )
        )
    return out
