"""training.datasets: shapes, ranges, seeding, factors that match the data, user folders."""

import numpy as np
import pytest
import torch

from models.errors import InputError, ParameterError
from synth.spectral import SpectralConfig, mel_band_centers_hz, mel_filterbank
from training import datasets
from training.presets import PRESET_SPECS, preset_images, preset_sounds

SINE_CONFIG = PRESET_SPECS["squares-sines"].spectral
SYNTH_CONFIG = PRESET_SPECS["digits-fm"].spectral


def test_squares_shapes_ranges_and_seeding():
    images, factors = datasets.make_squares(16, size=32, seed=3)
    assert images.shape == (16, 1, 32, 32) and factors.shape == (16, 2)
    assert images.min() >= 0 and images.max() <= 1 and factors.min() >= 0 and factors.max() <= 1
    again, _ = datasets.make_squares(16, size=32, seed=3)
    other, _ = datasets.make_squares(16, size=32, seed=4)
    assert torch.equal(images, again) and not torch.equal(images, other)


def test_square_centre_follows_factors():
    images, factors = datasets.make_squares(64, size=32, seed=0)
    grid = torch.arange(32, dtype=torch.float32)
    mass = images[:, 0].sum((1, 2))
    x_centre = (images[:, 0].sum(1) * grid).sum(1) / mass
    y_centre = (images[:, 0].sum(2) * grid).sum(1) / mass
    assert np.corrcoef(x_centre, factors[:, 0])[0, 1] > 0.999
    assert np.corrcoef(y_centre, factors[:, 1])[0, 1] > 0.999


def test_squares_have_a_soft_edge():
    images, _ = datasets.make_squares(4, size=32, seed=0)
    values = images.unique()
    assert ((values > 0) & (values < 1)).any()


def test_sine_filterbank_has_no_empty_band():
    assert mel_filterbank(config=SINE_CONFIG).sum(1).min() > 0
    assert mel_filterbank(config=SYNTH_CONFIG).sum(1).min() > 0


def test_sine_tones_pitch_sits_in_the_right_band():
    mels, factors = datasets.make_sine_tones(8, config=SINE_CONFIG, n_frames=1, seed=0)
    assert mels.shape == (8, 64, 1) and factors.shape == (8, 2)
    assert mels.min() >= 0 and mels.max() <= 1
    assert factors[:, 0].min() >= 38 and factors[:, 0].max() <= 86
    centres_hz = mel_band_centers_hz(config=SINE_CONFIG)
    peak_hz = centres_hz[mels[:, :, 0].argmax(1)]
    f0_hz = 440.0 * 2.0 ** ((factors[:, 0].double() - 69) / 12)
    assert torch.all((peak_hz / f0_hz - 1).abs() < 0.15)


def test_sine_tones_louder_is_brighter():
    mels, factors = datasets.make_sine_tones(64, config=SINE_CONFIG, n_frames=1, seed=1)
    assert np.corrcoef(mels.amax((1, 2)), factors[:, 1])[0, 1] > 0.95


def test_digits_split_is_fixed_and_disjoint():
    train, train_labels = datasets.load_digits_split("train", size=16)
    test, test_labels = datasets.load_digits_split("test", size=16)
    assert train.shape == (1438, 1, 16, 16) and test.shape == (359, 1, 16, 16)
    assert train_labels.dtype == torch.long and set(test_labels.tolist()) == set(range(10))
    assert torch.equal(test, datasets.load_digits_split("test", size=16)[0])
    assert not (train.flatten(1)[:, None] == test.flatten(1)[None, :50]).all(-1).any()
    with pytest.raises(ParameterError, match="split"):
        datasets.load_digits_split("validation", size=16)


def test_fm_timbres_shapes_and_params():
    mels, params = datasets.make_fm_timbres(6, config=SYNTH_CONFIG, n_frames=8, seed=0)
    assert mels.shape == (6, 64, 8) and params.shape == (6, len(datasets.FM_PARAM_NAMES))
    assert mels.min() >= 0 and mels.max() <= 1 and mels.amax((1, 2)).min() > 0.3
    assert torch.equal(mels, datasets.make_fm_timbres(6, config=SYNTH_CONFIG, n_frames=8, seed=0)[0])


def test_synth_palette_and_broad_images():
    mels = datasets.make_synth_palette(20, config=SYNTH_CONFIG, n_frames=8, seed=0)
    assert mels.shape == (20, 64, 8) and mels.min() >= 0 and mels.max() <= 1
    images = datasets.make_broad_images(12, size=16, seed=0)
    assert images.shape == (12, 3, 16, 16) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, datasets.make_broad_images(12, size=16, seed=0))
    assert images.flatten(1).std(0).mean() > 0.05  # not all alike


def test_preset_data_has_the_model_shapes():
    for spec in PRESET_SPECS.values():
        images, _ = preset_images(spec, split="test", n=4)
        mels, _ = preset_sounds(spec, split="test", n=4)
        config = spec.image_vae
        assert images.shape[1:] == (config.channels, config.image_size, config.image_size)
        assert mels.shape[1:] == (spec.audio_vae.n_mels, spec.audio_vae.n_frames)
        assert SpectralConfig.from_dict(spec.audio_vae.spectral) == spec.spectral


def test_images_from_folder_skips_bad_files(tmp_path, caplog):
    from PIL import Image

    Image.fromarray(np.zeros((10, 7, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    Image.fromarray(np.zeros((5, 5), dtype=np.uint8)).convert("P").save(tmp_path / "palette.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("hello")
    images = datasets.images_from_folder(tmp_path, size=8, channels=3)
    assert images.shape == (2, 3, 8, 8)
    assert "broken.png" in caplog.text


def test_empty_folders_raise_input_error(tmp_path):
    with pytest.raises(InputError, match="no readable images"):
        datasets.images_from_folder(tmp_path, size=8, channels=1)
    with pytest.raises(InputError, match="no usable sound"):
        datasets.sounds_from_folder(tmp_path, config=SYNTH_CONFIG, n_frames=4)
    with pytest.raises(InputError, match="does not exist"):
        datasets.images_from_folder(tmp_path / "missing", size=8, channels=1)


def test_sounds_from_folder_cuts_windows(tmp_path):
    from synth.audio_io import write_audio

    t = np.arange(16000) / 16000
    write_audio(tmp_path / "tone.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sample_rate=16000)
    (tmp_path / "bad.wav").write_bytes(b"RIFF....")
    mels = datasets.sounds_from_folder(tmp_path, config=SYNTH_CONFIG, n_frames=4)
    assert mels.shape[1:] == (64, 4) and len(mels) == (1 + 16000 // 256) // 4


def test_near_copies_are_close_distinct_seeded_and_identity_without_change():
    images = datasets.make_broad_images(16, size=32, seed=0)
    copies = datasets.near_copies(images, generator=torch.Generator().manual_seed(1))
    assert copies.shape == images.shape and copies.min() >= 0 and copies.max() <= 1
    assert torch.equal(copies, datasets.near_copies(images, generator=torch.Generator().manual_seed(1)))
    near = (copies - images).flatten(1).pow(2).mean(1).sqrt()
    others = (images.roll(3, dims=0) - images).flatten(1).pow(2).mean(1).sqrt()
    assert near.min() > 0 and near.median() < 0.5 * others.median()
    unchanged = datasets.near_copies(images, generator=torch.Generator().manual_seed(1), max_shift=0.0,
                                     max_zoom=0.0, max_mix=0.0)
    assert torch.allclose(unchanged, images, atol=1e-5)
