"""The hostile-input battery (issue 21), the heavy half: peak memory of ``imgsonic render`` on huge inputs.

Each case runs ``python -m bridge render`` in a fresh process with the shipped default preset, and reads
that process's peak resident memory (``getrusage`` of a parent whose only child it is). The limit is
1.5 GB (1536 MiB) for any single input ≤ 100 MB and any number of inputs; a render of one small image
peaks at about 810 MB, 710 MB of which is importing torch. Marked ``slow`` (10–20 s each here). The long
renders use ``--vocoder pghi`` (the images' side is what is measured; the full figures with the default
vocoder are in the README).
"""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LIMIT_MIB = 1536

_PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def _render(*args: str) -> tuple[int, int, str]:
    """``imgsonic render ARGS`` in a fresh process: (exit code, peak memory in MiB, stderr)."""
    done = subprocess.run([sys.executable, "-c", _PEAK, sys.executable, "-m", "bridge", "render", *args],
                          cwd=ROOT, capture_output=True, text=True, check=True)
    code, peak_mib = map(int, done.stdout.split())
    return code, peak_mib, done.stderr


def _gif(path: Path, *, side: int, n_frames: int, delay_cs: int, patch: int = 32) -> None:
    """A GIF of ``n_frames`` at ``side``² whose frames after the first are small patches (a few hundred kB for
    5000 frames): every frame decodes to the full size."""
    palette = bytes(value for index in range(256) for value in (index, index * 7 % 256, 255 - index))
    base = Image.new("P", (side, side), 0)
    base.putpalette(palette)
    with open(path, "wb") as stream:
        for chunk in GifImagePlugin.getheader(base, palette=palette, info={})[0]:
            stream.write(chunk)
        stream.write(b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")
        for index in range(n_frames):
            frame, offset = base, (0, 0)
            if index:
                frame = Image.new("P", (patch, patch), 1 + index % 250)
                frame.putpalette(palette)
                offset = (index * 37 % (side - patch), index * 91 % (side - patch))
            stream.write(b"!\xf9\x04\x04" + struct.pack("<H", delay_cs) + b"\x00\x00")
            for chunk in GifImagePlugin.getdata(frame, offset=offset):
                stream.write(chunk)
        stream.write(b";")


def test_a_9400_pixel_png(tmp_path):
    """9400 × 9400 px (88 megapixels, a 0.3 MB file; 3.5 GB before): ≤ 1.5 GB."""
    ramp = np.linspace(0, 255, 9400, dtype=np.float32)
    pixels = np.empty((9400, 9400, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = ramp[:, None], ramp[None, :], 128
    Image.fromarray(pixels).save(tmp_path / "big.png")
    del pixels
    code, peak, err = _render(str(tmp_path / "big.png"), "-o", str(tmp_path / "x.wav"))
    assert code == 0, err
    assert peak <= LIMIT_MIB


def test_ten_8000_pixel_jpegs(tmp_path):
    """Ten JPEGs of 8000 × 8000 px (4.9 GB before): ≤ 1.5 GB."""
    ramp = np.linspace(0, 255, 8000, dtype=np.float32)
    pixels = np.empty((8000, 8000, 3), np.uint8)
    pixels[..., 0], pixels[..., 1] = ramp[:, None], ramp[None, :]
    for index in range(10):
        pixels[..., 2] = index * 25
        Image.fromarray(pixels).save(tmp_path / f"j{index}.jpg", quality=85)
    del pixels
    code, peak, err = _render(str(tmp_path), "-o", str(tmp_path / "x.wav"))
    assert code == 0, err
    assert peak <= LIMIT_MIB


def test_a_thousand_images(tmp_path):
    """1000 PNGs, 1000 s of sound: ≤ 1.5 GB."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(1000):
        Image.fromarray((rng.random((64, 80, 3)) * 255).astype(np.uint8)).save(folder / f"m{index}.png")
    code, peak, err = _render(str(folder), "-o", str(tmp_path / "x.wav"), "--vocoder", "pghi")
    assert code == 0, err
    assert peak <= LIMIT_MIB


def test_a_gif_of_5000_frames_at_1024_pixels(tmp_path):
    """5000 frames of 1024 × 1024 px, 100 ms each (500 s of sound; > 8 GB before): ≤ 1.5 GB."""
    _gif(tmp_path / "anim.gif", side=1024, n_frames=5000, delay_cs=10)
    code, peak, err = _render(str(tmp_path / "anim.gif"), "-o", str(tmp_path / "x.wav"), "--vocoder", "pghi")
    assert code == 0, err
    assert peak <= LIMIT_MIB


def test_a_gif_of_very_long_frames(tmp_path):
    """50 frames of 655 s (9.1 h of sound; > 8 GB before) are refused by the 3 h cap in one line; 50 frames
    of 65.5 s (54.6 min of sound) render within 1.5 GB: the timeline is rendered piece by piece."""
    _gif(tmp_path / "long.gif", side=256, n_frames=50, delay_cs=65500)
    code, peak, err = _render(str(tmp_path / "long.gif"), "-o", str(tmp_path / "x.wav"))
    assert code == 2 and err.strip().splitlines()[-1].endswith("pass --max-duration to render longer")
    _gif(tmp_path / "shorter.gif", side=256, n_frames=50, delay_cs=6550)
    code, peak, err = _render(str(tmp_path / "shorter.gif"), "-o", str(tmp_path / "x.wav"), "--vocoder", "pghi")
    assert code == 0, err
    assert peak <= LIMIT_MIB
    assert os.path.getsize(tmp_path / "x.wav") > 50 * 65.5 * 44100 * 4
