"""training.eval_files: the files it writes hold what it says, and the checks run through the command line."""

import numpy as np
import pytest
from pedalboard.io import AudioFile

from bridge.cli import main
from models.errors import InputError, ParameterError
from synth.sources import hz_to_midi
from training import eval_files, metrics


@pytest.mark.parametrize("n", [4, 9, 64])
def test_tone_set_spans_the_ranges_once_each_with_uncorrelated_factors(n):
    pitch, level, phase = eval_files.tone_set(n, seed=0)
    np.testing.assert_allclose(pitch, np.linspace(*eval_files.TONE_PITCH_MIDI, n))
    np.testing.assert_allclose(np.sort(level), np.linspace(*eval_files.TONE_RMS_DB, n))
    assert abs(metrics.spearman(pitch, level)) < 1e-3
    assert len(set(np.round(phase, 6))) == n
    np.testing.assert_array_equal(eval_files.tone_set(n, seed=0)[1], level)  # seeded
    with pytest.raises(ParameterError, match="n=3"):
        eval_files.tone_set(3, seed=0)


@pytest.mark.parametrize(("name", "rate", "channels"), [("t.wav", 8000, 1), ("t_float.wav", 44100, 1),
                                                         ("t.flac", 48000, 2), ("t.ogg", 22050, 1),
                                                         ("t.mp3", 44100, 1)])
def test_tone_files_hold_the_tones_at_their_level_and_pitch(tmp_path, name, rate, channels):
    pitch, level = np.array([45.0, 75.0]), np.array([-35.0, -5.0])
    path = tmp_path / name
    eval_files.write_tone_file(path, pitch, level, np.zeros(2), sample_rate=rate, channels=channels)
    with AudioFile(str(path)) as handle:
        assert (handle.samplerate, handle.num_channels) == (rate, channels)
        audio = handle.read(handle.frames)
    assert audio.shape[1] == pytest.approx(3 * rate, abs=rate // 10)  # 0.5 s silence, two 1 s tones, 0.5 s silence
    tones = np.stack([audio[0, round((0.75 + k) * rate) : round((1.25 + k) * rate)] for k in range(2)])
    np.testing.assert_allclose(metrics.loudness_db(tones), level, atol=0.1 if name.endswith("wav") else 0.5)
    np.testing.assert_allclose(hz_to_midi(metrics.pitch_hz(tones, sample_rate=rate)), pitch, atol=0.05)
    if channels == 2:
        np.testing.assert_array_equal(audio[0], audio[1])


def test_squares_are_where_and_as_large_as_drawn():
    images, drawn = eval_files.square_images(40, seed=3)
    assert images.dtype == np.uint8 and images.shape == (40, 64, 64)
    # the intensity centroid of pixels sampled from a ramp (8-bit) lies within a tenth of a pixel of the centre
    np.testing.assert_allclose(metrics.image_centroid_px(images.astype(float), threshold=0.0), drawn[:, :2], atol=0.1)
    side, edge = drawn[:, 2], drawn[:, 3]
    assert eval_files.SQUARE_SIDE_PX[0] <= side.min() and side.max() <= eval_files.SQUARE_SIDE_PX[1]
    # the square's area (the ramp is symmetric about the side) and that it stays inside the image
    np.testing.assert_allclose(images.sum(axis=(1, 2)) / 255, side**2, rtol=0.02)
    assert (drawn[:, :2] - (side + edge)[:, None] / 2 >= 0).all() and (drawn[:, :2] + (side + edge)[:, None] / 2 <= 64).all()
    assert metrics.spearman(drawn[:, 0], drawn[:, 1]) == pytest.approx(0.0, abs=0.2)  # a jittered grid


def test_a_failing_command_is_reported_with_its_message():
    with pytest.raises(InputError, match="visualize failed with code 2: .*does not exist"):
        eval_files.run_command(main, ["visualize", "/nonexistent/x.wav", "-o", "/nonexistent/out.png"])


@pytest.mark.slow
def test_the_shipped_pair_meets_the_targets_on_files():
    """A smaller run of what ``imgsonic eval --preset squares-sines`` reports in its files_* rows."""
    found = eval_files.squares_sines_file_checks(main, model_args=["--preset", "squares-sines"], n_tones=36,
                                                 n_squares=36, seed=7)
    assert found["files_visualize_pairing"] == ["pitch→x", "loudness→y"]
    assert found["files_visualize_abs_rho_min"] >= 0.98 and found["files_visualize_leakage_max"] <= 0.1
    assert found["files_visualize_rate_spread_px"] <= 1.0
    assert found["files_render_pairing"] == ["x→pitch", "y→loudness"]
    assert found["files_render_abs_rho_min"] >= 0.98 and found["files_render_leakage_max"] <= 0.1
    assert found["files_render_pitch_range_octaves"] >= 3.0
