"""Musical time: a tempo in beats per minute and a time signature, beat and bar times, and landing on them.

One :class:`Tempo` serves the offline MIDI file (``render --midi``: tempo and time-signature meta messages,
image changes on beats) and the live engine (``imgsonic live --bpm``: image changes wait for the next beat
or bar, one MIDI note per image), so both count beats the same way: beat ``k`` starts at
``k · 60 / bpm`` seconds, bar ``n`` at ``n · beats_per_bar`` beats. The beat is the time signature's
denominator (in 6/8 a beat is an eighth note), as MIDI counts it.

Example
-------
>>> tempo = Tempo(bpm=120.0, time_signature="3/4")
>>> tempo.seconds_per_beat, tempo.seconds_per_bar
(0.5, 1.5)
>>> tempo.next_time(0.6, grid="beat"), tempo.next_time(0.6, grid="bar")
(1.0, 1.5)
>>> tempo.round_to_beats(1.3)  # seconds per image → a whole number of beats
1.5
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from models.errors import ParameterError

__all__ = ["Tempo", "BPM", "GRIDS", "parse_time_signature"]

GRIDS = ("beat", "bar")
BPM = (20.0, 400.0)  # beats per minute a tempo may have
_SIGNATURE = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$")
_DENOMINATORS = (1, 2, 4, 8, 16, 32)


def parse_time_signature(text: str) -> tuple[int, int]:
    """``"3/4"`` → ``(3, 4)``: 1–32 beats per bar over a power-of-two note value (1…32), else ParameterError."""
    match = _SIGNATURE.match(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(1)) <= 32 or int(match.group(2)) not in _DENOMINATORS:
        raise ParameterError(f"time signature {text!r}; expected N/D with N in 1…32 and D one of "
                             f"{', '.join(map(str, _DENOMINATORS))}, e.g. 4/4, 3/4, 6/8")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class Tempo:
    """``bpm`` beats a minute (20…400) in ``time_signature`` (``"4/4"``); times in seconds from beat 0."""

    bpm: float = 120.0
    time_signature: str = "4/4"

    def __post_init__(self) -> None:
        if isinstance(self.bpm, bool) or not isinstance(self.bpm, (int, float)) or not BPM[0] <= self.bpm <= BPM[1]:
            raise ParameterError(f"tempo {self.bpm!r} bpm; expected {BPM[0]:g}…{BPM[1]:g}")
        parse_time_signature(self.time_signature)

    @property
    def beats_per_bar(self) -> int:
        return parse_time_signature(self.time_signature)[0]

    @property
    def beat_unit(self) -> int:
        """The note value of a beat: 4 = a quarter note, 8 = an eighth."""
        return parse_time_signature(self.time_signature)[1]

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    @property
    def seconds_per_bar(self) -> float:
        return self.beats_per_bar * self.seconds_per_beat

    @property
    def microseconds_per_quarter(self) -> int:
        """MIDI's ``set_tempo`` value: a beat of ``beat_unit`` at ``bpm``, expressed per quarter note."""
        return round(self.seconds_per_beat * self.beat_unit / 4 * 1e6)

    def grid_s(self, grid: str) -> float:
        """Seconds between grid lines: a beat or a bar."""
        if grid not in GRIDS:
            raise ParameterError(f"grid {grid!r}; expected one of {', '.join(GRIDS)}")
        return self.seconds_per_beat if grid == "beat" else self.seconds_per_bar

    def next_time(self, time_s: float, *, grid: str = "beat") -> float:
        """The first beat (or bar) at or after ``time_s`` (a float tolerance keeps a time on a beat on it)."""
        step = self.grid_s(grid)
        return math.ceil(time_s / step - 1e-9) * step

    def beat_of(self, time_s: float) -> float:
        """Beats since beat 0 at ``time_s`` (fractional)."""
        return time_s / self.seconds_per_beat

    def round_to_beats(self, seconds: float) -> float:
        """``seconds`` rounded to a whole number of beats, at least one (an image length that lands on beats)."""
        return max(1, round(seconds / self.seconds_per_beat)) * self.seconds_per_beat
