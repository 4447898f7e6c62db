"""Melodies out of imgsonic: MIDI files (checked by pretty_midi), the pyo melody voice, the live beat scheduler."""

import argparse

import numpy as np
import pytest

from bridge.control.phrases import PhraseScheduler
from bridge.io.melody_midi import phrases_to_midi, read_melody_midi, write_melody_midi
from bridge.cli.arguments import TEMPO_BPM as BPM
from bridge.cli.melody import scale_melody
from models.errors import ParameterError
from models.melody_vae import notes_to_tokens, tokens_to_notes

PITCH_LOW = 48


def phrase(notes):
    return notes_to_tokens(notes, n_steps=32, pitch_low=PITCH_LOW, n_pitches=37)


PHRASES = [
    phrase([(0, 4, 60), (4, 8, 62), (8, 12, 64), (12, 16, 65), (16, 24, 67), (28, 32, 72)]),
    phrase([(2, 6, 69), (6, 7, 71), (7, 8, 72), (8, 32, 67)]),
    phrase([(0, 32, 55)]),
]


def test_midi_piece_read_by_pretty_midi(tmp_path):
    pretty_midi = pytest.importorskip("pretty_midi", reason="pretty_midi (the test extra) checks the MIDI files")
    path = tmp_path / "piece.mid"
    write_melody_midi(path, PHRASES, pitch_low=PITCH_LOW, bpm=90, names=["a.png", "b.png", "c.png"])
    midi = pretty_midi.PrettyMIDI(str(path))
    times, tempi = midi.get_tempo_changes()
    assert list(times) == [0.0] and tempi[0] == pytest.approx(90, abs=1e-3)
    signature = midi.time_signature_changes
    assert len(signature) == 1 and (signature[0].numerator, signature[0].denominator) == (4, 4)
    # bars: 4 beats of 2/3 s at 90 bpm; phrase i starts on bar 2i
    assert midi.get_downbeats()[:6] == pytest.approx(np.arange(6) * 4 * 60 / 90)
    step_s = 60 / 90 / 4
    expected = [(32 * i + s, 32 * i + e, p) for i, row in enumerate(PHRASES) for s, e, p in tokens_to_notes(row, pitch_low=PITCH_LOW)]
    notes = sorted(midi.instruments[0].notes, key=lambda n: n.start)
    assert [(round(n.start / step_s), round(n.end / step_s), n.pitch) for n in notes] == expected
    assert all(abs(n.start / step_s - round(n.start / step_s)) < 1e-4 for n in notes)  # the tempo is whole µs
    assert midi.get_end_time() == pytest.approx(3 * 32 * step_s)
    import mido

    markers = [m.text for m in mido.MidiFile(path).tracks[0] if m.type == "marker"]
    assert markers == ["a.png", "b.png", "c.png"]


def test_midi_round_trip_and_bad_input(tmp_path):
    path = tmp_path / "piece.mid"
    write_melody_midi(path, PHRASES, pitch_low=PITCH_LOW, bpm=133)
    assert np.array_equal(read_melody_midi(path, n_steps=32, pitch_low=PITCH_LOW, n_pitches=37), np.array(PHRASES))
    with pytest.raises(ParameterError):
        phrases_to_midi([PHRASES[0][:31]], pitch_low=PITCH_LOW, bpm=120)
    with pytest.raises(ParameterError):
        phrases_to_midi(PHRASES, pitch_low=PITCH_LOW, bpm=1000)
    (tmp_path / "bad.mid").write_bytes(b"MThd nonsense")
    from models.errors import InputError

    with pytest.raises(InputError):
        read_melody_midi(tmp_path / "bad.mid", n_steps=32, pitch_low=PITCH_LOW, n_pitches=37)


@pytest.mark.parametrize("text", ["0", "-5", "nan", "inf", "401", "fast"])
def test_bpm_flag_is_checked_at_parse_time(text):
    with pytest.raises(argparse.ArgumentTypeError, match="20 … 400"):
        BPM(text)


def test_render_cli_refuses_a_bad_bpm_in_one_line(capsys):
    from bridge.cli import main

    assert main(["render", "x.png", "-o", "x.wav", "--melody", "x.mid", "--bpm", "0"]) == 2
    assert "20 … 400" in capsys.readouterr().err


