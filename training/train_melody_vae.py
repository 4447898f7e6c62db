"""Train the melody VAE on phrases of the Essen folk songs (derived at training time, never shipped).

Objective per phrase: the decoder's cross-entropy of every step, teacher forced (summed over the steps),
plus β × the KL of the posterior to N(0, I), β ramped in from 0 over the first ``BETA_RAMP`` of the run
(the GRU decoder otherwise learns to ignore the latent before the encoder has anything to say). Each
batch is transposed by a random −6…+5 semitones (kept inside the pitch range), so every key is seen.

The metadata also holds the held-out phrases' statistics (``corpus``: note density percentiles, key fit), which
``imgsonic eval`` compares generated melodies with, so evaluating needs no corpus.

Run as ``imgsonic train melody-vae [--steps N] [--export models/presets/melodies/essen-2bar.pt]``; writes
``<out>/melodies/melody_vae.pt`` with held-out metrics in its metadata: greedy token accuracy of the
reconstructions (encode the mean, decode greedily) of phrases of tunes never trained on, and the
teacher-forced accuracy.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from models.errors import ParameterError
from models.melody_vae import MelodyVAE, MelodyVAEConfig
from training.loop import LoopSettings, is_main_process, resolve_device, save_trained, seed_everything, train_loop
from training.losses import kl_divergence, ramp
from training.melody_data import corpus_statistics, make_melody_phrases, notes_per_bar, transpose_phrases

__all__ = ["MELODY_CONFIG", "STEPS", "BATCH_SIZE", "LR", "BETA", "MelodyObjective", "evaluate_melody_vae",
           "train_melody_vae", "run"]

MELODY_CONFIG = MelodyVAEConfig()
STEPS = 4000
BATCH_SIZE = 128
LR = 2e-3
BETA = 0.2
BETA_RAMP = 0.3
SEED = 7
DEFAULT_OUT = "runs/presets"


class MelodyObjective:
    """Cross-entropy + ramped β·KL on randomly transposed phrases; one optimiser ``"melody_vae"``."""

    def __init__(self, model: MelodyVAE, *, steps: int, lr: float, beta: float, checkpoint: Path, metadata: dict) -> None:
        self.model = model
        self.steps = steps
        self.beta = beta
        self.checkpoint = checkpoint
        self.metadata = metadata
        self.modules = {"melody_vae": model}
        self.optimizers = {"melody_vae": torch.optim.Adam(model.parameters(), lr=lr)}
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizers["melody_vae"], max_lr=lr,
                                                             total_steps=steps + 1, pct_start=0.05)

    def losses(self, step: int, batch: dict[str, Tensor], generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        if step > 1:
            self.scheduler.step()
        tokens = batch["phrases"]
        shifts = torch.randint(-6, 6, (len(tokens),), generator=generator).to(tokens.device)
        tokens = transpose_phrases(tokens, shifts, config=self.model.config)
        logits, mu, logvar = self.model(tokens)
        reconstruction = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none").sum(1).mean()
        kl = kl_divergence(mu, logvar)
        beta = self.beta * ramp(step / self.steps, start=0.0, full=BETA_RAMP)
        loss = reconstruction + beta * kl
        accuracy = (logits.argmax(-1) == tokens).float().mean()
        return {"melody_vae": loss}, {"loss": loss.item(), "ce": reconstruction.item(), "kl": kl.item(),
                                      "acc_tf": accuracy.item()}

    def save(self, step: int) -> None:
        self.model.save(self.checkpoint, metadata={**self.metadata, "steps": step})


@torch.no_grad()
def evaluate_melody_vae(model: MelodyVAE, phrases: Tensor, *, batch_size: int = 512) -> dict[str, float]:
    """Held-out reconstruction: greedy and teacher-forced token accuracy, exact phrases, KL, note density."""
    model.eval()
    greedy, forced, exact, kl, density = [], [], [], [], []
    for start in range(0, len(phrases), batch_size):
        tokens = phrases[start : start + batch_size]
        mu, logvar = model.encode(tokens)
        decoded = model.decode(mu)
        greedy.append((decoded == tokens).float().mean(1))
        exact.append((decoded == tokens).all(1).float())
        forced.append((model.decode_logits(mu, tokens).argmax(-1) == tokens).float().mean(1))
        kl.append((0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(1))
        density.append(torch.as_tensor(notes_per_bar(decoded.numpy(), steps_per_bar=model.config.steps_per_bar)))
    return {"greedy_token_accuracy": float(torch.cat(greedy).mean()),
            "teacher_forced_accuracy": float(torch.cat(forced).mean()),
            "exact_phrases": float(torch.cat(exact).mean()),
            "kl_nats": float(torch.cat(kl).mean()),
            "decoded_notes_per_bar": float(torch.cat(density).double().mean())}


def train_melody_vae(*, out_dir: str | Path, steps: int = STEPS, device: str = "cpu", resume: bool = False,
                     progress: bool = True, checkpoint_every: int = 1000, config: MelodyVAEConfig = MELODY_CONFIG,
                     phrases: Tensor | None = None, test_phrases: Tensor | None = None,
                     command: str | None = None) -> tuple[Path, dict[str, float]]:
    """Train on the Essen phrases (or ``phrases``); writes ``<out_dir>/melody_vae.pt``, returns it and metrics."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ParameterError(f"steps={steps!r}; expected an int >= 1")
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    seed_everything(SEED)
    summary: dict = {"data": "given phrases"}
    if phrases is None:
        phrases, summary = make_melody_phrases(config=config, split="train")
        test_phrases, test_summary = make_melody_phrases(config=config, split="test")
        summary = {"data": "Essen folk songs (music21 corpus), derived at training time", "train": summary,
                   "test": test_summary, "corpus": corpus_statistics(test_phrases, config=config)}
    checkpoint = out_dir / "melody_vae.pt"
    metadata = {**summary, "batch_size": BATCH_SIZE, "lr": LR, "beta": BETA, "beta_ramp": BETA_RAMP, "seed": SEED,
                "transposition": "random -6…+5 semitones per phrase and step",
                "command": command or " ".join(sys.argv)}
    model = MelodyVAE(config).to(torch_device)
    objective = MelodyObjective(model, steps=steps, lr=LR, beta=BETA, checkpoint=checkpoint, metadata=metadata)
    settings = LoopSettings(name="melody_vae", steps=steps, batch_size=BATCH_SIZE, out_dir=out_dir, seed=SEED,
                            device=str(torch_device), checkpoint_every=checkpoint_every, resume=resume,
                            progress=progress, grad_clip=1.0)
    result = train_loop(objective, {"phrases": phrases}, settings)
    metrics = evaluate_melody_vae(model.cpu(), test_phrases if test_phrases is not None else phrases[:512])
    return checkpoint, save_trained(model, checkpoint, kind="melody VAE", result=result, metrics=metrics,
                                    metadata=metadata)


# ---- imgsonic train melody-vae ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    command = f"imgsonic train melody-vae --steps {args.steps}" + (f" --export {args.export}" if args.export else "")
    checkpoint, _ = train_melody_vae(out_dir=Path(args.out) / "melodies", steps=args.steps, device=args.device,
                                     resume=args.resume, progress=not args.no_progress, command=command)
    if args.export and is_main_process():
        Path(args.export).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, args.export)
        print(f"exported {args.export}")
    print(f"melody VAE: {time.perf_counter() - started:.0f} s in all")
    return 0
