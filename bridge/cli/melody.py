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
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bridge.cli.arguments import Number
from models.errors import ParameterError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["MELODY_AUDIO", "BPM", "add_melody_arguments", "melody_seconds_per_image", "melody_phrases", "mix_melody"]

MELODY_AUDIO = ("mix", "replace", "off")
BPM = Number(float, 20.0, 400.0, unit="beats per minute")  # bridge.control.tempo.BPM (a test keeps them equal)
LEVEL_DB = Number(float, -60.0, 12.0, unit="dB")


def add_melody_arguments(parser: argparse.ArgumentParser) -> None:
    """``--melody``, ``--melody-audio``, ``--melody-level-db`` and ``--bpm`` for ``imgsonic render``."""
    group = parser.add_argument_group("melody (presets with a melody model: digits-melody, default, digits-fm)")
    group.add_argument("--melody", metavar="OUT.mid", help="one melody phrase (two 4/4 bars) per image, as a MIDI "
                       "file; each image then lasts one phrase")
    group.add_argument("--melody-audio", choices=MELODY_AUDIO, default="mix", help="the melody in the WAV: mixed with "
                       "the neural sound (default), replacing it, or off")
    group.add_argument("--melody-level-db", type=LEVEL_DB, default=0.0, metavar="DB",
                       help="melody level against the neural sound in the mix, −60…+12 dB (default 0: equal peaks)")
    group.add_argument("--bpm", type=BPM, default=120.0, help="melody tempo, 20…400 (default 120)")


def melody_seconds_per_image(*, seconds_per_image: float | None, n_steps: int, bpm: float) -> float:
    """Each image lasts one phrase; an explicit ``--seconds-per-image`` must agree with it."""
    from bridge.control.tempo import phrase_seconds

    phrase = phrase_seconds(n_steps=n_steps, bpm=bpm)
    if seconds_per_image is not None and not math.isclose(seconds_per_image, phrase, rel_tol=1e-9):
        raise ParameterError(f"--seconds-per-image {seconds_per_image:g} conflicts with --melody: each image lasts one "
                             f"phrase, {phrase:g} s at --bpm {bpm:g}; leave it out or change --bpm")
    return phrase


def melody_phrases(melody_models, images) -> np.ndarray:
    """Model inputs ``(n, C, S, S)`` → melody tokens ``(n, n_steps)``."""
    import torch

    with torch.inference_mode():
        return melody_models.images_to_tokens(images).numpy()


def mix_melody(audio: np.ndarray, melody: np.ndarray, *, mode: str, level_db: float, peak_db: float | None) -> np.ndarray:
    """The render's audio ``(n,)`` with the melody ``(≥ n,)`` mixed in or replacing it, peak at ``peak_db``."""
    import numpy as np

    if mode not in MELODY_AUDIO:
        raise ParameterError(f"melody audio {mode!r}; expected one of {', '.join(MELODY_AUDIO)}")
    if mode == "off":
        return audio
    melody = np.pad(melody, (0, max(0, len(audio) - len(melody))))[: len(audio)].astype(np.float32)
    fade = min(len(melody) // 2, 2048)  # the last phrase's release is cut at the end: fade it
    if fade:
        melody[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    melody_peak = float(np.abs(melody).max())
    if melody_peak > 0:
        reference = float(np.abs(audio).max()) if mode == "mix" and np.abs(audio).max() > 0 else 1.0
        melody = melody * np.float32(reference / melody_peak * 10 ** (level_db / 20))
    mixed = melody if mode == "replace" else audio + melody
    peak = float(np.abs(mixed).max())
    if peak_db is not None and peak > 0:
        mixed = mixed * np.float32(10 ** (peak_db / 20) / peak)
    return mixed.astype(np.float32)


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


def write_melody_outputs(*, midi_path: str | os.PathLike, phrases: np.ndarray, names: Sequence[str],
                         melody_models, bpm: float) -> None:
    """The phrases as one MIDI piece, each phrase marked with its image's name."""
    from bridge.io.melody_midi import write_melody_midi

    config = melody_models.melody_vae.config
    write_melody_midi(Path(midi_path), phrases, pitch_low=config.pitch_low, bpm=bpm,
                      steps_per_bar=config.steps_per_bar, names=list(names))


def melody_step(*, midi_path: str | os.PathLike, mode: str, level_db: float, bpm: float, melody_models,
                peak_db: float | None):
    """The step :func:`bridge.cli.render.render_files` runs before it writes the audio: ``step(items, result)``
    writes the melody MIDI and mixes (or puts) the melody into ``result.audio``."""
    from models.preprocess import prepare_image

    def step(items, result) -> None:
        import torch

        config = melody_models.image_vae.config
        images = torch.stack([prepare_image(item.pixels, size=config.image_size, channels=config.channels)
                              for item in items])
        phrases = melody_phrases(melody_models, images)
        write_melody_outputs(midi_path=midi_path, phrases=phrases, names=[item.name for item in items],
                             melody_models=melody_models, bpm=bpm)
        if mode != "off":
            from bridge.live.melody_voice import render_melody

            audio = render_melody(phrases, pitch_low=melody_models.pitch_low, bpm=bpm, sample_rate=result.sample_rate)
            result.audio = mix_melody(result.audio, audio, mode=mode, level_db=level_db, peak_db=peak_db)

    return step
