"""``imgsonic eval --preset digits-melody``: SynVAE's metrics, measured on MIDI files and rendered audio.

Part of the command line (it imports ``training`` lazily, as the CLI may): the held-out digits are written as
image files, read back as ``imgsonic render`` reads them, turned into melodies, written as one MIDI piece per
variant and **read back from that file**; the audio is the piece played by :class:`bridge.live.melody_voice.MelodyVoice`
on pyo's offline server. Every figure comes from those files::

    digits ─► PNG/JPEG files ─► prepare_image ─► image encoder ─► (mapper) ─► melody decoder ─► variant.mid
    variant.mid ─read─► tokens ─► melody encoder ─► (inverse mapper) ─► image decoder ─► digit classifier
    variant.mid ─► MelodyVoice (offline) ─► audio ─► per-16th pitch and attack ─► listener proxy / transcription

Metrics (held-out digits: the 359 of the test split, never trained on)
    ``accuracy_through_melody`` (SynVAE's "through music" accuracy, from the MIDI file), ``accuracy_through_audio``
    (the same from the tokens transcribed from the rendered audio), ``accuracy_without_melody`` (image VAE alone)
    and ``classifier_accuracy_real``; ``melody_precision_at_10``: P@10 of the melody latents re-encoded from the
    MIDI, by digit class; ``mi_nats``: an NWJ lower bound on I(image; melody latent) from a critic trained on
    the training digits' pairs and evaluated on the held-out pairs; ``listener_proxy``
    (:func:`training.metrics.listener_proxy`, 3 choices) on each phrase's per-16th pitch and attack heard in the
    rendered audio; ``in_key_ratio`` (notes in their phrase's best-fitting key), ``notes_per_bar`` (median) against
    the held-out Essen phrases' 10th–90th percentile, ``distinct_melodies`` (distinct melodies per distinct image).

Variants (wider than training, which saw 8×8 digits enlarged to 16 px): ``clean`` (64 px PNG), ``jpeg`` (64 px,
quality 70), ``small`` (12 px PNG), ``noise`` (Gaussian, σ 0.15), ``shift`` (up to 2 px of 16 in each
direction), ``thick`` (strokes dilated), ``inverted`` (dark digits on white). Targets apply to ``clean``; the
others are reported. With ``--compare`` (default) the unpaired alternative (``digits-fm``'s image VAE and its
melody mapper) is measured on the clean digits too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import ParameterError

__all__ = ["MELODY_TARGETS", "VARIANTS", "run", "evaluate_melody", "format_table"]

# (metric, op, value): the targets, on the clean held-out digits
MELODY_TARGETS: dict[str, tuple[tuple[str, str, float], ...]] = {
    "digits-melody": (
        ("accuracy_through_melody", ">=", 0.97),
        ("melody_precision_at_10", ">=", 0.6),
        ("mi_nats", ">=", 2.0),
        ("listener_proxy", ">=", 0.9),
        ("in_key_ratio", ">=", 0.9),
        ("notes_per_bar_in_corpus_range", ">=", 1.0),
        ("distinct_melodies", ">=", 0.99),
    ),
}
VARIANTS = ("clean", "jpeg", "small", "noise", "shift", "thick", "inverted")
UNPAIRED_PRESET = "digits-fm"
SAMPLE_RATE = 22050
_FILE_PX = 64


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)  # small models: on a shared 2-core machine a second thread only waits
    out = Path(args.out) if args.out else Path("imgsonic-eval") / args.preset
    result = evaluate_melody(args.preset, out_dir=out, bpm=args.bpm)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0 if result["all_targets_met"] else 1


# ---- the held-out digits as files ----------------------------------------------------------------------


def _variant_pixels(digits: np.ndarray, variant: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """8×8 digits in [0, 1] ``(n, 8, 8)`` → uint8 images of the variant and the file suffix to save them as."""
    import torch
    import torch.nn.functional as F

    size = 12 if variant == "small" else _FILE_PX
    images = F.interpolate(torch.from_numpy(digits[:, None]).float(), size=(size, size), mode="bilinear",
                           align_corners=False)[:, 0].numpy()
    if variant == "noise":
        images = images + rng.normal(0.0, 0.15, images.shape)
    elif variant == "shift":
        shifted = np.zeros_like(images)
        for index, (dy, dx) in enumerate(rng.integers(-8, 9, size=(len(images), 2))):
            shifted[index] = np.roll(np.roll(images[index], dy, axis=0), dx, axis=1)
        images = shifted
    elif variant == "thick":
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        images = np.max([padded[:, dy : dy + size, dx : dx + size] for dy in range(5) for dx in range(5)], axis=0)
    elif variant == "inverted":
        images = 1.0 - images
    pixels = np.clip(np.rint(np.clip(images, 0.0, 1.0) * 255), 0, 255).astype(np.uint8)
    return pixels, ".jpg" if variant == "jpeg" else ".png"


def _write_variant(folder: Path, digits: np.ndarray, variant: str, seed: int) -> list[Path]:
    from PIL import Image

    pixels, suffix = _variant_pixels(digits, variant, np.random.default_rng(seed))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, image in enumerate(pixels):
        path = folder / f"digit_{index:04d}{suffix}"
        Image.fromarray(image, mode="L").save(path, **({"quality": 70} if suffix == ".jpg" else {}))
        paths.append(path)
    return paths


def _read_as_render_does(paths: list[Path], *, size: int, channels: int):
    """The files decoded and brought to the model's input as ``imgsonic render`` does: ``(n, C, S, S)``."""
    import torch

    from bridge.sources.images import load_images
    from models.preprocess import prepare_image

    items = load_images(paths)
    return torch.stack([prepare_image(item.pixels, size=size, channels=channels) for item in items])


