"""Musical time: a tempo in beats per minute, a time signature, beat and bar times, and landing on them.

One :class:`Tempo` serves the offline MIDI file (``render --midi``: tempo and time-signature meta messages,
images that hold a whole number of beats) and the live engine (``imgsonic live --bpm``: image changes wait
for the next beat or bar, one MIDI note per image), so both count beats the same way: beat ``k`` starts at
``k · 60 / bpm`` seconds, bar ``n`` at ``n · numerator`` beats. The beat is the time signature's
denominator note (in 6/8 a beat is an eighth). Melody phrases (MIDI files, the pyo melody voice, live MIDI
out) count 16th-note steps at the same tempo (:func:`phrase_seconds`). One tempo range, :data:`BPM`.

Example
-------
>>> tempo = Tempo(bpm=120, numerator=3, denominator=4)
>>> tempo.seconds_per_beat, tempo.seconds_per_bar, tempo.time_signature
(0.5, 1.5, '3/4')
>>> tempo.beats_for(1.1), tempo.beat_times(duration_s=2.0).tolist()
(2, [0.0, 0.5, 1.0, 1.5])
>>> tempo.next_time(0.6, grid="beat"), tempo.next_time(0.6, grid="bar")
(1.0, 1.5)
>>> tempo.seconds_to_ticks(1.5, ticks_per_beat=480)
1440
>>> phrase_seconds(n_steps=32, bpm=120)
4.0
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.control.limits import Limit
from models.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Tempo", "BPM", "GRIDS", "STEPS_PER_BEAT", "check_bpm", "phrase_seconds", "parse_time_signature"]

BPM = Limit("tempo", 20.0, 400.0, neutral=120.0, unit="beats per minute")
GRIDS = ("beat", "bar")
STEPS_PER_BEAT = 4  # melody steps are 16th notes
_DENOMINATORS = (1, 2, 4, 8, 16, 32)
_SIGNATURE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")


def check_bpm(bpm: float) -> float:
    """``bpm`` as a float, or ParameterError unless it is a finite tempo in 20…400 beats per minute."""
    return BPM.check(bpm)


def phrase_seconds(*, n_steps: int, bpm: float) -> float:
    """Length of a melody phrase of ``n_steps`` 16th notes at ``bpm``, in seconds."""
    return n_steps / STEPS_PER_BEAT * 60.0 / check_bpm(bpm)


def parse_time_signature(text: str) -> tuple[int, int]:
    """``"3/4"`` → ``(3, 4)``: 1–32 beats a bar over a power-of-two note value (1…32), else ParameterError."""
    match = _SIGNATURE.match(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(1)) <= 32 or int(match.group(2)) not in _DENOMINATORS:
        raise ParameterError(f"time signature {text!r}; expected N/D with N in 1…32 and D one of "
                             f"{', '.join(map(str, _DENOMINATORS))}, e.g. 4/4, 3/4, 6/8")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Tempo:
    """``bpm`` beats (of the time signature's ``denominator`` note) per minute, ``numerator`` beats a bar;
    times in seconds from beat 0."""

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
    def time_signature(self) -> str:
        return f"{self.numerator}/{self.denominator}"

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def seconds_per_bar(self) -> float:
        return self.numerator * self.seconds_per_beat

    @property
    def seconds_per_quarter(self) -> float:
        """A quarter note's length: MIDI counts tempo and ticks in quarter notes whatever the time signature."""
        return self.seconds_per_beat * self.denominator / 4

    @property
    def microseconds_per_quarter(self) -> int:
        """The MIDI ``set_tempo`` value (in 6/8 at 120 eighths a minute: a quarter is 1 s, 1 000 000)."""
        return round(1_000_000 * self.seconds_per_quarter)

    def beats_for(self, seconds: float) -> int:
        """The whole number of beats (at least 1) nearest to ``seconds``: how long an image holds on the grid."""
        return max(1, round(seconds / self.seconds_per_beat))

    def beat_times(self, *, duration_s: float) -> np.ndarray:
        """Times of the beats in ``[0, duration_s)``, in seconds."""
        import numpy as np  # here: `imgsonic live --help` reads this module's ranges and must not load numpy

        return np.arange(math.ceil(duration_s / self.seconds_per_beat - 1e-9)) * self.seconds_per_beat

    def seconds_to_ticks(self, seconds: float, *, ticks_per_beat: int) -> int:
        """``seconds`` from the start as MIDI ticks of ``ticks_per_beat`` per quarter note (MIDI's beat), rounded."""
        return int(round(seconds / self.seconds_per_quarter * ticks_per_beat))

    def grid_s(self, grid: str) -> float:
        """Seconds between grid lines: a beat or a bar."""
        if grid not in GRIDS:
            raise ParameterError(f"grid {grid!r}; expected one of {', '.join(GRIDS)}")
        return self.seconds_per_beat if grid == "beat" else self.seconds_per_bar

    def next_time(self, time_s: float, *, grid: str = "beat") -> float:
        """The first beat (or bar) at or after ``time_s`` (a float tolerance keeps a time on a beat on it)."""
        step = self.grid_s(grid)
        return math.ceil(time_s / step - 1e-9) * step
