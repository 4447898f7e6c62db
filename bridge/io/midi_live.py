"""Live MIDI: notes and CCs out per control tick, CCs in to parameters (with a learn mode), and opening ports.

:class:`MidiOutSink` follows the ``[midi]`` table of a mapping (see :mod:`bridge.midi`) while the live engine
runs: on each control tick it gets the parameter positions (name → 0…1, one frame of
:meth:`bridge.mapping.Mapping.positions`) and sends a note-off/note-on pair when the quantised note
changes or a new image starts (``onset=True``), and a CC whenever its 0–127 value changes. When the note
position only changes at image onsets, it sends exactly the messages the offline writer
(:func:`bridge.midi.controls_to_midi`) puts in the file, at the same ticks.

:class:`MidiControlIn` turns incoming control changes into parameter overrides on the live engine:
``value / 127`` is a position, and the parameter's curve gives the value in its units. Its bindings come
from ``[midi] cc_in = { 21 = "cutoff_hz" }`` and can be learnt while playing: ``learn("cutoff_hz")``, then
move a knob. Anything it does not understand is ignored; it never raises into the MIDI thread.

There is no ALSA sequencer on some machines (containers, CI): opening a port then fails with an
:class:`~models.errors.ImgsonicError` that lists the ports there are. Under JACK, set
``MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK``.

Example
-------
>>> import mido
>>> from bridge.control.midi_spec import MidiSpec
>>> port = mido.ports.EchoPort()
>>> sink = MidiOutSink(port, spec=MidiSpec(note="pitch", scale="major", root=60, octaves=1))
>>> sink.send({"pitch": 0.5})
>>> [(m.type, m.note) for m in port.iter_pending()]
[('note_on', 67)]
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping as MappingABC
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bridge.control.mapping import Mapping
from bridge.control.midi_spec import MidiSpec, quantise_to_scale
from models.errors import ImgsonicError, ParameterError
from synth.native_output import captured_native_stderr

if TYPE_CHECKING:
    import mido

__all__ = ["MidiOutSink", "MidiControlIn", "ParameterTarget", "open_midi_output", "open_midi_input"]

logger = logging.getLogger("imgsonic.midi")

_LOG_INTERVAL_S = 1.0  # a failing port logs at most once a second, not once per control tick
_LAST_CONTROLLER = 119  # 120–127 are channel mode messages (all notes off, reset, ...), not knobs


class ParameterTarget(Protocol):
    """What MIDI in drives: the part of :class:`bridge.osc.LiveTarget` that overrides a parameter."""

    def set_param(self, name: str, value: float) -> None: ...


def _is_position(value: Any) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)


class MidiOutSink:
    """Sends a mapping's notes and CCs to a mido output port, tick by tick.

    Parameters
    ----------
    port : any mido output port (``mido.open_output(...)``, ``mido.ports.EchoPort()``, ...); not closed here.
    spec : the mapping's ``[midi]`` table (:meth:`bridge.midi.MidiSpec.from_mapping`).

    Sending never raises: a port error is counted in :attr:`errors` and logged at most once a second.
    """

    def __init__(self, port: mido.ports.BaseOutput, *, spec: MidiSpec) -> None:
        self._port = port
        self._spec = spec
        self._note: int | None = None
        self._cc_values: dict[int, int] = {}
        self._last_log = -math.inf
        self.sent = 0
        self.errors = 0

    @property
    def note(self) -> int | None:
        """The note sounding now, if any."""
        return self._note

    def send(self, positions: MappingABC[str, float], *, onset: bool = False) -> None:
        """Send what changed since the last tick.

        Parameters
        ----------
        positions : parameter name → position in [0, 1] (clamped). Missing or non-finite positions leave
            their note or CC as it was.
        onset : a new image starts now: its note is played even when it is the note already sounding.

        Messages of one tick go out as the offline writer orders them: note-off, CCs, note-on.
        """
        import mido

        spec = self._spec
        note = None
        if spec.note is not None and _is_position(positions.get(spec.note)):
            quantised = quantise_to_scale(positions[spec.note], scale=spec.scale, root=spec.root, octaves=spec.octaves)
            note = int(quantised)
        play = note is not None and (note != self._note or onset)
        if play and self._note is not None:
            self._send(mido.Message("note_off", channel=spec.channel, note=self._note, velocity=0))
            self._note = None
        for number, name in spec.cc.items():
            position = positions.get(name)
            if not _is_position(position):
                continue
            value = int(np.rint(np.clip(position, 0.0, 1.0) * 127))
            if value != self._cc_values.get(number):
                self._cc_values[number] = value
                self._send(mido.Message("control_change", channel=spec.channel, control=number, value=value))
        if play:
            self._send(mido.Message("note_on", channel=spec.channel, note=note, velocity=self._velocity(positions)))
            self._note = note

    def _velocity(self, positions: MappingABC[str, float]) -> int:
        low, high = self._spec.velocity_range
        position = positions.get(self._spec.velocity) if self._spec.velocity else None
        if not _is_position(position):
            return 100  # the offline writer's velocity when the mapping names none
        return int(np.rint(low + np.clip(position, 0.0, 1.0) * (high - low)))

    def all_notes_off(self) -> None:
        """End the sounding note (call when playback stops, so the DAW is not left with a hanging note)."""
        import mido

        if self._note is not None:
            self._send(mido.Message("note_off", channel=self._spec.channel, note=self._note, velocity=0))
            self._note = None

    def _send(self, message: mido.Message) -> None:
        try:
            self._port.send(message)
        except Exception as error:  # a vanished device must not stop the control loop or the audio
            self.errors += 1
            now = time.monotonic()
            if now - self._last_log >= _LOG_INTERVAL_S:
                self._last_log = now
                logger.warning("MIDI out failed (%s: %s); %d messages lost so far", type(error).__name__, error,
                               self.errors)
            return
        self.sent += 1


def _is_data_byte(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 127


def _check_cc_map(cc_map: MappingABC[int, str], mapping: Mapping) -> dict[int, str]:
    checked = {}
    for number, name in cc_map.items():
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= _LAST_CONTROLLER:
            raise ParameterError(f"MIDI in controller {number!r}; expected an integer in 0…119")
        if name not in mapping.names:
            raise ParameterError(f"MIDI in CC {number} → {name!r} is not a parameter; the mapping has "
                                 f"{', '.join(mapping.names)}")
        checked[number] = name
    return checked


class MidiControlIn:
    """Control changes → parameter overrides on the live engine, with a learn mode.

    Parameters
    ----------
    target : has ``set_param(name, value)`` (the live engine, :class:`bridge.osc.LiveTarget`).
    mapping : the parameters and their ranges.
    cc_map : controller number (0–119) → parameter name; usually ``MidiSpec.from_mapping(mapping).cc_in``.

    Raises
    ------
    ParameterError
        A controller number is out of range or a name is not a parameter of ``mapping``.

    :meth:`handle` takes any mido message, from a port callback (another thread) or fed directly; it
    ignores messages it has no use for, and logs and counts (in :attr:`errors`) exceptions from the target.
    """

    def __init__(self, target: ParameterTarget, *, mapping: Mapping,
                 cc_map: MappingABC[int, str] | None = None) -> None:
        self._target = target
        self._mapping = mapping
        self._bindings = _check_cc_map(cc_map or {}, mapping)
        self._learning: str | None = None
        self._lock = threading.Lock()
        self.handled = 0
        self.ignored = 0
        self.errors = 0

    @property
    def bindings(self) -> dict[int, str]:
        """A copy of controller number → parameter name."""
        with self._lock:
            return dict(self._bindings)

    @property
    def learning(self) -> str | None:
        """The parameter waiting for a controller, if learn mode is on."""
        return self._learning

    def learn(self, name: str) -> None:
        """Bind the next controller that moves to parameter ``name``.

        The controller loses its old parameter, and ``name`` loses its old controllers: one knob per
        parameter, one parameter per knob. ParameterError if ``name`` is not a parameter.
        """
        if name not in self._mapping.names:
            raise ParameterError(
                f"cannot learn {name!r}: not a parameter; the mapping has {', '.join(self._mapping.names)}"
            )
        with self._lock:
            self._learning = name
        logger.info("MIDI learn: move a controller to bind it to %r", name)

    def cancel_learn(self) -> None:
        with self._lock:
            self._learning = None

    def bindings_toml(self) -> str:
        """The bindings as a ``cc_in = { ... }`` line for the mapping's ``[midi]`` table."""
        pairs = ", ".join(f'{number} = "{name}"' for number, name in sorted(self.bindings.items()))
        return f"cc_in = {{ {pairs} }}\n"

    def handle(self, message: Any) -> None:
        """Act on one MIDI message; never raises."""
        number, value = getattr(message, "control", None), getattr(message, "value", None)
        if getattr(message, "type", None) != "control_change" or not (_is_data_byte(number) and _is_data_byte(value)):
            self.ignored += 1
            return
        with self._lock:
            if self._learning is not None and number <= _LAST_CONTROLLER:
                name = self._learning
                self._bindings = {n: p for n, p in self._bindings.items() if p != name}
                self._bindings[number] = name
                self._learning = None
                logger.info("MIDI learn: CC %d → %r", number, name)
            name = self._bindings.get(number)
        if name is None:
            self.ignored += 1
            return
        try:
            self._target.set_param(name, float(self._mapping[name].value_at(value / 127)))
        except Exception as error:  # the target's failure must not reach the MIDI thread
            self.errors += 1
            logger.error("MIDI CC %d → %r: the live engine raised %s: %s", number, name, type(error).__name__, error)
            return
        self.handled += 1


