"""Tests for synth.sources: properties measured from the rendered audio, not restated formulas."""

import numpy as np
import pytest
from scipy.special import jv

from models.errors import ParameterError
from synth.sources import (
    FMParams,
    SineParams,
    amplitude_to_db,
    db_to_amplitude,
    hz_to_midi,
    midi_to_hz,
    render_fm,
    render_noise_bursts,
    render_sines,
    sample_fm_params,
    sample_sine_params,
)

SAMPLE_RATE = 22050


def _spectrum(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hann-windowed magnitude spectrum scaled so a sinusoid of amplitude a peaks at a; and bin frequencies."""
    window = np.hanning(audio.shape[-1])
    magnitude = np.abs(np.fft.rfft(audio * window, axis=-1)) * 2.0 / window.sum()
    return magnitude, np.fft.rfftfreq(audio.shape[-1], d=1.0 / SAMPLE_RATE)


def _peak_hz(audio: np.ndarray) -> float:
    """Frequency of the strongest spectral peak, refined by a parabola through the log magnitudes."""
    n_fft = 4 * audio.shape[-1]  # zero padding makes the parabola fit tighter
    magnitude = np.abs(np.fft.rfft(audio * np.hanning(audio.shape[-1]), n=n_fft))
    k = int(np.argmax(magnitude[1:-1])) + 1
    left, centre, right = np.log(magnitude[k - 1 : k + 2])
    offset = 0.5 * (left - right) / (left - 2.0 * centre + right)
    return (k + offset) * SAMPLE_RATE / n_fft


def _zero_crossing_hz(frame: np.ndarray) -> float:
    """Frequency from the interpolated positions of rising zero crossings in ``frame``."""
    rising = np.flatnonzero((frame[:-1] < 0) & (frame[1:] >= 0))
    positions = rising + frame[rising] / (frame[rising] - frame[rising + 1])
    return (len(positions) - 1) * SAMPLE_RATE / (positions[-1] - positions[0])


def test_conversions_hit_reference_points_and_invert():
    assert midi_to_hz(69.0) == pytest.approx(440.0)
    assert midi_to_hz(57.0) == pytest.approx(220.0)
    midi = np.linspace(0.0, 127.0, 50)
    np.testing.assert_allclose(hz_to_midi(midi_to_hz(midi)), midi, atol=1e-9)
    assert db_to_amplitude(-20.0) == pytest.approx(0.1)
    db = np.linspace(-100.0, 12.0, 50)
    np.testing.assert_allclose(amplitude_to_db(db_to_amplitude(db)), db, atol=1e-9)
    assert amplitude_to_db(0.0) == -np.inf


def test_sampled_sine_params_stay_in_their_ranges():
    params = sample_sine_params(n_examples=500, seed=3, pitch_midi_range=(38.0, 86.0), peak_db_range=(-40.0, 0.0))
    midi = hz_to_midi(params.f0_hz)
    assert len(params) == 500
    assert midi.min() >= 38.0 and midi.max() < 86.0 and midi.max() - midi.min() > 40.0
    assert params.peak_db.min() >= -40.0 and params.peak_db.max() < 0.0


def test_sine_measured_pitch_matches_parameter():
    params = sample_sine_params(n_examples=24, seed=0)
    audio = render_sines(params, sample_rate=SAMPLE_RATE, n_samples=SAMPLE_RATE)
    measured_hz = np.array([_peak_hz(row) for row in audio])
    np.testing.assert_allclose(measured_hz, params.f0_hz, rtol=0.005)


def test_sine_measured_level_matches_parameter():
    params = sample_sine_params(n_examples=24, seed=1)
    audio = render_sines(params, sample_rate=SAMPLE_RATE, n_samples=SAMPLE_RATE)
    assert audio.dtype == np.float32 and audio.shape == (24, SAMPLE_RATE)
    peak_db = amplitude_to_db(np.abs(audio).max(axis=1))
    # A sine's RMS is its peak / √2, i.e. 3.01 dB below it.
    rms_db = amplitude_to_db(np.sqrt(np.mean(audio.astype(np.float64) ** 2, axis=1))) + 3.0103
    np.testing.assert_allclose(peak_db, params.peak_db, atol=0.5)
    np.testing.assert_allclose(rms_db, params.peak_db, atol=0.5)


def test_fm_with_zero_index_equals_sine():
    f0_hz = midi_to_hz(np.array([40.0, 55.5, 69.0, 85.0]))
    peak_db = np.array([-3.0, -12.0, 0.0, -30.0])
    fm = render_fm(FMParams(f0_hz=f0_hz, ratio=[0.5, 1.0, 2.7, 3.0], index=0.0, peak_db=peak_db), sample_rate=SAMPLE_RATE, n_samples=8000)
    sine = render_sines(SineParams(f0_hz=f0_hz, peak_db=peak_db), sample_rate=SAMPLE_RATE, n_samples=8000)
    np.testing.assert_allclose(fm, sine, atol=1e-6)


def test_fm_sidebands_sit_at_carrier_plus_minus_multiples_of_modulator():
    carrier_hz, modulator_hz, index = 1500.0, 555.0, 1.5
    audio = render_fm(FMParams(f0_hz=carrier_hz, ratio=modulator_hz / carrier_hz, index=index), sample_rate=SAMPLE_RATE, n_samples=SAMPLE_RATE)[0]
    magnitude, freqs_hz = _spectrum(audio)
    is_peak = np.r_[False, (magnitude[1:-1] > magnitude[:-2]) & (magnitude[1:-1] > magnitude[2:]), False]
    strongest = np.sort(freqs_hz[is_peak][np.argsort(magnitude[is_peak])[-5:]])
    # J0(1.5) and J1(1.5) dominate, then the two J2 sidebands: carrier ± k·modulator for k = 0, 1, 2.
    np.testing.assert_allclose(strongest, carrier_hz + modulator_hz * np.array([-2, -1, 0, 1, 2]), atol=1.0)
    for k in range(3):
        for side in (-1, 1):
            bin_index = int(round(carrier_hz + side * k * modulator_hz))
            assert magnitude[bin_index] == pytest.approx(abs(jv(k, index)), abs=0.01)


def test_fm_vibrato_moves_pitch_by_depth_continuously():
    f0_hz, depth_cents, rate_hz = 440.0, 50.0, 5.0
    params = FMParams(f0_hz=f0_hz, ratio=1.0, index=0.0, vibrato_rate_hz=rate_hz, vibrato_depth_cents=depth_cents)
    audio = render_fm(params, sample_rate=SAMPLE_RATE, n_samples=SAMPLE_RATE)[0].astype(np.float64)
    frame = SAMPLE_RATE // 100  # 10 ms frames: short against the 200 ms vibrato period
    cents = np.array([1200.0 * np.log2(_zero_crossing_hz(audio[i : i + frame]) / f0_hz) for i in range(0, SAMPLE_RATE - frame, frame)])
    # 10 ms averaging shaves a little off the extremes of a 5 Hz sine (about 0.4%).
    assert cents.max() == pytest.approx(depth_cents, abs=3.0)
    assert cents.min() == pytest.approx(-depth_cents, abs=3.0)
    assert np.mean(cents) == pytest.approx(0.0, abs=3.0)
    # Phase continuity: no step larger than the fastest instantaneous frequency allows.
    max_step = 2.0 * np.pi * f0_hz * 2.0 ** (depth_cents / 1200.0) / SAMPLE_RATE
    assert np.abs(np.diff(audio)).max() <= max_step * 1.001


def test_fm_envelope_shapes_attack_sustain_and_release():
    params = FMParams(f0_hz=441.0, ratio=2.0, index=1.0, peak_db=-6.0, attack_s=0.1, decay_s=0.1, sustain_level=0.5, release_s=0.2)
    audio = render_fm(params, sample_rate=SAMPLE_RATE, n_samples=SAMPLE_RATE)[0]
    peak = db_to_amplitude(-6.0)

    def window_peak(start_s: float, stop_s: float) -> float:
        return float(np.abs(audio[int(start_s * SAMPLE_RATE) : int(stop_s * SAMPLE_RATE)]).max())

    assert np.abs(audio).max() == pytest.approx(peak, rel=0.02)
    assert window_peak(0.0, 0.01) < 0.11 * peak
    assert window_peak(0.09, 0.11) == pytest.approx(peak, rel=0.02)
    assert window_peak(0.3, 0.75) == pytest.approx(0.5 * peak, rel=0.02)
    assert window_peak(0.99, 1.0) < 0.06 * peak


def test_same_seed_same_audio_and_other_seed_differs():
    def fm(seed: int) -> np.ndarray:
        params = sample_fm_params(n_examples=3, seed=seed, vibrato_depth_cents_range=(10.0, 40.0), attack_s_range=(0.0, 0.05))
        return render_fm(params, sample_rate=SAMPLE_RATE, n_samples=2048)

    def sines(seed: int) -> np.ndarray:
        return render_sines(sample_sine_params(n_examples=3, seed=seed), sample_rate=SAMPLE_RATE, n_samples=2048)

    def noise(seed: int) -> np.ndarray:
        return render_noise_bursts(n_examples=3, seed=seed, sample_rate=SAMPLE_RATE, n_samples=2048)

    for render in (fm, sines, noise):
        np.testing.assert_array_equal(render(7), render(7))
        assert not np.allclose(render(7), render(8))


def test_batch_items_equal_single_renders_across_chunks():
    n_samples = 4096  # 512 rows per chunk, so item 550 is rendered in the second chunk
    params = sample_fm_params(n_examples=600, seed=2, vibrato_depth_cents_range=(0.0, 50.0), release_s_range=(0.0, 0.05))
    batch = render_fm(params, sample_rate=SAMPLE_RATE, n_samples=n_samples)
    for item in (0, 550):
        np.testing.assert_array_equal(batch[item], render_fm(params[item], sample_rate=SAMPLE_RATE, n_samples=n_samples)[0])
    sine_params = sample_sine_params(n_examples=600, seed=2)
    sines = render_sines(sine_params, sample_rate=SAMPLE_RATE, n_samples=n_samples)
    np.testing.assert_array_equal(sines[550], render_sines(sine_params[550], sample_rate=SAMPLE_RATE, n_samples=n_samples)[0])


def test_noise_bursts_peak_at_their_level_and_decay():
    n_samples = 2 * SAMPLE_RATE
    decay_s = 0.05
    audio = render_noise_bursts(n_examples=8, seed=0, sample_rate=SAMPLE_RATE, n_samples=n_samples, bursts_per_example=1, decay_s_range=(decay_s, decay_s), peak_db_range=(-6.0, -6.0))
    assert audio.shape == (8, n_samples) and audio.dtype == np.float32
    peak_db = amplitude_to_db(np.abs(audio).max(axis=1))
    # The envelope bounds the noise; uniform noise comes close to it only within a few hundred samples.
    assert np.all(peak_db <= -6.0) and np.all(peak_db > -7.0)
    for row in audio:
        loudest = int(np.argmax(np.abs(row)))
        # 10 decay time constants after the peak a burst has fallen by more than 80 dB.
        assert np.all(np.abs(row[loudest + int(10 * decay_s * SAMPLE_RATE) :]) < db_to_amplitude(-80.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: SineParams(f0_hz=-440.0, peak_db=0.0),
        lambda: SineParams(f0_hz=0.0, peak_db=0.0),
        lambda: SineParams(f0_hz=np.nan, peak_db=0.0),
        lambda: SineParams(f0_hz=440.0, peak_db=np.inf),
        lambda: SineParams(f0_hz=[220.0, 440.0], peak_db=[0.0, -3.0, -6.0]),
        lambda: SineParams(f0_hz="loud", peak_db=0.0),
        lambda: FMParams(f0_hz=440.0, ratio=0.0, index=1.0),
        lambda: FMParams(f0_hz=440.0, ratio=-2.0, index=1.0),
        lambda: FMParams(f0_hz=440.0, ratio=1.0, index=-1.0),
        lambda: FMParams(f0_hz=440.0, ratio=1.0, index=1.0, sustain_level=1.5),
        lambda: FMParams(f0_hz=440.0, ratio=1.0, index=1.0, vibrato_depth_cents=np.nan),
        lambda: render_sines(SineParams(f0_hz=440.0, peak_db=0.0), sample_rate=SAMPLE_RATE, n_samples=0),
        lambda: render_sines(SineParams(f0_hz=440.0, peak_db=0.0), sample_rate=SAMPLE_RATE, n_samples=-5),
        lambda: render_sines(SineParams(f0_hz=440.0, peak_db=0.0), sample_rate=SAMPLE_RATE, n_samples=100.5),
        lambda: render_sines(SineParams(f0_hz=12000.0, peak_db=0.0), sample_rate=SAMPLE_RATE, n_samples=100),
        lambda: render_fm(FMParams(f0_hz=440.0, ratio=1.0, index=1.0), sample_rate=0, n_samples=100),
        lambda: render_fm(SineParams(f0_hz=440.0, peak_db=0.0), sample_rate=SAMPLE_RATE, n_samples=100),
        lambda: sample_sine_params(n_examples=0, seed=0),
        lambda: sample_sine_params(n_examples=4, seed=0, pitch_midi_range=(86.0, 38.0)),
        lambda: sample_fm_params(n_examples=4, seed=0, ratio_range=(-1.0, 2.0)),
        lambda: render_noise_bursts(n_examples=2, seed=0, sample_rate=SAMPLE_RATE, n_samples=100, decay_s_range=(0.0, 0.1)),
    ],
)
def test_bad_parameters_raise_parameter_error(make):
    with pytest.raises(ParameterError):
        make()


def test_error_message_quotes_the_bad_value():
    with pytest.raises(ParameterError, match=r"ratio=-2\.0"):
        FMParams(f0_hz=440.0, ratio=-2.0, index=1.0)
