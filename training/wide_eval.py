"""Evaluation sets wider than the default preset's training data, rendered through ``imgsonic render`` on files.

Three sets, each written as image files of odd sizes, several file formats and PIL modes, then rendered by
running ``imgsonic render`` on their folder exactly as a user would (through ``cli_main``, ``bridge.cli.main``
handed in by ``imgsonic eval``: ``training`` never imports ``bridge``; default settings: 1 s per image, 0.1 s
crossfades, ``--loudness even``), and analysed from the WAV file it writes:

* **textures**: stripes (any angle, square or sine profile), checkerboards, value noise and dot grids, at
  3–20 cycles per image, in colour pairs drawn from another distribution than training's (saturated HSV
  colours, greys, near-equal pairs), with seeds the training generator never uses;
* **photos**: photos held out of training (:data:`HELD_OUT_PHOTOS`), whole and in crops of three scales, grey
  and colour-shifted versions, plus procedural scenes (sky, horizon, ground, sun) in random palettes;
* **varied**: a mix of the two plus flat colour fields and gradients, for the loudness rows.

Measures (keys returned by :func:`evaluate_wide`):

``texture_family_1nn``
    leave-one-out 1-nearest-neighbour accuracy of the texture family from the sounds' MFCC statistics
    (:func:`training.metrics.mfcc_stats` of each image's solo stretch, each feature standardised over the set).
``texture_descriptor_spearman`` / ``photo_descriptor_spearman``
    Spearman ρ between pairwise distances of image descriptors and of the sounds' MFCC statistics. The image
    descriptors here are an independent numpy implementation (:func:`eval_descriptors`: colour means and
    spreads, gradient-orientation harmonics, cumulative octave-band spectral energy, autocorrelation periodicity, each
    group weighted equally) measured from the image file at 128 px — not the model's own descriptor dims.
``loudness_spread_db`` / ``loudness_below_loudest_db`` / ``programme_lufs``
    on the varied set: the 10th–90th percentile spread of per-image loudness (pyloudnorm's BS.1770 meter on each
    image's solo stretch of the WAV, via :func:`synth.loudness.segment_loudness_lufs`, which also reads
    stretches below −70 LUFS), how far the quietest image is below the loudest, and the file's integrated loudness
    (pyloudnorm's meter on the whole WAV, as any loudness tool reads it); the same with ``_raw`` for
    ``--loudness raw`` (the model's own levels) for comparison.
"""

from __future__ import annotations

import colorsys
import importlib.util
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import InputError
from training.datasets import HELD_OUT_PHOTOS  # never in the default preset's training images
from training.eval_files import CliMain, run_command

__all__ = ["FAMILIES", "HELD_OUT_PHOTOS", "EvalImage", "texture_set", "photo_set", "varied_set", "eval_descriptors",
           "render_with_cli", "evaluate_wide"]

FAMILIES = ("stripes", "checkers", "noise", "dots")
_SIZES = ((64, 64), (97, 131), (200, 150), (333, 333), (513, 257), (48, 80))
_MODES = ("RGB", "RGB", "L", "P", "RGBA", "I;16")
_FORMATS = (".png", ".jpg", ".png", ".bmp", ".png", ".png")
_SEED = 7_777_777  # far from training's seeds
_DESCRIPTOR_PX = 128


@dataclass
class EvalImage:
    """One evaluation image: a name, its group (texture family or "photo"/"scene"/"flat"), RGB pixels (H, W, 3) in [0, 1]."""

    name: str
    group: str
    pixels: np.ndarray


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    kind = rng.integers(3)
    if kind == 0:  # saturated colours, any hues
        return tuple(np.array(colorsys.hsv_to_rgb(rng.random(), 0.6 + 0.4 * rng.random(), 0.4 + 0.6 * rng.random()))
                     for _ in range(2))
    if kind == 1:  # greys
        a, b = rng.random(2)
        return np.full(3, a), np.full(3, b)
    base = rng.random(3)  # a colour and a lighter or darker version of it (low contrast)
    return base, np.clip(base + rng.choice([-1, 1]) * (0.2 + 0.3 * rng.random()), 0, 1)


