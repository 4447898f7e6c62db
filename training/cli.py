"""``imgsonic train image-vae|audio-vae|mapper|all --preset NAME``: the runner (arguments: :mod:`bridge.cli.train`).

Output layout (``--out``, default ``runs/presets``) mirrors ``models/presets/``::

    <out>/<preset>.toml               # written by "all": the preset file, paths relative to <out>
    <out>/<preset>/image_vae.pt       # checkpoints (shipping = copying these and the .toml into models/presets/)
    <out>/<preset>/*.resume           # resume files (optimiser state, step, random state): not shipped

Data parallel, the same command under torchrun:
``torchrun --nproc_per_node 2 -m bridge train image-vae --preset squares-sines``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from models.errors import ParameterError

__all__ = ["run", "write_preset_toml"]


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