def _available(list_names: Callable[[], list[str]]) -> str:
    try:
        with captured_native_stderr():  # ALSA's "cannot open /dev/snd/seq": the message below says it
            names = list_names()
    except Exception as error:  # rtmidi raises its own SystemError when there is no ALSA sequencer
        return (f"no ports can be listed ({error}); without an ALSA sequencer, start jackd and set "
                "MIDO_BACKEND=mido.backends.rtmidi/UNIX_JACK")
    return f"available: {', '.join(map(repr, names))}" if names else "no ports are available"


def open_midi_output(name: str, *, virtual: bool = False) -> mido.ports.BaseOutput:
    """Open the MIDI output port ``name`` (``virtual=True``: create a port others connect to).

    Raises ImgsonicError naming the port and listing the available ones when it cannot be opened.
    """
    import mido

    try:
        with captured_native_stderr():
            return mido.open_output(name, virtual=virtual)
    except Exception as error:  # mido's backends raise OSError, rtmidi errors or ImportError
        raise ImgsonicError(
            f"MIDI output {name!r} cannot be opened ({error}); {_available(mido.get_output_names)}"
        ) from error


def open_midi_input(name: str, *, callback: Callable[[Any], None], virtual: bool = False) -> mido.ports.BaseInput:
    """Open the MIDI input port ``name``; ``callback`` gets each message (on the backend's thread).

    Raises ImgsonicError naming the port and listing the available ones when it cannot be opened.
    """
    import mido

    try:
        with captured_native_stderr():
            return mido.open_input(name, virtual=virtual, callback=callback)
    except Exception as error:  # mido's backends raise OSError, rtmidi errors or ImportError
        raise ImgsonicError(
            f"MIDI input {name!r} cannot be opened ({error}); {_available(mido.get_input_names)}"
        ) from error
