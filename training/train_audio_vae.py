"""Train a preset's audio VAE on normalised log-mel windows (β-VAE, or FactorVAE when ``audio_tc_gamma`` > 0).

Run as ``imgsonic train audio-vae --preset NAME`` or
``torchrun --nproc_per_node 2 -m bridge train audio-vae --preset NAME``. Writes ``<out>/<preset>/audio_vae.pt``;
the preset's spectral config travels inside it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from torch import Tensor

from models.audio_vae import AudioVAE
from training.loop import is_main_process, resolve_device, seed_everything
from training.presets import PresetSpec, preset_sounds
from training.train_image_vae import run_vae_training, standardize

__all__ = ["train_audio_vae"]


def train_audio_vae(
    spec: PresetSpec,
    *,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    device: str = "cpu",
    mels: Tensor | None = None,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 500,
    n_examples: int | None = None,
) -> tuple[Path, dict[str, float]]:
    """Train ``spec``'s audio VAE and write ``<out_dir>/audio_vae.pt``; returns its path and test metrics.

    ``mels`` ``(n, n_mels, n_frames)`` in [0, 1] replaces the preset's sounds (e.g. from ``--sounds DIR``,
    computed with ``spec.spectral``); 10 % are held out for the metrics. With ``spec.audio_factor_weight`` > 0
    the preset's synth parameters (sines: pitch, loudness) weakly supervise the first latent dims; user sounds
    have none, so they train unsupervised.
    """
    torch_device = resolve_device(device)
    seed_everything(spec.seed + 1)
    factors = None
    if mels is None:
        train_data, factors = preset_sounds(spec, split="train", n=n_examples)
        test_data, _ = preset_sounds(spec, split="test", n=min(2000, n_examples or 2000))
        description = f"{spec.sound_data} (preset {spec.name})"
    else:
        n_test = max(1, len(mels) // 10)
        train_data, test_data = mels[n_test:] if len(mels) > 1 else mels, mels[:n_test]
        description = f"{len(mels)} mel windows from user sounds"
    model = AudioVAE(spec.audio_vae).to(torch_device)
    started = time.perf_counter()
    result = run_vae_training(model, kind="audio_vae", train_data=train_data, test_data=test_data,
                              settings=spec.audio_training, beta=spec.audio_beta, tc_gamma=spec.audio_tc_gamma,
                              out_dir=Path(out_dir), data_description=description, steps=steps, device=torch_device,
                              train_factors=None if factors is None else standardize(factors),
                              factor_weight=spec.audio_factor_weight if factors is not None else 0.0,
                              level_weight=spec.audio_level_weight,
                              db_range=(spec.spectral.db_floor, spec.spectral.db_ceiling),
                              seed=spec.seed + 1, resume=resume, progress=progress, checkpoint_every=checkpoint_every)
    if is_main_process():
        print(f"audio_vae: {time.perf_counter() - started:.0f} s including data")
    return result
