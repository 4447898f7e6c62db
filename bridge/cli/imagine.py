"""``imgsonic imagine``: a sound → the images a Sound-to-Imagination preset sees in it (learnt from paired examples).

``--samples N`` draws N different images per window (test-time dropout and noise, reproducible with ``--seed``);
``--exact`` gives the one deterministic image instead. ``--through features`` takes the multimodal feature-GAN
path (sound features → image features → image) where the preset has it. See :mod:`bridge.sonify.imagine`.

Output (``-o OUT``), each written atomically (:mod:`bridge.io.frames`):

* ``OUT.png``: a sheet, one row per window (labelled with its start time), one column per sample;
* ``OUT.gif``: an animation of the windows (the first sample of each), ``--hop-s`` per frame;
* a folder (new, or empty): ``window_00000_sample_00.png``, ….

Example::

    imgsonic imagine seven.wav -o seven.png --preset spoken-digits --samples 6
    imgsonic imagine scene.flac -o frames/ --preset runs/imagine/imagine/scenes.toml --hop-s 0.25
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bridge.cli.arguments import THREADS, Number
from models.errors import ParameterError

__all__ = ["add_arguments", "run", "write_result", "DEFAULT_PRESET", "MAX_SHEET_IMAGES"]

DEFAULT_PRESET = "spoken-digits"
MAX_SHEET_IMAGES = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sound", metavar="SOUND", help="a sound file (wav, flac, ogg, mp3, aif, …), any rate and length")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="OUT.png (rows: windows, columns: samples), OUT.gif (an animation) or a folder of PNGs")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"sound → image preset (default {DEFAULT_PRESET}; "
                        "see models/presets/imagine/), or the .toml that imgsonic train s2i wrote")
    parser.add_argument("--samples", type=Number(int, 1, 64, unit="samples"), default=1, metavar="N",
                        help="images per window, each different (test-time dropout; default 1)")
    parser.add_argument("--exact", action="store_true", help="the deterministic image (dropout off, no noise)")
    parser.add_argument("--seed", type=Number(int, 0, 2**31 - 1), default=0, help="seed of the samples (default 0)")
    parser.add_argument("--hop-s", type=Number(float, 0.05, 60.0, unit="seconds"), default=0.5, metavar="S",
                        help="seconds between windows of a sound longer than one second (default 0.5)")
    parser.add_argument("--through", choices=("code", "features"), default="code",
                        help="code: the generator on the sound's code (Sound-to-Imagination, default); features: "
                             "the multimodal feature-GAN path")
    parser.add_argument("--size", type=Number(int, 8, 2048, unit="pixels"), default=128, metavar="PX",
                        help="side of each image (default 128)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch threads (default 1)")


def write_result(result, out: str | os.PathLike, *, size_px: int, hop_s: float) -> str:
    """Write an :class:`bridge.sonify.imagine.ImagineResult` as a PNG sheet, a GIF or a folder of PNGs (by
    ``out``'s suffix); returns the kind."""
    from bridge.io.frames import output_kind, write_folder, write_image_file
    from bridge.sonify.reverse import image_to_pixels

    out = Path(out)
    kind = output_kind(out)
    n_windows, n_samples = result.images.shape[:2]
    if kind == "png" and n_windows * n_samples > MAX_SHEET_IMAGES:
        raise ParameterError(f"{n_windows} windows × {n_samples} samples is more than a sheet holds "
                             f"({MAX_SHEET_IMAGES}); raise --hop-s, lower --samples or write a folder")

    def pixels(window: int, sample: int):
        return image_to_pixels(result.images[window, sample], size_px=size_px)

    if kind == "folder":
        write_folder(out, ((i * n_samples + k, pixels(i, k)) for i in range(n_windows) for k in range(n_samples)),
                     file_name=lambda index: f"window_{index // n_samples:05d}_sample_{index % n_samples:02d}.png")
    elif kind == "png":  # one row per window, labelled with its start: the sheet's rows of `columns` frames
        times = [max(0.0, float(result.start_s[i])) for i in range(n_windows) for _ in range(n_samples)]
        write_image_file(out, kind, [pixels(i, k) for i in range(n_windows) for k in range(n_samples)], times,
                         fps=1.0 / hop_s, columns=n_samples)
    else:
        write_image_file(out, kind, [pixels(i, 0) for i in range(n_windows)],
                         [float(s) for s in result.start_s], fps=1.0 / hop_s, columns=1)
    return kind


def run(args: argparse.Namespace) -> int:
    import torch

    from bridge.io.frames import output_kind
    from bridge.sonify.imagine import imagine_file
    from models.imagination import Imagination

    torch.set_num_threads(args.threads)
    output_kind(Path(args.output))  # a bad output path fails before the models load
    imagination = Imagination.from_preset(args.preset)
    result = imagine_file(args.sound, imagination=imagination, n_samples=args.samples, variety=not args.exact,
                          seed=args.seed, hop_s=args.hop_s, through=args.through)
    kind = write_result(result, args.output, size_px=args.size, hop_s=args.hop_s)
    n_windows, n_samples = result.images.shape[:2]
    print(f"wrote {args.output}: {'a sheet of' if kind == 'png' else 'a GIF of' if kind == 'gif' else 'a folder of'} "
          f"{n_windows} window{'s' if n_windows != 1 else ''} × {n_samples} sample{'s' if n_samples != 1 else ''} for "
          f"{result.duration_s:.2f} s of sound with preset {args.preset}")
    return 0
