"""Musical time: beats, bars, landing on them, time signatures refused by name."""

import pytest

from bridge.control.tempo import Tempo, parse_time_signature
from models.errors import ParameterError


def test_beats_and_bars_of_common_signatures():
    assert Tempo(bpm=120.0).seconds_per_beat == 0.5 and Tempo(bpm=120.0).seconds_per_bar == 2.0
    waltz = Tempo(bpm=90.0, time_signature="3/4")
    assert waltz.beats_per_bar == 3 and waltz.seconds_per_bar == pytest.approx(2.0)
    assert Tempo(bpm=120.0, time_signature="6/8").microseconds_per_quarter == 1_000_000  # an eighth is 0.5 s
    assert Tempo(bpm=120.0).microseconds_per_quarter == 500_000


def test_next_time_lands_on_the_grid_and_keeps_a_time_already_on_it():
    tempo = Tempo(bpm=120.0, time_signature="4/4")
    assert tempo.next_time(0.0) == 0.0 and tempo.next_time(1.0) == 1.0 and tempo.next_time(1.0000001) == 1.5
    assert tempo.next_time(0.3 * 3, grid="bar") == 2.0 and tempo.next_time(2.0, grid="bar") == 2.0
    assert tempo.round_to_beats(1.3) == 1.5 and tempo.round_to_beats(0.1) == 0.5 and tempo.beat_of(1.25) == 2.5


@pytest.mark.parametrize("text", ["4", "4/3", "0/4", "33/4", "x/4", "4/4/4", "", None])
def test_bad_time_signatures_are_named(text):
    with pytest.raises(ParameterError, match="time signature"):
        parse_time_signature(text)


@pytest.mark.parametrize("bpm", [0, 10.0, 500.0, float("nan"), True, "120"])
def test_bad_tempi_are_named(bpm):
    with pytest.raises(ParameterError, match="bpm"):
        Tempo(bpm=bpm)
    with pytest.raises(ParameterError, match="grid"):
        Tempo().next_time(1.0, grid="bars")
