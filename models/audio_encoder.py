"""The audio autoencoder of Sound-to-Imagination: 1-second log-mels ↔ a code that conditions the image generator.

A small 2-D convolutional encoder reads a normalised log-mel window ``(n_mels, n_frames)`` (one second) and
returns a code ``(code_dim,)``; an MLP decoder rebuilds the window from the code (a transposed-convolution
decoder made training 5× slower on this CPU, and only the encoder is kept in use). Sound-to-Imagination
trains the autoencoder on sound alone and freezes the encoder to condition the GAN. When the training sounds
have classes (spoken digits), an optional linear head (``n_classes > 0``) reads the code, as the
per-modality classifiers of the multimodal feature-GAN paper give their features; the code then also serves
as the *sound features* of :mod:`models.multimodal`. When the sounds come paired with pictures of objects
(rendered scenes), a second optional linear head (``n_objects > 0``) reads the paired picture's object measures
(count and extent, :func:`training.object_reader.object_targets`) from the code, so that what the picture
shows is kept in the code the generator is conditioned on.

The spectral config the mels were made with travels in the config (``spectral``, a plain dict); callers
compare theirs with :meth:`AudioAutoencoder.check_spectral`.

Example
-------
>>> import torch
>>> model = AudioAutoencoder(AudioEncoderConfig(n_mels=32, n_frames=32, code_dim=16))
>>> code = model.encode(torch.rand(2, 32, 32))
>>> tuple(code.shape), tuple(model.decode(code).shape)
((2, 16), (2, 32, 32))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints, check_spectral_match
from models.errors import ParameterError

__all__ = ["AudioEncoderConfig", "AudioAutoencoder"]


@dataclass
class AudioEncoderConfig:
    """Hyper-parameters that fully determine an :class:`AudioAutoencoder`.

    n_mels, n_frames : the window's shape; both divisible by ``2 ** n_layers``.
    code_dim : size of the code.
    base_width : channels of the first convolution; each later one doubles it, up to ``4 · base_width``.
    n_layers : stride-2 convolutions in the encoder.
    decoder_width : hidden width of the MLP decoder.
    n_classes : 0 for none, else the size of the class head on the code.
    n_objects : 0 for none, else the size of the object-measure head on the code.
    spectral : the synth spectral config (as a dict) the mels were computed with.
    """

    n_mels: int = 32
    n_frames: int = 32
    code_dim: int = 64
    base_width: int = 16
    n_layers: int = 3
    decoder_width: int = 256
    n_classes: int = 0
    n_objects: int = 0
    spectral: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_positive_ints(self, "n_mels", "n_frames", "code_dim", "base_width", "n_layers", "decoder_width")
        for name in ("n_classes", "n_objects"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ParameterError(f"AudioEncoderConfig.{name}={value!r}; expected an int >= 0")
        step = 2**self.n_layers
        if self.n_mels % step or self.n_frames % step:
            raise ParameterError(f"AudioEncoderConfig n_mels={self.n_mels}, n_frames={self.n_frames}; both must be "
                                 f"divisible by 2**n_layers = {step}")
        if self.spectral and self.spectral.get("n_mels") != self.n_mels:
            raise ParameterError(f"AudioEncoderConfig.n_mels={self.n_mels} but spectral n_mels={self.spectral.get('n_mels')}")

    def widths(self) -> list[int]:
        return [min(self.base_width * 2**i, 4 * self.base_width) for i in range(self.n_layers)]


class AudioAutoencoder(CheckpointMixin, nn.Module):
    """Encoder, decoder, optional class head and optional object head over normalised log-mel windows in [0, 1]."""

    checkpoint_kind = "audio_autoencoder"
    config_class = AudioEncoderConfig

    def __init__(self, config: AudioEncoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths()
        layers: list[nn.Module] = []
        in_channels = 1
        for width in widths:
            layers += [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.GroupNorm(4, width), nn.SiLU()]
            in_channels = width
        self.encoder = nn.Sequential(*layers)
        self._grid = (config.n_mels >> config.n_layers, config.n_frames >> config.n_layers)
        flat = widths[-1] * self._grid[0] * self._grid[1]
        self.to_code = nn.Linear(flat, config.code_dim)
        self.decoder = nn.Sequential(nn.Linear(config.code_dim, config.decoder_width), nn.SiLU(),
                                     nn.Linear(config.decoder_width, config.n_mels * config.n_frames))
        self.classifier = nn.Linear(config.code_dim, config.n_classes) if config.n_classes else None
        self.object_head = nn.Linear(config.code_dim, config.n_objects) if config.n_objects else None

    def _check_mel(self, mel: Tensor) -> None:
        expected = (self.config.n_mels, self.config.n_frames)
        if not isinstance(mel, Tensor) or mel.ndim != 3 or tuple(mel.shape[1:]) != expected:
            shape = tuple(mel.shape) if isinstance(mel, Tensor) else type(mel).__name__
            raise ParameterError(f"mel batch has shape {shape}; expected (B, {expected[0]}, {expected[1]})")

    def encode(self, mel: Tensor) -> Tensor:
        """Mels ``(B, n_mels, n_frames)`` in [0, 1] → codes ``(B, code_dim)``."""
        self._check_mel(mel)
        return self.to_code(self.encoder(mel[:, None]).flatten(1))

    def decode(self, code: Tensor) -> Tensor:
        """Codes ``(B, code_dim)`` → mels ``(B, n_mels, n_frames)`` in [0, 1]."""
        return torch.sigmoid(self.decoder(code)).unflatten(1, (self.config.n_mels, self.config.n_frames))

    def classify(self, code: Tensor) -> Tensor:
        """Codes ``(B, code_dim)`` → class logits ``(B, n_classes)``; ParameterError without a class head."""
        if self.classifier is None:
            raise ParameterError("this audio autoencoder has no class head (n_classes=0)")
        return self.classifier(code)

    def read_objects(self, code: Tensor) -> Tensor:
        """Codes ``(B, code_dim)`` → object measures ``(B, n_objects)``; ParameterError without an object head."""
        if self.object_head is None:
            raise ParameterError("this audio autoencoder has no object head (n_objects=0)")
        return self.object_head(code)

    def forward(self, mel: Tensor) -> Tensor:
        """Encode then decode: the reconstruction ``(B, n_mels, n_frames)``."""
        return self.decode(self.encode(mel))

    def check_spectral(self, spectral: Any) -> None:
        """CheckpointError unless ``spectral`` (a SpectralConfig or dict) equals the one this model was trained on."""
        check_spectral_match(self.config.spectral, spectral, model="audio autoencoder")
