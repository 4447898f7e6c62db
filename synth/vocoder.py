"""Neural vocoder runtime: normalised log-mels → audio with a trained :class:`models.vocoder.Vocoder`.

The same interface as the phase-reconstruction baselines: :meth:`NeuralVocoder.vocode` is the offline
counterpart of :func:`synth.phase.mel_to_audio`, and :meth:`NeuralVocoder.stream` returns a
:class:`VocoderStream` whose ``push(frames) -> samples`` / ``flush()`` work like
:class:`synth.streaming.StreamingInverter`'s. A checkpoint trained for another spectral config is refused
with a :class:`~models.errors.CheckpointError` that lists the fields that differ.

Streaming output is the offline output cut at other places (equal up to float rounding, ~1e-6), delayed by
``latency_samples`` = look-ahead frames × hop + n_fft / 2 (2 × 256 + 512 samples = 46 ms by default).
Push chunks of ≥ 8 frames: every call has a fixed cost of a few dozen small torch operations.

Example
-------
>>> from synth.spectral import audio_to_mel
>>> vocoder = NeuralVocoder.from_checkpoint(shipped_vocoder_path())   # its own spectral config
>>> mel = audio_to_mel(torch.zeros(22050), config=vocoder.config)   # (n_mels, 87) at 22.05 kHz, hop 256
>>> vocoder.vocode(mel).shape
torch.Size([22272])
>>> stream = vocoder.stream()
>>> chunks = [stream.push(mel[:, i : i + 8]) for i in range(0, 87, 8)] + [stream.flush()]
>>> sum(len(chunk) for chunk in chunks)
22272
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from models.errors import ParameterError
from models.vocoder import Vocoder
from synth.spectral import SpectralConfig, check_mel

__all__ = ["NeuralVocoder", "VocoderStream", "VOCODERS_DIR", "shipped_vocoder_path"]

VOCODERS_DIR = Path(__file__).resolve().parent.parent / "models" / "presets" / "vocoders"


def shipped_vocoder_path(name: str = "spectral-default") -> Path:
    """Path of a vocoder checkpoint shipped in ``models/presets/vocoders/`` (``<name>.pt``)."""
    path = VOCODERS_DIR / f"{name}.pt"
    if not path.is_file():
        shipped = sorted(p.stem for p in VOCODERS_DIR.glob("*.pt")) if VOCODERS_DIR.is_dir() else []
        raise ParameterError(
            f"no shipped vocoder {name!r}; shipped: {', '.join(shipped) or 'none'}. Train one with "
            f"'imgsonic train vocoder --preset PRESET' and pass it with --vocoder-checkpoint, or use a "
            f"phase method (--vocoder pghi+fgla)"
        )
    return path


class NeuralVocoder:
    """A trained vocoder bound to the spectral config it was trained for.

    Parameters
    ----------
    model : Vocoder
        Put in eval mode; its weights are not changed.
    config : SpectralConfig, optional
        The caller's spectral config, checked against the model's (CheckpointError if they differ);
        default: the model's own.
    """

    def __init__(self, model: Vocoder, *, config: SpectralConfig | None = None) -> None:
        own = SpectralConfig.from_dict(model.config.spectral) if model.config.spectral else None
        if config is None:
            if own is None:
                raise ParameterError("the vocoder's config has no spectral config; pass config=SpectralConfig(...)")
            config = own
        model.check_spectral(config.to_dict())
        self.model = model.eval()
        self.config = config
        self.latency_samples = model.config.latency_samples

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, config: SpectralConfig | None = None) -> NeuralVocoder:
        """Load a ``vocoder`` checkpoint (CheckpointError if unreadable, of another kind or another config)."""
        return cls(Vocoder.from_checkpoint(path), config=config)

    def _check(self, mel: Any) -> torch.Tensor:
        mel = check_mel(mel, config=self.config)
        return mel.to(device=self.model.head.weight.device, dtype=self.model.head.weight.dtype)

    def vocode(self, mel: Any) -> torch.Tensor:
        """Audio from normalised log-mels, offline.

        Parameters
        ----------
        mel : Tensor or array ``(..., n_mels, n_frames)``, values in [0, 1]

        Returns
        -------
        Tensor ``(..., n_frames * hop_length)``, float32, on the model's device.
        """
        mel = self._check(mel)
        batch_shape = mel.shape[:-2]
        with torch.inference_mode():
            audio = self.model(mel.reshape(-1, *mel.shape[-2:]))
        return audio.reshape(*batch_shape, audio.shape[-1])

    def stream(self, *, batch_size: int | None = None) -> VocoderStream:
        """A new stream; ``batch_size`` None takes single mels ``(n_mels, n)``, an int takes ``(B, n_mels, n)``."""
        return VocoderStream(self, batch_size=batch_size)


class VocoderStream:
    """Mel frames in, audio out, with the state carried between calls (create with :meth:`NeuralVocoder.stream`).

    ``push(mel)`` returns the samples finished so far — ``n * hop`` per ``n`` frames once primed, fewer
    during the first ``latency_samples`` — and ``flush()`` the rest; all outputs concatenated equal
    :meth:`NeuralVocoder.vocode` of all frames. For live use call it with ``torch.set_num_threads(1)``.
    """

    def __init__(self, vocoder: NeuralVocoder, *, batch_size: int | None) -> None:
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
            raise ParameterError(f"batch_size={batch_size!r}; expected None or an int >= 1")
        self.vocoder = vocoder
        self.batch_size = batch_size
        self.latency_samples = vocoder.latency_samples
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next frame starts a new signal."""
        self._state = self.vocoder.model.init_state(batch_size=self.batch_size or 1)

    def _as_batch(self, mel: Any) -> torch.Tensor:
        mel = self.vocoder._check(mel)
        n_mels = self.vocoder.config.n_mels
        if self.batch_size is None:
            if mel.ndim == 1 or mel.ndim > 2:
                raise ParameterError(f"mel frames have shape {tuple(mel.shape)}; this stream takes ({n_mels}, n)")
            return mel[None]
        if mel.ndim != 3 or mel.shape[0] != self.batch_size:
            raise ParameterError(
                f"mel frames have shape {tuple(mel.shape)}; this stream takes ({self.batch_size}, {n_mels}, n)"
            )
        return mel

    def _unbatch(self, audio: torch.Tensor) -> torch.Tensor:
        return audio[0] if self.batch_size is None else audio

    def push(self, mel: Any) -> torch.Tensor:
        """Feed the next frames ``(n_mels, n)`` (or ``(B, n_mels, n)``); returns the audio finished so far."""
        with torch.inference_mode():
            return self._unbatch(self.vocoder.model.step(self._as_batch(mel), self._state))

    def flush(self) -> torch.Tensor:
        """End the signal: returns the remaining samples and resets the stream."""
        with torch.inference_mode():
            tail = self._unbatch(self.vocoder.model.flush(self._state))
        self.reset()
        return tail
