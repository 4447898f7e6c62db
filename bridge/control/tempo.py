"""Musical time: tempo in beats per minute, 16th-note steps and phrase lengths, checked once for everyone.

Melody phrases (MIDI files, the pyo melody voice, live MIDI out) and anything else that counts beats use these
numbers, so a tempo means the same in a file and on the wire.

Example
-------
>>> phrase_seconds(n_steps=32, bpm=120)
4.0
"""

from __future__ import annotations

from bridge.control.limits import Limit

__all__ = ["BPM", "STEPS_PER_BEAT", "check_bpm", "phrase_seconds"]

BPM = Limit("tempo", 20.0, 400.0, neutral=120.0, unit="beats per minute")
STEPS_PER_BEAT = 4  # 16th notes


def check_bpm(bpm: float) -> float:
    """``bpm`` as a float, or ParameterError unless it is a finite tempo in 20…400 beats per minute."""
    return BPM.check(bpm)


def phrase_seconds(*, n_steps: int, bpm: float) -> float:
    """Length of a phrase of ``n_steps`` 16th notes at ``bpm``, in seconds."""
    return n_steps / STEPS_PER_BEAT * 60.0 / check_bpm(bpm)
