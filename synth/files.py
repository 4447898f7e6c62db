"""Atomic file output: every file imgsonic writes appears whole or not at all.

Checkpoints keep their own writer in :mod:`models.checkpoint` (``models`` imports nothing but torch).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from models.errors import ImgsonicError, OutputError, ParameterError

__all__ = ["atomic_output", "output_error"]


def output_error(path: str | os.PathLike, error: OSError) -> OutputError:
    """A one-line :class:`OutputError` for an OSError while writing ``path`` (a full disk, no permission, …)."""
    reason = error.strerror or str(error) or type(error).__name__
    code = f" ({errno.errorcode[error.errno]})" if error.errno in errno.errorcode else ""
    return OutputError(f"cannot write {str(path)!r}: {reason}{code}")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, text: bool = False) -> Iterator[IO]:
    """Open a file to write that replaces ``path`` only once it is complete.

    Writes go to a hidden temporary file beside ``path`` (``.NAME.<random>.tmp.SUFFIX``); when the
    ``with`` block ends normally it is flushed to disk and moved over ``path`` with ``os.replace``. If
    the block raises — KeyboardInterrupt included — the temporary file is removed and an existing
    ``path`` is left as it was. The file gets the permissions the umask allows, like any file the user
    creates.

    Parameters
    ----------
    path : str or os.PathLike
        The target; its folder must exist.
    text : bool
        Open in text mode (UTF-8) instead of binary.

    Raises
    ------
    ParameterError
        The folder does not exist or ``path`` is a folder.
    OutputError
        The file cannot be created or written: no permission, a read-only file system, a full disk
        (an OSError raised inside the block becomes one too; the temporary file is removed first).

    Example
    -------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> with atomic_output(target, text=True) as stream:
    ...     _ = stream.write("written whole or not at all")
    >>> target.read_text()
    'written whole or not at all'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ParameterError(f"cannot write {str(path)!r}: it is a folder; give a file name")
    # the temporary name ends in the target's suffix: writers that pick a format by name (pyo) see it
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp{path.suffix}")
    try:
        # "x" never clobbers another writer's temporary file
        handle = open(temporary, "x", encoding="utf-8") if text else open(temporary, "xb")
    except OSError as error:
        raise output_error(path, error) from error
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, ImgsonicError):
            raise
        raise output_error(path, error) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
