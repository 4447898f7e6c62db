"""Spectral core: STFT and mel analysis, the mel inverse, phase reconstruction and the streaming inverter."""

import math

import numpy as np
import pytest
import torch

from models.errors import ParameterError
from synth.phase import METHODS, magnitude_to_audio, mel_to_audio
from synth.spectral import (
    SpectralConfig,
    amplitude_to_normalized_db,
    audio_to_magnitude,
    audio_to_mel,
    audio_to_stft,
    mel_band_centers_hz,
    magnitude_to_mel,
    mel_filterbank,
    mel_to_magnitude,
    normalized_db_to_amplitude,
    stft_to_audio,
)
from synth.streaming import StreamingInverter

CFG = SpectralConfig()


def _sine(f0_hz: float, seconds: float = 1.0, amplitude: float = 0.5, sample_rate: int = 22050) -> torch.Tensor:
    t = torch.arange(int(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return (amplitude * torch.sin(2 * math.pi * f0_hz * t)).float()


def _peak_hz(audio: torch.Tensor, sample_rate: int) -> float:
    """Frequency of the strongest spectral peak, refined by parabolic interpolation of the log magnitude."""
    x = audio.double().numpy() * np.hanning(audio.shape[-1])
    spectrum = np.log(np.abs(np.fft.rfft(x, n=8 * x.size)) + 1e-12)
    k = int(np.argmax(spectrum))
    a, b, c = spectrum[k - 1 : k + 2]
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + shift) * sample_rate / (8 * x.size)


def _noise_bursts(seconds: float = 2.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(5)
    noise = torch.randn(int(seconds * 22050), generator=generator)
    gate = (torch.arange(noise.numel()) // 5000) % 2 == 0  # 0.23 s on, 0.23 s off
    return 0.3 * noise * gate


def _spectral_convergence(audio: torch.Tensor, magnitude: torch.Tensor, *, skip_edges: int = 0) -> float:
    """Spectral convergence, optionally over interior frames only.

    The first and last few frames of a signal are reflect-padded, which no phase model fits; over a
    one-second test signal they would dominate what the interior tests are about.
    """
    rebuilt = audio_to_magnitude(audio, config=CFG)[..., : magnitude.shape[-1]]
    inner = slice(skip_edges, magnitude.shape[-1] - skip_edges)
    return float(torch.linalg.norm(rebuilt[..., inner] - magnitude[..., inner]) / torch.linalg.norm(magnitude[..., inner]))


# ---- config ------------------------------------------------------------------------------------


def test_config_round_trips_through_dict():
    cfg = SpectralConfig(n_mels=64, f_min_hz=72.0, f_max_hz=1176.0, n_fft=4096, hop_length=512)
    assert SpectralConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"n_fft": 0}, "n_fft"),
        ({"hop_length": 2048}, "hop_length"),
        ({"f_max_hz": 20000.0}, "f_max_hz"),
        ({"mel_scale": "bark"}, "mel_scale"),
        ({"db_floor": 10.0, "db_ceiling": 0.0}, "db_floor"),
    ],
)
def test_config_rejects_bad_values(kwargs, word):
    with pytest.raises(ParameterError, match=word):
        SpectralConfig(**kwargs)


def test_config_from_dict_names_unknown_key():
    with pytest.raises(ParameterError, match="hopsize"):
        SpectralConfig.from_dict({**CFG.to_dict(), "hopsize": 3})


# ---- analysis ----------------------------------------------------------------------------------


