"""Argument types and shared argument groups of the ``imgsonic`` command line.

Every numeric flag is declared with a :class:`Number` as its argparse ``type``, so a bad value (0 where
seconds must be positive, nan, inf, a huge count) is refused at parse time, before anything is loaded, with
one line that names the flag and the accepted range::

    imgsonic: error: argument --seconds-per-image: '0' is not a number of seconds in 0.02 … 3600

This module imports nothing heavy (the standard library and the light ``bridge.control`` limits):
``imgsonic … --help`` must not wait for torch or numpy.

Example
-------
>>> seconds = Number(float, 0.02, 3600, unit="seconds")
>>> seconds("1.5")
1.5
>>> seconds.describe()
'a number of seconds in 0.02 … 3600'
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import NoReturn

from bridge.control.tempo import BPM, parse_time_signature
from models.errors import ParameterError

__all__ = ["Number", "OneLineParser", "add_model_arguments", "THREADS", "SAMPLE_RATE_HZ", "TEMPO_BPM",
           "time_signature"]


@dataclass(frozen=True)
class Number:
    """An argparse ``type=``: an ``int`` or a finite ``float`` within ``low … high`` (both included).

    ``low_open=True`` excludes ``low`` (for "> 0" ranges). ``unit`` only words the message.
    """

    kind: type
    low: float
    high: float
    unit: str = ""
    low_open: bool = False

    def __post_init__(self) -> None:
        if self.kind not in (int, float) or not self.low < self.high:
            raise ValueError(f"Number({self.kind!r}, {self.low!r}, {self.high!r}) is not a valid range")

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return "integer" if self.kind is int else "number"

    def describe(self) -> str:
        what = ("a whole number" if self.unit else "an integer") if self.kind is int else "a number"
        if self.unit:
            what += f" of {self.unit}"
        low = f"> {self.low:g}" if self.low_open else f"{self.low:g}"
        if self.low_open:
            return f"{what} {low} and ≤ {self.high:g}"
        return f"{what} in {low} … {self.high:g}"

    def __call__(self, text: str) -> int | float:
        try:
            value = int(text, 10) if self.kind is int else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}") from None
        inside = (value > self.low if self.low_open else value >= self.low) and value <= self.high
        if not (math.isfinite(value) and inside):
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}")
        return value


# Ranges used by several commands.
THREADS = Number(int, 1, 256, unit="threads")
SAMPLE_RATE_HZ = Number(int, 8000, 192000, unit="Hz")
TEMPO_BPM = Number(float, BPM.low, BPM.high, unit="beats per minute")


def time_signature(text: str) -> tuple[int, int]:
    """argparse ``type=`` for ``N/D`` (:func:`bridge.control.tempo.parse_time_signature`): ``"6/8"`` → ``(6, 8)``."""
    try:
        return parse_time_signature(text)
    except ParameterError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, ``imgsonic: error: …``, and exit code 2.

    argparse's own ``error`` prints the whole usage first; a script that captures stderr then has to dig the
    message out of it. ``--help`` still prints the usage.
    """

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f" (see imgsonic {command} --help)" if command else " (see imgsonic --help)"
        self.exit(2, f"imgsonic: error: {' '.join(message.split())}{hint}\n")


def add_model_arguments(parser: argparse.ArgumentParser, *, vocoder: bool = True) -> None:
    """``--preset`` or explicit checkpoints (``render``, ``demo``, ``visualize``)."""
    group = parser.add_argument_group("models (a preset, or all three checkpoints)")
    group.add_argument("--preset", help="preset name (default: default; see imgsonic info), or the path of a preset "
                       "folder or .toml file (what imgsonic train all --out DIR writes)")
    group.add_argument("--image-vae", metavar="PT", help="image VAE checkpoint")
    group.add_argument("--audio-vae", metavar="PT", help="audio VAE checkpoint")
    group.add_argument("--mapper", metavar="PT", help="latent mapper checkpoint")
    if vocoder:
        group.add_argument("--vocoder-checkpoint", metavar="PT",
                           help="neural vocoder for --vocoder neural or neural+fgla (default: the preset's)")