def test_scale_melody_sets_its_peak_against_the_sound():
    melody = np.ones(1200, dtype=np.float32) * 0.1
    mixed = scale_melody(melody, n_samples=1000, audio_peak=0.5, replace=False, level_db=0.0)
    assert mixed.shape == (1000,) and np.abs(mixed).max() == pytest.approx(0.5)  # cut to the sound, equal peaks
    quieter = scale_melody(melody, n_samples=1000, audio_peak=0.5, replace=False, level_db=-6.0)
    assert np.abs(quieter).max() == pytest.approx(0.5 * 10 ** (-6 / 20))
    alone = scale_melody(melody[:300], n_samples=1000, audio_peak=0.5, replace=True, level_db=0.0)
    assert np.abs(alone).max() == pytest.approx(1.0) and not alone[300:].any()  # padded with silence


# ---- the pyo voice -----------------------------------------------------------------------------------------


def test_melody_voice_plays_each_note_on_its_sample_at_its_pitch():
    pytest.importorskip("pyo")
    from bridge.live.melody_voice import render_melody

    rate, bpm = 22050, 120
    audio = render_melody(PHRASES[:2], pitch_low=PITCH_LOW, bpm=bpm, sample_rate=rate, room=0.0)
    step = rate * 60 / bpm / 4
    assert audio.shape == (round((64 * 60 / bpm / 4 + 1.0) * rate),)
    for index, row in enumerate(PHRASES[:2]):
        for start, end, pitch in tokens_to_notes(row, pitch_low=PITCH_LOW):
            first = round((32 * index + start) * step)
            # silent (or releasing) just before an onset that follows a rest, sounding right after it
            note = audio[first : first + int((end - start) * step * 0.8)]
            spectrum = np.abs(np.fft.rfft(note * np.hanning(len(note))))
            peak_hz = (np.argmax(spectrum[5:]) + 5) * rate / len(note)
            assert abs(12 * np.log2(peak_hz / (440 * 2 ** ((pitch - 69) / 12)))) < 0.5
    rest = audio[round(24 * step) + 400 : round(28 * step)]  # steps 24–27 of phrase 0 are a rest
    assert np.sqrt(np.mean(rest**2)) < 0.05 * np.sqrt(np.mean(audio[: round(16 * step)] ** 2))
    onset = round(2 * step + 32 * step)  # phrase 1 starts with two silent steps
    assert np.abs(audio[onset - 200 : onset]).max() < 0.02 < np.abs(audio[onset : onset + 400]).max()
    again = render_melody(PHRASES[:2], pitch_low=PITCH_LOW, bpm=bpm, sample_rate=rate, room=0.0)
    assert np.array_equal(audio, again)


def test_transcription_of_the_rendered_melody():
    pytest.importorskip("pyo")
    from bridge.live.melody_voice import render_melody
    from training.melody_metrics import step_features, transcribe

    audio = render_melody(PHRASES, pitch_low=PITCH_LOW, bpm=100, sample_rate=22050)
    features = step_features(audio, sample_rate=22050, n_phrases=3, n_steps=32, step_s=60 / 100 / 4)
    assert np.array_equal(transcribe(features, pitch_low=PITCH_LOW, n_pitches=37), np.array(PHRASES))


# ---- the beat scheduler ----------------------------------------------------------------------------------------


def timed(scheduler, until_s, tick_s=0.001):
    """(time, type, note) of every message, polling every ``tick_s`` up to ``until_s``."""
    events = []
    for now in np.arange(0.0, until_s, tick_s):
        events += [(round(now, 3), m.type, m.note) for m in scheduler.due(float(now))]
    return events


