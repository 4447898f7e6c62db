"""MIDI from mapped parameters: notes on a scale, velocity and CCs, as a standard MIDI file timed to the audio.

The ``[midi]`` table of a mapping (see :mod:`bridge.mapping`) says which parameter drives what::

    [midi]
    channel = 0                    # 0–15
    note = "pitch"                 # parameter whose position (0–1) picks a note of the scale
    scale = "minor_pentatonic"     # see SCALES
    root = 48                      # lowest note (MIDI number; 48 = C3)
    octaves = 2                    # notes span root … root + 12·octaves
    velocity = "loudness"          # optional parameter; position 0–1 → velocity_range
    velocity_range = [40, 120]
    cc = { 74 = "cutoff_hz", 91 = "reverb_mix" }   # controller number → parameter (position → 0–127)
    cc_in = { 21 = "cutoff_hz" }   # optional, live MIDI in: controller number → parameter (0–127 → position)

Each image plays one note, from its onset to the next image's (or the end of the audio): the scale note
its parameter stays on longest, so a crossfade or a smoothing glide does not add passing notes; the
velocity is taken at the middle of the image. Times are converted to ticks at 120 bpm, 480 ticks per beat (about
1 ms resolution), from absolute times, so events never drift from the audio. Only file output lives here;
live ports (MIDI out per control tick, MIDI in and CC learn) are in :mod:`bridge.midi_live`.

Example
-------
>>> quantise_to_scale(np.array([0.0, 0.5, 1.0]), scale="major", root=60, octaves=1).tolist()
[60, 67, 72]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import ParameterError
from synth.files import atomic_output

if TYPE_CHECKING:
    import mido

    from bridge.mapping import Mapping

__all__ = ["SCALES", "MidiSpec", "quantise_to_scale", "scale_notes", "controls_to_midi", "write_midi"]

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

TICKS_PER_BEAT = 480
TEMPO_US_PER_BEAT = 500_000  # 120 bpm
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


@dataclass(frozen=True)
class MidiSpec:
    """What the ``[midi]`` table asks for; parameter names are checked against the mapping."""

    note: str | None = None
    channel: int = 0
    scale: str = "minor_pentatonic"
    root: int = 48
    octaves: int = 2
    velocity: str | None = None
    velocity_range: tuple[int, int] = (40, 120)
    cc: dict[int, str] = field(default_factory=dict)
    cc_in: dict[int, str] = field(default_factory=dict)

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

        return cls(
            note=parameter("note"),
            channel=_int(f"{where}.channel", table.get("channel", cls.channel), 0, 15),
            scale=scale,
            root=root,
            octaves=octaves,
            velocity=parameter("velocity"),
            velocity_range=(low, high),
            cc=controllers("cc"),
            cc_in=controllers("cc_in"),
        )


def _seconds_to_ticks(seconds: float) -> int:
    return int(round(seconds * TICKS_PER_BEAT * 1e6 / TEMPO_US_PER_BEAT))


def controls_to_midi(
    *,
    spec: MidiSpec,
    times_s: np.ndarray,
    positions: dict[str, np.ndarray],
    onsets_s: Sequence[float],
    duration_s: float,
) -> mido.MidiFile:
    """A one-track MIDI file from parameter positions sampled at ``times_s`` ``(T,)``.

    Parameters
    ----------
    positions : parameter name → positions ``(T,)`` in [0, 1] (from :meth:`bridge.mapping.Mapping.positions`).
    onsets_s : image start times, ascending; each image plays one note.
    duration_s : length of the audio; every note ends by then.
    """
    import mido

    if spec.note is None:
        raise ParameterError("the mapping's [midi] table has no 'note' parameter; add note = \"<parameter>\"")
    times_s = np.asarray(times_s, dtype=np.float64)
    notes = quantise_to_scale(positions[spec.note], scale=spec.scale, root=spec.root, octaves=spec.octaves)
    low, high = spec.velocity_range
    velocities = (
        np.rint(low + np.clip(positions[spec.velocity], 0, 1) * (high - low)).astype(int)
        if spec.velocity
        else np.full(len(times_s), 100)
    )
    boundaries = [int(np.searchsorted(times_s, onset - 1e-9)) for onset in onsets_s] + [len(times_s)]

    # (tick, order, message): note-offs (order 0) before CCs (1) before note-ons (2) at the same tick.
    events: list[tuple[int, int, Any]] = []
    for index, (first, stop) in enumerate(zip(boundaries[:-1], boundaries[1:])):
        if stop <= first:
            continue
        values, counts = np.unique(notes[first:stop], return_counts=True)
        note = int(values[np.argmax(counts)])  # the note the image holds longest, not a glide's passing one
        start_tick = _seconds_to_ticks(onsets_s[index])
        end_tick = _seconds_to_ticks(onsets_s[index + 1] if index + 1 < len(onsets_s) else duration_s)
        velocity = int(velocities[(first + stop) // 2])
        events.append((start_tick, 2, mido.Message("note_on", channel=spec.channel, note=note, velocity=velocity)))
        events.append((end_tick, 0, mido.Message("note_off", channel=spec.channel, note=note, velocity=0)))
    end_tick = _seconds_to_ticks(duration_s)
    for number, name in spec.cc.items():
        values = np.rint(np.clip(positions[name], 0, 1) * 127).astype(int)
        previous = None
        for time_s, value in zip(times_s, values):
            if value != previous:
                events.append((_seconds_to_ticks(time_s), 1, mido.Message(
                    "control_change", channel=spec.channel, control=number, value=int(value))))
                previous = value

    midi_file = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi_file.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name="imgsonic", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=TEMPO_US_PER_BEAT, time=0))
    previous_tick = 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - previous_tick))
        previous_tick = tick
    track.append(mido.MetaMessage("end_of_track", time=max(end_tick - previous_tick, 0)))
    return midi_file


def write_midi(path: str | os.PathLike, midi_file: mido.MidiFile) -> None:
    """Save ``midi_file`` atomically: a temporary file in the same folder, then ``os.replace``."""
    with atomic_output(path) as stream:
        midi_file.save(file=stream)
