"""Parameter mapping: latent dims and image descriptors → named, scaled, bounded, smoothed synth parameters.

A mapping is a TOML file::

    [parameters.cutoff_hz]
    source = "brightness"      # an image descriptor (bridge.sources.descriptors.DESCRIPTORS) or "z_img[i]" / "z_aud[i]"
    range = [200.0, 8000.0]    # output at position 0 and at position 1 (may be descending)
    curve = "log"              # lin | log | exp
    default = 1000.0           # value before any image arrives (live) and when the source is missing
    smoothing_s = 0.05         # one-pole smoothing time constant of the position, seconds (0 = none)
    input_range = [0.0, 1.0]   # optional: source values mapped onto positions 0..1
                               # (default [0, 1] for descriptors, [-2.5, 2.5] for latent dims)

    [midi]                     # optional, read by bridge.io.midi_file.MidiSpec

Each source value ``x`` becomes a **position** ``u = clamp((x − in_lo) / (in_hi − in_lo), 0, 1)``, smoothed
over time, and the position becomes the **value** through the curve:

* ``lin``: ``lo + u·(hi − lo)``
* ``log``: ``lo · (hi/lo)^u`` (``lo`` and ``hi`` non-zero, same sign; equal steps of ``u`` are equal ratios)
* ``exp``: ``lo + (hi − lo)·(100^u − 1)/99`` (slow start, steep end: the mirror image of ``log``'s shape)

Sinks that need a 0–1 control (MIDI velocity and CC) take the position; synth voices take the value.
Unknown keys anywhere are a :class:`~models.errors.ParameterError` that names the key.

Example
-------
>>> mapping = Mapping.from_toml_text('''
... [parameters.pitch]
... source = "z_aud[0]"
... range = [0.0, 1.0]
... ''')
>>> mapping.parameters[0].value_at(0.5)
0.5
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from bridge.control.smoothing import smooth_positions
from bridge.sources.descriptors import DESCRIPTORS
from models.errors import ParameterError

__all__ = ["CURVES", "Parameter", "Mapping", "load_mapping", "default_mapping_path", "cc_in_line", "write_cc_in"]

CURVES = ("lin", "log", "exp")
_EXP_BASE = 100.0
_LATENT_SOURCE = re.compile(r"^(z_img|z_aud)\[(\d+)\]$")
_LATENT_INPUT_RANGE = (-2.5, 2.5)
_PARAMETER_KEYS = frozenset({"source", "range", "curve", "default", "smoothing_s", "input_range"})
_TOP_KEYS = frozenset({"parameters", "midi"})


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{where} = {value!r}; expected a finite number")
    return float(value)


def _pair(where: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ParameterError(f"{where} = {value!r}; expected [low, high]")
    return _number(where, value[0]), _number(where, value[1])


@dataclass(frozen=True)
class Parameter:
    """One mapped parameter (see the module docstring for the meaning of each field)."""

    name: str
    source: str
    low: float
    high: float
    curve: str = "lin"
    default: float | None = None
    smoothing_s: float = 0.0
    input_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        where = f"parameter {self.name!r}"
        if self.curve not in CURVES:
            raise ParameterError(f"{where}: curve = {self.curve!r}; expected one of {', '.join(CURVES)}")
        if self.curve == "log" and (self.low == 0 or self.high == 0 or (self.low > 0) != (self.high > 0)):
            raise ParameterError(
                f"{where}: range = [{self.low}, {self.high}] with curve 'log'; expected non-zero ends of the same sign"
            )
        if self.smoothing_s < 0:
            raise ParameterError(f"{where}: smoothing_s = {self.smoothing_s}; expected >= 0")
        if self.latent is None and self.source not in DESCRIPTORS:
            raise ParameterError(
                f"{where}: source = {self.source!r}; expected z_img[i], z_aud[i] or one of {', '.join(DESCRIPTORS)}"
            )
        low_in, high_in = self.source_range
        if low_in == high_in:
            raise ParameterError(f"{where}: input_range = [{low_in}, {high_in}] is empty; expected two different numbers")

    @property
    def latent(self) -> tuple[str, int] | None:
        """``("z_img", i)`` / ``("z_aud", i)`` for a latent source, None for a descriptor."""
        match = _LATENT_SOURCE.match(self.source)
        return (match.group(1), int(match.group(2))) if match else None

    @property
    def source_range(self) -> tuple[float, float]:
        if self.input_range is not None:
            return self.input_range
        return _LATENT_INPUT_RANGE if self.latent else (0.0, 1.0)

    @property
    def default_value(self) -> float:
        """``default``, or the value at the middle position when none was given."""
        return self.default if self.default is not None else float(self.value_at(0.5))

    def _shape(self, u: np.ndarray | float) -> np.ndarray | float:
        """The curve from ``low`` (u = 0) to ``high`` (u = 1), for u already in [0, 1]: floats or arrays."""
        if self.curve == "lin":
            return self.low + u * (self.high - self.low)
        if self.curve == "log":
            return self.low * (self.high / self.low) ** u
        return self.low + (self.high - self.low) * (_EXP_BASE**u - 1) / (_EXP_BASE - 1)

    def position_of(self, source_value: np.ndarray | float) -> np.ndarray | float:
        """Source values → positions in [0, 1] (clamped); a float gives a float (the live path, every buffer)."""
        low_in, high_in = self.source_range
        if not isinstance(source_value, (int, float)):
            source_value = np.asarray(source_value, dtype=np.float64)
        return _unit((source_value - low_in) / (high_in - low_in))

    def value_at(self, position: np.ndarray | float) -> np.ndarray | float:
        """Positions (clamped to [0, 1]) → values on the curve between ``low`` and ``high``; float in, float out."""
        if isinstance(position, (int, float)):
            return float(self._shape(_unit(float(position))))
        return self._shape(_unit(np.asarray(position, dtype=np.float64)))

    def position_of_value(self, value: float) -> float:
        """The position (0–1, clamped) whose :meth:`value_at` is ``value``: the curve's inverse."""
        if self.high == self.low:
            return 0.0
        if self.curve == "lin":
            u = (value - self.low) / (self.high - self.low)
        elif self.curve == "log":
            ratio = value / self.low
            u = math.log(ratio) / math.log(self.high / self.low) if ratio > 0 else 0.0
        else:
            u = math.log(max(1.0, 1 + (value - self.low) / (self.high - self.low) * (_EXP_BASE - 1)), _EXP_BASE)
        return _unit(float(u))


