"""MIDI files from mapped parameters: notes, velocity and CCs as a standard MIDI file timed to the audio.

The ``[midi]`` table of a mapping (:class:`bridge.control.midi_spec.MidiSpec`) says which parameter drives
what. Each image plays one note, from its onset to the next image's (or the end of the audio): the scale
note its parameter stays on longest, so a crossfade or a smoothing glide does not add passing notes; the
velocity is taken at the middle of the image. Times are converted to ticks at 120 bpm, 480 ticks per beat
(about 1 ms resolution), from absolute times, so events never drift from the audio. Live ports (MIDI out
per control tick, MIDI in and CC learn) are in :mod:`bridge.io.midi_live`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.control.midi_spec import MidiSpec, quantise_to_scale
from models.errors import ParameterError
from synth.files import atomic_output

if TYPE_CHECKING:
    import mido

__all__ = ["controls_to_midi", "write_midi"]

TICKS_PER_BEAT = 480
TEMPO_US_PER_BEAT = 500_000  # 120 bpm


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
