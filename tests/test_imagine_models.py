"""The sound → image models: shapes, bad input, checkpoints, test-time dropout and the multimodal code."""

import pytest
import torch

from models.audio_encoder import AudioAutoencoder, AudioEncoderConfig
from models.errors import CheckpointError, ParameterError
from models.image_classifier import ImageClassifier, ImageClassifierConfig
from models.image_generator import ImageGenerator, ImageGeneratorConfig
from models.imagination import Imagination, load_imagine_preset
from models.multimodal import MultimodalConfig, MultimodalFeatures


def _small_encoder(n_classes: int = 10) -> AudioAutoencoder:
    torch.manual_seed(0)
    return AudioAutoencoder(AudioEncoderConfig(n_mels=16, n_frames=16, code_dim=8, base_width=4, n_layers=2,
                                               n_classes=n_classes, decoder_width=16))


def _small_generator(condition_dim: int = 8) -> ImageGenerator:
    torch.manual_seed(0)
    return ImageGenerator(ImageGeneratorConfig(condition_dim=condition_dim, noise_dim=4, image_size=8, base_width=16,
                                               growth=4, dense_layers=2, dropout=0.5))


def test_autoencoder_shapes_and_class_head():
    model = _small_encoder().eval()
    code = model.encode(torch.rand(3, 16, 16))
    assert code.shape == (3, 8)
    assert model.decode(code).shape == (3, 16, 16)
    assert model.classify(code).shape == (3, 10)
    with pytest.raises(ParameterError, match="no class head"):
        _small_encoder(n_classes=0).classify(code)


def test_autoencoder_object_head_reads_the_code_and_survives_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = AudioAutoencoder(AudioEncoderConfig(n_mels=16, n_frames=16, code_dim=8, base_width=4, n_layers=2,
                                                n_objects=2, decoder_width=16)).eval()
    code = model.encode(torch.rand(3, 16, 16))
    assert model.read_objects(code).shape == (3, 2)
    model.save(tmp_path / "enc.pt")
    loaded = AudioAutoencoder.from_checkpoint(tmp_path / "enc.pt")
    assert torch.allclose(loaded.read_objects(code), model.read_objects(code), atol=5e-3)
    with pytest.raises(ParameterError, match="no object head"):
        _small_encoder().read_objects(code)
    with pytest.raises(ParameterError, match="n_objects=-1"):
        AudioEncoderConfig(n_objects=-1)


@pytest.mark.parametrize("shape", [(3, 16, 15), (16, 16), (3, 1, 16, 16)])
def test_autoencoder_refuses_wrong_mel_shapes(shape):
    with pytest.raises(ParameterError, match=r"expected \(B, 16, 16\)"):
        _small_encoder().encode(torch.rand(shape))


def test_config_refuses_windows_that_do_not_halve_evenly():
    with pytest.raises(ParameterError, match="divisible"):
        AudioEncoderConfig(n_mels=20, n_frames=16, n_layers=3)


def test_checkpoint_round_trip_gives_the_same_codes(tmp_path):
    model = _small_encoder().eval()
    mel = torch.rand(2, 16, 16)
    model.save(tmp_path / "enc.pt")
    loaded = AudioAutoencoder.from_checkpoint(tmp_path / "enc.pt")
    # weights are stored as float16: codes agree to float16 precision
    assert torch.allclose(loaded.encode(mel), model.encode(mel), atol=5e-3)
    with pytest.raises(CheckpointError, match="kind 'audio_autoencoder', expected kind 'image_generator'"):
        ImageGenerator.from_checkpoint(tmp_path / "enc.pt")


def test_generator_is_deterministic_without_variety_and_varied_with_it():
    generator = _small_generator().eval()
    condition = torch.randn(4, 8)
    first, second = generator(condition), generator(condition)
    assert torch.equal(first, second)
    assert first.shape == (4, 1, 8, 8) and first.min().item() >= 0 and first.max().item() <= 1
    varied = generator(condition, variety=True)
    assert not torch.allclose(varied, first)


def test_generator_batch_item_equals_single_item():
    generator = _small_generator().eval()
    condition = torch.randn(5, 8)
    assert torch.allclose(generator(condition)[:1], generator(condition[:1]), atol=1e-6)


def test_generator_refuses_wrong_condition_and_noise():
    generator = _small_generator()
    with pytest.raises(ParameterError, match=r"expected \(B, 8\)"):
        generator(torch.randn(2, 7))
    with pytest.raises(ParameterError, match=r"expected \(2, 4\)"):
        generator(torch.randn(2, 8), torch.randn(2, 3))
    with pytest.raises(ParameterError, match="power of two"):
        ImageGeneratorConfig(image_size=24)


