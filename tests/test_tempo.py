"""Musical time: beats, bars, landing on them, time signatures refused by name."""

import pytest

from bridge.control.tempo import Tempo, parse_time_signature
from models.errors import ParameterError


def test_beats_and_bars_of_common_signatures():
    assert Tempo(bpm=120.0).seconds_per_beat == 0.5 and Tempo(bpm=120.0).seconds_per_bar == 2.0
    waltz = Tempo(bpm=90.0, numerator=3, denominator=4)
    assert waltz.time_signature == "3/4" and waltz.seconds_per_bar == pytest.approx(2.0)
    assert Tempo(bpm=120.0).microseconds_per_quarter == 500_000
    # in 6/8 the beat is an eighth; MIDI's tempo and ticks count quarters, so the bars match the audio
    six_eight = Tempo(bpm=120.0, numerator=6, denominator=8)
    assert six_eight.microseconds_per_quarter == 1_000_000 and six_eight.seconds_to_ticks(3.0, ticks_per_beat=480) == 1440
    assert Tempo(bpm=120.0).beat_times(duration_s=1.2).tolist() == [0.0, 0.5, 1.0]
    assert Tempo(bpm=120.0).seconds_to_ticks(1.0, ticks_per_beat=480) == 960
    assert parse_time_signature(" 6 / 8 ") == (6, 8)


def test_next_time_lands_on_the_grid_and_keeps_a_time_already_on_it():
    tempo = Tempo(bpm=120.0)
    assert tempo.next_time(0.0) == 0.0 and tempo.next_time(1.0) == 1.0 and tempo.next_time(1.0000001) == 1.5
    assert tempo.next_time(0.9, grid="bar") == 2.0 and tempo.next_time(2.0, grid="bar") == 2.0
    assert tempo.beats_for(1.3) == 3 and tempo.beats_for(0.1) == 1


@pytest.mark.parametrize("text", ["4", "4/3", "0/4", "33/4", "x/4", "4/4/4", "", None])
def test_bad_time_signatures_are_named(text):
    with pytest.raises(ParameterError, match="time signature"):
        parse_time_signature(text)


@pytest.mark.parametrize("kwargs, match", [({"bpm": 0}, "tempo"), ({"bpm": 500.0}, "tempo"), ({"bpm": float("nan")}, "tempo"),
                                           ({"bpm": True}, "tempo"), ({"numerator": 0}, "numerator"),
                                           ({"denominator": 3}, "denominator")])
def test_bad_tempi_are_named(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Tempo(**kwargs)
    with pytest.raises(ParameterError, match="grid"):
        Tempo().next_time(1.0, grid="bars")
