"""``imgsonic eval --preset spoken-digits|scenes``: the sound → image presets measured as the papers measure them.

Everything is measured on **sound files**, read the way ``imgsonic imagine`` reads them
(:func:`synth.sound_windows.sound_file_windows`): the held-out sounds are written to ``<out>/sounds/`` in turn as
wav 22.05 kHz, flac 44.1 kHz, ogg 16 kHz, mp3 48 kHz and aiff 11.025 kHz, each at a peak level drawn from
−30…0 dB (training saw −24…0 dB), then read back, resampled and windowed. A file longer than one window gives
several; its loudest window (largest mean log-mel) is the one judged.

``spoken-digits`` (held-out voices, speeds and pitches: :mod:`training.spoken_digits`)
    A real-image classifier (an RBF SVM, sigmoid-calibrated, trained on the real training digits) judges
    every generated image. ``informativity``: the share of images to which it gives the sound's class a
    probability at least ``informativity_threshold`` — the probability that 95 % of real held-out digits reach
    for their own class (Sound-to-Imagination's measure). ``class_match``: the share it classifies as the
    sound's class. Both on images drawn with test-time dropout (``--samples`` per sound, the default way
    ``imagine`` draws), and ``*_exact`` on the deterministic image. ``diversity``: the mean RMS pixel distance
    between the dropout samples of one sound, over the same distance between two real held-out digits of that
    class (1 = as varied as real handwriting). ``multimodal_nn_class_match`` (``_pre_activation``): each
    sound's shared code (sound only) against the shared codes of the real held-out digits (image only): the
    share whose nearest neighbour has the sound's class, after (and before) the activation;
    ``feature_gan_class_match``: images through the feature-GAN path. ``visualize_class_match`` /
    ``visualize_informativity``: the same files through the unpaired ``imgsonic visualize`` chain of the
    ``digits-fm`` preset, judged by a classifier of its own image size. ``class_match_exact_<format>_<rate>``: per
    file format.
``scenes`` (held-out sizes: :data:`training.av_scenes.TEST_SIZE_BANDS`)
    Count and size of the objects in each generated image (:func:`training.av_scenes.measure_objects`) against
    the scene's count and size: Spearman ρ per kind (``count_rho``, ``size_rho``), and ``kinds_recovered``, the
    kinds with |ρ| ≥ 0.8 for both; ``*_real`` gives the same measure on the scenes' own pictures (the ceiling).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.errors import ParameterError
from models.imagination import Imagination
from synth.sound_windows import sound_file_windows
from synth.spectral import SpectralConfig
from training import metrics, plots
from training.evaluate import Target, _write_json, format_table

__all__ = ["IMAGINE_TARGETS", "FILE_FORMATS", "evaluate_imagine", "run"]

IMAGINE_TARGETS: dict[str, tuple[Target, ...]] = {
    "spoken-digits": (
        Target("informativity", ">=", 0.6),
        Target("class_match", ">=", 0.8),
        Target("multimodal_nn_class_match", ">=", 0.8),
    ),
    "scenes": (Target("kinds_recovered", ">=", 2),),
}
FILE_FORMATS = (("wav", 22050), ("flac", 44100), ("ogg", 16000), ("mp3", 48000), ("aiff", 11025))
TEST_LEVEL_DB = (-30.0, 0.0)
RECOVERED_RHO = 0.8
_REAL_PASS_SHARE = 0.95
DEFAULT_SAMPLES = 4


# ---- files ---------------------------------------------------------------------------------------------------------


def _write_sound(path: Path, audio: np.ndarray, *, sample_rate: int) -> None:
    """Any format pedalboard writes (by the suffix), through a temporary file renamed into place."""
    import os

    from pedalboard.io import AudioFile

    temporary = path.with_name(f".tmp.{path.name}")  # keeps the suffix: pedalboard picks the format by it
    with AudioFile(str(temporary), "w", samplerate=sample_rate, num_channels=1) as file:
        file.write(audio.astype(np.float32)[None])
    os.replace(temporary, path)


def _resampled(audio: np.ndarray, *, orig_hz: int, new_hz: int) -> np.ndarray:
    if orig_hz == new_hz:
        return audio
    from scipy.signal import resample_poly

    common = math.gcd(orig_hz, new_hz)
    return resample_poly(audio, new_hz // common, orig_hz // common).astype(np.float32)


def write_test_files(sounds: list[np.ndarray], *, sample_rate: int, folder: Path, seed: int = 0) -> list[tuple[Path, str]]:
    """Write each sound (at ``sample_rate``) in the next of :data:`FILE_FORMATS`, at a level from ``TEST_LEVEL_DB``;
    returns (path, "fmt rate") per sound."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = []
    for index, audio in enumerate(sounds):
        extension, rate = FILE_FORMATS[index % len(FILE_FORMATS)]
        level = 10 ** (rng.uniform(*TEST_LEVEL_DB) / 20) / max(float(np.abs(audio).max()), 1e-9)
        path = folder / f"sound_{index:04d}.{extension}"
        _write_sound(path, _resampled(audio * level, orig_hz=sample_rate, new_hz=rate), sample_rate=rate)
        written.append((path, f"{extension} {rate}"))
    return written


