"""The same sound gives the same latents whatever the file's sample rate, sample format and channel count.

Every path that reads audio is checked against the latent of the tone synthesised at the model's own rate:
``imgsonic visualize`` (:func:`bridge.cli.visualize.visualize_file`), the live analyser fed small blocks
(:class:`bridge.sonify.reverse.StreamingVisualizer`, what ``imgsonic live --visualize`` runs) and training from a
folder of sounds (:func:`training.datasets.sounds_from_folder`). The files are 16-bit WAVs (quantisation noise
whose level depends on the rate) and a stereo 24-bit FLAC, of the shipped squares-sines preset.

Stated tolerance: 0.03 in the audio latent (whose two dims span about ±1.7 over the tones' range) and 0.5 px
for the square's centroid in a 128 px ``visualize`` frame.
"""

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from bridge.cli.visualize import visualize_file
from bridge.sonify.reverse import StreamingVisualizer
from models.pipeline import SonificationModels
from synth.audio_io import write_audio
from synth.spectral import SpectralConfig, audio_to_mel
from training import metrics
from training.datasets import sounds_from_folder

RATES_HZ = (8000, 16000, 22050, 44100, 48000, 96000)
# (Hz, dB RMS): low, middle and high in the preset's range, quiet to loud
TONES = ((110.0, -20.0), (622.0, -35.0), (1000.0, -5.0), (82.4, -33.0))
TONE_S = 2.0
LATENT_TOLERANCE = 0.03
CENTROID_TOLERANCE_PX = 0.5


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return SonificationModels.from_preset("squares-sines")


def _tone(f_hz, rms_db, sample_rate):
    t = np.arange(round(TONE_S * sample_rate)) / sample_rate
    return np.sqrt(2) * 10 ** (rms_db / 20) * np.sin(2 * np.pi * f_hz * t + 0.3)


def _sequence(rate):
    """One second of silence, the tones one after another, one second of silence: tone i's middle is at 2 + 2i s."""
    silence = np.zeros(rate)
    return np.concatenate([silence, *(_tone(f_hz, rms_db, rate) for f_hz, rms_db in TONES), silence])


def _pcm16(signal):
    return np.round(signal * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def reference(models):
    """Each tone's audio latent: synthesised at the model's rate, float, analysed in memory (as the eval does)."""
    config = SpectralConfig.from_dict(models.spectral_config)
    latents = []
    for f_hz, rms_db in TONES:
        mel = audio_to_mel(torch.from_numpy(_tone(f_hz, rms_db, config.sample_rate)).float(), config=config)
        with torch.inference_mode():
            latents.append(models.encode_mel(mel[None, :, 8:-8])[0].numpy())
    return np.stack(latents)


def _centroids(models, z_aud):
    with torch.inference_mode():
        images = models.decode_images(models.audio_to_image_latent(torch.as_tensor(z_aud, dtype=torch.float32)))
        images = torch.nn.functional.interpolate(images, size=128, mode="bilinear", align_corners=False)
    return metrics.image_centroid_px(images)


@pytest.mark.parametrize("rate", RATES_HZ)
def test_visualize_gives_the_same_latent_at_every_rate(models, reference, tmp_path, rate):
    path = tmp_path / "tones.wav"
    wavfile.write(path, rate, _pcm16(_sequence(rate)))
    result = visualize_file(path, out_path=tmp_path / "frames", models=models, fps=1.0 / TONE_S, window_s=1.0)
    seen = result.z_aud[1 : len(TONES) + 1]  # frame i + 1 shows the middle second of tone i
    assert np.abs(seen - reference).max() <= LATENT_TOLERANCE
    assert np.abs(_centroids(models, seen) - _centroids(models, reference)).max() <= CENTROID_TOLERANCE_PX


def test_stereo_flac_and_live_blocks_give_the_same_latent(models, reference, tmp_path):
    rate = 48000
    mono = _sequence(rate).astype(np.float32)
    write_audio(tmp_path / "tones.flac", np.stack([mono, mono]), sample_rate=rate)
    seen = visualize_file(tmp_path / "tones.flac", out_path=tmp_path / "frames", models=models, fps=1.0 / TONE_S,
                          window_s=1.0)
    assert np.abs(seen.z_aud[1 : len(TONES) + 1] - reference).max() <= LATENT_TOLERANCE
    # the live analyser, fed a stereo stream in 256-sample buffers as the pyo callback hands them over
    analyser = StreamingVisualizer(models, sample_rate=rate, fps=1.0 / TONE_S, window_s=1.0)
    stereo = np.stack([mono, mono])
    frames = [frame for start in range(0, stereo.shape[1], 256) for frame in analyser.push(stereo[:, start : start + 256])]
    frames += analyser.finish()
    assert np.abs(np.stack([frame.z_aud for frame in frames[1 : len(TONES) + 1]]) - reference).max() <= LATENT_TOLERANCE


@pytest.mark.parametrize("rate", (8000, 44100, 96000))
def test_training_from_a_sound_folder_sees_the_same_tones(models, reference, tmp_path, rate):
    for index, (f_hz, rms_db) in enumerate(TONES):
        wavfile.write(tmp_path / f"tone_{index}.wav", rate, _pcm16(_tone(f_hz, rms_db, rate)))
    config = SpectralConfig.from_dict(models.spectral_config)
    windows = sounds_from_folder(tmp_path, config=config, n_frames=models.window_frames)
    per_file = len(windows) // len(TONES)
    assert per_file * len(TONES) == len(windows)
    with torch.inference_mode():
        mu, _ = models.audio_vae.encode(windows)
    # each file's middle half, away from the reflect padding at its ends
    middle = mu.numpy().reshape(len(TONES), per_file, -1)[:, per_file // 4 : 3 * per_file // 4].mean(axis=1)
    assert np.abs(middle - reference).max() <= LATENT_TOLERANCE
