"""The latent mapper: image latents ↔ audio latents, learned without paired data.

Two small MLPs, one per direction. Each adds a learned correction to a skip path: the identity when
the two latent sizes match, a linear projection otherwise. The correction's last layer starts at
zero, so an untrained mapper with matching sizes is the identity map — the natural starting point for
the research's per-axis locality loss (mapped ≈ source). The objective (locality, cycle consistency,
prior matching) lives in ``training/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError

__all__ = ["LatentMapperConfig", "LatentMapper"]


@dataclass
class LatentMapperConfig:
    """Hyper-parameters that fully determine a :class:`LatentMapper`.

    Parameters
    ----------
    image_latent_dim : latent size of the image VAE.
    audio_latent_dim : latent size of the audio VAE; may differ from ``image_latent_dim``.
    hidden_width : width of the hidden layers of each direction's MLP.
    depth : hidden layers per direction.
    """

    image_latent_dim: int
    audio_latent_dim: int
    hidden_width: int = 128
    depth: int = 2

    # sizes a checkpoint's config may state (checked before building: models.checkpoint.check_config_bounds)
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "image_latent_dim": (1, 4096), "audio_latent_dim": (1, 4096), "hidden_width": (1, 65536), "depth": (1, 64),
    }

    def __post_init__(self) -> None:
        check_positive_ints(self, "image_latent_dim", "audio_latent_dim", "hidden_width", "depth")


class _Direction(nn.Module):
    """``y = skip(x) + mlp(x)``: skip is the identity when sizes match, else a bias-free linear map."""

    def __init__(self, in_dim: int, out_dim: int, hidden_width: int, depth: int) -> None:
        super().__init__()
        self.skip = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_width), nn.SiLU()]
            width = hidden_width
        last = nn.Linear(width, out_dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.mlp = nn.Sequential(*layers, last)

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.mlp(x)


class LatentMapper(CheckpointMixin, nn.Module):
    """Maps image latents ``(B, image_latent_dim)`` to audio latents ``(B, audio_latent_dim)`` and back.

    ``forward``/``to_audio`` and ``inverse``/``to_image`` are separate networks; training makes them
    inverse to each other with cycle losses.

    Examples
    --------
    >>> import torch
    >>> mapper = LatentMapper(LatentMapperConfig(image_latent_dim=8, audio_latent_dim=4))
    >>> tuple(mapper(torch.zeros(2, 8)).shape), tuple(mapper.inverse(torch.zeros(2, 4)).shape)
    ((2, 4), (2, 8))
    """

    checkpoint_kind = "mapper"
    config_class = LatentMapperConfig

    def __init__(self, config: LatentMapperConfig) -> None:
        super().__init__()
        self.config = config
        dims = (config.image_latent_dim, config.audio_latent_dim)
        self.to_audio = _Direction(*dims, config.hidden_width, config.depth)
        self.to_image = _Direction(*dims[::-1], config.hidden_width, config.depth)

    @staticmethod
    def _check(z: Tensor, dim: int, what: str) -> None:
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ParameterError(f"{what} latent batch has shape {shape}; expected (B, {dim})")

    def forward(self, z_img: Tensor) -> Tensor:
        """Image latents ``(B, image_latent_dim)`` → audio latents ``(B, audio_latent_dim)``."""
        self._check(z_img, self.config.image_latent_dim, "image")
        return self.to_audio(z_img)

    def inverse(self, z_aud: Tensor) -> Tensor:
        """Audio latents ``(B, audio_latent_dim)`` → image latents ``(B, image_latent_dim)``."""
        self._check(z_aud, self.config.audio_latent_dim, "audio")
        return self.to_image(z_aud)
