"""Offline rendering: a sequence of images → one continuous sound file (+ MIDI and a JSON log).

How a sequence becomes a continuous mel
---------------------------------------
1. Each image is encoded (image VAE posterior mean) and mapped to an audio latent.
2. The latents go on a :class:`bridge.stream.LatentStream` (image ``i`` owns ``[i·s, (i+1)·s)``,
   crossfades centred on the boundaries) and are sampled once per mel frame.
3. Every frame's audio latent is decoded to a window of ``window_frames`` frames and the frame takes
   column ``m % window_frames`` of it — the same tiling as :meth:`models.pipeline.SonificationModels.decode_audio`
   while an image holds, and a morph through the audio latent space while images crossfade.
4. The whole mel timeline goes through the vocoder in one call (in ``chunk_s`` pieces with an
   equal-power overlap for long renders), so phase runs on across image boundaries: no restarts, no clicks.
5. Resample to the output rate (:mod:`synth.resample`, the live voices' resampler), FX (pedalboard), normalise the peak to ``peak_db`` dBFS,
   raised-cosine fades at both ends.

Files are written atomically, the audio last: if a render is interrupted (Ctrl-C, an error) no audio file
is left, and an existing one is untouched.

Example
-------
>>> from bridge.render import RenderSettings, load_models, render_files   # doctest: +SKIP
>>> loaded = load_models(preset="default")                              # doctest: +SKIP
>>> result = render_files(["frames/"], out_path="out.wav", loaded=loaded, settings=RenderSettings())  # doctest: +SKIP
>>> result.duration_s                                                   # doctest: +SKIP
8.0
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bridge.images import DESCRIPTORS, ImageItem, describe_images, expand_inputs, load_images
from bridge.mapping import Mapping, load_mapping
from bridge.stream import LatentStream, frame_times
from models.errors import InputError, ParameterError
from synth.files import atomic_output

if TYPE_CHECKING:  # torch is imported where it is used, so `imgsonic --help` stays fast
    import torch

    from models.pipeline import SonificationModels

__all__ = [
    "VOCODERS",
    "RenderSettings",
    "LoadedModels",
    "RenderResult",
    "load_models",
    "render_items",
    "prepare_inputs",
    "decode_frames",
    "vocode_in_pieces",
    "render_files",
    "write_json",
    "boundary_jump_ratio",
]

VOCODERS = ("pghi+fgla", "pghi", "griffinlim", "neural", "neural+fgla")
_DECODE_BATCH = 4096
_DESCRIPTOR_SIZE = 64  # descriptors are measured at this size, whatever the image model reads


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
class LoadedModels:
    """The models, the neural vocoder checkpoint to use for ``--vocoder neural`` (or None), and a label."""

    models: SonificationModels
    vocoder_path: Path | None
    label: str


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


def load_models(
    *,
    preset: str | None = None,
    image_vae: str | os.PathLike | None = None,
    audio_vae: str | os.PathLike | None = None,
    mapper: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
) -> LoadedModels:
    """Models from a preset name or from three explicit checkpoints (not both); ``vocoder`` overrides the preset's."""
    from models.pipeline import SonificationModels

    explicit = [image_vae, audio_vae, mapper]
    if preset is not None and any(path is not None for path in explicit):
        raise ParameterError("give either --preset or --image-vae/--audio-vae/--mapper, not both")
    if preset is None and any(path is not None for path in explicit):
        if any(path is None for path in explicit):
            raise ParameterError("explicit checkpoints need all three of --image-vae, --audio-vae and --mapper")
        models = SonificationModels.from_paths(image_vae=image_vae, audio_vae=audio_vae, mapper=mapper)
        return LoadedModels(models, Path(vocoder) if vocoder else None, label=str(Path(mapper).parent))
    from models.registry import load_preset

    name = preset or "default"
    entry = load_preset(name)
    models = SonificationModels.from_paths(image_vae=entry.image_vae, audio_vae=entry.audio_vae, mapper=entry.mapper)
    return LoadedModels(models, Path(vocoder) if vocoder else entry.vocoder, label=name)


def _vocoder_function(loaded: LoadedModels, method: str, config) -> Callable[[torch.Tensor], torch.Tensor]:
    if method not in ("neural", "neural+fgla"):
        from synth.phase import mel_to_audio

        return lambda mel: mel_to_audio(mel, config=config, method=method)
    from synth.vocoder import FGLA_ITERATIONS, vocoder_for

    vocoder = vocoder_for(loaded.vocoder_path, preset=loaded.label, config=config)
    n_iter = FGLA_ITERATIONS if method == "neural+fgla" else 0
    return lambda mel: vocoder.vocode(mel, n_iter=n_iter)


