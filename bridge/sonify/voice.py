"""A neural voice's sound, block by block: images and latents in, audio at the output rate out (no pyo here).

:class:`VoiceRenderer` is the live counterpart of :func:`bridge.sonify.render.render_items` and runs the same
steps on the same code: images are encoded and mapped to audio latents, the latents go on a
:class:`bridge.control.timeline.LatentTimeline`, each mel frame's audio latent is decoded (frame ``m`` is
column ``m % W`` of its window, as offline), the frames go through the vocoder's stream (``pghi``: the
streaming form of ``--vocoder pghi``; ``neural``: the neural vocoder's), and are resampled with
:class:`synth.resample.Resampler`. The vocoder's latency is dropped once at the start, so output sample ``n``
lines up with sample ``n`` of the offline render: for events at the same frames the voice equals
``render_items(..., vocoder="pghi" or "neural", peak_db=None, fade_s=0)`` with raw loudness
(``LoudnessSettings(mode="raw")``, ``--loudness raw``) within float rounding (``tests/test_voice_stream.py``
states the tolerance).

Threads: the control methods (:meth:`set_image`, :meth:`set_latent`, :meth:`morph`, :meth:`set_param`)
may be called from any thread (Python, OSC, MIDI); they encode in the caller's thread and queue an event.
:meth:`render` (the audio side) applies queued events at the next frame it decodes and never blocks on them.

Time: the voice's clock counts output samples handed out by :meth:`render` (``played_s``); the decoder runs
ahead of it by the vocoder's look-ahead (one frame for PGHI) plus what is left of the last decoded push
(``decoded_s``: an event queued now is applied there, an event scheduled earlier than that is late).

Image onsets: each image (``set_image``, ``morph`` is not one) is heard at the middle of its crossfade, where
the offline render puts the boundary between two images. :meth:`step_controls` reports how many onsets have
been heard (``Controls.onsets``) and the positions the latest image's parameters glide to
(``Controls.onset_positions``, before smoothing): what a MIDI note for that image plays, once.

Example
-------
>>> from models.pipeline import SonificationModels                    # doctest: +SKIP
>>> voice = VoiceRenderer(models=SonificationModels.from_preset("default"), sample_rate=44100)  # doctest: +SKIP
>>> voice.set_image(pixels, fadetime_s=2.0)                           # doctest: +SKIP
>>> block = voice.render(256)                                         # doctest: +SKIP
"""

from __future__ import annotations

import collections
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.control.latent_range import LatentRange
from bridge.control.limits import FADE_S
from bridge.control.mapping import Mapping, load_mapping
from bridge.control.smoothing import PositionSmoother
from bridge.control.timeline import LatentTimeline
from bridge.sonify.encode import prepare_inputs
from bridge.sources.descriptors import DESCRIPTORS
from bridge.sources.images import ImageItem
from models.errors import ParameterError

if TYPE_CHECKING:
    from models.pipeline import SonificationModels

__all__ = ["VoiceRenderer", "Controls"]



@dataclass(frozen=True)
class Controls:
    """The control values at one moment: image latent ``(Di,)``, audio latent ``(Da,)``, parameters by name
    (values in their units, and positions 0–1 as MIDI velocity and CC use them); ``onsets`` images heard so
    far (the first image counts), and ``onset_positions`` the unsmoothed positions the latest one glides to."""

    z_img: np.ndarray
    z_aud: np.ndarray
    params: dict[str, float]
    positions: dict[str, float]
    onsets: int = 0
    onset_positions: dict[str, float] | None = None


_N_STAGES = 4  # of a push (see VoiceRenderer._advance)
_MAX_EVENTS = 1024  # queued control changes; the oldest go first when a stalled decoder lets them pile up


