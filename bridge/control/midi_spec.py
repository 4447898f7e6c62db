"""What a mapping's ``[midi]`` table asks for: which parameter is the note, on which scale, velocity and CCs.

::

    [midi]
    channel = 0                    # 0–15
    note = "pitch"                 # parameter that chooses each image's note (see below)
    scale = "minor_pentatonic"     # see SCALES
    root = 48                      # lowest note (MIDI number; 48 = C3)
    octaves = 2                    # notes span root … root + 12·octaves
    velocity = "loudness"          # optional parameter; position 0–1 → velocity_range
    velocity_range = [40, 120]
    cc = { 74 = "cutoff_hz", 91 = "reverb_mix" }   # controller number → parameter (position → 0–127)
    cc_in = { 21 = "cutoff_hz" }   # optional, live MIDI in: controller number → parameter (0–127 → position)

How the note is chosen (:meth:`MidiSpec.notes`, the one place; MIDI files and live ports both call it):

* a **pitch** parameter — named ``pitch`` or ending in ``_hz``, its values are frequencies — plays the
  nearest MIDI note to its value (A4 = 440 Hz = 69; 880 Hz → 81, A5), snapped to ``scale`` (with ``root``'s
  pitch class) only when the table names a scale;
* any other parameter picks by its position (0–1) one of the scale's notes from ``root`` to
  ``root + 12·octaves`` (``scale`` defaults to minor pentatonic).

MIDI files (:mod:`bridge.io.midi_file`) and live ports (:mod:`bridge.io.midi_live`) read the same spec.

Example
-------
>>> quantise_to_scale(np.array([0.0, 0.5, 1.0]), scale="major", root=60, octaves=1).tolist()
[60, 67, 72]
>>> hz_to_midi(np.array([440.0, 880.0, 261.63])).tolist()
[69, 81, 60]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import ParameterError

if TYPE_CHECKING:
    from bridge.control.mapping import Mapping, Parameter

__all__ = ["SCALES", "MidiSpec", "quantise_to_scale", "scale_notes", "hz_to_midi", "snap_to_scale", "is_pitch"]

SCALES = MappingProxyType(
    {
        "chromatic": tuple(range(12)),
        "major": (0, 2, 4, 5, 7, 9, 11),
        "minor": (0, 2, 3, 5, 7, 8, 10),
        "dorian": (0, 2, 3, 5, 7, 9, 10),
        "major_pentatonic": (0, 2, 4, 7, 9),
        "minor_pentatonic": (0, 3, 5, 7, 10),
        "blues": (0, 3, 5, 6, 7, 10),
        "whole_tone": (0, 2, 4, 6, 8, 10),
    }
)
"""Scale name → semitone offsets of its degrees within one octave."""

_KEYS = frozenset({"channel", "note", "scale", "root", "octaves", "velocity", "velocity_range", "cc", "cc_in"})


def _int(where: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(f"{where} = {value!r}; expected an integer in {low}…{high}")
    return value


def scale_notes(*, scale: str, root: int, octaves: int) -> np.ndarray:
    """All notes of ``scale`` from ``root`` up to and including ``root + 12·octaves``, ascending."""
    if scale not in SCALES:
        raise ParameterError(f"scale {scale!r} is unknown; expected one of {', '.join(SCALES)}")
    notes = [root + 12 * octave + step for octave in range(octaves) for step in SCALES[scale]]
    return np.array(notes + [root + 12 * octaves])


def quantise_to_scale(position: np.ndarray, *, scale: str, root: int, octaves: int) -> np.ndarray:
    """Positions in [0, 1] (clamped) → MIDI notes of the scale: 0 → ``root``, 1 → ``root + 12·octaves``."""
    notes = scale_notes(scale=scale, root=root, octaves=octaves)
    index = np.rint(np.clip(np.asarray(position, dtype=np.float64), 0.0, 1.0) * (len(notes) - 1)).astype(int)
    return notes[index]


def hz_to_midi(frequency_hz: np.ndarray) -> np.ndarray:
    """Frequencies in Hz → the nearest MIDI notes (A4 = 440 Hz = 69), clamped to 0…127; ≤ 0 Hz gives 0."""
    frequency_hz = np.asarray(frequency_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        notes = 69 + 12 * np.log2(np.where(frequency_hz > 0, frequency_hz, np.nan) / 440.0)
    return np.clip(np.rint(np.nan_to_num(notes, nan=0.0)), 0, 127).astype(int)


def snap_to_scale(notes: np.ndarray, *, scale: str, root: int) -> np.ndarray:
    """MIDI notes → the nearest notes of ``scale`` whose pitch classes count from ``root`` (ties go down)."""
    if scale not in SCALES:
        raise ParameterError(f"scale {scale!r} is unknown; expected one of {', '.join(SCALES)}")
    notes = np.asarray(notes, dtype=int)
    candidates = np.array([root % 12 + step + 12 * octave for octave in range(-1, 12) for step in SCALES[scale]])
    candidates = candidates[(candidates >= 0) & (candidates <= 127)]
    nearest = candidates[np.argmin(np.abs(notes[..., None] - candidates), axis=-1)]
    return nearest.astype(int)


def is_pitch(name: str) -> bool:
    """Whether a parameter's values are frequencies in Hz, by its name: ``pitch`` or ``…_hz``."""
    return name == "pitch" or name.endswith("_hz")


