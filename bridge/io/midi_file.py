"""MIDI files from mapped parameters: notes, velocity and CCs as a standard MIDI file timed to the audio.

The ``[midi]`` table of a mapping (:class:`bridge.control.midi_spec.MidiSpec`) says which parameter drives
what. Each image plays one note, from its onset to the next image's (or the end of the audio): the note
(the mapped pitch, or a scale note: :meth:`~bridge.control.midi_spec.MidiSpec.notes`) its parameter stays on
longest, so a crossfade or a smoothing glide does not add passing notes; the
velocity is taken at the middle of the image. Times are converted to ticks at the render's tempo
(:class:`bridge.control.tempo.Tempo`, default 120 bpm in 4/4, written as ``set_tempo`` and
``time_signature``), 480 ticks per beat (about 1 ms resolution at 120 bpm), from absolute times, so events
never drift from the audio; with ``render --bpm`` every image starts on a beat. :class:`MidiBuilder` takes
the parameters block by block as a render makes them (a long render never holds them whole);
:func:`controls_to_midi` takes them at once. Live ports (MIDI out per control tick, MIDI in and CC learn)
are in :mod:`bridge.io.midi_live`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.control.midi_spec import MidiSpec
from bridge.control.tempo import Tempo
from bridge.control.timeline import image_of_frames
from models.errors import ParameterError
from synth.files import atomic_output

if TYPE_CHECKING:
    import mido

__all__ = ["MidiBuilder", "controls_to_midi", "write_midi"]

TICKS_PER_BEAT = 480


class MidiBuilder:
    """A one-track MIDI file built from parameter positions that arrive in consecutive blocks of frames.

    Parameters
    ----------
    spec : the mapping's ``[midi]`` table; it must name a ``note`` parameter.
    tempo : the file's tempo and time signature (default 120 bpm, 4/4).
    """

    def __init__(self, *, spec: MidiSpec, tempo: Tempo | None = None) -> None:
        if spec.note is None:
            raise ParameterError("the mapping's [midi] table has no 'note' parameter; add note = \"<parameter>\"")
        self.spec, self.tempo = spec, tempo or Tempo()
        self._notes: dict[int, Counter] = {}  # image → how many frames sat on each note
        self._frames: dict[int, list[int]] = {}  # image → [first frame, frames seen]
        self._velocity_positions: dict[int, list[float]] = {}  # the open images' velocity positions per frame
        self._velocities: dict[int, int] = {}
        self._previous_cc: dict[int, int] = {}
        self._events: list[tuple[int, int, Any]] = []  # (tick, order, message)
        self._next_frame = 0

    def _ticks(self, seconds: float) -> int:
        return self.tempo.seconds_to_ticks(seconds, ticks_per_beat=TICKS_PER_BEAT)

    def _close(self, image: int) -> None:
        """The image has all its frames: fix its velocity at its middle frame."""
        positions = self._velocity_positions.pop(image, None)
        if positions:
            self._velocities[image] = int(self.spec.velocities(positions[len(positions) // 2]))

    def add(self, *, first_frame: int, times_s: np.ndarray, positions: dict[str, np.ndarray], images: np.ndarray) -> None:
        """The next block of frames: their times ``(n,)``, each parameter's positions ``(n,)`` in [0, 1] and the
        image each frame belongs to ``(n,)`` (:func:`bridge.control.timeline.image_of_frames`)."""
        import mido

        if first_frame != self._next_frame:
            raise ParameterError(f"MIDI frames must come in order: expected frame {self._next_frame}, got {first_frame}")
        times_s = np.asarray(times_s, dtype=np.float64)
        self._next_frame += len(times_s)
        if len(times_s) == 0:
            return
        spec = self.spec
        notes = spec.notes(positions[spec.note])  # the mapped pitch, or a scale position: what live MIDI plays too
        images = np.asarray(images)
        velocity = positions[spec.velocity] if spec.velocity else np.zeros(len(times_s))
        for image in np.unique(images).tolist():
            rows = images == image
            if image not in self._notes:
                for open_image in [key for key in self._velocity_positions if key < image]:
                    self._close(open_image)
                self._notes[image] = Counter()
                self._velocity_positions[image] = []
            self._notes[image].update(np.asarray(notes)[rows].tolist())
            self._velocity_positions[image] += velocity[rows].tolist()
        for number, name in spec.cc.items():
            values = np.rint(np.clip(positions[name], 0, 1) * 127).astype(int)
            previous = self._previous_cc.get(number)
            changes = np.flatnonzero(np.diff(values, prepend=-1 if previous is None else previous))
            for index in changes.tolist():
                self._events.append((self._ticks(float(times_s[index])), 1, mido.Message(
                    "control_change", channel=spec.channel, control=number, value=int(values[index]))))
            self._previous_cc[number] = int(values[-1])

    def finish(self, *, onsets_s: Sequence[float], duration_s: float) -> mido.MidiFile:
        """The MIDI file of every block added: image ``i`` plays from ``onsets_s[i]`` to the next onset, the
        last until ``duration_s`` (the length of the audio)."""
        import mido

        onsets_s = [float(onset) for onset in onsets_s]
        for image in list(self._velocity_positions):
            self._close(image)
        events = list(self._events)
        for image, counts in self._notes.items():
            if not counts:
                continue
            top = max(counts.values())
            note = min(value for value, count in counts.items() if count == top)  # the longest-held note
            start_tick = self._ticks(onsets_s[image])
            end_s = onsets_s[image + 1] if image + 1 < len(onsets_s) else duration_s
            channel = self.spec.channel
            events.append((start_tick, 2, mido.Message("note_on", channel=channel, note=int(note),
                                                       velocity=self._velocities.get(image, 100))))
            events.append((self._ticks(end_s), 0, mido.Message("note_off", channel=channel, note=int(note), velocity=0)))
        end_tick = self._ticks(duration_s)

        midi_file = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
        track = mido.MidiTrack()
        midi_file.tracks.append(track)
        track.append(mido.MetaMessage("track_name", name="imgsonic", time=0))
        track.append(mido.MetaMessage("set_tempo", tempo=self.tempo.microseconds_per_quarter, time=0))
        track.append(mido.MetaMessage("time_signature", numerator=self.tempo.numerator,
                                      denominator=self.tempo.denominator, time=0))
        previous_tick = 0
        # note-offs (order 0) before CCs (1) before note-ons (2) at the same tick
        for tick, _, message in sorted(events, key=lambda event: (event[0], event[1])):
            track.append(message.copy(time=tick - previous_tick))
            previous_tick = tick
        track.append(mido.MetaMessage("end_of_track", time=max(end_tick - previous_tick, 0)))
        return midi_file


def controls_to_midi(
    *,
    spec: MidiSpec,
    times_s: np.ndarray,
    positions: dict[str, np.ndarray],
    onsets_s: Sequence[float],
    duration_s: float,
    tempo: Tempo | None = None,
) -> mido.MidiFile:
    """A one-track MIDI file from parameter positions sampled at ``times_s`` ``(T,)``: :class:`MidiBuilder`
    given every frame at once.

    Parameters
    ----------
    positions : parameter name → positions ``(T,)`` in [0, 1] (from :meth:`bridge.control.mapping.Mapping.positions`).
    onsets_s : image start times, ascending; each image plays one note.
    duration_s : length of the audio; every note ends by then.
    tempo : tempo and time signature of the file (default 120 bpm, 4/4).
    """
    builder = MidiBuilder(spec=spec, tempo=tempo)
    builder.add(first_frame=0, times_s=times_s, positions=positions, images=image_of_frames(times_s, onsets_s))
    return builder.finish(onsets_s=onsets_s, duration_s=duration_s)


def write_midi(path: str | os.PathLike, midi_file: mido.MidiFile) -> None:
    """Save ``midi_file`` atomically: a temporary file in the same folder, then ``os.replace``."""
    with atomic_output(path) as stream:
        midi_file.save(file=stream)
