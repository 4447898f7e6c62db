"""Procedurally rendered audio-visual scenes whose picture and sound share parameters: size ↔ pitch, count ↔ rate.

Four kinds, each a picture of ``count`` objects of one ``size`` and one second of their sound:

========  ==========================================  ================================================================
kind      picture (grey, objects white)               sound
========  ==========================================  ================================================================
ball      ``count`` discs, radius 1.5–5 px              each ball bounces twice a second (random phase): an impact is a
                                                      decaying sine, 2000 Hz (smallest) … 350 Hz (largest), + a click
rain      ``count`` streaks, 3–12 px long              each drop falls 4 times a second: a short "plink", 4000 … 1000 Hz
bell      ``count`` bells, 5–12 px tall                 each bell rings 1.5 times a second: three inharmonic partials
                                                      (1, 2.76, 5.40 × f0), f0 1200 … 300 Hz, slow decay
engine    ``count`` pistons, 4–12 px tall               ``count`` cylinders firing 10 times a second each, evenly spaced:
                                                      a pulse train at 10·count Hz through a resonance 1000 … 250 Hz
========  ==========================================  ================================================================

So a scene's *size* sets the pitch (bigger is lower, log-linearly) and its *count* the event rate. Sounds are
built from :func:`synth.sources.render_sines` (decaying partials) placed at the event times; each scene's peak
is scaled to a level drawn from ``level_db``.

Unseen parameters: training sizes never fall in :data:`TEST_SIZE_BANDS`; test sizes always do, so a test scene's
size (and so its pitch) was never heard in training. Counts are 1–4 in both; object positions and event phases
are new draws.

:func:`measure_objects` reads a picture back: count and size of its objects (connected components above half
brightness), which is how the evaluation recovers the parameters from generated images.

Example
-------
>>> scenes = make_scenes(8, split="test", image_size=32, sample_rate=16000, seed=0)
>>> tuple(scenes.images.shape), scenes.audio.shape, tuple(scenes.factors.shape)
((8, 1, 32, 32), (8, 16000), (8, 3))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.errors import ParameterError
from synth.sources import SineParams, db_to_amplitude, render_sines

__all__ = ["SCENE_KINDS", "COUNT_RANGE", "TEST_SIZE_BANDS", "Scenes", "make_scenes", "measure_objects"]

SCENE_KINDS = ("ball", "rain", "bell", "engine")
COUNT_RANGE = (1, 4)
TEST_SIZE_BANDS = ((0.10, 0.18), (0.42, 0.50), (0.80, 0.88))
TRAIN_LEVEL_DB = (-20.0, 0.0)
TEST_LEVEL_DB = (-30.0, 0.0)
_IMPULSE_S = 0.5


@dataclass
class Scenes:
    """images ``(n, 1, S, S)`` float32 in [0, 1]; audio ``(n, n_samples)`` float32 (one second); factors ``(n, 3)``:
    kind index (into ``kinds``), size in [0, 1], count."""

    images: Tensor
    audio: np.ndarray
    factors: Tensor
    kinds: tuple[str, ...]


def _sizes(rng: np.random.Generator, n: int, split: str) -> np.ndarray:
    if split == "test":
        band = rng.integers(0, len(TEST_SIZE_BANDS), n)
        low = np.array([TEST_SIZE_BANDS[b][0] for b in band])
        high = np.array([TEST_SIZE_BANDS[b][1] for b in band])
        return rng.uniform(low, high)
    sizes = rng.uniform(0.0, 1.0, n)
    for _ in range(100):  # redraw any size inside a held-out band
        inside = np.zeros(n, dtype=bool)
        for low, high in TEST_SIZE_BANDS:
            inside |= (sizes >= low) & (sizes <= high)
        if not inside.any():
            break
        sizes[inside] = rng.uniform(0.0, 1.0, int(inside.sum()))
    return sizes


# ---- pictures ----------------------------------------------------------------------------------------------------


def _object_mask(kind: str, size: float, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float) -> np.ndarray:
    """Soft mask in [0, 1] of one object centred at (cy, cx)."""
    if kind == "ball":
        radius = 1.5 + 3.5 * size
        return np.clip(radius + 0.5 - np.hypot(yy - cy, xx - cx), 0.0, 1.0)
    if kind == "rain":
        half = (3.0 + 9.0 * size) / 2
        return np.clip(1.25 - np.abs(xx - cx), 0.0, 1.0) * np.clip(half + 0.5 - np.abs(yy - cy), 0.0, 1.0)
    if kind == "bell":
        height = 5.0 + 7.0 * size
        top = cy - height / 2
        depth = np.clip((yy - top) / height, 0.0, 1.0)  # 0 at the crown, 1 at the rim
        half_width = 1.0 + depth * height * 0.3
        inside = (yy >= top - 0.5) & (yy <= top + height + 0.5)
        return np.clip(half_width + 0.5 - np.abs(xx - cx), 0.0, 1.0) * inside
    if kind == "engine":
        height = 4.0 + 8.0 * size
        return np.clip(2.0 - np.abs(xx - cx), 0.0, 1.0) * np.clip(height / 2 + 0.5 - np.abs(yy - cy), 0.0, 1.0)
    raise ParameterError(f"scene kind {kind!r}; expected one of {', '.join(SCENE_KINDS)}")


def _extent_px(kind: str, size: float) -> tuple[float, float]:
    """Half height and half width of an object, in pixels (for placing objects apart)."""
    if kind == "ball":
        radius = 1.5 + 3.5 * size
        return radius, radius
    if kind == "rain":
        return (3.0 + 9.0 * size) / 2, 1.5
    if kind == "bell":
        height = 5.0 + 7.0 * size
        return height / 2, 1.0 + 0.3 * height
    height = 4.0 + 8.0 * size
    return height / 2, 2.0


def _picture(kind: str, size: float, count: int, *, image_size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    half_h, half_w = _extent_px(kind, size)
    margin_y, margin_x = half_h + 1.0, half_w + 1.0
    placed: list[tuple[float, float]] = []
    for _ in range(200):  # start again when early objects leave no room for the rest
        placed = []
        for _ in range(100):
            cy = rng.uniform(margin_y, image_size - margin_y)
            cx = rng.uniform(margin_x, image_size - margin_x)
            if all(abs(cy - py) > 2 * half_h + 2 or abs(cx - px) > 2 * half_w + 2 for py, px in placed):
                placed.append((cy, cx))
                if len(placed) == count:
                    break
        if len(placed) == count:
            break
    if len(placed) < count:
        raise ParameterError(f"cannot place {count} {kind} objects of size {size:.2f} in {image_size} px")
    picture = np.zeros((image_size, image_size))
    for cy, cx in placed:
        picture = np.maximum(picture, _object_mask(kind, size, yy, xx, cy, cx))
    return picture.astype(np.float32)


# ---- sounds -------------------------------------------------------------------------------------------------------


def _decaying_partials(f0_hz: float, ratios: tuple[float, ...], weights: tuple[float, ...], decay_s: float, *,
                       sample_rate: int) -> np.ndarray:
    """One event's sound: sines at ``f0 · ratios`` (``synth.sources.render_sines``) under an exponential decay."""
    n = int(_IMPULSE_S * sample_rate)
    partials = np.minimum([f0_hz * r for r in ratios], 0.45 * sample_rate)  # a low rate keeps the fundamental, lower
    keep = np.r_[True, partials[1:] < 0.45 * sample_rate]
    tones = render_sines(SineParams(f0_hz=partials[keep], peak_db=20 * np.log10(np.array(weights)[keep])),
                         sample_rate=sample_rate, n_samples=n)
    decays = decay_s / np.arange(1, keep.sum() + 1)  # higher partials die sooner
    t = np.arange(n) / sample_rate
    return (tones * np.exp(-t[None, :] / decays[:, None])).sum(axis=0)


