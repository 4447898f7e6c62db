"""Evaluation metrics on cases with known answers."""

import math

import numpy as np
import pytest
import torch

from models.errors import ParameterError
from training.datasets import make_squares
from training.metrics import (
    best_pairing,
    centroid_factor_match,
    distance_preservation,
    image_centroid_px,
    listener_proxy,
    log_mel_l1,
    loudness_db,
    mfcc_stats,
    multi_resolution_stft_distance,
    pitch_hz,
    precision_at_k,
    sliced_wasserstein,
    spearman,
    spectral_convergence,
)

SAMPLE_RATE = 22050


def _sine(f_hz, *, seconds=0.5, amplitude=1.0):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * np.asarray(f_hz, dtype=float)[..., None] * t)


# ---- rank statistics --------------------------------------------------------------------------------


def test_spearman_known_answers(rng):
    x = rng.normal(size=500)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -x**3) == pytest.approx(-1.0)
    assert abs(spearman(x, rng.normal(size=500))) < 0.1
    assert spearman(x, np.zeros(500)) == 0.0
    # ties take their average rank, as scipy does: ranks [0.5, 0.5, 2, 3] vs [0, 1, 2, 3]
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)


def test_spearman_rejects_bad_input():
    with pytest.raises(ParameterError, match="equal length"):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ParameterError, match="NaN"):
        spearman([1, np.nan, 3], [1, 2, 3])


def test_best_pairing_finds_the_swap_and_reports_leakage(rng):
    x, y = rng.uniform(size=(2, 2000))
    pitch, loudness = 40 + 40 * y, -30 + 20 * x  # x drives loudness, y drives pitch
    result = best_pairing(np.c_[x, y], np.c_[pitch, loudness])
    assert result["pairing"] == [1, 0]
    assert result["abs_rho"] == pytest.approx([1.0, 1.0])
    assert max(result["cross_leakage"]) < 0.1


def test_best_pairing_of_a_random_mapping_is_near_zero(rng):
    result = best_pairing(rng.uniform(size=(2000, 2)), rng.uniform(size=(2000, 2)))
    assert max(result["abs_rho"] + result["cross_leakage"]) < 0.1


def test_best_pairing_sees_leakage(rng):
    x, y = rng.uniform(size=(2, 2000))
    result = best_pairing(np.c_[x, y], np.c_[x + y, y])
    assert result["pairing"] == [0, 1]
    assert result["cross_leakage"][1] > 0.5


def test_distance_preservation(rng):
    latents = rng.normal(size=(200, 4))
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    assert distance_preservation(latents, latents) == pytest.approx(1.0)
    assert distance_preservation(latents, 3 * latents @ rotation + 7) == pytest.approx(1.0)
    assert abs(distance_preservation(latents, rng.normal(size=(200, 6)))) < 0.1


def test_precision_at_k(rng):
    labels = np.repeat(np.arange(5), 20)
    clustered = np.eye(5)[labels] * 100 + rng.normal(size=(100, 5))
    assert precision_at_k(clustered, labels, k=10) == 1.0
    random = precision_at_k(rng.normal(size=(1000, 5)), np.repeat(np.arange(5), 200), k=10)
    assert random == pytest.approx(0.2, abs=0.03)
    with pytest.raises(ParameterError, match="more than k=10"):
        precision_at_k(clustered[:10], labels[:10], k=10)


def test_sliced_wasserstein(rng):
    a = rng.normal(size=(2000, 4))
    assert sliced_wasserstein(a, a) == pytest.approx(0.0, abs=1e-12)
    shift = np.array([2.0, 0.0, 0.0, 0.0])  # expected |v| / sqrt(d) = 1
    assert sliced_wasserstein(a, a + shift, n_projections=1000) == pytest.approx(1.0, rel=0.05)
    # different sample sizes from one distribution are close
    assert sliced_wasserstein(a, rng.normal(size=(1000, 4))) < 0.1


def test_listener_proxy_separable_and_random(rng):
    labels = np.repeat(np.arange(10), 30)
    separable = np.eye(10)[labels] * 10 + rng.normal(size=(300, 10))
    result = listener_proxy(separable, labels, seed=1)
    assert result["accuracy"] == 1.0
    assert len(result["classes"]) == 3
    random = listener_proxy(rng.normal(size=(300, 8)), labels, n_repeats=200, seed=1)
    assert random["accuracy"] == pytest.approx(1 / 3, abs=0.05)


