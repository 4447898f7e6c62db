"""imgsonic imagine, train s2i and eval of a sound → image preset, end to end on tiny models in tmp_path."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from bridge import cli
from bridge.sonify.imagine import ImaginationVisualModels, imagine_file
from bridge.sonify.reverse import visualize_audio
from models.imagination import Imagination
from synth.audio_io import write_audio
from training.clips import MIN_CLIPS
from training.paired_data import PairedData
from training.train_s2i import S2I_SPECS, clips_spec, train_s2i


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A scenes-shaped preset trained for a few steps on random data: only the plumbing is under test."""
    out = tmp_path_factory.mktemp("imagine")
    generator = torch.Generator().manual_seed(0)
    n = 24
    data = PairedData(mels=torch.rand(n, 32, 32, generator=generator), sound_keys=torch.arange(n), sound_labels=None,
                      images=torch.rand(n, 1, 32, 32, generator=generator), image_keys=torch.arange(n),
                      pairing="instance", description="random")
    spec = S2I_SPECS["scenes"]
    spec = dataclasses.replace(spec, batch_size=8, encoder=dataclasses.replace(spec.encoder, base_width=4, code_dim=8),
                               generator=dataclasses.replace(spec.generator, base_width=16, growth=4, dense_layers=1),
                               object_reader_steps=2)
    train_s2i(spec, data, out=out, encoder_steps=2, gan_steps=2, progress=False, command="test")
    return out / "imagine" / "scenes.toml"


@pytest.fixture
def speech(tmp_path):
    rate = 22050
    t = np.arange(int(1.6 * rate)) / rate
    path = tmp_path / "speech.wav"
    write_audio(path, (0.3 * np.sin(2 * np.pi * 300 * t) * (t % 0.4 < 0.2)).astype(np.float32), sample_rate=rate)
    return path


def test_imagine_writes_a_sheet_a_gif_and_a_folder(preset, speech, tmp_path, capsys):
    sheet = tmp_path / "out.png"
    assert cli.main(["imagine", str(speech), "-o", str(sheet), "--preset", str(preset), "--samples", "3",
                     "--size", "32"]) == 0
    assert "3 windows × 3 samples" in capsys.readouterr().out  # 1.6 s: windows at 0, 0.5 and 0.6 s
    with Image.open(sheet) as picture:
        assert picture.size == (64 + 3 * 34 + 2, 3 * 34 + 2)
    gif = tmp_path / "out.gif"
    assert cli.main(["imagine", str(speech), "-o", str(gif), "--preset", str(preset), "--hop-s", "0.2"]) == 0
    with Image.open(gif) as animation:
        assert animation.n_frames == 4  # 0, 0.2, 0.4, 0.6 s
    folder = tmp_path / "frames"
    assert cli.main(["imagine", str(speech), "-o", str(folder), "--preset", str(preset), "--samples", "2"]) == 0
    assert sorted(p.name for p in folder.iterdir())[:2] == ["window_00000_sample_00.png", "window_00000_sample_01.png"]


def test_imagine_samples_differ_and_exact_does_not(preset, speech):
    imagination = Imagination.from_preset(str(preset))
    varied = imagine_file(speech, imagination=imagination, n_samples=2, seed=0)
    exact = imagine_file(speech, imagination=imagination, n_samples=2, variety=False)
    assert not np.allclose(varied.images[:, 0], varied.images[:, 1])
    assert np.array_equal(exact.images[:, 0], exact.images[:, 1])
    again = imagine_file(speech, imagination=imagination, n_samples=2, seed=0)
    assert np.array_equal(again.images, varied.images)


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "--samples: '0' is not a whole number of samples in 1 … 64"),
    (["--hop-s", "nan"], "--hop-s: 'nan' is not a number of seconds in 0.05 … 60"),
    (["--size", "4"], "--size: '4' is not a whole number of pixels in 8 … 2048"),
])
def test_bad_numbers_are_refused_at_parse_time(speech, tmp_path, capsys, argv, message):
    assert cli.main(["imagine", str(speech), "-o", str(tmp_path / "x.png"), *argv]) == 2
    assert message in capsys.readouterr().err


def test_bad_preset_and_output_are_one_line_errors(preset, speech, tmp_path, capsys):
    assert cli.main(["imagine", str(speech), "-o", str(tmp_path / "x.jpg"), "--preset", str(preset)]) == 2
    assert capsys.readouterr().err.startswith("imgsonic: error: output")
    assert cli.main(["imagine", str(speech), "-o", str(tmp_path / "x.png"), "--preset", "nope"]) == 2
    assert "unknown sound → image preset 'nope'" in capsys.readouterr().err


