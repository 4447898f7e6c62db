"""Offline rendering: a sequence of images → one continuous sound, its mapped parameters and a per-image log.

How a sequence becomes a continuous sound
-----------------------------------------
1. The images arrive one by one and are encoded in batches of :data:`ENCODE_BATCH` (image VAE posterior mean),
   then mapped to audio latents (:mod:`bridge.sonify.encode`); only their latents are kept.
2. The latents go on a :class:`bridge.control.timeline.LatentTimeline` (image ``i`` owns ``[i·s, (i+1)·s)``,
   crossfades centred on the boundaries).
3. The timeline is rendered in pieces of ``chunk_s`` seconds that overlap by ``overlap_s``: each piece's
   frames are sampled, their audio latents decoded to mel frames (:mod:`bridge.sonify.decode`: while an
   image holds, its window tiles; while images crossfade, the sound morphs through the audio latent
   space), and the piece goes through the bundle's vocoder; pieces are joined by equal-power crossfades,
   so phase runs on across image boundaries: no restarts, no clicks. ``workers`` pieces are made at once.
4. The joined audio is resampled to the output rate as it comes (:class:`synth.resample.Resampler`, the live
   voices' resampler) and parked in a :class:`synth.files.SampleSpill` (a file beside the output for
   ``imgsonic render``) while its peak is measured.
5. With a mix-in (a melody, :class:`MixIn`), the parked audio and the mix-in are added (or the mix-in replaces
   the audio) and the sum's peak is measured in one more read of the parked audio.
6. The level (``loudness``, :class:`bridge.control.levels.LoudnessSettings`). ``even`` (the default) and
   ``mapped``: each image's solo span is read back from the parked audio (with the mix-in) and measured
   (BS.1770, at most its middle 30 s), which gives each image a gain and the file a gain that puts it at
   ``target_lufs`` (:func:`bridge.control.levels.level_images`). ``raw``: one gain that scales the peak to
   ``peak_db`` dBFS.
7. Second pass over the parked audio: the gain (levelled: the per-image envelope, block by block), then the
   effects (``fx``: after the level, so a ``limiter`` works on a known level; a chain that does not end in a
   ``limiter`` gets one, with its defaults, since reverb and gain raise the level past full scale — and a
   levelled render always ends in one, which keeps its true peak ≤ −1.5 dBTP; its look-ahead delay is
   removed), raised-cosine fades at both ends, and out to the caller's ``write``.

Memory does not grow with the number of images or the length of the sound: what is held is the images'
latents (a few hundred bytes each; levelled, also each image's span and gain), ``workers + 1`` pieces, one
block of output and, while levels are measured, one image's span (at most 30 s). The sound is the same
sample for sample as rendering the whole timeline in one go (tested): pieces are vocoded as before, every
batch of latents is decoded as any other (:data:`bridge.sonify.decode.MIN_BATCH`), the spans are measured
from the same samples, and the resampler, the gain envelope and the effects give the same samples streamed
as whole.

Writing the files is :mod:`bridge.io.outputs`' job; ``imgsonic render`` (:mod:`bridge.cli.render`) does both.

Example
-------
>>> from bridge.sonify.bundle import load_bundle                      # doctest: +SKIP
>>> result = render_items(items, bundle=load_bundle(preset="default"), settings=RenderSettings())  # doctest: +SKIP
>>> with SampleSpill("out.wav") as spill, audio_writer("out.wav", sample_rate=44100) as write:   # doctest: +SKIP
...     result = render_stream(iter_images(paths), bundle=bundle, settings=settings, spill=spill, write=write)
>>> result.duration_s                                                   # doctest: +SKIP
8.0
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bridge.control.levels import LoudnessSettings
from bridge.control.mapping import Mapping, load_mapping
from bridge.control.timeline import LatentTimeline, image_of_frames
from bridge.sonify.bundle import ModelBundle
from bridge.sonify.decode import decode_frames, padded_batch
from bridge.sonify.encode import prepare_input
from bridge.sources.descriptors import DESCRIPTORS, describe_images
from bridge.sources.images import ImageItem
from models.errors import InputError, ParameterError

if TYPE_CHECKING:  # torch is imported where it is used, so `imgsonic --help` stays fast
    import torch

__all__ = ["VOCODERS", "RenderSettings", "RenderResult", "render_stream", "render_items", "vocode_in_pieces",
           "boundary_jump_ratio", "effects_offset_db", "ENCODE_BATCH"]

ENCODE_BATCH = 32  # images encoded at once (as model inputs: 48 kB each at 64 px)
_LEVEL_BLOCK = 1 << 16  # samples per block of the second pass (level, effects, fades, writing)
# a levelled render tries its effects on this much of its sound first (all of it when shorter; else windows spread
# over it, each after a pre-roll that fills reverb tails and delay lines), so the file lands at its loudness after them
_FX_PROBE_S = 30.0
_FX_PROBE_WINDOW_S = 5.0
_FX_PROBE_PREROLL_S = 2.0
_FX_PROBE_TRIES = 3
_FX_PROBE_TOLERANCE_LU = 0.1
_FX_PROBE_LIMIT_DB = 24.0

VOCODERS = ("pghi+fgla", "pghi", "griffinlim", "neural", "neural+fgla")  # synth.vocoder.VOCODER_NAMES (tested)


@dataclass(frozen=True)
class RenderSettings:
    """How to render; every duration in seconds.

    seconds_per_image : > 0.  crossfade_s : 0 … seconds_per_image.  vocoder : one of VOCODERS.
    fx : effect spec (:mod:`synth.effects`), "" for none; run after the level, and ended by a true-peak
        ``limiter`` (−1.5 dBTP) unless it ends in one (``limiter:ceiling_db=0`` lets the level through).
    sample_rate : output rate in Hz.
    loudness : how loud each image and the file are (:class:`bridge.control.levels.LoudnessSettings`; by default
        every image equally loud, the file at −18 LUFS).
    peak_db : with ``loudness`` raw, the output peak in dBFS (≤ 0), or None to keep the vocoder's level.
    fade_s : fade in/out length.
    chunk_s / overlap_s : vocoder piece length for long renders and the overlap crossfaded between pieces.
    workers : images decoded and vocoder pieces rendered at once, in threads (the pieces, and so the output,
        do not depend on it).
    max_duration_s : the longest sound a render makes (the images stop being read past it: an InputError
        names the cap and ``--max-duration``).
    """

    seconds_per_image: float = 1.0
    crossfade_s: float = 0.1
    vocoder: str = "pghi+fgla"
    fx: str = ""
    sample_rate: int = 44100
    loudness: LoudnessSettings = LoudnessSettings()
    peak_db: float | None = -1.0
    fade_s: float = 0.02
    chunk_s: float = 15.0
    overlap_s: float = 0.5
    workers: int = 1
    max_duration_s: float = 3 * 3600.0

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
        if not isinstance(self.loudness, LoudnessSettings):
            raise ParameterError(f"loudness={self.loudness!r}; expected a LoudnessSettings")
        if self.peak_db is not None and not (math.isfinite(self.peak_db) and self.peak_db <= 0):
            raise ParameterError(f"peak_db={self.peak_db!r}; expected a finite level ≤ 0 dBFS")
        for name in ("fade_s", "overlap_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ParameterError(f"{name}={value!r}; expected ≥ 0 seconds")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ParameterError(f"workers={self.workers!r}; expected an integer ≥ 1")
        if not (math.isfinite(self.max_duration_s) and self.max_duration_s > 0):
            raise ParameterError(f"max_duration_s={self.max_duration_s!r}; expected a number of seconds > 0")
        if not (math.isfinite(self.chunk_s) and self.chunk_s > 2 * self.overlap_s):
            raise ParameterError(f"chunk_s={self.chunk_s!r}; expected more than twice overlap_s={self.overlap_s}")

    def piece_frames(self, frame_rate_hz: float) -> tuple[int, int]:
        """``(chunk_frames, overlap_frames)`` of the vocoder pieces at ``frame_rate_hz`` mel frames per second."""
        return max(2, round(self.chunk_s * frame_rate_hz)), max(1, round(self.overlap_s * frame_rate_hz))


@dataclass
class RenderResult:
    """What a render made.

    audio : float32 ``(n_samples,)`` at ``sample_rate`` (:func:`render_items`), or None when the audio went to
        a ``write`` callback (:func:`render_stream`).  images : one JSON-ready dict per image.
    onsets_s : each image's start.  frame_times_s / positions / values : control frames ``(T,)`` and the
        mapped parameters per frame, kept by :func:`render_items` only (None otherwise).
    peak_before_level : the peak the vocoder made (with the mix-in), before the level was set.
    programme_lufs : levelled renders: the file's loudness the gains aim at (before the effects and the limiter);
        None for raw.
    timings_s : seconds per stage (stages run interleaved; the worker stages add up their threads' time).
    """

    audio: np.ndarray | None
    sample_rate: int
    duration_s: float
    images: list[dict[str, Any]]
    onsets_s: list[float]
    frame_times_s: np.ndarray | None = None
    positions: dict[str, np.ndarray] | None = None
    values: dict[str, np.ndarray] | None = None
    peak_before_level: float = 0.0
    programme_lufs: float | None = None
    timings_s: dict[str, float] = field(default_factory=dict)


ControlsCallback = Callable[[int, np.ndarray, dict[str, np.ndarray], np.ndarray], None]


class MixIn(Protocol):
    """A second signal mixed into a render before its level and effects (``imgsonic render --melody``).

    ``prepare`` is called once the render's own audio is parked, with its peak; ``block(start, n)`` then
    returns samples ``[start, start + n)`` of the signal at the output rate (zeros past its end), already at
    the level it should have against that audio. With ``replace`` the signal takes the audio's place.
    """

    replace: bool

    def prepare(self, *, audio_peak: float, n_samples: int, sample_rate: int) -> None: ...

    def block(self, start: int, n: int) -> np.ndarray: ...


def _piece_starts(n_frames: int, chunk_frames: int, overlap_frames: int) -> list[int]:
    """First frames of the vocoder pieces: one piece when the whole fits, else every ``chunk − overlap``."""
    if n_frames <= chunk_frames:
        return [0]
    return list(range(0, n_frames - overlap_frames, chunk_frames - overlap_frames))


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
    pieces are the same whatever ``workers`` is. The whole-mel form of what :func:`render_stream` does.
    """
    n_frames = mel.shape[-1]
    joiner = _PieceJoiner(hop=hop, overlap_frames=overlap_frames, n_frames=n_frames,
                          starts=_piece_starts(n_frames, chunk_frames, overlap_frames))

    def piece_at(start: int) -> np.ndarray:
        return vocode(mel[:, start : start + chunk_frames]).numpy().astype(np.float32)

    out = [block for piece in _in_order(piece_at, joiner.starts, workers=workers, progress=progress)
           for block in [joiner.add(piece)] if len(block)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _in_order(make: Callable[[int], Any], starts: Sequence[int], *, workers: int, progress: bool) -> Iterator[Any]:
    """``make(start)`` for each start, in order; ``workers`` threads run at most ``workers`` of them at once
    (results are not held further ahead). Ctrl-C or an error cancels the rest."""
    from tqdm import tqdm

    def made(start: int):
        import torch

        with torch.inference_mode():  # inference mode is per thread
            return make(start)

    bar = tqdm(total=len(starts), desc="vocoder", unit="piece", disable=None if progress else True)
    if workers <= 1 or len(starts) == 1:
        try:
            for start in starts:
                yield made(start)
                bar.update(1)
        finally:
            bar.close()
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        pending: deque = deque()
        upcoming = iter(starts)
        for start in upcoming:
            pending.append(pool.submit(made, start))
            if len(pending) >= workers:
                break
        while pending:
            result = pending.popleft().result()
            for start in upcoming:
                pending.append(pool.submit(made, start))
                break
            yield result
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


class _PieceJoiner:
    """Vocoded pieces in, joined audio out as soon as no later piece can change it (equal-power crossfades)."""

    def __init__(self, *, hop: int, overlap_frames: int, n_frames: int, starts: Sequence[int]) -> None:
        self.starts, self.hop, self.n_samples = list(starts), hop, n_frames * hop
        n_overlap = overlap_frames * hop
        self.fade_in = np.sin(0.5 * np.pi * (np.arange(n_overlap) + 0.5) / n_overlap).astype(np.float32)
        self.pending = np.zeros(0, np.float32)  # audio from sample `self.offset` on, still open
        self.offset = 0
        self.index = 0

    def add(self, piece: np.ndarray) -> np.ndarray:
        """The next piece (in order); returns the samples that are now final."""
        begin = self.starts[self.index] * self.hop
        end = min(begin + len(piece), self.n_samples)
        piece = piece[: end - begin]
        if self.index > 0:
            n_overlap = len(self.fade_in)
            piece = piece.copy()
            piece[:n_overlap] *= self.fade_in[: len(piece)]
            self.pending[begin - self.offset : begin - self.offset + n_overlap] *= self.fade_in[::-1][
                : len(self.pending) - (begin - self.offset)]
        grown = max(len(self.pending), end - self.offset)
        if grown > len(self.pending):
            self.pending = np.concatenate([self.pending, np.zeros(grown - len(self.pending), np.float32)])
        self.pending[begin - self.offset : end - self.offset] += piece
        self.index += 1
        final = (self.starts[self.index] * self.hop if self.index < len(self.starts) else self.n_samples) - self.offset
        if self.index == len(self.starts) and len(self.pending) < final:  # a vocoder shorter than frames × hop
            self.pending = np.concatenate([self.pending, np.zeros(final - len(self.pending), np.float32)])
        done, self.pending = self.pending[:final], self.pending[final:]
        self.offset += final
        return done


def _frames_before(time_s: float, *, n_frames: int, frame_rate_hz: float) -> int:
    """How many frames ``m / frame_rate_hz`` (``m < n_frames``) lie before ``time_s``: ``np.searchsorted`` on the
    frame grid, without building it."""
    count = min(max(math.ceil(time_s * frame_rate_hz), 0), n_frames)
    while count > 0 and (count - 1) / frame_rate_hz >= time_s:
        count -= 1
    while count < n_frames and count / frame_rate_hz < time_s:
        count += 1
    return count


def _fade_gains(start: int, n_block: int, *, n_samples: int, n_fade: int) -> np.ndarray | None:
    """Raised-cosine fade gains for samples ``start … start + n_block`` of ``n_samples`` (None: no fade here)."""
    n_fade = min(n_fade, n_samples // 2)
    if n_fade <= 0 or (n_fade <= start and start + n_block <= n_samples - n_fade):
        return None
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n_fade) + 0.5) / n_fade)).astype(np.float32)
    gains = np.ones(n_block, np.float32)
    index = np.arange(start, start + n_block)
    head, tail = index < n_fade, index >= n_samples - n_fade
    gains[head] *= ramp[index[head]]
    gains[tail] *= ramp[::-1][index[tail] - (n_samples - n_fade)]
    return gains


