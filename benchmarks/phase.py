"""Phase-reconstruction benchmark: our methods against torchaudio's and librosa's Griffin-Lim, per signal class.

Signals (10 s each, peak-normalised to -1 dBFS), in classes:

* **speech-like**: glottal pulse trains through vowel formants, syllables with intonation and fricatives
  (a low and a high voice);
* **plucked**: Karplus-Strong strings, overlapping notes over three octaves;
* **piano-like**: chords of stiff-string partials (inharmonic, each decaying at its own rate);
* **drums & noise**: a synthetic kit (pitch-dropping kick, snare, hi-hats) and white-noise bursts;
* **chirps**: linear and exponential sweeps, and a harmonic glide with vibrato;
* **tonal synth**: FM with vibrato, and a sum of sines;
* **recordings**: what pyo ships (flute, drum loop, a voice, music, an accordion chord), tiled to length.

Every method reconstructs each signal twice: from the true STFT magnitude, and from the normalised log-mel
(as the models' output is). From the mel, our methods run :func:`synth.phase.mel_to_audio`; the other
libraries' Griffin-Lim (torchaudio 32 and 100 iterations, seeded; librosa 32, if installed) take the same
magnitude estimate our iterative methods start from and hold it fixed. Reported per signal and per class:
seconds and × real time (``--threads`` threads, median of ``--repeats``; CPU time of all threads too),
spectral convergence against the *true* magnitude, and mel L1 in dB between the input log-mel and the
log-mel of the reconstruction. Then the streaming inverter's per-hop cost on one thread, and, with CUDA,
batched GPU throughput. ``--curve`` adds the speed–error curve the default was chosen from: the default's
schedule at other iteration counts, with the magnitude fitted to the mel in none, the last half, or all
of them.

Target (issue 23): the default (``pghi+fgla``) at ≥ 5× torchaudio GL-100's speed, with mel L1 and spectral
convergence each ≤ GL-100's on every signal class, from the mel, in one run.

Usage::

    python benchmarks/phase.py            # tables
    python benchmarks/phase.py --json     # one JSON object
    python benchmarks/phase.py --curve --repeats 3
    python benchmarks/phase.py --n-mels 80 --signals flute voice
    python benchmarks/phase.py --preset default     # the spectral config a preset renders with
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import torch
import torchaudio
from threadpoolctl import threadpool_limits

from synth.audio_io import read_audio
from synth.phase import (
    DEFAULT_N_ITER,
    ESTIMATE_STEPS,
    NOISE_ITER,
    griffinlim,
    magnitude_to_audio,
    mel_to_audio,
    pghi_phase,
)
from synth.sources import FMParams, SineParams, render_fm, render_noise_bursts, render_sines
from synth.spectral import (
    SpectralConfig,
    amplitude_to_normalized_db,
    audio_to_magnitude,
    audio_to_mel,
    magnitude_to_mel,
    mel_to_magnitude,
    normalized_db_to_amplitude,
)
from synth.streaming import StreamingInverter
from training.metrics import log_mel_l1, spectral_convergence

SECONDS = 10.0
DEFAULT = "pghi+fgla"
REFERENCE = "torchaudio GL-100"
TARGET_SPEEDUP = 5.0
CURVE_ITERATIONS = (4, 8, 12, 16, 24, 32, 48, 64)

# ---- signals ------------------------------------------------------------------------------------------

# formants F1–F4 in Hz of five vowels (adult male, after Peterson & Barney); a higher voice scales them
_VOWELS_HZ = ((730, 1090, 2440, 3400), (270, 2290, 3010, 3700), (300, 870, 2240, 3300),
              (530, 1840, 2480, 3500), (570, 840, 2410, 3300))
_FORMANT_BANDWIDTHS_HZ = (80, 100, 140, 200)


def _resonate(signal: np.ndarray, *, centres_hz, bandwidths_hz, sample_rate: int) -> np.ndarray:
    """``signal`` through two-pole resonators in series (unit gain near each centre)."""
    for centre, bandwidth in zip(centres_hz, bandwidths_hz):
        radius = math.exp(-math.pi * bandwidth / sample_rate)
        poles = [1.0, -2 * radius * math.cos(2 * math.pi * centre / sample_rate), radius * radius]
        signal = scipy.signal.lfilter([1.0 - radius], poles, signal)
    return signal


def _speech_like(rng: np.random.Generator, sample_rate: int, n_samples: int, *, f0_hz: float,
                 formant_scale: float) -> np.ndarray:
    """Syllables of 0.15–0.35 s: a jittered glottal pulse train gliding in pitch, through a vowel's formants,
    some led by a fricative (band-passed noise), with pauses between."""
    out = np.zeros(n_samples)
    position = 0
    while position < n_samples:
        if rng.random() < 0.4:
            length = int(0.08 * sample_rate)
            hiss = _resonate(rng.standard_normal(length), centres_hz=[rng.uniform(3500, 6000)],
                             bandwidths_hz=[1500], sample_rate=sample_rate)
            stop = min(n_samples, position + length)
            out[position:stop] += (0.3 * hiss / np.abs(hiss).max() * np.hanning(length))[: stop - position]
            position = stop
        length = int(rng.uniform(0.15, 0.35) * sample_rate)
        t_s = np.arange(length) / sample_rate
        semitones = rng.uniform(-3, 3) + rng.uniform(-2, 2) * t_s / t_s[-1]
        f0 = f0_hz * 2 ** (semitones / 12) * (1 + 0.01 * rng.standard_normal(length))
        pulses = np.diff(np.floor(np.cumsum(f0 / sample_rate)), prepend=0.0)
        glottal = np.diff(scipy.signal.lfilter([1.0], [1.0, -1.9, 0.905], pulses), prepend=0.0)
        vowel = _VOWELS_HZ[rng.integers(len(_VOWELS_HZ))]
        voiced = _resonate(glottal, centres_hz=[f * formant_scale for f in vowel],
                           bandwidths_hz=_FORMANT_BANDWIDTHS_HZ, sample_rate=sample_rate)
        envelope = np.sin(np.pi / 2 * np.minimum(t_s / 0.04, 1)) ** 2 * np.clip((t_s[-1] - t_s) / 0.05, 0, 1)
        stop = min(n_samples, position + length)
        out[position:stop] += (voiced / np.abs(voiced).max() * envelope * rng.uniform(0.4, 1.0))[: stop - position]
        position = stop + int(rng.uniform(0.0, 0.12) * sample_rate)
    return out


def _plucked(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """24 Karplus-Strong notes (MIDI 40–76), 1–3 s each, at random onsets."""
    out = np.zeros(n_samples)
    for onset in np.sort(rng.uniform(0, n_samples - 0.3 * sample_rate, 24)).astype(int):
        delay = round(sample_rate / (440 * 2 ** ((rng.integers(40, 77) - 69) / 12)))
        length = min(n_samples - onset, int(rng.uniform(1.0, 3.0) * sample_rate))
        excitation = np.zeros(length)
        excitation[:delay] = rng.uniform(-1, 1, min(delay, length))
        loop = np.zeros(delay + 2)
        loop[0], loop[delay], loop[delay + 1] = 1.0, -0.498, -0.498  # the two-tap average, losing 0.4 % a pass
        out[onset : onset + length] += scipy.signal.lfilter([1.0], loop, excitation) * rng.uniform(0.3, 1.0)
    return out


def _piano_like(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """A chord of 1–3 notes (MIDI 36–89) every 0.6 s: up to 30 stiff-string partials
    ``k·f0·√(1 + B k²)``, amplitude ``k^-0.8``, higher partials and higher notes decaying faster."""
    out = np.zeros(n_samples)
    t_s = np.arange(n_samples) / sample_rate
    for onset in range(0, n_samples - sample_rate // 2, int(0.6 * sample_rate)):
        t = t_s[: n_samples - onset]
        for midi in rng.integers(36, 90, size=rng.integers(1, 4)):
            f0 = 440 * 2 ** ((midi - 69) / 12)
            stiffness = 1e-4 * 2 ** ((midi - 48) / 24)
            note = np.zeros(t.size)
            for k in range(1, 31):
                f_hz = k * f0 * math.sqrt(1 + stiffness * k * k)
                if f_hz > sample_rate / 2 - 500:
                    break
                decay_s = 3.0 / (1 + 0.3 * k) * math.sqrt(220 / f0)
                note += np.sin(2 * np.pi * f_hz * t + rng.uniform(0, 2 * np.pi)) * k**-0.8 * np.exp(-t / decay_s)
            out[onset:] += note * np.minimum(t / 0.002, 1.0) * rng.uniform(0.2, 0.6)
    return out


def _drum_kit(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """Sixteenths at 110 bpm: a kick (sine falling from 170 to 50 Hz) on beats 1 and 3 and at random, a snare
    (noise and a 190 Hz tone) on 2 and 4, closed hi-hats (differentiated noise) between."""
    out = np.zeros(n_samples)
    for i, onset in enumerate(range(0, n_samples - sample_rate // 2, round(sample_rate * 60 / 110 / 4))):
        if i % 8 == 0 or rng.random() < 0.08:
            t = np.arange(int(0.4 * sample_rate)) / sample_rate
            hit = np.sin(2 * np.pi * np.cumsum(50 + 120 * np.exp(-t / 0.03)) / sample_rate) * np.exp(-t / 0.12)
        elif i % 8 == 4:
            t = np.arange(int(0.3 * sample_rate)) / sample_rate
            hit = 0.7 * rng.standard_normal(t.size) * np.exp(-t / 0.06) + 0.5 * np.sin(2 * np.pi * 190 * t) * np.exp(-t / 0.05)
        else:
            t = np.arange(int(0.08 * sample_rate)) / sample_rate
            hit = 0.3 * np.diff(rng.standard_normal(t.size + 1)) * np.exp(-t / 0.015) * rng.uniform(0.4, 1.0)
        stop = min(n_samples, onset + hit.size)
        out[onset:stop] += hit[: stop - onset]
    return out


def _sweeps(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """A linear sweep 100 Hz → 4 kHz over the whole signal, over an exponential one 200 Hz ↔ 6 kHz
    (up and down in 2.5 s each)."""
    t = np.arange(n_samples) / sample_rate
    duration_s = n_samples / sample_rate
    linear = 0.4 * np.sin(2 * np.pi * (100 * t + (4000 - 100) / (2 * duration_s) * t**2))
    position = np.mod(t, 2.5) / 2.5
    rising = np.floor(t / 2.5) % 2 == 0
    f_hz = 200 * 30 ** np.where(rising, position, 1 - position)
    return linear + 0.3 * np.sin(2 * np.pi * np.cumsum(f_hz) / sample_rate)


def _harmonic_glide(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    """Six harmonics (amplitude 1/k) of a fundamental gliding 150 → 600 → 150 Hz twice, with 6 Hz vibrato."""
    t = np.arange(n_samples) / sample_rate
    glide = 0.5 - 0.5 * np.cos(2 * np.pi * 2 * t / (n_samples / sample_rate))
    cycles = np.cumsum(150 * 4**glide * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))) / sample_rate
    return sum(np.sin(2 * np.pi * k * cycles) / k for k in range(1, 7))


def _fm_vibrato(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    params = FMParams(f0_hz=196.0, ratio=2.0, index=2.5, peak_db=-6.0, vibrato_rate_hz=5.5, vibrato_depth_cents=40.0)
    return render_fm(params, sample_rate=sample_rate, n_samples=n_samples)[0]


def _sum_of_sines(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    params = SineParams(f0_hz=[110.0, 220.0, 277.2, 329.6, 440.0, 1318.5], peak_db=[-12, -9, -15, -15, -12, -24])
    return render_sines(params, sample_rate=sample_rate, n_samples=n_samples).sum(axis=0)


def _noise_bursts(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
    return render_noise_bursts(n_examples=1, seed=rng, sample_rate=sample_rate, n_samples=n_samples,
                               bursts_per_example=25)[0]


def _recording(filename: str) -> Callable[[np.random.Generator, int, int], np.ndarray]:
    def build(rng: np.random.Generator, sample_rate: int, n_samples: int) -> np.ndarray:
        audio = read_audio(_pyo_sound(filename), sample_rate=sample_rate, channels=1)[0]
        return np.tile(audio, math.ceil(n_samples / audio.size))[:n_samples]

    return build


def _pyo_sound(filename: str) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):  # pyo announces its GUI toolkit on import
        import pyo
    for folder in ("lib/snds", "examples/snds"):
        path = Path(pyo.__file__).parent / folder / filename
        if path.exists():
            return path
    raise FileNotFoundError(f"pyo does not ship {filename}")


@dataclass(frozen=True)
class Signal:
    name: str
    kind: str  # the signal class
    build: Callable[[np.random.Generator, int, int], np.ndarray]  # (rng, sample_rate, n_samples) → audio


SIGNALS = (
    Signal("speech, low voice", "speech-like", lambda r, sr, n: _speech_like(r, sr, n, f0_hz=110, formant_scale=1.0)),
    Signal("speech, high voice", "speech-like", lambda r, sr, n: _speech_like(r, sr, n, f0_hz=210, formant_scale=1.17)),
    Signal("plucked strings", "plucked", _plucked),
    Signal("piano chords", "piano-like", _piano_like),
    Signal("drum kit", "drums & noise", _drum_kit),
    Signal("noise bursts", "drums & noise", _noise_bursts),
    Signal("sweeps", "chirps", _sweeps),
    Signal("harmonic glide", "chirps", _harmonic_glide),
    Signal("FM + vibrato", "tonal synth", _fm_vibrato),
    Signal("sum of sines", "tonal synth", _sum_of_sines),
    Signal("flute", "recordings", _recording("flute.aif")),
    Signal("drum loop", "recordings", _recording("drumloop.wav")),
    Signal("voice", "recordings", _recording("ounkmaster.aif")),
    Signal("music", "recordings", _recording("baseballmajeur_m.aif")),
    Signal("accordion", "recordings", _recording("accord.aif")),
)


def make_signals(config: SpectralConfig, *, names: list[str] | None = None) -> dict[str, tuple[str, torch.Tensor]]:
    """name → (class, audio): each ``SECONDS`` long at the config's rate, peak-normalised to -1 dBFS, seeded
    by its position in ``SIGNALS`` (so the same with any ``names``)."""
    n_samples = int(SECONDS * config.sample_rate)
    unknown = sorted(set(names or ()) - {s.name for s in SIGNALS})
    if unknown:
        raise SystemExit(f"unknown signal(s) {unknown}; known: {[s.name for s in SIGNALS]}")
    out = {}
    for seed, signal in enumerate(SIGNALS):
        if names and signal.name not in names:
            continue
        audio = np.asarray(signal.build(np.random.default_rng(seed), config.sample_rate, n_samples), dtype=np.float64)
        audio *= 10 ** (-1 / 20) / np.abs(audio).max()
        out[signal.name] = (signal.kind, torch.from_numpy(audio.astype(np.float32)))
    return out


# ---- methods ------------------------------------------------------------------------------------------

Method = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def estimate_magnitude(mel: torch.Tensor, config: SpectralConfig) -> torch.Tensor:
    """The magnitude estimate our iterative methods start from (:func:`synth.phase.mel_to_audio`'s)."""
    amplitude = normalized_db_to_amplitude(mel, config=config)
    return mel_to_magnitude(amplitude, config=config, n_iter=ESTIMATE_STEPS, over_relaxed=True).contiguous()


def reconstruction_methods(config: SpectralConfig) -> dict[str, Method]:
    """name → function(magnitude (K, T), mel (n_mels, T) or None) → audio.

    From the mel, our methods run :func:`synth.phase.mel_to_audio` (timed from the mel, the magnitude
    estimate included); the other libraries take the estimate (``magnitude``, computed untimed) and hold
    it fixed.
    """

    def ours(method: str, n_iter: int | None = None) -> Method:
        def run(mag: torch.Tensor, mel: torch.Tensor | None) -> torch.Tensor:
            if mel is None:
                return magnitude_to_audio(mag, config=config, method=method, n_iter=n_iter)
            return mel_to_audio(mel, config=config, method=method, n_iter=n_iter)

        return run

    def torchaudio_gl(n_iter: int) -> Method:
        transform = torchaudio.transforms.GriffinLim(
            n_fft=config.n_fft, hop_length=config.hop_length, n_iter=n_iter, power=1.0, momentum=0.99
        )

        def run(mag: torch.Tensor, mel: torch.Tensor | None) -> torch.Tensor:
            torch.manual_seed(0)  # its random initial phase: the same in every run
            return transform(mag)

        return run

    methods = {"pghi": ours("pghi"), DEFAULT: ours(DEFAULT), "ours GL-32": ours("griffinlim", 32),
               "torchaudio GL-32": torchaudio_gl(32), REFERENCE: torchaudio_gl(100)}
    try:
        import librosa
    except ImportError:
        return methods
    methods["librosa GL-32"] = lambda mag, mel: torch.from_numpy(
        librosa.griffinlim(mag.numpy(), n_iter=32, hop_length=config.hop_length, n_fft=config.n_fft,
                           momentum=0.99, random_state=0)
    )
    return methods


def schedule_methods(config: SpectralConfig) -> dict[str, Method]:
    """The default's schedule (estimate, PGHI, fast Griffin-Lim) at ``CURVE_ITERATIONS``, fitting the
    magnitude to the mel in none, the last half or all of the iterations — from the mel only."""

    def schedule(n_iter: int, fit_iter: int) -> Method:
        def run(mag: torch.Tensor, mel: torch.Tensor | None) -> torch.Tensor:
            estimate = estimate_magnitude(mel, config)[None]
            amplitude = normalized_db_to_amplitude(mel, config=config)[None]
            phase = pghi_phase(estimate, config=config)
            return griffinlim(estimate, config=config, n_iter=n_iter, initial_phase=phase,
                              mel_amplitude=amplitude, fit_iter=fit_iter)[0]

        return run

    methods = {}
    for n_iter in CURVE_ITERATIONS:
        for fit_iter in dict.fromkeys((0, n_iter // 2, n_iter)):
            methods[f"{n_iter} it, fit {fit_iter}"] = schedule(n_iter, fit_iter)
    return methods


# ---- measuring ----------------------------------------------------------------------------------------


def _quality(audio: torch.Tensor, magnitude: torch.Tensor, mel: torch.Tensor, config: SpectralConfig) -> dict:
    n_frames = magnitude.shape[-1]
    audio = audio[..., : (n_frames - 1) * config.hop_length + 1]  # every method's output cut to the same span
    rebuilt_mag = audio_to_magnitude(audio, config=config)[..., :n_frames]
    rebuilt_mel = amplitude_to_normalized_db(magnitude_to_mel(rebuilt_mag, config=config), config=config)
    db_range = config.db_ceiling - config.db_floor
    return {
        "spectral_convergence": float(spectral_convergence(rebuilt_mag, magnitude)),
        "mel_l1_db": float(log_mel_l1(rebuilt_mel, mel)) * db_range,
    }


def run_offline(config: SpectralConfig, signals: dict[str, tuple[str, torch.Tensor]], methods: dict[str, Method], *,
                repeats: int, sources: tuple[str, ...] = ("magnitude", "mel")) -> list[dict]:
    """Every method on every signal, from each source; timed round-robin.

    The methods take turns within each repeat, so a burst of load from other processes on a shared
    machine slows all of them alike instead of one method's whole series. Wall-clock and process CPU
    time (all threads) are both recorded; medians over the repeats.
    """
    rows = []
    for signal_name, (kind, audio) in signals.items():
        magnitude = audio_to_magnitude(audio, config=config)
        mel = audio_to_mel(audio, config=config)
        inputs = {"magnitude": (magnitude, None), "mel": (estimate_magnitude(mel, config), mel)}
        cases = [(source, name, method) for source in sources for name, method in methods.items()]
        wall: list[list[float]] = [[] for _ in cases]
        cpu: list[list[float]] = [[] for _ in cases]
        outputs: list[torch.Tensor | None] = [None] * len(cases)
        for _ in range(repeats):
            for i, (source, _, method) in enumerate(cases):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                outputs[i] = method(*inputs[source])
                wall[i].append(time.perf_counter() - start_wall)
                cpu[i].append(time.process_time() - start_cpu)
        for i, (source, method_name, _) in enumerate(cases):
            seconds = statistics.median(wall[i])
            rows.append({
                "signal": signal_name,
                "class": kind,
                "source": source,
                "method": method_name,
                "seconds": seconds,
                "cpu_seconds": statistics.median(cpu[i]),
                "x_real_time": SECONDS / seconds,
                **_quality(outputs[i], magnitude, mel, config),
            })
            print(f"  {signal_name:18s} {source:9s} {method_name:18s} {seconds:7.3f}s", file=sys.stderr)
    return rows


def _mean_row(rows: list[dict]) -> dict[str, float]:
    return {
        "seconds": statistics.mean(r["seconds"] for r in rows),
        "x_real_time": SECONDS * len(rows) / sum(r["seconds"] for r in rows),
        "cpu_seconds": statistics.mean(r["cpu_seconds"] for r in rows),
        "spectral_convergence": statistics.mean(r["spectral_convergence"] for r in rows),
        "mel_l1_db": statistics.mean(r["mel_l1_db"] for r in rows),
    }


def summarise(rows: list[dict]) -> dict:
    """source → {"all": method → means, "classes": class → method → means}."""
    summary: dict = {}
    for source in dict.fromkeys(r["source"] for r in rows):
        selected = [r for r in rows if r["source"] == source]
        methods = list(dict.fromkeys(r["method"] for r in selected))
        kinds = list(dict.fromkeys(r["class"] for r in selected))
        summary[source] = {
            "all": {m: _mean_row([r for r in selected if r["method"] == m]) for m in methods},
            "classes": {k: {m: _mean_row([r for r in selected if r["method"] == m and r["class"] == k]) for m in methods}
                        for k in kinds},
        }
    return summary


def check_targets(summary: dict, rows: list[dict], *, method: str = DEFAULT) -> dict:
    """``method`` against ``REFERENCE`` from the mel: speed over all signals, both errors per class (and, for
    information, per signal)."""
    mel = summary["mel"]
    per_class = {
        kind: {
            "spectral_convergence": (table[method]["spectral_convergence"], table[REFERENCE]["spectral_convergence"]),
            "mel_l1_db": (table[method]["mel_l1_db"], table[REFERENCE]["mel_l1_db"]),
        }
        for kind, table in mel["classes"].items()
    }
    cells = {(r["signal"], r["method"]): r for r in rows if r["source"] == "mel"}
    signals = list(dict.fromkeys(r["signal"] for r in rows))
    signals_behind = [
        s for s in signals
        if any(cells[s, method][key] > cells[s, REFERENCE][key] for key in ("spectral_convergence", "mel_l1_db"))
    ]
    speedup = mel["all"][method]["x_real_time"] / mel["all"][REFERENCE]["x_real_time"]
    quality_pass = all(ours <= theirs for errors in per_class.values() for ours, theirs in errors.values())
    return {
        "method": method,
        "speedup_vs_reference": speedup,
        "cpu_speedup_vs_reference": mel["all"][REFERENCE]["cpu_seconds"] / mel["all"][method]["cpu_seconds"],
        "speed_pass": speedup >= TARGET_SPEEDUP,
        "per_class": per_class,
        "quality_pass": quality_pass,
        "signals_behind_reference": signals_behind,
    }


def run_streaming(config: SpectralConfig, audio: torch.Tensor, *, frames_per_push: int = 1) -> dict:
    """Per-hop cost of the streaming inverter on one thread — torch's and BLAS's both, as in the live path."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    mel = audio_to_mel(audio, config=config).numpy()
    inverter = StreamingInverter(config=config)
    wall, cpu = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, mel.shape[-1] - frames_per_push + 1, frames_per_push):
            block = mel[:, start : start + frames_per_push]
            t_wall, t_cpu = time.perf_counter(), time.thread_time()
            inverter.push(block)
            wall.append((time.perf_counter() - t_wall) * 1e3 / frames_per_push)
            cpu.append((time.thread_time() - t_cpu) * 1e3 / frames_per_push)
    torch.set_num_threads(previous)
    return {
        "frames_per_push": frames_per_push,
        "hop_ms": 1e3 * config.hop_length / config.sample_rate,
        "median_ms": float(np.median(wall)),
        "p99_ms": float(np.percentile(wall, 99)),
        "cpu_median_ms": float(np.median(cpu)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        # the inverter's own delay plus the frames a caller collects before each push
        "latency_ms": 1e3 * (inverter.latency_samples + (frames_per_push - 1) * config.hop_length) / config.sample_rate,
    }


def run_gpu(config: SpectralConfig, audio: torch.Tensor, *, batch: int = 64) -> dict | None:
    if not torch.cuda.is_available():
        return None
    mel = audio_to_mel(audio, config=config).cuda().expand(batch, -1, -1).contiguous()
    mel_to_audio(mel[:2], config=config)  # warm-up (cuFFT plans)
    torch.cuda.synchronize()
    start = time.perf_counter()
    mel_to_audio(mel, config=config)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"device": torch.cuda.get_device_name(0), "batch": batch, "seconds": seconds,
            "x_real_time": batch * SECONDS / seconds}


# ---- report -------------------------------------------------------------------------------------------


def _method_table(table: dict[str, dict[str, float]], *, indent: str = "") -> None:
    print(f"{indent}{'method':20s} {'× real time':>12s} {'CPU s / 10 s':>13s} {'spectral conv.':>15s} {'mel L1 (dB)':>12s}")
    for method, s in table.items():
        print(f"{indent}{method:20s} {s['x_real_time']:12.1f} {s['cpu_seconds']:13.3f} {s['spectral_convergence']:15.3f} "
              f"{s['mel_l1_db']:12.2f}")


def _print_table(result: dict) -> None:
    cfg = result["config"]
    print(f"\nPhase reconstruction — {SECONDS:.0f} s signals, {cfg['sample_rate']} Hz, n_fft {cfg['n_fft']}, "
          f"hop {cfg['hop_length']}, {cfg['n_mels']} mels; {result['threads']} threads, median of {result['repeats']}; "
          f"load average at start {result['load_average']:.2f}; default = {DEFAULT}: PGHI, then for noise-like sounds "
          f"up to {NOISE_ITER} relaxed reflections, then {DEFAULT_N_ITER[DEFAULT]} fast Griffin-Lim iterations, each "
          f"fitting the magnitude half-way to the mel")
    summary = result["summary"]
    if "magnitude" in summary:
        print("\nfrom the true STFT magnitude — mean over signals")
        _method_table(summary["magnitude"]["all"])
    print("\nfrom the log-mel — per signal class (mean over its signals), then over all signals")
    for kind, table in summary["mel"]["classes"].items():
        print(f"  {kind}")
        _method_table(table, indent="  ")
    print("  all signals")
    _method_table(summary["mel"]["all"], indent="  ")
    methods = list(summary["mel"]["all"])
    print("\nper signal, from the log-mel: spectral convergence / mel L1 dB")
    print(f"{'signal':19s}" + "".join(f"{m[:19]:>20s}" for m in methods))
    for signal in dict.fromkeys(r["signal"] for r in result["rows"]):
        cells = {r["method"]: r for r in result["rows"] if r["signal"] == signal and r["source"] == "mel"}
        print(f"{signal:19s}" + "".join(
            f"{cells[m]['spectral_convergence']:>12.3f} /{cells[m]['mel_l1_db']:>6.2f}" for m in methods))
    if result["curve"]:
        curve = result["curve"]
        print(f"\nspeed–error curve of the default's schedule, from the log-mel (speed ÷ {REFERENCE}'s in the same run):")
        kinds = list(curve["summary"]["mel"]["classes"])
        print(f"{'schedule':18s} {'× GL-100':>9s}  {'mean SC':>8s} {'mel L1':>7s}  classes within GL-100 (SC, mel L1)")
        for method, s in curve["summary"]["mel"]["all"].items():
            if method == REFERENCE:
                continue
            ok = curve["targets"][method]["per_class"]
            sc_ok = sum(v["spectral_convergence"][0] <= v["spectral_convergence"][1] for v in ok.values())
            l1_ok = sum(v["mel_l1_db"][0] <= v["mel_l1_db"][1] for v in ok.values())
            print(f"{method:18s} {curve['targets'][method]['speedup_vs_reference']:9.1f}  {s['spectral_convergence']:8.3f} "
                  f"{s['mel_l1_db']:7.2f}  {sc_ok}/{len(kinds)}, {l1_ok}/{len(kinds)}")
    print()
    for s in result["streaming"]:
        print(f"streaming inverter (1 thread, {s['frames_per_push']} frame(s) per push): per hop median {s['median_ms']:.3f} ms, "
              f"p99 {s['p99_ms']:.3f} ms (CPU time {s['cpu_median_ms']:.3f} / {s['cpu_p99_ms']:.3f} ms); hop is "
              f"{s['hop_ms']:.1f} ms; latency {s['latency_ms']:.1f} ms")
    if result["gpu"]:
        g = result["gpu"]
        print(f"GPU ({g['device']}): batch {g['batch']} × {SECONDS:.0f} s in {g['seconds']:.3f} s = {g['x_real_time']:.0f}× real time")
    t = result["targets"]
    print(f"\ntargets — {DEFAULT} against {REFERENCE}, from the log-mel:")
    print(f"  speed {t['speedup_vs_reference']:.1f}× (CPU time {t['cpu_speedup_vs_reference']:.1f}×; need ≥ {TARGET_SPEEDUP:.0f}): "
          f"{'PASS' if t['speed_pass'] else 'FAIL'}")
    for kind, errors in t["per_class"].items():
        (sc, sc_ref), (l1, l1_ref) = errors["spectral_convergence"], errors["mel_l1_db"]
        print(f"  {kind:14s} spectral convergence {sc:.3f} vs {sc_ref:.3f}, mel L1 {l1:.2f} vs {l1_ref:.2f} dB: "
              f"{'PASS' if sc <= sc_ref and l1 <= l1_ref else 'FAIL'}")
    print(f"  every class: {'PASS' if t['quality_pass'] else 'FAIL'}; signals where either error is above "
          f"{REFERENCE}'s: {', '.join(t['signals_behind_reference']) or 'none'}")
    print("  streaming median ≤ 0.5 ms and p99 ≤ 1 ms, by frames per push: "
          + ", ".join(f"{n}: {'PASS' if ok else 'FAIL'}" for n, ok in t["streaming_pass"].items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-mels", type=int, default=SpectralConfig().n_mels)
    parser.add_argument("--preset", help="use this preset's spectral config (its audio VAE's) instead of the default")
    parser.add_argument("--signals", nargs="*", help="only these signals (names as in the table)")
    parser.add_argument("--curve", action="store_true",
                        help="also run the default's schedule at other iteration counts (the speed–error curve)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = SpectralConfig(n_mels=args.n_mels)
    if args.preset:
        from bridge.sonify.bundle import load_bundle

        config = load_bundle(preset=args.preset).spectral
    load_average = os.getloadavg()[0]
    signals = make_signals(config, names=args.signals)
    rows = run_offline(config, signals, reconstruction_methods(config), repeats=args.repeats)
    summary = summarise(rows)
    curve = None
    if args.curve:
        methods = {REFERENCE: reconstruction_methods(config)[REFERENCE], **schedule_methods(config)}
        curve_rows = run_offline(config, signals, methods, repeats=args.repeats, sources=("mel",))
        curve_summary = summarise(curve_rows)
        curve = {"rows": curve_rows, "summary": curve_summary,
                 "targets": {m: check_targets(curve_summary, curve_rows, method=m) for m in methods if m != REFERENCE}}
    first_audio = next(iter(signals.values()))[1]
    streaming = [run_streaming(config, first_audio, frames_per_push=n) for n in (1, 2, 4)]
    targets = check_targets(summary, rows)
    targets["streaming_pass"] = {str(s["frames_per_push"]): s["median_ms"] <= 0.5 and s["p99_ms"] <= 1.0 for s in streaming}
    result = {
        "config": config.to_dict(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average": load_average,
        "rows": rows,
        "summary": summary,
        "curve": curve,
        "streaming": streaming,
        "gpu": run_gpu(config, first_audio),
        "targets": targets,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
