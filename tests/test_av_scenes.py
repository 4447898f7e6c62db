"""Rendered audio-visual scenes: parameters recoverable from the pictures, and the sound's rate and pitch."""

import numpy as np
import pytest

from models.errors import ParameterError
from training.av_scenes import COUNT_RANGE, SCENE_KINDS, TEST_SIZE_BANDS, make_scenes, measure_objects
from training.metrics import spearman


def test_counts_and_sizes_are_read_back_from_the_scene_pictures():
    scenes = make_scenes(80, split="test", image_size=32, sample_rate=16000, seed=3)
    measured = measure_objects(scenes.images)
    assert np.array_equal(measured[:, 0], scenes.factors[:, 2].numpy())
    for k in range(len(SCENE_KINDS)):
        chosen = scenes.factors[:, 0].numpy() == k
        assert spearman(measured[chosen, 1], scenes.factors[chosen, 1].numpy()) > 0.8


def test_training_sizes_never_fall_in_the_held_out_bands():
    train = make_scenes(400, split="train", image_size=32, sample_rate=8000, seed=0).factors[:, 1].numpy()
    test = make_scenes(40, split="test", image_size=32, sample_rate=8000, seed=0).factors[:, 1].numpy()
    inside = lambda sizes: np.any([(sizes >= lo) & (sizes <= hi) for lo, hi in TEST_SIZE_BANDS], axis=0)  # noqa: E731
    assert not inside(train).any()
    assert inside(test).all()
    counts = make_scenes(40, split="train", image_size=32, sample_rate=8000, seed=1).factors[:, 2]
    assert counts.min() >= COUNT_RANGE[0] and counts.max() <= COUNT_RANGE[1]


@pytest.mark.parametrize("count", [1, 3])
def test_engine_firing_rate_follows_the_count(count):
    """An engine of ``count`` cylinders is a pulse train at 10·count Hz: its autocorrelation peaks at that period."""
    rate = 8000
    scenes = make_scenes(40, split="train", image_size=32, sample_rate=rate, seed=count, kinds=("engine",))
    chosen = int(np.flatnonzero(scenes.factors[:, 2].numpy() == count)[0])
    # a 5 ms moving RMS: the 1 kHz resonance inside each pulse would otherwise decide the best lag
    envelope = np.sqrt(np.convolve(scenes.audio[chosen] ** 2, np.ones(40) / 40, mode="same"))
    envelope -= envelope.mean()
    correlation = np.correlate(envelope, envelope, mode="full")[len(envelope):]
    low, high = rate // 60, rate // 5  # periods of 5–60 Hz
    period = low + int(np.argmax(correlation[low:high]))
    assert abs(rate / period - 10 * count) < 1.5


def test_bigger_balls_ring_lower():
    rate = 16000
    scenes = make_scenes(60, split="train", image_size=32, sample_rate=rate, seed=0, kinds=("ball",))
    spectrum = np.abs(np.fft.rfft(scenes.audio, axis=1))
    peak_hz = np.argmax(spectrum[:, 50:], axis=1) + 50  # 1 Hz bins, above the event rate
    assert spearman(peak_hz, scenes.factors[:, 1].numpy()) < -0.9


def test_bad_arguments_are_refused():
    with pytest.raises(ParameterError, match="split"):
        make_scenes(4, split="valid", image_size=32, sample_rate=8000, seed=0)
    with pytest.raises(ParameterError, match="kinds"):
        make_scenes(4, split="train", image_size=32, sample_rate=8000, seed=0, kinds=("owl",))
