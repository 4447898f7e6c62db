"""models.image_descriptors on analytic patterns, and an ImageVAE that carries them in its latent."""

import math

import pytest
import torch

from models.errors import ParameterError
from models.image_descriptors import DESCRIPTOR_NAMES, DESCRIPTOR_SETS, group_weights, image_descriptors
from models.image_vae import ImageVAE, ImageVAEConfig

S = 64
_c = (torch.arange(S) + 0.5) / S
YY, XX = torch.meshgrid(_c, _c, indexing="ij")


def _describe(pattern: torch.Tensor, n: int = len(DESCRIPTOR_NAMES)) -> dict[str, float]:
    return dict(zip(DESCRIPTOR_SETS[n], image_descriptors(pattern.expand(1, 3, S, S), n)[0].tolist()))


def _old(pattern: torch.Tensor) -> dict[str, float]:
    """The 13 spectral descriptors that checkpoints made before the current set hold."""
    return _describe(pattern, 13)


def test_stripes_have_one_edge_orientation_and_their_scale():
    vertical = _describe((torch.sin(2 * math.pi * 8 * XX) > 0).float())
    horizontal = _describe((torch.sin(2 * math.pi * 8 * YY) > 0).float())
    diagonal = _describe((torch.sin(2 * math.pi * 6 * (XX + YY)) > 0).float())
    fine = _describe((torch.sin(2 * math.pi * 20 * XX) > 0).float())
    assert vertical["edge_cos"] > 0.9 and horizontal["edge_cos"] < -0.9  # the edges' normal: along x, along y
    assert abs(diagonal["edge_cos"]) < 0.1 and abs(diagonal["edge_sin"]) > 0.9
    assert vertical["share_below_4"] < 0.1 < 0.7 < vertical["share_below_16"]  # 8 cycles: between 4 and 16
    assert fine["share_below_16"] < 0.2
    assert vertical["periodicity"] > 0.3 and vertical["autocorrelation"] > 0.5


def test_grids_noise_and_colour_in_the_current_set():
    checkers = _describe(((torch.floor(XX * 8) + torch.floor(YY * 8)) % 2).float())
    noise = _describe(torch.rand(S, S, generator=torch.Generator().manual_seed(0)))
    assert abs(checkers["edge_cos"]) < 0.05 and checkers["edge_fourfold_cos"] > 0.5  # edges along both axes
    assert noise["periodicity"] < 0.05 < 0.3 < checkers["periodicity"]
    assert noise["share_below_8"] < 0.2 < 0.5 < checkers["share_below_8"]
    assert abs(noise["edge_cos"]) < 0.1 and abs(noise["edge_fourfold_cos"]) < 0.1
    red = _describe(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1) * torch.ones(S, S))
    assert [red[k] for k in ("red_mean", "green_mean", "blue_mean", "red_std")] == pytest.approx([1, 0, 0, 0], abs=1e-6)
    assert red["periodicity"] == pytest.approx(0.0, abs=1e-3) and red["autocorrelation"] == 0.0
    grey = image_descriptors(torch.rand(2, 1, S, S))
    assert torch.isfinite(grey).all() and torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 3], grey[:, 5])
    with pytest.raises(ParameterError, match="expected one of"):
        image_descriptors(torch.rand(2, 3, S, S), 14)


def test_old_set_stripes_have_one_orientation_and_their_frequency():
    vertical = _old((torch.sin(2 * math.pi * 8 * XX) > 0).float())
    horizontal = _old((torch.sin(2 * math.pi * 8 * YY) > 0).float())
    fine = _old((torch.sin(2 * math.pi * 20 * XX) > 0).float())
    assert vertical["orientation_cos"] > 0.9 and horizontal["orientation_cos"] < -0.9
    assert abs(vertical["fourfold_cos"]) < 0.1  # one orientation is not a grid
    assert 2.9 < vertical["log_frequency"] < 3.5 < fine["log_frequency"]  # 8 cycles ≈ 2^3; harmonics pull it up
    assert vertical["periodicity"] > 0.3


def test_old_set_checkers_dots_and_noise_differ_where_they_should():
    checkers = _old(((torch.floor(XX * 8) + torch.floor(YY * 8)) % 2).float())
    dots = _old((((XX * 6 % 1 - 0.5) ** 2 + (YY * 6 % 1 - 0.5) ** 2) < 0.09).float())
    noise = _old(torch.rand(S, S, generator=torch.Generator().manual_seed(0)))
    assert abs(checkers["orientation_cos"]) < 0.05 and abs(dots["orientation_cos"]) < 0.05
    assert checkers["fourfold_cos"] < -0.3 < 0.3 < dots["fourfold_cos"]  # diagonal vs axis-aligned lattices
    assert noise["periodicity"] < 0.05 < 0.3 < checkers["periodicity"]
    assert noise["log_frequency"] > checkers["log_frequency"]


def test_old_set_colour_descriptors_and_flat_images():
    red = _old(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1) * torch.ones(S, S))
    assert red["red_green"] == pytest.approx(1.0) and red["saturation"] == pytest.approx(1.0)
    assert red["luma_std"] == pytest.approx(0.0, abs=1e-6) and red["periodicity"] == pytest.approx(0.0, abs=1e-3)
    grey = image_descriptors(torch.rand(2, 1, S, S), 13)
    assert torch.isfinite(grey).all() and torch.equal(grey[:, 2:5], torch.zeros(2, 3))
    with pytest.raises(ParameterError, match="expected"):
        image_descriptors(torch.rand(2, 3, S, S + 1))


