"""``imgsonic train multimodal``: the multimodal feature-GAN path on a trained ``s2i`` preset's data.

After ``imgsonic train s2i --preset spoken-digits`` (whose audio encoder gives the *sound features*):

1. **image classifier** (:class:`models.image_classifier.ImageClassifier`) on the training digits; its
   penultimate layer gives the *image features*;
2. **multimodal layers and feature-to-feature GAN** (:class:`models.multimodal.MultimodalFeatures`), one loop,
   three optimisers. Multimodal: every (sound, image) pair of a class gives three shared codes — image only,
   sound only, both — and the loss rebuilds both feature vectors from each code (mean squared error) and pulls
   the three codes together (``agreement_weight``). Feature GAN: sound features + noise → image features, judged
   by a spectral-norm projection discriminator (:class:`training.s2i_discriminator.FeatureDiscriminator`) that
   also calls a real image's features with the wrong sound fake (hinge loss);
3. **feature-to-image GAN**: an :class:`models.image_generator.ImageGenerator` conditioned on image features,
   trained like the S2I generator (:func:`training.train_s2i.train_gan`) on each image's own features.

Writes ``image_classifier.pt``, ``multimodal.pt`` and ``feature_image_generator.pt`` beside the s2i checkpoints
and adds them to ``<out>/imagine/<preset>.toml``.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from models.audio_encoder import AudioAutoencoder
from models.errors import InputError
from models.image_classifier import ImageClassifier, ImageClassifierConfig
from models.multimodal import MultimodalConfig, MultimodalFeatures
from training.loop import LoopSettings, resolve_device, seed_everything, train_loop
from training.paired_data import PairedData, spoken_digit_data
from training.s2i_discriminator import FeatureDiscriminator
from training.train_s2i import DEFAULT_OUT, S2I_SPECS, encode_all, train_gan, write_imagine_toml

__all__ = ["train_image_classifier", "train_multimodal_layers", "run"]

log = logging.getLogger(__name__)

CLASSIFIER_STEPS = 1500
MULTIMODAL_STEPS = 3000
FEATURE_IMAGE_STEPS = 3000
AGREEMENT_WEIGHT = 1.0


class _ClassifierObjective:
    def __init__(self, model: ImageClassifier, *, out_dir: Path, record: dict[str, Any]) -> None:
        self.model = model
        self.modules = {"image_classifier": model}
        self.optimizers = {"image_classifier": torch.optim.Adam(model.parameters(), lr=1e-3)}
        self.out_dir, self.record = out_dir, record

    def losses(self, step: int, batch: dict[str, Any], generator: torch.Generator):
        images, labels = batch["images"]
        # small random shifts: the features should not hinge on where a digit sits
        shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
        logits = self.model(torch.roll(images, shifts=shift, dims=(2, 3)))
        loss = F.cross_entropy(logits, labels)
        return {"image_classifier": loss}, {"ce": loss.item(), "acc": (logits.argmax(1) == labels).float().mean().item()}

    def save(self, step: int) -> None:
        self.model.save(self.out_dir / "image_classifier.pt", metadata={**self.record, "steps": step})


def train_image_classifier(data: PairedData, *, out_dir: Path, steps: int, device: str, progress: bool,
                           record: dict[str, Any]) -> ImageClassifier:
    seed_everything(2)
    n_classes = int(data.image_keys.max()) + 1
    model = ImageClassifier(ImageClassifierConfig(image_size=data.images.shape[-1], channels=data.images.shape[1],
                                                  n_classes=n_classes)).to(resolve_device(device))
    objective = _ClassifierObjective(model, out_dir=out_dir, record=record)
    train_loop(objective, {"images": (data.images, data.image_keys)},
               LoopSettings(name="image_classifier", steps=steps, batch_size=64, out_dir=out_dir, seed=2, device=device,
                            checkpoint_every=steps, progress=progress))
    return model.eval()


class _MultimodalObjective:
    """Multimodal layers (rebuild + agreement), then the feature generator, then its discriminator."""

    def __init__(self, model: MultimodalFeatures, discriminator: FeatureDiscriminator, data: PairedData,
                 image_features: torch.Tensor, *, out_dir: Path, record: dict[str, Any]) -> None:
        self.model, self.discriminator, self.data = model, discriminator, data
        self.image_features = image_features
        self.modules = {"multimodal": model, "feature_discriminator": discriminator}
        layers = [p for name, p in model.named_parameters() if not name.startswith("feature_generator")]
        self.optimizers = {
            "multimodal": torch.optim.Adam(layers, lr=1e-3),
            "feature_generator": torch.optim.Adam(model.feature_generator.parameters(), lr=2e-4, betas=(0.0, 0.99)),
            "feature_discriminator": torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.99)),
        }
        self.out_dir, self.record = out_dir, record
        self._features_as_images = PairedData(mels=data.mels[:1], sound_keys=data.sound_keys[:1], sound_labels=None,
                                              images=image_features[:, :, None, None], image_keys=data.image_keys,
                                              pairing="class", description="image features")

    def losses(self, step: int, batch: dict[str, Any], generator: torch.Generator):
        sound, keys = batch["sound"]
        device = sound.device
        image = self._features_as_images.images_for(keys, generator=generator)[:, :, 0, 0].to(device)
        wrong = self._features_as_images.images_for(keys, generator=generator, mismatched=True)[:, :, 0, 0].to(device)
        model = self.model
        codes = [model.shared(image_features=image), model.shared(audio_features=sound),
                 model.shared(image_features=image, audio_features=sound)]
        rebuild = sum(F.mse_loss(model.reconstruct(code)[0], image) + F.mse_loss(model.reconstruct(code)[1], sound)
                      for code in codes) / 3
        agreement = (F.mse_loss(codes[0], codes[2]) + F.mse_loss(codes[1], codes[2]) + F.mse_loss(codes[0], codes[1])) / 3
        noise = torch.randn(len(sound), model.config.noise_dim, generator=generator).to(device)
        fake = model.image_features_from_sound(sound, noise)
        g_loss = -self.discriminator(fake, sound).mean()
        d_loss = (F.relu(1.0 - self.discriminator(image, sound)).mean()
                  + 0.5 * (F.relu(1.0 + self.discriminator(fake.detach(), sound)).mean()
                           + F.relu(1.0 + self.discriminator(wrong, sound)).mean()))
        losses = {"multimodal": rebuild + AGREEMENT_WEIGHT * agreement, "feature_generator": g_loss,
                  "feature_discriminator": d_loss}
        return losses, {"rebuild": rebuild.item(), "agree": agreement.item(), "g": g_loss.item(), "d": d_loss.item()}

    def save(self, step: int) -> None:
        self.model.save(self.out_dir / "multimodal.pt", metadata={**self.record, "steps": step})


def train_multimodal_layers(data: PairedData, sound_features: torch.Tensor, image_features: torch.Tensor, *,
                            out_dir: Path, steps: int, device: str, progress: bool, record: dict[str, Any]
                            ) -> MultimodalFeatures:
    seed_everything(3)
    torch_device = resolve_device(device)
    model = MultimodalFeatures(MultimodalConfig(image_feature_dim=image_features.shape[1],
                                                audio_feature_dim=sound_features.shape[1])).to(torch_device)
    discriminator = FeatureDiscriminator(feature_dim=image_features.shape[1],
                                         condition_dim=sound_features.shape[1]).to(torch_device)
    objective = _MultimodalObjective(model, discriminator, data, image_features, out_dir=out_dir, record=record)
    train_loop(objective, {"sound": (sound_features, data.sound_keys)},
               LoopSettings(name="multimodal", steps=steps, batch_size=64, out_dir=out_dir, seed=3, device=device,
                            checkpoint_every=steps, progress=progress, grad_clip=0.0))
    return model.eval()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)
    spec = S2I_SPECS[args.preset]
    out = Path(args.out)
    folder = out / spec.name
    encoder_path = folder / "audio_encoder.pt"
    if not encoder_path.is_file():
        raise InputError(f"{encoder_path} does not exist; train the sound features first: imgsonic train s2i "
                         f"--preset {spec.name}" + (f" --out {args.out}" if args.out != DEFAULT_OUT else ""))
    words = ["--preset", spec.name] + (["--steps", str(args.steps)] if args.steps else []) + (
        ["--image-steps", str(args.image_steps)] if args.image_steps else []) + (
        ["--out", args.out] if args.out != DEFAULT_OUT else [])
    command = "imgsonic train multimodal " + shlex.join(words)
    started, cpu_started = time.perf_counter(), time.process_time()
    encoder = AudioAutoencoder.from_checkpoint(encoder_path).to(resolve_device(args.device))
    data = spoken_digit_data("train", cache_dir=args.cache, **spec.options)
    record: dict[str, Any] = {"preset": spec.name, "data": data.description, "command": command}
    progress = not args.no_progress
    classifier = train_image_classifier(data, out_dir=folder, steps=CLASSIFIER_STEPS, device=args.device,
                                        progress=progress, record=record)
    sound_features = encode_all(encoder, data.mels, device=args.device)
    with torch.inference_mode():
        image_features = classifier.features(data.images.to(resolve_device(args.device))).cpu()
    train_multimodal_layers(data, sound_features, image_features, out_dir=folder, steps=args.steps or MULTIMODAL_STEPS,
                            device=args.device, progress=progress, record=record)
    index = torch.arange(len(data.images))
    by_image = PairedData(mels=data.images[:, 0], sound_keys=index, sound_labels=None, images=data.images,
                          image_keys=index, pairing="instance", description="training digits with their own features")
    train_gan(spec, by_image, image_features, out_dir=folder, steps=args.image_steps or FEATURE_IMAGE_STEPS,
              device=args.device, progress=progress, stabiliser="spectral", command=command,
              file_name="feature_image_generator.pt")
    toml = write_imagine_toml(out, spec.name, description=spec.description, data=spec.data,
                              train_command=f"imgsonic train s2i --preset {spec.name} && {command}",
                              extra={key: f"../{spec.name}/{key}.pt"
                                     for key in ("multimodal", "image_classifier", "feature_image_generator")})
    print(f"{spec.name} multimodal path: {time.perf_counter() - started:.0f} s ({time.process_time() - cpu_started:.0f} s "
          f"CPU) → {folder}, {toml}")
    return 0
