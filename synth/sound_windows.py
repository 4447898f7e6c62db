"""A sound file → the one-second log-mel windows a sound → image model reads, with their times.

``imgsonic imagine`` and the evaluation of the sound → image presets both read sound files through
:func:`sound_file_windows`, so what is measured is what a user gets.

* Any format and rate :func:`synth.audio_io.read_audio` reads; stereo is mixed to mono and the audio is resampled
  to the spectral config's rate.
* A sound no longer than one window is **centred** in a window of silence (a spoken word is one window).
* A longer sound gives windows every ``hop_s`` seconds from its start; the last window ends at the sound's end, so
  every sample is seen.

Example
-------
>>> windows = sound_file_windows("seven.wav", config=config, window_frames=32)   # doctest: +SKIP
>>> windows.mel.shape, windows.start_s                                          # doctest: +SKIP
(torch.Size([1, 32, 32]), array([0.]))
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from models.errors import InputError, ParameterError
from synth.audio_io import read_audio
from synth.spectral import SpectralConfig, audio_to_mel

__all__ = ["SoundWindows", "window_samples", "audio_windows", "sound_file_windows"]


@dataclass
class SoundWindows:
    """mel ``(n, n_mels, window_frames)`` normalised log-mels; start_s ``(n,)`` each window's start in the sound
    (negative when a short sound is centred); duration_s: the sound's length."""

    mel: torch.Tensor
    start_s: np.ndarray
    duration_s: float


def window_samples(*, config: SpectralConfig, window_frames: int) -> int:
    """Samples in one window: ``window_frames`` hops (frame ``k`` is centred on sample ``k · hop``)."""
    return window_frames * config.hop_length


def audio_windows(audio: np.ndarray, *, config: SpectralConfig, window_frames: int, hop_s: float = 0.5) -> SoundWindows:
    """Windows of mono ``audio`` ``(n,)`` at ``config.sample_rate``; see the module docstring."""
    if isinstance(window_frames, bool) or not isinstance(window_frames, int) or window_frames < 1:
        raise ParameterError(f"window_frames={window_frames!r}; expected an int >= 1")
    if not (isinstance(hop_s, (int, float)) and math.isfinite(hop_s) and 0.01 <= hop_s <= 60):
        raise ParameterError(f"hop_s={hop_s!r}; expected seconds in 0.01…60")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or len(audio) == 0:
        raise InputError(f"audio has shape {audio.shape}; expected (n_samples ≥ 1,)")
    if not np.isfinite(audio).all():
        raise InputError("audio contains NaN or inf samples; expected finite audio")
    rate = config.sample_rate
    size = window_samples(config=config, window_frames=window_frames)
    if len(audio) <= size:
        offset = (size - len(audio)) // 2
        segments = np.zeros((1, size), dtype=np.float32)
        segments[0, offset : offset + len(audio)] = audio
        starts = np.array([-offset / rate])
    else:
        hop = max(1, round(hop_s * rate))
        first = list(range(0, len(audio) - size + 1, hop))
        if first[-1] != len(audio) - size:
            first.append(len(audio) - size)
        segments = np.stack([audio[start : start + size] for start in first])
        starts = np.array(first) / rate
    mel = torch.cat([audio_to_mel(torch.from_numpy(chunk), config=config)[..., :window_frames]
                     for chunk in np.array_split(segments, max(1, len(segments) // 256))])
    return SoundWindows(mel=mel.contiguous(), start_s=starts, duration_s=len(audio) / rate)


def sound_file_windows(path: str | os.PathLike, *, config: SpectralConfig, window_frames: int,
                       hop_s: float = 0.5) -> SoundWindows:
    """Windows of the sound file ``path`` (any format :func:`synth.audio_io.read_audio` reads, any rate)."""
    audio = read_audio(path, sample_rate=config.sample_rate, channels=1)[0]
    if audio.size == 0:
        raise InputError(f"audio file {str(path)!r} contains no samples; expected audio with at least one sample")
    return audio_windows(audio, config=config, window_frames=window_frames, hop_s=hop_s)
