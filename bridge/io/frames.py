"""Frames of a sound → files: a contact sheet (``OUT.png``), an animated GIF (``OUT.gif``) or a folder of PNGs.

* ``OUT.png``: a contact sheet, frames left to right in rows of ``columns`` (default 10, one second per row
  at 10 fps), each row labelled on the left with the time of its first frame; at most
  :data:`MAX_SHEET_FRAMES` frames (lower ``--fps`` for longer sounds, or write a GIF or a folder).
* ``OUT.gif``: an animated GIF, ``1 / fps`` per frame (GIF delays are whole centiseconds), looping; at most
  :data:`MAX_GIF_FRAMES` frames. Runs of identical frames become one frame that lasts as long as the run,
  up to the longest delay a GIF frame can hold (:data:`MAX_GIF_DELAY_MS`, 655.35 s): a longer unchanged
  stretch (a long silence at a low fps) plays for 655.35 s.
* a folder (an existing empty one, or a name without a suffix): ``frame_00000.png``, ``frame_00001.png``, …,
  any number of frames, written into a hidden temporary folder beside ``OUT``, which is renamed to ``OUT``
  once every frame is written.

Every file appears whole or not at all (:func:`synth.files.atomic_output`); a full disk, a read-only folder
or a missing permission is an :class:`~models.errors.OutputError` naming the output, and nothing is left.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from models.errors import ImgsonicError, OutputError, ParameterError
from synth.files import atomic_output, output_error

__all__ = ["MAX_SHEET_FRAMES", "MAX_GIF_FRAMES", "MAX_GIF_DELAY_MS", "output_kind", "gif_runs", "check_frame_count", "write_folder",
           "write_image_file"]

MAX_SHEET_FRAMES = 1000
MAX_GIF_FRAMES = 3000
MAX_GIF_DELAY_MS = 655_350  # a GIF frame's delay is a 16-bit count of centiseconds
_SHEET_GAP_PX = 2
_SHEET_GAP_GREY = 96
_SHEET_LABEL_WIDTH_PX = 64
_SHEET_LABEL_HEIGHT_PX = 14  # a row is at least this tall, so its label fits however small the frames


def _check_writable(out_path: Path) -> None:
    """OutputError now, before the analysis, when the folder that will hold ``out_path`` cannot be written."""
    folder = out_path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {str(out_path)!r}: folder {str(folder)!r} is read-only or not writable by you")


def output_kind(out_path: Path) -> str:
    """"png", "gif" or "folder" for ``out_path``; ParameterError when it cannot be written as that, OutputError
    when its folder cannot be written."""
    _check_writable(out_path)
    suffix = out_path.suffix.lower()
    if suffix in (".png", ".gif"):
        if out_path.is_dir():
            raise ParameterError(f"output {str(out_path)!r} is a folder; give a file name ending in {suffix}")
        if not out_path.parent.is_dir():
            raise ParameterError(f"output {str(out_path)!r}: folder {str(out_path.parent)!r} does not exist")
        return suffix[1:]
    if out_path.is_dir():
        if any(out_path.iterdir()):
            raise ParameterError(f"output folder {str(out_path)!r} exists and is not empty; give a new or empty folder")
        return "folder"
    if out_path.exists():
        raise ParameterError(f"output {str(out_path)!r} exists and is not a folder; expected OUT.png, OUT.gif or a folder")
    if suffix:
        raise ParameterError(
            f"output {str(out_path)!r} ends in {out_path.suffix!r}; expected .png (a sheet of frames), .gif "
            "(an animation) or a folder name without a suffix (numbered PNG frames)"
        )
    if not out_path.parent.is_dir():
        raise ParameterError(f"output {str(out_path)!r}: folder {str(out_path.parent)!r} does not exist")
    return "folder"


def _sheet(pixels: Sequence[np.ndarray], times_s: Sequence[float], *, columns: int):
    """Frames (uint8, all one shape) in rows of ``columns``, each row labelled with its first frame's time."""
    from PIL import Image, ImageDraw

    height, width = pixels[0].shape[:2]
    mode = "L" if pixels[0].ndim == 2 else "RGB"
    n_rows = -(-len(pixels) // columns)
    row_height = max(height, _SHEET_LABEL_HEIGHT_PX)
    size = (_SHEET_LABEL_WIDTH_PX + min(columns, len(pixels)) * (width + _SHEET_GAP_PX) + _SHEET_GAP_PX,
            n_rows * (row_height + _SHEET_GAP_PX) + _SHEET_GAP_PX)
    sheet = Image.new(mode, size, _SHEET_GAP_GREY if mode == "L" else (_SHEET_GAP_GREY,) * 3)
    draw = ImageDraw.Draw(sheet)
    white = 255 if mode == "L" else (255, 255, 255)
    for index, frame in enumerate(pixels):
        row, column = divmod(index, columns)
        top = _SHEET_GAP_PX + row * (row_height + _SHEET_GAP_PX)
        sheet.paste(Image.fromarray(frame), (_SHEET_LABEL_WIDTH_PX + _SHEET_GAP_PX + column * (width + _SHEET_GAP_PX), top))
        if column == 0:
            draw.text((4, top + (row_height - 11) // 2), f"{times_s[index]:.1f} s", fill=white)
    return sheet


def check_frame_count(kind: str, n_frames: int, *, duration_s: float, fps: float) -> None:
    limit = {"png": MAX_SHEET_FRAMES, "gif": MAX_GIF_FRAMES}.get(kind)
    if limit is not None and n_frames > limit:
        raise ParameterError(
            f"{duration_s:.1f} s at {fps:g} fps is {n_frames} frames; a .{kind} holds at most {limit}: use "
            f"--fps {math.floor(limit / duration_s * 100) / 100:g} or less, or write a folder of frames"
        )


def _frame_name(index: int) -> str:
    return f"frame_{index:05d}.png"


def write_folder(out_path: Path, frames: Iterator[tuple[int, np.ndarray]],
                 *, file_name: Callable[[int], str] = _frame_name) -> None:
    """Write numbered PNGs (``file_name(index)``, default ``frame_%05d.png``) into a hidden temporary folder beside
    ``out_path``, then rename it."""
    from PIL import Image

    temporary = out_path.with_name(f".{out_path.name}.{secrets.token_hex(8)}.tmp")
    try:
        try:
            temporary.mkdir()  # inside the try that removes it, as atomic_output's file
        except OSError as error:
            raise output_error(out_path, error) from error
        for index, pixels in frames:
            Image.fromarray(pixels).save(temporary / file_name(index), format="PNG")
        if out_path.is_dir():
            out_path.rmdir()  # empty (checked before the analysis): os.replace onto a folder needs it gone
        os.replace(temporary, out_path)
    except OSError as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, ImgsonicError):
            raise
        raise output_error(out_path, error) from error
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write_image_file(out_path: Path, kind: str, pixels: list[np.ndarray], times_s: list[float], *, fps: float,
                      columns: int) -> None:
    from PIL import Image

    with atomic_output(out_path) as handle:
        if kind == "png":
            _sheet(pixels, times_s, columns=columns).save(handle, format="PNG")
        else:
            runs = gif_runs(pixels, frame_ms=max(10, round(1000 / fps)))
            images = [Image.fromarray(pixels[first]) for first, _ in runs]
            images[0].save(handle, format="GIF", save_all=True, append_images=images[1:], loop=0,
                           duration=[duration_ms for _, duration_ms in runs])


def gif_runs(pixels: Sequence[np.ndarray], *, frame_ms: int) -> list[tuple[int, int]]:
    """``(first frame, delay in ms)`` per run of identical consecutive frames; delays in whole centiseconds,
    at most :data:`MAX_GIF_DELAY_MS` (Pillow would merge the run itself and overflow the 16-bit delay).

    >>> frames = [np.zeros((2, 2), np.uint8)] * 3 + [np.ones((2, 2), np.uint8)]
    >>> gif_runs(frames, frame_ms=100)
    [(0, 300), (3, 100)]
    """
    frame_cs = max(1, round(frame_ms / 10))
    runs: list[list[int]] = []
    for index, frame in enumerate(pixels):
        if runs and np.array_equal(frame, pixels[runs[-1][0]]):
            runs[-1][1] += 1
        else:
            runs.append([index, 1])
    return [(first, min(count * frame_cs * 10, MAX_GIF_DELAY_MS)) for first, count in runs]
