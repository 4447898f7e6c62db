"""Phase reconstruction: STFT magnitudes (or normalised log-mels) → audio.

Methods
-------
``griffinlim``
    Fast Griffin-Lim (Perraudin et al. 2013: Griffin-Lim with momentum), seeded random initial phase.
``pghi``
    Phase-gradient integration (Průša et al. 2017) for a Hann window modelled as a Gaussian with
    γ = 0.25645·n_fft². Non-iterative.
``pghi+fgla`` (default)
    PGHI's phase refined by a few fast Griffin-Lim iterations: the quality of ~100 plain iterations at a
    fraction of the cost.

How PGHI is computed here
-------------------------
The heap of the original algorithm is sequential over every bin. Here the same integration paths are
chosen per frame with vectorised operations, which keeps the whole method one small recursion per frame
and lets the streaming inverter (:mod:`synth.streaming`) run the identical code one frame at a time:

* every significant bin climbs the log-magnitude to its spectral peak (pointer jumping);
* a peak's phase is integrated **in time** from the previous frame with the instantaneous frequency
  ``k + n_fft²/(2πγ)·∂s/∂k`` (trapezoid rule) — the heap's choice for stationary partials;
* the other bins of the peak's region are integrated **in frequency** from the peak with the
  ``-γ/(n_fft·hop)·∂s/∂m`` gradient (the heap's choice inside a lobe);
* at an onset (a peak at least ``onset_db`` louder than the same bin one frame earlier) the region is
  joined in frequency to the frame's largest peak instead, as the heap does when the new frame dominates;
* bins more than ``tol_db`` below the loudest nearby frame get a fixed pseudo-random phase (they are noise).

Phases are computed in the frame-centred convention and shifted to ``torch.stft``'s convention at the end.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from models.errors import ParameterError
from synth.spectral import (
    SpectralConfig,
    audio_to_stft,
    check_mel,
    mel_to_magnitude,
    normalized_db_to_amplitude,
    stft_to_audio,
)

__all__ = ["METHODS", "DEFAULT_N_ITER", "magnitude_to_audio", "mel_to_audio", "pghi_phase", "griffinlim"]

METHODS = ("pghi+fgla", "pghi", "griffinlim")
DEFAULT_N_ITER = {"pghi+fgla": 16, "pghi": 0, "griffinlim": 32}

PGHI_GAMMA_FACTOR = 0.25645  # γ = 0.25645·n_fft² for a Hann window (Průša et al.)
_EPS = 1e-10


def _diff(s: torch.Tensor, dim: int) -> torch.Tensor:
    """Central difference along ``dim``, one-sided at the edges (zero if the axis has one element)."""
    n = s.shape[dim]
    if n == 1:
        return torch.zeros_like(s)
    d = torch.empty_like(s)
    if n > 2:
        d.narrow(dim, 1, n - 2).copy_((s.narrow(dim, 2, n - 2) - s.narrow(dim, 0, n - 2)) / 2)
    d.narrow(dim, 0, 1).copy_(s.narrow(dim, 1, 1) - s.narrow(dim, 0, 1))
    d.narrow(dim, n - 1, 1).copy_(s.narrow(dim, n - 1, 1) - s.narrow(dim, n - 2, 1))
    return d


def _climb_to_peaks(s: torch.Tensor) -> torch.Tensor:
    """For each bin of ``s`` ``(..., K)``, the index of the local maximum reached by steepest ascent."""
    k = s.shape[-1]
    neg_inf = torch.full_like(s[..., :1], -math.inf)
    padded = torch.cat([neg_inf, s, neg_inf], dim=-1)
    # candidates ordered (self, left, right): argmax returns the first maximum, so ties stay put
    candidates = torch.stack([padded[..., 1:-1], padded[..., :-2], padded[..., 2:]], dim=-1)
    step = candidates.argmax(dim=-1)
    offsets = torch.tensor([0, -1, 1], device=s.device)
    idx = torch.arange(k, device=s.device) + offsets[step]
    for _ in range(max(1, math.ceil(math.log2(k)))):
        idx = torch.gather(idx, -1, idx)
    return idx


def _pseudo_random_phase(n_freqs: int, frame_index: torch.Tensor, *, like: torch.Tensor) -> torch.Tensor:
    """Deterministic phase per (frame, bin) so offline and streaming runs agree: shape ``(T, K)``."""
    k = torch.arange(n_freqs, device=like.device, dtype=torch.float64)
    m = frame_index.to(device=like.device, dtype=torch.float64)[:, None]
    x = torch.sin(m * 12.9898 + k * 78.233 + 0.5) * 43758.5453
    return (x - torch.floor(x)) * (2 * math.pi)


def pghi_terms(
    magnitude: torch.Tensor,
    *,
    config: SpectralConfig,
    first_frame: int,
    has_previous: bool,
    tol_db: float = 100.0,
    onset_db: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Everything PGHI needs per frame, computed for a block of frames at once.

    Parameters
    ----------
    magnitude : Tensor ``(B, K, T)``
        STFT magnitudes of consecutive frames ``first_frame …``; derivatives in time use the neighbours
        inside this block (central inside, one-sided at the block's edges).
    has_previous : bool
        Whether frame ``first_frame - 1`` exists (was phase-reconstructed already). Block column 0 is then
        that previous frame and only columns 1… get terms.

    Returns
    -------
    (time_step, use_time, anchor, offset), each ``(T', B, K)`` for the frames that get terms:
    ``phase[m] = (phase[m-1]·use_time[m] + time_step[m]).gather(anchor[m]) + offset[m]``.
    """
    b, k, t = magnitude.shape
    n_fft, hop = config.n_fft, config.hop_length
    gamma = PGHI_GAMMA_FACTOR * n_fft**2
    s = torch.log(magnitude.to(torch.float64) + _EPS)  # (B, K, T)
    bins = torch.arange(k, device=s.device, dtype=s.dtype)[None, :, None]

    inst_bin = bins + (n_fft**2 / (2 * math.pi * gamma)) * _diff(s, dim=1)
    fgrad = -(gamma / (n_fft * hop)) * _diff(s, dim=2)
    # phase offset of each bin from bin 0 by trapezoidal integration along frequency
    steps = (fgrad[:, 1:, :] + fgrad[:, :-1, :]) / 2
    freq_integral = torch.cat([torch.zeros_like(fgrad[:, :1, :]), torch.cumsum(steps, dim=1)], dim=1)

    frame_max = s.amax(dim=1)  # (B, T)
    context_max = frame_max.clone()
    if t > 1:
        context_max[:, 1:] = torch.maximum(context_max[:, 1:], frame_max[:, :-1])
        context_max[:, :-1] = torch.maximum(context_max[:, :-1], frame_max[:, 1:])
    significant = s >= (context_max[:, None, :] - tol_db * math.log(10) / 20)
    significant &= magnitude.to(torch.float64) > _EPS

    s_sig = torch.where(significant, s, torch.full_like(s, -math.inf)).transpose(1, 2)  # (B, T, K)
    anchor = _climb_to_peaks(s_sig)
    self_idx = torch.arange(k, device=s.device).expand_as(anchor)
    sig_t = significant.transpose(1, 2)
    anchor = torch.where(sig_t, anchor, self_idx)
    is_peak = sig_t & (anchor == self_idx)

    start = 1 if has_previous else 0
    s_t = s.transpose(1, 2)  # (B, T, K)
    prev_s = torch.cat([torch.full_like(s_t[:, :1], -math.inf), s_t[:, :-1]], dim=1)
    onset = is_peak & (prev_s < s_t - onset_db * math.log(10) / 20)
    if not has_previous:
        onset[:, 0] = is_peak[:, 0]  # the very first frame has nothing to integrate in time from

    # the frame's loudest peak: onset regions are joined to it in frequency
    loudest = s_sig.argmax(dim=-1, keepdim=True)  # (B, T, 1)
    joins_loudest = torch.gather(onset, -1, anchor) & sig_t
    anchor = torch.where(joins_loudest, loudest.expand_as(anchor), anchor)

    f_t = freq_integral.transpose(1, 2)
    offset = f_t - torch.gather(f_t, -1, anchor)
    frames = torch.arange(first_frame, first_frame + t, device=s.device)
    noise_phase = _pseudo_random_phase(k, frames, like=s)[None].expand(b, t, k)
    offset = torch.where(sig_t, offset, noise_phase)

    inst_t = inst_bin.transpose(1, 2)
    prev_inst = torch.cat([inst_t[:, :1], inst_t[:, :-1]], dim=1)
    time_step = (math.pi * hop / n_fft) * (prev_inst + inst_t)
    time_step = torch.remainder(time_step + math.pi, 2 * math.pi) - math.pi
    loudest_onset = torch.gather(onset, -1, loudest).expand_as(onset)
    use_time = sig_t & ~(onset | (joins_loudest & loudest_onset))
    use_time = use_time.to(s.dtype)
    time_step = time_step * use_time

    def frames_first(x: torch.Tensor) -> torch.Tensor:
        return x[:, start:].transpose(0, 1).contiguous()  # (T', B, K)

    return frames_first(time_step), frames_first(use_time), frames_first(anchor), frames_first(offset)


