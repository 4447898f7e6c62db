"""What each shipped preset is made of: spectral config, model configs, data sets and training settings.

``PRESET_SPECS[name]`` is the one description that the training scripts, ``imgsonic train`` and the evaluator
read. :func:`preset_images` and :func:`preset_sounds` build a preset's data (train or held-out test split).

Example
-------
>>> spec = PRESET_SPECS["squares-sines"]
>>> spec.image_data, spec.sound_data, spec.audio_vae.n_frames
('squares', 'sines', 1)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from models.audio_vae import AudioVAEConfig
from models.errors import ParameterError
from models.image_vae import ImageVAEConfig
from models.mapper import LatentMapperConfig
from synth.spectral import SpectralConfig
from training import datasets

__all__ = ["TrainSettings", "MapperWeights", "PresetSpec", "PRESET_SPECS", "get_spec", "preset_images", "preset_sounds"]

IMAGE_DATA = ("squares", "digits", "broad")
SOUND_DATA = ("sines", "fm", "palette")
_TEST_SEED_OFFSET = 1_000_003  # held-out examples come from another seed of the same generator


@dataclass(frozen=True)
class TrainSettings:
    """One model's training run: optimiser steps, batch size, Adam learning rate, training examples.

    ``n_examples`` is ignored for fixed data sets (digits) and user folders.
    """

    steps: int
    batch_size: int
    lr: float
    n_examples: int = 20000


@dataclass(frozen=True)
class MapperWeights:
    """Weights of the mapper objective (see ``training.losses``) and its stages, as fractions of the steps.

    Locality is on from the start; cycle consistency ramps from 0 at ``cycle_start`` to full at ``cycle_full``;
    prior matching (sliced Wasserstein) is on throughout. ``locality_kind`` is "axis", "distance", "log_distance"
    (distance ratios, see ``training.losses.log_distance_loss``) or "auto" (axis when the latent sizes match,
    else distance). ``near`` > 0 adds a local term: each training image and a near copy of it
    (``training.datasets.near_copies``) must not decode to mels closer together, relative to their latent
    distance, than the batch's pairs do on average; random batches hardly ever hold such close pairs, so the
    batch locality does not see them. ``sound_locality`` > 0 adds pairwise-distance preservation between the image
    descriptor dims (each descriptor group weighted equally; the whole normalised image latent when the image VAE
    has none) and what a listener compares: MFCC-like statistics of the decoded mel windows, standardised over
    the batch (``training.losses.sound_features``). ``sound_local`` > 0 adds the same within neighbourhoods: the
    16 images of a batch nearest (by descriptors) to each of four random ones, their sound features standardised
    within the neighbourhood, so the order among similar images (one texture family, photos) counts as much as the
    gaps between kinds. ``inverse_fit`` > 0 trains the inverse mapper alone (the forward map held) to undo the
    forward map and the audio encoder after it, for objectives without cycle terms. ``sound_kind`` picks the sound
    features of both sound terms: "model" (cepstra over the audio model's own mel bands,
    ``training.losses.sound_features``) or "file" (the MFCC statistics of the rendered file, computed from the mel,
    ``training.losses.FileCepstra``, whose temporal standard deviations weigh ``spread_weight`` against the means).
    ``group_emphasis`` (colour, scale, orientation, periodicity) multiplies each descriptor group's weight, and
    ``edge_strength`` > 0 adds the strengths of the edge orientation and of the fourfold term to the descriptors
    the sound follows (``training.train_mapper.DescriptorTarget``). ``flat_colour`` > 0 weighs the colour means of
    images with little contrast up to ``1 + flat_colour`` times (a flat field's colour is all it has to tell).
    """

    locality_kind: str = "auto"
    sound_kind: str = "model"
    locality: float = 1.0
    sound_locality: float = 0.0
    cycle: float = 1.0
    direct_cycle: float = 1.0
    prior: float = 0.5
    near: float = 0.0
    sound_local: float = 0.0
    inverse_fit: float = 0.0
    group_emphasis: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    edge_strength: float = 0.0
    spread_weight: float = 1.0
    flat_colour: float = 0.0
    cycle_start: float = 0.3
    cycle_full: float = 0.6


@dataclass(frozen=True)
class PresetSpec:
    """Everything needed to train one preset from scratch.

    ``image_data``: one of "squares", "digits", "broad"; ``sound_data``: one of "sines", "fm", "palette".
    ``beta`` weighs the VAEs' KL term and ``tc_gamma`` their FactorVAE total-correlation term (0 = β-VAE).
    ``image_class_weight`` > 0 adds a classification loss on the image latent when the image data have class
    labels (digits): classes get distinct latents, so the mapper gives them distinct timbres.
    ``audio_factor_weight`` > 0 does the same inside the audio modality for sound data with synth parameters
    (sines): latent dim k is pulled towards the standardised parameter k (pitch, loudness);
    ``image_factor_weight`` > 0 likewise for images with generating factors (squares: x, y).
    ``image_spread_weight`` > 0 keeps near-duplicate images (neighbouring crops of one photo) apart in the image
    latent, in proportion to their pixel distance (``training.losses.spread_loss``), so they do not share a sound.
    ``square_side_range`` (fractions of the image side) and ``square_edge_range_px`` set the squares data set's
    sizes and edge softness (``training.datasets.make_squares``).
    ``audio_level_weight`` > 0 penalises the squared dB error of each decoded window's total power, so the
    decoder keeps the level of a sound (what the rendered loudness follows). The mapping itself never sees
    labels, parameters or pairs.
    """

    name: str
    description: str
    spectral: SpectralConfig
    image_vae: ImageVAEConfig
    audio_vae: AudioVAEConfig
    mapper: LatentMapperConfig
    image_data: str
    sound_data: str
    image_training: TrainSettings
    audio_training: TrainSettings
    mapper_training: TrainSettings
    mapper_weights: MapperWeights = MapperWeights()
    image_beta: float = 1.0
    image_tc_gamma: float = 0.0
    audio_beta: float = 1.0
    audio_tc_gamma: float = 0.0
    image_class_weight: float = 0.0
    image_factor_weight: float = 0.0
    image_spread_weight: float = 0.0
    audio_factor_weight: float = 0.0
    audio_level_weight: float = 0.0
    square_side_range: tuple[float, float] = (0.25, 0.25)
    square_edge_range_px: tuple[float, float] = (1.5, 1.5)
    seed: int = 0


# 8 kHz with a 2048-point FFT gives 3.9 Hz bins: the narrowest of the 64 bands (≈17 Hz wide at 65 Hz) holds
# several bins, so no band is empty. The band edges enclose the tones' 73–1175 Hz with a little room.
# The deep floor (−120 dB) keeps the window's side lobes: a tone lights ≈39 bands instead of ≈6, so loudness
# changes many values (with −60 dB the audio VAE found loudness not worth a latent dim and dropped it) and
# neighbouring pitches overlap, which makes the pitch axis smooth.
_SINE_SPECTRAL = SpectralConfig(
    sample_rate=8000, n_fft=2048, hop_length=512, n_mels=64, f_min_hz=65.0, f_max_hz=1300.0,
    db_floor=-120.0, db_ceiling=40.0,
)
# 16 kHz, 1024-point FFT (15.6 Hz bins, no empty band above 30 Hz): room for FM sidebands up to 8 kHz.
_SYNTH_SPECTRAL = SpectralConfig(
    sample_rate=16000, n_fft=1024, hop_length=256, n_mels=64, f_min_hz=30.0, f_max_hz=8000.0,
    db_floor=-70.0, db_ceiling=30.0,
)


def _audio_config(spectral: SpectralConfig, **kwargs) -> AudioVAEConfig:
    return AudioVAEConfig(n_mels=spectral.n_mels, spectral=spectral.to_dict(), **kwargs)


# What digits-fm and digits-melody share: handwritten digits, FM timbres, the audio VAE and how it and the
# mapper train (digits-melody is SynVAE's image side on digits-fm's audio path)
_DIGITS_FM_PATH = dict(
    spectral=_SYNTH_SPECTRAL,
    audio_vae=_audio_config(_SYNTH_SPECTRAL, n_frames=8, latent_dim=8, hidden_width=192, n_hidden_layers=2),
    image_data="digits",
    sound_data="fm",
    image_training=TrainSettings(steps=3000, batch_size=64, lr=1e-3),
    audio_training=TrainSettings(steps=4000, batch_size=64, lr=1e-3, n_examples=30000),
    mapper_training=TrainSettings(steps=1500, batch_size=128, lr=1e-3),
    mapper_weights=MapperWeights(locality_kind="distance"),
    audio_beta=0.2,
)


PRESET_SPECS: dict[str, PresetSpec] = {
    spec.name: spec
    for spec in (
        PresetSpec(
            name="squares-sines",
            description=("white squares of any size (x, y) ↔ sine tones (pitch, loudness): Laczkó et al.'s synthetic "
                         "check; each VAE is weakly supervised by its own modality's factors (square x, y; tone "
                         "pitch, loudness); the mapper sees no pairs"),
            spectral=_SINE_SPECTRAL,
            image_vae=ImageVAEConfig(image_size=32, channels=1, latent_dim=2, base_width=16, n_layers=3, hidden_width=128),
            # the encoder does not read below −60 dB: 16-bit files put their quantisation noise up to −69 dB
            # (8 kHz) there, and with the whole −120 dB range a 110 Hz tone at −20 dB RMS landed 1.8 latent
            # units (25 of 128 px in `visualize`) apart written as 16-bit WAVs at 8 and 44.1 kHz; nor more than
            # 50 dB below a window's peak, where Ogg Vorbis spreads a loud tone (59 px off as a .ogg)
            audio_vae=_audio_config(_SINE_SPECTRAL, n_frames=1, latent_dim=2, hidden_width=256, n_hidden_layers=2,
                                    fourier_octaves=6, encoder_floor_db=-60.0, encoder_range_db=50.0),
            mapper=LatentMapperConfig(image_latent_dim=2, audio_latent_dim=2, hidden_width=64, depth=2),
            image_data="squares",
            sound_data="sines",
            image_training=TrainSettings(steps=3000, batch_size=64, lr=1e-3, n_examples=20000),
            # the encoder is a regressor from a tone's mel to (pitch, loudness): at 6000 steps its loudness was off
            # by ≈2 dB, pitch-dependently, and sounds → squares missed by 2.4 px on 64 px (reverse eval); 40000 → 1.4 px
            audio_training=TrainSettings(steps=40000, batch_size=128, lr=1e-3, n_examples=20000),
            mapper_training=TrainSettings(steps=1000, batch_size=64, lr=1e-3, n_examples=20000),
            image_factor_weight=10.0,  # fixes both latent axes, so no TC term (it let y leak into x's dim)
            # squares from under 2 px to over half the image, hard to soft: a user's square of any size keeps its
            # place (with quarter-size squares only, 4 px squares in 64 px images lost the pitch range)
            square_side_range=(0.05, 0.55),
            square_edge_range_px=(0.5, 2.0),
            # Unsupervised, the decoder's loudness followed pitch (rendered |rho| loudness 0.62, leakage 0.70 with
            # β 0.02–1, TC γ 0–60, any dB floor). The synth's own parameters now fix the two axes (within the
            # audio modality only, like digits-fm's class labels), so no TC term is needed and β stays small;
            # the level loss keeps the narrow peak's level, which is what the rendered loudness follows.
            audio_beta=0.01,
            audio_factor_weight=10.0,
            audio_level_weight=0.02,
        ),
        PresetSpec(
            name="digits-fm",
            description="handwritten digits ↔ FM timbres (the analogue of SynVAE's MNIST experiment)",
            # a quarter of the former widths (base 32 / hidden 256, audio hidden 512): 1.9 MB instead of 6.8 (float32), every
            # target kept (through sound 0.99, listener proxy 0.94, precision@10 0.92), ≈2.5 min to train
            image_vae=ImageVAEConfig(image_size=16, channels=1, latent_dim=8, base_width=16, n_layers=2, hidden_width=128),
            mapper=LatentMapperConfig(image_latent_dim=8, audio_latent_dim=8, hidden_width=128, depth=2),
            image_beta=0.5,
            image_class_weight=20.0,
            **_DIGITS_FM_PATH,
        ),
        PresetSpec(
            name="digits-melody",
            description=("handwritten digits ↔ melodies (SynVAE: the image VAE is trained through the frozen melody "
                         "model) and FM timbres (the audio path of digits-fm)"),
            # the image latent is the melody latent (16 dims); trained by training.train_synvae, not as a plain VAE
            image_vae=ImageVAEConfig(image_size=16, channels=1, latent_dim=16, base_width=16, n_layers=2, hidden_width=128),
            mapper=LatentMapperConfig(image_latent_dim=16, audio_latent_dim=8, hidden_width=128, depth=2),
            **_DIGITS_FM_PATH,
        ),
        PresetSpec(
            name="default",
            description=("any image ↔ a broad palette of synth timbres (FM with envelopes and vibrato, sines, noise); "
                         "colour, spatial frequency, orientation and periodicity reach the sound"),
            spectral=_SYNTH_SPECTRAL,
            # 8 learned dims + the 16 texture/colour descriptors (models.image_descriptors): a pixel VAE alone put
            # gratings, checkers and noise of the same colours side by side, and their sounds too
            image_vae=ImageVAEConfig(image_size=64, channels=3, latent_dim=24, base_width=8, n_layers=4, hidden_width=128,
                                     n_descriptors=16),
            # 16 audio dims: with 8 every dim was in use (KL 1.5-3.5 nats each) and the sound could not hold colour
            # and texture apart; 16 gave texture 1-NN, photo rho and distance preservation a few hundredths each
            audio_vae=_audio_config(_SYNTH_SPECTRAL, n_frames=8, latent_dim=16, hidden_width=256, n_hidden_layers=2),
            mapper=LatentMapperConfig(image_latent_dim=24, audio_latent_dim=16, hidden_width=256, depth=3),
            image_data="broad",
            sound_data="palette",
            image_training=TrainSettings(steps=4000, batch_size=32, lr=1e-3, n_examples=12000),
            audio_training=TrainSettings(steps=4000, batch_size=64, lr=1e-3, n_examples=30000),
            mapper_training=TrainSettings(steps=4000, batch_size=64, lr=1e-3, n_examples=4000),
            # Near-duplicate images (neighbouring crops of the flat moon photo, of one texture) were squeezed
            # 4-7x closer in the image latent than their pixel distance warrants, and 5 of 200 held-out images
            # shared a sound with a neighbour. The spread term keeps such pairs apart in the image latent, the
            # mapper's near term keeps them apart through the mapper: 200 of 200 distinct, closest pair
            # 2.4 dB (1 dB counts as the same); weight 30 left 1.4 dB, 100 for 2500 steps cost image detail.
            image_spread_weight=100.0,
            # The sound follows the descriptors alone: image-descriptor distances ≈ decoded-sound distances over the
            # batch and within neighbourhoods of similar images. Generic locality and the cycle terms (which also
            # made the sound carry the learned dims, and so the photos' layout rather than their texture) are off;
            # the inverse is fitted to the forward map on its own, for visualize. Measured on dev sets (three
            # render seeds, three mapper seeds): photo ρ 0.12 → 0.48, texture ρ 0.36 → 0.52, 1-NN 0.76 → 0.84.
            # Then (dev sets, mapper seeds 1 and 3): the sound compared as the rendered file's MFCCs (sound_kind
            # "file") and the 16 generic descriptors: photo ρ 0.63, texture ρ 0.74, but 1-NN 0.71 (stripes at unlike
            # angles lay as far apart as stripes and checkers); the edge strengths (edge_strength 1) with colour
            # at 0.75: 1-NN 0.88, photo ρ 0.60, texture ρ 0.72, distance preservation 0.51-0.55. Colour 0.5 with
            # strength 1.5 reached 1-NN 0.91 but distance preservation 0.46-0.48. The file MFCCs' standard deviations
            # over time at 0.6 of the means (they track the rendered file's less closely): 1-NN 0.89, photo ρ 0.65,
            # texture ρ 0.70, distance preservation 0.57 (at 1.5: 0.85, 0.48, 0.72, 0.56).
            # Then, with 16 audio dims (dev sets and the evaluation's own, mapper seeds 0 and 1): colour 0.5 with strength
            # 1.5 kept 1-NN at 0.90-0.91 but left 199 or 197 sounds distinct (two flat blues 4/255 apart, 0.3-0.5 dB)
            # and distance preservation at 0.49-0.61; flat_colour 5 (a flat field's colour means weigh up to 6 times):
            # 200 distinct (1.4 dB); 4000 steps rather than 2000: distance preservation 0.52-0.56 (0.48-0.57).
            mapper_weights=MapperWeights(locality=0.0, cycle=0.0, direct_cycle=0.0, near=5.0, sound_locality=30.0,
                                         sound_local=30.0, inverse_fit=1.0, sound_kind="file",
                                         group_emphasis=(0.5, 1.0, 1.0, 1.0), edge_strength=1.5, spread_weight=0.6,
                                         flat_colour=5.0),
            # small widths keep the preset small (2.2 MB as stored, float16); a low image β spreads similar images apart
            image_beta=0.05,
            audio_beta=0.1,
        ),
    )
}


def get_spec(name: str) -> PresetSpec:
    """``PRESET_SPECS[name]``, or a ParameterError listing the known names."""
    if name not in PRESET_SPECS:
        raise ParameterError(f"unknown preset {name!r}; presets that can be trained: {', '.join(PRESET_SPECS)}")
    return PRESET_SPECS[name]


def _check_split(split: str) -> int:
    if split not in ("train", "test"):
        raise ParameterError(f"split={split!r}; expected 'train' or 'test'")
    return 0 if split == "train" else _TEST_SEED_OFFSET


def preset_images(spec: PresetSpec, *, split: str, n: int | None = None) -> tuple[Tensor, Tensor | None]:
    """The preset's images ``(n, C, size, size)`` and their factors/labels (None for the broad set).

    ``n`` defaults to ``spec.image_training.n_examples``; digits always give the whole split.
    """
    seed = spec.seed + _check_split(split)
    n = n or spec.image_training.n_examples
    size = spec.image_vae.image_size
    if spec.image_data == "squares":
        return datasets.make_squares(n, size=size, seed=seed, side_range=spec.square_side_range,
                                     edge_range_px=spec.square_edge_range_px)
    if spec.image_data == "digits":
        return datasets.load_digits_split(split, size=size)
    if spec.image_data == "broad":
        return datasets.make_broad_images(n, size=size, seed=seed), None
    raise ParameterError(f"image_data={spec.image_data!r}; expected one of {', '.join(IMAGE_DATA)}")


def preset_sounds(spec: PresetSpec, *, split: str, n: int | None = None) -> tuple[Tensor, Tensor | None]:
    """The preset's mel windows ``(n, n_mels, n_frames)`` and their factors/parameters (None for the palette)."""
    seed = spec.seed + _check_split(split)
    n = n or spec.audio_training.n_examples
    kwargs = dict(config=spec.spectral, n_frames=spec.audio_vae.n_frames, seed=seed)
    if spec.sound_data == "sines":
        return datasets.make_sine_tones(n, **kwargs)
    if spec.sound_data == "fm":
        return datasets.make_fm_timbres(n, **kwargs)
    if spec.sound_data == "palette":
        return datasets.make_synth_palette(n, **kwargs), None
    raise ParameterError(f"sound_data={spec.sound_data!r}; expected one of {', '.join(SOUND_DATA)}")
