"""``imgsonic demo``: eight generated example images → ``demo.wav``, ``demo.mid`` and ``demo.png``.

The images are drawn here with numpy (deterministic, nothing to ship): a sunset gradient, a moon, fine
stripes, a checkerboard, colour noise, rings, a meadow under a sky and a starfield — bright and dark,
smooth and busy, colourful and grey, so the preset's range is audible. ``demo.png`` puts the images as a
strip above the spectrogram of the rendered sound, aligned in time.

Example
-------
>>> images = demo_images()
>>> len(images), images[0].pixels.shape
(8, (96, 96, 3))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from bridge.images import ImageItem
from models.errors import ParameterError
from synth.files import atomic_output

__all__ = ["demo_images", "spectrogram_strip", "run_demo", "DEFAULT_OUTPUT_DIR"]

DEFAULT_OUTPUT_DIR = Path("imgsonic-demo")
_SIZE = 96
_SECONDS_PER_IMAGE = 1.5
_CROSSFADE_S = 0.3
_FX = "reverb:room_size=0.6,wet_level=0.25,dry_level=0.8"
# Anchors of a dark-to-light perceptual colour map (after matplotlib's "magma").
_COLOURS = np.array([[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]],
                    dtype=np.float64)


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


def _save_png(image, path: Path) -> None:
    with atomic_output(path) as stream:
        image.save(stream, format="PNG")


def run_demo(*, out_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR, preset: str = "default",
             vocoder: str = "pghi+fgla") -> dict[str, Path]:
    """Render the demo into ``out_dir`` (created if missing); returns ``{"wav": …, "mid": …, "png": …}``."""
    from bridge.mapping import load_mapping
    from bridge.render import RenderSettings, load_models, render_items, save_outputs

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output folder {str(out_dir)!r} exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = load_models(preset=preset)
    mapping = load_mapping()
    settings = RenderSettings(seconds_per_image=_SECONDS_PER_IMAGE, crossfade_s=_CROSSFADE_S, vocoder=vocoder, fx=_FX)
    items = demo_images()
    result = render_items(items, loaded=loaded, settings=settings, mapping=mapping)
    paths = {"wav": out_dir / "demo.wav", "mid": out_dir / "demo.mid", "png": out_dir / "demo.png"}
    picture = spectrogram_strip([item.pixels for item in items], result.audio, sample_rate=result.sample_rate)
    _save_png(picture, paths["png"])
    save_outputs(result, out_path=paths["wav"], mapping=mapping, midi_path=paths["mid"])
    return paths
