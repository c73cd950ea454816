"""Prints IndexTTS2's timer blocks, as its `infer` calls do, for the zero-code serving path.

    ttsmon watch --logdir demo/logs/serve-log --parse indextts2 -- python demo/indextts2_log.py

Each simulated request draws a progress bar on stderr (redrawn with ``\\r``,
as tqdm does), waits a scaled-down synthesis time, and prints the block
IndexTTS2 prints (the exact format of its public code)::

    >> gpt_gen_time: 6.83 seconds
    >> gpt_forward_time: 0.37 seconds
    >> s2mel_time: 1.05 seconds
    >> bigvgan_time: 0.19 seconds
    >> Total inference time: 10.58 seconds
    >> Generated audio length: 4.59 seconds
    >> RTF: 2.3078

``--style 2.5`` prints IndexTTS 2.5's form instead (through `logging`, padded
spacing, no ``gpt_forward_time``), ``--style fast`` IndexTTS v1's fast path
(``>> Total fast inference time: ...``, ``>> [fast] RTF: ...``). Every fifth
request is a cold one (its speaker prompt is not cached): its stages take
about three times as long. Nothing here needs a GPU or the model.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time

# IndexTTS2's stages and their seconds for 4.59 s of audio (from a user's log).
STAGES_S = {"gpt_gen": 6.83, "gpt_forward": 0.37, "s2mel": 1.05, "bigvgan": 0.19}
AUDIO_S = 4.59
TOTAL_S = 10.58
AMHARIC_TEXTS = (
    "ሰላም፣ እንደምን አደርክ?",
    "ዛሬ የአየሩ ሁኔታ ጥሩ ነው።",
    "የአማርኛ ንግግር ማመንጫ ሞዴል በሙከራ ላይ ነው።",
    "እባክዎን ትንሽ ይጠብቁ።",
)


def _progress(label: str, seconds: float, steps: int = 10) -> None:
    """A tqdm-like bar on stderr, redrawn with carriage returns."""
    for i in range(steps + 1):
        bar = "█" * i + " " * (steps - i)
        sys.stderr.write(f"\r{label}: {100 * i // steps:3d}%|{bar}| {i}/{steps}")
        sys.stderr.flush()
        time.sleep(seconds / steps)
    sys.stderr.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=24)
    ap.add_argument("--scale", type=float, default=0.05, help="wall seconds per printed second")
    ap.add_argument("--style", choices=("2", "2.5", "fast"), default="2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s - indextts - %(levelname)s - %(message)s"
    )
    log = logging.getLogger("indextts")
    for i in range(args.requests):
        text = AMHARIC_TEXTS[i % len(AMHARIC_TEXTS)]
        length = rng.uniform(0.5, 1.6)  # the text's length, relative
        cold = i % 5 == 0
        stages = {
            k: v * length * (3.0 if cold else 1.0) * rng.uniform(0.9, 1.1)
            for k, v in STAGES_S.items()
        }
        total = sum(stages.values()) + (TOTAL_S - sum(STAGES_S.values())) * length
        audio = AUDIO_S * length
        print(f"text: {text}", flush=True)
        _progress("gpt", stages["gpt_gen"] * args.scale)
        time.sleep((total - stages["gpt_gen"]) * args.scale)
        if args.style == "2":
            for name, secs in stages.items():
                print(f">> {name}_time: {secs:.2f} seconds", flush=True)
            print(f">> Total inference time: {total:.2f} seconds", flush=True)
            print(f">> Generated audio length: {audio:.2f} seconds", flush=True)
            print(f">> RTF: {total / audio:.4f}", flush=True)
        elif args.style == "2.5":
            for name, secs in stages.items():
                if name != "gpt_forward":
                    log.info(">> %s:   %.2f seconds", f"{name}_time", secs)
            log.info(">> Total inference time:   %.2f seconds", total)
            log.info(">> Generated audio length:   %.2f seconds", audio)
            log.info(">> RTF:   %.4f", total / audio)
        else:
            print(f">> Total fast inference time: {total:.2f} seconds", flush=True)
            print(f">> Generated audio length: {audio:.2f} seconds", flush=True)
            print(f">> [fast] RTF: {total / audio:.4f}", flush=True)
        print(f"wrote out_{i:03d}.wav", flush=True)


if __name__ == "__main__":
    main()
