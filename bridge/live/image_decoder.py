"""Decoding image files for the live engine at the size the models need, bounded in pixels, memory and time.

:func:`decode_bounded` is the offline reader (:func:`bridge.sources.images.read_image`: the size cap read
from the header before a pixel is decoded, a JPEG decoded at 1/2, 1/4 or 1/8 scale by the codec, anything
else box-reduced in strips by the largest whole factor that leaves at least ``max_side`` pixels a side,
EXIF orientation applied) keeping only the centre square, which is all the models read
(:func:`models.preprocess.prepare_image` crops it too) and all the loader's cache holds. So a 169-megapixel
PNG becomes a 260 × 260 array, and an image under ``2 · max_side`` pixels a side gives the models exactly
what :func:`~bridge.sources.images.read_image` gives them.

Large files are decoded in a separate process (:func:`serve`, run as ``python -m bridge.live.image_decoder``
by :class:`bridge.live.image_loader.DecoderProcess`): a PNG must be inflated whole, 7 s and 0.7 GB for 169
megapixels here, and in the engine's process that would compete with the audio callback for Python's GIL
and for memory. The process runs at idle priority (Linux ``SCHED_IDLE``: only on CPU time nothing else
wants) with an address-space limit, and is killed when a decode takes too long.

Protocol (binary pipes): a request is one JSON line ``{"path", "max_side", "max_pixels"}``; the answer is
one JSON line, ``{"shape": [...], "dtype": "uint8"}`` followed by the array's bytes, or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np

from bridge.sources.images import ImageLimits, read_image
from models.errors import InputError

__all__ = ["decode_bounded", "header_pixels", "serve"]


def header_pixels(path: str | os.PathLike) -> int:
    """Width × height from the file's header (nothing decoded); InputError when it is not a readable image."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller checks the size itself
            with Image.open(path) as image:
                return image.width * image.height
    except Image.DecompressionBombError as error:
        raise InputError(f"image {str(path)!r} is too large to open ({error})") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(f"image {str(path)!r} cannot be decoded ({error})") from error


def decode_bounded(path: str | os.PathLike, *, max_side: int, max_pixels: int) -> np.ndarray:
    """Decode the centre square of an image file, reduced to fewer than ``2 · max_side`` pixels a side.

    Returns the centre square of what :func:`bridge.sources.images.read_image` gives with
    ``decode_side=max_side``. Raises InputError naming the file when it is missing, empty, not an image, or
    has more than ``max_pixels`` pixels (said in megapixels, with the flag that raises the limit).
    """
    limits = ImageLimits(max_pixels=max_pixels, pixels_flag="imgsonic live --max-image-megapixels")
    pixels = read_image(Path(path), limits=limits, decode_side=max_side)
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(pixels[top:top + side, left:left + side])


def _answer(stdout: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stdout.write(json.dumps(header).encode() + b"\n" + payload)
    stdout.flush()


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer decode requests until ``stdin`` closes (see the module docstring for the protocol)."""
    for line in stdin:
        try:
            request = json.loads(line)
            pixels = np.ascontiguousarray(decode_bounded(request["path"], max_side=int(request["max_side"]),
                                                         max_pixels=int(request["max_pixels"])))
        except InputError as error:
            _answer(stdout, {"error": str(error)})
            continue
        except MemoryError:
            _answer(stdout, {"error": f"image {request.get('path')!r} needs more memory than the decoder may use"})
            continue
        except Exception as error:  # noqa: BLE001 — an odd file must not end the decoder
            reason = f"{type(error).__name__}: {error}"
            _answer(stdout, {"error": f"image {request.get('path')!r} cannot be decoded ({reason})"})
            continue
        _answer(stdout, {"shape": list(pixels.shape), "dtype": pixels.dtype.str}, pixels.tobytes())


def main(argv: list[str]) -> int:
    """``python -m bridge.live.image_decoder MEMORY_MB``: idle priority, limit memory, serve stdin/stdout."""
    import resource
    import warnings

    from PIL import Image

    memory_bytes = int(argv[0]) * 2**20 if argv else None
    try:  # the audio comes first: this process runs only on CPU time nothing else wants
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux
        os.nice(19)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    Image.MAX_IMAGE_PIXELS = None  # decode_bounded checks the size itself, before decoding
    warnings.simplefilter("ignore")
    serve(sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
