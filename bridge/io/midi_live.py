"""Live MIDI: one note per image and CCs out per control tick, CCs in to parameters (with a learn mode), ports.

:class:`MidiOutSink` follows the ``[midi]`` table of a mapping (:mod:`bridge.control.midi_spec`) while the
live engine runs: on each control tick it gets the parameter positions (name → 0…1) and sends a CC whenever
its 0–127 value changes; when a new image is heard it gets that image's positions too (``onset_positions``:
where its parameters glide to) and plays exactly one note for it — a note-off for the previous note, then
the new note chosen by :meth:`~bridge.control.midi_spec.MidiSpec.notes` (a pitch parameter's value in Hz
as the nearest MIDI note), at a velocity from the same positions. A glide or a smoothing never adds notes.
When the positions only change at image onsets, it sends the messages the offline writer
(:func:`bridge.io.midi_file.controls_to_midi`) puts in the file, at the same ticks.

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
>>> sink.send({"pitch": 0.5}, onset_positions={"pitch": 0.5})
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

from bridge.control.mapping import Mapping, cc_in_line
from bridge.control.midi_spec import MidiSpec
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

    def send(self, positions: MappingABC[str, float], *,
             onset_positions: MappingABC[str, float] | None = None) -> None:
        """Send what changed since the last tick.

        Parameters
        ----------
        positions : parameter name → position in [0, 1] (clamped), for the CCs. Missing or non-finite
            positions leave their CC as it was.
        onset_positions : given when a new image is heard: the positions its parameters glide to. Its note
            is played (even when it is the note already sounding); without a finite note position, none.

        Messages of one tick go out as the offline writer orders them: note-off, CCs, note-on.
        """
        import mido

        spec = self._spec
        note = None
        if onset_positions is not None and spec.note is not None and _is_position(onset_positions.get(spec.note)):
            note = int(spec.notes(float(onset_positions[spec.note])))
        play = note is not None
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
            self._send(mido.Message("note_on", channel=spec.channel, note=note,
                                    velocity=self._velocity(onset_positions)))
            self._note = note

    def _velocity(self, positions: MappingABC[str, float]) -> int:
        position = positions.get(self._spec.velocity) if self._spec.velocity else None
        # without a velocity parameter, the offline writer's 100
        return int(self._spec.velocities(float(position) if _is_position(position) else None))

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
    on_learn : called with the new bindings (controller → name) after learn mode binds a controller, from
        the MIDI thread (e.g. :func:`bridge.control.mapping.write_cc_in` to save them); what it raises is
        logged.

    Raises
    ------
    ParameterError
        A controller number is out of range or a name is not a parameter of ``mapping``.

    :meth:`handle` takes any mido message, from a port callback (another thread) or fed directly; it
    ignores messages it has no use for, and logs and counts (in :attr:`errors`) exceptions from the target.
    """

    def __init__(self, target: ParameterTarget, *, mapping: Mapping,
                 cc_map: MappingABC[int, str] | None = None,
                 on_learn: Callable[[dict[int, str]], None] | None = None) -> None:
        self._target = target
        self._on_learn = on_learn
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
        return cc_in_line(self.bindings) + "\n"

    def handle(self, message: Any) -> None:
        """Act on one MIDI message; never raises."""
        number, value = getattr(message, "control", None), getattr(message, "value", None)
        if getattr(message, "type", None) != "control_change" or not (_is_data_byte(number) and _is_data_byte(value)):
            self.ignored += 1
            return
        learnt = None
        with self._lock:
            if self._learning is not None and number <= _LAST_CONTROLLER:
                name = self._learning
                self._bindings = {n: p for n, p in self._bindings.items() if p != name}
                self._bindings[number] = name
                self._learning = None
                learnt = dict(self._bindings)
                logger.info("MIDI learn: CC %d → %r", number, name)
            name = self._bindings.get(number)
        if learnt is not None and self._on_learn is not None:
            try:
                self._on_learn(learnt)
            except Exception as error:  # saving must not reach the MIDI thread
                logger.error("MIDI learn: the bindings could not be saved: %s", error)
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


def _port_exists(name: str, list_names: Callable[[], list[str]]) -> bool:
    try:
        with captured_native_stderr():
            return name in list_names()
    except Exception:  # noqa: BLE001 — no backend to list ports: opening will say why
        return False


def open_midi_output(name: str, *, virtual: bool | None = None) -> mido.ports.BaseOutput:
    """Open the MIDI output port ``name``.

    ``virtual``: True creates a port of that name that a DAW connects to; False opens an existing one;
    None (the CLI's ``--midi-out NAME``) opens the existing port when there is one and creates a virtual
    port otherwise. Raises ImgsonicError naming the port and listing the available ones when it cannot.
    """
    import mido

    if virtual is None:
        virtual = not _port_exists(name, mido.get_output_names)
    try:
        with captured_native_stderr():
            port = mido.open_output(name, virtual=virtual)
    except Exception as error:  # mido's backends raise OSError, rtmidi errors or ImportError
        what = "cannot be created as a virtual port" if virtual else "cannot be opened"
        raise ImgsonicError(
            f"MIDI output {name!r} {what} ({error}); {_available(mido.get_output_names)}"
        ) from error
    if virtual:
        logger.info("MIDI out: created the virtual port %r; connect your DAW's MIDI input to it", name)
    return port


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
