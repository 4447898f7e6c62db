"""PNG figures for the evaluation, drawn with numpy and Pillow only (matplotlib is not a dependency).

Three figures, each a grid of cells with a grey gap between them:

* :func:`image_grid` — images ``(rows, cols, C, H, W)``, e.g. a latent traversal (one row per latent axis);
* :func:`mel_grid` — normalised log-mels ``(rows, cols, n_mels, n_frames)`` as heat maps, low frequencies at
  the bottom;
* :func:`spectrogram_strip` — a row of images above the spectrograms of the sounds they became.

Rows can carry a short text label at the left (Pillow's built-in bitmap font). :func:`save_png` writes
atomically.

Example
-------
>>> import numpy as np
>>> picture = mel_grid(np.random.default_rng(0).random((2, 5, 64, 8)), row_labels=["z0", "z1"])
>>> picture.mode
'RGB'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from models.errors import ParameterError
from synth.files import atomic_output

__all__ = ["colormap", "image_grid", "mel_grid", "spectrogram_strip", "save_png"]

# Anchor colours of a perceptually ordered dark-to-bright map (close to matplotlib's "magma").
_ANCHORS = np.array(
    [
        [0, 0, 4],
        [40, 11, 84],
        [101, 21, 110],
        [159, 42, 99],
        [212, 72, 66],
        [245, 125, 21],
        [250, 193, 39],
        [252, 253, 191],
    ],
    dtype=np.float64,
)
_GAP_GREY = 128
_LABEL_WIDTH = 28


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped) ``(...)`` → RGB ``(..., 3)`` uint8, dark (0) to bright (1)."""
    position = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * (len(_ANCHORS) - 1)
    below = np.minimum(np.floor(position).astype(int), len(_ANCHORS) - 2)
    fraction = (position - below)[..., None]
    rgb = (1.0 - fraction) * _ANCHORS[below] + fraction * _ANCHORS[below + 1]
    return np.round(rgb).astype(np.uint8)


def _image_to_rgb(image: np.ndarray, *, scale: int) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] with C 1 or 3 → ``(H·scale, W·scale, 3)`` uint8, nearest-neighbour enlarged."""
    image = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ParameterError(f"image has shape {image.shape}; expected (C, H, W) with C 1 or 3")
    rgb = np.repeat(image, 3 // image.shape[0], axis=0).transpose(1, 2, 0)
    rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    return np.round(rgb * 255).astype(np.uint8)


def _mel_to_rgb(mel: np.ndarray, *, band_height: int, frame_width: int) -> np.ndarray:
    """``(n_mels, n_frames)`` in [0, 1] → heat map ``(n_mels·band_height, n_frames·frame_width, 3)``, low bands at the bottom."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2:
        raise ParameterError(f"mel has shape {mel.shape}; expected (n_mels, n_frames)")
    rgb = colormap(mel[::-1])
    return np.repeat(np.repeat(rgb, band_height, axis=0), frame_width, axis=1)


def _assemble(cells: list[list[np.ndarray]], *, gap: int, row_labels: Sequence[str] | None) -> Image.Image:
    """Paste equally sized RGB cells ``(h, w, 3)`` into a grid with ``gap`` grey pixels between them."""
    height, width = cells[0][0].shape[:2]
    n_rows, n_cols = len(cells), max(len(row) for row in cells)
    left = _LABEL_WIDTH if row_labels else 0
    canvas = np.full((n_rows * (height + gap) + gap, left + n_cols * (width + gap) + gap, 3), _GAP_GREY, np.uint8)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            if cell.shape[:2] != (height, width):
                raise ParameterError(f"cell ({r}, {c}) is {cell.shape[:2]}; every cell must be {(height, width)}")
            top, start = gap + r * (height + gap), left + gap + c * (width + gap)
            canvas[top : top + height, start : start + width] = cell
    picture = Image.fromarray(canvas, mode="RGB")
    if row_labels:
        draw = ImageDraw.Draw(picture)
        for r, label in enumerate(row_labels):
            draw.text((2, gap + r * (height + gap) + height // 2 - 5), str(label)[:4], fill=(255, 255, 255))
    return picture


def image_grid(
    images: np.ndarray, *, scale: int = 2, gap: int = 2, row_labels: Sequence[str] | None = None
) -> Image.Image:
    """A grid of images ``(rows, cols, C, H, W)`` in [0, 1] (C 1 or 3), each enlarged ``scale`` times."""
    images = np.asarray(images)
    if images.ndim != 5:
        raise ParameterError(f"images has shape {images.shape}; expected (rows, cols, C, H, W)")
    cells = [[_image_to_rgb(image, scale=scale) for image in row] for row in images]
    return _assemble(cells, gap=gap, row_labels=row_labels)


def mel_grid(
    mels: np.ndarray,
    *,
    cell_width: int = 48,
    band_height: int = 2,
    gap: int = 2,
    row_labels: Sequence[str] | None = None,
) -> Image.Image:
    """A grid of normalised log-mels ``(rows, cols, n_mels, n_frames)`` as heat maps.

    Each cell is about ``cell_width`` pixels wide (frames are widened by a whole factor, so a one-frame
    window becomes a solid column of its spectrum) and ``n_mels · band_height`` tall.
    """
    mels = np.asarray(mels)
    if mels.ndim != 4:
        raise ParameterError(f"mels has shape {mels.shape}; expected (rows, cols, n_mels, n_frames)")
    frame_width = max(1, cell_width // mels.shape[-1])
    cells = [[_mel_to_rgb(mel, band_height=band_height, frame_width=frame_width) for mel in row] for row in mels]
    return _assemble(cells, gap=gap, row_labels=row_labels)


def spectrogram_strip(
    images: np.ndarray, mels: np.ndarray, *, cell_width: int = 96, band_height: int = 2, gap: int = 2
) -> Image.Image:
    """Images ``(k, C, H, W)`` in a top row, each above the log-mel ``(k, n_mels, n_frames)`` of its sound."""
    images, mels = np.asarray(images), np.asarray(mels)
    if images.ndim != 4 or mels.ndim != 3 or len(images) != len(mels) or len(images) == 0:
        raise ParameterError(
            f"spectrogram_strip needs k images (k, C, H, W) and k mels (k, n_mels, n_frames); "
            f"got {images.shape} and {mels.shape}"
        )
    frame_width = max(1, cell_width // mels.shape[-1])
    spectrograms = [_mel_to_rgb(mel, band_height=band_height, frame_width=frame_width) for mel in mels]
    width = spectrograms[0].shape[1]
    scale = max(1, width // images.shape[-1])
    pictures = []
    for image in images:
        rgb = _image_to_rgb(image, scale=scale)
        padded = np.full((rgb.shape[0], width, 3), _GAP_GREY, np.uint8)
        offset = (width - rgb.shape[1]) // 2
        padded[:, offset : offset + min(rgb.shape[1], width)] = rgb[:, :width]
        pictures.append(padded)
    height = max(pictures[0].shape[0], spectrograms[0].shape[0])

    def fit(cell: np.ndarray) -> np.ndarray:
        out = np.full((height, width, 3), _GAP_GREY, np.uint8)
        out[height - cell.shape[0] :] = cell
        return out

    return _assemble([[fit(p) for p in pictures], [fit(s) for s in spectrograms]], gap=gap, row_labels=None)


def save_png(picture: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``picture`` as PNG atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as stream:
        picture.save(stream, format="PNG")
    return path
