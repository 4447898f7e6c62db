"""Inference-only torch models built from dataclass configs, and their checkpoint format."""

from models.audio_vae import AudioVAE, AudioVAEConfig
from models.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from models.errors import CheckpointError, ImgsonicError, InputError, ParameterError
from models.image_vae import ImageVAE, ImageVAEConfig
from models.mapper import LatentMapper, LatentMapperConfig
from models.preprocess import prepare_image, prepare_images

__all__ = [
    "ImageVAE",
    "ImageVAEConfig",
    "AudioVAE",
    "AudioVAEConfig",
    "LatentMapper",
    "LatentMapperConfig",
    "save_checkpoint",
    "load_checkpoint",
    "FORMAT_VERSION",
    "prepare_image",
    "prepare_images",
    "ImgsonicError",
    "ParameterError",
    "InputError",
    "CheckpointError",
]