def _encode(items: Iterable[ImageItem], *, models, settings: RenderSettings, timings: dict[str, float]):
    """Images → (names, z_img, z_aud, descriptors) arrays. Each image is brought to the model's input size as
    it arrives (its pixels are let go at once) and encoded ENCODE_BATCH at a time; a repeated item (an
    animation frame shown at several sample times) is prepared and encoded once."""
    import torch

    max_images = math.floor(settings.max_duration_s / settings.seconds_per_image + 1e-9)
    names: list[str] = []
    rows: list[int] = []  # per image: its row among the encoded ones
    encoded: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    batch: list[tuple[torch.Tensor, torch.Tensor]] = []  # (model input, 64 px RGB for the descriptors)
    n_encoded = 0

    def flush() -> None:
        clock = time.perf_counter()
        inputs, rgbs = zip(*batch)
        with torch.inference_mode():
            z_img = padded_batch(models.encode_images, torch.stack(inputs))
            z_aud = padded_batch(models.image_to_audio_latent, z_img)
        encoded.append((z_img.numpy(), z_aud.numpy(), describe_images(torch.stack(rgbs).numpy())))
        batch.clear()
        timings["encode"] += time.perf_counter() - clock

    previous = None
    clock = time.perf_counter()
    for item in items:
        timings["image decode"] += time.perf_counter() - clock
        if len(names) >= max_images:
            raise InputError(
                f"the images would make more than {settings.max_duration_s:g} s of sound at "
                f"{settings.seconds_per_image:g} s per image; pass --max-duration to render longer")
        if item is not previous:
            clock = time.perf_counter()
            with torch.inference_mode():
                batch.append(prepare_input(item, models))
            timings["encode"] += time.perf_counter() - clock
            n_encoded += 1
            if len(batch) == ENCODE_BATCH:
                flush()
        names.append(item.name)
        rows.append(n_encoded - 1)
        previous = item
        clock = time.perf_counter()
    timings["image decode"] += time.perf_counter() - clock
    if batch:
        flush()
    if not names:
        raise InputError("no images to render")
    z_img, z_aud, descriptors = (np.concatenate(parts)[rows] for parts in zip(*encoded))
    return names, z_img, z_aud, descriptors


