"""Neural vocoder: shapes, streaming == offline, checkpoints, a one-step training run, bad input."""

import math

import numpy as np
import pytest
import torch

from models.checkpoint import save_checkpoint
from models.errors import CheckpointError, ParameterError
from models.vocoder import Vocoder, VocoderConfig
from synth.spectral import SpectralConfig, audio_to_mel
from synth.vocoder import VOCODERS_DIR, NeuralVocoder

# Streaming runs the same float32 ops on other slices; measured differences are ~1e-7 for outputs ~0.1.
STREAM_ATOL = 1e-5

SMALL_SPECTRAL = SpectralConfig(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32, f_max_hz=4000.0)


def small_vocoder(spectral: SpectralConfig = SMALL_SPECTRAL, **overrides) -> Vocoder:
    torch.manual_seed(0)
    config = VocoderConfig(n_mels=spectral.n_mels, n_fft=spectral.n_fft, hop_length=spectral.hop_length,
                           dim=32, intermediate_dim=64, n_blocks=2, spectral=spectral.to_dict(), **overrides)
    model = Vocoder(config).eval()
    with torch.no_grad():  # audible outputs, so the comparisons below are not between near-zeros
        model.head.bias[: spectral.n_fft // 2 + 1].fill_(0.7)
    return model


@pytest.fixture
def mel(rng):
    return torch.from_numpy(rng.random((2, SMALL_SPECTRAL.n_mels, 37)).astype(np.float32))


def test_shapes_follow_the_frame_convention(mel):
    vocoder = NeuralVocoder(small_vocoder())
    assert vocoder.vocode(mel).shape == (2, 37 * 64)
    assert vocoder.vocode(mel[0]).shape == (37 * 64,)
    assert vocoder.vocode(mel[None].expand(3, 2, -1, -1)).shape == (3, 2, 37 * 64)
    assert vocoder.vocode(mel[:, :, :1]).shape == (2, 64)


def test_batch_item_equals_single_item(mel):
    vocoder = NeuralVocoder(small_vocoder())
    torch.testing.assert_close(vocoder.vocode(mel)[1], vocoder.vocode(mel[1]), atol=1e-6, rtol=0)


def test_istft_head_matches_torch_istft(mel):
    model = small_vocoder()
    with torch.no_grad():
        spectrum = model.spectrum(mel)
        expected = torch.istft(spectrum, n_fft=256, hop_length=64, window=torch.hann_window(256), center=True,
                               length=37 * 64)
        torch.testing.assert_close(model(mel), expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("chunks", [[37], [1] * 37, [8, 8, 8, 8, 5], [2, 13, 3, 19]])
def test_streaming_equals_offline(mel, chunks):
    vocoder = NeuralVocoder(small_vocoder())
    offline = vocoder.vocode(mel)
    stream = vocoder.stream(batch_size=2)
    parts, start = [], 0
    for n in chunks:
        parts.append(stream.push(mel[..., start : start + n]))
        start += n
    parts.append(stream.flush())
    streamed = torch.cat(parts, dim=-1)
    assert streamed.shape == offline.shape
    torch.testing.assert_close(streamed, offline, atol=STREAM_ATOL, rtol=0)
    assert offline.abs().max() > 1e-2


def test_stream_delay_and_reset(mel):
    vocoder = NeuralVocoder(small_vocoder(lookahead_frames=2))
    stream = vocoder.stream()
    assert stream.latency_samples == 2 * 64 + 128
    first = stream.push(mel[0, :, :8])
    assert len(first) == 8 * 64 - stream.latency_samples  # primed: later pushes give n * hop
    assert len(stream.push(mel[0, :, 8:16])) == 8 * 64
    stream.flush()
    again = stream.push(mel[0, :, :8])  # flush resets: a new signal starts
    torch.testing.assert_close(again, first)


def test_checkpoint_round_trip(tmp_path, mel):
    model = small_vocoder()
    path = model.save(tmp_path / "vocoder.pt", metadata={"steps": 0, "command": "test"})
    vocoder = NeuralVocoder.from_checkpoint(path, config=SMALL_SPECTRAL)
    assert vocoder.model.config == model.config
    torch.testing.assert_close(vocoder.vocode(mel), NeuralVocoder(model).vocode(mel), atol=0, rtol=0)


def test_mismatched_spectral_config_is_refused(tmp_path):
    path = small_vocoder().save(tmp_path / "vocoder.pt")
    other = SpectralConfig(sample_rate=8000, n_fft=256, hop_length=64, n_mels=32, f_max_hz=3000.0)
    with pytest.raises(CheckpointError, match="f_max_hz"):
        NeuralVocoder.from_checkpoint(path, config=other)


def test_other_kind_of_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "vae.pt", kind="audio_vae", config={"n_mels": 32}, state_dict={})
    with pytest.raises(CheckpointError, match="kind"):
        NeuralVocoder.from_checkpoint(path)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(2, 31, 10), "bands"),
        (torch.full((32, 10), math.nan), "NaN"),
        (torch.rand(32, 0), "no frames"),
    ],
)
def test_bad_mels_raise_parameter_errors(bad, match):
    vocoder = NeuralVocoder(small_vocoder())
    with pytest.raises(ParameterError, match=match):
        vocoder.vocode(bad)
    with pytest.raises(ParameterError, match=match):
        vocoder.stream().push(bad)


