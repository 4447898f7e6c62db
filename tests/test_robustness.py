"""The hostile-input battery (issue 21), the fast half: every case ends in one line and a clean exit.

Each case runs the way a user meets it, through the CLI on files (in process, or as a subprocess where a
signal must reach a real process). The limits each test asserts are stated as figures in its docstring.
The heavy cases (peak memory on huge inputs) are in ``test_memory_caps.py``, marked ``slow``.
"""

import copy
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from PIL import Image
from scipy.signal import resample_poly

from bridge.cli import main
from models.audio_vae import AudioVAE, AudioVAEConfig
from models.checkpoint import _digest, load_checkpoint
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from synth.audio_io import read_audio, read_audio_info, write_audio

ROOT = Path(__file__).resolve().parents[1]
SPECTRAL = {"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16, "f_min_hz": 0.0, "f_max_hz": 4000.0}
TEMPORARY = (".tmp.", ".tmp")  # every temporary name imgsonic makes holds one of these


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three tiny random checkpoints (8 kHz) and the flags that name them."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    ImageVAE(ImageVAEConfig(image_size=8, channels=3, latent_dim=4, base_width=4, n_layers=1, hidden_width=16)).save(
        folder / "image_vae.pt")
    AudioVAE(AudioVAEConfig(n_mels=16, n_frames=3, latent_dim=2, hidden_width=16, spectral=SPECTRAL)).save(
        folder / "audio_vae.pt")
    LatentMapper(LatentMapperConfig(4, 2, hidden_width=8, depth=1)).save(folder / "mapper.pt")
    return folder


def _model_flags(folder: Path) -> list[str]:
    return ["--image-vae", str(folder / "image_vae.pt"), "--audio-vae", str(folder / "audio_vae.pt"),
            "--mapper", str(folder / "mapper.pt")]


@pytest.fixture
def pictures(tmp_path, rng):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index in range(4):
        Image.fromarray((rng.random((12, 16, 3)) * 255).astype(np.uint8)).save(folder / f"p{index}.png")
    return folder


def _one_line_error(capsys, *, contains: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("imgsonic: error: ") and "Traceback" not in err, err
    assert contains in err, err
    return err


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.rglob("*") if any(mark in path.name for mark in TEMPORARY))


# ---- signals ------------------------------------------------------------------------------------------------

def _render_process(tiny: Path, pictures: Path, out: Path) -> subprocess.Popen:
    # 400 s of sound from tiny models with Griffin-Lim: a few seconds of work in each pass
    command = [sys.executable, "-m", "bridge", "render", str(pictures), "-o", str(out / "x.wav"), "--midi",
               str(out / "x.mid"), "--json", str(out / "x.json"), "--seconds-per-image", "100", "--vocoder",
               "griffinlim", "--sr", "8000", "--workers", "2", *_model_flags(tiny)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _wait_for(predicate, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize(("signum", "point"), [
    (signal.SIGINT, "pass 1"), (signal.SIGTERM, "pass 2"),
    pytest.param(signal.SIGTERM, "pass 1", marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, "pass 2", marks=pytest.mark.slow)])
def test_a_signal_at_any_point_exits_cleanly_and_leaves_no_files(tiny, pictures, tmp_path, signum, point):
    """SIGINT → exit 130, SIGTERM → 143, ``imgsonic: interrupted`` as the last line, no traceback, and 0 files
    left in the output folder (the spill ``.x.wav.*.tmp.raw`` of pass 1, the ``.x.wav.*.tmp.wav`` of pass 2)."""
    out = tmp_path / "out"
    out.mkdir()
    process = _render_process(tiny, pictures, out)
    try:
        mark = ".tmp.raw" if point == "pass 1" else ".tmp.wav"
        assert _wait_for(lambda: any(mark in name for name in os.listdir(out))), "the render never got there"
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, err
    assert err.strip().splitlines()[-1] == "imgsonic: interrupted" and "Traceback" not in err
    assert os.listdir(out) == []


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.3, 1.0, 2.5, 4.0])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_at_many_times_leave_nothing(tiny, pictures, tmp_path, signum, delay_s):
    """The same at fixed times from the start (loading, encoding, vocoding, levelling, writing): 0 temporary
    files left, and either no output at all (exit 130/143) or, when the render had finished, all three."""
    out = tmp_path / "out"
    out.mkdir()
    process = _render_process(tiny, pictures, out)
    try:
        time.sleep(delay_s)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "Traceback" not in err
    # -signum: before imgsonic set its handler, or after it finished and gave the signal back
    assert process.returncode in (0, 128 + signum, -signum), err
    assert sorted(os.listdir(out)) in ([], ["x.json", "x.mid", "x.wav"])
    if process.returncode == 128 + signum:
        assert err.strip().splitlines()[-1] == "imgsonic: interrupted"