def render_stream(
    items: Iterable[ImageItem],
    *,
    bundle: ModelBundle,
    settings: RenderSettings,
    spill,
    write: Callable[[np.ndarray], None],
    mapping: Mapping | None = None,
    on_controls: ControlsCallback | None = None,
    mix_in: MixIn | None = None,
    progress: bool = False,
) -> RenderResult:
    """Render images (in order, read as they come) to audio handed to ``write`` block by block.

    Parameters
    ----------
    items : the images, e.g. :func:`bridge.sources.images.iter_images` (consumed once, lazily).
    spill : a :class:`synth.files.SampleSpill` that holds the audio between the two passes.
    write : called with consecutive float32 blocks ``(n,)`` of the finished audio at ``settings.sample_rate``.
    on_controls : called with ``(first_frame, times_s (n,), positions {name: (n,)}, images (n,))`` for
        consecutive blocks of control frames, ``images`` being the image each frame belongs to (a MIDI file
        is built from them: :class:`bridge.io.midi_file.MidiBuilder`).
    mix_in : a :class:`MixIn` added to (or replacing) the audio before its level and effects.

    Returns a :class:`RenderResult` without the audio. See the module docstring for the steps.
    """

    models = bundle.models
    mapping = mapping or load_mapping()
    mapping.check_dims(image_latent_dim=models.image_latent_dim, audio_latent_dim=models.audio_latent_dim)
    config = bundle.spectral
    vocode = bundle.vocoder(settings.vocoder).vocode
    timings = dict.fromkeys(("image decode", "encode", "decode to mel", "vocoder", "resample", "fx and level",
                             "write"), 0.0)

    names, z_img, z_aud, descriptors = _encode(items, models=models, settings=settings, timings=timings)
    n_images = len(names)
    timeline = LatentTimeline.from_sequence({"z_img": z_img, "z_aud": z_aud, "descriptors": descriptors},
                                            seconds_per_image=settings.seconds_per_image,
                                            crossfade_s=settings.crossfade_s)
    duration_s = timeline.duration_s
    frame_rate_hz = config.sample_rate / config.hop_length
    # as many frames as bridge.control.timeline.frame_times gives for the duration rounded up to a frame
    n_frames = int(round(math.ceil(duration_s * frame_rate_hz) / frame_rate_hz * frame_rate_hz))
    timeline.sample(np.zeros(1))  # builds the event arrays once, before threads read them
    chunk_frames, overlap_frames = settings.piece_frames(frame_rate_hz)
    starts = _piece_starts(n_frames, chunk_frames, overlap_frames)
    hop = config.hop_length

    onsets_s = [index * settings.seconds_per_image for index in range(n_images)]
    onsets_array = np.asarray(onsets_s)
    # each image's parameters are logged at its middle frame, as np.searchsorted(frame times, middle) picks it
    middles = [min(_frames_before(onset + settings.seconds_per_image / 2, n_frames=n_frames,
                                  frame_rate_hz=frame_rate_hz), n_frames - 1) for onset in onsets_s]  # ascending
    parameters_at: list[dict[str, float]] = []
    smoothed: dict[str, float] | None = None

    def piece_at(start: int):
        stop = min(start + chunk_frames, n_frames)
        clock = time.perf_counter()
        sources = timeline.sample(np.arange(start, stop) / frame_rate_hz)
        mel = decode_frames(models, sources["z_aud"], first_frame=start)
        decoded = time.perf_counter()
        audio = vocode(mel).numpy().astype(np.float32)
        return start, sources, audio, decoded - clock, time.perf_counter() - decoded

    joiner = _PieceJoiner(hop=hop, overlap_frames=overlap_frames, n_frames=n_frames, starts=starts)
    resampler = None
    if settings.sample_rate != config.sample_rate:
        from synth.resample import Resampler

        resampler = Resampler(orig_hz=config.sample_rate, new_hz=settings.sample_rate)
    n_samples = round(duration_s * settings.sample_rate)
    peak = 0.0

    def park(block: np.ndarray) -> None:
        nonlocal peak
        block = block[: max(0, n_samples - spill.n_samples)]
        if len(block):
            peak = max(peak, float(np.abs(block).max()))
            spill.append(block)

    for number, (start, sources, audio, decode_s, vocode_s) in enumerate(
            _in_order(piece_at, starts, workers=settings.workers, progress=progress)):
        timings["decode to mel"] += decode_s
        timings["vocoder"] += vocode_s
        clock = time.perf_counter()
        # the control frames this piece owns: up to the next piece's first frame
        owned = (starts[number + 1] if number + 1 < len(starts) else n_frames) - start
        owned_sources = {name: values[:owned] for name, values in sources.items()}
        positions = mapping.positions(owned_sources, control_rate_hz=frame_rate_hz, initial=smoothed)
        smoothed = {name: float(values[-1]) for name, values in positions.items() if len(values)}
        while len(parameters_at) < n_images and middles[len(parameters_at)] < start + owned:
            row = middles[len(parameters_at)] - start
            values = mapping.values({name: values[row : row + 1] for name, values in positions.items()})
            parameters_at.append({name: round(float(value[0]), 6) for name, value in values.items()})
        if on_controls is not None:
            times_s = np.arange(start, start + owned) / frame_rate_hz
            on_controls(start, times_s, positions, image_of_frames(times_s, onsets_array))
        timings["decode to mel"] += time.perf_counter() - clock
        clock = time.perf_counter()
        joined = joiner.add(audio)
        park(resampler.process(joined) if resampler is not None else joined)
        timings["resample"] += time.perf_counter() - clock
    if resampler is not None:
        park(resampler.flush())
    if spill.n_samples < n_samples:
        park(np.zeros(n_samples - spill.n_samples, np.float32))

    clock = time.perf_counter()
    mixed = None
    if mix_in is not None:
        mix_in.prepare(audio_peak=peak, n_samples=n_samples, sample_rate=settings.sample_rate)

        def mixed(start: int, block: np.ndarray) -> np.ndarray:
            extra = mix_in.block(start, len(block))
            return extra if mix_in.replace else block + extra

        peak, start = 0.0, 0
        for block in spill.blocks(_LEVEL_BLOCK):
            peak = max(peak, float(np.abs(mixed(start, block)).max()))
            start += len(block)
    levels, gain = None, None
    if settings.loudness.mode != "raw":
        from bridge.control.levels import level_images

        def read(first: int, n: int) -> np.ndarray:
            block = spill.read(first, n)
            return mixed(first, block) if mixed is not None else block

        levels = level_images(settings.loudness, read=read, sample_rate=settings.sample_rate,
                              seconds_per_image=settings.seconds_per_image, crossfade_s=settings.crossfade_s,
                              duration_s=duration_s, descriptors=descriptors)
        levels = levels.shifted(effects_offset_db(read, envelope=levels.envelope, settings=settings,
                                                  n_samples=n_samples))
    elif settings.peak_db is not None and peak > 0:
        gain = np.float32(10 ** (settings.peak_db / 20) / peak)
    _level_effects_fades(spill, write, settings=settings, gain=gain, envelope=levels.envelope if levels else None,
                         n_samples=n_samples, timings=timings, mixed=mixed)
    timings["fx and level"] += time.perf_counter() - clock - timings["write"]

    entries = [
        {
            "index": index,
            "image": names[index],
            "start_s": onsets_s[index],
            "end_s": onsets_s[index] + settings.seconds_per_image,
            "z_img": [round(float(v), 6) for v in z_img[index]],
            "z_aud": [round(float(v), 6) for v in z_aud[index]],
            "descriptors": {name: round(float(v), 6) for name, v in zip(DESCRIPTORS, descriptors[index])},
            "parameters": parameters_at[index],
        }
        for index in range(n_images)
    ]
    if levels is not None:  # each image's loudness as the model made it, and the gain that levelled it
        for entry, loudness, gain_db in zip(entries, levels.loudness_lufs, levels.gains_db):
            entry["loudness_lufs"] = round(float(loudness), 3) if np.isfinite(loudness) else None
            entry["level_gain_db"] = round(float(gain_db), 3)
    return RenderResult(audio=None, sample_rate=settings.sample_rate, duration_s=duration_s, images=entries,
                        onsets_s=onsets_s, peak_before_level=peak,
                        programme_lufs=levels.programme_lufs if levels is not None else None, timings_s=timings)


