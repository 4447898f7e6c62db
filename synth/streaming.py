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

import numpy as np

from models.errors import ParameterError
from synth.phase import centred_to_stft_phase, pghi_step, pghi_terms
from synth.spectral import SpectralConfig, mel_to_magnitude

__all__ = ["StreamingInverter"]


class StreamingInverter:
    """Phase-continuous mel → audio, frame by frame (numpy, CPU: it runs inside audio callbacks).

    Parameters
    ----------
    config : SpectralConfig

    Example
    -------
    >>> from synth.spectral import SpectralConfig
    >>> cfg = SpectralConfig()
    >>> inv = StreamingInverter(config=cfg)
    >>> inv.push(np.zeros((cfg.n_mels, 4))).shape   # 4 frames → 4 hops of float32 samples
    (1024,)
    >>> inv.flush().shape                            # the look-ahead and window tail
    (768,)
    """

    def __init__(self, *, config: SpectralConfig) -> None:
        self.config = config
        self.latency_samples = config.hop_length + config.n_fft // 2
        self._window = 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(config.n_fft) / config.n_fft)
        self._window_sq = self._window**2
        self.reset()

    def reset(self) -> None:
        """Forget all state (the next frame starts a new signal)."""
        n_fft = self.config.n_fft
        self._frames: list[np.ndarray] = []  # up to 3 magnitude frames (K,): m-1, m, m+1
        self._first_index = 0  # absolute index of self._frames[0]
        self._phase = np.zeros((1, self.config.n_freqs))
        self._has_phase = False
        self._ola = np.zeros(n_fft)  # padded-signal samples not yet emitted
        self._env = np.zeros(n_fft)
        self._n_done = 0  # frames reconstructed and overlap-added
        self._n_emitted = 0  # padded-signal samples emitted so far

    def push(self, mel: Any) -> np.ndarray:
        """Feed normalised log-mel frames ``(n_mels,)`` or ``(n_mels, n)`` in ``[0, 1]``.

        Returns ``n * hop`` float32 samples: the signal delayed by ``latency_samples``.
        """
        mel = np.asarray(mel, dtype=np.float64)
        if mel.ndim not in (1, 2) or mel.shape[0] != self.config.n_mels:
            raise ParameterError(
                f"mel frames must have shape ({self.config.n_mels},) or ({self.config.n_mels}, n); "
                f"got {mel.shape}"
            )
        if not np.isfinite(mel).all():
            raise ParameterError("mel frames contain NaN or inf values")
        cfg = self.config
        amplitude = np.power(10.0, (mel.reshape(cfg.n_mels, -1) * (cfg.db_ceiling - cfg.db_floor) + cfg.db_floor) / 20)
        return self._push(mel_to_magnitude(amplitude, config=cfg))

    def push_magnitude(self, magnitude: Any) -> np.ndarray:
        """Feed STFT magnitude frames ``(n_freqs,)`` or ``(n_freqs, n)``; returns ``n * hop`` samples."""
        magnitude = np.asarray(magnitude, dtype=np.float64)
        if magnitude.ndim not in (1, 2) or magnitude.shape[0] != self.config.n_freqs:
            raise ParameterError(
                f"magnitude frames must have shape ({self.config.n_freqs},) or ({self.config.n_freqs}, n); "
                f"got {magnitude.shape}"
            )
        if not np.isfinite(magnitude).all():
            raise ParameterError("magnitude frames contain NaN or inf values")
        return self._push(np.maximum(magnitude.reshape(self.config.n_freqs, -1), 0.0))

    def flush(self) -> np.ndarray:
        """Finish the signal: reconstruct the last frame and return the remaining ``latency_samples``."""
        if not self._frames:
            return np.zeros(0, dtype=np.float32)
        self._reconstruct(last=True)
        tail = self._emit(self.latency_samples)
        self.reset()
        return tail

    def _push(self, magnitude: np.ndarray) -> np.ndarray:
        hop = self.config.hop_length
        out = np.zeros(magnitude.shape[1] * hop, dtype=np.float32)
        for i in range(magnitude.shape[1]):
            self._frames.append(magnitude[:, i])
            if len(self._frames) >= 2:
                self._reconstruct(last=False)
            if self._n_done:
                out[i * hop : (i + 1) * hop] = self._emit(hop)
        return out

    def _reconstruct(self, *, last: bool) -> None:
        """Phase for the current frame (the one before the look-ahead, or the last one), then overlap-add."""
        frames = self._frames
        has_previous = self._has_phase
        block = np.stack(frames)[:, None, :]  # (n, 1, K)
        terms = pghi_terms(block, config=self.config, first_frame=self._first_index, has_previous=has_previous)
        row = (len(frames) - 1 if last else len(frames) - 2) - (1 if has_previous else 0)
        self._phase = pghi_step(self._phase, *(term[row] for term in terms))
        self._has_phase = True
        magnitude = frames[row + (1 if has_previous else 0)]
        spectrum = magnitude * np.exp(1j * centred_to_stft_phase(self._phase[0]))
        self._ola += np.fft.irfft(spectrum, n=self.config.n_fft) * self._window
        self._env += self._window_sq
        self._n_done += 1
        if len(frames) == 3:
            frames.pop(0)
            self._first_index += 1

    def _emit(self, n_samples: int) -> np.ndarray:
        """Pop ``n_samples`` finished samples, normalised; samples before the signal start become zeros."""
        env = self._env[:n_samples]
        chunk = (self._ola[:n_samples] / np.where(env > 1e-11, env, 1.0)).astype(np.float32)
        chunk[: max(0, min(n_samples, self.config.n_fft // 2 - self._n_emitted))] = 0.0
        for buffer in (self._ola, self._env):
            buffer[:-n_samples] = buffer[n_samples:]
            buffer[-n_samples:] = 0.0
        self._n_emitted += n_samples
        return chunk