def test_scheduler_plays_on_the_sixteenths_and_repeats_the_last_phrase():
    scheduler = PhraseScheduler(bpm=120, n_steps=32, pitch_low=PITCH_LOW, start_s=0.0)
    scheduler.queue(PHRASES[0])
    events = timed(scheduler, 8.0)
    ons = [(t, n) for t, kind, n in events if kind == "note_on"]
    expected = [(round(0.125 * (32 * k + s), 3), p) for k in (0, 1) for s, _, p in tokens_to_notes(PHRASES[0], pitch_low=PITCH_LOW)]
    assert ons == expected  # the phrase repeats on bar 3 with nothing queued
    offs = [(t, n) for t, kind, n in events if kind == "note_off"]
    assert (3.0, 67) in offs and (4.0, 72) in offs  # the rest at step 24; the phrase's end
    sounding = 0
    for _, kind, _ in events:  # never two notes at once
        sounding += 1 if kind == "note_on" else -1
        assert sounding in (0, 1)


def test_scheduler_starts_a_queued_phrase_on_the_next_boundary_and_follows_the_tempo():
    scheduler = PhraseScheduler(bpm=120, n_steps=32, pitch_low=PITCH_LOW, start_s=0.0)
    scheduler.queue(PHRASES[0])
    scheduler.due(1.0)
    scheduler.queue(PHRASES[2])  # mid-phrase: waits for the boundary at 4 s
    assert scheduler.next_boundary_s(1.0) == pytest.approx(4.0)
    assert [m.note for m in scheduler.due(3.99) if m.type == "note_on"] == [65, 67, 72]
    assert [(m.type, m.note) for m in scheduler.due(4.0)] == [("note_off", 72), ("note_on", 55)]
    scheduler.set_bpm(60, now_s=5.0)  # step 40 at 5 s; from then a 16th lasts 0.25 s
    assert scheduler.next_boundary_s(5.0) == pytest.approx(5.0 + 24 * 0.25)
    with pytest.raises(ParameterError):
        scheduler.queue(PHRASES[0][:16])


