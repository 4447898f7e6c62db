"""``imgsonic render``: images (files, folders, globs, animations, videos) → a sound file, MIDI and JSON."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from bridge.cli.arguments import SAMPLE_RATE_HZ, THREADS, Number, add_model_arguments
from bridge.cli.melody import add_melody_arguments

__all__ = ["add_arguments", "add_settings_arguments", "run", "settings_from_args", "bundle_from_args", "render_files"]

# The render's vocoder names (bridge.sonify.render.VOCODERS; a test keeps them equal without importing torch here).
VOCODER_CHOICES = ("pghi+fgla", "pghi", "griffinlim", "neural", "neural+fgla")
SECONDS_PER_IMAGE = Number(float, 0.05, 3600.0, unit="seconds")
CROSSFADE_S = Number(float, 0.0, 60.0, unit="seconds")
WORKERS = Number(int, 1, 64, unit="workers")
DEFAULT_CROSSFADE_S = 0.1


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Sound options shared by ``render`` and ``demo``."""
    parser.add_argument("--seconds-per-image", type=SECONDS_PER_IMAGE, metavar="S",
                        help="default: 1.0 (with --melody: one phrase)")
    parser.add_argument("--crossfade", type=CROSSFADE_S, metavar="S",
                        help=f"crossfade between images, ≤ seconds per image (default: {DEFAULT_CROSSFADE_S}, or the "
                             "seconds per image when shorter)")
    parser.add_argument("--vocoder", choices=VOCODER_CHOICES, default="pghi+fgla",
                        help="pghi+fgla (default), pghi, griffinlim: phase reconstruction of the mel; neural: the "
                             "preset's neural vocoder (what live plays); neural+fgla: then 12 iterations that re-fit "
                             "the mel (on the benchmarks, as close to the mel as pghi+fgla or closer and much closer "
                             "to the true sound; slowest)")
    parser.add_argument("--fx", default="", metavar="SPEC", help='effects, e.g. "reverb:room_size=0.7; limiter"')
    parser.add_argument("--sr", type=SAMPLE_RATE_HZ, default=44100, metavar="HZ",
                        help="output sample rate (default: 44100)")
    parser.add_argument("--mapping", metavar="TOML", help="parameter mapping (default: bridge/mappings/default.toml)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N",
                        help="torch threads per operation (default: 1; on a busy 2-core machine 2 threads rendered "
                             "8× slower)")
    parser.add_argument("--workers", type=WORKERS, default=min(2, os.cpu_count() or 1), metavar="N",
                        help="images decoded and vocoder pieces (15 s each) rendered at once, one thread each; the "
                             "output does not depend on it (default: 2, or 1 on a 1-core machine)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (sorted naturally), glob patterns, animated GIF/PNG/WebP, or videos "
                             "(needs imageio); animations and videos give one frame per --seconds-per-image")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.wav", help=".wav or .flac, written atomically")
    parser.add_argument("--midi", metavar="OUT.mid", help="also write the mapping as MIDI notes and CCs")
    parser.add_argument("--json", metavar="OUT.json", help="per image: time span, latents, mapped parameters")
    add_settings_arguments(parser)
    add_model_arguments(parser)
    add_melody_arguments(parser)


def settings_from_args(args: argparse.Namespace):
    """The :class:`bridge.sonify.render.RenderSettings` the flags ask for."""
    from bridge.sonify.render import RenderSettings

    seconds_per_image = 1.0 if args.seconds_per_image is None else args.seconds_per_image
    crossfade_s = min(DEFAULT_CROSSFADE_S, seconds_per_image) if args.crossfade is None else args.crossfade
    return RenderSettings(seconds_per_image=seconds_per_image, crossfade_s=crossfade_s,
                          vocoder=args.vocoder, fx=args.fx, sample_rate=args.sr, workers=args.workers)


def bundle_from_args(args: argparse.Namespace):
    """The preset or the explicit checkpoints the flags name, loaded (:func:`bridge.sonify.bundle.load_bundle`)."""
    from bridge.sonify.bundle import load_bundle

    return load_bundle(preset=args.preset, image_vae=args.image_vae, audio_vae=args.audio_vae,
                       mapper=args.mapper, vocoder=getattr(args, "vocoder_checkpoint", None))


def render_files(inputs: Sequence[str | os.PathLike], *, out_path: str | os.PathLike, bundle, settings,
                 mapping=None, midi_path: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None, progress: bool = False, before_write=None):
    """``imgsonic render``: expand and decode ``inputs``, render, write the files; returns the result with timings.

    The outputs are checked before any work; every file is written atomically, the audio last.
    ``before_write(items, result)`` runs before any file is written (``--melody``: :mod:`bridge.cli.melody`).
    """
    from dataclasses import asdict

    from bridge.control.mapping import load_mapping
    from bridge.io.outputs import check_output, save_outputs
    from bridge.sonify.render import render_items
    from bridge.sources.images import expand_inputs, load_images

    out_path = Path(out_path)
    check_output(out_path, (".wav", ".flac"), "output")
    check_output(Path(midi_path) if midi_path else None, (".mid", ".midi"), "--midi")
    check_output(Path(json_path) if json_path else None, (".json",), "--json")
    mapping = mapping or load_mapping()
    clock = time.perf_counter()
    items = load_images(expand_inputs(inputs), video_frames_per_second=1.0 / settings.seconds_per_image,
                        workers=settings.workers)
    decode_s = time.perf_counter() - clock
    result = render_items(items, bundle=bundle, settings=settings, mapping=mapping, progress=progress)
    result.timings_s = {"image decode": decode_s, **result.timings_s}
    if before_write is not None:
        before_write(items, result)
    metadata = {"models": bundle.label, "mapping": mapping.source, "settings": asdict(settings)}
    save_outputs(result, out_path=out_path, mapping=mapping, midi_path=midi_path, json_path=json_path,
                 metadata=metadata)
    return result


def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.control.mapping import load_mapping

    set_threads(args.threads)
    reuse_freed_memory()
    melody_step = None
    if args.melody:
        from bridge.cli import melody
        from bridge.io.outputs import check_output

        check_output(Path(args.melody), (".mid", ".midi"), "--melody")
        melody_models = melody.load_melody_models(args.preset)
        args.seconds_per_image = melody.melody_seconds_per_image(
            seconds_per_image=args.seconds_per_image, n_steps=melody_models.n_steps, bpm=args.bpm)
    settings = settings_from_args(args)
    if args.melody:
        melody_step = melody.melody_step(midi_path=args.melody, mode=args.melody_audio, level_db=args.melody_level_db,
                                         bpm=args.bpm, melody_models=melody_models, peak_db=settings.peak_db)
    mapping = load_mapping(args.mapping)
    bundle = bundle_from_args(args)
    clock = time.perf_counter()
    result = render_files(args.inputs, out_path=args.output, bundle=bundle, settings=settings, mapping=mapping,
                          midi_path=args.midi, json_path=args.json, progress=True, before_write=melody_step)
    elapsed = time.perf_counter() - clock
    n_images = len(result.images)
    print(f"wrote {args.output}: {n_images} image{'' if n_images == 1 else 's'}, {result.duration_s:.2f} s at "
          f"{result.sample_rate} Hz ({result.duration_s / elapsed:.3g}× real time)")
    for path in (args.midi, args.json, args.melody):
        if path:
            print(f"wrote {path}")
    return 0
