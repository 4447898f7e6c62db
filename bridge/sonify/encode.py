"""Images → model inputs, descriptors and latents: the first step of every sonification, offline and live."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from bridge.sources.descriptors import describe_images
from bridge.sources.images import ImageItem
from models.errors import InputError

if TYPE_CHECKING:
    import torch

    from models.pipeline import SonificationModels

__all__ = ["prepare_input", "prepare_inputs"]

_DESCRIPTOR_SIZE = 64  # descriptors are measured at this size, whatever the image model reads


def prepare_input(item: ImageItem, models: SonificationModels) -> tuple[torch.Tensor, torch.Tensor]:
    """One image → its model input ``(C, S, S)`` and the 64 px RGB its descriptors are measured on ``(3, 64, 64)``
    (the same tensor when the model reads 64 px RGB); InputError names the image."""
    from models.preprocess import prepare_image

    # the descriptors see the model's input when it is what they need (the default preset's): half the work
    same = models.image_size == _DESCRIPTOR_SIZE and models.image_channels == 3
    try:
        model_input = prepare_image(item.pixels, size=models.image_size, channels=models.image_channels)
        return model_input, model_input if same else prepare_image(item.pixels, size=_DESCRIPTOR_SIZE, channels=3)
    except InputError as error:
        raise InputError(f"image {item.name!r}: {error}") from error


def prepare_inputs(items: Sequence[ImageItem], models: SonificationModels) -> tuple[torch.Tensor, np.ndarray]:
    """Model inputs ``(n, C, S, S)`` and descriptors ``(n, len(DESCRIPTORS))``; InputError names the image."""
    import torch

    inputs, rgbs = zip(*(prepare_input(item, models) for item in items))
    return torch.stack(inputs), describe_images(torch.stack(rgbs).numpy())
