"""The multimodal layers and the sound → image-feature generator of the multimodal feature-GAN paper.

Two parts, one checkpoint:

* **Multimodal layers**: image features ``f_i`` (from :class:`models.image_classifier.ImageClassifier`) and sound
  features ``f_a`` (the audio encoder's code) map into one hidden layer: ``pre = (m_i·W_i f_i + m_a·W_a f_a) /
  (m_i + m_a) + b`` with ``m`` = 1 for each modality present, and ``hidden = tanh(pre)``. Training
  (:mod:`training.train_multimodal`) makes the code the same for image-only, sound-only and both inputs, and
  rebuilds both feature vectors from any of them. :meth:`MultimodalFeatures.shared` returns the code before or
  after the activation; nearest neighbours across modalities in that space are the paper's class-match measure.
* **Feature-to-feature generator**: sound features and noise → image features (an MLP with dropout kept on for
  variety), trained adversarially; :class:`models.image_generator.ImageGenerator` conditioned on image features
  then draws the picture (the feature-to-image GAN).

Example
-------
>>> import torch
>>> model = MultimodalFeatures(MultimodalConfig(image_feature_dim=8, audio_feature_dim=6, hidden_dim=16))
>>> tuple(model.shared(audio_features=torch.rand(3, 6)).shape), tuple(model.image_features_from_sound(torch.rand(3, 6)).shape)
((3, 16), (3, 8))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints
from models.errors import ParameterError

__all__ = ["MultimodalConfig", "MultimodalFeatures"]


@dataclass
class MultimodalConfig:
    """image_feature_dim, audio_feature_dim : input feature sizes.  hidden_dim : the shared code's size.
    generator_width : hidden width of the feature-to-feature generator.  noise_dim : its noise input.
    dropout : its dropout, kept on with ``variety``."""

    image_feature_dim: int = 64
    audio_feature_dim: int = 64
    hidden_dim: int = 128
    generator_width: int = 256
    noise_dim: int = 16
    dropout: float = 0.2

    def __post_init__(self) -> None:
        check_positive_ints(self, "image_feature_dim", "audio_feature_dim", "hidden_dim", "generator_width", "noise_dim")
        if not 0.0 <= self.dropout < 1.0:
            raise ParameterError(f"MultimodalConfig.dropout={self.dropout}; expected a number in [0, 1)")


class MultimodalFeatures(CheckpointMixin, nn.Module):
    """Shared code of image and/or sound features, both features rebuilt from it, and sound → image features."""

    checkpoint_kind = "multimodal"
    config_class = MultimodalConfig

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        self.config = config
        self.image_in = nn.Linear(config.image_feature_dim, config.hidden_dim, bias=False)
        self.audio_in = nn.Linear(config.audio_feature_dim, config.hidden_dim, bias=False)
        self.bias = nn.Parameter(torch.zeros(config.hidden_dim))
        self.image_out = nn.Linear(config.hidden_dim, config.image_feature_dim)
        self.audio_out = nn.Linear(config.hidden_dim, config.audio_feature_dim)
        width = config.generator_width
        self.feature_generator = nn.ModuleList([
            nn.Linear(config.audio_feature_dim + config.noise_dim, width),
            nn.Linear(width, width),
            nn.Linear(width, config.image_feature_dim),
        ])

    def shared(self, *, image_features: Tensor | None = None, audio_features: Tensor | None = None,
               activated: bool = True) -> Tensor:
        """The shared code ``(B, hidden_dim)`` of image features, sound features or both; ``activated=False``
        gives it before the tanh."""
        parts = []
        if image_features is not None:
            parts.append(self.image_in(image_features))
        if audio_features is not None:
            parts.append(self.audio_in(audio_features))
        if not parts:
            raise ParameterError("shared() needs image_features, audio_features or both")
        pre = torch.stack(parts).mean(dim=0) + self.bias
        return torch.tanh(pre) if activated else pre

    def reconstruct(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """Both feature vectors from an (activated) shared code: ``(image (B, Fi), audio (B, Fa))``; image
        features are ≥ 0, as the classifier's are."""
        return F.relu(self.image_out(hidden)), self.audio_out(hidden)

    def image_features_from_sound(self, audio_features: Tensor, noise: Tensor | None = None, *,
                                  variety: bool = False) -> Tensor:
        """Sound features ``(B, Fa)`` (and noise ``(B, noise_dim)``, zeros if None) → image features ``(B, Fi)``."""
        if noise is None:
            noise = audio_features.new_zeros(len(audio_features), self.config.noise_dim)
        x = torch.cat([audio_features, noise], dim=1)
        active = self.training or variety
        for layer in self.feature_generator[:-1]:
            x = F.dropout(F.silu(layer(x)), p=self.config.dropout, training=active)
        return F.relu(self.feature_generator[-1](x))
