"""Spoken digits from espeak-ng: voices, the held-out split, the cache and the 1-second windows."""

import shutil

import numpy as np
import pytest

from training.spoken_digits import (
    SPEECH_SPECTRAL,
    TRAIN_PITCHES,
    TRAIN_SPEEDS_WPM,
    WINDOW_FRAMES,
    SpokenClip,
    _speak,
    clips_to_windows,
    espeak_voices,
    place_in_window,
    read_clip,
    split_voices,
    spoken_digit_clips,
)

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@needs_espeak
def test_voices_split_into_disjoint_fixed_sets():
    voices = espeak_voices()
    assert len(voices) >= 90  # Debian's espeak-ng ships 101 variants
    train, test = split_voices(voices)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(voices)
    assert split_voices(voices) == (train, test)
    assert 0.15 < len(test) / len(voices) < 0.25


@needs_espeak
def test_voices_speak_the_word_differently(tmp_path):
    clips = [SpokenClip(digit=7, voice=voice, speed_wpm=160, pitch=50, path=tmp_path / f"{voice}.wav")
             for voice in ("adam", "f2")]
    audio = []
    for clip in clips:
        _speak(clip)
        audio.append(read_clip(clip, sample_rate=16000))
    assert 0.3 < len(audio[0]) / 16000 < 1.5
    assert len(audio[0]) != len(audio[1]) or not np.allclose(audio[0], audio[1])


@needs_espeak
def test_held_out_clips_are_new_voices_and_speed_pitch_pairs(tmp_path):
    test = spoken_digit_clips("test", clips_per_digit=1, cache_dir=tmp_path)
    assert {c.voice for c in test} == set(split_voices(espeak_voices())[1])
    assert not any(c.speed_wpm in TRAIN_SPEEDS_WPM and c.pitch in TRAIN_PITCHES for c in test)
    assert sorted({c.digit for c in test}) == list(range(10))
    mtime = test[0].path.stat().st_mtime_ns
    spoken_digit_clips("test", clips_per_digit=1, cache_dir=tmp_path)  # cached: not spoken again
    assert test[0].path.stat().st_mtime_ns == mtime
    mels, labels = clips_to_windows(test[:20], config=SPEECH_SPECTRAL, seed=None)
    assert mels.shape == (20, SPEECH_SPECTRAL.n_mels, WINDOW_FRAMES)
    assert labels.tolist() == [c.digit for c in test[:20]]
    assert float(mels.max()) > 0.5  # speech, not silence


def test_a_word_is_centred_or_placed_inside_one_second():
    rate = 16000
    audio = np.zeros(rate // 2, dtype=np.float32)
    audio[1000:3000] = 0.5  # the "word": 2000 samples
    centred = place_in_window(audio, sample_rate=rate, rng=None)
    loud = np.flatnonzero(centred)
    assert len(centred) == rate and len(loud) == 2000
    assert abs((loud[0] + loud[-1]) / 2 - rate / 2) <= 1
    placed = place_in_window(audio, sample_rate=rate, rng=np.random.default_rng(0))
    assert len(np.flatnonzero(placed)) == 2000
