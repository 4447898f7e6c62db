"""The ranges a control may take, each stated once and checked or clamped the same way everywhere.

A :class:`Limit` is a named range with a neutral value. Python calls :meth:`Limit.check` (a value outside the
range is the caller's mistake: :class:`~models.errors.ParameterError` naming it and the range); live control
paths that must never fail — OSC, MIDI — call :meth:`Limit.clamp` (NaN becomes the neutral value, ±inf and
out-of-range values the nearest end). The CLI's argument types (:mod:`bridge.cli.arguments`) state the
command-line ranges.

Example
-------
>>> FADE_S.check(0.5)
0.5
>>> FADE_S.clamp(float("nan")), FADE_S.clamp(99.0)
((0.5, True), (60.0, True))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.errors import ParameterError

__all__ = ["Limit", "FADE_S", "GAIN_DB", "MORPH_T", "check_seconds"]


@dataclass(frozen=True)
class Limit:
    """``low … high`` (both included) in ``unit``; ``neutral`` is what NaN becomes when clamping."""

    name: str
    low: float
    high: float
    neutral: float
    unit: str = ""

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.low:g}…{self.high:g}{unit}"

    def check(self, value: object) -> float:
        """``value`` as a float, or ParameterError when it is not a number within the range."""
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ParameterError(f"{self.name} {value!r}; expected a number in {self.describe()}")
        if not self.low <= value <= self.high:
            raise ParameterError(f"{self.name} {value!r}; expected {self.describe()}")
        return float(value)

    def clamp(self, value: float) -> tuple[float, bool]:
        """``value`` inside the range (NaN → ``neutral``) and whether it had to change."""
        if math.isnan(value):
            return self.neutral, True
        clamped = min(max(float(value), self.low), self.high)
        return clamped, clamped != value


FADE_S = Limit("fade time", 0.0, 60.0, neutral=0.5, unit="s")
GAIN_DB = Limit("gain", -80.0, 12.0, neutral=-80.0, unit="dB")  # NaN → silence: the safe side
MORPH_T = Limit("morph position", 0.0, 1.0, neutral=0.0)
# a hand-set image latent is clamped to the preset's own range: bridge.control.latent_range


def check_seconds(name: str, value: float, *, positive: bool, maximum_s: float | None = None) -> float:
    """``value`` as float seconds, or ParameterError naming ``name``: finite, ≥ 0 (> 0 if ``positive``), ≤ ``maximum_s``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name}={value!r}; expected a finite number of seconds")
    if value < 0 or (positive and value == 0):
        raise ParameterError(f"{name}={value!r}; expected {'> 0' if positive else '>= 0'} seconds")
    if maximum_s is not None and value > maximum_s:
        raise ParameterError(f"{name}={value!r} s; expected at most {maximum_s:g} s")
    return float(value)
