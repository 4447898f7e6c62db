"""A look-ahead limiter whose output's true peak stays at or below a ceiling: the ``limiter`` of ``--fx``.

pedalboard's ``Limiter`` (JUCE's) lifts its threshold back to full scale with make-up gain and clips what
overshoots, so a chain ending in it puts samples at ±1 and its true peak (the peak of the signal between
the samples, as a DAC or a lossy encoder reconstructs it) above 0 dBTP. This one never raises the level:

1. the true peak around each sample is estimated at 4× oversampling (the sample and three interpolated
   points towards the next one, a Kaiser-windowed sinc over ``2 · INTERPOLATION_HALF_TAPS`` samples);
2. the gain each sample needs is ``ceiling / true peak`` (at most 1);
3. the gain applied is that requirement's minimum over the look-ahead window, released with a one-pole
   rise of ``release_ms`` and averaged over the window again, so it starts to fall ``lookahead_ms`` before a
   peak, falls smoothly, and is never above what any sample in reach needs;
4. the audio comes out ``latency_samples`` (the look-ahead) late, and a block's last
   ``INTERPOLATION_HALF_TAPS`` samples wait for the next block; a stream ends with :meth:`TruePeakLimiter.flush`.

Streamed in blocks of any size it gives the same samples as in one call. Stereo (or more) channels share
one gain, so the image does not move.

Example
-------
>>> import numpy as np
>>> limiter = TruePeakLimiter(ceiling_db=-1.5)
>>> loud = np.sin(2 * np.pi * 1000 * np.arange(4410) / 44100)[None, :].astype(np.float32) * 2.0
>>> out = np.concatenate([limiter.process(loud, sample_rate=44100), limiter.flush(sample_rate=44100)], axis=1)
>>> bool(np.abs(out).max() <= 10 ** (-1.5 / 20))
True
"""

from __future__ import annotations

import math

import numba
import numpy as np

from models.errors import ParameterError

__all__ = ["TruePeakLimiter", "INTERPOLATION_HALF_TAPS", "true_peak_taps"]

INTERPOLATION_HALF_TAPS = 12
_OVERSAMPLING = 4
_KAISER_BETA = 8.0


def true_peak_taps() -> np.ndarray:
    """Interpolation taps ``(3, 2·K)``: row ``p`` gives the signal at ``n + (p + 1) / 4`` from samples
    ``n − K + 1 … n + K`` (a Kaiser-windowed sinc, each row summing to 1)."""
    half = INTERPOLATION_HALF_TAPS
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)
    rows = []
    for phase in range(1, _OVERSAMPLING):
        distance = phase / _OVERSAMPLING - offsets
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1 - (distance / half) ** 2, 0, 1))) / np.i0(_KAISER_BETA)
        taps = np.sinc(distance) * window
        rows.append(taps / taps.sum())
    return np.array(rows)


@numba.njit(nogil=True, cache=True)
def _limit(buffer, history, count, taps, lookahead, ceiling, keep, required, released, state):  # pragma: no cover
    """Advance ``count`` samples. ``buffer`` (C, N): input sample ``j`` of this call sits at ``history + j``
    with ``history`` older samples before it. Output ``j`` is the input ``lookahead`` samples before it times
    its gain. ``required``/``released`` are rings of the last ``lookahead + 1`` values; ``state`` = [released
    value, running sum of the released ring, ring position, the previous sample's peak towards this one]."""
    n_channels = buffer.shape[0]
    half = taps.shape[1] // 2
    window = lookahead + 1
    out = np.zeros((n_channels, count), dtype=np.float32)
    for j in range(count):
        centre = history + j
        after = 0.0  # the highest interpolated point between this sample and the next
        peak = state[3]  # … and between the previous sample and this one
        for c in range(n_channels):
            value = abs(buffer[c, centre])
            if value > peak:
                peak = value
            for p in range(taps.shape[0]):
                total = 0.0
                for m in range(taps.shape[1]):
                    total += taps[p, m] * buffer[c, centre - half + 1 + m]
                if abs(total) > after:
                    after = abs(total)
        state[3] = after
        if after > peak:
            peak = after
        need = 1.0 if peak <= ceiling else ceiling / peak
        position = int(state[2])
        required[position] = need
        lowest = need
        for k in range(window):
            if required[k] < lowest:
                lowest = required[k]
        current = state[0]
        current = lowest if lowest < current else current + (1.0 - keep) * (lowest - current)
        state[1] += current - released[position]
        released[position] = current
        state[0] = current
        state[2] = (position + 1) % window
        gain = min(state[1] / window, 1.0)
        for c in range(n_channels):
            out[c, j] = buffer[c, centre - lookahead] * gain
    return out