def test_image_vae_carries_standardised_descriptors_in_its_last_dims(tmp_path):
    n = len(DESCRIPTOR_NAMES)
    config = ImageVAEConfig(image_size=16, channels=3, latent_dim=n + 2, base_width=4, n_layers=2, hidden_width=16,
                            n_descriptors=n)
    vae = ImageVAE(config).eval()
    images = torch.rand(20, 3, 16, 16)
    vae.set_descriptor_stats(images)
    mu, logvar = vae.encode(images)
    assert mu.shape == logvar.shape == (20, n + 2)
    assert mu[:, 2:].mean(0).tolist() == pytest.approx([0.0] * n, abs=1e-4)  # standardised by these images
    assert torch.allclose(mu[:, 2:], (image_descriptors(images) - vae.descriptor_mean) / vae.descriptor_std)
    vae.save(tmp_path / "vae.pt")
    loaded = ImageVAE.from_checkpoint(tmp_path / "vae.pt")
    assert torch.allclose(loaded.encode(images)[0], mu, atol=1e-3)  # float16 weights, float32 buffers
    with pytest.raises(ParameterError, match="n_descriptors"):
        ImageVAEConfig(latent_dim=n, n_descriptors=n)
    with pytest.raises(ParameterError, match="n_descriptors"):
        ImageVAEConfig(latent_dim=20, n_descriptors=5)
    with pytest.raises(ParameterError, match="no descriptor dims"):
        ImageVAE(ImageVAEConfig(image_size=16, channels=3, latent_dim=4, n_layers=2)).set_descriptor_stats(images)


def test_standardising_the_learned_dims_keeps_the_model_and_evens_the_latent():
    torch.manual_seed(0)
    vae = ImageVAE(ImageVAEConfig(image_size=16, channels=3, latent_dim=15, base_width=4, n_layers=2,
                                  hidden_width=16, n_descriptors=12)).eval()
    images = torch.rand(64, 3, 16, 16)
    vae.set_descriptor_stats(images)
    mu_before, logvar_before = vae.encode(images)
    pictures_before = vae.decode(mu_before)
    assert ((mu_before[:, :3].std(0) - 1).abs() > 0.5).all()  # an untrained encoder's spread: far from 1
    scale = vae.standardise_learned_dims(images)
    mu, logvar = vae.encode(images)
    assert scale.shape == (3,)
    assert mu[:, :3].std(0).tolist() == pytest.approx([1.0] * 3, rel=1e-4)
    assert torch.allclose(mu[:, 3:], mu_before[:, 3:])  # the descriptor dims are untouched
    assert torch.allclose(logvar[:, :3], logvar_before[:, :3] - 2 * torch.log(scale), atol=1e-5)
    assert torch.allclose(vae.decode(mu), pictures_before, atol=1e-5)  # the same model, reparametrised


def test_a_checkpoint_with_the_first_12_descriptors_still_loads_and_computes_those(tmp_path):
    # checkpoints made before the autocorrelation descriptor: 8 learned dims + 12 descriptors
    vae = ImageVAE(ImageVAEConfig(image_size=16, channels=3, latent_dim=14, base_width=4, n_layers=2, hidden_width=16,
                                  n_descriptors=12)).eval()
    images = torch.rand(10, 3, 16, 16)
    vae.set_descriptor_stats(images)
    vae.save(tmp_path / "old.pt")
    mu = ImageVAE.from_checkpoint(tmp_path / "old.pt").encode(images)[0]
    assert mu.shape == (10, 14)
    assert torch.allclose(mu[:, 2:], (image_descriptors(images, 13)[:, :12] - vae.descriptor_mean) / vae.descriptor_std)
    assert group_weights(12).shape == (12,) and group_weights(12)[-1] == 1.0  # periodicity alone in its group
    assert group_weights(13)[-2:].tolist() == pytest.approx([2**-0.5] * 2)
    assert group_weights().tolist() == pytest.approx([6**-0.5] * 6 + [0.5] * 8 + [2**-0.5] * 2)


def test_the_autocorrelation_peak_tells_lattices_from_noise_and_flat_fields():
    x = torch.linspace(0, 1, 64)
    coarse = (torch.sin(2 * torch.pi * 3 * x) > 0).float().expand(1, 3, 64, 64)  # three wide bars
    lattice = ((torch.sin(2 * torch.pi * 6 * x)[:, None] * torch.sin(2 * torch.pi * 6 * x)[None, :]) > 0).float()
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    images = torch.cat([coarse, lattice.expand(1, 3, 64, 64), noise, torch.full((1, 3, 64, 64), 0.4)])
    peak = image_descriptors(images)[:, DESCRIPTOR_NAMES.index("autocorrelation")]
    assert peak[0] > 0.5 and peak[1] > 0.5  # a shifted copy matches
    assert peak[2] < 0.2 and peak[3] == 0.0  # nothing repeats; nothing there
