"""``imgsonic train image-vae|audio-vae|mapper|all --preset NAME``: the arguments and the runner.

Output layout (``--out``, default ``runs/presets``) mirrors ``models/presets/``::

    <out>/<preset>.toml               # written by "all": the preset file, paths relative to <out>
    <out>/<preset>/image_vae.pt       # checkpoints (shipping = copying these and the .toml into models/presets/)
    <out>/<preset>/*.resume           # resume files (optimiser state, step, random state): not shipped

The same arguments work for the scripts run directly, e.g. under torchrun:
``torchrun --nproc_per_node 2 -m training.train_image_vae --preset squares-sines``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from models.errors import ParameterError

__all__ = ["MODELS", "add_arguments", "run", "main_for", "write_preset_toml"]

MODELS = ("image-vae", "audio-vae", "mapper", "melody-mapper", "all")
DEFAULT_OUT = "runs/presets"


def add_arguments(parser: argparse.ArgumentParser, *, model: str | None = None) -> None:
    """Declare the ``train`` arguments; ``model`` fixes the model (for the per-model scripts)."""
    from training.presets import PRESET_SPECS

    if model is None:
        parser.add_argument("model", choices=MODELS, help="what to train; 'all' trains the three (and a melody preset's "
                            "melody mapper) in order and writes the preset TOML")
    parser.add_argument("--preset", required=True, choices=sorted(PRESET_SPECS), help="preset whose data and configs to use")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}); checkpoints go to OUT/PRESET/")
    parser.add_argument("--steps", type=int, help="optimiser steps per model (default: the preset's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--n-examples", type=int, metavar="N", help="generated training examples per data set (default: the preset's)")
    parser.add_argument("--images", metavar="DIR", help="train on the images in DIR instead of the preset's")
    parser.add_argument("--sounds", metavar="DIR", help="train on the sounds in DIR instead of the preset's")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/PRESET/<model>.resume")
    parser.add_argument("--checkpoint-every", type=int, default=500, metavar="N", help="steps between checkpoints (default 500)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1: on 2 shared "
                        "cores, 2 threads made a small conv VAE 8x slower than 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    parser.add_argument("--melody-vae", metavar="PT", help="melody VAE for SynVAE presets and melody mappers "
                        "(default models/presets/melodies/essen-2bar.pt)")
    parser.add_argument("--image-vae", metavar="PT", help="melody-mapper: the image VAE to map from (default: OUT/PRESET/"
                        "image_vae.pt after 'all', else the shipped preset's)")


def write_preset_toml(out: Path, name: str, description: str, train_command: str, *,
                      melody_vae: Path | None = None, melody_mapper: bool = False) -> Path:
    """Write ``<out>/<name>.toml`` in the format of ``models/presets/README.md``.

    ``melody_vae`` (a path) adds the preset's melody model, relative to ``out``; ``melody_mapper`` adds
    ``<name>/melody_mapper.pt``.
    """
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"description = {quoted(description)}"]
    lines += [f"{kind} = {quoted(f'{name}/{kind}.pt')}" for kind in ("image_vae", "audio_vae", "mapper")]
    if melody_vae is not None:
        lines.append(f"melody_vae = {quoted(os.path.relpath(Path(melody_vae).resolve(), out.resolve()))}")
    if melody_mapper:
        lines.append(f"melody_mapper = {quoted(f'{name}/melody_mapper.pt')}")
    lines.append(f"train_command = {quoted(train_command)}")
    path = out / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(args: argparse.Namespace) -> int:
    """Train what ``args`` asks for; returns the exit code."""
    from synth.spectral import SpectralConfig
    from training.datasets import images_from_folder, sounds_from_folder
    from training.presets import get_spec
    from training.train_audio_vae import train_audio_vae
    from training.train_image_vae import train_image_vae
    from training.train_mapper import train_mapper
    from training.train_melody_mapper import DEFAULT_MELODY_VAE, MELODY_MAPPERS, train_melody_mapper
    from training.train_synvae import SYNVAE_SETTINGS, train_synvae

    import torch

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if args.threads < 1:
        raise ParameterError(f"--threads={args.threads}; expected an int >= 1")
    torch.set_num_threads(args.threads)
    if args.steps is not None and args.steps < 1:
        raise ParameterError(f"--steps={args.steps}; expected an int >= 1")
    if args.n_examples is not None and args.n_examples < 1:
        raise ParameterError(f"--n-examples={args.n_examples}; expected an int >= 1")
    if args.checkpoint_every < 1:
        raise ParameterError(f"--checkpoint-every={args.checkpoint_every}; expected an int >= 1")
    spec = get_spec(args.preset)
    out = Path(args.out)
    folder = out / spec.name
    images = None
    if args.images:
        images = images_from_folder(args.images, size=spec.image_vae.image_size, channels=spec.image_vae.channels)
    mels = None
    if args.sounds:
        mels = sounds_from_folder(args.sounds, config=SpectralConfig.from_dict(spec.audio_vae.spectral),
                                  n_frames=spec.audio_vae.n_frames)
    common = dict(out_dir=folder, steps=args.steps, device=args.device, resume=args.resume,
                  progress=not args.no_progress, checkpoint_every=args.checkpoint_every, n_examples=args.n_examples)
    melody_vae = Path(args.melody_vae or DEFAULT_MELODY_VAE)
    if args.model == "melody-mapper" and spec.name not in MELODY_MAPPERS:
        raise ParameterError(f"preset {spec.name!r} has no melody mapper; presets with one: {', '.join(MELODY_MAPPERS)}")
    started = time.perf_counter()
    if args.model in ("image-vae", "all"):
        if spec.name in SYNVAE_SETTINGS:
            train_synvae(spec, images=images, melody_vae=melody_vae, **common)
        else:
            train_image_vae(spec, images=images, **common)
    if args.model in ("audio-vae", "all"):
        train_audio_vae(spec, mels=mels, **common)
    if args.model in ("mapper", "all"):
        train_mapper(spec, images=images, mels=mels, **common)
    with_melody_mapper = spec.name in MELODY_MAPPERS and args.model in ("melody-mapper", "all")
    if with_melody_mapper:
        image_vae = args.image_vae or (folder / "image_vae.pt" if args.model == "all" else _shipped_image_vae(spec.name))
        train_melody_mapper(spec, image_vae=image_vae, melody_vae=melody_vae, images=images, **common)
    if args.model == "all":
        from training.loop import is_main_process

        if is_main_process():
            command = f"imgsonic train all --preset {spec.name}" + (f" --steps {args.steps}" if args.steps else "")
            command += f" --n-examples {args.n_examples}" if args.n_examples else ""
            with_melody = with_melody_mapper or spec.name in SYNVAE_SETTINGS
            toml = write_preset_toml(out, spec.name, spec.description, command,
                                     melody_vae=melody_vae if with_melody else None, melody_mapper=with_melody_mapper)
            print(f"preset {spec.name}: {time.perf_counter() - started:.0f} s in all → {toml}")
    return 0


def _shipped_image_vae(name: str) -> Path:
    from models.registry import load_preset

    return load_preset(name).image_vae


def main_for(model: str, argv: list[str] | None = None) -> int:
    """Entry point of the per-model scripts (``python -m training.train_<model>``): the CLI's error handling."""
    import sys

    from models.errors import ImgsonicError

    parser = argparse.ArgumentParser(prog=f"training.train_{model.replace('-', '_')}", description=f"train a preset's {model}")
    add_arguments(parser, model=model)
    args = parser.parse_args(argv)
    args.model = model
    try:
        return run(args)
    except ImgsonicError as error:
        print(f"{parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