class VoiceRenderer:
    """One neural voice: a latent timeline decoded to audio on demand.

    Parameters
    ----------
    models : SonificationModels
    sample_rate : int
        Output rate in Hz (the server's); the models' rate is resampled to it.
    image : ImageItem, optional
        What the voice plays before anything is set (default: the demo's first picture), so it sounds at once.
    mapping : Mapping, optional
        Parameter mapping for the control streams (default: the shipped one).
    frames_per_push : int, optional
        Mel frames decoded and inverted together (≥ 1). Default: the frames in about 25 ms (2 at a 16 ms
        hop, 1 at 64 ms): two frames per push cost the inverter a third less per frame than one
        (``benchmarks/phase.py``) for one hop more of latency.
    fx : str
        Effect chain (``synth.effects`` grammar) applied to the output, as ``imgsonic render --fx``.
    spread_work : bool
        Spread each push's work over four :meth:`render` calls (for rendering inside an audio callback,
        where the heaviest buffer counts); the samples are the same either way.
    vocoder : a vocoder that streams (:mod:`synth.vocoder`: ``ModelBundle.vocoder("pghi" or "neural")``), optional
        Turns the mel frames into audio (its spectral config must be the models'); default: streaming PGHI on
        the mel's pseudo-inverse magnitudes.
    latent_range : LatentRange, optional
        What :meth:`set_latent` clamps to (``ModelBundle.latent_range()``); default: measured from the models
        on first use (:func:`bridge.sonify.latent_stats.image_latent_range`).
    fade_in_s : float
        The output starts from silence and rises over this long (0…60 s; the raised-cosine of the offline
        render's ``fade_s``, so the two stay equal), instead of starting mid-waveform with a click.
    """

    def __init__(
        self,
        *,
        models: SonificationModels,
        sample_rate: int,
        image: ImageItem | None = None,
        mapping: Mapping | None = None,
        frames_per_push: int | None = None,
        fx: str = "",
        spread_work: bool = False,
        vocoder: Any | None = None,
        latent_range: LatentRange | None = None,
        fade_in_s: float = 0.0,
    ) -> None:
        from synth.effects import EffectChain
        from synth.resample import Resampler
        from synth.spectral import SpectralConfig
        from synth.vocoder import PhaseVocoder

        self.models = models
        self.mapping = mapping or load_mapping()
        self.mapping.check_dims(image_latent_dim=models.image_latent_dim, audio_latent_dim=models.audio_latent_dim)
        self.config = SpectralConfig.from_dict(models.spectral_config)
        self.sample_rate = int(sample_rate)
        self.resampler = Resampler(orig_hz=self.config.sample_rate, new_hz=self.sample_rate)
        if vocoder is None:
            vocoder = PhaseVocoder(method="pghi", config=self.config)
        elif vocoder.config != self.config:
            raise ParameterError(f"the vocoder's spectral config {vocoder.config} is not the models' {self.config}")
        vocoder_stream = vocoder.stream()
        self._frames_of, self._invert = vocoder_stream.frames_of, vocoder_stream.push_frames
        self.vocoder_latency_samples = vocoder_stream.latency_samples
        self.effects = EffectChain(fx)
        self.frame_rate_hz = self.config.sample_rate / self.config.hop_length
        if frames_per_push is None:
            frames_per_push = max(1, round(0.025 * self.frame_rate_hz))
        if isinstance(frames_per_push, bool) or not isinstance(frames_per_push, int) or frames_per_push < 1:
            raise ParameterError(f"frames_per_push={frames_per_push!r}; expected an integer ≥ 1")
        self.frames_per_push = frames_per_push
        self.spread_work = bool(spread_work)
        self._stage = 0  # the next stage of the push in progress (see _advance)
        self._pending: np.ndarray | None = None
        self._frames = np.zeros(0, dtype=np.int64)  # the push in progress's mel frames
        self._undecoded: np.ndarray | None = None  # its audio latents still to decode (stage 1)
        # (frame or None, z_img, descriptors, fade_s, onset?), from any thread; mapped when applied
        self._events: collections.deque = collections.deque(maxlen=_MAX_EVENTS)
        self._onsets: collections.deque = collections.deque()  # (time heard, positions), applied, not yet heard
        self._heard_onsets = 0
        self._onset_positions: dict[str, float] | None = None
        if latent_range is not None and latent_range.dim != models.image_latent_dim:
            raise ParameterError(f"latent range of {latent_range.dim} dims for models with {models.image_latent_dim}")
        self._latent_range = latent_range
        self._overrides: dict[str, float] = {}
        self._encode_lock = threading.Lock()
        self._timeline_lock = threading.Lock()  # the decoder (audio or worker thread) and step_controls() share it
        self._encoded: collections.OrderedDict = collections.OrderedDict()  # pixels' bytes → (z_img, descriptors)
        self._window_key: bytes | None = None
        self._window_frames_cache: np.ndarray | None = None
        self.timeline = LatentTimeline()
        if image is None:
            from bridge.sources.demo import demo_images

            image = demo_images()[0]
        # per parameter: (parameter, source name, column), resolved once
        self._sources = [(p, *(p.latent or ("descriptors", DESCRIPTORS.index(p.source)))) for p in self.mapping.parameters]
        z_img, descriptors = self._encode(image.pixels)
        values = self._values(z_img, descriptors)
        self.timeline.add(0.0, values)
        self._onsets.append((0.0, self._target_positions(values)))
        self._descriptors = descriptors
        self._smoother: PositionSmoother | None = None
        self._next_frame = 0  # next mel frame to decode
        self._to_skip = self.vocoder_latency_samples  # model-rate samples before the signal's start
        self._fifo: collections.deque[np.ndarray] = collections.deque()
        self._fifo_samples = 0
        self.played_samples = 0
        n_fade = round(FADE_S.check(fade_in_s) * self.sample_rate)
        # the offline render's fade-in (bridge.sonify.render._fade), sample for sample
        self._fade_in = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n_fade) + 0.5) / max(n_fade, 1))).astype(np.float32)

    # ---- control side (any thread) -----------------------------------------------------------------

    def _encode(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixels → (image latent ``(Di,)``, descriptors ``(n,)``), cached for the last 64 images."""
        import torch

        pixels = np.asarray(pixels)
        key = pixels.tobytes() + str(pixels.shape).encode()
        with self._encode_lock:
            if key in self._encoded:
                self._encoded.move_to_end(key)
                return self._encoded[key]
            with torch.inference_mode():
                inputs, descriptors = prepare_inputs([ImageItem(name="image", pixels=pixels)], self.models)
                z_img = self.models.encode_images(inputs)[0].numpy().astype(np.float64)
            self._encoded[key] = (z_img, descriptors[0])
            if len(self._encoded) > 64:
                self._encoded.popitem(last=False)
            return z_img, descriptors[0]

    def _values(self, z_img: np.ndarray, descriptors: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            z_aud = self.models.image_to_audio_latent(torch.from_numpy(z_img[None].astype(np.float32)))[0]
        return {"z_img": z_img, "z_aud": z_aud.numpy().astype(np.float64), "descriptors": descriptors}

    def _target_positions(self, values: dict[str, np.ndarray]) -> dict[str, float]:
        """The positions (0–1, unsmoothed) of every parameter for one event's latents and descriptors."""
        return {parameter.name: parameter.position_of(float(values[kind][index]))
                for parameter, kind, index in self._sources}

    def _queue(self, z_img: np.ndarray, descriptors: np.ndarray, fadetime_s: float, at_s: float | None,
               *, onset: bool = False) -> None:
        """Queue a change; the mapper runs when it is applied, once per push however many arrive (the caller's
        thread — OSC's, in a flood — only validates and appends)."""
        frame = None
        if at_s is not None:
            if isinstance(at_s, bool) or not isinstance(at_s, (int, float)) or not math.isfinite(at_s) or at_s < 0:
                raise ParameterError(f"at_s={at_s!r}; expected a time ≥ 0 seconds on the voice's clock")
            frame = round(at_s * self.frame_rate_hz)
        self._events.append((frame, z_img, descriptors, fadetime_s, onset))

    @property
    def latent_range(self) -> LatentRange:
        """What :meth:`set_latent` clamps to (measured on first use when none was given)."""
        if self._latent_range is None:
            from bridge.sonify.latent_stats import image_latent_range

            self._latent_range = image_latent_range(self.models)
        return self._latent_range

    def set_image(self, pixels: np.ndarray, *, fadetime_s: float = 0.1, at_s: float | None = None) -> None:
        """Glide to an image's sound over ``fadetime_s``; pixels as :func:`bridge.images.read_image` returns them.

        ``at_s`` schedules the change at that time (seconds of output since the voice started,
        rounded to a mel frame); by default it happens at the next frame decoded. InputError for pixels
        that are not an image; the voice keeps playing what it played.
        """
        fadetime_s = FADE_S.check(fadetime_s)
        z_img, descriptors = self._encode(pixels)
        self._descriptors = descriptors
        self._queue(z_img, descriptors, fadetime_s, at_s, onset=True)

    def set_latent(self, z_img: np.ndarray, *, fadetime_s: float = 0.1, at_s: float | None = None) -> None:
        """Glide to an image latent ``(Di,)``, clamped to :attr:`latent_range` (NaN is refused)."""
        fadetime_s = FADE_S.check(fadetime_s)
        z_img = np.asarray(z_img, dtype=np.float64).reshape(-1)
        if z_img.size != self.models.image_latent_dim:
            raise ParameterError(f"latent has {z_img.size} values; expected {self.models.image_latent_dim}")
        if np.isnan(z_img).any():
            raise ParameterError("latent contains NaN")
        self._queue(self.latent_range.clamp(z_img)[0], self._descriptors, fadetime_s, at_s)

    def morph(self, a: np.ndarray, b: np.ndarray, t: float, *, fadetime_s: float = 0.05) -> None:
        """Sound of the image latent ``(1 − t)·z(a) + t·z(b)`` of two images' pixels; ``t`` in [0, 1] (clamped)."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or math.isnan(t):
            raise ParameterError(f"morph position {t!r}; expected a number in 0…1")
        t = min(max(float(t), 0.0), 1.0)
        (z_a, d_a), (z_b, d_b) = self._encode(a), self._encode(b)
        descriptors = (1 - t) * d_a + t * d_b
        self._descriptors = descriptors
        self._queue((1 - t) * z_a + t * z_b, descriptors, FADE_S.check(fadetime_s), None)

    def set_param(self, name: str, value: float | None) -> None:
        """Hold a mapped parameter at ``value`` (its units, clamped to its range); ``None`` lets it follow again."""
        parameter = self.mapping[name]
        if value is None:
            self._overrides.pop(name, None)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ParameterError(f"parameter {name!r} value {value!r}; expected a number")
        low, high = sorted((parameter.low, parameter.high))
        self._overrides[name] = min(max(float(value), low), high)

    # ---- audio side ------------------------------------------------------------------------------

    @property
    def played_s(self) -> float:
        return self.played_samples / self.sample_rate

    @property
    def decoded_s(self) -> float:
        """Where the decoder is: a change queued now is applied at this time of the voice's clock (or later)."""
        return self._next_frame / self.frame_rate_hz

    def _due_event(self) -> tuple[dict[str, np.ndarray], float, dict[str, float] | None] | None:
        """The events due at the next frame, mapped: (values, fade_s, onset positions or None), or None.

        Of several due at once only the last is heard, so only it is mapped and goes on the timeline (a
        flood of latents costs one mapper call and one glide per push, not one per message).
        """
        due = None
        while self._events:
            frame = self._events[0][0]
            if frame is not None and frame > self._next_frame:
                break  # scheduled later (events are applied in the order they were queued)
            due = self._events.popleft()
        if due is None:
            return None
        _, z_img, descriptors, fade_s, onset = due
        values = self._values(z_img, descriptors)
        return values, fade_s, self._target_positions(values) if onset else None

    def _window_frames(self, z_aud: np.ndarray) -> np.ndarray:
        """What the vocoder takes (STFT magnitudes or mels, ``(·, window_frames)``) for one audio latent's
        decoded window (cached: holds repeat it)."""
        key = z_aud.tobytes()
        if key != self._window_key:
            self._window_frames_cache = self._frames_of(self._decode_rows(z_aud[None])[0])
            self._window_key = key
        return self._window_frames_cache

    def _decode_rows(self, z_aud: np.ndarray) -> np.ndarray:
        """Decoded windows ``(n, n_mels, window_frames)`` of audio latents ``(n, d)``."""
        import torch

        with torch.inference_mode():
            return self.models.decode_audio(torch.from_numpy(z_aud.astype(np.float32))).numpy()

    def _prepare(self) -> None:
        """Stage 0 of a push: apply due events, sample the latents, decode the first half of the frames.

        A held sound's frames come from its cached window at once; otherwise each frame's latent is decoded
        (np.unique as offline costs more for a few frames), half here and half in stage 1, so that no
        buffer carries a whole push's decoding.
        """
        frames = np.arange(self._next_frame, self._next_frame + self.frames_per_push)
        due = self._due_event()  # mapped outside the lock: step_controls (the audio callback) waits for it
        with self._timeline_lock:
            if due is not None:
                values, fade_s, onset_positions = due
                time_s = self._next_frame / self.frame_rate_hz
                self.timeline.add(time_s, values, crossfade_s=fade_s)
                if onset_positions is not None:
                    self._onsets.append((time_s + fade_s / 2, onset_positions))
            self.timeline.forget_before(self.played_s)
            z_aud = self.timeline.sample(frames / self.frame_rate_hz)["z_aud"]
        self._next_frame += self.frames_per_push
        self._frames = frames
        if (z_aud == z_aud[0]).all():  # a held sound: the window is decoded once per latent
            self._pending = self._window_frames(z_aud[0])[:, frames % self.models.window_frames]
            self._undecoded = None
            return
        half = (frames.size + 1) // 2
        self._pending = self._decode_rows(z_aud[:half])
        self._undecoded = z_aud[half:]

    def _finish_decoding(self) -> None:
        """Stage 1: decode the rest of the frames → the vocoder's input ``(·, frames)``."""
        if self._undecoded is None:
            return
        windows = self._pending
        if self._undecoded.size:
            windows = np.concatenate([windows, self._decode_rows(self._undecoded)])
        frames = self._frames
        self._pending = self._frames_of(windows[np.arange(frames.size), :, frames % self.models.window_frames].T)
        self._undecoded = None

    def _deliver(self, audio: np.ndarray) -> None:
        """Stage 3: drop the vocoder's start-up latency, resample, effects, into the FIFO."""
        if self._to_skip:
            skip = min(self._to_skip, audio.size)
            audio, self._to_skip = audio[skip:], self._to_skip - skip
        audio = self.resampler.process(audio)
        if audio.size:
            if not self.effects.is_identity:
                audio = self.effects.process(audio[None], sample_rate=self.sample_rate)[0]
            self._fifo.append(audio)
            self._fifo_samples += audio.size

    def _advance(self) -> None:
        """The next stage of the next push: 0 latents → half decoded, 1 decoded → vocoder input, 2 vocoder,
        3 resample → FIFO."""
        if self._stage == 0:
            self._prepare()
        elif self._stage == 1:
            self._finish_decoding()
        elif self._stage == 2:
            self._pending = self._invert(self._pending)
        else:
            self._deliver(self._pending)
            self._pending = None
        self._stage = (self._stage + 1) % _N_STAGES

    def render(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` output samples (float32), decoding as many frames as that needs.

        With ``spread_work`` the four stages of a push run in four consecutive calls (one each) instead of
        all in one, started while the FIFO still holds four calls' worth: the heaviest call costs about a
        third as much, and events are applied about three calls earlier (three buffers more latency).
        """
        while self._fifo_samples < n_samples:
            self._advance()
        out = np.empty(n_samples, dtype=np.float32)
        filled = 0
        while filled < n_samples:
            head = self._fifo[0]
            take = min(head.size, n_samples - filled)
            out[filled : filled + take] = head[:take]
            if take == head.size:
                self._fifo.popleft()
            else:
                self._fifo[0] = head[take:]
            filled += take
        self._fifo_samples -= n_samples
        if self.played_samples < self._fade_in.size:
            ramp = self._fade_in[self.played_samples : self.played_samples + n_samples]
            out[: ramp.size] *= ramp
        self.played_samples += n_samples
        if self.spread_work and (self._stage or self._fifo_samples < _N_STAGES * n_samples):
            self._advance()
        return out

    def step_controls(self, *, control_rate_hz: float) -> Controls:
        """Advance the parameter smoothing by one control period and return the controls at the play position.

        What is heard now, not what is decoded: the latents and the mapped parameters, whose positions are
        smoothed with each parameter's ``smoothing_s`` at ``control_rate_hz`` (call it once per control
        period, e.g. per audio buffer, always with the same rate); held parameters (:meth:`set_param`) win.
        """
        with self._timeline_lock:
            played_s = self.played_s
            sources = self.timeline.value_at(played_s)
            while self._onsets and self._onsets[0][0] <= played_s:
                self._onset_positions = self._onsets.popleft()[1]
                self._heard_onsets += 1
        if self._smoother is None:
            self._smoother = PositionSmoother({p.name: p.smoothing_s for p in self.mapping.parameters},
                                              control_rate_hz=control_rate_hz)
        raw = {parameter.name: parameter.position_of(float(sources[kind][index]))
               for parameter, kind, index in self._sources}
        positions = self._smoother.step(raw)
        params = {parameter.name: parameter.value_at(positions[parameter.name]) for parameter, _, _ in self._sources}
        for name, value in self._overrides.items():
            params[name] = value
            positions[name] = self.mapping[name].position_of_value(value)
        return Controls(z_img=sources["z_img"], z_aud=sources["z_aud"], params=params, positions=positions,
                        onsets=self._heard_onsets, onset_positions=self._onset_positions)
