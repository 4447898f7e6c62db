"""Offline render and demo end to end on a tiny random preset: durations, rates, JSON/MIDI, levels, seams, atomicity."""

import json
import math
import platform
import subprocess
import sys
import types
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from PIL import Image

import bridge.io.outputs as outputs_module
import bridge.sonify.render as render_module
from bridge.cli import main
from bridge.cli.render import render_files
from bridge.control.levels import LoudnessSettings
from bridge.sonify.bundle import load_bundle
from bridge.sonify.render import RenderSettings, boundary_jump_ratio, render_items
from bridge.sources.images import ImageItem
from models import registry
from models.audio_vae import AudioVAE, AudioVAEConfig
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from synth.audio_io import read_audio, read_audio_info
from synth.spectral import SpectralConfig, audio_to_mel

SPECTRAL = {"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 16, "f_min_hz": 0.0, "f_max_hz": 4000.0}


@pytest.fixture
def preset(tmp_path, monkeypatch):
    """A tiny random preset called "default" in a temporary registry (z_img 4 dims, z_aud 2, 8 kHz)."""
    folder = tmp_path / "presets"
    torch.manual_seed(0)
    ImageVAE(ImageVAEConfig(image_size=8, channels=3, latent_dim=4, base_width=4, n_layers=1, hidden_width=16)).save(
        folder / "default" / "image_vae.pt")
    AudioVAE(AudioVAEConfig(n_mels=16, n_frames=3, latent_dim=2, hidden_width=16, spectral=SPECTRAL)).save(
        folder / "default" / "audio_vae.pt")
    LatentMapper(LatentMapperConfig(4, 2, hidden_width=8, depth=1)).save(folder / "default" / "mapper.pt")
    (folder / "default.toml").write_text(
        "\n".join(f'{kind} = "default/{kind}.pt"' for kind in ("image_vae", "audio_vae", "mapper")) + "\n")
    monkeypatch.setattr(registry, "PRESETS_DIR", folder)
    return folder


@pytest.fixture
def images(tmp_path, rng):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in (1, 2, 10):
        pixels = (rng.random((12, 16, 3)) * 255 * index / 10).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"im{index}.png")
    return folder


