"""The range an image latent may take when it is set by hand (OSC ``/imgsonic/latent``, ``setLatent``).

The range follows the preset's real latent distribution, per dimension: ``mean ± 6·std`` of the image
latents of the data the image VAE was trained on (``SIGMAS``). A VAE's prior is N(0, 1), but its encoder's
means for real images are not: the shipped ``default`` preset's spread 4–7 per dimension (up to ±34), so a
fixed ±4 would clip the latent of almost every picture. Values outside the range are clamped to it; a
latent read from ``/imgsonic/out/z_img`` lies inside and comes back unchanged.

Where the statistics come from (see :mod:`bridge.sonify.latent_stats`): the image VAE checkpoint's
``metadata["latent_stats"]`` (written by ``training/train_image_vae.py``: ``mean``, ``std``, ``min``,
``max`` per dimension and ``n``, over its training images), or, for checkpoints trained before that, the
same statistics measured on a fixed probe set of pictures. The range is never narrower than the prior's
``±SIGMAS`` (a preset whose images barely move some dimension still accepts what the prior allows).

Example
-------
>>> r = LatentRange.from_stats(mean=[0.0, 1.0], std=[1.0, 2.0], source="example")
>>> r.low.tolist(), r.high.tolist()
([-6.0, -11.0], [6.0, 13.0])
>>> r.clamp([100.0, 0.5])[0].tolist()
[6.0, 0.5]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ParameterError

__all__ = ["LatentRange", "SIGMAS", "STATS_KEY"]

SIGMAS = 6.0
STATS_KEY = "latent_stats"


@dataclass(frozen=True)
class LatentRange:
    """Per-dimension bounds ``low`` / ``high`` ``(D,)``; ``source`` says where they came from."""

    low: np.ndarray
    high: np.ndarray
    source: str

    def __post_init__(self) -> None:
        if self.low.shape != self.high.shape or self.low.ndim != 1 or not (self.low < self.high).all():
            raise ParameterError(f"latent range low {self.low} / high {self.high}; expected (D,) arrays, low < high")

    @classmethod
    def from_stats(cls, *, mean: Sequence[float], std: Sequence[float], source: str,
                   sigmas: float = SIGMAS) -> LatentRange:
        """``mean ± sigmas·std``, widened to at least ``±sigmas`` (the N(0, 1) prior's own range)."""
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        if mean.shape != std.shape or mean.ndim != 1 or not np.isfinite(mean).all() or not (std >= 0).all():
            raise ParameterError(f"latent statistics mean {mean} / std {std}; expected finite (D,) arrays, std ≥ 0")
        return cls(low=np.minimum(mean - sigmas * std, -sigmas), high=np.maximum(mean + sigmas * std, sigmas),
                   source=source)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], *, latent_dim: int, source: str) -> LatentRange | None:
        """The range from a checkpoint's ``metadata["latent_stats"]``, or None when it has none (or a broken one)."""
        stats = metadata.get(STATS_KEY) if isinstance(metadata, Mapping) else None
        if not isinstance(stats, Mapping):
            return None
        try:
            mean, std = np.asarray(stats["mean"], dtype=np.float64), np.asarray(stats["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if mean.shape != (latent_dim,) or std.shape != (latent_dim,):
            return None
        try:
            return cls.from_stats(mean=mean, std=std, source=source)
        except ParameterError:
            return None

    @property
    def dim(self) -> int:
        return int(self.low.size)

    def clamp(self, values: Sequence[float] | np.ndarray) -> tuple[np.ndarray, bool]:
        """``values`` ``(D,)`` inside the range (NaN → 0 clamped into it) and whether any had to change."""
        raw = np.asarray(values, dtype=np.float64).reshape(-1)
        if raw.size != self.dim:
            raise ParameterError(f"latent has {raw.size} values; expected {self.dim}")
        clamped = np.clip(np.nan_to_num(raw, nan=0.0), self.low, self.high)
        return clamped, not np.array_equal(clamped, raw)

    def contains(self, values: Sequence[float] | np.ndarray) -> bool:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        return bool(values.size == self.dim and ((values >= self.low) & (values <= self.high)).all())
