"""training.losses on cases with known answers."""

import math

import pytest
import torch

from models.errors import ParameterError
from training import losses


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    assert float(losses.kl_divergence(torch.zeros(4, 3), torch.zeros(4, 3))) == 0.0
    # KL(N(1, 1) ‖ N(0, 1)) = 1/2 per dim
    assert math.isclose(float(losses.kl_divergence(torch.ones(4, 3), torch.zeros(4, 3))), 1.5, rel_tol=1e-6)


def test_vae_loss_adds_beta_times_kl():
    logits, target = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    loss, reconstruction, kl = losses.vae_loss(logits, target, mu, logvar, beta=2.0)
    assert math.isclose(float(reconstruction), 16 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(loss), float(reconstruction) + 2.0 * float(kl), rel_tol=1e-6)


def test_permute_dims_keeps_each_marginal_and_breaks_the_joint():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(512, 1)
    z = torch.cat([x, x], dim=1)  # perfectly dependent dims
    permuted = losses.permute_dims(z, generator=generator)
    assert permuted.shape == z.shape
    for dim in range(2):
        assert torch.equal(permuted[:, dim].sort().values, z[:, dim].sort().values)
    assert abs(torch.corrcoef(permuted.T)[0, 1]) < 0.2
    with pytest.raises(ParameterError):
        losses.permute_dims(torch.zeros(3))


def test_tc_discriminator_shapes_and_loss_at_chance():
    discriminator = losses.TCDiscriminator(3, hidden_width=8, depth=1)
    z = torch.randn(10, 3)
    assert discriminator(z).shape == (10,)
    nn_zero = losses.TCDiscriminator(3, hidden_width=8, depth=1)
    for parameter in nn_zero.parameters():
        torch.nn.init.zeros_(parameter)
    assert math.isclose(losses.discriminator_loss(nn_zero, z, z).item(), math.log(2), rel_tol=1e-6)
    assert losses.tc_estimate(nn_zero, z).item() == 0.0


def test_sliced_wasserstein_known_cases():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4)
    assert float(losses.sliced_wasserstein(x, x, generator=generator)) == 0.0
    assert float(losses.sliced_wasserstein(x, x[torch.randperm(256)], generator=generator)) < 1e-12
    # a shift by c along every axis moves each projection by c·(u·1): mean of (u·1)² over unit u is 1 for any D
    shifted = losses.sliced_wasserstein(x, x + 1.0, n_projections=4096, generator=generator)
    assert 0.9 < float(shifted) < 1.1
    with pytest.raises(ParameterError):
        losses.sliced_wasserstein(x, x[:10])


def test_locality_and_distance_losses():
    z = torch.randn(32, 3)
    assert float(losses.locality_loss(z, z)) == 0.0
    assert math.isclose(float(losses.locality_loss(z, z + 1)), 3.0, rel_tol=1e-6)
    rotation = torch.linalg.qr(torch.randn(3, 3))[0]
    assert float(losses.distance_loss(z, 2 * z @ rotation)) < 1e-8  # scale and rotation keep the geometry
    padded = torch.cat([z, torch.zeros(32, 2)], dim=1)
    assert float(losses.distance_loss(z, padded)) < 1e-8  # works across latent sizes
    assert float(losses.distance_loss(z, torch.randn(32, 5))) > 0.05
    with pytest.raises(ParameterError, match="distance_loss"):
        losses.locality_loss(z, padded)


def test_latent_stats_and_ramp():
    z = torch.tensor([[0.0, 1.0], [2.0, 1.0]])
    stats = losses.LatentStats(z, min_std=0.5)
    assert torch.allclose(stats.normalize(z)[:, 0], torch.tensor([-1.0, 1.0]) / math.sqrt(2))  # unbiased std √2
    assert torch.equal(stats.std[1], torch.tensor(0.5))  # a collapsed dim is clamped, not divided by 0
    assert losses.ramp(0.1, start=0.3, full=0.6) == 0.0
    assert losses.ramp(0.45, start=0.3, full=0.6) == pytest.approx(0.5)
    assert losses.ramp(0.9, start=0.3, full=0.6) == 1.0


def test_factor_loss_is_zero_when_the_first_dims_equal_the_factors():
    mu = torch.randn(16, 3)
    assert float(losses.factor_loss(mu, mu[:, :2])) == 0.0
    assert math.isclose(float(losses.factor_loss(mu, mu[:, :2] + 1.0)), 2.0, rel_tol=1e-6)
    with pytest.raises(ParameterError):
        losses.factor_loss(mu, torch.zeros(16, 4))


