"""SynVAE's objective: train an image VAE *through* a frozen melody model, without paired data.

Müller-Eberstein & van Noord's path, per image ``x``::

    x ─image encoder─► z ~ q(z|x) ─frozen melody decoder (straight-through)─► melody tokens
      ─frozen melody encoder─► z_heard ─image decoder─► x̂        loss: BCE(x̂, x) + β·KL(q(z|x) ‖ N(0, I))

The image latent *is* the melody latent: the KL keeps it where the melody decoder makes melodies, and the
reconstruction through the melody makes the melody carry the image. The melody decoder runs greedily,
feeding its one-hot token back step by step; gradients pass through the softmax of each step
(straight-through estimator, ``MelodyVAE.decode_relaxed``), so the forward pass is exactly the melody that
inference writes to MIDI. A direct reconstruction ``BCE(decode(z), x)`` (weight ``direct_weight``) teaches the
image decoder from the start. With ``class_weight`` > 0 a linear head on the latent adds a digit-class loss
(labels of the image data set only, as ``digits-fm``'s image VAE; melodies never see labels).

Writes ``<out>/<preset>/image_vae.pt``, whose metadata records the melody VAE's sha256 so it is never joined to
another melody model by mistake (:meth:`models.melody_pipeline.MelodyModels.from_paths`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import load_checkpoint
from models.errors import InputError, ParameterError
from models.image_vae import ImageVAE, reparameterize
from models.melody_vae import MelodyVAE
from training.loop import LoopSettings, resolve_device, save_trained, seed_everything, train_loop
from training.losses import kl_divergence
from training.presets import PresetSpec, preset_images

__all__ = ["SynVAESettings", "SYNVAE_SETTINGS", "SynVAEObjective", "frozen_melody_vae", "train_synvae"]


@dataclass(frozen=True)
class SynVAESettings:
    """The SynVAE run of one preset: steps, batch, Adam lr, KL weight, direct and class loss weights."""

    melody_vae: str = "models/presets/melodies/essen-2bar.pt"
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    beta: float = 1.0
    direct_weight: float = 0.5
    class_weight: float = 0.0
    temperature: float = 1.0


SYNVAE_SETTINGS: dict[str, SynVAESettings] = {
    # without the class loss: 0.958 through melody, P@10 0.75 on held-out digits after 3000 steps (0.964 without the
    # melody); with it (as digits-fm's image VAE): 0.975 and 0.85
    "digits-melody": SynVAESettings(class_weight=20.0),
}


def frozen_melody_vae(path: str | os.PathLike, device: torch.device) -> MelodyVAE:
    """The melody VAE at ``path``, in eval mode with gradients off for its weights (they still flow through it)."""
    if not Path(path).is_file():
        raise InputError(f"melody VAE {path} does not exist; train it first (imgsonic train melody-vae --export {path})")
    model = MelodyVAE.from_checkpoint(path).to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


class SynVAEObjective:
    """Reconstruction through the frozen melody model + direct reconstruction + β·KL (+ class loss)."""

    def __init__(self, model: ImageVAE, melody: MelodyVAE, *, settings: SynVAESettings, n_classes: int,
                 checkpoint: Path, metadata: dict, device: torch.device) -> None:
        if model.config.latent_dim != melody.config.latent_dim:
            raise ParameterError(f"image latent_dim {model.config.latent_dim} ≠ melody latent_dim "
                                 f"{melody.config.latent_dim}; SynVAE needs them equal")
        self.model, self.melody, self.settings = model, melody, settings
        self.checkpoint, self.metadata = checkpoint, metadata
        self.modules: dict[str, nn.Module] = {"vae": model}
        parameters = list(model.parameters())
        self.class_head = None
        if settings.class_weight > 0 and n_classes:
            self.class_head = nn.Linear(model.config.latent_dim, n_classes).to(device)
            self.modules["class_head"] = self.class_head
            parameters += list(self.class_head.parameters())
        self.optimizers = {"vae": torch.optim.Adam(parameters, lr=settings.lr)}

    def losses(self, step: int, batch: dict, generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        x, labels = batch["images"] if isinstance(batch["images"], tuple) else (batch["images"], None)
        s = self.settings
        mu, logvar = self.model.encode(x)
        z = reparameterize(mu, logvar, generator=None)
        tokens = self.melody.decode_relaxed(z, temperature=s.temperature, hard=True, noise=False)
        heard, _ = self.melody.encode(tokens)

        def bce(logits: Tensor) -> Tensor:
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()

        through = bce(self.model.decode_logits(heard))
        direct = bce(self.model.decode_logits(z))
        kl = kl_divergence(mu, logvar)
        loss = through + s.direct_weight * direct + s.beta * kl
        logs = {"loss": loss.item(), "through": through.item(), "direct": direct.item(), "kl": kl.item(),
                "z_err": (heard - z).pow(2).sum(1).mean().item()}
        if self.class_head is not None and labels is not None:
            classes = F.cross_entropy(self.class_head(mu), labels)
            loss = loss + s.class_weight * classes
            logs["class"] = classes.item()
        return {"vae": loss}, logs

    def save(self, step: int) -> None:
        self.model.save(self.checkpoint, metadata={**self.metadata, "steps": step})


def train_synvae(spec: PresetSpec, *, out_dir: str | os.PathLike, steps: int | None = None, device: str = "cpu",
                 images: Tensor | None = None, resume: bool = False, progress: bool = True, checkpoint_every: int = 500,
                 melody_vae: str | os.PathLike | None = None, settings: SynVAESettings | None = None,
                 **_: object) -> tuple[Path, dict[str, float]]:
    """Train ``spec``'s image VAE through the frozen melody VAE; writes ``<out_dir>/image_vae.pt``.

    Returns its path and held-out figures: reconstruction error direct and through the melody (BCE per image),
    and the share of test images whose melody is unique.
    """
    settings = settings or SYNVAE_SETTINGS[spec.name]
    melody_path = Path(melody_vae or settings.melody_vae)
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    seed_everything(spec.seed)
    melody = frozen_melody_vae(melody_path, torch_device)
    labels = None
    if images is None:
        images, labels = preset_images(spec, split="train")
    model = ImageVAE(spec.image_vae).to(torch_device)
    checkpoint = out_dir / "image_vae.pt"
    total_steps = steps or settings.steps
    metadata = {"objective": "SynVAE: reconstruction through the frozen melody VAE (straight-through greedy decoding)",
                "data": f"{len(images)} images (preset {spec.name})", "settings": asdict(settings),
                "melody_vae": str(melody_path), "melody_vae_sha256": load_checkpoint(melody_path, kind="melody_vae")["sha256"],
                "seed": spec.seed, "command": " ".join(sys.argv)}
    n_classes = int(labels.max()) + 1 if labels is not None else 0
    objective = SynVAEObjective(model, melody, settings=settings, n_classes=n_classes, checkpoint=checkpoint,
                                metadata=metadata, device=torch_device)
    data = {"images": (images, labels) if labels is not None and settings.class_weight > 0 else images}
    loop_settings = LoopSettings(name="image_vae", steps=total_steps, batch_size=settings.batch_size, out_dir=out_dir,
                                 seed=spec.seed, device=str(torch_device), checkpoint_every=checkpoint_every,
                                 resume=resume, progress=progress)
    result = train_loop(objective, data, loop_settings)
    test_images, _ = preset_images(spec, split="test")
    metrics = evaluate_synvae(model.cpu().eval(), melody.cpu(), test_images)
    return checkpoint, save_trained(model, checkpoint, kind="image VAE (SynVAE)", result=result, metrics=metrics,
                                    metadata=metadata)


@torch.no_grad()
def evaluate_synvae(model: ImageVAE, melody: MelodyVAE, images: Tensor) -> dict[str, float]:
    """Held-out BCE per image, direct and through the melody (greedy decoding), and the share of unique melodies."""
    mu, _ = model.encode(images)
    tokens = melody.decode(mu)
    heard, _ = melody.encode(tokens)

    def bce(logits: Tensor) -> float:
        return float(F.binary_cross_entropy_with_logits(logits, images, reduction="none").flatten(1).sum(1).mean())

    return {"bce_direct": bce(model.decode_logits(mu)), "bce_through_melody": bce(model.decode_logits(heard)),
            "unique_melodies": len({tuple(row) for row in tokens.tolist()}) / len(tokens)}
