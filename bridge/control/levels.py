"""Loudness by design for rendered sequences: how loud each image sounds (``--loudness``).

The meter and the gain maths are :mod:`synth.loudness`; this module chooses each image's gain:

* ``even`` (the default): every image equally loud, the file at ``target_lufs`` integrated;
* ``mapped``: a named image descriptor (:data:`bridge.sources.descriptors.DESCRIPTORS`, e.g. ``brightness``)
  sets each image's level within ``range_db`` below the loudest: descriptor 1 → 0 dB, descriptor 0 →
  −``range_db``; the file at ``target_lufs``;
* ``raw``: the model's own output, peak-normalised (its level is whatever the decoder made); nothing here runs.

:func:`level_images` measures each image where it sounds alone (its slot less half a crossfade at each inner
boundary, :func:`solo_spans_s`), read back from the render's parked audio, and returns the gains with the
envelope the render's second pass applies block by block (:class:`synth.loudness.GainEnvelope`). The file's
gain comes from the same measurements (:func:`synth.loudness.programme_lufs`); the render's true-peak limiter
then keeps its peaks below −1 dBTP.

Example
-------
>>> import numpy as np
>>> settings = LoudnessSettings(mode="mapped", feature="brightness", range_db=12.0)
>>> descriptors = np.zeros((2, len(DESCRIPTORS))); descriptors[1, DESCRIPTORS.index("brightness")] = 1.0
>>> image_offsets_db(settings, descriptors).tolist()
[-12.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bridge.sources.descriptors import DESCRIPTORS
from models.errors import ParameterError
from synth.loudness import TARGET_LUFS, GainEnvelope, programme_lufs, span_loudness_lufs

__all__ = ["LOUDNESS_MODES", "MAX_BOOST_DB", "MAX_RANGE_DB", "LoudnessSettings", "ImageLevels", "image_offsets_db",
           "solo_spans_s", "level_images"]

LOUDNESS_MODES = ("even", "mapped", "raw")
MAX_BOOST_DB = 60.0
"""The most an image is raised above the loudest: a near-silent decoder output still becomes audible, noise
from a silent one does not fill the file."""
MAX_RANGE_DB = 40.0
TARGET_LUFS_RANGE = (-70.0, 0.0)


@dataclass(frozen=True)
class LoudnessSettings:
    """How loud each image and the whole file are.

    mode : one of :data:`LOUDNESS_MODES`.  target_lufs : integrated loudness of the file (even, mapped), −70…0.
    feature : the descriptor that drives loudness with ``mapped``.  range_db : its range, 0…40 dB.
    """

    mode: str = "even"
    target_lufs: float = TARGET_LUFS
    feature: str = "brightness"
    range_db: float = 12.0

    def __post_init__(self) -> None:
        if self.mode not in LOUDNESS_MODES:
            raise ParameterError(f"loudness mode {self.mode!r}; expected one of {', '.join(LOUDNESS_MODES)}")
        low, high = TARGET_LUFS_RANGE
        if not (math.isfinite(self.target_lufs) and low <= self.target_lufs <= high):
            raise ParameterError(f"target loudness {self.target_lufs!r} LUFS; expected {low:g}…{high:g}")
        if self.feature not in DESCRIPTORS:
            raise ParameterError(f"loudness feature {self.feature!r}; expected one of {', '.join(DESCRIPTORS)}")
        if not (math.isfinite(self.range_db) and 0.0 <= self.range_db <= MAX_RANGE_DB):
            raise ParameterError(f"loudness range {self.range_db!r} dB; expected 0…{MAX_RANGE_DB:g}")


def image_offsets_db(settings: LoudnessSettings, descriptors: np.ndarray) -> np.ndarray:
    """Each image's level relative to the loudest image, dB ``(n,)`` (≤ 0), from descriptors ``(n, len(DESCRIPTORS))``."""
    n = len(descriptors)
    if settings.mode != "mapped":
        return np.zeros(n)
    value = np.clip(np.asarray(descriptors, dtype=np.float64)[:, DESCRIPTORS.index(settings.feature)], 0.0, 1.0)
    return -settings.range_db * (1.0 - value)