def test_render_cli_writes_wav_midi_and_json(preset, images, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    code = main(["render", str(images), "-o", str(out / "a.wav"), "--seconds-per-image", "0.5", "--crossfade", "0.1",
                 "--sr", "22050", "--midi", str(out / "a.mid"), "--json", str(out / "a.json"), "--vocoder", "pghi"])
    assert code == 0, capsys.readouterr().err
    info = read_audio_info(out / "a.wav")
    assert (info.sample_rate, info.n_channels, info.n_samples) == (22050, 1, round(3 * 0.5 * 22050))
    log = json.loads((out / "a.json").read_text())
    assert [entry["image"].rsplit("/", 1)[-1] for entry in log["images"]] == ["im1.png", "im2.png", "im10.png"]
    assert [(e["start_s"], e["end_s"]) for e in log["images"]] == [(0.0, 0.5), (0.5, 1.0), (1.0, 1.5)]
    assert all(len(e["z_img"]) == 4 and len(e["z_aud"]) == 2 and "pitch" in e["parameters"] for e in log["images"])
    midi_file = mido.MidiFile(out / "a.mid")
    assert midi_file.length == pytest.approx(1.5, abs=2e-3)
    assert sum(m.type == "note_on" for m in midi_file.tracks[0]) == 3
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.mid", "a.wav"]


def test_shipped_preset_renders_with_both_neural_vocoders(images, tmp_path, capsys):
    """``--vocoder neural`` and ``neural+fgla`` with the shipped default preset: same length, both audible,
    and the iterations change the sound (they re-fit it to the mel)."""
    outputs = {}
    for vocoder in ("neural", "neural+fgla"):
        path = tmp_path / f"{vocoder}.wav"
        code = main(["render", str(images), "-o", str(path), "--seconds-per-image", "0.5", "--sr", "16000",
                     "--vocoder", vocoder])
        assert code == 0, capsys.readouterr().err
        outputs[vocoder] = read_audio(path, sample_rate=None)[0]
    neural, refined = outputs["neural"], outputs["neural+fgla"]
    assert neural.shape == refined.shape == (round(1.5 * 16000),)
    assert np.isfinite(refined).all() and float(np.sqrt(np.mean(refined**2))) > 1e-3
    assert float(np.abs(neural - refined).max()) > 1e-3


def test_level_fades_and_duration(preset, rng):
    items = [ImageItem(name=str(i), pixels=rng.random((8, 8, 3))) for i in range(4)]
    settings = RenderSettings(seconds_per_image=0.3, crossfade_s=0.1, vocoder="pghi", sample_rate=16000,
                              loudness=LoudnessSettings(mode="raw"))
    result = render_items(items, bundle=load_bundle(), settings=settings)
    audio = result.audio
    assert audio.dtype == np.float32 and len(audio) == round(1.2 * 16000)
    assert 20 * math.log10(np.abs(audio).max()) == pytest.approx(-1.0, abs=1e-3)
    assert abs(audio[0]) < 1e-3 and abs(audio[-1]) < 1e-3  # faded in and out
    assert boundary_jump_ratio(audio, boundaries_s=[0.3, 0.6, 0.9], sample_rate=16000) < 2.0


def test_vocoder_pieces_join_without_clicks_or_dips():
    """Long renders are vocoded in overlapping pieces: a steady chord must stay steady across the seams."""
    config = SpectralConfig.from_dict(SPECTRAL)
    t = torch.arange(3 * 8000) / 8000
    chord = 0.5 * torch.sin(2 * math.pi * 440 * t) + 0.3 * torch.sin(2 * math.pi * 660 * t + 1)
    mel = audio_to_mel(chord, config=config)
    from synth.phase import mel_to_audio

    pieces = render_module.vocode_in_pieces(lambda m: mel_to_audio(m, config=config), mel, hop=64,
                                            chunk_frames=125, overlap_frames=62, workers=1, progress=False)
    in_parallel = render_module.vocode_in_pieces(lambda m: mel_to_audio(m, config=config), mel, hop=64,
                                                 chunk_frames=125, overlap_frames=62, workers=3, progress=False)
    np.testing.assert_array_equal(in_parallel, pieces)  # workers change the speed, never the samples
    whole = mel_to_audio(mel, config=config).numpy()
    assert len(pieces) == len(whole)
    seams = [(k * 63 + 31) * 64 / 8000 for k in range(1, 5)]
    assert boundary_jump_ratio(pieces, boundaries_s=seams, sample_rate=8000) < 1.5

    def rms(x):
        return np.sqrt(np.convolve(x**2, np.ones(160) / 160, "valid"))[4000:-4000]

    assert rms(pieces).min() > 0.85 * np.median(rms(whole))


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_vocoder_leaves_no_output(preset, images, tmp_path, monkeypatch, workers):
    calls = []

    bundle = load_bundle()
    hop = bundle.spectral.hop_length

    def vocode(mel):
        calls.append(mel.shape)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if Ctrl-C arrived mid-render
        return torch.zeros(mel.shape[-1] * hop)

    monkeypatch.setattr(bundle, "vocoder", lambda name: types.SimpleNamespace(vocode=vocode))
    out = tmp_path / "out"
    out.mkdir()
    settings = RenderSettings(seconds_per_image=1.0, crossfade_s=0.0, chunk_s=1.2, overlap_s=0.1, vocoder="pghi",
                              workers=workers)
    with pytest.raises(KeyboardInterrupt):
        render_files([images], out_path=out / "x.wav", bundle=bundle, settings=settings,
                     midi_path=out / "x.mid", json_path=out / "x.json")
    # the failing piece stops the render: at most the pieces already running finish
    assert 2 <= len(calls) <= 1 + workers and list(out.iterdir()) == []

    (out / "x.wav").write_bytes(b"previous render")
    monkeypatch.setattr(outputs_module, "write_json", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    calls.clear()
    monkeypatch.setattr(bundle, "vocoder",
                        lambda name: types.SimpleNamespace(vocode=lambda mel: torch.zeros(mel.shape[-1] * hop)))
    with pytest.raises(OSError):
        render_files([images], out_path=out / "x.wav", bundle=bundle, settings=settings, json_path=out / "x.json")
    assert (out / "x.wav").read_bytes() == b"previous render"  # the audio, written last, was never replaced


def test_bad_inputs_are_one_line_errors(preset, images, tmp_path, capsys):
    (images / "im3.png").write_bytes(b"not a png")
    assert main(["render", str(images), "-o", str(tmp_path / "a.wav")]) == 2
    err = capsys.readouterr().err
    assert "im3.png" in err and err.count("\n") == 1
    assert main(["render", str(images / "im1.png"), "-o", str(tmp_path / "a.mp3")]) == 2
    assert "a.mp3" in capsys.readouterr().err
    assert main(["render", str(images / "im1.png"), "-o", str(tmp_path / "a.wav"), "--crossfade", "2"]) == 2
    assert "crossfade" in capsys.readouterr().err
    assert not (tmp_path / "a.wav").exists()


def test_demo_writes_the_three_files(preset, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--vocoder", "pghi"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["demo.mid", "demo.png", "demo.wav"]
    for name in ("demo.wav", "demo.mid", "demo.png"):
        assert str(out / name) in printed
    audio = read_audio(out / "demo.wav", sample_rate=None)
    assert audio.shape[-1] == round(8 * 1.5 * 44100)
    with Image.open(out / "demo.png") as picture:
        assert picture.size == (1024, 128 + 320)


_REALLOCATION_FAULTS = """
import resource, sys, threading
import numpy as np
if sys.argv[1] == "reuse":
    from bridge.cli.process import reuse_freed_memory
    assert reuse_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def allocate():  # multi-MB arrays allocated and freed, as a render's vocoder pieces do
    for size in (1, 3, 2, 5, 4, 6):
        a, b = np.ones(size << 17), np.ones(size << 17)
        del a, b
counts = []
def twice():
    allocate()
    before = faults()
    allocate()
    counts.append(faults() - before)
thread = threading.Thread(target=twice)
thread.start()
thread.join()
twice()
print(*counts)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the allocator options are glibc's")
def test_reuse_freed_memory_stops_page_faults_when_arrays_are_allocated_again():
    def faults(mode):
        done = subprocess.run([sys.executable, "-c", _REALLOCATION_FAULTS, mode], capture_output=True, text=True,
                              check=True, cwd=Path(render_module.__file__).parents[1])
        return [int(count) for count in done.stdout.split()]

    default, reused = faults("default"), faults("reuse")
    # the second round of the same 42 MB, in a worker thread and in the main thread: with glibc's defaults
    # part of it comes back as fresh pages (a fault per 4 kB); reused, it stays mapped
    assert sum(default) > 500
    assert max(reused) < 50