def test_stream_rejects_wrong_batch(mel):
    with pytest.raises(ParameterError, match=r"\(3, 32, n\)"):
        NeuralVocoder(small_vocoder()).stream(batch_size=3).push(mel)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(n_mels=40, spectral=SMALL_SPECTRAL.to_dict()), "n_mels"),
        (dict(n_fft=1000, hop_length=256), "multiple"),
        (dict(lookahead_frames=7, kernel_size=7), "lookahead_frames"),
        (dict(dim=0), "dim"),
    ],
)
def test_bad_configs_raise(overrides, match):
    with pytest.raises(ParameterError, match=match):
        VocoderConfig(**overrides)


def test_one_training_step_on_tiny_data(tmp_path):
    from training.train_vocoder import train_vocoder

    config = VocoderConfig(dim=16, intermediate_dim=32, n_blocks=1)
    path, metrics = train_vocoder(spectral=SMALL_SPECTRAL, out_dir=tmp_path, steps=1, batch_size=2,
                                  model_config=config, n_synth=4, progress=False, command="test")
    assert set(metrics) == {"total", "sc", "log_mag", "mel_l1"} and all(math.isfinite(v) for v in metrics.values())
    vocoder = NeuralVocoder.from_checkpoint(path)
    assert vocoder.config == SMALL_SPECTRAL and vocoder.model.config.dim == 16
    assert (tmp_path / "vocoder.resume").is_file()


def test_training_loss_falls_on_one_clip():
    from training.train_vocoder import vocoder_losses

    model = small_vocoder().train()
    t = torch.arange(2048) / SMALL_SPECTRAL.sample_rate
    audio = (0.5 * torch.sin(2 * math.pi * 440.0 * t))[None]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        loss = vocoder_losses(model, audio, config=SMALL_SPECTRAL)["total"]
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.8 * first


@pytest.mark.skipif(not (VOCODERS_DIR / "spectral-default.pt").is_file(), reason="no shipped vocoder")
@pytest.mark.xfail(strict=False, reason="the CPU-trained checkpoint (1000 steps) predicts magnitude lobes too "
                   "coarse for PGHI's phase advance: 440 Hz comes back near 488 Hz; true magnitudes give 440")
def test_shipped_vocoder_keeps_a_tones_pitch():
    vocoder = NeuralVocoder.from_checkpoint(VOCODERS_DIR / "spectral-default.pt")
    config = vocoder.config
    t = torch.arange(config.sample_rate) / config.sample_rate
    audio = vocoder.vocode(audio_to_mel(0.3 * torch.sin(2 * math.pi * 440.0 * t), config=config))
    spectrum = torch.fft.rfft(audio * torch.hann_window(len(audio)))
    peak_hz = float(spectrum.abs().argmax()) * config.sample_rate / len(audio)
    assert abs(peak_hz - 440.0) < 10.0


def test_train_command_line_rejects_bad_values(capsys):
    from training.train_vocoder import main

    assert main(["--steps", "0"]) == 2
    assert "--steps=0" in capsys.readouterr().err
