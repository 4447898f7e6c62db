"""Musical time: a tempo in beats per minute, a time signature, beat times, images on beats, melody phrases.

``imgsonic render --bpm 96 --time-signature 3/4`` holds each image for a whole number of beats, so every
image change lands on a beat (of the audio and of the MIDI file, which carries the tempo and the time
signature); melody phrases (MIDI files, the pyo melody voice, live MIDI out) count 16th-note steps at the
same tempo. One tempo range (:data:`BPM`) for all of them.

Example
-------
>>> tempo = Tempo(bpm=120, numerator=3, denominator=4)
>>> tempo.seconds_per_beat, tempo.beats_for(1.1), tempo.beat_times(duration_s=2.0).tolist()
(0.5, 2, [0.0, 0.5, 1.0, 1.5])
>>> tempo.seconds_to_ticks(1.5, ticks_per_beat=480)
1440
>>> phrase_seconds(n_steps=32, bpm=120)
4.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bridge.control.limits import Limit
from models.errors import ParameterError

__all__ = ["BPM", "STEPS_PER_BEAT", "Tempo", "check_bpm", "phrase_seconds"]

BPM = Limit("tempo", 20.0, 400.0, neutral=120.0, unit="beats per minute")
STEPS_PER_BEAT = 4  # 16th notes
_DENOMINATORS = (1, 2, 4, 8, 16, 32)


def check_bpm(bpm: float) -> float:
    """``bpm`` as a float, or ParameterError unless it is a finite tempo in 20…400 beats per minute."""
    return BPM.check(bpm)


def phrase_seconds(*, n_steps: int, bpm: float) -> float:
    """Length of a phrase of ``n_steps`` 16th notes at ``bpm``, in seconds."""
    return n_steps / STEPS_PER_BEAT * 60.0 / check_bpm(bpm)


@dataclass(frozen=True)
class Tempo:
    """``bpm`` beats (of the time signature's ``denominator`` note) per minute, ``numerator`` beats a bar."""

    bpm: float = 120.0
    numerator: int = 4
    denominator: int = 4

    def __post_init__(self) -> None:
        check_bpm(self.bpm)
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