def prepare_inputs(items: Sequence[ImageItem], models: SonificationModels) -> tuple[torch.Tensor, np.ndarray]:
    """Model inputs ``(n, C, S, S)`` and descriptors ``(n, len(DESCRIPTORS))``; InputError names the image."""
    import torch

    from models.preprocess import prepare_image

    inputs, rgbs = [], []
    # the descriptors see the model's input when it is what they need (the default preset's): half the work
    same = models.image_size == _DESCRIPTOR_SIZE and models.image_channels == 3
    for item in items:
        try:
            inputs.append(prepare_image(item.pixels, size=models.image_size, channels=models.image_channels))
            rgbs.append(inputs[-1] if same else prepare_image(item.pixels, size=_DESCRIPTOR_SIZE, channels=3))
        except InputError as error:
            raise InputError(f"image {item.name!r}: {error}") from error
    batch = torch.stack(inputs)
    return batch, describe_images((batch if same else torch.stack(rgbs)).numpy())


def decode_frames(models: SonificationModels, z_aud_frames: np.ndarray, *, first_frame: int = 0) -> torch.Tensor:
    """Per-frame audio latents ``(T, Da)`` → mel ``(n_mels, T)``: frame ``m`` is column ``m % W`` of its window.

    ``first_frame`` is the index of the first row's frame (the live voice decodes a few frames at a time).
    Call under ``torch.inference_mode()``.
    """
    import torch

    unique, inverse = np.unique(z_aud_frames.astype(np.float32), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    windows = []
    for start in range(0, len(unique), _DECODE_BATCH):
        windows.append(models.decode_audio(torch.from_numpy(unique[start : start + _DECODE_BATCH])))
    windows = torch.cat(windows)  # (U, n_mels, W)
    columns = (first_frame + torch.arange(len(inverse))) % models.window_frames
    return windows[torch.from_numpy(inverse), :, columns].T.contiguous()


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
    loaded: LoadedModels,
    settings: RenderSettings,
    mapping: Mapping | None = None,
    progress: bool = False,
) -> RenderResult:
    """Render decoded images (in order) to audio; see the module docstring for the steps."""
    import torch

    from synth.spectral import SpectralConfig

    if not items:
        raise InputError("no images to render")
    models = loaded.models
    mapping = mapping or load_mapping()
    mapping.check_dims(image_latent_dim=models.image_latent_dim, audio_latent_dim=models.audio_latent_dim)
    config = SpectralConfig.from_dict(models.spectral_config)
    vocode = _vocoder_function(loaded, settings.vocoder, config)
    timings: dict[str, float] = {}

    clock = time.perf_counter()
    with torch.inference_mode():
        images, descriptors = prepare_inputs(items, models)
        z_img = models.encode_images(images)
        z_aud = models.image_to_audio_latent(z_img)
    timings["encode"] = time.perf_counter() - clock

    clock = time.perf_counter()
    stream = LatentStream.from_sequence(
        {"z_img": z_img.numpy(), "z_aud": z_aud.numpy(), "descriptors": descriptors},
        seconds_per_image=settings.seconds_per_image,
        crossfade_s=settings.crossfade_s,
    )
    duration_s = stream.duration_s
    frame_rate_hz = config.sample_rate / config.hop_length
    times_s = frame_times(duration_s=math.ceil(duration_s * frame_rate_hz) / frame_rate_hz, frame_rate_hz=frame_rate_hz)
    sources = stream.sample(times_s)
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


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically (temporary file in the same folder, then ``os.replace``)."""
    with atomic_output(path, text=True) as stream:
        json.dump(data, stream, indent=2)
        stream.write("\n")


def _check_output(path: Path | None, suffixes: tuple[str, ...], option: str) -> None:
    if path is None:
        return
    if path.suffix.lower() not in suffixes:
        raise ParameterError(f"{option} {str(path)!r}: expected a file ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ParameterError(f"{option} {str(path)!r}: folder {str(path.parent)!r} does not exist")


def save_outputs(
    result: RenderResult,
    *,
    out_path: str | os.PathLike,
    mapping: Mapping,
    midi_path: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write the MIDI and JSON files (if asked), then the audio: every file atomic, the audio last."""
    from synth.audio_io import write_audio

    if midi_path is not None:
        from bridge.midi import MidiSpec, controls_to_midi, write_midi

        midi_file = controls_to_midi(
            spec=MidiSpec.from_mapping(mapping),
            times_s=result.frame_times_s,
            positions=result.positions,
            onsets_s=result.onsets_s,
            duration_s=result.duration_s,
        )
        write_midi(midi_path, midi_file)
    if json_path is not None:
        write_json(json_path, {**(metadata or {}), "sample_rate": result.sample_rate,
                               "duration_s": result.duration_s, "images": result.images})
    clock = time.perf_counter()
    write_audio(out_path, result.audio, sample_rate=result.sample_rate)
    result.timings_s["write"] = time.perf_counter() - clock


