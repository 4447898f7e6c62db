"""The unpaired alternative to SynVAE: a latent mapper between a frozen image VAE and the frozen melody VAE.

The project's mapper objective (``training.train_mapper.MapperObjective``: locality, prior matching, cycles)
with the melody VAE in the audio VAE's place. The melody "decoder" in the cycle is the melody VAE's greedy
decoding with straight-through gradients (:meth:`models.melody_vae.MelodyVAE.decode_relaxed`), so the cycle
image → mapper → melody → melody encoder → inverse mapper ≈ image sees the melody inference writes. No
image is ever paired with a melody: the image latents come from the preset's images, the melody latents
from Essen phrases.

Run as ``imgsonic train melody-mapper --preset NAME [--image-vae PT] [--melody-vae PT]``; the image VAE
defaults to the shipped preset's, so retraining against a new image VAE is
``imgsonic train melody-mapper --preset default --image-vae runs/presets/default/image_vae.pt``. Writes
``<out>/<preset>/melody_mapper.pt``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from models.checkpoint import load_checkpoint
from models.image_vae import ImageVAE
from models.mapper import LatentMapper, LatentMapperConfig
from models.melody_vae import MelodyVAE
from training.loop import LoopSettings, resolve_device, save_trained, seed_everything, train_loop
from training.losses import LatentStats
from training.melody_data import make_melody_phrases
from training.presets import MapperWeights, PresetSpec, preset_images
from training.train_mapper import MapperObjective, encode_all, evaluate_mapper
from training.train_synvae import frozen_melody_vae

__all__ = ["MelodyMapperSettings", "MELODY_MAPPERS", "MelodyAsAudio", "train_melody_mapper"]

DEFAULT_MELODY_VAE = "models/presets/melodies/essen-2bar.pt"


@dataclass(frozen=True)
class MelodyMapperSettings:
    """One preset's melody mapper: steps, batch, Adam lr, width and the mapper objective's weights."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    hidden_width: int = 128
    depth: int = 2
    n_examples: int = 4000
    weights: MapperWeights = MapperWeights(locality_kind="distance")


MELODY_MAPPERS: dict[str, MelodyMapperSettings] = {
    "digits-fm": MelodyMapperSettings(),
    "default": MelodyMapperSettings(weights=MapperWeights(locality_kind="log_distance")),
}


class MelodyAsAudio(nn.Module):
    """The melody VAE behind the audio VAE's interface the mapper objective calls: ``encode`` and ``decode``.

    ``decode(z)`` is greedy decoding as one-hot tokens ``(B, n_steps, vocab)`` with straight-through gradients;
    ``encode`` takes those (or token indices) and returns ``(mu, logvar)``.
    """

    def __init__(self, melody: MelodyVAE) -> None:
        super().__init__()
        self.melody = melody
        self.config = melody.config

    def encode(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        return self.melody.encode(tokens)

    def decode(self, z: Tensor) -> Tensor:
        return self.melody.decode_relaxed(z, hard=True, noise=False)


def train_melody_mapper(spec: PresetSpec, *, out_dir: str | os.PathLike, image_vae: str | os.PathLike,
                        melody_vae: str | os.PathLike = DEFAULT_MELODY_VAE, steps: int | None = None,
                        device: str = "cpu", resume: bool = False, progress: bool = True, checkpoint_every: int = 500,
                        images: Tensor | None = None, settings: MelodyMapperSettings | None = None,
                        **_: object) -> tuple[Path, dict[str, float]]:
    """Train the mapper between ``image_vae`` and ``melody_vae``; writes ``<out_dir>/melody_mapper.pt``."""
    settings = settings or MELODY_MAPPERS[spec.name]
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    seed_everything(spec.seed + 3)
    image_model = frozen(ImageVAE.from_checkpoint(image_vae).to(torch_device))
    melody = frozen_melody_vae(melody_vae, torch_device)
    if images is None:
        images, _ = preset_images(spec, split="train", n=settings.n_examples)
    phrases, _ = make_melody_phrases(config=melody.config, split="train")
    with torch.no_grad():
        z_img = encode_all(image_model.encode, images, device=torch_device)
        z_mel = encode_all(melody.encode, phrases, device=torch_device)
    n_test = max(1, min(len(z_img), len(z_mel)) // 10)
    image_stats = LatentStats(z_img[n_test:]).to(torch_device)
    melody_stats = LatentStats(z_mel[n_test:]).to(torch_device)
    mapper = LatentMapper(LatentMapperConfig(image_latent_dim=image_model.config.latent_dim,
                                             audio_latent_dim=melody.config.latent_dim,
                                             hidden_width=settings.hidden_width, depth=settings.depth)).to(torch_device)
    total_steps = steps or settings.steps
    # own folders can hold fewer images than a batch: both sides of a batch must hold as many points (the sliced
    # Wasserstein term compares sorted projections), so the batch shrinks to the smaller training set
    batch_size = min(settings.batch_size, len(z_img) - n_test, len(z_mel) - n_test)
    checkpoint = out_dir / "melody_mapper.pt"
    metadata = {"data": f"latents of {len(z_img)} images (preset {spec.name}) and {len(z_mel)} Essen phrases",
                "image_vae": str(image_vae), "image_vae_sha256": load_checkpoint(image_vae, kind="image_vae")["sha256"],
                "melody_vae": str(melody_vae), "melody_vae_sha256": load_checkpoint(melody_vae, kind="melody_vae")["sha256"],
                "batch_size": batch_size, "lr": settings.lr, "weights": vars(settings.weights),
                "command": " ".join(sys.argv)}
    adapter = MelodyAsAudio(melody)
    objective = MapperObjective(mapper, image_model, adapter, image_stats=image_stats, audio_stats=melody_stats,
                                weights=settings.weights, steps=total_steps, lr=settings.lr, checkpoint=checkpoint,
                                metadata=metadata)
    loop_settings = LoopSettings(name="melody_mapper", steps=total_steps, batch_size=batch_size,
                                 out_dir=out_dir, seed=spec.seed + 3, device=str(torch_device),
                                 checkpoint_every=checkpoint_every, resume=resume, progress=progress)
    result = train_loop(objective, {"image": z_img[n_test:], "audio": z_mel[n_test:]}, loop_settings)
    with torch.no_grad():
        metrics = evaluate_mapper(mapper, image_model, adapter, z_img[:n_test], z_mel[:n_test],
                                  image_stats=image_stats, audio_stats=melody_stats)
        tokens = melody.decode(mapper(z_img[:n_test].to(torch_device)))
    metrics["unique_melodies"] = len({tuple(row) for row in tokens.tolist()}) / len(tokens)
    return checkpoint, save_trained(mapper, checkpoint, kind="melody mapper", result=result, metrics=metrics,
                                    metadata={**metadata, "locality": objective.locality_kind})


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with gradients off for its weights."""
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model.eval()