def pghi_step(
    previous_phase: torch.Tensor,
    time_step: torch.Tensor,
    use_time: torch.Tensor,
    anchor: torch.Tensor,
    offset: torch.Tensor,
) -> torch.Tensor:
    """One frame of the PGHI recursion; all arguments ``(B, K)``, phase in float64, frame-centred."""
    base = previous_phase * use_time + time_step
    return torch.remainder(torch.gather(base, -1, anchor) + offset, 2 * math.pi)


def centred_to_stft_phase(phase: torch.Tensor, *, n_freqs: int, dim: int) -> torch.Tensor:
    """Shift frame-centred phases to ``torch.stft``'s convention (frame starts at sample 0): ``-π·k``."""
    shape = [1] * phase.ndim
    shape[dim] = n_freqs
    k = torch.arange(n_freqs, device=phase.device, dtype=phase.dtype).reshape(shape)
    return phase - math.pi * k


def pghi_phase(magnitude: torch.Tensor, *, config: SpectralConfig) -> torch.Tensor:
    """PGHI phase (``torch.stft`` convention) for magnitudes ``(B, K, T)``; returns ``(B, K, T)``."""
    time_step, use_time, anchor, offset = pghi_terms(magnitude, config=config, first_frame=0, has_previous=False)
    b, k, t = magnitude.shape
    out = torch.empty(t, b, k, dtype=torch.float64, device=magnitude.device)
    phase = torch.zeros(b, k, dtype=torch.float64, device=magnitude.device)
    for m in range(t):
        phase = pghi_step(phase, time_step[m], use_time[m], anchor[m], offset[m])
        out[m] = phase
    out = out.permute(1, 2, 0)
    return centred_to_stft_phase(out, n_freqs=k, dim=1).to(magnitude.dtype)


