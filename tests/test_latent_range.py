"""The image-latent range a hand-set latent is clamped to: from the checkpoint's training statistics, or a probe
set; it holds the latents real images have (the fixed ±4 it replaces clipped 41 % of default's dimensions)."""

import numpy as np
import pytest
import torch

from bridge.control.latent_range import LatentRange
from bridge.sonify.bundle import load_bundle
from bridge.sonify.encode import prepare_inputs
from bridge.sonify.latent_stats import image_latent_range, probe_images
from bridge.sources.demo import demo_images
from models.errors import ParameterError


def test_the_range_is_mean_plus_minus_six_sigma_and_never_narrower_than_the_prior():
    latent_range = LatentRange.from_stats(mean=[0.0, 10.0, 0.0], std=[0.01, 5.0, 2.0], source="t")
    assert latent_range.low.tolist() == [-6.0, -20.0, -12.0] and latent_range.high.tolist() == [6.0, 40.0, 12.0]
    values, clamped = latent_range.clamp([7.0, np.nan, -3.0])
    assert values.tolist() == [6.0, 0.0, -3.0] and clamped
    assert latent_range.clamp([1.0, 2.0, 3.0]) [1] is False
    with pytest.raises(ParameterError, match="expected 3"):
        latent_range.clamp([1.0])


def test_metadata_without_or_with_broken_statistics_gives_none():
    good = {"latent_stats": {"mean": [0.0, 1.0], "std": [1.0, 2.0], "n": 10}}
    assert LatentRange.from_metadata(good, latent_dim=2, source="x").high.tolist() == [6.0, 13.0]
    for metadata in ({}, {"latent_stats": "no"}, {"latent_stats": {"mean": [0.0]}},
                     {"latent_stats": {"mean": [0.0, 1.0], "std": [1.0]}},
                     {"latent_stats": {"mean": [0.0, float("nan")], "std": [1.0, 1.0]}}):
        assert LatentRange.from_metadata(metadata, latent_dim=2, source="x") is None


@pytest.mark.parametrize("preset", ["default", "digits-fm", "squares-sines"])
def test_the_shipped_presets_ranges_hold_every_demo_pictures_latent(preset):
    bundle = load_bundle(preset=preset)
    latent_range = bundle.latent_range()
    assert latent_range.dim == bundle.models.image_latent_dim
    with torch.inference_mode():
        inputs, _ = prepare_inputs(demo_images(), bundle.models)
        latents = bundle.models.encode_images(inputs).numpy()
    assert all(latent_range.contains(z) for z in latents)
    if preset == "default":  # every dim at unit spread over the training images: the range is about mean ± 6
        n_learned = latents.shape[1] - bundle.models.image_vae.config.n_descriptors
        assert "training statistics" in latent_range.source
        assert np.all(latent_range.high - latent_range.low > 10) and np.all(latent_range.high - latent_range.low < 16)


def test_checkpoint_statistics_win_over_the_probe_set(tmp_path):
    from models.checkpoint import load_checkpoint, save_checkpoint

    bundle = load_bundle(preset="squares-sines")
    source = load_checkpoint(bundle.image_vae_path, kind="image_vae")
    path = tmp_path / "image_vae.pt"
    save_checkpoint(path, kind="image_vae", config=source["config"], state_dict=source["state_dict"],
                    metadata={**source["metadata"], "latent_stats": {"mean": [0.5, -0.5], "std": [3.0, 1.0]}})
    from_checkpoint = image_latent_range(bundle.models, image_vae_path=path)
    assert from_checkpoint.high.tolist() == [18.5, 6.0] and "training statistics" in from_checkpoint.source
    assert "probe" in image_latent_range(bundle.models, image_vae_path=bundle.image_vae_path).source
    assert len(probe_images()) == 390
