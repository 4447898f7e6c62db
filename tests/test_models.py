"""Shapes, ranges, batch consistency and input validation of the three models."""

import ast
import sys
from pathlib import Path

import pytest
import torch

from models.audio_vae import AudioVAE, AudioVAEConfig
from models.errors import CheckpointError, ParameterError
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig

MODEL_FILES = [
    Path(__file__).parent.parent / "models" / f"{name}.py"
    for name in ("checkpoint", "image_vae", "audio_vae", "mapper", "preprocess")
]
IMAGE_CONFIGS = [
    ImageVAEConfig(image_size=32, channels=1, latent_dim=8, base_width=16, n_layers=3),
    ImageVAEConfig(image_size=64, channels=3, latent_dim=10, base_width=8, n_layers=4, hidden_width=64),
    ImageVAEConfig(image_size=8, channels=1, latent_dim=2, base_width=8, n_layers=1, hidden_width=32),
]
AUDIO_CONFIGS = [
    AudioVAEConfig(n_mels=64, n_frames=1, latent_dim=2),
    AudioVAEConfig(n_mels=80, n_frames=4, latent_dim=8, hidden_width=128),
    AudioVAEConfig(n_mels=128, n_frames=16, latent_dim=16, n_hidden_layers=3),
]


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    # Tiny models: a second thread only adds OpenMP contention on a shared CPU (100× slower here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("config", IMAGE_CONFIGS, ids=lambda c: f"{c.image_size}px{c.channels}ch")
def test_image_vae_shapes_and_range(config):
    vae = ImageVAE(config).eval()
    x = torch.rand(3, config.channels, config.image_size, config.image_size)
    x_hat, mu, logvar = vae(x)
    assert x_hat.shape == x.shape
    assert mu.shape == logvar.shape == (3, config.latent_dim)
    assert vae.decode(torch.randn(5, config.latent_dim) * 10).shape == (5, *x.shape[1:])
    assert 0.0 <= x_hat.min() and x_hat.max() <= 1.0
    assert torch.equal(vae.decode(mu), x_hat)


@pytest.mark.parametrize("config", IMAGE_CONFIGS[:2], ids=lambda c: f"{c.image_size}px{c.channels}ch")
def test_image_vae_batch_item_equals_single(config):
    vae = ImageVAE(config).eval()
    x = torch.rand(4, config.channels, config.image_size, config.image_size)
    batch = vae(x)
    single = vae(x[:1])
    for batched, alone in zip(batch, single):
        torch.testing.assert_close(batched[:1], alone, rtol=1e-5, atol=1e-6)


def test_image_vae_samples_in_training_mode_only():
    vae = ImageVAE(IMAGE_CONFIGS[0])
    x = torch.rand(2, 1, 32, 32)
    assert not torch.equal(vae.train()(x)[0], vae(x)[0])
    assert torch.equal(vae.eval()(x)[0], vae(x)[0])


@pytest.mark.parametrize(
    "x, words",
    [
        (torch.rand(2, 3, 32, 32), ["(2, 3, 32, 32)", "(B, 1, 32, 32)"]),
        (torch.rand(2, 1, 31, 32), ["(2, 1, 31, 32)"]),
        (torch.rand(1, 32, 32), ["(1, 32, 32)"]),
        (torch.zeros(2, 1, 32, 32, dtype=torch.uint8), ["uint8"]),
    ],
)
def test_image_vae_rejects_wrong_input(x, words):
    with pytest.raises(ParameterError) as error:
        ImageVAE(IMAGE_CONFIGS[0]).encode(x)
    assert all(word in str(error.value) for word in words)


def test_image_vae_rejects_wrong_latent():
    with pytest.raises(ParameterError, match=r"\(2, 3\).*\(B, 8\)"):
        ImageVAE(IMAGE_CONFIGS[0]).decode(torch.zeros(2, 3))


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"channels": 2}, "channels=2"),
        ({"image_size": 36, "n_layers": 3}, "image_size=36"),
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"base_width": True}, "base_width=True"),
        ({"n_layers": 2.0}, "n_layers=2.0"),
    ],
)
def test_image_vae_config_validation(kwargs, word):
    with pytest.raises(ParameterError, match=word):
        ImageVAEConfig(**kwargs)