def _texture(family: str, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A pattern in [0, 1] ``(H, W)``, 3–20 cycles across the shorter side."""
    side = min(height, width)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) / side
    cycles = float(np.exp(rng.uniform(np.log(3), np.log(20))))
    if family == "stripes":
        angle = rng.uniform(0, np.pi)
        wave = np.sin(2 * np.pi * cycles * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        return (wave > 0).astype(float) if rng.random() < 0.5 else 0.5 + 0.5 * wave
    if family == "checkers":
        return ((np.floor(xx * cycles) + np.floor(yy * cycles)) % 2).astype(float)
    if family == "dots":
        radius = rng.uniform(0.2, 0.4)
        fx, fy = (xx * cycles) % 1 - 0.5, (yy * cycles) % 1 - 0.5
        return ((fx**2 + fy**2) < radius**2).astype(float)
    # value noise: a random grid of cycles × cycles cells, smoothly (or not) interpolated
    from PIL import Image

    cells = max(2, int(round(cycles * 2)))
    grid = (rng.random((cells, cells)) * 255).astype(np.uint8)
    resample = Image.BICUBIC if rng.random() < 0.7 else Image.NEAREST
    return np.asarray(Image.fromarray(grid).resize((width, height), resample), dtype=float) / 255.0


def texture_set(*, n_per_family: int = 20, seed: int = _SEED) -> list[EvalImage]:
    """``n_per_family`` images of each of :data:`FAMILIES` in colour pairs at varied sizes."""
    rng = np.random.default_rng(seed)
    images = []
    for family in FAMILIES:
        for index in range(n_per_family):
            height, width = _SIZES[rng.integers(len(_SIZES))]
            pattern = _texture(family, height, width, rng)
            a, b = _colour_pair(rng)
            pixels = a + (b - a) * pattern[..., None]
            images.append(EvalImage(f"{family}{index:02d}", family, np.clip(pixels, 0, 1)))
    return images


def _held_out_photo_paths() -> list[Path]:
    paths = []
    for package, names in HELD_OUT_PHOTOS.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(list(spec.submodule_search_locations)[0])
        base = base / ("data" if package == "skimage" else "mpl-data/sample_data")
        paths += [base / name for name in names if (base / name).is_file()]
    return paths


def _scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Sky gradient, a horizon at a random height, ground with texture, sometimes a sun: a landscape sketch."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    yy, xx = yy / height, xx / width
    sky_top, sky_low, ground = (np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.8), rng.uniform(0.2, 1)))
                                for _ in range(3))
    horizon = rng.uniform(0.3, 0.8) + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * xx + rng.uniform(0, 6))
    sky = sky_top + (sky_low - sky_top) * (yy / np.maximum(horizon, 1e-3))[..., None]
    grain = rng.normal(0, rng.uniform(0, 0.15), size=(height, width, 1))
    pixels = np.where((yy < horizon)[..., None], sky, ground + grain)
    if rng.random() < 0.6:
        cy, cx, r = rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.9), rng.uniform(0.04, 0.12)
        sun = ((yy - cy) ** 2 + ((xx - cx) * width / height) ** 2) < r**2
        pixels = np.where(sun[..., None], np.array(colorsys.hsv_to_rgb(rng.uniform(0, 0.15), 0.7, 1.0)), pixels)
    return np.clip(pixels, 0, 1)


def photo_set(*, n_scenes: int = 16, n_photos: int | None = None, seed: int = _SEED + 1) -> list[EvalImage]:
    """Held-out photos (whole, three crop scales, grey, colour-shifted; the first ``n_photos``, default all) and
    ``n_scenes`` procedural scenes."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    images = []
    for path in _held_out_photo_paths()[:n_photos]:
        with Image.open(path) as image:
            photo = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
        height, width = photo.shape[:2]
        views = {"whole": photo}
        for scale in (0.6, 0.35, 0.15):
            side = max(8, int(min(height, width) * scale))
            top, left = rng.integers(0, height - side + 1), rng.integers(0, width - side + 1)
            views[f"crop{scale:g}"] = photo[top : top + side, left : left + side]
        views["grey"] = np.repeat(photo @ np.array([0.299, 0.587, 0.114]), 3).reshape(photo.shape)
        views["shifted"] = np.clip(photo[..., rng.permutation(3)] * rng.uniform(0.6, 1.2), 0, 1)
        images += [EvalImage(f"{path.stem}-{view}", "photo", pixels) for view, pixels in views.items()]
    for index in range(n_scenes):
        height, width = _SIZES[rng.integers(len(_SIZES))]
        images.append(EvalImage(f"scene{index:02d}", "scene", _scene(rng, height, width)))
    return images


def varied_set(*, n: int = 60, seed: int = _SEED + 2) -> list[EvalImage]:
    """``n`` (≤ 60) images for the loudness rows: textures, photos and scenes, flat colours and gradients, shuffled."""
    rng = np.random.default_rng(seed)
    textures = texture_set(n_per_family=6, seed=seed)
    photos = photo_set(n_scenes=6, seed=seed + 1)
    photos = [photos[i] for i in rng.permutation(len(photos))[:22]]
    flats = []
    for index in range(7):
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.random(), rng.random()))
        flats.append(EvalImage(f"flat{index}", "flat", np.broadcast_to(colour, (64, 64, 3)).copy()))
        a, b = _colour_pair(rng)
        ramp = np.linspace(0, 1, 90)[None, :, None]
        flats.append(EvalImage(f"gradient{index}", "flat", np.broadcast_to(a + (b - a) * ramp, (70, 90, 3)).copy()))
    images = textures + photos + flats
    return [images[i] for i in rng.permutation(len(images))][:n]


def write_images(images: list[EvalImage], folder: Path) -> list[Path]:
    """Write each image in a rotating file format and PIL mode (RGB, L, P, RGBA, 16-bit grey); returns the paths."""
    from PIL import Image

    paths = []
    for index, item in enumerate(images):
        mode, suffix = _MODES[index % len(_MODES)], _FORMATS[index % len(_FORMATS)]
        rgb = Image.fromarray((np.clip(item.pixels, 0, 1) * 255).round().astype(np.uint8))
        if mode == "L":
            image = rgb.convert("L")
        elif mode == "P":
            image = rgb.convert("P", palette=Image.ADAPTIVE, colors=64)
        elif mode == "RGBA":
            image = rgb.convert("RGBA")
        elif mode == "I;16":
            grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
            image = Image.fromarray(grey.astype("<u2"))  # PIL reads little-endian uint16 as mode I;16
        else:
            image = rgb
        path = folder / f"{index:03d}_{item.name}{suffix}"
        image.save(path)
        paths.append(path)
    return paths


def read_back(path: Path) -> np.ndarray:
    """The image file as the evaluation sees it: RGB float (H, W, 3) in [0, 1] (16-bit grey scaled)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode == "I;16":
            grey = np.asarray(image, dtype=np.float64) / 65535.0
            return np.repeat(grey[..., None], 3, axis=-1)
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def eval_descriptors(pixels: np.ndarray) -> np.ndarray:
    """Independent image descriptors for the distance rows: ``(H, W, 3)`` → a vector of four equally weighted
    groups (colour: RGB mean and spread; orientation: circular harmonics 2 and 4 of the gradient-angle
    distribution; scale: the cumulative share of luma-spectrum energy over 6 octave bands; periodicity: the
    highest autocorrelation peak beyond the central lobe).
    Measured on the centre square resized to 128 px (what a 64 px model can still see, with room to spare).
    Returns the groups concatenated; :func:`_descriptor_distances` standardises and weights them."""
    from PIL import Image

    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = (np.clip(pixels[top : top + side, left : left + side], 0, 1) * 255).astype(np.uint8)
    rgb = np.asarray(Image.fromarray(square).resize((_DESCRIPTOR_PX, _DESCRIPTOR_PX), Image.LANCZOS), dtype=np.float64) / 255
    colour = np.concatenate([rgb.mean(axis=(0, 1)), rgb.std(axis=(0, 1))])
    luma = rgb @ np.array([0.299, 0.587, 0.114])

    gy, gx = np.gradient(luma)
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    # orientation: the first two circular harmonics of the magnitude-weighted gradient-angle distribution (angles
    # mod π): the structure tensor's dominant orientation and strength, and a second, perpendicular one (grids);
    # unlike histogram bins, nearby orientations come out near each other
    weights = magnitude / (magnitude.sum() + 1e-9)
    orientation = np.array([(weights * np.cos(2 * angle)).sum(), (weights * np.sin(2 * angle)).sum(),
                            (weights * np.cos(4 * angle)).sum(), (weights * np.sin(4 * angle)).sum()])

    centred = (luma - luma.mean()) * np.outer(np.hanning(_DESCRIPTOR_PX), np.hanning(_DESCRIPTOR_PX))
    power = np.abs(np.fft.fft2(centred)) ** 2
    freq = np.fft.fftfreq(_DESCRIPTOR_PX) * _DESCRIPTOR_PX
    radius = np.hypot(freq[:, None], freq[None, :])
    bands = np.array([power[(radius >= 2**k) & (radius < 2 ** (k + 1))].sum() for k in range(6)])
    # the cumulative share up to each octave: distances between these are earth mover's distances in octaves, so
    # patterns one octave apart are nearer than patterns four octaves apart (band shares alone would not tell)
    scale = np.cumsum(bands / (bands.sum() + 1e-12))[:-1]

    autocorrelation = np.real(np.fft.ifft2(power))
    autocorrelation /= autocorrelation[0, 0] + 1e-12
    lag = np.hypot(*np.meshgrid(np.fft.fftfreq(_DESCRIPTOR_PX) * _DESCRIPTOR_PX,
                                np.fft.fftfreq(_DESCRIPTOR_PX) * _DESCRIPTOR_PX, indexing="ij"))
    lobe = _DESCRIPTOR_PX  # the central lobe ends where the radial mean autocorrelation first drops below 0.1
    for r in range(1, _DESCRIPTOR_PX // 2):
        if autocorrelation[(lag >= r) & (lag < r + 1)].mean() < 0.1:
            lobe = r
            break
    outside = (lag > lobe + 1) & (lag < _DESCRIPTOR_PX // 2)
    periodicity = np.array([autocorrelation[outside].max() if outside.any() else 0.0])
    return np.concatenate([colour, orientation, scale, periodicity])


_GROUPS = (slice(0, 6), slice(6, 10), slice(10, 15), slice(15, 16))


def _descriptor_distances(descriptors: np.ndarray) -> np.ndarray:
    """Pairwise distances, each feature standardised over the set and each group scaled to weigh the same."""
    z = (descriptors - descriptors.mean(axis=0)) / (descriptors.std(axis=0) + 1e-9)
    parts = [z[:, group] / np.sqrt(group.stop - group.start) for group in _GROUPS]
    return _pairwise(np.concatenate(parts, axis=1))


def _pairwise(x: np.ndarray) -> np.ndarray:
    difference = x[:, None, :] - x[None, :, :]
    return np.sqrt((difference**2).sum(axis=-1))


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)


def render_with_cli(cli_main: CliMain, paths: list[Path], *, preset: str, out_dir: Path, loudness: str = "even",
                    vocoder: str = "pghi+fgla") -> tuple[np.ndarray, int, list[tuple[float, float]]]:
    """Run ``imgsonic render`` on ``paths`` (in order) as a user would; returns (audio, rate, solo spans per image).

    The solo span of an image is its slot from the JSON log, less half the crossfade at inner boundaries.
    """
    from synth.audio_io import read_audio

    wav, log = out_dir / f"render-{loudness}.wav", out_dir / f"render-{loudness}.json"
    list_file = out_dir / f"inputs-{loudness}"
    list_file.mkdir(exist_ok=True)
    # the files go in as one folder (sorted naturally: the names start with the index), as a user would pass one
    for index, path in enumerate(paths):
        link = list_file / path.name
        if not link.exists():
            os.symlink(path.resolve(), link)
    run_command(cli_main, ["render", str(list_file), "-o", str(wav), "--json", str(log), "--preset", preset,
                           "--loudness", loudness, "--vocoder", vocoder])
    entries = json.loads(log.read_text())
    crossfade = float(entries["settings"]["crossfade_s"])
    rate = int(entries["sample_rate"])
    audio = read_audio(wav, sample_rate=rate, channels=1)
    spans = []
    last = len(entries["images"]) - 1
    for index, entry in enumerate(entries["images"]):
        start = entry["start_s"] + (crossfade / 2 if index > 0 else 0.0)
        end = entry["end_s"] - (crossfade / 2 if index < last else 0.0)
        spans.append((start, end))
    if [Path(entry["image"]).name for entry in entries["images"]] != [p.name for p in paths]:
        raise InputError("imgsonic render took the evaluation images in another order than written")
    return audio[0], rate, spans


def _sound_features(audio: np.ndarray, rate: int, spans: list[tuple[float, float]]) -> np.ndarray:
    from training.metrics import mfcc_stats

    n = min(round((end - start) * rate) for start, end in spans)
    clips = np.stack([audio[round(start * rate) : round(start * rate) + n] for start, _ in spans])
    return mfcc_stats(clips, sample_rate=rate, n_fft=2048, hop_length=512)


def _family_strip(images: list[EvalImage], paths: list[Path], audio: np.ndarray, rate: int,
                  spans: list[tuple[float, float]], out: Path) -> None:
    import torch

    from synth.spectral import SpectralConfig, audio_to_mel
    from training import plots

    config = SpectralConfig(sample_rate=rate, n_fft=2048, hop_length=512, n_mels=80, f_min_hz=30.0,
                            f_max_hz=rate / 2, db_floor=-80.0, db_ceiling=0.0)
    chosen = [i for family in FAMILIES for i in [k for k, item in enumerate(images) if item.group == family][:2]]
    pictures, mels = [], []
    for i in chosen:
        pixels = read_back(paths[i])
        side = min(pixels.shape[:2])
        pictures.append(np.asarray(pixels[:side, :side][:: max(1, side // 48), :: max(1, side // 48)][:48, :48]
                                   .transpose(2, 0, 1), dtype=np.float32))
        start, end = spans[i]
        clip = torch.from_numpy(audio[round(start * rate) : round(end * rate)].astype(np.float32))
        mels.append(audio_to_mel(clip, config=config).numpy())
    frames = min(m.shape[-1] for m in mels)
    size = min(p.shape[-1] for p in pictures)
    plots.save_png(plots.spectrogram_strip(np.stack([p[:, :size, :size] for p in pictures]),
                                           np.stack([m[..., :frames] for m in mels])), out)


def _one_nn_accuracy(features: np.ndarray, labels: list[str]) -> float:
    distance = _pairwise(_standardised(features))
    np.fill_diagonal(distance, np.inf)
    nearest = distance.argmin(axis=1)
    return float(np.mean([labels[i] == labels[j] for i, j in enumerate(nearest)]))


def _spearman_of_distances(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    upper = np.triu_indices(len(a), k=1)
    return float(spearmanr(a[upper], b[upper]).statistic)


def _level_rows(audio: np.ndarray, rate: int, spans: list[tuple[float, float]], suffix: str) -> dict[str, float]:
    import pyloudnorm

    from synth.loudness import segment_loudness_lufs

    loudness = segment_loudness_lufs(audio, sample_rate=rate, spans_s=spans)
    finite = np.where(np.isfinite(loudness), loudness, -150.0)
    return {
        f"loudness_spread_db{suffix}": float(np.percentile(finite, 90) - np.percentile(finite, 10)),
        f"loudness_below_loudest_db{suffix}": float(finite.max() - finite.min()),
        f"programme_lufs{suffix}": float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64))),
    }


def evaluate_wide(cli_main: CliMain, *, preset: str, method: str = "pghi+fgla", keep_dir: str | os.PathLike | None = None,
                  n_per_family: int = 20, n_photos: int | None = None, n_scenes: int = 16,
                  n_varied: int = 60, seed: int | None = None) -> dict[str, Any]:
    """The wide rows of ``imgsonic eval --preset default`` (see the module docstring) for ``preset`` (name or path),
    rendered by ``cli_main`` (``bridge.cli.main``).

    The set sizes are the evaluation's; smaller ones make a quick check (tests). ``keep_dir`` keeps the image
    files, WAVs and JSON logs there (to look and listen). ``seed`` (default: the evaluation's own) draws other
    sets of the same kinds: textures from ``seed``, photo crops and scenes from ``seed + 1``, the varied set from
    ``seed + 2``; one draw's rows move by several hundredths from another's, so a claim is safer on several."""
    base = _SEED if seed is None else int(seed)
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(keep_dir) if keep_dir else Path(scratch)
        sets = (("texture", texture_set(n_per_family=n_per_family, seed=base)),
                ("photo", photo_set(n_scenes=n_scenes, n_photos=n_photos, seed=base + 1)))
        for set_name, images in sets:
            folder = root / set_name
            folder.mkdir(parents=True, exist_ok=True)
            paths = write_images(images, folder)
            audio, rate, spans = render_with_cli(cli_main, paths, preset=preset, out_dir=folder, vocoder=method)
            sounds = _sound_features(audio, rate, spans)
            descriptors = np.stack([eval_descriptors(read_back(path)) for path in paths])
            found[f"{set_name}_descriptor_spearman"] = _spearman_of_distances(
                _descriptor_distances(descriptors), _pairwise(_standardised(sounds)))
            found[f"n_{set_name}_images"] = len(images)
            if set_name == "texture":
                found["texture_family_1nn"] = _one_nn_accuracy(sounds, [item.group for item in images])
                if keep_dir:  # two of each family above the spectrograms of their rendered sounds, to look at
                    _family_strip(images, paths, audio, rate, spans, folder / "texture_spectrograms.png")
        folder = root / "varied"
        folder.mkdir(parents=True, exist_ok=True)
        paths = write_images(varied_set(n=n_varied, seed=base + 2), folder)
        for mode, suffix in (("even", ""), ("raw", "_raw")):
            audio, rate, spans = render_with_cli(cli_main, paths, preset=preset, out_dir=folder, loudness=mode,
                                                 vocoder=method)
            found.update(_level_rows(audio, rate, spans, suffix))
    return found
