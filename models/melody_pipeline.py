"""The symbolic path image ↔ melody: an image VAE, the melody VAE and (optionally) a latent mapper between them.

Two ways to join an image model to the melody model, both loaded by this one class::

    SynVAE (no mapper)     images ─encode─► z (the melody latent itself) ─melody decoder─► tokens
                           tokens ─melody encoder─► z ─image decoder─► images
    unpaired mapper        images ─encode─► z_img ─mapper─► z_mel ─melody decoder─► tokens
                           tokens ─melody encoder─► z_mel ─mapper.inverse─► z_img ─image decoder─► images

In the first, the image VAE was trained *through* the frozen melody model (``training/train_synvae.py``), so its
latent space is the melody latent space; in the second a :class:`models.mapper.LatentMapper` was trained
between the two frozen VAEs without pairs (``training/train_melody_mapper.py``). Tokens are those of
:mod:`models.melody_vae`. Everything is deterministic (posterior means, greedy decoding).

Example
-------
>>> from models.melody_pipeline import MelodyModels
>>> melody = MelodyModels.from_preset("digits-melody")                     # doctest: +SKIP
>>> tokens = melody.images_to_tokens(images)             # (B, 32) tokens  # doctest: +SKIP
"""

from __future__ import annotations

import os

from torch import Tensor, nn

from models.checkpoint import load_checkpoint
from models.errors import CheckpointError
from models.image_vae import ImageVAE
from models.mapper import LatentMapper
from models.melody_vae import MelodyVAE

__all__ = ["MelodyModels"]


class MelodyModels(nn.Module):
    """An image VAE and the melody VAE, joined directly (SynVAE) or through a latent mapper.

    Parameters
    ----------
    image_vae, melody_vae : the two models.
    mapper : image latent → melody latent (and back); None when the image latent *is* the melody latent, which
        needs equal latent sizes.
    """

    def __init__(self, *, image_vae: ImageVAE, melody_vae: MelodyVAE, mapper: LatentMapper | None = None) -> None:
        super().__init__()
        image_dim, melody_dim = image_vae.config.latent_dim, melody_vae.config.latent_dim
        if mapper is None and image_dim != melody_dim:
            raise CheckpointError(
                f"the image VAE has {image_dim} latent dims and the melody VAE {melody_dim}; without a melody mapper "
                "they must be equal (an image VAE trained through the melody model)"
            )
        if mapper is not None and (mapper.config.image_latent_dim, mapper.config.audio_latent_dim) != (image_dim, melody_dim):
            raise CheckpointError(
                f"the melody mapper maps {mapper.config.image_latent_dim} → {mapper.config.audio_latent_dim} latent "
                f"dims but the image VAE has {image_dim} and the melody VAE {melody_dim}; use checkpoints trained together"
            )
        self.image_vae = image_vae
        self.melody_vae = melody_vae
        self.mapper = mapper
        self.eval()

    @classmethod
    def from_paths(cls, *, image_vae: str | os.PathLike, melody_vae: str | os.PathLike,
                   mapper: str | os.PathLike | None = None) -> MelodyModels:
        """Load the checkpoints (CPU, eval mode).

        An image VAE trained through a melody model records that model's digest, and a melody mapper the digests
        of both VAEs it was trained between; loading them with other models is a CheckpointError (their latent
        spaces would mean nothing to each other), e.g. after a preset's image VAE was retrained.
        """
        melody_digest = load_checkpoint(melody_vae, kind="melody_vae")["sha256"]
        image = load_checkpoint(image_vae, kind="image_vae")
        trained_with = image["metadata"].get("melody_vae_sha256")
        if mapper is None and trained_with is not None and trained_with != melody_digest:
            raise CheckpointError(f"image VAE {image_vae} was trained through another melody VAE than {melody_vae}; "
                                  "retrain it (imgsonic train image-vae) or use the melody VAE it names")
        if mapper is not None:
            mapped = load_checkpoint(mapper, kind="mapper")["metadata"]
            for what, digest, path in (("image VAE", image["sha256"], image_vae), ("melody VAE", melody_digest, melody_vae)):
                recorded = mapped.get(f"{what.split()[0]}_vae_sha256")
                if recorded is not None and recorded != digest:
                    raise CheckpointError(
                        f"melody mapper {mapper} was trained for another {what} than {path}; retrain it: "
                        "imgsonic train melody-mapper --preset NAME --image-vae PT")
        return cls(image_vae=ImageVAE.from_checkpoint(image_vae), melody_vae=MelodyVAE.from_checkpoint(melody_vae),
                   mapper=LatentMapper.from_checkpoint(mapper) if mapper is not None else None)

    @classmethod
    def from_preset(cls, name: str) -> MelodyModels:
        """The preset's image VAE with its ``melody_vae`` (and ``melody_mapper``); CheckpointError if it has none."""
        from models.registry import load_preset

        preset = load_preset(name)
        if preset.melody_vae is None:
            raise CheckpointError(f"preset {name!r} has no melody model (no melody_vae key in its TOML)")
        return cls.from_paths(image_vae=preset.image_vae, melody_vae=preset.melody_vae, mapper=preset.melody_mapper)

    @property
    def n_steps(self) -> int:
        return self.melody_vae.config.n_steps

    @property
    def pitch_low(self) -> int:
        return self.melody_vae.config.pitch_low

    def image_to_melody_latent(self, z_img: Tensor) -> Tensor:
        """Image latents ``(B, Di)`` → melody latents ``(B, Dm)``."""
        return z_img if self.mapper is None else self.mapper(z_img)

    def melody_to_image_latent(self, z_mel: Tensor) -> Tensor:
        """Melody latents ``(B, Dm)`` → image latents ``(B, Di)``."""
        return z_mel if self.mapper is None else self.mapper.inverse(z_mel)

    def encode_images(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] → image latents (posterior means)."""
        return self.image_vae.encode(images)[0]

    def images_to_tokens(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` → melody tokens ``(B, n_steps)``: encode, map, decode greedily."""
        return self.latents_to_tokens(self.encode_images(images))

    def latents_to_tokens(self, z_img: Tensor) -> Tensor:
        """Image latents ``(B, Di)`` → melody tokens ``(B, n_steps)``."""
        return self.melody_vae.decode(self.image_to_melody_latent(z_img))

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Melody tokens ``(B, n_steps)`` → melody latents ``(B, Dm)`` (posterior means)."""
        return self.melody_vae.encode(tokens)[0]

    def tokens_to_images(self, tokens: Tensor) -> Tensor:
        """Melody tokens ``(B, n_steps)`` → images ``(B, C, H, W)``: re-encode, map back, decode."""
        return self.image_vae.decode(self.melody_to_image_latent(self.encode_tokens(tokens)))