# ---- disks and permissions ----------------------------------------------------------------------------------

def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_writing_the_wav_is_one_line(tiny, pictures, tmp_path, capsys, monkeypatch):
    """ENOSPC while the WAV is committed (injected into os.fsync): exit 2, one line naming the file and
    ENOSPC, no file left."""
    monkeypatch.setattr(os, "fsync", _no_space)
    code = main(["render", str(pictures), "-o", str(tmp_path / "x.wav"), "--vocoder", "pghi", *_model_flags(tiny)])
    assert code == 2
    _one_line_error(capsys, contains="x.wav': No space left on device (ENOSPC)")
    assert [path.name for path in tmp_path.iterdir()] == ["pictures"]


@pytest.mark.parametrize("output", ["sheet.png", "anim.gif", "frames"])
def test_a_full_disk_while_visualize_writes_is_one_line(tiny, tmp_path, capsys, monkeypatch, output):
    """ENOSPC while a PNG sheet, a GIF or a frame folder is written: exit 2, one line, nothing left."""
    sound = tmp_path / "in.wav"
    write_audio(sound, np.zeros(4000, np.float32), sample_rate=8000)
    monkeypatch.setattr(os, "fsync", _no_space)
    monkeypatch.setattr(os, "replace", _no_space)  # the frame folder is committed by a rename
    out = tmp_path / "out"
    out.mkdir()
    code = main(["visualize", str(sound), "-o", str(out / output), "--fps", "4", *_model_flags(tiny)])
    assert code == 2
    _one_line_error(capsys, contains="No space left on device (ENOSPC)")
    assert os.listdir(out) == []


def test_a_read_only_folder_for_visualize_is_one_line_before_the_analysis(tiny, tmp_path, capsys, monkeypatch):
    """``visualize -o DIR`` in a folder that cannot be written (EACCES/EROFS, as ``os.access`` reports it):
    exit 2 and one line, before any audio is read."""
    sound = tmp_path / "in.wav"
    write_audio(sound, np.zeros(4000, np.float32), sample_rate=8000)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked else real_access(path, mode))
    assert main(["visualize", str(sound), "-o", str(locked / "frames"), *_model_flags(tiny)]) == 2
    _one_line_error(capsys, contains="read-only or not writable")


def test_a_permission_error_creating_the_frame_folder_is_one_line(tiny, tmp_path, capsys, monkeypatch):
    sound = tmp_path / "in.wav"
    write_audio(sound, np.zeros(4000, np.float32), sample_rate=8000)
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if ".tmp" in self.name:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(["visualize", str(sound), "-o", str(tmp_path / "frames"), *_model_flags(tiny)]) == 2
    _one_line_error(capsys, contains="Permission denied (EACCES)")


