"""prepare_image: every accepted layout and dtype, analytic results, and every rejected input."""

import numpy as np
import pytest
import torch

from models.errors import InputError, ParameterError
from models.preprocess import prepare_image, prepare_images


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "shape, dtype",
    [
        ((7, 13), np.uint8),
        ((13, 7, 1), np.uint8),
        ((7, 13, 3), np.uint8),
        ((20, 9, 4), np.uint8),
        ((7, 13, 3), np.uint16),
        ((7, 13), np.bool_),
        ((64, 100, 3), np.float32),
        ((1, 1), np.float64),
        ((5, 5, 4), np.float16),
    ],
)
@pytest.mark.parametrize("size, channels", [(32, 1), (8, 3), (3, 3)])
def test_any_image_becomes_model_input(shape, dtype, size, channels, rng):
    if dtype == np.bool_:
        image = rng.random(shape) > 0.5
    elif np.issubdtype(dtype, np.integer):
        image = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    else:
        image = rng.random(shape).astype(dtype)
    result = prepare_image(image, size=size, channels=channels)
    assert result.shape == (channels, size, size)
    assert result.dtype == torch.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_dtype_scaling():
    full = {np.uint8: 255, np.uint16: 65535}
    for dtype, value in full.items():
        assert torch.all(prepare_image(np.full((4, 4), value, dtype), size=4, channels=1) == 1.0)
    half16 = prepare_image(np.full((4, 4), 32768, np.uint16), size=4, channels=1)
    torch.testing.assert_close(half16, torch.full((1, 4, 4), 32768 / 65535))
    assert torch.all(prepare_image(np.ones((4, 4), bool), size=4, channels=3) == 1.0)


def test_luma_weights_and_grey_to_rgb():
    red, green, blue = (np.zeros((2, 2, 3), np.uint8) for _ in range(3))
    red[..., 0], green[..., 1], blue[..., 2] = 255, 255, 255
    for image, weight in ((red, 0.299), (green, 0.587), (blue, 0.114)):
        torch.testing.assert_close(prepare_image(image, size=2, channels=1), torch.full((1, 2, 2), weight))
    grey = prepare_image(np.full((3, 3), 0.25, np.float32), size=3, channels=3)
    assert torch.all(grey == 0.25)


def test_rgba_is_composited_over_black():
    rgba = np.zeros((2, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, :, 3] = 255
    rgba[1, :, 3] = 0
    rgba[1, :2, 3] = 51  # a fifth of the way opaque
    result = prepare_image(rgba, size=2, channels=3)
    # the centre 2×2 crop is columns 1 and 2
    torch.testing.assert_close(result[:, 0], torch.full((3, 2), 200 / 255))
    torch.testing.assert_close(result[:, 1], torch.tensor([[0.2 * 200 / 255, 0.0]] * 3))


def test_centre_crop_then_area_and_bilinear_resize():
    image = np.zeros((10, 20), np.uint8)
    image[:, :5] = 255
    image[:, 15:] = 255
    assert torch.all(prepare_image(image, size=5, channels=1) == 0.0)  # the white sides are cropped away
    checker = (np.indices((16, 16)).sum(axis=0) % 2).astype(np.float32)
    torch.testing.assert_close(prepare_image(checker, size=4, channels=1), torch.full((1, 4, 4), 0.5))
    constant = np.full((8, 8), 0.7, np.float32)
    torch.testing.assert_close(prepare_image(constant, size=32, channels=1), torch.full((1, 32, 32), 0.7))


def test_tensors_flipped_views_and_slight_float_overshoot(rng):
    image = rng.random((9, 9, 3)).astype(np.float32)
    from_numpy = prepare_image(image, size=9, channels=3)
    assert torch.equal(prepare_image(torch.from_numpy(image), size=9, channels=3), from_numpy)
    flipped = prepare_image(image[::-1], size=9, channels=3)
    assert torch.equal(flipped, from_numpy.flip(1))
    assert prepare_image(np.full((2, 2), 1.0005, np.float32), size=2, channels=1).max() == 1.0


@pytest.mark.parametrize(
    "image, words",
    [
        (np.zeros((0, 5), np.uint8), ["empty", "(0, 5)"]),
        (np.zeros((5, 0, 3), np.uint8), ["empty"]),
        (np.zeros(5, np.uint8), ["shape (5,)"]),
        (np.zeros((1, 5, 5, 3), np.uint8), ["shape (1, 5, 5, 3)"]),
        (np.zeros((5, 5, 2), np.uint8), ["2 channels", "grey+alpha"]),
        (np.zeros((5, 5, 5), np.uint8), ["5 channels"]),
        (np.zeros((3, 32, 32), np.uint8), ["32 channels", "channel-first"]),
        (np.array([[0.5, np.nan]]), ["NaN"]),
        (np.array([[0.5, np.inf]]), ["infinite"]),
        (np.full((2, 2), 128.0), ["[128, 128]", "255"]),
        (np.full((2, 2), -0.5), ["[-0.5, -0.5]"]),
        (np.zeros((2, 2), np.int64), ["torch.int64", "uint8"]),
        (np.array([["a"]]), ["unsupported"]),
        ([[0, 1], [1, 0]], ["list"]),
    ],
)
def test_bad_images_raise_input_error(image, words):
    with pytest.raises(InputError) as error:
        prepare_image(image, size=4, channels=1)
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("size, channels", [(0, 1), (4.0, 1), (4, 2), (4, True)])
def test_bad_size_or_channels_raise_parameter_error(size, channels):
    with pytest.raises(ParameterError):
        prepare_image(np.zeros((4, 4), np.uint8), size=size, channels=channels)


def test_batch_helper_stacks_and_names_the_bad_image():
    images = [np.zeros((5, 7), np.uint8), np.ones((9, 4, 3), np.float32)]
    batch = prepare_images(images, size=6, channels=3)
    assert batch.shape == (2, 3, 6, 6)
    assert torch.equal(batch[1], prepare_image(images[1], size=6, channels=3))
    with pytest.raises(InputError, match="image 1: .*empty"):
        prepare_images([images[0], np.zeros((0, 3))], size=6, channels=3)
    with pytest.raises(InputError, match="no images"):
        prepare_images([], size=6, channels=3)
