"""imgsonic voices as pyo objects: drop a neural voice into any pyo script, on the server you booted.

>>> from pyo import Server, Freeverb, Sine                                 # doctest: +SKIP
>>> from bridge.live.voices import NeuralVoice
>>> s = Server().boot()                                                    # doctest: +SKIP
>>> v = NeuralVoice(preset="default", images="pics/", mul=0.3)             # doctest: +SKIP
>>> rev = Freeverb(v, size=0.8).out()                                      # doctest: +SKIP
>>> v.setImage("pics/cat.png", fadetime=2.0)     # glides to the new image's sound over 2 s   # doctest: +SKIP
>>> lfo = Sine(freq=v.latent[0] * 4 + 0.1)        # latent dims as control streams          # doctest: +SKIP

A :class:`NeuralVoice` is a pyo object like any other (``out()``, ``play()``, ``stop()``, ``mul``/``add``,
arithmetic, ``setMul``…). Its sound is made by a :class:`bridge.sonify.voice.VoiceRenderer` (decode →
streaming PGHI → resample to the server's rate) and streamed in through :class:`synth.engine.BlockFeed`,
sample-exactly: with a latent sequence scheduled at the same times it equals ``imgsonic render
--vocoder pghi`` (see ``tests/test_voices.py``).

Control streams (pyo ``SigTo`` objects updated every buffer, ramping across it, at the *play* position so they
line up with what is heard): ``v.latent`` (= ``v.image_latent``, one per image-latent dim), ``v.audio_latent``
and ``v.params`` (the mapping's parameters by name, in their units). Any pyo parameter can follow them.
:class:`ParametricVoice` is the parametric path ready-made: an FM synth whose pitch, index, loudness and pan
follow a voice's mapped parameters.

Which image plays: ``setImage(path or pixels)``, ``setLatent(values)``, ``morph(a, b, t)``, or a sequence —
``images=`` a folder or a list of paths, stepped by ``next()``, every ``rate`` seconds (``setRate``), or on a
pyo trigger (``setTrigger``). Images given by path are read in the caller's thread (``reader``, default
:func:`bridge.sources.images.read_image`); an unreadable one raises :class:`models.errors.InputError` and the
voice keeps playing what it played. With ``setTempo(bpm)`` every image change lands on the next beat (or
bar): the middle of its glide, where the image is heard, falls on the beat.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bridge.control.limits import FADE_S
from bridge.control.mapping import Mapping, load_mapping
from bridge.control.tempo import GRIDS, Tempo, parse_time_signature
from bridge.sonify.voice import VoiceRenderer
from bridge.sources.images import expand_inputs, read_image
from models.errors import InputError, ParameterError
from synth.engine import BlockFeed, pyo, server_hooks

__all__ = ["NeuralVoice", "ParametricVoice"]

log = logging.getLogger("imgsonic.voices")


def _pixels(image, reader) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, (str, os.PathLike)):
        return reader(image)
    raise InputError(f"image {image!r}: expected a file path or a pixel array (H, W[, C])")


class _Sequence:
    """A list of image files stepped through in order, wrapping around."""

    def __init__(self, images) -> None:
        paths = expand_inputs([images] if isinstance(images, (str, os.PathLike)) else list(images))
        if not paths:
            raise InputError(f"images {images!r}: no image files found")
        self.paths: list[Path] = paths
        self.index = -1

    def advance(self) -> Path:
        self.index = (self.index + 1) % len(self.paths)
        return self.paths[self.index]


class NeuralVoice(pyo.PyoObject):
    """The neural sonification of images as a pyo audio object (mono).

    Parameters
    ----------
    preset : str or path
        Preset name (``imgsonic info`` lists them) or folder; ignored when ``bundle`` is given.
    images : str, path or list, optional
        A folder, glob or list of image files to step through (``next()``, ``setRate``, ``setTrigger``).
        The first one plays from the start; without it the voice plays the demo's first picture.
    rate : float, optional
        Seconds per image when following ``images`` (None: only on ``next()`` or a trigger).
    fadetime : float
        Default glide time in seconds for image changes.
    mapping : str, path or Mapping, optional
        Parameter mapping for ``params`` (default: the shipped one).
    bundle : bridge.sonify.bundle.ModelBundle, optional
        Already-loaded models and their vocoders (several voices can share them).
    fx : str
        pedalboard effect chain on the voice (``imgsonic render --fx`` grammar).
    ahead : int
        Buffers decoded ahead in a worker thread: 0 decodes in the server's callback (deterministic; offline
        and manual servers), ≥ 1 for real-time servers.
    vocoder : str
        ``"pghi"`` (streaming phase reconstruction of the mel's pseudo-inverse), ``"neural"`` (the bundle's
        neural vocoder) or the path of a vocoder checkpoint for the models' spectral config.
    reader : callable, optional
        ``reader(path) -> pixels`` for images given by path (default :func:`bridge.sources.images.read_image`;
        a live session passes its bounded :meth:`bridge.live.image_loader.ImageLoader.read`).
    fade_in_s : float
        The voice rises from silence over this long when it starts (a live session: 50 ms), so that nothing
        it feeds — a delay line, a reverb — gets a click.

    The voice does not touch process state: a program that builds voices in a real-time process should call
    :func:`synth.engine.settle_garbage_collector` once its models are loaded (``imgsonic live`` does).
    mul, add : float or PyoObject
    """

    def __init__(
        self,
        preset: str = "default",
        *,
        images=None,
        rate: float | None = None,
        fadetime: float = 0.1,
        mapping: str | os.PathLike | Mapping | None = None,
        bundle=None,
        fx: str = "",
        ahead: int = 0,
        vocoder: str | os.PathLike = "pghi",
        reader=read_image,
        fade_in_s: float = 0.0,
        mul=1,
        add=0,
    ) -> None:
        pyo.pyoArgsAssert(self, "OO", mul, add)
        pyo.PyoObject.__init__(self, mul, add)
        from bridge.sonify.bundle import load_bundle

        if bundle is None:
            bundle = load_bundle(preset=preset)
        if vocoder not in ("pghi", "neural"):  # a vocoder checkpoint for these models
            bundle = dataclasses.replace(bundle, vocoder_path=Path(vocoder), _vocoders={})
            vocoder = "neural"
        self.bundle = bundle
        if not isinstance(mapping, Mapping):
            mapping = load_mapping(mapping)
        self._fadetime = float(fadetime)
        self._reader = reader
        self._sequence = _Sequence(images) if images is not None else None
        first = None
        if self._sequence is not None:
            from bridge.sources.images import ImageItem

            path = self._sequence.advance()
            first = ImageItem(name=path.name, pixels=reader(path))
        probe = pyo.Sig(0)
        # decoding in the callback: spread each push over four buffers so no buffer carries a whole one
        self.renderer = VoiceRenderer(models=bundle.models, sample_rate=int(probe.getSamplingRate()), image=first,
                                      mapping=mapping, fx=fx, spread_work=ahead == 0, vocoder=bundle.vocoder(vocoder),
                                      latent_range=bundle.latent_range(), fade_in_s=fade_in_s)
        self._tempo: Tempo | None = None
        self._grid = "beat"
        self._stepping = threading.Lock()  # one sequence step at a time, however fast the trigger
        self._lock = threading.Lock()  # one control change at a time (Python, OSC, MIDI threads)
        self._feed = BlockFeed(self._render, ahead_blocks=ahead)
        self._base_objs = pyo.Sig(self._feed, mul=mul, add=add).getBaseObjects()
        self._control_rate_hz = probe.getSamplingRate() / probe.getBufferSize()
        ramp_s = 1.0 / self._control_rate_hz
        controls = self.controls = self.renderer.step_controls(control_rate_hz=self._control_rate_hz)
        self.image_latent = [pyo.SigTo(float(v), time=ramp_s, init=float(v)) for v in controls.z_img]
        self.audio_latent = [pyo.SigTo(float(v), time=ramp_s, init=float(v)) for v in controls.z_aud]
        self.params = {name: pyo.SigTo(v, time=ramp_s, init=v) for name, v in controls.params.items()}
        self._signals = [*self.image_latent, *self.audio_latent, *self.params.values()]
        self._sent = np.array([*controls.z_img.tolist(), *controls.z_aud.tolist(), *controls.params.values()])
        server_hooks(self._feed).add(self._update_controls)
        self._metro = self._trigfunc = None
        self._trigger = None
        if rate is not None:
            self.setRate(rate)

    # ---- audio and controls (server callback) -----------------------------------------------------

    def _render(self, n_samples: int) -> np.ndarray:
        return self.renderer.render(n_samples)

    def _update_controls(self) -> None:
        controls = self.controls = self.renderer.step_controls(control_rate_hz=self._control_rate_hz)
        values = np.array([*controls.z_img.tolist(), *controls.z_aud.tolist(), *controls.params.values()])
        # only the streams whose value moved (by more than float noise): once a glide has settled that is none
        # of them (a pyo setValue costs a few µs, and there is one per latent dimension and parameter)
        moved = np.flatnonzero(np.abs(values - self._sent) > 1e-7 * (1.0 + np.abs(self._sent)))
        for index in moved.tolist():
            self._signals[index].setValue(float(values[index]))
            self._sent[index] = values[index]

    controls: object
    """The latest :class:`bridge.voice_stream.Controls` (updated every buffer; read it from any thread)."""

    @property
    def latent(self) -> list:
        """The image-latent control streams (``SigTo``, one per dim)."""
        return self.image_latent

    @property
    def stats(self):
        """The feed's :class:`synth.engine.FeedStats` (hook times, underruns, source errors)."""
        return self._feed.stats

    # ---- what plays --------------------------------------------------------------------------------

    def setImage(self, image, fadetime: float | None = None) -> None:
        """Glide to ``image`` (a file path or pixels ``(H, W[, C])``) over ``fadetime`` seconds (on the next
        beat or bar with :meth:`setTempo`)."""
        pixels = _pixels(image, self._reader)
        fadetime = FADE_S.check(self._fadetime if fadetime is None else fadetime)
        with self._lock:
            self.renderer.set_image(pixels, fadetime_s=fadetime, at_s=self._on_grid(fadetime))

    def _on_grid(self, fadetime: float) -> float | None:
        """With a tempo: when to start a glide of ``fadetime`` so that its middle falls on the next beat (bar)
        the decoder has not passed yet; None without one (at once)."""
        if self._tempo is None:
            return None
        margin_s = 2 * self.renderer.frames_per_push / self.renderer.frame_rate_hz  # the push being decoded
        beat = self._tempo.next_time(self.renderer.decoded_s + margin_s + fadetime / 2, grid=self._grid)
        return beat - fadetime / 2

    def setTempo(self, bpm: float | None, time_signature: str = "4/4", grid: str = "beat") -> None:
        """Land image changes on the beats (``grid="bar"``: bars) of ``bpm`` from the voice's start; None: at once."""
        if bpm is None:
            self._tempo = None
            return
        if grid not in GRIDS:
            raise ParameterError(f"grid {grid!r}; expected one of {', '.join(GRIDS)}")
        numerator, denominator = parse_time_signature(time_signature)
        self._tempo, self._grid = Tempo(bpm=bpm, numerator=numerator, denominator=denominator), grid

    @property
    def tempo(self) -> Tempo | None:
        return self._tempo

    def setLatent(self, values: Sequence[float], fadetime: float | None = None) -> None:
        """Glide to an image latent (one value per dim, clamped to the preset's latent range)."""
        with self._lock:
            self.renderer.set_latent(np.asarray(values, dtype=np.float64),
                                   fadetime_s=self._fadetime if fadetime is None else fadetime)

    def morph(self, a, b, t: float, fadetime: float = 0.05) -> None:
        """Play the latent ``(1 − t)·z(a) + t·z(b)`` between two images (paths or pixels), ``t`` in [0, 1]."""
        pixels_a, pixels_b = _pixels(a, self._reader), _pixels(b, self._reader)
        with self._lock:
            self.renderer.morph(pixels_a, pixels_b, t, fadetime_s=fadetime)

    def setParam(self, name: str, value: float | None) -> None:
        """Hold mapped parameter ``name`` at ``value`` (None: follow the images again)."""
        self.renderer.set_param(name, value)

    def setFadetime(self, seconds: float) -> None:
        """Default glide time for image changes (``setImage`` without a fadetime, ``next()``, rate and trigger)."""
        self._fadetime = FADE_S.check(seconds)

    def next(self) -> None:
        """Step to the next image of ``images`` (wrapping around)."""
        if self._sequence is None:
            raise ParameterError("this voice has no image sequence; create it with images=FOLDER or a list")
        self.setImage(self._sequence.advance())

    def _next_from_trigger(self) -> None:
        # called from the audio thread by TrigFunc: read and encode in a thread of its own, one at a time (a
        # trigger faster than a file loads skips steps instead of piling up threads)
        if self._stepping.acquire(blocking=False):
            threading.Thread(target=self._safe_next, daemon=True).start()

    def _safe_next(self) -> None:
        try:
            self.next()
        except Exception as error:  # noqa: BLE001 — a bad file in the folder must not stop the sequence
            log.error("image sequence: %s", error)
        finally:
            self._stepping.release()

    def setRate(self, seconds: float | None) -> None:
        """Step through ``images`` every ``seconds`` (None stops stepping)."""
        if self._metro is not None:
            self._metro.stop()
            self._metro = self._trigfunc = None
        if seconds is None:
            return
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise ParameterError(f"rate={seconds!r}; expected seconds per image > 0")
        if self._sequence is None:
            raise ParameterError("rate needs an image sequence; create the voice with images=FOLDER or a list")
        self._metro = pyo.Metro(time=float(seconds)).play(delay=float(seconds))
        self._trigfunc = pyo.TrigFunc(self._metro, self._next_from_trigger)

    def setTrigger(self, trigger) -> None:
        """Step through ``images`` on each trigger of a pyo trigger stream (e.g. ``Beat``, ``Metro``, ``Change``)."""
        if self._sequence is None:
            raise ParameterError("a trigger needs an image sequence; create the voice with images=FOLDER or a list")
        self._trigger = pyo.TrigFunc(trigger, self._next_from_trigger)

    def close(self) -> None:
        """Stop decoding (the worker too); the voice is silent afterwards."""
        self.setRate(None)
        self._trigger = None
        self._feed.close()
        server_hooks(self._feed).remove(self._update_controls)


class ParametricVoice(pyo.PyoObject):
    """An FM voice driven by a neural voice's mapped parameters (the parametric path as a pyo object).

    Reads ``pitch`` (Hz), ``fm_index``, ``loudness`` (0–1), ``cutoff_hz`` and ``pan`` (−1…1) from
    ``voice.params`` when the mapping has them, else uses fixed defaults. Stereo (two streams).
    """

    def __init__(self, voice: NeuralVoice, *, ratio: float = 1.5, mul=1, add=0) -> None:
        pyo.pyoArgsAssert(self, "OO", mul, add)
        pyo.PyoObject.__init__(self, mul, add)
        params = voice.params

        def follow(name: str, default: float):
            return params[name] if name in params else pyo.Sig(default)

        self._fm = pyo.FM(carrier=follow("pitch", 220.0), ratio=ratio, index=follow("fm_index", 2.0),
                          mul=follow("loudness", 0.5))
        self._filter = pyo.ButLP(self._fm, freq=follow("cutoff_hz", 4000.0))
        self._pan_position = (follow("pan", 0.0) + 1) * 0.5
        self._pan = pyo.Pan(self._filter, outs=2, pan=self._pan_position, mul=mul, add=add)
        self._base_objs = self._pan.getBaseObjects()
