"""The user's own audio-visual clips as paired training data: each 1-second sound window with the frame it shows.

A clip folder holds, per clip, a **sound file** and a **picture or video with the same name** (``dog.wav`` +
``dog.mp4``, ``rain.flac`` + ``rain.png``, ``door.ogg`` + ``door.gif``), in any sub-folder. Sound: any format
:func:`synth.audio_io.read_audio` reads, any rate (a video's own sound track is not read: extract it first, e.g.
``ffmpeg -i dog.mp4 dog.wav``). Pictures: stills, animated GIF/PNG/WebP, and videos, read by the bridge's
:func:`bridge.sources.images.load_images` — handed in by the caller (``imgsonic train s2i --clips``), because ``training``
does not import the bridge.

Each clip's sound is cut into 1-second windows every :data:`HOP_S` seconds
(:func:`synth.sound_windows.audio_windows`; a clip shorter than a second is centred in one); each window pairs
with the frame showing at its centre (a still pairs with every window). At least :data:`MIN_CLIPS` clips and
:data:`MIN_WINDOWS` windows are needed; fewer is an :class:`~models.errors.InputError` that says so in one line.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from models.errors import InputError, ParameterError
from models.preprocess import prepare_image
from synth.audio_io import read_audio
from synth.sound_windows import audio_windows
from synth.spectral import SpectralConfig

__all__ = ["MIN_CLIPS", "MIN_WINDOWS", "HOP_S", "FRAMES_PER_SECOND", "ClipPairs", "find_clips", "load_clips"]

log = logging.getLogger(__name__)

MIN_CLIPS = 4
MIN_WINDOWS = 12
HOP_S = 0.5
FRAMES_PER_SECOND = 4.0
_SOUND_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"}
_PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".mp4", ".mov", ".avi", ".mkv",
                     ".webm", ".m4v"}


@dataclass
class ClipPairs:
    """mels ``(n, n_mels, n_frames)``; images ``(n, 3, S, S)`` in [0, 1]; clip index of each pair; n_clips."""

    mels: Tensor
    images: Tensor
    clip_index: Tensor
    n_clips: int


def find_clips(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(sound, picture) pairs under ``folder`` with the same path less the suffix, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"clips folder {str(root)!r} does not exist or is not a folder")
    sounds, pictures = {}, {}
    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if path.is_file() and suffix in _SOUND_SUFFIXES:
            sounds.setdefault(path.with_suffix(""), path)
        elif path.is_file() and suffix in _PICTURE_SUFFIXES:
            pictures.setdefault(path.with_suffix(""), path)
    return [(sounds[stem], pictures[stem]) for stem in sorted(set(sounds) & set(pictures))]


def load_clips(folder: str | os.PathLike, *, config: SpectralConfig, image_size: int,
               load_images: Callable | None, window_frames: int = 32) -> ClipPairs:
    """Every clip's windows and frames (see the module docstring); InputError when too few are usable."""
    if load_images is None:
        raise ParameterError("load_clips needs the bridge's frame reader (bridge.sources.images.load_images)")
    clips = find_clips(folder)
    mels, images, owners = [], [], []
    used = 0
    for sound_path, picture_path in clips:
        try:
            audio = read_audio(sound_path, sample_rate=config.sample_rate, channels=1)[0]
            frames = load_images([picture_path], video_frames_per_second=FRAMES_PER_SECOND)
        except InputError as error:
            log.warning("skipping clip %s: %s", sound_path.with_suffix(""), error)
            continue
        windows = audio_windows(audio, config=config, window_frames=window_frames, hop_s=HOP_S)
        centre_s = windows.start_s + window_frames * config.hop_length / config.sample_rate / 2
        which = np.clip(np.round(centre_s * FRAMES_PER_SECOND).astype(int), 0, len(frames) - 1)
        prepared = {}
        for index in np.unique(which):
            prepared[index] = prepare_image(frames[index].pixels, size=image_size, channels=3)
        mels.append(windows.mel)
        images += [prepared[index] for index in which]
        owners += [used] * len(which)
        used += 1
    n_windows = sum(len(mel) for mel in mels)
    if used < MIN_CLIPS or n_windows < MIN_WINDOWS:
        raise InputError(f"{str(folder)!r} has {used} usable clip(s) and {n_windows} one-second window(s); training "
                         f"needs at least {MIN_CLIPS} clips and {MIN_WINDOWS} windows (each clip: a sound file and a "
                         "picture or video of the same name)")
    return ClipPairs(mels=torch.cat(mels), images=torch.stack(images), clip_index=torch.tensor(owners), n_clips=used)