def test_pooled_level_loss_forgives_a_peak_one_band_off_but_not_power_moved_away():
    floor, ceiling = -100.0, 0.0
    target = torch.zeros(1, 16, 1)
    target[0, 5, 0] = 0.8  # one loud band at -20 dB
    kwargs = dict(db_floor=floor, db_ceiling=ceiling, pool_bands=3)
    assert float(losses.pooled_level_loss(target, target, **kwargs)) == 0.0
    shifted, moved = torch.zeros_like(target), torch.zeros_like(target)
    shifted[0, 6, 0] = 0.8
    moved[0, 15, 0] = 0.8
    assert float(losses.pooled_level_loss(shifted, target, **kwargs)) < 1e-3
    assert float(losses.pooled_level_loss(moved, target, **kwargs)) > 70.0**2  # the loud band sits ≈ 80 dB low
    with pytest.raises(ParameterError):
        losses.pooled_level_loss(target, target, db_floor=floor, db_ceiling=ceiling, pool_bands=2)


def test_log_distance_loss_ignores_scale_but_not_squeezed_neighbours():
    z = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    assert float(losses.log_distance_loss(z, 5.0 * z)) < 1e-8
    distances = torch.cdist(z, z) + torch.eye(32) * 1e9
    i, j = divmod(int(distances.argmin()), 32)
    squeezed = z.clone()
    squeezed[j] = squeezed[i] + 1e-3 * (squeezed[j] - squeezed[i])  # the closest pair made a near-duplicate
    assert float(losses.log_distance_loss(z, squeezed)) > 10 * float(losses.distance_loss(z, squeezed))
    with pytest.raises(ParameterError):
        losses.log_distance_loss(z[:1], z[:1])


def test_spread_loss_is_zero_for_typical_neighbours_and_grows_when_they_are_squeezed():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(16, 3, 8, 8, generator=generator)
    x_near = (x + 0.05 * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    mu, mu_near = x.flatten(1), x_near.flatten(1)  # the identity: every pair has the same latent/pixel ratio

    def squeeze(factor):  # the copies' latents moved `factor` of the way back towards the originals
        return mu + factor * (mu_near - mu)

    assert float(losses.spread_loss(mu, squeeze(1.5), x, x_near)) == 0.0  # farther apart than typical: free
    loss_10 = float(losses.spread_loss(mu, squeeze(0.1), x, x_near))
    loss_100 = float(losses.spread_loss(mu, squeeze(0.01), x, x_near))
    assert 0.0 < loss_10 < loss_100
    assert float(losses.spread_loss(7.0 * mu, 7.0 * squeeze(0.1), x, x_near)) == pytest.approx(loss_10, rel=1e-4)
    same = x[:1].expand(4, -1, -1, -1)  # no two different inputs: no typical ratio to compare with
    assert float(losses.spread_loss(mu[:4], mu_near[:4], same, x_near[:4])) == 0.0
    with pytest.raises(ParameterError):
        losses.spread_loss(mu[:1], mu_near[:1], x[:1], x_near[:1])
    with pytest.raises(ParameterError):
        losses.spread_loss(mu, mu_near[:, :2], x, x_near)


def test_file_cepstra_track_the_mfccs_of_the_file_a_mel_becomes():
    # sounds a 16 kHz model can hold (tones, noise bands, their mixes at several levels): their mels through
    # FileCepstra against torchaudio's MFCC statistics of the same sounds at 44.1 kHz, as the evaluation takes them
    import numpy as np
    import torchaudio

    from synth.spectral import SpectralConfig, audio_to_mel
    from training.metrics import mfcc_stats
    from training.wide_eval import _pairwise, _spearman_of_distances, _standardised

    config = SpectralConfig(sample_rate=16000, n_fft=1024, hop_length=256, n_mels=64, f_min_hz=30.0, f_max_hz=8000.0,
                            db_floor=-70.0, db_ceiling=30.0)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    sounds = []
    for _ in range(24):
        tone = np.sin(2 * np.pi * rng.uniform(100, 3000) * t) * rng.uniform(0.05, 0.5)
        noise = np.convolve(rng.standard_normal(len(t)), np.ones(rng.integers(1, 12)), "same") * rng.uniform(0, 0.2)
        sound = tone + noise
        sounds.append(0.1 * sound / np.sqrt(np.mean(sound**2)))  # levelled, as a render levels its images
    audio = torch.tensor(np.stack(sounds), dtype=torch.float32)
    mel = torch.stack([audio_to_mel(a, config=config) for a in audio])
    features = losses.FileCepstra(config.to_dict())(mel)
    assert features.shape == (24, 40)
    assert torch.allclose(losses.FileCepstra(config.to_dict())(mel + 0.1), features, atol=1e-3)  # levelled, as rendered
    halved = losses.FileCepstra(config.to_dict(), spread_weight=0.5)(mel)
    assert torch.equal(halved[:, :20], features[:, :20]) and torch.allclose(halved[:, 20:], 0.5 * features[:, 20:])
    file = mfcc_stats(torchaudio.functional.resample(audio, 16000, 44100), sample_rate=44100, n_fft=2048, hop_length=512)
    ours = _spearman_of_distances(_pairwise(features.double().numpy()), _pairwise(_standardised(file)))
    cepstra = _spearman_of_distances(_pairwise(losses.sound_features(mel).double().numpy()), _pairwise(_standardised(file)))
    assert ours > 0.75 and ours > cepstra + 0.1  # measured 0.81; cepstra over the model's own bands 0.64
