"""``imgsonic render … --melody out.mid``: one melody phrase per image, as MIDI and in the WAV.

Each image plays one phrase of the preset's melody model (:class:`models.melody_pipeline.MelodyModels`):
``n_steps`` 16th notes (two 4/4 bars) at ``--bpm``, so every image lasts one phrase and consecutive images
form one piece. The phrases go to a MIDI file (:mod:`bridge.io.melody_midi`) and, played by
:class:`bridge.live.melody_voice.MelodyVoice` on pyo's offline server, into the WAV: mixed with the neural sound
(``--melody-audio mix``, the default), instead of it (``replace``), or not at all (``off``).

Example
-------
``imgsonic render digits/ -o piece.wav --preset digits-melody --melody piece.mid --bpm 100``
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli.arguments import Number
from models.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MELODY_AUDIO", "MelodyMix", "add_melody_arguments", "melody_seconds_per_image", "scale_melody",
           "load_melody_models"]

MELODY_AUDIO = ("mix", "replace", "off")
LEVEL_DB = Number(float, -60.0, 12.0, unit="dB")


def add_melody_arguments(parser: argparse.ArgumentParser) -> None:
    """``--melody``, ``--melody-audio`` and ``--melody-level-db`` for ``imgsonic render`` (the tempo is ``--bpm``)."""
    group = parser.add_argument_group("melody (presets with a melody model: digits-melody, default, digits-fm)")
    group.add_argument("--melody", metavar="OUT.mid", help="one melody phrase (two 4/4 bars) per image, as a MIDI "
                       "file; each image then lasts one phrase")
    group.add_argument("--melody-audio", choices=MELODY_AUDIO, default="mix", help="the melody in the WAV: mixed with "
                       "the neural sound (default), replacing it, or off")
    group.add_argument("--melody-level-db", type=LEVEL_DB, default=0.0, metavar="DB",
                       help="melody level against the neural sound in the mix, −60…+12 dB (default 0: equal peaks)")


def melody_seconds_per_image(*, seconds_per_image: float | None, n_steps: int, bpm: float) -> float:
    """Each image lasts one phrase; an explicit ``--seconds-per-image`` must agree with it."""
    from bridge.control.tempo import phrase_seconds

    phrase = phrase_seconds(n_steps=n_steps, bpm=bpm)
    if seconds_per_image is not None and not math.isclose(seconds_per_image, phrase, rel_tol=1e-9):
        raise ParameterError(f"--seconds-per-image {seconds_per_image:g} conflicts with --melody: each image lasts one "
                             f"phrase, {phrase:g} s at --bpm {bpm:g}; leave it out or change --bpm")
    return phrase


def load_melody_models(preset: str | None):
    """The melody models of ``preset`` (default: "default"); a ParameterError names presets that have one."""
    from models.errors import CheckpointError
    from models.melody_pipeline import MelodyModels
    from models.registry import available_presets, load_preset

    name = preset or "default"
    try:
        return MelodyModels.from_preset(name)
    except CheckpointError as error:
        if load_preset(name).melody_vae is not None:
            raise
        having = [p for p in available_presets() if load_preset(p).melody_vae is not None]
        raise ParameterError(f"--melody: preset {name!r} has no melody model; presets with one: "
                             f"{', '.join(having) or 'none'}") from error


def scale_melody(melody: np.ndarray, *, n_samples: int, audio_peak: float, replace: bool,
                 level_db: float) -> np.ndarray:
    """The melody audio cut or padded to ``n_samples`` (its last release faded) and scaled: its peak at
    ``audio_peak`` × ``level_db`` in a mix, at full scale × ``level_db`` when it replaces the audio."""
    import numpy as np

    melody = np.pad(melody, (0, max(0, n_samples - len(melody))))[:n_samples].astype(np.float32)
    fade = min(len(melody) // 2, 2048)  # the last phrase's release is cut at the end: fade it
    if fade:
        melody[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    melody_peak = float(np.abs(melody).max())
    if melody_peak > 0:
        reference = audio_peak if not replace and audio_peak > 0 else 1.0
        melody *= np.float32(reference / melody_peak * 10 ** (level_db / 20))
    return melody


class MelodyMix:
    """A render's melody: one phrase per image, taken from the images as the render reads them (:meth:`tap`),
    written as a MIDI piece (:meth:`write_midi`), and — unless ``mode`` is ``"off"`` — mixed into the sound
    (a :class:`bridge.sonify.render.MixIn`: :meth:`prepare` plays the phrases with
    :func:`bridge.live.melody_voice.render_melody` on pyo's offline server).
    """

    _BATCH = 64  # images turned into phrases at a time

    def __init__(self, *, melody_models, mode: str, level_db: float, bpm: float) -> None:
        if mode not in MELODY_AUDIO:
            raise ParameterError(f"melody audio {mode!r}; expected one of {', '.join(MELODY_AUDIO)}")
        self.melody_models, self.mode, self.level_db, self.bpm = melody_models, mode, level_db, bpm
        self.replace = mode == "replace"
        self.phrases: list[np.ndarray] = []
        self.names: list[str] = []
        self._audio: np.ndarray | None = None

    def tap(self, items):
        """``items`` unchanged, their phrases computed in batches on the way (the pixels are not kept)."""
        import torch

        from models.preprocess import prepare_image

        config = self.melody_models.image_vae.config
        batch = []
        for item in items:
            batch.append(prepare_image(item.pixels, size=config.image_size, channels=config.channels))
            self.names.append(item.name)
            yield item
            if len(batch) == self._BATCH:
                self._phrase(torch.stack(batch))
                batch = []
        if batch:
            self._phrase(torch.stack(batch))

    def _phrase(self, images) -> None:
        import torch

        with torch.inference_mode():
            self.phrases.extend(self.melody_models.images_to_tokens(images).numpy())

    def write_midi(self, path: str | os.PathLike) -> None:
        """The phrases as one MIDI piece, each phrase marked with its image's name."""
        import numpy as np

        from bridge.io.melody_midi import write_melody_midi

        config = self.melody_models.melody_vae.config
        write_melody_midi(Path(path), np.stack(self.phrases), pitch_low=config.pitch_low, bpm=self.bpm,
                          steps_per_bar=config.steps_per_bar, names=list(self.names))

    def prepare(self, *, audio_peak: float, n_samples: int, sample_rate: int) -> None:
        import numpy as np

        from bridge.live.melody_voice import render_melody

        audio = render_melody(np.stack(self.phrases), pitch_low=self.melody_models.pitch_low, bpm=self.bpm,
                              sample_rate=sample_rate)
        self._audio = scale_melody(audio, n_samples=n_samples, audio_peak=audio_peak, replace=self.replace,
                                   level_db=self.level_db)

    def block(self, start: int, n: int) -> np.ndarray:
        return self._audio[start : start + n]