@pytest.mark.parametrize("config", AUDIO_CONFIGS, ids=lambda c: f"{c.n_mels}x{c.n_frames}")
def test_audio_vae_shapes_range_and_batch_consistency(config):
    vae = AudioVAE(config).eval()
    mel = torch.rand(3, config.n_mels, config.n_frames)
    mel_hat, mu, logvar = vae(mel)
    assert mel_hat.shape == mel.shape
    assert mu.shape == logvar.shape == (3, config.latent_dim)
    assert 0.0 <= mel_hat.min() and mel_hat.max() <= 1.0
    decoded = vae.decode(torch.randn(4, config.latent_dim) * 10)
    assert decoded.shape == (4, config.n_mels, config.n_frames)
    for batched, alone in zip((mel_hat, mu, logvar), vae(mel[:1])):
        torch.testing.assert_close(batched[:1], alone, rtol=1e-5, atol=1e-6)
    assert vae.decode(torch.zeros(0, config.latent_dim)).shape == (0, config.n_mels, config.n_frames)


def test_audio_vae_rejects_wrong_input():
    vae = AudioVAE(AUDIO_CONFIGS[1])
    with pytest.raises(ParameterError, match=r"\(2, 64, 4\).*\(B, 80, 4\)"):
        vae.encode(torch.rand(2, 64, 4))
    with pytest.raises(ParameterError, match=r"\(B, 8\)"):
        vae.decode(torch.zeros(8))


def test_audio_vae_config_checks_spectral_mels():
    with pytest.raises(ParameterError, match="n_mels"):
        AudioVAEConfig(n_mels=64, spectral={"n_mels": 80})
    with pytest.raises(ParameterError, match="n_frames=0"):
        AudioVAEConfig(n_frames=0)


def test_audio_vae_check_spectral_lists_every_differing_field():
    spectral = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 64, "db_range": (-70.0, 50.0)}
    vae = AudioVAE(AudioVAEConfig(n_mels=64, spectral=spectral))
    vae.check_spectral(dict(spectral))  # tuples and lists compare equal, as after a checkpoint round trip
    vae.check_spectral({**spectral, "db_range": [-70.0, 50.0]})
    changed = {**spectral, "hop_length": 512, "n_fft": 2048, "fmin": 30.0}
    del changed["sample_rate"]
    with pytest.raises(CheckpointError) as error:
        vae.check_spectral(changed)
    message = str(error.value)
    for word in ("hop_length", "256", "512", "n_fft", "fmin", "sample_rate", "<missing>"):
        assert word in message
    assert "n_mels" not in message


def _limited_vae(**limits):
    spectral = {"n_mels": 16, "db_floor": -120.0, "db_ceiling": 40.0}
    torch.manual_seed(0)
    return AudioVAE(AudioVAEConfig(n_mels=16, n_frames=2, latent_dim=2, spectral=spectral, **limits)).eval()