def _tmpfs(path: Path, options: str) -> bool:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_real_full_disk_and_a_read_only_file_system(tiny, pictures, tmp_path, capsys):
    """On a 64 kB tmpfs a render of 4 s at 44.1 kHz (706 kB) cannot fit: one line, ENOSPC, 0 bytes left
    used; on a read-only tmpfs: one line, before any work."""
    full, read_only = tmp_path / "full", tmp_path / "ro"
    if not (_tmpfs(full, "size=64k") and _tmpfs(read_only, "size=64k,ro")):
        pytest.skip("cannot mount a tmpfs here")
    try:
        assert main(["render", str(pictures), "-o", str(full / "x.wav"), "--vocoder", "pghi",
                     *_model_flags(tiny)]) == 2
        _one_line_error(capsys, contains="No space left on device (ENOSPC)")
        assert os.listdir(full) == []
        assert main(["render", str(pictures), "-o", str(read_only / "x.wav"), *_model_flags(tiny)]) == 2
        _one_line_error(capsys, contains="Read-only file system (EROFS)")
    finally:
        for mount in (full, read_only):
            subprocess.run(["umount", str(mount)], capture_output=True)


# ---- audio input --------------------------------------------------------------------------------------------

def _truncated_wav(path: Path, *, claimed_s: float, held_s: float, rate: int = 8000) -> None:
    """A 16-bit mono WAV whose header claims ``claimed_s`` seconds and which holds ``held_s``."""
    import struct

    held = (0.3 * np.sin(np.arange(int(held_s * rate)) * 0.2) * 32767).astype("<i2").tobytes()
    claimed = int(claimed_s * rate) * 2
    header = (b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
              + b"data" + struct.pack("<I", claimed))
    path.write_bytes(header + held)


def test_truncated_audio_is_refused_or_read_as_it_is(tiny, tmp_path, capsys):
    """A WAV claiming 3600 s and holding 1 s: exit 2 with one line naming both lengths; with
    ``--allow-truncated`` exactly 1.00 s is read (10 frames at 10 fps), no invented silence."""
    sound = tmp_path / "cut.wav"
    _truncated_wav(sound, claimed_s=3600, held_s=1.0)
    assert main(["visualize", str(sound), "-o", str(tmp_path / "f.png"), *_model_flags(tiny)]) == 2
    _one_line_error(capsys, contains="claims 3600.00 s but it holds 1.00 s")
    assert main(["visualize", str(sound), "-o", str(tmp_path / "f.png"), "--allow-truncated", *_model_flags(tiny)]) == 0
    assert "10 frames for 1.00 s" in capsys.readouterr().out
    assert read_audio(sound, sample_rate=None, allow_truncated=True).shape == (1, 8000)


def test_a_file_name_that_is_not_utf8_works(tiny, tmp_path, capsys):
    """An audio file named with the byte 0xE9 (Latin-1 é, not UTF-8): read, visualized, exit 0."""
    name = os.fsdecode(b"caf\xe9.wav")
    write_audio(tmp_path / "plain.wav", np.zeros(4000, np.float32), sample_rate=8000)
    os.replace(tmp_path / "plain.wav", tmp_path / name)
    assert read_audio_info(tmp_path / name).n_samples == 4000
    assert main(["visualize", str(tmp_path / name), "-o", str(tmp_path / "f.png"), *_model_flags(tiny)]) == 0


def test_a_gif_of_a_long_unchanging_sound_keeps_within_the_format(tmp_path):
    """3000 identical frames at 0.2 fps (15 000 s, one run): a one-frame GIF whose delay is the format's
    longest, 655.35 s (Pillow's own merge overflowed its 16-bit delay); a run that changes keeps its frames."""
    from bridge.io.frames import MAX_GIF_DELAY_MS, gif_runs, write_image_file

    frames = [np.zeros((8, 8), np.uint8)] * 3000
    write_image_file(tmp_path / "still.gif", "gif", frames, list(range(3000)), fps=0.2, columns=10)
    with Image.open(tmp_path / "still.gif") as gif:
        assert gif.n_frames == 1 and gif.info["duration"] == MAX_GIF_DELAY_MS
    changing = [np.full((8, 8), value, np.uint8) for value in (0, 0, 9, 9, 9, 0)]
    assert gif_runs(changing, frame_ms=100) == [(0, 200), (2, 300), (5, 100)]


