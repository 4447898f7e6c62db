"""Effect chains (pedalboard plugins) built from a short spec string, usable whole-signal or block by block.

Spec grammar
------------
::

    chain   := ""  |  effect ( ";" effect )*
    effect  := NAME [ ":" param ( "," param )* ]
    param   := KEY "=" VALUE
    VALUE   := a finite number ("0.7", "-6", "1e-3")  |  true | false | on | off   (= 1 | 0)

Effects run left to right. Whitespace around any token is ignored; names and keys are case-insensitive.
An empty (or all-whitespace) spec is the identity chain. Parameters left out keep their defaults
(pedalboard's, except ``compressor``, whose pedalboard default ratio of 1 would do nothing).

Examples::

    "reverb:room_size=0.7; compressor; limiter"
    "delay:delay_seconds=0.25,mix=0.3; gain:gain_db=-6"
    "highpass:cutoff_frequency_hz=80; reverb:room_size=0.9,freeze_mode=on"

Effects and their parameters (pedalboard's names, units in the suffix) are listed in
:data:`EFFECT_PARAMETERS`. Plugins that delay their output (pitch shift, resampling, lossy codecs) are left
out on purpose: streamed through :class:`EffectChain` they would not match whole-signal processing.

``limiter`` is :class:`synth.limiter.TruePeakLimiter` (``ceiling_db`` −1.5 dBTP, ``release_ms``,
``lookahead_ms``), not pedalboard's, whose make-up gain and clipping put samples at full scale: its output's
true peak stays under the ceiling. It looks ahead, so a chain with it delays its output by
:meth:`EffectChain.latency_samples`; :meth:`EffectChain.flush` gives the end of a stream. ``imgsonic render``
removes the delay, so the sound stays aligned with its images.

Example
-------
>>> chain = EffectChain("gain:gain_db=-6.0206")
>>> block = np.ones((1, 4), dtype=np.float32)
>>> chain.process(block, sample_rate=22050).round(3)
array([[0.5, 0.5, 0.5, 0.5]], dtype=float32)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pedalboard

from models.errors import ParameterError
from synth.limiter import TruePeakLimiter

__all__ = ["EFFECT_PARAMETERS", "EffectChain", "build_effects"]

# name → (plugin class, settable parameters, defaults that differ from pedalboard's).
# LadderFilter's `mode` is an enum, not a number, so the grammar cannot set it; it stays a 12 dB low-pass.
_EFFECTS: Mapping[str, tuple[type, tuple[str, ...], Mapping[str, float]]] = MappingProxyType(
    {
        "bitcrush": (pedalboard.Bitcrush, ("bit_depth",), {}),
        "chorus": (pedalboard.Chorus, ("rate_hz", "depth", "centre_delay_ms", "feedback", "mix"), {}),
        "clipping": (pedalboard.Clipping, ("threshold_db",), {}),
        "compressor": (pedalboard.Compressor, ("threshold_db", "ratio", "attack_ms", "release_ms"), {"threshold_db": -20.0, "ratio": 4.0}),
        "delay": (pedalboard.Delay, ("delay_seconds", "feedback", "mix"), {}),
        "distortion": (pedalboard.Distortion, ("drive_db",), {}),
        "gain": (pedalboard.Gain, ("gain_db",), {}),
        "highpass": (pedalboard.HighpassFilter, ("cutoff_frequency_hz",), {}),
        "highshelf": (pedalboard.HighShelfFilter, ("cutoff_frequency_hz", "gain_db", "q"), {}),
        "invert": (pedalboard.Invert, (), {}),
        "ladder": (pedalboard.LadderFilter, ("cutoff_hz", "resonance", "drive"), {}),
        "limiter": (TruePeakLimiter, TruePeakLimiter.PARAMETERS, {}),
        "lowpass": (pedalboard.LowpassFilter, ("cutoff_frequency_hz",), {}),
        "lowshelf": (pedalboard.LowShelfFilter, ("cutoff_frequency_hz", "gain_db", "q"), {}),
        "noisegate": (pedalboard.NoiseGate, ("threshold_db", "ratio", "attack_ms", "release_ms"), {}),
        "peak": (pedalboard.PeakFilter, ("cutoff_frequency_hz", "gain_db", "q"), {}),
        "phaser": (pedalboard.Phaser, ("rate_hz", "depth", "centre_frequency_hz", "feedback", "mix"), {}),
        "reverb": (pedalboard.Reverb, ("room_size", "damping", "wet_level", "dry_level", "width", "freeze_mode"), {}),
    }
)

EFFECT_PARAMETERS: Mapping[str, tuple[str, ...]] = MappingProxyType({name: entry[1] for name, entry in _EFFECTS.items()})
"""Effect name → the parameter names its spec accepts, e.g. ``EFFECT_PARAMETERS["delay"]``."""

_BOOLEAN_WORDS = {"true": 1.0, "on": 1.0, "false": 0.0, "off": 0.0}

# pedalboard re-prepares (and so clears) a plugin whenever a block is longer than every block since the last
# reset, up to its buffer size: a 512-sample block followed by a 4096-sample one loses the delay line and the
# reverb tail. EffectChain prepares each new stream once at this size, and never feeds longer pieces.
_BUFFER_FRAMES = 8192


def _parse_value(*, effect: str, key: str, text: str) -> float:
    word = text.strip().lower()
    if word in _BOOLEAN_WORDS:
        return _BOOLEAN_WORDS[word]
    try:
        value = float(word)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ParameterError(f"{effect}: {key}={text.strip()!r} is not a number; expected a finite number or true/false/on/off")
    # Frequencies below zero are accepted by pedalboard's filters but are never meaningful.
    if key.endswith("_hz") and value <= 0:
        raise ParameterError(f"{effect}: {key}={value!r} is invalid; expected a frequency > 0 Hz")
    return value


def _build_effect(text: str) -> pedalboard.Plugin | TruePeakLimiter:
    name, _, arguments = text.partition(":")
    name = name.strip().lower()
    if name not in _EFFECTS:
        raise ParameterError(f"unknown effect {name!r} in {text.strip()!r}; accepted effects: {', '.join(_EFFECTS)}")
    plugin_class, accepted, defaults = _EFFECTS[name]
    values = dict(defaults)
    given: set[str] = set()
    for argument in arguments.split(",") if arguments.strip() else ():
        key, equals, value_text = argument.partition("=")
        key = key.strip().lower()
        if not equals or not key:
            raise ParameterError(f"{name}: parameter {argument.strip()!r} is not KEY=VALUE; expected e.g. {name}:{accepted[0] if accepted else 'key'}=0.5")
        if key not in accepted:
            listed = ", ".join(accepted) if accepted else "none"
            raise ParameterError(f"{name}: unknown parameter {key!r}; accepted parameters: {listed}")
        if key in given:
            raise ParameterError(f"{name}: parameter {key!r} is given twice; expected each parameter at most once")
        given.add(key)
        values[key] = _parse_value(effect=name, key=key, text=value_text)
    if plugin_class is TruePeakLimiter:
        return TruePeakLimiter(**values)  # it checks its own ranges
    plugin = plugin_class()
    for key, value in values.items():
        try:
            setattr(plugin, key, value)
        except ValueError as error:
            # pedalboard's own message states the accepted range, e.g. "must be between 0.0 and 1.0".
            raise ParameterError(f"{name}: {key}={value!r} is out of range: {error}") from error
    return plugin


def build_effects(spec: str) -> list[pedalboard.Plugin | TruePeakLimiter]:
    """Build the effects of a spec string (grammar in the module docstring), in order.

    Parameters
    ----------
    spec : str
        e.g. ``"delay:delay_seconds=0.25,mix=0.3; gain:gain_db=-6"``; ``""`` gives no effects.

    Returns
    -------
    list
        One pedalboard plugin (or :class:`~synth.limiter.TruePeakLimiter` for ``limiter``) per effect.

    Raises
    ------
    ParameterError
        Unknown effect or parameter (the message lists the accepted ones), malformed or out-of-range value,
        empty effect between semicolons.

    Example
    -------
    >>> [type(plugin).__name__ for plugin in build_effects("reverb:room_size=0.7; compressor; limiter")]
    ['Reverb', 'Compressor', 'TruePeakLimiter']
    """
    if not isinstance(spec, str):
        raise ParameterError(f"effect spec {spec!r} is a {type(spec).__name__}; expected a string such as 'reverb:room_size=0.7; limiter'")
    if not spec.strip():
        return []
    plugins = []
    for position, text in enumerate(spec.split(";"), start=1):
        if not text.strip():
            raise ParameterError(f"effect spec {spec!r} has an empty effect at position {position}; expected NAME[:KEY=VALUE,...] between semicolons")
        plugins.append(_build_effect(text))
    return plugins


class EffectChain:
    """A pedalboard effect chain that keeps its state between calls, so audio can be streamed block by block.

    Processing a signal in consecutive blocks gives the same samples as processing it in one call
    (reverb tails, delay lines and LFOs carry over). Call :meth:`reset`, or pass ``reset=True``, to start a
    new, unrelated signal. A chain with a ``limiter`` returns its input :meth:`latency_samples` late, and
    a block's last few samples with the next block (so a call may return fewer samples than it was given);
    :meth:`flush` returns the rest.

    Parameters
    ----------
    spec : str
        Effect spec (grammar in the module docstring); ``""`` is the identity.

    Example
    -------
    >>> chain = EffectChain("delay:delay_seconds=0.001,mix=0.5")
    >>> signal = np.random.default_rng(0).uniform(-1, 1, (1, 1024)).astype(np.float32)
    >>> blocks = [chain.process(signal[:, i : i + 256], sample_rate=22050) for i in range(0, 1024, 256)]
    >>> whole = EffectChain("delay:delay_seconds=0.001,mix=0.5").process(signal, sample_rate=22050)
    >>> bool(np.allclose(np.concatenate(blocks, axis=1), whole, atol=1e-6))
    True
    """

    def __init__(self, spec: str = "") -> None:
        self.spec = spec
        self.effects = build_effects(spec)
        # consecutive pedalboard plugins run as one board; each limiter is a stage of its own
        self._stages: list[pedalboard.Pedalboard | TruePeakLimiter] = []
        for effect in self.effects:
            if isinstance(effect, TruePeakLimiter):
                self._stages.append(effect)
            elif self._stages and isinstance(self._stages[-1], pedalboard.Pedalboard):
                self._stages[-1].append(effect)
            else:
                self._stages.append(pedalboard.Pedalboard([effect]))
        # (sample_rate, n_channels) of the signal streaming through, or None after a reset.
        self._stream: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"EffectChain({self.spec!r})"

    @property
    def is_identity(self) -> bool:
        """True when the chain has no effects and returns its input unchanged."""
        return not self.effects

    def latency_samples(self, sample_rate: int) -> int:
        """How many samples late the chain's output is (its limiters' look-ahead; 0 without a limiter)."""
        return sum(stage.latency_samples(sample_rate) for stage in self._stages if isinstance(stage, TruePeakLimiter))

    def reset(self) -> None:
        """Clear all state (tails, delay lines, envelopes, LFO phases); parameters stay as they are."""
        for stage in self._stages:
            stage.reset()
        self._stream = None

    def flush(self) -> np.ndarray:
        """The end of the stream that a limiter still holds, ``(channels, n)`` float32 (empty without one);
        the chain then starts a new signal. Silence goes through the whole chain to push it out, so the
        output is what one call would give for the signal followed by :meth:`latency_samples` of silence."""
        if self._stream is None or self.latency_samples(self._stream[0]) == 0:
            self.reset()
            return np.zeros((1 if self._stream is None else self._stream[1], 0), np.float32)
        sample_rate, n_channels = self._stream
        from synth.limiter import INTERPOLATION_HALF_TAPS

        limiters = sum(isinstance(stage, TruePeakLimiter) for stage in self._stages)
        silence = np.zeros((n_channels, self.latency_samples(sample_rate) + limiters * INTERPOLATION_HALF_TAPS),
                           np.float32)
        tail = self.process(silence if n_channels > 1 else silence[0], sample_rate=sample_rate)
        self.reset()
        return tail.reshape(n_channels, -1)

    def process(self, audio: np.ndarray, *, sample_rate: int, reset: bool = False) -> np.ndarray:
        """Run one block (or a whole signal) through the chain.

        Parameters
        ----------
        audio : np.ndarray
            Floating-point samples, shape (n_samples,) or (channels, n_samples), finite. Blocks of two or more
            channels need more samples than channels (pedalboard takes the smaller dimension as the channels);
            mono blocks may be any length.
        sample_rate : int
            Samples per second, > 0; must stay the same while streaming (until :meth:`reset`).
        reset : bool
            Clear state first, i.e. start a new signal. False continues the previous block.

        Returns
        -------
        np.ndarray
            float32, the same shape as ``audio`` (with a limiter: the same channels, the samples that are
            ready; see the class docstring).

        Raises
        ------
        ParameterError
            Bad dtype, shape, NaN/inf, sample rate; or the sample rate or channel count changed mid-stream.
        """
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, numbers.Integral) or sample_rate <= 0:
            raise ParameterError(f"sample_rate={sample_rate!r} is invalid; expected a positive integer")
        array = np.asarray(audio)
        if not np.issubdtype(array.dtype, np.floating):
            raise ParameterError(f"audio has dtype {array.dtype}; expected floating-point samples")
        if array.ndim not in (1, 2):
            raise ParameterError(f"audio has shape {array.shape}; expected (n_samples,) or (channels, n_samples)")
        block = array[None, :] if array.ndim == 1 else array
        n_channels, n_samples = block.shape
        if n_channels > 1 and 0 < n_samples <= n_channels:
            raise ParameterError(f"audio block has shape {block.shape}; expected (channels, n_samples) with more samples than channels")
        if not np.all(np.isfinite(block)):
            raise ParameterError("audio contains NaN or inf; expected finite samples (they would poison the effects' state)")
        if reset:
            self.reset()
        stream = (int(sample_rate), n_channels)
        if self._stream is not None and stream != self._stream:
            raise ParameterError(
                f"stream changed from sample_rate={self._stream[0]}, channels={self._stream[1]} to "
                f"sample_rate={stream[0]}, channels={stream[1]} without a reset; call reset() or pass reset=True"
            )
        if n_samples == 0 or self.is_identity:
            return np.array(array, dtype=np.float32)
        # Mono goes in 1-D: pedalboard cannot tell the layout of a (1, 1) block, but a 1-D one is unambiguous.
        samples = np.ascontiguousarray(block[0] if n_channels == 1 else block, dtype=np.float32)
        if self._stream is None:
            # Prepare every board for the longest piece it will ever get (see _BUFFER_FRAMES), then clear
            # what the silence left behind; pedalboard's reset keeps the prepared size.
            silence = np.zeros(samples.shape[:-1] + (_BUFFER_FRAMES,), dtype=np.float32)
            for stage in self._stages:
                if isinstance(stage, pedalboard.Pedalboard):
                    stage.process(silence, float(sample_rate), buffer_size=_BUFFER_FRAMES, reset=False)
                    stage.reset()
            self._stream = stream
        for stage in self._stages:
            if isinstance(stage, TruePeakLimiter):
                samples = stage.process(samples.reshape(n_channels, -1), sample_rate=int(sample_rate))
                samples = samples[0] if n_channels == 1 else samples
            elif samples.shape[-1] > 0:
                samples = stage.process(samples, float(sample_rate), buffer_size=_BUFFER_FRAMES, reset=False)
        if self.latency_samples(int(sample_rate)) == 0:
            return samples.reshape(array.shape)
        return samples.reshape(n_channels, -1) if array.ndim == 2 else samples.reshape(-1)
