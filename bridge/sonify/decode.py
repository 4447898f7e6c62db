"""Audio latents per mel frame → the mel spectrogram: frame ``m`` is column ``m % W`` of its latent's window.

The same tiling as :meth:`models.pipeline.SonificationModels.decode_audio` while an image holds, and a morph
through the audio latent space while images crossfade.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from models.pipeline import SonificationModels

__all__ = ["decode_frames", "padded_batch", "MIN_BATCH"]

_DECODE_BATCH = 4096
# Fewer rows than this take other BLAS kernels (gemv) whose rounding differs from a larger batch's; padding
# small batches makes every latent's window the same whatever batch it is decoded in, so a render decoded
# piece by piece equals one decoded whole (measured on the three presets: rows of batches of 1–3 differ,
# 4 and more agree).
MIN_BATCH = 8


def decode_frames(models: SonificationModels, z_aud_frames: np.ndarray, *, first_frame: int = 0) -> torch.Tensor:
    """Per-frame audio latents ``(T, Da)`` → mel ``(n_mels, T)``: frame ``m`` is column ``m % W`` of its window.

    ``first_frame`` is the index of the first row's frame (the live voice decodes a few frames at a time).
    Call under ``torch.inference_mode()``.
    """
    import torch

    unique, inverse = np.unique(z_aud_frames.astype(np.float32), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    windows = []
    for start in range(0, len(unique), _DECODE_BATCH):
        rows = torch.from_numpy(unique[start : start + _DECODE_BATCH])
        windows.append(padded_batch(models.decode_audio, rows))
    windows = torch.cat(windows)  # (U, n_mels, W)
    columns = (first_frame + torch.arange(len(inverse))) % models.window_frames
    return windows[torch.from_numpy(inverse), :, columns].T.contiguous()


def padded_batch(model, rows: torch.Tensor) -> torch.Tensor:
    """``model(rows)`` with a batch of fewer than :data:`MIN_BATCH` rows padded by repeating them, so each row's
    result does not depend on how many rows came with it."""
    import torch

    n_rows = len(rows)
    if n_rows >= MIN_BATCH:
        return model(rows)
    return model(rows[torch.arange(MIN_BATCH) % n_rows])[:n_rows]