# ---- training resume ----------------------------------------------------------------------------------------

class _Anything:  # pickled into a resume file: torch's safe loader must refuse it unread
    pass


@pytest.mark.parametrize("damage", ["truncated", "empty", "a list", "missing keys", "a pickle"])
def test_bad_resume_files_are_one_line(tmp_path, capsys, damage):
    """5 of 5 bad ``--resume`` files: exit 2, one line, and the pickle's refusal never suggests
    ``weights_only=False``."""
    args = ["train", "image-vae", "--preset", "squares-sines", "--out", str(tmp_path), "--n-examples", "8",
            "--steps", "1", "--no-progress"]
    assert main(args) == 0
    resume = tmp_path / "squares-sines" / "image_vae.resume"
    good = resume.read_bytes()
    capsys.readouterr()
    if damage == "truncated":
        resume.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        resume.write_bytes(b"")
    elif damage == "a list":
        torch.save([1, 2, 3], resume)
    elif damage == "missing keys":
        torch.save({"format_version": 1, "name": "image_vae"}, resume)
    else:
        resume.write_bytes(pickle.dumps({"format_version": 1, "payload": _Anything()}))
    assert main([*args, "--resume", "--steps", "2"]) == 2
    err = _one_line_error(capsys, contains="image_vae.resume")
    assert "weights_only" not in err and len(err) < 400


# ---- edited checkpoints -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value", "expected"), [
    ("hidden_width", 3_000_000, "hidden_width=3000000 is out of bounds"),
    ("n_layers", 10_000, "n_layers=10000 is out of bounds"),
    ("hidden_width", 32, "do not fit ImageVAE"),
])
def test_edited_checkpoint_configs_are_refused_before_building(tiny, pictures, tmp_path, capsys, key, value, expected):
    """A config edited with its digest recomputed: refused in one line of < 400 characters, before a model
    of that size is built (the in-bounds one by comparing shapes on the meta device)."""
    content = copy.deepcopy(load_checkpoint(tiny / "image_vae.pt", kind="image_vae"))
    content["config"][key] = value
    content["sha256"] = _digest(content)
    edited = tmp_path / "edited"
    edited.mkdir()
    torch.save(content, edited / "image_vae.pt")
    for name in ("audio_vae.pt", "mapper.pt"):
        (edited / name).write_bytes((tiny / name).read_bytes())
    assert main(["render", str(pictures), "-o", str(tmp_path / "x.wav"), *_model_flags(edited)]) == 2
    err = _one_line_error(capsys, contains=expected)
    assert len(err) < 400


# ---- caps ---------------------------------------------------------------------------------------------------

