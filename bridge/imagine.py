"""``imgsonic imagine``: a sound → the images a Sound-to-Imagination preset sees in it (learnt from paired examples).

Unlike ``imgsonic visualize`` (the image ↔ sound models run backwards, trained without pairs), this uses a
preset trained on *paired* sounds and pictures (:mod:`models.imagination`): the sound's one-second windows
(:func:`synth.sound_windows.sound_file_windows`: a short sound is centred in one window, a longer one gives a
window every ``--hop-s`` seconds) → the frozen audio encoder → the conditional generator.

``--samples N`` draws N different images per window (test-time dropout and noise, reproducible with ``--seed``);
``--exact`` gives the one deterministic image instead. ``--through features`` takes the multimodal feature-GAN
path (sound features → image features → image) where the preset has it.

Output (``-o OUT``), each written atomically:

* ``OUT.png``: a sheet, one row per window (labelled with its start time), one column per sample;
* ``OUT.gif``: an animation of the windows (the first sample of each), ``--hop-s`` per frame;
* a folder (new, or empty): ``window_00000_sample_00.png``, ….

Example::

    imgsonic imagine seven.wav -o seven.png --preset spoken-digits --samples 6
    imgsonic imagine scene.flac -o frames/ --preset runs/imagine/imagine/scenes.toml --hop-s 0.25
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import ParameterError

__all__ = ["ImagineResult", "imagine_file", "add_arguments", "run", "DEFAULT_PRESET"]

DEFAULT_PRESET = "spoken-digits"
MAX_SHEET_IMAGES = 2000
_GAP_PX = 2
_LABEL_WIDTH_PX = 64


@dataclass
class ImagineResult:
    """images ``(n_windows, n_samples, C, S, S)`` in [0, 1]; codes ``(n_windows, code_dim)``; start_s ``(n_windows,)``."""

    images: np.ndarray
    codes: np.ndarray
    start_s: np.ndarray
    duration_s: float


def imagine_file(path: str | os.PathLike, *, imagination, n_samples: int = 1, variety: bool = True, seed: int = 0,
                 hop_s: float = 0.5, through: str = "code") -> ImagineResult:
    """The images ``imagination`` (a :class:`models.imagination.Imagination`) sees in the sound file ``path``."""
    import torch

    from synth.sound_windows import sound_file_windows
    from synth.spectral import SpectralConfig

    if through not in ("code", "features"):
        raise ParameterError(f"through={through!r}; expected 'code' or 'features'")
    config = SpectralConfig.from_dict(imagination.spectral_config)
    windows = sound_file_windows(path, config=config, window_frames=imagination.window_frames, hop_s=hop_s)
    with torch.inference_mode():
        codes = imagination.encode(windows.mel)
        if through == "code":
            images = imagination.imagine(windows.mel, n_samples=n_samples, variety=variety, seed=seed)
        else:
            images = torch.stack([imagination.imagine_through_features(windows.mel, variety=variety, seed=seed + k)
                                  for k in range(n_samples)], dim=1)
    return ImagineResult(images=images.numpy(), codes=codes.numpy(), start_s=windows.start_s,
                         duration_s=windows.duration_s)


def _pixels(image: np.ndarray, size_px: int) -> np.ndarray:
    from bridge.visualize import image_to_pixels

    return image_to_pixels(image, size_px=size_px)


def _sheet(result: ImagineResult, *, size_px: int):
    from PIL import Image, ImageDraw

    n_rows, n_cols = result.images.shape[:2]
    first = _pixels(result.images[0, 0], size_px)
    mode = "L" if first.ndim == 2 else "RGB"
    row_height = max(size_px, 14)
    sheet = Image.new(mode, (_LABEL_WIDTH_PX + n_cols * (size_px + _GAP_PX) + _GAP_PX,
                             n_rows * (row_height + _GAP_PX) + _GAP_PX), 96 if mode == "L" else (96, 96, 96))
    draw = ImageDraw.Draw(sheet)
    for row in range(n_rows):
        top = _GAP_PX + row * (row_height + _GAP_PX)
        draw.text((4, top + (row_height - 11) // 2), f"{max(0.0, result.start_s[row]):.2f} s",
                  fill=255 if mode == "L" else (255, 255, 255))
        for column in range(n_cols):
            sheet.paste(Image.fromarray(_pixels(result.images[row, column], size_px)),
                        (_LABEL_WIDTH_PX + _GAP_PX + column * (size_px + _GAP_PX), top))
    return sheet


def _output_kind(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix in (".png", ".gif"):
        if out.is_dir() or not out.parent.is_dir():
            raise ParameterError(f"output {str(out)!r}: expected a file name in an existing folder")
        return suffix[1:]
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise ParameterError(f"output {str(out)!r} exists and is not an empty folder; give OUT.png, OUT.gif or a new folder")
    if suffix:
        raise ParameterError(f"output {str(out)!r} ends in {out.suffix!r}; expected .png, .gif or a folder name")
    if not out.parent.is_dir():
        raise ParameterError(f"output {str(out)!r}: folder {str(out.parent)!r} does not exist")
    return "folder"


def write_result(result: ImagineResult, out: str | os.PathLike, *, size_px: int, hop_s: float) -> str:
    """Write ``result`` as a PNG sheet, a GIF or a folder of PNGs (by ``out``'s suffix); returns the kind."""
    from PIL import Image

    from synth.files import atomic_output

    out = Path(out)
    kind = _output_kind(out)
    n_windows, n_samples = result.images.shape[:2]
    if kind == "png":
        if n_windows * n_samples > MAX_SHEET_IMAGES:
            raise ParameterError(f"{n_windows} windows × {n_samples} samples is more than a sheet holds "
                                 f"({MAX_SHEET_IMAGES}); raise --hop-s, lower --samples or write a folder")
        with atomic_output(out) as handle:
            _sheet(result, size_px=size_px).save(handle, format="PNG")
    elif kind == "gif":
        frames = [Image.fromarray(_pixels(result.images[i, 0], size_px)) for i in range(n_windows)]
        with atomic_output(out) as handle:
            frames[0].save(handle, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                           duration=max(20, round(1000 * hop_s)))
    else:
        temporary = out.with_name(f".{out.name}.{secrets.token_hex(8)}.tmp")
        temporary.mkdir()
        try:
            for i in range(n_windows):
                for k in range(n_samples):
                    Image.fromarray(_pixels(result.images[i, k], size_px)).save(
                        temporary / f"window_{i:05d}_sample_{k:02d}.png", format="PNG")
            if out.is_dir():
                out.rmdir()
            os.replace(temporary, out)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
    return kind


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; expected {low}…{high}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected an integer in {low}…{high}")
        return value
    return parse


def _float_in(low: float, high: float):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number; expected {low:g}…{high:g}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{value:g} is out of range; expected a number in {low:g}…{high:g}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sound", metavar="SOUND", help="a sound file (wav, flac, ogg, mp3, aif, …), any rate and length")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="OUT.png (rows: windows, columns: samples), OUT.gif (an animation) or a folder of PNGs")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"sound → image preset (default {DEFAULT_PRESET}; "
                        "see models/presets/imagine/), or the .toml that imgsonic train s2i wrote")
    parser.add_argument("--samples", type=_int_in(1, 64), default=1, metavar="N",
                        help="images per window, each different (test-time dropout; default 1)")
    parser.add_argument("--exact", action="store_true", help="the deterministic image (dropout off, no noise)")
    parser.add_argument("--seed", type=_int_in(0, 2**31 - 1), default=0, help="seed of the samples (default 0)")
    parser.add_argument("--hop-s", type=_float_in(0.05, 60.0), default=0.5, metavar="S",
                        help="seconds between windows of a sound longer than one second (default 0.5)")
    parser.add_argument("--through", choices=("code", "features"), default="code",
                        help="code: the generator on the sound's code (Sound-to-Imagination, default); features: "
                             "the multimodal feature-GAN path")
    parser.add_argument("--size", type=_int_in(8, 2048), default=128, metavar="PX", help="side of each image (default 128)")
    parser.add_argument("--threads", type=_int_in(1, 256), default=1, metavar="N", help="torch threads (default 1)")


def run(args: argparse.Namespace) -> int:
    import torch

    from models.imagination import Imagination

    torch.set_num_threads(args.threads)
    _output_kind(Path(args.output))  # a bad output path fails before the models load
    imagination = Imagination.from_preset(args.preset)
    result = imagine_file(args.sound, imagination=imagination, n_samples=args.samples, variety=not args.exact,
                          seed=args.seed, hop_s=args.hop_s, through=args.through)
    kind = write_result(result, args.output, size_px=args.size, hop_s=args.hop_s)
    n_windows, n_samples = result.images.shape[:2]
    print(f"wrote {args.output}: {'a sheet of' if kind == 'png' else 'a GIF of' if kind == 'gif' else 'a folder of'} "
          f"{n_windows} window{'s' if n_windows != 1 else ''} × {n_samples} sample{'s' if n_samples != 1 else ''} for "
          f"{result.duration_s:.2f} s of sound with preset {args.preset}")
    return 0
