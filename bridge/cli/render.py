"""``imgsonic render``: images (files, folders, globs, animations, videos) → a sound file, MIDI and JSON."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from bridge.cli.arguments import SAMPLE_RATE_HZ, TEMPO_BPM, THREADS, Number, add_model_arguments, time_signature
from bridge.cli.melody import add_melody_arguments

__all__ = ["add_arguments", "add_settings_arguments", "add_loudness_arguments", "run", "settings_from_args",
           "loudness_from_args", "bundle_from_args", "limits_from_args", "tempo_from_args", "render_files"]

# The render's vocoder names (bridge.sonify.render.VOCODERS; a test keeps them equal without importing torch here).
VOCODER_CHOICES = ("pghi+fgla", "pghi", "griffinlim", "neural", "neural+fgla")
SECONDS_PER_IMAGE = Number(float, 0.05, 3600.0, unit="seconds")
CROSSFADE_S = Number(float, 0.0, 60.0, unit="seconds")
WORKERS = Number(int, 1, 64, unit="workers")
DEFAULT_CROSSFADE_S = 0.1
# caps on what a render reads and makes (bridge.sources.images.ImageLimits, RenderSettings.max_duration_s)
MAX_MEGAPIXELS = Number(float, 0.0, 10_000.0, unit="megapixels", low_open=True)
MAX_FRAMES = Number(int, 1, 100_000_000, unit="frames")
MAX_IMAGES = Number(int, 1, 100_000_000, unit="images")
MAX_DURATION_S = Number(float, 1.0, 1_000_000.0, unit="seconds")
BEATS_PER_IMAGE = Number(int, 1, 4096, unit="beats")
# bridge.control.levels' modes and bridge.sources.descriptors.DESCRIPTORS, without importing numpy for --help (tested)
LOUDNESS_CHOICES = ("even", "mapped", "raw")
LOUDNESS_FEATURES = ("brightness", "contrast", "saturation", "hue", "edge_density", "entropy", "red", "green", "blue")
LUFS = Number(float, -70.0, 0.0, unit="LUFS")
LOUDNESS_RANGE_DB = Number(float, 0.0, 40.0, unit="dB")
DEFAULT_LUFS = -18.0  # synth.loudness.TARGET_LUFS (tested)


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


def add_loudness_arguments(parser: argparse.ArgumentParser) -> None:
    """``--loudness`` and its options, shared by ``render`` and ``demo``."""
    group = parser.add_argument_group("loudness (BS.1770, measured with pyloudnorm; the file's true peak stays ≤ −1 dBTP)")
    group.add_argument("--loudness", choices=LOUDNESS_CHOICES, default="even",
                       help="even (default): every image equally loud, the file at --lufs; mapped: "
                            "--loudness-feature sets each image's level within --loudness-range dB of the loudest, "
                            "the file at --lufs; raw: the model's own levels, the peak at −1 dBFS")
    group.add_argument("--lufs", type=LUFS, default=DEFAULT_LUFS, metavar="LUFS",
                       help=f"integrated loudness of the file with even and mapped (default: {DEFAULT_LUFS:g})")
    group.add_argument("--loudness-feature", choices=LOUDNESS_FEATURES, default="brightness",
                       help="the image descriptor that drives each image's level with --loudness mapped "
                            "(default: brightness)")
    group.add_argument("--loudness-range", type=LOUDNESS_RANGE_DB, default=12.0, metavar="DB",
                       help="with mapped: an image whose descriptor is 0 sounds this many dB below one whose "
                            "descriptor is 1 (default: 12)")


def loudness_from_args(args: argparse.Namespace):
    """The :class:`bridge.control.levels.LoudnessSettings` of the ``--loudness`` flags."""
    from bridge.control.levels import LoudnessSettings

    return LoudnessSettings(mode=args.loudness, target_lufs=args.lufs, feature=args.loudness_feature,
                            range_db=args.loudness_range)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (sorted naturally), glob patterns, animated GIF/PNG/WebP, or videos "
                             "(needs imageio); animations and videos give one frame per --seconds-per-image")
    parser.add_argument("-o", "--output", required=True, metavar="OUT.wav", help=".wav or .flac, written atomically")
    parser.add_argument("--midi", metavar="OUT.mid", help="also write the mapping as MIDI notes and CCs")
    parser.add_argument("--json", metavar="OUT.json", help="per image: time span, latents, mapped parameters")
    add_settings_arguments(parser)
    add_loudness_arguments(parser)
    tempo = parser.add_argument_group("tempo (images on beats; the MIDI file carries the tempo and time signature)")
    tempo.add_argument("--bpm", type=TEMPO_BPM, metavar="BPM",
                       help="hold each image a whole number of beats at this tempo: --seconds-per-image rounded to "
                            "the nearest beat (at least one), or --beats-per-image; every image change lands on a "
                            "beat (default: no grid; the MIDI file says 120 bpm)")
    tempo.add_argument("--time-signature", type=time_signature, default=(4, 4), metavar="N/D",
                       help="the MIDI file's time signature (default: 4/4)")
    tempo.add_argument("--beats-per-image", type=BEATS_PER_IMAGE, metavar="N", help="beats each image holds (needs --bpm)")
    caps = parser.add_argument_group("caps (memory stays bounded; raise a cap to read more)")
    caps.add_argument("--max-megapixels", type=MAX_MEGAPIXELS, default=120.0, metavar="MP",
                      help="largest image or frame, in megapixels, read from its header before decoding (default: "
                           "120; a PNG needs 4–5 bytes a pixel while it decodes, a JPEG far less)")
    caps.add_argument("--max-frames", type=MAX_FRAMES, default=100_000, metavar="N",
                      help="most frames in one animation or video (default: 100000)")
    caps.add_argument("--max-images", type=MAX_IMAGES, default=1_000_000, metavar="N",
                      help="most images (stills and sampled frames) in one render (default: 1000000)")
    caps.add_argument("--max-duration", type=MAX_DURATION_S, default=10_800.0, metavar="S",
                      help="longest sound, in seconds (default: 10800 = 3 h; the WAV takes 176 kB a second at "
                           "44.1 kHz, and as much again beside it while it is made)")
    add_model_arguments(parser)
    add_melody_arguments(parser)


def tempo_from_args(args: argparse.Namespace):
    """The :class:`bridge.control.tempo.Tempo` of ``--bpm`` and ``--time-signature`` (120 bpm without ``--bpm``)."""
    from bridge.control.tempo import Tempo

    numerator, denominator = getattr(args, "time_signature", (4, 4))
    return Tempo(bpm=getattr(args, "bpm", None) or 120.0, numerator=numerator, denominator=denominator)


def settings_from_args(args: argparse.Namespace):
    """The :class:`bridge.sonify.render.RenderSettings` the flags ask for; with ``--bpm`` each image holds a
    whole number of beats."""
    from bridge.sonify.render import RenderSettings
    from models.errors import ParameterError

    seconds_per_image = 1.0 if args.seconds_per_image is None else args.seconds_per_image
    beats = getattr(args, "beats_per_image", None)
    if getattr(args, "bpm", None):
        tempo = tempo_from_args(args)
        seconds_per_image = (beats or tempo.beats_for(seconds_per_image)) * tempo.seconds_per_beat
    elif beats is not None:
        raise ParameterError("--beats-per-image needs --bpm (the tempo that says how long a beat is)")
    crossfade_s = min(DEFAULT_CROSSFADE_S, seconds_per_image) if args.crossfade is None else args.crossfade
    return RenderSettings(seconds_per_image=seconds_per_image, crossfade_s=crossfade_s,
                          vocoder=args.vocoder, fx=args.fx, sample_rate=args.sr, workers=args.workers,
                          loudness=loudness_from_args(args), max_duration_s=getattr(args, "max_duration", RenderSettings.max_duration_s))


def limits_from_args(args: argparse.Namespace):
    """The :class:`bridge.sources.images.ImageLimits` of the ``--max-…`` flags."""
    from bridge.sources.images import ImageLimits

    return ImageLimits(max_pixels=max(1, round(args.max_megapixels * 1e6)), max_frames=args.max_frames,
                       max_images=args.max_images)


def bundle_from_args(args: argparse.Namespace):
    """The preset or the explicit checkpoints the flags name, loaded (:func:`bridge.sonify.bundle.load_bundle`)."""
    from bridge.sonify.bundle import load_bundle

    return load_bundle(preset=args.preset, image_vae=args.image_vae, audio_vae=args.audio_vae,
                       mapper=args.mapper, vocoder=getattr(args, "vocoder_checkpoint", None))


def render_files(inputs: Sequence[str | os.PathLike], *, out_path: str | os.PathLike, bundle, settings,
                 mapping=None, midi_path: str | os.PathLike | None = None,
                 json_path: str | os.PathLike | None = None, progress: bool = False, limits=None, tempo=None,
                 melody=None, melody_path: str | os.PathLike | None = None):
    """``imgsonic render``: expand the inputs, stream them through the render into the files; returns the
    result (without the audio, which went to the file) with timings.

    The outputs are checked before any work. Images are decoded as the render needs them (``limits`` caps
    them: :class:`bridge.sources.images.ImageLimits`), the audio is parked beside the output between the
    render's two passes (:class:`synth.files.SampleSpill`) and written block by block into a temporary file;
    the MIDI (at ``tempo``) and JSON files are written next, and all of them are committed together
    (:func:`synth.files.outputs_together`). On any error or interrupt every temporary file is removed and no
    output is replaced.
    ``melody`` (a :class:`bridge.cli.melody.MelodyMix`) takes a phrase from each image as it passes, writes
    them to ``melody_path`` and mixes them into the sound.
    """
    from dataclasses import asdict

    from bridge.control.mapping import load_mapping
    from bridge.control.midi_spec import MidiSpec
    from bridge.io.midi_file import MidiBuilder
    from bridge.io.outputs import check_output, write_side_outputs
    from bridge.sonify.render import render_stream
    from bridge.sources.images import expand_inputs, iter_images
    from synth.audio_io import audio_writer
    from synth.files import SampleSpill, outputs_together

    out_path = Path(out_path)
    check_output(out_path, (".wav", ".flac"), "output")
    check_output(Path(midi_path) if midi_path else None, (".mid", ".midi"), "--midi")
    check_output(Path(json_path) if json_path else None, (".json",), "--json")
    check_output(Path(melody_path) if melody_path else None, (".mid", ".midi"), "--melody")
    mapping = mapping or load_mapping()
    midi = MidiBuilder(spec=MidiSpec.from_mapping(mapping), tempo=tempo) if midi_path else None

    def on_controls(first_frame, times_s, positions, images) -> None:
        midi.add(first_frame=first_frame, times_s=times_s, positions=positions, images=images)

    items = iter_images(expand_inputs(inputs), video_frames_per_second=1.0 / settings.seconds_per_image,
                        workers=settings.workers, limits=limits)
    if melody is not None:
        items = melody.tap(items)
    with (outputs_together(), SampleSpill(beside=out_path) as spill,
          audio_writer(out_path, sample_rate=settings.sample_rate) as write):
        result = render_stream(items, bundle=bundle, settings=settings, spill=spill, write=write, mapping=mapping,
                               on_controls=on_controls if midi is not None else None, progress=progress,
                               mix_in=melody if melody is not None and melody.mode != "off" else None)
        metadata = {"models": bundle.label, "mapping": mapping.source, "settings": asdict(settings)}
        if tempo is not None:
            metadata["tempo"] = asdict(tempo)
        midi_file = midi.finish(onsets_s=result.onsets_s, duration_s=result.duration_s) if midi else None
        write_side_outputs(result, midi_path=midi_path, midi_file=midi_file, json_path=json_path, metadata=metadata)
        if melody is not None:
            melody.write_midi(melody_path)
        clock = time.perf_counter()
    result.timings_s["write"] += time.perf_counter() - clock  # committing the audio: flush, fsync, rename
    return result


def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.control.mapping import load_mapping

    settings = settings_from_args(args)
    set_threads(args.threads)
    reuse_freed_memory()
    melody = None
    if args.melody:  # each image lasts one phrase at --bpm (120 when not given)
        from bridge.cli.melody import MelodyMix, load_melody_models, melody_seconds_per_image

        melody_models = load_melody_models(args.preset)
        args.bpm = args.bpm or 120.0
        args.seconds_per_image = melody_seconds_per_image(seconds_per_image=args.seconds_per_image,
                                                          n_steps=melody_models.n_steps, bpm=args.bpm)
        melody = MelodyMix(melody_models=melody_models, mode=args.melody_audio, level_db=args.melody_level_db,
                           bpm=args.bpm)
        settings = settings_from_args(args)
    mapping = load_mapping(args.mapping)
    bundle = bundle_from_args(args)
    clock = time.perf_counter()
    tempo = tempo_from_args(args) if args.bpm or args.midi else None
    result = render_files(args.inputs, out_path=args.output, bundle=bundle, settings=settings, mapping=mapping,
                          midi_path=args.midi, json_path=args.json, progress=True, limits=limits_from_args(args),
                          tempo=tempo, melody=melody, melody_path=args.melody)
    elapsed = time.perf_counter() - clock
    n_images = len(result.images)
    print(f"wrote {args.output}: {n_images} image{'' if n_images == 1 else 's'}, {result.duration_s:.2f} s at "
          f"{result.sample_rate} Hz ({result.duration_s / elapsed:.3g}× real time)")
    for path in (args.midi, args.json, args.melody):
        if path:
            print(f"wrote {path}")
    return 0
