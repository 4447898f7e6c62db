"""``imgsonic train image-vae|audio-vae|mapper|all --preset NAME``: the runner (arguments: :mod:`bridge.cli.train`).

Output layout (``--out``, default ``runs/presets``) mirrors ``models/presets/``::

    <out>/<preset>.toml               # written by "all": the preset file, paths relative to <out>
    <out>/<preset>/image_vae.pt       # checkpoints (shipping = copying these and the .toml into models/presets/)
    <out>/<preset>/*.resume           # resume files (optimiser state, step, random state): not shipped

``--images DIR --sounds DIR`` train on your own folders (at least :data:`MIN_USER_IMAGES` images and
:data:`MIN_USER_SOUNDS` sounds; batches shrink to the data); ``OUT`` then works as ``--preset OUT`` everywhere
(:mod:`models.registry` resolves it). ``all`` says which stage it is in (``[i/n]``); each stage's bar shows its
own ETA.

Data parallel, the same command under torchrun:
``torchrun --nproc_per_node 2 -m bridge train image-vae --preset squares-sines``.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import time
from pathlib import Path

from models.errors import InputError, ParameterError

__all__ = ["run", "write_preset_toml", "MIN_USER_IMAGES", "MIN_USER_SOUNDS"]

# Own folders: the fewest files a preset can be trained from. Below this the 10 % held out for the metrics is
# one item and the mapper's batches (which shrink to the data) hold too few latents to match two distributions.
MIN_USER_IMAGES = 16
MIN_USER_SOUNDS = 16
DEFAULT_OUT = "runs/presets"  # bridge.cli.train.DEFAULT_OUT (a test keeps them equal)


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
    torch.set_num_threads(args.threads)
    spec = get_spec(args.preset)
    out = Path(args.out)
    folder = out / spec.name
    images = None
    if args.images:
        images = images_from_folder(args.images, size=spec.image_vae.image_size, channels=spec.image_vae.channels)
        if len(images) < MIN_USER_IMAGES:
            raise InputError(f"--images {args.images}: {len(images)} readable image(s); training needs at least "
                             f"{MIN_USER_IMAGES}")
    mels = None
    if args.sounds:
        n_files, mels = sounds_from_folder(args.sounds, config=SpectralConfig.from_dict(spec.audio_vae.spectral),
                                           n_frames=spec.audio_vae.n_frames, with_count=True)
        if n_files < MIN_USER_SOUNDS or len(mels) < MIN_USER_SOUNDS:
            raise InputError(f"--sounds {args.sounds}: {n_files} readable sound file(s) giving {len(mels)} "
                             f"non-silent window(s); training needs at least {MIN_USER_SOUNDS} of each")
    common = dict(out_dir=folder, steps=args.steps, device=args.device, resume=args.resume,
                  progress=not args.no_progress, checkpoint_every=args.checkpoint_every, n_examples=args.n_examples)
    melody_vae = Path(args.melody_vae or DEFAULT_MELODY_VAE)
    if args.model == "melody-mapper" and spec.name not in MELODY_MAPPERS:
        raise ParameterError(f"preset {spec.name!r} has no melody mapper; presets with one: {', '.join(MELODY_MAPPERS)}")
    with_melody_mapper = spec.name in MELODY_MAPPERS and args.model in ("melody-mapper", "all")
    if with_melody_mapper and args.model == "all" and importlib.util.find_spec("music21") is None:
        print("skipping the melody mapper: its melodies come from music21's corpus (pip install \".[melody]\"); "
              "the preset plays no melody")
        with_melody_mapper = False

    def train_image() -> None:
        if spec.name in SYNVAE_SETTINGS:
            train_synvae(spec, images=images, melody_vae=melody_vae, **common)
        else:
            train_image_vae(spec, images=images, **common)

    def train_melody() -> None:
        image_vae = args.image_vae or (folder / "image_vae.pt" if args.model == "all" else _shipped_image_vae(spec.name))
        train_melody_mapper(spec, image_vae=image_vae, melody_vae=melody_vae, images=images, **common)

    stages = [(name, train) for name, train, wanted in (
        ("image-vae", train_image, args.model in ("image-vae", "all")),
        ("audio-vae", lambda: train_audio_vae(spec, mels=mels, **common), args.model in ("audio-vae", "all")),
        ("mapper", lambda: train_mapper(spec, images=images, mels=mels, **common), args.model in ("mapper", "all")),
        ("melody-mapper", train_melody, with_melody_mapper),
    ) if wanted]
    started = time.perf_counter()
    for index, (name, train) in enumerate(stages, start=1):
        if len(stages) > 1:  # each stage's bar shows its own ETA; this says where the run is
            print(f"[{index}/{len(stages)}] {name} ({time.perf_counter() - started:.0f} s so far)", flush=True)
        train()
    if args.model == "all":
        from training.loop import is_main_process

        if is_main_process():
            command = f"imgsonic train all --preset {spec.name}" + (f" --steps {args.steps}" if args.steps else "")
            command += f" --n-examples {args.n_examples}" if args.n_examples else ""
            command += f" --images {args.images}" if args.images else ""
            command += f" --sounds {args.sounds}" if args.sounds else ""
            command += f" --out {args.out}" if args.out != DEFAULT_OUT else ""
            description = spec.description
            if args.images or args.sounds:
                description = (f"{spec.name}'s models trained on {args.images or spec.image_data + ' images'} and "
                               f"{args.sounds or spec.sound_data + ' sounds'}")
            with_melody = with_melody_mapper or spec.name in SYNVAE_SETTINGS
            toml = write_preset_toml(out, spec.name, description, command,
                                     melody_vae=melody_vae if with_melody else None, melody_mapper=with_melody_mapper)
            print(f"preset {spec.name}: {time.perf_counter() - started:.0f} s in all → {toml}; "
                  f"use it with --preset {out}")
    return 0


def _shipped_image_vae(name: str) -> Path:
    from models.registry import load_preset

    return load_preset(name).image_vae
