"""Training data: synthetic squares and tones, handwritten digits, FM timbres, a broad image set, user folders.

Every generator is seeded and returns in-memory tensors: images ``(n, C, size, size)`` and normalised log-mel
windows ``(n, n_mels, n_frames)``, both float32 in [0, 1], plus the factors or labels that made them (the
models never see those; the evaluator does).

Sounds are rendered a little longer than the window and the window is cut from the middle of the analysis, so
no frame sees the reflect padding at the clip's edges: frame ``k`` of the window is centred on sample
``n_fft // 2 + k * hop_length`` of a clip of ``n_fft + (n_frames - 1) * hop_length`` samples.

Example
-------
>>> images, factors = make_squares(4, size=32, seed=0)
>>> tuple(images.shape), tuple(factors.shape)
((4, 1, 32, 32), (4, 2))
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models.errors import InputError, ParameterError
from models.preprocess import prepare_image, prepare_images
from synth.sources import (
    hz_to_midi,
    render_fm,
    render_noise_bursts,
    render_sines,
    sample_fm_params,
    sample_sine_params,
)
from synth.audio_io import read_audio
from synth.spectral import SpectralConfig, audio_to_mel

__all__ = [
    "make_squares",
    "make_sine_tones",
    "load_digits_split",
    "make_fm_timbres",
    "make_synth_palette",
    "make_broad_images",
    "near_copies",
    "images_from_folder",
    "sounds_from_folder",
    "FM_PARAM_NAMES",
]

log = logging.getLogger(__name__)

# The square's side as a fraction of the image side, and its soft edge in pixels (a linear ramp).
_SQUARE_SIDE = 0.25
_SQUARE_EDGE_PX = 1.5
_DIGITS_TEST_FRACTION = 0.2
_DIGITS_SPLIT_SEED = 0
FM_PARAM_NAMES = ("pitch_midi", "ratio", "index", "peak_db", "attack_s", "sustain_level", "release_s", "vibrato_depth_cents")
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
_SOUND_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
# Windows whose loudest mel value is below this (normalised dB) are silence: they teach a model nothing.
_SILENT_WINDOW = 0.05


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParameterError(f"{name}={value!r}; expected an int >= 1")
    return value


def make_squares(n: int, *, size: int, seed: int, side_range: tuple[float, float] = (_SQUARE_SIDE, _SQUARE_SIDE),
                 edge_range_px: tuple[float, float] = (_SQUARE_EDGE_PX, _SQUARE_EDGE_PX)) -> tuple[Tensor, Tensor]:
    """White squares on black with a soft fall-off, varying in x and y (and, given ranges, in side and softness).

    Parameters
    ----------
    n : number of images.
    size : image side in pixels.
    seed : same seed → same images.
    side_range : (smallest, largest) side of the square as a fraction of ``size`` (default: a quarter, always).
    edge_range_px : (softest, hardest) fall-off in pixels: a linear ramp from 1 at the side to 0 this far outside
        it (default 1.5 px, always).

    The centre is uniform over one range for every square: from ``m`` to ``size − m`` pixels, where ``m`` is
    the smallest half-side plus the widest edge, so position and size are independent wherever they can be.
    Each square's side is then uniform between the smallest side and the largest that fits at its centre
    (capped at ``side_range[1]``): near the edges only small squares fit. With the default (fixed) ranges
    every square has the same side and edge.

    Returns
    -------
    images : ``(n, 1, size, size)`` float32 in [0, 1].
    factors : ``(n, 2)`` float32, ``(x, y)`` of the square's centre in [0, 1] (0 = ``m`` px from the left /
        top edge, 1 = ``m`` px from the right / bottom edge), whatever its side.

    Example
    -------
    >>> images, factors = make_squares(2, size=16, seed=1)
    >>> bool(images.max() == 1.0), bool(factors.min() >= 0.0)
    (True, True)
    """
    _check_count("n", n)
    _check_count("size", size)
    for name, (low, high), limit in (("side_range", side_range, 1.0), ("edge_range_px", edge_range_px, size / 2)):
        if not 0 < low <= high <= limit:
            raise ParameterError(f"{name}={(low, high)!r}; expected 0 < low <= high <= {limit:g}")
    generator = torch.Generator().manual_seed(seed)
    factors = torch.rand(n, 2, generator=generator)
    margin = side_range[0] * size / 2 + edge_range_px[1]
    if not margin < size / 2:
        raise ParameterError(f"side_range={side_range!r} with edges up to {edge_range_px[1]} px leave no room in {size} px")
    centres = margin + factors * (size - 2 * margin)  # (n, 2) in pixels
    uniform = torch.rand(n, 2, generator=generator)
    edge = edge_range_px[0] + uniform[:, 0] * (edge_range_px[1] - edge_range_px[0])
    room = torch.minimum(centres, size - centres).amin(dim=1) - edge  # the largest half-side that fits
    largest = torch.minimum(torch.full_like(room, side_range[1] * size / 2), room)
    smallest = torch.full_like(room, side_range[0] * size / 2)
    half_side = smallest + uniform[:, 1] * (largest - smallest).clamp_min(0.0)
    pixel = torch.arange(size, dtype=torch.float32) + 0.5

    def profile(centre: Tensor) -> Tensor:  # (n,) → (n, size): 1 inside, a linear ramp over the edge
        distance = (pixel[None, :] - centre[:, None]).abs()
        return ((half_side[:, None] + edge[:, None] - distance) / edge[:, None]).clamp(0.0, 1.0)

    images = profile(centres[:, 1])[:, :, None] * profile(centres[:, 0])[:, None, :]
    return images.unsqueeze(1).contiguous(), factors


def _window_n_samples(config: SpectralConfig, n_frames: int) -> int:
    if (config.n_fft // 2) % config.hop_length:
        raise ParameterError(
            f"n_fft // 2 = {config.n_fft // 2} is not a multiple of hop_length={config.hop_length}; "
            "the datasets cut windows on frame boundaries"
        )
    return config.n_fft + (n_frames - 1) * config.hop_length


def _audio_to_windows(audio: np.ndarray | Tensor, *, config: SpectralConfig, n_frames: int) -> Tensor:
    """Clips of :func:`_window_n_samples` samples → their centre windows ``(n, n_mels, n_frames)``."""
    first = config.n_fft // 2 // config.hop_length
    mels = []
    for start in range(0, len(audio), 2048):  # bounded memory for large data sets
        chunk = torch.as_tensor(audio[start : start + 2048])
        mels.append(audio_to_mel(chunk, config=config)[..., first : first + n_frames])
    return torch.cat(mels).float().contiguous()


def make_sine_tones(n: int, *, config: SpectralConfig, n_frames: int, seed: int) -> tuple[Tensor, Tensor]:
    """Constant sine tones varying in pitch (MIDI 38–86, uniform) and loudness (−40…0 dBFS peak, uniform).

    Returns
    -------
    mels : ``(n, n_mels, n_frames)`` float32 in [0, 1].
    factors : ``(n, 2)`` float32, ``(pitch_midi, loudness_db)``.

    Example
    -------
    >>> config = SpectralConfig(sample_rate=8000, n_fft=2048, hop_length=512, n_mels=64, f_min_hz=65.0,
    ...                         f_max_hz=1300.0)
    >>> mels, factors = make_sine_tones(3, config=config, n_frames=1, seed=0)
    >>> tuple(mels.shape), tuple(factors.shape)
    ((3, 64, 1), (3, 2))
    """
    _check_count("n", n)
    _check_count("n_frames", n_frames)
    params = sample_sine_params(n_examples=n, seed=seed)
    audio = render_sines(params, sample_rate=config.sample_rate, n_samples=_window_n_samples(config, n_frames))
    factors = np.stack([hz_to_midi(params.f0_hz), params.peak_db], axis=1)
    return _audio_to_windows(audio, config=config, n_frames=n_frames), torch.as_tensor(factors, dtype=torch.float32)


def load_digits_split(split: str, *, size: int) -> tuple[Tensor, Tensor]:
    """scikit-learn's 1797 handwritten 8×8 digits, split 80/20 by a fixed seed, enlarged to ``size`` pixels.

    Parameters
    ----------
    split : "train" (1438 images) or "test" (359 images); the split is the same on every call.
    size : output side in pixels (bilinear enlargement).

    Returns
    -------
    images : ``(n, 1, size, size)`` float32 in [0, 1].
    labels : ``(n,)`` int64 digit classes 0–9.

    Example
    -------
    >>> images, labels = load_digits_split("test", size=16)
    >>> tuple(images.shape), int(labels.max())
    ((359, 1, 16, 16), 9)
    """
    if split not in ("train", "test"):
        raise ParameterError(f"split={split!r}; expected 'train' or 'test'")
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(_DIGITS_SPLIT_SEED).permutation(len(digits.images))
    n_test = round(_DIGITS_TEST_FRACTION * len(order))
    chosen = order[n_test:] if split == "train" else order[:n_test]
    pixels = (digits.images[chosen] / 16.0).astype(np.float32)
    images = prepare_images(list(pixels), size=size, channels=1)
    return images, torch.as_tensor(digits.target[chosen], dtype=torch.long)


def _fm_params(n: int, *, duration_s: float, seed: int | np.random.Generator, wide: bool):
    """FM parameters; ``wide`` widens every range (the default preset's palette)."""
    return sample_fm_params(
        n_examples=n,
        seed=seed,
        pitch_midi_range=(36.0, 84.0) if wide else (40.0, 76.0),
        ratio_range=(0.5, 4.0) if wide else (0.5, 3.0),
        index_range=(0.0, 6.0) if wide else (0.0, 4.0),
        peak_db_range=(-30.0, 0.0) if wide else (-20.0, 0.0),
        attack_s_range=(0.0, 0.4 * duration_s),
        decay_s_range=(0.1 * duration_s, 0.3 * duration_s),
        sustain_level_range=(0.2, 1.0),
        release_s_range=(0.0, 0.4 * duration_s),
        vibrato_depth_cents_range=(0.0, 80.0) if wide else (0.0, 50.0),
        vibrato_rate_hz_range=(4.0, 12.0),
    )


def make_fm_timbres(n: int, *, config: SpectralConfig, n_frames: int, seed: int) -> tuple[Tensor, Tensor]:
    """Two-operator FM tones with envelopes and vibrato (``synth.sources.render_fm``) as mel windows.

    Envelope times scale with the window's duration, so every window holds a whole note.

    Returns
    -------
    mels : ``(n, n_mels, n_frames)`` float32 in [0, 1].
    params : ``(n, 8)`` float32, columns :data:`FM_PARAM_NAMES` (pitch in MIDI, ratio, index, peak dB,
        attack s, sustain level, release s, vibrato depth cents).

    Example
    -------
    >>> config = SpectralConfig(sample_rate=16000, n_fft=1024, hop_length=256, n_mels=64, f_min_hz=30.0,
    ...                         f_max_hz=8000.0)
    >>> mels, params = make_fm_timbres(2, config=config, n_frames=8, seed=0)
    >>> tuple(mels.shape), tuple(params.shape)
    ((2, 64, 8), (2, 8))
    """
    _check_count("n", n)
    _check_count("n_frames", n_frames)
    n_samples = _window_n_samples(config, n_frames)
    params = _fm_params(n, duration_s=n_samples / config.sample_rate, seed=seed, wide=False)
    audio = render_fm(params, sample_rate=config.sample_rate, n_samples=n_samples)
    columns = [hz_to_midi(params.f0_hz)] + [getattr(params, name) for name in FM_PARAM_NAMES[1:]]
    return (
        _audio_to_windows(audio, config=config, n_frames=n_frames),
        torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float32),
    )


