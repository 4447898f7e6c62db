"""The project's one exception hierarchy.

It lives in ``models`` because that package imports only torch, so every other package
(``synth``, ``bridge``, ``training``) can import it without creating a cycle.
"""

__all__ = ["ImgsonicError", "ParameterError", "InputError", "CheckpointError", "OutputError"]


class ImgsonicError(Exception):
    """Base class: the CLI turns any of these into one line on stderr and a non-zero exit."""


class ParameterError(ImgsonicError, ValueError):
    """An argument has a bad value (wrong shape, out of range, unknown name)."""


class InputError(ImgsonicError, ValueError):
    """An input file or stream is missing, unreadable or of the wrong kind."""


class CheckpointError(ImgsonicError):
    """A checkpoint is missing, tampered with, of another kind or of an unknown format version."""


class OutputError(ImgsonicError, OSError):
    """An output cannot be written: a full disk, no permission, a read-only file system."""
