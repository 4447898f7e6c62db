"""A small image classifier whose penultimate layer gives the *image features* of the multimodal feature-GAN.

The feature-GAN paper takes image and sound features from per-modality classifiers. This is the image one: two
stride-2 convolutions, a linear layer to ``feature_dim`` features (after a ReLU, so features are ≥ 0) and a
linear class head.

Example
-------
>>> import torch
>>> model = ImageClassifier(ImageClassifierConfig(image_size=16, n_classes=10))
>>> tuple(model.features(torch.rand(2, 1, 16, 16)).shape), tuple(model(torch.rand(2, 1, 16, 16)).shape)
((2, 64), (2, 10))
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError

__all__ = ["ImageClassifierConfig", "ImageClassifier"]


@dataclass
class ImageClassifierConfig:
    """image_size : side, divisible by 4.  channels : 1 or 3.  n_classes : classes.  feature_dim : features.
    base_width : channels of the first convolution (the second has twice as many)."""

    image_size: int = 16
    channels: int = 1
    n_classes: int = 10
    feature_dim: int = 64
    base_width: int = 16

    def __post_init__(self) -> None:
        check_positive_ints(self, "image_size", "channels", "n_classes", "feature_dim", "base_width")
        if self.image_size % 4:
            raise ParameterError(f"ImageClassifierConfig.image_size={self.image_size}; expected a multiple of 4")


class ImageClassifier(CheckpointMixin, nn.Module):
    """Images ``(B, C, S, S)`` in [0, 1] → features ``(B, feature_dim)`` → class logits ``(B, n_classes)``."""

    checkpoint_kind = "image_classifier"
    config_class = ImageClassifierConfig

    def __init__(self, config: ImageClassifierConfig) -> None:
        super().__init__()
        self.config = config
        width = config.base_width
        self.body = nn.Sequential(
            nn.Conv2d(config.channels, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Linear(2 * width * (config.image_size // 4) ** 2, config.feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(config.feature_dim, config.n_classes)

    def features(self, images: Tensor) -> Tensor:
        expected = (self.config.channels, self.config.image_size, self.config.image_size)
        if not isinstance(images, Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ParameterError(f"images have shape {shape}; expected (B, {', '.join(map(str, expected))})")
        return self.body(images)

    def forward(self, images: Tensor) -> Tensor:
        return self.head(self.features(images))
