"""Sound → image presets: the frozen audio encoder and the conditional generator (and the multimodal path), loaded together.

A preset is one TOML file ``models/presets/imagine/<name>.toml`` (separate from the image ↔ sound presets, whose
files must name an image VAE, audio VAE and mapper)::

    description = "spoken digits (espeak-ng voices) → handwritten digits"
    data = "spoken-digits"                          # the data set it was trained on (the evaluation rebuilds it)
    audio_encoder = "../spoken-digits/audio_encoder.pt"
    generator = "../spoken-digits/generator.pt"
    multimodal = "../spoken-digits/multimodal.pt"   # optional, the three together: the multimodal feature-GAN path
    image_classifier = "../spoken-digits/image_classifier.pt"
    feature_image_generator = "../spoken-digits/feature_image_generator.pt"
    train_command = "imgsonic train s2i --preset spoken-digits"

Paths are relative to the TOML's folder. Any other key is an error that names it.

Shapes::

    mel (B, n_mels, window_frames) ─encode─► code (B, code_dim) ─generate(variety)─► images (B, C, S, S) in [0, 1]

Example
-------
>>> import torch
>>> imagination = Imagination.from_preset("spoken-digits")                      # doctest: +SKIP
>>> with torch.inference_mode():                                                 # doctest: +SKIP
...     images = imagination.imagine(torch.rand(2, 32, 32), n_samples=4, seed=0)
>>> tuple(images.shape)                                                          # doctest: +SKIP
(2, 4, 1, 16, 16)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from models.audio_encoder import AudioAutoencoder
from models.errors import CheckpointError, ParameterError
from models.image_classifier import ImageClassifier
from models.image_generator import ImageGenerator
from models.multimodal import MultimodalFeatures

__all__ = ["ImaginationPreset", "Imagination", "IMAGINE_PRESETS_DIR", "available_imagine_presets", "load_imagine_preset",
           "is_imagine_preset"]

IMAGINE_PRESETS_DIR = Path(__file__).parent / "presets" / "imagine"
_REQUIRED = ("audio_encoder", "generator")
_OPTIONAL_CHECKPOINTS = ("multimodal", "image_classifier", "feature_image_generator")
_TEXT = ("description", "data", "train_command")


@dataclass(frozen=True)
class ImaginationPreset:
    """A named sound → image preset; every path is absolute and exists."""

    name: str
    description: str
    data: str
    audio_encoder: Path
    generator: Path
    multimodal: Path | None
    image_classifier: Path | None
    feature_image_generator: Path | None
    train_command: str | None


def available_imagine_presets() -> list[str]:
    """Names of the sound → image presets in ``IMAGINE_PRESETS_DIR``, sorted."""
    return sorted(path.stem for path in IMAGINE_PRESETS_DIR.glob("*.toml")) if IMAGINE_PRESETS_DIR.is_dir() else []


def is_imagine_preset(name: str) -> bool:
    """True when ``name`` is a sound → image preset: a shipped name, or a path (a TOML, or the folder holding one)
    to a preset file with this format's required keys (an image ↔ sound preset's file has other keys)."""
    from models.registry import find_preset_file, is_preset_path

    if name in available_imagine_presets():
        return True
    if not is_preset_path(name):
        return False
    try:
        toml_path = find_preset_file(name)
        table = tomllib.loads(toml_path.read_text(encoding="utf-8")) if toml_path is not None else {}
    except (ParameterError, OSError, tomllib.TOMLDecodeError):
        return False
    return all(key in table for key in _REQUIRED)


def load_imagine_preset(name: str, *, folder: str | os.PathLike | None = None) -> ImaginationPreset:
    """Read ``<folder>/<name>.toml`` (default :data:`IMAGINE_PRESETS_DIR`) and check its files exist.

    ``name`` may also be a path (resolved by :func:`models.registry.find_preset_file`): the preset TOML
    (``runs/imagine/imagine/clips.toml``, as ``imgsonic train s2i`` writes it) or the folder that holds it.
    """
    from models.registry import find_preset_file, is_preset_path

    if folder is None and is_preset_path(str(name)) and str(name) not in available_imagine_presets():
        toml_path = find_preset_file(name)
        if toml_path is None:
            raise ParameterError(f"preset folder {str(name)!r} holds no sound → image preset file (.toml)")
        folder, name = toml_path.parent, toml_path.stem
    folder = Path(folder) if folder is not None else IMAGINE_PRESETS_DIR
    toml_path = folder / f"{name}.toml"
    if not toml_path.is_file():
        names = sorted(path.stem for path in folder.glob("*.toml")) if folder.is_dir() else []
        raise ParameterError(f"unknown sound → image preset {name!r}; available: {', '.join(names) or 'none'}")
    try:
        table = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise CheckpointError(f"preset file {toml_path} is not valid TOML: {error}") from error
    known = set(_REQUIRED + _OPTIONAL_CHECKPOINTS + _TEXT)
    unknown = sorted(set(table) - known)
    if unknown:
        raise CheckpointError(f"preset file {toml_path} has unknown key {unknown[0]!r}; known keys: {', '.join(sorted(known))}")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise CheckpointError(f"preset file {toml_path} lacks required key {missing[0]!r}")
    if not all(isinstance(value, str) for value in table.values()):
        raise CheckpointError(f"preset file {toml_path}: every value must be a string")
    paths = {key: (folder / table[key]).resolve() for key in _REQUIRED + _OPTIONAL_CHECKPOINTS if key in table}
    absent = [str(path) for path in paths.values() if not path.is_file()]
    given = [key for key in _OPTIONAL_CHECKPOINTS if key in paths]
    if given and len(given) != len(_OPTIONAL_CHECKPOINTS):
        raise CheckpointError(f"preset file {toml_path} names {', '.join(given)} but the multimodal path needs all of "
                              f"{', '.join(_OPTIONAL_CHECKPOINTS)}")
    if absent:
        how = f"reproduce it with: {table['train_command']}" if "train_command" in table else "no train_command given"
        raise CheckpointError(f"preset {name!r} is missing checkpoint {', '.join(absent)}; {how}")
    return ImaginationPreset(name=name, description=table.get("description", ""), data=table.get("data", ""),
                             audio_encoder=paths["audio_encoder"], generator=paths["generator"],
                             multimodal=paths.get("multimodal"), image_classifier=paths.get("image_classifier"),
                             feature_image_generator=paths.get("feature_image_generator"),
                             train_command=table.get("train_command"))


class Imagination(nn.Module):
    """The frozen audio encoder and the generator conditioned on its code, checked to fit; optionally the
    multimodal feature-GAN path: the multimodal layers and sound → image-feature generator
    (:class:`models.multimodal.MultimodalFeatures`), the image classifier whose features they use, and the
    generator conditioned on image features."""

    def __init__(self, *, audio_encoder: AudioAutoencoder, generator: ImageGenerator,
                 multimodal: MultimodalFeatures | None = None, image_classifier: ImageClassifier | None = None,
                 feature_image_generator: ImageGenerator | None = None) -> None:
        super().__init__()
        if generator.config.condition_dim != audio_encoder.config.code_dim:
            raise CheckpointError(f"the generator reads {generator.config.condition_dim}-dim codes but the audio encoder "
                                  f"makes {audio_encoder.config.code_dim}; use checkpoints trained together")
        if multimodal is not None and multimodal.config.audio_feature_dim != audio_encoder.config.code_dim:
            raise CheckpointError("the multimodal model reads other sound features than this audio encoder makes")
        self.audio_encoder = audio_encoder
        self.generator = generator
        self.multimodal = multimodal
        self.image_classifier = image_classifier
        self.feature_image_generator = feature_image_generator
        self.eval()

    @classmethod
    def from_preset(cls, name: str, *, folder: str | os.PathLike | None = None) -> Imagination:
        preset = load_imagine_preset(name, folder=folder)
        return cls(audio_encoder=AudioAutoencoder.from_checkpoint(preset.audio_encoder),
                   generator=ImageGenerator.from_checkpoint(preset.generator),
                   multimodal=MultimodalFeatures.from_checkpoint(preset.multimodal) if preset.multimodal else None,
                   image_classifier=ImageClassifier.from_checkpoint(preset.image_classifier) if preset.image_classifier else None,
                   feature_image_generator=(ImageGenerator.from_checkpoint(preset.feature_image_generator)
                                            if preset.feature_image_generator else None))

    @property
    def spectral_config(self) -> dict[str, Any]:
        return dict(self.audio_encoder.config.spectral)

    @property
    def window_frames(self) -> int:
        return self.audio_encoder.config.n_frames

    @property
    def code_dim(self) -> int:
        return self.audio_encoder.config.code_dim

    @property
    def image_size(self) -> int:
        return self.generator.config.image_size

    @property
    def image_channels(self) -> int:
        return self.generator.config.channels

    def encode(self, mel: Tensor) -> Tensor:
        """Mels ``(B, n_mels, window_frames)`` → codes ``(B, code_dim)``."""
        return self.audio_encoder.encode(mel)

    def generate(self, code: Tensor, *, variety: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Codes ``(B, code_dim)`` → images ``(B, C, S, S)``; ``variety`` keeps dropout on and draws noise (with
        ``generator``); without it the image is deterministic (dropout off, zero noise)."""
        noise = None
        if variety:
            noise = torch.randn(len(code), self.generator.config.noise_dim, generator=generator).to(code.device)
            if generator is not None:  # dropout draws from the global generator: seed it from ours
                torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return self.generator(code, noise, variety=variety)

    def imagine(self, mel: Tensor, *, n_samples: int = 1, variety: bool = True, seed: int | None = None) -> Tensor:
        """Mels ``(B, n_mels, window_frames)`` → images ``(B, n_samples, C, S, S)``.

        With ``variety`` each sample differs (test-time dropout and noise), reproducibly for a ``seed``;
        without it every sample is the same deterministic image.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ParameterError(f"n_samples={n_samples!r}; expected an int >= 1")
        code = self.encode(mel)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        repeated = code.repeat_interleave(n_samples, dim=0)
        images = self.generate(repeated, variety=variety, generator=generator)
        return images.unflatten(0, (len(code), n_samples))

    def imagine_through_features(self, mel: Tensor, *, variety: bool = False, seed: int | None = None) -> Tensor:
        """The feature-GAN path: mels → sound features → image features (feature-to-feature generator) → images
        ``(B, C, S, S)`` (feature-to-image generator). ParameterError when the preset has no multimodal path."""
        if self.multimodal is None or self.feature_image_generator is None:
            raise ParameterError("this preset has no multimodal feature-GAN path (train it: imgsonic train multimodal)")
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        code = self.encode(mel)
        noise = None
        if variety:
            noise = torch.randn(len(code), self.multimodal.config.noise_dim, generator=generator).to(code.device)
        features = self.multimodal.image_features_from_sound(code, noise, variety=variety)
        return self.feature_image_generator(features, None, variety=False)
