"""The demo's TTS model in a PyTorch training loop, on ttsmon's TF-free writer.

The same data as `train.py` (`amharic_data`) and the same shape of model
(embedding, Conv1d, GRU encoder; length regulator; Conv1d, GRU decoder to
80 mel bins), trained with a hand-written loop that calls the `Monitor`
directly, as the README shows for PyTorch. TensorFlow is not needed.

    python demo/torch_loop.py             # 300 steps
    python demo/torch_loop.py --steps 5   # a smoke run
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    print(
        "demo/torch_loop.py needs PyTorch, which is not installed here "
        "(pip install torch, or run demo/train.py for the TensorFlow demo)",
        file=sys.stderr,
    )
    sys.exit(1)

import numpy as np

import tb_plugin_ttsmon as ttsmon

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import amharic_data as data

BATCH_SIZE = 6
N_VAL = 6


class TinyTTS(nn.Module):
    """Encoder -> length regulator -> decoder, predicting mel frames."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size + 1, 64)
        self.enc_conv = nn.Conv1d(64, 128, 5, padding=2)
        self.enc_gru = nn.GRU(128, 64, batch_first=True, bidirectional=True)
        self.dec_conv = nn.Conv1d(128, 128, 3, padding=1)
        self.dec_gru = nn.GRU(128, 128, batch_first=True)
        self.mel_out = nn.Linear(128, data.N_MELS)

    def encode(self, chars: torch.Tensor) -> torch.Tensor:
        x = self.embedding(chars).transpose(1, 2)
        x = torch.relu(self.enc_conv(x)).transpose(1, 2)
        return self.enc_gru(x)[0]

    def decode(self, encoded: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        # Length regulator: each frame takes its character's encoding.
        y = torch.gather(encoded, 1, index[:, :, None].expand(-1, -1, encoded.shape[-1]))
        y = torch.relu(self.dec_conv(y.transpose(1, 2))).transpose(1, 2)
        return self.mel_out(self.dec_gru(y)[0])

    def forward(self, chars: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(chars), index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--logdir", default="demo/logs", help="log directory (default: %(default)s)"
    )
    parser.add_argument("--run", help="run name (default: amharic-tts-torch/<date-time>)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    run = args.run or "amharic-tts-torch/" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = os.path.join(args.logdir, run)

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab = data.vocabulary()
    texts = list(data.SENTENCES)
    train_texts, val_texts = texts[:-N_VAL], texts[-N_VAL:]
    v_chars, v_frames, v_mel = (torch.from_numpy(a) for a in data.batch(val_texts, vocab))
    model = TinyTTS(len(vocab))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=args.steps)

    rules = [ttsmon.Alert("train/loss", ">", 0.02, severity="info", name="loss_above_target")]
    with ttsmon.Monitor(run_dir, interval=1.0, writer="event", alerts=rules) as mon:
        mon.log_model(model, name="amharic_tts_torch")
        print(f"training {args.steps} steps, logging to {run_dir}", flush=True)
        for step in range(1, args.steps + 1):
            picked = [train_texts[i] for i in rng.choice(len(train_texts), BATCH_SIZE, False)]
            chars, frames, mel = (torch.from_numpy(a) for a in data.batch(picked, vocab))
            model.train()
            loss = nn.functional.mse_loss(model(chars, frames), mel)
            optimizer.zero_grad()
            loss.backward()
            mon.log_gradients(step, {n: p.grad for n, p in model.named_parameters()})
            optimizer.step()
            mon.log_training(step, loss=loss.item(), learning_rate=scheduler.get_last_lr()[0])
            scheduler.step()
            if step % 20 == 0 or step == args.steps:
                model.eval()
                with torch.no_grad():
                    val_loss = nn.functional.mse_loss(model(v_chars, v_frames), v_mel).item()
                mon.log_validation(step, loss=val_loss)
                print(f"step {step}: loss {loss.item():.5f}, val loss {val_loss:.5f}", flush=True)

        vocoder = data.InverseMelVocoder()
        model.eval()
        latencies = []
        for text in texts[:8]:
            t0 = time.perf_counter()
            # IndexTTS2's stage names; sync="cuda" makes each stage wait for the
            # GPU where there is one, so GPU work lands in its own stage.
            with torch.no_grad(), mon.time_inference(batch_size=1, sync="cuda") as req:
                req.cache_hit = True  # one speaker, its prompt cached
                chars, frames = (torch.from_numpy(a) for a in data.inputs([text], vocab))
                with req.stage("gpt_gen"):
                    encoded = model.encode(chars)
                with req.stage("s2mel"):
                    mel = model.decode(encoded, frames)[0].numpy()
                with req.stage("bigvgan"):
                    wav = vocoder(mel)
                req.segment(audio_seconds=len(wav) / data.SAMPLE_RATE, tokens=len(mel))
            latencies.append((time.perf_counter() - t0) * 1e3)
        print(f"{len(latencies)} requests: median {np.median(latencies):.1f} ms", flush=True)

    print(f"\nlogs: {os.path.abspath(run_dir)}")
    print(f"view: tensorboard --logdir {args.logdir}  ->  http://localhost:6006/#ttsmon")
    return 0


if __name__ == "__main__":
    sys.exit(main())
