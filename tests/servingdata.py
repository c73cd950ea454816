"""A synthetic IndexTTS2 serving run, written as real event files by the recorder's writer.

`write_serving_run` lays out what a TTS server writes with ttsmon
(`Monitor.time_inference` with IndexTTS2's stage names, streaming, and the
speaker-prompt cache flag): one event per request with its latency, stages
(``gpt_gen``, ``gpt_forward``, ``s2mel``, ``bigvgan``, and the
``unattributed`` rest), audio length, RTF, time to first audio and cache
state, at the request's wall time; plus the trailing-window statistics the
sampler writes. The numbers follow the timer blocks IndexTTS2 prints
(``>> gpt_gen_time: 6.83 seconds`` ...), scaled by the text's length.

Used by the serving view's tests (server and browser) and the demo's checks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random

from tb_plugin_ttsmon import metadata
from tb_plugin_ttsmon.recorder import writers

# IndexTTS2's stages and their seconds for about 4.6 s of audio (a user's log).
STAGE_S = {"gpt_gen": 6.83, "gpt_forward": 0.37, "s2mel": 1.05, "bigvgan": 0.19}
AUDIO_S = 4.59
UNATTRIBUTED_S = 10.58 - sum(STAGE_S.values())  # what the printed total adds


@dataclasses.dataclass(frozen=True)
class ServingSpec:
    """What `write_serving_run` writes."""

    run: str = "serve/indextts2-am"
    start_wall_s: float = 1_795_872_000.0
    requests: int = 120
    every_s: float = 5.0
    warm_share: float = 0.8
    cold_factor: float = 3.0
    seed: int = 7
    window_s: float = 30.0


def requests(spec: ServingSpec) -> list[dict[str, float]]:
    """Every request of the run: wall time, latency, stages, audio, RTF, TTFA, cache hit."""
    rng = random.Random(spec.seed)
    out = []
    for i in range(spec.requests):
        scale = rng.uniform(0.5, 1.6)  # the text's length
        warm = rng.random() < spec.warm_share
        slow = 1.0 if warm else spec.cold_factor
        stages = {k: v * scale * slow * rng.uniform(0.9, 1.1) for k, v in STAGE_S.items()}
        # The untimed rest (text frontend, prompt loading) is slower cold too.
        unattributed = UNATTRIBUTED_S * scale * slow * rng.uniform(0.8, 1.2)
        latency_s = sum(stages.values()) + unattributed
        audio_s = AUDIO_S * scale
        out.append(
            {
                "wall_s": spec.start_wall_s + i * spec.every_s + rng.uniform(0, 1),
                "latency_ms": latency_s * 1000,
                "audio_s": audio_s,
                "rtf": latency_s / audio_s,
                "ttfa_ms": (0.35 if warm else 1.2) * 1000 * rng.uniform(0.8, 1.3),
                "cache_hit": 1.0 if warm else 0.0,
                **{f"stage:{k}": v * 1000 for k, v in stages.items()},
                "stage:unattributed": unattributed * 1000,
            }
        )
    return out


def write_serving_run(root: str | os.PathLike[str], spec: ServingSpec) -> list[dict[str, float]]:
    """Writes the run under `root`; returns its requests (as `requests` gives them)."""
    reqs = requests(spec)
    w = writers.EventFileSummaryWriter(os.path.join(os.fspath(root), spec.run))
    try:
        facts = {"hostname": "tts-server-1", "pid": 4242, "started_at_s": spec.start_wall_s - 1}
        w.write(
            metadata.sample_step(spec.start_wall_s - 1),
            {},
            {metadata.RUN_FACTS_TAG: facts},
            spec.start_wall_s - 1,
        )
        for r in reqs:
            scalars = {
                "inference/latency_ms": r["latency_ms"],
                "inference/audio_s": r["audio_s"],
                "inference/rtf": r["rtf"],
                "inference/ttfa_ms": r["ttfa_ms"],
                "inference/cache_hit": r["cache_hit"],
                f"inference/{'warm' if r['cache_hit'] else 'cold'}/latency_ms": r["latency_ms"],
                f"inference/{'warm' if r['cache_hit'] else 'cold'}/ttfa_ms": r["ttfa_ms"],
            }
            for key, value in r.items():
                if key.startswith("stage:"):
                    scalars[f"inference/stage/{key[6:]}/latency_ms"] = value
            w.write(metadata.sample_step(r["wall_s"]), scalars, wall_time_s=r["wall_s"])
        # The sampler's window statistics, every 5 s.
        t = spec.start_wall_s
        end = reqs[-1]["wall_s"] if reqs else t
        while t <= end:
            window = [r for r in reqs if t - spec.window_s < r["wall_s"] <= t]
            stats = {"inference/requests_per_s": len(window) / spec.window_s}
            if window:
                lat = sorted(r["latency_ms"] for r in window)
                ttfa = sorted(r["ttfa_ms"] for r in window)
                stats["inference/ttfa_p50_ms"] = ttfa[len(ttfa) // 2]
                stats["inference/ttfa_p95_ms"] = ttfa[-1]
                stats["inference/latency_p50_ms"] = lat[len(lat) // 2]
                stats["inference/latency_p95_ms"] = lat[
                    min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)
                ]
            w.write(metadata.sample_step(t + 0.5), stats, wall_time_s=t + 0.5)
            t += 5.0
    finally:
        w.close()
    return reqs