# ---- one model, one variant -------------------------------------------------------------------------------


def _measure(melody, images, labels: np.ndarray, *, classifier, name: str, out_dir: Path, bpm: float,
             corpus_range: tuple[float, float], with_audio: bool) -> tuple[dict[str, Any], dict]:
    """Melodies of ``images``, written to and read back from ``<name>.mid``; the metrics on what was read."""
    import torch

    from bridge.control.tempo import phrase_seconds
    from bridge.io.melody_midi import read_melody_midi, write_melody_midi
    from models.melody_vae import tokens_to_notes
    from training import melody_metrics, metrics
    from training.melody_data import notes_per_bar

    config = melody.melody_vae.config
    with torch.inference_mode():
        written = melody.images_to_tokens(images).numpy()
    midi_path = out_dir / f"{name}.mid"
    write_melody_midi(midi_path, written, pitch_low=config.pitch_low, bpm=bpm, steps_per_bar=config.steps_per_bar,
                      names=[f"digit {i}" for i in range(len(written))])
    tokens = read_melody_midi(midi_path, n_steps=config.n_steps, pitch_low=config.pitch_low, n_pitches=config.n_pitches)
    tokens = tokens[: len(written)]

    def accuracy(batch) -> float:
        return float(np.mean(classifier.predict(batch.flatten(1).numpy()) == labels))

    with torch.inference_mode():
        heard = melody.encode_tokens(torch.from_numpy(tokens))
        through = melody.image_vae.decode(melody.melody_to_image_latent(heard))
        direct = melody.image_vae.decode(melody.encode_images(images))
    density = notes_per_bar(tokens, steps_per_bar=config.steps_per_bar)
    distinct_images = len({row.tobytes() for row in images.flatten(1).numpy()})
    found: dict[str, Any] = {
        # the decoder may write a silent start as HOLD or a rest as two RESTs; the file keeps the notes
        "midi_round_trip_same_notes": all(
            tokens_to_notes(a, pitch_low=config.pitch_low) == tokens_to_notes(b, pitch_low=config.pitch_low)
            for a, b in zip(tokens, written)),
        "midi_round_trip_same_tokens": float(np.mean(np.all(tokens == written, axis=1))),
        "accuracy_without_melody": accuracy(direct),
        "accuracy_through_melody": accuracy(through),
        "melody_precision_at_10": metrics.precision_at_k(heard.numpy(), labels, k=10),
        **melody_metrics.key_fit(tokens, pitch_low=config.pitch_low),
        "notes_per_bar": float(np.median(density)),
        "notes_per_bar_in_corpus_range": float(corpus_range[0] <= np.median(density) <= corpus_range[1]),
        "phrases_in_corpus_density_range": float(np.mean((density >= corpus_range[0]) & (density <= corpus_range[1]))),
        "distinct_melodies": len({row.tobytes() for row in tokens}) / distinct_images,
    }
    extra = {"tokens": tokens, "heard": heard, "through": through}
    if with_audio:
        from bridge.live.melody_voice import render_melody
        from synth.audio_io import write_audio

        audio = render_melody(tokens, pitch_low=config.pitch_low, bpm=bpm, sample_rate=SAMPLE_RATE)
        write_audio(out_dir / f"{name}.wav", audio, sample_rate=SAMPLE_RATE)
        step_s = phrase_seconds(n_steps=config.n_steps, bpm=bpm) / config.n_steps
        features = melody_metrics.step_features(audio, sample_rate=SAMPLE_RATE, n_phrases=len(tokens),
                                                n_steps=config.n_steps, step_s=step_s)
        pitch = np.nan_to_num(features["pitch_midi"], nan=config.pitch_low - 12.0)
        onsets = (features["attack_db"] > 3.0).astype(np.float64)
        listener = metrics.listener_proxy(np.concatenate([pitch, onsets], axis=1), labels, seed=0)
        transcribed = melody_metrics.transcribe(features, pitch_low=config.pitch_low, n_pitches=config.n_pitches)
        with torch.inference_mode():
            heard_audio = melody.encode_tokens(torch.from_numpy(transcribed))
            through_audio = melody.image_vae.decode(melody.melody_to_image_latent(heard_audio))
        found.update({
            "listener_proxy": listener["accuracy"],
            "listener_proxy_std": listener["accuracy_std"],
            "listener_proxy_classes": listener["classes"],
            "transcription_token_accuracy": float(np.mean(transcribed == tokens)),
            "accuracy_through_audio": accuracy(through_audio),
        })
        extra["through_audio"] = through_audio
    return found, extra


