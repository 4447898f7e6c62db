"""The live engine's image loading: bounded decoding (size cap from the header, centre square, reduction), the
decoder process (timeout, memory limit), and the loader thread (latest wins, cache, failures survived)."""

import os
import threading
import time

import numpy as np
import pytest
from PIL import Image

from bridge.live.image_decoder import decode_bounded, header_pixels
from bridge.live.image_loader import DecoderProcess, ImageLoader
from bridge.sources.images import read_image
from models.errors import InputError
from models.preprocess import prepare_image


def _gradient(width, height, mode="RGB"):
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], -1)
    return Image.fromarray(pixels.astype(np.uint8)).convert(mode)


@pytest.mark.parametrize("mode, size, suffix", [("RGB", (300, 200), ".png"), ("P", (64, 96), ".png"),
                                                ("LA", (80, 80), ".png"), ("I;16", (50, 70), ".png"),
                                                ("RGB", (640, 480), ".jpg"), ("L", (33, 17), ".bmp")])
def test_small_images_give_the_models_exactly_what_read_image_gives(tmp_path, mode, size, suffix):
    path = tmp_path / f"image{suffix}"
    _gradient(*size, mode=mode).save(path)
    bounded = decode_bounded(path, max_side=256, max_pixels=10**8)
    assert min(bounded.shape[:2]) == min(size) and bounded.shape[0] == bounded.shape[1]  # the centre square
    for channels in (1, 3):
        np.testing.assert_array_equal(prepare_image(bounded, size=64, channels=channels),
                                      prepare_image(read_image(path), size=64, channels=channels))


def test_exif_orientation_is_applied_as_read_image_applies_it(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    _gradient(3000, 2000).save(path, exif=exif, quality=95)
    bounded = decode_bounded(path, max_side=256, max_pixels=10**8)
    full = prepare_image(read_image(path), size=64, channels=3)
    assert max(bounded.shape[:2]) < 512  # decoded small (JPEG draft at 1/4), not at 6 megapixels
    assert float((prepare_image(bounded, size=64, channels=3) - full).abs().mean()) < 0.01


def test_a_large_image_is_reduced_and_stays_close_to_the_full_decode(tmp_path):
    path = tmp_path / "large.png"
    y, x = np.mgrid[0:2300, 0:4100] / 2300
    smooth = np.stack([np.sin(3 * x) ** 2, np.cos(5 * y) ** 2, np.sin(2 * x + 7 * y) ** 2], -1)
    Image.fromarray((smooth * 255).astype(np.uint8)).save(path)
    bounded = decode_bounded(path, max_side=256, max_pixels=10**8)
    assert bounded.shape[:2] == (288, 288)  # the 2300-pixel square box-reduced by 8 (a partial last box)
    full = prepare_image(read_image(path), size=64, channels=3)
    difference = (prepare_image(bounded, size=64, channels=3) - full).abs()
    assert float(difference.mean()) < 0.005 and float(difference.max()) < 0.03


def test_the_size_cap_is_read_from_the_header_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    _gradient(2000, 1500).save(path)
    assert header_pixels(path) == 3_000_000
    with pytest.raises(InputError, match=r"2000×1500 = 3.0 megapixels, over the cap of 1; pass imgsonic live --max-image-megapixels 3 "):
        decode_bounded(path, max_side=256, max_pixels=1_000_000)
    for bad, reason in ((b"", "empty file"), (b"\x89PNG\r\n\x1a\n not a png", "cannot be decoded")):
        (tmp_path / "bad.png").write_bytes(bad)
        with pytest.raises(InputError, match=reason):
            decode_bounded(tmp_path / "bad.png", max_side=256, max_pixels=10**8)


def test_the_decoder_process_decodes_gives_up_when_late_and_restarts(tmp_path):
    path = tmp_path / "large.png"
    _gradient(3000, 2000).save(path)
    decoder = DecoderProcess(timeout_s=30.0)
    try:
        pixels = decoder.decode(path, max_side=256, max_pixels=10**8)
        np.testing.assert_array_equal(pixels, decode_bounded(path, max_side=256, max_pixels=10**8))
        with pytest.raises(InputError, match="over the cap of 1"):  # refused in the process, which goes on
            decoder.decode(path, max_side=256, max_pixels=1_000_000)
        decoder.timeout_s = 1e-4
        with pytest.raises(InputError, match="took longer than"):
            decoder.decode(path, max_side=256, max_pixels=10**8)
        decoder.timeout_s = 30.0
        assert decoder.decode(path, max_side=256, max_pixels=10**8).shape == pixels.shape
        assert decoder.restarts == 1
    finally:
        decoder.close()


def test_the_decoder_process_has_a_memory_limit(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (8000, 8000), (90, 160, 20)).save(path)  # 192 MB decoded
    decoder = DecoderProcess(memory_mb=200)  # numpy, Pillow and Python take most of that already
    try:
        with pytest.raises(InputError, match="more memory than the decoder may use|ended the decoder"):
            decoder.decode(path, max_side=256, max_pixels=10**8)
    finally:
        decoder.close()


def test_the_loader_plays_the_latest_and_drops_what_waited_too_long(tmp_path):
    for index in range(12):
        _gradient(20 + index, 20).save(tmp_path / f"{index}.png")
    gate, done = threading.Event(), []
    loader = ImageLoader(max_pending=3)
    try:
        loader.submit([tmp_path / "0.png"], lambda pixels: gate.wait(10), what="the first")
        time.sleep(0.2)  # the worker is busy with the first job
        for index in range(1, 12):
            loader.submit([tmp_path / f"{index}.png"], lambda pixels, index=index: done.append(index),
                          what=f"image {index}")
        gate.set()
        assert loader.wait_idle()
    finally:
        loader.close()
    assert done == [9, 10, 11] and loader.superseded == 8


def test_the_loader_caches_by_file_and_survives_bad_files(tmp_path, caplog):
    path = tmp_path / "a.png"
    _gradient(30, 30).save(path)
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    (tmp_path / "empty.png").write_bytes(b"")
    loader = ImageLoader()
    try:
        first = loader.read(path)
        assert loader.read(path) is first and loader.loads == 1 and not first.flags.writeable
        _gradient(31, 31).save(path)
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert loader.read(path).shape == (31, 31, 3) and loader.loads == 2
        seen = []
        for name in ("corrupt.png", "empty.png", "missing.png", "a.png"):
            loader.submit([tmp_path / name], seen.append, what=f"image {name}")
        assert loader.wait_idle()
    finally:
        loader.close()
    assert loader.failed == 3 and len(seen) == 1 and loader.done == 1
    assert "cannot be decoded" in caplog.text and "empty file" in caplog.text and "cannot be read" in caplog.text