@dataclass(frozen=True)
class MidiSpec:
    """What the ``[midi]`` table asks for; parameter names are checked against the mapping.

    ``pitch`` is the note's parameter when its values are frequencies (:func:`is_pitch`; set by
    :meth:`from_mapping`, which knows the parameter's curve); ``snap_pitch`` says the table named a scale
    to snap those notes to.
    """

    note: str | None = None
    channel: int = 0
    scale: str = "minor_pentatonic"
    root: int = 48
    octaves: int = 2
    velocity: str | None = None
    velocity_range: tuple[int, int] = (40, 120)
    cc: dict[int, str] = field(default_factory=dict)
    cc_in: dict[int, str] = field(default_factory=dict)
    pitch: Parameter | None = None
    snap_pitch: bool = False

    def notes(self, positions: np.ndarray | float) -> np.ndarray:
        """The note parameter's positions (0–1) → MIDI notes (see the module docstring); same shape, ints."""
        if self.pitch is not None:
            notes = hz_to_midi(self.pitch.value_at(np.asarray(positions, dtype=np.float64)))
            return snap_to_scale(notes, scale=self.scale, root=self.root) if self.snap_pitch else notes
        return quantise_to_scale(positions, scale=self.scale, root=self.root, octaves=self.octaves)

    def velocities(self, positions: np.ndarray | float | None) -> np.ndarray:
        """The velocity parameter's positions (0–1, clamped) → velocities in ``velocity_range``; None → 100."""
        if positions is None or self.velocity is None:
            return np.asarray(100)
        low, high = self.velocity_range
        return np.rint(low + np.clip(np.asarray(positions, dtype=np.float64), 0.0, 1.0) * (high - low)).astype(int)

    @classmethod
    def from_mapping(cls, mapping: Mapping) -> MidiSpec:
        table, where = mapping.midi, f"mapping {mapping.source}: midi"
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ParameterError(f"{where} has unknown key {unknown[0]!r}; known: {', '.join(sorted(_KEYS))}")
        names = set(mapping.names)

        def parameter(key: str) -> str | None:
            name = table.get(key)
            if name is not None and name not in names:
                raise ParameterError(f"{where}.{key} = {name!r} is not a parameter; the mapping has {', '.join(mapping.names)}")
            return name

        scale = table.get("scale", cls.scale)
        if scale not in SCALES:
            raise ParameterError(f"{where}.scale = {scale!r}; expected one of {', '.join(SCALES)}")
        octaves = _int(f"{where}.octaves", table.get("octaves", cls.octaves), 1, 10)
        root = _int(f"{where}.root", table.get("root", cls.root), 0, 127 - 12 * octaves)
        velocity_range = table.get("velocity_range", list(cls.velocity_range))
        if not isinstance(velocity_range, list) or len(velocity_range) != 2:
            raise ParameterError(f"{where}.velocity_range = {velocity_range!r}; expected [low, high]")
        low, high = (_int(f"{where}.velocity_range", v, 1, 127) for v in velocity_range)

        def controllers(key: str) -> dict[int, str]:
            cc_table = table.get(key, {})
            if not isinstance(cc_table, dict):
                raise ParameterError(f"{where}.{key} = {cc_table!r}; expected a table {{ 74 = \"parameter\" }}")
            cc = {}
            for number, name in cc_table.items():
                if not number.isdigit() or not 0 <= int(number) <= 119:
                    raise ParameterError(f"{where}.{key} has controller {number!r}; expected a number in 0…119")
                if not isinstance(name, str) or name not in names:
                    raise ParameterError(
                        f"{where}.{key}.{number} = {name!r} is not a parameter; "
                        f"the mapping has {', '.join(mapping.names)}"
                    )
                cc[int(number)] = name
            return cc

        note = parameter("note")
        pitch = mapping[note] if note is not None and is_pitch(note) else None
        if pitch is not None and max(pitch.low, pitch.high) < 8.18:  # MIDI note 0 is 8.18 Hz
            raise ParameterError(
                f"{where}.note = {note!r} is a frequency parameter (named pitch or …_hz) but its range "
                f"[{pitch.low}, {pitch.high}] lies below 8.18 Hz (MIDI note 0); give it a range in Hz or rename it"
            )
        return cls(
            note=note,
            pitch=pitch,
            snap_pitch=pitch is not None and "scale" in table,
            channel=_int(f"{where}.channel", table.get("channel", cls.channel), 0, 15),
            scale=scale,
            root=root,
            octaves=octaves,
            velocity=parameter("velocity"),
            velocity_range=(low, high),
            cc=controllers("cc"),
            cc_in=controllers("cc_in"),
        )
