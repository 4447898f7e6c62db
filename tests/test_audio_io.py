"""Tests for synth.audio_io: round trips, resampling, channel mixing, atomic writes and bad files."""

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

import synth.audio_io as audio_io
from models.errors import InputError, ParameterError
from synth.audio_io import read_audio, read_audio_info, write_audio


def _tone(*, f0_hz: float, sample_rate: int, n_samples: int, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * f0_hz * np.arange(n_samples) / sample_rate)).astype(np.float32)


def _peak_hz(audio: np.ndarray, *, sample_rate: int) -> float:
    """Strongest spectral peak, refined by a parabola through the log magnitudes of a zero-padded FFT."""
    n_fft = 4 * audio.shape[-1]
    magnitude = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[-1]), n=n_fft))
    k = int(np.argmax(magnitude[1:-1])) + 1
    left, centre, right = np.log(magnitude[k - 1 : k + 2])
    return (k + 0.5 * (left - right) / (left - 2.0 * centre + right)) * sample_rate / n_fft


def _pyo_sound(name: str) -> Path:
    # find_spec locates pyo without importing it (its import prints GUI notices and probes audio devices).
    spec = importlib.util.find_spec("pyo")
    if spec is None:
        pytest.skip("pyo is not installed")
    path = Path(spec.submodule_search_locations[0]) / "examples" / "snds" / name
    if not path.is_file():
        pytest.skip(f"pyo does not ship {name} here")
    return path