def test_caps_are_one_line_errors_that_name_their_flag(tiny, pictures, tmp_path, capsys):
    """Each cap refuses in one line naming the flag that raises it: --max-megapixels (a 1.2 MP image against
    a 1 MP cap), --max-frames (a 12-frame GIF against 10), --max-images, --max-duration (4 s against 2 s)."""
    big = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000)).save(big)
    gif = tmp_path / "anim.gif"
    frames = [Image.new("L", (8, 8), 20 * index) for index in range(12)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    cases = [([str(big), "--max-megapixels", "1"], "--max-megapixels 2"),
             ([str(gif), "--max-frames", "10"], "--max-frames 12"),
             ([str(pictures), "--max-images", "3"], "--max-images"),
             ([str(pictures), "--max-duration", "2"], "--max-duration")]
    for extra, flag in cases:
        assert main(["render", *extra, "-o", str(tmp_path / "x.wav"), *_model_flags(tiny)]) == 2
        _one_line_error(capsys, contains=flag)
    assert not (tmp_path / "x.wav").exists() and _leftovers(tmp_path) == []


def test_large_images_are_decoded_small_with_nearly_the_same_model_input(tmp_path):
    """A photo-like 3150 × 2100 BMP (smooth fields at three scales) is decoded at 1575 × 1050 (short side
    1024…2047 px, 25 % of the pixels); the 64 px model input it gives is within 0.015 (of 1) per pixel of the
    full-size decode's. A 2000 × 1500 one is read whole, as before."""
    from bridge.sources.images import read_image
    from models.preprocess import prepare_image

    rng = np.random.default_rng(0)
    layers = [np.asarray(Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).resize((3150, 2100),
                                                                                                   Image.BICUBIC),
                         dtype=np.float32) for h, w in ((8, 12), (40, 60), (200, 300))]
    Image.fromarray(np.clip(0.5 * layers[0] + 0.35 * layers[1] + 0.15 * layers[2], 0, 255).astype(np.uint8)).save(
        tmp_path / "photo.bmp")
    small = read_image(tmp_path / "photo.bmp")
    full = read_image(tmp_path / "photo.bmp", decode_side=None)
    assert small.shape == (1050, 1575, 3) and full.shape == (2100, 3150, 3)
    difference = (prepare_image(small, size=64, channels=3) - prepare_image(full, size=64, channels=3)).abs().max()
    assert float(difference) < 0.015
    Image.fromarray(full[:1500, :2000]).save(tmp_path / "smaller.bmp")
    assert np.array_equal(read_image(tmp_path / "smaller.bmp"), full[:1500, :2000])


# ---- the streamed render ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fx", "loudness", "tolerance"), [
    ("", "raw", 0.0), ("delay:delay_seconds=0.05,feedback=0.5", "raw", 1e-5), ("", "even", 0.0),
    ("delay:delay_seconds=0.05,feedback=0.5", "mapped", 1e-5)])
