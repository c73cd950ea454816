"""A small Amharic text-to-speech training job, recorded with ttsmon.

Characters of Ge'ez-script sentences -> a tiny encoder (embedding, Conv1D,
bidirectional GRU) -> a length regulator (each character's output repeated
for its frames) -> a decoder (Conv1D, GRU) predicting 80-bin mel-spectrogram
frames, trained with Keras on targets made from the text (`amharic_data`).
Then an inference phase synthesizes sentences one by one, as a batch, and in
a burst of concurrent requests, timing each request and its stages.

    python demo/train.py                 # a few minutes on a laptop CPU
    python demo/train.py --quick         # seconds: a smoke run
    tensorboard --logdir demo/logs       # then the "TTS Monitor" tab

    # XLA against none, then the verdict:
    python demo/train.py --steps 400 --jit-compile off --run xla/off
    python demo/train.py --steps 400 --jit-compile on --run xla/on
    ttsmon compare demo/logs xla/off xla/on
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter

import keras
import numpy as np

import tb_plugin_ttsmon as ttsmon

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amharic_data as data

BATCH_SIZE = 6
N_VAL = 6  # sentences held out for validation


class LengthRegulator(keras.layers.Layer):
    """Expands per-character encodings to frames: ``out[b, t] = enc[b, index[b, t]]``."""

    def call(self, encoded, index):
        index = keras.ops.cast(index, "int32")[:, :, None]
        index = keras.ops.broadcast_to(
            index, (keras.ops.shape(index)[0], keras.ops.shape(index)[1], encoded.shape[-1])
        )
        return keras.ops.take_along_axis(encoded, index, axis=1)

    def compute_output_shape(self, encoded_shape, index_shape):
        return (encoded_shape[0], index_shape[1], encoded_shape[-1])


def build_models(vocab_size: int) -> tuple[keras.Model, keras.Model, keras.Model]:
    """The encoder, the decoder and the training model that chains them."""
    chars = keras.Input((None,), dtype="int32", name="chars")
    x = keras.layers.Embedding(vocab_size + 1, 64, name="embedding")(chars)
    x = keras.layers.Conv1D(128, 5, padding="same", activation="relu", name="enc_conv")(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(64, return_sequences=True), name="enc_gru")(x)
    encoder = keras.Model(chars, x, name="encoder")

    encoded = keras.Input((None, 128), name="encoded")
    index = keras.Input((None,), dtype="int32", name="frame_index")
    y = LengthRegulator(name="length_regulator")(encoded, index)
    y = keras.layers.Conv1D(128, 3, padding="same", activation="relu", name="dec_conv")(y)
    y = keras.layers.GRU(128, return_sequences=True, name="dec_gru")(y)
    mel = keras.layers.Dense(data.N_MELS, name="mel_out")(y)
    decoder = keras.Model([encoded, index], mel, name="decoder")

    chars_in = keras.Input((None,), dtype="int32", name="chars")
    index_in = keras.Input((None,), dtype="int32", name="frame_index")
    model = keras.Model(
        [chars_in, index_in], decoder([encoder(chars_in), index_in]), name="amharic_tts"
    )
    return encoder, decoder, model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--logdir", default="demo/logs", help="log directory (default: %(default)s)"
    )
    parser.add_argument("--run", help="run name (default: amharic-tts/<date-time>)")
    parser.add_argument("--steps", type=int, help="training steps (default: 2400; --quick: 12)")
    parser.add_argument(
        "--requests", type=int, help="concurrent requests in the burst (default: 96; --quick: 6)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="train through XLA (Keras' jit_compile; compare the runs with `ttsmon compare`)",
    )
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 12 if args.quick else 2400
    if args.requests is None:
        args.requests = 6 if args.quick else 96
    if args.steps < 6 or args.requests < 1:
        parser.error("--steps must be at least 6 and --requests at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = args.run or "amharic-tts/" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(args.logdir, run)
    keras.utils.set_random_seed(0)

    vocab = data.vocabulary()
    texts = list(data.SENTENCES)
    train_texts, val_texts = texts[:-N_VAL], texts[-N_VAL:]
    x_chars, x_frames, y_mel = data.batch(train_texts, vocab)
    v_chars, v_frames, v_mel = data.batch(val_texts, vocab)
    steps_per_epoch = math.ceil(len(train_texts) / BATCH_SIZE)
    epochs = math.ceil(args.steps / steps_per_epoch)
    total_steps = epochs * steps_per_epoch

    encoder, decoder, model = build_models(len(vocab))
    warmup = max(2, total_steps // 10)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=1e-4,
        decay_steps=total_steps - warmup,
        alpha=0.05,
        warmup_target=3e-3,
        warmup_steps=warmup,
    )
    jit_compile = {"auto": "auto", "on": True, "off": False}[args.jit_compile]
    model.compile(
        optimizer=keras.optimizers.Adam(schedule, clipnorm=5.0), loss="mse", jit_compile=jit_compile
    )

    # One Monitor for the whole job: training (through the callback) and
    # inference land in the same run. Default alert rules stay on; these two
    # are the demo's own.
    rules = [
        ttsmon.Alert(
            "train/loss", ">", 0.02, for_seconds=0, severity="info", name="loss_above_target"
        ),
        ttsmon.Alert("inference/latency_p95_ms", ">", 500, for_seconds=2, name="synthesis_slow"),
    ]
    first = min(10, total_steps - 3)
    callback_args = {
        "gradient_norms": True,
        "profile_steps": (first, first + 2),  # a 3-step window for the Profile tab
    }
    with ttsmon.Monitor(run_dir, interval=0.5 if args.quick else 1.0, alerts=rules) as mon:
        callback = ttsmon.keras.MonitorCallback(run_dir, monitor=mon, **callback_args)
        print(f"training {total_steps} steps ({epochs} epochs), logging to {run_dir}", flush=True)
        t0 = time.perf_counter()
        history = model.fit(
            [x_chars, x_frames],
            y_mel,
            batch_size=BATCH_SIZE,
            epochs=epochs,
            validation_data=([v_chars, v_frames], v_mel),
            callbacks=[callback],
            verbose=0 if args.quick else 2,
        )
        train_s = time.perf_counter() - t0
        mon.log_model(encoder)
        mon.log_model(decoder)
        baseline = float(np.mean((v_mel - y_mel.mean(axis=(0, 1))) ** 2))
        print(
            f"trained in {train_s:.1f} s: val loss {history.history['val_loss'][-1]:.5f} "
            f"(predicting the mean spectrum: {baseline:.5f})",
            flush=True,
        )

        latencies = infer(mon, encoder, decoder, vocab, texts, args.requests)
        p50, p95 = np.percentile(latencies, [50, 95])
        print(f"{len(latencies)} requests: p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)

    print(f"\nlogs: {os.path.abspath(run_dir)}")
    print(f"view: tensorboard --logdir {args.logdir}  ->  http://localhost:6006/#ttsmon")
    return 0


def infer(
    mon: ttsmon.Monitor,
    encoder: keras.Model,
    decoder: keras.Model,
    vocab: list[str],
    texts: list[str],
    burst: int,
) -> list[float]:
    """Synthesizes sentences one by one, as one batch, then in a concurrent burst.

    Each request is timed with IndexTTS2's stage names: ``gpt_gen`` (the
    encoder, standing for IndexTTS2's GPT), ``s2mel`` (the decoder: to a mel
    spectrogram) and ``bigvgan`` (the vocoder), which streams the audio in
    segments: the first segment is the time to first audio. The text
    frontend is left untimed on purpose (it shows as ``unattributed``). A
    "speaker prompt" is computed once per speaker and cached: a request for
    a new speaker is cold, the rest warm.
    """
    vocoder = data.InverseMelVocoder()
    latencies: list[float] = []
    prompts: dict[int, np.ndarray] = {}
    lock = threading.Lock()

    def synthesize(batch_texts: list[str], speaker: int) -> None:
        t0 = time.perf_counter()
        with mon.time_inference(batch_size=len(batch_texts), sync="cuda") as req:
            with lock:
                req.cache_hit = speaker in prompts
            chars, frames = data.inputs(batch_texts, vocab)  # the untimed text frontend
            if not req.cache_hit:
                with req.stage("speaker_prompt"):  # a cold request computes it
                    prompt = np.stack([vocoder(np.eye(data.N_MELS, dtype=np.float32))] * 4)
                with lock:
                    prompts[speaker] = prompt
            with req.stage("gpt_gen"):
                encoded = encoder(keras.ops.convert_to_tensor(chars), training=False)
            with req.stage("s2mel"):
                index = keras.ops.convert_to_tensor(frames)
                mels = keras.ops.convert_to_numpy(decoder([encoded, index], training=False))
            lengths = [len(data.frame_index(t, vocab)) for t in batch_texts]
            with req.stage("bigvgan"):
                for mel, n in zip(mels, lengths):
                    # Streamed in segments of about 40 frames, as a server sends audio.
                    for start in range(0, n, 40):
                        wav = vocoder(mel[start : min(start + 40, n)])
                        req.segment(
                            audio_seconds=len(wav) / data.SAMPLE_RATE, tokens=min(40, n - start)
                        )
        latencies.append((time.perf_counter() - t0) * 1e3)

    n_single = min(len(texts), max(4, burst // 2))
    for i, text in enumerate(texts[:n_single]):  # one request at a time
        synthesize([text], speaker=i % 2)
    synthesize(texts[:8], speaker=0)  # one batched request
    with ThreadPoolExecutor(max_workers=4) as pool:  # a burst of concurrent requests
        list(pool.map(lambda i: synthesize([texts[i % len(texts)]], speaker=i % 3), range(burst)))
    return latencies


if __name__ == "__main__":
    sys.exit(main())
