"""Train a preset's latent mapper between its (frozen) image and audio VAEs, without paired data.

The objective, in stages (weights and stage boundaries in ``PresetSpec.mapper_weights``):

* **locality** from the start: per axis (mapped ≈ source, dim by dim) when the latent sizes match, otherwise
  pairwise-distance preservation; latents are compared after normalising each model's latents per dim by
  their data mean and spread, so the two spaces' extents match; "log_distance" preserves distance ratios, and
  the optional "near" term keeps near-duplicate images (each training image and a slightly changed copy,
  :func:`training.datasets.near_copies`) from being squeezed into the same sound;
* **prior matching** throughout: sliced Wasserstein between mapped image latents and real audio latents (and
  the inverse direction against real image latents);
* **cycle consistency**, ramped in: image → mapper → audio decoder → mel → audio encoder → inverse mapper ≈ the
  image latent, and audio → inverse → image decoder → image → image encoder → mapper ≈ the audio latent; plus
  the re-encoded mel ≈ the mapped latent (the mapped latent decodes to a sound the audio model recognises)
  and the direct cycles inverse(forward(z)) ≈ z (the image round trip is skipped while its weight is 0);
* **sound locality** (with ``sound_locality`` / ``sound_local``): image-descriptor distances (:class:`DescriptorTarget`)
  ≈ distances between MFCC statistics of the decoded sounds (over the model's bands, or as the rendered file's with
  ``sound_kind="file"``), over the batch and within neighbourhoods of similar images;
* **inverse fit** (``inverse_fit``): the inverse alone learns to undo the forward map, for objectives without
  cycle terms (``default``).

Run as ``imgsonic train mapper --preset NAME`` after both VAEs. Writes ``<out>/<preset>/mapper.pt``.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from models.audio_vae import AudioVAE
from models.errors import InputError, ParameterError
from models.image_vae import ImageVAE
from models.mapper import LatentMapper
from training.datasets import near_copies
from training.loop import LoopSettings, resolve_device, save_trained, seed_everything, train_loop
from training.losses import (FileCepstra, LatentStats, distance_loss, locality_loss, log_distance_loss, ramp,
                             sliced_wasserstein, sound_features)
from training.presets import MapperWeights, PresetSpec, preset_images, preset_sounds

__all__ = ["MapperObjective", "encode_all", "train_mapper", "evaluate_mapper"]


@torch.no_grad()
def encode_all(encode, data: Tensor, *, device: torch.device, batch_size: int = 512) -> Tensor:
    """``mu`` of every example, ``(n, latent_dim)`` on the CPU."""
    return torch.cat([encode(data[i : i + batch_size].to(device))[0].cpu() for i in range(0, len(data), batch_size)])


FLAT_CONTRAST = 0.05  # mean RGB spread (0…0.5) at which ``flat_colour``'s boost has fallen to 1/e of its full


class DescriptorTarget:
    """What the sound terms keep the distances of: the image latent's descriptor dims (standardised by the image
    VAE), each group of :data:`models.image_descriptors.DESCRIPTOR_GROUPS` weighing the same times its
    ``MapperWeights.group_emphasis``; for the current descriptor set, also the strengths of the edge orientation
    and of the fourfold term (the moduli of their harmonics), each
    weighted ``MapperWeights.edge_strength`` / √2 (:meth:`fit` sets their standardisation from training latents).

    The strengths do not turn with the image: stripes at any angle share a strong one, checkers and dots a weak
    one. With the angles alone, stripes at unlike angles lie as far apart as stripes and checkers.

    With ``MapperWeights.flat_colour`` > 0 the R, G and B means of an image weigh ``1 + flat_colour ·
    exp(−contrast / FLAT_CONTRAST)`` times (contrast: the mean of the R, G and B spreads): a flat field has
    nothing but its colour to tell, and two flat fields a few levels apart must still sound apart.
    """

    def __init__(self, image_vae: ImageVAE, weights: MapperWeights) -> None:
        from models.image_descriptors import DESCRIPTOR_GROUPS, DESCRIPTOR_SETS, group_weights

        n = image_vae.config.n_descriptors
        names = DESCRIPTOR_SETS[n]
        emphasis = dict(zip(DESCRIPTOR_GROUPS, weights.group_emphasis))
        group_of = {name: group for group, members in DESCRIPTOR_GROUPS.items() for name in members}
        device = image_vae.descriptor_mean.device
        self.n = n
        self.weights = (group_weights(n) * torch.tensor([emphasis[group_of[name]] for name in names])).to(device)
        self.mean, self.std = image_vae.descriptor_mean, image_vae.descriptor_std
        self.strength_weight = weights.edge_strength / math.sqrt(2.0)
        self.flat_colour = weights.flat_colour
        self.colour_means = [names.index(name) for name in ("red_mean", "green_mean", "blue_mean") if name in names]
        self.colour_spreads = [names.index(name) for name in ("red_std", "green_std", "blue_std") if name in names]
        self.harmonics = None
        if self.strength_weight > 0 and "edge_cos" in names:
            self.harmonics = [[names.index(a), names.index(b)] for a, b in
                              (("edge_cos", "edge_sin"), ("edge_fourfold_cos", "edge_fourfold_sin"))]
            self.strength_mean = self.strength_std = None

    def fit(self, z_img: Tensor) -> "DescriptorTarget":
        """Set the strengths' standardisation from training latents ``(N, image_latent_dim)``."""
        if self.harmonics is not None:
            strengths = self._strengths(self._raw(z_img))
            self.strength_mean, self.strength_std = strengths.mean(dim=0), strengths.std(dim=0).clamp_min(1e-3)
        return self

    def _raw(self, z_img: Tensor) -> Tensor:
        """The descriptors in their own units (the image VAE's standardisation undone)."""
        return z_img[:, -self.n :] * self.std + self.mean

    def _strengths(self, raw: Tensor) -> Tensor:
        return torch.stack([torch.hypot(raw[:, a], raw[:, b]) for a, b in self.harmonics], dim=1)

    def __call__(self, z_img: Tensor) -> Tensor:
        target = z_img[:, -self.n :] * self.weights
        raw = self._raw(z_img)
        if self.flat_colour > 0 and self.colour_means and self.colour_spreads:
            contrast = raw[:, self.colour_spreads].clamp_min(0.0).mean(dim=1, keepdim=True)
            boost = torch.ones_like(target)
            boost[:, self.colour_means] = 1.0 + self.flat_colour * torch.exp(-contrast / FLAT_CONTRAST)
            target = target * boost
        if self.harmonics is None:
            return target
        if self.strength_mean is None:
            raise ParameterError("DescriptorTarget: call fit() with training latents before using the edge strengths")
        strengths = (self._strengths(raw) - self.strength_mean) / self.strength_std
        return torch.cat([target, strengths * self.strength_weight], dim=1)


