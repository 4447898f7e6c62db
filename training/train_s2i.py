"""``imgsonic train s2i``: Sound-to-Imagination — an audio autoencoder, then a conditional GAN on its frozen codes.

Two stages, each through :func:`training.loop.train_loop`:

1. **audio autoencoder** (:class:`models.audio_encoder.AudioAutoencoder`) on 1-second log-mel windows:
   reconstruction (mean squared error) plus, when the sounds have classes, cross-entropy of its class head
   (``class_weight``), as the feature-GAN paper's per-modality classifiers do; with ``encoder_object_weight``
   and pictures paired by instance, also the squared error of its object head against the paired picture's
   object measures (count and extent as :func:`training.object_reader.object_targets` reads them).
2. **conditional GAN**: the encoder is frozen and every training window's code computed once; the generator
   (:class:`models.image_generator.ImageGenerator`, densely connected, dropout kept for test-time variety)
   learns images the conditional discriminator (:mod:`training.s2i_discriminator`) finds real and coherent
   with the code. Pairs are *by class* (any image of the spoken digit's class) or *by instance* (a rendered
   scene's own picture, a clip's own frame); a real image paired with the wrong sound counts as fake.

Presets (:data:`S2I_SPECS`): ``spoken-digits`` (espeak-ng digits ↔ scikit-learn digits), ``scenes`` (rendered
audio-visual scenes, :mod:`training.av_scenes`); ``--clips DIR`` trains on the user's own clips
(:mod:`training.clips`). Output (``--out``, default ``runs/imagine``)::

    <out>/<name>/audio_encoder.pt, <out>/<name>/generator.pt   # shipping = copying them into models/presets/<name>/
    <out>/imagine/<name>.toml                                  # the preset file, as in models/presets/imagine/
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.audio_encoder import AudioAutoencoder, AudioEncoderConfig
from models.errors import ParameterError
from models.image_generator import ImageGenerator, ImageGeneratorConfig
from training.loop import LoopSettings, resolve_device, seed_everything, train_loop
from training.object_reader import ObjectReader, ReaderRefresher, object_targets, train_object_reader
from training.paired_data import PairedData
from training.s2i_discriminator import (
    D_STEP_ABOVE,
    STABILISERS,
    ConditionalDiscriminator,
    MovingAverage,
    discriminator_loss,
    generator_loss,
)
from training.spoken_digits import SPEECH_SPECTRAL, WINDOW_FRAMES

__all__ = ["S2ISpec", "S2I_SPECS", "DEFAULT_OUT", "train_autoencoder", "encode_all", "train_gan", "train_s2i", "run",
           "write_imagine_toml"]

log = logging.getLogger(__name__)

DEFAULT_OUT = "runs/imagine"


@dataclass(frozen=True)
class S2ISpec:
    """Everything a Sound-to-Imagination preset is trained from (its data set is named by ``data``)."""

    name: str
    description: str
    data: str  # "spoken-digits", "scenes" or "clips"
    encoder: AudioEncoderConfig
    generator: ImageGeneratorConfig
    encoder_steps: int = 2000
    gan_steps: int = 3000
    batch_size: int = 64
    encoder_lr: float = 1e-3
    generator_lr: float = 2e-4
    discriminator_lr: float = 2e-4
    class_weight: float = 1.0
    discriminator_width: int = 32
    stabiliser: str = "spectral"
    object_weight: float = 0.0  # > 0: the object reader's auxiliary loss (instance pairing only)
    object_reader_steps: int = 1000
    extent_weight: float = 1.0  # the object loss's weight on the extent against the count
    reader_refresh: int = 0  # > 0: refresh the reader on generated images every this many GAN steps
    encoder_object_weight: float = 0.0  # > 0: the audio encoder's object head (instance pairing only)
    options: dict[str, Any] = field(default_factory=dict)


def _encoder(n_classes: int) -> AudioEncoderConfig:
    return AudioEncoderConfig(n_mels=SPEECH_SPECTRAL.n_mels, n_frames=WINDOW_FRAMES, code_dim=64, base_width=16,
                              n_layers=3, n_classes=n_classes, spectral=SPEECH_SPECTRAL.to_dict())


S2I_SPECS: dict[str, S2ISpec] = {
    spec.name: spec
    for spec in (
        S2ISpec(
            name="spoken-digits",
            description="spoken digits (espeak-ng voices) → handwritten digits: Sound-to-Imagination on the "
                        "spoken-digit ↔ digit pairing",
            data="spoken-digits",
            encoder=_encoder(10),
            generator=ImageGeneratorConfig(condition_dim=64, noise_dim=16, image_size=16, channels=1, base_width=64,
                                           growth=8, dense_layers=2, dropout=0.2),
            options={"clips_per_digit": 3, "copies": 3, "image_size": 16},
        ),
        S2ISpec(
            name="scenes",
            description="rendered audio-visual scenes (bouncing balls, rain, bells, engines) → their pictures; "
                        "size ↔ pitch, count ↔ rate",
            data="scenes",
            encoder=_encoder(4),
            generator=ImageGeneratorConfig(condition_dim=64, noise_dim=16, image_size=32, channels=1, base_width=64,
                                           growth=8, dense_layers=2, dropout=0.2, stage_condition=16),
            encoder_steps=3000,
            gan_steps=2500,
            object_weight=200.0,
            extent_weight=4.0,
            reader_refresh=10,
            encoder_object_weight=30.0,
            options={"n_scenes": 6000},
        ),
    )
}


def clips_spec(name: str) -> S2ISpec:
    """The spec for the user's own clips: the scenes' models, no class head (clips have no classes), RGB images, and
    no object reader or object head (a clip's frame is not white objects on black, which is all they can count)."""
    base = S2I_SPECS["scenes"]
    return dataclasses.replace(base, name=name, description=f"the user's own clips ({name})", data="clips",
                               generator=dataclasses.replace(base.generator, channels=3), object_weight=0.0,
                               encoder_object_weight=0.0, options={})


# ---- stage 1: the audio autoencoder ------------------------------------------------------------------------------


class _AutoencoderObjective:
    def __init__(self, model: AudioAutoencoder, *, lr: float, class_weight: float, object_weight: float,
                 out_dir: Path, metadata: Callable[[], dict[str, Any]]) -> None:
        self.model = model
        self.modules = {"audio_autoencoder": model}
        self.optimizers = {"audio_autoencoder": torch.optim.Adam(model.parameters(), lr=lr)}
        self.class_weight = class_weight
        self.object_weight = object_weight
        self.out_dir = out_dir
        self.metadata = metadata

    def losses(self, step: int, batch: dict[str, Any], generator: torch.Generator):
        mel, labels, objects = batch["sound"]
        code = self.model.encode(mel)
        reconstruction = F.mse_loss(self.model.decode(code), mel)
        loss, logs = reconstruction, {"recon": reconstruction.item()}
        if self.model.classifier is not None:
            logits = self.model.classify(code)
            cross_entropy = F.cross_entropy(logits, labels)
            loss = loss + self.class_weight * cross_entropy
            logs |= {"ce": cross_entropy.item(), "acc": float((logits.argmax(1) == labels).float().mean())}
        if self.model.object_head is not None:
            object_error = F.mse_loss(self.model.read_objects(code), objects)
            loss = loss + self.object_weight * object_error
            logs["objects"] = object_error.item()
        return {"audio_autoencoder": loss}, logs

    def save(self, step: int) -> None:
        self.model.save(self.out_dir / "audio_encoder.pt", metadata={**self.metadata(), "steps": step})


def train_autoencoder(spec: S2ISpec, data: PairedData, *, out_dir: Path, steps: int, device: str, progress: bool,
                      seed: int = 0, command: str = "", resume: bool = False) -> tuple[AudioAutoencoder, dict[str, Any]]:
    """Stage 1; returns the trained autoencoder (eval mode, on ``device``) and its training record."""
    seed_everything(seed)
    reads_objects = spec.encoder_object_weight > 0 and data.pairing == "instance"
    objects = object_targets(data.images)[data.sound_keys] if reads_objects else torch.zeros(len(data.mels), 0)
    config = dataclasses.replace(spec.encoder, n_classes=spec.encoder.n_classes if data.sound_labels is not None else 0,
                                 n_objects=objects.shape[1])
    model = AudioAutoencoder(config).to(resolve_device(device))
    started, cpu_started = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {"preset": spec.name, "data": data.description, "n_windows": len(data.mels),
                              "command": command}
    objective = _AutoencoderObjective(model, lr=spec.encoder_lr, class_weight=spec.class_weight,
                                      object_weight=spec.encoder_object_weight, out_dir=out_dir, metadata=lambda: record)
    labels = data.sound_labels if data.sound_labels is not None else torch.zeros(len(data.mels), dtype=torch.long)
    result = train_loop(objective, {"sound": (data.mels, labels, objects)},
                        LoopSettings(name="audio_encoder", steps=steps, batch_size=spec.batch_size, out_dir=out_dir,
                                     seed=seed, device=device, checkpoint_every=steps, progress=progress, resume=resume))
    record |= {"seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(time.process_time() - cpu_started, 1),
               "final_logs": result.logs}
    objective.save(steps)
    return model.eval(), record


# ---- stage 2: the conditional GAN --------------------------------------------------------------------------------


class _GanObjective:
    """Generator and discriminator; ``losses`` returns the generator's loss first, then (unless the schedule rests
    it) the discriminator's on the generator's images of the same batch, detached."""

    def __init__(self, generator: ImageGenerator, discriminator: ConditionalDiscriminator, data: PairedData, *,
                 spec: S2ISpec, stabiliser: str, out_dir: Path, metadata: Callable[[], dict[str, Any]],
                 file_name: str) -> None:
        self.generator = generator
        self.file_name = file_name
        self.discriminator = discriminator
        self.modules = {"generator": generator, "discriminator": discriminator}
        betas = (0.0, 0.99) if stabiliser == "spectral" else (0.5, 0.999)
        self.optimizers = {
            "generator": torch.optim.Adam(generator.parameters(), lr=spec.generator_lr, betas=betas),
            "discriminator": torch.optim.Adam(discriminator.parameters(), lr=spec.discriminator_lr, betas=betas),
        }
        self.data = data
        self.stabiliser = stabiliser
        self.out_dir = out_dir
        self.metadata = metadata
        self.d_average = MovingAverage()
        self.d_steps = 0
        self.reader: ObjectReader | None = None
        self.object_targets: torch.Tensor | None = None
        self.object_weight = spec.object_weight
        self.extent_weight = spec.extent_weight
        self.refresher: ReaderRefresher | None = None

    def losses(self, step: int, batch: dict[str, Any], generator: torch.Generator):
        code, keys = batch["sound"]
        device = code.device
        real = self.data.images_for(keys, generator=generator).to(device)
        wrong = self.data.images_for(keys, generator=generator, mismatched=True).to(device)
        noise = torch.randn(len(code), self.generator.config.noise_dim, generator=generator).to(device)
        logs = {}
        if self.refresher is not None and step % self.refresher.every == 0:
            with torch.no_grad():  # before this step's graph uses the reader, which the refresh changes in place
                preview = self.generator(code, noise)
            self.refresher.refresh(real, self.object_targets[keys.cpu()].to(device), preview)
        fake = self.generator(code, noise)
        g_loss = generator_loss(self.discriminator(fake, code), stabiliser=self.stabiliser)
        if self.reader is not None:
            weights = torch.tensor([1.0, self.extent_weight], device=device)
            object_loss = ((self.reader(fake) - self.object_targets[keys.cpu()].to(device)).square() * weights).mean()
            g_loss = g_loss + self.object_weight * object_loss
            logs["objects"] = object_loss.item()
        d_loss = discriminator_loss(self.discriminator(real, code), self.discriminator(fake.detach(), code),
                                    self.discriminator(wrong, code), stabiliser=self.stabiliser)
        losses = {"generator": g_loss}
        average = self.d_average.update(d_loss.item())
        if self.stabiliser == "spectral" or average > D_STEP_ABOVE:
            losses["discriminator"] = d_loss
            self.d_steps += 1
        return losses, {"g": g_loss.item(), "d": d_loss.item(), "d_step_share": self.d_steps / step, **logs}

    def save(self, step: int) -> None:
        self.generator.save(self.out_dir / self.file_name, metadata={**self.metadata(), "steps": step})


def encode_all(encoder: AudioAutoencoder, mels: torch.Tensor, *, device: str) -> torch.Tensor:
    """The frozen encoder's codes ``(n, code_dim)`` of mels ``(n, n_mels, n_frames)``, on the CPU."""
    torch_device = resolve_device(device)
    with torch.inference_mode():
        return torch.cat([encoder.encode(chunk.to(torch_device)).cpu() for chunk in mels.split(256)])


def train_gan(spec: S2ISpec, data: PairedData, codes: torch.Tensor, *, out_dir: Path, steps: int, device: str,
              progress: bool, stabiliser: str, seed: int = 0, command: str = "", file_name: str = "generator.pt",
              resume: bool = False) -> tuple[ImageGenerator, dict[str, Any]]:
    """Stage 2: a generator of ``data``'s images conditioned on ``codes`` ``(n, condition_dim)`` (one per sound of
    ``data``: the frozen encoder's codes, or image features); returns it (eval mode, on the CPU) and its record."""
    if stabiliser not in STABILISERS:
        raise ParameterError(f"stabiliser={stabiliser!r}; accepted: {', '.join(STABILISERS)}")
    seed_everything(seed + 1)
    torch_device = resolve_device(device)
    image_shape = tuple(data.images.shape[1:])
    reads_objects = spec.object_weight > 0 and data.pairing == "instance"
    config = dataclasses.replace(spec.generator, condition_dim=codes.shape[1], channels=image_shape[0],
                                 image_size=image_shape[-1])
    generator = ImageGenerator(config).to(torch_device)
    discriminator = ConditionalDiscriminator(image_size=config.image_size, channels=config.channels,
                                             condition_dim=config.condition_dim, base_width=spec.discriminator_width,
                                             spectral=stabiliser == "spectral").to(torch_device)
    started, cpu_started = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {"preset": spec.name, "data": data.description, "pairing": data.pairing,
                              "stabiliser": stabiliser, "n_windows": len(codes), "n_images": len(data.images),
                              "command": command}
    objective = _GanObjective(generator, discriminator, data, spec=spec, stabiliser=stabiliser, out_dir=out_dir,
                              metadata=lambda: record, file_name=file_name)
    if reads_objects:
        objective.object_targets = object_targets(data.images)
        objective.reader, record["object_reader"] = train_object_reader(
            data.images, objective.object_targets, steps=spec.object_reader_steps, seed=seed, device=torch_device)
        if spec.reader_refresh > 0:  # the reader then changes as training goes: a resume restores it too
            objective.refresher = ReaderRefresher(objective.reader, every=spec.reader_refresh)
            objective.modules["object_reader"] = objective.reader
            objective.optimizers["object_reader"] = objective.refresher.optimizer
    result = train_loop(objective, {"sound": (codes, data.sound_keys)},
                        LoopSettings(name=Path(file_name).stem, steps=steps, batch_size=spec.batch_size, out_dir=out_dir,
                                     seed=seed, device=device, checkpoint_every=steps, progress=progress, grad_clip=0.0,
                                     resume=resume))
    record |= {"seconds": round(time.perf_counter() - started, 1), "cpu_seconds": round(time.process_time() - cpu_started, 1),
               "final_logs": result.logs}
    objective.save(steps)
    return generator.cpu().eval(), record


def write_imagine_toml(out: Path, name: str, *, description: str, data: str, train_command: str,
                       extra: dict[str, str] | None = None) -> Path:
    """Write ``<out>/imagine/<name>.toml``, the format of ``models/presets/imagine/`` (paths relative to ``<out>``)."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    entries = {"description": description, "data": data, "audio_encoder": f"../{name}/audio_encoder.pt",
               "generator": f"../{name}/generator.pt", **(extra or {}), "train_command": train_command}
    path = out / "imagine" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key} = {quoted(value)}\n" for key, value in entries.items()), encoding="utf-8")
    return path


def train_s2i(spec: S2ISpec, data: PairedData, *, out: Path, device: str = "cpu", encoder_steps: int | None = None,
              gan_steps: int | None = None, stabiliser: str | None = None, progress: bool = True,
              command: str = "", resume: bool = False) -> dict[str, Any]:
    """Both stages and the preset TOML; returns the two training records. ``resume`` continues each stage from its
    resume file exactly (the loop restores modules, optimisers and random states): with the spectral stabiliser,
    2500 steps and then a resume to 5000 equal 5000 steps at once (the moving-average schedule's average restarts)."""
    folder = out / spec.name
    encoder, encoder_record = train_autoencoder(spec, data, out_dir=folder, steps=encoder_steps or spec.encoder_steps,
                                                device=device, progress=progress, command=command, resume=resume)
    codes = encode_all(encoder, data.mels, device=device)
    _, gan_record = train_gan(spec, data, codes, out_dir=folder, steps=gan_steps or spec.gan_steps, device=device,
                              progress=progress, stabiliser=stabiliser or spec.stabiliser, command=command, resume=resume)
    toml = write_imagine_toml(out, spec.name, description=spec.description, data=spec.data, train_command=command)
    return {"audio_encoder": encoder_record, "generator": gan_record, "toml": str(toml)}


# ---- the command line --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace, *, load_images: Callable | None = None) -> int:
    """Train what ``args`` asks for. ``load_images`` is the bridge's frame reader (``bridge.sources.images.load_images``),
    which ``--clips`` needs for videos and animations; training does not import the bridge itself."""
    from training.paired_data import clip_data, scene_data, spoken_digit_data

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    command = "imgsonic train s2i " + shlex.join(_given_arguments(args))
    if args.clips:
        spec = clips_spec(args.name)
        data = clip_data(args.clips, load_images=load_images)
    else:
        name = args.preset or "spoken-digits"
        if name not in S2I_SPECS:
            raise ParameterError(f"--preset {name!r}; s2i presets that can be trained: {', '.join(S2I_SPECS)}")
        spec = S2I_SPECS[name]
        if spec.data == "spoken-digits":
            data = spoken_digit_data("train", cache_dir=args.cache, **spec.options)
        else:
            data = scene_data("train", **spec.options)
    started = time.perf_counter()
    records = train_s2i(spec, data, out=out, device=args.device, encoder_steps=args.encoder_steps,
                        gan_steps=args.gan_steps, stabiliser=args.stabiliser, progress=not args.no_progress,
                        command=command, resume=args.resume)
    encoder, gan = records["audio_encoder"], records["generator"]
    print(f"{spec.name}: audio encoder {encoder['seconds']:.0f} s ({encoder['cpu_seconds']:.0f} s CPU), GAN "
          f"{gan['seconds']:.0f} s ({gan['cpu_seconds']:.0f} s CPU), {time.perf_counter() - started:.0f} s in all "
          f"→ {out / spec.name}, {records['toml']}")
    return 0


def _given_arguments(args: argparse.Namespace) -> list[str]:
    """The options the user gave, as command-line words (for the checkpoint's reproduce command)."""
    words = []
    for name in ("preset", "clips", "encoder_steps", "gan_steps", "stabiliser", "device"):
        value = getattr(args, name, None)
        if value is not None and not (name == "device" and value == "cpu"):
            words += [f"--{name.replace('_', '-')}", str(value)]
    if getattr(args, "clips", None) and args.name != "clips":
        words += ["--name", args.name]
    if args.out != DEFAULT_OUT:
        words += ["--out", str(args.out)]
    return words

