"""The conditional image generator of Sound-to-Imagination: a condition code → an image, densely connected.

A linear layer turns ``[condition, noise]`` into a ``4 × 4`` grid; each stage doubles the grid (nearest
neighbour) and runs a *dense block* — every convolution reads the concatenation of the block's input and all
earlier outputs in the block, DenseNet-style — then a 1×1 transition. The last stage's features become the
image through a 3×3 convolution and a sigmoid.

Variety at test time, as in Sound-to-Imagination, comes from **dropout that stays on when asked**: every
dense layer's output passes through channel dropout (``dropout``), active while training and, at inference,
when ``forward(..., variety=True)``; with ``variety=False`` the generator is deterministic. The noise input
adds a second source (``noise_dim``; zeros when not given).

Batch norm (running statistics at inference, so a batch of one gives the same image as in a batch): group
norm made a training step 2× slower on this CPU. The condition is any code: the frozen audio encoder's (sound → image), or image features (the
feature-to-image stage of the multimodal feature-GAN, :mod:`models.multimodal`).

Example
-------
>>> import torch
>>> generator = ImageGenerator(ImageGeneratorConfig(condition_dim=8, image_size=16))
>>> images = generator(torch.zeros(3, 8), variety=True)
>>> tuple(images.shape), bool(images.min() >= 0)
((3, 1, 16, 16), True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError

__all__ = ["ImageGeneratorConfig", "ImageGenerator"]


@dataclass
class ImageGeneratorConfig:
    """Hyper-parameters that fully determine an :class:`ImageGenerator`.

    condition_dim : size of the condition code.  noise_dim : size of the noise input (0 for none).
    image_size : side of the square output, a power of two ≥ 8.  channels : 1 (grey) or 3 (RGB).
    base_width : channels after the first linear layer; halved by each stage's transition (at least 16).
    growth : channels each dense layer adds.  dense_layers : dense layers per stage.
    dropout : channel dropout after each dense layer, in [0, 1).
    stage_condition : channels of ``[condition, noise]`` (a linear projection, the same at every place) joined
    to each stage's input, so the layout can be corrected at every scale; 0: only the first layer reads them.
    """

    condition_dim: int = 64
    noise_dim: int = 16
    image_size: int = 32
    channels: int = 1
    base_width: int = 128
    growth: int = 16
    dense_layers: int = 3
    dropout: float = 0.2
    stage_condition: int = 0

    def __post_init__(self) -> None:
        check_positive_ints(self, "condition_dim", "image_size", "channels", "base_width", "growth", "dense_layers")
        if isinstance(self.noise_dim, bool) or not isinstance(self.noise_dim, int) or self.noise_dim < 0:
            raise ParameterError(f"ImageGeneratorConfig.noise_dim={self.noise_dim!r}; expected an int >= 0")
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ParameterError(f"ImageGeneratorConfig.image_size={self.image_size}; expected a power of two >= 8")
        if self.channels not in (1, 3):
            raise ParameterError(f"ImageGeneratorConfig.channels={self.channels}; expected 1 or 3")
        if isinstance(self.stage_condition, bool) or not isinstance(self.stage_condition, int) or self.stage_condition < 0:
            raise ParameterError(f"ImageGeneratorConfig.stage_condition={self.stage_condition!r}; expected an int >= 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"ImageGeneratorConfig.dropout={self.dropout}; expected a number in [0, 1)")

    @property
    def n_stages(self) -> int:
        return int(math.log2(self.image_size)) - 2


class _DenseStage(nn.Module):
    """Upsample ×2, a dense block of ``n_layers`` 3×3 convolutions, a 1×1 transition to ``out_width``."""

    def __init__(self, in_width: int, out_width: int, *, growth: int, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        width = in_width
        for _ in range(n_layers):
            self.layers.append(nn.Sequential(nn.BatchNorm2d(width), nn.SiLU(),
                                              nn.Conv2d(width, growth, 3, padding=1)))
            width += growth
        self.transition = nn.Sequential(nn.BatchNorm2d(width), nn.SiLU(), nn.Conv2d(width, out_width, 1))

    def forward(self, x: Tensor, *, dropout: float, active: bool) -> Tensor:
        features = [F.interpolate(x, scale_factor=2.0, mode="nearest")]
        for layer in self.layers:
            new = layer(torch.cat(features, dim=1))
            features.append(F.dropout2d(new, p=dropout, training=active) if dropout else new)
        return self.transition(torch.cat(features, dim=1))


class ImageGenerator(CheckpointMixin, nn.Module):
    """``(condition (B, condition_dim), noise (B, noise_dim))`` → images ``(B, channels, image_size, image_size)`` in [0, 1]."""

    checkpoint_kind = "image_generator"
    config_class = ImageGeneratorConfig

    def __init__(self, config: ImageGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = nn.Linear(config.condition_dim + config.noise_dim, config.base_width * 16)
        self.stages = nn.ModuleList()
        self.stage_conditions = nn.ModuleList()
        width = config.base_width
        for _ in range(config.n_stages):
            out_width = max(16, width // 2)
            self.stages.append(_DenseStage(width + config.stage_condition, out_width, growth=config.growth,
                                           n_layers=config.dense_layers))
            if config.stage_condition:
                self.stage_conditions.append(nn.Linear(config.condition_dim + config.noise_dim, config.stage_condition))
            width = out_width
        self.to_image = nn.Sequential(nn.BatchNorm2d(width), nn.SiLU(), nn.Conv2d(width, config.channels, 3, padding=1))

    def forward(self, condition: Tensor, noise: Tensor | None = None, *, variety: bool = False) -> Tensor:
        """Images for ``condition`` ``(B, condition_dim)``.

        noise : ``(B, noise_dim)``; None means zeros.  variety : keep dropout on at inference (different
        images for the same condition on each call); in training mode dropout is always on.
        """
        config = self.config
        if not isinstance(condition, Tensor) or condition.ndim != 2 or condition.shape[1] != config.condition_dim:
            shape = tuple(condition.shape) if isinstance(condition, Tensor) else type(condition).__name__
            raise ParameterError(f"condition has shape {shape}; expected (B, {config.condition_dim})")
        if noise is None:
            noise = condition.new_zeros(len(condition), config.noise_dim)
        elif tuple(noise.shape) != (len(condition), config.noise_dim):
            raise ParameterError(f"noise has shape {tuple(noise.shape)}; expected ({len(condition)}, {config.noise_dim})")
        given = torch.cat([condition, noise], dim=1)
        x = self.stem(given).unflatten(1, (config.base_width, 4, 4))
        active = self.training or variety
        for index, stage in enumerate(self.stages):
            if config.stage_condition:
                joined = self.stage_conditions[index](given)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
                x = torch.cat([x, joined], dim=1)
            x = stage(x, dropout=config.dropout, active=active)
        return torch.sigmoid(self.to_image(x))
