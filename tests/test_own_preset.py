"""Own folders end to end: ``imgsonic train all --images DIR --sounds DIR --out DIR``, then ``--preset DIR``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bridge import cli
from bridge.cli.train import DEFAULT_OUT
from models import imagination, registry
from models.errors import ParameterError
from synth.audio_io import read_audio, write_audio
from training.cli import DEFAULT_OUT as TRAINING_DEFAULT_OUT
from training.cli import MIN_USER_IMAGES, MIN_USER_SOUNDS

ROOT = Path(__file__).resolve().parents[1]


def _own_folders(root, *, n_images: int, n_sounds: int):
    """Random RGB images of several sizes and short tones at 22.05 kHz (resampled by the training reader)."""
    rng = np.random.default_rng(0)
    images, sounds = root / "images", root / "sounds"
    images.mkdir()
    sounds.mkdir()
    for index in range(n_images):
        pixels = (rng.random((20 + index, 30, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(images / f"picture{index}.png")
    t = np.arange(11025) / 22050
    for index in range(n_sounds):
        write_audio(sounds / f"tone{index}.wav", (0.3 * np.sin(2 * np.pi * (150 + 40 * index) * t)).astype(np.float32),
                    sample_rate=22050)
    return images, sounds


def test_a_preset_trained_on_16_images_and_16_sounds_works_by_path(tmp_path, capsys):
    """``train all`` (two steps a model) from 16 + 16 files, stage by stage; the output folder, its TOML and its
    checkpoint folder render by path; the folder also visualizes, evaluates and plays live by path."""
    images, sounds = _own_folders(tmp_path, n_images=MIN_USER_IMAGES, n_sounds=MIN_USER_SOUNDS)
    out = tmp_path / "mine"
    assert cli.main(["train", "all", "--images", str(images), "--sounds", str(sounds), "--out", str(out),
                     "--steps", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"--preset {out}" in printed and "[1/" in printed and "[3/" in printed  # stage lines

    for preset in (out, out / "default.toml", out / "default"):  # the folder, its TOML, the checkpoint folder
        wav = tmp_path / f"{preset.name}.wav"
        assert cli.main(["render", str(images), "-o", str(wav), "--preset", str(preset), "--workers", "1",
                         "--vocoder", "pghi"]) == 0
        audio = read_audio(wav, sample_rate=44100, channels=1)[0]
        assert len(audio) == MIN_USER_IMAGES * 44100  # one second per image
        assert np.isfinite(audio).all()
    assert cli.main(["visualize", str(tmp_path / "mine.wav"), "-o", str(tmp_path / "seen.png"),
                     "--preset", str(out)]) == 0
    assert (tmp_path / "seen.png").is_file()
    # judged as the preset it was trained as; the wide rows skipped (they render ~200 images): reported missed
    capsys.readouterr()
    assert cli.main(["eval", "--preset", str(out), "--no-wide", "--n", "200", "--method", "pghi", "--json",
                     "-o", str(tmp_path / "eval")]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["preset"] == f"default ({out})" and "texture_family_1nn" in result["not_measured"]
    live = subprocess.run([sys.executable, "-m", "bridge", "live", "--audio", "offline", "--duration", "1", "-o",
                           str(tmp_path / "live.wav"), "--osc-port", "0", "--preset", str(out), "--images",
                           str(images)], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert live.returncode == 0, live.stderr[-2000:]
    assert np.sqrt(np.mean(read_audio(tmp_path / "live.wav", sample_rate=None)[0] ** 2)) > 0


def test_too_few_files_say_how_many_are_needed(tmp_path, capsys):
    images, sounds = _own_folders(tmp_path, n_images=MIN_USER_IMAGES - 1, n_sounds=MIN_USER_SOUNDS)
    assert cli.main(["train", "all", "--images", str(images), "--sounds", str(sounds), "--out",
                     str(tmp_path / "out"), "--steps", "1", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert f"{MIN_USER_IMAGES - 1} readable image(s)" in error[0] and f"at least {MIN_USER_IMAGES}" in error[0]
    assert DEFAULT_OUT == TRAINING_DEFAULT_OUT  # the train command's default, copied where training can see it


def test_path_presets_resolve_in_the_registry(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.toml").write_text('image_vae = "x.pt"\naudio_vae = "x.pt"\nmapper = "x.pt"\n')
    with pytest.raises(ParameterError, match="holds 2 preset files"):
        registry.load_preset(str(folder))
    with pytest.raises(ParameterError, match="does not exist"):
        registry.load_preset(str(tmp_path / "missing"))
    with pytest.raises(ParameterError, match="lacks"):
        registry.load_preset(str(tmp_path))  # neither a .toml nor the three checkpoints
    (folder / "x.pt").write_bytes(b"")
    preset = registry.load_preset(str(folder / "b.toml"))
    assert preset.name == "b" and preset.mapper == folder / "x.pt" and preset.location == folder / "b.toml"
    assert registry.is_preset_path("./default") and not registry.is_preset_path("default")


def test_sound_to_image_presets_resolve_by_path_too(tmp_path):
    """The same resolver serves ``imgsonic imagine`` and ``eval``: the shipped imagine TOML by path, or a copy of
    it in a folder of its own; an image ↔ sound preset's TOML is not taken for one."""
    shipped = imagination.IMAGINE_PRESETS_DIR / "spoken-digits.toml"
    copy = tmp_path / "mine" / "imagine"
    copy.mkdir(parents=True)
    (copy / "spoken-digits.toml").write_text(shipped.read_text().replace(
        "../spoken-digits/", str(imagination.IMAGINE_PRESETS_DIR.parent / "spoken-digits") + "/"))
    for name in (str(shipped), str(copy), str(copy / "spoken-digits.toml")):
        assert imagination.is_imagine_preset(name)
        assert imagination.load_imagine_preset(name).generator == shipped.parent.parent / "spoken-digits" / "generator.pt"
    assert imagination.is_imagine_preset("spoken-digits")
    assert not imagination.is_imagine_preset(str(registry.PRESETS_DIR / "default.toml"))
    assert not imagination.is_imagine_preset("default")