def _unit(x: np.ndarray | float) -> np.ndarray | float:
    """``x`` clamped to [0, 1]: plain arithmetic for a float (numpy's per-call cost matters per buffer)."""
    if isinstance(x, (int, float)):
        return min(max(float(x), 0.0), 1.0)
    return np.clip(x, 0.0, 1.0)


@dataclass(frozen=True)
class Mapping:
    """A set of parameters (in file order) and the raw ``[midi]`` table (validated by :mod:`bridge.io.midi_file`)."""

    parameters: tuple[Parameter, ...]
    midi: dict[str, Any] = field(default_factory=dict)
    source: str = "<text>"

    @classmethod
    def from_toml_text(cls, text: str, *, source: str = "<text>") -> Mapping:
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise ParameterError(f"mapping {source} is not valid TOML: {error}") from error
        unknown = sorted(set(table) - _TOP_KEYS)
        if unknown:
            raise ParameterError(f"mapping {source}: unknown key {unknown[0]!r}; known: {', '.join(sorted(_TOP_KEYS))}")
        entries = table.get("parameters", {})
        if not isinstance(entries, dict) or not entries:
            raise ParameterError(f"mapping {source} defines no [parameters.NAME] tables")
        parameters = []
        for name, entry in entries.items():
            if not isinstance(entry, dict):
                raise ParameterError(f"mapping {source}: parameters.{name} = {entry!r}; expected a table")
            unknown = sorted(set(entry) - _PARAMETER_KEYS)
            if unknown:
                raise ParameterError(
                    f"mapping {source}: parameter {name!r} has unknown key {unknown[0]!r}; "
                    f"known: {', '.join(sorted(_PARAMETER_KEYS))}"
                )
            if "source" not in entry or "range" not in entry:
                raise ParameterError(f"mapping {source}: parameter {name!r} needs 'source' and 'range'")
            if not isinstance(entry["source"], str):
                raise ParameterError(f"mapping {source}: parameters.{name}.source = {entry['source']!r}; expected a string")
            low, high = _pair(f"parameters.{name}.range", entry["range"])
            parameters.append(
                Parameter(
                    name=name,
                    source=entry["source"].strip(),
                    low=low,
                    high=high,
                    curve=entry.get("curve", "lin"),
                    default=_number(f"parameters.{name}.default", entry["default"]) if "default" in entry else None,
                    smoothing_s=_number(f"parameters.{name}.smoothing_s", entry.get("smoothing_s", 0.0)),
                    input_range=_pair(f"parameters.{name}.input_range", entry["input_range"]) if "input_range" in entry else None,
                )
            )
        midi = table.get("midi", {})
        if not isinstance(midi, dict):
            raise ParameterError(f"mapping {source}: midi = {midi!r}; expected a table")
        mapping = cls(parameters=tuple(parameters), midi=midi, source=source)
        from bridge.control.midi_spec import MidiSpec

        MidiSpec.from_mapping(mapping)  # validate the [midi] table now, not when a file is written
        return mapping

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(parameter.name for parameter in self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise ParameterError(f"mapping {self.source} has no parameter {name!r}; it has {', '.join(self.names)}")

    def check_dims(self, *, image_latent_dim: int, audio_latent_dim: int) -> None:
        """ParameterError naming the parameter whose latent source index is beyond the models' latent size."""
        sizes = {"z_img": image_latent_dim, "z_aud": audio_latent_dim}
        for parameter in self.parameters:
            if parameter.latent and parameter.latent[1] >= sizes[parameter.latent[0]]:
                kind, index = parameter.latent
                raise ParameterError(
                    f"mapping {self.source}: parameter {parameter.name!r} reads {kind}[{index}] but the models' "
                    f"{kind} has {sizes[kind]} dims (0…{sizes[kind] - 1})"
                )

    def source_values(self, parameter: Parameter, sources: dict[str, np.ndarray]) -> np.ndarray:
        """The raw source of ``parameter`` ``(T,)`` from ``{"z_img": (T, Di), "z_aud": (T, Da), "descriptors": (T, n)}``."""
        if parameter.latent:
            kind, index = parameter.latent
            return sources[kind][:, index]
        return sources["descriptors"][:, DESCRIPTORS.index(parameter.source)]

    def positions(self, sources: dict[str, np.ndarray], *, control_rate_hz: float,
                  initial: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Smoothed positions ``(T,)`` in [0, 1] per parameter, from sources sampled at ``control_rate_hz``.

        ``initial`` (the previous block's last positions) continues the smoothing of an earlier block, so
        consecutive blocks give what one call over all of them would.
        """
        return {
            parameter.name: smooth_positions(
                parameter.position_of(self.source_values(parameter, sources)),
                smoothing_s=parameter.smoothing_s,
                control_rate_hz=control_rate_hz,
                initial=None if initial is None else initial.get(parameter.name),
            )
            for parameter in self.parameters
        }

    def values(self, positions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Positions → parameter values in their units."""
        return {parameter.name: parameter.value_at(positions[parameter.name]) for parameter in self.parameters}


_MIDI_HEADER = re.compile(r"^\s*\[\s*midi\s*\]\s*(#.*)?$")
_TABLE_HEADER = re.compile(r"^\s*\[")
_CC_IN_LINE = re.compile(r"^\s*cc_in\s*=")


def cc_in_line(bindings: dict[int, str]) -> str:
    """``cc_in = { 21 = "cutoff_hz" }``: controller number → parameter, as the ``[midi]`` table reads it."""
    pairs = ", ".join(f'{number} = "{name}"' for number, name in sorted(bindings.items()))
    return f"cc_in = {{ {pairs} }}"


def write_cc_in(path: str | os.PathLike, bindings: dict[int, str]) -> Path:
    """Save MIDI-in bindings as the ``cc_in`` line of a mapping file's ``[midi]`` table; returns the path.

    The rest of the file stays as it was, comments included: an existing ``cc_in = {...}`` line is replaced,
    or one is added under ``[midi]`` (and a ``[midi]`` table at the end when there is none). A missing file
    starts as a copy of the shipped mapping. The result is read back as a mapping before it replaces the
    file (atomically); ParameterError when it would not be valid, or when ``cc_in`` is written as a
    ``[midi.cc_in]`` table this function does not edit.
    """
    from synth.files import atomic_output

    path = Path(path)
    source = path if path.exists() else default_mapping_path()
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ParameterError(f"mapping file {str(source)!r} cannot be read ({error.strerror or error})") from error
    if any(re.match(r"^\s*\[\s*midi\s*\.\s*cc_in\s*\]", line) for line in lines):
        raise ParameterError(f"mapping {str(path)!r} writes cc_in as a [midi.cc_in] table; write it as one line, "
                             f"{cc_in_line(bindings)}, under [midi] so that learnt bindings can be saved")
    line = cc_in_line(bindings)
    header = next((index for index, text in enumerate(lines) if _MIDI_HEADER.match(text)), None)
    if header is None:
        lines += ["", "[midi]", line]
    else:
        end = next((index for index in range(header + 1, len(lines)) if _TABLE_HEADER.match(lines[index])), len(lines))
        existing = next((index for index in range(header + 1, end) if _CC_IN_LINE.match(lines[index])), None)
        if existing is None:
            lines.insert(header + 1, line)
        else:
            lines[existing] = line
    text = "\n".join(lines) + "\n"
    from bridge.control.midi_spec import MidiSpec

    if MidiSpec.from_mapping(Mapping.from_toml_text(text, source=str(path))).cc_in != dict(bindings):
        raise ParameterError(f"mapping {str(path)!r}: the saved cc_in would not read back as {line}")
    with atomic_output(path, text=True) as stream:
        stream.write(text)
    return path


def default_mapping_path() -> Path:
    """The mapping shipped with the package (``bridge/control/mappings/default.toml``)."""
    return Path(str(resources.files("bridge.control") / "mappings" / "default.toml"))


def load_mapping(path: str | os.PathLike | None = None) -> Mapping:
    """Read a mapping TOML file (default: :func:`default_mapping_path`); ParameterError names a bad key or value."""
    path = default_mapping_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ParameterError(f"mapping file {str(path)!r} cannot be read ({error.strerror or error})") from error
    return Mapping.from_toml_text(text, source=str(path))
