"""Train a preset's image VAE (β-VAE, or FactorVAE when the preset's ``image_tc_gamma`` > 0).

Run as ``imgsonic train image-vae --preset NAME`` or, data-parallel, as
``torchrun --nproc_per_node 2 -m bridge train image-vae --preset NAME``.
Writes ``<out>/<preset>/image_vae.pt``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from models.errors import ParameterError
from models.image_vae import ImageVAE, reparameterize
from training.loop import LoopSettings, is_main_process, resolve_device, save_trained, seed_everything, train_loop
from training.datasets import near_copies
from training.losses import (TCDiscriminator, discriminator_loss, factor_loss, permute_dims, pooled_level_loss,
                             spread_loss, tc_estimate, vae_loss)
from training.presets import PresetSpec, TrainSettings, preset_images

__all__ = ["VAEObjective", "standardize", "train_image_vae", "evaluate_vae", "latent_statistics"]


def standardize(factors: Tensor) -> Tensor:
    """Each column of ``(n, F)`` shifted and scaled to zero mean and unit spread (the latent prior's scale)."""
    return (factors - factors.mean(0)) / factors.std(0).clamp_min(1e-8)


class VAEObjective:
    """β-VAE or FactorVAE objective for either VAE (both expose ``encode`` and ``decode_logits``).

    Losses per step: ``"vae"`` = reconstruction + β·KL + γ·TC, and with γ > 0 ``"discriminator"``, trained on
    the same batch's detached latents against their dimension-wise permutation. With ``n_classes`` and
    ``class_weight`` > 0 the batch is ``(x, labels)`` and a linear head on ``mu`` adds ``class_weight`` × its
    cross-entropy: latents of different classes move apart (the head is training-only, never saved).

    Two options for the audio VAE (see ``PresetSpec``): with ``factor_weight`` > 0 the batch is ``(x, factors)``
    with standardised float factors, and ``factor_weight`` × :func:`~training.losses.factor_loss` ties latent
    dim ``k`` to factor ``k`` — deliberate weak supervision *inside one modality* (the synth's own parameters,
    as the class labels above are the image set's own); the mapper never sees it. Those dims of the encoder
    learn from the factors (and the KL) only, and the decoder is trained on the true factors there: it learns
    the synth's own (pitch, loudness) → mel map. With ``level_weight`` > 0 and ``db_range`` = (floor, ceiling), ``level_weight`` × :func:`~training.losses.pooled_level_loss` makes
    the decoder keep the level of each sound's loud bands, which the per-value reconstruction loss lets it blur.
    With ``spread_weight`` > 0 (images only) each batch image gets a near copy
    (:func:`~training.datasets.near_copies`) and ``spread_weight`` × :func:`~training.losses.spread_loss` keeps
    the two as far apart in the latent, per unit of pixel distance, as the batch's images are on average.
    """

    def __init__(self, model: nn.Module, *, beta: float, tc_gamma: float, lr: float, checkpoint: Path,
                 metadata: dict, device: torch.device, n_classes: int = 0, class_weight: float = 0.0,
                 factor_weight: float = 0.0, level_weight: float = 0.0,
                 db_range: tuple[float, float] | None = None, spread_weight: float = 0.0) -> None:
        if level_weight > 0 and db_range is None:
            raise ParameterError(f"level_weight={level_weight} needs db_range=(db_floor, db_ceiling)")
        self.model = model
        self.beta = beta
        self.tc_gamma = tc_gamma
        self.checkpoint = checkpoint
        self.metadata = metadata
        self.class_weight = class_weight if n_classes else 0.0
        self.factor_weight = factor_weight
        self.level_weight = level_weight
        self.db_range = db_range
        self.spread_weight = spread_weight
        self.modules: dict[str, nn.Module] = {"vae": model}
        parameters = list(model.parameters())
        if self.class_weight > 0:
            self.class_head = nn.Linear(model.config.latent_dim, n_classes).to(device)
            self.modules["class_head"] = self.class_head
            parameters += list(self.class_head.parameters())
        self.optimizers: dict[str, torch.optim.Optimizer] = {"vae": torch.optim.Adam(parameters, lr=lr)}
        if tc_gamma > 0:
            self.discriminator = TCDiscriminator(model.config.latent_dim).to(device)
            self.modules["discriminator"] = self.discriminator
            self.optimizers["discriminator"] = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.9))

    def losses(self, step: int, batch: dict[str, Tensor], generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        x, labels = batch["x"] if isinstance(batch["x"], tuple) else (batch["x"], None)
        mu, logvar = self.model.encode(x)
        z = reparameterize(mu, logvar)
        if self.factor_weight > 0:
            # the decoder reads the true factors in the supervised dims, and reconstruction does not reach the
            # encoder through them: otherwise it smuggles other details (a tone's offset between mel bands) into
            # the loudness dim, and the decoded loudness follows pitch
            n_factors = labels.shape[1]
            z = torch.cat([labels, z[:, n_factors:]], 1)
        logits = self.model.decode_logits(z)
        loss, reconstruction, kl = vae_loss(logits, x, mu, logvar, beta=self.beta)
        logs = {"recon": reconstruction.item(), "kl": kl.item()}
        losses = {"vae": loss}
        if self.class_weight > 0:
            class_loss = nn.functional.cross_entropy(self.class_head(mu), labels)
            losses["vae"] = losses["vae"] + self.class_weight * class_loss
            logs["class"] = class_loss.item()
        if self.factor_weight > 0:
            supervised = factor_loss(mu, labels)
            losses["vae"] = losses["vae"] + self.factor_weight * supervised
            logs["factor"] = supervised.item()
        if self.level_weight > 0:
            floor, ceiling = self.db_range
            level = pooled_level_loss(torch.sigmoid(logits), x, db_floor=floor, db_ceiling=ceiling)
            losses["vae"] = losses["vae"] + self.level_weight * level
            logs["level_db"] = level.sqrt().item()
        if self.spread_weight > 0:
            x_near = near_copies(x, generator=generator)
            spread = spread_loss(mu, self.model.encode(x_near)[0], x, x_near)
            losses["vae"] = losses["vae"] + self.spread_weight * spread
            logs["spread"] = spread.item()
        if self.tc_gamma > 0:
            tc = tc_estimate(self.discriminator, z)
            losses["vae"] = losses["vae"] + self.tc_gamma * tc
            z_detached = z.detach()
            losses["discriminator"] = discriminator_loss(self.discriminator, z_detached, permute_dims(z_detached, generator=generator))
            logs["tc"] = tc.item()
        return losses, logs

    def save(self, step: int) -> None:
        self.model.save(self.checkpoint, metadata={**self.metadata, "steps": step})


@torch.no_grad()
def evaluate_vae(model: nn.Module, data: Tensor, *, batch_size: int = 512) -> dict[str, float]:
    """Mean per-example BCE reconstruction (decoding ``mu``) and KL over ``data``; model in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = {"recon": 0.0, "kl": 0.0, "mse": 0.0}
    for start in range(0, len(data), batch_size):
        x = data[start : start + batch_size].to(device)
        mu, logvar = model.encode(x)
        logits = model.decode_logits(mu)
        _, reconstruction, kl = vae_loss(logits, x, mu, logvar, beta=1.0)
        totals["recon"] += reconstruction.item() * len(x)
        totals["kl"] += kl.item() * len(x)
        totals["mse"] += float((torch.sigmoid(logits) - x).pow(2).mean()) * len(x)
    model.train(was_training)
    return {key: value / len(data) for key, value in totals.items()}


@torch.no_grad()
def latent_statistics(model: nn.Module, data: Tensor, *, batch_size: int = 512) -> dict[str, list[float] | int]:
    """Per-dimension ``mean``, ``std``, ``min`` and ``max`` of the encoder's means over ``data``, and ``n``.

    Saved in the checkpoint's metadata as ``latent_stats``: the live engine's latent range follows them
    (:mod:`bridge.control.latent_range`), since real latents spread far wider than the N(0, 1) prior.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    mu = torch.cat([model.encode(data[start : start + batch_size].to(device))[0].cpu()
                    for start in range(0, len(data), batch_size)]).double()
    model.train(was_training)
    return {"mean": mu.mean(0).tolist(), "std": mu.std(0, correction=0).tolist(), "min": mu.min(0).values.tolist(),
            "max": mu.max(0).values.tolist(), "n": len(mu)}


def run_vae_training(
    model: nn.Module,
    *,
    kind: str,
    train_data: Tensor,
    test_data: Tensor,
    settings: TrainSettings,
    beta: float,
    tc_gamma: float,
    out_dir: Path,
    data_description: str,
    train_labels: Tensor | None = None,
    class_weight: float = 0.0,
    train_factors: Tensor | None = None,
    factor_weight: float = 0.0,
    level_weight: float = 0.0,
    db_range: tuple[float, float] | None = None,
    spread_weight: float = 0.0,
    steps: int | None,
    device: torch.device,
    seed: int,
    resume: bool,
    progress: bool,
    checkpoint_every: int,
) -> tuple[Path, dict[str, float]]:
    """Shared by both VAE scripts: train, then evaluate on ``test_data`` and rewrite the checkpoint with metrics.

    ``train_labels`` (int classes, used with ``class_weight``) or ``train_factors`` (standardised floats
    ``(n, F)``, used with ``factor_weight``) ride along with ``train_data``; see :class:`VAEObjective`.
    """
    checkpoint = out_dir / f"{kind}.pt"
    total_steps = steps or settings.steps
    metadata = {"data": data_description, "batch_size": settings.batch_size, "lr": settings.lr, "beta": beta,
                "tc_gamma": tc_gamma, "seed": seed, "command": " ".join(sys.argv)}
    n_classes = int(train_labels.max()) + 1 if train_labels is not None and class_weight > 0 else 0
    if n_classes:
        metadata["class_weight"] = class_weight
    if factor_weight > 0:
        if train_factors is None:
            raise ParameterError(f"factor_weight={factor_weight} but these training data have no factors")
        metadata["factor_weight"] = factor_weight
    if level_weight > 0:
        metadata["level_weight"] = level_weight
    if spread_weight > 0:
        metadata["spread_weight"] = spread_weight
    objective = VAEObjective(model, beta=beta, tc_gamma=tc_gamma, lr=settings.lr, checkpoint=checkpoint,
                             metadata=metadata, device=device, n_classes=n_classes, class_weight=class_weight,
                             factor_weight=factor_weight, level_weight=level_weight, db_range=db_range,
                             spread_weight=spread_weight)
    side = train_labels if n_classes else train_factors if factor_weight > 0 else None
    loop_settings = LoopSettings(name=kind, steps=total_steps, batch_size=settings.batch_size, out_dir=out_dir,
                                 seed=seed, device=str(device), checkpoint_every=checkpoint_every, resume=resume,
                                 progress=progress)
    result = train_loop(objective, {"x": train_data if side is None else (train_data, side)}, loop_settings)
    if getattr(model.config, "n_descriptors", 0):  # learned dims beside descriptor dims: both at unit spread
        metadata["learned_scale"] = model.standardise_learned_dims(train_data.to(device)).tolist()
    metrics = {f"test_{key}": value for key, value in evaluate_vae(model, test_data).items()}
    return checkpoint, save_trained(model, checkpoint, kind=kind, result=result, metrics=metrics, metadata=metadata,
                                    more_metadata=lambda: {"latent_stats": latent_statistics(model, train_data)})


def train_image_vae(
    spec: PresetSpec,
    *,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    device: str = "cpu",
    images: Tensor | None = None,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 500,
    n_examples: int | None = None,
) -> tuple[Path, dict[str, float]]:
    """Train ``spec``'s image VAE and write ``<out_dir>/image_vae.pt``; returns its path and test metrics.

    ``images`` ``(n, C, size, size)`` replaces the preset's data (e.g. from ``--images DIR``): 10 % of them
    are held out for the metrics. ``n_examples`` shrinks generated data sets (tests). With
    ``spec.image_factor_weight`` > 0 the generating factors of synthetic images (squares: x, y) weakly supervise
    the first latent dims (see :class:`VAEObjective`).
    """
    torch_device = resolve_device(device)
    seed_everything(spec.seed)
    labels = train_factors = None
    if images is None:
        train_data, factors = preset_images(spec, split="train", n=n_examples)
        labels = factors if factors is not None and factors.dtype == torch.long else None
        if factors is not None and factors.is_floating_point() and spec.image_factor_weight > 0:
            train_factors = standardize(factors)
        test_data, _ = preset_images(spec, split="test", n=min(2000, n_examples or 2000))
        description = f"{spec.image_data} (preset {spec.name})"
    else:
        n_test = max(1, len(images) // 10)
        train_data, test_data = images[n_test:] if len(images) > 1 else images, images[:n_test]
        description = f"{len(images)} user images"
    model = ImageVAE(spec.image_vae).to(torch_device)
    if spec.image_vae.n_descriptors:  # the descriptor dims are standardised by the training images
        model.set_descriptor_stats(train_data.to(torch_device))
    started = time.perf_counter()
    result = run_vae_training(model, kind="image_vae", train_data=train_data, test_data=test_data,
                              settings=spec.image_training, beta=spec.image_beta, tc_gamma=spec.image_tc_gamma,
                              out_dir=Path(out_dir), data_description=description, train_labels=labels,
                              class_weight=spec.image_class_weight, train_factors=train_factors,
                              factor_weight=spec.image_factor_weight if train_factors is not None else 0.0,
                              spread_weight=spec.image_spread_weight, steps=steps, device=torch_device,
                              seed=spec.seed, resume=resume, progress=progress, checkpoint_every=checkpoint_every)
    if is_main_process():
        print(f"image_vae: {time.perf_counter() - started:.0f} s including data")
    return result