def _effect_chain(settings: RenderSettings, *, levelled: bool):
    """The render's effects (:class:`synth.effects.EffectChain`), ended by a true-peak limiter, or None when there
    are none: effects can raise the level, and a level set by ``loudness`` can put peaks past full scale."""
    if not (settings.fx.strip() or levelled):
        return None
    from synth.effects import EffectChain
    from synth.limiter import TruePeakLimiter

    chain = EffectChain(settings.fx) if settings.fx.strip() else None
    if chain is None or not isinstance(chain.effects[-1], TruePeakLimiter):
        chain = EffectChain(f"{settings.fx}; limiter" if chain is not None else "limiter")
    return chain


def _through(chain, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """``audio`` through a fresh ``chain`` in one call, its look-ahead delay removed: ``(len(audio),)``."""
    delay = chain.latency_samples(sample_rate)
    wet = np.concatenate([chain.process(audio, sample_rate=sample_rate, reset=True), chain.flush()[0]])
    return wet[delay : delay + len(audio)]


def effects_offset_db(read: Callable[[int, int], np.ndarray], *, envelope, settings: RenderSettings,
                      n_samples: int) -> float:
    """How many dB to move a levelled render (``read(first, n)`` gives its parked audio, ``envelope`` its
    :class:`synth.loudness.GainEnvelope`) so that its effects, limiter included, leave it as loud as the level
    set before them: a reverb adds loudness, the limiter takes some off where it works.

    The effects are tried on the levelled sound (all of it up to 30 s; else six 5 s windows spread over it, each
    after 2 s of pre-roll that is left out of the measurement) and the gain moved until the output measures as
    loud as the input (BS.1770, within 0.1 LU, at most 3 tries, at most ±24 dB). Deterministic: a streamed and a
    whole render get the same offset.
    """
    from synth.loudness import integrated_lufs

    rate = settings.sample_rate
    probe, window, preroll = (round(seconds * rate) for seconds in (_FX_PROBE_S, _FX_PROBE_WINDOW_S,
                                                                    _FX_PROBE_PREROLL_S))
    if n_samples <= probe:
        windows = [(0, n_samples)]
    else:
        count = probe // window
        windows = [(round(start), window) for start in np.linspace(0, n_samples - window, count)]
    pieces = []  # (levelled samples with their pre-roll, pre-roll length)
    for start, length in windows:
        first = max(0, start - preroll)
        pieces.append((read(first, start + length - first) * envelope.block(first, start + length - first),
                       start - first))
    dry = integrated_lufs(np.concatenate([piece[skip:] for piece, skip in pieces]), sample_rate=rate)
    if not math.isfinite(dry):
        return 0.0
    offset_db = 0.0
    for _ in range(_FX_PROBE_TRIES):
        scale = np.float32(10 ** (offset_db / 20))
        wet = np.concatenate([_through(_effect_chain(settings, levelled=True), piece * scale, sample_rate=rate)[skip:]
                              for piece, skip in pieces])
        error = dry - integrated_lufs(wet, sample_rate=rate)
        if not math.isfinite(error):
            break
        offset_db = float(np.clip(offset_db + error, -_FX_PROBE_LIMIT_DB, _FX_PROBE_LIMIT_DB))
        if abs(error) < _FX_PROBE_TOLERANCE_LU:
            break
    return offset_db


def _level_effects_fades(spill, write: Callable[[np.ndarray], None], *, settings: RenderSettings, gain,
                         n_samples: int, timings: dict[str, float], envelope=None,
                         mixed: Callable[[int, np.ndarray], np.ndarray] | None = None) -> None:
    """The second pass: parked audio (with the mix-in: ``mixed(start, block)``) × ``gain`` (or × the levelled
    render's ``envelope``, a :class:`synth.loudness.GainEnvelope`), through the effects (their delay removed),
    faded, to ``write``."""
    chain = _effect_chain(settings, levelled=envelope is not None)
    delay = chain.latency_samples(settings.sample_rate) if chain is not None else 0
    n_fade = round(settings.fade_s * settings.sample_rate)
    written = 0

    def out(block: np.ndarray) -> None:
        nonlocal written, delay
        if delay:
            skipped = min(delay, len(block))
            block, delay = block[skipped:], delay - skipped
        block = block[: n_samples - written]
        if not len(block):
            return
        gains = _fade_gains(written, len(block), n_samples=n_samples, n_fade=n_fade)
        if gains is not None:
            block = block * gains
        clock = time.perf_counter()
        write(np.ascontiguousarray(block, dtype=np.float32))
        timings["write"] += time.perf_counter() - clock
        written += len(block)

    start = 0
    for block in spill.blocks(_LEVEL_BLOCK):
        n_block = len(block)
        if mixed is not None:
            block = mixed(start, block)
        if envelope is not None:
            block = block * envelope.block(start, n_block)
        elif gain is not None:
            block = block * gain
        else:
            block = block.copy()
        start += n_block
        out(chain.process(block, sample_rate=settings.sample_rate) if chain is not None else block)
    if chain is not None:
        while written < n_samples:  # the limiter's look-ahead: silence pushes the end out
            before = written
            out(chain.flush()[0])
            if written == before:
                break


def render_items(
    items: Sequence[ImageItem],
    *,
    bundle: ModelBundle,
    settings: RenderSettings,
    mapping: Mapping | None = None,
    progress: bool = False,
) -> RenderResult:
    """Render decoded images (in order) to audio in memory, with the control frames: :func:`render_stream`
    for a short sequence whose sound and parameters a caller wants as arrays."""
    from synth.files import SampleSpill

    if not items:
        raise InputError("no images to render")
    blocks: list[np.ndarray] = []
    controls: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    with SampleSpill() as spill:
        result = render_stream(items, bundle=bundle, settings=settings, spill=spill, write=blocks.append,
                               mapping=mapping, progress=progress,
                               on_controls=lambda first, times, positions, images: controls.append((times, positions)))
    mapping = mapping or load_mapping()
    result.audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    result.frame_times_s = np.concatenate([times for times, _ in controls])
    result.positions = {name: np.concatenate([positions[name] for _, positions in controls])
                        for name in controls[0][1]}
    result.values = mapping.values(result.positions)
    return result


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