def _mutual_information(melody, train_images, test_images, test_heard) -> dict[str, float]:
    """NWJ bound on I(image pixels; melody latent): critic trained on training digits, evaluated on held-out ones."""
    import torch

    from training import melody_metrics

    with torch.inference_mode():
        train_heard = melody.encode_tokens(melody.images_to_tokens(train_images))
    return melody_metrics.nwj_lower_bound(train_images.flatten(1).numpy(), train_heard.numpy(),
                                          test_images.flatten(1).numpy(), test_heard.numpy())


def evaluate_melody(name: str, *, out_dir: str | Path, bpm: float = 120.0, compare: bool = True,
                    variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    """Measure preset ``name``'s image → melody → image path; write MIDI, WAV, PNG and JSON to ``out_dir``."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    from bridge.control.tempo import check_bpm
    from models.melody_pipeline import MelodyModels
    from training import plots
    from training.datasets import load_digits_split

    started = time.perf_counter()
    if name not in MELODY_TARGETS:
        raise ParameterError(f"no melody evaluation for preset {name!r}; melody presets: {', '.join(MELODY_TARGETS)}")
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or "clean" not in variants:
        raise ParameterError(f"variants {list(variants)!r}; expected 'clean' and any of {', '.join(VARIANTS)}")
    bpm = check_bpm(bpm)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    melody = MelodyModels.from_preset(name)
    size, channels = melody.image_vae.config.image_size, melody.image_vae.config.channels
    train_images, train_labels = load_digits_split("train", size=size)
    test_images, test_labels = load_digits_split("test", size=size)
    labels = test_labels.numpy()
    classifier = SVC(C=10.0, gamma="scale").fit(train_images.flatten(1).numpy(), train_labels.numpy())

    # the same held-out digits as load_digits_split, at their native 8×8, to write as files
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))
    raw_test = (digits.images[order[: len(labels)]] / 16.0).astype(np.float32)
    corpus = _corpus_statistics(name)
    corpus_range = (corpus["notes_per_bar_p10"], corpus["notes_per_bar_p90"])

    results: dict[str, dict[str, Any]] = {}
    extras = {}
    for index, variant in enumerate(variants):
        paths = _write_variant(out_dir / "images" / variant, raw_test, variant, seed=index)
        images = _read_as_render_does(paths, size=size, channels=channels)
        found, extra = _measure(melody, images, labels, classifier=classifier, name=variant, out_dir=out_dir, bpm=bpm,
                                corpus_range=corpus_range, with_audio=variant == "clean")
        if variant == "clean":
            found["classifier_accuracy_real"] = float(np.mean(classifier.predict(images.flatten(1).numpy()) == labels))
            found.update(_mutual_information(melody, train_images, images, extra["heard"]))
            extras["clean"] = (images, extra)
        results[variant] = found

    comparison = None
    if compare:
        comparison = _compare_unpaired(classifier, labels, raw_test, out_dir=out_dir, bpm=bpm,
                                       corpus_range=corpus_range)

    images, extra = extras["clean"]
    chosen = torch.linspace(0, len(images) - 1, 10).round().long()
    grid = torch.stack([images[chosen], extra["through"][chosen], extra["through_audio"][chosen]])
    picture = plots.image_grid(grid.numpy(), scale=4, row_labels=["image", "midi", "audio"])
    plot = plots.save_png(picture, out_dir / "through_melody.png")

    clean = results["clean"]
    targets = {
        metric: {"op": op, "value": value, "measured": clean[metric],
                 "passed": clean[metric] >= value if op == ">=" else clean[metric] <= value}
        for metric, op, value in MELODY_TARGETS[name]
    }
    result = {
        "preset": name,
        "bpm": bpm,
        "n_images": len(labels),
        "corpus_notes_per_bar_p10_p90": list(corpus_range),
        "corpus": corpus,
        "metrics": clean,
        "variants": {variant: found for variant, found in results.items() if variant != "clean"},
        "unpaired_mapper": comparison,
        "targets": targets,
        "all_targets_met": all(t["passed"] for t in targets.values()),
        "files": [str(out_dir / f"{v}.mid") for v in variants] + [str(out_dir / "clean.wav"), str(plot)],
        "seconds": round(time.perf_counter() - started, 1),
    }
    from synth.files import atomic_output

    with atomic_output(out_dir / "metrics.json", text=True) as stream:
        json.dump(result, stream, indent=2, default=float)
    return result


def _corpus_statistics(name: str) -> dict[str, float]:
    """The held-out Essen phrases' statistics, stored in the melody VAE's metadata when it was trained."""
    from models.checkpoint import load_checkpoint
    from models.errors import CheckpointError
    from models.registry import load_preset

    path = load_preset(name).melody_vae
    corpus = load_checkpoint(path, kind="melody_vae")["metadata"].get("corpus")
    if not corpus:
        raise CheckpointError(f"melody VAE {path} holds no corpus statistics; retrain it (imgsonic train melody-vae)")
    return corpus


def _compare_unpaired(classifier, labels, raw_test, *, out_dir: Path, bpm: float, corpus_range) -> dict[str, Any] | None:
    """The unpaired mapper's figures on the clean digits (``digits-fm``'s image VAE → melody mapper), if shipped."""
    from models.melody_pipeline import MelodyModels
    from models.registry import load_preset
    from training.datasets import load_digits_split

    if load_preset(UNPAIRED_PRESET).melody_mapper is None:
        return None
    melody = MelodyModels.from_preset(UNPAIRED_PRESET)
    size, channels = melody.image_vae.config.image_size, melody.image_vae.config.channels
    paths = sorted((out_dir / "images" / "clean").glob("*.png"))
    images = _read_as_render_does(paths, size=size, channels=channels)
    found, extra = _measure(melody, images, labels, classifier=classifier, name="unpaired_clean", out_dir=out_dir,
                            bpm=bpm, corpus_range=corpus_range, with_audio=True)
    train_images, _ = load_digits_split("train", size=size)
    found.update(_mutual_information(melody, train_images, images, extra["heard"]))
    found["preset"] = UNPAIRED_PRESET
    return found


def format_table(result: dict[str, Any]) -> str:
    """Clean-digit metrics with targets, then one line per variant and the unpaired mapper's figures."""
    def show(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = [f"preset {result['preset']}: {result['n_images']} held-out digits, melodies at {result['bpm']:g} bpm "
             f"(MIDI read back from files, audio from pyo), {result['seconds']:.0f} s",
             f"corpus notes per bar, 10th–90th percentile: {result['corpus_notes_per_bar_p10_p90']}"]
    width = max(len(key) for key in result["metrics"])
    for key, value in result["metrics"].items():
        target = result["targets"].get(key)
        verdict = f"  {target['op']} {target['value']:g}  {'PASS' if target['passed'] else 'FAIL'}" if target else ""
        lines.append(f"{key:<{width}}  {show(value):<10}{verdict}")
    keys = ("accuracy_through_melody", "melody_precision_at_10", "in_key_ratio", "notes_per_bar", "distinct_melodies")
    lines.append("variant     " + "  ".join(f"{k[:22]:>22}" for k in keys))
    for variant, found in result["variants"].items():
        lines.append(f"{variant:<11} " + "  ".join(f"{show(found[k]):>22}" for k in keys))
    if result["unpaired_mapper"]:
        found = result["unpaired_mapper"]
        lines.append(f"unpaired mapper ({found['preset']} image VAE → melody mapper), clean digits:")
        for key in (*keys, "accuracy_through_audio", "listener_proxy", "mi_nats"):
            lines.append(f"  {key:<{width}}  {show(found[key])}")
    lines.append("all targets met" if result["all_targets_met"] else "some targets missed")
    lines += [f"wrote {path}" for path in result["files"]]
    return "\n".join(lines)