def render_files(
    inputs: Sequence[str | os.PathLike],
    *,
    out_path: str | os.PathLike,
    loaded: LoadedModels,
    settings: RenderSettings,
    mapping: Mapping | None = None,
    midi_path: str | os.PathLike | None = None,
    json_path: str | os.PathLike | None = None,
    progress: bool = False,
    before_write: Callable[[list[ImageItem], RenderResult], None] | None = None,
) -> RenderResult:
    """``imgsonic render``: expand and decode ``inputs``, render, write the files; returns the result with timings.

    ``before_write(items, result)`` runs before any file is written (``--melody``: :mod:`bridge.melody_render`).
    """
    out_path = Path(out_path)
    _check_output(out_path, (".wav", ".flac"), "output")
    _check_output(Path(midi_path) if midi_path else None, (".mid", ".midi"), "--midi")
    _check_output(Path(json_path) if json_path else None, (".json",), "--json")
    mapping = mapping or load_mapping()
    clock = time.perf_counter()
    items = load_images(expand_inputs(inputs), video_frames_per_second=1.0 / settings.seconds_per_image,
                        workers=settings.workers)
    decode_s = time.perf_counter() - clock
    result = render_items(items, loaded=loaded, settings=settings, mapping=mapping, progress=progress)
    result.timings_s = {"image decode": decode_s, **result.timings_s}
    if before_write is not None:
        before_write(items, result)
    metadata = {"models": loaded.label, "mapping": mapping.source, "settings": asdict(settings)}
    save_outputs(result, out_path=out_path, mapping=mapping, midi_path=midi_path, json_path=json_path, metadata=metadata)
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


# ---- imgsonic render -----------------------------------------------------------------------------


def add_model_arguments(parser) -> None:
    """``--preset`` or explicit checkpoints, shared by ``render`` and ``demo``."""
    group = parser.add_argument_group("models (a preset, or all three checkpoints)")
    group.add_argument("--preset", help="preset name (default: default); see imgsonic info")
    group.add_argument("--image-vae", metavar="PT", help="image VAE checkpoint")
    group.add_argument("--audio-vae", metavar="PT", help="audio VAE checkpoint")
    group.add_argument("--mapper", metavar="PT", help="latent mapper checkpoint")
    group.add_argument("--vocoder-checkpoint", metavar="PT",
                       help="neural vocoder for --vocoder neural or neural+fgla (default: the preset's)")


def add_settings_arguments(parser) -> None:
    """Sound options shared by ``render`` and ``demo``."""
    parser.add_argument("--seconds-per-image", type=float, metavar="S", help="default: 1.0 (with --melody: one phrase)")
    parser.add_argument("--crossfade", type=float, default=RenderSettings.crossfade_s, metavar="S",
                        help=f"crossfade between images, ≤ seconds per image (default: {RenderSettings.crossfade_s})")
    parser.add_argument("--vocoder", choices=VOCODERS, default="pghi+fgla",
                        help="pghi+fgla (default), pghi, griffinlim: phase reconstruction of the mel; neural: the "
                             "preset's neural vocoder (what live plays); neural+fgla: then 12 iterations that re-fit "
                             "the mel (on the benchmarks, as close to the mel as pghi+fgla or closer and much closer to the true sound; slowest)")
    parser.add_argument("--fx", default="", metavar="SPEC", help='effects, e.g. "reverb:room_size=0.7; limiter"')
    parser.add_argument("--sr", type=int, default=44100, metavar="HZ", help="output sample rate (default: 44100)")
    parser.add_argument("--mapping", metavar="TOML", help="parameter mapping (default: bridge/mappings/default.toml)")
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help="torch threads per operation (default: 1; on a busy 2-core machine 2 threads rendered "
                             "8× slower)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="images decoded and vocoder pieces (15 s each) rendered at once, one thread each; the output does not "
                             "depend on it (default: 2, or 1 on a 1-core machine)")


