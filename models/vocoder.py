"""A small Vocos-style neural vocoder: normalised log-mel frames → audio, offline and streaming.

Design (after Vocos, Siuzdak 2023): a 1-D ConvNeXt backbone runs at the frame rate, and a linear head
predicts each frame's complex STFT: log-magnitude (as a level in the mel's normalised-dB unit) and phase;
an inverse STFT (irfft, Hann window,
overlap-add normalised by the summed squared window, as ``torch.istft``) turns frames into samples. All
the work is at the frame rate, so the model is cheap on a CPU.

Phase is integrated, not predicted outright. A feed-forward, time-invariant network maps identical input
frames (a steady tone) to identical output frames, and identical frames overlap-add to a signal periodic in
the hop: only multiples of ``sample_rate / hop`` (86 Hz here) come out right — a 440 Hz tone came back at
431 Hz. So the head predicts, per bin, the phase advance over one hop relative to that of a partial at the
bin's centre frequency (``2π k hop / n_fft``) and PGHI's estimate from the slope of the predicted
log-magnitude across bins (``hop·n_fft/γ · ∂ln|S|/∂k``, Průša et al.), and the phase is the running sum of
the advances, starting from the centred window's ``π k`` (as phase-gradient heap integration does for tonal
bins). A steady partial at any frequency is then a constant output, mostly right from the magnitudes alone. The sum runs in float64 and is wrapped to [0, 2π),
and in streaming it is carried between calls like the convolution caches.

Streaming. Every time-mixing layer is a convolution with bounded context: the input convolution sees
``lookahead_frames`` future frames, every ConvNeXt block is causal. Each convolution keeps a cache of its
last ``kernel_size - 1`` input frames across calls (zeros at the start, exactly the zero padding of the
whole-signal pass), and the overlap-add carries its unfinished ``n_fft - hop`` samples and window
envelope. :meth:`Vocoder.step` on consecutive chunks therefore returns the whole-signal output of
:meth:`Vocoder.forward`, cut at other places, equal up to float rounding. Latency is
``lookahead_frames`` frames plus ``n_fft // 2`` samples.

Frames follow the project's convention (``synth.spectral``): frame ``m`` is centred on sample ``m * hop``
and ``n_frames`` frames give ``n_frames * hop`` samples.

``models`` does not import ``synth``: the spectral config is carried as a plain dict; callers compare
theirs with :meth:`Vocoder.check_spectral`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.checkpoint import CheckpointMixin, check_positive_ints, check_spectral_match, config_to_dict
from models.errors import ParameterError

__all__ = ["VocoderConfig", "Vocoder", "VocoderState"]

# exp() of a larger log-magnitude overflows float16 and means a broken model anyway.
_MAX_LOG_MAGNITUDE = 11.0
_ENVELOPE_EPS = 1e-11
_DEFAULT_DB_RANGE = (-90.0, 30.0)
_PGHI_GAMMA_FACTOR = 0.25645  # γ = 0.25645·n_fft² for a Hann window (Průša et al.), as synth.phase  # SpectralConfig's, for configs built without a spectral dict  # as torch.istft: samples no window covers stay 0 instead of dividing by 0


@dataclass
class VocoderConfig:
    """Hyper-parameters that fully determine a :class:`Vocoder`.

    Parameters
    ----------
    n_mels : mel bands per input frame.
    n_fft, hop_length : the inverse STFT's size and hop in samples (those of the spectral config).
    dim : channels of the backbone.
    intermediate_dim : hidden width of each ConvNeXt block's pointwise MLP.
    n_blocks : number of ConvNeXt blocks.
    kernel_size : width in frames of every convolution (odd or even, ≥ 1).
    lookahead_frames : future frames the input convolution sees, ``0 ≤ lookahead_frames < kernel_size``;
        the blocks are causal, so this is the model's whole look-ahead.
    spectral : the synth spectral config (``SpectralConfig.to_dict()``) the training mels used.
    """

    n_mels: int = 80
    n_fft: int = 1024
    hop_length: int = 256
    dim: int = 128
    intermediate_dim: int = 384
    n_blocks: int = 6
    kernel_size: int = 7
    lookahead_frames: int = 2
    spectral: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
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
        if self.n_fft % self.hop_length:
            raise ParameterError(
                f"VocoderConfig.n_fft={self.n_fft} is not a multiple of hop_length={self.hop_length}; "
                "the overlap-add needs n_fft = k * hop_length"
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
    def latency_samples(self) -> int:
        """Delay of the streaming output behind its input: look-ahead frames plus half a window."""
        return self.lookahead_frames * self.hop_length + self.n_fft // 2


@dataclass
class VocoderState:
    """What a stream carries between :meth:`Vocoder.step` calls (create with :meth:`Vocoder.init_state`).

    ``conv_caches[i]`` is ``(B, C, ≤ kernel_size - 1)``: the last input frames of convolution ``i``
    (input convolution first). ``ola`` and ``envelope`` ``(B, n_fft - hop)`` / ``(n_fft - hop,)`` are the
    overlap-added samples not finished yet; ``phase`` ``(B, n_freqs)`` float64 the last frame's phase; ``n_frames_out`` counts frames already overlap-added and
    ``n_frames_in`` the mel frames received.
    """

    conv_caches: list[Tensor]
    ola: Tensor
    envelope: Tensor
    phase: Tensor
    n_frames_in: int = 0
    n_frames_out: int = 0


def _frequency_slope(log_magnitude: Tensor) -> Tensor:
    """∂/∂k of ``(..., n_freqs)``: central differences, one-sided at the edges (float64)."""
    s = log_magnitude.double()
    return torch.cat([s[..., 1:2] - s[..., :1], (s[..., 2:] - s[..., :-2]) / 2, s[..., -1:] - s[..., -2:-1]], dim=-1)


def _cached_conv(conv: nn.Conv1d, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
    """Valid convolution of ``cat(cache, x)``; returns ``(out (B, C_out, n), new cache)``."""
    buffer = torch.cat([cache, x], dim=-1)
    n_keep = conv.kernel_size[0] - 1
    new_cache = buffer[..., -n_keep:] if n_keep else buffer[..., :0]
    if buffer.shape[-1] < conv.kernel_size[0]:
        return x.new_zeros(x.shape[0], conv.out_channels, 0), new_cache
    return conv(buffer), new_cache


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
    """ConvNeXt backbone + inverse-STFT head: mels ``(B, n_mels, T)`` in [0, 1] → audio ``(B, T * hop)``.

    Examples
    --------
    >>> vocoder = Vocoder(VocoderConfig(dim=32, intermediate_dim=64, n_blocks=2)).eval()
    >>> mel = torch.rand(1, 80, 20)
    >>> with torch.inference_mode():
    ...     audio = vocoder(mel)
    ...     state = vocoder.init_state(batch_size=1)
    ...     parts = [vocoder.step(mel[..., :8], state), vocoder.step(mel[..., 8:], state), vocoder.flush(state)]
    >>> tuple(audio.shape), bool(torch.allclose(torch.cat(parts, -1), audio, atol=1e-5))
    ((1, 5120), True)
    """

    checkpoint_kind = "vocoder"
    config_class = VocoderConfig

    def __init__(self, config: VocoderConfig) -> None:
        super().__init__()
        self.config = config
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
        self.head = nn.Linear(config.dim, config.n_fft + 2)
        # The head's magnitude outputs are levels in the input's unit (normalised dB, ``db_floor`` at 0,
        # ``db_ceiling`` at 1), so the mel → magnitude map starts at the right scale instead of needing
        # weights ~14× larger; it starts quiet (level 0.3) and with small random levels.
        db_floor = float(config.spectral.get("db_floor", _DEFAULT_DB_RANGE[0]))
        db_ceiling = float(config.spectral.get("db_ceiling", _DEFAULT_DB_RANGE[1]))
        self._nepers_per_level = math.log(10.0) / 20.0 * (db_ceiling - db_floor)
        self._floor_nepers = math.log(10.0) / 20.0 * db_floor
        with torch.no_grad():
            self.head.weight[: config.n_fft // 2 + 1].mul_(0.1)
            self.head.bias[: config.n_fft // 2 + 1].fill_(0.3)
        window = torch.hann_window(config.n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        bins = torch.arange(config.n_fft // 2 + 1, dtype=torch.float64)
        bin_advance = torch.remainder(2.0 * math.pi * bins * config.hop_length / config.n_fft, 2.0 * math.pi)
        self.register_buffer("bin_advance", bin_advance, persistent=False)
        self.register_buffer("phase_origin", torch.remainder(math.pi * bins, 2.0 * math.pi), persistent=False)
        # PGHI's instantaneous frequency k + n_fft²/(2πγ)·∂s/∂k (s = ln|S|, Hann window ≈ Gaussian of
        # γ = 0.25645·n_fft²) advances the phase by hop·n_fft/γ·∂s/∂k beyond the bin's own advance.
        self._advance_per_slope = config.hop_length / (_PGHI_GAMMA_FACTOR * config.n_fft)

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

    # ---- frames → STFT frames --------------------------------------------------------------------
    def _embed(self, x: Tensor) -> Tensor:
        """Input convolution output ``(B, dim, n)`` → normalised frames ``(B, n, dim)``."""
        return self.embed_norm(x.transpose(1, 2))

    def _frames_to_spectrum(self, x: Tensor, previous_phase: Tensor) -> tuple[Tensor, Tensor]:
        """Backbone output ``(B, n, dim)`` and the phase before it ``(B, n_freqs)`` (float64) → complex STFT
        frames ``(B, n, n_freqs)`` and the last frame's phase."""
        level, advance = self.head(self.final_norm(x)).chunk(2, dim=-1)
        log_magnitude = level * self._nepers_per_level + self._floor_nepers
        magnitude = torch.exp(log_magnitude.clamp(max=_MAX_LOG_MAGNITUDE))
        advance = advance.double() + self.bin_advance + self._advance_per_slope * _frequency_slope(log_magnitude.detach())
        phase = previous_phase[:, None] + torch.cumsum(advance, dim=1)
        phase = torch.remainder(phase, 2.0 * math.pi)
        return torch.polar(magnitude, phase.to(magnitude.dtype)), phase[:, -1]

    def _initial_phase(self, batch_size: int) -> Tensor:
        return self.phase_origin.expand(batch_size, -1).clone()

    def spectrum(self, mel: Tensor) -> Tensor:
        """Predicted complex STFT ``(B, n_freqs, T)`` of mels ``(B, n_mels, T)`` (torch.stft's convention)."""
        return self._spectrum_frames(mel).transpose(1, 2)

    def _spectrum_frames(self, mel: Tensor) -> Tensor:
        self._check_mel(mel)
        lookahead = self.config.lookahead_frames
        x = self._embed(self.embed(F.pad(mel, (self.config.kernel_size - 1 - lookahead, lookahead))))
        for block in self.blocks:
            x = block(x)
        return self._frames_to_spectrum(x, self._initial_phase(mel.shape[0]))[0]

    def _overlap_add(self, spectrum_frames: Tensor) -> tuple[Tensor, Tensor]:
        """STFT frames ``(B, n, n_freqs)`` → windowed, summed signal ``(B, (n - 1) * hop + n_fft)`` and its
        squared-window envelope ``((n - 1) * hop + n_fft,)``.

        ``n_fft`` is a multiple of ``hop``, so each frame is ``n_fft / hop`` hop-long pieces and the
        overlap-add is that many shifted adds (cheaper than ``F.fold`` and its transposes).
        """
        hop = self.config.hop_length
        n_pieces = self.config.n_fft // hop
        frames = torch.fft.irfft(spectrum_frames, n=self.config.n_fft, dim=-1) * self.window
        batch, n = frames.shape[:2]
        pieces = frames.view(batch, n, n_pieces, hop)
        window_pieces = (self.window**2).view(n_pieces, hop)
        signal = frames.new_zeros(batch, n + n_pieces - 1, hop)
        envelope = frames.new_zeros(n + n_pieces - 1, hop)
        for j in range(n_pieces):
            signal[:, j : j + n] += pieces[:, :, j]
            envelope[j : j + n] += window_pieces[j]
        return signal.view(batch, -1), envelope.view(-1)

    # ---- offline -----------------------------------------------------------------------------------
    def forward(self, mel: Tensor) -> Tensor:
        """Mels ``(B, n_mels, T)``, normalised log-mel in [0, 1] → audio ``(B, T * hop_length)``.

        For speed call it under ``torch.inference_mode()``.
        """
        spectrum_frames = self._spectrum_frames(mel)
        n_frames = spectrum_frames.shape[1]
        signal, envelope = self._overlap_add(spectrum_frames)
        start = self.config.n_fft // 2  # frame 0 is centred on sample 0
        stop = start + n_frames * self.config.hop_length
        return signal[:, start:stop] / envelope[start:stop].clamp_min(_ENVELOPE_EPS)

    # ---- streaming ---------------------------------------------------------------------------------
    def init_state(self, *, batch_size: int = 1) -> VocoderState:
        """A fresh stream state for ``batch_size`` signals (zeros stand for the frames before the start)."""
        reference = self.head.weight
        n_tail = self.config.n_fft - self.config.hop_length
        n_embed_left = self.config.kernel_size - 1 - self.config.lookahead_frames
        caches = [reference.new_zeros(batch_size, self.config.n_mels, n_embed_left)]
        caches += [reference.new_zeros(batch_size, self.config.kernel_size - 1, self.config.dim)] * len(self.blocks)
        return VocoderState(
            conv_caches=caches,
            ola=reference.new_zeros(batch_size, n_tail),
            phase=self._initial_phase(batch_size),
            envelope=reference.new_zeros(n_tail),
        )

    def step(self, mel: Tensor, state: VocoderState) -> Tensor:
        """Feed the next mel frames ``(B, n_mels, n)`` of a stream; returns the audio finished so far.

        ``state`` is updated in place. Once the stream is primed (after ``lookahead_frames`` frames and the
        first half window) each call returns ``n * hop`` samples; :meth:`flush` returns the rest, so the
        concatenated output equals ``forward`` of all frames.
        """
        self._check_mel(mel)
        state.n_frames_in += mel.shape[-1]
        x, state.conv_caches[0] = _cached_conv(self.embed, mel, state.conv_caches[0])
        return self._step_backbone(x, state)

    def flush(self, state: VocoderState) -> Tensor:
        """End the stream: run the look-ahead on zero frames (as ``forward`` pads) and return the tail."""
        if state.n_frames_in == 0:
            return state.ola.new_zeros(state.ola.shape[0], 0)
        lookahead = state.conv_caches[0].new_zeros(
            state.ola.shape[0], self.config.n_mels, self.config.lookahead_frames
        )
        x, state.conv_caches[0] = _cached_conv(self.embed, lookahead, state.conv_caches[0])
        finished = self._step_backbone(x, state)
        hop, half = self.config.hop_length, self.config.n_fft // 2
        tail_start = state.n_frames_out * hop - half  # signal sample at state.ola[:, 0]; < 0 for short signals
        skip = max(0, -tail_start)
        stop = state.n_frames_in * hop - tail_start
        tail = state.ola[:, skip:stop] / state.envelope[skip:stop].clamp_min(_ENVELOPE_EPS)
        state.ola = state.ola[:, :0]
        return torch.cat([finished, tail], dim=-1)

    def _step_backbone(self, x: Tensor, state: VocoderState) -> Tensor:
        if x.shape[-1] == 0:
            return state.ola.new_zeros(state.ola.shape[0], 0)
        x = self._embed(x)
        for index, block in enumerate(self.blocks, start=1):
            x, state.conv_caches[index] = block.step(x, state.conv_caches[index])
        spectrum_frames, state.phase = self._frames_to_spectrum(x, state.phase)
        signal, envelope = self._overlap_add(spectrum_frames)
        n_tail = state.ola.shape[-1]
        signal[:, :n_tail] += state.ola
        envelope[:n_tail] += state.envelope
        n_new = x.shape[1] * self.config.hop_length
        state.ola, state.envelope = signal[:, n_new:], envelope[n_new:]
        finished = signal[:, :n_new] / envelope[:n_new].clamp_min(_ENVELOPE_EPS)
        # samples before 0 (the first half window of frame 0) are not part of the signal
        n_before_start = max(0, self.config.n_fft // 2 - state.n_frames_out * self.config.hop_length)
        state.n_frames_out += x.shape[1]
        return finished[:, min(n_before_start, n_new) :]
