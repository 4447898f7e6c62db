"""The conditional discriminator of the sound → image GAN and its two adversarial losses (training only).

The discriminator scores an image's *realness and coherence with a condition code* (the sound's code, or image
features): convolutions turn the image into features ``φ(x)`` (``(B, width)``, sum-pooled); the score is
``w·φ(x) + ⟨V c, φ(x)⟩``, the *projection* form (Miyato & Koyama 2018), so the condition enters as an inner
product instead of being concatenated to the input. Coherence is taught explicitly, as Sound-to-Imagination
does: a real image paired with the *wrong* sound counts as fake.

Two stabilisers, chosen by ``stabiliser``:

``"spectral"``
    spectral norm on every layer of the discriminator and the hinge loss; discriminator and generator step
    once each per batch.
``"moving-average"``
    Sound-to-Imagination's recipe as we read it: no spectral norm, the standard (non-saturating) GAN loss,
    and a D/G schedule driven by moving averages of the two losses — the discriminator steps only while its
    averaged loss is above ``D_STEP_ABOVE`` (it is not yet winning), the generator always.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from models.errors import ParameterError

__all__ = ["STABILISERS", "D_STEP_ABOVE", "ConditionalDiscriminator", "FeatureDiscriminator", "discriminator_loss", "generator_loss",
           "MovingAverage"]

STABILISERS = ("spectral", "moving-average")
D_STEP_ABOVE = 0.3  # the moving average of the (per-term mean) BCE loss under which D rests: it is winning
_MOVING_AVERAGE_DECAY = 0.9


class ConditionalDiscriminator(nn.Module):
    """``(images (B, C, S, S), condition (B, condition_dim))`` → scores ``(B,)``; higher means real and coherent."""

    def __init__(self, *, image_size: int, channels: int, condition_dim: int, base_width: int = 32,
                 spectral: bool = True) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ParameterError(f"image_size={image_size}; expected a power of two >= 8")
        wrap = spectral_norm if spectral else (lambda layer: layer)
        layers: list[nn.Module] = []
        width_in, width = channels, base_width
        size = image_size
        while size > 4:  # stride-2 convolutions only: a 3×3 convolution at each size made D 4× slower here
            layers += [wrap(nn.Conv2d(width_in, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            width_in, width, size = width, min(width * 2, 4 * base_width), size // 2
        layers += [wrap(nn.Conv2d(width_in, width_in, 3, padding=1)), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.score = wrap(nn.Linear(width_in, 1))
        self.project = wrap(nn.Linear(condition_dim, width_in, bias=False))

    def forward(self, images: Tensor, condition: Tensor) -> Tensor:
        phi = self.features(images * 2.0 - 1.0).sum(dim=(2, 3))
        return self.score(phi)[:, 0] + (self.project(condition) * phi).sum(dim=1)


class FeatureDiscriminator(nn.Module):
    """The feature-to-feature GAN's discriminator: ``(image features (B, Fi), sound features (B, Fa))`` → scores
    ``(B,)``, a spectral-norm MLP with the same projection of the condition."""

    def __init__(self, *, feature_dim: int, condition_dim: int, width: int = 256) -> None:
        super().__init__()
        self.features = nn.Sequential(spectral_norm(nn.Linear(feature_dim, width)), nn.LeakyReLU(0.2),
                                      spectral_norm(nn.Linear(width, width)), nn.LeakyReLU(0.2))
        self.score = spectral_norm(nn.Linear(width, 1))
        self.project = spectral_norm(nn.Linear(condition_dim, width, bias=False))

    def forward(self, features: Tensor, condition: Tensor) -> Tensor:
        phi = self.features(features)
        return self.score(phi)[:, 0] + (self.project(condition) * phi).sum(dim=1)


def discriminator_loss(real: Tensor, fake: Tensor, mismatched: Tensor, *, stabiliser: str) -> Tensor:
    """The discriminator's loss from its scores of matched real pairs, generated images and mismatched real pairs."""
    if stabiliser == "spectral":
        return F.relu(1.0 - real).mean() + 0.5 * (F.relu(1.0 + fake).mean() + F.relu(1.0 + mismatched).mean())
    if stabiliser == "moving-average":
        return (F.softplus(-real).mean() + 0.5 * (F.softplus(fake).mean() + F.softplus(mismatched).mean())) / 2.0
    raise ParameterError(f"stabiliser={stabiliser!r}; accepted: {', '.join(STABILISERS)}")


def generator_loss(fake: Tensor, *, stabiliser: str) -> Tensor:
    """The generator's loss from the discriminator's scores of its images (with their true conditions)."""
    if stabiliser == "spectral":
        return -fake.mean()
    if stabiliser == "moving-average":
        return F.softplus(-fake).mean()
    raise ParameterError(f"stabiliser={stabiliser!r}; accepted: {', '.join(STABILISERS)}")


class MovingAverage:
    """An exponential moving average of a scalar; ``None`` until the first value."""

    def __init__(self, decay: float = _MOVING_AVERAGE_DECAY) -> None:
        self.decay = decay
        self.value: float | None = None

    def update(self, value: float) -> float:
        self.value = value if self.value is None else self.decay * self.value + (1.0 - self.decay) * value
        return self.value

