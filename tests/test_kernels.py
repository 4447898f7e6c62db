"""The compiled kernels compute what the numpy/torch code they replace computes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from synth import kernels, phase
from synth.spectral import SpectralConfig, audio_to_mel, mel_filterbank, mel_to_magnitude, normalized_db_to_amplitude

CFG = SpectralConfig()


def _amplitude(dtype: torch.dtype) -> torch.Tensor:
    t = torch.arange(3 * 8000, dtype=torch.float64) / CFG.sample_rate
    audio = torch.stack([0.5 * torch.sin(2 * math.pi * (200 * t + 300 * t**2)),
                         0.3 * torch.sin(2 * math.pi * 440 * t) * (t < 0.3) + 0.01 * torch.randn(t.shape, dtype=t.dtype)])
    return normalized_db_to_amplitude(audio_to_mel(audio.to(dtype), config=CFG), config=CFG)


def test_filter_slopes_rebuild_the_mel_filterbank_and_refuse_other_shapes():
    fb = mel_filterbank(config=CFG).numpy()
    lower, fall, rise = kernels.filter_slopes(fb)
    rebuilt = np.zeros((fb.shape[0] + 1, fb.shape[1]), dtype=fb.dtype)
    rebuilt[lower, np.arange(fb.shape[1])] += fall
    rebuilt[lower + 1, np.arange(fb.shape[1])] += rise
    np.testing.assert_array_equal(rebuilt[:-1], fb)
    assert not rebuilt[-1].any()
    three = fb.copy()
    three[:3, 40] = 1.0  # a bin in three filters
    assert kernels.filter_slopes(three) is None
    apart = np.zeros_like(fb)
    apart[[0, 2], 5] = 1.0  # a bin in two filters that are not neighbours
    assert kernels.filter_slopes(apart) is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("over_relaxed", [False, True])
def test_mel_to_magnitude_kernel_equals_the_torch_steps(monkeypatch, dtype, over_relaxed):
    from synth import spectral

    amplitude = _amplitude(dtype)
    assert spectral._nnls_kernel_applies(amplitude, CFG)
    options = {"n_iter": 15, "over_relaxed": True} if over_relaxed else {}
    fast = mel_to_magnitude(amplitude, config=CFG, **options)
    torch.testing.assert_close(mel_to_magnitude(amplitude[1], config=CFG, **options), fast[1], rtol=0, atol=0)
    monkeypatch.setattr(spectral, "_nnls_kernel_applies", lambda mel, config: False)
    general = mel_to_magnitude(amplitude, config=CFG, **options)
    assert fast.shape == general.shape == (2, CFG.n_freqs, amplitude.shape[-1]) and fast.dtype == dtype
    tolerance = (1e-5 if dtype == torch.float32 else 1e-12) * (10 if over_relaxed else 1)
    torch.testing.assert_close(fast, general, rtol=tolerance, atol=tolerance * float(general.max()))


def test_more_nnls_steps_fit_the_mel_closer_and_over_relaxed_ones_faster():
    """The estimate's own mel error falls with every plain step; 10 over-relaxed steps get further than 10
    plain ones (a sum of partials spread over the bands: the pseudo-inverse alone misses it most)."""
    amplitude = _amplitude(torch.float64)

    def mel_error(**options) -> float:
        magnitude = mel_to_magnitude(amplitude, config=CFG, **options).contiguous()
        fitted = mel_filterbank(config=CFG).double() @ magnitude
        return float((fitted.clamp_min(1e-6).log() - amplitude.clamp_min(1e-6).log()).abs().mean())

    errors = [mel_error(n_iter=n) for n in (0, 5, 10, 20)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.8 * errors[1]
    assert mel_error(n_iter=10, over_relaxed=True) < errors[2]


def test_pghi_kernel_equals_the_per_frame_steps_bit_for_bit():
    """``pghi_phase`` runs the recursion compiled; the streaming inverter runs ``pghi_step`` frame by frame:
    the two must agree exactly (a live stream equals the offline render)."""
    magnitude = mel_to_magnitude(_amplitude(torch.float64), config=CFG)
    b, k, t = magnitude.shape
    mag = np.ascontiguousarray(magnitude.numpy().transpose(2, 0, 1))
    terms = phase.pghi_terms(mag, config=CFG, first_frame=0, has_previous=False)
    time_step, use_time, anchor, offset = (term.reshape(t, b * k) for term in terms)
    stepped = np.empty((t, b * k))
    previous = np.zeros(b * k)
    for m in range(t):
        previous = phase.pghi_step(previous, time_step[m], use_time[m], anchor[m], offset[m], out=stepped[m])
    compiled = np.empty((t, b * k))
    kernels.pghi_integrate(time_step, use_time, anchor, offset, compiled)
    np.testing.assert_array_equal(compiled, stepped)