class TruePeakLimiter:
    """Keeps the true peak at or below ``ceiling_db`` dBTP; see the module docstring.

    Parameters
    ----------
    ceiling_db : highest true peak, dBTP, −60 … 0 (default −1.5: 0.5 dB of margin under the −1 dBTP that
        streaming services ask for, for the estimate's error).
    release_ms : time constant of the gain's recovery after a peak, 1 … 5000 ms.
    lookahead_ms : how early the gain starts to fall before a peak, 0.1 … 50 ms.
    """

    PARAMETERS = ("ceiling_db", "release_ms", "lookahead_ms")

    def __init__(self, *, ceiling_db: float = -1.5, release_ms: float = 100.0, lookahead_ms: float = 1.5) -> None:
        for name, value, low, high in (("ceiling_db", ceiling_db, -60.0, 0.0), ("release_ms", release_ms, 1.0, 5000.0),
                                       ("lookahead_ms", lookahead_ms, 0.1, 50.0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low <= value <= high):
                raise ParameterError(f"limiter: {name}={value!r} is out of range; expected {low:g} … {high:g}")
        self.ceiling_db, self.release_ms, self.lookahead_ms = float(ceiling_db), float(release_ms), float(lookahead_ms)
        self._taps = true_peak_taps()
        self.reset()

    def __repr__(self) -> str:
        return (f"TruePeakLimiter(ceiling_db={self.ceiling_db:g}, release_ms={self.release_ms:g}, "
                f"lookahead_ms={self.lookahead_ms:g})")

    def reset(self) -> None:
        """Forget the stream: the next block starts a new signal."""
        self._stream: tuple[int, int] | None = None
        self._buffer = np.zeros((0, 0), np.float64)

    def _lookahead(self, sample_rate: int) -> int:
        return max(1, round(self.lookahead_ms * 1e-3 * sample_rate))

    def latency_samples(self, sample_rate: int) -> int:
        """How late the output is, in samples: the look-ahead (output ``n`` is input ``n − latency``)."""
        return self._lookahead(sample_rate)

    def _history(self, sample_rate: int) -> int:
        return max(INTERPOLATION_HALF_TAPS, self._lookahead(sample_rate))

    def _start(self, n_channels: int, sample_rate: int) -> None:
        lookahead = self._lookahead(sample_rate)
        self._stream = (sample_rate, n_channels)
        self._buffer = np.zeros((n_channels, self._history(sample_rate)), np.float64)  # silence before the stream
        self._required = np.ones(lookahead + 1)
        self._released = np.ones(lookahead + 1)
        self._state = np.array([1.0, float(lookahead + 1), 0.0, 0.0])

    def process(self, block: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """Samples ``(channels, n)`` in; as many out (fewer or more at first), :meth:`latency_samples` later."""
        block = np.asarray(block, dtype=np.float64)
        n_channels = block.shape[0]
        if self._stream is None:
            self._start(n_channels, sample_rate)
        elif self._stream != (sample_rate, n_channels):
            raise ParameterError(f"limiter: the stream changed from {self._stream} to {(sample_rate, n_channels)} "
                                 "(sample rate, channels) without a reset")
        history = self._history(sample_rate)
        self._buffer = np.concatenate([self._buffer, block], axis=1)
        # a sample can be judged once the K after it are in
        ready = self._buffer.shape[1] - history - INTERPOLATION_HALF_TAPS
        if ready <= 0:
            return np.zeros((n_channels, 0), np.float32)
        out = _limit(self._buffer, history, ready, self._taps, self._lookahead(sample_rate),
                     10 ** (self.ceiling_db / 20), math.exp(-1.0 / (self.release_ms * 1e-3 * sample_rate)),
                     self._required, self._released, self._state)
        self._buffer = np.ascontiguousarray(self._buffer[:, ready:])
        return out

    def flush(self, *, sample_rate: int) -> np.ndarray:
        """The stream's last :meth:`latency_samples` (silence pushed through); then :meth:`reset`."""
        if self._stream is None:
            return np.zeros((1, 0), np.float32)
        n_channels = self._stream[1]
        # the last K samples are judged once K more are in; then the look-ahead's delay comes out
        silence = np.zeros((n_channels, self.latency_samples(sample_rate) + INTERPOLATION_HALF_TAPS))
        tail = self.process(silence, sample_rate=sample_rate)
        self.reset()
        return tail
