"""03 · MIDI out for a DAW: the mapping's notes, velocities and CCs go to a MIDI port; a quiet voice monitors.

The notes come from the ``[midi]`` table of the mapping (one note per image: the mapped pitch, or a position
on a scale; velocity and CCs from other parameters), the CCs sent on every change at the session's control
rate. Name the port with ``--midi-out NAME`` (``imgsonic live --midi-out "IAC Driver Bus 1"``: an existing
port, or a new virtual one of that name); without it this patch opens a virtual output port called "imgsonic"
where the system allows one (ALSA sequencer, CoreMIDI, JACK MIDI).
If no MIDI backend is available the problem is reported once and the monitor still sounds.

Run:  imgsonic live --patch patches/03_midi_out.py --midi-out NAME
"""

import logging

from pyo import Sig

from bridge.control.midi_spec import MidiSpec
from bridge.io.midi_live import MidiOutSink, open_midi_output
from bridge.live.sinks import midi_sink


def patch(session):
    voice = session.voice
    voice.setRate(2.0)
    if not getattr(session, "midi_patch_sink", None):
        try:
            port = open_midi_output("imgsonic", virtual=True)
            session.midi_patch_sink = midi_sink(MidiOutSink(port, spec=MidiSpec.from_mapping(session.mapping)))
            session.sinks.append(session.midi_patch_sink)
        except Exception as error:  # noqa: BLE001 — no MIDI here: keep the monitor sounding
            logging.getLogger("imgsonic.patch").error("MIDI out unavailable: %s", error)
            session.midi_patch_sink = "unavailable"
    return Sig(voice, mul=0.25)


if __name__ == "__main__":
    from bridge.live.session import run_patch

    raise SystemExit(run_patch(__file__))
