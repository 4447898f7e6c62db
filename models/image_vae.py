"""A small convolutional VAE for square images, usable as a β-VAE or a FactorVAE.

The model is inference-only: losses and the FactorVAE total-correlation discriminator live in
``training/``. Images reach it through :func:`models.preprocess.prepare_image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError
from models.image_descriptors import DESCRIPTOR_COUNTS, image_descriptors

__all__ = ["ImageVAEConfig", "ImageVAE", "reparameterize", "DESCRIPTOR_LOGVAR"]

DESCRIPTOR_LOGVAR = 2 * -3.0  # the descriptor dims' posterior: exact values, with a little noise (σ ≈ 0.05) in training


def reparameterize(mu: Tensor, logvar: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``; shapes ``(B, D)`` in and out."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


@dataclass
class ImageVAEConfig:
    """Hyper-parameters that fully determine an :class:`ImageVAE`.

    Parameters
    ----------
    image_size : side of the square input in pixels; divisible by ``2 ** n_layers``.
    channels : 1 (grey) or 3 (RGB).
    latent_dim : size of the latent vector.
    base_width : channels of the first conv layer; each further layer doubles it.
    n_layers : stride-2 conv layers in the encoder (and transposed convs in the decoder).
    hidden_width : width of the fully connected layer between the conv stack and the latent.
    n_descriptors : 0, or one of ``DESCRIPTOR_COUNTS`` (16, the current set; 13 and 12 in checkpoints made before
        it): the last ``n_descriptors`` latent dims are the image's texture and colour descriptors of that set
        (:mod:`models.image_descriptors`), standardised by the training data's mean and spread, instead of learned
        dims; ``latent_dim`` counts them.
    """

    image_size: int = 32
    channels: int = 1
    latent_dim: int = 8
    base_width: int = 32
    n_layers: int = 3
    hidden_width: int = 256
    n_descriptors: int = 0

    # sizes a checkpoint's config may state (checked before building: models.checkpoint.check_config_bounds)
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "image_size": (1, 1024), "channels": (1, 3), "latent_dim": (1, 4096), "base_width": (1, 4096),
        "n_layers": (1, 10), "hidden_width": (1, 65536), "n_descriptors": (0, 64),
    }

    def __post_init__(self) -> None:
        check_positive_ints(self, "image_size", "channels", "latent_dim", "base_width", "n_layers", "hidden_width")
        if self.n_descriptors not in (0, *DESCRIPTOR_COUNTS) or self.n_descriptors >= self.latent_dim:
            raise ParameterError(
                f"ImageVAEConfig.n_descriptors={self.n_descriptors!r}; expected 0 or one of {DESCRIPTOR_COUNTS}, "
                f"fewer than latent_dim={self.latent_dim}"
            )
        if self.channels not in (1, 3):
            raise ParameterError(f"ImageVAEConfig.channels={self.channels}; expected 1 (grey) or 3 (RGB)")
        if self.image_size % 2**self.n_layers:
            raise ParameterError(
                f"ImageVAEConfig.image_size={self.image_size} is not divisible by 2**n_layers="
                f"{2**self.n_layers}; use a multiple of it or fewer layers"
            )


class ImageVAE(CheckpointMixin, nn.Module):
    """Convolutional VAE: image ``(B, C, H, W)`` in [0, 1] ↔ latent ``(B, latent_dim)``.

    The encoder halves the resolution ``n_layers`` times (4×4 convs, stride 2, SiLU), then a fully
    connected layer gives ``mu`` and ``logvar``. The decoder mirrors it and ends in a sigmoid. There is
    no batch normalisation, so train and eval mode compute the same function and batch items never
    influence each other. With ``n_descriptors`` > 0 the encoder learns ``latent_dim − n_descriptors`` dims and
    the rest are the image's standardised descriptors (buffers ``descriptor_mean`` / ``descriptor_std``, set
    from the training images by :meth:`set_descriptor_stats`); the decoder reads all dims.

    Examples
    --------
    >>> vae = ImageVAE(ImageVAEConfig(image_size=32, channels=1, latent_dim=4)).eval()
    >>> x_hat, mu, logvar = vae(torch.rand(2, 1, 32, 32))
    >>> tuple(x_hat.shape), tuple(mu.shape)
    ((2, 1, 32, 32), (2, 4))
    """

    checkpoint_kind = "image_vae"
    config_class = ImageVAEConfig

    def __init__(self, config: ImageVAEConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_width * 2**i for i in range(config.n_layers)]
        self._bottom_size = config.image_size // 2**config.n_layers
        n_features = widths[-1] * self._bottom_size**2

        encoder: list[nn.Module] = []
        in_channels = config.channels
        for width in widths:
            encoder += [nn.Conv2d(in_channels, width, kernel_size=4, stride=2, padding=1), nn.SiLU()]
            in_channels = width
        encoder += [nn.Flatten(), nn.Linear(n_features, config.hidden_width), nn.SiLU()]
        encoder.append(nn.Linear(config.hidden_width, 2 * (config.latent_dim - config.n_descriptors)))
        self.encoder = nn.Sequential(*encoder)
        if config.n_descriptors:
            self.register_buffer("descriptor_mean", torch.zeros(config.n_descriptors))
            self.register_buffer("descriptor_std", torch.ones(config.n_descriptors))

        decoder: list[nn.Module] = [
            nn.Linear(config.latent_dim, config.hidden_width),
            nn.SiLU(),
            nn.Linear(config.hidden_width, n_features),
            nn.SiLU(),
            nn.Unflatten(1, (widths[-1], self._bottom_size, self._bottom_size)),
        ]
        for width, out_channels in zip(widths[::-1], widths[-2::-1] + [config.channels]):
            decoder.append(nn.ConvTranspose2d(width, out_channels, kernel_size=4, stride=2, padding=1))
            decoder.append(nn.SiLU())
        decoder.pop()  # the last layer gives logits, not activations
        self.decoder = nn.Sequential(*decoder)

    def _check_images(self, x: Tensor) -> None:
        config = self.config
        expected = (config.channels, config.image_size, config.image_size)
        if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ParameterError(
                f"image batch has shape {shape}; expected (B, {', '.join(map(str, expected))}) "
                "(bring images to this format with models.preprocess.prepare_image)"
            )
        if not x.is_floating_point():
            raise ParameterError(f"image batch has dtype {x.dtype}; expected floats in [0, 1]")

    def _check_latents(self, z: Tensor) -> None:
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ParameterError(f"latent batch has shape {shape}; expected (B, {self.config.latent_dim})")

    @torch.no_grad()
    def set_descriptor_stats(self, images: Tensor, *, batch_size: int = 1024) -> None:
        """Standardise the descriptor dims by the mean and spread of ``images`` ``(N, C, H, W)`` (training data)."""
        self._check_images(images)
        if not self.config.n_descriptors:
            raise ParameterError("set_descriptor_stats: this model has no descriptor dims (n_descriptors=0)")
        values = torch.cat([image_descriptors(images[i : i + batch_size], self.config.n_descriptors)
                            for i in range(0, len(images), batch_size)])
        self.descriptor_mean.copy_(values.mean(dim=0))
        self.descriptor_std.copy_(values.std(dim=0).clamp_min(1e-3))

    @torch.no_grad()
    def standardise_learned_dims(self, images: Tensor, *, batch_size: int = 1024) -> Tensor:
        """Rescale the learned dims to unit spread over ``images`` ``(N, C, H, W)`` (training data); returns the
        scales ``(latent_dim − n_descriptors,)``.

        The scale is folded into the encoder's output layer (mu ÷ s, logvar − 2 ln s) and the decoder's input
        layer (× s): the same model, the same reconstructions, but learned dims that weigh in a latent distance
        as much as the standardised descriptor dims beside them. A low β lets the learned dims spread to 4–8 and
        make up almost all of every distance between images, whatever their textures.
        """
        self._check_images(images)
        n_learned = self.config.latent_dim - self.config.n_descriptors
        mu = torch.cat([self.encoder(images[i : i + batch_size]).chunk(2, dim=1)[0]
                        for i in range(0, len(images), batch_size)])
        scale = mu.std(dim=0).clamp_min(1e-3)
        out_layer, in_layer = self.encoder[-1], self.decoder[0]
        out_layer.weight[:n_learned] /= scale[:, None]
        out_layer.bias[:n_learned] /= scale
        out_layer.bias[n_learned:] -= 2 * torch.log(scale)
        in_layer.weight[:, :n_learned] *= scale[None, :]
        return scale

    def descriptors(self, x: Tensor) -> Tensor:
        """The standardised descriptor dims of images ``(B, C, H, W)``: ``(B, n_descriptors)``."""
        return (image_descriptors(x, self.config.n_descriptors) - self.descriptor_mean) / self.descriptor_std

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(B, C, H, W)`` in [0, 1] → ``(mu, logvar)``, each ``(B, latent_dim)``."""
        self._check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        if self.config.n_descriptors:
            mu = torch.cat([mu, self.descriptors(x)], dim=1)
            logvar = torch.cat([logvar, torch.full_like(mu[:, mu.shape[1] - self.config.n_descriptors :],
                                                        DESCRIPTOR_LOGVAR)], dim=1)
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` → pre-sigmoid images ``(B, C, H, W)``, for a stable BCE loss."""
        self._check_latents(z)
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` → images ``(B, C, H, W)`` in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Images ``(B, C, H, W)`` → ``(x_hat, mu, logvar)``.

        In training mode ``x_hat`` decodes a sample ``z ~ N(mu, exp(logvar))``; in eval mode it decodes
        ``mu``, so inference is deterministic.
        """
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar
