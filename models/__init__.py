"""Inference-only torch models built from dataclass configs, and their checkpoint format."""

# Names load on first use (PEP 562): `from models.errors import ...` and `imgsonic --help` need no torch.

from models.lazy import lazy_exports

_EXPORTS = {
    "ImageVAE": "models.image_vae",
    "ImageVAEConfig": "models.image_vae",
    "AudioVAE": "models.audio_vae",
    "AudioVAEConfig": "models.audio_vae",
    "LatentMapper": "models.mapper",
    "LatentMapperConfig": "models.mapper",
    "save_checkpoint": "models.checkpoint",
    "load_checkpoint": "models.checkpoint",
    "FORMAT_VERSION": "models.checkpoint",
    "prepare_image": "models.preprocess",
    "prepare_images": "models.preprocess",
    "ImgsonicError": "models.errors",
    "ParameterError": "models.errors",
    "InputError": "models.errors",
    "CheckpointError": "models.errors",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
