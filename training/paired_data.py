"""Paired sound ↔ image training data: sounds as 1-second log-mel windows, images, and how they pair.

Two pairings:

``"class"``
    a sound pairs with *any* image of its class (spoken "seven" ↔ every handwritten 7): the classic
    spoken-digit ↔ digit setup, where no sound belongs to one particular picture;
``"instance"``
    sound ``i`` pairs with image ``i`` (a rendered scene's own picture, the frame of a clip at the sound's time).

:meth:`PairedData.images_for` draws the paired image for each sound of a batch, or a *mismatched* one (another
class, another instance), which the conditional discriminator must call fake.

The builders: :func:`spoken_digit_data` (:mod:`training.spoken_digits` ↔ scikit-learn's digits),
:func:`scene_data` (:mod:`training.av_scenes`) and :func:`clip_data` (:mod:`training.clips`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from models.errors import ParameterError

__all__ = ["PairedData", "spoken_digit_data", "scene_data", "clip_data", "IMAGE_SIZE"]

IMAGE_SIZE = 32


@dataclass
class PairedData:
    """Sounds, images and their pairing.

    mels : ``(n, n_mels, n_frames)`` normalised log-mel windows.  sound_keys : ``(n,)`` int64, the class (class
    pairing) or the image index (instance pairing) of each sound.  sound_labels : ``(n,)`` classes for the audio
    encoder's class head, or None.  images : ``(m, C, S, S)`` in [0, 1].  image_keys : ``(m,)`` int64 classes
    (class pairing) or ``arange(m)``.  pairing : "class" or "instance".  factors : optional ``(n, k)`` float
    parameters of each sound (scenes: kind, size, count), for evaluation.  description : one line for metadata.
    """

    mels: Tensor
    sound_keys: Tensor
    sound_labels: Tensor | None
    images: Tensor
    image_keys: Tensor
    pairing: str
    description: str
    factors: Tensor | None = None

    def __post_init__(self) -> None:
        if self.pairing not in ("class", "instance"):
            raise ParameterError(f"pairing={self.pairing!r}; expected 'class' or 'instance'")
        if len(self.mels) != len(self.sound_keys) or len(self.images) != len(self.image_keys):
            raise ParameterError("mels/sound_keys and images/image_keys must have equal lengths")
        order = torch.argsort(self.image_keys, stable=True)
        self._sorted = order
        if self.pairing == "class":
            self._n_classes = int(self.image_keys.max()) + 1
            counts = torch.bincount(self.image_keys, minlength=self._n_classes)
            if (counts == 0).any():
                raise ParameterError(f"class(es) {torch.nonzero(counts == 0).flatten().tolist()} have no image")
            self._counts = counts
            self._offsets = torch.cumsum(counts, 0) - counts

    def images_for(self, keys: Tensor, *, generator: torch.Generator, mismatched: bool = False) -> Tensor:
        """Images ``(B, C, S, S)`` paired with sounds of ``keys`` ``(B,)``; ``mismatched`` draws from any other key."""
        keys = keys.cpu()
        if self.pairing == "instance":
            if mismatched:
                shift = torch.randint(1, len(self.images), keys.shape, generator=generator)
                keys = (keys + shift) % len(self.images)
            return self.images[keys]
        if mismatched:
            keys = (keys + torch.randint(1, self._n_classes, keys.shape, generator=generator)) % self._n_classes
        pick = (torch.rand(keys.shape, generator=generator) * self._counts[keys]).long()
        return self.images[self._sorted[self._offsets[keys] + pick]]


def spoken_digit_data(split: str, *, clips_per_digit: int = 3, copies: int = 3, cache_dir: str | os.PathLike | None = None,
                      image_size: int = 16, seed: int = 0) -> PairedData:
    """espeak-ng's spoken digits of ``split`` ↔ scikit-learn's handwritten digits of the same split, by class.

    "train": ``copies`` windows per clip, each with the word at a random offset and level; "test": one centred
    window per clip at espeak's level (evaluation writes its own files at other levels and rates).
    """
    from training.datasets import load_digits_split
    from training.spoken_digits import SPEECH_SPECTRAL, clips_to_windows, spoken_digit_clips

    clips = spoken_digit_clips(split, clips_per_digit=clips_per_digit, cache_dir=cache_dir, seed=seed)
    if split == "train":
        mels, labels = clips_to_windows(clips, config=SPEECH_SPECTRAL, seed=seed, copies=copies)
    else:
        mels, labels = clips_to_windows(clips, config=SPEECH_SPECTRAL, seed=None)
    images, digits = load_digits_split(split, size=image_size)
    voices = len({clip.voice for clip in clips})
    return PairedData(mels=mels, sound_keys=labels, sound_labels=labels, images=images, image_keys=digits,
                      pairing="class", description=f"spoken digits ({split}): {len(clips)} espeak-ng clips, {voices} "
                      f"voices, × {copies if split == 'train' else 1} placements ↔ {len(images)} scikit-learn digits")


def scene_data(split: str, *, n_scenes: int = 6000, seed: int = 0) -> PairedData:
    """Rendered audio-visual scenes of ``split`` (:func:`training.av_scenes.make_scenes`), each sound with its picture."""
    from training.av_scenes import make_scenes
    from training.spoken_digits import SPEECH_SPECTRAL, audio_to_window_mel

    scenes = make_scenes(n_scenes, split=split, image_size=IMAGE_SIZE, sample_rate=SPEECH_SPECTRAL.sample_rate,
                         seed=seed)
    mels = torch.cat([audio_to_window_mel(chunk, config=SPEECH_SPECTRAL) for chunk in torch.from_numpy(scenes.audio).split(512)])
    index = torch.arange(len(mels))
    return PairedData(mels=mels, sound_keys=index, sound_labels=scenes.factors[:, 0].long(), images=scenes.images,
                      image_keys=index, pairing="instance", factors=scenes.factors,
                      description=f"rendered scenes ({split}): {len(mels)} of {', '.join(scenes.kinds)}")


def clip_data(folder: str | os.PathLike, *, load_images: Callable | None) -> PairedData:
    """The user's clips in ``folder`` (:func:`training.clips.load_clips`): each 1-second window with its frame."""
    from training.clips import load_clips
    from training.spoken_digits import SPEECH_SPECTRAL

    pairs = load_clips(folder, config=SPEECH_SPECTRAL, image_size=IMAGE_SIZE, load_images=load_images)
    index = torch.arange(len(pairs.mels))
    return PairedData(mels=pairs.mels, sound_keys=index, sound_labels=None, images=pairs.images, image_keys=index,
                      pairing="instance", description=f"user clips in {folder}: {pairs.n_clips} clips, "
                      f"{len(pairs.mels)} one-second windows")
