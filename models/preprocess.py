"""Bring any decoded image to an image model's format: ``(channels, size, size)`` floats in [0, 1].

File decoding (PIL, palettes, video frames) happens in the callers; they hand over an array. This
module only uses torch, so it accepts numpy arrays without importing numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from models.errors import InputError, ParameterError

__all__ = ["prepare_image", "prepare_images"]

_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")
_INTEGER_SCALES = {torch.uint8: 255.0, torch.uint16: 65535.0}
# Float images may overshoot [0, 1] a little after resampling or colour conversion; further out
# they are almost always 0–255 values in a float array, which clamping would turn white.
_FLOAT_TOLERANCE = 1e-3


def _as_tensor(image: Any) -> Tensor:
    if isinstance(image, Tensor):
        return image.detach().cpu()
    if not hasattr(image, "__array_interface__") and not hasattr(image, "__array__"):
        raise InputError(f"image is a {type(image).__name__}; expected a numpy array or a torch tensor")
    if not getattr(getattr(image, "flags", None), "writeable", True):
        image = image.copy()  # a read-only array (e.g. from PIL): torch would warn about sharing it
    try:
        return torch.as_tensor(image)
    except ValueError:  # negative strides (a flipped view): torch needs a copy
        return torch.as_tensor(image.copy())
    except TypeError as error:
        raise InputError(f"image has an unsupported element type ({error})") from error


def _to_unit_float(image: Tensor) -> Tensor:
    """Any accepted dtype → float32 in [0, 1]."""
    if image.dtype == torch.bool:
        return image.to(torch.float32)
    if image.dtype in _INTEGER_SCALES:
        return image.to(torch.float32) / _INTEGER_SCALES[image.dtype]
    if not image.is_floating_point():
        raise InputError(
            f"image has dtype {image.dtype}; expected uint8 (0–255), uint16 (0–65535), bool or float (0–1)"
        )
    image = image.to(torch.float32)
    if not torch.isfinite(image).all():
        raise InputError("image contains NaN or infinite values")
    low, high = image.min().item(), image.max().item()
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        hint = " (looks like 0–255 values: pass uint8 or divide by 255)" if high <= 255 and low >= 0 else ""
        raise InputError(f"float image has values in [{low:g}, {high:g}]; expected [0, 1]{hint}")
    return image.clamp(0.0, 1.0)


def prepare_image(image: Any, *, size: int, channels: int) -> Tensor:
    """Convert one image to a model input: ``(channels, size, size)`` float32 in [0, 1].

    Steps: scale to [0, 1] by dtype; composite RGBA over black (colour × alpha); convert grey ↔ RGB
    (luma ``0.299 R + 0.587 G + 0.114 B``, or grey copied to three channels); crop the centre square;
    resize (area averaging when shrinking, bilinear when enlarging).

    Parameters
    ----------
    image : numpy array or torch tensor, channel-last: ``(H, W)``, ``(H, W, 1)`` grey, ``(H, W, 3)`` RGB or
        ``(H, W, 4)`` RGBA, any ``H, W ≥ 1``. dtype uint8 (0–255), uint16 (0–65535), bool, or float (0–1).
        Palette, grey+alpha and other modes must be converted to one of these by the file decoder.
    size : side of the output square in pixels, ≥ 1.
    channels : 1 (grey) or 3 (RGB).

    Returns
    -------
    Tensor of shape ``(channels, size, size)``, float32, values in [0, 1].

    Raises
    ------
    InputError if the image is empty, not 2-D/3-D, has 2 or more than 4 channels, an unsupported dtype,
    NaN/inf, or float values outside [0, 1]. ParameterError for a bad ``size`` or ``channels``.

    Examples
    --------
    >>> import numpy as np
    >>> rgba = np.zeros((7, 13, 4), dtype=np.uint8)
    >>> tuple(prepare_image(rgba, size=32, channels=1).shape)
    (1, 32, 32)
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ParameterError(f"size={size!r}; expected an int >= 1")
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ParameterError(f"channels={channels!r}; expected 1 (grey) or 3 (RGB)")

    pixels = _as_tensor(image)
    shape = tuple(pixels.shape)
    if pixels.ndim == 2:
        pixels = pixels.unsqueeze(-1)
    elif pixels.ndim != 3:
        raise InputError(f"image has shape {shape}; expected (H, W) or (H, W, C) with C in 1, 3, 4")
    if pixels.numel() == 0:
        raise InputError(f"image is empty (shape {shape})")
    n_channels = pixels.shape[-1]
    if n_channels not in (1, 3, 4):
        hint = ""
        if pixels.shape[0] in (1, 3, 4) and n_channels > 4:
            hint = " — this looks channel-first; move the channels last, e.g. image.permute(1, 2, 0)"
        elif n_channels == 2:
            hint = " — grey+alpha: convert to RGBA first"
        raise InputError(f"image has {n_channels} channels (shape {shape}); expected 1, 3 or 4{hint}")

    pixels = _to_unit_float(pixels)
    if n_channels == 4:
        pixels = pixels[..., :3] * pixels[..., 3:]
    if channels == 1 and pixels.shape[-1] == 3:
        pixels = pixels @ torch.tensor(_LUMA_WEIGHTS).unsqueeze(-1)
    elif channels == 3 and pixels.shape[-1] == 1:
        pixels = pixels.expand(-1, -1, 3)

    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = pixels[top : top + side, left : left + side].permute(2, 0, 1).unsqueeze(0)
    if side > size:
        square = F.interpolate(square, size=(size, size), mode="area")
    elif side < size:
        square = F.interpolate(square, size=(size, size), mode="bilinear", align_corners=False)
    return square[0].clamp(0.0, 1.0).contiguous()


def prepare_images(images: Sequence[Any], *, size: int, channels: int) -> Tensor:
    """Apply :func:`prepare_image` to each image and stack: ``(B, channels, size, size)``.

    An InputError names the index of the offending image.
    """
    if len(images) == 0:
        raise InputError("no images given")
    prepared = []
    for index, image in enumerate(images):
        try:
            prepared.append(prepare_image(image, size=size, channels=channels))
        except InputError as error:
            raise InputError(f"image {index}: {error}") from error
    return torch.stack(prepared)
