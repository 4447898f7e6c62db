"""A sound file → one-second windows, as imagine and its evaluation read it."""

import numpy as np
import pytest
import torch

from models.errors import InputError, ParameterError
from synth.audio_io import write_audio
from synth.sound_windows import audio_windows, sound_file_windows
from synth.spectral import audio_to_mel
from training.spoken_digits import SPEECH_SPECTRAL, WINDOW_FRAMES


def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_a_short_sound_is_centred_in_one_window():
    windows = audio_windows(_tone(0.5), config=SPEECH_SPECTRAL, window_frames=WINDOW_FRAMES)
    assert windows.mel.shape == (1, SPEECH_SPECTRAL.n_mels, WINDOW_FRAMES)
    assert windows.start_s[0] == pytest.approx(-0.25)
    energy = windows.mel[0].amax(dim=0)
    assert energy[:4].max() < 0.1 and energy[-4:].max() < 0.1 and energy[14:18].min() > 0.5


def test_a_long_sound_gives_windows_up_to_its_end():
    windows = audio_windows(_tone(2.3), config=SPEECH_SPECTRAL, window_frames=WINDOW_FRAMES, hop_s=0.5)
    assert windows.start_s.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.3])
    direct = audio_to_mel(torch.from_numpy(_tone(2.3)[16000:32000]), config=SPEECH_SPECTRAL)[..., :WINDOW_FRAMES]
    assert torch.allclose(windows.mel[2], direct)


def test_files_at_other_rates_give_nearly_the_same_windows(tmp_path):
    rate = 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    write_audio(tmp_path / "a.flac", tone, sample_rate=rate)
    write_audio(tmp_path / "b.wav", _tone(1.0), sample_rate=16000)
    a = sound_file_windows(tmp_path / "a.flac", config=SPEECH_SPECTRAL, window_frames=WINDOW_FRAMES).mel
    b = sound_file_windows(tmp_path / "b.wav", config=SPEECH_SPECTRAL, window_frames=WINDOW_FRAMES).mel
    assert (a - b).abs().mean() < 0.01


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(InputError, match="NaN"):
        audio_windows(np.array([0.0, np.nan]), config=SPEECH_SPECTRAL, window_frames=32)
    with pytest.raises(ParameterError, match="hop_s"):
        audio_windows(_tone(0.1), config=SPEECH_SPECTRAL, window_frames=32, hop_s=0)
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(InputError):
        sound_file_windows(tmp_path / "x.wav", config=SPEECH_SPECTRAL, window_frames=32)
