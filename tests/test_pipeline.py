"""The inference chain: shapes, tiling, window averaging, loading from paths and presets, mismatches."""

import pytest
import torch

from models import registry
from models.audio_vae import AudioVAE, AudioVAEConfig
from models.errors import CheckpointError, ParameterError
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from models.pipeline import SonificationModels

SPECTRAL = {"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16, "f_min_hz": 0.0, "f_max_hz": 4000.0}


def _save_tiny(folder, *, n_frames=3, image_dim=4, audio_dim=2, mapper_dims=None):
    torch.manual_seed(0)
    image_vae = ImageVAE(ImageVAEConfig(image_size=8, channels=1, latent_dim=image_dim, base_width=4,
                                        n_layers=1, hidden_width=16))
    audio_vae = AudioVAE(AudioVAEConfig(n_mels=16, n_frames=n_frames, latent_dim=audio_dim, hidden_width=16,
                                        spectral=SPECTRAL))
    mapper = LatentMapper(LatentMapperConfig(*(mapper_dims or (image_dim, audio_dim)), hidden_width=8, depth=1))
    return {
        "image_vae": image_vae.save(folder / "image_vae.pt"),
        "audio_vae": audio_vae.save(folder / "audio_vae.pt"),
        "mapper": mapper.save(folder / "mapper.pt"),
    }


@pytest.fixture
def models(tmp_path):
    return SonificationModels.from_paths(**_save_tiny(tmp_path))


def test_shapes_through_the_chain(models):
    images = torch.rand(5, 1, 8, 8)
    with torch.inference_mode():
        z_img = models.encode_images(images)
        z_aud = models.image_to_audio_latent(z_img)
        mel = models.decode_audio(z_aud, n_frames_out=10)
        z_back = models.encode_mel(mel)
        images_back = models.decode_images(models.audio_to_image_latent(z_back))
        assert models.images_to_mel(images, n_frames_out=7).shape == (5, 16, 7)
        assert models.mel_to_images(mel).shape == images.shape
        assert models.decode_audio(z_aud).shape == (5, 16, 3)
    assert z_img.shape == (5, 4)
    assert z_aud.shape == (5, 2)
    assert mel.shape == (5, 16, 10)
    assert 0.0 <= mel.min() and mel.max() <= 1.0
    assert z_back.shape == (5, 2)
    assert images_back.shape == images.shape


def test_decode_audio_tiles_the_window(models):
    z_aud = torch.randn(2, 2)
    with torch.inference_mode():
        window = models.audio_vae.decode(z_aud)
        long = models.decode_audio(z_aud, n_frames_out=8)
        short = models.decode_audio(z_aud, n_frames_out=2)
    for frame in range(8):
        torch.testing.assert_close(long[..., frame], window[..., frame % 3])
    torch.testing.assert_close(short, window[..., :2])


def test_single_frame_window_is_held(tmp_path):
    models = SonificationModels.from_paths(**_save_tiny(tmp_path, n_frames=1))
    with torch.inference_mode():
        mel = models.decode_audio(torch.randn(3, 2), n_frames_out=6)
    torch.testing.assert_close(mel, mel[..., :1].expand(-1, -1, 6))


def test_encode_mel_averages_whole_windows(models):
    mel = torch.rand(2, 16, 7)  # two whole windows of 3 frames, one frame dropped
    with torch.inference_mode():
        first, _ = models.audio_vae.encode(mel[..., 0:3])
        second, _ = models.audio_vae.encode(mel[..., 3:6])
        torch.testing.assert_close(models.encode_mel(mel), (first + second) / 2)
        # the decoder's own tiled output encodes to the same latent as its one window
        z_aud = torch.randn(2, 2)
        torch.testing.assert_close(
            models.encode_mel(models.decode_audio(z_aud, n_frames_out=9)),
            models.encode_mel(models.decode_audio(z_aud)),
        )


def test_batch_item_equals_single(models):
    images = torch.rand(4, 1, 8, 8)
    with torch.inference_mode():
        torch.testing.assert_close(
            models.images_to_mel(images, n_frames_out=5)[:1], models.images_to_mel(images[:1], n_frames_out=5)
        )


def test_bad_inputs_raise_parameter_error(models):
    with pytest.raises(ParameterError, match="at least 3"):
        models.encode_mel(torch.rand(1, 16, 2))
    with pytest.raises(ParameterError, match="expected \\(B, 16, n_frames\\)"):
        models.encode_mel(torch.rand(1, 15, 6))
    with pytest.raises(ParameterError, match="n_frames_out=0"):
        models.decode_audio(torch.randn(1, 2), n_frames_out=0)
    with pytest.raises(ParameterError):
        models.encode_images(torch.rand(1, 3, 8, 8))


def test_mismatched_latent_sizes_are_a_checkpoint_error(tmp_path):
    paths = _save_tiny(tmp_path, mapper_dims=(4, 3))
    with pytest.raises(CheckpointError, match="maps 4 → 3"):
        SonificationModels.from_paths(**paths)


def test_spectral_config_is_a_copy(models):
    config = models.spectral_config
    assert config["n_mels"] == 16 and config["sample_rate"] == 8000
    config["n_mels"] = 99
    assert models.spectral_config["n_mels"] == 16


def test_from_preset_reads_the_registry(tmp_path, monkeypatch):
    _save_tiny(tmp_path / "tiny")
    (tmp_path / "tiny.toml").write_text(
        'image_vae = "tiny/image_vae.pt"\naudio_vae = "tiny/audio_vae.pt"\nmapper = "tiny/mapper.pt"\n'
    )
    monkeypatch.setattr(registry, "PRESETS_DIR", tmp_path)
    models = SonificationModels.from_preset("tiny")
    assert (models.image_latent_dim, models.audio_latent_dim, models.window_frames) == (4, 2, 3)
    assert not models.training