def griffinlim(
    magnitude: torch.Tensor,
    *,
    config: SpectralConfig,
    n_iter: int,
    initial_phase: torch.Tensor | None = None,
    momentum: float = 0.99,
    seed: int = 0,
) -> torch.Tensor:
    """Fast Griffin-Lim: magnitudes ``(B, K, T)`` → audio ``(B, T·hop)``.

    ``initial_phase`` (``torch.stft`` convention) defaults to a seeded uniform random phase.
    """
    if not 0.0 <= momentum < 1.0:
        raise ParameterError(f"momentum={momentum} must be in [0, 1)")
    if initial_phase is None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        initial_phase = (torch.rand(magnitude.shape, generator=gen, dtype=magnitude.dtype) * 2 * math.pi).to(
            magnitude.device
        )
    t = magnitude.shape[-1]
    angles = torch.polar(torch.ones_like(magnitude), initial_phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = audio_to_stft(stft_to_audio(magnitude * angles, config=config), config=config)[..., :t]
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    return stft_to_audio(magnitude * angles, config=config)


def magnitude_to_audio(
    magnitude: Any,
    *,
    config: SpectralConfig,
    method: str = "pghi+fgla",
    n_iter: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Audio from STFT magnitudes ``(..., n_freqs, n_frames)`` → ``(..., n_frames·hop)``, same device.

    ``n_iter`` is the number of (fast) Griffin-Lim iterations; defaults per method in ``DEFAULT_N_ITER``.
    """
    if method not in METHODS:
        raise ParameterError(f"unknown phase method {method!r}; accepted: {', '.join(METHODS)}")
    n_iter = DEFAULT_N_ITER[method] if n_iter is None else n_iter
    if not isinstance(n_iter, int) or n_iter < 0:
        raise ParameterError(f"n_iter={n_iter!r} must be a non-negative integer")
    if method == "pghi" and n_iter:
        raise ParameterError(f"method 'pghi' takes no iterations (n_iter={n_iter}); use 'pghi+fgla'")
    magnitude = torch.as_tensor(magnitude)
    if magnitude.ndim < 2 or magnitude.shape[-2] != config.n_freqs or magnitude.shape[-1] == 0:
        raise ParameterError(
            f"magnitude must have shape (..., {config.n_freqs}, n_frames ≥ 1); got {tuple(magnitude.shape)}"
        )
    if not torch.isfinite(magnitude).all():
        raise ParameterError("magnitude contains NaN or inf values")
    magnitude = magnitude.float() if not magnitude.is_floating_point() else magnitude
    batch_shape = magnitude.shape[:-2]
    flat = magnitude.reshape(-1, *magnitude.shape[-2:])
    if method == "griffinlim":
        audio = griffinlim(flat, config=config, n_iter=n_iter, seed=seed)
    else:
        phase = pghi_phase(flat, config=config)
        audio = griffinlim(flat, config=config, n_iter=n_iter, initial_phase=phase)
    return audio.reshape(*batch_shape, audio.shape[-1])


def mel_to_audio(
    mel: Any,
    *,
    config: SpectralConfig,
    method: str = "pghi+fgla",
    n_iter: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Audio from normalised log-mel frames — the inverse of :func:`synth.spectral.audio_to_mel`.

    Parameters
    ----------
    mel : Tensor or array ``(..., n_mels, n_frames)``, values in ``[0, 1]``
        Any batch shape and device; the result stays on that device.
    method : {"pghi+fgla", "pghi", "griffinlim"}
    n_iter : int, optional
        Griffin-Lim iterations (default 16 for ``pghi+fgla``, 32 for ``griffinlim``).
    seed : int
        Seeds ``griffinlim``'s random initial phase (the others are deterministic).

    Returns
    -------
    Tensor ``(..., n_frames * hop_length)`` at ``config.sample_rate``.

    Example
    -------
    >>> from synth.spectral import SpectralConfig, audio_to_mel
    >>> cfg = SpectralConfig()
    >>> t = torch.arange(22050) / 22050
    >>> audio = mel_to_audio(audio_to_mel(torch.sin(2 * math.pi * 440 * t), config=cfg), config=cfg)
    >>> audio.shape
    torch.Size([22272])
    """
    mel = check_mel(mel, config=config)
    magnitude = mel_to_magnitude(normalized_db_to_amplitude(mel, config=config), config=config)
    return magnitude_to_audio(magnitude, config=config, method=method, n_iter=n_iter, seed=seed)