def test_live_visualizer_analyser_runs_the_preset(preset, speech):
    """The streaming analyser live uses, on the adapter: each frame is the centred window's exact image."""
    imagination = Imagination.from_preset(str(preset))
    from synth.audio_io import read_audio

    audio = read_audio(speech, sample_rate=16000)[0]
    frames = visualize_audio(audio, sample_rate=16000, models=ImaginationVisualModels(imagination), fps=2)
    assert len(frames) == 4  # ceil(1.6 s × 2)
    assert frames[0].image.shape == (1, 32, 32)
    assert frames[1].z_img.shape == (imagination.code_dim,)


def test_train_s2i_on_too_few_clips_is_a_one_line_error(tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    write_audio(clips / "a.wav", np.zeros(16000, dtype=np.float32), sample_rate=16000)
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(clips / "a.png")
    assert cli.main(["train", "s2i", "--clips", str(clips), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"at least {MIN_CLIPS} clips" in err


def test_train_s2i_on_clips_pairs_each_window_with_its_frame(tmp_path):
    from bridge.sources.images import load_images
    from training.paired_data import clip_data

    clips = tmp_path / "clips"
    clips.mkdir()
    rate = 16000
    for k in range(MIN_CLIPS):
        write_audio(clips / f"c{k}.flac", 0.1 * np.sin(np.arange(2 * rate) * (k + 1) * 0.05).astype(np.float32),
                    sample_rate=rate)
        frames = [Image.fromarray(np.full((8, 8, 3), 60 * j + k, dtype=np.uint8)) for j in range(2)]
        frames[0].save(clips / f"c{k}.gif", save_all=True, append_images=frames[1:], duration=1000)
    data = clip_data(clips, load_images=load_images)
    assert len(data.mels) == MIN_CLIPS * 3  # windows at 0, 0.5, 1.0 s of each 2 s clip
    # the window centred at 0.5 s shows frame 0, the one at 1.5 s frame 1 (1 s per GIF frame)
    first, last = data.images[0, 0].mean().item() * 255, data.images[2, 0].mean().item() * 255
    assert first == pytest.approx(0, abs=2) and last == pytest.approx(60, abs=2)
    spec = clips_spec("mine")
    assert spec.generator.channels == 3


def test_train_s2i_writes_a_preset_that_loads(tmp_path):
    generator = torch.Generator().manual_seed(1)
    data = PairedData(mels=torch.rand(20, 32, 32, generator=generator), sound_keys=torch.arange(20) % 10,
                      sound_labels=torch.arange(20) % 10, images=torch.rand(30, 1, 16, 16, generator=generator),
                      image_keys=torch.arange(30) % 10, pairing="class", description="random classes")
    records = train_s2i(S2I_SPECS["spoken-digits"], data, out=tmp_path, encoder_steps=2, gan_steps=2, progress=False,
                        command="test", stabiliser="moving-average")
    assert records["generator"]["stabiliser"] == "moving-average"
    imagination = Imagination.from_preset(str(tmp_path / "imagine" / "spoken-digits.toml"))
    assert imagination.image_size == 16 and imagination.audio_encoder.classifier is not None


def test_class_pairs_draw_images_of_the_class_and_mismatches_of_another():
    images = torch.arange(30, dtype=torch.float32)[:, None, None, None].expand(30, 1, 4, 4)
    data = PairedData(mels=torch.rand(40, 32, 32), sound_keys=torch.arange(40) % 10, sound_labels=None,
                      images=images, image_keys=torch.arange(30) % 10, pairing="class", description="classes")
    generator = torch.Generator().manual_seed(0)
    keys = data.sound_keys
    matched = data.images_for(keys, generator=generator)[:, 0, 0, 0].long() % 10
    wrong = data.images_for(keys, generator=generator, mismatched=True)[:, 0, 0, 0].long() % 10
    assert torch.equal(matched, keys)
    assert not (wrong == keys).any()
    assert len(set(data.images_for(keys, generator=generator)[:, 0, 0, 0].tolist())) > 10  # not one image per class


def test_eval_of_a_scenes_preset_reads_its_sounds_from_files(preset, tmp_path):
    from training.evaluate import format_table
    from training.evaluate_imagine import FILE_FORMATS, evaluate_imagine

    result = evaluate_imagine("scenes", out_dir=tmp_path, n=40, n_samples=2, preset_folder=preset.parent)
    written = sorted(path.suffix for path in (tmp_path / "sounds").iterdir())
    assert set(written) == {f".{extension}" for extension, _ in FILE_FORMATS}
    found = result["metrics"]
    assert found["ball_count_rho_real"] == pytest.approx(1.0)  # the pictures themselves: the ceiling
    assert "engine_size_rho" in found and "kinds_recovered" in result["targets"]
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "imagine.png").is_file()
    table = format_table(result)  # what `imgsonic eval --preset scenes` prints (it raised KeyError before)
    assert "kinds_recovered" in table and ("all targets met" in table or "some targets missed" in table)


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_shipped_spoken_digits_preset_draws_the_digit_a_held_out_voice_says(tmp_path):
    """Ten digits in a voice held out from training, at a speed and pitch off the training grid, written as flac at
    44.1 kHz: the shipped preset's images are classified (by its own image classifier) as the spoken digit."""
    from training.spoken_digits import SpokenClip, _speak, espeak_voices, read_clip, split_voices

    imagination = Imagination.from_preset("spoken-digits")
    voice = split_voices(espeak_voices())[1][0]
    correct = 0
    for digit in range(10):
        clip = SpokenClip(digit=digit, voice=voice, speed_wpm=170, pitch=88, path=tmp_path / f"{digit}.wav")
        _speak(clip)
        audio = read_clip(clip, sample_rate=44100)
        write_audio(tmp_path / f"{digit}.flac", 0.5 * audio / np.abs(audio).max(), sample_rate=44100)
        result = imagine_file(tmp_path / f"{digit}.flac", imagination=imagination, variety=False)
        assert result.images.shape[0] == 1  # a word shorter than a second: one window
        with torch.inference_mode():
            seen = imagination.image_classifier(torch.from_numpy(result.images[:, 0])).argmax(1)
        correct += int(seen[0] == digit)
    assert correct >= 8


def test_shipped_scenes_preset_draws_as_many_engines_and_drops_as_it_hears(tmp_path):
    """Held-out scenes (sizes from bands training never saw, levels down to -30 dB) written as 44.1 kHz FLAC files:
    the objects in the shipped preset's images follow the scene's count and size, kind by kind (measured 0.98 and
    0.79 on count, 0.88 and 0.85 on size)."""
    from training import metrics
    from training.av_scenes import make_scenes, measure_objects

    imagination = Imagination.from_preset("scenes")
    for kind, bound in (("engine", 0.85), ("rain", 0.6)):
        scenes = make_scenes(40, split="test", image_size=32, sample_rate=44100, seed=11, kinds=(kind,))
        images = []
        for index, audio in enumerate(scenes.audio):
            path = tmp_path / f"{kind}{index}.flac"
            write_audio(path, audio, sample_rate=44100)
            images.append(imagine_file(path, imagination=imagination, variety=False).images[0, 0])
        measured = measure_objects(np.stack(images))
        assert metrics.spearman(measured[:, 0], scenes.factors[:, 2].numpy()) > bound, kind
        assert metrics.spearman(measured[:, 1], scenes.factors[:, 1].numpy()) > 0.7, kind


def test_resuming_the_gan_equals_training_it_at_once(tmp_path):
    generator = torch.Generator().manual_seed(2)
    data = PairedData(mels=torch.rand(24, 32, 32, generator=generator), sound_keys=torch.arange(24), sound_labels=None,
                      images=torch.rand(24, 1, 32, 32, generator=generator), image_keys=torch.arange(24),
                      pairing="instance", description="random")
    spec = S2I_SPECS["scenes"]
    spec = dataclasses.replace(spec, batch_size=8, encoder=dataclasses.replace(spec.encoder, base_width=4, code_dim=8),
                               generator=dataclasses.replace(spec.generator, base_width=16, growth=4, dense_layers=1),
                               object_reader_steps=2, reader_refresh=2)  # a refresh before the resume and one after
    common = dict(encoder_steps=2, progress=False, command="test")
    train_s2i(spec, data, out=tmp_path / "a", gan_steps=2, **common)
    train_s2i(spec, data, out=tmp_path / "a", gan_steps=4, resume=True, **common)
    train_s2i(spec, data, out=tmp_path / "b", gan_steps=4, **common)
    resumed = Imagination.from_preset(str(tmp_path / "a" / "imagine" / "scenes.toml")).generator.state_dict()
    at_once = Imagination.from_preset(str(tmp_path / "b" / "imagine" / "scenes.toml")).generator.state_dict()
    assert all(torch.equal(resumed[name], at_once[name]) for name in at_once)


@pytest.mark.gpu
def test_train_s2i_runs_on_cuda(tmp_path):
    generator = torch.Generator().manual_seed(3)
    data = PairedData(mels=torch.rand(16, 32, 32, generator=generator), sound_keys=torch.arange(16), sound_labels=None,
                      images=torch.rand(16, 1, 32, 32, generator=generator), image_keys=torch.arange(16),
                      pairing="instance", description="random")
    records = train_s2i(S2I_SPECS["scenes"], data, out=tmp_path, device="cuda", encoder_steps=2, gan_steps=2,
                        progress=False, command="test")
    assert records["generator"]["n_windows"] == 16
    assert Imagination.from_preset(str(tmp_path / "imagine" / "scenes.toml")).generator.config.image_size == 32
