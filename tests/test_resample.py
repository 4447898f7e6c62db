"""The resampler: streaming equals whole-signal, tones keep their frequency and level, bad input is refused."""

import numpy as np
import pytest

from models.errors import ParameterError
from synth.resample import Resampler, resample

RATES = [(16000, 44100), (16000, 48000), (8000, 44100), (44100, 16000), (48000, 44100), (22050, 22050)]


@pytest.mark.parametrize(("orig_hz", "new_hz"), RATES)
def test_blocks_of_any_size_equal_the_whole_signal(rng, orig_hz, new_hz):
    signal = rng.standard_normal(20000)
    whole = resample(signal, orig_hz=orig_hz, new_hz=new_hz)
    resampler = Resampler(orig_hz=orig_hz, new_hz=new_hz)
    pieces, start = [], 0
    while start < signal.size:
        size = int(rng.integers(1, 2000))
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    pieces.append(resampler.flush())
    streamed = np.concatenate(pieces)
    assert whole.shape == (-(-20000 * new_hz // orig_hz),)
    np.testing.assert_array_equal(streamed, whole)


@pytest.mark.parametrize(("orig_hz", "new_hz"), RATES)
def test_a_tone_in_the_pass_band_keeps_its_frequency_and_level(orig_hz, new_hz):
    freq_hz = 0.3 * min(orig_hz, new_hz)
    tone = np.sin(2 * np.pi * freq_hz * np.arange(8000) / orig_hz)
    out = resample(tone, orig_hz=orig_hz, new_hz=new_hz)
    expected = np.sin(2 * np.pi * freq_hz * np.arange(out.size) / new_hz)
    margin = out.size // 10  # the ends see the zeros outside the signal
    assert np.abs(out - expected)[margin:-margin].max() < 2e-4


def test_a_tone_above_the_output_band_is_removed():
    tone = np.sin(2 * np.pi * 10000 * np.arange(44100) / 44100)  # above 16 kHz's Nyquist: must not alias
    out = resample(tone, orig_hz=44100, new_hz=16000)
    assert np.abs(out[1000:-1000]).max() < 1e-3


def test_reset_starts_a_new_signal(rng):
    signal = rng.standard_normal(3000)
    resampler = Resampler(orig_hz=16000, new_hz=44100)
    resampler.process(rng.standard_normal(777))
    resampler.reset()
    again = np.concatenate([resampler.process(signal), resampler.flush()])
    np.testing.assert_array_equal(again, resample(signal, orig_hz=16000, new_hz=44100))


@pytest.mark.parametrize("rates", [dict(orig_hz=0, new_hz=44100), dict(orig_hz=16000, new_hz=44100.5), dict(orig_hz=True, new_hz=8000)])
def test_bad_rates_are_refused(rates):
    with pytest.raises(ParameterError, match="Hz"):
        Resampler(**rates)


def test_a_two_dimensional_block_is_refused():
    with pytest.raises(ParameterError, match="n_samples"):
        Resampler(orig_hz=16000, new_hz=44100).process(np.zeros((2, 10)))