def solo_spans_s(*, n_images: int, seconds_per_image: float, crossfade_s: float,
                 duration_s: float) -> list[tuple[float, float]]:
    """Where each image sounds alone: its slot less half a crossfade at each inner boundary (the whole slot when
    the crossfade fills it)."""
    half = 0.5 * crossfade_s
    spans = []
    for index in range(n_images):
        start = index * seconds_per_image + (half if index > 0 else 0.0)
        end = min(duration_s, (index + 1) * seconds_per_image - (half if index < n_images - 1 else 0.0))
        if end <= start:
            start, end = index * seconds_per_image, min(duration_s, (index + 1) * seconds_per_image)
        spans.append((start, end))
    return spans


@dataclass
class ImageLevels:
    """What levelling measured and chose: per image ``(n,)`` its solo span (s), its loudness as rendered (LUFS,
    −inf when silent) and the gain it gets (dB, the file's gain included); ``programme_lufs``, the file's loudness
    those gains predict (before the effects and the limiter); ``envelope``, the per-sample gain."""

    spans_s: list[tuple[float, float]]
    loudness_lufs: np.ndarray
    gains_db: np.ndarray
    programme_lufs: float
    envelope: GainEnvelope

    def shifted(self, offset_db: float) -> ImageLevels:
        """The same levels with every gain moved by ``offset_db`` (what the effects will add or take away)."""
        gains_db = self.gains_db + offset_db
        return ImageLevels(spans_s=self.spans_s, loudness_lufs=self.loudness_lufs, gains_db=gains_db,
                           programme_lufs=self.programme_lufs,
                           envelope=GainEnvelope(spans_s=self.spans_s, gains_db=gains_db,
                                                 sample_rate=self.envelope.sample_rate))


def level_images(settings: LoudnessSettings, *, read: Callable[[int, int], np.ndarray], sample_rate: int,
                 seconds_per_image: float, crossfade_s: float, duration_s: float,
                 descriptors: np.ndarray) -> ImageLevels:
    """Measure each image's solo span (read by ``read(first_sample, n_samples)``) and choose its gain.

    Images sit at their :func:`image_offsets_db` relative to the loudest one (no image is raised more than
    :data:`MAX_BOOST_DB`; silent ones get no gain of their own), then all move together so that the file's
    predicted integrated loudness is ``settings.target_lufs``.
    """
    if settings.mode == "raw":
        raise ParameterError("level_images: raw loudness keeps the model's levels; nothing to level")
    n_images = len(descriptors)
    spans = solo_spans_s(n_images=n_images, seconds_per_image=seconds_per_image, crossfade_s=crossfade_s,
                         duration_s=duration_s)
    loudness = span_loudness_lufs(read, sample_rate=sample_rate, spans_s=spans)
    offsets = image_offsets_db(settings, descriptors)
    gains_db = np.zeros(n_images)
    audible = np.isfinite(loudness)
    predicted = -math.inf
    if audible.any():
        reference = float(np.max(loudness[audible]))  # the loudest image keeps its level, the others follow it
        gains_db[audible] = np.minimum(reference + offsets[audible] - loudness[audible], MAX_BOOST_DB)
        durations = np.array([end - start for start, end in spans])
        levelled = programme_lufs(np.where(audible, loudness + gains_db, -math.inf), weights=durations)
        if math.isfinite(levelled):
            gains_db += settings.target_lufs - levelled
            predicted = settings.target_lufs
    envelope = GainEnvelope(spans_s=spans, gains_db=gains_db, sample_rate=sample_rate)
    return ImageLevels(spans_s=spans, loudness_lufs=loudness, gains_db=gains_db, programme_lufs=predicted,
                       envelope=envelope)
