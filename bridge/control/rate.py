"""Rate limits for what arrives faster than the engine should act on it: messages and log lines.

A :class:`TokenBucket` lets ``rate_per_s`` events through a second on average, in bursts of at most
``burst``; what comes faster is turned away (the caller counts it). :class:`LimitedLog` writes at most
``lines_per_s`` log lines a second to a logger and reports how many it held back in its next line. Both
exist because every accepted message and every log line costs the thread that handles it, and in a live
session that thread shares Python's GIL with the audio callback: a flood of them is a flood of dropouts.

Example
-------
>>> bucket = TokenBucket(rate_per_s=10.0, burst=2, clock=lambda: 0.0)
>>> [bucket.take() for _ in range(3)]
[True, True, False]
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from models.errors import ParameterError

__all__ = ["TokenBucket", "LimitedLog"]


class TokenBucket:
    """``rate_per_s`` events a second on average, ``burst`` at once; not thread-safe (one caller thread).

    Parameters
    ----------
    rate_per_s : tokens added per second, > 0 (``math.inf``: no limit).
    burst : the most tokens held, ≥ 1 (the bucket starts full).
    clock : seconds, monotonic (tests pass their own).
    """

    def __init__(self, *, rate_per_s: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if isinstance(rate_per_s, bool) or not isinstance(rate_per_s, (int, float)) or not rate_per_s > 0:
            raise ParameterError(f"rate_per_s={rate_per_s!r}; expected a number > 0")
        if isinstance(burst, bool) or not isinstance(burst, (int, float)) or not burst >= 1:
            raise ParameterError(f"burst={burst!r}; expected a number ≥ 1")
        self.rate_per_s = float(rate_per_s)
        self.burst = float(burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    def take(self) -> bool:
        """True (and one token fewer) when an event may go through now; False when it must be turned away."""
        if math.isinf(self.rate_per_s):
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate_per_s)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class LimitedLog:
    """At most ``lines_per_s`` lines a second to ``logger``; the rest are counted and reported in the next line.

    Call it like ``logger.log``: ``limited(logging.WARNING, "%s refused", address)``. Formatting happens only
    for lines that are written, so a held-back line costs a clock read and a counter.
    """

    def __init__(self, logger: logging.Logger, *, lines_per_s: int = 20) -> None:
        self._logger = logger
        self._lines_per_s = lines_per_s
        self._window_start = -math.inf
        self._lines = 0
        self._suppressed = 0
        self.suppressed_total = 0

    def __call__(self, level: int, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            if self._suppressed:
                self._logger.warning("%d more log lines like these were held back in the last second",
                                     self._suppressed)
            self._window_start, self._lines, self._suppressed = now, 0, 0
        if self._lines >= self._lines_per_s:
            self._suppressed += 1
            self.suppressed_total += 1
            return
        self._lines += 1
        self._logger.log(level, message, *args)