def read_judged_windows(paths: list[Path], *, config: SpectralConfig, window_frames: int) -> Tensor:
    """One window per file, read as ``imgsonic imagine`` reads it: the loudest of the file's windows."""
    chosen = []
    for path in paths:
        mel = sound_file_windows(path, config=config, window_frames=window_frames).mel
        chosen.append(mel[int(mel.mean(dim=(1, 2)).argmax())])
    return torch.stack(chosen)


# ---- spoken digits ----------------------------------------------------------------------------------------------


def _digit_classifier(size: int):
    """An RBF SVM on the real training digits, its scores calibrated to probabilities (sigmoid, 5-fold)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import SVC

    from training.datasets import load_digits_split

    images, labels = load_digits_split("train", size=size)
    classifier = CalibratedClassifierCV(SVC(C=10.0, gamma="scale", random_state=0), ensemble=False)
    return classifier.fit(images.flatten(1).numpy(), labels.numpy())


def _judge(classifier, images: Tensor, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(informativity, class match) of images ``(n, C, S, S)`` whose intended classes are ``labels``."""
    probabilities = classifier.predict_proba(images.flatten(1).numpy())
    own = probabilities[np.arange(len(labels)), labels]
    return float(np.mean(own >= threshold)), float(np.mean(probabilities.argmax(1) == labels))


def _threshold(classifier, size: int) -> float:
    from training.datasets import load_digits_split

    images, labels = load_digits_split("test", size=size)
    own = classifier.predict_proba(images.flatten(1).numpy())[np.arange(len(labels)), labels.numpy()]
    return float(np.quantile(own, 1.0 - _REAL_PASS_SHARE))


def _rms(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).flatten(-3).pow(2).mean(-1).sqrt()


def _diversity(samples: Tensor, labels: np.ndarray, real: Tensor, real_labels: np.ndarray, *, seed: int) -> float:
    """Mean RMS distance between the samples of one sound over that between two real digits of its class."""
    n_samples = samples.shape[1]
    pairs = [(i, j) for i in range(n_samples) for j in range(i + 1, n_samples)]
    generated = torch.stack([_rms(samples[:, i], samples[:, j]) for i, j in pairs]).mean()
    rng = np.random.default_rng(seed)
    distances = []
    for label in labels:
        pool = np.flatnonzero(real_labels == label)
        i, j = rng.choice(pool, 2, replace=False)
        distances.append(float(_rms(real[i], real[j])))
    return float(generated / np.mean(distances))


def _visualize_baseline(paths: list[Path], labels: np.ndarray) -> dict[str, float]:
    """The unpaired ``imgsonic visualize`` chain of digits-fm on the same files (its whole span as one frame)."""
    from models.pipeline import SonificationModels
    from synth.audio_io import read_audio
    from synth.spectral import audio_to_mel

    models = SonificationModels.from_preset("digits-fm")
    config = SpectralConfig.from_dict(models.spectral_config)
    images = []
    for path in paths:
        audio = read_audio(path, sample_rate=config.sample_rate, channels=1)[0]
        mel = audio_to_mel(torch.from_numpy(audio), config=config)
        if mel.shape[-1] < models.window_frames:
            mel = torch.nn.functional.pad(mel, (0, models.window_frames - mel.shape[-1]))
        windows = mel.unfold(-1, models.window_frames, 1).permute(1, 0, 2)
        mu, _ = models.audio_vae.encode(windows.contiguous())
        images.append(models.decode_images(models.audio_to_image_latent(mu.mean(dim=0, keepdim=True)))[0])
    seen = torch.stack(images)
    classifier = _digit_classifier(models.image_size)
    informativity, match = _judge(classifier, seen, labels, _threshold(classifier, models.image_size))
    return {"visualize_informativity": informativity, "visualize_class_match": match}


