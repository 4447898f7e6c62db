"""Sound → image: the streaming analyser behind ``imgsonic visualize`` and the live visualizer.

The reverse of rendering, through the same shipped models::

    audio ─resample to the model rate─► log-mel frames (synth.spectral.audio_to_mel, the preset's config)
        ─► audio VAE posterior means of sliding windows ─► averaged per output frame ─► z_aud
        ─► mapper inverse ─► z_img ─► image VAE decoder ─► image

Frames in time
--------------
Frame ``i`` shows the audio around ``t_i = i / fps`` seconds. The audio model reads windows of
``window_frames`` mel frames (``W``); a window is encoded at *every* mel frame (stride 1), so no alignment
between the sound and the windows is assumed. Frame ``i`` averages the posterior means of the windows whose
centres lie within ``± (span − W) / 2`` mel frames of ``t_i``, where ``span`` is ``window_s`` (default
``1 / fps``: consecutive frames see consecutive stretches of sound) in mel frames, but never less than one
window; when no window centre falls in that range, the nearest one is used. Only mel frames whose whole FFT
window lies inside the audio are used: frames near the start and end average the windows that exist, with no
silence or reflection added. A sound is ``ceil(duration · fps)`` frames long (at least one).

Silence and very short sounds
-----------------------------
Log-mels are clamped at the spectral config's dB floor, so silence is an ordinary, all-floor mel window and
maps to one fixed, finite image: whatever the models make of "nothing" — with the shipped presets, for
``squares-sines`` a square at the top edge (the quietest loudness; the mapper has only squares to give), for
``digits-fm`` a blurred upright stroke, for ``default`` a dull red field. Audio shorter than one window
(``n_fft + (W − 1) · hop`` samples at the model rate: 0.26 s for squares-sines, 0.18 s for digits-fm and
default) is padded with silence at its end. Input with NaN/inf samples: a file is refused (InputError);
the streaming analyser replaces them with silence and counts them, so a live stream goes on.

Writing the frames (a sheet, a GIF, a folder) is :mod:`bridge.io.frames`' job; ``imgsonic visualize``
(:mod:`bridge.cli.visualize`) reads the file in blocks, analyses it as it streams and writes them.

Example
-------
>>> from bridge.sonify.reverse import StreamingVisualizer              # doctest: +SKIP
>>> from models.pipeline import SonificationModels                # doctest: +SKIP
>>> analyser = StreamingVisualizer(SonificationModels.from_preset("default"), sample_rate=48000, fps=10)  # doctest: +SKIP
>>> frames = analyser.push(block)     # any block size, mono (n,) or (channels, n)  # doctest: +SKIP
>>> frames += analyser.finish()       # at the end of a finite stream              # doctest: +SKIP
>>> frames[0].time_s, frames[0].z_img.shape, frames[0].image.shape                 # doctest: +SKIP
(0.0, (16,), (3, 64, 64))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.errors import ParameterError

if TYPE_CHECKING:  # torch is imported where it is used, so `imgsonic --help` stays fast
    from models.pipeline import SonificationModels

__all__ = ["Frame", "StreamingVisualizer", "image_to_pixels", "visualize_audio", "READ_BLOCK_S"]

DEFAULT_FPS = 10.0
READ_BLOCK_S = 1.0  # seconds of audio analysed at a time (files are read in blocks this long)


@dataclass(frozen=True)
class Frame:
    """One analysed frame.

    index : frame number, from 0.  time_s : ``index / fps``, the time it shows, in seconds of input.
    z_aud : ``(audio_latent_dim,)`` float32, the averaged audio latent.  z_img : ``(image_latent_dim,)``
    float32, its image latent.  image : ``(C, H, W)`` float32 in [0, 1] at the image model's size (C 1 or 3);
    :func:`image_to_pixels` turns it into display pixels.
    """

    index: int
    time_s: float
    z_aud: np.ndarray
    z_img: np.ndarray
    image: np.ndarray


def _check_number(name: str, value: object, *, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise ParameterError(f"{name}={value!r}; expected a number in {low:g}…{high:g}")
    return float(value)


class StreamingVisualizer:
    """Turns a stream of audio blocks into image frames at ``fps``, keeping its own state between blocks.

    Feed blocks of any size with :meth:`push`; it returns the frames that became complete (often none for
    a small block, several for a large one). At the end of a finite stream call :meth:`finish` for the rest.
    Input at any rate is resampled to the audio model's rate with :class:`synth.resample.Resampler` (the
    renderer's, block-size independent). See the module docstring for which audio each frame averages.

    Not thread-safe: push from one thread (the live engine's analysis worker, not the audio callback).
    Under ``torch.set_num_threads(1)`` a push costs far less than the audio it holds (see the README for
    frames per second measured here).

    Parameters
    ----------
    models : the loaded models (any preset).
    sample_rate : rate of the pushed audio, an integer number of Hz in 1000…384000.
    fps : frames per second of input audio, 0.1…200.
    window_s : seconds of audio each frame averages, 0…60; default ``1 / fps``; never less than one window of
        the audio model.

    Attributes
    ----------
    window_s : float
        The span each frame averages, in seconds, after rounding to whole mel frames.
    latency_s : float
        At most this many seconds of input after ``t_i`` must have been pushed before frame ``i`` is returned
        (block size not counted); the first frames, which wait for the first whole window, wait longest.
    n_nonfinite_samples : int
        NaN or inf samples pushed so far; each was replaced by 0 (silence) so the stream goes on.
    """

    def __init__(
        self, models: SonificationModels, *, sample_rate: int, fps: float = DEFAULT_FPS, window_s: float | None = None
    ) -> None:
        from synth.resample import Resampler
        from synth.spectral import SpectralConfig

        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or not 1000 <= sample_rate <= 384000:
            raise ParameterError(f"sample_rate={sample_rate!r}; expected an integer number of Hz in 1000…384000")
        self.sample_rate = int(sample_rate)
        self.fps = _check_number("fps", fps, low=0.1, high=200)
        if window_s is None:
            window_s = 1.0 / self.fps
        window_s = _check_number("window_s", window_s, low=1e-6, high=60)
        self.models = models
        self.config = SpectralConfig.from_dict(models.spectral_config)
        config = self.config
        self._window = models.window_frames
        self._frame_rate_hz = config.frame_rate_hz
        span_frames = max(self._window, round(window_s * self._frame_rate_hz))
        self.window_s = span_frames / self._frame_rate_hz
        self._half_span = (span_frames - self._window) / 2  # window centres this far from t_i count, in mel frames
        # the first mel frame whose FFT window lies wholly after the stream's start
        self._first_mel = -(-(config.n_fft // 2) // config.hop_length)
        self._resampler = Resampler(orig_hz=self.sample_rate, new_hz=config.sample_rate)
        # it returns whole periods once their look-ahead has arrived
        resampler_latency_s = (self._resampler.lookahead_samples + self.sample_rate // math.gcd(
            self.sample_rate, config.sample_rate)) / self.sample_rate
        # a frame waits for its last window's last FFT window; the first frames wait for the first whole window
        steady_frames = (self._window - 1) / 2 + self._half_span + 0.5
        first_frames = self._first_mel + self._window - 1
        self.latency_s = (max(steady_frames, first_frames) / self._frame_rate_hz + config.n_fft / 2 / config.sample_rate
                          + resampler_latency_s)
        self.n_nonfinite_samples = 0
        self._samples = np.zeros(0, dtype=np.float32)  # model-rate samples from absolute index _samples_start on
        self._samples_start = 0
        self._n_model_samples = 0  # model-rate samples received
        self._n_input_samples = 0  # input-rate samples pushed
        self._next_mel = self._first_mel  # next mel frame to compute
        self._mel_tail = np.zeros((config.n_mels, 0), dtype=np.float32)  # the last W − 1 computed mel frames
        self._mu = np.zeros((0, models.audio_latent_dim), dtype=np.float32)  # window means from _mu_first on
        self._mu_first = self._first_mel
        self._n_windows = 0  # windows encoded: window j starts at mel frame j, j = _first_mel … _first_mel + _n_windows − 1
        self._next_frame = 0
        self._finished = False

    # ---- public API ----------------------------------------------------------------------------------------

    def push(self, block: np.ndarray) -> list[Frame]:
        """Add audio; return the frames it completed, in order.

        Parameters
        ----------
        block : ``(n,)`` mono or ``(channels, n)`` (averaged to mono), float or int samples at ``sample_rate``,
            nominally in [-1, 1]; ``n`` may be 0. NaN/inf samples become 0 (counted in ``n_nonfinite_samples``).
        """
        if self._finished:
            raise ParameterError("push after finish(); start a new StreamingVisualizer for a new stream")
        mono = self._as_mono(block)
        self._n_input_samples += len(mono)
        self._append(self._resampler.process(mono))
        # analyse once the next frame can be completed (one STFT and encoder call per frame, not per small
        # block), or when a second of audio waits (memory stays bounded however long the frames' span)
        high = max(self._window_range(self._next_frame)[1], self._first_mel)
        config = self.config
        needed = (high + self._window - 1) * config.hop_length + config.n_fft // 2
        if self._n_model_samples < needed and len(self._samples) < config.n_fft + config.sample_rate:
            return []
        self._analyse()
        return self._emit()

    def finish(self) -> list[Frame]:
        """End the stream: return the remaining frames, up to ``ceil(duration · fps)`` in all (at least one).

        A stream shorter than one model window is padded with silence first.
        """
        if self._finished:
            raise ParameterError("finish() was already called; start a new StreamingVisualizer for a new stream")
        self._finished = True
        self._append(self._resampler.flush())
        config = self.config
        needed = (self._first_mel + self._window - 1) * config.hop_length + config.n_fft // 2
        self._append(np.zeros(max(0, needed - self._n_model_samples), dtype=np.float32))
        self._analyse()
        return self._emit(n_frames=max(1, math.ceil(self._n_input_samples / self.sample_rate * self.fps - 1e-9)))

    # ---- internals -----------------------------------------------------------------------------------------

    def _as_mono(self, block: np.ndarray) -> np.ndarray:
        array = np.asarray(block)
        if array.ndim not in (1, 2) or not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ParameterError(f"block has shape {array.shape} and dtype {array.dtype}; expected (n,) or "
                                 "(channels, n) numeric samples")
        mono = array.astype(np.float32) if array.ndim == 1 else array.astype(np.float32).mean(axis=0)
        finite = np.isfinite(mono)
        if not finite.all():
            self.n_nonfinite_samples += int(np.count_nonzero(~finite))
            mono = np.where(finite, mono, np.float32(0.0))
        return np.ascontiguousarray(mono, dtype=np.float32)

    def _append(self, samples: np.ndarray) -> None:
        """Buffer model-rate samples."""
        if len(samples):
            self._samples = np.concatenate([self._samples, samples.astype(np.float32, copy=False)])
            self._n_model_samples += len(samples)

    def _analyse(self) -> None:
        """Compute every mel frame whose FFT window has arrived, and encode every window they complete."""
        config = self.config
        hop, half_fft = config.hop_length, config.n_fft // 2
        last_mel = (self._n_model_samples - half_fft) // hop  # last frame whose FFT window is complete
        if last_mel < self._next_mel:
            return
        import torch

        from synth.spectral import audio_to_mel

        # frame k of audio_to_mel(segment) is centred on segment sample k·hop, so starting the segment
        # _first_mel hops before the next frame makes its frame _first_mel that frame, with its whole FFT
        # window inside the segment (the reflect padding touches only frames we drop)
        start = (self._next_mel - self._first_mel) * hop
        stop = last_mel * hop + half_fft
        segment = self._samples[start - self._samples_start : stop - self._samples_start]
        with torch.inference_mode():
            mel = audio_to_mel(torch.from_numpy(segment), config=config)
        new = mel[:, self._first_mel : self._first_mel + last_mel - self._next_mel + 1].numpy()
        self._next_mel = last_mel + 1
        keep_from = (self._next_mel - self._first_mel) * hop
        self._samples = self._samples[keep_from - self._samples_start :]
        self._samples_start = keep_from
        self._encode_windows(np.concatenate([self._mel_tail, new], axis=1))

    def _encode_windows(self, mel: np.ndarray) -> None:
        """Encode every complete window in ``mel`` ``(n_mels, T)`` (the kept tail, then the new frames)."""
        window = self._window
        n_new = mel.shape[1] - window + 1
        if n_new > 0:
            import torch

            windows = torch.from_numpy(np.ascontiguousarray(mel)).unfold(1, window, 1).permute(1, 0, 2)
            with torch.inference_mode():
                mu, _ = self.models.audio_vae.encode(windows.contiguous())
            self._mu = np.concatenate([self._mu, mu.numpy().astype(np.float32)])
            self._n_windows += n_new
        self._mel_tail = np.ascontiguousarray(mel[:, max(0, mel.shape[1] - (window - 1)) :]) if window > 1 else mel[:, :0]

    def _window_range(self, index: int) -> tuple[int, int]:
        """First and last window (by start mel frame) that frame ``index`` averages, before clamping to the audio."""
        centre = index / self.fps * self._frame_rate_hz - (self._window - 1) / 2  # a window start at t_i
        low = math.ceil(centre - self._half_span - 1e-9)
        high = math.floor(centre + self._half_span + 1e-9)
        if low > high:
            low = high = round(centre)
        return low, high

    def _emit(self, *, n_frames: int | None = None) -> list[Frame]:
        """Frames whose windows are all encoded; at the end (``n_frames`` given) up to ``n_frames``, windows clamped
        to the last one."""
        newest = self._first_mel + self._n_windows - 1
        ready: list[tuple[int, np.ndarray]] = []
        while True:
            index = self._next_frame
            if n_frames is not None and index >= n_frames:
                break
            low, high = (max(bound, self._first_mel) for bound in self._window_range(index))
            if n_frames is None and high > newest:
                break
            high = min(high, newest)
            low = min(low, high)
            rows = self._mu[low - self._mu_first : high - self._mu_first + 1]
            ready.append((index, rows.mean(axis=0)))
            self._next_frame += 1
            next_low = max(self._first_mel, min(self._window_range(index + 1)[0], newest))
            drop = next_low - self._mu_first
            if drop > 0:
                self._mu = self._mu[drop:]
                self._mu_first = next_low
        if not ready:
            return []
        import torch

        z_aud = torch.from_numpy(np.stack([z for _, z in ready]).astype(np.float32))
        with torch.inference_mode():
            z_img = self.models.audio_to_image_latent(z_aud)
            images = self.models.decode_images(z_img)
        return [
            Frame(index=index, time_s=index / self.fps, z_aud=z_aud[k].numpy(), z_img=z_img[k].numpy(),
                  image=images[k].numpy())
            for k, (index, _) in enumerate(ready)
        ]


def image_to_pixels(image: np.ndarray, *, size_px: int) -> np.ndarray:
    """A frame's image ``(C, H, W)`` in [0, 1] → uint8 pixels ``(size_px, size_px)`` (grey) or ``(…, 3)`` (RGB).

    Enlarged (or reduced) with bilinear interpolation.

    Example
    -------
    >>> image_to_pixels(np.ones((1, 16, 16), dtype=np.float32), size_px=32).shape
    (32, 32)
    """
    from PIL import Image

    array = np.asarray(image, dtype=np.float32)
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise ParameterError(f"image has shape {array.shape}; expected (C, H, W) with C 1 or 3")
    if isinstance(size_px, bool) or not isinstance(size_px, int) or not 8 <= size_px <= 2048:
        raise ParameterError(f"size_px={size_px!r}; expected an int in 8…2048")
    pixels = np.round(np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0).astype(np.uint8)
    picture = Image.fromarray(pixels[0] if len(pixels) == 1 else pixels.transpose(1, 2, 0))
    if picture.size != (size_px, size_px):
        picture = picture.resize((size_px, size_px), Image.Resampling.BILINEAR)
    return np.asarray(picture)


def visualize_audio(
    audio: np.ndarray,
    *,
    sample_rate: int,
    models: SonificationModels,
    fps: float = DEFAULT_FPS,
    window_s: float | None = None,
    block_s: float = READ_BLOCK_S,
) -> list[Frame]:
    """Frames of an in-memory sound ``(n,)`` or ``(channels, n)``: the streaming analyser fed ``block_s`` at a time."""
    array = np.asarray(audio)
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        raise ParameterError(f"audio has shape {array.shape}; expected (n_samples ≥ 1,) or (channels, n_samples ≥ 1)")
    analyser = StreamingVisualizer(models, sample_rate=sample_rate, fps=fps, window_s=window_s)
    step = max(1, round(block_s * analyser.sample_rate))
    frames: list[Frame] = []
    for start in range(0, array.shape[-1], step):
        frames += analyser.push(array[..., start : start + step])
    return frames + analyser.finish()