def test_listener_proxy_picks_the_most_distinct_classes(rng):
    labels = np.repeat(np.arange(5), 10)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [0.5, 0.5], [9.0, 0.5]])
    features = centres[labels] + 0.01 * rng.normal(size=(50, 2))
    assert sorted(listener_proxy(features, labels, seed=0)["classes"]) == [0, 1, 2]


def test_listener_proxy_is_seeded(rng):
    labels = np.repeat(np.arange(4), 15)
    features = rng.normal(size=(60, 3)) + labels[:, None] * 0.5
    assert listener_proxy(features, labels, seed=3) == listener_proxy(features, labels, seed=3)



# ---- images seen from sounds ----------------------------------------------------------------------------


def test_image_centroid_of_a_pixel_a_square_and_a_black_image():
    images = np.zeros((3, 1, 10, 12))
    images[0, 0, 7, 2] = 0.8
    images[1, 0, 2:6, 4:10] = 1.0  # rows 2–5, columns 4–9: centre (7.0, 4.0)
    centroids = image_centroid_px(torch.from_numpy(images))
    np.testing.assert_allclose(centroids, [[2.5, 7.5], [7.0, 4.0], [6.0, 5.0]])  # black: the image centre


def test_image_centroid_ignores_a_faint_glow_and_averages_channels():
    image = np.zeros((1, 3, 16, 16))
    image[0, :, 8:, 8:] = 0.3  # a faint glow over the lower right quarter
    image[0, 0, 1:4, 1:4] = 3.0  # a bright square centred at (2.5, 2.5), in one channel: 1.0 on average
    np.testing.assert_allclose(image_centroid_px(image), [[2.5, 2.5]])
    # without the threshold the glow pulls it towards the lower right
    assert image_centroid_px(image, threshold=0.0)[0, 0] > 2.5 + 1.0


def test_image_centroid_finds_the_squares_data_set_centres():
    images, factors = make_squares(50, size=32, seed=0)
    margin = 32 / 8 + 1.5  # half the square's side plus its soft edge: the data set's range of centres
    expected = margin + factors.numpy() * (32 - 2 * margin)
    # within a tenth of a pixel: the soft edge is sampled at pixel centres, so the thresholded blob is not
    # exactly symmetric (the evaluation therefore measures the data set's centres with this same function)
    np.testing.assert_allclose(image_centroid_px(images), expected, atol=0.1)


def test_image_centroid_rejects_bad_input():
    with pytest.raises(ParameterError, match="expected"):
        image_centroid_px(np.zeros((4, 4)))
    with pytest.raises(ParameterError, match="NaN"):
        image_centroid_px(np.full((1, 4, 4), np.nan))
    with pytest.raises(ParameterError, match="threshold"):
        image_centroid_px(np.zeros((1, 4, 4)), threshold=1.0)


def test_centroid_factor_match_known_answers(rng):
    pitch, level = rng.uniform(40, 80, 300), rng.uniform(-40, 0, 300)
    ranges = [(40.0, 80.0), (-40.0, 0.0)]
    centres = [(10.0, 50.0), (12.0, 52.0)]
    # pitch drives y downwards, level drives x: a perfect model in its own directions has no error
    x = 10 + 40 * (level + 40) / 40
    y = 12 + 40 * (1 - (pitch - 40) / 40)
    perfect = centroid_factor_match(np.c_[pitch, level], np.c_[x, y], factor_ranges=ranges, centre_ranges_px=centres)
    assert perfect["pairing"] == [1, 0]
    assert perfect["rho"] == pytest.approx([-1.0, 1.0])
    assert perfect["mean_error_px"] == pytest.approx(0.0, abs=1e-9)
    # every centroid 3 px right and 4 px down: 5 px away
    shifted = centroid_factor_match(np.c_[pitch, level], np.c_[x + 3, y + 4], factor_ranges=ranges,
                                    centre_ranges_px=centres)
    assert shifted["mean_error_px"] == pytest.approx(5.0)
    assert shifted["axis_error_px"] == pytest.approx([3.0, 4.0])
    np.testing.assert_allclose(shifted["truth_px"], np.c_[x, y])


def test_centroid_factor_match_rejects_bad_ranges():
    factors = np.c_[np.arange(5.0), np.arange(5.0)[::-1]]
    with pytest.raises(ParameterError, match="start ≠ stop"):
        centroid_factor_match(factors, factors, factor_ranges=[(0, 0), (0, 1)], centre_ranges_px=[(0, 1), (0, 1)])
    with pytest.raises(ParameterError, match=r"\(n, 2\)"):
        centroid_factor_match(factors[:, :1], factors[:, :1], factor_ranges=[(0, 1)] * 2, centre_ranges_px=[(0, 1)] * 2)


