"""Melodies as sound: a pyo voice that plays melody phrases on a 16th-note clock, live or offline.

:class:`MelodyVoice` is a pyo object (``out()``, ``mul``, mixing, effects) whose notes come from tables indexed
by a step counter, all inside pyo's graph: the clock (``Metro`` at one 16th note), the step counter, each
step's pitch, note-on flag and note length are audio-rate streams, so notes start on their exact sample and
no Python runs per note. The instrument is a soft FM electric piano (a 1:1 FM pair whose index falls with
the note's envelope, a quiet sine an octave up, a low-pass that opens with the envelope) into a small room.

* offline: :func:`render_melody` plays whole phrases on pyo's offline server and returns the samples (what
  ``imgsonic render --melody`` mixes into its WAV and ``imgsonic eval`` analyses);
* live: ``MelodyVoice(n_phrases=2, loop=True)`` plays a ring of phrase slots; ``setPhrase(slot, tokens)``
  fills one while another plays, and :meth:`MelodyVoice.follow` fills the next slot from a
  :class:`bridge.live.voices.NeuralVoice`'s current image at every phrase start.

Tokens are those of :mod:`models.melody_vae` (REST, HOLD, pitches from ``pitch_low``).

Example
-------
>>> from bridge.live.melody_voice import render_melody
>>> audio = render_melody([[14, 1, 1, 1, 16, 1, 1, 1] * 4], pitch_low=48, bpm=120, sample_rate=22050)  # doctest: +SKIP
>>> audio.shape                          # 32 steps at 120 bpm = 4 s, plus a 1 s tail          # doctest: +SKIP
(110250,)
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bridge.control.tempo import STEPS_PER_BEAT, check_bpm
from models.errors import ParameterError
from models.melody_vae import tokens_to_notes
from synth.engine import pyo

__all__ = ["MelodyVoice", "render_melody", "TAIL_S"]

log = logging.getLogger("imgsonic.melody")

TAIL_S = 1.0  # the last note's release and the room's decay after the last phrase
_ENVELOPE = [(0, 0.0), (250, 1.0), (1600, 0.62), (5600, 0.38), (7950, 0.3), (8191, 0.0)]  # over each note's length


class MelodyVoice(pyo.PyoObject):
    """Plays melody phrases (mono) on a 16th-note clock; a pyo object like any other.

    Parameters
    ----------
    n_phrases : phrase slots in the voice's tables; the clock runs through them in order.
    n_steps : 16th steps per phrase (the melody model's ``n_steps``).
    pitch_low : MIDI pitch of the first pitch token.
    bpm : tempo in quarter notes per minute (20…400); ``setBpm`` changes it (smoothed over 50 ms).
    loop : after the last slot, start again at the first (live); else fall silent (offline).
    brightness : 0…1, how far the FM index and the filter open on each note (default 0.5).
    room : 0…1, reverb mix (default 0.18).
    mul, add : float or PyoObject.
    """

    def __init__(self, *, n_phrases: int = 2, n_steps: int = 32, pitch_low: int = 48, bpm: float = 120.0,
                 loop: bool = True, brightness: float = 0.5, room: float = 0.18, mul=1, add=0) -> None:
        pyo.pyoArgsAssert(self, "OO", mul, add)
        pyo.PyoObject.__init__(self, mul, add)
        if isinstance(n_phrases, bool) or not isinstance(n_phrases, int) or n_phrases < 1:
            raise ParameterError(f"n_phrases={n_phrases!r}; expected an int ≥ 1")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ParameterError(f"n_steps={n_steps!r}; expected an int ≥ 1")
        for name, value in (("brightness", brightness), ("room", room)):
            if not 0.0 <= float(value) <= 1.0:
                raise ParameterError(f"{name}={value!r}; expected 0…1")
        self.n_phrases, self.n_steps, self.pitch_low, self.loop = n_phrases, n_steps, pitch_low, loop
        capacity = n_phrases * n_steps + (0 if loop else 1)  # offline: one silent step after the last phrase
        self._pitch_hz = pyo.DataTable(size=capacity, init=[220.0] * capacity)
        self._onset = pyo.DataTable(size=capacity)
        self._length_steps = pyo.DataTable(size=capacity, init=[1.0] * capacity)
        self._step_s = pyo.SigTo(self._seconds_per_step(bpm), time=0.05, init=self._seconds_per_step(bpm))
        self._metro = pyo.Metro(time=self._step_s).play()
        # offline the counter stops on the silent step (max is exclusive: it would wrap to 0)
        self._counter = pyo.Counter(self._metro, min=0, max=capacity if loop else capacity + 1)
        self._position = pyo.Clip(self._counter, min=0, max=capacity - 1)
        self._trigger = self._metro * pyo.TableIndex(self._onset, self._position)
        self._frequency = pyo.TableIndex(self._pitch_hz, self._position)
        self._length_s = pyo.TableIndex(self._length_steps, self._position) * self._step_s
        self._envelope = pyo.TrigEnv(self._trigger, table=pyo.LinTable(_ENVELOPE, size=8192), dur=self._length_s)
        self._brightness = pyo.SigTo(float(brightness), time=0.05, init=float(brightness))
        index = self._envelope * self._brightness * 3.0 + 0.15
        self._fm = pyo.FM(carrier=self._frequency, ratio=1.0, index=index, mul=self._envelope * 0.5)
        self._octave = pyo.Sine(freq=self._frequency * 2, mul=self._envelope * self._envelope * 0.06)
        cutoff = pyo.Clip(self._frequency * (2 + 10 * self._envelope * self._brightness), 200, 12000)
        # a 1:1 FM pair puts its first lower sideband at 0 Hz: block that DC before the room
        self._filter = pyo.DCBlock(pyo.ButLP(self._fm + self._octave, freq=cutoff))
        self._room = pyo.SigTo(float(room), time=0.05, init=float(room))
        self._reverb = pyo.Freeverb(self._filter, size=0.55, damp=0.6, bal=self._room)
        self._out = pyo.Sig(self._reverb, mul=mul, add=add)
        self._base_objs = self._out.getBaseObjects()
        self._follow = None
        self._filling: threading.Thread | None = None

    @staticmethod
    def _seconds_per_step(bpm: float) -> float:
        return 60.0 / check_bpm(bpm) / STEPS_PER_BEAT

    # ---- what plays ------------------------------------------------------------------------------------

    def setPhrase(self, slot: int, tokens: Sequence[int]) -> None:
        """Write one phrase (``n_steps`` tokens) into slot ``slot`` (0 … n_phrases − 1)."""
        if not 0 <= slot < self.n_phrases:
            raise ParameterError(f"slot={slot!r}; expected 0…{self.n_phrases - 1}")
        tokens = [int(t) for t in tokens]
        if len(tokens) != self.n_steps:
            raise ParameterError(f"a phrase of {len(tokens)} tokens; this voice plays phrases of {self.n_steps}")
        first = slot * self.n_steps
        pitch = list(self._pitch_hz.getTable()[first : first + self.n_steps])
        onset = [0.0] * self.n_steps
        length = [1.0] * self.n_steps
        for start, end, midi in tokens_to_notes(tokens, pitch_low=self.pitch_low):
            onset[start] = 1.0
            length[start] = float(end - start)
            pitch[start:end] = [440.0 * 2 ** ((midi - 69) / 12)] * (end - start)
        for table, values in ((self._pitch_hz, pitch), (self._onset, onset), (self._length_steps, length)):
            for offset, value in enumerate(values):
                table.put(value, first + offset)

    def setPhrases(self, phrases: Sequence[Sequence[int]]) -> None:
        """Write phrases into slots 0, 1, … (at most ``n_phrases``)."""
        if len(phrases) > self.n_phrases:
            raise ParameterError(f"{len(phrases)} phrases for {self.n_phrases} slots")
        for slot, tokens in enumerate(phrases):
            self.setPhrase(slot, tokens)

    def setBpm(self, bpm: float) -> None:
        """Change the tempo (20…400 bpm), glided over 50 ms."""
        self._step_s.setValue(self._seconds_per_step(bpm))

    def setBrightness(self, value: float) -> None:
        """0…1: how far each note's FM index and filter open."""
        self._brightness.setValue(float(np.clip(value, 0.0, 1.0)))

    def setRoom(self, value: float) -> None:
        """0…1: reverb mix."""
        self._room.setValue(float(np.clip(value, 0.0, 1.0)))

    @property
    def step(self) -> int:
        """The step playing now (0 … n_phrases · n_steps − 1)."""
        return int(self._counter.get())

    # ---- following images ------------------------------------------------------------------------------

    def follow(self, voice, melody_models) -> None:
        """At each phrase start, fill the next slot with the melody of ``voice``'s current image latent.

        ``voice`` is a :class:`bridge.live.voices.NeuralVoice` (its ``controls.z_img``), ``melody_models`` the
        :class:`models.melody_pipeline.MelodyModels` of the same image VAE. The melody is decoded in a thread
        of its own, a phrase ahead of when it plays; a failure is logged and the slot keeps its last phrase.
        """
        if not self.loop or self.n_phrases < 2:
            raise ParameterError("follow() needs a looping voice with at least 2 phrase slots")
        starts = [slot * self.n_steps for slot in range(self.n_phrases)]
        self._phrase_start = pyo.Select(self._counter, value=starts[0])
        for value in starts[1:]:
            self._phrase_start = self._phrase_start + pyo.Select(self._counter, value=value)
        self._follow = (voice, melody_models, pyo.TrigFunc(self._phrase_start, self._next_phrase))
        self._fill(0)

    def _next_phrase(self) -> None:
        slot = (self.step // self.n_steps + 1) % self.n_phrases
        self._filling = threading.Thread(target=self._fill, args=(slot,), daemon=True)
        self._filling.start()

    def stop(self, wait: float = 0):
        """Stop sounding and stop following (see :meth:`close`)."""
        self.close()
        return super().stop(wait)

    def close(self) -> None:
        """Stop following (waits for a phrase being decoded); call before the server shuts down."""
        if self._follow is not None:
            self._follow[2].stop()
            self._follow = None
        if self._filling is not None:
            self._filling.join(timeout=2.0)

    def _fill(self, slot: int) -> None:
        import torch

        if self._follow is None:
            return
        voice, melody_models, _ = self._follow
        try:
            z_img = torch.as_tensor(np.asarray(voice.controls.z_img, dtype=np.float32))[None]
            with torch.inference_mode():
                tokens = melody_models.latents_to_tokens(z_img)[0].tolist()
            self.setPhrase(slot, tokens)
        except Exception as error:  # noqa: BLE001 — the audio goes on with the phrase the slot had
            log.error("melody: %s", error)


def render_melody(phrases: Sequence[Sequence[int]], *, pitch_low: int, bpm: float, sample_rate: int,
                  tail_s: float = TAIL_S, **instrument) -> np.ndarray:
    """Phrases ``(n_phrases, n_steps)`` → mono float32 audio: ``n_phrases · n_steps`` 16ths plus ``tail_s``.

    Plays :class:`MelodyVoice` on pyo's offline server (the live voice's code, faster than real time) at
    ``sample_rate``; phrase ``i`` starts at sample ``round(i · n_steps · 15 / bpm · sample_rate)``. Needs no
    audio device; another pyo server in this process must not be running.
    """
    from synth.audio_io import read_audio

    phrases = [list(map(int, phrase)) for phrase in phrases]
    if not phrases:
        raise ParameterError("no phrases to render")
    bpm = check_bpm(bpm)
    n_steps = len(phrases[0])
    duration_s = len(phrases) * n_steps * 60.0 / bpm / STEPS_PER_BEAT + tail_s
    server = pyo.Server(sr=sample_rate, nchnls=1, buffersize=256, duplex=0, audio="offline")
    server.setVerbosity(1)
    server.boot()
    folder = tempfile.mkdtemp(prefix="imgsonic-melody-")
    path = Path(folder) / "melody.wav"
    try:
        voice = MelodyVoice(n_phrases=len(phrases), n_steps=n_steps, pitch_low=pitch_low, bpm=bpm, loop=False,
                            **instrument)
        voice.setPhrases(phrases)
        voice.out()
        server.recordOptions(dur=duration_s, filename=str(path), fileformat=0, sampletype=3)
        server.start()  # the offline server renders the whole duration before returning
        del voice
        audio = read_audio(path, sample_rate=None, channels=1)
    finally:
        server.stop()
        server.shutdown()
        path.unlink(missing_ok=True)
        os.rmdir(folder)
    n_samples = round(duration_s * sample_rate)
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[:n_samples]  # pyo renders whole buffers
    return np.pad(audio, (0, n_samples - len(audio)))