def test_audio_vae_encoder_reads_nothing_below_its_floor_or_range():
    # normalised units: −60 dB is 0.375 and 50 dB is 0.3125 of the −120…40 dB range
    vae = _limited_vae(encoder_floor_db=-60.0, encoder_range_db=50.0)
    quiet = torch.full((1, 16, 2), 0.2)
    quiet[0, 5, 1] = 0.5  # a tone at −40 dB: the floor (−60 dB) binds, not its range (−90 dB)
    noisy = quiet.clone()
    noisy[0, :, 0] = torch.linspace(0.0, 0.37, 16)  # noise below −60 dB
    assert torch.equal(vae.encode(quiet)[0], vae.encode(noisy)[0])
    loud = torch.full((1, 16, 2), 0.4)
    loud[0, 5, 1] = 0.9  # a tone at +24 dB: everything under −26 dB is masked
    masked = loud.clone()
    masked[0, 8:, :] = 0.58  # −27.2 dB
    assert torch.equal(vae.encode(loud)[0], vae.encode(masked)[0])
    masked[0, 8, 0] = 0.6  # −24 dB is read
    assert not torch.equal(vae.encode(loud)[0], vae.encode(masked)[0])
    # batch items are limited by their own peak
    both = vae.encode(torch.cat([quiet, loud]))[0]
    torch.testing.assert_close(both, torch.cat([vae.encode(quiet)[0], vae.encode(loud)[0]]))
    # without limits, the encoder reads everything
    plain = _limited_vae()
    assert not torch.equal(plain.encode(quiet)[0], plain.encode(noisy)[0])


@pytest.mark.parametrize(("limits", "word"), [({"encoder_floor_db": 40.0}, "encoder_floor_db=40.0"),
                                               ({"encoder_floor_db": -130.0}, "db_floor=-120"),
                                               ({"encoder_range_db": 0.0}, "encoder_range_db=0.0"),
                                               ({"encoder_range_db": True}, "encoder_range_db=True")])
def test_audio_vae_encoder_limits_are_checked(limits, word):
    with pytest.raises(ParameterError, match=word):
        _limited_vae(**limits)
    with pytest.raises(ParameterError, match="db_floor and db_ceiling"):
        AudioVAEConfig(n_mels=16, spectral={"n_mels": 16}, encoder_floor_db=-60.0)


def test_audio_vae_encoder_limits_survive_a_checkpoint(tmp_path):
    vae = _limited_vae(encoder_floor_db=-60.0, encoder_range_db=50.0)
    vae.save(tmp_path / "a.pt")
    again = AudioVAE.from_checkpoint(tmp_path / "a.pt")
    assert (again.config.encoder_floor_db, again.config.encoder_range_db) == (-60.0, 50.0)
    mel = torch.rand(3, 16, 2)
    torch.testing.assert_close(again.encode(mel)[0], vae.encode(mel)[0], atol=1e-2, rtol=0)  # float16 weights


@pytest.mark.parametrize("image_dim, audio_dim", [(8, 4), (3, 6), (5, 5)])
def test_mapper_shapes_with_any_dims(image_dim, audio_dim):
    mapper = LatentMapper(LatentMapperConfig(image_latent_dim=image_dim, audio_latent_dim=audio_dim)).eval()
    z_img = torch.randn(6, image_dim)
    z_aud = mapper(z_img)
    assert z_aud.shape == (6, audio_dim)
    assert mapper.inverse(z_aud).shape == (6, image_dim)
    torch.testing.assert_close(mapper(z_img[:1]), z_aud[:1])


def test_mapper_starts_as_identity_when_dims_match():
    mapper = LatentMapper(LatentMapperConfig(image_latent_dim=4, audio_latent_dim=4, depth=3))
    z = torch.randn(10, 4)
    assert torch.equal(mapper(z), z)
    assert torch.equal(mapper.inverse(z), z)


def test_mapper_rejects_wrong_dims():
    mapper = LatentMapper(LatentMapperConfig(image_latent_dim=8, audio_latent_dim=4))
    with pytest.raises(ParameterError, match=r"image latent.*\(2, 4\).*\(B, 8\)"):
        mapper(torch.zeros(2, 4))
    with pytest.raises(ParameterError, match=r"audio latent.*\(B, 4\)"):
        mapper.inverse(torch.zeros(2, 8))
    with pytest.raises(ParameterError, match="depth=0"):
        LatentMapperConfig(image_latent_dim=8, audio_latent_dim=4, depth=0)


def test_models_import_only_torch_and_stdlib():
    allowed = {"torch", "models", *sys.stdlib_module_names}
    for path in MODEL_FILES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            assert {name.split(".")[0] for name in names} <= allowed, f"{path.name} imports {names}"