# ---- audio descriptors --------------------------------------------------------------------------------


def test_pitch_of_sines_from_100_to_1000_hz_within_one_percent():
    f_hz = np.geomspace(100.0, 1000.0, 31)
    estimate = pitch_hz(_sine(f_hz), sample_rate=SAMPLE_RATE)
    assert estimate.shape == f_hz.shape
    np.testing.assert_allclose(estimate, f_hz, rtol=0.01)
    assert float(pitch_hz(_sine(440.0), sample_rate=SAMPLE_RATE)) == pytest.approx(440.0, rel=0.01)


def test_pitch_ignores_harmonics_level_and_silence_padding():
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    rich = sum(np.sin(2 * np.pi * 220.0 * k * t) / k for k in range(1, 8))
    padded = np.r_[np.zeros(4000), 0.01 * rich, np.zeros(4000)]
    assert float(pitch_hz(rich, sample_rate=SAMPLE_RATE)) == pytest.approx(220.0, rel=0.01)
    assert float(pitch_hz(padded, sample_rate=SAMPLE_RATE)) == pytest.approx(220.0, rel=0.01)


def test_pitch_of_noise_and_silence_is_nan(rng):
    noise = rng.normal(size=SAMPLE_RATE // 2)
    assert np.isnan(pitch_hz(noise, sample_rate=SAMPLE_RATE))
    assert np.isnan(pitch_hz(np.zeros(SAMPLE_RATE // 2), sample_rate=SAMPLE_RATE))


def test_pitch_accepts_torch_and_rejects_impossible_ranges():
    audio = torch.from_numpy(_sine([300.0, 600.0])).float()
    np.testing.assert_allclose(pitch_hz(audio, sample_rate=SAMPLE_RATE), [300.0, 600.0], rtol=0.01)
    with pytest.raises(ParameterError, match="frame_length"):
        pitch_hz(audio, sample_rate=SAMPLE_RATE, f_min_hz=5.0)


def test_loudness_db():
    levels = loudness_db(_sine([440.0, 440.0], amplitude=np.array([[1.0], [0.1]])))
    np.testing.assert_allclose(levels, [-3.0103, -23.0103], atol=1e-3)
    assert float(loudness_db(np.zeros(100))) == -120.0


def test_mfcc_stats_shape_and_separation():
    stats = mfcc_stats(_sine([200.0, 210.0, 3000.0]), sample_rate=SAMPLE_RATE, n_mfcc=13)
    assert stats.shape == (3, 26)
    near, far = np.linalg.norm(stats[0] - stats[1]), np.linalg.norm(stats[0] - stats[2])
    assert near < far


# ---- spectral distances --------------------------------------------------------------------------------


def test_spectral_convergence_and_log_mel_l1():
    ref = torch.rand(3, 40, 20) + 0.1
    assert torch.all(spectral_convergence(ref, ref) == 0)
    torch.testing.assert_close(spectral_convergence(torch.zeros_like(ref), ref), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(spectral_convergence(1.25 * ref, ref), torch.full((3,), 0.25, dtype=torch.float64))
    torch.testing.assert_close(log_mel_l1(ref, ref + 0.2), torch.full((3,), 0.2, dtype=torch.float64))
    with pytest.raises(ParameterError, match="equal shapes"):
        log_mel_l1(ref, ref[:2])


def test_multi_resolution_stft_distance():
    a = torch.from_numpy(_sine([440.0, 880.0]))
    same = multi_resolution_stft_distance(a, a)
    assert same["spectral_convergence"].shape == (2,)
    assert torch.all(same["spectral_convergence"] == 0) and torch.all(same["log_magnitude_l1"] == 0)
    # a gain of 1/2 everywhere: SC = 1/2 against the reference, log-magnitude L1 ≈ ln 2 where above the floor
    half = multi_resolution_stft_distance(0.5 * a, a)
    torch.testing.assert_close(half["spectral_convergence"], torch.full((2,), 0.5, dtype=torch.float64))
    other = multi_resolution_stft_distance(torch.from_numpy(_sine([450.0, 300.0])), a)
    assert torch.all(other["spectral_convergence"] > 0.4)
    assert torch.all(half["log_magnitude_l1"] <= math.log(2) + 1e-9)