def test_the_streamed_render_equals_the_whole_signal_render(pictures, tmp_path, fx, loudness, tolerance):
    """``imgsonic render`` with the shipped squares-sines preset (pieces of 1.2 s, spilled, levelled and
    written in blocks) equals the whole timeline decoded at once, vocoded in the same pieces, resampled
    whole, levelled (raw: the peak to −1 dBFS; even and mapped: each image's solo span measured in the whole
    signal, the effects' loudness offset tried on it, the gain envelope applied at once), through the effects at once (levelled: always ending in the
    limiter) and faded: sample for sample without effects (max difference 0); within 1e-5 of full scale with a
    feedback delay (pedalboard's own rounding differs by block size). Exactness rests on BLAS giving each row
    the same result whatever the batch (measured for the shipped presets' decoders from 4 rows up; tiny test
    models differ by 6e-8 in the mel)."""
    from bridge.cli.render import render_files
    from bridge.control.levels import LoudnessSettings, level_images
    from bridge.control.timeline import LatentTimeline
    from bridge.sonify.bundle import load_bundle
    from bridge.sonify.decode import decode_frames
    from bridge.sonify.encode import prepare_inputs
    from bridge.sonify.render import RenderSettings, effects_offset_db, vocode_in_pieces
    from bridge.sources.images import expand_inputs, load_images
    from synth.effects import EffectChain
    from synth.resample import resample

    bundle = load_bundle(preset="squares-sines")
    settings = RenderSettings(seconds_per_image=0.7, crossfade_s=0.2, vocoder="pghi", sample_rate=22050,
                              chunk_s=1.2, overlap_s=0.3, workers=2, fx=fx,
                              loudness=LoudnessSettings(mode=loudness, feature="red", range_db=20.0))
    render_files([pictures], out_path=tmp_path / "x.wav", bundle=bundle, settings=settings)
    streamed = read_audio(tmp_path / "x.wav", sample_rate=None)[0]

    models, config = bundle.models, bundle.spectral
    with torch.inference_mode():
        images, descriptors = prepare_inputs(load_images(expand_inputs([pictures])), models)
        z_img = models.encode_images(torch.cat([images, images[:4]]))[:4]  # a batch of 8, as the render pads
        z_aud = models.image_to_audio_latent(torch.cat([z_img, z_img]))[:4]
        timeline = LatentTimeline.from_sequence({"z_aud": z_aud.numpy()}, seconds_per_image=0.7, crossfade_s=0.2)
        rate = config.sample_rate / config.hop_length
        n_frames = int(round(np.ceil(timeline.duration_s * rate) / rate * rate))
        mel = decode_frames(models, timeline.sample(np.arange(n_frames) / rate)["z_aud"])
        chunk, overlap = settings.piece_frames(rate)
        audio = vocode_in_pieces(bundle.vocoder("pghi").vocode, mel, hop=config.hop_length, chunk_frames=chunk,
                                 overlap_frames=overlap, workers=1, progress=False)
    audio = resample(audio, orig_hz=config.sample_rate, new_hz=22050)
    n_samples = round(timeline.duration_s * 22050)
    audio = np.pad(audio, (0, max(0, n_samples - len(audio))))[:n_samples].astype(np.float32)
    if loudness == "raw":
        audio *= np.float32(10 ** (-1 / 20) / np.abs(audio).max())
    else:
        def read(first, n):
            return audio[first : first + n]

        levels = level_images(settings.loudness, read=read, sample_rate=22050, seconds_per_image=0.7,
                              crossfade_s=0.2, duration_s=timeline.duration_s, descriptors=descriptors)
        assert np.ptp(levels.gains_db) > 0.3  # images levelled apart
        levels = levels.shifted(effects_offset_db(read, envelope=levels.envelope, settings=settings,
                                                  n_samples=n_samples))
        audio = audio * levels.envelope.block(0, n_samples)
    if fx or loudness != "raw":  # the render ends a chain with a limiter and removes its look-ahead
        chain = EffectChain(f"{fx}; limiter" if fx else "limiter")
        delay = chain.latency_samples(22050)
        audio = np.concatenate([chain.process(audio, sample_rate=22050), chain.flush()[0]])[delay : delay + n_samples]
    n_fade = round(0.02 * 22050)
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n_fade) + 0.5) / n_fade)).astype(np.float32)
    audio[:n_fade] *= ramp
    audio[-n_fade:] *= ramp[::-1]
    assert len(streamed) == n_samples and np.abs(streamed - audio).max() <= tolerance


def _true_peak_db(path: Path) -> tuple[int, float]:
    """(samples at full scale, true peak in dBTP: 4× oversampled with scipy's ``resample_poly``)."""
    audio = read_audio(path, sample_rate=None)[0].astype(np.float64)
    return int(np.count_nonzero(np.abs(audio) >= 1.0)), float(20 * np.log10(np.abs(resample_poly(audio, 4, 1)).max()))


def test_reverb_and_limiter_on_the_demo_stay_under_minus_one_dbtp(tmp_path, capsys):
    """``--fx "reverb; limiter"``, a reverb pushed 9 dB louder with a limiter, and a plain ``reverb`` (which
    gets the default limiter) on the eight demo pictures (files, shipped default preset), and ``imgsonic
    demo`` itself (its reverb alone peaked at +3.6 dBFS): 0 samples at full scale, true peak (4×
    oversampled with scipy's ``resample_poly``, an independent tool) ≤ −1 dBTP."""
    from bridge.sources.demo import demo_images

    folder = tmp_path / "demo"
    folder.mkdir()
    for index, item in enumerate(demo_images()):
        Image.fromarray(item.pixels).save(folder / f"{index}.png")
    for fx in ("reverb; limiter", "reverb:room_size=0.7,wet_level=0.9,dry_level=1; gain:gain_db=9; limiter",
               "reverb:room_size=0.7,wet_level=0.9,dry_level=1"):
        assert main(["render", str(folder), "-o", str(tmp_path / "x.wav"), "--fx", fx, "--vocoder", "pghi"]) == 0
        at_full_scale, true_peak_db = _true_peak_db(tmp_path / "x.wav")
        assert at_full_scale == 0 and true_peak_db <= -1.0, (fx, true_peak_db)
    assert main(["demo", "-o", str(tmp_path / "demo"), "--vocoder", "pghi"]) == 0
    at_full_scale, true_peak_db = _true_peak_db(tmp_path / "demo" / "demo.wav")
    assert at_full_scale == 0 and true_peak_db <= -1.0, true_peak_db
    capsys.readouterr()


