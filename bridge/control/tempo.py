"""Musical time: a tempo in beats per minute, a time signature, beat times, and images placed on beats.

``imgsonic render --bpm 96 --time-signature 3/4`` holds each image for a whole number of beats, so every
image change lands on a beat (of the audio and of the MIDI file, which carries the tempo and the time
signature). Kept small and general, for the live engine to share.

Example
-------
>>> tempo = Tempo(bpm=120, numerator=3, denominator=4)
>>> tempo.seconds_per_beat, tempo.beats_for(1.1), tempo.beat_times(duration_s=2.0).tolist()
(0.5, 2, [0.0, 0.5, 1.0, 1.5])
>>> tempo.seconds_to_ticks(1.5, ticks_per_beat=480)
1440
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.errors import ParameterError

__all__ = ["Tempo"]

MIN_BPM, MAX_BPM = 20.0, 400.0
_DENOMINATORS = (1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class Tempo:
    """``bpm`` beats (of the time signature's ``denominator`` note) per minute, ``numerator`` beats a bar."""

    bpm: float = 120.0
    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not isinstance(self.bpm, (int, float)) or not (
                math.isfinite(self.bpm) and MIN_BPM <= self.bpm <= MAX_BPM):
            raise ParameterError(f"bpm={self.bpm!r}; expected a tempo in {MIN_BPM:g} … {MAX_BPM:g} beats per minute")
        if isinstance(self.numerator, bool) or not isinstance(self.numerator, int) or not 1 <= self.numerator <= 32:
            raise ParameterError(f"time signature numerator {self.numerator!r}; expected 1 … 32 beats a bar")
        if self.denominator not in _DENOMINATORS:
            raise ParameterError(f"time signature denominator {self.denominator!r}; expected one of "
                                 f"{', '.join(map(str, _DENOMINATORS))}")

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def microseconds_per_beat(self) -> int:
        """The MIDI ``set_tempo`` value."""
        return round(60_000_000 / self.bpm)

    def beats_for(self, seconds: float) -> int:
        """The whole number of beats (at least 1) nearest to ``seconds``: how long an image holds on the grid."""
        return max(1, round(seconds / self.seconds_per_beat))

    def beat_times(self, *, duration_s: float) -> np.ndarray:
        """Times of the beats in ``[0, duration_s)``, in seconds."""
        return np.arange(math.ceil(duration_s / self.seconds_per_beat - 1e-9)) * self.seconds_per_beat

    def seconds_to_ticks(self, seconds: float, *, ticks_per_beat: int) -> int:
        """``seconds`` from the start as MIDI ticks at this tempo (rounded to the nearest tick)."""
        return int(round(seconds * ticks_per_beat * self.bpm / 60.0))

