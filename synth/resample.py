"""Sample-rate conversion that gives the same samples whole-signal and block by block.

The offline renderer and the live voices both resample the vocoder's output (the model rate, e.g. 16 kHz)
to the output rate (44.1 or 48 kHz) with this one :class:`Resampler`, so a live stream equals the offline
render of the same latent sequence sample for sample: output ``n`` is always the same dot product of the
same input samples with the same kernel, whatever the block sizes.

The filter is a Kaiser-windowed sinc (polyphase, one kernel per output phase), zero-phase: output sample
``n`` sits exactly at input time ``n · orig_hz / new_hz``. Its cut-off is ``rolloff`` times the lower Nyquist
frequency and it spans ``zero_crossings`` zero crossings on each side; with the defaults the stop band is
below −80 dB and the pass band flat to 0.01 dB up to 0.9 × the lower Nyquist.

Example
-------
>>> import numpy as np
>>> resampler = Resampler(orig_hz=16000, new_hz=44100)
>>> signal = np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)
>>> whole = resample(signal, orig_hz=16000, new_hz=44100)
>>> blocks = np.concatenate([resampler.process(signal[:700]), resampler.process(signal[700:]), resampler.flush()])
>>> whole.shape, bool(np.array_equal(whole, blocks))
((4410,), True)
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from models.errors import ParameterError

__all__ = ["Resampler", "resample"]


def _check_rate(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1000 <= value <= 384000:
        raise ParameterError(f"{name}={value!r}; expected an integer number of Hz in 1000…384000")
    return int(value)


class Resampler:
    """Streaming polyphase resampler (numpy, float64 inside, float32 out).

    Parameters
    ----------
    orig_hz, new_hz : int
        Input and output sample rates.
    zero_crossings : int
        Half-length of the sinc kernel in zero crossings (longer = steeper, more look-ahead).
    rolloff : float
        Cut-off as a fraction of the lower of the two Nyquist frequencies, in (0, 1).
    kaiser_beta : float
        Kaiser window shape (8.6 ≈ −80 dB side lobes).

    :meth:`process` returns output in whole periods (``new_hz / gcd`` samples) once their input is complete;
    the rest waits for more input (at most one period plus :attr:`lookahead_samples` input samples) or
    for :meth:`flush`.
    """

    def __init__(
        self, *, orig_hz: int, new_hz: int, zero_crossings: int = 16, rolloff: float = 0.94, kaiser_beta: float = 8.6
    ) -> None:
        orig_hz, new_hz = _check_rate("orig_hz", orig_hz), _check_rate("new_hz", new_hz)
        if not 0 < rolloff < 1:
            raise ParameterError(f"rolloff={rolloff!r}; expected a fraction in (0, 1)")
        if isinstance(zero_crossings, bool) or not isinstance(zero_crossings, int) or zero_crossings < 1:
            raise ParameterError(f"zero_crossings={zero_crossings!r}; expected an integer ≥ 1")
        self.orig_hz, self.new_hz = orig_hz, new_hz
        divisor = math.gcd(orig_hz, new_hz)
        self._up, self._down = new_hz // divisor, orig_hz // divisor  # output n ↔ input time n·down/up
        # cut-off in cycles per input sample; the kernel's half-width in input samples
        cutoff = 0.5 * rolloff * min(1.0, new_hz / orig_hz)
        half_width = zero_crossings / (2 * cutoff)
        self.lookahead_samples = int(math.floor(half_width)) + 1
        taps = np.arange(-self.lookahead_samples + 1, self.lookahead_samples + 1)  # input offsets from floor(t)
        phases = np.arange(self._up)
        self._base = (phases * self._down) // self._up  # floor of each phase's input time, within one period
        fraction = (phases * self._down % self._up) / self._up
        tau = taps[None, :] - fraction[:, None]  # (up, n_taps) distance to the output instant, input samples
        window = np.i0(kaiser_beta * np.sqrt(np.clip(1 - (tau / half_width) ** 2, 0.0, 1.0))) / np.i0(kaiser_beta)
        kernels = 2 * cutoff * np.sinc(2 * cutoff * tau) * window * (np.abs(tau) <= half_width)
        kernels /= kernels.sum(axis=1, keepdims=True)  # unit DC gain in every phase
        # One matrix for a whole period: frame q (outputs q·up … q·up + up − 1) reads the input samples
        # q·down − lookahead + 1 … q·down + down + lookahead − 1, so a period is one matrix product.
        self._width = self._down + 2 * self.lookahead_samples - 1
        matrix = np.zeros((self._width, self._up))
        for phase in range(self._up):
            first = self._base[phase]  # taps[0] = −lookahead + 1 sits at column `first`
            matrix[first : first + taps.size, phase] = kernels[phase]
        self._matrix = matrix
        self.reset()

    @property
    def identity(self) -> bool:
        return self.orig_hz == self.new_hz

    def reset(self) -> None:
        """Forget all input (the next block starts a new signal)."""
        # buffer index 0 is absolute input sample self._offset (negative indices are the zeros before the signal)
        self._offset = -(self.lookahead_samples - 1)
        self._buffer = np.zeros(self.lookahead_samples - 1)
        self._n_in = 0
        self._next_frame = 0

    def _frames(self, n_frames: int) -> np.ndarray:
        """The next ``n_frames`` periods of output, ``n_frames · up`` samples (float64)."""
        if n_frames <= 0:
            return np.zeros(0)
        start = self._next_frame * self._down - (self.lookahead_samples - 1) - self._offset
        rows = sliding_window_view(self._buffer[start : start + (n_frames - 1) * self._down + self._width], self._width)
        out = (rows[:: self._down] @ self._matrix).reshape(-1)
        self._next_frame += n_frames
        drop = self._next_frame * self._down - (self.lookahead_samples - 1) - self._offset
        self._buffer = self._buffer[drop:]
        self._offset += drop
        return out

    def process(self, block: np.ndarray) -> np.ndarray:
        """Feed input samples ``(n,)``; returns the output samples that are now complete (float32)."""
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 1:
            raise ParameterError(f"audio block has shape {block.shape}; expected (n_samples,)")
        self._n_in += block.size
        if self.identity:
            return block.astype(np.float32)
        self._buffer = np.concatenate([self._buffer, block])
        # frame q is complete once input sample q·down + down + lookahead − 1 has arrived
        ready = (self._n_in - self._down - self.lookahead_samples) // self._down + 1
        return self._frames(ready - self._next_frame).astype(np.float32)

    def output_length(self, n_input: int) -> int:
        """Outputs that cover ``n_input`` input samples: ``ceil(n_input · new_hz / orig_hz)``."""
        return -(-n_input * self._up // self._down)

    def flush(self) -> np.ndarray:
        """The remaining outputs of the signal (input assumed zero after its end); then :meth:`reset`."""
        if self.identity:
            self.reset()
            return np.zeros(0, dtype=np.float32)
        n_total = self.output_length(self._n_in)
        n_done = self._next_frame * self._up
        n_frames = -(-(n_total - n_done) // self._up)
        self._buffer = np.concatenate([self._buffer, np.zeros(n_frames * self._down + self._width)])
        tail = self._frames(n_frames)[: max(0, n_total - n_done)]
        self.reset()
        return tail.astype(np.float32)


def resample(signal: np.ndarray, *, orig_hz: int, new_hz: int) -> np.ndarray:
    """Whole-signal resampling, ``(n,)`` → ``(ceil(n · new_hz / orig_hz),)`` float32; same samples as streaming."""
    resampler = Resampler(orig_hz=orig_hz, new_hz=new_hz)
    signal = np.asarray(signal)
    return np.concatenate([resampler.process(signal), resampler.flush()])
