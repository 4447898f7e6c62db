"""Melody phrases as a standard MIDI file: consecutive phrases form one piece, in 4/4 at a tempo, bar by bar.

A phrase is a row of melody tokens (:mod:`models.melody_vae`: REST, HOLD, pitches), one per 16th note;
phrase ``i`` starts at bar ``i · bars_per_phrase``. The file has one track with the tempo, the time signature
(4/4), a track name, and per phrase a marker naming its image, then the notes (note-off before note-on at the
same tick). 480 ticks per beat, so a 16th step is 120 ticks exactly and nothing drifts.

:func:`read_melody_midi` reads such a file (or any monophonic one on the same grid) back into tokens; the
evaluation measures its metrics on what it reads back, not on the tokens it wrote.

Example
-------
>>> midi = phrases_to_midi([[62, 1, 1, 1, 0, 1, 1, 1, 64, 1, 1, 1, 1, 1, 1, 1]], pitch_low=48, bpm=90, steps_per_bar=16)
>>> [message.type for message in midi.tracks[0] if not message.is_meta]
['note_on', 'note_off', 'note_on', 'note_off']
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from bridge.control.tempo import STEPS_PER_BEAT, check_bpm
from models.errors import InputError, ParameterError
from models.melody_vae import notes_to_tokens, tokens_to_notes
from synth.files import atomic_output

__all__ = ["TICKS_PER_BEAT", "phrases_to_midi", "write_melody_midi", "read_melody_midi"]

TICKS_PER_BEAT = 480
_TICKS_PER_STEP = TICKS_PER_BEAT // STEPS_PER_BEAT


def phrases_to_midi(phrases: Sequence[Sequence[int]], *, pitch_low: int, bpm: float, steps_per_bar: int = 16,
                    names: Sequence[str] | None = None, channel: int = 0, velocity: int = 90,
                    accent: int = 12):
    """One MIDI file (``mido.MidiFile``) playing ``phrases`` ``(n_phrases, n_steps)`` one after the other.

    Parameters
    ----------
    phrases : token rows, all of the same length, a whole number of ``steps_per_bar`` (16 = a 4/4 bar).
    pitch_low : MIDI pitch of the first pitch token (the melody model's ``pitch_low``).
    bpm : tempo, 20…400 quarter notes per minute.
    names : a marker per phrase (e.g. its image's file name), at the phrase's first tick.
    velocity : 1…127, plus ``accent`` on each bar's downbeat (clamped to 127).
    """
    import mido

    bpm = check_bpm(bpm)
    phrases = [list(map(int, phrase)) for phrase in phrases]
    if not phrases:
        raise ParameterError("no phrases to write")
    n_steps = len(phrases[0])
    if any(len(phrase) != n_steps for phrase in phrases) or n_steps == 0 or n_steps % steps_per_bar:
        raise ParameterError(f"phrases must share one length that is a whole number of {steps_per_bar}-step bars; "
                             f"got lengths {sorted({len(p) for p in phrases})}")
    if names is not None and len(names) != len(phrases):
        raise ParameterError(f"{len(names)} names for {len(phrases)} phrases")
    if not 0 <= channel <= 15 or not 1 <= velocity <= 127:
        raise ParameterError(f"channel={channel}, velocity={velocity}; expected 0…15 and 1…127")

    events: list[tuple[int, int, object]] = []  # (tick, order: marker 0, note-off 1, note-on 2, message)
    for index, phrase in enumerate(phrases):
        offset = index * n_steps
        if names is not None:
            events.append((offset * _TICKS_PER_STEP, 0, mido.MetaMessage("marker", text=str(names[index])[:120])))
        for start, end, pitch in tokens_to_notes(phrase, pitch_low=pitch_low):
            if not 0 <= pitch <= 127:
                raise ParameterError(f"pitch {pitch} is not a MIDI note (0…127)")
            loud = min(127, velocity + (accent if start % steps_per_bar == 0 else 0))
            events.append(((offset + start) * _TICKS_PER_STEP, 2,
                           mido.Message("note_on", channel=channel, note=pitch, velocity=loud)))
            events.append(((offset + end) * _TICKS_PER_STEP, 1,
                           mido.Message("note_off", channel=channel, note=pitch, velocity=0)))
    midi_file = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    track = mido.MidiTrack()
    midi_file.tracks.append(track)
    track.append(mido.MetaMessage("track_name", name="imgsonic melody", time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    track.append(mido.MetaMessage("time_signature", numerator=steps_per_bar // STEPS_PER_BEAT, denominator=4, time=0))
    previous = 0
    for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
        track.append(message.copy(time=tick - previous))
        previous = tick
    end_tick = len(phrases) * n_steps * _TICKS_PER_STEP
    track.append(mido.MetaMessage("end_of_track", time=end_tick - previous))
    return midi_file


def write_melody_midi(path: str | os.PathLike, phrases: Sequence[Sequence[int]], **kwargs) -> None:
    """:func:`phrases_to_midi` saved to ``path`` atomically (a temporary file, then ``os.replace``)."""
    midi_file = phrases_to_midi(phrases, **kwargs)
    with atomic_output(path) as stream:
        midi_file.save(file=stream)


def read_melody_midi(path: str | os.PathLike, *, n_steps: int, pitch_low: int, n_pitches: int) -> np.ndarray:
    """A monophonic MIDI file → tokens ``(n_phrases, n_steps)`` int64, notes snapped to the 16th-note grid.

    All tracks and channels are merged; a note that starts while another sounds ends that one. Pitches outside
    the vocabulary's range are folded into its lowest octave. The file's length (its last event) is rounded up to whole
    phrases.
    """
    import mido

    try:
        midi_file = mido.MidiFile(path)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as error:
        raise InputError(f"{path}: not a readable MIDI file ({error})") from error
    steps_per_tick = STEPS_PER_BEAT / midi_file.ticks_per_beat
    notes: list[list[int]] = []  # [start, end, pitch], end −1 while sounding
    last_step = 0
    tick = 0
    for message in mido.merge_tracks(midi_file.tracks):
        tick += message.time
        step = round(tick * steps_per_tick)
        last_step = max(last_step, step)
        if message.type == "note_on" and message.velocity > 0:
            if notes and notes[-1][1] < 0:
                notes[-1][1] = step
            notes.append([step, -1, message.note])
        elif message.type in ("note_off", "note_on") and notes and notes[-1][1] < 0 and notes[-1][2] == message.note:
            notes[-1][1] = step
    for note in notes:
        if note[1] < 0:
            note[1] = last_step
    n_phrases = max(1, -(-last_step // n_steps))
    rows = []
    for index in range(n_phrases):
        first, stop = index * n_steps, (index + 1) * n_steps
        inside = []
        for start, end, pitch in notes:
            start, end = max(start, first), min(end, stop)
            if end <= start or (inside and start < inside[-1][1]):
                continue
            if not pitch_low <= pitch < pitch_low + n_pitches:
                pitch = pitch_low + (pitch - pitch_low) % 12
            inside.append((start - first, end - first, pitch))
        rows.append(notes_to_tokens(inside, n_steps=n_steps, pitch_low=pitch_low, n_pitches=n_pitches))
    return np.array(rows, dtype=np.int64)
