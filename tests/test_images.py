"""Image sources: natural order, folders and globs, Pillow decoding of awkward files, bad files, descriptors."""

import numpy as np
import pytest
from PIL import Image

from bridge.sources.descriptors import DESCRIPTORS, describe_image
from bridge.sources.images import (
    expand_inputs,
    load_images,
    natural_sort_key,
    read_image,
)
from models.errors import InputError, ParameterError


def _png(path, size=(6, 4), value=128):
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path)
    return path


def test_natural_sort_orders_numbers_by_value():
    names = ["img10.png", "img2.png", "IMG1.png", "img1b.png"]
    assert sorted(names, key=natural_sort_key) == ["IMG1.png", "img1b.png", "img2.png", "img10.png"]


def test_folder_expands_naturally_and_skips_other_files(tmp_path):
    for name in ("f10.png", "f2.jpg", "f1.png"):
        _png(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in expand_inputs([tmp_path])] == ["f1.png", "f2.jpg", "f10.png"]


def test_inputs_keep_their_order_and_globs_sort_naturally(tmp_path):
    for name in ("a3.png", "a20.png", "b.png"):
        _png(tmp_path / name)
    paths = expand_inputs([str(tmp_path / "b.png"), str(tmp_path / "a*.png")])
    assert [p.name for p in paths] == ["b.png", "a3.png", "a20.png"]


@pytest.mark.parametrize("entry", ["missing.png", "nothing-*.png"])
def test_missing_inputs_are_named(tmp_path, entry):
    with pytest.raises(InputError, match=entry.replace("*", r"\*")):
        expand_inputs([str(tmp_path / entry)])


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="holds no image"):
        expand_inputs([tmp_path])


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n garbage that is no image", b"hello"])
def test_corrupt_or_empty_images_name_the_file(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(InputError, match="broken.png"):
        load_images([path])


def test_truncated_image_names_the_file(tmp_path):
    path = tmp_path / "cut.png"
    _png(path, size=(64, 64))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(InputError, match="cut.png"):
        read_image(path)


def test_palette_becomes_rgba_and_16_bit_stays_16_bit(tmp_path):
    palette = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).convert("P")
    palette.save(tmp_path / "palette.png")
    assert read_image(tmp_path / "palette.png").shape == (3, 4, 4)

    deep = np.full((3, 5), 40000, dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pixels = read_image(tmp_path / "deep.png")
    assert pixels.dtype == np.uint16 and pixels.shape == (3, 5) and int(pixels[0, 0]) == 40000


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((2, 6, 3), dtype=np.uint8))  # 6 wide, 2 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert read_image(tmp_path / "rotated.jpg").shape[:2] == (6, 2)


def test_descriptors_are_bounded_and_mean_what_they_say(rng):
    black = describe_image(np.zeros((16, 16, 3)))
    white = describe_image(np.ones((3, 16, 16)))  # channel-first works too
    assert black["brightness"] == 0.0 and white["brightness"] == pytest.approx(1.0)
    checker = np.indices((16, 16)).sum(axis=0) % 2 * np.ones((3, 1, 1))
    assert describe_image(checker)["edge_density"] == 1.0
    assert describe_image(checker)["contrast"] == pytest.approx(1.0)
    hues = [describe_image(np.broadcast_to(colour, (8, 8, 3)))["hue"] for colour in np.eye(3)]
    assert hues == pytest.approx([0.0, 1 / 3, 2 / 3], abs=1e-6)
    noise = describe_image(rng.random((16, 16, 3)))
    assert set(noise) == set(DESCRIPTORS)
    assert all(0.0 <= value <= 1.0 for value in noise.values())


def test_batch_descriptors_are_each_image_described_alone(rng):
    """``describe_images`` computes a batch in one pass per statistic: no statistic may mix images (each row
    is what the image gives in a batch of one), also for uniform images (no hue, one histogram bin), luma
    exactly at 1.0 (the last bin) and either channel order."""
    from bridge.sources.descriptors import describe_images

    batch = rng.random((6, 3, 12, 10))
    batch[1] = 0.0
    batch[2] = 1.0
    batch[3] = np.eye(3)[1][:, None, None]
    batch[4, :, :4] = 1.0
    rows = describe_images(batch)
    assert rows.shape == (6, len(DESCRIPTORS))
    for image, row in zip(batch, rows):
        alone = describe_image(np.moveaxis(image, 0, -1))  # channel-last alone, channel-first in the batch
        np.testing.assert_allclose(row, [alone[name] for name in DESCRIPTORS], rtol=0, atol=1e-6)
    assert rows[1, DESCRIPTORS.index("entropy")] == 0.0 and rows[2, DESCRIPTORS.index("brightness")] == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="expected"):
        describe_images(np.zeros((2, 5, 8, 8)))


def test_video_without_a_reader_says_what_to_install(tmp_path, monkeypatch):
    import sys

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    monkeypatch.setitem(sys.modules, "imageio.v3", None)  # as if imageio were not installed
    with pytest.raises(InputError, match=r"clip.mp4.*imgsonic\[video\]"):
        load_images([video])


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_an_animation_is_sampled_like_a_video_by_its_frame_durations(tmp_path, suffix):
    from PIL import Image

    # four solid frames lasting 0.5, 1.5, 0.5 and 1.0 s: at 1 frame per second, t = 0, 1, 2, 3 s show frames 0, 1, 2, 3
    # and at 2 frames per second t = 0, 0.5, …, 3.0 s show 0, 1, 1, 1, 2, 3, 3
    levels = [0, 80, 160, 240]
    frames = [Image.new("RGB", (8, 6), (level, 255 - level, 0)) for level in levels]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[500, 1500, 500, 1000], loop=0)
    for fps, expected in ((1.0, [0, 1, 2, 3]), (2.0, [0, 1, 1, 1, 2, 3, 3])):
        items = load_images([path], video_frames_per_second=fps)
        assert [item.name for item in items] == [f"{path}#frame{index}" for index in expected]
        reds = [int(np.asarray(item.pixels)[..., 0].mean()) for item in items]
        assert reds == pytest.approx([levels[index] for index in expected], abs=4)
    assert read_image(path).shape[:2] == (6, 8)  # a single image read (OSC, live): the first frame


def test_a_still_gif_is_one_image(tmp_path):
    from PIL import Image

    Image.new("P", (5, 4)).save(tmp_path / "still.gif")
    items = load_images([tmp_path / "still.gif"], video_frames_per_second=4.0)
    assert [item.name for item in items] == [str(tmp_path / "still.gif")]
