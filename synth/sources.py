"""Seeded, batch-vectorised generators of the synthetic sounds the audio models train and are benchmarked on.

Three families of sounds:

- **sine tones** varying in pitch and loudness (the audio side of Laczkó et al.'s squares ↔ sines task):
  :class:`SineParams`, :func:`sample_sine_params`, :func:`render_sines`;
- **FM tones** (two-operator phase modulation, Chowning/DX7 style) with an optional linear ADSR envelope
  and optional vibrato: :class:`FMParams`, :func:`sample_fm_params`, :func:`render_fm`;
- **noise bursts** with fast attacks and exponential decays, the noisy counterpart in benchmarks:
  :func:`render_noise_bursts`.

A parameter set holds one float64 array per parameter, one value per example, so a batch is sampled once
(``sample_*_params``) and rendered once (``render_*``); datasets keep the parameters as labels. Rendering is
numpy over the whole batch, in chunks of rows so memory stays bounded for any batch size.

Phase is the running sum of the instantaneous frequency, so vibrato and any other pitch change stay
phase-continuous, and every tone starts at phase 0.

Example
-------
>>> params = sample_sine_params(n_examples=4, seed=0)
>>> audio = render_sines(params, sample_rate=22050, n_samples=22050)
>>> audio.shape, audio.dtype
((4, 22050), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Self

import numpy as np

from models.errors import ParameterError

__all__ = [
    "midi_to_hz",
    "hz_to_midi",
    "db_to_amplitude",
    "amplitude_to_db",
    "SineParams",
    "FMParams",
    "sample_sine_params",
    "sample_fm_params",
    "render_sines",
    "render_fm",
    "render_noise_bursts",
]

# Rows are rendered in chunks of about this many samples: a few float64 temporaries of this size
# (16 MiB each) stay in cache-friendly, bounded memory whatever the batch size.
_CHUNK_SAMPLES = 1 << 21

# A 1 ms linear onset on noise bursts: an instant jump would be a click wider than the burst itself.
_BURST_ATTACK_S = 0.001


def midi_to_hz(midi: float | np.ndarray, /) -> float | np.ndarray:
    """Convert MIDI note numbers (fractional allowed) to frequency in Hz, A4 = 69 = 440 Hz.

    Example
    -------
    >>> float(midi_to_hz(69.0)), float(midi_to_hz(81.0))
    (440.0, 880.0)
    """
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(f_hz: float | np.ndarray, /) -> float | np.ndarray:
    """Convert frequency in Hz (> 0) to fractional MIDI note numbers; the inverse of :func:`midi_to_hz`.

    Example
    -------
    >>> float(hz_to_midi(440.0))
    69.0
    """
    return 69.0 + 12.0 * np.log2(np.asarray(f_hz, dtype=np.float64) / 440.0)


def db_to_amplitude(db: float | np.ndarray, /) -> float | np.ndarray:
    """Convert decibels to linear amplitude: 0 dB → 1.0, −20 dB → 0.1.

    Example
    -------
    >>> float(db_to_amplitude(-20.0))
    0.1
    """
    return 10.0 ** (np.asarray(db, dtype=np.float64) / 20.0)


def amplitude_to_db(amplitude: float | np.ndarray, /) -> float | np.ndarray:
    """Convert linear amplitude (≥ 0) to decibels; 0 maps to −inf.

    Example
    -------
    >>> float(amplitude_to_db(0.5))  # doctest: +ELLIPSIS
    -6.02...
    """
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.asarray(amplitude, dtype=np.float64))


def _broadcast_fields(params: object) -> None:
    """Turn every field of a params dataclass into a finite float64 1-D array of one common length."""
    names = [field.name for field in dataclasses.fields(params)]
    arrays = []
    for name in names:
        try:
            array = np.asarray(getattr(params, name), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ParameterError(f"{name}={getattr(params, name)!r} is not numeric; expected a number or a 1-D array of numbers") from error
        if array.ndim > 1:
            raise ParameterError(f"{name} has shape {array.shape}; expected a number or a 1-D array (one value per example)")
        if not np.all(np.isfinite(array)):
            raise ParameterError(f"{name}={array!r} contains NaN or inf; expected finite values")
        arrays.append(np.atleast_1d(array))
    try:
        arrays = np.broadcast_arrays(*arrays)
    except ValueError as error:
        lengths = ", ".join(f"{name}: {len(array)}" for name, array in zip(names, arrays))
        raise ParameterError(f"parameter arrays have different lengths ({lengths}); give each one value per example or a single value") from error
    if len(arrays[0]) == 0:
        raise ParameterError("parameter arrays are empty; expected at least one example")
    for name, array in zip(names, arrays):
        # Copy: broadcast views are read-only and may share memory with the caller's arrays.
        setattr(params, name, array.copy())


def _check_range(name: str, values: np.ndarray, *, low: float, high: float = math.inf, low_inclusive: bool = True) -> None:
    """Raise ParameterError quoting the first value of ``name`` outside [low, high] (or (low, high])."""
    too_low = values < low if low_inclusive else values <= low
    bad = too_low | (values > high)
    if np.any(bad):
        accepted = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high < math.inf else "")
        raise ParameterError(f"{name}={float(values[bad][0])!r} is out of range; expected values {accepted}")


class _Batch:
    """Length and row selection shared by the params dataclasses."""

    def __len__(self) -> int:
        return len(getattr(self, dataclasses.fields(self)[0].name))

    def __getitem__(self, index: int | slice | np.ndarray) -> Self:
        """Select examples; an integer gives a batch of one, so ``params[0]`` renders like ``params[:1]``."""
        return type(self)(**{field.name: np.atleast_1d(getattr(self, field.name)[index]) for field in dataclasses.fields(self)})


@dataclass(kw_only=True, eq=False)
class SineParams(_Batch):
    """Parameters of a batch of constant sine tones.

    Each field is a float64 array of shape (n_examples,); scalars given to the constructor are broadcast.

    Attributes
    ----------
    f0_hz : np.ndarray
        Frequency in Hz, > 0 (and below Nyquist when rendered).
    peak_db : np.ndarray
        Peak level in dBFS (0 dB = full scale), finite.

    Example
    -------
    >>> params = SineParams(f0_hz=[220.0, 440.0], peak_db=-6.0)
    >>> len(params), params.peak_db
    (2, array([-6., -6.]))
    """

    f0_hz: np.ndarray
    peak_db: np.ndarray

    def __post_init__(self) -> None:
        _broadcast_fields(self)
        _check_range("f0_hz", self.f0_hz, low=0.0, low_inclusive=False)


@dataclass(kw_only=True, eq=False)
class FMParams(_Batch):
    """Parameters of a batch of two-operator FM (phase modulation) tones.

    The tone is ``A · env(t) · sin(φ(t) + index · sin(ratio · φ(t)))`` where ``φ`` is the carrier phase
    (the running sum of ``2π · f0_hz · vibrato(t) / sample_rate``) and ``A = db_to_amplitude(peak_db)``.
    The modulator follows the carrier's vibrato, so the timbre stays constant while the pitch moves.
    Sidebands sit at ``f0_hz ± k · ratio · f0_hz`` with amplitudes ``|J_k(index)|``.

    Each field is a float64 array of shape (n_examples,); scalars are broadcast. The defaults switch the
    envelope and vibrato off: a flat tone at full level for the whole clip.

    Attributes
    ----------
    f0_hz : np.ndarray
        Carrier frequency in Hz, > 0 (and below Nyquist when rendered).
    ratio : np.ndarray
        Modulator frequency / carrier frequency, > 0.
    index : np.ndarray
        Modulation index in radians of phase deviation, ≥ 0; 0 gives a pure sine.
    peak_db : np.ndarray
        Peak level in dBFS, reached when the envelope is at 1.
    attack_s, decay_s, release_s : np.ndarray
        Linear envelope segment lengths in seconds, ≥ 0. The attack rises 0 → 1 from the start, the decay
        falls to ``sustain_level``, and the release ramps to 0 over the last ``release_s`` of the clip.
    sustain_level : np.ndarray
        Envelope level during sustain, in [0, 1].
    vibrato_rate_hz : np.ndarray
        Vibrato frequency in Hz, ≥ 0.
    vibrato_depth_cents : np.ndarray
        Vibrato peak pitch deviation in cents, ≥ 0 (100 cents = 1 semitone); 0 switches vibrato off.

    Example
    -------
    >>> params = FMParams(f0_hz=220.0, ratio=2.0, index=3.0, vibrato_rate_hz=5.0, vibrato_depth_cents=30.0)
    >>> render_fm(params, sample_rate=22050, n_samples=22050).shape
    (1, 22050)
    """

    f0_hz: np.ndarray
    ratio: np.ndarray
    index: np.ndarray
    peak_db: np.ndarray = 0.0
    attack_s: np.ndarray = 0.0
    decay_s: np.ndarray = 0.0
    sustain_level: np.ndarray = 1.0
    release_s: np.ndarray = 0.0
    vibrato_rate_hz: np.ndarray = 0.0
    vibrato_depth_cents: np.ndarray = 0.0

    def __post_init__(self) -> None:
        _broadcast_fields(self)
        _check_range("f0_hz", self.f0_hz, low=0.0, low_inclusive=False)
        _check_range("ratio", self.ratio, low=0.0, low_inclusive=False)
        for name in ("index", "attack_s", "decay_s", "release_s", "vibrato_rate_hz", "vibrato_depth_cents"):
            _check_range(name, getattr(self, name), low=0.0)
        _check_range("sustain_level", self.sustain_level, low=0.0, high=1.0)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name}={value!r} is invalid; expected a positive integer")
    return int(value)


def _check_range_pair(name: str, value: tuple[float, float], *, low: float = -math.inf, high: float = math.inf) -> tuple[float, float]:
    try:
        start, stop = (float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"{name}={value!r} is invalid; expected a (low, high) pair of numbers") from error
    if not (math.isfinite(start) and math.isfinite(stop)) or start > stop or start < low or stop > high:
        raise ParameterError(f"{name}={value!r} is invalid; expected finite low <= high within [{low}, {high}]")
    return start, stop


def _uniform(rng: np.random.Generator, name: str, value: tuple[float, float], n: int, *, low: float = -math.inf, high: float = math.inf) -> np.ndarray:
    start, stop = _check_range_pair(name, value, low=low, high=high)
    # Always draw, even for an empty range, so switching one option on or off leaves the others' draws unchanged.
    return rng.uniform(start, stop, size=n)


def sample_sine_params(
    *,
    n_examples: int,
    seed: int | np.random.Generator,
    pitch_midi_range: tuple[float, float] = (38.0, 86.0),
    peak_db_range: tuple[float, float] = (-40.0, 0.0),
) -> SineParams:
    """Draw sine-tone parameters uniformly in MIDI pitch (perceptually even) and in dB.

    Parameters
    ----------
    n_examples : int
        Number of tones, > 0.
    seed : int or np.random.Generator
        Same seed → same parameters. A Generator is used (and advanced) as is.
    pitch_midi_range : (float, float)
        Inclusive-exclusive MIDI pitch range; the default 38–86 is D2 (73 Hz) to D6 (1175 Hz).
    peak_db_range : (float, float)
        Peak level range in dBFS.

    Returns
    -------
    SineParams
        Arrays of shape (n_examples,).

    Example
    -------
    >>> params = sample_sine_params(n_examples=3, seed=1, pitch_midi_range=(60.0, 72.0))
    >>> bool(np.all((params.f0_hz >= 261.6) & (params.f0_hz < 523.3)))
    True
    """
    n = _check_positive_int("n_examples", n_examples)
    rng = np.random.default_rng(seed)
    midi = _uniform(rng, "pitch_midi_range", pitch_midi_range, n)
    peak_db = _uniform(rng, "peak_db_range", peak_db_range, n)
    return SineParams(f0_hz=midi_to_hz(midi), peak_db=peak_db)


def sample_fm_params(
    *,
    n_examples: int,
    seed: int | np.random.Generator,
    pitch_midi_range: tuple[float, float] = (38.0, 86.0),
    ratio_range: tuple[float, float] = (0.5, 4.0),
    index_range: tuple[float, float] = (0.0, 5.0),
    peak_db_range: tuple[float, float] = (-40.0, 0.0),
    attack_s_range: tuple[float, float] = (0.0, 0.0),
    decay_s_range: tuple[float, float] = (0.0, 0.0),
    sustain_level_range: tuple[float, float] = (1.0, 1.0),
    release_s_range: tuple[float, float] = (0.0, 0.0),
    vibrato_rate_hz_range: tuple[float, float] = (4.0, 7.0),
    vibrato_depth_cents_range: tuple[float, float] = (0.0, 0.0),
) -> FMParams:
    """Draw FM-tone parameters, each uniformly within its range (pitch in MIDI, loudness in dB).

    The defaults give flat tones without vibrato; widen ``attack_s_range`` etc. for envelopes and
    ``vibrato_depth_cents_range`` (e.g. (10, 50)) for vibrato. All parameters are drawn whatever the ranges,
    so the same seed gives the same pitches with or without vibrato.

    Parameters
    ----------
    n_examples : int
        Number of tones, > 0.
    seed : int or np.random.Generator
        Same seed → same parameters.
    pitch_midi_range, ratio_range, index_range, peak_db_range, attack_s_range, decay_s_range,
    sustain_level_range, release_s_range, vibrato_rate_hz_range, vibrato_depth_cents_range : (float, float)
        (low, high) for the matching :class:`FMParams` field; ``pitch_midi_range`` is in MIDI notes and is
        converted to ``f0_hz``.

    Returns
    -------
    FMParams
        Arrays of shape (n_examples,).

    Example
    -------
    >>> params = sample_fm_params(n_examples=8, seed=0, vibrato_depth_cents_range=(10.0, 50.0))
    >>> len(params), bool(np.all(params.vibrato_depth_cents >= 10.0))
    (8, True)
    """
    n = _check_positive_int("n_examples", n_examples)
    rng = np.random.default_rng(seed)
    return FMParams(
        f0_hz=midi_to_hz(_uniform(rng, "pitch_midi_range", pitch_midi_range, n)),
        ratio=_uniform(rng, "ratio_range", ratio_range, n, low=0.0),
        index=_uniform(rng, "index_range", index_range, n, low=0.0),
        peak_db=_uniform(rng, "peak_db_range", peak_db_range, n),
        attack_s=_uniform(rng, "attack_s_range", attack_s_range, n, low=0.0),
        decay_s=_uniform(rng, "decay_s_range", decay_s_range, n, low=0.0),
        sustain_level=_uniform(rng, "sustain_level_range", sustain_level_range, n, low=0.0, high=1.0),
        release_s=_uniform(rng, "release_s_range", release_s_range, n, low=0.0),
        vibrato_rate_hz=_uniform(rng, "vibrato_rate_hz_range", vibrato_rate_hz_range, n, low=0.0),
        vibrato_depth_cents=_uniform(rng, "vibrato_depth_cents_range", vibrato_depth_cents_range, n, low=0.0),
    )


def _check_render_args(*, f0_hz: np.ndarray, sample_rate: int, n_samples: int) -> tuple[int, int]:
    sample_rate = _check_positive_int("sample_rate", sample_rate)
    n_samples = _check_positive_int("n_samples", n_samples)
    nyquist_hz = sample_rate / 2
    if np.any(f0_hz >= nyquist_hz):
        raise ParameterError(f"f0_hz={float(f0_hz[f0_hz >= nyquist_hz][0])!r} is at or above Nyquist; expected f0_hz < sample_rate / 2 = {nyquist_hz}")
    return sample_rate, n_samples


def _chunks(n_rows: int, n_samples: int) -> list[slice]:
    """Row slices of about ``_CHUNK_SAMPLES`` samples each (at least one row)."""
    step = max(1, _CHUNK_SAMPLES // n_samples)
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _phase_cycles(f_hz: np.ndarray, *, sample_rate: int, n_samples: int) -> np.ndarray:
    """Running sum of instantaneous frequency, in cycles (float64), starting at 0 on the first sample.

    ``f_hz`` has shape (rows, n_samples) or (rows, 1) for constant frequencies; the result is (rows, n_samples).
    """
    f_hz = np.broadcast_to(f_hz, (f_hz.shape[0], n_samples))
    cycles = np.empty(f_hz.shape, dtype=np.float64)
    cycles[:, 0] = 0.0
    # Sample n accumulates frequencies 0 .. n-1, so a change at sample n first bends the phase at n + 1.
    np.cumsum(f_hz[:, :-1], axis=1, out=cycles[:, 1:])
    cycles *= 1.0 / sample_rate
    return cycles


def _wrapped_radians(cycles: np.ndarray) -> np.ndarray:
    """``2π · cycles`` with whole cycles dropped, as float32 in [-π, π], same shape.

    float64 ``np.sin`` is about 8× slower than float32 here. Dropping whole cycles in float64 first leaves a
    fraction that float32 holds to ~3e-8 cycles (−150 dB of phase noise), however long the tone.
    """
    whole = np.rint(cycles)
    radians = np.subtract(cycles, whole, out=np.empty(cycles.shape, dtype=np.float32), casting="same_kind")
    radians *= np.float32(2.0 * np.pi)
    return radians


def _sin_of_cycles(cycles: np.ndarray) -> np.ndarray:
    """``sin(2π · cycles)`` as float32, same shape."""
    radians = _wrapped_radians(cycles)
    return np.sin(radians, out=radians)


def render_sines(params: SineParams, *, sample_rate: int, n_samples: int) -> np.ndarray:
    """Render constant sine tones, ``db_to_amplitude(peak_db) · sin(2π f0_hz t)``.

    Parameters
    ----------
    params : SineParams
        n_examples tones.
    sample_rate : int
        Samples per second, > 0; every ``f0_hz`` must be below ``sample_rate / 2``.
    n_samples : int
        Length of each tone in samples, > 0.

    Returns
    -------
    np.ndarray
        float32, shape (n_examples, n_samples), peak ≤ ``db_to_amplitude(peak_db)``.

    Example
    -------
    >>> audio = render_sines(SineParams(f0_hz=440.0, peak_db=-6.0), sample_rate=16000, n_samples=1600)
    >>> audio.shape, round(float(np.abs(audio).max()), 2)
    ((1, 1600), 0.5)
    """
    if not isinstance(params, SineParams):
        raise ParameterError(f"params is a {type(params).__name__}; expected SineParams")
    sample_rate, n_samples = _check_render_args(f0_hz=params.f0_hz, sample_rate=sample_rate, n_samples=n_samples)
    audio = np.empty((len(params), n_samples), dtype=np.float32)
    amplitude = db_to_amplitude(params.peak_db)[:, None].astype(np.float32)
    for rows in _chunks(len(params), n_samples):
        cycles = _phase_cycles(params.f0_hz[rows, None], sample_rate=sample_rate, n_samples=n_samples)
        tone = _sin_of_cycles(cycles)
        tone *= amplitude[rows]
        audio[rows] = tone
    return audio


def _adsr(params: FMParams, rows: slice, t_s: np.ndarray, *, duration_s: float) -> np.ndarray | None:
    """Linear ADSR envelope, float32 of shape (rows, n_samples), or None when every row in ``rows`` is flat.

    ``t_s`` is the float32 time of each sample in seconds, shape (n_samples,).
    """
    attack, decay, sustain, release = (
        getattr(params, name)[rows, None].astype(np.float32) for name in ("attack_s", "decay_s", "sustain_level", "release_s")
    )
    # With sustain at 1 the decay has nowhere to fall, so only these three make an envelope.
    if not (np.any(attack > 0) or np.any(release > 0) or np.any(sustain < 1)):
        return None
    # A zero-length segment's branch is never taken by np.where below; the 1.0 only keeps 0/0 out of it.
    attack_safe = np.where(attack > 0, attack, np.float32(1.0))
    decay_safe = np.where(decay > 0, decay, np.float32(1.0))
    release_safe = np.where(release > 0, release, np.float32(1.0))
    level = np.where(
        t_s < attack,
        t_s / attack_safe,
        np.where(t_s < attack + decay, 1.0 - (1.0 - sustain) * ((t_s - attack) / decay_safe), sustain),
    )
    level *= np.where(release > 0, np.clip((np.float32(duration_s) - t_s) / release_safe, 0.0, 1.0), np.float32(1.0))
    return level


def render_fm(params: FMParams, *, sample_rate: int, n_samples: int) -> np.ndarray:
    """Render two-operator FM tones with optional ADSR envelope and vibrato (see :class:`FMParams`).

    Parameters
    ----------
    params : FMParams
        n_examples tones.
    sample_rate : int
        Samples per second, > 0; every ``f0_hz`` must be below ``sample_rate / 2``. Sidebands above
        Nyquist alias, as in any digital FM synth: keep ``f0_hz · (1 + ratio · (index + 1))`` below it for
        clean tones.
    n_samples : int
        Length of each tone in samples, > 0. The release ends at the last sample.

    Returns
    -------
    np.ndarray
        float32, shape (n_examples, n_samples), peak ≤ ``db_to_amplitude(peak_db)``.

    Example
    -------
    >>> params = FMParams(f0_hz=440.0, ratio=1.0, index=0.0, peak_db=-6.0)
    >>> sine = render_sines(SineParams(f0_hz=440.0, peak_db=-6.0), sample_rate=16000, n_samples=1600)
    >>> bool(np.allclose(render_fm(params, sample_rate=16000, n_samples=1600), sine, atol=1e-6))
    True
    """
    if not isinstance(params, FMParams):
        raise ParameterError(f"params is a {type(params).__name__}; expected FMParams")
    sample_rate, n_samples = _check_render_args(f0_hz=params.f0_hz, sample_rate=sample_rate, n_samples=n_samples)
    audio = np.empty((len(params), n_samples), dtype=np.float32)
    amplitude = db_to_amplitude(params.peak_db)[:, None].astype(np.float32)
    t_s = np.arange(n_samples, dtype=np.float64) / sample_rate
    t32_s = t_s.astype(np.float32)
    duration_s = n_samples / sample_rate
    for rows in _chunks(len(params), n_samples):
        f_hz = params.f0_hz[rows, None]
        depth_cents = params.vibrato_depth_cents[rows, None]
        if np.any(depth_cents > 0):
            vibrato_octaves = _sin_of_cycles(params.vibrato_rate_hz[rows, None] * t_s)
            vibrato_octaves *= (depth_cents / 1200.0).astype(np.float32)
            f_hz = f_hz * np.exp2(vibrato_octaves)
        carrier_cycles = _phase_cycles(f_hz, sample_rate=sample_rate, n_samples=n_samples)
        # The modulator's frequency is ratio × the carrier's at every sample, so its phase is ratio × the
        # carrier's running sum: one cumsum serves both and they never drift apart.
        modulation = _sin_of_cycles(carrier_cycles * params.ratio[rows, None])
        modulation *= params.index[rows, None].astype(np.float32)
        phase = _wrapped_radians(carrier_cycles)
        phase += modulation
        tone = np.sin(phase, out=phase)
        tone *= amplitude[rows]
        envelope = _adsr(params, rows, t32_s, duration_s=duration_s)
        if envelope is not None:
            tone *= envelope
        audio[rows] = tone
    return audio


def render_noise_bursts(
    *,
    n_examples: int,
    seed: int | np.random.Generator,
    sample_rate: int,
    n_samples: int,
    bursts_per_example: int = 4,
    decay_s_range: tuple[float, float] = (0.02, 0.2),
    peak_db_range: tuple[float, float] = (-20.0, 0.0),
) -> np.ndarray:
    """Render clips of white-noise bursts: each burst rises over 1 ms and decays exponentially.

    Onsets are uniform over the clip; each burst's decay time constant and peak level are drawn uniformly
    from their ranges. Overlapping bursts take the louder envelope (not the sum), so the clip's peak never
    exceeds the loudest burst's ``peak_db``.

    Parameters
    ----------
    n_examples : int
        Number of clips, > 0.
    seed : int or np.random.Generator
        Same seed → same audio.
    sample_rate : int
        Samples per second, > 0.
    n_samples : int
        Clip length in samples, > 0.
    bursts_per_example : int
        Bursts in each clip, > 0.
    decay_s_range : (float, float)
        Exponential decay time constant in seconds (level falls to 1/e), > 0.
    peak_db_range : (float, float)
        Burst peak level in dBFS.

    Returns
    -------
    np.ndarray
        float32, shape (n_examples, n_samples), values in [-1, 1] when ``peak_db_range`` ≤ 0 dB.

    Example
    -------
    >>> audio = render_noise_bursts(n_examples=2, seed=0, sample_rate=16000, n_samples=16000)
    >>> audio.shape, bool(np.abs(audio).max() <= 1.0)
    ((2, 16000), True)
    """
    n = _check_positive_int("n_examples", n_examples)
    sample_rate = _check_positive_int("sample_rate", sample_rate)
    n_samples = _check_positive_int("n_samples", n_samples)
    n_bursts = _check_positive_int("bursts_per_example", bursts_per_example)
    if _check_range_pair("decay_s_range", decay_s_range)[0] <= 0:
        raise ParameterError(f"decay_s_range={decay_s_range!r} is invalid; expected decay times > 0 s")
    rng = np.random.default_rng(seed)
    duration_s = n_samples / sample_rate
    onset_s = rng.uniform(0.0, duration_s, size=(n, n_bursts))
    decay_s = _uniform(rng, "decay_s_range", decay_s_range, n * n_bursts).reshape(n, n_bursts)
    amplitude = db_to_amplitude(_uniform(rng, "peak_db_range", peak_db_range, n * n_bursts)).reshape(n, n_bursts)
    t_s = (np.arange(n_samples) / sample_rate).astype(np.float32)
    audio = np.empty((n, n_samples), dtype=np.float32)
    # float32 throughout: the exp per burst and sample dominates, and float64 exp is 3× slower here.
    onset_s, decay_s, amplitude = (x.astype(np.float32) for x in (onset_s, decay_s, amplitude))
    for rows in _chunks(n, n_samples):
        envelope = np.zeros((rows.stop - rows.start, n_samples), dtype=np.float32)
        for burst in range(n_bursts):
            since_onset_s = t_s - onset_s[rows, burst, None]
            rise = np.clip(since_onset_s / np.float32(_BURST_ATTACK_S), 0.0, 1.0)
            fall = np.exp(np.maximum(since_onset_s - np.float32(_BURST_ATTACK_S), 0.0) / -decay_s[rows, burst, None])
            np.maximum(envelope, rise * fall * amplitude[rows, burst, None], out=envelope)
        noise = rng.random(size=envelope.shape, dtype=np.float32)
        noise *= 2.0
        noise -= 1.0
        envelope *= noise
        audio[rows] = envelope
    return audio
