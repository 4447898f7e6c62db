"""The demo pictures: eight generated example images, drawn with numpy (deterministic, nothing to ship).

A sunset gradient, a moon, fine stripes, a checkerboard, colour noise, rings, a meadow under a sky and a
starfield — bright and dark, smooth and busy, colourful and grey, so a preset's range is audible.
``imgsonic demo`` renders them; a live session without ``--images`` plays them.

Example
-------
>>> images = demo_images()
>>> len(images), images[0].pixels.shape
(8, (96, 96, 3))
"""

from __future__ import annotations

import numpy as np

from bridge.sources.images import ImageItem

__all__ = ["demo_images"]

_SIZE = 96


def demo_images(size: int = _SIZE) -> list[ImageItem]:
    """The eight example images, ``(size, size, 3)`` uint8 each, named ``demo:<what>``."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    rng = np.random.default_rng(7)
    radius = np.hypot(x - 0.5, y - 0.5)

    def rgb(r, g, b) -> np.ndarray:
        return np.stack([np.broadcast_to(c, x.shape) for c in (r, g, b)], axis=-1)

    stars = np.zeros_like(x)
    stars[rng.integers(0, size, 40), rng.integers(0, size, 40)] = 1.0
    images = {
        "sunset": rgb(1.0 - 0.5 * y, 0.55 * (1 - y) ** 1.5, 0.25 + 0.45 * y),
        "moon": rgb(*(np.clip((0.22 - radius) * 30, 0, 1) * c for c in (1.0, 0.95, 0.8))),
        "stripes": rgb(*(0.5 + 0.5 * np.sin(2 * np.pi * 12 * y),) * 3),
        "checkerboard": rgb(*(((x * 8).astype(int) + (y * 8).astype(int)) % 2 * 1.0,) * 3),
        "colour noise": rng.random((size, size, 3)),
        "rings": rgb(0.5 + 0.5 * np.cos(2 * np.pi * 6 * radius), 0.3 + 0.3 * np.sin(2 * np.pi * 3 * radius), 0.8 - radius),
        "meadow": np.where((y > 0.6 + 0.05 * np.sin(2 * np.pi * 2 * x))[..., None], rgb(0.2, 0.6 + 0.2 * y, 0.15),
                           rgb(0.45 + 0.3 * y, 0.7 + 0.2 * y, 1.0)),
        "starfield": rgb(stars, stars, 0.1 + 0.9 * stars),
    }
    return [ImageItem(name=f"demo:{name}", pixels=(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
            for name, pixels in images.items()]
