"""MIDI from mapped parameters: notes on the scale, timed to the audio, CCs, atomic files, bad [midi] tables."""

import re

import mido
import numpy as np
import pytest

from bridge.control.mapping import Mapping
from bridge.control.midi_spec import SCALES, MidiSpec, quantise_to_scale, scale_notes
from bridge.io.midi_file import controls_to_midi, write_midi
from models.errors import ParameterError

MAPPING = """
[parameters.pitch]
source = "z_aud[0]"
range = [110.0, 880.0]
[parameters.level]
source = "brightness"
range = [0.0, 1.0]

[midi]
note = "pitch"
scale = "{scale}"
root = 50
octaves = 2
velocity = "level"
cc = {{ 74 = "level" }}
"""


def _events(midi_file):
    """(seconds, message) for every channel message, in order."""
    tick, events = 0, []
    for message in midi_file.tracks[0]:
        tick += message.time
        if not message.is_meta:
            events.append((mido.tick2second(tick, midi_file.ticks_per_beat, 500_000), message))
    return events


@pytest.mark.parametrize("scale", ["major", "minor_pentatonic", "blues"])
def test_quantised_notes_are_on_the_scale(scale, rng):
    notes = quantise_to_scale(rng.uniform(-0.2, 1.2, 500), scale=scale, root=50, octaves=2)
    assert set((notes - 50) % 12) <= set(SCALES[scale])
    assert notes.min() == 50 and notes.max() == 50 + 24
    assert len(scale_notes(scale=scale, root=50, octaves=2)) == 2 * len(SCALES[scale]) + 1


@pytest.mark.parametrize("scale", ["dorian", "whole_tone"])
def test_midi_file_notes_fall_on_the_scale_and_follow_the_audio(tmp_path, rng, scale):
    # "tone", not "pitch": a parameter named pitch is a frequency and plays its own note (midi_spec docstring)
    spec = MidiSpec.from_mapping(Mapping.from_toml_text(MAPPING.format(scale=scale).replace("pitch", "tone")))
    frame_rate, seconds_per_image, n_images = 62.5, 0.8, 5
    duration = n_images * seconds_per_image
    times = np.arange(round(duration * frame_rate)) / frame_rate
    image = np.minimum((times // seconds_per_image).astype(int), n_images - 1)
    per_image = rng.uniform(0, 1, n_images)
    positions = {"tone": per_image[image], "level": np.linspace(0, 1, len(times))}
    onsets = [i * seconds_per_image for i in range(n_images)]
    write_midi(tmp_path / "out.mid", controls_to_midi(spec=spec, times_s=times, positions=positions,
                                                      onsets_s=onsets, duration_s=duration))
    midi_file = mido.MidiFile(tmp_path / "out.mid")
    assert [p.name for p in tmp_path.iterdir()] == ["out.mid"]
    assert midi_file.length == pytest.approx(duration, abs=2e-3)

    events = _events(midi_file)
    note_ons = [(t, m) for t, m in events if m.type == "note_on"]
    note_offs = [(t, m) for t, m in events if m.type == "note_off"]
    assert [t for t, _ in note_ons] == pytest.approx(onsets, abs=1 / frame_rate)  # one note per image, on time
    assert all((m.note - 50) % 12 in SCALES[scale] for _, m in note_ons)
    expected = quantise_to_scale(per_image, scale=scale, root=50, octaves=2)
    assert [m.note for _, m in note_ons] == expected.tolist()
    assert len(note_offs) == n_images and note_offs[-1][0] == pytest.approx(duration, abs=2e-3)
    velocities = [m.velocity for _, m in note_ons]
    assert velocities == sorted(velocities) and all(40 <= v <= 120 for v in velocities)
    cc_values = [m.value for _, m in events if m.type == "control_change"]
    assert cc_values[0] == 0 and cc_values[-1] == 127 and cc_values == sorted(cc_values)


def test_each_image_plays_the_note_it_holds_longest():
    spec = MidiSpec(note="pitch", scale="chromatic", root=60, octaves=1)
    times = np.arange(200) / 100
    pitch = np.where(times < 1.0, 0.0, 1.0)
    pitch[95:105] = 0.5  # a glide through a passing note around the boundary
    midi_file = controls_to_midi(spec=spec, times_s=times, positions={"pitch": pitch}, onsets_s=[0.0, 1.0],
                                 duration_s=2.0)
    notes = [(round(t, 3), m.note) for t, m in _events(midi_file) if m.type == "note_on"]
    assert notes == [(0.0, 60), (1.0, 72)]


@pytest.mark.parametrize(
    ("midi_table", "message"),
    [
        ('note = "nope"', "'nope'"),
        ('note = "pitch"\nscale = "lydian-ish"', "lydian-ish"),
        ('note = "pitch"\nchannel = 16', "channel"),
        ('note = "pitch"\ncc = { 200 = "pitch" }', "200"),
        ('note = "pitch"\ncc = { 7 = "volume" }', "volume"),
    ],
)
def test_bad_midi_tables_are_named(midi_table, message):
    text = MAPPING.split("[midi]")[0] + "[midi]\n" + midi_table + "\n"
    with pytest.raises(ParameterError, match=message):
        Mapping.from_toml_text(text)


def test_a_pitch_parameter_outside_hz_is_named():
    text = MAPPING.format(scale="major").replace("range = [110.0, 880.0]", "range = [0.0, 1.0]")
    with pytest.raises(ParameterError, match="below 8.18 Hz"):
        Mapping.from_toml_text(text)


def test_no_note_parameter_is_a_clear_error():
    with pytest.raises(ParameterError, match="'note'"):
        controls_to_midi(spec=MidiSpec(), times_s=np.zeros(1), positions={}, onsets_s=[0.0], duration_s=1.0)


def test_cc_in_table_is_read_and_checked():
    text = MAPPING.format(scale="major").replace("[midi]", '[midi]\ncc_in = { 21 = "pitch", 7 = "level" }')
    assert MidiSpec.from_mapping(Mapping.from_toml_text(text)).cc_in == {21: "pitch", 7: "level"}
    assert MidiSpec.from_mapping(Mapping.from_toml_text(MAPPING.format(scale="major"))).cc_in == {}
    for bad, match in [('{ 21 = "volume" }', "cc_in.21 = 'volume'"), ('{ 120 = "pitch" }', "controller '120'"),
                       ('{ 7 = ["pitch"] }', "cc_in.7"), ('"pitch"', "cc_in = 'pitch'")]:
        with pytest.raises(ParameterError, match=re.escape(match)):
            Mapping.from_toml_text(text.replace('{ 21 = "pitch", 7 = "level" }', bad))
