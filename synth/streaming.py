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

    Run it with one BLAS thread as well as one torch thread (``threadpoolctl.threadpool_limits(1, "blas")``
    around the audio loop): with numpy's default two OpenBLAS threads on a busy machine, the small matrix
    products here took 12 ms instead of 0.15 ms.

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
        # build the cached inverse and PGHI's noise-phase table, and load (or, once per machine, compile) the
        # PGHI kernel now, not in the first audio buffer
        mel_to_magnitude(np.zeros((config.n_mels, 1)), config=config)
        pghi_terms(np.ones((2, 1, config.n_freqs)), config=config, first_frame=0, has_previous=False)
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
        self._emitted_blocks: list[np.ndarray] = []
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
        return self._push(self.frames_of(mel.reshape(self.config.n_mels, -1)))

    def frames_of(self, mel: np.ndarray) -> np.ndarray:
        """Normalised log-mel frames ``(n_mels, n)`` → the STFT magnitude ``(n_freqs, n)`` that :meth:`push` uses.

        Frames are independent, so a caller that repeats frames (a held sound) can convert them once and
        feed :meth:`push_frames` instead.
        """
        cfg = self.config
        amplitude = np.power(10.0, (np.asarray(mel, dtype=np.float64) * (cfg.db_ceiling - cfg.db_floor) + cfg.db_floor) / 20)
        return mel_to_magnitude(amplitude, config=cfg)

    def push_frames(self, magnitude: Any) -> np.ndarray:
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
        self._reconstruct(n_final=len(self._frames) - (1 if self._has_phase else 0), include_last=True)
        tail = self._emit(self.latency_samples)
        self.reset()
        return tail

    def _push(self, magnitude: np.ndarray) -> np.ndarray:
        """Reconstruct every pushed frame that has its look-ahead, all in one block."""
        hop = self.config.hop_length
        n_new = magnitude.shape[1]
        out = np.zeros(n_new * hop, dtype=np.float32)
        if n_new == 0:
            return out
        had_phase = self._has_phase
        self._frames.extend(magnitude.T)
        # frames waiting for a phase: all but the previous (already done) one and the look-ahead
        n_final = len(self._frames) - 1 - (1 if had_phase else 0)
        if n_final > 0:
            self._reconstruct(n_final=n_final, include_last=False)
        # every push returns hop samples per frame: zeros until the first frame is reconstructed
        n_ready = n_final if had_phase else max(n_final, 0)
        for i in range(n_ready):
            out[(n_new - n_ready + i) * hop : (n_new - n_ready + i + 1) * hop] = self._emitted_blocks[i]
        self._emitted_blocks.clear()
        return out

    def _reconstruct(self, *, n_final: int, include_last: bool) -> None:
        """Phase for the next ``n_final`` frames (PGHI terms for the whole block at once), overlap-add each."""
        frames = self._frames
        has_previous = self._has_phase
        block = np.stack(frames)[:, None, :]  # (n, 1, K)
        terms = pghi_terms(
            block, config=self.config, first_frame=self._first_index, has_previous=has_previous, n_rows=n_final
        )
        first_row = 1 if has_previous else 0
        phases = np.empty((n_final, self.config.n_freqs))
        for i in range(n_final):
            self._phase = pghi_step(self._phase, *(term[i] for term in terms))
            phases[i] = self._phase[0]
        self._has_phase = True
        magnitude = block[first_row : first_row + n_final, 0]
        spectra = magnitude * np.exp(1j * centred_to_stft_phase(phases))
        grains = np.fft.irfft(spectra, n=self.config.n_fft, axis=-1) * self._window
        for i, grain in enumerate(grains):
            self._ola += grain
            self._env += self._window_sq
            if not include_last:
                self._emitted_blocks.append(self._emit(self.config.hop_length))
        # keep the last reconstructed frame (for its phase's neighbours) and the look-ahead
        keep = 0 if include_last else 2
        drop = len(frames) - keep
        del frames[:drop]
        self._first_index += drop

    def _emit(self, n_samples: int) -> np.ndarray:
        """Pop ``n_samples`` finished samples, normalised; samples before the signal start become zeros."""
        # where the envelope is ~0 (before the first frame's centre) so is the signal: these samples are zeroed
        chunk = (self._ola[:n_samples] / np.maximum(self._env[:n_samples], 1e-11)).astype(np.float32)
        chunk[: max(0, min(n_samples, self.config.n_fft // 2 - self._n_emitted))] = 0.0
        for buffer in (self._ola, self._env):
            buffer[:-n_samples] = buffer[n_samples:]
            buffer[-n_samples:] = 0.0
        self._n_emitted += n_samples
        return chunk
