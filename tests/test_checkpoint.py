"""The checkpoint format: round trips, atomic writes and every way a file can be wrong."""

import dataclasses
import os

import numpy as np
import pytest
import torch

import models.checkpoint
from models.audio_vae import AudioVAE, AudioVAEConfig
from models.checkpoint import config_to_dict, load_checkpoint, save_checkpoint
from models.errors import CheckpointError, ParameterError
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from models.vocoder import Vocoder, VocoderConfig

SPECTRAL = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 256, "n_mels": 32, "db_range": (-70.0, 50.0)}
MODELS = {
    "image_vae": lambda: ImageVAE(ImageVAEConfig(image_size=16, channels=3, latent_dim=4, base_width=8, n_layers=2)),
    "audio_vae": lambda: AudioVAE(AudioVAEConfig(n_mels=32, n_frames=4, latent_dim=3, spectral=SPECTRAL)),
    "mapper": lambda: LatentMapper(LatentMapperConfig(image_latent_dim=4, audio_latent_dim=3)),
}


def _example_input(model):
    if isinstance(model, ImageVAE):
        return torch.rand(3, 3, 16, 16)
    if isinstance(model, AudioVAE):
        return torch.rand(3, 32, 4)
    return torch.randn(3, 4)


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def image_checkpoint(tmp_path):
    return MODELS["image_vae"]().save(tmp_path / "image.pt", metadata={"steps": 3})


@pytest.mark.parametrize("kind", MODELS)
def test_round_trip_gives_the_outputs_of_the_float16_rounded_weights(kind, tmp_path):
    model = MODELS[kind]()
    for parameter in model.parameters():  # the mapper's last layers start at zero: make them matter
        parameter.data.normal_(0, 0.1)
    model.eval()
    metadata = {"data": "squares", "steps": 10, "metrics": {"loss": np.float64(0.25), "nan": float("nan")}}
    path = model.save(tmp_path / "sub" / f"{kind}.pt", metadata=metadata)

    loaded = type(model).from_checkpoint(path)
    assert not loaded.training
    assert loaded.config == model.config
    assert all(parameter.dtype == torch.float32 for parameter in loaded.parameters())  # computes in float32
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    x = _example_input(model)
    with torch.no_grad():
        for expected, actual in zip(torch.atleast_1d(model(x)), torch.atleast_1d(loaded(x))):
            assert torch.equal(expected, actual)
    content = load_checkpoint(path, kind=kind)
    assert content["format_version"] == 1 and content["kind"] == kind
    assert type(content["metadata"]["metrics"]["loss"]) is float and content["metadata"]["steps"] == 10
    assert os.listdir(path.parent) == [f"{kind}.pt"]  # no temporary file left behind
    # saving what was loaded changes nothing: the float16 rounding happens once
    again = load_checkpoint(loaded.save(tmp_path / "again.pt", metadata=content["metadata"]), kind=kind)
    assert again["sha256"] == content["sha256"]


def test_weights_are_stored_as_float16_and_buffers_as_they_are(tmp_path):
    model = Vocoder(VocoderConfig(n_mels=32, n_fft=256, hop_length=64, dim=16, intermediate_dim=32, n_blocks=1))
    model.filterbank.uniform_(0.0, 1e-3)  # a buffer compared against its exact value when loaded
    state = load_checkpoint(model.save(tmp_path / "vocoder.pt"), kind="vocoder")["state_dict"]
    names = {name for name, _ in model.named_parameters()}
    assert names and all(state[name].dtype == torch.float16 for name in names)
    assert state["filterbank"].dtype == torch.float32 and torch.equal(state["filterbank"], model.filterbank)


def test_a_weight_outside_the_float16_range_is_stored_in_full(tmp_path):
    state = {"big": torch.tensor([1e6, 1.0]), "inf": torch.tensor([float("inf")]), "small": torch.tensor([0.1]),
             "ints": torch.tensor([3])}
    path = save_checkpoint(tmp_path / "m.pt", kind="demo", config={}, state_dict=state, float16=list(state))
    stored = load_checkpoint(path, kind="demo")["state_dict"]
    assert stored["big"].dtype == stored["inf"].dtype == torch.float32 and torch.equal(stored["big"], state["big"])
    assert stored["small"].dtype == torch.float16 and stored["ints"].dtype == torch.int64


def test_float16_names_must_be_in_the_state_dict(tmp_path):
    with pytest.raises(ParameterError, match="'missing'"):
        save_checkpoint(tmp_path / "m.pt", kind="demo", config={}, state_dict={"w": torch.zeros(2)}, float16=["missing"])
    assert list(tmp_path.iterdir()) == []


def test_spectral_config_survives_the_round_trip(tmp_path):
    path = MODELS["audio_vae"]().save(tmp_path / "audio.pt")
    loaded = AudioVAE.from_checkpoint(path)
    loaded.check_spectral(SPECTRAL)
    with pytest.raises(CheckpointError, match="hop_length"):
        loaded.check_spectral({**SPECTRAL, "hop_length": 128})


