"""Sound → images learnt from paired examples (Sound-to-Imagination and the multimodal feature-GAN path).

Unlike :mod:`bridge.sonify.reverse` (the image ↔ sound models run backwards, trained without pairs), this
uses a preset trained on *paired* sounds and pictures (:mod:`models.imagination`): the sound's one-second
windows (:func:`synth.sound_windows.sound_file_windows`: a short sound is centred in one window, a longer one
gives a window every ``hop_s`` seconds) → the frozen audio encoder → the conditional generator.
:func:`imagine_file` does a file; :class:`ImaginationVisualModels` lets the live visualizer
(:class:`bridge.sonify.reverse.StreamingVisualizer`) see a session's sound the same way.

Example
-------
>>> from models.imagination import Imagination                                         # doctest: +SKIP
>>> result = imagine_file("seven.wav", imagination=Imagination.from_preset("spoken-digits"), n_samples=4)  # doctest: +SKIP
>>> result.images.shape                                                                # doctest: +SKIP
(1, 4, 1, 32, 32)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.errors import ParameterError

__all__ = ["ImagineResult", "imagine_file", "ImaginationVisualModels"]


@dataclass
class ImagineResult:
    """images ``(n_windows, n_samples, C, S, S)`` in [0, 1]; codes ``(n_windows, code_dim)``; start_s ``(n_windows,)``."""

    images: np.ndarray
    codes: np.ndarray
    start_s: np.ndarray
    duration_s: float


def imagine_file(path: str | os.PathLike, *, imagination, n_samples: int = 1, variety: bool = True, seed: int = 0,
                 hop_s: float = 0.5, through: str = "code") -> ImagineResult:
    """The images ``imagination`` (a :class:`models.imagination.Imagination`) sees in the sound file ``path``."""
    import torch

    from synth.sound_windows import sound_file_windows
    from synth.spectral import SpectralConfig

    if through not in ("code", "features"):
        raise ParameterError(f"through={through!r}; expected 'code' or 'features'")
    config = SpectralConfig.from_dict(imagination.spectral_config)
    windows = sound_file_windows(path, config=config, window_frames=imagination.window_frames, hop_s=hop_s)
    with torch.inference_mode():
        codes = imagination.encode(windows.mel)
        if through == "code":
            images = imagination.imagine(windows.mel, n_samples=n_samples, variety=variety, seed=seed)
        else:
            images = torch.stack([imagination.imagine_through_features(windows.mel, variety=variety, seed=seed + k)
                                  for k in range(n_samples)], dim=1)
    return ImagineResult(images=images.numpy(), codes=codes.numpy(), start_s=windows.start_s,
                         duration_s=windows.duration_s)


class _CodeEncoder:
    """``encode(windows) → (codes, None)``: the audio VAE's signature, for the streaming analyser."""

    def __init__(self, imagination) -> None:
        self._imagination = imagination

    def encode(self, mel):
        return self._imagination.encode(mel), None


class ImaginationVisualModels:
    """A :class:`models.imagination.Imagination` seen through the models interface of the streaming visualizer."""

    def __init__(self, imagination) -> None:
        self.imagination = imagination
        self.audio_vae = _CodeEncoder(imagination)

    @property
    def spectral_config(self) -> dict[str, Any]:
        return self.imagination.spectral_config

    @property
    def window_frames(self) -> int:
        return self.imagination.window_frames

    @property
    def audio_latent_dim(self) -> int:
        return self.imagination.code_dim

    def audio_to_image_latent(self, code):
        return code

    def decode_images(self, code):
        return self.imagination.generate(code, variety=False)
