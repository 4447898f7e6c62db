"""Image sources for rendering: files, folders, globs and (optionally) video, decoded to arrays.

Inputs expand in the order given; a folder contributes its image (and video) files sorted naturally
(``img2.png`` before ``img10.png``), a glob its matches sorted the same way. Decoding uses Pillow:
EXIF orientation is applied, palette and grey+alpha images become RGBA, 16-bit images stay 16-bit, so
:func:`models.preprocess.prepare_image` gets an array it accepts. Video files need the optional
``imageio`` reader with an FFmpeg/PyAV plugin (``pip install "imgsonic[video]"``); without it a video
input is an :class:`~models.errors.InputError` that says what to install. Animated GIF, PNG and WebP
files are sampled like videos, by their frame durations (Pillow, no extra needed).

Example
-------
>>> from bridge.sources.images import expand_inputs, load_images             # doctest: +SKIP
>>> paths = expand_inputs(["frames/", "extra/*.png"])                  # doctest: +SKIP
>>> items = load_images(paths)                                         # doctest: +SKIP
>>> items[0].name, items[0].pixels.shape                               # doctest: +SKIP
('frames/img1.png', (480, 640, 3))
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import InputError, ParameterError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "ImageItem",
    "natural_sort_key",
    "expand_inputs",
    "read_image",
    "read_frames",
    "load_images",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})

_DEFAULT_FRAME_MS = 100.0  # an animation frame with no (or zero) duration, as browsers play it


@dataclass(frozen=True)
class ImageItem:
    """One decoded image: ``name`` (file path, or ``video.mp4#frame12``) and channel-last ``pixels``."""

    name: str
    pixels: np.ndarray


def natural_sort_key(path: str | os.PathLike) -> list:
    """Sort key that orders digit runs by value: ``a2.png < a10.png``; case-insensitive."""
    parts = re.split(r"(\d+)", str(path).lower())
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts]


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand files, folders (their images, not recursive) and glob patterns into a list of files.

    Raises
    ------
    InputError
        An input does not exist, a folder holds no images, or a glob matches nothing (the message names it).
    """
    if not inputs:
        raise InputError("no inputs given; pass image files, folders or glob patterns")
    paths: list[Path] = []
    for entry in inputs:
        text = str(entry)
        path = Path(text)
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if p.is_file() and _is_media(p)), key=natural_sort_key)
            if not found:
                raise InputError(f"folder {text!r} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            paths += found
        elif path.is_file():
            paths.append(path)
        elif glob.has_magic(text):
            found = sorted((Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file()), key=natural_sort_key)
            if not found:
                raise InputError(f"glob {text!r} matches no files")
            paths += found
        else:
            raise InputError(f"input {text!r} does not exist")
    return paths


def _pil_to_array(image) -> np.ndarray:
    """A loaded PIL image → a uint8/uint16/float32 array that ``prepare_image`` accepts."""
    mode = image.mode
    if mode in ("P", "PA", "LA", "La"):
        image = image.convert("RGBA")
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        image = image.convert("RGB")
    elif mode.startswith("I;16"):
        return np.array(image, dtype=np.uint16)
    elif mode == "I":
        array = np.asarray(image, dtype=np.int64)
        # 32-bit integer PNG/TIFF: usually 16-bit data widened on load.
        return np.clip(array, 0, 65535).astype(np.uint16)
    elif mode == "F":
        array = np.asarray(image, dtype=np.float32)
        low, high = float(array.min()), float(array.max())
        return ((array - low) / (high - low)) if high > low else np.zeros_like(array)
    return np.array(image)  # a copy: PIL's buffer is read-only and torch warns about that


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to a channel-last array (uint8, uint16 or float32 in [0, 1]).

    An animated file gives its first frame. Raises InputError naming the file when it is missing, empty,
    corrupt or not an image.
    """
    return read_frames(path)[0].pixels