class MapperObjective:
    """The staged mapper objective (see the module docstring); one optimiser, one loss ``"mapper"``."""

    def __init__(self, mapper: LatentMapper, image_vae: ImageVAE, audio_vae: AudioVAE, *, image_stats: LatentStats,
                 audio_stats: LatentStats, weights: MapperWeights, steps: int, lr: float, checkpoint: Path,
                 metadata: dict) -> None:
        self.mapper, self.image_vae, self.audio_vae = mapper, image_vae, audio_vae
        self.image_stats, self.audio_stats = image_stats, audio_stats
        self.weights = weights
        self.steps = steps
        self.checkpoint = checkpoint
        self.metadata = metadata
        kind = weights.locality_kind
        if kind == "auto":
            kind = "axis" if mapper.config.image_latent_dim == mapper.config.audio_latent_dim else "distance"
        losses = {"axis": locality_loss, "distance": distance_loss, "log_distance": log_distance_loss}
        if kind not in losses:
            raise ParameterError(
                f"locality_kind={weights.locality_kind!r}; expected 'axis', 'distance', 'log_distance' or 'auto'"
            )
        self.locality = losses[kind]
        self.locality_kind = kind
        # distance ratios: the structure within a group of similar images (photos) counts as much as the gaps
        # between groups (photos vs textures), which plain distances let dominate
        self.sound_loss = log_distance_loss
        sound_kinds = {"model": lambda: sound_features, "file": lambda: FileCepstra(audio_vae.config.spectral,
                                                                       spread_weight=weights.spread_weight)}
        if weights.sound_kind not in sound_kinds:
            raise ParameterError(f"sound_kind={weights.sound_kind!r}; expected 'model' or 'file'")
        self.sound_features = sound_kinds[weights.sound_kind]()
        self.descriptor_target = None
        if image_vae.config.n_descriptors:
            self.descriptor_target = DescriptorTarget(image_vae, weights)
        self.modules: dict[str, nn.Module] = {"mapper": mapper}
        self.optimizers: dict[str, torch.optim.Optimizer] = {"mapper": torch.optim.Adam(mapper.parameters(), lr=lr)}

    def losses(self, step: int, batch: dict[str, Tensor], generator: torch.Generator) -> tuple[dict[str, Tensor], dict[str, float]]:
        w = self.weights
        norm_i, norm_a = self.image_stats.normalize, self.audio_stats.normalize
        z_img, z_aud = batch["image"], batch["audio"]
        z_near = None
        if isinstance(z_img, tuple):
            z_img, z_near = z_img
        mapped = self.mapper(z_img)
        inverted = self.mapper.inverse(z_aud)

        locality = self.locality(norm_i(z_img), norm_a(mapped)) + self.locality(norm_a(z_aud), norm_i(inverted))
        prior = (sliced_wasserstein(norm_a(mapped), norm_a(z_aud), generator=generator)
                 + sliced_wasserstein(norm_i(inverted), norm_i(z_img), generator=generator))
        direct = ((norm_i(self.mapper.inverse(mapped)) - norm_i(z_img)).pow(2).sum(1).mean()
                  + (norm_a(self.mapper(inverted)) - norm_a(z_aud)).pow(2).sum(1).mean())

        decoded = self.audio_vae.decode(mapped)
        re_encoded_audio = self.audio_vae.encode(decoded)[0]
        cycle_weight = w.cycle * ramp(step / self.steps, start=w.cycle_start, full=w.cycle_full)
        cycle = torch.zeros((), device=mapped.device)
        if cycle_weight > 0:  # the image round trip is most of a step's time: skipped while it does not count
            re_encoded_image = self.image_vae.encode(self.image_vae.decode(inverted))[0]
            cycle = ((norm_i(self.mapper.inverse(re_encoded_audio)) - norm_i(z_img)).pow(2).sum(1).mean()
                     + (norm_a(self.mapper(re_encoded_image)) - norm_a(z_aud)).pow(2).sum(1).mean()
                     + (norm_a(re_encoded_audio) - norm_a(mapped)).pow(2).sum(1).mean())

        loss = w.locality * locality + w.prior * prior + w.direct_cycle * direct + cycle_weight * cycle
        logs = {"loss": loss.item(), "locality": locality.item(), "prior": prior.item(), "direct": direct.item(),
                "cycle": cycle.item()}
        if w.sound_locality > 0:
            source = norm_i(z_img) if self.descriptor_target is None else self.descriptor_target(z_img)
            sound = self.sound_loss(source, self.sound_features(decoded))
            loss = loss + w.sound_locality * sound
            logs["sound"] = sound.item()
            if w.sound_local > 0:
                local = self._local_sound_loss(source, decoded, generator)
                loss = loss + w.sound_local * local
                logs["sound_local"] = local.item()
        if w.inverse_fit > 0:  # the inverse learns to undo the forward map (and the audio encoder after it), alone
            target = norm_i(z_img)
            fit = ((norm_i(self.mapper.inverse(mapped.detach())) - target).pow(2).sum(1).mean()
                   + (norm_i(self.mapper.inverse(re_encoded_audio.detach())) - target).pow(2).sum(1).mean())
            loss = loss + w.inverse_fit * fit
            logs["inverse_fit"] = fit.item()
        if z_near is not None:
            near = self._near_loss(z_img, z_near, mapped)
            loss = loss + w.near * near
            logs["near"] = near.item()
        return {"mapper": loss}, logs

    def _local_sound_loss(self, source: Tensor, decoded: Tensor, generator: torch.Generator, *,
                          n_anchors: int = 4, size: int = 16) -> Tensor:
        """The sound locality within neighbourhoods: the ``size`` images nearest (in descriptor distance) to each of
        ``n_anchors`` random images of the batch, their sound features standardised within the neighbourhood.
        A set of similar images (textures of one family, photos) is compared by what varies among them, as the
        evaluation compares one set at a time; the whole-batch term weighs the features by what varies across
        everything."""
        size = min(size, len(source))
        anchors = torch.randint(len(source), (n_anchors,), generator=generator).to(source.device)
        nearest = torch.cdist(source[anchors], source).topk(size, largest=False).indices  # (n_anchors, size)
        return torch.stack([self.sound_loss(source[i], self.sound_features(decoded[i])) for i in nearest]).mean()

    def _near_loss(self, z_img: Tensor, z_near: Tensor, mapped: Tensor) -> Tensor:
        """Squared log shortfall (one-sided) of (sound distance / image distance) for each image and its near
        copy, against the batch pairs' mean log ratio: near-duplicates must not be squeezed into sounds closer
        than images are in general. Image distances in normalised latent units; sound distances between the
        decoded mels averaged over time (what a listener, and the evaluation, compare). Random batches hardly
        ever hold such close pairs, so the batch locality does not see them.

        ``z_img``, ``z_near`` ``(B, D_img)`` raw image latents of the images and their copies; ``mapped``
        ``(B, D_aud)``, the mapped ``z_img``.
        """
        source, source_near = self.image_stats.normalize(z_img), self.image_stats.normalize(z_near)
        sound = self.audio_vae.decode(mapped).mean(-1)  # (B, n_mels)
        neighbour = self.audio_vae.decode(self.mapper(z_near)).mean(-1)
        near_ratio = (torch.log((neighbour - sound).norm(dim=1) + 1e-6)
                      - torch.log((source_near - source).norm(dim=1) + 1e-6))
        pairs = torch.triu_indices(len(source), len(source), offset=1, device=source.device)
        far_ratio = (torch.log((sound[pairs[0]] - sound[pairs[1]]).norm(dim=1) + 1e-6)
                     - torch.log((source[pairs[0]] - source[pairs[1]]).norm(dim=1) + 1e-6))
        return torch.relu(far_ratio.mean().detach() - near_ratio).pow(2).mean()

    def save(self, step: int) -> None:
        self.mapper.save(self.checkpoint, metadata={**self.metadata, "steps": step})