@pytest.mark.parametrize("stage_condition", [0, 4])
def test_stage_condition_lets_every_stage_read_the_condition(stage_condition, tmp_path):
    torch.manual_seed(0)
    generator = ImageGenerator(ImageGeneratorConfig(condition_dim=8, noise_dim=4, image_size=16, base_width=16, growth=4,
                                                    dense_layers=1, stage_condition=stage_condition)).eval()
    with torch.no_grad():
        generator.stem.weight.zero_()  # the first layer no longer reads the condition
    a, b = generator(torch.randn(2, 8)), generator(torch.randn(2, 8))
    assert torch.equal(a, b) == (stage_condition == 0)
    generator.save(tmp_path / "g.pt")
    assert torch.allclose(ImageGenerator.from_checkpoint(tmp_path / "g.pt")(torch.ones(1, 8)), generator(torch.ones(1, 8)),
                          atol=2e-3)  # float16 weights
    with pytest.raises(ParameterError, match="stage_condition"):
        ImageGeneratorConfig(stage_condition=-1)


def test_multimodal_code_is_tanh_of_the_pre_activation_and_averages_modalities():
    torch.manual_seed(0)
    model = MultimodalFeatures(MultimodalConfig(image_feature_dim=5, audio_feature_dim=3, hidden_dim=7))
    image, sound = torch.rand(2, 5), torch.rand(2, 3)
    pre = model.shared(image_features=image, audio_features=sound, activated=False)
    assert torch.allclose(model.shared(image_features=image, audio_features=sound), torch.tanh(pre))
    both = (model.image_in(image) + model.audio_in(sound)) / 2 + model.bias
    assert torch.allclose(pre, both, atol=1e-6)
    with pytest.raises(ParameterError, match="needs image_features"):
        model.shared()
    assert model.image_features_from_sound(sound).min() >= 0


def test_image_classifier_features_and_bad_shapes():
    model = ImageClassifier(ImageClassifierConfig(image_size=8, n_classes=3, feature_dim=6))
    assert model.features(torch.rand(2, 1, 8, 8)).shape == (2, 6)
    with pytest.raises(ParameterError, match=r"expected \(B, 1, 8, 8\)"):
        model(torch.rand(2, 1, 16, 16))


def _write_preset(folder, **overrides):
    (folder / "m").mkdir(parents=True, exist_ok=True)
    _small_encoder().save(folder / "m" / "audio_encoder.pt")
    _small_generator().save(folder / "m" / "generator.pt")
    entries = {"description": "test", "data": "spoken-digits", "audio_encoder": "m/audio_encoder.pt",
               "generator": "m/generator.pt", **overrides}
    (folder / "tiny.toml").write_text("".join(f'{k} = "{v}"\n' for k, v in entries.items()))


def test_preset_loads_and_imagines_reproducibly(tmp_path):
    _write_preset(tmp_path)
    imagination = Imagination.from_preset("tiny", folder=tmp_path)
    mel = torch.rand(2, 16, 16)
    with torch.inference_mode():
        a = imagination.imagine(mel, n_samples=3, seed=1)
        b = imagination.imagine(mel, n_samples=3, seed=1)
        exact = imagination.imagine(mel, n_samples=2, variety=False)
    assert a.shape == (2, 3, 1, 8, 8)
    assert torch.equal(a, b)
    assert not torch.allclose(a[:, 0], a[:, 1])
    assert torch.equal(exact[:, 0], exact[:, 1])
    with pytest.raises(ParameterError, match="no multimodal"):
        imagination.imagine_through_features(mel)


@pytest.mark.parametrize("overrides, message", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"generator": "m/missing.pt"}, "missing checkpoint"),
    ({"multimodal": "m/generator.pt"}, "needs all of"),
])
def test_preset_file_errors_name_the_problem(tmp_path, overrides, message):
    _write_preset(tmp_path, **overrides)
    with pytest.raises(CheckpointError, match=message):
        load_imagine_preset("tiny", folder=tmp_path)
    with pytest.raises(ParameterError, match="unknown sound → image preset 'other'"):
        load_imagine_preset("other", folder=tmp_path)


def test_generator_and_encoder_must_fit(tmp_path):
    with pytest.raises(CheckpointError, match="reads 5-dim codes"):
        Imagination(audio_encoder=_small_encoder(), generator=_small_generator(condition_dim=5))


@pytest.mark.gpu
def test_generator_runs_on_cuda():
    generator = _small_generator().cuda().eval()
    assert generator(torch.randn(2, 8, device="cuda")).device.type == "cuda"