def _spoken_digits(imagination: Imagination, out: Path, *, n_samples: int, clips_per_digit: int, seed: int,
                   cache_dir: str | None, with_baseline: bool) -> tuple[dict[str, Any], np.ndarray]:
    from training.datasets import load_digits_split
    from training.spoken_digits import ESPEAK_RATE_HZ, read_clip, spoken_digit_clips

    clips = spoken_digit_clips("test", clips_per_digit=clips_per_digit, cache_dir=cache_dir)
    labels = np.array([clip.digit for clip in clips])
    sounds = [read_clip(clip, sample_rate=ESPEAK_RATE_HZ) for clip in clips]
    files = write_test_files(sounds, sample_rate=ESPEAK_RATE_HZ, folder=out / "sounds", seed=seed)
    config = SpectralConfig.from_dict(imagination.spectral_config)
    mel = read_judged_windows([path for path, _ in files], config=config, window_frames=imagination.window_frames)

    size = imagination.image_size
    classifier = _digit_classifier(size)
    threshold = _threshold(classifier, size)
    samples = imagination.imagine(mel, n_samples=n_samples, variety=True, seed=seed)
    exact = imagination.imagine(mel, n_samples=1, variety=False)[:, 0]
    flat_samples = samples.flatten(0, 1)
    sample_labels = np.repeat(labels, n_samples)
    informativity, match = _judge(classifier, flat_samples, sample_labels, threshold)
    informativity_exact, match_exact = _judge(classifier, exact, labels, threshold)
    real, real_labels = load_digits_split("test", size=size)
    found: dict[str, Any] = {
        "n_sounds": len(clips),
        "n_voices": len({clip.voice for clip in clips}),
        "informativity_threshold": threshold,
        "informativity": informativity,
        "class_match": match,
        "informativity_exact": informativity_exact,
        "class_match_exact": match_exact,
        "diversity": _diversity(samples, labels, real, real_labels.numpy(), seed=seed),
    }
    if imagination.audio_encoder.classifier is not None:
        codes = imagination.encode(mel)
        found["audio_encoder_class_accuracy"] = float(np.mean(
            imagination.audio_encoder.classify(codes).argmax(1).numpy() == labels))
    predicted = classifier.predict(exact.flatten(1).numpy())
    for kind in dict.fromkeys(kind for _, kind in files):
        found[f"class_match_exact_{kind.replace(' ', '_')}"] = float(
            np.mean([predicted[i] == labels[i] for i, (_, k) in enumerate(files) if k == kind]))
    if imagination.multimodal is not None:
        found.update(_multimodal(imagination, mel, labels, real, real_labels.numpy(), classifier, threshold, seed=seed))
    if with_baseline:
        found.update(_visualize_baseline([path for path, _ in files], labels))
    # the plot: per digit, the first held-out sound's samples
    rows = [int(np.flatnonzero(labels == digit)[0]) for digit in range(10)]
    return found, samples[rows].numpy()


def _multimodal(imagination: Imagination, mel: Tensor, labels: np.ndarray, real: Tensor, real_labels: np.ndarray,
                classifier, threshold: float, *, seed: int) -> dict[str, Any]:
    multimodal = imagination.multimodal
    sound_features = imagination.encode(mel)
    image_features = imagination.image_classifier.features(real)
    found = {}
    for activated, key in ((True, "multimodal_nn_class_match"), (False, "multimodal_nn_class_match_pre_activation")):
        sound_code = multimodal.shared(audio_features=sound_features, activated=activated)
        image_code = multimodal.shared(image_features=image_features, activated=activated)
        nearest = torch.cdist(sound_code, image_code).argmin(dim=1).numpy()
        found[key] = float(np.mean(real_labels[nearest] == labels))
    through = imagination.imagine_through_features(mel, variety=True, seed=seed)
    found["feature_gan_informativity"], found["feature_gan_class_match"] = _judge(classifier, through, labels, threshold)
    return found


# ---- scenes ---------------------------------------------------------------------------------------------------------


