"""The inference chain image ↔ sound: image VAE + latent mapper + audio VAE, loaded together.

This is the one object the evaluation, the offline renderer and the live engine hold. It works on
tensors only: files, phase reconstruction and the spectral config object belong to the callers
(``synth`` builds ``SpectralConfig.from_dict(models.spectral_config)``).

Shapes (``B`` items)::

    images (B, C, H, W) ─encode_images─► z_img (B, Di) ─image_to_audio_latent─► z_aud (B, Da)
    z_aud ─decode_audio(n_frames_out=T)─► mel (B, n_mels, T)            [normalised log-mel, 0–1]
    mel (B, n_mels, T) ─encode_mel─► z_aud ─audio_to_image_latent─► z_img ─decode_images─► images

Example
-------
>>> import torch
>>> from models.pipeline import SonificationModels
>>> models = SonificationModels.from_preset("squares-sines")          # doctest: +SKIP
>>> with torch.inference_mode():                                       # doctest: +SKIP
...     mel = models.images_to_mel(torch.rand(2, 1, 32, 32), n_frames_out=40)
"""

from __future__ import annotations

import os
from typing import Any

from torch import Tensor, nn

from models.audio_vae import AudioVAE
from models.errors import CheckpointError, ParameterError
from models.image_vae import ImageVAE
from models.mapper import LatentMapper

__all__ = ["SonificationModels"]


