"""Parameter mapping: TOML validation naming bad keys, lin/log/exp curves and clamping, smoothing, the shipped file."""

import math

import numpy as np
import pytest

from bridge.control.mapping import (
    Mapping,
    Parameter,
    default_mapping_path,
    load_mapping,
)
from bridge.control.smoothing import smooth_positions
from models.errors import ParameterError

GOOD = """
[parameters.cutoff_hz]
source = "brightness"
range = [100.0, 10000.0]
curve = "log"
smoothing_s = 0.1

[parameters.pitch]
source = "z_aud[1]"
range = [0.0, 1.0]
"""


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (GOOD + "\n[voices]\nn = 2\n", "voices"),
        (GOOD.replace('curve = "log"', 'curve = "log"\nsmoothing = 0.2'), "smoothing"),
        (GOOD + '\n[midi]\nnote = "pitch"\ntranspose = 12\n', "transpose"),
    ],
)
def test_unknown_keys_are_named(text, key):
    with pytest.raises(ParameterError, match=repr(key)):
        Mapping.from_toml_text(text)


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ('source = "loudness"', "loudness"),
        ('source = "z_img[x]"', r"z_img\[x\]"),
        ('curve = "cubic"', "cubic"),
        ("range = [0.0, 10000.0]", "non-zero"),
        ("range = [1.0]", "low, high"),
    ],
)
def test_bad_values_are_named(replacement, message):
    line = 'source = "brightness"' if replacement.startswith("source") else None
    line = line or ('curve = "log"' if replacement.startswith("curve") else "range = [100.0, 10000.0]")
    with pytest.raises(ParameterError, match=message):
        Mapping.from_toml_text(GOOD.replace(line, replacement, 1))


def test_latent_index_beyond_the_models_is_named():
    mapping = Mapping.from_toml_text(GOOD)
    with pytest.raises(ParameterError, match="'pitch'.*z_aud\\[1\\]"):
        mapping.check_dims(image_latent_dim=4, audio_latent_dim=1)
    mapping.check_dims(image_latent_dim=4, audio_latent_dim=2)


@pytest.mark.parametrize(
    ("curve", "low", "high", "middle"),
    [("lin", 2.0, 6.0, 4.0), ("log", 100.0, 10000.0, 1000.0), ("exp", 0.0, 99.0, 9.0), ("lin", 1.0, -1.0, 0.0)],
)
def test_curves_map_the_unit_interval_onto_the_range_and_clamp(curve, low, high, middle):
    parameter = Parameter(name="p", source="brightness", low=low, high=high, curve=curve)
    positions = np.array([-0.5, 0.0, 0.5, 1.0, 1.5])
    np.testing.assert_allclose(parameter.value_at(positions), [low, low, middle, high, high])
    values = parameter.value_at(np.linspace(0, 1, 50))
    assert np.all(np.diff(values) * np.sign(high - low) > 0)  # monotonic from low to high


def test_sources_are_normalised_by_their_input_range():
    latent = Parameter(name="p", source="z_img[0]", low=0.0, high=1.0)
    np.testing.assert_allclose(latent.position_of([-5.0, -2.5, 0.0, 2.5, 5.0]), [0, 0, 0.5, 1, 1])
    custom = Parameter(name="p", source="hue", low=0.0, high=1.0, input_range=(0.25, 0.75))
    assert custom.position_of(0.5) == pytest.approx(0.5)
    assert Parameter(name="p", source="hue", low=1.0, high=3.0).default_value == pytest.approx(2.0)


def test_positions_and_values_from_sources():
    mapping = Mapping.from_toml_text(GOOD)
    n = 10
    sources = {"z_img": np.zeros((n, 3)), "z_aud": np.tile([0.0, 2.5], (n, 1)), "descriptors": np.ones((n, 9))}
    positions = mapping.positions(sources, control_rate_hz=100.0)
    values = mapping.values(positions)
    np.testing.assert_allclose(positions["pitch"], 1.0)
    np.testing.assert_allclose(values["cutoff_hz"], 10000.0)


