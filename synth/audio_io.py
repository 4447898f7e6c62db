"""Audio files in and out, through ``pedalboard.io.AudioFile``.

- :func:`read_audio` reads wav, flac, ogg, mp3 and aif/aiff, resamples to the rate you ask for and mixes to
  the channel count you ask for, always returning float32 of shape (channels, n_samples).
- :func:`write_audio` writes .wav (32-bit float, lossless for any float32 signal) or .flac (24-bit integer,
  so samples must lie in [-1, 1]). Writing is atomic: the audio goes to a temporary file beside the target,
  which replaces the target only once complete, so an interrupted or failed write leaves the old file (or no
  file) and never a truncated one.
- :func:`read_audio_info` reports a file's sample rate, channels and length without decoding it.
- A WAV or AIFF file whose header claims more samples than the file holds (a copy cut short, a recording
  that crashed) is an :class:`~models.errors.InputError` that says how much is there; pedalboard would
  otherwise pad it with invented silence up to the claimed length. With ``allow_truncated=True`` the
  readers return the samples that are there, and no more.
- File names that are not valid UTF-8 (bytes decoded with ``surrogateescape``) are read through a Python
  file object, since pedalboard only takes UTF-8 names.

Example
-------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.wav"
>>> tone = np.sin(2 * np.pi * 440 * np.arange(44100) / 44100).astype(np.float32)
>>> write_audio(path, tone, sample_rate=44100)
>>> read_audio(path, sample_rate=22050, channels=2).shape
(2, 22050)
"""

from __future__ import annotations

import contextlib
import numbers
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pedalboard.io import AudioFile, get_supported_read_formats

from models.errors import InputError, ParameterError
from synth.files import atomic_output

__all__ = ["AudioInfo", "read_audio", "read_audio_blocks", "read_audio_info", "write_audio", "audio_writer",
           "READ_FORMATS", "WRITE_FORMATS"]

# Extensions pedalboard can decode here (".aif", ".aiff", ".flac", ".mp3", ".ogg", ".wav", ...).
READ_FORMATS: tuple[str, ...] = tuple(get_supported_read_formats())

# Extension → (pedalboard format name, bit depth). wav stores float32 exactly; flac is integer-only, and
# 24 bits (−144 dB quantisation) is its highest depth that every decoder reads.
_WRITE_SETTINGS: dict[str, tuple[str, int]] = {".wav": ("wav", 32), ".flac": ("flac", 24)}
WRITE_FORMATS: tuple[str, ...] = tuple(_WRITE_SETTINGS)

# Decode in pieces of this many frames: pedalboard asks for a frame count, and a resampled or compressed
# file's reported length is an estimate that may be off by a few frames either way.
_READ_BLOCK_FRAMES = 1 << 20


@dataclass(frozen=True, kw_only=True)
class AudioInfo:
    """What a file's header says about it.

    Attributes
    ----------
    sample_rate : int
        Samples per second per channel.
    n_channels : int
        Number of channels.
    n_samples : int
        Frames per channel (an estimate for some mp3/ogg files).
    """

    sample_rate: int
    n_channels: int
    n_samples: int

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sample_rate


def _accepted_read_formats() -> str:
    return ", ".join(READ_FORMATS)


