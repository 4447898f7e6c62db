"""A small VAE over windows of normalised log-mel frames.

The decoder runs live inside an audio callback, so the network is a plain MLP over the flattened
window: a single-latent decode is a handful of matrix-vector products (tens of microseconds on one
CPU thread for ``n_frames ≤ 16``), with no per-layer convolution overhead.

The spectral config that produced the training mels (sample rate, n_fft, hop, mel scale, dB range, ...)
is kept in the config as a plain dict, so it travels in the checkpoint. ``models`` does not import
``synth``; callers compare their own config with :meth:`AudioVAE.check_spectral`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints, check_spectral_match, config_to_dict
from models.errors import ParameterError
from models.image_vae import reparameterize

__all__ = ["AudioVAEConfig", "AudioVAE"]


def _mlp(in_features: int, hidden_width: int, n_hidden_layers: int, out_features: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(n_hidden_layers):
        layers += [nn.Linear(in_features, hidden_width), nn.SiLU()]
        in_features = hidden_width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


@dataclass
class AudioVAEConfig:
    """Hyper-parameters that fully determine an :class:`AudioVAE`.

    Parameters
    ----------
    n_mels : mel bands per frame; equals ``spectral["n_mels"]`` when that is given.
    n_frames : frames per window (≥ 1); 1 models single frames, as in the research's live demo.
    latent_dim : size of the latent vector.
    hidden_width : width of each hidden layer of the encoder and decoder MLPs.
    n_hidden_layers : hidden layers in each of the encoder and decoder.
    spectral : the synth spectral config (``dataclasses.asdict`` of it) the mels were computed with.
    fourier_octaves : 0, or how many octaves of sine/cosine features of the latent (frequencies π·2^k,
        k < fourier_octaves) the decoder reads beside the latent itself. A plain MLP is slow to learn outputs
        that change sharply along a latent axis (a sine's narrow mel peak moving with the pitch dim); these
        features make them easy.
    encoder_floor_db : None, or a level in the spectral config's dB units (between its ``db_floor`` and
        ``db_ceiling``) below which the encoder reads every mel value as this level: it does not see what lies
        beneath. Real files carry noise there whose level depends on how they were written, not on the sound
        (16-bit quantisation reaches −69 dB in the squares-sines config's 8 kHz mels, but −77 dB from a
        22.05 kHz file), so a model that reads it places the same tone differently at different sample rates
        and bit depths. The decoder still writes the whole range.
    encoder_range_db : None, or how many dB below the loudest value of each window the encoder still reads; lower
        values are read as that level (or as ``encoder_floor_db``, whichever is higher). What lies that far below
        a loud sound is masked for a listener, and lossy codecs put their noise there: Ogg Vorbis spreads a loud
        sine's energy into bands 60 dB below its peak, which read as a far louder tone.
    """

    n_mels: int = 64
    n_frames: int = 1
    latent_dim: int = 4
    hidden_width: int = 256
    n_hidden_layers: int = 2
    spectral: dict[str, Any] = field(default_factory=dict)
    fourier_octaves: int = 0
    encoder_floor_db: float | None = None
    encoder_range_db: float | None = None

    # sizes a checkpoint's config may state (checked before building: models.checkpoint.check_config_bounds)
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "n_mels": (1, 1024), "n_frames": (1, 4096), "latent_dim": (1, 4096), "hidden_width": (1, 65536),
        "n_hidden_layers": (1, 64), "fourier_octaves": (0, 32),
    }

    def __post_init__(self) -> None:
        check_positive_ints(self, "n_mels", "n_frames", "latent_dim", "hidden_width", "n_hidden_layers")
        if isinstance(self.fourier_octaves, bool) or not isinstance(self.fourier_octaves, int) or self.fourier_octaves < 0:
            raise ParameterError(f"AudioVAEConfig.fourier_octaves={self.fourier_octaves!r}; expected an int >= 0")
        if not isinstance(self.spectral, dict):
            raise ParameterError(f"AudioVAEConfig.spectral is a {type(self.spectral).__name__}; expected a dict")
        self.spectral = config_to_dict(self.spectral)  # plain and canonical (tuples → lists), as once saved
        spectral_mels = self.spectral.get("n_mels", self.n_mels)
        if spectral_mels != self.n_mels:
            raise ParameterError(
                f"AudioVAEConfig.n_mels={self.n_mels} but spectral['n_mels']={spectral_mels}; they must agree"
            )
        if self.encoder_floor_db is not None or self.encoder_range_db is not None:
            self._check_encoder_limits()

    def _check_encoder_limits(self) -> None:
        low, high = self.spectral.get("db_floor"), self.spectral.get("db_ceiling")
        if low is None or high is None:
            raise ParameterError("AudioVAEConfig.encoder_floor_db and encoder_range_db need a spectral config with "
                                 "db_floor and db_ceiling")
        floor, span = self.encoder_floor_db, self.encoder_range_db
        if floor is not None and (isinstance(floor, bool) or not isinstance(floor, (int, float)) or not low <= floor < high):
            raise ParameterError(
                f"AudioVAEConfig.encoder_floor_db={floor!r}; expected a level in dB from db_floor={low} up to "
                f"db_ceiling={high}"
            )
        if span is not None and (isinstance(span, bool) or not isinstance(span, (int, float)) or not 0 < span):
            raise ParameterError(f"AudioVAEConfig.encoder_range_db={span!r}; expected a positive number of dB")

    def encoder_limits(self) -> tuple[float, float | None]:
        """(``encoder_floor_db``, ``encoder_range_db``) in normalised mel units: (0, None) when unset."""
        low, high = self.spectral.get("db_floor", 0.0), self.spectral.get("db_ceiling", 1.0)
        floor = 0.0 if self.encoder_floor_db is None else (self.encoder_floor_db - low) / (high - low)
        span = None if self.encoder_range_db is None else self.encoder_range_db / (high - low)
        return floor, span


class AudioVAE(CheckpointMixin, nn.Module):
    """MLP VAE: mel windows ``(B, n_mels, n_frames)`` in [0, 1] ↔ latents ``(B, latent_dim)``.

    Inputs are log-mel frames normalised to [0, 1] by the spectral config's dB range; the decoder ends
    in a sigmoid, so decoded windows are in the same range.

    Examples
    --------
    >>> vae = AudioVAE(AudioVAEConfig(n_mels=64, n_frames=4, latent_dim=3)).eval()
    >>> with torch.inference_mode():
    ...     mel = vae.decode(torch.zeros(1, 3))
    >>> tuple(mel.shape)
    (1, 64, 4)
    """

    checkpoint_kind = "audio_vae"
    config_class = AudioVAEConfig

    def __init__(self, config: AudioVAEConfig) -> None:
        super().__init__()
        self.config = config
        n_values = config.n_mels * config.n_frames
        self.encoder = _mlp(n_values, config.hidden_width, config.n_hidden_layers, 2 * config.latent_dim)
        decoder_inputs = config.latent_dim * (1 + 2 * config.fourier_octaves)
        self.decoder = _mlp(decoder_inputs, config.hidden_width, config.n_hidden_layers, n_values)
        self._encoder_limits = config.encoder_limits()

    def check_spectral(self, other: dict[str, Any]) -> None:
        """Raise CheckpointError unless ``other`` equals the spectral config this model was trained with.

        ``other`` is the caller's spectral config as a dict (``dataclasses.asdict``); the message lists
        every field that differs, with both values.
        """
        check_spectral_match(self.config.spectral, other, model="audio model")

    def encode(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        """Mel windows ``(B, n_mels, n_frames)`` in [0, 1] → ``(mu, logvar)``, each ``(B, latent_dim)``.

        Values below the config's ``encoder_floor_db``, or more than ``encoder_range_db`` below their window's
        loudest value, are read as that level.
        """
        expected = (self.config.n_mels, self.config.n_frames)
        if not isinstance(mel, Tensor) or mel.ndim != 3 or tuple(mel.shape[1:]) != expected:
            shape = tuple(mel.shape) if isinstance(mel, Tensor) else type(mel).__name__
            raise ParameterError(f"mel batch has shape {shape}; expected (B, {expected[0]}, {expected[1]})")
        if not mel.is_floating_point():
            raise ParameterError(f"mel batch has dtype {mel.dtype}; expected floats in [0, 1]")
        floor, span = self._encoder_limits
        if span is not None:
            mel = torch.maximum(mel, (mel.amax(dim=(1, 2), keepdim=True) - span).clamp_min(floor))
        elif floor > 0:
            mel = mel.clamp_min(floor)
        mu, logvar = self.encoder(mel.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` → pre-sigmoid mel windows ``(B, n_mels, n_frames)``."""
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ParameterError(f"latent batch has shape {shape}; expected (B, {self.config.latent_dim})")
        return self.decoder(self._decoder_input(z)).unflatten(1, (self.config.n_mels, self.config.n_frames))

    def _decoder_input(self, z: Tensor) -> Tensor:
        """``(B, latent_dim)`` → ``(B, latent_dim · (1 + 2 · fourier_octaves))``: z, then sin and cos features."""
        if not self.config.fourier_octaves:
            return z
        frequencies = torch.pi * 2.0 ** torch.arange(self.config.fourier_octaves, device=z.device, dtype=z.dtype)
        phases = (z[:, :, None] * frequencies).flatten(1)
        return torch.cat([z, torch.sin(phases), torch.cos(phases)], dim=1)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(B, latent_dim)`` → mel windows ``(B, n_mels, n_frames)`` in [0, 1].

        For live use call it under ``torch.inference_mode()`` with ``torch.set_num_threads(1)``.
        """
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mel windows ``(B, n_mels, n_frames)`` → ``(mel_hat, mu, logvar)``.

        In training mode ``mel_hat`` decodes a sample of ``N(mu, exp(logvar))``; in eval mode it decodes ``mu``.
        """
        mu, logvar = self.encode(mel)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar
