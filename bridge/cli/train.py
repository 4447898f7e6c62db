"""``imgsonic train MODEL``: a preset's image VAE, audio VAE, mapper, all three, or a neural vocoder.

The arguments are declared here; the work is :func:`training.cli.run` (the three preset models) and
:func:`training.train_vocoder.run`. Data-parallel training runs the same command under torchrun:
``torchrun --nproc_per_node 2 -m bridge train image-vae --preset squares-sines``.
"""

from __future__ import annotations

import argparse
import math

from bridge.cli.arguments import THREADS, Number

__all__ = ["add_arguments", "run", "PRESET_MODELS"]

PRESET_MODELS = ("image-vae", "audio-vae", "mapper", "melody-mapper", "all")
DEFAULT_OUT = "runs/presets"
DEFAULT_VOCODER_OUT = "runs/vocoder"
STEPS = Number(int, 1, 10_000_000, unit="steps")
COUNT = Number(int, 1, 10_000_000, unit="examples")
SEED = Number(int, 0, 2**32 - 1)
DEFAULT_IMAGINE_OUT = "runs/imagine"  # training.train_s2i.DEFAULT_OUT (a test keeps them equal)
STABILISERS = ("spectral", "moving-average")  # training.s2i_discriminator.STABILISERS (likewise)


def _semitones(text: str) -> tuple[float, ...]:
    """``--recording-shifts`` value: comma-separated semitones, each finite, non-zero and within ±12."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of semitones, e.g. -5,4") from None
    if not all(math.isfinite(v) and -12.0 <= v <= 12.0 and v != 0.0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each shift must be a non-zero number of semitones within ±12")
    return values


def _add_preset_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="default", help="preset whose configs (and, without --images/--sounds, "
                        "data) to use: default (the default), digits-fm, digits-melody, squares-sines")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}); checkpoints go to "
                        "OUT/PRESET/")
    parser.add_argument("--steps", type=STEPS, help="optimiser steps per model (default: the preset's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--n-examples", type=COUNT, metavar="N",
                        help="generated training examples per data set (default: the preset's)")
    parser.add_argument("--images", metavar="DIR", help="train on the images in DIR instead of the preset's (at "
                        "least 16; OUT then works as --preset OUT)")
    parser.add_argument("--sounds", metavar="DIR", help="train on the sounds in DIR instead of the preset's (at "
                        "least 16 files)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/PRESET/<model>.resume")
    parser.add_argument("--checkpoint-every", type=STEPS, default=500, metavar="N",
                        help="steps between checkpoints (default 500)")
    parser.add_argument("--threads", type=THREADS, default=1, help="torch CPU threads per process (default 1: on 2 "
                        "shared cores, 2 threads made a small conv VAE 8x slower than 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    parser.add_argument("--melody-vae", metavar="PT", help="melody VAE for SynVAE presets and melody mappers "
                        "(default models/presets/melodies/essen-2bar.pt)")
    parser.add_argument("--image-vae", metavar="PT", help="melody-mapper: the image VAE to map from (default: "
                        "OUT/PRESET/image_vae.pt after 'all', else the shipped preset's)")


def _add_melody_vae_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}); the checkpoint "
                        "goes to OUT/melodies/melody_vae.pt")
    parser.add_argument("--steps", type=STEPS, default=4000, help="optimiser steps (default 4000)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/melodies/melody_vae.resume")
    parser.add_argument("--threads", type=THREADS, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--export", metavar="PT", help="also copy the checkpoint here (e.g. "
                        "models/presets/melodies/essen-2bar.pt)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _add_s2i_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="data set and models to train: spoken-digits (default) or scenes; ignored "
                        "with --clips")
    parser.add_argument("--clips", metavar="DIR", help="train on your own clips instead: a folder of videos with a "
                        "same-named sound file beside each, or pictures with a same-named sound (see training.clips)")
    parser.add_argument("--name", default="clips", help="preset name for --clips (default clips)")
    parser.add_argument("--out", default=DEFAULT_IMAGINE_OUT, help=f"output folder (default {DEFAULT_IMAGINE_OUT})")
    parser.add_argument("--encoder-steps", type=STEPS, metavar="N", help="autoencoder steps (default: the preset's)")
    parser.add_argument("--gan-steps", type=STEPS, metavar="N", help="GAN steps (default: the preset's)")
    parser.add_argument("--stabiliser", choices=STABILISERS, help="spectral (spectral norm + projection + hinge, the "
                        "default) or moving-average (Sound-to-Imagination's loss averages and D/G schedule)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--cache", metavar="DIR", help="where spoken digits are generated (default ~/.cache/imgsonic)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch CPU threads (default 1)")
    parser.add_argument("--resume", action="store_true", help="continue both stages from OUT/NAME/*.resume up to "
                        "the given steps (the same result as training that many steps at once)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _add_multimodal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="spoken-digits", choices=["spoken-digits"],
                        help="the s2i preset whose audio encoder and data to use (spoken-digits: the path needs classes)")
    parser.add_argument("--out", default=DEFAULT_IMAGINE_OUT, help=f"the s2i output folder (default {DEFAULT_IMAGINE_OUT})")
    parser.add_argument("--steps", type=STEPS, metavar="N", help="multimodal steps (default 3000)")
    parser.add_argument("--image-steps", type=STEPS, metavar="N", help="feature-to-image GAN steps (default 3000)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--cache", metavar="DIR", help="where spoken digits are generated (default ~/.cache/imgsonic)")
    parser.add_argument("--threads", type=THREADS, default=1, metavar="N", help="torch CPU threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def _add_vocoder_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="train for this preset's spectral config (default: SpectralConfig(), "
                        "22.05 kHz, 128 mels)")
    parser.add_argument("--out", default=DEFAULT_VOCODER_OUT,
                        help=f"output folder (default {DEFAULT_VOCODER_OUT}/<preset or spectral-default>)")
    parser.add_argument("--steps", type=STEPS, default=4000, help="optimiser steps (default 4000)")
    parser.add_argument("--reanalysis-steps", type=Number(int, 0, 10_000_000, unit="steps"), default=2000,
                        metavar="N", help="the last N steps train on the output with PGHI phase, analysed again "
                        "(default 2000)")
    parser.add_argument("--batch-size", type=Number(int, 1, 4096), default=32, help="segments per step (default 32)")
    parser.add_argument("--lr", type=Number(float, 0.0, 1.0, low_open=True), default=2e-3,
                        help="peak AdamW learning rate (default 2e-3)")
    parser.add_argument("--dim", type=Number(int, 1, 4096), help="backbone channels (default: the model config's)")
    parser.add_argument("--intermediate-dim", type=Number(int, 1, 16384),
                        help="ConvNeXt MLP width (default: the model config's)")
    parser.add_argument("--n-blocks", type=Number(int, 1, 64), help="ConvNeXt blocks (default: the model config's)")
    parser.add_argument("--n-synth", type=COUNT, default=512, help="training clips per synth kind (default 512)")
    parser.add_argument("--recording-hop", type=Number(float, 0.0, 60.0, unit="seconds", low_open=True), default=0.1,
                        metavar="S", help="seconds between the training windows cut from each recording (default 0.1)")
    parser.add_argument("--recording-shifts", type=_semitones, default=(), metavar="S,S,…",
                        help="also train on the recordings pitch-shifted by these semitones, e.g. "
                             "--recording-shifts=-5,4 (default: none)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the model and the data (default 0)")
    parser.add_argument("--threads", type=THREADS, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/vocoder.resume")
    parser.add_argument("--checkpoint-every", type=STEPS, default=250, metavar="N",
                        help="steps between checkpoints (default 250)")
    parser.add_argument("--export", metavar="PATH", help="also copy the final checkpoint to PATH")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One sub-parser per model: the vocoder takes other options than the three preset models."""
    models = parser.add_subparsers(dest="model", required=True, metavar="MODEL")
    for name in PRESET_MODELS:
        what = ("image VAE, audio VAE and mapper (and a melody preset's melody mapper) in order, then write the "
                "preset TOML") if name == "all" else name
        _add_preset_model_arguments(models.add_parser(name, help=f"train the preset's {what}"))
    _add_melody_vae_arguments(models.add_parser(
        "melody-vae", help="train the melody VAE on the Essen folk songs (needs music21: pip install \".[melody]\")"))
    _add_s2i_arguments(models.add_parser(
        "s2i", help="train Sound-to-Imagination (sound → image) on spoken digits, rendered scenes or your own clips "
                    "(--clips DIR)"))
    _add_multimodal_arguments(models.add_parser(
        "multimodal", help="train the multimodal layers and feature GANs on an s2i preset's data"))
    _add_vocoder_arguments(models.add_parser(
        "vocoder", help="train a neural vocoder for a preset's (or the default) spectral config"))


def run(args: argparse.Namespace) -> int:
    code = _train(args)
    from training.loop import leave_process_group

    leave_process_group()  # under torchrun; only after success (a rank that failed must not be waited for)
    return code


def _train(args: argparse.Namespace) -> int:
    if args.model == "vocoder":
        from training import train_vocoder

        return train_vocoder.run(args)
    if args.model == "s2i":
        from bridge.sources.images import load_images  # the clip reader: training does not import the bridge
        from training import train_s2i

        return train_s2i.run(args, load_images=load_images)
    if args.model == "multimodal":
        from training import train_multimodal

        return train_multimodal.run(args)
    if args.model == "melody-vae":
        from training import train_melody_vae

        return train_melody_vae.run(args)
    from training import cli as train_cli

    return train_cli.run(args)
