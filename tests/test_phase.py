"""PGHI internals (synth.phase): the peak climb against a plain walk, the per-frame recursion in both of its
forms, batch independence, and silent input (no spectral peak anywhere)."""

import math

import numpy as np
import pytest
import torch

from synth.kernels import climb_to_peaks
from synth.phase import magnitude_to_audio, pghi_phase, pghi_step, pghi_terms
from synth.spectral import SpectralConfig, audio_to_magnitude
from synth.streaming import StreamingInverter

CFG = SpectralConfig()


def _walk(row: np.ndarray) -> np.ndarray:
    """Steepest ascent one step at a time: where each bin of ``row`` ``(K,)`` ends (-inf bins stay put)."""
    padded = np.concatenate([[-np.inf], row, [-np.inf]])
    ends = np.arange(row.size)
    for start in range(row.size):
        i = start
        while row[i] > -np.inf:
            step = int(np.argmax(padded[i : i + 3])) - 1  # the first maximum of (left, self, right)
            if step == 0:
                break
            i += step
        ends[start] = i
    return ends


@pytest.mark.parametrize("n_bins", [1, 2, 17, 64])
@pytest.mark.parametrize("n_levels", [3, 1000])
def test_climb_to_peaks_equals_a_step_by_step_walk(rng, n_bins, n_levels):
    for _ in range(20):
        # few levels: plateaus and ties everywhere; a fifth of the bins -inf (non-significant)
        row = rng.integers(0, n_levels, size=n_bins).astype(np.float64)
        row[rng.random(n_bins) < 0.2] = -np.inf
        peak, stays = np.empty(n_bins, dtype=np.int64), np.empty(n_bins, dtype=np.bool_)
        climb_to_peaks(row, peak, stays)
        expected = _walk(row)
        np.testing.assert_array_equal(peak, expected)
        np.testing.assert_array_equal(stays, expected == np.arange(n_bins))


def test_climb_to_peaks_of_all_minus_inf_stays_put():
    peak, stays = np.empty(5, dtype=np.int64), np.empty(5, dtype=np.bool_)
    climb_to_peaks(np.full(5, -np.inf), peak, stays)
    np.testing.assert_array_equal(peak, np.arange(5))
    assert stays.all()


def _noisy_chirp(seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(seconds * CFG.sample_rate)) / CFG.sample_rate
    chirp = 0.4 * torch.sin(2 * math.pi * (150 * t + 900 * t**2))
    return chirp + 0.02 * torch.randn(t.shape, generator=torch.Generator().manual_seed(0))


def test_pghi_batch_items_equal_their_single_results():
    magnitude = audio_to_magnitude(torch.stack([_noisy_chirp(), 0.1 * _noisy_chirp().flip(0)]), config=CFG)
    together = pghi_phase(magnitude, config=CFG)
    for i in range(2):
        assert torch.equal(together[i], pghi_phase(magnitude[i : i + 1], config=CFG)[0])


def test_pghi_step_gives_the_same_phase_with_and_without_buffers():
    # the streaming inverter steps (B, K) frames into new arrays, pghi_phase flattened ones into its output
    magnitude = audio_to_magnitude(torch.stack([_noisy_chirp(), _noisy_chirp(0.5) * 0.5]), config=CFG)
    block = magnitude.double().permute(2, 0, 1).contiguous().numpy()
    t, b, k = block.shape
    terms = pghi_terms(block, config=CFG, first_frame=0, has_previous=False)
    phase = np.zeros((b, k))
    flat_phase, out, scratch = np.zeros(b * k), np.empty((t, b * k)), np.empty(b * k)
    for m in range(t):
        phase = pghi_step(phase, *(term[m] for term in terms))
        flat_phase = pghi_step(flat_phase, *(term[m].ravel() for term in terms), out=out[m], scratch=scratch)
        np.testing.assert_array_equal(flat_phase, phase.ravel())
        assert np.all(np.abs(phase) <= math.pi)


def test_silent_magnitudes_reconstruct_to_silence():
    audio = magnitude_to_audio(torch.zeros(CFG.n_freqs, 12), config=CFG, method="pghi")
    assert audio.shape == (12 * CFG.hop_length,) and torch.all(audio == 0.0)
    phase = pghi_phase(torch.zeros(1, CFG.n_freqs, 12), config=CFG)
    assert torch.isfinite(phase).all()


@pytest.mark.parametrize("chunk", [1, 4])
def test_streaming_through_digital_silence_equals_offline(chunk):
    # frames with no significant bin at all (exact zeros) before and between sounds
    audio = _noisy_chirp(0.6)
    audio[: CFG.sample_rate // 5] = 0.0
    audio[CFG.sample_rate // 3 : CFG.sample_rate // 2] = 0.0
    magnitude = audio_to_magnitude(audio, config=CFG).numpy()
    offline = magnitude_to_audio(torch.from_numpy(magnitude), config=CFG, method="pghi").numpy()
    inverter = StreamingInverter(config=CFG)
    pieces = [inverter.push_frames(magnitude[:, i : i + chunk]) for i in range(0, magnitude.shape[1], chunk)]
    streamed = np.concatenate(pieces + [inverter.flush()])
    np.testing.assert_allclose(streamed[inverter.latency_samples :], offline, atol=1e-4 * np.abs(offline).max())
