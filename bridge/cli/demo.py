"""``imgsonic demo``: the bundled example images with a preset → demo.wav, demo.mid and demo.png."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from bridge.cli.arguments import THREADS
from bridge.cli.render import VOCODER_CHOICES, add_loudness_arguments

__all__ = ["add_arguments", "run", "run_demo"]

DEFAULT_OUTPUT_DIR = "imgsonic-demo"
_SECONDS_PER_IMAGE = 1.5
_CROSSFADE_S = 0.3
_FX = "reverb:room_size=0.6,wet_level=0.25,dry_level=0.8"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output-dir", default=DEFAULT_OUTPUT_DIR, metavar="DIR",
                        help=f"where to write demo.wav, demo.mid and demo.png (default: ./{DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--preset", default="default", help="preset to render with (default: default), or the path "
                        "of a preset folder or .toml file")
    parser.add_argument("--vocoder", choices=VOCODER_CHOICES, default="pghi+fgla", help="default: pghi+fgla")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch threads (default: 1)")
    add_loudness_arguments(parser)


def run_demo(*, out_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR, preset: str = "default",
             vocoder: str = "pghi+fgla", loudness=None) -> dict[str, Path]:
    """Render the demo into ``out_dir`` (created if missing); returns ``{"wav": …, "mid": …, "png": …}``.

    ``loudness``: a :class:`bridge.control.levels.LoudnessSettings` (default: every image equally loud, −18 LUFS).
    """
    from bridge.control.levels import LoudnessSettings
    from bridge.control.mapping import load_mapping
    from bridge.io.outputs import save_outputs
    from bridge.io.spectrogram_png import save_png, spectrogram_strip
    from bridge.sonify.bundle import load_bundle
    from bridge.sonify.render import RenderSettings, render_items
    from bridge.sources.demo import demo_images
    from models.errors import ParameterError
    from synth.files import outputs_together

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output folder {str(out_dir)!r} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    bundle = load_bundle(preset=preset)
    mapping = load_mapping()
    settings = RenderSettings(seconds_per_image=_SECONDS_PER_IMAGE, crossfade_s=_CROSSFADE_S, vocoder=vocoder, fx=_FX,
                              loudness=loudness or LoudnessSettings())
    items = demo_images()
    result = render_items(items, bundle=bundle, settings=settings, mapping=mapping)
    paths = {"wav": out_dir / "demo.wav", "mid": out_dir / "demo.mid", "png": out_dir / "demo.png"}
    with outputs_together():  # the three files, or none of them
        save_png(spectrogram_strip([item.pixels for item in items], result.audio, sample_rate=result.sample_rate),
                 paths["png"])
        save_outputs(result, out_path=paths["wav"], mapping=mapping, midi_path=paths["mid"])
    return paths


def run(args: argparse.Namespace) -> int:
    from bridge.cli.process import reuse_freed_memory, set_threads
    from bridge.cli.render import loudness_from_args

    set_threads(args.threads)
    reuse_freed_memory()
    clock = time.perf_counter()
    paths = run_demo(out_dir=args.output_dir, preset=args.preset, vocoder=args.vocoder,
                     loudness=loudness_from_args(args))
    print(f"rendered the example images with preset {args.preset!r} in {time.perf_counter() - clock:.1f} s:")
    for kind, path in paths.items():
        print(f"  {kind}: {path.resolve()}")
    return 0
