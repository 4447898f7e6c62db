"""Inference-only torch models built from dataclass configs, and their checkpoint format."""

from models.errors import CheckpointError, ImgsonicError, InputError, ParameterError

__all__ = ["ImgsonicError", "ParameterError", "InputError", "CheckpointError"]