def _stereo(n_samples: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform(-0.9, 0.9, size=(2, n_samples)).astype(np.float32)


def test_wav_round_trip_is_exact(tmp_path):
    audio = _stereo(5000)
    write_audio(tmp_path / "x.wav", audio, sample_rate=44100)
    np.testing.assert_array_equal(read_audio(tmp_path / "x.wav", sample_rate=None, channels=2), audio)
    assert read_audio_info(tmp_path / "x.wav") == audio_io.AudioInfo(sample_rate=44100, n_channels=2, n_samples=5000)


def test_flac_round_trip_within_24_bit_quantisation(tmp_path):
    audio = _stereo(5000)
    write_audio(tmp_path / "x.FLAC", audio, sample_rate=48000)
    back = read_audio(tmp_path / "x.FLAC", sample_rate=48000, channels=2)
    assert back.dtype == np.float32 and back.shape == audio.shape
    np.testing.assert_allclose(back, audio, atol=2.0**-22)


def test_mono_1d_input_reads_back_as_one_channel(tmp_path):
    tone = _tone(f0_hz=440.0, sample_rate=16000, n_samples=1600)
    write_audio(tmp_path / "mono.wav", tone, sample_rate=16000)
    back = read_audio(tmp_path / "mono.wav", sample_rate=16000)
    assert back.shape == (1, 1600)
    np.testing.assert_array_equal(back[0], tone)


def test_resampling_keeps_pitch_and_duration(tmp_path):
    write_audio(tmp_path / "a440.wav", _tone(f0_hz=440.0, sample_rate=44100, n_samples=44100), sample_rate=44100)
    audio = read_audio(tmp_path / "a440.wav", sample_rate=22050)
    assert audio.shape[0] == 1 and abs(audio.shape[1] - 22050) <= 2
    assert _peak_hz(audio[0], sample_rate=22050) == pytest.approx(440.0, rel=1e-3)
    # Same RMS: the resampler neither gains nor loses level on an in-band tone.
    assert np.sqrt(np.mean(audio[0, 1000:-1000] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)


def test_downmix_to_mono_and_upmix_to_stereo(tmp_path):
    left = _tone(f0_hz=300.0, sample_rate=8000, n_samples=800)
    right = _tone(f0_hz=500.0, sample_rate=8000, n_samples=800)
    write_audio(tmp_path / "lr.wav", np.stack([left, right]), sample_rate=8000)
    np.testing.assert_allclose(read_audio(tmp_path / "lr.wav", sample_rate=None)[0], (left + right) / 2, atol=1e-7)
    write_audio(tmp_path / "m.wav", left, sample_rate=8000)
    stereo = read_audio(tmp_path / "m.wav", sample_rate=None, channels=2)
    np.testing.assert_array_equal(stereo, np.stack([left, left]))


@pytest.mark.parametrize("extension", [".ogg", ".mp3", ".aiff"])
def test_reads_other_formats(tmp_path, extension):
    path = tmp_path / f"tone{extension}"
    with AudioFile(str(path), "w", samplerate=44100, num_channels=1) as writer:
        writer.write(_tone(f0_hz=660.0, sample_rate=44100, n_samples=44100))
    audio = read_audio(path, sample_rate=22050)
    assert audio.shape[0] == 1 and audio.shape[1] > 20000
    assert _peak_hz(audio[0], sample_rate=22050) == pytest.approx(660.0, rel=2e-3)


def test_reads_a_recording_pyo_ships():
    flute = _pyo_sound("flute.aif")
    info = read_audio_info(flute)
    audio = read_audio(flute, sample_rate=22050, channels=1)
    assert audio.dtype == np.float32 and audio.shape[0] == 1
    assert audio.shape[1] == pytest.approx(info.duration_s * 22050, abs=2)
    assert 0.01 < np.abs(audio).max() <= 1.0


def test_failed_write_leaves_no_temporary_and_keeps_existing_target(tmp_path, monkeypatch):
    target = tmp_path / "keep.wav"
    original = _tone(f0_hz=220.0, sample_rate=8000, n_samples=800)
    write_audio(target, original, sample_rate=8000)
    before = target.read_bytes()

    real_audio_file = audio_io.AudioFile
    seen_while_writing = []

    class HalfThenInterrupt:
        """Writes the first half of the audio for real, then is interrupted as by Ctrl-C."""

        def __init__(self, *args, **kwargs):
            self._writer = real_audio_file(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            self._writer.close()

        def write(self, samples):
            self._writer.write(samples[:, : samples.shape[1] // 2])
            seen_while_writing.append(sorted(os.listdir(tmp_path)))
            raise KeyboardInterrupt

    monkeypatch.setattr(audio_io, "AudioFile", HalfThenInterrupt)
    with pytest.raises(KeyboardInterrupt):
        write_audio(target, np.zeros(8000, dtype=np.float32), sample_rate=8000)
    with pytest.raises(KeyboardInterrupt):
        write_audio(tmp_path / "new.flac", np.zeros(8000, dtype=np.float32), sample_rate=8000)
    # The partial output did exist, as a hidden temporary beside the target, and is gone now.
    assert [len(names) for names in seen_while_writing] == [2, 2]
    assert sorted(os.listdir(tmp_path)) == ["keep.wav"]
    assert target.read_bytes() == before


def test_write_replaces_existing_target(tmp_path):
    target = tmp_path / "out.wav"
    write_audio(target, np.zeros(100, dtype=np.float32), sample_rate=8000)
    write_audio(target, np.full(50, 0.25, dtype=np.float32), sample_rate=8000)
    np.testing.assert_array_equal(read_audio(target, sample_rate=None), np.full((1, 50), 0.25, dtype=np.float32))
    assert os.listdir(tmp_path) == ["out.wav"]


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.wav", None, "does not exist"),
        ("", None, "is a directory"),
        ("text.wav", b"not audio at all", "cannot read"),
        ("noise.bin", bytes(range(256)) * 64, "cannot read"),
        ("empty.wav", b"", "cannot read"),
    ],
)
def test_bad_files_raise_input_error_naming_path_and_formats(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=fragment) as caught:
        read_audio(path, sample_rate=None)
    assert str(path) in str(caught.value) and ".wav" in str(caught.value) and ".flac" in str(caught.value)


def test_audio_file_without_samples_raises_input_error(tmp_path):
    path = tmp_path / "zero.wav"
    with AudioFile(str(path), "w", samplerate=8000, num_channels=1):
        pass
    with pytest.raises(InputError, match="no samples"):
        read_audio(path, sample_rate=8000)


def test_unmixable_channel_count_raises_input_error(tmp_path):
    path = tmp_path / "stereo.wav"
    write_audio(path, _stereo(100), sample_rate=8000)
    with pytest.raises(InputError, match="2 channels"):
        read_audio(path, sample_rate=None, channels=3)


@pytest.mark.parametrize(
    ("name", "audio", "kwargs"),
    [
        ("x.mp3", np.zeros(100, np.float32), {"sample_rate": 8000}),
        ("x", np.zeros(100, np.float32), {"sample_rate": 8000}),
        ("x.wav", np.array([0.0, np.nan, 0.0], np.float32), {"sample_rate": 8000}),
        ("x.wav", np.array([0.0, np.inf, 0.0]), {"sample_rate": 8000}),
        ("x.wav", np.zeros((1, 2, 100), np.float32), {"sample_rate": 8000}),
        ("x.wav", np.zeros((100, 2), np.float32), {"sample_rate": 8000}),
        ("x.wav", np.zeros(0, np.float32), {"sample_rate": 8000}),
        ("x.wav", np.zeros(100, np.int16), {"sample_rate": 8000}),
        ("x.wav", np.zeros(100, np.float32), {"sample_rate": 0}),
        ("x.flac", np.full(100, 1.5, np.float32), {"sample_rate": 8000}),
        ("no_such_dir/x.wav", np.zeros(100, np.float32), {"sample_rate": 8000}),
    ],
)
def test_bad_writes_raise_parameter_error_and_leave_nothing(tmp_path, name, audio, kwargs):
    with pytest.raises(ParameterError):
        write_audio(tmp_path / name, audio, **kwargs)
    assert os.listdir(tmp_path) == []


def test_bad_read_arguments_raise_parameter_error(tmp_path):
    write_audio(tmp_path / "x.wav", np.zeros(100, np.float32), sample_rate=8000)
    for kwargs in ({"sample_rate": 0}, {"sample_rate": 22050.5}, {"sample_rate": None, "channels": 0}):
        with pytest.raises(ParameterError):
            read_audio(tmp_path / "x.wav", **kwargs)