@torch.no_grad()
def evaluate_mapper(mapper: LatentMapper, image_vae: ImageVAE, audio_vae: AudioVAE, z_img: Tensor, z_aud: Tensor,
                    *, image_stats: LatentStats, audio_stats: LatentStats) -> dict[str, float]:
    """Held-out cycle errors (normalised units, per example) and the sliced-Wasserstein prior distance."""
    mapper.eval()
    device = next(mapper.parameters()).device
    z_img, z_aud = z_img.to(device), z_aud.to(device)
    norm_i, norm_a = image_stats.normalize, audio_stats.normalize
    mapped = mapper(z_img)
    through_sound = mapper.inverse(audio_vae.encode(audio_vae.decode(mapped))[0])
    n = min(len(z_img), len(z_aud))
    return {
        "direct_cycle": float((norm_i(mapper.inverse(mapped)) - norm_i(z_img)).pow(2).sum(1).mean()),
        "decoded_cycle": float((norm_i(through_sound) - norm_i(z_img)).pow(2).sum(1).mean()),
        "audio_direct_cycle": float((norm_a(mapper(mapper.inverse(z_aud))) - norm_a(z_aud)).pow(2).sum(1).mean()),
        "prior_sw": float(sliced_wasserstein(norm_a(mapped[:n]), norm_a(z_aud[:n]), n_projections=256,
                                             generator=torch.Generator().manual_seed(0))),
    }


