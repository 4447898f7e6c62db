"""Vocoders: normalised log-mels → audio, behind one interface, chosen by name in one place.

Every vocoder has ``vocode(mel) -> audio`` (offline, any length) and ``stream()`` (a new stream with
``push(mel) -> samples``, ``flush()``, ``latency_samples`` and the split ``frames_of(mel)`` /
``push_frames(frames)`` for callers that cache a held sound's frames). :func:`load_vocoder` makes one from a
name in :data:`VOCODER_NAMES`: the phase methods of :mod:`synth.phase` (:class:`PhaseVocoder`; only
``pghi`` streams) or a trained :class:`NeuralVocoder`.

The neural vocoder runs a trained :class:`models.vocoder.Vocoder`.

The model predicts STFT magnitudes; phase comes from :mod:`synth.phase`'s PGHI, the same code the
``pghi`` method runs on the mel's pseudo-inverse magnitudes. So :meth:`NeuralVocoder.vocode` is
``magnitude_to_audio(model(mel), method="pghi")``, and :meth:`NeuralVocoder.stream` feeds the model's
streamed magnitude frames to a :class:`synth.streaming.StreamingInverter`: ``push(frames) -> samples`` /
``flush()`` like the inverter's own. A checkpoint trained for another spectral config is refused with a
:class:`~models.errors.CheckpointError` that lists the fields that differ.

Streaming output is the offline output delayed by ``latency_samples`` = (look-ahead frames + 1) × hop +
n_fft / 2 (the model's look-ahead, then the inverter's): equal up to float rounding. Push chunks of
≥ 8 frames: every call has a fixed cost of a few dozen small torch operations.

Example
-------
>>> from synth.spectral import audio_to_mel
>>> vocoder = NeuralVocoder.from_checkpoint(VOCODERS_DIR / "synth-16k.pt")   # its own spectral config
>>> mel = audio_to_mel(torch.zeros(16000), config=vocoder.config)   # (64, 63) at 16 kHz, hop 256
>>> vocoder.vocode(mel).shape
torch.Size([16128])
>>> stream = vocoder.stream()
>>> chunks = [stream.push(mel[:, i : i + 8]) for i in range(0, 63, 8)] + [stream.flush()]
>>> sum(len(chunk) for chunk in chunks) == 63 * 256 + stream.latency_samples
True
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import CheckpointError, ParameterError
from models.vocoder import Vocoder
from synth.phase import METHODS, griffinlim, mel_to_audio, pghi_phase
from synth.spectral import (
    SpectralConfig,
    check_mel,
    mel_filterbank,
    normalized_db_to_amplitude,
    stft_to_audio,
)
from synth.streaming import StreamingInverter

__all__ = ["VOCODER_NAMES", "FGLA_ITERATIONS", "PhaseVocoder", "NeuralVocoder", "VocoderStream", "VOCODERS_DIR",
           "load_vocoder"]

VOCODER_NAMES = (*METHODS, "neural", "neural+fgla")
FGLA_ITERATIONS = 12  # ``neural+fgla``: as many as pghi+fgla runs (benchmarks/vocoder.py measures both)
VOCODERS_DIR = Path(__file__).resolve().parent.parent / "models" / "presets" / "vocoders"  # the shipped ones


def load_vocoder(name: str, *, config: SpectralConfig, checkpoint: str | os.PathLike | None = None,
                 owner: str = "these models") -> PhaseVocoder | NeuralVocoder:
    """The vocoder ``name`` (one of :data:`VOCODER_NAMES`) for ``config``.

    The neural ones load ``checkpoint`` (the preset's vocoder, or one given on the command line); None is a
    ParameterError naming ``owner`` (e.g. the preset) and what to do.
    """
    if name not in VOCODER_NAMES:
        raise ParameterError(f"vocoder {name!r} is unknown; expected one of {', '.join(VOCODER_NAMES)}")
    if name in METHODS:
        return PhaseVocoder(method=name, config=config)
    if checkpoint is None:
        raise ParameterError(
            f"{owner} have no neural vocoder; train one with 'imgsonic train vocoder --preset NAME --export FILE.pt' "
            f"and pass it with --vocoder-checkpoint, or use a phase method (--vocoder pghi+fgla)"
        )
    n_iter = FGLA_ITERATIONS if name == "neural+fgla" else 0
    return NeuralVocoder.from_checkpoint(checkpoint, config=config, n_iter=n_iter)


class PhaseVocoder:
    """Phase reconstruction of the mel's pseudo-inverse magnitude (:func:`synth.phase.mel_to_audio`).

    Parameters
    ----------
    method : one of :data:`synth.phase.METHODS`; only ``"pghi"`` streams (:class:`synth.streaming.StreamingInverter`).
    config : SpectralConfig
    """

    def __init__(self, *, method: str, config: SpectralConfig) -> None:
        if method not in METHODS:
            raise ParameterError(f"phase method {method!r} is unknown; expected one of {', '.join(METHODS)}")
        self.method = method
        self.config = config

    def vocode(self, mel: Any) -> torch.Tensor:
        """Audio ``(..., n_frames * hop)`` from normalised log-mels ``(..., n_mels, n_frames)``."""
        return mel_to_audio(mel, config=self.config, method=self.method)

    def stream(self) -> StreamingInverter:
        """A new streaming inverter: ``pghi`` one frame at a time (the iterative methods cannot stream)."""
        if self.method != "pghi":
            raise ParameterError(f"vocoder {self.method!r} cannot stream (it iterates over the whole signal); "
                                 "live sound uses 'pghi' or 'neural'")
        return StreamingInverter(config=self.config)


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

    def __init__(self, model: Vocoder, *, config: SpectralConfig | None = None, n_iter: int = 0) -> None:
        own = SpectralConfig.from_dict(model.config.spectral) if model.config.spectral else None
        if config is None:
            if own is None:
                raise ParameterError("the vocoder's config has no spectral config; pass config=SpectralConfig(...)")
            config = own
        model.check_spectral(config.to_dict())
        if not torch.allclose(model.filterbank.cpu(), mel_filterbank(config=config), rtol=1e-4, atol=1e-7):
            raise CheckpointError("the vocoder's mel filterbank is not the one its spectral config makes; "
                                  "was it trained with training.train_vocoder?")
        self.model = model.eval()
        self.config = config
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise ParameterError(f"n_iter={n_iter!r} must be a non-negative integer")
        self.n_iter = n_iter
        # the model's look-ahead, then the streaming inverter's (one frame + half a window)
        self.latency_samples = (model.config.lookahead_frames + 1) * config.hop_length + config.n_fft // 2

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, config: SpectralConfig | None = None,
                        n_iter: int = 0) -> NeuralVocoder:
        """Load a ``vocoder`` checkpoint (CheckpointError if unreadable, of another kind or another config)."""
        return cls(Vocoder.from_checkpoint(path), config=config, n_iter=n_iter)

    def _check(self, mel: Any) -> torch.Tensor:
        mel = check_mel(mel, config=self.config)
        return mel.to(device=self.model.head.weight.device, dtype=self.model.head.weight.dtype)

    def magnitude(self, mel: Any) -> torch.Tensor:
        """Predicted STFT magnitudes ``(..., n_freqs, n_frames)`` of normalised log-mels ``(..., n_mels, n_frames)``."""
        return self._magnitude(self._check(mel))

    def _magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        batch_shape = mel.shape[:-2]
        with torch.inference_mode():
            magnitude = self.model(mel.reshape(-1, *mel.shape[-2:]))
        return magnitude.reshape(*batch_shape, *magnitude.shape[-2:])

    def vocode(self, mel: Any, *, n_iter: int | None = None) -> torch.Tensor:
        """Audio from normalised log-mels, offline: the model's magnitudes with PGHI phase.

        Parameters
        ----------
        mel : Tensor or array ``(..., n_mels, n_frames)``, values in [0, 1]
        n_iter : int
            Fast Griffin-Lim iterations after PGHI (``neural+fgla`` uses :data:`FGLA_ITERATIONS`). Each
            re-fits the magnitude to the mel in the bands above its floor and keeps the model's magnitude
            in the rest (:func:`synth.phase.griffinlim` with ``keep_floor``): the output's mel comes closer
            to the input at about 1 ms per audio second per iteration. 0 is what :meth:`stream` computes;
            None (the default) is the vocoder's own ``n_iter``.

        Returns
        -------
        Tensor ``(..., n_frames * hop_length)``, float32, on the model's device.
        """
        n_iter = self.n_iter if n_iter is None else n_iter
        if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
            raise ParameterError(f"n_iter={n_iter!r} must be a non-negative integer")
        mel = self._check(mel)
        magnitude = self._magnitude(mel)
        flat = magnitude.reshape(-1, *magnitude.shape[-2:])
        phase = pghi_phase(flat, config=self.config)
        if n_iter:
            amplitude = normalized_db_to_amplitude(mel, config=self.config).reshape(-1, *mel.shape[-2:])
            audio = griffinlim(flat, config=self.config, n_iter=n_iter, initial_phase=phase,
                               mel_amplitude=amplitude, keep_floor=True)
        else:
            # what magnitude_to_audio(method="pghi") computes, without its unit-phasor detour (a third of the time)
            audio = stft_to_audio(torch.polar(flat, phase), config=self.config)
        return audio.reshape(*magnitude.shape[:-2], audio.shape[-1])

    def stream(self, *, batch_size: int | None = None) -> VocoderStream:
        """A new stream; ``batch_size`` None takes single mels ``(n_mels, n)``, an int takes ``(B, n_mels, n)``."""
        return VocoderStream(self, batch_size=batch_size)


class VocoderStream:
    """Mel frames in, audio out, with the state carried between calls (create with :meth:`NeuralVocoder.stream`).

    ``push(mel)`` returns ``n * hop`` samples per ``n`` frames: :meth:`NeuralVocoder.vocode`'s output
    delayed by ``latency_samples`` (zeros first); ``flush()`` returns the last ``latency_samples``. For live
    use call it with one torch thread and one BLAS thread (see :class:`synth.streaming.StreamingInverter`).
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
        self._inverters = [StreamingInverter(config=self.vocoder.config) for _ in range(self.batch_size or 1)]

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

    def _invert(self, magnitude: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Magnitude frames ``(B, K, m)`` through the inverters → ``(B, n_samples)``, zeros on the left."""
        frames = magnitude.detach().cpu().double().numpy()
        audio = np.zeros((len(self._inverters), n_samples), dtype=np.float32)
        for row, inverter in enumerate(self._inverters):
            out = inverter.push_frames(frames[row])
            audio[row, n_samples - len(out) :] = out
        return torch.from_numpy(audio)

    def _unbatch(self, audio: torch.Tensor) -> torch.Tensor:
        return audio[0] if self.batch_size is None else audio

    def frames_of(self, mel: np.ndarray) -> np.ndarray:
        """What :meth:`push_frames` takes for mel frames ``(n_mels, n)``: the mel itself (the model is stateful,
        so nothing per frame can be computed ahead)."""
        return np.ascontiguousarray(mel, dtype=np.float32)

    def push_frames(self, frames: np.ndarray) -> np.ndarray:
        """:meth:`push` returning numpy (the interface :class:`synth.streaming.StreamingInverter` has too)."""
        return self.push(frames).numpy()

    def push(self, mel: Any) -> torch.Tensor:
        """Feed the next frames ``(n_mels, n)`` (or ``(B, n_mels, n)``); returns ``n * hop`` samples."""
        mel = self._as_batch(mel)
        with torch.inference_mode():
            magnitude = self.vocoder.model.step(mel, self._state)
        return self._unbatch(self._invert(magnitude, mel.shape[-1] * self.vocoder.config.hop_length))

    def flush(self) -> torch.Tensor:
        """End the signal: returns the last ``latency_samples`` samples (none if no frame came) and resets."""
        n_rows = len(self._inverters)
        if self._state.n_frames_in == 0:
            return self._unbatch(torch.zeros(n_rows, 0))
        with torch.inference_mode():
            magnitude = self.vocoder.model.flush(self._state)
        # a stream shorter than the look-ahead still ends latency_samples after its last frame
        n_head = self.latency_samples - self._inverters[0].latency_samples
        head = self._invert(magnitude, n_head)
        tail = torch.from_numpy(np.stack([inverter.flush() for inverter in self._inverters]))
        self.reset()
        return self._unbatch(torch.cat([head, tail], dim=-1))
