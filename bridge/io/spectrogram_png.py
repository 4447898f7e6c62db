"""A picture of a render: the images side by side above the mel spectrogram of the sound, aligned in time.

``imgsonic demo`` writes it as ``demo.png``.
"""

from __future__ import annotations

import os

import numpy as np

from synth.files import atomic_output

__all__ = ["spectrogram_strip", "save_png"]

# Anchors of a dark-to-light perceptual colour map (after matplotlib's "magma").
_COLOURS = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                    dtype=np.float64)


def _colour_map(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] → uint8 RGB through :data:`_COLOURS`."""
    positions = np.clip(values, 0, 1) * (len(_COLOURS) - 1)
    low = np.minimum(positions.astype(int), len(_COLOURS) - 2)
    fraction = (positions - low)[..., None]
    return (_COLOURS[low] * (1 - fraction) + _COLOURS[low + 1] * fraction).astype(np.uint8)


def spectrogram_strip(
    images: list[np.ndarray],
    audio: np.ndarray,
    *,
    sample_rate: int,
    width: int = 1024,
    strip_height: int = 128,
    spectrogram_height: int = 320,
    dynamic_range_db: float = 80.0,
):
    """A PIL image: the images side by side above the mel spectrogram (dB, top 80 dB) of ``audio``, aligned in time."""
    import torch
    from PIL import Image, ImageDraw

    from synth.spectral import SpectralConfig, audio_to_magnitude, magnitude_to_mel

    config = SpectralConfig(sample_rate=sample_rate, n_fft=2048, hop_length=256, n_mels=160, f_min_hz=30.0,
                            f_max_hz=min(sample_rate / 2, 12000.0))
    mel = magnitude_to_mel(audio_to_magnitude(torch.from_numpy(np.ascontiguousarray(audio)), config=config),
                           config=config).numpy()
    level_db = 20 * np.log10(np.maximum(mel, 1e-10))
    level = (level_db - (level_db.max() - dynamic_range_db)) / dynamic_range_db
    spectrogram = Image.fromarray(_colour_map(level[::-1])).resize((width, spectrogram_height), Image.BILINEAR)

    canvas = Image.new("RGB", (width, strip_height + spectrogram_height), "black")
    n_images = len(images)
    for index, pixels in enumerate(images):
        left, right = round(index * width / n_images), round((index + 1) * width / n_images)
        tile = Image.fromarray(np.asarray(pixels)).convert("RGB")
        canvas.paste(tile.resize((right - left, strip_height), Image.NEAREST), (left, 0))
    canvas.paste(spectrogram, (0, strip_height))
    draw = ImageDraw.Draw(canvas)
    duration_s = len(audio) / sample_rate
    for index in range(1, n_images):
        x = round(index * width / n_images)
        draw.line([(x, strip_height), (x, canvas.height)], fill=(255, 255, 255), width=1)
    for second in range(int(duration_s) + 1):
        x = round(second / duration_s * width)
        draw.line([(x, canvas.height - 6), (x, canvas.height)], fill=(255, 255, 255))
        draw.text((x + 2, canvas.height - 16), f"{second} s", fill=(255, 255, 255))
    draw.text((4, strip_height + 2), f"mel spectrogram, 30 Hz - {config.f_max_hz / 1000:g} kHz, top {dynamic_range_db:g} dB",
              fill=(255, 255, 255))
    return canvas


def save_png(image, path: str | os.PathLike) -> None:
    """Write a PIL image as PNG, atomically."""
    with atomic_output(path) as stream:
        image.save(stream, format="PNG")