# ---- tempo --------------------------------------------------------------------------------------------------

def test_bpm_puts_every_image_on_a_beat_with_one_note_each(tiny, pictures, tmp_path, capsys):
    """``--bpm 90 --time-signature 3/4`` with 1 s per image: each image holds round(1 / (60/90)) = 2 beats
    (1.333 s); read back with mido (an independent parser): tempo 666 667 µs, 3/4, one note-on per image, at
    ticks 0, 960, 1920, 2880 (480 per beat), the audio 5.333 s long."""
    out = tmp_path / "x.wav"
    assert main(["render", str(pictures), "-o", str(out), "--midi", str(tmp_path / "x.mid"), "--bpm", "90",
                 "--time-signature", "3/4", "--vocoder", "pghi", *_model_flags(tiny)]) == 0
    midi = mido.MidiFile(tmp_path / "x.mid")
    meta = {message.type: message for message in midi.tracks[0] if message.is_meta}
    assert meta["set_tempo"].tempo == 666_667
    assert (meta["time_signature"].numerator, meta["time_signature"].denominator) == (3, 4)
    ticks, onsets = 0, []
    for message in midi.tracks[0]:
        ticks += message.time
        if message.type == "note_on" and message.velocity > 0:
            onsets.append(ticks)
    assert onsets == [0, 960, 1920, 2880]
    assert read_audio_info(out).duration_s == pytest.approx(4 * 2 * 60 / 90, abs=1e-4)
    assert main(["render", str(pictures), "-o", str(out), "--beats-per-image", "2", *_model_flags(tiny)]) == 2
    _one_line_error(capsys, contains="--beats-per-image needs --bpm")
    assert main(["render", str(pictures), "-o", str(out), "--time-signature", "3/5", *_model_flags(tiny)]) == 2
    _one_line_error(capsys, contains="time signature")


def test_the_json_log_matches_the_mapping_at_each_images_middle(tiny, pictures, tmp_path):
    """The streamed render logs each image's parameters at its middle frame, as the in-memory render does."""
    from bridge.sonify.bundle import load_bundle
    from bridge.sonify.render import RenderSettings, render_items
    from bridge.sources.images import expand_inputs, load_images

    assert main(["render", str(pictures), "-o", str(tmp_path / "x.wav"), "--json", str(tmp_path / "x.json"),
                 "--seconds-per-image", "0.5", "--vocoder", "pghi", *_model_flags(tiny)]) == 0
    logged = json.loads((tmp_path / "x.json").read_text())["images"]
    bundle = load_bundle(image_vae=tiny / "image_vae.pt", audio_vae=tiny / "audio_vae.pt", mapper=tiny / "mapper.pt")
    result = render_items(load_images(expand_inputs([pictures])), bundle=bundle,
                          settings=RenderSettings(seconds_per_image=0.5, vocoder="pghi"))
    for entry, image in zip(logged, result.images):
        middle = int(np.searchsorted(result.frame_times_s, (image["start_s"] + image["end_s"]) / 2))
        assert entry["parameters"] == {name: round(float(values[middle]), 6) for name, values in result.values.items()}
