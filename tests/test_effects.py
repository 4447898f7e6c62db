"""Tests for synth.effects: the spec grammar, measurable effects, and block-wise = whole-signal streaming."""

import numpy as np
import pedalboard
import pytest

from models.errors import ParameterError
from synth.effects import EFFECT_PARAMETERS, EffectChain, build_effects
from synth.limiter import TruePeakLimiter

SAMPLE_RATE = 22050


def _noise(n_channels: int, n_samples: int = 8192) -> np.ndarray:
    return (0.3 * np.random.default_rng(n_channels).standard_normal((n_channels, n_samples))).astype(np.float32)


def _stream(chain: EffectChain, audio: np.ndarray, block_sizes) -> np.ndarray:
    blocks, start = [], 0
    for size in block_sizes:
        blocks.append(chain.process(audio[:, start : start + size], sample_rate=SAMPLE_RATE))
        start += size
    return np.concatenate(blocks, axis=1)


def test_spec_builds_plugins_in_order_with_their_values():
    board = build_effects("delay:delay_seconds=0.25,mix=0.3;gain:gain_db=-6")
    assert [type(plugin) for plugin in board] == [pedalboard.Delay, pedalboard.Gain]
    assert board[0].delay_seconds == pytest.approx(0.25) and board[0].mix == pytest.approx(0.3)
    assert board[1].gain_db == pytest.approx(-6.0)


def test_spec_ignores_whitespace_and_case_and_parses_booleans():
    board = build_effects("  Reverb : Room_Size = 0.9 , freeze_mode=ON ;\n limiter ")
    assert [type(plugin) for plugin in board] == [pedalboard.Reverb, TruePeakLimiter]
    assert board[0].room_size == pytest.approx(0.9) and board[0].freeze_mode == 1.0
    assert build_effects("reverb:freeze_mode=false")[0].freeze_mode == 0.0


def test_every_listed_effect_and_parameter_is_settable():
    for name, parameters in EFFECT_PARAMETERS.items():
        board = build_effects(name)
        assert len(board) == 1
        for parameter in parameters:
            current = getattr(board[0], parameter)
            rebuilt = build_effects(f"{name}:{parameter}={current}")
            assert getattr(rebuilt[0], parameter) == pytest.approx(current)


@pytest.mark.parametrize("spec", ["", "   ", "\n"])
def test_empty_spec_is_identity(spec):
    chain = EffectChain(spec)
    audio = _noise(2)
    assert chain.is_identity
    out = chain.process(audio, sample_rate=SAMPLE_RATE)
    np.testing.assert_array_equal(out, audio)
    assert out is not audio


