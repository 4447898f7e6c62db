"""Melody phrases on the beat: a scheduler that turns phrases into timed MIDI messages on a bar clock.

:class:`PhraseScheduler` is pure timing: phrases (melody tokens, :mod:`models.melody_vae`) play back to back
from ``start_s``, each starting on a bar line; a phrase queued while another plays starts when that one ends
(on the next phrase boundary), and with nothing queued the last phrase repeats, so the music keeps its bars.
``due(now_s)`` returns the MIDI messages whose time has come, in order (note-offs before note-ons at the same
time). A tempo change keeps the step being played and continues at the new tempo from ``now_s``.
:class:`bridge.live.melody_midi.MelodyMidiPlayer` plays it to a port live.

Example
-------
>>> scheduler = PhraseScheduler(bpm=120, n_steps=4, pitch_low=60, start_s=0.0)
>>> scheduler.queue([2, 1, 4, 1])                                  # C4 for two 16ths, then D4
>>> [(m.type, m.note) for m in scheduler.due(0.3)]                 # a 16th at 120 bpm is 0.125 s
[('note_on', 60), ('note_off', 60), ('note_on', 62)]
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.control.tempo import STEPS_PER_BEAT, check_bpm
from models.errors import ParameterError
from models.melody_vae import tokens_to_notes

__all__ = ["PhraseScheduler"]

class PhraseScheduler:
    """Melody phrases on a 16th-note clock that starts at ``start_s`` (seconds of the caller's clock).

    Parameters
    ----------
    bpm : tempo, 20…400.  n_steps : 16th steps per phrase.  pitch_low : MIDI pitch of the first pitch token.
    start_s : when step 0 of the first phrase sounds.  channel : 0…15.  velocity : 1…127.
    """

    def __init__(self, *, bpm: float, n_steps: int, pitch_low: int, start_s: float, channel: int = 0,
                 velocity: int = 90) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ParameterError(f"n_steps={n_steps!r}; expected an int ≥ 1")
        if not 0 <= channel <= 15 or not 1 <= velocity <= 127:
            raise ParameterError(f"channel={channel}, velocity={velocity}; expected 0…15 and 1…127")
        self.n_steps, self.pitch_low, self.channel, self.velocity = n_steps, pitch_low, channel, velocity
        self._step_s = 60.0 / check_bpm(bpm) / STEPS_PER_BEAT
        self._anchor_s, self._anchor_step = float(start_s), 0.0  # step position `anchor_step` at time `anchor_s`
        self._next_step = 0  # the first step whose events are not yet returned
        self._phrases: dict[int, list[tuple[int, int, int]]] = {}  # phrase index → notes
        self._queued: list[tuple[int, int, int]] | None = None
        self._last: list[tuple[int, int, int]] | None = None
        self._sounding: int | None = None

    @property
    def step_s(self) -> float:
        return self._step_s

    def step_at(self, now_s: float) -> float:
        """The (fractional) 16th step playing at ``now_s``."""
        return self._anchor_step + (now_s - self._anchor_s) / self._step_s

    def time_of(self, step: float) -> float:
        """When ``step`` sounds, in the caller's seconds."""
        return self._anchor_s + (step - self._anchor_step) * self._step_s

    def set_bpm(self, bpm: float, *, now_s: float) -> None:
        """Continue from the step playing at ``now_s`` at a new tempo."""
        self._anchor_step, self._anchor_s = self.step_at(now_s), now_s
        self._step_s = 60.0 / check_bpm(bpm) / STEPS_PER_BEAT

    def queue(self, tokens: Sequence[int]) -> None:
        """Play ``tokens`` (``n_steps`` of them) from the next phrase boundary; replaces a phrase queued before."""
        tokens = [int(t) for t in tokens]
        if len(tokens) != self.n_steps:
            raise ParameterError(f"a phrase of {len(tokens)} tokens; this scheduler plays phrases of {self.n_steps}")
        self._queued = tokens_to_notes(tokens, pitch_low=self.pitch_low)

    def next_boundary_s(self, now_s: float) -> float:
        """When the next phrase starts."""
        step = self.step_at(now_s)
        return self.time_of((int(step // self.n_steps) + 1) * self.n_steps)

    def _notes_of(self, phrase: int) -> list[tuple[int, int, int]]:
        if phrase not in self._phrases:
            if self._queued is not None:
                self._last, self._queued = self._queued, None
            self._phrases[phrase] = self._last or []
            self._phrases.pop(phrase - 2, None)
        return self._phrases[phrase]

    def due(self, now_s: float):
        """MIDI messages (``mido.Message``) for every step that has started by ``now_s`` and was not returned yet."""
        import mido

        messages = []
        current = self.step_at(now_s)
        while self._next_step <= current:
            step = self._next_step
            phrase, offset = divmod(step, self.n_steps)
            notes = self._notes_of(phrase)
            ending = [p for s, e, p in notes if e == offset] if offset else []
            starting = [p for s, e, p in notes if s == offset]
            if self._sounding is not None and (starting or self._sounding in ending or offset == 0):
                messages.append(mido.Message("note_off", channel=self.channel, note=self._sounding, velocity=0))
                self._sounding = None
            for pitch in starting:
                messages.append(mido.Message("note_on", channel=self.channel, note=pitch, velocity=self.velocity))
                self._sounding = pitch
            self._next_step += 1
        return messages

    def all_notes_off(self):
        """The note-off for the note sounding now, if any (call when stopping)."""
        import mido

        if self._sounding is None:
            return []
        message = mido.Message("note_off", channel=self.channel, note=self._sounding, velocity=0)
        self._sounding = None
        return [message]
