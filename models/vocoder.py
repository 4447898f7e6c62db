"""A small Vocos-style neural vocoder: normalised log-mel frames → STFT magnitudes, offline and streaming.

Design (after Vocos, Siuzdak 2023): a 1-D ConvNeXt backbone runs at the frame rate and a linear head
predicts each frame's STFT log-magnitude; an inverse STFT turns frames into samples. All the work is at the
frame rate, so the model is cheap on a CPU.

What it learns is the mel → linear-magnitude inversion, the step that caps every phase-reconstruction
method: with 64–128 mel bands the pseudo-inverse smears each partial over a band, and measured here the
spectral convergence against the true spectrum stays ≈ 0.3–0.7 whatever the phase method, while the true
magnitudes with plain PGHI phase reach 0.17–0.24. A skip path (one linear map from the frame's mel to its
log-magnitudes, fitted by least squares before training) gives the smooth inverse; the backbone, seeing
``kernel_size`` frames of context, adds what a linear map cannot: sharp partials, harmonic structure, the
silence between partials.

Phase is not predicted. A feed-forward network trained briefly on a CPU predicts phases that do not cohere
across frames (measured: a Vocos-style phase head trained for 1000 steps here gave spectral convergence ≈
1.0, no better than noise), while phase-gradient heap integration (Průša et al.) of a good magnitude is
coherent by construction. The runtime (:mod:`synth.vocoder`) therefore completes this model's magnitudes
with :mod:`synth.phase`'s PGHI, offline and streaming; ``models`` does not import ``synth``.

Streaming. Every time-mixing layer is a convolution with bounded context: the input convolution sees
``lookahead_frames`` future frames, every ConvNeXt block is causal. Each convolution keeps a cache of its
last ``kernel_size - 1`` input frames across calls (zeros at the start, exactly the zero padding of the
whole-signal pass), so :meth:`Vocoder.step` on consecutive chunks returns the frames of
:meth:`Vocoder.forward`, cut at other places, equal up to float rounding, ``lookahead_frames`` frames late;
:meth:`Vocoder.flush` returns the last ones.

The spectral config is carried as a plain dict; callers compare theirs with :meth:`Vocoder.check_spectral`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints, check_spectral_match, config_to_dict
from models.errors import ParameterError

__all__ = ["VocoderConfig", "Vocoder", "VocoderState"]

# exp() of a larger log-magnitude overflows float16 and means a broken model anyway.
_MAX_LOG_MAGNITUDE = 11.0
_MIN_MAGNITUDE = 1e-6  # −120 dB: below every config's floor and the MR-STFT distance's 1e-5
_DEFAULT_DB_RANGE = (-90.0, 30.0)  # SpectralConfig's, for configs built without a spectral dict


@dataclass
class VocoderConfig:
    """Hyper-parameters that fully determine a :class:`Vocoder`.

    Parameters
    ----------
    n_mels : mel bands per input frame.
    n_fft, hop_length : the STFT's size and hop in samples (those of the spectral config).
    dim : channels of the backbone.
    intermediate_dim : hidden width of each ConvNeXt block's pointwise MLP.
    n_blocks : number of ConvNeXt blocks.
    kernel_size : width in frames of every convolution (≥ 1).
    lookahead_frames : future frames the input convolution sees, ``0 ≤ lookahead_frames < kernel_size``;
        the blocks are causal, so this is the model's whole look-ahead.
    mel_refine_steps : multiplicative steps that pull the predicted magnitudes' mel onto the input mel
        (see :meth:`Vocoder.refine_to_mel`); 0 leaves the prediction as it is.
    spectral : the synth spectral config (``SpectralConfig.to_dict()``) the training mels used.
    """

    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    dim: int = 128
    intermediate_dim: int = 256
    n_blocks: int = 4
    kernel_size: int = 7
    lookahead_frames: int = 2
    mel_refine_steps: int = 4
    spectral: dict[str, Any] = field(default_factory=dict)

    # sizes a checkpoint's config may state (checked before building: models.checkpoint.check_config_bounds)
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "n_mels": (1, 1024), "n_fft": (16, 16384), "hop_length": (1, 16384), "dim": (1, 4096),
        "intermediate_dim": (1, 16384), "n_blocks": (1, 64), "kernel_size": (1, 63), "lookahead_frames": (0, 62),
        "mel_refine_steps": (0, 64),
    }

    def __post_init__(self) -> None:
        if isinstance(self.mel_refine_steps, bool) or not isinstance(self.mel_refine_steps, int) or self.mel_refine_steps < 0:
            raise ParameterError(f"VocoderConfig.mel_refine_steps={self.mel_refine_steps!r}; expected an int >= 0")
        check_positive_ints(
            self, "n_mels", "n_fft", "hop_length", "dim", "intermediate_dim", "n_blocks", "kernel_size"
        )
        if isinstance(self.lookahead_frames, bool) or not isinstance(self.lookahead_frames, int) or not (
            0 <= self.lookahead_frames < self.kernel_size
        ):
            raise ParameterError(
                f"VocoderConfig.lookahead_frames={self.lookahead_frames!r}; expected an int in "
                f"[0, kernel_size={self.kernel_size})"
            )
        if not isinstance(self.spectral, dict):
            raise ParameterError(f"VocoderConfig.spectral is a {type(self.spectral).__name__}; expected a dict")
        self.spectral = config_to_dict(self.spectral)
        for name in ("n_mels", "n_fft", "hop_length"):
            given = self.spectral.get(name, getattr(self, name))
            if given != getattr(self, name):
                raise ParameterError(
                    f"VocoderConfig.{name}={getattr(self, name)} but spectral[{name!r}]={given}; they must agree"
                )

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1


@dataclass
class VocoderState:
    """What a stream carries between :meth:`Vocoder.step` calls (create with :meth:`Vocoder.init_state`).

    ``conv_caches[i]``: the last input frames of convolution ``i`` (input convolution first, ``(B, n_mels,
    ≤ kernel_size - 1)``; then each block's ``(B, kernel_size - 1, dim)``); ``n_frames_in`` counts the mel
    frames received.
    """

    conv_caches: list[Tensor]
    n_frames_in: int = 0


class _ConvNeXtBlock(nn.Module):
    """Causal depthwise conv → LayerNorm → pointwise MLP (GELU) → layer scale → residual, on ``(B, T, dim)``.

    Frames-major layout throughout: the depthwise convolution is a sum of ``kernel_size`` shifted,
    per-channel scaled copies, which on a CPU is several times faster than a grouped ``conv1d`` and needs
    no transposes around the pointwise layers.
    """

    def __init__(self, *, dim: int, intermediate_dim: int, kernel_size: int, layer_scale: float) -> None:
        super().__init__()
        self.dw_weight = nn.Parameter(torch.randn(kernel_size, dim) / kernel_size**0.5)
        self.dw_bias = nn.Parameter(torch.zeros(dim))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def _depthwise(self, padded: Tensor) -> Tensor:
        """Valid causal depthwise convolution of ``(B, n + k - 1, dim)`` → ``(B, n, dim)``."""
        kernel_size = self.dw_weight.shape[0]
        n = padded.shape[1] - kernel_size + 1
        out = padded[:, :n] * self.dw_weight[0] + self.dw_bias
        for j in range(1, kernel_size):
            out = out + padded[:, j : j + n] * self.dw_weight[j]
        return out

    def _mix_channels(self, x: Tensor) -> Tensor:
        return self.gamma * self.pwconv2(F.gelu(self.pwconv1(self.norm(x))))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, T, dim)`` → ``(B, T, dim)``, zero-padded on the left (causal)."""
        padded = F.pad(x, (0, 0, self.dw_weight.shape[0] - 1, 0))
        return x + self._mix_channels(self._depthwise(padded))

    def step(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """Streaming ``forward``: ``(B, n, dim)`` and the last input frames → ``(B, n, dim)`` and the new cache."""
        padded = torch.cat([cache, x], dim=1)
        n_keep = self.dw_weight.shape[0] - 1
        new_cache = padded[:, padded.shape[1] - n_keep :] if n_keep else padded[:, :0]
        return x + self._mix_channels(self._depthwise(padded)), new_cache




class Vocoder(CheckpointMixin, nn.Module):
    """ConvNeXt backbone + log-magnitude head (+ refinement to the mel): mels ``(B, n_mels, T)`` in [0, 1] →
    magnitudes ``(B, n_freqs, T)``.

    Levels are in the mel's normalised-dB unit (``db_floor`` at 0, ``db_ceiling`` at 1) before they become
    magnitudes, so the mel → magnitude map starts at the right scale; they may go below 0 (quieter than
    the mel's floor: the silence between partials).

    Examples
    --------
    >>> vocoder = Vocoder(VocoderConfig(dim=32, intermediate_dim=64, n_blocks=2)).eval()
    >>> mel = torch.rand(1, 80, 20)
    >>> with torch.inference_mode():
    ...     magnitude = vocoder(mel)
    ...     state = vocoder.init_state(batch_size=1)
    ...     parts = [vocoder.step(mel[..., :8], state), vocoder.step(mel[..., 8:], state), vocoder.flush(state)]
    >>> tuple(magnitude.shape), bool(torch.allclose(torch.cat(parts, -1), magnitude, rtol=1e-4))
    ((1, 513, 20), True)
    """

    checkpoint_kind = "vocoder"
    config_class = VocoderConfig

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.config = config
        self.skip = nn.Linear(config.n_mels, config.n_freqs)
        self.embed = nn.Conv1d(config.n_mels, config.dim, config.kernel_size)
        self.embed_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            _ConvNeXtBlock(
                dim=config.dim,
                intermediate_dim=config.intermediate_dim,
                kernel_size=config.kernel_size,
                layer_scale=1.0 / config.n_blocks,
            )
            for _ in range(config.n_blocks)
        )
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-6)
        self.head = nn.Linear(config.dim, config.n_freqs)
        # the backbone starts as a small correction to the skip path's inverse
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()
        db_floor = float(config.spectral.get("db_floor", _DEFAULT_DB_RANGE[0]))
        db_ceiling = float(config.spectral.get("db_ceiling", _DEFAULT_DB_RANGE[1]))
        # the mel filterbank (n_mels, n_freqs) the training mels were made with; set by the trainer (models
        # does not import synth) and saved with the weights
        self.register_buffer("filterbank", torch.zeros(config.n_mels, config.n_freqs))
        self.floor_amplitude = 10.0 ** (db_floor / 20.0)
        self.nepers_per_level = math.log(10.0) / 20.0 * (db_ceiling - db_floor)
        self.floor_nepers = math.log(10.0) / 20.0 * db_floor

    # ---- spectral config -------------------------------------------------------------------------
    def check_spectral(self, other: dict[str, Any]) -> None:
        """Raise CheckpointError unless ``other`` equals the spectral config this model was trained with."""
        check_spectral_match(self.config.spectral, other, model="vocoder")

    def _check_mel(self, mel: Tensor) -> None:
        if not isinstance(mel, Tensor) or mel.ndim != 3 or mel.shape[1] != self.config.n_mels:
            shape = tuple(mel.shape) if isinstance(mel, Tensor) else type(mel).__name__
            raise ParameterError(f"mel batch has shape {shape}; expected (B, {self.config.n_mels}, n_frames)")
        if not mel.is_floating_point():
            raise ParameterError(f"mel batch has dtype {mel.dtype}; expected floats in [0, 1]")

    # ---- frames → levels ---------------------------------------------------------------------------
    def _levels(self, x: Tensor, mel_frames: Tensor) -> Tensor:
        """Backbone output ``(B, n, dim)`` and the same frames' mels ``(B, n, n_mels)`` → levels ``(B, n, n_freqs)``."""
        return self.skip(mel_frames) + self.head(self.final_norm(x))

    def _magnitude(self, x: Tensor, mel_frames: Tensor) -> Tensor:
        """As :meth:`_levels`, then magnitudes refined to the mel: ``(B, n, n_freqs)``."""
        return self.refine_to_mel(self.levels_to_magnitude(self._levels(x, mel_frames)), mel_frames)

    def levels_to_magnitude(self, levels: Tensor) -> Tensor:
        """Levels (normalised dB, any shape) → linear magnitudes."""
        return torch.exp((levels * self.nepers_per_level + self.floor_nepers).clamp(max=_MAX_LOG_MAGNITUDE))

    def refine_to_mel(self, magnitude: Tensor, mel: Tensor) -> Tensor:
        """Pull magnitudes ``(B, n, n_freqs)`` towards the input mels ``(B, n, n_mels)``, frame by frame.

        ``mel_refine_steps`` multiplicative non-negative least-squares steps ``x ← x · Fᵀm / FᵀFx`` (as
        ``synth.spectral.mel_to_magnitude``, but starting from the prediction): each band's energy comes
        to what the mel says while the prediction's detail inside the band (which bins hold the partial)
        stays. A band at the mel's floor only says "this quiet or quieter", so there the target is the
        smaller of the floor and the prediction's own band value.
        """
        if self.config.mel_refine_steps == 0:
            return magnitude
        # bins outside every band (below f_min, above f_max) keep their prediction: the mel says nothing there
        lo, hi = self._covered_bins()
        if lo == hi:  # no filterbank yet (a model the trainer has not set up): nothing to refine towards
            return magnitude
        fb = self.filterbank[:, lo:hi]
        fb_t = fb.T
        db = mel * (self.nepers_per_level * 20.0 / math.log(10.0)) + 20.0 * math.log10(self.floor_amplitude)
        amplitude = torch.pow(10.0, db / 20.0)
        at_floor = mel <= 0.0
        # a floor keeps every band's sum away from 0, where the step's gradient (∝ 1/sum²) overflows
        magnitude = magnitude.clamp_min(_MIN_MAGNITUDE)
        inside = magnitude[..., lo:hi]
        for step in range(self.config.mel_refine_steps):
            if step:
                inside = inside.clamp_min(_MIN_MAGNITUDE)
            current = inside @ fb_t
            target = torch.where(at_floor, torch.minimum(current, amplitude), amplitude)
            inside = inside * ((target @ fb) / (current @ fb))
        return torch.cat([magnitude[..., :lo], inside, magnitude[..., hi:]], dim=-1)

    def _covered_bins(self) -> tuple[int, int]:
        """``(lo, hi)``: the frequency bins some mel band covers are ``lo … hi - 1`` (a mel filterbank's are
        one run); ``(0, 0)`` for an all-zero filterbank."""
        covered = (self.filterbank.sum(dim=0) > 0).nonzero().flatten().tolist()
        if not covered:
            return 0, 0
        lo, hi = covered[0], covered[-1] + 1
        if len(covered) != hi - lo:
            raise ParameterError("the vocoder's filterbank leaves a gap between its bands")
        return lo, hi

    def forward(self, mel: Tensor) -> Tensor:
        """Mels ``(B, n_mels, T)``, normalised log-mel in [0, 1] → STFT magnitudes ``(B, n_freqs, T)``.

        For speed call it under ``torch.inference_mode()``.
        """
        self._check_mel(mel)
        lookahead = self.config.lookahead_frames
        x = self.embed_norm(self.embed(F.pad(mel, (self.config.kernel_size - 1 - lookahead, lookahead))).transpose(1, 2))
        for block in self.blocks:
            x = block(x)
        return self._magnitude(x, mel.transpose(1, 2)).transpose(1, 2)

    # ---- streaming ---------------------------------------------------------------------------------
    def init_state(self, *, batch_size: int = 1) -> VocoderState:
        """A fresh stream state for ``batch_size`` signals (zeros stand for the frames before the start)."""
        reference = self.head.weight
        n_embed_left = self.config.kernel_size - 1 - self.config.lookahead_frames
        caches = [reference.new_zeros(batch_size, self.config.n_mels, n_embed_left)]
        caches += [reference.new_zeros(batch_size, self.config.kernel_size - 1, self.config.dim)] * len(self.blocks)
        return VocoderState(conv_caches=caches)

    def step(self, mel: Tensor, state: VocoderState) -> Tensor:
        """Feed the next mel frames ``(B, n_mels, n)`` of a stream; returns the magnitude frames finished.

        ``state`` is updated in place. Frame ``m`` comes out once frame ``m + lookahead_frames`` is in, so
        a call returns ``n`` frames once primed (fewer at first); :meth:`flush` returns the rest, and the
        concatenated output equals ``forward`` of all frames.
        """
        self._check_mel(mel)
        state.n_frames_in += mel.shape[-1]
        return self._step(mel, state)

    def flush(self, state: VocoderState) -> Tensor:
        """End the stream: run the look-ahead on zero frames (as ``forward`` pads) and return the last frames."""
        batch = state.conv_caches[0].shape[0]
        n_pending = min(self.config.lookahead_frames, state.n_frames_in)
        pad = state.conv_caches[0].new_zeros(batch, self.config.n_mels, self.config.lookahead_frames)
        out = self._step(pad, state)
        return out[..., out.shape[-1] - n_pending :]

    def _step(self, mel: Tensor, state: VocoderState) -> Tensor:
        """Input convolution over the cached frames and ``mel``, then blocks and head for the frames it finishes."""
        buffer = torch.cat([state.conv_caches[0], mel], dim=-1)
        kernel_size = self.config.kernel_size
        state.conv_caches[0] = buffer[..., max(0, buffer.shape[-1] - (kernel_size - 1)) :]
        n = buffer.shape[-1] - kernel_size + 1
        if n <= 0:
            return buffer.new_zeros(buffer.shape[0], self.config.n_freqs, 0)
        x = self.embed_norm(self.embed(buffer).transpose(1, 2))
        for index, block in enumerate(self.blocks, start=1):
            x, state.conv_caches[index] = block.step(x, state.conv_caches[index])
        # output frame i's window is buffer[i : i + kernel_size]; its own mel sits lookahead frames before the end
        own = kernel_size - 1 - self.config.lookahead_frames
        mel_frames = buffer[..., own : own + n].transpose(1, 2)
        return self._magnitude(x, mel_frames).transpose(1, 2)