def _load_frozen(model_class, path: Path, device: torch.device) -> nn.Module:
    if not path.is_file():
        raise InputError(f"{path} does not exist; train it first (imgsonic train {model_class.checkpoint_kind.replace('_', '-')})")
    model = model_class.from_checkpoint(path).to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def train_mapper(
    spec: PresetSpec,
    *,
    out_dir: str | os.PathLike,
    steps: int | None = None,
    device: str = "cpu",
    images: Tensor | None = None,
    mels: Tensor | None = None,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 500,
    n_examples: int | None = None,
) -> tuple[Path, dict[str, float]]:
    """Train ``spec``'s mapper between ``<out_dir>/image_vae.pt`` and ``<out_dir>/audio_vae.pt``.

    Writes ``<out_dir>/mapper.pt`` and returns its path and held-out metrics. ``images``/``mels`` replace the
    preset's data, as in the VAE scripts.
    """
    out_dir = Path(out_dir)
    torch_device = resolve_device(device)
    seed_everything(spec.seed + 2)
    image_vae = _load_frozen(ImageVAE, out_dir / "image_vae.pt", torch_device)
    audio_vae = _load_frozen(AudioVAE, out_dir / "audio_vae.pt", torch_device)
    audio_vae.check_spectral(spec.spectral.to_dict())
    settings = spec.mapper_training
    if images is None:
        images, _ = preset_images(spec, split="train", n=n_examples)
    if mels is None:
        mels, _ = preset_sounds(spec, split="train", n=n_examples)
    z_img = encode_all(image_vae.encode, images, device=torch_device)
    z_aud = encode_all(audio_vae.encode, mels, device=torch_device)
    n_test = max(1, min(len(z_img), len(z_aud)) // 10)
    image_data = z_img[n_test:]
    if spec.mapper_weights.near > 0:  # each training image's latent rides with the latent of a near copy
        copies = near_copies(images, generator=torch.Generator().manual_seed(spec.seed + 2))
        image_data = (image_data, encode_all(image_vae.encode, copies, device=torch_device)[n_test:])
    image_stats = LatentStats(z_img[n_test:]).to(torch_device)
    audio_stats = LatentStats(z_aud[n_test:]).to(torch_device)

    # own folders can hold fewer latents than a batch: both sides of a batch must hold as many points (the
    # sliced Wasserstein term compares sorted projections), so the batch shrinks to the smaller training set
    batch_size = min(settings.batch_size, len(z_img) - n_test, len(z_aud) - n_test)
    mapper = LatentMapper(spec.mapper).to(torch_device)
    total_steps = steps or settings.steps
    checkpoint = out_dir / "mapper.pt"
    metadata = {"data": f"latents of {len(z_img)} images and {len(z_aud)} sounds (preset {spec.name})",
                "batch_size": batch_size, "lr": settings.lr, "seed": spec.seed + 2,
                "weights": {key: value for key, value in vars(spec.mapper_weights).items()},
                "image_latent_mean": image_stats.mean.tolist(), "image_latent_std": image_stats.std.tolist(),
                "audio_latent_mean": audio_stats.mean.tolist(), "audio_latent_std": audio_stats.std.tolist(),
                "command": " ".join(sys.argv)}
    objective = MapperObjective(mapper, image_vae, audio_vae, image_stats=image_stats, audio_stats=audio_stats,
                                weights=spec.mapper_weights, steps=total_steps, lr=settings.lr, checkpoint=checkpoint,
                                metadata=metadata)
    if objective.descriptor_target is not None:
        objective.descriptor_target.fit(z_img[n_test:].to(torch_device))
    loop_settings = LoopSettings(name="mapper", steps=total_steps, batch_size=batch_size, out_dir=out_dir,
                                 seed=spec.seed + 2, device=str(torch_device), checkpoint_every=checkpoint_every,
                                 resume=resume, progress=progress)
    result = train_loop(objective, {"image": image_data, "audio": z_aud[n_test:]}, loop_settings)
    metrics = evaluate_mapper(mapper, image_vae, audio_vae, z_img[:n_test], z_aud[:n_test],
                              image_stats=image_stats, audio_stats=audio_stats)
    return checkpoint, save_trained(mapper, checkpoint, kind="mapper", result=result, metrics=metrics,
                                    metadata={**metadata, "locality": objective.locality_kind})