def test_failed_save_leaves_old_file_intact_and_no_temporaries(image_checkpoint, monkeypatch):
    before = image_checkpoint.read_bytes()

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(models.checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        MODELS["image_vae"]().save(image_checkpoint)
    assert image_checkpoint.read_bytes() == before
    assert os.listdir(image_checkpoint.parent) == [image_checkpoint.name]


@pytest.mark.parametrize(
    "metadata, words",
    [({"loss": torch.tensor(1.0)}, ["metadata['loss']", "Tensor"]), ({1: "a"}, ["non-str key"])],
)
def test_save_rejects_non_plain_metadata(metadata, words, tmp_path):
    with pytest.raises(ParameterError) as error:
        MODELS["mapper"]().save(tmp_path / "m.pt", metadata=metadata)
    assert all(word in str(error.value) for word in words)
    assert not list(tmp_path.iterdir())


def test_config_tuples_become_lists():
    assert config_to_dict({"range": (1, 2), "nested": {"t": (3,)}}) == {"range": [1, 2], "nested": {"t": [3]}}


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt", kind="image_vae")
    with pytest.raises(CheckpointError, match="folder"):
        ImageVAE.from_checkpoint(tmp_path)


def _assert_unreadable(path, *, reason="cannot be read"):
    with pytest.raises(CheckpointError) as error:
        ImageVAE.from_checkpoint(path)
    assert str(path) in str(error.value)
    assert "tampered" in str(error.value) and reason in str(error.value)


def test_random_bytes_are_rejected(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    _assert_unreadable(path)


def test_truncated_file_is_rejected(image_checkpoint):
    data = image_checkpoint.read_bytes()
    image_checkpoint.write_bytes(data[: len(data) // 2])
    _assert_unreadable(image_checkpoint)


def test_flipped_weight_byte_is_caught_by_the_digest(image_checkpoint):
    data = bytearray(image_checkpoint.read_bytes())
    weights = ImageVAE.from_checkpoint(image_checkpoint).state_dict()["encoder.0.weight"].half()  # as stored
    offset = data.index(weights.numpy().tobytes()[:64])  # torch stores tensors as raw, uncompressed bytes
    data[offset + 10] ^= 0x01
    image_checkpoint.write_bytes(bytes(data))
    _assert_unreadable(image_checkpoint, reason="sha256 digest")


class _CallsOnUnpickle:
    """Unpickling this calls a function: the attack weights_only=True exists to stop."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _CallsOnUnpickle()}, path)
    _assert_unreadable(path)


def test_not_a_checkpoint_dict_and_missing_keys(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(path, kind="image_vae")
    torch.save({"format_version": 1, "kind": "image_vae"}, path)
    with pytest.raises(CheckpointError, match="lacks key.*config.*state_dict"):
        load_checkpoint(path, kind="image_vae")


@pytest.mark.parametrize("version", [2, 0, "1", True])
def test_unknown_format_version(version, image_checkpoint):
    content = torch.load(image_checkpoint, weights_only=True)
    content["format_version"] = version
    torch.save(content, image_checkpoint)
    with pytest.raises(CheckpointError) as error:
        ImageVAE.from_checkpoint(image_checkpoint)
    assert f"format_version {version!r}" in str(error.value)
    assert "reads format_version 1" in str(error.value)


def test_wrong_kind_names_both(image_checkpoint):
    with pytest.raises(CheckpointError, match="kind 'image_vae', expected kind 'audio_vae'"):
        AudioVAE.from_checkpoint(image_checkpoint)
    assert load_checkpoint(image_checkpoint, kind=None)["kind"] == "image_vae"


def _save_image_vae(path, config, state_dict):
    save_checkpoint(path, kind="image_vae", config=config, state_dict=state_dict, metadata={})


def test_unknown_and_missing_config_keys(tmp_path):
    model = MODELS["image_vae"]()
    config = config_to_dict(model.config)
    path = tmp_path / "c.pt"
    _save_image_vae(path, {**config, "dropout": 0.1}, model.state_dict())
    with pytest.raises(CheckpointError, match="unknown config key.*'dropout'"):
        ImageVAE.from_checkpoint(path)
    mapper_config = config_to_dict(MODELS["mapper"]().config)
    del mapper_config["audio_latent_dim"]
    save_checkpoint(path, kind="mapper", config=mapper_config, state_dict={}, metadata={})
    with pytest.raises(CheckpointError, match="'audio_latent_dim' missing"):
        LatentMapper.from_checkpoint(path)


def test_invalid_config_value(tmp_path):
    model = MODELS["image_vae"]()
    path = tmp_path / "c.pt"
    _save_image_vae(path, {**config_to_dict(model.config), "channels": 2}, model.state_dict())
    with pytest.raises(CheckpointError, match="channels=2"):
        ImageVAE.from_checkpoint(path)


def test_state_dict_mismatch(tmp_path):
    model = MODELS["image_vae"]()
    path = tmp_path / "s.pt"
    bigger = dataclasses.replace(model.config, latent_dim=6)
    _save_image_vae(path, bigger, model.state_dict())
    with pytest.raises(CheckpointError, match=r"weights do not fit ImageVAE.*encoder.7.weight is \[8, 256\] in the "
                                              r"file, \[12, 256\] for the config"):
        ImageVAE.from_checkpoint(path)
    state = model.state_dict()
    del state["encoder.0.bias"]
    _save_image_vae(path, model.config, state)
    with pytest.raises(CheckpointError, match="weights do not fit ImageVAE.*missing encoder.0.bias"):
        ImageVAE.from_checkpoint(path)
