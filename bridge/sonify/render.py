"""Offline rendering: a sequence of images → one continuous sound, its mapped parameters and a per-image log.

How a sequence becomes a continuous mel
---------------------------------------
1. Each image is encoded (image VAE posterior mean) and mapped to an audio latent (:mod:`bridge.sonify.encode`).
2. The latents go on a :class:`bridge.control.timeline.LatentTimeline` (image ``i`` owns ``[i·s, (i+1)·s)``,
   crossfades centred on the boundaries) and are sampled once per mel frame.
3. Every frame's audio latent is decoded (:mod:`bridge.sonify.decode`): while an image holds, its window
   tiles; while images crossfade, the sound morphs through the audio latent space.
4. The whole mel timeline goes through the bundle's vocoder (in ``chunk_s`` pieces with an equal-power
   overlap for long renders), so phase runs on across image boundaries: no restarts, no clicks.
5. Resample to the output rate (:mod:`synth.resample`, the live voices' resampler), FX (pedalboard),
   normalise the peak to ``peak_db`` dBFS, raised-cosine fades at both ends.

Writing the files is :mod:`bridge.io.outputs`' job; ``imgsonic render`` (:mod:`bridge.cli.render`) does both.

Example
-------
>>> from bridge.sonify.bundle import load_bundle                      # doctest: +SKIP
>>> result = render_items(items, bundle=load_bundle(preset="default"), settings=RenderSettings())  # doctest: +SKIP
>>> result.duration_s                                                   # doctest: +SKIP
8.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.control.mapping import Mapping, load_mapping
from bridge.control.timeline import LatentTimeline, frame_times
from bridge.sonify.bundle import ModelBundle
from bridge.sonify.decode import decode_frames
from bridge.sonify.encode import prepare_inputs
from bridge.sources.descriptors import DESCRIPTORS
from bridge.sources.images import ImageItem
from models.errors import InputError, ParameterError

if TYPE_CHECKING:  # torch is imported where it is used, so `imgsonic --help` stays fast
    import torch

__all__ = ["VOCODERS", "RenderSettings", "RenderResult", "render_items", "vocode_in_pieces", "boundary_jump_ratio"]

VOCODERS = ("pghi+fgla", "pghi", "griffinlim", "neural", "neural+fgla")  # synth.vocoder.VOCODER_NAMES (tested)


@dataclass(frozen=True)
class RenderSettings:
    """How to render; every duration in seconds.

    seconds_per_image : > 0.  crossfade_s : 0 … seconds_per_image.  vocoder : one of VOCODERS.
    fx : effect spec (:mod:`synth.effects`), "" for none.  sample_rate : output rate in Hz.
    peak_db : output peak in dBFS (≤ 0), or None to keep the vocoder's level.  fade_s : fade in/out length.
    chunk_s / overlap_s : vocoder piece length for long renders and the overlap crossfaded between pieces.
    workers : images decoded and vocoder pieces rendered at once, in threads (the pieces, and so the output,
        do not depend on it).
    """

    seconds_per_image: float = 1.0
    crossfade_s: float = 0.1
    vocoder: str = "pghi+fgla"
    fx: str = ""
    sample_rate: int = 44100
    peak_db: float | None = -1.0
    fade_s: float = 0.02
    chunk_s: float = 15.0
    overlap_s: float = 0.5
    workers: int = 1

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds_per_image) and self.seconds_per_image > 0):
            raise ParameterError(f"seconds per image {self.seconds_per_image!r}; expected a number of seconds > 0")
        if not (math.isfinite(self.crossfade_s) and 0 <= self.crossfade_s <= self.seconds_per_image):
            raise ParameterError(f"crossfade {self.crossfade_s!r} s; expected 0 … the seconds per image "
                                 f"({self.seconds_per_image:g} s)")
        if self.vocoder not in VOCODERS:
            raise ParameterError(f"vocoder {self.vocoder!r} is unknown; expected one of {', '.join(VOCODERS)}")
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int) or not 1000 <= self.sample_rate <= 384000:
            raise ParameterError(f"sample rate {self.sample_rate!r}; expected an integer number of Hz in 1000…384000")
        if self.peak_db is not None and not (math.isfinite(self.peak_db) and self.peak_db <= 0):
            raise ParameterError(f"peak_db={self.peak_db!r}; expected a finite level ≤ 0 dBFS")
        for name in ("fade_s", "overlap_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ParameterError(f"{name}={value!r}; expected ≥ 0 seconds")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ParameterError(f"workers={self.workers!r}; expected an integer ≥ 1")
        if not (math.isfinite(self.chunk_s) and self.chunk_s > 2 * self.overlap_s):
            raise ParameterError(f"chunk_s={self.chunk_s!r}; expected more than twice overlap_s={self.overlap_s}")

    def piece_frames(self, frame_rate_hz: float) -> tuple[int, int]:
        """``(chunk_frames, overlap_frames)`` of the vocoder pieces at ``frame_rate_hz`` mel frames per second."""
        return max(2, round(self.chunk_s * frame_rate_hz)), max(1, round(self.overlap_s * frame_rate_hz))


@dataclass
class RenderResult:
    """What :func:`render_items` made.

    audio : float32 ``(n_samples,)`` at ``sample_rate``.  frame_times_s : control frames ``(T,)``.
    positions / values : mapped parameters per frame ``(T,)``.  images : one JSON-ready dict per image.
    timings_s : seconds per stage.
    """

    audio: np.ndarray
    sample_rate: int
    duration_s: float
    frame_times_s: np.ndarray
    positions: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    images: list[dict[str, Any]]
    onsets_s: list[float]
    timings_s: dict[str, float] = field(default_factory=dict)


def vocode_in_pieces(
    vocode: Callable[[torch.Tensor], torch.Tensor],
    mel: torch.Tensor,
    *,
    hop: int,
    chunk_frames: int,
    overlap_frames: int,
    workers: int,
    progress: bool,
) -> np.ndarray:
    """Mel ``(n_mels, T)`` → audio ``(T·hop,)``; pieces of ``chunk_frames`` joined by equal-power crossfades.

    ``workers`` threads vocode pieces at once (torch and numpy release the GIL in their kernels); the
    pieces are the same whatever ``workers`` is.
    """
    n_frames = mel.shape[-1]
    if n_frames <= chunk_frames:
        return vocode(mel).numpy().astype(np.float32)
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from tqdm import tqdm

    step = chunk_frames - overlap_frames
    starts = list(range(0, n_frames - overlap_frames, step))
    audio = np.zeros(n_frames * hop, dtype=np.float32)
    n_overlap = overlap_frames * hop
    fade_in = np.sin(0.5 * np.pi * (np.arange(n_overlap) + 0.5) / n_overlap).astype(np.float32)

    def piece_at(start: int) -> np.ndarray:
        with torch.inference_mode():  # inference mode is per thread
            return vocode(mel[:, start : start + chunk_frames]).numpy().astype(np.float32)

    # the pool runs `workers` pieces at once; Ctrl-C or an error cancels the queued rest
    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        if pool is None:
            pieces = map(piece_at, starts)
        else:
            futures = [pool.submit(piece_at, start) for start in starts]
            pieces = (future.result() for future in futures)
        for index, (start, piece) in enumerate(
            tqdm(zip(starts, pieces), total=len(starts), desc="vocoder", unit="piece", disable=None if progress else True)
        ):
            begin = start * hop
            if index > 0:
                piece[:n_overlap] *= fade_in
                audio[begin : begin + n_overlap] *= fade_in[::-1]
            audio[begin : begin + len(piece)] += piece
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return audio


def _fade(audio: np.ndarray, n_samples: int) -> None:
    n_samples = min(n_samples, len(audio) // 2)
    if n_samples > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n_samples) + 0.5) / n_samples)).astype(audio.dtype)
        audio[:n_samples] *= ramp
        audio[-n_samples:] *= ramp[::-1]


def render_items(
    items: Sequence[ImageItem],
    *,
    bundle: ModelBundle,
    settings: RenderSettings,
    mapping: Mapping | None = None,
    progress: bool = False,
) -> RenderResult:
    """Render decoded images (in order) to audio; see the module docstring for the steps."""
    import torch

    if not items:
        raise InputError("no images to render")
    models = bundle.models
    mapping = mapping or load_mapping()
    mapping.check_dims(image_latent_dim=models.image_latent_dim, audio_latent_dim=models.audio_latent_dim)
    config = bundle.spectral
    vocode = bundle.vocoder(settings.vocoder).vocode
    timings: dict[str, float] = {}

    clock = time.perf_counter()
    with torch.inference_mode():
        images, descriptors = prepare_inputs(items, models)
        z_img = models.encode_images(images)
        z_aud = models.image_to_audio_latent(z_img)
    timings["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    timeline = LatentTimeline.from_sequence(
        {"z_img": z_img.numpy(), "z_aud": z_aud.numpy(), "descriptors": descriptors},
        seconds_per_image=settings.seconds_per_image,
        crossfade_s=settings.crossfade_s,
    )
    duration_s = timeline.duration_s
    frame_rate_hz = config.sample_rate / config.hop_length
    times_s = frame_times(duration_s=math.ceil(duration_s * frame_rate_hz) / frame_rate_hz, frame_rate_hz=frame_rate_hz)
    sources = timeline.sample(times_s)
    with torch.inference_mode():
        mel = decode_frames(models, sources["z_aud"])
    positions = mapping.positions(sources, control_rate_hz=frame_rate_hz)
    values = mapping.values(positions)
    timings["decode to mel"] = time.perf_counter() - clock

    clock = time.perf_counter()
    chunk_frames, overlap_frames = settings.piece_frames(frame_rate_hz)
    with torch.inference_mode():
        audio = vocode_in_pieces(
            vocode,
            mel,
            hop=config.hop_length,
            chunk_frames=chunk_frames,
            overlap_frames=overlap_frames,
            workers=settings.workers,
            progress=progress,
        )
    timings["vocoder"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if settings.sample_rate != config.sample_rate:
        from synth.resample import resample

        audio = resample(audio, orig_hz=config.sample_rate, new_hz=settings.sample_rate)
    n_samples = round(duration_s * settings.sample_rate)
    audio = np.pad(audio, (0, max(0, n_samples - len(audio))))[:n_samples].astype(np.float32)
    timings["resample"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if settings.fx:
        from synth.effects import EffectChain

        audio = EffectChain(settings.fx).process(audio, sample_rate=settings.sample_rate)
    peak = float(np.abs(audio).max())
    if settings.peak_db is not None and peak > 0:
        audio *= np.float32(10 ** (settings.peak_db / 20) / peak)
    _fade(audio, round(settings.fade_s * settings.sample_rate))
    timings["fx and level"] = time.perf_counter() - clock

    onsets_s = [index * settings.seconds_per_image for index in range(len(items))]
    entries = []
    for index, item in enumerate(items):
        start_s, end_s = onsets_s[index], onsets_s[index] + settings.seconds_per_image
        middle = min(int(np.searchsorted(times_s, (start_s + end_s) / 2)), len(times_s) - 1)
        entries.append(
            {
                "index": index,
                "image": item.name,
                "start_s": start_s,
                "end_s": end_s,
                "z_img": [round(float(v), 6) for v in z_img[index]],
                "z_aud": [round(float(v), 6) for v in z_aud[index]],
                "descriptors": {name: round(float(v), 6) for name, v in zip(DESCRIPTORS, descriptors[index])},
                "parameters": {name: round(float(v[middle]), 6) for name, v in values.items()},
            }
        )
    return RenderResult(
        audio=audio,
        sample_rate=settings.sample_rate,
        duration_s=duration_s,
        frame_times_s=times_s,
        positions=positions,
        values=values,
        images=entries,
        onsets_s=onsets_s,
        timings_s=timings,
    )


def boundary_jump_ratio(audio: np.ndarray, *, boundaries_s: Sequence[float], sample_rate: int, window_s: float = 0.01) -> float:
    """Largest sample-to-sample step within ``window_s`` of a boundary ÷ the 99.9th percentile step elsewhere.

    ≲ 1 means the boundaries are no sharper than the sound itself; a click shows as a ratio ≫ 1.
    """
    steps = np.abs(np.diff(np.asarray(audio, dtype=np.float64)))
    near = np.zeros(len(steps), dtype=bool)
    radius = max(1, round(window_s * sample_rate))
    for boundary in boundaries_s:
        centre = round(boundary * sample_rate)
        near[max(0, centre - radius) : centre + radius] = True
    if not near.any() or near.all():
        raise ParameterError("boundaries cover none or all of the audio; nothing to compare")
    reference = float(np.percentile(steps[~near], 99.9))
    return float(steps[near].max() / reference) if reference > 0 else math.inf