def _scenes(imagination: Imagination, out: Path, *, n: int, n_samples: int, seed: int) -> tuple[dict[str, Any], np.ndarray]:
    from training.av_scenes import SCENE_KINDS, make_scenes, measure_objects

    config = SpectralConfig.from_dict(imagination.spectral_config)
    scenes = make_scenes(n, split="test", image_size=imagination.image_size, sample_rate=config.sample_rate, seed=seed)
    files = write_test_files(list(scenes.audio), sample_rate=config.sample_rate, folder=out / "sounds", seed=seed)
    mel = read_judged_windows([path for path, _ in files], config=config, window_frames=imagination.window_frames)
    exact = imagination.imagine(mel, n_samples=1, variety=False)[:, 0]
    samples = imagination.imagine(mel, n_samples=n_samples, variety=True, seed=seed)
    kinds = scenes.factors[:, 0].long().numpy()
    truth = scenes.factors[:, 1:].numpy()  # size, count
    found: dict[str, Any] = {"n_scenes": n}
    recovered = 0
    for name, images in (("", exact), ("_samples", samples[:, 0]), ("_real", scenes.images)):
        measured = measure_objects(images)
        for k, kind in enumerate(SCENE_KINDS):
            chosen = kinds == k
            count_rho = metrics.spearman(measured[chosen, 0], truth[chosen, 1])
            size_rho = metrics.spearman(measured[chosen, 1], truth[chosen, 0])
            found[f"{kind}_count_rho{name}"] = count_rho
            found[f"{kind}_size_rho{name}"] = size_rho
            if name == "" and abs(count_rho) >= RECOVERED_RHO and abs(size_rho) >= RECOVERED_RHO:
                recovered += 1
        if name == "":
            found["count_exact_share"] = float(np.mean(measured[:, 0] == truth[:, 1]))
    found["kinds_recovered"] = recovered
    rows = [int(np.flatnonzero(kinds == k)[0]) for k in range(len(SCENE_KINDS))]
    grid = torch.cat([scenes.images[rows][:, None], samples[rows]], dim=1)
    return found, grid.numpy()


# ---- entry points ----------------------------------------------------------------------------------------------------


def evaluate_imagine(name: str, *, out_dir: str | Path, n: int = 400, n_samples: int = DEFAULT_SAMPLES, seed: int = 0,
                     cache_dir: str | None = None, with_baseline: bool = True, preset_folder: str | None = None
                     ) -> dict[str, Any]:
    """Evaluate the sound → image preset ``name``; write sounds, ``imagine.png`` and ``metrics.json`` to ``out_dir``."""
    started = time.perf_counter()
    imagination = Imagination.from_preset(name, folder=preset_folder)
    from models.imagination import load_imagine_preset

    data = load_imagine_preset(name, folder=preset_folder).data
    if data not in IMAGINE_TARGETS:
        raise ParameterError(f"preset {name!r} was trained on {data!r} data; evaluable: {', '.join(IMAGINE_TARGETS)}")
    out = Path(out_dir)
    with torch.inference_mode():
        if data == "spoken-digits":
            clips_per_digit = max(1, math.ceil(n / 200))
            found, grid = _spoken_digits(imagination, out, n_samples=n_samples, clips_per_digit=clips_per_digit,
                                         seed=seed, cache_dir=cache_dir, with_baseline=with_baseline)
        else:
            found, grid = _scenes(imagination, out, n=n, n_samples=n_samples, seed=seed)
    picture = plots.image_grid(grid, scale=max(1, 48 // imagination.image_size))
    plot = plots.save_png(picture, out / "imagine.png")
    targets = {t.metric: {"op": t.op, "value": t.value, "measured": found[t.metric], "passed": t.check(found[t.metric])}
               for t in IMAGINE_TARGETS[data] if t.metric in found}
    not_measured = {t.metric: {"op": t.op, "value": t.value} for t in IMAGINE_TARGETS[data] if t.metric not in found}
    result = {
        "preset": name,
        "method": "sound files",
        "n_images": found.get("n_sounds", found.get("n_scenes")),
        "n_sounds": found.get("n_sounds", found.get("n_scenes")),
        "render_seconds": 1.0,
        "metrics": found,
        "targets": targets,
        "not_measured": not_measured,  # the image ↔ sound evaluation's schema, so that one table prints both
        "all_targets_met": all(t["passed"] for t in targets.values()) and not not_measured,
        "plots": [str(plot)],
        "seconds": round(time.perf_counter() - started, 2),
    }
    result["plots"].append(str(_write_json(result, out / "metrics.json")))
    return result


def run(args: argparse.Namespace) -> int:
    """``imgsonic eval`` for a sound → image preset (called by :func:`training.evaluate.run`)."""
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else Path("imgsonic-eval") / Path(args.preset).stem
    result = evaluate_imagine(args.preset, out_dir=out, n=args.n)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if result["all_targets_met"] else 1