def _event_times(kind: str, count: int, *, rng: np.random.Generator) -> np.ndarray:
    if kind == "engine":
        firing_hz = 10.0 * count
        return (rng.uniform(0, 1 / firing_hz) + np.arange(0, 1.0, 1 / firing_hz)) % 1.0
    per_object_hz = {"ball": 2.0, "rain": 4.0, "bell": 1.5}[kind]
    times = []
    for _ in range(count):
        period = 1 / per_object_hz * rng.uniform(0.9, 1.1)
        times.append(rng.uniform(0, period) + np.arange(0, 1.0, period))
    return np.concatenate(times) % 1.0


def _sound(kind: str, size: float, count: int, *, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "ball":
        impulse = _decaying_partials(2000 * 2 ** (-2.5 * size), (1.0, 2.3), (1.0, 0.3), 0.04, sample_rate=sample_rate)
        impulse[: int(0.002 * sample_rate)] += rng.uniform(-0.5, 0.5, int(0.002 * sample_rate))
    elif kind == "rain":
        impulse = _decaying_partials(4000 * 2 ** (-2.0 * size), (1.0,), (1.0,), 0.012, sample_rate=sample_rate)
        impulse[: int(0.004 * sample_rate)] += rng.uniform(-0.3, 0.3, int(0.004 * sample_rate))
    elif kind == "bell":
        impulse = _decaying_partials(1200 * 2 ** (-2.0 * size), (1.0, 2.76, 5.40), (1.0, 0.6, 0.35), 0.35,
                                     sample_rate=sample_rate)
    else:
        impulse = _decaying_partials(1000 * 2 ** (-2.0 * size), (1.0,), (1.0,), 0.006, sample_rate=sample_rate)
    events = np.zeros(sample_rate)
    for time_s in _event_times(kind, count, rng=rng):
        events[int(time_s * sample_rate)] += rng.uniform(0.7, 1.0)
    from scipy.signal import fftconvolve

    audio = fftconvolve(events, impulse)[:sample_rate]
    # the tail of events near the end wraps to the start, so every second sounds like the middle of a longer scene
    tail = fftconvolve(events, impulse)[sample_rate : 2 * sample_rate]
    audio[: len(tail)] += tail
    return audio


def make_scenes(n: int, *, split: str, image_size: int, sample_rate: int, seed: int,
                kinds: tuple[str, ...] = SCENE_KINDS) -> Scenes:
    """``n`` scenes of ``split`` ("train" or "test"), kinds in turn, sizes and counts drawn with ``seed``."""
    if split not in ("train", "test"):
        raise ParameterError(f"split={split!r}; expected 'train' or 'test'")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ParameterError(f"n={n!r}; expected an int >= 1")
    unknown = [kind for kind in kinds if kind not in SCENE_KINDS]
    if unknown or not kinds:
        raise ParameterError(f"kinds={kinds!r}; accepted: {', '.join(SCENE_KINDS)}")
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    sizes = _sizes(rng, n, split)
    counts = rng.integers(COUNT_RANGE[0], COUNT_RANGE[1] + 1, n)
    levels = rng.uniform(*(TRAIN_LEVEL_DB if split == "train" else TEST_LEVEL_DB), n)
    images, audio, factors = [], [], []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        images.append(_picture(kind, sizes[i], int(counts[i]), image_size=image_size, rng=rng))
        sound = _sound(kind, sizes[i], int(counts[i]), sample_rate=sample_rate, rng=rng)
        audio.append(sound / max(np.abs(sound).max(), 1e-9) * db_to_amplitude(levels[i]))
        factors.append((SCENE_KINDS.index(kind), sizes[i], counts[i]))
    return Scenes(images=torch.from_numpy(np.stack(images))[:, None], audio=np.stack(audio).astype(np.float32),
                  factors=torch.tensor(factors, dtype=torch.float32), kinds=tuple(kinds))


def measure_objects(images: Tensor | np.ndarray, *, threshold: float = 0.5, min_area_px: int = 2) -> np.ndarray:
    """(count, size) of the objects in each picture ``(n, 1, S, S)``: connected components (8-neighbour) brighter
    than ``threshold`` with at least ``min_area_px`` pixels; size is their mean extent (the longer side of each
    one's bounding box) in pixels (0 when there is none). Returns ``(n, 2)`` float64."""
    from scipy import ndimage

    pixels = np.asarray(images, dtype=np.float32)
    if pixels.ndim != 4:
        raise ParameterError(f"images have shape {pixels.shape}; expected (n, 1, S, S)")
    result = np.zeros((len(pixels), 2))
    for i, picture in enumerate(pixels[:, 0]):
        labels, n_found = ndimage.label(picture > threshold, structure=np.ones((3, 3)))
        areas = np.bincount(labels.ravel())[1:] if n_found else np.zeros(0)
        extents = [max(box[0].stop - box[0].start, box[1].stop - box[1].start)
                   for box, area in zip(ndimage.find_objects(labels), areas) if area >= min_area_px]
        result[i] = (len(extents), float(np.mean(extents)) if extents else 0.0)
    return result
