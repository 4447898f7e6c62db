"""Live MIDI: the out sink matches the offline file, CCs in drive parameters, learn mode, ports that do not exist."""

from pathlib import Path

import mido
import numpy as np
import pytest

from bridge.control.mapping import Mapping, load_mapping
from bridge.control.midi_spec import MidiSpec
from bridge.io.midi_file import controls_to_midi
from bridge.io.midi_live import (
    MidiControlIn,
    MidiOutSink,
    open_midi_input,
    open_midi_output,
)
from models.errors import ImgsonicError, ParameterError

TICKS_PER_S = 960  # 480 ticks per beat at 120 bpm, as bridge.midi writes files


class ListPort(mido.ports.BaseOutput):
    """An output port that keeps what it is sent, stamped with the tick the test says it is."""

    def __init__(self):
        super().__init__()
        self.tick = 0
        self.sent = []

    def _send(self, message):
        self.sent.append((self.tick, message))


class BrokenPort(mido.ports.BaseOutput):
    def _send(self, message):
        raise OSError("device unplugged")


def _file_events(midi_file):
    tick, events = 0, []
    for message in midi_file.tracks[0]:
        tick += message.time
        if not message.is_meta:
            events.append((tick, message))
    return events


def _comparable(events):
    return [(tick, message.copy(time=0)) for tick, message in events]


def test_live_sink_sends_what_the_offline_writer_writes(rng):
    mapping = load_mapping()
    # notes by position on a scale, which the offline writer reads from the spec as the live sink does
    spec = MidiSpec(note="pitch", scale="minor_pentatonic", root=48, octaves=2, velocity="loudness",
                    cc=MidiSpec.from_mapping(mapping).cc)
    frame_rate, frames_per_image, n_images = 62.5, 50, 8
    times = np.arange(frames_per_image * n_images) / frame_rate
    image = np.arange(len(times)) // frames_per_image
    pitch = rng.uniform(0, 1, n_images)
    pitch[3] = pitch[2]  # two images on the same note: both are played
    positions = {name: rng.uniform(0, 1, len(times)) for name in mapping.names}
    positions["pitch"] = pitch[image]
    positions["loudness"] = rng.uniform(0, 1, n_images)[image]  # velocity is read once per image offline
    positions["cutoff_hz"] = np.clip(np.cumsum(rng.normal(0, 0.01, len(times))) + 0.5, 0, 1)
    onsets = [i * frames_per_image / frame_rate for i in range(n_images)]
    duration = len(times) / frame_rate
    offline = controls_to_midi(spec=spec, times_s=times, positions=positions, onsets_s=onsets, duration_s=duration)

    port = ListPort()
    sink = MidiOutSink(port, spec=spec)
    for index, time_s in enumerate(times):
        port.tick = round(time_s * TICKS_PER_S)
        now = {name: float(values[index]) for name, values in positions.items()}
        sink.send(now, onset_positions=now if index % frames_per_image == 0 else None)
    port.tick = round(duration * TICKS_PER_S)
    sink.all_notes_off()

    assert _comparable(port.sent) == _comparable(_file_events(offline))
    assert sum(m.type == "note_on" for _, m in port.sent) == n_images
    assert sink.sent == len(port.sent) and sink.errors == 0


def test_notes_come_only_with_images_and_ccs_follow_every_tick():
    spec = MidiSpec(note="pitch", scale="major", root=60, octaves=1, channel=3, cc={74: "pitch"})
    port = ListPort()
    sink = MidiOutSink(port, spec=spec)
    ticks = [(0.0, True), (0.01, False), (0.5, False), (0.52, False), (0.5, True), (0.5, True), (1.0, False),
             (2.0, False), (float("nan"), True)]
    for position, onset in ticks:  # a glide sweeping the pitch adds no notes: only a new image plays one
        sink.send({"pitch": position}, onset_positions={"pitch": position} if onset else None)
    notes = [(m.type, m.note) for _, m in port.sent if m.type != "control_change"]
    # the same note for a new image is played again; an image with no finite note position plays none
    assert notes == [("note_on", 60), ("note_off", 60), ("note_on", 67), ("note_off", 67), ("note_on", 67)]
    ccs = [m.value for _, m in port.sent if m.type == "control_change"]
    assert ccs == [0, 1, 64, 66, 64, 127]  # NaN and the clamped 2.0 add nothing
    assert all(m.channel == 3 for _, m in port.sent) and sink.note == 67
    sink.send({})  # missing positions leave everything as it is
    assert len(port.sent) == 11


