"""``imgsonic visualize`` and the streaming analyser, on the shipped squares-sines preset (small and quick)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import bridge.io.frames as frames_module
import bridge.sonify.reverse as reverse_module
from bridge.cli import main
from bridge.cli.visualize import visualize_file
from bridge.control.levels import LoudnessSettings
from bridge.sonify.bundle import ModelBundle
from bridge.sonify.render import RenderSettings, render_items
from bridge.sonify.reverse import StreamingVisualizer, image_to_pixels, visualize_audio
from bridge.sources.images import ImageItem
from models.errors import InputError, ParameterError
from models.pipeline import SonificationModels
from models.registry import load_preset
from synth.audio_io import write_audio
from synth.sources import SineParams, midi_to_hz, render_sines
from synth.spectral import SpectralConfig, audio_to_mel
from training import metrics
from training.datasets import make_squares
from training.evaluate import REVERSE_IMAGE_PX

SAMPLE_RATE = 44100
PRESET = "squares-sines"


@pytest.fixture(scope="module")
def models():
    return SonificationModels.from_preset(PRESET)


def _tone(seconds, *, f_hz=440.0, amplitude=0.3, sample_rate=SAMPLE_RATE):
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * f_hz * t)).astype(np.float32)


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "tone.wav"
    write_audio(path, np.stack([_tone(1.05), _tone(1.05, f_hz=660.0)]), sample_rate=SAMPLE_RATE)  # stereo
    return path


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# ---- output formats -----------------------------------------------------------------------------------------


def test_png_sheet_has_one_labelled_row_per_columns_frames(models, wav, tmp_path):
    out = tmp_path / "sheet.png"
    result = visualize_file(wav, out_path=out, models=models, fps=10, size_px=32, columns=4)
    assert len(result.times_s) == math.ceil(1.05 * 10) == 11
    np.testing.assert_allclose(result.times_s, np.arange(11) / 10)
    with Image.open(out) as sheet:
        gap, label = frames_module._SHEET_GAP_PX, frames_module._SHEET_LABEL_WIDTH_PX
        assert sheet.size == (label + 4 * (32 + gap) + gap, 3 * (32 + gap) + gap)  # 11 frames in rows of 4
        assert sheet.mode == "L"  # the squares model is grey
    assert _leftovers(tmp_path) == []


def test_gif_has_one_frame_per_tick_at_the_frame_rate(models, wav, tmp_path):
    out = tmp_path / "anim.gif"
    visualize_file(wav, out_path=out, models=models, fps=5, size_px=24)
    with Image.open(out) as gif:
        assert gif.size == (24, 24)
        # Pillow stores identical consecutive frames once, with their durations added (a steady tone can give
        # identical frames): the animation still lasts one tick per frame
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert sum(durations) == math.ceil(1.05 * 5) * 200 == 1200
        assert all(duration % 200 == 0 for duration in durations)


def test_folder_of_numbered_frames(models, wav, tmp_path):
    out = tmp_path / "frames"
    result = visualize_file(wav, out_path=out, models=models, fps=4, size_px=40)
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:05d}.png" for i in range(5)] == [f"frame_{i:05d}.png" for i in range(len(result.times_s))]
    with Image.open(out / names[0]) as frame:
        assert frame.size == (40, 40)
    assert _leftovers(tmp_path) == []
    (tmp_path / "empty").mkdir()  # an existing empty folder is fine too
    visualize_file(wav, out_path=tmp_path / "empty", models=models, fps=2)
    assert len(list((tmp_path / "empty").iterdir())) == 3


@pytest.mark.parametrize("name, message", [
    ("out.jpg", "ends in '.jpg'"),
    ("missing/out.png", "does not exist"),
    ("missing/frames", "does not exist"),
])
def test_bad_output_paths_are_refused_before_any_work(models, wav, tmp_path, name, message):
    with pytest.raises(ParameterError, match=message):
        visualize_file(wav, out_path=tmp_path / name, models=models)


def test_existing_outputs_that_cannot_be_replaced(models, wav, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(ParameterError, match="not empty"):
        visualize_file(wav, out_path=full, models=models)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ParameterError, match="is a folder"):
        visualize_file(wav, out_path=tmp_path / "dir.png", models=models)
    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(ParameterError, match="not a folder"):
        visualize_file(wav, out_path=tmp_path / "plainfile", models=models)


def test_too_many_frames_for_a_sheet_says_which_fps_fits(models, wav, tmp_path, monkeypatch):
    monkeypatch.setattr(frames_module, "MAX_SHEET_FRAMES", 5)
    with pytest.raises(ParameterError, match="at most 5: use --fps 4.7"):
        visualize_file(wav, out_path=tmp_path / "x.png", models=models, fps=10)
    assert not (tmp_path / "x.png").exists()


def test_failed_analysis_leaves_no_output(models, wav, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(reverse_module, "image_to_pixels", broken)
    for name in ("x.png", "frames"):
        with pytest.raises(RuntimeError):
            visualize_file(wav, out_path=tmp_path / name, models=models)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tone.wav"]


# ---- bad input files -----------------------------------------------------------------------------------------


def _nan_wav(path):
    audio = _tone(0.5)
    audio[100] = np.nan
    from pedalboard.io import AudioFile

    with AudioFile(str(path), "w", samplerate=SAMPLE_RATE, num_channels=1, bit_depth=32) as writer:
        writer.write(audio[None])


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_text("not audio at all"), "cannot read"),
    (lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), "cannot read"),
    (_nan_wav, "NaN"),
])
def test_bad_audio_files_give_one_input_error_naming_the_file(models, tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(InputError, match=message) as error:
        visualize_file(path, out_path=tmp_path / "x.png", models=models)
    assert str(path) in str(error.value)
    assert not (tmp_path / "x.png").exists()


def test_cli_writes_and_reports_errors_in_one_line(wav, tmp_path, capsys):
    assert main(["visualize", str(wav), "-o", str(tmp_path / "x.gif"), "--preset", PRESET, "--fps", "4"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "x.gif").is_file()
    assert main(["visualize", str(tmp_path / "nope.wav"), "-o", str(tmp_path / "y.png"), "--preset", PRESET]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("imgsonic: error:") and "nope.wav" in err and "\n" not in err
    preset = load_preset(PRESET)  # explicit checkpoints work as they do for render
    assert main(["visualize", str(wav), "-o", str(tmp_path / "z.png"), "--image-vae", str(preset.image_vae),
                 "--audio-vae", str(preset.audio_vae), "--mapper", str(preset.mapper)]) == 0
    assert (tmp_path / "z.png").is_file()


# ---- silence, short and quiet sounds -----------------------------------------------------------------------


def test_silence_and_very_quiet_sound_give_one_finite_image(models):
    silent = visualize_audio(np.zeros(SAMPLE_RATE), sample_rate=SAMPLE_RATE, models=models, fps=10)
    whisper = visualize_audio(1e-9 * _tone(1.0), sample_rate=SAMPLE_RATE, models=models, fps=10)
    assert len(silent) == len(whisper) == 10
    for frame in silent + whisper:
        assert np.isfinite(frame.image).all() and np.isfinite(frame.z_img).all()
        assert 0.0 <= frame.image.min() and frame.image.max() <= 1.0
        # below the dB floor a sound is silence: every frame is the one silence image
        np.testing.assert_allclose(frame.image, silent[0].image, atol=1e-5)


@pytest.mark.parametrize("n_samples", [1, 10, 500])
def test_very_short_audio_is_padded_to_one_frame(models, n_samples):
    frames = visualize_audio(_tone(1.0)[:n_samples], sample_rate=SAMPLE_RATE, models=models, fps=10)
    assert [f.index for f in frames] == [0]
    assert np.isfinite(frames[0].image).all()


# ---- the streaming analyser --------------------------------------------------------------------------------


def test_streaming_is_independent_of_block_sizes(models, rng):
    audio = np.concatenate([_tone(0.6, f_hz=300.0), np.zeros(2000, np.float32), _tone(0.9, f_hz=700.0, amplitude=0.05)])
    whole = visualize_audio(audio, sample_rate=SAMPLE_RATE, models=models, fps=20, block_s=10.0)
    analyser = StreamingVisualizer(models, sample_rate=SAMPLE_RATE, fps=20)
    pieces, start = [], 0
    while start < len(audio):
        size = int(rng.integers(0, 3000))
        pieces += analyser.push(audio[start : start + size])
        start += size
    pieces += analyser.finish()
    assert [f.index for f in pieces] == list(range(len(whole))) == list(range(math.ceil(len(audio) / SAMPLE_RATE * 20)))
    for a, b in zip(whole, pieces):
        assert a.time_s == b.time_s
        np.testing.assert_allclose(a.z_aud, b.z_aud, atol=1e-5)
        np.testing.assert_allclose(a.image, b.image, atol=1e-5)


@pytest.mark.parametrize("sample_rate", [8000, 22050, 48000])
def test_any_input_rate_sees_the_same_tone(models, sample_rate):
    frames = visualize_audio(_tone(1.0, f_hz=500.0, sample_rate=sample_rate), sample_rate=sample_rate, models=models,
                             fps=5)
    reference = visualize_audio(_tone(1.0, f_hz=500.0), sample_rate=SAMPLE_RATE, models=models, fps=5)
    assert len(frames) == 5
    np.testing.assert_allclose(frames[2].z_aud, reference[2].z_aud, atol=0.02)


def test_frames_arrive_within_the_stated_latency(models):
    analyser = StreamingVisualizer(models, sample_rate=SAMPLE_RATE, fps=10)
    audio, block = _tone(3.0), 64
    for start in range(0, len(audio), block):
        for frame in analyser.push(audio[start : start + block]):
            pushed_s = (start + block) / SAMPLE_RATE
            assert pushed_s - frame.time_s <= analyser.latency_s + block / SAMPLE_RATE + 1e-9


def test_push_validates_and_survives_bad_samples(models):
    analyser = StreamingVisualizer(models, sample_rate=SAMPLE_RATE, fps=10)
    block = _tone(0.5)
    block[:7] = np.inf
    analyser.push(np.stack([block, block]))  # stereo is averaged
    assert analyser.n_nonfinite_samples == 7
    with pytest.raises(ParameterError, match="expected"):
        analyser.push(np.zeros((2, 2, 2)))
    frames = analyser.finish()
    assert all(np.isfinite(f.image).all() for f in frames)
    with pytest.raises(ParameterError, match="after finish"):
        analyser.push(block)
    for kwargs in ({"sample_rate": 44100.5}, {"sample_rate": 100}, {"sample_rate": 44100, "fps": 0},
                   {"sample_rate": 44100, "window_s": -1.0}):
        with pytest.raises(ParameterError):
            StreamingVisualizer(models, **kwargs)


def test_longer_window_averages_more_of_the_sound(models):
    audio = np.concatenate([_tone(1.0, f_hz=200.0), _tone(1.0, f_hz=800.0)])
    short = visualize_audio(audio, sample_rate=SAMPLE_RATE, models=models, fps=2)
    long = visualize_audio(audio, sample_rate=SAMPLE_RATE, models=models, fps=2, window_s=1.0)
    # at t = 1.0 s the short window hears the boundary; the long one hears half of each tone, like at 0.5 and 1.5 s
    assert np.linalg.norm(short[1].z_aud - short[3].z_aud) > np.linalg.norm(long[1].z_aud - long[3].z_aud)


def test_image_to_pixels_shapes_and_checks():
    assert image_to_pixels(np.full((3, 8, 8), 0.5, np.float32), size_px=16).shape == (16, 16, 3)
    assert image_to_pixels(np.ones((1, 8, 8), np.float32), size_px=8).max() == 255
    with pytest.raises(ParameterError, match="size_px"):
        image_to_pixels(np.ones((1, 8, 8)), size_px=4)
    with pytest.raises(ParameterError, match="C 1 or 3"):
        image_to_pixels(np.ones((2, 8, 8)), size_px=8)


# ---- what the evaluation measures is what visualize shows -----------------------------------------------------


def test_steady_tone_frame_matches_the_evaluation_chain(models):
    config = SpectralConfig.from_dict(models.spectral_config)
    tone = render_sines(SineParams(f0_hz=midi_to_hz(60.0), peak_db=-12.0), sample_rate=config.sample_rate,
                        n_samples=config.sample_rate)
    # 13 mel frames (0.832 s) centred on 0.5 s: windows 2…13, the frames the evaluation averages for a 1 s tone
    # (a steady tone's frames differ a little with its phase, so the two must average the same frames)
    frames = visualize_audio(tone[0], sample_rate=config.sample_rate, models=models, fps=2, window_s=0.832)
    with torch.inference_mode():
        mel = audio_to_mel(torch.from_numpy(tone), config=config)[..., 2:-2]
        expected = models.decode_images(models.audio_to_image_latent(models.encode_mel(mel)))
    np.testing.assert_allclose(frames[1].image, expected[0].numpy(), atol=1e-4)


def test_round_trip_image_sound_image_lands_within_two_and_a_half_pixels(models):
    """Squares → ``render`` (pghi+fgla, 44.1 kHz, the vocoder's own level) → ``visualize`` (2 fps, frames at each
    image's middle).

    Stated error, on 64 px images: the visualised square's centroid lies within 2.5 px of the source square's on
    average, within 1 px along x (pitch), and the squares keep their order along y (loudness, Spearman ≥ 0.95).
    The render keeps the vocoder's level here (``--loudness raw``, ``peak_db=None``): squares-sines maps y to
    loudness, which ``imgsonic render``'s default ``--loudness even`` levels away; with raw levels it normalises
    a file's peak to −1 dBFS, which makes every tone of this sequence (peak −3.5 dBFS) 2.5 dB louder and moves
    every square 3.2 px down (4.1 px from the source on average then).
    """
    images, _ = make_squares(24, size=models.image_size, seed=3)
    items = [ImageItem(name=f"square{i}", pixels=image.permute(1, 2, 0).numpy()) for i, image in enumerate(images)]
    settings = RenderSettings(seconds_per_image=1.0, crossfade_s=0.1, peak_db=None,
                              loudness=LoudnessSettings(mode="raw"))
    result = render_items(items, bundle=ModelBundle(models, None, label=PRESET), settings=settings)
    frames = visualize_audio(result.audio, sample_rate=result.sample_rate, models=models, fps=2, window_s=0.6)
    seen = torch.from_numpy(np.stack([frames[2 * i + 1].image for i in range(len(images))]))

    def centroids(batch):
        return metrics.image_centroid_px(torch.nn.functional.interpolate(batch, size=REVERSE_IMAGE_PX, mode="bilinear",
                                                                         align_corners=False))

    found, source = centroids(seen), centroids(images)
    assert np.hypot(*(found - source).T).mean() <= 2.5
    assert np.abs(found[:, 0] - source[:, 0]).mean() <= 1.0
    assert metrics.spearman(found[:, 1], source[:, 1]) >= 0.95