def test_stft_round_trip_reconstructs_audio(rng):
    audio = torch.from_numpy(rng.standard_normal(5000).astype(np.float32))
    rebuilt = stft_to_audio(audio_to_stft(audio, config=CFG), config=CFG)
    assert rebuilt.shape[-1] == CFG.n_frames_for(5000) * CFG.hop_length
    torch.testing.assert_close(rebuilt[:5000], audio, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_samples", [100, 300, 5000, 22050])
@pytest.mark.parametrize("hop_length", [256, 300])
def test_inverse_stft_equals_torch_istft(rng, n_samples, hop_length):
    cfg = SpectralConfig(hop_length=hop_length)  # 300 does not divide n_fft: the torch.istft path
    spec = audio_to_stft(torch.from_numpy(rng.standard_normal((2, n_samples)).astype(np.float32)), config=cfg)
    window = torch.hann_window(cfg.n_fft)
    for length in {spec.shape[-1] * hop_length, n_samples}:
        expected = torch.istft(spec, cfg.n_fft, hop_length, window=window, center=True, length=length)
        torch.testing.assert_close(stft_to_audio(spec, config=cfg, n_samples=length), expected, atol=1e-5, rtol=0)


def test_frame_count_and_shape_follow_the_convention():
    mel = audio_to_mel(torch.zeros(3, 2, 10_000), config=CFG)
    assert mel.shape == (3, 2, CFG.n_mels, 1 + 10_000 // CFG.hop_length)
    assert mel.min() >= 0 and mel.max() <= 1


def test_normalized_db_round_trip():
    amplitude = torch.logspace(-4, 1, 50)  # -80 dB … +20 dB, inside the default floor/ceiling
    back = normalized_db_to_amplitude(amplitude_to_normalized_db(amplitude, config=CFG), config=CFG)
    torch.testing.assert_close(back, amplitude, rtol=1e-4, atol=0)


def test_mel_filter_peaks_sit_at_the_mel_band_centres():
    cfg = SpectralConfig(n_fft=4096, n_mels=40)
    fb = mel_filterbank(config=cfg)
    peak_hz = fb.argmax(dim=1).double() * cfg.sample_rate / cfg.n_fft
    bin_hz = cfg.sample_rate / cfg.n_fft
    assert torch.all((peak_hz - mel_band_centers_hz(config=cfg)).abs() <= bin_hz)


def test_default_config_inverts_pitch_within_a_quarter_percent():
    for f0_hz in (261.63, 440.0, 1000.0, 3000.0):
        audio = mel_to_audio(audio_to_mel(_sine(f0_hz), config=CFG), config=CFG)
        assert abs(_peak_hz(audio[2048:-2048], CFG.sample_rate) - f0_hz) / f0_hz < 0.0025


def test_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(config=CFG).numpy()
    theirs = librosa.filters.mel(sr=CFG.sample_rate, n_fft=CFG.n_fft, n_mels=CFG.n_mels, fmin=0.0, fmax=CFG.f_max_hz)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_sine_energy_lands_in_the_band_around_its_frequency():
    mel = audio_to_mel(_sine(1000.0), config=CFG)
    band = int(mel.mean(dim=-1).argmax())
    centres = mel_band_centers_hz(config=CFG)
    assert abs(centres[band].item() - 1000.0) < 60.0


def test_quiet_sounds_keep_their_shape_in_the_normalised_range():
    loud, quiet = audio_to_mel(_sine(440.0, amplitude=0.5), config=CFG), audio_to_mel(_sine(440.0, amplitude=0.005), config=CFG)
    # 40 dB quieter is a constant shift of 40/120 in normalised units where both are above the floor
    above_floor = quiet > 0.05
    shift = (loud - quiet)[above_floor]
    assert above_floor.sum() > 50
    torch.testing.assert_close(shift.mean(), torch.tensor(40.0 / 120.0), atol=2e-3, rtol=0)


def test_analysis_batch_item_equals_single_result(rng):
    batch = torch.from_numpy(rng.standard_normal((3, 8000)).astype(np.float32))
    torch.testing.assert_close(audio_to_mel(batch, config=CFG)[1], audio_to_mel(batch[1], config=CFG))


# ---- phase reconstruction -------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_mel_to_audio_keeps_a_440_hz_pitch(method):
    audio = mel_to_audio(audio_to_mel(_sine(440.0), config=CFG), config=CFG, method=method)
    assert audio.shape == (CFG.n_frames_for(22050) * CFG.hop_length,)
    assert abs(_peak_hz(audio[2048:-2048], CFG.sample_rate) - 440.0) / 440.0 < 0.01


@pytest.mark.parametrize("f0_hz", [110.0, 523.25, 2500.0])
def test_pghi_alone_reconstructs_stationary_tones_closely(f0_hz):
    magnitude = audio_to_magnitude(_sine(f0_hz), config=CFG)
    audio = magnitude_to_audio(magnitude, config=CFG, method="pghi")
    assert _spectral_convergence(audio, magnitude, skip_edges=4) < 0.03


def test_pghi_plus_fgla_beats_plain_griffin_lim_of_twice_the_iterations():
    t = torch.arange(22050) / 22050
    chirp = 0.5 * torch.sin(2 * math.pi * (200 * t + 300 * t**2))
    magnitude = audio_to_magnitude(chirp, config=CFG)
    ours = magnitude_to_audio(magnitude, config=CFG, method="pghi+fgla", n_iter=16)
    plain = magnitude_to_audio(magnitude, config=CFG, method="griffinlim", n_iter=32)
    sc_ours = _spectral_convergence(ours, magnitude, skip_edges=4)
    assert sc_ours < 0.5 * _spectral_convergence(plain, magnitude, skip_edges=4)
    # and over the whole signal, edges included, it is still no worse
    assert _spectral_convergence(ours, magnitude) <= _spectral_convergence(plain, magnitude)


def test_reconstruction_batch_item_equals_single_result():
    batch = torch.stack([_sine(220.0), _sine(330.0, amplitude=0.2)])
    mel = audio_to_mel(batch, config=CFG)
    together = mel_to_audio(mel, config=CFG)
    alone = mel_to_audio(mel[1], config=CFG)
    torch.testing.assert_close(together[1], alone, atol=1e-5, rtol=0)


def _refit_options(refit: str, amplitude: torch.Tensor) -> dict:
    """griffinlim's keyword arguments for each way of treating the magnitude."""
    return {"fixed": {}, "mel": {"mel_amplitude": amplitude},
            "keep_floor": {"mel_amplitude": amplitude, "keep_floor": True}}[refit]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("refit", ["fixed", "mel", "keep_floor"])
def test_frames_first_griffin_lim_equals_the_general_loop(monkeypatch, dtype, refit):
    """The CPU fast path runs the same iterations: float64 agrees to rounding; float32 within 1e-3 of the
    peak after 12 iterations (rounding differences grow a little with each one)."""
    from synth import phase

    t = torch.arange(2 * 8000, dtype=torch.float64) / 22050
    audio = torch.stack([0.5 * torch.sin(2 * math.pi * (200 * t + 300 * t**2)),
                         0.3 * torch.sin(2 * math.pi * 440 * t) * (t < 0.2)]).to(dtype)
    mel = audio_to_mel(audio, config=CFG)
    amplitude = normalized_db_to_amplitude(mel, config=CFG)
    magnitude = mel_to_magnitude(amplitude, config=CFG)
    initial = phase.pghi_phase(magnitude, config=CFG)
    options = _refit_options(refit, amplitude)
    assert phase._frames_first_applies(magnitude, CFG)
    fast = phase.griffinlim(magnitude, config=CFG, n_iter=12, initial_phase=initial, **options)
    monkeypatch.setattr(phase, "_frames_first_applies", lambda magnitude, config: False)
    general = phase.griffinlim(magnitude, config=CFG, n_iter=12, initial_phase=initial, **options)
    assert fast.dtype == general.dtype and fast.shape == general.shape
    tolerance = 1e-3 if dtype == torch.float32 else 1e-9
    torch.testing.assert_close(fast, general, atol=tolerance * float(general.abs().max()), rtol=0)


def test_griffin_lim_leaves_its_inputs_alone():
    """A frames-first magnitude (as ``torch.stft`` lays it out) shares memory with the fast path's buffers
    unless they are copies."""
    from synth.phase import griffinlim, pghi_phase

    magnitude = audio_to_magnitude(_sine(300.0, seconds=0.3), config=CFG)[None]
    assert magnitude.transpose(1, 2).is_contiguous()
    before = magnitude.clone()
    initial = pghi_phase(magnitude, config=CFG)
    griffinlim(magnitude, config=CFG, n_iter=3, initial_phase=initial)
    assert torch.equal(magnitude, before)


def test_griffin_lim_is_deterministic_for_a_seed():
    mel = audio_to_mel(_sine(300.0, seconds=0.3), config=CFG)
    a = mel_to_audio(mel, config=CFG, method="griffinlim", seed=3)
    b = mel_to_audio(mel, config=CFG, method="griffinlim", seed=3)
    c = mel_to_audio(mel, config=CFG, method="griffinlim", seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_silence_reconstructs_to_silence():
    audio = mel_to_audio(torch.zeros(CFG.n_mels, 20), config=CFG)
    assert torch.isfinite(audio).all() and audio.abs().max() < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("sound", ["tone", "noise"])
def test_mel_to_audio_runs_on_cuda_and_agrees_with_cpu(sound):
    """A tone (PGHI and fast Griffin-Lim) agrees sample by sample; noise bursts (the relaxed stage too) agree in
    quality: float32 rounding differs between the devices, and noise phases drift apart over 100 iterations."""
    audio = _sine(440.0) if sound == "tone" else _noise_bursts(1.0)
    mel = audio_to_mel(audio, config=CFG)
    gpu = mel_to_audio(mel.cuda(), config=CFG)
    assert gpu.device.type == "cuda"
    cpu = mel_to_audio(mel, config=CFG)
    if sound == "tone":
        torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-3, rtol=0)
    else:
        truth = audio_to_magnitude(audio, config=CFG)
        assert abs(_spectral_convergence(gpu.cpu(), truth) - _spectral_convergence(cpu, truth)) < 0.01


# ---- streaming --------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_streaming_equals_offline_pghi_delayed_by_its_latency(chunk):
    t = torch.arange(22050) / 22050
    audio = 0.4 * torch.sin(2 * math.pi * (150 * t + 200 * t**2)) + 0.05 * torch.sin(2 * math.pi * 3000 * t)
    mel = audio_to_mel(audio, config=CFG)
    offline = mel_to_audio(mel, config=CFG, method="pghi").numpy()
    inverter = StreamingInverter(config=CFG)
    pieces = [inverter.push(mel[:, i : i + chunk].numpy()) for i in range(0, mel.shape[-1], chunk)]
    assert all(p.shape == (min(chunk, mel.shape[-1] - i) * CFG.hop_length,) for p, i in zip(pieces, range(0, mel.shape[-1], chunk)))
    streamed = np.concatenate(pieces + [inverter.flush()])
    latency = inverter.latency_samples
    assert streamed.shape == (offline.size + latency,)
    np.testing.assert_allclose(streamed[latency:], offline, atol=1e-4 * np.abs(offline).max())
    assert np.all(streamed[:latency] == 0.0)


def test_streaming_is_phase_continuous_on_a_steady_tone():
    mel = audio_to_mel(_sine(440.0, seconds=1.0), config=CFG).numpy()
    inverter = StreamingInverter(config=CFG)
    out = np.concatenate([inverter.push(mel[:, i]) for i in range(mel.shape[-1])])
    steady = out[4096:-4096]
    # a phase jump at a block border would show as a spike in the second difference
    envelope = np.abs(np.diff(steady, 2)).max() / np.abs(steady).max()
    assert envelope < (2 * math.pi * 440 / 22050) ** 2 * 1.5


def test_streaming_reset_starts_a_new_signal():
    mel = audio_to_mel(_sine(440.0, seconds=0.2), config=CFG).numpy()
    inverter = StreamingInverter(config=CFG)
    first = np.concatenate([inverter.push(mel), inverter.flush()])
    second = np.concatenate([inverter.push(mel), inverter.flush()])
    np.testing.assert_array_equal(first, second)


# ---- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "audio, word",
    [
        (torch.zeros(0), "empty"),
        (torch.tensor(1.0), "scalar"),
        (torch.tensor([0.0, float("nan"), 0.0]), "NaN"),
        (torch.tensor([0.0, float("inf")]), "inf"),
    ],
)
def test_audio_to_mel_rejects_bad_audio(audio, word):
    with pytest.raises(ParameterError, match=word):
        audio_to_mel(audio, config=CFG)


def test_audio_to_mel_rejects_a_sample_rate_mismatch():
    with pytest.raises(ParameterError, match="44100"):
        audio_to_mel(torch.zeros(1000), config=CFG, sample_rate=44100)


@pytest.mark.parametrize(
    "mel, word",
    [
        (torch.zeros(64, 10), "64 bands"),
        (torch.zeros(128), "shape"),
        (torch.zeros(128, 0), "no frames"),
        (torch.full((128, 4), float("nan")), "NaN"),
    ],
)
def test_mel_to_audio_rejects_bad_mels(mel, word):
    with pytest.raises(ParameterError, match=word):
        mel_to_audio(mel, config=CFG)


def test_unknown_method_names_the_accepted_ones():
    with pytest.raises(ParameterError, match="pghi\\+fgla"):
        mel_to_audio(torch.zeros(128, 4), config=CFG, method="wavenet")


def test_pghi_takes_no_iterations():
    with pytest.raises(ParameterError, match="pghi\\+fgla"):
        mel_to_audio(torch.zeros(128, 4), config=CFG, method="pghi", n_iter=5)


def test_streaming_rejects_bad_frames():
    inverter = StreamingInverter(config=CFG)
    with pytest.raises(ParameterError, match="128"):
        inverter.push(np.zeros(64))
    with pytest.raises(ParameterError, match="NaN"):
        inverter.push(np.full(128, np.nan))


@pytest.mark.parametrize("refit", ["fixed", "mel", "keep_floor"])
def test_griffin_lim_gradient_is_finite(refit):
    """Autograd runs the general loop; its gradient must be usable for training through the iterations
    (keep_floor's ratio ** 1.5 in bins no active band covers is 0, where a square root's slope is inf)."""
    from synth.phase import griffinlim, pghi_phase

    audio = torch.stack([_sine(300.0, seconds=0.3), _sine(500.0, seconds=0.3, amplitude=0.05)])
    mel = audio_to_mel(audio, config=CFG)
    amplitude = normalized_db_to_amplitude(mel, config=CFG)
    magnitude = mel_to_magnitude(amplitude, config=CFG).requires_grad_(True)
    options = _refit_options(refit, amplitude)
    out = griffinlim(magnitude, config=CFG, n_iter=3, initial_phase=pghi_phase(magnitude.detach(), config=CFG), **options)
    out.square().sum().backward()
    assert magnitude.grad is not None and bool(torch.isfinite(magnitude.grad).all())
    assert float(magnitude.grad.abs().max()) > 0


def test_iterations_before_the_fit_hold_the_magnitude():
    """``fit_iter`` counts the last iterations that fit the mel; with none the mel changes nothing."""
    from synth.phase import griffinlim, pghi_phase

    mel = audio_to_mel(_sine(300.0, seconds=0.3), config=CFG)
    amplitude = normalized_db_to_amplitude(mel, config=CFG)[None]
    magnitude = mel_to_magnitude(amplitude, config=CFG)
    initial = pghi_phase(magnitude, config=CFG)
    held = griffinlim(magnitude, config=CFG, n_iter=4, initial_phase=initial)
    assert torch.equal(griffinlim(magnitude, config=CFG, n_iter=4, initial_phase=initial, mel_amplitude=amplitude,
                                  fit_iter=0), held)
    assert not torch.equal(griffinlim(magnitude, config=CFG, n_iter=4, initial_phase=initial, mel_amplitude=amplitude,
                                      fit_iter=1), held)
    with pytest.raises(ParameterError, match="fit_iter"):
        griffinlim(magnitude, config=CFG, n_iter=4, mel_amplitude=amplitude, fit_iter=-1)


def test_the_half_way_fit_brings_the_mel_closer_without_leaving_the_true_spectrum():
    """From a mel, fitting half-way in every iteration (the default) against holding the estimate: the
    output's mel is closer to the input and its magnitude no further from the true one (a vibrato tone over
    noise, where re-fitting all the way made the spectrum worse)."""
    from synth.phase import ESTIMATE_STEPS, griffinlim, pghi_phase

    t = torch.arange(CFG.sample_rate) / CFG.sample_rate
    audio = 0.4 * torch.sin(2 * math.pi * (330 * t + 3 * torch.sin(2 * math.pi * 5 * t)))
    audio = audio + 0.05 * torch.randn(t.shape, generator=torch.Generator().manual_seed(1))
    mel, true = audio_to_mel(audio, config=CFG), audio_to_magnitude(audio, config=CFG)
    amplitude = normalized_db_to_amplitude(mel, config=CFG)[None]
    estimate = mel_to_magnitude(amplitude, config=CFG, n_iter=ESTIMATE_STEPS, over_relaxed=True).contiguous()
    phase = pghi_phase(estimate, config=CFG)

    def errors(audio: torch.Tensor) -> tuple[float, float]:
        rebuilt = audio_to_magnitude(audio[..., : t.numel()], config=CFG)
        rebuilt_mel = amplitude_to_normalized_db(magnitude_to_mel(rebuilt, config=CFG), config=CFG)
        return float((rebuilt_mel - mel).abs().mean()), _spectral_convergence(audio[0], true)

    held = errors(griffinlim(estimate, config=CFG, n_iter=12, initial_phase=phase))
    fitted = errors(mel_to_audio(mel, config=CFG)[None])
    assert fitted[0] < 0.8 * held[0] and fitted[1] <= held[1]


# ---- the relaxed-reflection stage for noise-like sounds ---------------------------------------------


def test_noise_iterations_go_to_noise_and_not_to_tones():
    from synth.phase import NOISE_ITER, noise_iterations, spectral_flatness

    sounds = torch.stack([_noise_bursts(1.0), _sine(440.0)])
    magnitude = audio_to_magnitude(sounds, config=CFG)
    flatness = spectral_flatness(magnitude, config=CFG)
    assert flatness[0] > 0.5 and flatness[1] < 0.05
    assert noise_iterations(magnitude, config=CFG) == [NOISE_ITER, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_frames_first_relaxed_phase_equals_the_general_loop(monkeypatch, dtype):
    from synth import phase

    magnitude = audio_to_magnitude(torch.stack([_noise_bursts(0.5), _sine(300.0, seconds=0.5)]).to(dtype), config=CFG)
    initial = phase.pghi_phase(magnitude, config=CFG)
    assert phase._frames_first_applies(magnitude, CFG)
    fast = phase.relaxed_phase(magnitude, config=CFG, n_iter=10, initial_phase=initial)
    monkeypatch.setattr(phase, "_frames_first_applies", lambda magnitude, config: False)
    general = phase.relaxed_phase(magnitude, config=CFG, n_iter=10, initial_phase=initial)
    assert fast.dtype == general.dtype and fast.shape == magnitude.shape
    # compared as unit phasors weighted by the magnitude (a near-silent bin's phase may turn freely)
    difference = (magnitude * (torch.polar(torch.ones_like(fast), fast) - torch.polar(torch.ones_like(general), general))).abs()
    tolerance = 1e-3 if dtype == torch.float32 else 1e-9
    assert float(difference.max()) <= tolerance * float(magnitude.max())


def test_relaxed_reflections_bring_noise_closer_to_the_true_spectrum(monkeypatch):
    """From the mel of noise bursts, the default's relaxed stage lowers the spectral convergence against the
    true magnitude below what its fast Griffin-Lim reaches alone, and leaves a tone's reconstruction as it was."""
    from synth import phase

    noise, tone = _noise_bursts(), _sine(440.0, seconds=2.0)
    with_stage = [mel_to_audio(audio_to_mel(x, config=CFG), config=CFG) for x in (noise, tone)]
    monkeypatch.setattr(phase, "noise_iterations", lambda magnitude, config: [0] * len(magnitude))
    without = [mel_to_audio(audio_to_mel(x, config=CFG), config=CFG) for x in (noise, tone)]
    truth = audio_to_magnitude(noise, config=CFG)
    assert _spectral_convergence(with_stage[0], truth) < _spectral_convergence(without[0], truth) - 0.005
    assert torch.equal(with_stage[1], without[1])

