"""The loaded model bundle: image VAE, audio VAE and mapper with the vocoders for their spectral config.

A preset (or three explicit checkpoints, plus an optional neural vocoder checkpoint) loads once into a
:class:`ModelBundle`; everything that turns its latents into audio asks the bundle for a vocoder by name
(:meth:`ModelBundle.vocoder`), so the offline render, the live voice and the benchmarks choose vocoders the
same way, and explicit checkpoints never fall back to a preset's.

Example
-------
>>> bundle = load_bundle(preset="default")                  # doctest: +SKIP
>>> audio = bundle.vocoder("pghi+fgla").vocode(mel)         # doctest: +SKIP
>>> stream = bundle.vocoder("neural").stream()              # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.errors import ParameterError

if TYPE_CHECKING:
    from models.pipeline import SonificationModels
    from synth.spectral import SpectralConfig

__all__ = ["ModelBundle", "load_bundle"]


@dataclass
class ModelBundle:
    """The models, the neural vocoder checkpoint for ``neural`` vocoders (or None) and a label for messages.

    ``image_vae_path`` (the image VAE's checkpoint, when known) is where :meth:`latent_range` reads the
    training statistics of the image latents.
    """

    models: SonificationModels
    vocoder_path: Path | None
    label: str
    _vocoders: dict[str, Any] = field(default_factory=dict, repr=False)
    image_vae_path: Path | None = None
    _latent_range: Any = field(default=None, repr=False)

    @property
    def spectral(self) -> SpectralConfig:
        from synth.spectral import SpectralConfig

        return SpectralConfig.from_dict(self.models.spectral_config)

    def vocoder(self, name: str):
        """The vocoder ``name`` (:data:`synth.vocoder.VOCODER_NAMES`) for these models, loaded once."""
        if name not in self._vocoders:
            from synth.vocoder import load_vocoder

            self._vocoders[name] = load_vocoder(name, config=self.spectral, checkpoint=self.vocoder_path,
                                                owner=f"the models of {self.label!r}")
        return self._vocoders[name]

    def latent_range(self):
        """The :class:`bridge.control.latent_range.LatentRange` of the image latents, measured once."""
        if self._latent_range is None:
            from bridge.sonify.latent_stats import image_latent_range

            self._latent_range = image_latent_range(self.models, image_vae_path=self.image_vae_path)
        return self._latent_range


def load_bundle(
    *,
    preset: str | os.PathLike | None = None,
    image_vae: str | os.PathLike | None = None,
    audio_vae: str | os.PathLike | None = None,
    mapper: str | os.PathLike | None = None,
    vocoder: str | os.PathLike | None = None,
) -> ModelBundle:
    """Models from a preset or from three explicit checkpoints (not both); ``vocoder`` overrides the preset's."""
    from models.pipeline import SonificationModels

    explicit = [image_vae, audio_vae, mapper]
    if preset is not None and any(path is not None for path in explicit):
        raise ParameterError("give either --preset or --image-vae/--audio-vae/--mapper, not both")
    if preset is None and any(path is not None for path in explicit):
        if any(path is None for path in explicit):
            raise ParameterError("explicit checkpoints need all three of --image-vae, --audio-vae and --mapper")
        models = SonificationModels.from_paths(image_vae=image_vae, audio_vae=audio_vae, mapper=mapper)
        return ModelBundle(models, Path(vocoder) if vocoder else None, label=str(Path(mapper).parent),
                           image_vae_path=Path(image_vae))
    from models.registry import load_preset

    name = preset or "default"
    entry = load_preset(name)
    models = SonificationModels.from_paths(image_vae=entry.image_vae, audio_vae=entry.audio_vae, mapper=entry.mapper)
    return ModelBundle(models, Path(vocoder) if vocoder else entry.vocoder, label=str(name),
                       image_vae_path=entry.image_vae)