def read_frames(path: str | os.PathLike, *, frames_per_second: float | None = None) -> list[ImageItem]:
    """Decode an image file: one item for a still; for an animated GIF, PNG or WebP with
    ``frames_per_second``, the frame showing at every ``1 / frames_per_second`` seconds of its timeline
    (named ``file.gif#frameN``), as a video is sampled. Without ``frames_per_second``: the first frame.

    Raises InputError naming the file when it is missing, empty, corrupt or not an image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"image {str(path)!r} is an empty file")
    try:
        with Image.open(path) as image:
            if frames_per_second is None or not getattr(image, "is_animated", False):
                image.load()
                items = [ImageItem(name=str(path), pixels=_pil_to_array(ImageOps.exif_transpose(image)))]
            else:
                items = _sample_animation(image, name=str(path), frames_per_second=frames_per_second)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise InputError(f"image {str(path)!r} cannot be decoded ({error})") from error
    for item in items:
        if item.pixels.size == 0:
            raise InputError(f"image {str(path)!r} has no pixels")
    return items


def _sample_animation(image, *, name: str, frames_per_second: float) -> list[ImageItem]:
    """The frames of an animation showing at times 0, 1/fps, 2/fps, … of its one play-through, in one pass
    (each frame decoded once). A frame without a duration (or 0, which browsers play as 100 ms) lasts 100 ms.
    """
    period_ms = 1000.0 / frames_per_second
    items: list[ImageItem] = []
    start_ms = 0.0
    for index in range(image.n_frames):
        image.seek(index)
        image.load()  # WebP sets a frame's duration only when it is decoded
        end_ms = start_ms + float(image.info.get("duration") or _DEFAULT_FRAME_MS)
        # sample times k·period in [start, end): this frame shows at each of them
        n_shown = math.ceil(end_ms / period_ms) - math.ceil(start_ms / period_ms)
        if n_shown > 0:
            item = ImageItem(name=f"{name}#frame{index}", pixels=_pil_to_array(image))
            items += [item] * n_shown
        start_ms = end_ms
    return items


def _iter_video(path: Path, *, frames_per_second: float) -> Iterator[ImageItem]:
    try:
        import imageio.v3 as iio
    except ImportError as error:
        raise InputError(
            f"{str(path)!r} is a video; reading video needs imageio with a video plugin: "
            'pip install "imgsonic[video]" (imageio, imageio-ffmpeg)'
        ) from error
    try:
        metadata = iio.immeta(path)
        source_fps = float(metadata.get("fps") or frames_per_second)
        step = max(1, round(source_fps / frames_per_second))
        for index, frame in enumerate(iio.imiter(path)):
            if index % step == 0:
                yield ImageItem(name=f"{path}#frame{index}", pixels=np.asarray(frame))
    except InputError:
        raise
    except Exception as error:  # imageio raises plugin-specific types for unreadable videos
        raise InputError(f"video {str(path)!r} cannot be read ({error}); is imageio-ffmpeg installed?") from error


def load_images(
    paths: Sequence[str | os.PathLike], *, video_frames_per_second: float = 1.0, workers: int = 1
) -> list[ImageItem]:
    """Decode files (from :func:`expand_inputs`) in order; a video, or an animated GIF/PNG/WebP, adds
    ``video_frames_per_second`` frames per second of its running time.

    Image files are decoded by ``workers`` threads at once (Pillow releases the GIL while decoding).
    """
    if video_frames_per_second <= 0:
        raise ParameterError(f"video_frames_per_second={video_frames_per_second!r}; expected > 0")
    paths = [Path(path) for path in paths]
    stills = [path for path in paths if path.suffix.lower() not in VIDEO_EXTENSIONS]

    def read(path: Path) -> list[ImageItem]:
        return read_frames(path, frames_per_second=video_frames_per_second)

    if workers > 1 and len(stills) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            decoded = dict(zip(stills, pool.map(read, stills)))
    else:
        decoded = {}
    items: list[ImageItem] = []
    for path in paths:
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            items += _iter_video(path, frames_per_second=video_frames_per_second)
        else:
            items += decoded[path] if path in decoded else read(path)
    if not items:
        raise InputError("no images found in the inputs")
    return items
