"""Sinks: what a live session sends out every control tick — latents and parameters over OSC, notes and CCs over MIDI.

A sink is a callable ``sink(controls)`` taking :class:`bridge.sonify.voice.Controls`; the session calls every
sink from its control thread and logs (never re-raises) what one raises.
"""

from __future__ import annotations

__all__ = ["osc_sink", "midi_sink"]


def osc_sink(sender):
    """A sink sending the latents and parameters to an :class:`bridge.osc.OscSender`."""

    def send(controls) -> None:
        sender.send_image_latent(controls.z_img)
        sender.send_audio_latent(controls.z_aud)
        sender.send_params(controls.params)

    return send


def midi_sink(midi_out):
    """A sink playing the mapping's notes and CCs on a :class:`bridge.io.midi_live.MidiOutSink`.

    One note per image heard (``Controls.onsets`` counts them; several heard between two ticks play the
    latest), even on the same pitch, as ``imgsonic render --midi`` writes; CCs whenever they change.
    """
    seen = [0]

    def send(controls) -> None:
        onset = controls.onsets != seen[0]
        seen[0] = controls.onsets
        midi_out.send(controls.positions, onset_positions=controls.onset_positions if onset else None)

    return send