def test_a_live_melody_voice_follows_the_image_phrase_by_phrase():
    pyo = pytest.importorskip("pyo")
    import torch

    from bridge.live.melody_voice import MelodyVoice

    class Voice:  # what follow() reads of a NeuralVoice
        class controls:
            z_img = np.zeros(2)

    class Melodies:  # latent → a phrase of one note whose pitch is 60 + 10·z[0]
        def latents_to_tokens(self, z):
            return torch.tensor([phrase([(0, 32, 60 + int(10 * z[0, 0]))])])

    server = pyo.Server(sr=8000, nchnls=1, buffersize=64, audio="manual").boot()
    server.start()
    try:
        voice = MelodyVoice(n_phrases=2, n_steps=32, pitch_low=PITCH_LOW, bpm=240)  # a phrase lasts 2 s
        voice.follow(Voice, Melodies())
        table = pyo.DataTable(size=8000 * 6)
        recorder = pyo.TableRec(voice, table).play()
        for second in range(6):
            Voice.controls.z_img = np.array([float(second // 2), 0.0])  # the image changes every 2 s
            for _ in range(8000 // 64):
                server.process()
            import time

            time.sleep(0.05)  # the next phrase is decoded in a thread
        del recorder
        audio = np.asarray(table.getBuffer()).copy()
        voice.close()
        del voice, table
    finally:
        server.stop()
        server.shutdown()
    heard = []
    for start_s in (0.5, 2.5, 4.5):
        block = audio[int(start_s * 8000) : int(start_s * 8000) + 4000]
        spectrum = np.abs(np.fft.rfft(block * np.hanning(len(block))))
        heard.append(round(69 + 12 * np.log2((np.argmax(spectrum[5:]) + 5) * 8000 / len(block) / 440)))
    # each phrase plays the image that was there when the phrase before it started
    assert heard == [60, 60, 70]


def test_the_midi_player_queues_the_image_playing_at_each_boundary():
    import mido
    import torch

    from bridge.live.melody_midi import MelodyMidiPlayer

    class Voice:
        class controls:
            z_img = np.zeros(1)

    class Melodies:
        n_steps, pitch_low = 32, PITCH_LOW

        def latents_to_tokens(self, z):
            return torch.tensor([phrase([(0, 8, 60 + int(z[0, 0]))])])

    now = [0.0]
    port = mido.ports.EchoPort()
    player = MelodyMidiPlayer(port, voice=Voice, melody_models=Melodies(), bpm=120, clock=lambda: now[0])
    ons = []
    for tick in range(int(12.2 / 0.005)):
        now[0] = tick * 0.005
        Voice.controls.z_img = np.array([float(int((now[0] + 1) // 4) * 2)])  # 60, 62, 64, … from 3 s, 7 s, …
        player.tick()
        ons += [(round(now[0], 2), m.note) for m in port.iter_pending() if m.type == "note_on"]
    # phrase k starts at 0.05 + 4k s (the player starts 50 ms ahead) and plays the image there 100 ms before
    assert ons == [(0.05, 60), (4.05, 62), (8.05, 64), (12.05, 66)]
    player.stop()
    assert [(m.type, m.note) for m in port.iter_pending()] == [("note_off", 66)]  # the note sounding at 12.2 s


# ---- imgsonic render --melody, on the shipped digits-melody preset -----------------------------------------------


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """Three held-out digits as 64 px PNG files, and their pixels."""
    from PIL import Image
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    for index in range(3):
        pixels = np.kron(digits.images[1700 + index] / 16.0, np.ones((8, 8)))
        Image.fromarray((pixels * 255).astype(np.uint8), mode="L").save(folder / f"digit_{index}.png")
    return folder


def test_render_melody_writes_a_piece_one_phrase_per_image(digit_files, tmp_path, capsys):
    pretty_midi = pytest.importorskip("pretty_midi", reason="pretty_midi (the test extra) checks the MIDI files")
    import torch

    from bridge.cli import main
    from bridge.sources.images import expand_inputs, load_images
    from models.melody_pipeline import MelodyModels
    from models.preprocess import prepare_image
    from synth.audio_io import read_audio_info

    wav, mid = tmp_path / "piece.wav", tmp_path / "piece.mid"
    code = main(["render", str(digit_files), "-o", str(wav), "--preset", "digits-melody", "--melody", str(mid),
                 "--bpm", "240", "--vocoder", "pghi", "--sr", "22050"])
    assert code == 0, capsys.readouterr().err
    info = read_audio_info(wav)
    assert info.duration_s == pytest.approx(3 * 2.0, abs=1e-3)  # 32 16ths at 240 bpm = 2 s per image
    midi = pretty_midi.PrettyMIDI(str(mid))
    assert midi.get_tempo_changes()[1][0] == pytest.approx(240)
    assert midi.get_end_time() == pytest.approx(6.0)
    # the file holds exactly the melodies the model gives for the files' pixels
    melody = MelodyModels.from_preset("digits-melody")
    items = load_images(expand_inputs([digit_files]))
    images = torch.stack([prepare_image(item.pixels, size=16, channels=1) for item in items])
    with torch.inference_mode():
        expected = melody.images_to_tokens(images).numpy()
    assert np.array_equal(read_melody_midi(mid, n_steps=32, pitch_low=PITCH_LOW, n_pitches=37), expected)
    # --melody-audio replace: the WAV is the melody of those phrases (peak-levelled with --loudness raw, ends
    # faded), streamed as rendered
    from bridge.live.melody_voice import render_melody
    from synth.audio_io import read_audio

    assert main(["render", str(digit_files), "-o", str(wav), "--preset", "digits-melody", "--melody", str(mid),
                 "--bpm", "240", "--vocoder", "pghi", "--sr", "22050", "--melody-audio", "replace",
                 "--loudness", "raw"]) == 0
    played = read_audio(wav, sample_rate=None)[0]
    alone = render_melody(expected, pitch_low=PITCH_LOW, bpm=240, sample_rate=22050)[: len(played)]
    middle = slice(2000, len(played) - 4000)  # away from the fades
    assert np.corrcoef(played[middle], alone[middle])[0, 1] > 0.999
    assert np.abs(played).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    # a --seconds-per-image that is not one phrase is refused in one line
    assert main(["render", str(digit_files), "-o", str(wav), "--preset", "digits-melody", "--melody", str(mid),
                 "--seconds-per-image", "1"]) == 2
    assert "one phrase" in capsys.readouterr().err


def test_the_melody_voice_has_no_dc():
    pytest.importorskip("pyo")
    from bridge.live.melody_voice import render_melody

    audio = render_melody(PHRASES, pitch_low=PITCH_LOW, bpm=120, sample_rate=22050)
    assert abs(audio.mean()) < 0.01 * np.abs(audio).max()
