"""A sound → image preset in the live visualizer: an adapter with the interface the streaming analyser reads.

:class:`bridge.visualize.StreamingVisualizer` (which :class:`bridge.live_visual.LiveVisualizer` runs on the
session's sound) reads a models object: ``spectral_config``, ``window_frames``, ``audio_latent_dim``,
``audio_vae.encode(windows) → (mu, logvar)``, ``audio_to_image_latent`` and ``decode_images``.
:class:`ImaginationVisualModels` gives those names to a :class:`models.imagination.Imagination`: a window's
"latent" is the audio encoder's code, the "image latent" is that same code (what ``/imgsonic/out/visual/z_img``
then sends), and an image is the generator's deterministic image for it. With the default ``--visualize-fps``
each frame is the one-second window centred on its time, so frames lag the sound by about half a second.

Example::

    imgsonic live --visualize output --visualize-preset spoken-digits --frames frames/

In Python: ``LiveVisualizer(session, models=ImaginationVisualModels(Imagination.from_preset("spoken-digits")))``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImaginationVisualModels"]


class _CodeEncoder:
    """``encode(windows) → (codes, None)``: the audio VAE's signature, for the streaming analyser."""

    def __init__(self, imagination) -> None:
        self._imagination = imagination

    def encode(self, mel):
        return self._imagination.encode(mel), None


class ImaginationVisualModels:
    """A :class:`models.imagination.Imagination` seen through the models interface of the streaming visualizer."""

    def __init__(self, imagination) -> None:
        self.imagination = imagination
        self.audio_vae = _CodeEncoder(imagination)

    @property
    def spectral_config(self) -> dict[str, Any]:
        return self.imagination.spectral_config

    @property
    def window_frames(self) -> int:
        return self.imagination.window_frames

    @property
    def audio_latent_dim(self) -> int:
        return self.imagination.code_dim

    def audio_to_image_latent(self, code):
        return code

    def decode_images(self, code):
        return self.imagination.generate(code, variety=False)