def set_threads(n_threads: int) -> None:
    """Set torch's intra-op threads for this process (the CLI's choice, never done at import)."""
    import torch

    if isinstance(n_threads, bool) or not isinstance(n_threads, int) or n_threads < 1:
        raise ParameterError(f"--threads {n_threads!r}; expected an integer ≥ 1")
    torch.set_num_threads(n_threads)


def reuse_freed_memory() -> bool:
    """Make this process's C allocator (glibc) keep freed memory for reuse; False where it cannot (not glibc).

    By default glibc hands every freed block over 128 kB back to the kernel at once (and only later raises
    that limit) and gives each thread its own arena that shrinks as it frees. A render allocates and frees
    hundreds of MB of multi-MB arrays, and each comes back as fresh pages: one page fault per 4 kB, ~2.7 µs
    each on this machine (a new 3.85 MB array: 2.7 ms to fill the first time, 0.15 ms the next). Here blocks
    up to 32 MB come from the heap, the heap is not trimmed, and all threads share the one arena (their
    allocations are few and large, so the lock is not contended). For offline commands only: it changes the
    whole process, and the live engine's audio thread should not wait on another thread's allocation.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):  # no C library by that name, or no mallopt (macOS, Windows)
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # <malloc.h>
    return all(mallopt(option, value) == 1 for option, value in (
        (m_arena_max, 1), (m_mmap_threshold, 32 << 20), (m_trim_threshold, 1 << 30)))


def settings_from_args(args) -> RenderSettings:
    seconds_per_image = 1.0 if args.seconds_per_image is None else args.seconds_per_image
    return RenderSettings(seconds_per_image=seconds_per_image, crossfade_s=args.crossfade,
                          vocoder=args.vocoder, fx=args.fx, sample_rate=args.sr, workers=args.workers)


def models_from_args(args) -> LoadedModels:
    return load_models(preset=args.preset, image_vae=args.image_vae, audio_vae=args.audio_vae,
                       mapper=args.mapper, vocoder=args.vocoder_checkpoint)


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (sorted naturally), glob patterns, animated GIF/PNG/WebP, or videos "
                             "(needs imageio); animations and videos give one frame per --seconds-per-image")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.wav", help=".wav or .flac, written atomically")
    parser.add_argument("--midi", metavar="OUT.mid", help="also write the mapping as MIDI notes and CCs")
    parser.add_argument("--json", metavar="OUT.json", help="per image: time span, latents, mapped parameters")
    add_settings_arguments(parser)
    add_model_arguments(parser)
    from bridge.melody_render import add_melody_arguments

    add_melody_arguments(parser)


def run(args) -> int:
    set_threads(args.threads)
    reuse_freed_memory()
    melody_step = None
    if args.melody:
        from bridge import melody_render

        _check_output(Path(args.melody), (".mid", ".midi"), "--melody")
        melody_models = melody_render.load_melody_models(args.preset)
        args.seconds_per_image = melody_render.melody_seconds_per_image(
            seconds_per_image=args.seconds_per_image, n_steps=melody_models.n_steps, bpm=args.bpm)
    settings = settings_from_args(args)
    if args.melody:
        melody_step = melody_render.melody_step(midi_path=args.melody, mode=args.melody_audio,
                                                level_db=args.melody_level_db, bpm=args.bpm,
                                                melody_models=melody_models, peak_db=settings.peak_db)
    mapping = load_mapping(args.mapping)
    loaded = models_from_args(args)
    clock = time.perf_counter()
    result = render_files(args.inputs, out_path=args.output, loaded=loaded, settings=settings, mapping=mapping,
                          midi_path=args.midi, json_path=args.json, progress=True, before_write=melody_step)
    elapsed = time.perf_counter() - clock
    n_images = len(result.images)
    print(f"wrote {args.output}: {n_images} image{'' if n_images == 1 else 's'}, {result.duration_s:.2f} s at {result.sample_rate} Hz "
          f"({result.duration_s / elapsed:.0f}× real time)")
    for path in (args.midi, args.json, args.melody):
        if path:
            print(f"wrote {path}")
    return 0
