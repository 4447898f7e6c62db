"""models.image_descriptors on analytic patterns, and an ImageVAE that carries them in its latent."""

import math

import pytest
import torch

from models.errors import ParameterError
from models.image_descriptors import DESCRIPTOR_NAMES, image_descriptors
from models.image_vae import ImageVAE, ImageVAEConfig

S = 64
_c = (torch.arange(S) + 0.5) / S
YY, XX = torch.meshgrid(_c, _c, indexing="ij")


def _describe(pattern: torch.Tensor) -> dict[str, float]:
    return dict(zip(DESCRIPTOR_NAMES, image_descriptors(pattern.expand(1, 3, S, S))[0].tolist()))


def test_stripes_have_one_orientation_and_their_frequency():
    vertical = _describe((torch.sin(2 * math.pi * 8 * XX) > 0).float())
    horizontal = _describe((torch.sin(2 * math.pi * 8 * YY) > 0).float())
    fine = _describe((torch.sin(2 * math.pi * 20 * XX) > 0).float())
    assert vertical["orientation_cos"] > 0.9 and horizontal["orientation_cos"] < -0.9
    assert abs(vertical["fourfold_cos"]) < 0.1  # one orientation is not a grid
    assert 2.9 < vertical["log_frequency"] < 3.5 < fine["log_frequency"]  # 8 cycles ≈ 2^3; harmonics pull it up
    assert vertical["periodicity"] > 0.3


def test_checkers_dots_and_noise_differ_where_they_should():
    checkers = _describe(((torch.floor(XX * 8) + torch.floor(YY * 8)) % 2).float())
    dots = _describe((((XX * 6 % 1 - 0.5) ** 2 + (YY * 6 % 1 - 0.5) ** 2) < 0.09).float())
    noise = _describe(torch.rand(S, S, generator=torch.Generator().manual_seed(0)))
    assert abs(checkers["orientation_cos"]) < 0.05 and abs(dots["orientation_cos"]) < 0.05
    assert checkers["fourfold_cos"] < -0.3 < 0.3 < dots["fourfold_cos"]  # diagonal vs axis-aligned lattices
    assert noise["periodicity"] < 0.05 < 0.3 < checkers["periodicity"]
    assert noise["log_frequency"] > checkers["log_frequency"]


def test_colour_descriptors_and_flat_images():
    red = _describe(torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1) * torch.ones(S, S))
    assert red["red_green"] == pytest.approx(1.0) and red["saturation"] == pytest.approx(1.0)
    assert red["luma_std"] == pytest.approx(0.0, abs=1e-6) and red["periodicity"] == pytest.approx(0.0, abs=1e-3)
    grey = image_descriptors(torch.rand(2, 1, S, S))
    assert torch.isfinite(grey).all() and torch.equal(grey[:, 2:5], torch.zeros(2, 3))
    with pytest.raises(ParameterError, match="expected"):
        image_descriptors(torch.rand(2, 3, S, S + 1))


def test_image_vae_carries_standardised_descriptors_in_its_last_dims(tmp_path):
    config = ImageVAEConfig(image_size=16, channels=3, latent_dim=14, base_width=4, n_layers=2, hidden_width=16,
                            n_descriptors=len(DESCRIPTOR_NAMES))
    vae = ImageVAE(config).eval()
    images = torch.rand(20, 3, 16, 16)
    vae.set_descriptor_stats(images)
    mu, logvar = vae.encode(images)
    assert mu.shape == logvar.shape == (20, 14)
    assert mu[:, 2:].mean(0).tolist() == pytest.approx([0.0] * 12, abs=1e-4)  # standardised by these images
    assert torch.allclose(mu[:, 2:], (image_descriptors(images) - vae.descriptor_mean) / vae.descriptor_std)
    vae.save(tmp_path / "vae.pt")
    loaded = ImageVAE.from_checkpoint(tmp_path / "vae.pt")
    assert torch.allclose(loaded.encode(images)[0], mu, atol=1e-3)  # float16 weights, float32 buffers
    with pytest.raises(ParameterError, match="n_descriptors"):
        ImageVAEConfig(latent_dim=12, n_descriptors=12)
    with pytest.raises(ParameterError, match="no descriptor dims"):
        ImageVAE(ImageVAEConfig(image_size=16, channels=3, latent_dim=4, n_layers=2)).set_descriptor_stats(images)