def test_a_pitch_parameter_plays_its_frequency_not_a_scale_position():
    """The default mapping's note is "pitch" in Hz (110…880, log): 880 Hz is A5 (81), 440 Hz A4 (69)."""
    mapping = load_mapping()
    spec = MidiSpec.from_mapping(mapping)
    assert spec.pitch is not None and not spec.snap_pitch
    port = ListPort()
    sink = MidiOutSink(port, spec=spec)
    for hz in (880.0, 440.0, 110.0, 261.63):
        position = mapping["pitch"].position_of_value(hz)
        sink.send({"pitch": position}, onset_positions={"pitch": position, "loudness": 0.5})
    assert [m.note for _, m in port.sent if m.type == "note_on"] == [81, 69, 45, 60]
    snapped = MidiSpec.from_mapping(Mapping.from_toml_text(
        Path(mapping.source).read_text(encoding="utf-8").replace("[midi]", '[midi]\nscale = "minor_pentatonic"')))
    assert snapped.snap_pitch and snapped.notes(mapping["pitch"].position_of_value(880.0)) == 82  # A5 → B♭5 in C


def test_a_failing_port_never_raises(caplog):
    sink = MidiOutSink(BrokenPort(), spec=MidiSpec(note="pitch", cc={1: "pitch"}))
    for position in np.linspace(0, 1, 50):
        sink.send({"pitch": position}, onset_positions={"pitch": position})
    sink.all_notes_off()
    assert sink.errors > 50 and sink.sent == 0
    assert 1 <= caplog.text.count("device unplugged") <= 2  # logged at most once a second


def test_echo_port_round_trip():
    port = mido.ports.EchoPort()
    sink = MidiOutSink(port, spec=MidiSpec(note="pitch", velocity="level", velocity_range=(10, 20)))
    sink.send({"pitch": 0.0, "level": 1.0}, onset_positions={"pitch": 0.0, "level": 1.0})
    assert [(m.type, m.note, m.velocity) for m in port.iter_pending()] == [("note_on", 48, 20)]


class FakeEngine:
    def __init__(self):
        self.calls = []
        self.fail = None

    def set_param(self, name, value):
        if self.fail is not None:
            raise self.fail
        self.calls.append((name, value))


MAPPING_WITH_CC_IN = Path(load_mapping().source).read_text(encoding="utf-8").replace(
    "[midi]", '[midi]\ncc_in = { 21 = "cutoff_hz", 7 = "pan" }'
)


def test_control_changes_set_parameters_in_their_units():
    mapping = Mapping.from_toml_text(MAPPING_WITH_CC_IN)
    engine = FakeEngine()
    control = MidiControlIn(engine, mapping=mapping, cc_map=MidiSpec.from_mapping(mapping).cc_in)
    for number, value in [(21, 0), (21, 127), (7, 0), (7, 127), (21, 64)]:
        control.handle(mido.Message("control_change", channel=5, control=number, value=value))
    assert engine.calls[:4] == [("cutoff_hz", 200.0), ("cutoff_hz", 8000.0), ("pan", -1.0), ("pan", 1.0)]
    assert engine.calls[4] == ("cutoff_hz", pytest.approx(200 * 40 ** (64 / 127)))  # the log curve
    assert control.handled == 5


@pytest.mark.parametrize(
    "message",
    [
        mido.Message("control_change", control=22, value=5),  # not bound
        mido.Message("note_on", note=60),
        mido.Message("pitchwheel", pitch=100),
        mido.Message("sysex", data=[1, 2, 3]),
        mido.MetaMessage("set_tempo"),
        None,
        "control_change",
        b"\xb0\x15\x40",
        type("Fake", (), {"type": "control_change", "control": 21, "value": 999})(),
        type("Fake", (), {"type": "control_change", "control": "21", "value": 3})(),
    ],
)
def test_anything_else_is_ignored(message):
    engine = FakeEngine()
    control = MidiControlIn(engine, mapping=load_mapping(), cc_map={21: "cutoff_hz"})
    control.handle(message)
    assert engine.calls == [] and control.ignored == 1


