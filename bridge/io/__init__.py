"""Protocols and files: OSC in and out, MIDI files, live MIDI ports, and the writers of render outputs."""