class SonificationModels(nn.Module):
    """An image VAE, an audio VAE and the latent mapper between them, checked to fit together.

    All methods are deterministic: encoders return the posterior mean, never a sample. Call them
    under ``torch.inference_mode()``; for live use also ``torch.set_num_threads(1)``.

    Parameters
    ----------
    image_vae, audio_vae, mapper : the three models; the mapper's latent sizes must equal the VAEs'.
    """

    def __init__(self, *, image_vae: ImageVAE, audio_vae: AudioVAE, mapper: LatentMapper) -> None:
        super().__init__()
        image_dim, audio_dim = image_vae.config.latent_dim, audio_vae.config.latent_dim
        mapper_dims = (mapper.config.image_latent_dim, mapper.config.audio_latent_dim)
        if mapper_dims != (image_dim, audio_dim):
            raise CheckpointError(
                f"the mapper maps {mapper_dims[0]} → {mapper_dims[1]} latent dims but the image VAE has "
                f"{image_dim} and the audio VAE {audio_dim}; use checkpoints trained together"
            )
        self.image_vae = image_vae
        self.audio_vae = audio_vae
        self.mapper = mapper
        self.eval()

    @classmethod
    def from_paths(
        cls,
        *,
        image_vae: str | os.PathLike,
        audio_vae: str | os.PathLike,
        mapper: str | os.PathLike,
    ) -> SonificationModels:
        """Load the three checkpoints (CPU, eval mode); CheckpointError names a file that does not fit."""
        return cls(
            image_vae=ImageVAE.from_checkpoint(image_vae),
            audio_vae=AudioVAE.from_checkpoint(audio_vae),
            mapper=LatentMapper.from_checkpoint(mapper),
        )

    @classmethod
    def from_preset(cls, name: str) -> SonificationModels:
        """Load a shipped preset by name (see :mod:`models.registry`); its vocoder is not loaded here."""
        from models.registry import load_preset

        preset = load_preset(name)
        return cls.from_paths(image_vae=preset.image_vae, audio_vae=preset.audio_vae, mapper=preset.mapper)

    # ---- what the models expect ------------------------------------------------------------------

    @property
    def spectral_config(self) -> dict[str, Any]:
        """The spectral config the audio VAE was trained with, as a plain dict (a copy)."""
        return dict(self.audio_vae.config.spectral)

    @property
    def image_size(self) -> int:
        """Side of the square images the image VAE reads and writes, in pixels."""
        return self.image_vae.config.image_size

    @property
    def image_channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return self.image_vae.config.channels

    @property
    def n_mels(self) -> int:
        return self.audio_vae.config.n_mels

    @property
    def window_frames(self) -> int:
        """Frames in one window the audio VAE encodes and decodes (≥ 1)."""
        return self.audio_vae.config.n_frames

    @property
    def image_latent_dim(self) -> int:
        return self.image_vae.config.latent_dim

    @property
    def audio_latent_dim(self) -> int:
        return self.audio_vae.config.latent_dim

    # ---- image side --------------------------------------------------------------------------------

    def encode_images(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] → image latents ``(B, image_latent_dim)`` (posterior mean).

        Bring arbitrary images to ``(C, H, W) = (image_channels, image_size, image_size)`` with
        :func:`models.preprocess.prepare_images` first.
        """
        mu, _ = self.image_vae.encode(images)
        return mu

    def decode_images(self, z_img: Tensor) -> Tensor:
        """Image latents ``(B, image_latent_dim)`` → images ``(B, C, H, W)`` in [0, 1]."""
        return self.image_vae.decode(z_img)

    # ---- the mapper ----------------------------------------------------------------------------------

    def image_to_audio_latent(self, z_img: Tensor) -> Tensor:
        """Image latents ``(B, image_latent_dim)`` → audio latents ``(B, audio_latent_dim)``."""
        return self.mapper(z_img)

    def audio_to_image_latent(self, z_aud: Tensor) -> Tensor:
        """Audio latents ``(B, audio_latent_dim)`` → image latents ``(B, image_latent_dim)``."""
        return self.mapper.inverse(z_aud)

    # ---- audio side --------------------------------------------------------------------------------

    def decode_audio(self, z_aud: Tensor, *, n_frames_out: int | None = None) -> Tensor:
        """Audio latents ``(B, audio_latent_dim)`` → normalised log-mels ``(B, n_mels, n_frames_out)`` in [0, 1].

        The audio VAE decodes one window of ``window_frames`` frames per latent. A longer output
        **tiles** that window (repeats it end to end, cropping the last copy); a shorter one is the
        window's first ``n_frames_out`` frames. With ``window_frames == 1`` tiling holds the one frame,
        a steady sound. Tiling rather than holding the last frame keeps every part of a window that
        moves in time (an attack, a vibrato), so a still image gives a repeating, not a frozen, sound,
        and frame ``m`` of the output is frame ``m % window_frames`` of the window.

        ``n_frames_out`` defaults to ``window_frames``.
        """
        window = self.audio_vae.decode(z_aud)
        if n_frames_out is None:
            return window
        if isinstance(n_frames_out, bool) or not isinstance(n_frames_out, int) or n_frames_out < 1:
            raise ParameterError(f"n_frames_out={n_frames_out!r}; expected an int >= 1")
        n_copies = -(-n_frames_out // self.window_frames)
        return window.repeat(1, 1, n_copies)[..., :n_frames_out]

    def encode_mel(self, mel: Tensor) -> Tensor:
        """Normalised log-mels ``(B, n_mels, T)`` → audio latents ``(B, audio_latent_dim)``, ``T ≥ window_frames``.

        ``mel`` is cut into consecutive, non-overlapping windows of ``window_frames`` frames starting at
        frame 0 (a trailing partial window is dropped); each window is encoded to its posterior mean
        and the means are averaged. For a sound made by :meth:`decode_audio` and re-analysed with the
        same spectral config, frame 0 lines up with the tiles, so every window sees one whole tile;
        trim edge frames (STFT padding) in whole windows to keep that alignment.
        """
        if not isinstance(mel, Tensor) or mel.ndim != 3 or mel.shape[1] != self.n_mels:
            shape = tuple(mel.shape) if isinstance(mel, Tensor) else type(mel).__name__
            raise ParameterError(f"mel batch has shape {shape}; expected (B, {self.n_mels}, n_frames)")
        n_windows = mel.shape[-1] // self.window_frames
        if n_windows == 0:
            raise ParameterError(
                f"mel has {mel.shape[-1]} frames; the audio model needs at least {self.window_frames}"
            )
        batch = mel.shape[0]
        windows = mel[..., : n_windows * self.window_frames].unflatten(-1, (n_windows, self.window_frames))
        windows = windows.permute(0, 2, 1, 3).reshape(batch * n_windows, self.n_mels, self.window_frames)
        mu, _ = self.audio_vae.encode(windows)
        return mu.reshape(batch, n_windows, -1).mean(dim=1)

    # ---- the whole chain ---------------------------------------------------------------------------

    def images_to_mel(self, images: Tensor, *, n_frames_out: int | None = None) -> Tensor:
        """Images ``(B, C, H, W)`` → normalised log-mels ``(B, n_mels, n_frames_out)``: encode, map, decode."""
        return self.decode_audio(self.image_to_audio_latent(self.encode_images(images)), n_frames_out=n_frames_out)

    def mel_to_images(self, mel: Tensor) -> Tensor:
        """Normalised log-mels ``(B, n_mels, T)`` → images ``(B, C, H, W)``: encode, map back, decode."""
        return self.decode_images(self.audio_to_image_latent(self.encode_mel(mel)))