def make_synth_palette(n: int, *, config: SpectralConfig, n_frames: int, seed: int) -> Tensor:
    """A broad palette of synth sounds as mel windows ``(n, n_mels, n_frames)``: the default preset's audio.

    70 % FM tones over wide ranges (sine-like to bright and inharmonic, with envelopes and vibrato), 15 %
    plain sines, 15 % noise bursts; shuffled by ``seed``.
    """
    _check_count("n", n)
    _check_count("n_frames", n_frames)
    rng = np.random.default_rng(seed)
    n_samples = _window_n_samples(config, n_frames)
    n_sines = n_noise = max(1, n * 15 // 100) if n >= 3 else 0
    n_fm = n - n_sines - n_noise
    parts = [render_fm(_fm_params(n_fm, duration_s=n_samples / config.sample_rate, seed=rng, wide=True),
                       sample_rate=config.sample_rate, n_samples=n_samples)]
    if n_sines:
        sines = sample_sine_params(n_examples=n_sines, seed=rng, pitch_midi_range=(36.0, 96.0), peak_db_range=(-30.0, 0.0))
        parts.append(render_sines(sines, sample_rate=config.sample_rate, n_samples=n_samples))
        parts.append(render_noise_bursts(n_examples=n_noise, seed=rng, sample_rate=config.sample_rate,
                                         n_samples=n_samples, bursts_per_example=2))
    audio = np.concatenate(parts)[rng.permutation(n)]
    return _audio_to_windows(audio, config=config, n_frames=n_frames)


# Photos kept out of training so that the evaluation has photos the models never saw (training.wide_eval).
HELD_OUT_PHOTOS = {
    "skimage": ("coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_right.png", "hubble_deep_field.jpg",
                "retina.jpg"),
    "matplotlib": ("grace_hopper.jpg",),
}
_NOT_PHOTOS = ("chessboard_GRAY.png", "chessboard_RGB.png")  # test patterns (and textures the evaluation uses)


def _sample_photo_paths() -> list[Path]:
    """Photos shipped inside installed packages (no downloads): every image in scikit-image's data folder and
    matplotlib's sample data, less :data:`HELD_OUT_PHOTOS` and test patterns. scikit-learn's two photos are
    loaded separately (it is a dependency)."""
    folders = {"skimage": "data", "matplotlib": "mpl-data/sample_data"}
    suffixes = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
    paths = []
    for package, folder in folders.items():
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(list(spec.submodule_search_locations)[0]) / folder
        if not base.is_dir():
            continue
        skip = set(HELD_OUT_PHOTOS.get(package, ())) | set(_NOT_PHOTOS)
        paths += sorted(path for path in base.iterdir()
                        if path.suffix.lower() in suffixes and path.name not in skip and "multipage" not in path.name)
    return paths


def _sample_photos() -> list[Tensor]:
    """Every available sample photo as ``(3, H, W)`` float32 in [0, 1]."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = [torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255.0 for image in load_sample_images().images]
    for path in _sample_photo_paths():
        with Image.open(path) as image:
            if image.mode in ("I;16", "I;16B", "I"):
                pixels = np.asarray(image, dtype=np.float64)
                pixels = np.repeat((pixels / max(1.0, pixels.max()) * 255).astype(np.uint8)[..., None], 3, axis=-1)
            else:
                pixels = np.asarray(image.convert("RGB"))
        photos.append(torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0)
    return photos


def _random_crops(photos: list[Tensor], n: int, *, size: int, generator: torch.Generator) -> Tensor:
    """Square crops (a sixth of the short side up to all of it), randomly placed and flipped, resized."""
    crops = torch.empty(n, 3, size, size)
    choice = torch.randint(len(photos), (n,), generator=generator)
    uniform = torch.rand(n, 4, generator=generator)
    for i in range(n):
        photo = photos[int(choice[i])]
        height, width = photo.shape[1:]
        side = max(2, int(min(height, width) * (1 / 6 + 5 / 6 * float(uniform[i, 0]))))
        top = int((height - side) * float(uniform[i, 1]))
        left = int((width - side) * float(uniform[i, 2]))
        crop = photo[None, :, top : top + side, left : left + side]
        mode = "area" if side >= size else "bilinear"
        crop = F.interpolate(crop, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))
        crops[i] = crop[0].flip(-1) if uniform[i, 3] < 0.5 else crop[0]
    return crops.clamp(0.0, 1.0)


def _procedural_images(n: int, *, size: int, generator: torch.Generator) -> Tensor:
    """Flat and simple images: solid colours, linear gradients, smooth gratings, discs/rectangles, landscape sketches
    (sky gradient, horizon, ground, sometimes a sun), each in random colours."""
    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator)

    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (size, size) in (0, 1)
    kind = torch.randint(5, (n,), generator=generator)
    colour_a, colour_b = rand(n, 3, 1, 1), rand(n, 3, 1, 1)
    angle = rand(n, 1, 1) * 2 * torch.pi
    along = (xx[None] - 0.5) * torch.cos(angle) + (yy[None] - 0.5) * torch.sin(angle)  # (n, size, size)

    gradient = (along + 0.71) / 1.42
    grating = 0.5 + 0.5 * torch.sin(2 * torch.pi * (1 + 11 * rand(n, 1, 1)) * along + 2 * torch.pi * rand(n, 1, 1))
    centre = rand(n, 2, 1, 1) * 0.8 + 0.1
    radius = rand(n, 1, 1) * 0.35 + 0.08
    disc = (((xx - centre[:, 0]) ** 2 + (yy - centre[:, 1]) ** 2).sqrt() < radius).float()
    box = (((xx - centre[:, 0]).abs() < radius) & ((yy - centre[:, 1]).abs() < radius * (0.4 + rand(n, 1, 1)))).float()
    shape = torch.where(rand(n, 1, 1) < 0.5, disc, box)

    mix = torch.zeros(n, size, size)
    for index, pattern in enumerate([mix, gradient, grating, shape]):
        mix = torch.where((kind == index)[:, None, None], pattern, mix)
    images = colour_a + (colour_b - colour_a) * mix[:, None]

    # landscape sketches: a sky gradient above a wavy horizon, textured ground, sometimes a sun
    horizon = 0.25 + 0.55 * rand(n, 1, 1) + 0.06 * torch.sin(2 * torch.pi * (0.5 + 2.5 * rand(n, 1, 1)) * xx[None]
                                                             + 6 * rand(n, 1, 1))
    sky = colour_a + (colour_b - colour_a) * (yy[None] / horizon).clamp(0, 1)[:, None]
    ground_colour = rand(n, 3, 1, 1)
    ground = ground_colour + 0.15 * rand(n, 1, 1, 1) * torch.randn(n, 1, size, size, generator=generator)
    scene = torch.where((yy[None] < horizon)[:, None], sky, ground)
    sun_at = rand(n, 2, 1, 1) * torch.tensor([0.8, 0.3]).view(1, 2, 1, 1) + torch.tensor([0.1, 0.05]).view(1, 2, 1, 1)
    sun = (((xx - sun_at[:, 0]) ** 2 + (yy - sun_at[:, 1]) ** 2) < (0.04 + 0.08 * rand(n, 1, 1)) ** 2) & (rand(n, 1, 1) < 0.6)
    scene = torch.where(sun[:, None], torch.tensor([1.0, 0.85, 0.4]).view(1, 3, 1, 1), scene)
    images = torch.where((kind == 4)[:, None, None, None], scene, images)
    return images.clamp(0.0, 1.0)


TEXTURE_KINDS = ("stripes", "checkers", "dots", "noise", "grid")


def _textures(n: int, *, size: int, generator: torch.Generator) -> Tensor:
    """Periodic and random textures over many scales: square and sine stripes at any angle, checkerboards (axis
    aligned or rotated), dot lattices, value noise of grains from 2 to ``size`` cells (smooth or blocky), line
    grids; each in two random colours (sometimes grey, sometimes low contrast); ``(n, 3, size, size)``."""
    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=generator)

    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    kind = torch.randint(len(TEXTURE_KINDS), (n,), generator=generator)
    cycles = torch.exp(math.log(1.5) + rand(n, 1, 1) * (math.log(size / 2.5) - math.log(1.5)))  # cycles per image
    angle = rand(n, 1, 1) * torch.pi
    # checkers, dots and grids: axis aligned half the time, else rotated
    lattice_angle = torch.where(rand(n, 1, 1) < 0.5, torch.zeros(n, 1, 1), angle)
    u = (xx[None] - 0.5) * torch.cos(lattice_angle) + (yy[None] - 0.5) * torch.sin(lattice_angle)
    v = -(xx[None] - 0.5) * torch.sin(lattice_angle) + (yy[None] - 0.5) * torch.cos(lattice_angle)
    phase = rand(n, 1, 1) * 2 * torch.pi

    along = (xx[None] - 0.5) * torch.cos(angle) + (yy[None] - 0.5) * torch.sin(angle)
    wave = torch.sin(2 * torch.pi * cycles * along + phase)
    stripes = torch.where(rand(n, 1, 1) < 0.5, (wave > 0).float(), 0.5 + 0.5 * wave)
    checkers = ((torch.floor(u * cycles + phase) + torch.floor(v * cycles)) % 2).float()
    fu, fv = (u * cycles + phase) % 1 - 0.5, (v * cycles) % 1 - 0.5
    dots = ((fu**2 + fv**2) < (0.15 + 0.25 * rand(n, 1, 1)) ** 2).float()
    width = 0.05 + 0.2 * rand(n, 1, 1)
    grid = ((fu.abs() < width) | (fv.abs() < width)).float()

    noise = torch.empty(n, size, size)
    cells = torch.exp(math.log(2) + rand(n) * (math.log(size) - math.log(2))).round().long()
    smooth = rand(n) < 0.7
    for i in range(n):  # value noise: one random grid per image, enlarged smoothly or in blocks
        coarse = rand(1, 1, int(cells[i]), int(cells[i]))
        mode = dict(mode="bicubic", align_corners=False) if smooth[i] and cells[i] < size else dict(mode="nearest")
        noise[i] = F.interpolate(coarse, size=(size, size), **mode)[0, 0].clamp(0, 1)

    mix = stripes
    for index, pattern in enumerate([stripes, checkers, dots, noise, grid]):
        mix = torch.where((kind == index)[:, None, None], pattern, mix)
    colour_a, colour_b = rand(n, 3, 1, 1), rand(n, 3, 1, 1)
    grey = rand(n, 1, 1, 1) < 0.2
    colour_a = torch.where(grey, colour_a.mean(1, keepdim=True).expand(-1, 3, -1, -1), colour_a)
    colour_b = torch.where(grey, colour_b.mean(1, keepdim=True).expand(-1, 3, -1, -1), colour_b)
    low_contrast = rand(n, 1, 1, 1) < 0.2
    colour_b = torch.where(low_contrast, (colour_a + 0.25 * (colour_b - colour_a)), colour_b)
    return (colour_a + (colour_b - colour_a) * mix[:, None]).clamp(0.0, 1.0)


def make_broad_images(n: int, *, size: int, seed: int) -> Tensor:
    """A broad RGB image set: 40 % crops of sample photos, 35 % textures, 25 % simple images; ``(n, 3, size, size)``.

    Photos: scikit-learn's ``load_sample_images`` (china, flower) plus the photos scikit-image and matplotlib
    ship, when those packages are installed, less :data:`HELD_OUT_PHOTOS`; crops from a sixth of the short side
    to all of it. Textures: :func:`_textures` (stripes, checkers, dots, noise of many grains, grids) at 1.5 to
    size / 2.5 cycles per image. Simple: solid colours, gradients, gratings, discs and rectangles, landscape
    sketches. Order is shuffled by ``seed``.

    Example
    -------
    >>> tuple(make_broad_images(4, size=16, seed=0).shape)
    (4, 3, 16, 16)
    """
    _check_count("n", n)
    _check_count("size", size)
    generator = torch.Generator().manual_seed(seed)
    n_photos = n * 2 // 5
    n_textures = n * 7 // 20
    parts = [_procedural_images(n - n_photos - n_textures, size=size, generator=generator)]
    if n_textures:
        parts.append(_textures(n_textures, size=size, generator=generator))
    if n_photos:
        parts.append(_random_crops(_sample_photos(), n_photos, size=size, generator=generator))
    images = torch.cat(parts)
    return images[torch.randperm(n, generator=generator)].contiguous()


def near_copies(images: Tensor, *, generator: torch.Generator, max_shift: float = 0.15, max_zoom: float = 0.25,
                max_mix: float = 0.15) -> Tensor:
    """Slightly changed copies of ``images`` ``(B, C, H, W)``: what a near-duplicate looks like.

    Each copy is shifted by up to ``max_shift`` of the side in x and y, zoomed by up to ±``max_zoom``
    (bilinear, reflected at the edges: a neighbouring crop of the same scene), then blended up to ``max_mix`` of
    the way towards the batch's previous image (a small change of colour or content). Same shape and range.
    """
    n = len(images)
    uniform = torch.rand(n, 4, generator=generator).to(images)
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    inverse_zoom = 1.0 / (1.0 + max_zoom * (2 * uniform[:, 0] - 1))
    theta[:, 0, 0] = theta[:, 1, 1] = inverse_zoom
    theta[:, :, 2] = 2 * max_shift * (2 * uniform[:, 1:3] - 1)  # grid coordinates span 2 per side
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    blend = (max_mix * uniform[:, 3]).view(n, 1, 1, 1)
    return (moved + blend * (images.roll(1, dims=0) - moved)).clamp(0.0, 1.0)


def _files(path: str | os.PathLike, suffixes: set[str], what: str) -> list[Path]:
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{what} folder {str(folder)!r} does not exist or is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for file in files:
        if file.suffix.lower() not in suffixes:
            log.info("skipping %s: not a %s file (accepted: %s)", file, what, ", ".join(sorted(suffixes)))
    return [file for file in files if file.suffix.lower() in suffixes]


def images_from_folder(path: str | os.PathLike, *, size: int, channels: int) -> Tensor:
    """Every readable image under ``path`` (recursively), prepared as ``(n, channels, size, size)`` in [0, 1].

    Files PIL cannot read are skipped with a logged reason; palette and grey+alpha images are converted
    to RGBA first (see :func:`models.preprocess.prepare_image`). InputError when nothing usable is found.
    """
    from PIL import Image, UnidentifiedImageError

    images = []
    for file in _files(path, _IMAGE_SUFFIXES, "image"):
        try:
            with Image.open(file) as image:
                if image.mode not in ("L", "RGB", "RGBA", "I;16"):
                    image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
                pixels = np.asarray(image)
            images.append(prepare_image(pixels, size=size, channels=channels))
        except (UnidentifiedImageError, OSError, ValueError, InputError) as error:
            log.warning("skipping %s: %s", file, error)
    if not images:
        raise InputError(f"no readable images in {str(path)!r} (accepted: anything PIL opens, e.g. png, jpg)")
    return torch.stack(images)


def sounds_from_folder(path: str | os.PathLike, *, config: SpectralConfig, n_frames: int,
                       with_count: bool = False) -> Tensor | tuple[int, Tensor]:
    """Mel windows ``(n, n_mels, n_frames)`` cut (without overlap) from every readable sound under ``path``.

    Audio is mixed to mono and resampled to ``config.sample_rate``; silent windows are dropped; unreadable
    files are skipped with a logged reason. InputError when no window is left. With ``with_count`` the
    result is ``(number of files read, windows)``.
    """
    _check_count("n_frames", n_frames)
    windows = []
    for file in _files(path, _SOUND_SUFFIXES, "sound"):
        try:
            audio = read_audio(file, sample_rate=config.sample_rate, channels=1)[0]
            if audio.size < config.n_fft:
                raise InputError(f"only {audio.size} samples; need at least n_fft={config.n_fft}")
            mel = audio_to_mel(torch.as_tensor(audio), config=config)
        except (InputError, ParameterError, OSError, ValueError, RuntimeError) as error:  # skip one bad file, keep the rest
            log.warning("skipping %s: %s", file, error)
            continue
        n_windows = mel.shape[-1] // n_frames
        cut = mel[:, : n_windows * n_frames].reshape(config.n_mels, n_windows, n_frames).permute(1, 0, 2)
        windows.append(cut[cut.amax(dim=(1, 2)) > _SILENT_WINDOW])
    mels = torch.cat(windows) if windows else torch.empty(0)
    if len(mels) == 0:
        raise InputError(
            f"no usable sound in {str(path)!r}: need readable audio files (wav, flac, ogg, mp3) with at least "
            f"{n_frames} non-silent frames"
        )
    mels = mels.float().contiguous()
    return (len(windows), mels) if with_count else mels