def _pcm_data_span(path: Path) -> tuple[int, int] | None:
    """``(offset, size)`` in bytes of the sample data of a WAV (RIFF ``data``) or AIFF (``SSND``) file as its
    chunk header states it, or None for other formats (whose decoders check their own streams)."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(12)
            if len(head) < 12 or head[8:12] not in (b"WAVE", b"AIFF", b"AIFC") or head[:4] not in (b"RIFF", b"FORM"):
                return None
            little = head[:4] == b"RIFF"
            wanted = b"data" if little else b"SSND"
            while True:
                chunk = stream.read(8)
                if len(chunk) < 8:
                    return None
                size = struct.unpack("<I" if little else ">I", chunk[4:])[0]
                if chunk[:4] == wanted:
                    # an AIFF SSND chunk starts with 8 bytes of offset and block size before the samples
                    skip = 0 if little else 8
                    return stream.tell() + skip, size - skip
                stream.seek(size + (size & 1), os.SEEK_CUR)  # chunks are padded to even sizes
    except OSError:
        return None


def _frames_present(path: Path, audio_file) -> int:
    """How many of the frames the header claims the file holds: fewer only for a truncated WAV/AIFF."""
    claimed = int(audio_file.frames)
    span = _pcm_data_span(path)
    if span is None or not audio_file.exact_duration_known:
        return claimed
    offset, declared_bytes = span
    # bytes per frame as the header states them (any sample format: 8/16/24/32-bit, float)
    frame_bytes = declared_bytes // claimed if claimed > 0 else 0
    if frame_bytes <= 0 or frame_bytes * claimed != declared_bytes:
        return claimed
    present = max(0, (path.stat().st_size - offset) // frame_bytes)
    return min(claimed, present)


class _Source:
    """An open pedalboard reader with the number of frames really in the file."""

    def __init__(self, path: Path, *, allow_truncated: bool) -> None:
        self.path = path
        self._handle = None
        try:
            name = str(path)
            try:
                name.encode("utf-8")
                self.file = AudioFile(name)
            except UnicodeEncodeError:  # a non-UTF-8 name (surrogate-escaped bytes): pedalboard cannot take it
                self._handle = open(path, "rb")
                self.file = AudioFile(self._handle)
        except (ValueError, RuntimeError, OSError, TypeError) as error:
            self.close()
            raise InputError(f"cannot read {str(path)!r} as audio ({error}); accepted formats: {_accepted_read_formats()}") from error
        self.frames = _frames_present(path, self.file)
        claimed = int(self.file.frames)
        if self.frames < claimed and not allow_truncated:
            rate = float(self.file.samplerate)
            self.close()
            raise InputError(
                f"audio file {str(path)!r} is truncated: its header claims {claimed / rate:.2f} s but it holds "
                f"{self.frames / rate:.2f} s; pass --allow-truncated to use the {self.frames / rate:.2f} s that are there"
            )

    def close(self) -> None:
        if getattr(self, "file", None) is not None:
            self.file.close()
        if self._handle is not None:
            self._handle.close()

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _open_for_reading(path: Path, *, allow_truncated: bool = False) -> _Source:
    """Open ``path`` with pedalboard, turning every failure into an InputError that names the path."""
    if not path.exists():
        raise InputError(f"audio file {str(path)!r} does not exist; expected an audio file ({_accepted_read_formats()})")
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a directory; expected an audio file ({_accepted_read_formats()})")
    return _Source(path, allow_truncated=allow_truncated)


def read_audio_info(path: str | os.PathLike, *, allow_truncated: bool = False) -> AudioInfo:
    """Read a file's sample rate, channel count and length without decoding the audio.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file in one of :data:`READ_FORMATS`.

    Returns
    -------
    AudioInfo

    Raises
    ------
    InputError
        The file is missing, a directory, not audio, or truncated (unless ``allow_truncated``: then
        ``n_samples`` counts the samples that are there).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "silence.wav"
    >>> write_audio(path, np.zeros(48000, dtype=np.float32), sample_rate=48000)
    >>> read_audio_info(path).duration_s
    1.0
    """
    path = Path(path)
    with _open_for_reading(path, allow_truncated=allow_truncated) as source:
        return AudioInfo(sample_rate=int(round(source.file.samplerate)), n_channels=source.file.num_channels,
                         n_samples=source.frames)


def read_audio_blocks(path: str | os.PathLike, *, block_s: float,
                      allow_truncated: bool = False) -> Iterator[tuple[np.ndarray, int]]:
    """Mono float32 blocks of about ``block_s`` seconds of ``path`` at its own rate, each with that rate.

    For sounds of any length in bounded memory. InputError names the file when it is missing, not audio,
    truncated (unless ``allow_truncated``: then the blocks stop where the file's samples do), cannot be
    decoded or holds NaN/inf samples.
    """
    path = Path(path)
    with _open_for_reading(path, allow_truncated=allow_truncated) as source:
        audio_file, remaining = source.file, source.frames
        sample_rate = round(audio_file.samplerate)
        step = max(1, round(block_s * sample_rate))
        while True:
            try:
                block = audio_file.read(min(step, remaining)) if remaining > 0 else np.zeros((1, 0), np.float32)
            except (ValueError, RuntimeError, OSError) as error:
                raise InputError(f"cannot decode {str(path)!r} ({error}); expected a readable audio file") from error
            remaining -= block.shape[-1]
            if block.shape[-1] == 0:
                return
            if not np.isfinite(block).all():
                raise InputError(f"audio file {str(path)!r} contains NaN or inf samples; expected finite audio")
            yield block.mean(axis=0, dtype=np.float32), sample_rate


def _read_all(audio_file, n_frames: int | None = None) -> np.ndarray:
    """Every frame of ``audio_file``, or its first ``n_frames``."""
    blocks = []
    remaining = n_frames
    while remaining is None or remaining > 0:
        block = audio_file.read(_READ_BLOCK_FRAMES if remaining is None else min(_READ_BLOCK_FRAMES, remaining))
        if block.shape[-1] == 0:
            break
        blocks.append(block)
        if remaining is not None:
            remaining -= block.shape[-1]
    if not blocks:
        return np.zeros((audio_file.num_channels, 0), dtype=np.float32)
    return np.concatenate(blocks, axis=-1)


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ParameterError(f"{name}={value!r} is invalid; expected a positive integer")
    return int(value)


def read_audio(path: str | os.PathLike, *, sample_rate: int | None, channels: int = 1,
               allow_truncated: bool = False) -> np.ndarray:
    """Read an audio file as float32, resampled and mixed to the requested rate and channel count.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file in one of :data:`READ_FORMATS` (wav, flac, ogg, mp3, aif/aiff, ...); the format is
        detected from the content.
    sample_rate : int or None
        Output rate in Hz (> 0), reached with pedalboard's windowed-sinc resampler; None keeps the file's rate
        (see :func:`read_audio_info`).
    channels : int
        Output channels, > 0. 1 averages all of the file's channels; a mono file is copied to every
        requested channel; otherwise the file must already have ``channels`` channels.
    allow_truncated : bool
        Read a truncated WAV/AIFF file's samples instead of refusing it.

    Returns
    -------
    np.ndarray
        float32, shape (channels, n_samples), nominally in [-1, 1]. mp3 files start with the encoder's
        delay (about 1100 samples of near-silence).

    Raises
    ------
    InputError
        The file is missing, a directory, not audio, empty, truncated (unless ``allow_truncated``), or has
        a channel count that cannot be mixed to ``channels``.
    ParameterError
        ``sample_rate`` or ``channels`` is not a positive integer.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "stereo.flac"
    >>> write_audio(path, np.zeros((2, 44100), dtype=np.float32), sample_rate=44100)
    >>> read_audio(path, sample_rate=16000).shape
    (1, 16000)
    """
    if sample_rate is not None:
        sample_rate = _check_positive_int("sample_rate", sample_rate)
    channels = _check_positive_int("channels", channels)
    path = Path(path)
    with _open_for_reading(path, allow_truncated=allow_truncated) as source:
        audio_file = source.file
        present = source.frames if source.frames < audio_file.frames else None
        try:
            if sample_rate is None or sample_rate == audio_file.samplerate:
                audio = _read_all(audio_file, present)
            else:
                with audio_file.resampled_to(sample_rate) as resampled:
                    wanted = None if present is None else round(present * sample_rate / audio_file.samplerate)
                    audio = _read_all(resampled, wanted)
        except (ValueError, RuntimeError, OSError) as error:
            raise InputError(f"cannot decode {str(path)!r} ({error}); accepted formats: {_accepted_read_formats()}") from error
    if audio.shape[-1] == 0:
        raise InputError(f"audio file {str(path)!r} contains no samples; expected audio with at least one sample ({_accepted_read_formats()})")
    n_file_channels = audio.shape[0]
    if n_file_channels == channels:
        return np.ascontiguousarray(audio, dtype=np.float32)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True, dtype=np.float32)
    if n_file_channels == 1:
        return np.repeat(audio, channels, axis=0)
    raise InputError(
        f"audio file {str(path)!r} has {n_file_channels} channels, which cannot be mixed to channels={channels}; "
        f"expected channels=1 or channels={n_file_channels}"
    )


def _as_writable_audio(audio: np.ndarray, *, extension: str) -> np.ndarray:
    """Validate ``audio`` and return it as float32 (channels, n_samples)."""
    array = np.asarray(audio)
    if not np.issubdtype(array.dtype, np.floating):
        raise ParameterError(f"audio has dtype {array.dtype}; expected floating-point samples in [-1, 1]")
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise ParameterError(f"audio has shape {array.shape}; expected (n_samples,) or (channels, n_samples)")
    if array.shape[1] == 0:
        raise ParameterError(f"audio has shape {array.shape}, with no samples; expected at least one sample")
    if array.shape[0] > array.shape[1]:
        raise ParameterError(f"audio has shape {array.shape}, more channels than samples; expected (channels, n_samples) — transpose (n_samples, channels) arrays")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"audio contains NaN or inf at {np.count_nonzero(~np.isfinite(array))} samples; expected finite samples")
    if extension == ".flac" and np.abs(array).max() > 1.0:
        raise ParameterError(
            f"audio peaks at {float(np.abs(array).max())!r}, which .flac (integer samples) would clip; "
            "expected samples in [-1, 1], or write .wav (32-bit float)"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_target(path: Path) -> str:
    """The target's extension, once ``path`` is known to be writable as audio (ParameterError if not)."""
    extension = path.suffix.lower()
    if extension not in _WRITE_SETTINGS:
        raise ParameterError(f"cannot write {str(path)!r}: extension {path.suffix!r} is not supported; expected one of {', '.join(WRITE_FORMATS)}")
    if not path.parent.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: it is a directory; expected a file path ending in {' or '.join(WRITE_FORMATS)}")
    return extension


def write_audio(path: str | os.PathLike, audio: np.ndarray, *, sample_rate: int) -> None:
    """Write audio to .wav (32-bit float) or .flac (24-bit), atomically.

    The audio is written to a hidden temporary file in the target's directory, flushed to disk, then moved
    over the target with ``os.replace``. On any failure or interruption (KeyboardInterrupt included) the
    temporary file is removed and an existing target is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Target file; its extension (.wav or .flac, any case) picks the format. Its directory must exist.
    audio : np.ndarray
        Floating-point samples, shape (n_samples,) for mono or (channels, n_samples), finite; for .flac
        within [-1, 1].
    sample_rate : int
        Samples per second, > 0.

    Raises
    ------
    ParameterError
        Unsupported extension, missing directory, bad shape or dtype, NaN/inf, or (for .flac) clipping.
    OutputError
        The file cannot be written (a full disk, no permission, a read-only file system).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "noise.flac"
    >>> write_audio(path, np.zeros((2, 1000), dtype=np.float32), sample_rate=16000)
    >>> read_audio_info(path)
    AudioInfo(sample_rate=16000, n_channels=2, n_samples=1000)
    """
    path = Path(path)
    samples = _as_writable_audio(audio, extension=_check_target(path))
    with audio_writer(path, sample_rate=sample_rate, n_channels=samples.shape[0]) as write:
        write(samples)


@contextlib.contextmanager
def audio_writer(path: str | os.PathLike, *, sample_rate: int, n_channels: int = 1) -> Iterator[Callable[[np.ndarray], None]]:
    """Write .wav or .flac block by block, atomically: ``with audio_writer(p, sample_rate=sr) as write: write(block)``.

    The file appears at ``path`` only when the ``with`` block ends normally (as :func:`write_audio`'s); an
    exception or an interrupt leaves no file and an existing one untouched. Each block is checked as
    :func:`write_audio` checks its audio (at least one sample, finite, within [-1, 1] for .flac).

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "two.wav"
    >>> with audio_writer(path, sample_rate=8000) as write:
    ...     write(np.zeros(100, np.float32)); write(np.ones(50, np.float32))
    >>> read_audio_info(path).n_samples
    150
    """
    path = Path(path)
    extension = _check_target(path)
    sample_rate = _check_positive_int("sample_rate", sample_rate)
    n_channels = _check_positive_int("n_channels", n_channels)
    format_name, bit_depth = _WRITE_SETTINGS[extension]
    # pedalboard writes through the handle, so the temporary file needs no audio extension
    with atomic_output(path) as handle:
        with AudioFile(handle, "w", samplerate=sample_rate, num_channels=n_channels, bit_depth=bit_depth,
                       format=format_name) as writer:

            def write(block: np.ndarray) -> None:
                samples = _as_writable_audio(block, extension=extension)
                if samples.shape[0] != n_channels:
                    raise ParameterError(f"audio block has {samples.shape[0]} channels; the file has {n_channels}")
                writer.write(samples)

            yield write