@pytest.mark.parametrize("name", sorted(EFFECT_PARAMETERS))
@pytest.mark.parametrize("n_channels", [1, 2])
def test_blocks_of_256_equal_whole_signal(name, n_channels):
    spec = {
        "compressor": "compressor:threshold_db=-30,ratio=8",
        "delay": "delay:delay_seconds=0.02,feedback=0.5",
        "noisegate": "noisegate:threshold_db=-12",
    }.get(name, name)
    audio = _noise(n_channels)
    whole = EffectChain(spec).process(audio, sample_rate=SAMPLE_RATE)
    streamed = _stream(EffectChain(spec), audio, [256] * (audio.shape[1] // 256))
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


@pytest.mark.parametrize(
    ("n_channels", "block_sizes"),
    [
        # Blocks that grow past every earlier one: pedalboard on its own would clear the state there.
        (2, [3, 253, 256, 1000, 3, 7485]),
        (2, [512, 4096, 4096, 296]),
        (1, [1, 1, 5, 100, 8192, 701]),
    ],
)
def test_irregular_blocks_through_a_long_chain_equal_whole_signal(n_channels, block_sizes):
    spec = "highpass:cutoff_frequency_hz=80; compressor; chorus; delay:delay_seconds=0.01,feedback=0.4; reverb:room_size=0.7; limiter"
    audio = _noise(n_channels, sum(block_sizes))
    whole = EffectChain(spec).process(audio, sample_rate=SAMPLE_RATE)
    streamed = _stream(EffectChain(spec), audio, block_sizes)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)
    assert not np.allclose(whole, audio[:, : whole.shape[1]], atol=1e-3)


def test_reset_argument_starts_a_new_signal():
    chain = EffectChain("reverb:room_size=0.9")
    audio = _noise(1, 4096)
    first = chain.process(audio, sample_rate=SAMPLE_RATE, reset=True)
    again = chain.process(audio, sample_rate=SAMPLE_RATE, reset=True)
    continued = chain.process(audio, sample_rate=SAMPLE_RATE)
    np.testing.assert_array_equal(again, first)
    assert not np.allclose(continued, first, atol=1e-4)  # the first pass's tail is still ringing


def test_gain_and_filters_have_their_measured_effect():
    tone_hz = np.array([100.0, 5000.0])
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tones = np.sin(2 * np.pi * tone_hz[:, None] * t).astype(np.float32)

    def rms_db(audio: np.ndarray) -> np.ndarray:
        return 10 * np.log10(np.mean(audio[:, SAMPLE_RATE // 2 :].astype(np.float64) ** 2, axis=1))

    gained = EffectChain("gain:gain_db=-6").process(tones, sample_rate=SAMPLE_RATE)
    np.testing.assert_allclose(rms_db(gained) - rms_db(tones), -6.0, atol=0.01)
    # Each 2-row call treats the rows as two channels of one signal: that is what (channels, n) means.
    lowpassed = EffectChain("lowpass:cutoff_frequency_hz=1000").process(tones, sample_rate=SAMPLE_RATE)
    low_change_db, high_change_db = rms_db(lowpassed) - rms_db(tones)
    assert abs(low_change_db) < 0.1 and high_change_db < -12.0


def test_empty_first_block_does_not_break_streaming():
    audio = _noise(1, 5000)
    chain = EffectChain("delay:delay_seconds=0.05,feedback=0.5")
    assert chain.process(audio[:, :0], sample_rate=SAMPLE_RATE).shape == (1, 0)
    streamed = _stream(chain, audio, [500, 4500])
    np.testing.assert_allclose(streamed, EffectChain("delay:delay_seconds=0.05,feedback=0.5").process(audio, sample_rate=SAMPLE_RATE), atol=1e-6)


def test_one_dimensional_block_stays_one_dimensional():
    out = EffectChain("gain:gain_db=0").process(np.zeros(300), sample_rate=SAMPLE_RATE)
    assert out.shape == (300,) and out.dtype == np.float32


def test_reset_clears_the_tail():
    impulse = np.zeros((1, 512), dtype=np.float32)
    impulse[0, 0] = 1.0
    silence = np.zeros((1, 4096), dtype=np.float32)
    chain = EffectChain("delay:delay_seconds=0.05,feedback=0.5,mix=0.5")
    chain.process(impulse, sample_rate=SAMPLE_RATE)
    assert np.abs(chain.process(silence, sample_rate=SAMPLE_RATE)).max() > 0.1  # the echo arrives later
    chain.reset()
    assert np.abs(chain.process(silence, sample_rate=SAMPLE_RATE)).max() == 0.0


def test_changing_sample_rate_mid_stream_needs_a_reset():
    chain = EffectChain("reverb")
    chain.process(_noise(1, 512), sample_rate=SAMPLE_RATE)
    with pytest.raises(ParameterError, match="reset"):
        chain.process(_noise(1, 512), sample_rate=44100)
    with pytest.raises(ParameterError, match="channels=2"):
        chain.process(_noise(2, 512), sample_rate=SAMPLE_RATE)
    assert chain.process(_noise(2, 512), sample_rate=44100, reset=True).shape == (2, 512)


def test_unknown_effect_names_it_and_lists_accepted_effects():
    with pytest.raises(ParameterError, match="'flanger'") as caught:
        build_effects("reverb; flanger:rate_hz=2")
    assert all(name in str(caught.value) for name in EFFECT_PARAMETERS)


def test_unknown_parameter_names_it_and_lists_accepted_parameters():
    with pytest.raises(ParameterError, match="'size'") as caught:
        build_effects("reverb:size=0.7")
    assert all(parameter in str(caught.value) for parameter in EFFECT_PARAMETERS["reverb"])


@pytest.mark.parametrize(
    "spec",
    [
        "gain:gain_db=loud",
        "gain:gain_db=nan",
        "gain:gain_db=inf",
        "gain:gain_db",
        "gain:=3",
        "gain:gain_db=1,gain_db=2",
        "reverb:room_size=2",
        "delay:delay_seconds=-1",
        "compressor:ratio=0.5",
        "lowpass:cutoff_frequency_hz=-100",
        "reverb;;limiter",
        "reverb;",
        "invert:gain_db=1",
    ],
)
def test_malformed_specs_raise_parameter_error(spec):
    with pytest.raises(ParameterError):
        EffectChain(spec)


@pytest.mark.parametrize(
    ("audio", "sample_rate"),
    [
        (np.zeros(100, dtype=np.int16), SAMPLE_RATE),
        (np.zeros((1, 1, 100), dtype=np.float32), SAMPLE_RATE),
        (np.array([0.0, np.nan, 0.0], dtype=np.float32), SAMPLE_RATE),
        (np.zeros((2, 1), dtype=np.float32), SAMPLE_RATE),
        (np.zeros((2, 2), dtype=np.float32), SAMPLE_RATE),
        (np.zeros(100, dtype=np.float32), 0),
        (np.zeros(100, dtype=np.float32), 22050.0),
    ],
)
def test_bad_blocks_raise_parameter_error(audio, sample_rate):
    with pytest.raises(ParameterError):
        EffectChain("reverb").process(audio, sample_rate=sample_rate)
