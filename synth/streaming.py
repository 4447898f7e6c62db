"""Streaming phase reconstruction for live use: mel frames in, exactly ``hop`` samples out per frame.

:class:`StreamingInverter` runs the same PGHI recursion as :func:`synth.phase.pghi_phase`, one frame at a
time with one frame of look-ahead (the time derivative of the log-magnitude at frame ``m`` needs frame
``m + 1``), and overlap-adds with the same window normalisation as ``torch.istft``. Its output is the
offline ``method="pghi"`` output delayed by :attr:`StreamingInverter.latency_samples`
(``hop + n_fft // 2``): equal up to float rounding.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from models.errors import ParameterError
from synth.phase import centred_to_stft_phase, pghi_step, pghi_terms
from synth.spectral import SpectralConfig, check_mel, mel_to_magnitude, normalized_db_to_amplitude

__all__ = ["StreamingInverter"]


class StreamingInverter:
    """Phase-continuous mel → audio, frame by frame.

    Parameters
    ----------
    config : SpectralConfig

    Example
    -------
    >>> from synth.spectral import SpectralConfig
    >>> cfg = SpectralConfig()
    >>> inv = StreamingInverter(config=cfg)
    >>> inv.push(torch.zeros(cfg.n_mels, 4)).shape   # 4 frames → 4 hops
    torch.Size([1024])
    >>> inv.flush().shape                            # the look-ahead and window tail
    torch.Size([768])
    """

    def __init__(self, *, config: SpectralConfig) -> None:
        self.config = config
        self.latency_samples = config.hop_length + config.n_fft // 2
        window = torch.hann_window(config.n_fft, periodic=True, dtype=torch.float64)
        self._window = window
        self._window_sq = window**2
        self.reset()

    def reset(self) -> None:
        """Forget all state (the next frame starts a new signal)."""
        n_fft = self.config.n_fft
        self._frames: list[torch.Tensor] = []  # up to 3 magnitude frames (K,), float64: m-1, m, m+1
        self._first_index = 0  # absolute index of self._frames[0]
        self._phase = torch.zeros(1, self.config.n_freqs, dtype=torch.float64)
        self._has_phase = False
        self._ola = torch.zeros(n_fft, dtype=torch.float64)  # padded-signal samples not yet emitted
        self._env = torch.zeros(n_fft, dtype=torch.float64)
        self._n_done = 0  # frames reconstructed and overlap-added
        self._n_emitted = 0  # padded-signal samples emitted so far

    def push(self, mel: Any) -> torch.Tensor:
        """Feed normalised log-mel frames ``(n_mels,)`` or ``(n_mels, n)``; returns ``n * hop`` samples."""
        mel = check_mel(torch.as_tensor(mel).reshape(self.config.n_mels, -1), config=self.config)
        magnitude = mel_to_magnitude(normalized_db_to_amplitude(mel.double(), config=self.config), config=self.config)
        return self.push_magnitude(magnitude)

    def push_magnitude(self, magnitude: Any) -> torch.Tensor:
        """Feed STFT magnitude frames ``(n_freqs,)`` or ``(n_freqs, n)``; returns ``n * hop`` samples."""
        magnitude = torch.as_tensor(magnitude, dtype=torch.float64)
        magnitude = magnitude.reshape(magnitude.shape[0], -1) if magnitude.ndim else magnitude
        if magnitude.ndim != 2 or magnitude.shape[0] != self.config.n_freqs:
            raise ParameterError(
                f"magnitude frames must have shape ({self.config.n_freqs},) or ({self.config.n_freqs}, n); "
                f"got {tuple(magnitude.shape)}"
            )
        if not torch.isfinite(magnitude).all():
            raise ParameterError("magnitude frames contain NaN or inf values")
        hop = self.config.hop_length
        out = []
        for column in magnitude.T:
            self._frames.append(column.clamp_min(0.0))
            if len(self._frames) >= 2:
                self._reconstruct(last=False)
            out.append(self._emit(hop) if self._n_done else torch.zeros(hop, dtype=torch.float64))
        if not out:
            return torch.zeros(0)
        return torch.cat(out).float()

    def flush(self) -> torch.Tensor:
        """Finish the signal: reconstruct the last frame and return the remaining ``latency_samples``."""
        if not self._frames:
            return torch.zeros(0)
        self._reconstruct(last=True)
        tail = self._emit(self.latency_samples)
        self.reset()
        return tail.float()

    def _reconstruct(self, *, last: bool) -> None:
        """Phase for the current frame (the one before the look-ahead, or the last one) and overlap-add."""
        frames = self._frames
        has_previous = self._has_phase
        block = torch.stack(frames, dim=1)[None]  # (1, K, n)
        terms = pghi_terms(block, config=self.config, first_frame=self._first_index, has_previous=has_previous)
        column = len(frames) - 1 if last else len(frames) - 2
        term_index = column - (1 if has_previous else 0)
        time_step, use_time, anchor, offset = (t[term_index] for t in terms)
        self._phase = pghi_step(self._phase, time_step, use_time, anchor, offset)
        self._has_phase = True
        magnitude = frames[column]
        phase = centred_to_stft_phase(self._phase[0], n_freqs=self.config.n_freqs, dim=0)
        frame = torch.fft.irfft(torch.polar(magnitude, phase), n=self.config.n_fft) * self._window
        self._ola += frame
        self._env += self._window_sq
        self._n_done += 1
        if len(frames) == 3:
            frames.pop(0)
            self._first_index += 1

    def _emit(self, n_samples: int) -> torch.Tensor:
        """Pop ``n_samples`` finished samples, normalised; samples before the signal start become zeros."""
        chunk = self._ola[:n_samples] / torch.where(self._env[:n_samples] > 1e-11, self._env[:n_samples], 1.0)
        before_start = max(0, min(n_samples, self.config.n_fft // 2 - self._n_emitted))
        chunk[:before_start] = 0.0
        self._ola = torch.cat([self._ola[n_samples:], torch.zeros(n_samples, dtype=torch.float64)])
        self._env = torch.cat([self._env[n_samples:], torch.zeros(n_samples, dtype=torch.float64)])
        self._n_emitted += n_samples
        return chunk


def _per_hop_cost_ms(config: SpectralConfig, n_frames: int = 400) -> list[float]:
    """Time per pushed frame in ms (used by the benchmark)."""
    import time

    inv = StreamingInverter(config=config)
    t = torch.arange(n_frames * config.hop_length) / config.sample_rate
    from synth.spectral import audio_to_mel

    mel = audio_to_mel(0.3 * torch.sin(2 * math.pi * 330 * t), config=config)
    costs = []
    for m in range(mel.shape[-1]):
        start = time.perf_counter()
        inv.push(mel[:, m])
        costs.append((time.perf_counter() - start) * 1e3)
    return costs
