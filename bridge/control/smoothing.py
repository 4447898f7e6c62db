"""Smoothing of mapped parameter positions: one one-pole low-pass, offline over arrays and live per period.

``smoothing_s`` is the time constant: a step reaches 63 % of its height after that many seconds. Offline,
:func:`smooth_positions` filters a whole ``(T,)`` array; live, :class:`PositionSmoother` takes one step per
control period. Both use :func:`one_pole_coefficient`, so a live voice's positions equal the offline render's.

Example
-------
>>> smooth_positions(np.array([0.0, 1.0, 1.0]), smoothing_s=0.0, control_rate_hz=10.0).tolist()
[0.0, 1.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["one_pole_coefficient", "smooth_positions", "PositionSmoother"]


def one_pole_coefficient(*, smoothing_s: float, control_rate_hz: float) -> float:
    """How much of the previous output each step keeps: ``exp(−1 / (smoothing_s · rate))``; 0 for no smoothing."""
    return math.exp(-1.0 / (smoothing_s * control_rate_hz)) if smoothing_s > 0 else 0.0


def smooth_positions(
    positions: np.ndarray, *, smoothing_s: float, control_rate_hz: float, initial: float | None = None
) -> np.ndarray:
    """One-pole low-pass of ``(T,)`` positions sampled at ``control_rate_hz``.

    ``smoothing_s`` is the time constant: a step reaches 63 % of its height after that many seconds. The
    filter starts settled at ``initial`` (default: the first position); to smooth block by block, pass the
    previous block's last output as ``initial`` — the blocks then equal one whole-signal call.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if smoothing_s <= 0 or positions.size == 0:
        return positions
    coefficient = one_pole_coefficient(smoothing_s=smoothing_s, control_rate_hz=control_rate_hz)
    # A plain loop: about 0.1 s for 10 minutes of frames, while importing scipy.signal costs over a second.
    smoothed = np.empty_like(positions)
    state = float(positions[0]) if initial is None else float(initial)
    for index, value in enumerate(positions.tolist()):
        state = coefficient * state + (1.0 - coefficient) * value
        smoothed[index] = state
    return smoothed


class PositionSmoother:
    """Per-name one-pole smoothing, one :meth:`step` per control period (the live control path).

    The first step passes its input through (the filter starts settled there), as :func:`smooth_positions`
    starts at its first position.
    """

    def __init__(self, smoothing_s: Mapping[str, float], *, control_rate_hz: float) -> None:
        self._keep = {name: one_pole_coefficient(smoothing_s=s, control_rate_hz=control_rate_hz)
                      for name, s in smoothing_s.items()}
        self._state: dict[str, float] | None = None

    def step(self, raw: Mapping[str, float]) -> dict[str, float]:
        """Advance one control period towards ``raw`` (one position per name) and return the smoothed positions."""
        if self._state is None:
            self._state = dict(raw)
        else:
            keep, state = self._keep, self._state
            for name, value in raw.items():
                state[name] = keep[name] * state[name] + (1.0 - keep[name]) * value
        return dict(self._state)
