"""Loudness: ITU-R BS.1770 measurement (pyloudnorm) and the gain maths that levels a sequence of sounds.

A rendered sequence is levelled in three steps, each a function here; every step works on stretches read one
at a time or on blocks, so a render of any length is levelled in bounded memory:

1. :func:`span_loudness_lufs` measures each image's stretch of audio (its solo part, without the crossfades),
   read through a ``read(start, n)`` callable, with pyloudnorm's BS.1770 meter (K-weighting, gated blocks of
   0.4 s, or the stretch's length when it is shorter). The meter is scale-equivariant, so each stretch is
   measured at a peak of 1 and the scale taken off again: a very quiet stretch is measured, not gated away as
   silence below −70 LUFS. A stretch longer than ``max_span_s`` is measured over its middle ``max_span_s``
   (an image's sound is its decoded window tiled: the middle tells its level).
2. :func:`programme_lufs` predicts the file's integrated loudness from the stretches' loudness: BS.1770's
   gating (absolute −70 LUFS, relative −10 LU) applied to the stretches as if each were steady, their energy
   averaged by duration. The render sets the file's gain from it, before the second pass.
3. :class:`GainEnvelope` turns per-stretch gains (dB) into a per-sample gain that holds within each stretch and
   moves linearly in dB across each crossfade (at least ``min_ramp_s``), so levelling adds no clicks; its
   :meth:`GainEnvelope.block` gives any block of it, the same samples whatever the blocks.

Peaks are left to the true-peak limiter at the end of the render's effects (:mod:`synth.limiter`).

Example
-------
>>> import numpy as np
>>> rate = 16000
>>> t = np.arange(rate) / rate
>>> quiet = 0.01 * np.sin(2 * np.pi * 440 * t)
>>> round(integrated_lufs(quiet, sample_rate=rate) - integrated_lufs(10 * quiet, sample_rate=rate), 3)
-20.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from models.errors import ParameterError
from synth.sources import db_to_amplitude

__all__ = [
    "TARGET_LUFS",
    "MAX_MEASURED_S",
    "integrated_lufs",
    "span_loudness_lufs",
    "segment_loudness_lufs",
    "programme_lufs",
    "GainEnvelope",
    "gain_envelope",
]

TARGET_LUFS = -18.0
"""Programme loudness of renders (the middle of the −16…−20 LUFS that streaming and broadcast use)."""
MAX_MEASURED_S = 30.0
"""The longest part of one stretch that is measured (its middle): reading and metering stay bounded."""
_BLOCK_S = 0.4  # BS.1770's gating block
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_SILENT_PEAK = 1e-7  # below −140 dBFS peak a stretch is silence: no loudness, no gain


def _check_audio(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim != 1:
        raise ParameterError(f"audio has shape {audio.shape}; expected mono (n_samples,)")
    _check_rate(sample_rate)
    return audio


def _check_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1000:
        raise ParameterError(f"sample_rate={sample_rate!r}; expected an integer ≥ 1000 Hz")


def integrated_lufs(audio: np.ndarray, *, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of mono ``audio`` ``(n_samples,)``; −inf for silence.

    pyloudnorm's BS.1770-4 meter; clips shorter than the 0.4 s gating block are measured as one block of their
    own length (at least 10 ms). The clip is measured at a peak of 1 and the scale taken off again, so a quiet
    clip is not gated away by the absolute −70 LUFS threshold.
    """
    import pyloudnorm

    audio = _check_audio(audio, sample_rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak < _SILENT_PEAK or audio.size < 0.01 * sample_rate:
        return -math.inf
    block_s = min(_BLOCK_S, audio.size / sample_rate)
    meter = pyloudnorm.Meter(sample_rate, block_size=block_s)
    loudness = float(meter.integrated_loudness(audio / peak))
    return loudness + 20.0 * math.log10(peak) if math.isfinite(loudness) else -math.inf


def _check_spans(spans_s: Sequence[tuple[float, float]]) -> None:
    for start_s, end_s in spans_s:
        if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
            raise ParameterError(f"span ({start_s}, {end_s}); expected 0 ≤ start < end seconds")


def span_loudness_lufs(read: Callable[[int, int], np.ndarray], *, sample_rate: int,
                       spans_s: Sequence[tuple[float, float]], max_span_s: float = MAX_MEASURED_S) -> np.ndarray:
    """:func:`integrated_lufs` of each ``(start_s, end_s)`` stretch, read by ``read(first_sample, n_samples)``
    (samples past the end come back short); ``(len(spans_s),)``, −inf for silence. A stretch longer than
    ``max_span_s`` is measured over its middle ``max_span_s``, so no more than that is read at once."""
    _check_rate(sample_rate)
    _check_spans(spans_s)
    if not (math.isfinite(max_span_s) and max_span_s > 0):
        raise ParameterError(f"max_span_s={max_span_s!r}; expected a number of seconds > 0")
    values = []
    for start_s, end_s in spans_s:
        first, stop = round(start_s * sample_rate), round(end_s * sample_rate)
        longest = round(max_span_s * sample_rate)
        if stop - first > longest:
            first += (stop - first - longest) // 2
            stop = first + longest
        values.append(integrated_lufs(read(first, stop - first), sample_rate=sample_rate))
    return np.array(values, dtype=np.float64)


def segment_loudness_lufs(audio: np.ndarray, *, sample_rate: int, spans_s: Sequence[tuple[float, float]],
                          max_span_s: float = MAX_MEASURED_S) -> np.ndarray:
    """:func:`span_loudness_lufs` of stretches of an array ``audio`` ``(n_samples,)``."""
    audio = _check_audio(audio, sample_rate)
    return span_loudness_lufs(lambda first, n: audio[first : first + n], sample_rate=sample_rate, spans_s=spans_s,
                              max_span_s=max_span_s)


def programme_lufs(loudness_lufs: np.ndarray, *, weights: np.ndarray) -> float:
    """The integrated loudness of a file made of steady stretches at ``loudness_lufs`` ``(n,)`` lasting ``weights``
    ``(n,)`` (seconds, or any proportional measure): BS.1770's gates applied to the stretches — those below −70
    LUFS left out, then those more than 10 LU below the energy mean of the rest — and the energy mean of what
    is left. −inf when nothing passes the gates.

    >>> round(programme_lufs(np.array([-20.0, -20.0, -80.0]), weights=np.ones(3)), 6)
    -20.0
    """
    loudness = np.asarray(loudness_lufs, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if loudness.shape != weights.shape or loudness.ndim != 1 or (weights < 0).any():
        raise ParameterError(f"{loudness.shape} loudness values and {weights.shape} weights; expected one "
                             "non-negative weight per value")

    def energy_mean(keep: np.ndarray) -> float:
        if not keep.any() or weights[keep].sum() <= 0:
            return -math.inf
        return float(10.0 * np.log10(np.sum(weights[keep] * 10.0 ** (loudness[keep] / 10.0)) / weights[keep].sum()))

    audible = np.isfinite(loudness) & (loudness >= _ABSOLUTE_GATE_LUFS)
    ungated = energy_mean(audible)
    if not math.isfinite(ungated):
        return -math.inf
    return energy_mean(audible & (loudness > ungated + _RELATIVE_GATE_LU))


class GainEnvelope:
    """Per-sample gain (linear): ``gains_db[i]`` held over span ``i``, linear in dB between spans.

    ``spans_s`` are the stretches each gain holds over, in order and not overlapping; a gap between two spans is
    the ramp (at least ``min_ramp_s``, centred on the gap). Before the first and after the last span the first and
    last gain hold. :meth:`block` gives samples ``[first, first + n)``: the same values however the samples are
    split into blocks, at a cost that does not grow with the number of spans.

    >>> envelope = GainEnvelope(spans_s=[(0.0, 0.5), (0.5, 1.0)], gains_db=np.array([0.0, -20.0]), sample_rate=100)
    >>> envelope.block(0, 100)[[0, 49, 99]].round(3).tolist()
    [1.0, 0.562, 0.1]
    """

    def __init__(self, *, spans_s: Sequence[tuple[float, float]], gains_db: np.ndarray, sample_rate: int,
                 min_ramp_s: float = 0.01) -> None:
        gains_db = np.asarray(gains_db, dtype=np.float64)
        if len(gains_db) != len(spans_s) or not len(spans_s):
            raise ParameterError(f"{len(gains_db)} gains for {len(spans_s)} spans; expected one per span (≥ 1)")
        if not np.isfinite(gains_db).all():
            raise ParameterError("gains must be finite dB values")
        _check_rate(sample_rate)
        _check_spans(spans_s)
        spans = np.asarray(spans_s, dtype=np.float64)
        centres = 0.5 * (spans[:, 0] + spans[:, 1])
        halves = np.maximum(0.0, 0.5 * (spans[:, 1] - spans[:, 0]) - 0.5 * min_ramp_s)
        self.knots_s = np.stack([centres - halves, centres + halves], axis=1).reshape(-1)
        if (np.diff(self.knots_s) < 0).any():
            raise ParameterError("spans overlap or are out of order; expected consecutive, non-overlapping spans")
        self.knots_db = np.repeat(gains_db, 2)
        self.sample_rate = sample_rate

    def block(self, first_sample: int, n_samples: int) -> np.ndarray:
        """Gains ``(n_samples,)`` float32 for samples ``first_sample … first_sample + n_samples − 1``."""
        times_s = (first_sample + np.arange(n_samples)) / self.sample_rate
        if not n_samples:
            return np.zeros(0, np.float32)
        # only the knots around the block: np.interp gives the same values from any run of knots that brackets it
        low = max(0, int(np.searchsorted(self.knots_s, times_s[0], side="right")) - 1)
        high = min(len(self.knots_s), int(np.searchsorted(self.knots_s, times_s[-1], side="left")) + 1)
        gains_db = np.interp(times_s, self.knots_s[low:high], self.knots_db[low:high])
        return np.asarray(db_to_amplitude(gains_db), dtype=np.float32)


def gain_envelope(*, n_samples: int, sample_rate: int, spans_s: Sequence[tuple[float, float]], gains_db: np.ndarray,
                  min_ramp_s: float = 0.01) -> np.ndarray:
    """The whole :class:`GainEnvelope` at once: ``(n_samples,)`` float32."""
    envelope = GainEnvelope(spans_s=spans_s, gains_db=gains_db, sample_rate=sample_rate, min_ramp_s=min_ramp_s)
    return envelope.block(0, n_samples)