def test_smoothing_time_constant():
    rate = 1000.0
    step = np.r_[np.zeros(10), np.ones(500)]
    smoothed = smooth_positions(step, smoothing_s=0.1, control_rate_hz=rate)
    assert smoothed[:10] == pytest.approx(0.0)
    assert smoothed[10 + 100] == pytest.approx(1 - math.exp(-101 / 100), abs=1e-9)
    np.testing.assert_array_equal(smooth_positions(step, smoothing_s=0.0, control_rate_hz=rate), step)
    first = smooth_positions(step[:200], smoothing_s=0.1, control_rate_hz=rate)
    second = smooth_positions(step[200:], smoothing_s=0.1, control_rate_hz=rate, initial=first[-1])
    np.testing.assert_allclose(np.r_[first, second], smoothed)  # block by block (live) = whole signal (offline)


def test_shipped_default_mapping_loads_with_midi():
    assert default_mapping_path().is_file()
    mapping = load_mapping()
    assert "pitch" in mapping.names and mapping.midi["note"] == "pitch"


def test_missing_mapping_file_is_named(tmp_path):
    with pytest.raises(ParameterError, match="nope.toml"):
        load_mapping(tmp_path / "nope.toml")


@pytest.mark.parametrize("curve, low, high", [("lin", 0.6, 0.05), ("log", 110.0, 880.0), ("exp", 0.0, 1.0), ("lin", -1.0, 1.0)])
def test_position_of_value_inverts_value_at(curve, low, high):
    parameter = Parameter(name="p", source="z_img[0]", low=low, high=high, curve=curve)
    for position in np.linspace(0, 1, 11):
        assert parameter.position_of_value(float(parameter.value_at(position))) == pytest.approx(position, abs=1e-9)
    assert parameter.position_of_value(max(low, high) * 10 + 1) in (0.0, 1.0)


@pytest.mark.parametrize("curve, low, high", [("lin", 0.6, 0.05), ("log", 110.0, 880.0), ("exp", 0.0, 8.0)])
def test_one_curve_for_floats_and_arrays(curve, low, high):
    parameter = Parameter(name="p", source="z_img[0]", low=low, high=high, curve=curve)
    positions = (-0.5, 0.0, 0.3, 0.77, 1.0, 2.0)
    as_array = parameter.value_at(np.array(positions))
    for index, position in enumerate(positions):
        value = parameter.value_at(position)
        assert type(value) is float and value == pytest.approx(as_array[index], rel=1e-12)
        assert parameter.position_of_value(value) == pytest.approx(min(max(position, 0.0), 1.0), abs=1e-9)


def test_learnt_bindings_are_written_into_the_midi_table_and_nothing_else_changes(tmp_path):
    from bridge.control.mapping import default_mapping_path, write_cc_in
    from bridge.control.midi_spec import MidiSpec

    new = tmp_path / "new.toml"  # a missing file starts as the shipped mapping
    write_cc_in(new, {21: "cutoff_hz"})
    shipped = default_mapping_path().read_text(encoding="utf-8")
    assert new.read_text(encoding="utf-8").replace('cc_in = { 21 = "cutoff_hz" }\n', "") == shipped
    write_cc_in(new, {7: "pan", 21: "pitch"})  # replaced in place, not added twice
    text = new.read_text(encoding="utf-8")
    assert text.count("cc_in") == 1 and MidiSpec.from_mapping(load_mapping(new)).cc_in == {7: "pan", 21: "pitch"}

    bare = tmp_path / "bare.toml"  # no [midi] table: one is added at the end
    bare.write_text('# mine\n[parameters.pan]\nsource = "hue"\nrange = [-1.0, 1.0]\n', encoding="utf-8")
    write_cc_in(bare, {10: "pan"})
    assert bare.read_text(encoding="utf-8").startswith("# mine\n")
    assert MidiSpec.from_mapping(load_mapping(bare)).cc_in == {10: "pan"}

    table = tmp_path / "table.toml"
    table.write_text(bare.read_text(encoding="utf-8").replace('cc_in = { 10 = "pan" }', '[midi.cc_in]\n10 = "pan"'))
    with pytest.raises(ParameterError, match=r"\[midi.cc_in\] table"):
        write_cc_in(table, {11: "pan"})
    with pytest.raises(ParameterError, match="not a parameter"):
        write_cc_in(bare, {11: "volume"})
    assert MidiSpec.from_mapping(load_mapping(bare)).cc_in == {10: "pan"}  # a refused write changes nothing
