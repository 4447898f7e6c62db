"""Image sources for rendering: files, folders, globs and (optionally) video, decoded to arrays.

Inputs expand in the order given; a folder contributes its image (and video) files sorted naturally
(``img2.png`` before ``img10.png``), a glob its matches sorted the same way. Decoding uses Pillow:
EXIF orientation is applied, palette and grey+alpha images become RGBA, 16-bit images stay 16-bit, so
:func:`models.preprocess.prepare_image` gets an array it accepts. Video files need the optional
``imageio`` reader with an FFmpeg/PyAV plugin (``pip install "imgsonic[video]"``); without it a video
input is an :class:`~models.errors.InputError` that says what to install. Animated GIF, PNG and WebP
files are sampled like videos, by their frame durations (Pillow, no extra needed).

Bounded memory, whatever the files hold:

* Images are decoded near the size the models read, not at full size: a JPEG is decoded at 1/2, 1/4 or
  1/8 scale by its DCT (Pillow's ``draft``), any other image is box-averaged by a whole factor (Pillow's
  ``reduce``) before it is converted, so a frame kept in memory has a short side of
  :data:`DECODE_SIDE` … 2·:data:`DECODE_SIDE` px (or its own size when smaller). The models then area-average
  it to their 32–64 px as before; an image smaller than 2·:data:`DECODE_SIDE` px is read exactly as before,
  a larger one gives a model input within about 1 % of its full-size decode (its box averages and the
  model's do not share bin edges).
* :class:`ImageLimits` caps the pixels of an image (the header is read before any pixel is decoded), the
  frames of one animation or video, and the images one render takes; each cap is an InputError naming the
  file, the figure and the ``imgsonic render`` flag that raises it.
* :func:`iter_images` yields images one by one, decoding at most ``2 · workers`` files ahead, so a render
  holds a few decoded images at a time however many it is given.

Example
-------
>>> from bridge.sources.images import expand_inputs, load_images             # doctest: +SKIP
>>> paths = expand_inputs(["frames/", "extra/*.png"])                  # doctest: +SKIP
>>> items = load_images(paths)                                         # doctest: +SKIP
>>> items[0].name, items[0].pixels.shape                               # doctest: +SKIP
('frames/img1.png', (480, 640, 3))
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.errors import InputError, ParameterError

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DECODE_SIDE",
    "ImageItem",
    "ImageLimits",
    "natural_sort_key",
    "expand_inputs",
    "read_image",
    "read_frames",
    "iter_images",
    "load_images",
]

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"})

_DEFAULT_FRAME_MS = 100.0  # an animation frame with no (or zero) duration, as browsers play it

# Images larger than this decode one at a time (the others in parallel): full-size decodes do not add up.
_PARALLEL_PIXELS = 16_000_000
_LARGE_DECODE = threading.Lock()

# Decoded images keep a short side of at least this many pixels: 16× the largest model input (64 px). The
# models' area averaging then sees nearly what it saw at full size: on a photo-like 3000 × 2000 image the
# model input moved by at most 0.012 (of 1) per pixel (tests/test_robustness.py); decoding is one factor of
# it smaller, 4–64× less memory and time for 2–8k images.
DECODE_SIDE = 1024


@dataclass(frozen=True)
class ImageLimits:
    """Caps on what the image sources decode; each is a flag of ``imgsonic render`` (named in the errors).

    max_pixels : pixels of one image or frame (width × height), from its header, before decoding.
        The default, 120 megapixels, takes an 11 000 × 11 000 image; a PNG of that size needs 0.5–0.6 GB
        while it is decoded (4–5 bytes a pixel; a JPEG far less, decoded at 1/8 scale), and images over
        :data:`_PARALLEL_PIXELS` decode one at a time, so a render stays within 1.5 GB.
    max_frames : frames one animation or video may have (all are decoded in turn, as GIF and video frames
        build on each other).
    max_images : images one render may take (stills, plus the frames sampled from animations and videos).
    pixels_flag : the flag the ``max_pixels`` error tells the user to pass (``imgsonic live`` has its own).
    """

    max_pixels: int = 120_000_000
    max_frames: int = 100_000
    max_images: int = 1_000_000
    pixels_flag: str = "--max-megapixels"

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_frames", "max_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(f"{name}={value!r}; expected an integer ≥ 1")

    def check_pixels(self, name: str, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise InputError(
                f"image {name!r} is {width}×{height} = {width * height / 1e6:.1f} megapixels, over the cap of "
                f"{self.max_pixels / 1e6:g}; pass {self.pixels_flag} {math.ceil(width * height / 1e6)} to read it"
            )

    def check_frames(self, name: str, n_frames: int) -> None:
        if n_frames > self.max_frames:
            raise InputError(f"{name!r} has {n_frames} frames, over the cap of {self.max_frames}; pass --max-frames "
                             f"{n_frames} to read it")


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


def read_image(path: str | os.PathLike, *, limits: ImageLimits | None = None,
               decode_side: int | None = DECODE_SIDE) -> np.ndarray:
    """Decode one image file to a channel-last array (uint8, uint16 or float32 in [0, 1]).

    An animated file gives its first frame. The image is decoded with a short side of ``decode_side`` …
    2·``decode_side`` px when it is larger (None: at full size). Raises InputError naming the file when it
    is missing, empty, corrupt, not an image, or over ``limits.max_pixels``.
    """
    return next(iter_frames(path, limits=limits, decode_side=decode_side)).pixels


def read_frames(path: str | os.PathLike, *, frames_per_second: float | None = None, limits: ImageLimits | None = None,
                decode_side: int | None = DECODE_SIDE) -> list[ImageItem]:
    """All of :func:`iter_frames` as a list."""
    return list(iter_frames(path, frames_per_second=frames_per_second, limits=limits, decode_side=decode_side))


def iter_frames(path: str | os.PathLike, *, frames_per_second: float | None = None, limits: ImageLimits | None = None,
                decode_side: int | None = DECODE_SIDE) -> Iterator[ImageItem]:
    """Decode an image file: one item for a still; for an animated GIF, PNG or WebP with
    ``frames_per_second``, the frame showing at every ``1 / frames_per_second`` seconds of its timeline
    (named ``file.gif#frameN``; a frame shown at several of those times is the same item each time), as a
    video is sampled. Without ``frames_per_second``: the first frame. Frames are decoded one at a time.

    Raises InputError naming the file when it is missing, empty, corrupt, not an image, or over a cap of
    ``limits`` (:class:`ImageLimits`).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    limits = limits or ImageLimits()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise InputError(f"image {str(path)!r} is an empty file")
    # ImageLimits.max_pixels replaces Pillow's own decompression-bomb check, which a raised cap must pass
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as image:
            limits.check_pixels(str(path), *image.size)
            large = image.size[0] * image.size[1] > _PARALLEL_PIXELS
            if frames_per_second is None or not getattr(image, "is_animated", False):
                with _LARGE_DECODE if large else contextlib.nullcontext():
                    pixels = _pil_to_array(ImageOps.exif_transpose(_decoded(image, decode_side=decode_side, draft=True)))
                yield _checked(ImageItem(name=str(path), pixels=pixels))
            else:
                limits.check_frames(str(path), image.n_frames)
                yield from _sample_animation(image, name=str(path), frames_per_second=frames_per_second,
                                             decode_side=decode_side)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        raise InputError(f"image {str(path)!r} cannot be decoded ({error})") from error


def _checked(item: ImageItem) -> ImageItem:
    if item.pixels.size == 0:
        raise InputError(f"image {item.name.split('#')[0]!r} has no pixels")
    return item


def _decoded(image, *, decode_side: int | None, draft: bool):
    """The current frame of ``image``, loaded, with its short side reduced to ``decode_side`` … 2·``decode_side``
    px when it is larger: a JPEG by DCT scaling while it decodes (``draft``), anything else by whole-factor box
    averaging right after (``reduce``), in strips of about 4 MB, so that no full-size copy is made (Pillow's
    ``reduce`` of a whole RGBA image copies it to premultiply the alpha; a palette image would be converted)."""
    if decode_side is not None and draft and image.format == "JPEG":
        factor = min(image.size) // decode_side
        if factor >= 2:
            image.draft(image.mode, (image.size[0] // factor, image.size[1] // factor))
    image.load()
    factor = min(image.size) // decode_side if decode_side is not None else 1
    if factor < 2:
        return image
    from PIL import Image

    colours = {"P": "RGBA", "PA": "RGBA", "1": "L"}.get(image.mode)  # palette indices cannot be averaged
    width, height = image.size
    strip = factor * max(1, (4 << 20) // (width * 4 * factor))  # rows per strip: whole blocks, ~4 MB
    reduced = None
    for top in range(0, height, strip):
        part = image.crop((0, top, width, min(top + strip, height)))
        if colours:
            part = part.convert(colours)
        try:
            part = part.reduce(factor)
        except (ValueError, NotImplementedError):  # a mode reduce does not take (I;16B, …): keep it whole
            return image
        if reduced is None:
            reduced = Image.new(part.mode, (-(-width // factor), -(-height // factor)))
        reduced.paste(part, (0, top // factor))
    return reduced


def _sample_animation(image, *, name: str, frames_per_second: float, decode_side: int | None) -> Iterator[ImageItem]:
    """The frames of an animation showing at times 0, 1/fps, 2/fps, … of its one play-through, in one pass
    (each frame decoded once). A frame without a duration (or 0, which browsers play as 100 ms) lasts 100 ms.
    """
    period_ms = 1000.0 / frames_per_second
    start_ms = 0.0
    for index in range(image.n_frames):
        image.seek(index)
        image.load()  # WebP sets a frame's duration only when it is decoded
        end_ms = start_ms + float(image.info.get("duration") or _DEFAULT_FRAME_MS)
        # sample times k·period in [start, end): this frame shows at each of them
        n_shown = math.ceil(end_ms / period_ms) - math.ceil(start_ms / period_ms)
        if n_shown > 0:
            item = _checked(ImageItem(name=f"{name}#frame{index}",
                                      pixels=_pil_to_array(_decoded(image, decode_side=decode_side, draft=False))))
            for _ in range(n_shown):
                yield item
        start_ms = end_ms


def _iter_video(path: Path, *, frames_per_second: float, limits: ImageLimits) -> Iterator[ImageItem]:
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
            if index >= limits.max_frames:
                limits.check_frames(str(path), index + 1)
            if index % step == 0:
                frame = np.asarray(frame)
                limits.check_pixels(str(path), frame.shape[1], frame.shape[0])
                yield ImageItem(name=f"{path}#frame{index}", pixels=frame)
    except InputError:
        raise
    except Exception as error:  # imageio raises plugin-specific types for unreadable videos
        raise InputError(f"video {str(path)!r} cannot be read ({error}); is imageio-ffmpeg installed?") from error


def iter_images(
    paths: Sequence[str | os.PathLike], *, video_frames_per_second: float = 1.0, workers: int = 1,
    limits: ImageLimits | None = None, decode_side: int | None = DECODE_SIDE,
) -> Iterator[ImageItem]:
    """Decode files (from :func:`expand_inputs`) in order, one image at a time; a video, or an animated
    GIF/PNG/WebP, adds ``video_frames_per_second`` frames per second of its running time.

    ``workers`` threads decode the next still images ahead (Pillow releases the GIL while decoding), at most
    ``2 · workers`` files ahead: memory does not grow with the number of files. Animations and videos are
    decoded frame by frame as they are consumed. InputError past ``limits.max_images`` images.
    """
    from PIL import Image

    if video_frames_per_second <= 0:
        raise ParameterError(f"video_frames_per_second={video_frames_per_second!r}; expected > 0")
    limits = limits or ImageLimits()
    paths = [Path(path) for path in paths]

    def still_or_none(path: Path) -> ImageItem | None:
        """A still image decoded, or None for an animation (decoded lazily by the consumer)."""
        try:
            with Image.open(path) as image:
                if getattr(image, "is_animated", False):
                    return None
        except Exception:  # noqa: BLE001 — iter_frames reports a bad file with its own message
            pass
        return next(iter_frames(path, limits=limits, decode_side=decode_side))

    def frames_of(path: Path) -> Iterator[ImageItem]:
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            return _iter_video(path, frames_per_second=video_frames_per_second, limits=limits)
        return iter_frames(path, frames_per_second=video_frames_per_second, limits=limits, decode_side=decode_side)

    n_images = 0
    pool = None
    if workers > 1 and len(paths) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=workers)
    try:
        ahead: dict[int, object] = {}
        for index, path in enumerate(paths):
            if pool is not None:  # keep the next 2·workers stills decoding
                for later in range(index, min(index + 2 * workers, len(paths))):
                    if later not in ahead and paths[later].suffix.lower() not in VIDEO_EXTENSIONS:
                        ahead[later] = pool.submit(still_or_none, paths[later])
            future = ahead.pop(index, None)
            still = future.result() if future is not None else None
            for item in [still] if still is not None else frames_of(path):
                n_images += 1
                if n_images > limits.max_images:
                    raise InputError(f"the inputs hold more than {limits.max_images} images (stills and sampled "
                                     f"frames); pass --max-images to render more")
                yield item
        if n_images == 0:
            raise InputError("no images found in the inputs")
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def load_images(
    paths: Sequence[str | os.PathLike], *, video_frames_per_second: float = 1.0, workers: int = 1,
    limits: ImageLimits | None = None,
) -> list[ImageItem]:
    """All of :func:`iter_images` as a list (for a few images; a render streams them)."""
    return list(iter_images(paths, video_frames_per_second=video_frames_per_second, workers=workers, limits=limits))