def test_engine_errors_are_counted_not_raised(caplog):
    engine = FakeEngine()
    engine.fail = RuntimeError("engine stopped")
    control = MidiControlIn(engine, mapping=load_mapping(), cc_map={21: "cutoff_hz"})
    control.handle(mido.Message("control_change", control=21, value=1))
    assert control.errors == 1 and "engine stopped" in caplog.text


def test_learn_binds_the_next_controller_and_saves_as_toml():
    mapping = load_mapping()
    engine = FakeEngine()
    control = MidiControlIn(engine, mapping=mapping, cc_map={21: "cutoff_hz"})
    control.learn("pan")
    assert control.learning == "pan"
    control.handle(mido.Message("note_on", note=60))  # not a controller: still learning
    control.handle(mido.Message("control_change", control=123, value=0))  # all notes off is no knob
    assert control.learning == "pan"
    control.handle(mido.Message("control_change", control=30, value=127))
    assert control.learning is None and engine.calls == [("pan", 1.0)]
    control.handle(mido.Message("control_change", control=30, value=0))
    assert engine.calls[-1] == ("pan", -1.0)

    control.learn("pan")  # one knob per parameter: 30 is released
    control.handle(mido.Message("control_change", control=31, value=64))
    control.learn("fm_index")  # one parameter per knob: 21 now drives fm_index
    control.handle(mido.Message("control_change", control=21, value=127))
    assert control.bindings == {21: "fm_index", 31: "pan"}
    control.handle(mido.Message("control_change", control=30, value=5))
    assert control.ignored == 3

    assert control.bindings_toml() == 'cc_in = { 21 = "fm_index", 31 = "pan" }\n'
    text = Path(mapping.source).read_text(encoding="utf-8").replace("[midi]", "[midi]\n" + control.bindings_toml())
    assert MidiSpec.from_mapping(Mapping.from_toml_text(text)).cc_in == control.bindings


def test_learn_and_cc_map_check_names():
    control = MidiControlIn(FakeEngine(), mapping=load_mapping())
    with pytest.raises(ParameterError, match="volume"):
        control.learn("volume")
    control.learn("pan")
    control.cancel_learn()
    control.handle(mido.Message("control_change", control=30, value=5))
    assert control.bindings == {} and control.ignored == 1
    with pytest.raises(ParameterError, match="volume"):
        MidiControlIn(FakeEngine(), mapping=load_mapping(), cc_map={7: "volume"})
    with pytest.raises(ParameterError, match="200"):
        MidiControlIn(FakeEngine(), mapping=load_mapping(), cc_map={200: "pan"})


def test_opening_a_missing_port_names_it_and_lists_the_others(monkeypatch):
    with pytest.raises(ImgsonicError, match="'no such synth'"):  # the real backend (no ALSA sequencer here)
        open_midi_output("no such synth")
    with pytest.raises(ImgsonicError, match="'no such knobs'"):
        open_midi_input("no such knobs", callback=print)

    def refuse(name, **kwargs):
        raise OSError(f"unknown port {name!r}")

    monkeypatch.setattr(mido, "open_output", refuse)
    monkeypatch.setattr(mido, "get_output_names", lambda: ["Synth A", "DAW In"])
    with pytest.raises(ImgsonicError, match="available: 'Synth A', 'DAW In'"):
        open_midi_output("Synth B")
    monkeypatch.setattr(mido, "get_output_names", lambda: [])
    with pytest.raises(ImgsonicError, match="no ports are available"):
        open_midi_output("Synth B")


def test_midi_out_opens_the_named_port_or_creates_a_virtual_one(monkeypatch):
    opened = []
    monkeypatch.setattr(mido, "open_output", lambda name, virtual=False: opened.append((name, virtual)) or "port")
    monkeypatch.setattr(mido, "get_output_names", lambda: ["DAW In"])
    assert open_midi_output("DAW In") == "port" and open_midi_output("imgsonic") == "port"
    assert open_midi_output("DAW In", virtual=True) == "port"
    assert opened == [("DAW In", False), ("imgsonic", True), ("DAW In", True)]

    def no_backend():
        raise SystemError("cannot open /dev/snd/seq")

    monkeypatch.setattr(mido, "get_output_names", no_backend)
    open_midi_output("anything")
    assert opened[-1] == ("anything", True)  # nothing to list: a virtual port is the only way
